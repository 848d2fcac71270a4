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
from typing import Any, Generic, TypeVar

__all__ = ["Turn", "Turns"]

_L = TypeVar("_L", threading.Lock, asyncio.Lock)


class Turn(Generic[_L]):
    """One key's lock, how many saves hold or wait for it (dropped at zero), and what the last
    save that held it left stored.

    ``stored`` is handed from each save to the next: the bytes the save wrote, or ``None``
    (unknown: it failed, or removed the record). A save that waited merges onto them at once,
    instead of first writing over the bytes it loaded, which the save before it has replaced,
    and reading the record back; its compare-and-swap still checks them, so a change made
    meanwhile by another process is still found and merged.
    """

    __slots__ = ("lock", "stored", "users")

    def __init__(self, lock: _L) -> None:
        self.lock: _L = lock
        self.users = 0
        self.stored: bytes | None = None


class Turns:
    """Turns per key: for threads (WSGI, Flask) and, apart, for the tasks of each event loop.

    A key's lock lives while a save holds or waits for it, so a store serving millions of
    sessions keeps only the locks of saves in flight. An uncontended turn costs two short
    critical sections and an uncontended lock.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._threads: dict[Hashable, Turn[threading.Lock]] = {}
        self._tasks: dict[Hashable, Turn[asyncio.Lock]] = {}

    @contextlib.contextmanager
    def turn(self, key: str, deadline: float) -> Iterator[Turn[threading.Lock] | None]:
        """Hold ``key``'s turn among threads; yields it, or ``None`` when it was not had before
        ``deadline`` (``time.monotonic()``): then the caller must not do the work."""
        slot = self._enter(self._threads, key, threading.Lock)
        try:
            had = slot.lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
            try:
                yield slot if had else None
            finally:
                if had:
                    slot.lock.release()
        finally:
            self._leave(self._threads, key, slot)

    @contextlib.asynccontextmanager
    async def aturn(self, key: str, deadline: float) -> AsyncIterator[Turn[asyncio.Lock] | None]:
        """:meth:`turn` among the tasks of the running event loop."""
        place = (asyncio.get_running_loop(), key)
        slot = self._enter(self._tasks, place, asyncio.Lock)
        try:
            lock = slot.lock
            had: bool
            if not lock.locked():
                had = await lock.acquire()  # at once: an unlocked Lock does not suspend
            else:
                had = await _acquired_by(lock, deadline)
            try:
                yield slot if had else None
            finally:
                if had:
                    lock.release()
        finally:
            self._leave(self._tasks, place, slot)

    def _enter(
        self, table: dict[Hashable, Turn[_L]], key: Hashable, make: Callable[[], _L]
    ) -> Turn[_L]:
        with self._guard:
            slot = table.get(key)
            if slot is None:
                slot = table[key] = Turn(make())
            slot.users += 1
            return slot

    def _leave(self, table: dict[Hashable, Turn[_L]], key: Hashable, slot: Turn[_L]) -> None:
        with self._guard:
            slot.users -= 1
            if slot.users == 0:
                del table[key]


async def _acquired_by(lock: asyncio.Lock, deadline: float) -> bool:
    """Acquire ``lock`` before ``deadline``; whether it was.

    Not ``asyncio.wait_for``: before Python 3.12 it may raise its timeout for an acquire that
    has just succeeded, and the lock would stay held by no one. Here the acquiring task is
    asked whether it finished; one that did not cannot hold the lock (an ``asyncio.Lock`` is
    taken only as its acquiring task resumes), and is cancelled.
    """
    acquiring = asyncio.ensure_future(lock.acquire())
    try:
        await asyncio.wait((acquiring,), timeout=max(0.0, deadline - time.monotonic()))
    except BaseException:  # this task cancelled while waiting: hold nothing
        if _took(acquiring):
            lock.release()
        else:
            acquiring.cancel()
        raise
    if not acquiring.done():
        acquiring.cancel()
        return False
    return _took(acquiring)


def _took(acquiring: asyncio.Future[Any]) -> bool:
    return acquiring.done() and not acquiring.cancelled() and acquiring.exception() is None
