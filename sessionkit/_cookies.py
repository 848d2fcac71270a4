"""Rendering the id's transport on a response: a ``Set-Cookie`` line, or a header value.

Everything that does not depend on the request (the cookie name, its attributes, the whole
expiry line) is rendered once, when the middleware is built; ``Max-Age`` and ``Expires`` with the
attributes once per second and lifetime; a response only joins the id to them.
"""

from __future__ import annotations

import re
from email.utils import formatdate
from typing import Final

from ._config import Config
from ._errors import SessionKitError

__all__ = ["CookieRenderer", "checked", "http_date"]

#: What may never reach a header line, whatever produced it: ``;`` ends a cookie attribute,
#: ``,`` splits folded headers, CR/LF end the header itself.
_UNSAFE = re.compile(r"[;,\s\x00-\x1f\x7f]")
#: Expires date of an expiry cookie: the epoch, as browsers and RFC 6265 examples use.
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def http_date(timestamp: float) -> str:
    """``timestamp`` as an RFC 1123 date (``Wed, 21 Oct 2015 07:28:00 GMT``)."""
    return formatdate(timestamp, usegmt=True)


def checked(what: str, value: str) -> str:
    """Return ``value``, or raise if it could break out of its header line.

    For the config's fields, which go into every cookie line; ids are checked where they
    come in (see :meth:`CookieRenderer.set`).
    """
    if _UNSAFE.search(value):
        raise SessionKitError(f"refusing to render {what} {value!r}: it holds a separator")
    return value


class CookieRenderer:
    """The ``Set-Cookie`` values for one store's config.

    ``session_only`` cookies carry neither ``Max-Age`` nor ``Expires`` and die with the
    browser; the others carry both (``Max-Age`` wins where understood, ``Expires`` serves the
    old clients that ignore it).
    """

    __slots__ = ("_prefix", "_session_only", "_suffix", "_tail", "expire")

    def __init__(self, config: Config, name: str | None = None) -> None:
        """``name``: the cookie's (a chain's cookie source); the config's ``key_lookup`` by
        default."""
        name = checked("cookie name", config.lookup.name if name is None else name)
        parts = [f"Path={checked('cookie path', config.cookie_path)}"]
        if config.cookie_domain:
            parts.append(f"Domain={checked('cookie domain', config.cookie_domain)}")
        if config.cookie_secure:
            parts.append("Secure")
        if config.cookie_http_only:
            parts.append("HttpOnly")
        parts.append(f"SameSite={config.cookie_same_site}")
        self._prefix = f"{name}="
        self._suffix = "; " + "; ".join(parts)
        self._session_only = config.cookie_session_only
        #: The line that makes a browser drop the cookie: empty value, ``Max-Age=0``, a past date.
        self.expire: Final = f"{name}=; Max-Age=0; Expires={_EPOCH}{self._suffix}"
        self._tail = (-1, -1, "")

    def _expires(self, seconds: int, at: int) -> str:
        """Everything after the id: ``Max-Age``, ``Expires`` and the attributes.

        Responses within one second with one lifetime (nearly all of a busy second's) share
        it: it is formatted once per second, not per response. One tuple, swapped whole, so
        threads never pair a second with another second's text.
        """
        cached_seconds, cached_at, tail = self._tail
        if cached_at != at or cached_seconds != seconds:
            tail = f"; Max-Age={seconds}; Expires={http_date(at)}{self._suffix}"
            self._tail = (seconds, at, tail)
        return tail

    def set(self, session_id: str, max_age: float, now: float, browser: bool = False) -> str:
        """The line that stores ``session_id`` for ``max_age`` seconds from ``now``, or until
        the browser closes (``browser``: a session given ``set_expiry(timedelta(0))``).

        ``session_id`` is not checked again here: every id a session holds was checked where
        it came in (a client's against the store's id pattern, a server-made one by
        :meth:`Store.new_id <sessionkit.Store.new_id>`).
        """
        if self._session_only or browser:
            return self._prefix + session_id + self._suffix
        seconds = int(max_age)
        if seconds < 1:
            seconds = 1
        return self._prefix + session_id + self._expires(seconds, int(now) + seconds)
