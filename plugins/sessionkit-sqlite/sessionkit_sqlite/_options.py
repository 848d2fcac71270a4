"""What a SQLite storage is opened with, read from a ``sqlite:`` URL and keyword options.

Everything is checked here, before any file is touched, so a misconfigured deployment fails at
start-up with a :class:`~sessionkit.ConfigError` naming the field. This module does not import
``sqlite3``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs

from sessionkit import ConfigError

__all__ = ["MAX_BUSY_TIMEOUT", "MAX_PURGE_BATCH", "MEMORY", "SQLiteOptions"]

#: The path that makes sqlite3 open a private in-memory database.
MEMORY = ":memory:"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _identifier(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # The table name is the only text ever formatted into SQL, so it is held to a strict shape.
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ConfigError(
            attribute.name, f"must match [A-Za-z_][A-Za-z0-9_]{{0,62}}, got {value!r}"
        )


#: The largest ``purge_batch``. One purge statement holds the database's write lock while it
#: runs (every other writer of the file waits), so a batch must stay well inside a writer's
#: ``busy_timeout``: 100 000 expired rows took half a second on a two-core VM. It also keeps the
#: value far inside the 64-bit integer a bound parameter can carry (a bigger int raised
#: OverflowError at the first purge, long after the storage was opened).
MAX_PURGE_BATCH = 100_000

#: The largest ``busy_timeout``, in seconds. SQLite keeps a busy timeout as a C ``int`` of
#: milliseconds (at most 2 147 483 647 ms, about 24.8 days); a bigger value overflows when the
#: connection is configured, long after the storage was opened.
MAX_BUSY_TIMEOUT = 2_147_483.0


def _positive_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PURGE_BATCH:
        raise ConfigError(
            attribute.name, f"must be an int from 1 to {MAX_PURGE_BATCH}, got {value!r}"
        )


def _seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # Chained comparison: NaN fails it, so do infinity and anything past SQLite's limit.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= MAX_BUSY_TIMEOUT
    ):
        raise ConfigError(
            attribute.name,
            f"must be a number of seconds from 0 to {MAX_BUSY_TIMEOUT:.0f}, got {value!r}",
        )


def _callable(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise ConfigError(attribute.name, f"must be a callable returning seconds, got {value!r}")


@attrs.frozen
class SQLiteOptions:
    """The settings of one SQLite storage.

    ``path`` is a file path or ``":memory:"``. ``table`` holds this storage's sessions, and
    ``reset()`` empties that table alone. ``purge_batch`` bounds how many expired rows one
    clean-up statement deletes (1 to :data:`MAX_PURGE_BATCH`). ``busy_timeout`` bounds, in
    seconds, how long one call may wait for the database's write lock, counted from the
    call's own start: another process's lock and this process's writers queued ahead both
    count against it (0 to :data:`MAX_BUSY_TIMEOUT`).
    ``clock`` returns wall-clock seconds: expiry times are stored in the file and must mean the
    same thing to the next process, after a restart, so a monotonic clock would be wrong here.
    """

    path: str
    table: str = attrs.field(default="sessions", validator=_identifier)
    purge_batch: int = attrs.field(default=256, validator=_positive_int)
    busy_timeout: float = attrs.field(default=5.0, validator=_seconds)
    clock: Callable[[], float] = attrs.field(default=time.time, validator=_callable)

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> SQLiteOptions:
        """Read ``sqlite:///relative.db``, ``sqlite:////abs.db`` or ``sqlite://:memory:``.

        The slashes follow SQLAlchemy: three before a relative path (from the current
        directory), four before an absolute one. ``options`` holds the URL's query parameters
        and keyword arguments, as strings or as values.
        """
        unknown = set(options) - _CONVERTERS.keys()
        if unknown:
            raise ConfigError(
                "storage",
                f"unknown sqlite storage option(s) {sorted(unknown)}; known: {sorted(_CONVERTERS)}",
            )
        kwargs: dict[str, Any] = {n: _CONVERTERS[n](n, value) for n, value in options.items()}
        return cls(_path_of(url), **kwargs)


def _path_of(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError("storage", f"not a usable sqlite URL: {url!r}") from None
    if parts.scheme != "sqlite":
        raise ConfigError("storage", f"not a sqlite URL: {url!r}")
    if parts.netloc == MEMORY and not parts.path:
        return MEMORY
    if parts.netloc or (parts.path and not parts.path.startswith("/")):
        raise ConfigError(
            "storage",
            f"expected sqlite:///relative.db, sqlite:////absolute.db or sqlite://:memory:, "
            f"got {url!r}",
        )
    path = unquote(parts.path[1:])
    if not path:  # sqlite3 would open a private, throw-away in-memory database
        raise ConfigError(
            "storage",
            f"no database file in {url!r}: name a file (sqlite:///relative.db, "
            "sqlite:////absolute.db), or use sqlite://:memory: for a private in-memory database",
        )
    return path


def _parsed(parse: Callable[[str], object], expected: str) -> Callable[[str, object], object]:
    """A converter that parses query-string text with ``parse`` and passes values through."""

    def convert(name: str, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse(value)
        except ValueError:
            raise ConfigError(name, f"expected {expected}, got {value!r}") from None

    return convert


def _as_is(_: str, value: object) -> object:
    return value


# Query parameters arrive as strings; keyword arguments as values. The validators check both.
_CONVERTERS: dict[str, Callable[[str, object], object]] = {
    "table": _as_is,
    "purge_batch": _parsed(int, "an integer"),
    "busy_timeout": _parsed(float, "a number of seconds"),
    "clock": _as_is,
}
