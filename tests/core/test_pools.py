"""The bounded pools of ``sessionkit.storage`` (the PostgreSQL and MySQL plugins' too), with
stand-in connections (no server): bounds, waits and their errors, which connection is handed
out, what is closed how, a loop that ends, and a forked child; then as a third-party plugin
uses them, through the public import only, and no first-party plugin reaching behind it."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sessionkit import StorageError
from sessionkit.storage import AsyncPool, DriverOps, PoolClosed, PoolTimeout, SyncPool

REPO = Path(__file__).resolve().parents[2]


class Conn:
    """A connection: numbered in the order made; remembers how it was closed."""

    made = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(self.made)
        self.dead = False
        self.closed_by: list[str] = []


class Driver:
    """The callables a pool is given, keeping count of what the pool asked."""

    def __init__(self) -> None:
        self.made: list[Conn] = []
        self.deadlines: list[float] = []
        self.fail: BaseException | None = None
        self.hold: asyncio.Event | None = None

    def connect(self) -> Conn:
        if self.fail is not None:
            raise self.fail
        conn = Conn()
        self.made.append(conn)
        return conn

    async def aconnect(self, deadline: float) -> Conn:
        self.deadlines.append(deadline)
        if self.hold is not None:
            await self.hold.wait()
        return self.connect()

    def alive(self, conn: Conn) -> bool:
        return not conn.dead

    def closer(self, how: str) -> Any:
        def close(conn: Conn) -> None:
            conn.closed_by.append(how)

        return close

    def ops(self) -> DriverOps[Conn]:
        return DriverOps(
            alive=self.alive,
            discard=self.closer("discard"),
            close=self.closer("close"),
            abandon=self.closer("abandon"),
        )

    def sync_pool(self, size: int = 2, wait: float = 0.05) -> SyncPool[Conn]:
        return SyncPool(self.connect, self.ops(), size=size, wait=wait)

    def async_pool(self, size: int = 2, wait: float = 0.05, **more: Any) -> AsyncPool[Conn]:
        return AsyncPool(self.aconnect, self.ops(), size=size, wait=wait, **more)


class DriverTimeout(Exception):
    """A driver's own timeout class (psycopg_pool's, for the PostgreSQL plugin)."""


class DriverClosed(Exception):
    pass


# -- the async pool ---------------------------------------------------------------------------


def test_async_reuses_the_most_recently_returned_and_connects_only_when_none_is_idle() -> None:
    driver = Driver()
    pool = driver.async_pool(size=3)

    async def run() -> None:
        a, b = await pool.acquire(), await pool.acquire()
        assert driver.made == [a, b]
        pool.release(a, broken=False)
        pool.release(b, broken=False)
        assert pool.idle() == 2
        assert await pool.acquire() is b  # last in, first out: the surplus stays idle
        assert await pool.acquire() is a
        assert pool.idle() == 0
        await pool.acquire()
        assert len(driver.made) == 3

    asyncio.run(run())


def test_async_waits_for_a_connection_then_fails_with_the_drivers_error() -> None:
    driver = Driver()
    pool = driver.async_pool(size=1, timeout_error=DriverTimeout)

    async def run() -> None:
        held = await pool.acquire()
        began = time.monotonic()
        with pytest.raises(DriverTimeout, match=r"no connection came free within 0\.05 s"):
            await pool.acquire()
        assert 0.04 < time.monotonic() - began < 0.5
        with pytest.raises(DriverTimeout, match=r"within 0\.01 s"):
            await pool.acquire(0.01)  # a call's own timeout
        waiting = asyncio.ensure_future(pool.acquire(1.0))
        await asyncio.sleep(0.01)
        pool.release(held, broken=False)
        assert await waiting is held  # handed the connection given back
        assert len(driver.made) == 1

    asyncio.run(run())


def test_async_default_errors_are_the_pools_own() -> None:
    driver = Driver()
    pool = driver.async_pool(size=1)

    async def run() -> None:
        await pool.acquire()
        with pytest.raises(PoolTimeout):
            await pool.acquire()
        pool.close()
        with pytest.raises(PoolClosed):
            await pool.acquire()

    asyncio.run(run())


def test_async_waiters_are_served_in_order_and_a_cancelled_one_passes_its_turn_on() -> None:
    driver = Driver()
    pool = driver.async_pool(size=1, wait=1.0)

    async def run() -> None:
        held = await pool.acquire()
        first = asyncio.ensure_future(pool.acquire())
        second = asyncio.ensure_future(pool.acquire())
        third = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.01)
        pool.release(held, broken=False)  # handed to `first`, which is cancelled before it runs
        first.cancel()
        assert await second is held
        assert not third.done()
        pool.release(held, broken=False)
        assert await third is held
        pool.release(held, broken=False)
        # No slot was lost: the pool still holds one connection, free.
        assert await pool.acquire(0.01) is held

    asyncio.run(run())


def test_async_never_hands_out_a_dead_idle_connection() -> None:
    driver = Driver()
    pool = driver.async_pool(size=3)

    async def run() -> None:
        a, b = await pool.acquire(), await pool.acquire()
        pool.release(a, broken=False)
        pool.release(b, broken=False)
        b.dead = True  # the server closed it while idle
        assert await pool.acquire() is a
        assert b.closed_by == ["discard"]
        a.dead = True
        pool.release(a, broken=False)
        fresh = await pool.acquire()
        assert fresh not in (a, b)
        assert a.closed_by == ["discard"]

    asyncio.run(run())


def test_async_a_broken_connection_is_closed_and_its_slot_freed() -> None:
    driver = Driver()
    pool = driver.async_pool(size=1)

    async def run() -> None:
        conn = await pool.acquire()
        pool.release(conn, broken=True)
        assert conn.closed_by == ["discard"]
        assert pool.idle() == 0
        assert await pool.acquire() is not conn  # the slot is free again: a new one

    asyncio.run(run())


def test_async_a_failed_or_cancelled_connect_frees_its_slot_and_gets_the_deadline() -> None:
    driver = Driver()
    pool = driver.async_pool(size=1, wait=2.0)

    async def run() -> None:
        driver.fail = OSError("refused")
        began = time.monotonic()
        with pytest.raises(OSError, match="refused"):
            await pool.acquire(0.5)
        assert began + 0.5 <= driver.deadlines[-1] <= time.monotonic() + 0.5
        driver.fail = None
        driver.hold = asyncio.Event()
        connecting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.01)
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        driver.hold = None
        assert isinstance(await pool.acquire(0.01), Conn)  # the slot came back both times

    asyncio.run(run())


def test_async_close_closes_idle_now_and_busy_as_they_come_back() -> None:
    driver = Driver()
    pool = driver.async_pool(size=3, wait=1.0, closed_error=DriverClosed)

    async def run() -> None:
        idle, busy = await pool.acquire(), await pool.acquire()
        pool.release(idle, broken=False)
        pool.close()
        assert pool.closed
        assert idle.closed_by == ["close"]
        assert busy.closed_by == []
        pool.release(busy, broken=False)
        assert busy.closed_by == ["discard"]
        assert pool.idle() == 0
        with pytest.raises(DriverClosed, match="the pool is closed"):
            await pool.acquire()

    asyncio.run(run())


def test_async_a_call_waiting_when_the_pool_closes_gets_no_connection() -> None:
    driver = Driver()
    pool = driver.async_pool(size=1, wait=1.0)

    async def run() -> None:
        held = await pool.acquire()
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.01)
        pool.close()
        pool.release(held, broken=False)
        with pytest.raises(PoolClosed):
            await waiting
        assert len(driver.made) == 1

    asyncio.run(run())


def test_async_release_dead_abandons_every_connection_idle_or_in_use() -> None:
    driver = Driver()
    pool = driver.async_pool(size=3)

    async def run() -> list[Conn]:
        conns = [await pool.acquire() for _ in range(3)]
        pool.release(conns[0], broken=True)  # closed already: not abandoned again
        pool.release(conns[1], broken=False)
        return conns

    loop = asyncio.new_event_loop()
    gone, idle, busy = loop.run_until_complete(run())
    loop.close()
    pool.release_dead()  # the loop is closed: nothing of it may be needed
    assert gone.closed_by == ["discard"]
    assert idle.closed_by == ["abandon"]
    assert busy.closed_by == ["abandon"]
    assert pool.closed and pool.idle() == 0
    pool.release_dead()
    assert busy.closed_by == ["abandon"]  # once


def test_async_without_an_abandon_a_dead_loops_connections_are_discarded() -> None:
    driver = Driver()
    ops = DriverOps(alive=driver.alive, discard=driver.closer("discard"), close=driver.closer("c"))
    pool = AsyncPool(driver.aconnect, ops, size=1, wait=0.05)
    conn = asyncio.run(pool.acquire())
    pool.release_dead()
    assert conn.closed_by == ["discard"]


def test_async_idle_ones_beyond_min_idle_are_trimmed_and_old_ones_retired() -> None:
    driver = Driver()
    pool = driver.async_pool(size=4, min_idle=2, max_idle=0.05, max_lifetime=10.0)

    async def run() -> None:
        a, b, c = await pool.acquire(), await pool.acquire(), await pool.acquire()
        pool.release(a, broken=False)
        pool.release(b, broken=False)
        await asyncio.sleep(0.08)
        pool.release(c, broken=False)  # seen now: a and b unused too long; two are kept
        assert a.closed_by == ["discard"]
        assert b.closed_by == []
        assert pool.idle() == 2

    asyncio.run(run())

    driver = Driver()
    pool = driver.async_pool(size=2, max_lifetime=0.05)

    async def aged() -> None:
        a = await pool.acquire()
        pool.release(a, broken=False)
        assert await pool.acquire() is a
        await asyncio.sleep(0.06)
        pool.release(a, broken=False)  # too old to keep
        assert a.closed_by == ["discard"]
        b = await pool.acquire()
        pool.release(b, broken=False)
        await asyncio.sleep(0.06)
        assert await pool.acquire() is not b  # too old to hand out
        assert b.closed_by == ["discard"]

    asyncio.run(aged())


def test_async_a_loop_ends_at_once_with_calls_waiting_or_connecting() -> None:
    """The pool runs no task of its own: ``asyncio.run`` ends with calls in flight."""
    driver = Driver()
    pool = driver.async_pool(size=2, wait=30.0)

    async def run() -> None:
        driver.hold = asyncio.Event()  # never set: connecting for ever
        calls = [asyncio.ensure_future(pool.acquire()) for _ in range(4)]
        await asyncio.sleep(0.01)
        assert not any(call.done() for call in calls)  # two connecting, two waiting for them

    ended = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    ended.start()
    ended.join(2.0)
    assert not ended.is_alive(), "asyncio.run() did not end: a task of the pool held it"


# -- the sync pool ----------------------------------------------------------------------------


def test_sync_bounded_reused_and_dead_ones_never_handed_out() -> None:
    driver = Driver()
    pool = driver.sync_pool(size=2, wait=0.05)
    a, b = pool.acquire(), pool.acquire()
    began = time.monotonic()
    with pytest.raises(PoolTimeout):
        pool.acquire()
    assert 0.04 < time.monotonic() - began < 0.5
    pool.release(a, broken=False)
    pool.release(b, broken=False)
    assert pool.acquire() is b
    a.dead = True
    pool.release(b, broken=True)
    assert b.closed_by == ["discard"]
    fresh = pool.acquire()
    assert fresh not in (a, b)
    assert a.closed_by == ["discard"]
    pool.release(fresh, broken=False)
    pool.close()
    assert fresh.closed_by == ["close"]
    with pytest.raises(PoolClosed):
        pool.acquire()


def test_sync_threads_share_the_bound() -> None:
    driver = Driver()
    pool = driver.sync_pool(size=2, wait=5.0)
    busy, most = 0, 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal busy, most
        for _ in range(20):
            conn = pool.acquire()
            with lock:
                busy += 1
                most = max(most, busy)
            time.sleep(0.001)
            with lock:
                busy -= 1
            pool.release(conn, broken=False)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2
    assert len(driver.made) == 2


def _child(pool: SyncPool[Conn], out: Any) -> None:
    conn = pool.acquire()
    out.send((conn.number, pool.idle()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_sync_a_forked_child_never_uses_its_parents_connections() -> None:
    driver = Driver()
    pool = driver.sync_pool(size=1)
    parents = pool.acquire()
    pool.release(parents, broken=False)
    context = multiprocessing.get_context("fork")
    out, into = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(pool, into))
    child.start()
    number, idle = out.recv()
    child.join(10)
    assert child.exitcode == 0
    assert number != parents.number  # a connection of its own
    assert idle == 0
    assert pool.acquire() is parents  # the parent's is still the parent's, and open
    assert parents.closed_by == []


# -- as a plugin uses them -----------------------------------------------------------------------


def test_a_third_party_plugin_pools_its_driver_through_the_public_face(tmp_path: Path) -> None:
    """sqlite3 as the driver; every name imported as a plugin outside this repository would
    (the pools from ``sessionkit.storage``, above)."""

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(tmp_path / "kv.db", check_same_thread=False)

    def alive(conn: sqlite3.Connection) -> bool:
        try:
            conn.total_changes  # noqa: B018 - raises once the connection is closed
        except sqlite3.ProgrammingError:
            return False
        return True

    close = sqlite3.Connection.close
    pool = SyncPool(connect, DriverOps(alive=alive, discard=close, close=close), size=2, wait=0.05)
    a, b = pool.acquire(), pool.acquire()
    a.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
    with pytest.raises(PoolTimeout) as info:
        pool.acquire()  # both busy: at most `size`, and a wait of `wait` seconds
    assert isinstance(info.value, StorageError)  # escaped, it is still answered with a 503
    pool.release(a, broken=False)
    assert pool.acquire() is a  # reused
    pool.release(b, broken=True)  # closed, never handed out again
    with pytest.raises(sqlite3.ProgrammingError):
        b.execute("SELECT 1")
    pool.release(a, broken=False)
    a.close()  # closed while idle (a server gone): not handed out either
    fresh = pool.acquire()
    assert fresh is not a and fresh is not b
    assert fresh.execute("SELECT count(*) FROM kv").fetchone() == (0,)
    pool.release(fresh, broken=False)
    pool.close()
    with pytest.raises(PoolClosed) as closed:
        pool.acquire()
    assert isinstance(closed.value, StorageError)


def test_no_first_party_plugin_imports_the_private_pools() -> None:
    """They are written against ``sessionkit.storage``, as a third-party plugin must be: no
    plugin source names ``sessionkit._pools`` at all (an import, or a docstring sending a
    reader there)."""
    sources = sorted(REPO.glob("plugins/*/sessionkit_*/*.py"))
    assert {p.parent.name for p in sources} >= {"sessionkit_mysql", "sessionkit_postgres"}
    offenders = [
        str(path.relative_to(REPO))
        for path in sources
        if "sessionkit._pools" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
