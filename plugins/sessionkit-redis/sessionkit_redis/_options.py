"""Turning a Redis URL and its options into what the clients need (a :class:`Target`).

The URL forms (``valkey`` may stand for ``redis`` in every scheme, ``valkeys`` for ``rediss``)::

    redis://[user:password@]host[:port][/db]            one server; rediss:// over TLS
    unix://[user:password@]/path/redis.sock[?db=N]      one server on a Unix socket
    redis+cluster://[user:password@]h1[:p1],h2[:p2][/]  a Redis Cluster, from any of its nodes
    redis+sentinel://[user:password@]s1[:p1],s2[:p2]/SERVICE[/db]
                                                        the primary the Sentinels name SERVICE

A cluster's default port is 6379, a Sentinel's 26379. Credentials in the URL are the data
nodes'; a Sentinel's are options of their own (``sentinel_password``, ``sentinel_username``).

Query parameters and keyword arguments are merged, keywords winning (as ``open_storage`` does;
``RedisStorage(url, ...)`` behaves the same). redis-py would let the URL win instead, and passes a query parameter it does not
know straight to the connection, where it fails only at the first command. So the query is
taken off the URL here, every option is checked by name against what redis-py's connection
classes accept (for a cluster, what both its sync and its asyncio cluster clients accept; for
Sentinel, the data connections' options as they are and the Sentinels' own with a
``sentinel_`` prefix), an unknown one is a :class:`~sessionkit.ConfigError` naming it (and the
nearest known name) at open time, text values are typed with redis-py's own URL parsers, and
the result goes in as keywords.

Values are checked too, for the options whose bad values redis-py takes silently and fails
on only at the first command (or never): timeouts, the database number (the URL's path
included: redis-py ignores a path that is no number), ``protocol``, ``ssl_cert_reqs``,
``client_name``, ``max_connections``, and the yes/no options (redis-py reads any word it does
not know as yes). A database number beyond the server's count (16 by
default) cannot be known without asking the server, so it fails at the first command.

:class:`RedisURLOptions` declares the options for the core (``Backend(options=...)``): the
storage's own, and as its :func:`driver_options` every name some kind of Redis URL takes, typed
and checked here. Opened by URL, the core reads the query once, and :func:`typed_target` checks
the names against the kind of URL (a cluster takes fewer) without reading the query again;
:func:`parse_url` reads the query the same way for a storage made directly.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeGuard, cast
from urllib.parse import unquote, urlsplit

import attrs
import redis.asyncio.cluster
import redis.cluster
import redis.connection

from sessionkit import ConfigError
from sessionkit.storage import driver_options, parse_options, query_options, read_with

__all__ = [
    "CLUSTER_NO_WAIT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_PREFIX",
    "MAX_SECONDS",
    "OWN_OPTIONS",
    "SENTINEL_TIMEOUT_DEFAULTS",
    "TIMEOUT_DEFAULTS",
    "WAIT_TIMEOUT_DEFAULT",
    "CacheSettings",
    "RedisURLOptions",
    "Target",
    "cache_options",
    "check_prefix",
    "parse_url",
    "typed_target",
    "wait_options",
]

DEFAULT_PREFIX = "sessionkit:"

#: The storage's own options, which may come in the URL's query but are not redis-py's:
#: the key prefix, the replicas every write waits for (``WAIT``) and how long, and the
#: client-side cache (see ``_cache``) with its bounds.
_WAIT_OPTIONS = frozenset({"wait_replicas", "wait_timeout"})
_CACHE_OPTIONS = frozenset({"client_cache", "client_cache_max_entries", "client_cache_max_bytes"})
OWN_OPTIONS = frozenset({"prefix"}) | _WAIT_OPTIONS | _CACHE_OPTIONS


@dataclasses.dataclass(frozen=True)
class CacheSettings:
    """The bounds of a storage's client-side cache (``client_cache=true``).

    Why these defaults: 10,000 sessions are the active users of a busy worker for minutes,
    and 32 MiB caps it whatever their size (a session may be up to ``max_size``, 64 KiB),
    well under a worker's own footprint. Past either bound the least recently read goes.
    """

    max_entries: int = 10_000
    max_bytes: int = 32 * 2**20


CACHE_ONE_SERVER = (
    "available for one server (redis://, rediss://, unix://) only: on a Redis Cluster "
    "each node tracks its own keys, and behind Sentinel a failover would leave the cache "
    "listening to the demoted primary"
)
_MAX_CACHE_ENTRIES = 10_000_000
_MAX_CACHE_BYTES = 2**40

#: Seconds a write waits for ``wait_replicas`` replicas to acknowledge it, by default.
WAIT_TIMEOUT_DEFAULT = 1.0
CLUSTER_NO_WAIT = (
    "not available with Redis Cluster: WAIT must follow each write on the connection that "
    "made it, which redis-py's cluster clients do not promise across redirections"
)
_MAX_REPLICAS = 1000

#: Seconds. A Sentinel answers from memory, so half a second is long; a Sentinel that does not
#: answer is skipped for the next one, each costing at most its own timeouts.
SENTINEL_TIMEOUT_DEFAULTS: Mapping[str, float] = {
    "socket_connect_timeout": 0.5,
    "socket_timeout": 0.5,
}
#: Seconds between two questions to the Sentinels about which server is the primary (see
#: ``sentinel_check_interval``).
SENTINEL_CHECK_DEFAULT = 1.0
_SENTINEL_PORT = 26379
_REDIS_PORT = 6379

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
    "connection_class": "chosen by the URL scheme (redis://, rediss://, unix://, ...)",
    "timeout": "ambiguous: give pool_timeout (the wait for a free connection) or socket_timeout",
    "connection_pool": "the storage makes its own pool; pass client= to bring yours",
}

#: redis-py's own typing of URL query values, by option name.
_PARSERS: Mapping[str, Callable[[str], Any]] = {
    # redis-py parses these three itself from 8.0; before, a URL's "protocol=3" reached the
    # connection as the string "3", which the checks below rightly refuse.
    "protocol": int,
    "socket_read_size": int,
    "ssl_min_version": int,
    **cast(Mapping[str, Callable[[str], Any]], redis.connection.URL_QUERY_ARGUMENT_PARSERS),
    "pool_timeout": float,
    "health_check_interval": float,  # redis-py's int() refuses "0.5", which it would take
}

_CONNECTION_CLASSES: Mapping[str, type] = {
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


@functools.cache
def _accepted(connection_class: type) -> frozenset[str]:
    """Every named keyword the connection class (through its bases) or its pool accepts.

    Read once per class (``inspect.signature`` over the class's bases took most of the 0.46 ms
    a storage's construction cost)."""
    names = set(_PARSERS) | {"max_connections", "pool_timeout"}
    for klass in connection_class.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                names.add(param.name)
    return frozenset(names - {"self", *_REFUSED})


# -- the storage's own options and the Sentinels' ----------------------------------------------


def _replicas(value: object) -> str | None:
    if not _is_int(value) or not 0 <= value <= _MAX_REPLICAS:
        return (
            f"must be a number of replicas from 0 (do not wait) to {_MAX_REPLICAS}, got {value!r}"
        )
    return None


def _count(value: object) -> str | None:
    if not _is_int(value) or not 0 <= value <= _MAX_REPLICAS:
        return f"must be a whole number from 0 to {_MAX_REPLICAS}, got {value!r}"
    return None


def _yes_no_value(value: object) -> str | None:
    return None if isinstance(value, bool) else f"expected yes or no, got {value!r}"


def _cache_entries(value: object) -> str | None:
    if not _is_int(value) or not 1 <= value <= _MAX_CACHE_ENTRIES:
        return f"must be a number of entries from 1 to {_MAX_CACHE_ENTRIES}, got {value!r}"
    return None


def _cache_bytes(value: object) -> str | None:
    if not _is_int(value) or not 1 <= value <= _MAX_CACHE_BYTES:
        return f"must be a number of bytes from 1 to {_MAX_CACHE_BYTES} (1 TiB), got {value!r}"
    return None


#: Options that are not a connection's: the storage's, and those of redis-py's ``Sentinel``.
_OWN_PARSERS: Mapping[str, Callable[[str], Any]] = {
    "wait_replicas": int,
    "wait_timeout": float,
    "sentinel_check_interval": float,
    "min_other_sentinels": int,
    "sentinel_ssl": redis.connection.to_bool,
    "client_cache": redis.connection.to_bool,
    "client_cache_max_entries": int,
    "client_cache_max_bytes": int,
}
_OWN_CHECKS: Mapping[str, Callable[[object], str | None]] = {
    "client_cache": _yes_no_value,
    "client_cache_max_entries": _cache_entries,
    "client_cache_max_bytes": _cache_bytes,
    "wait_replicas": _replicas,
    "wait_timeout": _positive_seconds,
    "sentinel_check_interval": _interval,
    "min_other_sentinels": _count,
    "sentinel_ssl": _yes_no_value,
}
_SENTINEL_OWN = frozenset({"sentinel_check_interval", "min_other_sentinels", "sentinel_ssl"})
#: Connection options that make no sense for a connection to a Sentinel.
_NOT_FOR_SENTINELS = frozenset({"db", "max_connections", "pool_timeout", "protocol"})


# -- URLs ----------------------------------------------------------------------------------------

Kind = Literal["single", "cluster", "sentinel"]

#: Base schemes and whether they mean TLS.
_TLS = {"redis": False, "valkey": False, "rediss": True, "valkeys": True}
_EXPECTED = (
    "expected redis://host:port/db, rediss://, valkey://, valkeys://, unix:///path.sock, "
    "redis+cluster://h1:p1,h2:p2 or redis+sentinel://s1:p1,s2:p2/service/db"
)


@dataclasses.dataclass(frozen=True)
class Target:
    """What a URL and its options ask for, checked: the kind of deployment and the keywords
    of its clients."""

    kind: Kind
    tls: bool
    #: One server: the URL redis-py's pool is built from (scheme, credentials, host; no query).
    driver_url: str = dataclasses.field(default="", repr=False)
    #: A cluster's startup nodes, or the Sentinels.
    hosts: tuple[tuple[str, int], ...] = ()
    #: The name the Sentinels know the primary by.
    service: str = ""
    #: Keywords of the data connections (the cluster client's, the ``master_for`` pool's).
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    #: Keywords of the connections to the Sentinels.
    sentinel_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    min_other_sentinels: int = 0
    sentinel_check_interval: float = SENTINEL_CHECK_DEFAULT
    prefix: str | None = None
    wait_replicas: int = 0
    wait_timeout: float = WAIT_TIMEOUT_DEFAULT
    #: The client-side cache's bounds, or ``None``: no cache (``client_cache`` off).
    cache: CacheSettings | None = None


def _split(url: str) -> tuple[str, str, str, str, str]:
    """``(base scheme, mode, netloc, path, query)`` of a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:  # its message may quote the netloc, password and all
        raise ConfigError(
            "storage", "not a usable redis URL: it cannot be parsed (an unclosed '[' ?)"
        ) from None
    if not url[len(parts.scheme) + 1 :].startswith("//"):
        raise ConfigError("storage", _EXPECTED)
    base, _, mode = parts.scheme.lower().partition("+")
    known = base in _TLS and mode in ("", "cluster", "sentinel")
    if not known and not (base == "unix" and not mode):
        raise ConfigError("storage", f"not a Redis URL: {parts.scheme}://; {_EXPECTED}")
    return base, mode, parts.netloc, parts.path, parts.query


def _typed(name: str, value: Any, base: str | None = None) -> Any:
    """``value`` parsed (from text) and checked for option ``name``, whose value is checked as
    option ``base`` of a connection (``sentinel_socket_timeout`` as ``socket_timeout``)."""
    base = name if base is None else base
    parser = _OWN_PARSERS.get(name) or _PARSERS.get(base)
    if parser is redis.connection.to_bool:
        _check_yes_no(name, value)
    if parser is not None and isinstance(value, str):
        try:
            value = parser(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(name, f"invalid value {value!r}") from exc
    check = _OWN_CHECKS.get(name) or _VALUE_CHECKS.get(base)
    problem = None if check is None else check(value)
    if problem is not None:
        raise ConfigError(name, problem)
    return value


def _unknown(name: str, accepted: frozenset[str], what: str) -> ConfigError:
    close = difflib.get_close_matches(name, sorted(accepted), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(name, f"unknown option for {what}{hint}")


def _checked(
    given: Mapping[str, Any],
    accepted: frozenset[str],
    refused: Mapping[str, str],
    what: str,
) -> dict[str, Any]:
    """Every option of ``given`` typed and checked, or a ConfigError naming the first bad one."""
    checked: dict[str, Any] = {}
    for name, value in given.items():
        if name in refused:
            raise ConfigError(name, refused[name])
        if name not in accepted:
            raise _unknown(name, accepted, what)
        base = name.removeprefix("sentinel_") if name.startswith("sentinel_") else name
        checked[name] = _typed(name, value, base)
    return checked


def _hosts(
    netloc: str, default_port: int
) -> tuple[str | None, str | None, tuple[tuple[str, int], ...]]:
    """``(username, password, ((host, port), ...))`` of ``[user:password@]h1[:p1],h2[:p2]``.

    Errors quote the host list only, never the credentials before it.
    """
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    if not hostlist:
        raise ConfigError("storage", "the URL names no host: give host:port[,host:port...]")
    hosts = []
    for entry in hostlist.split(","):
        hosts.append(_host(entry, hostlist, default_port))
    return username, password, tuple(hosts)


def _host(entry: str, hostlist: str, default_port: int) -> tuple[str, int]:
    if entry.startswith("["):  # [IPv6]:port
        host, closed, rest = entry[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ConfigError(
                "storage", f"not host[:port] in the host list {hostlist!r}: {entry!r}"
            )
        port_text = rest[1:]
    else:
        host, _, port_text = entry.partition(":")
    if not host or ":" in port_text:
        raise ConfigError("storage", f"not host[:port] in the host list {hostlist!r}: {entry!r}")
    if not port_text:
        return unquote(host), default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError("storage", f"not a port number in the host list {hostlist!r}: {entry!r}")
    return unquote(host), int(port_text)


def _split_own(given: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """Take the options named ``names`` out of ``given``, typed and checked."""
    return {name: _typed(name, given.pop(name)) for name in names & set(given)}


def wait_options(given: dict[str, Any]) -> tuple[int, float]:
    """Take ``wait_replicas`` and ``wait_timeout`` out of ``given`` (keywords beside clients
    passed in): ``(replicas, seconds)``, checked."""
    wait = _split_own(given, _WAIT_OPTIONS)
    return wait.get("wait_replicas", 0), wait.get("wait_timeout", WAIT_TIMEOUT_DEFAULT)


def cache_options(given: dict[str, Any]) -> CacheSettings | None:
    """Take the ``client_cache`` options out of ``given``: the cache's bounds, or ``None`` when
    it is off. A bound given without ``client_cache=true`` is refused, since it would be
    taken for a cache that is not there."""
    cache = _split_own(given, _CACHE_OPTIONS)
    if not cache.pop("client_cache", False):
        if cache:
            raise ConfigError(min(cache), "sets a bound of the cache: give client_cache=true too")
        return None
    default = CacheSettings()
    return CacheSettings(
        max_entries=cache.get("client_cache_max_entries", default.max_entries),
        max_bytes=cache.get("client_cache_max_bytes", default.max_bytes),
    )


def parse_url(url: str, options: Mapping[str, Any]) -> Target:
    """Check ``url`` and ``options`` (keywords, which override the URL's query) and return
    what they ask for. A ``db`` option beats the URL path, as it does in redis-py's URLs."""
    # As open_storage reads them: a name given twice refused (which one was meant?).
    given = {**query_options(_split(url)[4]), **options}
    return typed_target(url, parse_options(RedisURLOptions, given, backend="redis"))


def typed_target(url: str, options: Mapping[str, Any]) -> Target:
    """What ``url`` asks for with ``options`` already read against :class:`RedisURLOptions`
    (by the core, or :func:`parse_url`); the URL's query is not read."""
    base, mode, netloc, path, _ = _split(url)
    given = {name: value for name, value in options.items() if name != "driver"}
    given.update(options.get("driver", {}))
    prefix = given.pop("prefix", None)
    replicas, wait_timeout = wait_options(given)
    cache = cache_options(given)
    if mode == "cluster":
        target = _cluster(base, netloc, path, given)
    elif mode == "sentinel":
        target = _sentinel(base, netloc, path, given)
    else:
        target = _single(base, url, netloc, path, given)
    socket_timeout = target.kwargs.get("socket_timeout", TIMEOUT_DEFAULTS["socket_timeout"])
    if replicas and wait_timeout >= socket_timeout:
        raise ConfigError(
            "wait_timeout",
            f"must be shorter than socket_timeout ({socket_timeout:g} s), which bounds the wait "
            f"for WAIT's reply; got {wait_timeout:g}",
        )
    if replicas and target.kind == "cluster":
        raise ConfigError("wait_replicas", CLUSTER_NO_WAIT)
    if cache is not None and target.kind != "single":
        raise ConfigError("client_cache", CACHE_ONE_SERVER)
    return dataclasses.replace(
        target, prefix=prefix, wait_replicas=replicas, wait_timeout=wait_timeout, cache=cache
    )


def _single(base: str, url: str, netloc: str, path: str, given: Mapping[str, Any]) -> Target:
    """``redis://``, ``rediss://``, ``valkey://``, ``valkeys://`` and ``unix://``."""
    connection_class = _CONNECTION_CLASSES["unix" if base == "unix" else _scheme(base)]
    accepted = _accepted(connection_class)
    kwargs: dict[str, Any] = {**TIMEOUT_DEFAULTS, "max_connections": DEFAULT_MAX_CONNECTIONS}
    kwargs.update(_checked(given, accepted | OWN_OPTIONS, _REFUSED, "the redis storage"))
    if base == "unix":
        driver_url = url.split("#", 1)[0].split("?", 1)[0]
        return Target("single", False, driver_url=driver_url, kwargs=kwargs)
    path_db = _path_db(path)  # checked even when a db option overrides it
    if path_db is not None:
        kwargs.setdefault("db", path_db)
    # redis-py would read the path again, and knows no valkey:// scheme.
    driver_url = f"{_scheme(base)}://{netloc}"
    return Target("single", _TLS[base], driver_url=driver_url, kwargs=kwargs)


def _scheme(base: str) -> str:
    """The redis-py scheme of a base scheme: ``valkey`` is ``redis``, ``valkeys`` ``rediss``."""
    return "rediss" if _TLS[base] else "redis"


def _credentials(username: str | None, password: str | None) -> dict[str, Any]:
    found = {"username": username, "password": password}
    return {name: value for name, value in found.items() if value is not None}


# -- Redis Cluster -------------------------------------------------------------------------------

_CLUSTER_REFUSED: Mapping[str, str] = {
    **_REFUSED,
    "read_from_replicas": "replicas lag behind their primary: a session read there may miss "
    "the write its own previous request made",
    "load_balancing_strategy": "it sends reads to replicas, which lag behind their primary",
    "pool_timeout": "redis-py's cluster clients do not wait for a free connection: past "
    "max_connections (per node) a call fails at once",
    "startup_nodes": "the URL's host list names them",
    "host": "the URL's host list names the nodes",
    "port": "the URL's host list names the nodes",
    "url": "give the nodes in the storage URL",
    "path": "a Redis Cluster is reached over TCP",
    "ssl": "chosen by the URL scheme (rediss+cluster:// for TLS)",
}


@functools.cache
def _cluster_accepted(tls: bool) -> frozenset[str]:
    """Options both redis-py cluster clients take (sync and asyncio: the storage makes both)."""
    sync = _accepted(_CONNECTION_CLASSES["rediss" if tls else "redis"])
    sync |= _params(redis.cluster.RedisCluster.__init__)
    both = sync & (_params(redis.asyncio.cluster.RedisCluster.__init__) | {"max_connections"})
    return frozenset(both - set(_CLUSTER_REFUSED))


def _params(function: Callable[..., Any]) -> set[str]:
    parameters = inspect.signature(function).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {param.name for param in parameters if param.kind in kinds} - {"self"}


def _cluster(base: str, netloc: str, path: str, given: dict[str, Any]) -> Target:
    """``redis+cluster://[user:password@]h1[:p1],h2[:p2][/]``: the nodes to start from."""
    tls = _TLS[base]
    username, password, hosts = _hosts(netloc, _REDIS_PORT)
    path_db = _path_db(path)
    db = _typed("db", given.pop("db")) if "db" in given else path_db
    if db or path_db:
        raise ConfigError(
            "db", f"a Redis Cluster has only database 0; drop the path /{db or path_db} (or db=)"
        )
    accepted = _cluster_accepted(tls) | OWN_OPTIONS
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": TIMEOUT_DEFAULTS["socket_connect_timeout"],
        "socket_timeout": TIMEOUT_DEFAULTS["socket_timeout"],
        "max_connections": DEFAULT_MAX_CONNECTIONS,
        **_credentials(username, password),
    }
    kwargs.update(_checked(given, accepted, _CLUSTER_REFUSED, "a Redis Cluster URL"))
    return Target("cluster", tls, hosts=hosts, kwargs=kwargs)


# -- Sentinel ------------------------------------------------------------------------------------

_SENTINEL_PATH = re.compile(r"/([^/]+)(?:/([^/]*))?/?")


def _service_and_db(path: str) -> tuple[str, int | None]:
    match = _SENTINEL_PATH.fullmatch(path)
    if match is None:
        raise ConfigError(
            "service",
            "a Sentinel URL names the service in its path: "
            "redis+sentinel://host:26379/SERVICE or /SERVICE/DB",
        )
    service = unquote(match.group(1))
    db = match.group(2)
    if not db:
        return service, None
    return service, _path_db(f"/{db}")


def _sentinel(base: str, netloc: str, path: str, given: dict[str, Any]) -> Target:
    """``redis+sentinel://[user:password@]s1[:p1],s2[:p2]/SERVICE[/db]``.

    The URL's credentials and options are the data connections'; the Sentinels' are options
    starting ``sentinel_``. ``rediss+sentinel`` speaks TLS to both, unless
    ``sentinel_ssl=false``; the Sentinels' TLS settings are the data connections' unless
    given as ``sentinel_ssl_...`` options.
    """
    tls = _TLS[base]
    username, password, hosts = _hosts(netloc, _SENTINEL_PORT)
    service, path_db = _service_and_db(path)
    own = _split_own(given, _SENTINEL_OWN)
    sentinel_tls: bool = own.get("sentinel_ssl", tls)
    data_accepted = _accepted(_CONNECTION_CLASSES["rediss" if tls else "redis"])
    for_sentinels = _accepted(_CONNECTION_CLASSES["rediss" if sentinel_tls else "redis"])
    sentinel_accepted = {f"sentinel_{name}" for name in for_sentinels - _NOT_FOR_SENTINELS}
    accepted = data_accepted | frozenset(sentinel_accepted) | _SENTINEL_OWN | OWN_OPTIONS
    checked = _checked(given, accepted, _REFUSED, "a Sentinel URL")
    kwargs: dict[str, Any] = {
        **TIMEOUT_DEFAULTS,
        "max_connections": DEFAULT_MAX_CONNECTIONS,
        **_credentials(username, password),
        **{name: value for name, value in checked.items() if name not in sentinel_accepted},
    }
    if path_db is not None:
        kwargs.setdefault("db", path_db)
    if tls:
        kwargs["ssl"] = True  # redis-py's SentinelConnectionPool picks its TLS connections
    sentinel_kwargs: dict[str, Any] = dict(SENTINEL_TIMEOUT_DEFAULTS)
    if sentinel_tls:
        sentinel_kwargs["ssl"] = True
        inherited = {name: value for name, value in kwargs.items() if name.startswith("ssl_")}
        sentinel_kwargs.update(inherited)
    for name, value in checked.items():
        if name in sentinel_accepted:
            sentinel_kwargs[name.removeprefix("sentinel_")] = value
    return Target(
        "sentinel",
        tls,
        hosts=hosts,
        service=service,
        kwargs=kwargs,
        sentinel_kwargs=sentinel_kwargs,
        min_other_sentinels=own.get("min_other_sentinels", 0),
        sentinel_check_interval=own.get("sentinel_check_interval", SENTINEL_CHECK_DEFAULT),
    )


# -- the options, declared for the core ----------------------------------------------------------


@functools.cache
def _every_name() -> frozenset[str]:
    """Every option name some kind of Redis URL takes (or refuses with its own reason): each
    kind checks its own when the URL is read (:func:`typed_target`)."""
    single = {_accepted(connection_class) for connection_class in _CONNECTION_CLASSES.values()}
    cluster = _cluster_accepted(False) | _cluster_accepted(True) | set(_CLUSTER_REFUSED)
    both = _accepted(_CONNECTION_CLASSES["redis"]) | _accepted(_CONNECTION_CLASSES["rediss"])
    sentinel = {f"sentinel_{name}" for name in both - _NOT_FOR_SENTINELS} | _SENTINEL_OWN
    return frozenset().union(*single, cluster, sentinel) - set(_REFUSED)


def _driver_value(name: str, value: Any) -> Any:
    return _typed(name, value, name.removeprefix("sentinel_"))


def _own(name: str, value: Any) -> Any:
    return check_prefix(value) if name == "prefix" else _typed(name, value)


@attrs.frozen
class RedisURLOptions:
    """What a Redis URL's query (or ``open_storage``'s keywords) may give: the storage's own
    options (:data:`OWN_OPTIONS`) and redis-py's, passed to its clients (a Sentinel's with a
    ``sentinel_`` prefix). Each is given or absent: the defaults are the storage's."""

    prefix: str | None = attrs.field(default=None, metadata=read_with(_own))
    wait_replicas: int | None = attrs.field(default=None, metadata=read_with(_own))
    wait_timeout: float | None = attrs.field(default=None, metadata=read_with(_own))
    client_cache: bool | None = attrs.field(default=None, metadata=read_with(_own))
    client_cache_max_entries: int | None = attrs.field(default=None, metadata=read_with(_own))
    client_cache_max_bytes: int | None = attrs.field(default=None, metadata=read_with(_own))
    driver: Mapping[str, Any] = driver_options(
        _every_name, _driver_value, refused=_REFUSED, what="a redis-py connection option"
    )
