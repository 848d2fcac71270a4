"""Turns of one key's saves (``sessionkit._turns``): one holder at a time, in threads and in
each event loop's tasks; a turn not had by its deadline is given up; and nothing is left
behind once every save has left (the tables hold only the saves in flight).

The saves themselves (merging, 503s, cancelled requests) are tested through the store in
``tests/security/test_25_conflicting_saves.py``; here the turns alone, with the orders that
make their locks: a lock is made only when a second save comes while one holds the turn.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sessionkit._turns import TaskTurn, Turns

FAR = 60.0


def later(seconds: float = FAR) -> float:
    return time.monotonic() + seconds


async def hold(turns: Turns, key: str, inside: list[int], seen: list[int], pause: int) -> bool:
    turn = turns.aturn(key, later())
    try:
        if not (turn.take() or await turn.wait()):
            return False
        inside.append(1)
        seen.append(len(inside))
        for _ in range(pause):
            await asyncio.sleep(0)
        inside.pop()
        return True
    finally:
        turn.leave()


@pytest.mark.parametrize("tasks", [1, 2, 3, 20])
async def test_tasks_hold_a_key_one_at_a_time_and_leave_nothing(tasks: int) -> None:
    turns = Turns()
    inside: list[int] = []
    seen: list[int] = []
    had = await asyncio.gather(*(hold(turns, "k", inside, seen, 3) for _ in range(tasks)))
    assert all(had) and seen == [1] * tasks
    assert turns._tasks == {}
    assert (await hold(turns, "k", inside, seen, 0)) and turns._tasks == {}


async def test_other_keys_and_other_loops_do_not_wait() -> None:
    turns = Turns()
    first = turns.aturn("k", later())
    assert first.take()
    other = turns.aturn("j", later())
    assert other.take()  # another key
    elsewhere: list[bool] = []

    def in_another_loop() -> None:
        async def run() -> None:
            turn = turns.aturn("k", later())
            elsewhere.append(turn.take())
            turn.leave()

        asyncio.run(run())

    thread = threading.Thread(target=in_another_loop)
    thread.start()
    thread.join()
    assert elsewhere == [True]  # the same key in another event loop
    other.leave()
    first.leave()
    assert turns._tasks == {}


async def waiting_behind(
    turns: Turns, seconds: float = FAR
) -> tuple[TaskTurn, asyncio.Future[bool]]:
    """A turn of ``k`` joined while another holds it, and its wait, started."""
    turn = turns.aturn("k", later(seconds))
    assert not turn.take()
    waiting = asyncio.ensure_future(turn.wait())
    await asyncio.sleep(0.01)
    return turn, waiting


async def test_a_task_that_waits_past_its_deadline_gives_up_and_the_turn_goes_on() -> None:
    turns = Turns()
    holder = turns.aturn("k", later())
    assert holder.take()
    started = time.monotonic()
    late, gave_up = await waiting_behind(turns, 0.05)
    assert not await gave_up  # the holder kept it past the deadline
    assert time.monotonic() - started < 1
    late.leave()
    patient, waiting = await waiting_behind(turns)
    assert not waiting.done()
    holder.leave()  # hands the turn on
    assert await asyncio.wait_for(waiting, 1)
    patient.leave()
    assert turns._tasks == {}


async def test_a_task_cancelled_while_waiting_holds_nothing() -> None:
    turns = Turns()
    holder = turns.aturn("k", later())
    assert holder.take()
    gone, waiting = await waiting_behind(turns)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gone.leave()
    holder.leave()
    fresh = turns.aturn("k", later())
    assert fresh.take()  # nobody holds it
    fresh.leave()
    assert turns._tasks == {}


@pytest.mark.parametrize("threads", [2, 3, 12])
def test_threads_hold_a_key_one_at_a_time_and_leave_nothing(threads: int) -> None:
    turns = Turns()
    inside: list[int] = []
    seen: list[int] = []
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for _ in range(20):
            with turns.turn("k", later()) as turn:
                assert turn is not None
                inside.append(1)
                seen.append(len(inside))
                time.sleep(0.0005)
                inside.pop()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert seen == [1] * (20 * threads)
    assert turns._threads == {}


def test_a_thread_that_waits_past_its_deadline_gives_up_and_the_turn_goes_on() -> None:
    turns = Turns()
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with turns.turn("k", later()) as turn:
            assert turn is not None
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with turns.turn("k", later(0.05)) as late:
        assert late is None  # not had: the caller must not do the work
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(turns.turn("k", later()).__enter__()))
    waiter.start()
    time.sleep(0.02)
    assert got == []
    release.set()
    thread.join()
    waiter.join(5)
    assert got and got[0] is not None  # had once the holder left
    assert turns._threads["k"].users == 1
