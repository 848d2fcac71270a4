"""How the operator commands put things into words: URLs, errors, sizes, ages.

Kept apart from the operations so ``check``, ``stats`` and ``purge`` read alike. A URL's
password is masked by :mod:`sessionkit._redact`, re-exported here for the commands.
"""

from __future__ import annotations

import os
import re
import time
from urllib.parse import quote

from .._redact import redact, scrub

__all__ = [
    "describe",
    "human_age",
    "human_bytes",
    "in_process_notice",
    "not_a_url",
    "redact",
    "scrub",
]


def describe(exc: BaseException) -> str:
    """One line for a failure: the error, and the driver's error it chains, if any."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    return text if cause is None else f"{text} (caused by {type(cause).__name__}: {cause})"


def human_bytes(size: int) -> str:
    """``1234`` -> ``1.2 KiB (1234 bytes)``."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit} ({size} bytes)"


def human_age(timestamp: float, now: float | None = None) -> str:
    """``2024-05-01 12:00:00 UTC (3 h 12 min ago)``."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
    seconds = max(0, int(now - timestamp))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        ago = f"{days} d {hours} h"
    elif hours:
        ago = f"{hours} h {minutes} min"
    elif minutes:
        ago = f"{minutes} min {secs} s"
    else:
        ago = f"{secs} s"
    return f"{stamp} ({ago} ago)"


#: ``localhost:6379``, ``127.0.0.1:6379/0``, ``[::1]:6379``: a host and a port, no scheme.
_HOST_PORT = re.compile(
    r"\A(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r":(?P<port>[0-9]{1,5})(?P<path>/[^/]*)?\Z"
)
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
MONGODB_PORT = "27017"


def _looks_like_path(text: str) -> bool:
    return (
        "/" in text
        or os.sep in text
        or text.lower().endswith(_SQLITE_SUFFIXES)
        or os.path.isfile(text)
    )


def sqlite_url_for(path: str) -> str:
    """The ``sqlite:///`` URL of a file, absolute (so it works from any directory) and
    percent-encoded (the plugin decodes it; a space or ``#`` survives, the shell leaves it)."""
    absolute = os.path.abspath(os.path.expanduser(path))
    return "sqlite:///" + quote(absolute.replace(os.sep, "/"), safe="/")


def not_a_url(text: str) -> str | None:
    """For an argument without a ``scheme://`` that is plainly a file path or a host and port,
    the message saying so and the exact URL to use; else ``None``.

    Without it, ``sessions.db`` or ``localhost:6379`` reach the backend lookup as schemes
    (``'sessions.db'``, ``'localhost'``), and the error names a scheme nobody wrote.
    """
    if "://" in text:
        return None
    host_port = _HOST_PORT.match(text)
    if host_port is not None:
        host, port, path = host_port["host"], host_port["port"], host_port["path"]
        database = path if path and path[1:].isdigit() else "/0"  # Redis numbers them
        redis = f"redis://{host}:{port}{database}"
        if port == MONGODB_PORT:
            mongodb = f"mongodb://{host}:{port}{path if path and path != '/' else '/db'}"
            urls = f"for MongoDB use {mongodb} (for Redis: {redis})"
        else:
            urls = f"for Redis use {redis}"
        return f"{text!r} looks like a host and port, not a storage URL; {urls}"
    if _looks_like_path(text):
        return (
            f"{text!r} looks like a file path, not a storage URL; "
            f"for a SQLite file use {sqlite_url_for(text)}"
        )
    return None


def in_process_notice(url: str) -> str | None:
    """For a storage that lives inside one process (``memory://``, ``sqlite://:memory:``),
    the warning that a command opening it sees a new, empty store of its own, not the
    application's sessions; else ``None``."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "memory" or (scheme == "sqlite" and rest.startswith(":memory:")):
        shown = f"{scheme}://" if scheme == "memory" else "sqlite://:memory:"
        return (
            f"note: {shown} lives inside one process, so this command sees a new, empty "
            "store of its own, not your application's sessions"
        )
    return None
