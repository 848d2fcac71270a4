"""In-process storage: a dict guarded by a lock, with expiry on read and incremental purging.

Expired entries are found through a heap ordered by expiry time; each write pops at most a few
of them, so the cost of cleaning up is spread over requests and never needs a scan of every
entry. A renewed entry leaves a stale heap item behind, recognised (its time no longer
matches) and skipped when popped; the heap is rebuilt when stale items outnumber live ones.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from sessionkit.storage import (
    ConfigError,
    StorageError,
    SyncStorage,
    parse_options,
    ttl_seconds,
)

from ._options import MemoryOptions

__all__ = ["MemoryStorage"]

_NEVER = float("inf")


def _positive_int(value: object) -> bool:
    """An int >= 1, and not a bool (``True`` is 1 to Python, but never meant as a size)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class MemoryStorage(SyncStorage):
    """A thread-safe, asyncio-safe dictionary storage.

    Its async twins are derived from the sync methods and run inline (``async_calls``): the
    lock is only ever held for dictionary operations, so a call never blocks the loop for
    long, and a hop to a worker thread would cost more than the call.

    ``max_entries`` caps the number of live entries (``None``: no cap); when full, expired
    entries are purged and then the least recently written entry is evicted, so a flood of new
    sessions cannot exhaust the process's memory. ``clock`` returns monotonic seconds.
    """

    async_calls = "inline"

    def __init__(
        self,
        *,
        max_entries: int | None = None,
        purge_batch: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries is not None and not _positive_int(max_entries):
            raise ConfigError("max_entries", f"must be a positive int or None, got {max_entries!r}")
        if not _positive_int(purge_batch):
            raise ConfigError("purge_batch", f"must be a positive int, got {purge_batch!r}")
        if not callable(clock):
            raise ConfigError("clock", f"must be a callable returning seconds, got {clock!r}")
        self.max_entries = max_entries
        self.purge_batch = purge_batch
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, expires_at); insertion order is write order (oldest first).
        self._data: dict[str, tuple[bytes, float]] = {}
        self._heap: list[tuple[float, str]] = []
        self._closed = False

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> MemoryStorage:
        """Build from ``memory://?max_entries=N&purge_batch=N``.

        Opened by URL, ``options`` come typed and checked by the core against
        :class:`~sessionkit_memory._options.MemoryOptions`; reading them again here (it leaves
        typed values as they are) serves a caller that hands this method query text itself.
        """
        return cls(**parse_options(MemoryOptions, options, backend="memory"))

    def __len__(self) -> int:
        """Number of entries held, expired ones not yet purged included."""
        return len(self._data)

    # -- internals (call with the lock held) --------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("memory storage is closed")

    def _purge(self, now: float, limit: int) -> int:
        """Delete up to ``limit`` expired entries, soonest-expired first; return how many."""
        heap, data = self._heap, self._data
        purged = 0
        while purged < limit and heap and heap[0][0] <= now:
            expires_at, key = heapq.heappop(heap)
            entry = data.get(key)
            if entry is not None and entry[1] == expires_at:
                del data[key]
                purged += 1
        return purged

    def _add(self, key: str, value: bytes, seconds: float | None, now: float) -> None:
        """:meth:`_store` for the writes that may add an entry (``set``, ``create``): they
        purge a batch of expired entries first, when one is due, so cleaning up is spread
        over the writes that grow the dict."""
        heap = self._heap
        if heap and heap[0][0] <= now:
            self._purge(now, self.purge_batch)
        self._store(key, value, seconds, now)

    def _store(self, key: str, value: bytes, seconds: float | None, now: float) -> None:
        """Write ``key`` to expire ``seconds`` after ``now`` (``None``: never)."""
        data = self._data
        expires_at = _NEVER if seconds is None else now + seconds
        data.pop(key, None)
        data[key] = (value, expires_at)
        if expires_at != _NEVER:
            heap = self._heap
            heapq.heappush(heap, (expires_at, key))
            # Every rewrite leaves its old heap entry behind (skipped when popped); rebuild
            # once they outnumber the live ones, so the heap stays proportional to the data.
            if len(heap) > 2 * len(data) + 1024:
                self._heap = [(exp, k) for k, (_, exp) in data.items() if exp != _NEVER]
                heapq.heapify(self._heap)
        cap = self.max_entries
        if cap is not None and len(data) > cap:
            self._purge(now, len(data) - cap)
            while len(data) > cap:
                del data[next(iter(data))]

    # -- the storage contract ------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        with self._lock:
            self._check_open()
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry[1] <= self._clock():
                del self._data[key]
                return None
            return entry[0]

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        if type(value) is not bytes:
            value = bytes(value)  # copy in: a caller's bytearray cannot change what is stored
        seconds = ttl_seconds(ttl)
        with self._lock:
            self._check_open()
            self._add(key, value, seconds, self._clock())

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only where no live entry is (an expired one counts as absent)."""
        if type(value) is not bytes:
            value = bytes(value)  # copy in, as set does
        seconds = ttl_seconds(ttl)
        with self._lock:
            self._check_open()
            now = self._clock()
            entry = self._data.get(key)
            if entry is not None and entry[1] > now:
                return False
            self._add(key, value, seconds, now)
            return True

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return self._overwrite(key, None, value, ttl)

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        return self._overwrite(key, None, None, ttl)

    def delete(self, key: str) -> None:
        with self._lock:
            self._check_open()
            self._data.pop(key, None)

    def take(self, key: str) -> bool:
        with self._lock:
            self._check_open()
            entry = self._data.pop(key, None)
            return entry is not None and entry[1] > self._clock()

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        return self._overwrite(key, expected, value, ttl)

    def _overwrite(
        self, key: str, expected: bytes | None, value: bytes | None, ttl: timedelta | None
    ) -> bool:
        """Write over a live entry only: ``replace`` (``expected=None``), ``replace_if``, and
        ``touch`` (``value=None``: the entry keeps its value, with the new TTL)."""
        if value is not None and type(value) is not bytes:
            value = bytes(value)  # copy in, as set does
        seconds = ttl_seconds(ttl)
        with self._lock:
            self._check_open()
            now = self._clock()
            entry = self._data.get(key)
            if entry is None or entry[1] <= now:
                return False
            if expected is not None and entry[0] != expected:
                return False
            self._store(key, entry[0] if value is None else value, seconds, now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._check_open()
            self._data.clear()
            self._heap.clear()

    # -- optional abilities for operators (see sessionkit._abilities) ----------------------------

    def count(self) -> int:
        """Number of live entries (expired ones not yet purged are left out)."""
        with self._lock:
            self._check_open()
            now = self._clock()
            return sum(1 for _, expires_at in self._data.values() if expires_at > now)

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """Yield each live ``(key, value)``, from a snapshot taken under the lock."""
        with self._lock:
            self._check_open()
            now = self._clock()
            live = [(k, v) for k, (v, expires_at) in self._data.items() if expires_at > now]
        yield from live

    def purge_expired(self) -> int:
        """Delete every expired entry now; return how many."""
        with self._lock:
            self._check_open()
            return self._purge(self._clock(), len(self._data))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._data.clear()
            self._heap.clear()
