"""How long a storage call takes to fail when the server stops answering, and how it recovers.

Real faults, on a private server (``start_postgres()``): every process of it frozen
(``SIGSTOP``: the kernel still accepts connections and acknowledges what is sent, nothing
answers), killed (``SIGKILL``: connections reset, new ones refused), stopped and started again
(``SIGINT``: each session told "terminating connection due to administrator command"), and a
socket that accepts and never answers. Each call must end in a
:class:`~sessionkit.StorageError` within ``pool_timeout + statement_timeout + 0.5`` seconds,
and once the server is back, calls must work again without a single failure.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from sessionkit import StorageError
from sessionkit_postgres import PostgresStorage
from tests._server_postgres import PostgresProcess, start_postgres

pytestmark = pytest.mark.postgres

HOUR = timedelta(hours=1)
#: statement_timeout 0.5 (+ 0.5 s for the client), pool_timeout 0.5: every call ends within 1.5 s.
SHORT: dict[str, Any] = {"statement_timeout": 0.5, "pool_timeout": 0.5}
STATEMENT_BOUND = 1.0
SLACK = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresProcess]:
    server = start_postgres(durable=True)  # what was committed survives kill()
    yield server
    server.kill()
    server.close()


def failure_time(call: Callable[[], object]) -> float:
    """Seconds until ``call()`` raised StorageError (chained to a psycopg error)."""
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        call()
    assert isinstance(caught.value.__cause__, psycopg.Error), caught.value.__cause__
    return time.monotonic() - began


async def afailure_time(call: Callable[[], Any]) -> float:
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        await call()
    assert isinstance(caught.value.__cause__, psycopg.Error), caught.value.__cause__
    return time.monotonic() - began


def test_a_frozen_server_fails_sync_and_async_calls_within_the_bound(
    server: PostgresProcess,
) -> None:
    storage = PostgresStorage(server.url, table="frozen", **SHORT)

    async def scenario() -> None:
        await storage.aset("k", b"v", HOUR)  # this loop's pool holds a connection
        storage.set("k", b"v", HOUR)  # and so does the sync pool
        with server.frozen():
            took = failure_time(lambda: storage.get("k"))
            assert STATEMENT_BOUND - 0.05 < took < STATEMENT_BOUND + SLACK
            took = await afailure_time(lambda: storage.aget("k"))
            assert STATEMENT_BOUND - 0.05 < took < STATEMENT_BOUND + SLACK
            # No connection left: a new one cannot be made; the wait for it is the bound.
            assert failure_time(lambda: storage.set("k", b"w", HOUR)) < 0.5 + SLACK
            assert await afailure_time(lambda: storage.atake("k")) < 0.5 + SLACK
        # Thawed: the dropped connections were replaced, nothing was written meanwhile.
        assert storage.get("k") == b"v"
        assert await storage.aget("k") == b"v"
        await storage.aclose()

    try:
        asyncio.run(scenario())
    finally:
        storage.close()


def test_many_calls_in_flight_on_a_frozen_server_all_end_within_the_bound(
    server: PostgresProcess,
) -> None:
    storage = PostgresStorage(server.url, table="frozen_many", pool_max_size=4, **SHORT)
    bound = 0.5 + STATEMENT_BOUND + SLACK
    took: list[float] = []

    def one() -> None:
        took.append(failure_time(lambda: storage.get("k")))

    async def scenario() -> list[float]:
        await asyncio.gather(*(storage.aset(f"k{i}", b"v", HOUR) for i in range(4)))
        with server.frozen():
            threads = [threading.Thread(target=one) for _ in range(10)]
            for thread in threads:
                thread.start()
            waits = await asyncio.gather(
                *(afailure_time(lambda: storage.aget("k")) for _ in range(50))
            )
            for thread in threads:
                thread.join()
        await storage.aclose()
        return list(waits)

    try:
        storage.set("k", b"v", HOUR)
        waits = asyncio.run(scenario())
    finally:
        storage.close()
    assert len(took) == 10
    assert max(took + waits) < bound


def test_with_the_defaults_a_frozen_server_fails_a_call_within_three_seconds(
    server: PostgresProcess,
) -> None:
    """The documented default: statement_timeout 2.5 s, and the client's 0.5 s after it."""
    storage = PostgresStorage(server.url, table="frozen_defaults")
    try:
        storage.set("k", b"v", HOUR)
        with server.frozen():
            took = failure_time(lambda: storage.get("k"))
        assert 2.95 < took < 3.0 + SLACK
        assert storage.get("k") == b"v"
    finally:
        storage.close()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung proxy, a full backlog)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(128)
        yield hole.getsockname()[1]


def test_a_black_hole_fails_within_the_wait_for_a_connection(black_hole: int) -> None:
    storage = PostgresStorage(f"postgresql://postgres@127.0.0.1:{black_hole}/db", **SHORT)
    try:
        assert failure_time(lambda: storage.get("k")) < 0.5 + SLACK

        async def acall() -> float:
            took = await afailure_time(lambda: storage.aget("k"))
            await storage.aclose()
            return took

        assert asyncio.run(acall()) < 0.5 + SLACK
    finally:
        storage.close()


def test_a_loop_that_ends_while_connecting_shuts_down_at_once(black_hole: int) -> None:
    """``asyncio.run()`` cancels what is left when its coroutine returns: a connection attempt
    in flight must end with it. (psycopg_pool's AsyncConnectionPool swallows that
    cancellation in its worker, and this hung for ever; see ``_loop_pool``.)"""
    storage = PostgresStorage(f"postgresql://postgres@127.0.0.1:{black_hole}/db", **SHORT)

    async def leave_early() -> None:
        asyncio.get_running_loop().create_task(storage.aget("k"))  # left connecting
        await asyncio.sleep(0.1)

    finished = threading.Event()

    def run() -> None:
        asyncio.run(leave_early())
        finished.set()

    thread = threading.Thread(target=run, daemon=True)
    began = time.monotonic()
    thread.start()
    try:
        assert finished.wait(5), "asyncio.run() did not return: a task outlived its cancellation"
        assert time.monotonic() - began < 1.0
    finally:
        storage.close()


def fill_pool(storage: PostgresStorage, connections: int) -> None:
    """Make the sync pool hold ``connections`` idle connections (calls at once need them)."""
    barrier = threading.Barrier(connections)

    def use(conn: psycopg.Connection[Any], statements: Any) -> None:
        barrier.wait(timeout=10)
        conn.execute("SELECT 1")

    threads = [
        threading.Thread(target=storage._run, args=("fill", use)) for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert storage._sync_pool().get_stats()["pool_available"] == connections


def test_a_killed_server_fails_calls_at_once_and_they_recover_when_it_is_back(
    server: PostgresProcess,
) -> None:
    storage = PostgresStorage(server.url, table="killed", pool_timeout=1.0)
    try:
        storage.set("k", b"v", HOUR)
        fill_pool(storage, 3)
        server.kill()
        # The idle connections are dead; the first call finds them so, then the refusal.
        with pytest.raises(StorageError, match="no connection") as caught:
            storage.get("k")
        assert "refused" in str(caught.value.__cause__).lower()
        # While the server refuses, calls fail at once, but for one a second that tries again.
        slow = 0
        began = time.monotonic()
        while time.monotonic() - began < 0.5:
            took = failure_time(lambda: storage.get("k"))
            slow += took > 0.1
        assert slow <= 1
        server.start()
        assert storage.get("k") == b"v"  # the first call after the restart: no error
    finally:
        if not server.running:
            server.start()
        storage.close()


def test_a_restart_costs_no_call_an_error_once_the_server_is_back(
    server: PostgresProcess,
) -> None:
    """Fast shutdown and start: every idle connection was ended by the server. Each is found
    so, the call sent again on another, and none of them reaches the caller."""
    storage = PostgresStorage(server.url, table="restarted")

    async def scenario() -> None:
        await asyncio.gather(*(storage.aset(f"k{i}", b"v", HOUR) for i in range(3)))
        fill_pool(storage, 3)
        server.restart()
        assert storage.get("k0") == b"v"
        assert storage.take("k1") is True
        assert await storage.aget("k0") == b"v"
        assert await storage.atake("k2") is True
        await storage.aclose()

    try:
        asyncio.run(scenario())
    finally:
        storage.close()
