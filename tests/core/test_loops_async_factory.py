"""``PerLoop.from_async``: clients made with ``await``, one per loop even when several
coroutines ask at once; a failed or cancelled making leaves nothing behind."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from sessionkit.storage import PerLoop


class Client:
    made = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(self.made)
        self.loop = asyncio.get_running_loop()  # as asyncio drivers do when made


def test_one_client_per_loop_even_when_coroutines_ask_together() -> None:
    makings = 0

    async def make() -> Client:
        nonlocal makings
        makings += 1
        await asyncio.sleep(0.01)  # connecting
        return Client()

    clients = PerLoop.from_async(make)

    async def many() -> list[Client]:
        return list(await asyncio.gather(*(clients.aget() for _ in range(10))))

    got = asyncio.run(many())
    assert makings == 1 and len({id(c) for c in got}) == 1
    other = asyncio.run(many())
    assert makings == 2 and other[0] is not got[0]  # a new loop, a new client


def test_the_client_is_made_inside_its_loop_and_get_works_after() -> None:
    async def make() -> Client:
        return Client()

    clients = PerLoop.from_async(make)

    async def use() -> None:
        with pytest.raises(RuntimeError, match=r"await per_loop\.aget"):
            clients.get()
        client = await clients.aget()
        assert client.loop is asyncio.get_running_loop()
        assert clients.get() is client

    asyncio.run(use())


def test_a_failed_making_reaches_every_waiter_and_the_next_call_retries() -> None:
    attempts = 0

    async def make() -> Client:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        if attempts == 1:
            raise ConnectionError("refused")
        return Client()

    clients = PerLoop.from_async(make)

    async def run() -> Client:
        results = await asyncio.gather(*(clients.aget() for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)
        assert len(clients) == 0
        return await clients.aget()

    assert isinstance(asyncio.run(run()), Client)
    assert attempts == 2


def test_a_cancelled_making_is_taken_over_by_a_waiter() -> None:
    async def run() -> None:
        first_in = asyncio.Event()

        async def make() -> Client:
            if not first_in.is_set():
                first_in.set()
                await asyncio.sleep(10)  # the first making hangs, then is cancelled
            return Client()

        clients = PerLoop.from_async(make)
        maker = asyncio.create_task(clients.aget())
        await first_in.wait()
        waiter = asyncio.create_task(clients.aget())
        await asyncio.sleep(0)
        maker.cancel()
        client = await asyncio.wait_for(waiter, 5)
        assert isinstance(client, Client)
        assert await clients.aget() is client
        with pytest.raises(asyncio.CancelledError):
            await maker

    asyncio.run(run())


def test_aget_serves_a_plain_factory_too() -> None:
    clients = PerLoop(Client)

    async def both() -> bool:
        return await clients.aget() is clients.get()

    assert asyncio.run(both())


def test_closed_loops_clients_are_released_when_a_new_loop_makes_one() -> None:
    released: list[int] = []

    async def make() -> Client:
        return Client()

    clients = PerLoop.from_async(make, release=lambda client, loop: released.append(client.number))
    first = asyncio.run(clients.aget())
    asyncio.run(clients.aget())
    assert released == [first.number]
    assert len(clients) == 1
