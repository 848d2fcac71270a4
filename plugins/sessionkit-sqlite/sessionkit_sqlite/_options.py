"""What a SQLite storage is opened with, read from a ``sqlite:`` URL and keyword options.

Everything is checked here, before any file is touched, so a misconfigured deployment fails at
start-up with a :class:`~sessionkit.ConfigError` naming the field. This module does not import
``sqlite3``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs

from sessionkit import ConfigError
from sessionkit.storage import in_range, matches, parse_options

__all__ = ["MAX_BUSY_TIMEOUT", "MAX_PURGE_BATCH", "MEMORY", "SQLiteOptions", "path_of"]

#: The path that makes sqlite3 open a private in-memory database.
MEMORY = ":memory:"

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

    #: Read from the URL's body, not its query.
    path: str = attrs.field(metadata={"option": False})
    # The table name is the only text ever formatted into SQL: it is held to a strict shape.
    table: str = attrs.field(
        default="sessions",
        validator=matches(r"[A-Za-z_][A-Za-z0-9_]{0,62}", "[A-Za-z_][A-Za-z0-9_]{0,62}"),
    )
    purge_batch: int = attrs.field(
        default=256, validator=in_range(1, MAX_PURGE_BATCH, integer=True)
    )
    busy_timeout: float = attrs.field(
        default=5.0, validator=in_range(0, MAX_BUSY_TIMEOUT, unit="seconds")
    )
    clock: Callable[[], float] = attrs.field(default=time.time, validator=_callable)

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> SQLiteOptions:
        """Read ``sqlite:///relative.db``, ``sqlite:////abs.db`` or ``sqlite://:memory:``.

        The slashes follow SQLAlchemy: three before a relative path (from the current
        directory), four before an absolute one. Opened by URL, ``options`` come typed and
        checked by the core against this class (``Backend(options=...)``); reading them again
        here (typed values stay as they are) serves a caller that passes query text itself.
        """
        return cls(path_of(url), **parse_options(cls, options, backend="sqlite"))


def path_of(url: str) -> str:
    """The database file a ``sqlite:`` URL names, or :data:`MEMORY`."""
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
