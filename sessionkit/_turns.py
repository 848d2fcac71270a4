"""Saves of one session in one process take turns.

Under ``conflict="merge"`` a save whose record changed since its request read it puts its own
changes on top of what is stored now and tries again (``Store._merge_steps``). The requests of
one browser often arrive together (a page's parallel fetches) and one worker serves them all.
Left to race, every loser pays a read and another write per round, and with twenty at once
some lose round after round until the merge budget runs out and answer 503, nothing written.
Within one process they need not race: a save waits until the save of the same session before
it has finished, then merges once on top of it. Saves in other processes still meet in the
storage, where ``replace_if`` decides as before.

The wait counts against the save's merge budget: a turn not had before the deadline fails the
save as a merge that kept losing does (a 503, nothing written), so no request waits longer
than it could without turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["Turns"]

_L = TypeVar("_L", threading.Lock, asyncio.Lock)


class _Slot(Generic[_L]):
    """One key's lock and how many saves hold or wait for it (dropped at zero)."""

    __slots__ = ("lock", "users")

    def __init__(self, lock: _L) -> None:
        self.lock: _L = lock
        self.users = 0


class Turns:
    """Turns per key: for threads (WSGI, Flask) and, apart, for the tasks of each event loop.

    A key's lock lives while a save holds or waits for it, so a store serving millions of
    sessions keeps only the locks of saves in flight. An uncontended turn costs two short
    critical sections and an uncontended lock.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._threads: dict[Hashable, _Slot[threading.Lock]] = {}
        self._tasks: dict[Hashable, _Slot[asyncio.Lock]] = {}

    @contextlib.contextmanager
    def turn(self, key: str, deadline: float) -> Iterator[bool]:
        """Hold ``key``'s turn among threads; yields whether it was had before ``deadline``
        (``time.monotonic()``); if not, the caller must not do the work."""
        slot = self._enter(self._threads, key, threading.Lock)
        try:
            had = slot.lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
            try:
                yield had
            finally:
                if had:
                    slot.lock.release()
        finally:
            self._leave(self._threads, key, slot)

    @contextlib.asynccontextmanager
    async def aturn(self, key: str, deadline: float) -> AsyncIterator[bool]:
        """:meth:`turn` among the tasks of the running event loop."""
        place = (asyncio.get_running_loop(), key)
        slot = self._enter(self._tasks, place, asyncio.Lock)
        try:
            lock = slot.lock
            had: bool
            if not lock.locked():
                had = await lock.acquire()  # at once: an unlocked Lock does not suspend
            else:
                try:
                    had = await asyncio.wait_for(lock.acquire(), deadline - time.monotonic())
                except asyncio.TimeoutError:
                    had = False
            try:
                yield had
            finally:
                if had:
                    lock.release()
        finally:
            self._leave(self._tasks, place, slot)

    def _enter(
        self, table: dict[Hashable, _Slot[_L]], key: Hashable, make: Callable[[], _L]
    ) -> _Slot[_L]:
        with self._guard:
            slot = table.get(key)
            if slot is None:
                slot = table[key] = _Slot(make())
            slot.users += 1
            return slot

    def _leave(self, table: dict[Hashable, _Slot[_L]], key: Hashable, slot: _Slot[_L]) -> None:
        with self._guard:
            slot.users -= 1
            if slot.users == 0:
                del table[key]
