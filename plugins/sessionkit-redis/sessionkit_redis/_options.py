"""Turning a Redis URL and its options into what ``redis.Redis.from_url`` needs.

Query parameters and keyword arguments are merged, keywords winning (as ``open_storage`` does;
``RedisStorage(url, ...)`` behaves the same). redis-py would let the URL win instead, and passes a query parameter it does not
know straight to the connection, where it fails only at the first command. So the query is
taken off the URL here, every option is checked by name against what redis-py's connection
classes accept (an unknown one is a :class:`~sessionkit.ConfigError` naming it, at open time),
text values are typed with redis-py's own URL parsers, and the result goes in as keywords.

Values are checked too, for the options whose bad values redis-py takes silently and fails
on only at the first command (or never): timeouts, the database number (the URL's path
included: redis-py ignores a path that is no number), ``protocol``, ``ssl_cert_reqs``,
``client_name``, ``max_connections``, and the yes/no options (redis-py reads any word it does
not know as yes). A database number beyond the server's count (16 by
default) cannot be known without asking the server, so it fails at the first command.
"""

from __future__ import annotations

import difflib
import inspect
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.connection

from sessionkit import ConfigError

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_PREFIX",
    "MAX_SECONDS",
    "OWN_OPTIONS",
    "TIMEOUT_DEFAULTS",
    "check_prefix",
    "connection_options",
]

DEFAULT_PREFIX = "sessionkit:"

#: The storage's own options, which may come in the URL's query but are not redis-py's.
OWN_OPTIONS = frozenset({"prefix"})

#: Seconds. redis-py waits forever by default, so an unreachable or stalled server would hang
#: a request instead of failing it with a StorageError. Every storage call is bounded by the
#: wait for a free connection (``pool_timeout``, only when all are busy) plus one exchange
#: (``socket_timeout`` for the reply, ``socket_connect_timeout`` to reconnect): 2 + 3 = 5 s.
#: Nothing multiplies it: a pool's connections get redis-py's connection default of no
#: retries (the client's default of ten retries applies only to a pool the client makes
#: itself), and the lane's one more try is on a connection error only, which is immediate.
#: Each can be overridden.
TIMEOUT_DEFAULTS: Mapping[str, float] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 3.0,
    "pool_timeout": 2.0,
}

#: Connections per pool (one pool for sync calls, one per event loop for async calls). Past
#: it a call waits, up to ``pool_timeout``, for one to come free. Why 64: Redis serves one
#: command at a time, so a few dozen connections already keep it busy, and more only queue
#: at the server instead of here; while 64 per pool stays far below a server's ``maxclients``
#: (10,000 by default) for dozens of workers, and below a worker's descriptor limit (often
#: 1,024) next to the clients' own sockets. A call waits microseconds at 500 in flight.
DEFAULT_MAX_CONNECTIONS = 64

#: The largest number of seconds any timeout option takes: a day. Larger values mean "never"
#: in practice, and very large ones overflow the socket layer at the first command.
MAX_SECONDS = 86_400.0
MAX_POOL = 100_000
_MAX_INT32 = 2**31 - 1

# Options that would break a bytes-in, bytes-out storage.
_REFUSED = {
    "decode_responses": "the storage keeps bytes; decoded responses would corrupt them",
    "connection_class": "chosen by the URL scheme (redis://, rediss://, unix://)",
    "timeout": "ambiguous: give pool_timeout (the wait for a free connection) or socket_timeout",
    "connection_pool": "the storage makes its own pool; pass client= to bring yours",
}

#: redis-py's own typing of URL query values, by option name.
_PARSERS: Mapping[str, Callable[[str], Any]] = {
    **cast(Mapping[str, Callable[[str], Any]], redis.connection.URL_QUERY_ARGUMENT_PARSERS),
    "pool_timeout": float,
    "health_check_interval": float,  # redis-py's int() refuses "0.5", which it would take
}

_CONNECTION_CLASSES: Mapping[str, type[Any]] = {
    "redis": redis.connection.Connection,
    "rediss": redis.connection.SSLConnection,
    "unix": redis.connection.UnixDomainSocketConnection,
}


_DB_PATH = re.compile(r"/([0-9]+)/?")  # redis-py takes a trailing slash too
_CERT_REQS = frozenset({"none", "optional", "required"})


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_seconds(value: object) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= MAX_SECONDS  # NaN and infinity fail this too
    ):
        return f"must be a positive number of seconds, at most {MAX_SECONDS:.0f}, got {value!r}"
    return None


def _interval(value: object) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= MAX_SECONDS
    ):
        return f"must be a number of seconds from 0 (off) to {MAX_SECONDS:.0f}, got {value!r}"
    return None


def _read_size(value: object) -> str | None:
    if not _is_int(value) or not 1 <= value <= 2**26:
        return f"must be a number of bytes from 1 to {2**26} (64 MiB), got {value!r}"
    return None


def _tls_version(value: object) -> str | None:
    if value is None or (_is_int(value) and value in {v.value for v in ssl.TLSVersion}):
        return None
    known = ", ".join(f"{v.value} ({v.name})" for v in ssl.TLSVersion)
    return f"must be an ssl.TLSVersion value ({known}), got {value!r}"


def _db_number(value: object) -> str | None:
    if not _is_int(value) or not 0 <= value <= _MAX_INT32:
        return f"must be a database number (an int from 0 to {_MAX_INT32}), got {value!r}"
    return None


def _protocol(value: object) -> str | None:
    if not _is_int(value) or value not in (2, 3):
        return f"must be 2 (RESP2) or 3 (RESP3), got {value!r}"
    return None


def _cert_reqs(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value in _CERT_REQS):
        return None
    if _is_int(value) and value in (ssl.CERT_NONE, ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED):
        return None  # an ssl.VerifyMode
    return f"must be one of 'none', 'optional', 'required', got {value!r}"


def _client_name(value: object) -> str | None:
    # The server's CLIENT SETNAME takes printable ASCII without spaces, and nothing else.
    if value is None or (isinstance(value, str) and all("!" <= c <= "~" for c in value)):
        return None
    return f"must be printable ASCII without spaces (as CLIENT SETNAME takes), got {value!r}"


def _max_connections(value: object) -> str | None:
    if not _is_int(value) or not 1 <= value <= MAX_POOL:
        return f"must be an int from 1 to {MAX_POOL}, got {value!r}"
    return None


#: Checks of values (after parsing) by option name: each returns what is wrong, or None.
_VALUE_CHECKS: Mapping[str, Callable[[object], str | None]] = {
    "socket_timeout": _positive_seconds,
    "socket_connect_timeout": _positive_seconds,
    "pool_timeout": _positive_seconds,
    "health_check_interval": _interval,
    "socket_read_size": _read_size,
    "ssl_min_version": _tls_version,
    "db": _db_number,
    "protocol": _protocol,
    "ssl_cert_reqs": _cert_reqs,
    "client_name": _client_name,
    "max_connections": _max_connections,
}


def _path_db(path: str) -> int | None:
    """The database number of a ``redis://`` or ``rediss://`` URL's path (``None``: none)."""
    path = unquote(path)
    if path in ("", "/"):
        return None
    match = _DB_PATH.fullmatch(path)
    if match is None:
        raise ConfigError(
            "db", f"the URL's path must be a database number (/0, /1, ...), got {path!r}"
        )
    return int(match.group(1))


#: The words redis-py's ``to_bool`` reads as yes and as no (any case); it reads every other
#: text as yes, so ``retry_on_timeout=maybe`` or a typo would turn an option on unnoticed.
_YES_NO = frozenset({"1", "t", "true", "y", "yes", "0", "f", "false", "n", "no"})


def _check_yes_no(name: str, value: object) -> None:
    if isinstance(value, bool) or (isinstance(value, str) and value.lower() in _YES_NO):
        return
    raise ConfigError(name, f"expected yes or no (true, false, 1, 0, ...), got {value!r}")


def check_prefix(prefix: object) -> str:
    """Return ``prefix`` if it can namespace keys; an empty one would make ``reset`` a FLUSHDB."""
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError("prefix", f"must be a non-empty string, got {prefix!r}")
    return prefix


def _accepted(connection_class: type[Any]) -> frozenset[str]:
    """Every named keyword the connection class (through its bases) or its pool accepts."""
    names = set(_PARSERS) | {"max_connections", "pool_timeout"}
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
    try:
        parts = urlsplit(url)
    except ValueError:  # its message may quote the netloc, password and all
        raise ConfigError(
            "storage", "not a usable redis URL: it cannot be parsed (an unclosed '[' ?)"
        ) from None
    if not url[len(parts.scheme) + 1 :].startswith("//"):
        raise ConfigError(
            "storage", "expected redis://host:port/db, rediss://host:port/db or unix:///path.sock"
        )
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
    kwargs: dict[str, Any] = {**TIMEOUT_DEFAULTS, "max_connections": DEFAULT_MAX_CONNECTIONS}
    for name, value in {**query, **options}.items():
        if name in _REFUSED:
            raise ConfigError(name, _REFUSED[name])
        if name not in accepted:
            close = difflib.get_close_matches(name, sorted(accepted | OWN_OPTIONS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(name, f"unknown option for the redis storage{hint}")
        parser = _PARSERS.get(name)
        if parser is redis.connection.to_bool:
            _check_yes_no(name, value)
        if parser is not None and isinstance(value, str):
            try:
                value = parser(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(name, f"invalid value {value!r}") from exc
        check = _VALUE_CHECKS.get(name)
        problem = None if check is None else check(value)
        if problem is not None:
            raise ConfigError(name, problem)
        kwargs[name] = value
    driver_url = url.split("#", 1)[0].split("?", 1)[0]
    if parts.scheme.lower() != "unix":
        path_db = _path_db(parts.path)  # checked even when a db option overrides it
        if path_db is not None:
            kwargs.setdefault("db", path_db)
        driver_url = f"{parts.scheme}://{parts.netloc}"  # redis-py would read the path again
    return driver_url, kwargs, own
