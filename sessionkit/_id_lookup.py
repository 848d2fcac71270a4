"""Reading the session id a client sent, from any kind of request object.

Frameworks parse cookies leniently (the last of two same-named cookies wins, quotes are
stripped); an attacker who can plant a second cookie exploits exactly that. So the raw headers
are read here, and an id is accepted only when it arrives exactly once and is well formed;
anything else counts as no id at all and never reaches the storage.

With a chain of sources (``key_lookup="cookie:sid,header:X-Session-Id"``), the first source the
request carries at all is read, under the same rule; ``header:Authorization`` reads the token
of ``Authorization: Bearer <id>``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from ._config import KeyLookup

__all__ = [
    "ASGI_KEY",
    "OWNER_KEY",
    "UNCARRIED_KEY",
    "WSGI_KEY",
    "asgi_values",
    "carrier_of",
    "client_values",
    "wsgi_values",
]

#: Where the session sits in an ASGI scope (Starlette's ``request.session`` reads it).
ASGI_KEY = "session"
#: Where the session sits in a WSGI environ.
WSGI_KEY = "sessionkit.session"
#: The store whose middleware finishes this request's session, in a scope or an environ: a
#: middleware of the same store further in (mounted twice, or again on a sub-app) leaves the
#: request to it, or the response would carry the cookie twice. A session put in place by
#: ``store.get``/``aget`` before the middleware ran (an outer auth layer peeking at it) is no
#: such mark: the middleware still finishes that one.
OWNER_KEY = "sessionkit.owner"
#: Set in a scope or an environ when a chain of sources (``key_lookup="cookie:sid,query:sid"``)
#: took the id from a source that cannot carry it back (the query string, ``Authorization``):
#: that id is then never written into a cookie or a header (see ``Finisher.finish``).
UNCARRIED_KEY = "sessionkit.uncarried"

Sources = KeyLookup | tuple[KeyLookup, ...]


def carrier_of(request: Any) -> tuple[bool, MutableMapping[str, Any]]:
    """Return ``(is_asgi, scope_or_environ)`` for any supported request object."""
    if isinstance(request, dict):
        if request.get("type") in ("http", "websocket"):
            return True, request
        if "REQUEST_METHOD" in request:
            return False, request
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):
        return True, scope
    environ = getattr(request, "environ", None)
    if isinstance(environ, dict):
        return False, environ
    raise TypeError(
        "store.get() takes a framework request (Starlette, FastAPI, Litestar, Flask, Werkzeug), "
        f"an ASGI scope or a WSGI environ; got {type(request).__qualname__}"
    )


#: What RFC 6265 (5.2) trims around a cookie's name and value: space and tab, nothing else.
#: ``str.strip()`` would also eat CR, LF, NEL, NBSP and friends, and so let ``id + "\x85"``
#: through as the id.
_OWS = " \t"


def _cookie_values(header: str, name: str) -> list[str]:
    values = []
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip(_OWS) == name:
            values.append(value.strip(_OWS))
    return values


def is_bearer(lookup: KeyLookup) -> bool:
    """``header:Authorization``: the id is the token of ``Authorization: Bearer <id>``, and
    no response carries it back (the client got it from the app, as a token)."""
    return lookup.source == "header" and lookup.name.lower() == "authorization"


def carries(lookup: KeyLookup) -> bool:
    """Whether a response hands the id back through ``lookup``: a cookie or a header of the
    app's own; never the query string, nor ``Authorization``."""
    return lookup.source == "cookie" or (lookup.source == "header" and not is_bearer(lookup))


def _bearer(values: list[str]) -> list[str]:
    """The tokens of ``Bearer`` credentials; other schemes (``Basic``) are not an id at all,
    so a chain goes on to its next source."""
    tokens = []
    for value in values:
        scheme, sep, token = value.partition(" ")
        if sep and scheme.lower() == "bearer":
            tokens.append(token)
    return tokens


def client_values(is_asgi: bool, carrier: MutableMapping[str, Any], lookup: Sources) -> list[str]:
    """Return every value the client sent for the session id (usually none or one)."""
    return asgi_values(carrier, lookup) if is_asgi else wsgi_values(carrier, lookup)


def _chain(
    carrier: MutableMapping[str, Any],
    lookups: tuple[KeyLookup, ...],
    values_of: Callable[[MutableMapping[str, Any], KeyLookup], list[str]],
) -> list[str]:
    """The values of the first source of the chain the request carries at all (then held to
    the one-well-formed-value rule like any single source: a malformed or repeated id there
    is no id, and the sources after it are not consulted)."""
    for lookup in lookups:
        values = values_of(carrier, lookup)
        if values:
            if not carries(lookup):
                carrier[UNCARRIED_KEY] = True
            return values
    return []


def asgi_values(scope: MutableMapping[str, Any], lookup: Sources) -> list[str]:
    """:func:`client_values` of an ASGI scope."""
    if type(lookup) is tuple:
        return _chain(scope, lookup, asgi_values)
    source, name = lookup.source, lookup.name  # type: ignore[union-attr]
    if source == "query":
        query = scope.get("query_string", b"").decode("latin-1")
        return [v for k, v in parse_qsl(query, keep_blank_values=True) if k == name]
    if source == "cookie":  # every request with a cookie: a plain loop, no comprehension
        values: list[str] = []
        for key, value in scope.get("headers", ()):
            if key.lower() == b"cookie":
                values += _cookie_values(value.decode("latin-1"), name)
        return values
    wanted = name.lower().encode("latin-1")
    raw = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == wanted]
    return _bearer(raw) if wanted == b"authorization" else raw


def wsgi_values(environ: MutableMapping[str, Any], lookup: Sources) -> list[str]:
    """:func:`client_values` of a WSGI environ."""
    if type(lookup) is tuple:
        return _chain(environ, lookup, wsgi_values)
    source, name = lookup.source, lookup.name  # type: ignore[union-attr]
    if source == "query":
        query = environ.get("QUERY_STRING", "")
        return [v for k, v in parse_qsl(query, keep_blank_values=True) if k == name]
    if source == "header":
        key = "HTTP_" + name.upper().replace("-", "_")
        value = environ.get(key)
        if value is None:
            return []
        return _bearer([value]) if key == "HTTP_AUTHORIZATION" else [value]
    cookie = environ.get("HTTP_COOKIE")
    return [] if not cookie else _cookie_values(cookie, name)
