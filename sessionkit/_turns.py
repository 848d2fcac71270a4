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
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

__all__ = ["TaskTurn", "Turn", "Turns"]

_L = TypeVar("_L", threading.Lock, asyncio.Lock)


class Turn(Generic[_L]):
    """One key's turn: how many saves hold or wait for it (dropped at zero), its lock, and what
    the last save that held it left stored.

    The lock is made only when a second save of the key comes while the first holds the turn:
    until then the one save holds it by being alone, and an uncontended turn (nearly every
    save) costs a dictionary entry and no lock at all. The save that makes the lock acquires it
    at once for the save that holds the turn (a lock has no owner), then waits on it.

    ``stored`` is handed from each save to the next: the bytes the save wrote, or ``None``
    (unknown: it failed, or removed the record). A save that waited merges onto them at once,
    instead of first writing over the bytes it loaded, which the save before it has replaced,
    and reading the record back; its compare-and-swap still checks them, so a change made
    meanwhile by another process is still found and merged.
    """

    __slots__ = ("lock", "stored", "users")

    def __init__(self) -> None:
        self.lock: _L | None = None
        self.users = 1
        self.stored: bytes | None = None


class Turns:
    """Turns per key: for threads (WSGI, Flask) and, apart, for the tasks of each event loop.

    A key's entry lives while a save holds or waits for its turn, so a store serving millions
    of sessions keeps only the entries of saves in flight. The threads' table is changed under
    one guard; the tasks' table needs none, as each of its entries is keyed by its event loop
    and only ever touched from that loop's thread (each dictionary operation is atomic).
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

    def aturn(self, key: str, deadline: float) -> TaskTurn:
        """:meth:`turn` among the tasks of the running event loop, taken without a coroutine
        when no other task of the loop holds it::

            turn = turns.aturn(key, deadline)
            try:
                if not (turn.take() or await turn.wait()):
                    ...  # not had before the deadline: do not do the work
                ...  # the work; turn.slot is the key's Turn
            finally:
                turn.leave()
        """
        return TaskTurn(self, key, deadline)


# The turns are classes, not ``contextlib`` generators, and the uncontended async one is no
# coroutine at all: a save takes a turn on every write (an async turn took 3.5 µs as a
# generator, 2.0 as a class with an ``asyncio.Lock``, and less without the lock; see
# docs/performance.md, "Taking turns").


class _Held:
    """What both kinds of turn keep between entering and leaving."""

    __slots__ = ("_deadline", "_had", "_key", "_turns", "slot")
    slot: Turn[Any]  # set on entering

    def __init__(self, turns: Turns, key: str, deadline: float) -> None:
        self._turns = turns
        self._key = key
        self._deadline = deadline
        self._had = False

    def _drop(self, table: dict[Hashable, Any], place: Hashable) -> Any:
        """Leave the key's entry (dropped once no save is in it); return its lock if this
        save had the turn and a lock was made, for the caller to release."""
        slot = self.slot
        slot.users -= 1
        if slot.users == 0:
            del table[place]
        return slot.lock if self._had else None


class _ThreadTurn(_Held):
    __slots__ = ()

    def __enter__(self) -> Turn[threading.Lock] | None:
        turns, key = self._turns, self._key
        with turns._guard:
            slot = turns._threads.get(key)
            if slot is None:  # alone: the turn is had at once
                self.slot = turns._threads[key] = Turn()
                self._had = True
                return self.slot
            self.slot = slot
            slot.users += 1
            lock = slot.lock
            if lock is None:  # the first to wait: held for the thread that has the turn
                lock = slot.lock = threading.Lock()
                lock.acquire()
        try:
            self._had = lock.acquire(timeout=max(0.0, self._deadline - time.monotonic()))
        except BaseException:
            self.__exit__()
            raise
        return slot if self._had else None

    def __exit__(self, *exc_info: object) -> None:
        turns = self._turns
        with turns._guard:
            lock = self._drop(turns._threads, self._key)
        if lock is not None:
            lock.release()


class TaskTurn(_Held):
    """A save's turn among the tasks of its event loop (see :meth:`Turns.aturn`)."""

    __slots__ = ("_place",)

    def take(self) -> bool:
        """Join the turn; whether it is had already (no task of this loop holds it)."""
        table = self._turns._tasks
        place = self._place = (asyncio.get_running_loop(), self._key)
        slot = table.get(place)
        if slot is None:
            self.slot = table[place] = Turn()
            self._had = True
            return True
        self.slot = slot
        slot.users += 1
        return False

    async def wait(self) -> bool:
        """After :meth:`take` said no: wait for the turn until the deadline; whether it was
        had. Cancelled while waiting, it holds nothing (:meth:`leave` still must be called)."""
        slot = self.slot
        lock = slot.lock
        if lock is None:  # the first to wait: held for the task that has the turn
            lock = slot.lock = asyncio.Lock()
            await lock.acquire()  # at once: a new Lock does not suspend
        # Even an unlocked lock may have a woken waiter ahead of this one: always bounded.
        self._had = await _acquired_by(lock, self._deadline)
        return self._had

    def leave(self) -> None:
        """Give the turn up (if had) and leave it: in a ``finally`` after :meth:`take`."""
        lock = self._drop(self._turns._tasks, self._place)
        if lock is not None:
            lock.release()


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
