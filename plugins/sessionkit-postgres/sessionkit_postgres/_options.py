"""What a PostgreSQL storage is opened with, read from a ``postgresql://`` URL and keyword options.

A URL is libpq's URI form (``postgresql://user:password@host:port/dbname?param=value``, or
``postgres://``). Its query mixes two kinds of options, told apart by name:

* the storage's own (:data:`OWN_OPTIONS`: ``table``, ``schema``, the pool's size and timeouts,
  ``statement_timeout``, ``purge_batch``, ``prepare_threshold``), taken off here;
* libpq's connection parameters (``sslmode``, ``application_name``, ``options``,
  ``target_session_attrs``, ...), passed through to libpq, checked by name against the list
  the installed libpq itself gives (``PQconndefaults``).

Anything else is refused with a :class:`~sessionkit.ConfigError` naming the option and the
nearest known name, at open time: libpq would refuse it too, but only with a message quoting
the whole URL, password and all. Keyword arguments are the same options and win over the
query (as ``open_storage`` merges them). Values are checked here where a bad one would
otherwise fail at the first request, or never: a timeout that is not a positive number of
seconds (there is no "wait forever"), an identifier PostgreSQL would truncate, a port that is
no number, an ``sslmode`` or ``target_session_attrs`` libpq does not know.

:class:`PostgresOptions` declares them for the core (``Backend(options=...)``): its own fields
read by the checkers here, the libpq parameters as its :func:`driver_options`. Opened by URL,
the core reads the query once and :meth:`PostgresOptions.from_typed` builds the settings from
the URL's body and those typed options; :meth:`PostgresOptions.from_url` reads the query the
same way for a storage made directly. psycopg is imported only to build the settings (and to
list libpq's parameters), so the core can load this module to check a URL's options first.

No message here quotes the URL: it may hold a password.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import attrs

from sessionkit import ConfigError
from sessionkit.storage import (
    driver_options,
    option_names,
    parse_options,
    query_options,
    read_with,
)

from ._driver import NO_LIBPQ

__all__ = [
    "DEFAULT_POOL_MAX_SIZE",
    "DEFAULT_POOL_MIN_SIZE",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_PREPARE_THRESHOLD",
    "DEFAULT_PURGE_BATCH",
    "DEFAULT_STATEMENT_TIMEOUT",
    "DEFAULT_TABLE",
    "MAX_IDENTIFIER_BYTES",
    "MAX_POOL",
    "MAX_PURGE_BATCH",
    "MAX_SECONDS",
    "OWN_OPTIONS",
    "PostgresOptions",
    "check_identifier",
]

DEFAULT_TABLE = "sessionkit_sessions"
DEFAULT_POOL_MIN_SIZE = 0
DEFAULT_POOL_MAX_SIZE = 10
#: Seconds a call waits for a connection (when none is idle: while one is made, or while all
#: ``pool_max_size`` are busy).
DEFAULT_POOL_TIMEOUT = 2.0
#: Seconds one statement may run: the server cancels it then; the client gives up
#: :data:`CLIENT_GRACE` later if no answer came at all (a frozen or unreachable server).
DEFAULT_STATEMENT_TIMEOUT = 2.5
DEFAULT_PURGE_BATCH = 1000
#: psycopg's own default: a statement run this many times on a connection is prepared.
DEFAULT_PREPARE_THRESHOLD = 5

#: PostgreSQL truncates a longer name silently (NAMEDATALEN - 1 bytes), so two tables whose
#: names differ only after it would be one table: such a name is refused instead.
MAX_IDENTIFIER_BYTES = 63

#: The largest number of seconds any timeout takes: a day (the server's ``statement_timeout``
#: holds at most 2^31 - 1 ms, about 24.8 days).
MAX_SECONDS = 86_400.0
MAX_POOL = 10_000
MAX_PURGE_BATCH = 100_000
_MAX_INT32 = 2**31 - 1

#: The storage's own options: never sent to libpq.
OWN_OPTIONS = frozenset(
    {
        "table",
        "schema",
        "pool_min_size",
        "pool_max_size",
        "pool_timeout",
        "statement_timeout",
        "purge_batch",
        "prepare_threshold",
    }
)

#: libpq parameters refused, and why.
_REFUSED = {
    "replication": "a replication connection cannot run the storage's statements",
}

_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _libpq_keywords() -> frozenset[str]:
    """Every connection parameter the installed libpq knows (``PQconndefaults``), and ``ssl``
    (the URI form's ``ssl=true``)."""
    try:
        from psycopg import pq
    except ImportError as exc:
        raise ImportError(NO_LIBPQ.format(error=exc)) from exc
    return frozenset(opt.keyword.decode() for opt in pq.Conninfo.get_defaults()) | {"ssl"}


def check_identifier(name: str, value: object) -> str:
    """Return ``value`` if PostgreSQL keeps it whole as a (quoted) identifier.

    Any text is a valid quoted identifier, odd characters included (it is always quoted, with
    ``psycopg.sql.Identifier``); refused are an empty one, one PostgreSQL would truncate, and
    control characters (NUL is impossible, the others a trap in every log and shell).
    """
    if not isinstance(value, str) or not value:
        raise ConfigError(name, f"must be a non-empty name, got {value!r}")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_IDENTIFIER_BYTES:
        raise ConfigError(
            name,
            f"must be at most {MAX_IDENTIFIER_BYTES} bytes in UTF-8 (PostgreSQL would "
            f"truncate it), got {value!r}",
        )
    if _CONTROL.search(value):
        raise ConfigError(name, f"must not hold control characters, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(name, f"must be valid Unicode text, got {value!r}") from None
    return value


def _optional_identifier(name: str, value: object) -> str | None:
    return None if value is None else check_identifier(name, value)


def _seconds(name: str, value: object) -> float:
    number = _number(name, value, float, "a number of seconds")
    if not 0 < number <= MAX_SECONDS:  # NaN and infinity fail this too
        raise ConfigError(
            name, f"must be a positive number of seconds, at most {MAX_SECONDS:.0f}, got {value!r}"
        )
    return float(number)


def _int_in(low: int, high: int) -> Callable[[str, object], int]:
    def check(name: str, value: object) -> int:
        number = _number(name, value, int, "a whole number")
        if not isinstance(number, int) or not low <= number <= high:
            raise ConfigError(name, f"must be a whole number from {low} to {high}, got {value!r}")
        return number

    return check


def _prepare_threshold(name: str, value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "off")):
        return None
    return _int_in(0, _MAX_INT32)(name, value)


def _number(name: str, value: object, kind: type[float] | type[int], expected: str) -> float:
    """``value`` as a number: text is parsed (as query parameters arrive), numbers pass."""
    if isinstance(value, bool):
        raise ConfigError(name, f"expected {expected}, got {value!r}")
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            raise ConfigError(name, f"expected {expected}, got {value!r}") from None
    if isinstance(value, float) and kind is int and value.is_integer():
        return int(value)
    if isinstance(value, (int, float)):
        return value
    raise ConfigError(name, f"expected {expected}, got {value!r}")


@attrs.frozen
class PostgresOptions:
    """The settings of one PostgreSQL storage, every value checked.

    ``conninfo`` is what libpq connects with (a ``key=value`` string, the password included,
    hence never shown by ``repr``); ``where`` describes the server without the password, for
    messages. ``table`` (in ``schema``, or wherever the search path puts it) holds this
    storage's sessions, and ``reset()`` empties that table alone. Timeouts are seconds:
    ``pool_timeout`` bounds the wait for a connection (connecting included),
    ``statement_timeout`` one statement, on the server and (a little later) on the client.
    ``libpq`` holds the libpq parameters given as options (already in ``conninfo``).
    """

    conninfo: str = attrs.field(repr=False, metadata={"option": False})
    where: str = attrs.field(metadata={"option": False})
    table: str = attrs.field(default=DEFAULT_TABLE, metadata=read_with(check_identifier))
    schema: str | None = attrs.field(default=None, metadata=read_with(_optional_identifier))
    pool_min_size: int = attrs.field(
        default=DEFAULT_POOL_MIN_SIZE, metadata=read_with(_int_in(0, MAX_POOL))
    )
    pool_max_size: int = attrs.field(
        default=DEFAULT_POOL_MAX_SIZE, metadata=read_with(_int_in(1, MAX_POOL))
    )
    pool_timeout: float = attrs.field(default=DEFAULT_POOL_TIMEOUT, metadata=read_with(_seconds))
    statement_timeout: float = attrs.field(
        default=DEFAULT_STATEMENT_TIMEOUT, metadata=read_with(_seconds)
    )
    purge_batch: int = attrs.field(
        default=DEFAULT_PURGE_BATCH, metadata=read_with(_int_in(1, MAX_PURGE_BATCH))
    )
    prepare_threshold: int | None = attrs.field(
        default=DEFAULT_PREPARE_THRESHOLD, metadata=read_with(_prepare_threshold)
    )
    libpq: Mapping[str, str | None] = driver_options(
        _libpq_keywords,
        lambda name, value: None if value is None else _text(name, value),
        refused=_REFUSED,
        what="a libpq connection parameter",
    )

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> PostgresOptions:
        """Read ``postgresql://...`` (or ``postgres://...``), its query and keyword
        ``options`` (which win), as the core reads them for ``open_storage``."""
        given = {**query_options(_split(url).query), **options}
        return cls.from_typed(url, parse_options(cls, given, backend="postgres"))

    @classmethod
    def from_typed(cls, url: str, options: Mapping[str, Any]) -> PostgresOptions:
        """Build from the URL's body (its query is not read) and ``options`` already read
        against this class (by the core, or :meth:`from_url`)."""
        from psycopg import Error
        from psycopg.conninfo import conninfo_to_dict

        parts = _split(url)
        own = {name: value for name, value in options.items() if name != "libpq"}
        given = options.get("libpq", {})
        libpq = {name: value for name, value in given.items() if value is not None}
        if "ssl" in libpq:  # libpq's URI form takes ssl=true for sslmode=require
            if libpq.pop("ssl").lower() != "true":
                raise ConfigError("ssl", "only ssl=true is known (it means sslmode=require)")
            libpq.setdefault("sslmode", "require")
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        try:
            params: dict[str, Any] = dict(conninfo_to_dict(base))
        except Error as exc:
            raise ConfigError(
                "storage", f"not a usable postgresql URL: {_without(url, str(exc))}"
            ) from None
        params.update(libpq)
        _check_libpq_values(params)
        pool_min = own.get("pool_min_size", DEFAULT_POOL_MIN_SIZE)
        pool_max = own.get("pool_max_size", max(DEFAULT_POOL_MAX_SIZE, pool_min))
        if pool_max < pool_min:
            raise ConfigError(
                "pool_max_size", f"must be at least pool_min_size ({pool_min}), got {pool_max}"
            )
        own["pool_min_size"], own["pool_max_size"] = pool_min, pool_max
        statement = own.get("statement_timeout", DEFAULT_STATEMENT_TIMEOUT)
        return cls(
            conninfo=_conninfo(params, statement),
            where=_where(params),
            libpq=libpq,
            **own,
        )


assert frozenset(option_names(PostgresOptions)) == OWN_OPTIONS


def _split(url: str) -> SplitResult:
    """``url`` split, if it is a ``postgresql://`` (or ``postgres://``) URL."""
    if not isinstance(url, str):
        raise ConfigError("storage", f"expected a postgresql:// URL, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
    except ValueError:  # its message may quote the netloc, password and all
        raise ConfigError(
            "storage", "not a usable postgresql URL: it cannot be parsed (an unclosed '['?)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("postgresql", "postgres") or not url[len(scheme) + 1 :].startswith("//"):
        raise ConfigError(
            "storage", "expected postgresql://user@host:port/dbname (or postgres://...)"
        )
    return parts


def _text(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(
            name, f"expected text or a number for this libpq parameter, got {value!r}"
        )
    return str(value)


def _without(url: str, message: str) -> str:
    """libpq's message with the URL (which may hold a password) taken out of it."""
    return message.replace(url, "<the URL>").strip() or "libpq cannot read it"


def _check_libpq_values(params: Mapping[str, str]) -> None:
    """Refuse now the values libpq would refuse only when it first connects."""
    for port in str(params.get("port", "")).split(","):
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ConfigError("port", f"must be a port number (1 to 65535), got {port!r}")
    timeout = params.get("connect_timeout")
    # libpq reads whole seconds; 0 or less means "wait forever", which is refused here.
    if timeout is not None and (
        not str(timeout).strip().isdigit() or not 1 <= int(timeout) <= MAX_SECONDS
    ):
        raise ConfigError(
            "connect_timeout",
            f"must be a whole number of seconds from 1 to {MAX_SECONDS:.0f} (libpq waits "
            f"at least 2), got {timeout!r}",
        )
    for name, allowed in (("sslmode", _SSLMODES), ("target_session_attrs", _SESSION_ATTRS)):
        value = params.get(name)
        if value is not None and value not in allowed:
            raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


#: The libpq parameters a storage sets unless given: a connection attempt gives up after 2 s
#: (libpq's own default is to wait for ever), and the server lists the storage's connections
#: as ``sessionkit`` in ``pg_stat_activity`` unless ``application_name`` says otherwise.
LIBPQ_DEFAULTS: Mapping[str, str] = {
    "connect_timeout": "2",
    "fallback_application_name": "sessionkit",
}


def _conninfo(params: Mapping[str, str], statement_timeout: float) -> str:
    """The conninfo string: the parameters, libpq defaults, and the server-side statement
    timeout put first in ``options`` (so one the user sets in ``options`` wins there)."""
    from psycopg.conninfo import make_conninfo

    full = {**LIBPQ_DEFAULTS, **params}
    ms = math.ceil(statement_timeout * 1000)
    given = full.get("options", "")
    full["options"] = f"-c statement_timeout={ms} {given}".strip()
    return make_conninfo("", **full)


def _where(params: Mapping[str, str]) -> str:
    """``user@host:port/dbname`` for messages: never the password."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port")
    user = params.get("user")
    dbname = params.get("dbname")
    return f"{f'{user}@' if user else ''}{host}{f':{port}' if port else ''}/{dbname or ''}"
