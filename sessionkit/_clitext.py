"""How the operator commands put things into words: URLs, errors, sizes, ages.

Kept apart from the operations so ``check``, ``stats`` and ``purge`` read alike, and so a
password in a storage URL is removed in one place before anything is printed.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

__all__ = ["describe", "human_age", "human_bytes", "redact"]


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for a terminal or a log)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


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
