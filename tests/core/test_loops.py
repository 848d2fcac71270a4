"""``PerLoop``: one client per event loop, made on first use there, reused within that loop."""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
import weakref

import pytest

from sessionkit import PerLoop


class Client:
    """Stands in for an asyncio driver's client; numbered in the order they were made."""

    made = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(self.made)


def test_one_client_per_loop_reused_within_it() -> None:
    clients = PerLoop(Client)

    async def twice() -> tuple[Client, Client]:
        first = clients.get()
        await asyncio.sleep(0)
        return first, clients.get()

    first, again = asyncio.run(twice())
    assert first is again


def test_different_loops_get_different_clients() -> None:
    clients = PerLoop(Client)

    async def get() -> Client:
        return clients.get()

    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        made = [loop.run_until_complete(get()) for loop in loops]
        assert made[0] is not made[1]
        assert loops[0].run_until_complete(get()) is made[0]  # each loop keeps its own
    finally:
        for loop in loops:
            loop.close()


def test_tasks_of_one_loop_share_the_client() -> None:
    clients = PerLoop(Client)

    async def many() -> set[int]:
        async def one() -> int:
            await asyncio.sleep(0)
            return id(clients.get())

        return set(await asyncio.gather(*(one() for _ in range(20))))

    assert len(asyncio.run(many())) == 1


def test_the_factory_runs_once_per_loop_even_from_racing_threads() -> None:
    calls: list[Client] = []
    lock = threading.Lock()

    def factory() -> Client:
        client = Client()
        with lock:
            calls.append(client)
        return client

    clients = PerLoop(factory)
    loops = [asyncio.new_event_loop() for _ in range(4)]
    results: list[Client] = []

    async def get() -> Client:
        return clients.get()

    def work(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        results.append(loop.run_until_complete(get()))

    threads = [threading.Thread(target=work, args=(loop,)) for loop in loops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for loop in loops:
        loop.close()
    assert len(calls) == 4 and {id(c) for c in results} == {id(c) for c in calls}


def test_get_outside_a_running_loop_is_an_error() -> None:
    clients = PerLoop(Client)
    with pytest.raises(RuntimeError):
        clients.get()


def test_pop_current_hands_back_the_running_loops_client_and_forgets_it() -> None:
    clients = PerLoop(Client)

    async def in_one_loop() -> None:
        mine = clients.get()
        assert clients.pop_current() is mine  # handed back, to be closed in this loop
        assert clients.pop_current() is None  # nothing left to pop
        assert clients.get() is not mine  # the next get() makes a new one

    asyncio.run(in_one_loop())


def test_pop_current_leaves_other_loops_alone() -> None:
    clients = PerLoop(Client)

    async def get() -> Client:
        return clients.get()

    async def pop() -> Client | None:
        return clients.pop_current()

    loop = asyncio.new_event_loop()
    try:
        other = loop.run_until_complete(get())
        assert asyncio.run(pop()) is None  # a loop that never asked has nothing to pop
        assert loop.run_until_complete(get()) is other
    finally:
        loop.close()


def test_clear_forgets_every_loops_client() -> None:
    clients = PerLoop(Client)
    loop = asyncio.new_event_loop()

    async def get() -> Client:
        return clients.get()

    try:
        before = loop.run_until_complete(get())
        clients.clear()
        assert loop.run_until_complete(get()) is not before
    finally:
        loop.close()


def test_a_collected_loop_takes_its_client_with_it() -> None:
    clients = PerLoop(Client)

    async def get() -> weakref.ref[Client]:
        return weakref.ref(clients.get())

    made = [asyncio.run(get()) for _ in range(3)]
    gc.collect()
    assert [ref() for ref in made] == [None, None, None]  # the last one included
