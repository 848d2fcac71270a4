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
import threading
import time
from collections.abc import Callable, Hashable
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

    def turn(self, key: str, deadline: float) -> _ThreadTurn:
        """Hold ``key``'s turn among threads: ``with turns.turn(key, deadline) as turn``
        gives the turn, or ``None`` when it was not had before ``deadline``
        (``time.monotonic()``): then the caller must not do the work."""
        return _ThreadTurn(self, key, deadline)

    def aturn(self, key: str, deadline: float) -> _TaskTurn:
        """:meth:`turn` among the tasks of the running event loop (``async with``)."""
        return _TaskTurn(self, key, deadline)

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


# The two context managers are classes, not ``contextlib`` generators: a save takes a turn on
# every write, and the generators cost more than the lock (an async turn took 3.5 µs, now
# 2.0; a threaded one 2.7, now 2.0; an uncontended lock alone 0.4, on this project's VM).


class _Held:
    """What both kinds of turn keep between entering and leaving."""

    __slots__ = ("_deadline", "_had", "_key", "_slot", "_turns")
    _slot: Turn[Any]  # set on entering

    def __init__(self, turns: Turns, key: str, deadline: float) -> None:
        self._turns = turns
        self._key = key
        self._deadline = deadline
        self._had = False

    def _release(self, table: dict[Hashable, Any], place: Hashable) -> None:
        slot = self._slot
        try:
            if self._had:
                slot.lock.release()
        finally:
            self._turns._leave(table, place, slot)


class _ThreadTurn(_Held):
    __slots__ = ()

    def __enter__(self) -> Turn[threading.Lock] | None:
        turns = self._turns
        slot = self._slot = turns._enter(turns._threads, self._key, threading.Lock)
        try:
            self._had = slot.lock.acquire(timeout=max(0.0, self._deadline - time.monotonic()))
        except BaseException:
            turns._leave(turns._threads, self._key, slot)
            raise
        return slot if self._had else None

    def __exit__(self, *exc_info: object) -> None:
        self._release(self._turns._threads, self._key)


class _TaskTurn(_Held):
    __slots__ = ("_place",)

    async def __aenter__(self) -> Turn[asyncio.Lock] | None:
        turns = self._turns
        place = self._place = (asyncio.get_running_loop(), self._key)
        slot = self._slot = turns._enter(turns._tasks, place, asyncio.Lock)
        try:
            lock = slot.lock
            if not lock.locked():
                self._had = await lock.acquire()  # at once: an unlocked Lock does not suspend
            else:
                self._had = await _acquired_by(lock, self._deadline)
        except BaseException:
            turns._leave(turns._tasks, place, slot)
            raise
        return slot if self._had else None

    async def __aexit__(self, *exc_info: object) -> None:
        self._release(self._turns._tasks, self._place)


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
