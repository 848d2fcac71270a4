"""Masking the secrets of a storage URL before anything shows it: a log line, an error, a page.

Every place that prints a URL (the loader's errors, the command line, the demo's pages) masks it
here, so there is one list of what counts as secret. Standard library only: the loader imports it
on its error path.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus

__all__ = ["MASK", "redact", "scrub"]

MASK = "***"

#: A query parameter, or an entry of a compound value (``NAME:value``), whose name contains one
#: of these (any case) has its value masked; ``sig`` and ``auth`` only as the whole name, so
#: ``authSource`` and ``authMechanism`` stay readable.
_SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|key|credential|signature|private|\A(?:sig|auth)\Z", re.IGNORECASE
)
#: What a user name in the URL's userinfo must not contain to be shown (else it may be a
#: password that was mis-split, or not a user name at all).
_UNCLEAR_USER = re.compile(r"[\s/?#\[\]@]")
#: The separators of a compound value's entries, as written or percent-encoded:
#: ``AWS_SESSION_TOKEN:x,SERVICE_NAME:y`` (MongoDB's ``authMechanismProperties``).
_ENTRIES = re.compile(r"(,|%2[Cc])")
_ENTRY = re.compile(r"(?P<name>.*?)(?P<sep>:|%3[Aa])(?P<value>.*)\Z", re.DOTALL)
#: A value that is itself a URL with a userinfo (``?proxy=http%3A%2F%2Fu%3Apw%40proxy``).
_URL_WITH_USERINFO = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*:[^@]*@", re.DOTALL)

#: A piece of a URL's text, and whether it is secret (shown as ``***``).
_Piece = tuple[str, bool]


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


def _is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(unquote_plus(name)))


def _userinfo(userinfo: str) -> list[_Piece]:
    user, colon, password = userinfo.partition(":")
    if colon and not _UNCLEAR_USER.search(user) and user.isprintable():
        return [(user + colon, False), (password, True)]
    return [(userinfo, True)]  # no ':' (a token as the user name?) or an odd user: hide it all


def _entries(value: str) -> list[_Piece]:
    """A compound value: each ``NAME:value`` entry (``,``-separated) whose name looks like a
    credential has its value masked, the rest is kept (``SERVICE_NAME:mongodb``)."""
    pieces: list[_Piece] = []
    for index, text in enumerate(_ENTRIES.split(value)):
        entry = _ENTRY.match(text) if index % 2 == 0 else None
        if entry is not None and _is_secret(entry["name"]):
            pieces += [(entry["name"] + entry["sep"], False), (entry["value"], True)]
        else:
            pieces.append((text, False))
    return pieces


def _value(value: str) -> list[_Piece]:
    """The value of a query parameter whose own name is not secret: an encoded URL with a
    userinfo (hidden whole: an unencoded one already ended the URL's own userinfo), else
    ``;``-separated options (MongoDB reads ``;`` as ``&``), each a ``name=value`` masked by
    its name, or a compound value masked entry by entry."""
    if _URL_WITH_USERINFO.match(unquote_plus(value)):
        return [(value, True)]
    pieces: list[_Piece] = []
    for index, option in enumerate(value.split(";")):
        if index:
            pieces.append((";", False))
        name, eq, inner = option.partition("=")
        if eq and _is_secret(name):
            pieces += [(name + eq, False), (inner, True)]
        elif eq:
            pieces += [(name + eq, False), *_entries(inner)]
        else:
            pieces += _entries(option)
    return pieces


def _query(query: str) -> list[_Piece]:
    """The parameters of ``query`` (without its ``?``)."""
    pieces: list[_Piece] = []
    after_secret = False
    for index, parameter in enumerate(query.split("&")):
        if index:
            pieces.append(("&", False))
        name, eq, value = parameter.partition("=")
        if not eq:
            # A bare word right after a secret value is likely the rest of it, cut by an
            # unencoded '&' (``password=a&b``): hidden too.
            pieces.append((parameter, after_secret and bool(parameter)))
        elif _is_secret(name):
            pieces += [(name + eq, False), (value, True)]
            after_secret = True
        else:
            pieces += [(name + eq, False), *_value(value)]
            after_secret = False
    return pieces


def _pieces(url: str) -> list[_Piece]:
    """``url`` cut into pieces, each secret or not; joined again they are ``url``."""
    head, userinfo, middle, tail = _split(url)
    pieces: list[_Piece] = [(head, False)]
    if userinfo is not None:
        pieces += [*_userinfo(userinfo), ("@", False)]
    pieces.append((middle, False))
    query, hash_, fragment = tail.partition("#")
    if query:
        pieces += [("?", False), *_query(query[1:])]
    if hash_:
        # A storage URL has no use for a fragment; an unencoded '#' in a password starts one.
        pieces += [(hash_, False), (fragment, bool(fragment))]
    return pieces


def redact(url: str) -> str:
    """``url`` with its secrets replaced by ``***`` (safe for a terminal, a page or a log).

    Masked:

    * everything between ``://`` and the last ``@`` (the user name is kept when a ``:``
      clearly separates it from the password);
    * the value of each query parameter whose name contains ``pass``, ``pwd``, ``secret``,
      ``token``, ``key``, ``credential``, ``signature`` or ``private`` (any case), or is
      ``sig`` or ``auth``; parameters may be separated by ``&`` or ``;`` (MongoDB);
    * inside any other value, each ``NAME:value`` entry of a compound value whose name is
      such a name (``authMechanismProperties=AWS_SESSION_TOKEN:***,SERVICE_NAME:mongodb``),
      separators written or percent-encoded;
    * a value that is itself a URL with a userinfo, percent-encoded (``?proxy=http%3A...``);
    * a bare word right after a masked value (the rest of a password cut by a raw ``&``),
      and a fragment (the rest of a password cut by a raw ``#``).

    Never raises, whatever the text: it is called on URLs that failed to parse.
    """
    try:
        text = url if isinstance(url, str) else str(url)
        return "".join(MASK if secret else piece for piece, secret in _pieces(text))
    except Exception:  # pragma: no cover - defensive: printing must not fail
        return "<a storage URL, not shown>"


def _secrets(url: str) -> set[str]:
    """The secret substrings of ``url`` (as written and decoded), as ``redact`` masks them."""
    found: set[str] = set()
    for piece, secret in _pieces(url):
        if secret:
            found.update({piece, unquote(piece), unquote_plus(piece)})
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
