"""``PerLoop``: one client per event loop, made on first use there, reused within that loop;
the clients of loops that ended are released (their sockets closed) and dropped."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import socket
import threading
import time
import uuid
import warnings
import weakref
from datetime import timedelta

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


# -- loops that ended: their clients are released, not kept ------------------------------------


class LoopHolder:
    """Like a real asyncio client, it holds the loop it was made in (so a WeakKeyDictionary
    keyed by that loop can never drop it on its own)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.released = False


def test_the_client_of_a_closed_loop_is_released_and_dropped() -> None:
    released: list[tuple[LoopHolder, asyncio.AbstractEventLoop]] = []

    def release(client: LoopHolder, loop: asyncio.AbstractEventLoop) -> None:
        assert loop.is_closed(), "only a closed loop's client is released"
        client.released = True
        released.append((client, loop))

    clients = PerLoop(LoopHolder, release)

    async def get() -> LoopHolder:
        return clients.get()

    first = asyncio.run(get())
    assert len(clients) == 1 and not first.released
    second = asyncio.run(get())  # a new loop asks: the closed one's client goes
    assert released == [(first, first.loop)] and first.released
    assert len(clients) == 1 and not second.released
    for _ in range(50):
        asyncio.run(get())
    assert len(clients) == 1 and len(released) == 51


def test_open_loops_keep_their_clients_and_clear_releases_only_closed_ones() -> None:
    released: list[LoopHolder] = []
    clients = PerLoop(LoopHolder, lambda client, _loop: released.append(client))

    async def get() -> LoopHolder:
        return clients.get()

    kept = asyncio.new_event_loop()
    try:
        mine = kept.run_until_complete(get())
        ended = asyncio.run(get())  # closed at the end of run()
        asyncio.run(get())
        assert released == [ended]  # the open loop's client stays
        assert kept.run_until_complete(get()) is mine
        clients.clear()
        assert mine not in released and len(released) == 2
    finally:
        kept.close()


def test_a_collected_per_loop_releases_its_closed_loops_clients_only() -> None:
    """A storage used in ``asyncio.run(main())`` and then dropped without ``close()``: no new
    loop ever asks, so the sweep never runs; collecting the PerLoop releases them instead (a
    cycle through its owner included, as a storage's bound factory makes one)."""
    released: list[LoopHolder] = []

    class Owner:
        def __init__(self) -> None:
            self.clients = PerLoop(self.make, lambda client, _loop: released.append(client))

        def make(self) -> LoopHolder:
            return LoopHolder()

    owner = Owner()

    async def get(owner: Owner) -> LoopHolder:
        return owner.clients.get()

    kept = asyncio.new_event_loop()
    try:
        mine = kept.run_until_complete(get(owner))
        ended = asyncio.run(get(owner))
        dropped = weakref.ref(owner)
        del owner
        gc.collect()
        assert dropped() is None, "the finalizer must not keep the PerLoop's owner alive"
        assert released == [ended]  # the open loop's client is left to its loop
        assert not mine.released
    finally:
        kept.close()


def test_the_finalizer_gives_up_on_a_lock_held_elsewhere() -> None:
    """It also runs at interpreter exit, for every PerLoop still alive, where a daemon thread
    stopped inside ``get()`` may hold the lock: the exit must not hang on it."""
    released: list[LoopHolder] = []
    clients = PerLoop(LoopHolder, lambda client, _loop: released.append(client))

    async def get() -> LoopHolder:
        return clients.get()

    asyncio.run(get())  # a client of a loop that then closed
    done = threading.Event()
    with clients._lock:  # a thread stopped mid-call
        began = time.monotonic()
        threading.Thread(target=lambda: (clients._finalizer(), done.set()), daemon=True).start()
        assert done.wait(5), "the finalizer waited on the lock"
        waited = time.monotonic() - began
    assert 0.9 <= waited < 5 and released == []  # gave up after a second, released nothing


def test_a_release_that_fails_does_not_break_get() -> None:
    def release(_client: LoopHolder, _loop: asyncio.AbstractEventLoop) -> None:
        raise OSError("already closed")

    clients = PerLoop(LoopHolder, release)

    async def get() -> LoopHolder:
        return clients.get()

    for _ in range(3):
        asyncio.run(get())
    assert len(clients) == 1


def test_close_transports_closes_the_sockets_a_closed_loop_left_open() -> None:
    a, b = socket.socketpair()

    kept: list[object] = []

    async def open_and_leave() -> None:
        kept.append(await asyncio.open_connection(sock=a))  # a transport on a, never closed

    loop = asyncio.new_event_loop()
    loop.run_until_complete(open_and_leave())
    with pytest.raises(RuntimeError):
        PerLoop.close_transports(loop)  # an open loop's transports are not ours to close
    loop.close()
    assert PerLoop.close_transports(loop) == 1
    b.settimeout(2)
    assert b.recv(1) == b""  # the peer sees the connection closed
    assert PerLoop.close_transports(loop) == 0  # already closed: nothing left
    b.close()


def test_transports_closed_after_their_loop_report_nothing_when_collected() -> None:
    """A transport, and the stream writer over it, whose socket ``close_transports`` closed
    say they are closed: collected later, neither reports itself unclosed (a
    ``ResourceWarning``, an error under ``-W error``, in every app that runs a loop per
    request)."""
    a, b = socket.socketpair()
    kept: list[object] = []

    async def open_and_leave() -> None:
        kept.append(await asyncio.open_connection(sock=a))

    loop = asyncio.new_event_loop()
    loop.run_until_complete(open_and_leave())
    loop.close()
    assert PerLoop.close_transports(loop) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept.clear()
        del loop
        gc.collect()
    b.close()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


# -- with the real asyncio clients: one loop per request, nothing accumulates --------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


RUNS = 1000
#: Mongo clients cost more to make (a handshake and a monitor per loop): fewer runs, the same
#: signal (a leak grows by one descriptor or more per run).
MONGO_RUNS = 500


@pytest.mark.redis
def test_a_loop_per_request_leaks_no_redis_connection(redis_url: str) -> None:
    """``RUNS`` (1,000) ``asyncio.run`` calls, each reading and writing through one storage (a Django
    async view under WSGI gets a loop per request): the process's descriptors and the
    server's connections of this storage stay flat."""
    import redis

    from sessionkit_redis import RedisStorage

    name = f"sk-loops-{uuid.uuid4().hex[:8]}"
    storage = RedisStorage(redis_url, prefix=f"sessionkit-test:{name}:", client_name=name)
    raw = redis.Redis.from_url(redis_url)

    async def request(n: int) -> None:
        await storage.aset("k", b"%d" % n, timedelta(minutes=1))
        assert await storage.aget("k") == b"%d" % n

    def server_side() -> int:
        return sum(1 for client in raw.client_list() if client.get("name") == name)

    try:
        asyncio.run(request(0))
        before = (_fds(), server_side())
        for n in range(RUNS):
            asyncio.run(request(n))
        after = (_fds(), server_side())
    finally:
        storage.close()
        raw.delete(f"sessionkit-test:{name}:k")
        raw.close()
    assert after[0] <= before[0] + 3, f"descriptors {before[0]} -> {after[0]}"
    assert after[1] <= before[1] + 2, f"server connections {before[1]} -> {after[1]}"


@pytest.mark.mongo
def test_a_loop_per_request_leaks_no_mongo_connection(mongo_url: str) -> None:
    from sessionkit_mongo import MongoStorage

    storage = MongoStorage(mongo_url, collection=f"loops{uuid.uuid4().hex[:8]}")

    async def request(n: int) -> None:
        await storage.aset("k", b"%d" % n, timedelta(minutes=1))
        assert await storage.aget("k") == b"%d" % n

    try:
        asyncio.run(request(0))
        before = _fds()
        for n in range(MONGO_RUNS):
            asyncio.run(request(n))
        after = _fds()
    finally:
        storage.close()
    assert after <= before + 4, f"descriptors {before} -> {after}"


@pytest.mark.redis
def test_async_to_sync_per_request_leaks_no_redis_connection(redis_url: str) -> None:
    """What Django does for an async view served over WSGI: asgiref's ``async_to_sync``
    runs each call in a loop of its own."""
    from asgiref.sync import async_to_sync

    from sessionkit_redis import RedisStorage

    storage = RedisStorage(redis_url, prefix=f"sessionkit-test:{uuid.uuid4().hex[:8]}:")

    async def view(n: int) -> bytes | None:
        await storage.aset("k", b"%d" % n, timedelta(minutes=1))
        return await storage.aget("k")

    try:
        async_to_sync(view)(0)
        before = _fds()
        for n in range(300):
            assert async_to_sync(view)(n) == b"%d" % n
        after = _fds()
        storage.delete("k")
    finally:
        storage.close()
    assert after <= before + 3, f"descriptors {before} -> {after}"
