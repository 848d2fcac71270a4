"""In-process storage: a dict guarded by a lock, with expiry on read and incremental purging.

Expired entries are found without a scan of the map. Writes with the same TTL expire in the
order they are written (the clock is monotonic), so each TTL gets a *lane*: a deque holding,
in two slots per write, the key and its expiry time (the very float object its entry holds).
The soonest expiry is always at the front of a lane, or at the top of a heap that takes the
writes no lane can (a TTL beyond the first few distinct ones, or a clock that went back).
Sessions mostly share one TTL, so most writes cost two deque slots (16 bytes) where a heap
item costs a tuple and a list slot (64 bytes), and pushes and pops are O(1). Each write purges
at most a few expired entries, so the cost of cleaning up is spread over requests.

Under ``max_entries``, one more deque holds every write in write order, so evicting the least
recently written entry is O(1) too (the dict's own oldest entry is found by a walk over the
holes its deletions leave, which grows with the map); without a cap it is not kept.

A renewed or deleted entry leaves stale items behind: their expiry is not the float object the
entry holds any more (``is``, not ``==``: a rewrite at the same time is still a new write).
They are skipped when popped, and filtered out of every lane, the heap and the write order
once one of them holds about twice as many items as there are live entries (amortised O(1) per
write, as rebuilding the heap was).

A lane is dropped when it drains, making room for another TTL. Entries without expiry are in
no lane (nothing to purge), only in the write order when there is a cap.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
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
#: Lanes kept at most: more distinct TTLs at once (say, ``absolute_timeout`` shortening them)
#: go to the heap.
_MAX_LANES = 8


def _closed_error() -> StorageError:
    """The error of every call after :meth:`MemoryStorage.close` (each call checks the flag
    itself, a method call less on every read and write)."""
    return StorageError("memory storage is closed")


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
        # TTL in seconds -> its writes: key, expires_at, key, expires_at, ... (soonest first).
        self._lanes: dict[float, deque[Any]] = {}
        # (expires_at, key) of the writes no lane takes.
        self._heap: list[tuple[float, str]] = []
        # Under max_entries, every write: key, expires_at, ... (least recently written first).
        self._order: deque[Any] | None = None if max_entries is None else deque()
        self._due = _NEVER  # no expiry in the lanes or the heap is sooner than this
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

    def _purge(self, now: float, limit: int) -> int:
        """Delete up to ``limit`` expired entries, soonest-expired first; return how many."""
        lanes, heap, data = self._lanes, self._heap, self._data
        purged = 0
        while purged < limit:
            # The soonest expiry is at the front of a lane or at the top of the heap.
            soonest, expires_at = None, heap[0][0] if heap else _NEVER
            for ttl, lane in lanes.items():
                if lane[1] < expires_at:
                    soonest, expires_at = ttl, lane[1]
            if expires_at > now:
                break
            if soonest is None:
                key = heapq.heappop(heap)[1]
            else:
                lane = lanes[soonest]
                key = lane.popleft()
                lane.popleft()
                if not lane:
                    del lanes[soonest]
            entry = data.get(key)
            if entry is not None and entry[1] is expires_at:
                del data[key]
                purged += 1
        self._due = self._soonest()
        return purged

    def _soonest(self) -> float:
        """The soonest expiry at the front of a lane or the top of the heap."""
        soonest = self._heap[0][0] if self._heap else _NEVER
        for lane in self._lanes.values():
            if lane[1] < soonest:
                soonest = lane[1]
        return soonest

    def _evict_oldest(self) -> None:
        """Delete the least recently written entry (the caller knows there is one)."""
        data, order = self._data, self._order
        if order is None:  # max_entries set after construction: no write order kept
            del data[next(iter(data))]
            return
        while order:
            key = order.popleft()
            expires_at = order.popleft()
            entry = data.get(key)
            if entry is not None and entry[1] is expires_at:
                del data[key]
                return

    def _compact(self) -> None:
        """Filter the stale items out of the lanes, the heap and the write order."""
        data = self._data

        def live(items: deque[Any]) -> deque[Any]:
            kept: deque[Any] = deque()
            pairs = iter(items)
            for key, expires_at in zip(pairs, pairs, strict=False):
                entry = data.get(key)
                if entry is not None and entry[1] is expires_at:
                    kept += (key, expires_at)
            return kept

        lanes = {ttl: kept for ttl, lane in self._lanes.items() if (kept := live(lane))}
        heap = [item for item in self._heap if (entry := data.get(item[1])) and entry[1] is item[0]]
        heapq.heapify(heap)
        self._lanes, self._heap = lanes, heap
        if self._order is not None:
            self._order = live(self._order)
        self._due = self._soonest()

    def _store_expiry(
        self, key: str, expires_at: float, seconds: float, lane: deque[Any] | None
    ) -> None:
        """:meth:`_store`'s bookkeeping for a write that opens a lane or goes to the heap."""
        if lane is None and len(self._lanes) < _MAX_LANES:
            lane = self._lanes[seconds] = deque()
        if lane is not None and (not lane or lane[-1] <= expires_at):
            lane.append(key)
            lane.append(expires_at)
        else:  # no lane, or the clock went back: the heap keeps it in order
            heap = self._heap
            heapq.heappush(heap, (expires_at, key))
            if len(heap) > 2 * len(self._data) + 1024:
                self._compact()
        if expires_at < self._due:  # a lane's front or the heap's top: the soonest yet?
            self._due = expires_at

    def _add(self, key: str, value: bytes, seconds: float | None, now: float) -> None:
        """:meth:`_store` for the writes that may add an entry (``set``, ``create``): they
        purge a batch of expired entries first, when one is due, so cleaning up is spread
        over the writes that grow the dict."""
        if self._due <= now:
            self._purge(now, self.purge_batch)
        self._store(key, value, seconds, now)

    def _store(self, key: str, value: bytes, seconds: float | None, now: float) -> None:
        """Write ``key`` to expire ``seconds`` after ``now`` (``None``: never)."""
        data = self._data
        # A new float object for every write, infinity included: its identity tells this
        # write's items from the stale ones the key left behind.
        expires_at = now + (_NEVER if seconds is None else seconds)
        data.pop(key, None)
        data[key] = (value, expires_at)
        if seconds is not None:
            lane = self._lanes.get(seconds)
            if lane and lane[-1] <= expires_at:  # the usual case: one more for the lane
                lane.append(key)
                lane.append(expires_at)
                if len(lane) > 4 * len(data) + 2048:
                    self._compact()
            else:
                self._store_expiry(key, expires_at, seconds, lane)
        order = self._order
        if order is not None:
            order.append(key)
            order.append(expires_at)
            if len(order) > 4 * len(data) + 2048:
                self._compact()
        cap = self.max_entries
        if cap is not None and len(data) > cap:
            self._purge(now, len(data) - cap)
            while len(data) > cap:
                self._evict_oldest()

    # -- the storage contract ------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        with self._lock:
            if self._closed:
                raise _closed_error()
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
            if self._closed:
                raise _closed_error()
            self._add(key, value, seconds, self._clock())

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only where no live entry is (an expired one counts as absent)."""
        if type(value) is not bytes:
            value = bytes(value)  # copy in, as set does
        seconds = ttl_seconds(ttl)
        with self._lock:
            if self._closed:
                raise _closed_error()
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
            if self._closed:
                raise _closed_error()
            self._data.pop(key, None)

    def take(self, key: str) -> bool:
        with self._lock:
            if self._closed:
                raise _closed_error()
            entry = self._data.pop(key, None)
            return entry is not None and entry[1] > self._clock()

    def _overwrite(
        self, key: str, expected: bytes | None, value: bytes | None, ttl: timedelta | None
    ) -> bool:
        """Write over a live entry only: ``replace`` (``expected=None``), ``replace_if``, and
        ``touch`` (``value=None``: the entry keeps its value, with the new TTL)."""
        if value is not None and type(value) is not bytes:
            value = bytes(value)  # copy in, as set does
        seconds = ttl_seconds(ttl)
        with self._lock:
            if self._closed:
                raise _closed_error()
            now = self._clock()
            entry = self._data.get(key)
            if entry is None or entry[1] <= now:
                return False
            if expected is not None and entry[0] != expected:
                return False
            self._store(key, entry[0] if value is None else value, seconds, now)
            return True

    #: The compare-and-swap of every save that merges: :meth:`_overwrite` itself (the same
    #: parameters), not a method calling it.
    replace_if = _overwrite

    def reset(self) -> None:
        with self._lock:
            if self._closed:
                raise _closed_error()
            self._clear()

    def _clear(self) -> None:
        self._data.clear()
        self._lanes.clear()
        self._heap.clear()
        if self._order is not None:
            self._order.clear()
        self._due = _NEVER

    # -- optional abilities for operators (see sessionkit._abilities) ----------------------------

    def count(self) -> int:
        """Number of live entries (expired ones not yet purged are left out)."""
        with self._lock:
            if self._closed:
                raise _closed_error()
            now = self._clock()
            return sum(1 for _, expires_at in self._data.values() if expires_at > now)

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """Yield each live ``(key, value)``, from a snapshot taken under the lock."""
        with self._lock:
            if self._closed:
                raise _closed_error()
            now = self._clock()
            live = [(k, v) for k, (v, expires_at) in self._data.items() if expires_at > now]
        yield from live

    def purge_expired(self) -> int:
        """Delete every expired entry now; return how many."""
        with self._lock:
            if self._closed:
                raise _closed_error()
            return self._purge(self._clock(), len(self._data))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._clear()
