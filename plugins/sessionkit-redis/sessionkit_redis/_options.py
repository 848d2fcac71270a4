"""Turning a Redis URL and its options into what ``redis.Redis.from_url`` needs.

Query parameters and keyword arguments are merged, keywords winning (as ``open_storage`` does;
``RedisStorage(url, ...)`` behaves the same). redis-py would let the URL win instead, and passes a query parameter it does not
know straight to the connection, where it fails only at the first command. So the query is
taken off the URL here, every option is checked by name against what redis-py's connection
classes accept (an unknown one is a :class:`~sessionkit.ConfigError` naming it, at open time),
text values are typed with redis-py's own URL parsers, and the result goes in as keywords.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import redis.connection

from sessionkit import ConfigError

__all__ = [
    "DEFAULT_PREFIX",
    "OWN_OPTIONS",
    "TIMEOUT_DEFAULTS",
    "check_prefix",
    "connection_options",
]

DEFAULT_PREFIX = "sessionkit:"

#: The storage's own options, which may come in the URL's query but are not redis-py's.
OWN_OPTIONS = frozenset({"prefix"})

#: Seconds; redis-py waits forever by default, so an unreachable or stalled server would hang
#: a request instead of failing it with a StorageError. Either can be overridden.
TIMEOUT_DEFAULTS: Mapping[str, float] = {"socket_connect_timeout": 5.0, "socket_timeout": 5.0}

# Options that would break a bytes-in, bytes-out storage.
_REFUSED = {
    "decode_responses": "the storage keeps bytes; decoded responses would corrupt them",
    "connection_class": "chosen by the URL scheme (redis://, rediss://, unix://)",
}

#: redis-py's own typing of URL query values, by option name.
_PARSERS = cast(Mapping[str, Callable[[str], Any]], redis.connection.URL_QUERY_ARGUMENT_PARSERS)

_CONNECTION_CLASSES: Mapping[str, type[Any]] = {
    "redis": redis.connection.Connection,
    "rediss": redis.connection.SSLConnection,
    "unix": redis.connection.UnixDomainSocketConnection,
}


def check_prefix(prefix: object) -> str:
    """Return ``prefix`` if it can namespace keys; an empty one would make ``reset`` a FLUSHDB."""
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError("prefix", f"must be a non-empty string, got {prefix!r}")
    return prefix


def _accepted(connection_class: type[Any]) -> frozenset[str]:
    """Every named keyword the connection class (through its bases) or its pool accepts."""
    names = set(_PARSERS)
    for klass in connection_class.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                names.add(param.name)
    return frozenset(names - {"self", *_REFUSED})


def connection_options(
    url: str, options: Mapping[str, Any]
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Return ``(url without its query, keywords for from_url, own options from the query)``.

    ``options`` are keyword arguments for the driver; they override the URL's query. A ``db``
    option beats the URL path, as it does in redis-py's own URLs.
    """
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    for name in names:
        if names.count(name) > 1:  # as open_storage refuses it: which one was meant?
            raise ConfigError(name, "appears more than once in the storage URL; give it once")
    query = dict(pairs)
    own = {name: query.pop(name) for name in OWN_OPTIONS & set(query)}
    connection_class = _CONNECTION_CLASSES.get(parts.scheme.lower())
    if connection_class is None:
        raise ConfigError("storage", f"not a redis://, rediss:// or unix:// URL: {parts.scheme}://")
    accepted = _accepted(connection_class)
    kwargs: dict[str, Any] = dict(TIMEOUT_DEFAULTS)
    for name, value in {**query, **options}.items():
        if name in _REFUSED:
            raise ConfigError(name, _REFUSED[name])
        if name not in accepted:
            close = difflib.get_close_matches(name, sorted(accepted | OWN_OPTIONS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(name, f"unknown option for the redis storage{hint}")
        parser = _PARSERS.get(name)
        if parser is not None and isinstance(value, str):
            try:
                value = parser(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(name, f"invalid value {value!r}") from exc
        kwargs[name] = value
    driver_url = url.split("#", 1)[0].split("?", 1)[0]
    if "db" in kwargs and parts.scheme.lower() != "unix":
        driver_url = f"{parts.scheme}://{parts.netloc}"  # the path's db would override it
    return driver_url, kwargs, own
