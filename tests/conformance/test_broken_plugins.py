"""The conformance suite fails a plugin that breaks a promise users feel, naming the promise.

Each broken storage here is the smallest believable version of a mistake seen in a real
plugin: a driver error let through, a ``take`` made of a read and a delete, an async client
kept from a closed event loop, a socket per loop never closed, a typo'd URL option accepted,
a TTL rounded down. The healthy plugins pass the same checks in their own test suites.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sessionkit import Backend
from sessionkit._discovery import InstalledBackend, _default_registry

from .conftest import RunSuite

HEADER = """
import asyncio, socket, time
from datetime import timedelta
from sessionkit import StorageError
from sessionkit.testing import StorageConformance
from sessionkit_memory import MemoryStorage
from sessionkit_sqlite import SQLiteStorage
"""


def test_a_driver_error_that_escapes_fails(run_suite: RunSuite) -> None:
    run = run_suite(
        HEADER
        + """
class Escaping(MemoryStorage):
    def get(self, key):
        raise ConnectionRefusedError("connection refused")       # not wrapped at all
    def set(self, key, value, ttl):
        raise StorageError("server down") from None               # wrapped, cause dropped
    async def aget(self, key):
        raise ConnectionRefusedError("connection refused")

class TestEscaping(StorageConformance):
    clock_injectable = True
    def make_storage(self, namespace, clock):
        return MemoryStorage(clock=clock)
    def make_broken_storage(self, namespace):
        return Escaping()
""",
        "driver_errors",
    )
    sync, asynchronous = run.failed("[sync]"), run.failed("[async]")
    assert "driver errors surface as sessionkit.StorageError" in sync
    assert "get() let builtins.ConnectionRefusedError escape" in sync
    assert "set() raised StorageError without the driver error as cause" in sync
    assert "delete() returned None instead of raising StorageError" in sync
    assert "aget() let builtins.ConnectionRefusedError escape" in asynchronous


def test_a_plugin_that_declares_no_fault_hook_fails(run_suite: RunSuite) -> None:
    run = run_suite(
        HEADER
        + """
class TestSilent(StorageConformance):
    def make_storage(self, namespace, clock):
        return MemoryStorage()
""",
        "driver_errors",
    )
    assert "must implement make_broken_storage()" in run.failed("[sync]")


def test_a_hanging_driver_fails_within_the_bound(run_suite: RunSuite) -> None:
    run = run_suite(
        HEADER
        + """
class Hanging(MemoryStorage):
    def get(self, key):
        time.sleep(1.5)
        raise StorageError("late") from OSError("timed out")

class TestHanging(StorageConformance):
    fault_timeout = 0.5
    def make_storage(self, namespace, clock):
        return MemoryStorage()
    def make_broken_storage(self, namespace):
        return Hanging()
""",
        "driver_errors and sync",
    )
    assert "get() took" in run.failed("[sync]")


READ_THEN_DELETE = """
class ReadThenDelete(SQLiteStorage):
    '''take as two requests, as a plugin without a server-side atomic delete might write it.'''
    def take(self, key):
        if self.get(key) is None:
            return False
        time.sleep(0.002)  # the round trip between the two requests
        self.delete(key)
        return True
    def replace_if(self, key, expected, value, ttl):
        if self.get(key) != expected:
            return False
        time.sleep(0.002)
        self.set(key, value, ttl)
        return True
    def create(self, key, value, ttl):
        if self.get(key) is not None:
            return False
        time.sleep(0.002)
        self.set(key, value, ttl)
        return True
    async def atake(self, key):
        return await asyncio.to_thread(self.take, key)
    async def areplace_if(self, key, expected, value, ttl):
        return await asyncio.to_thread(self.replace_if, key, expected, value, ttl)
    async def acreate(self, key, value, ttl):
        return await asyncio.to_thread(self.create, key, value, ttl)
"""


@pytest.mark.parametrize("method", ["take", "replace_if", "create"])
def test_a_read_then_write_atomic_method_fails(run_suite: RunSuite, method: str) -> None:
    run = run_suite(
        HEADER
        + READ_THEN_DELETE
        + """
import pytest

class TestReadThenDelete(StorageConformance):
    clock_injectable = True
    atomic = True
    creating = True
    race_rounds = 6
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path):
        self.database = tmp_path / "s.db"
    def make_storage(self, namespace, clock):
        return ReadThenDelete(self.database, table=namespace, clock=clock)
""",
        f"test_{method}_is_atomic_under_concurrent_callers",
    )
    for mode in ("[sync]", "[async]"):
        assert f"promise broken: {method} is atomic" in run.failed(mode)


LOOP_BOUND = """
class LoopBoundClient:
    '''Like redis.asyncio.Redis or AsyncMongoClient: usable only in the loop it was made in.'''
    def __init__(self):
        self.loop = asyncio.get_running_loop()
    def check(self):
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError("Task got Future attached to a different loop")

class CachedClient(MemoryStorage):
    _client = None
    def _async(self):
        if self._client is None:
            self._client = LoopBoundClient()   # cached once, reused by every later loop
        self._client.check()
    async def aset(self, key, value, ttl):
        self._async()
        self.set(key, value, ttl)
    async def aget(self, key):
        self._async()
        return self.get(key)

class SocketPerLoop(MemoryStorage):
    '''A client per loop (right), never closed (wrong): each holds a connection open.'''
    def __init__(self, **kw):
        super().__init__(**kw)
        self.held = []
    async def aset(self, key, value, ttl):
        self.held.append(socket.socketpair())
        self.set(key, value, ttl)
"""


def test_an_async_client_shared_across_loops_fails(run_suite: RunSuite) -> None:
    run = run_suite(
        HEADER
        + LOOP_BOUND
        + """
class TestCachedClient(StorageConformance):
    clock_injectable = True
    def make_storage(self, namespace, clock):
        return CachedClient(clock=clock)
""",
        "successive_event_loops",
    )
    text = run.failed("successive_event_loops")
    assert "an async client belongs to the event loop that made it" in text
    assert "loop 2 of 3" in text and "attached to a different loop" in text


def test_connections_left_open_after_close_fail(run_suite: RunSuite) -> None:
    run = run_suite(
        HEADER
        + LOOP_BOUND
        + """
class TestSocketPerLoop(StorageConformance):
    clock_injectable = True
    def make_storage(self, namespace, clock):
        return SocketPerLoop(clock=clock)
""",
        "successive_event_loops",
    )
    assert "aclose() and close() release every connection" in run.failed("successive")


class _Sloppy:
    """Options are read with ``.get`` and the rest ignored: ``prefx=`` goes unnoticed."""

    @staticmethod
    def open(url: str, options: dict[str, str]) -> object:
        from sessionkit_memory import MemoryStorage

        options.get("prefix")
        return MemoryStorage()


@pytest.fixture
def sloppy_scheme() -> Iterator[str]:
    """A ``sloppy://`` backend registered in this process, as if installed."""
    backends = _default_registry.by_scheme()
    backend = Backend(name="sloppy", schemes=("sloppy",), open=_Sloppy.open, description="x")
    backends["sloppy"] = InstalledBackend(backend, "sloppy-plugin", "0")
    yield "sloppy"
    del backends["sloppy"]


def test_a_plugin_accepting_unknown_url_options_fails(
    run_suite: RunSuite, sloppy_scheme: str
) -> None:
    run = run_suite(
        HEADER
        + f"""
class TestSloppy(StorageConformance):
    bad_urls = ["{sloppy_scheme}://?prefx=a"]
    def make_storage(self, namespace, clock):
        return MemoryStorage()
    def storage_url(self, namespace):
        return "{sloppy_scheme}://?prefix=" + namespace
""",
        "bad_urls_are_refused or unknown_url_option",
    )
    bad = run.failed("bad_urls")
    assert (
        "refused with sessionkit.ConfigError" in bad and "'sloppy://?prefx=a' was accepted" in bad
    )
    assert "an unknown URL option is refused" in run.failed("unknown_url_option")


def test_a_plugin_declaring_no_bad_urls_fails(run_suite: RunSuite) -> None:
    run = run_suite(
        HEADER
        + """
class TestUndeclared(StorageConformance):
    def make_storage(self, namespace, clock):
        return MemoryStorage()
""",
        "bad_urls_are_refused",
    )
    assert "declares no bad_urls" in run.failed("bad_urls")


def test_a_ttl_rounded_down_fails(run_suite: RunSuite) -> None:
    run = run_suite(
        HEADER
        + """
class Rounding(MemoryStorage):
    def set(self, key, value, ttl):
        ttl = ttl and timedelta(seconds=int(ttl.total_seconds()))  # 1.5 s becomes 1 s
        super().set(key, value, ttl)

class TestRounding(StorageConformance):
    clock_injectable = True
    def make_storage(self, namespace, clock):
        return Rounding(clock=clock)
""",
        "rounded_down",
    )
    assert "a record lives at least its TTL" in run.failed("rounded_down")


def test_a_long_ttl_that_overflows_fails(run_suite: RunSuite) -> None:
    run = run_suite(
        HEADER
        + """
class Overflowing(MemoryStorage):
    def set(self, key, value, ttl):
        if ttl is not None and ttl.total_seconds() > 2**31:  # a 32-bit seconds field
            raise OverflowError("TTL too large")
        super().set(key, value, ttl)

class TestOverflowing(StorageConformance):
    clock_injectable = True
    def make_storage(self, namespace, clock):
        return Overflowing(clock=clock)
""",
        "long_ttl",
    )
    assert "OverflowError" in run.failed("[sync]")


def test_a_scan_that_pages_by_offset_fails(run_suite: RunSuite) -> None:
    """A walk in pages by position (SQL's ``LIMIT … OFFSET``) skips keys when rows before the
    page are deleted, and repeats them when rows are inserted there."""
    run = run_suite(
        HEADER
        + """
class OffsetPaging(MemoryStorage):
    def scan(self):
        offset = 0
        while True:
            with self._lock:
                now = self._clock()
                page = sorted(self._data)[offset : offset + 20]
                rows = [(k, self._data[k][0]) for k in page if self._data[k][1] > now]
            if not page:
                return
            yield from rows
            offset += 20
            time.sleep(0.005)  # the round trip to the next page

class TestOffsetPaging(StorageConformance):
    clock_injectable = True
    def make_storage(self, namespace, clock):
        return OffsetPaging(clock=clock)
""",
        "scan_during_concurrent_writes",
    )
    assert "scan during concurrent writes must yield each untouched live key once" in (
        run.failed("test_scan_during_concurrent_writes")
    )


def test_failures_show_the_compared_values(run_suite: RunSuite) -> None:
    """The suite's modules are assertion-rewritten: a bare ``assert got == b"value"`` in the
    suite reports both sides, not a bare AssertionError."""
    run = run_suite(
        HEADER
        + """
class Garbling(MemoryStorage):
    def get(self, key):
        value = super().get(key)
        return None if value is None else value + b"!"

class TestGarbling(StorageConformance):
    clock_injectable = True
    def make_storage(self, namespace, clock):
        return Garbling(clock=clock)
""",
        "set_then_get_returns_the_same_bytes and sync",
    )
    assert "assert b'value!' == b'value'" in run.failed("[sync]")
