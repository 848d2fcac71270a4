"""What a MySQL storage is opened with, read from a ``mysql://`` or ``mariadb://`` URL and options.

Everything is checked here, before any connection is made, so a misconfigured deployment fails
at start-up with a :class:`~sessionkit.ConfigError` naming the option, not at the first request.
An option the storage does not know is refused with the nearest known name; an option of the
driver that would change what the storage relies on (the character set, autocommit, the
session's SQL mode, the client flags) is refused with the reason. The TLS files are loaded here
too, so a missing certificate is a ``ConfigError`` naming ``ssl_ca`` (or ``ssl_cert``,
``ssl_key``).

The options are declared for the core (``Backend(options=...)``) by :data:`MySQLURLOptions`,
so ``open_storage`` reads the query once and :meth:`MySQLOptions.from_typed` builds the settings
from the URL's body and those typed options; :meth:`MySQLOptions.from_url` reads the query the
same way for a storage made directly.

This module imports neither PyMySQL nor aiomysql. No message it raises quotes the password.
"""

from __future__ import annotations

import getpass
import math
import os
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

import attrs

from sessionkit import ConfigError
from sessionkit.storage import driver_options, parse_options, query_options, read_with

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TABLE",
    "MAX_CONNECTIONS",
    "MAX_PURGE_BATCH",
    "MAX_SECONDS",
    "SCHEMES",
    "TIMEOUT_DEFAULTS",
    "MySQLOptions",
    "MySQLURLOptions",
]

#: The URL schemes the plugin serves; both speak the same protocol.
SCHEMES = ("mysql", "mariadb")
DEFAULT_PORT = 3306
#: Specific on purpose: the database is usually the application's own, where a table named
#: ``sessions`` may well exist already (Rails, many PHP apps) and hold something else.
DEFAULT_TABLE = "sessionkit_sessions"

#: Seconds. Each bounds one wait: ``connect_timeout`` the TCP (or socket) connect,
#: ``read_timeout`` each wait for a reply of the server (the handshake's included; for the
#: async client, each statement as a whole), ``write_timeout`` each send (sync client; the
#: async client's sends are buffered and never wait), ``pool_timeout`` the wait for a free
#: connection when ``max_connections`` are busy. A frozen server therefore fails a call after
#: ``read_timeout`` (3 s); see the documentation for the worst case.
TIMEOUT_DEFAULTS: Mapping[str, float] = {
    "connect_timeout": 2.0,
    "read_timeout": 3.0,
    "write_timeout": 3.0,
    "pool_timeout": 2.0,
}

#: The most any timeout takes: a day. Larger values mean "never" in practice.
MAX_SECONDS = 86_400.0
#: Connections per pool (one pool for the sync methods, one per event loop for the async ones).
MAX_CONNECTIONS = 10_000
#: The most rows one clean-up statement deletes.
MAX_PURGE_BATCH = 100_000

#: MySQL identifiers are at most 64 characters. The table name is the only text the storage
#: formats into SQL (always between backquotes), so it is held to this strict shape.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

#: Options of the drivers that the storage sets itself: changing them would break it.
_REFUSED: Mapping[str, str] = {
    "charset": "fixed by the storage (utf8mb4; keys and values travel as binary literals)",
    "collation": "fixed by the storage (keys are compared as bytes, case and all)",
    "autocommit": "fixed by the storage: every statement is its own transaction",
    "init_command": "the storage sets up each connection's session itself",
    "sql_mode": "the storage sets each connection's SQL mode itself",
    "client_flag": "the storage relies on the server's default affected-rows counts",
    "local_infile": "never enabled by the storage",
    "database": "name the database in the URL's path: mysql://host/database",
    "db": "name the database in the URL's path: mysql://host/database",
    "passwd": "give it as password (or in the URL: mysql://user:password@host/db)",
    "host": "give it in the URL: mysql://host:port/database",
    "port": "give it in the URL: mysql://host:port/database",
}

_YES = frozenset({"1", "true", "yes", "on"})
_NO = frozenset({"0", "false", "no", "off"})


def _seconds(name: str, value: object) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(name, f"expected a number of seconds, got {value!r}") from None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= MAX_SECONDS  # NaN and infinity fail this too
    ):
        raise ConfigError(
            name, f"must be a positive number of seconds, at most {MAX_SECONDS:.0f}, got {value!r}"
        )
    return float(value)


def _int_between(low: int, high: int) -> Callable[[str, object], int]:
    def convert(name: str, value: object) -> int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(name, f"expected a whole number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(name, f"must be a whole number from {low} to {high}, got {value!r}")
        return value

    return convert


def _yes_no(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _YES | _NO:
        return value.lower() in _YES
    raise ConfigError(name, f"expected true or false (also 1/0, yes/no, on/off), got {value!r}")


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ConfigError(name, f"must be a non-empty string, got {type(value).__name__}")
    return value


def _path(name: str, value: object) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _text(name, value)


def _table(name: str, value: object) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ConfigError(name, f"must match [A-Za-z_][A-Za-z0-9_]{{0,63}}, got {value!r}")
    return value


def _ssl(name: str, value: object) -> bool | ssl.SSLContext:
    if isinstance(value, ssl.SSLContext):
        return value
    return _yes_no(name, value)


#: Every option, and how its value (text from the URL, or a keyword's value) is read.
_CONVERTERS: Mapping[str, Callable[[str, object], object]] = {
    "table": _table,
    "user": _text,
    "password": lambda name, value: value if isinstance(value, str) else _text(name, value),
    "unix_socket": _path,
    "connect_timeout": _seconds,
    "read_timeout": _seconds,
    "write_timeout": _seconds,
    "pool_timeout": _seconds,
    "max_connections": _int_between(1, MAX_CONNECTIONS),
    "purge_batch": _int_between(1, MAX_PURGE_BATCH),
    "ssl": _ssl,
    "ssl_ca": _path,
    "ssl_cert": _path,
    "ssl_key": _path,
    "ssl_verify_cert": _yes_no,
    "ssl_verify_identity": _yes_no,
}

#: The options a URL's query (or ``open_storage``'s keywords) may give, each read by its
#: converter above; the drivers' own options are not passed on, and those the storage sets
#: itself are refused with the reason. Each is given or absent: the defaults are
#: :class:`MySQLOptions`'s.
MySQLURLOptions: type = attrs.make_class(
    "MySQLURLOptions",
    {
        **{
            name: attrs.field(default=None, metadata=read_with(read))
            for name, read in _CONVERTERS.items()
        },
        "driver": driver_options((), refused=_REFUSED),
    },
    frozen=True,
)
MySQLURLOptions.__module__ = __name__

#: The options that ask for TLS by themselves.
_TLS_FILES = ("ssl_ca", "ssl_cert", "ssl_key")


@attrs.frozen
class MySQLOptions:
    """The settings of one MySQL storage, checked.

    ``host`` is ``None`` when ``unix_socket`` names the server's socket. ``ssl_context`` is the
    TLS context both clients use, or ``None`` for plain connections. ``scheme`` is how the URL
    named the server (``mysql`` or ``mariadb``; they behave the same).
    """

    database: str
    user: str
    password: str = attrs.field(default="", repr=False)
    host: str | None = "localhost"
    port: int = DEFAULT_PORT
    unix_socket: str | None = None
    table: str = DEFAULT_TABLE
    connect_timeout: float = TIMEOUT_DEFAULTS["connect_timeout"]
    read_timeout: float = TIMEOUT_DEFAULTS["read_timeout"]
    write_timeout: float = TIMEOUT_DEFAULTS["write_timeout"]
    pool_timeout: float = TIMEOUT_DEFAULTS["pool_timeout"]
    max_connections: int = 16
    purge_batch: int = 256
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, repr=False)
    scheme: str = "mysql"

    @property
    def address(self) -> str:
        """Where the server is, for messages: ``user@host:port/database`` (no password)."""
        place = f"unix:{self.unix_socket}" if self.unix_socket else f"{self.host}:{self.port}"
        return f"{self.user}@{place}/{self.database}"

    @property
    def lock_wait_seconds(self) -> int:
        """The session's ``innodb_lock_wait_timeout``: the server gives up waiting for a row
        lock about when the client gives up waiting for the reply (at least 1 s, the least
        the server takes)."""
        return max(1, math.ceil(self.read_timeout))

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> MySQLOptions:
        """Read ``mysql://user:password@host:port/database?table=...`` and keyword options.

        Keyword options win over the URL's query (as ``open_storage`` merges them).
        """
        given = {**query_options(_split(url).query), **options}
        return cls.from_typed(url, parse_options(MySQLURLOptions, given, backend="mysql"))

    @classmethod
    def from_typed(cls, url: str, options: Mapping[str, Any]) -> MySQLOptions:
        """Build from the URL's body (its query is not read) and ``options`` already read
        against :data:`MySQLURLOptions` (by the core, or :meth:`from_url`)."""
        parts = _split(url)
        values = {name: value for name, value in options.items() if name != "driver"}
        user = values.pop("user", None)
        if user is None:
            user = unquote(parts.username) if parts.username else _os_user()
        password = values.pop("password", None)
        if password is None:
            password = unquote(parts.password) if parts.password is not None else ""
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise ConfigError("storage", "the URL's port must be a number from 1 to 65535")
        host = parts.hostname
        unix_socket = values.pop("unix_socket", None)
        if not host and unix_socket is None:
            raise ConfigError(
                "storage",
                "name the server: mysql://host[:port]/database, or "
                "mysql://user@localhost/database?unix_socket=/path/to/mysqld.sock",
            )
        context = _ssl_context(values)
        return cls(
            database=_database(parts.path),
            user=user,
            password=password,
            host=host or None,
            port=port or DEFAULT_PORT,
            unix_socket=unix_socket,
            ssl_context=context,
            scheme=parts.scheme.lower(),
            **values,
        )


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
    except ValueError:  # its message may quote the netloc, password and all
        raise ConfigError("storage", "not a usable mysql URL: it cannot be parsed") from None
    if parts.scheme.lower() not in SCHEMES or not url[len(parts.scheme) + 1 :].startswith("//"):
        raise ConfigError(
            "storage", "expected mysql://user:password@host:port/database (or mariadb://...)"
        )
    return parts


def _database(path: str) -> str:
    name = unquote(path[1:]) if path.startswith("/") else ""
    if name.endswith("/"):
        name = name[:-1]
    if not name:
        raise ConfigError(
            "storage", "name the database in the URL's path: mysql://host:3306/database"
        )
    if "/" in name or "\\" in name or "\x00" in name or len(name) > 64:
        raise ConfigError("storage", f"not a usable database name in the URL's path: {name!r}")
    return name


def _os_user() -> str:
    """The user the drivers would take when the URL names none: the OS user's name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no USER/LOGNAME (a bare container)
        raise ConfigError(
            "user", "name the MySQL user in the URL (mysql://user@host/database)"
        ) from None


def _ssl_context(values: dict[str, object]) -> ssl.SSLContext | None:
    """The TLS context the options ask for (removing them from ``values``), or ``None``.

    ``ssl=true``, or any of ``ssl_ca``/``ssl_cert``/``ssl_key``, asks for TLS, verified by
    default: the server's certificate against ``ssl_ca`` (or the system's CAs), and its name
    against the host. ``ssl_verify_cert=false`` and ``ssl_verify_identity=false`` loosen that.
    A context given as ``ssl=`` is used as it is, and excludes the other ``ssl_*`` options.
    """
    asked = values.pop("ssl", None)
    files = {name: values.pop(name) for name in _TLS_FILES if name in values}
    verify_cert = values.pop("ssl_verify_cert", None)
    verify_identity = values.pop("ssl_verify_identity", None)
    tuning = {**files}
    if verify_cert is not None:
        tuning["ssl_verify_cert"] = verify_cert
    if verify_identity is not None:
        tuning["ssl_verify_identity"] = verify_identity
    if isinstance(asked, ssl.SSLContext):
        if tuning:
            raise ConfigError(
                min(tuning), "give either an ssl.SSLContext as ssl= or the ssl_* options, not both"
            )
        return asked
    if asked is False:
        if tuning:
            raise ConfigError(min(tuning), "asks for TLS, but ssl=false turns it off")
        return None
    if asked is None and not files and not tuning:
        return None
    if "ssl_key" in files and "ssl_cert" not in files:
        raise ConfigError("ssl_key", "needs ssl_cert (the client certificate it belongs to)")
    try:
        context = ssl.create_default_context(cafile=files.get("ssl_ca"))  # type: ignore[arg-type]
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("ssl_ca", f"cannot load the CA certificates: {exc}") from None
    if verify_identity is False or verify_cert is False:
        context.check_hostname = False
    if verify_cert is False:
        if verify_identity is True:
            raise ConfigError(
                "ssl_verify_identity", "cannot check the server's name without ssl_verify_cert"
            )
        context.verify_mode = ssl.CERT_NONE
    if "ssl_cert" in files:
        try:
            context.load_cert_chain(files["ssl_cert"], files.get("ssl_key"))  # type: ignore[arg-type]
        except (OSError, ssl.SSLError) as exc:
            name = "ssl_key" if "ssl_key" in files and "key" in str(exc).lower() else "ssl_cert"
            raise ConfigError(name, f"cannot load the client certificate: {exc}") from None
    return context
