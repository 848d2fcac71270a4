"""How the operator commands put things into words: URLs, errors, sizes, ages.

Kept apart from the operations so ``check``, ``stats`` and ``purge`` read alike, and so a
password in a storage URL is removed in one place before anything is printed.
"""

from __future__ import annotations

import re
import time
from urllib.parse import unquote, unquote_plus

__all__ = ["describe", "human_age", "human_bytes", "redact", "scrub"]

MASK = "***"

#: A query parameter whose name contains one of these (any case) has its value masked.
_SECRET_NAME = re.compile(r"password|secret|token|key", re.IGNORECASE)
#: What a user name in the URL's userinfo must not contain to be shown (else it may be a
#: password that was mis-split, or not a user name at all).
_UNCLEAR_USER = re.compile(r"[\s/?#\[\]@]")


def _split(url: str) -> tuple[str, str | None, str, str]:
    """``(scheme and "://", userinfo or None, the rest up to the query, query and fragment)``.

    Done by hand, not by ``urlsplit``: this must cope with URLs that ``urlsplit`` refuses or
    misreads (an unclosed ``[``, a ``/`` or ``?`` in an unencoded password). The userinfo is
    everything between ``://`` and the *last* ``@``: a host never holds an ``@``, so whatever
    comes before the last one may be secret, even when that over-reaches into a path or query.
    """
    head, sep, rest = url.partition("://")
    if not sep:  # ``scheme:user:password@host`` is no URL, but its password is still one
        head, sep, rest = url.partition(":")
        if not sep:
            head, rest = "", url
    head += sep
    userinfo: str | None = None
    if sep and "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    return head, userinfo, rest[:cut], rest[cut:]


def _masked_userinfo(userinfo: str) -> str:
    user, colon, _ = userinfo.partition(":")
    if colon and not _UNCLEAR_USER.search(user) and user.isprintable():
        return f"{user}:{MASK}"
    return MASK  # no ':' (a token as the user name?) or an odd user: hide it all


def _query_pieces(tail: str) -> list[tuple[str, str | None]]:
    """``(name and its "=", value)`` for each parameter of the query ``tail`` starts with
    (``?a=1&b`` gives ``("a=", "1")`` and ``("b", None)``)."""
    query = tail[1:].split("#", 1)[0] if tail.startswith("?") else ""
    pieces: list[tuple[str, str | None]] = []
    for piece in query.split("&"):
        name, eq, value = piece.partition("=")
        pieces.append((name + eq, value if eq else None))
    return pieces


def _is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(unquote_plus(name)))


def redact(url: str) -> str:
    """``url`` with its secrets replaced by ``***`` (safe for a terminal, a page or a log).

    Masked: everything between ``://`` and the last ``@`` (the user name is kept when a ``:``
    clearly separates it from the password), and the value of each query parameter whose name
    contains ``password``, ``secret``, ``token`` or ``key`` (any case). Never raises, whatever
    the text: it is called on URLs that failed to parse.
    """
    try:
        text = url if isinstance(url, str) else str(url)
        head, userinfo, middle, tail = _split(text)
        authority = "" if userinfo is None else _masked_userinfo(userinfo) + "@"
        if tail.startswith("?"):
            _, hash_, fragment = tail.partition("#")
            parts = [
                name if value is None else name + (MASK if _is_secret(name) else value)
                for name, value in _query_pieces(tail)
            ]
            tail = "?" + "&".join(parts) + hash_ + fragment
        return head + authority + middle + tail
    except Exception:  # pragma: no cover - defensive: printing must not fail
        return "<a storage URL, not shown>"


def _secrets(url: str) -> set[str]:
    """The secret substrings of ``url`` (as written and decoded), as ``redact`` masks them."""
    found: set[str] = set()
    _, userinfo, _, tail = _split(url)
    if userinfo is not None:
        _, colon, password = userinfo.partition(":")
        hidden = password if colon and _masked_userinfo(userinfo) != MASK else userinfo
        found.update({hidden, unquote(hidden)})
    for name, value in _query_pieces(tail):
        if value is not None and _is_secret(name):
            found.update({value, unquote_plus(value)})
    return {secret for secret in found if secret}


def scrub(text: str, url: str) -> str:
    """``text`` (an error message, say) with every secret of ``url`` in it replaced by ``***``.

    For messages that may quote the URL or a piece of it (``urlsplit``'s do); never raises.
    """
    try:
        text = text.replace(url, redact(url))
        for secret in sorted(_secrets(url), key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text
    except Exception:  # pragma: no cover - defensive
        return "<message not shown: it may hold a password>"


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
