"""``SyncStorage``: the async twins derived from the sync methods, run inline, in a worker
thread, or inline first, as the class says; made only for the methods the class has."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sessionkit.storage import (
    AsyncCall,
    AsyncFromSyncMixin,
    AtomicStorage,
    ConditionalStorage,
    CreatingStorage,
    Storage,
    SyncStorage,
    WouldBlock,
    current_async_call,
)


class Recording(SyncStorage):
    """Records, for each call, the thread it ran in and the async call it ran for."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.calls: list[tuple[str, threading.Thread, AsyncCall | None]] = []

    def _note(self, name: str) -> None:
        self.calls.append((name, threading.current_thread(), current_async_call()))

    def get(self, key: str) -> bytes | None:
        self._note("get")
        return self.data.get(key)

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        self._note("set")
        self.data[key] = value

    def delete(self, key: str) -> None:
        self._note("delete")
        self.data.pop(key, None)

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        self._note("touch")
        return key in self.data

    def reset(self) -> None:
        self._note("reset")
        self.data.clear()

    def close(self) -> None:
        self._note("close")


class Inline(Recording):
    async_calls = "inline"


class Full(Recording):
    """Every optional method too."""

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        self._note("create")
        return self.data.setdefault(key, value) is value

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        self._note("replace")
        if key not in self.data:
            return False
        self.data[key] = value
        return True

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        self._note("replace_if")
        return self.data.get(key) == expected and self.replace(key, value, ttl)

    def take(self, key: str) -> bool:
        self._note("take")
        return self.data.pop(key, None) is not None

    def count(self) -> int:
        self._note("count")
        return len(self.data)

    def scan(self) -> Iterator[tuple[str, bytes]]:
        self._note("scan")
        yield from sorted(self.data.items())

    def purge_expired(self) -> int:
        self._note("purge_expired")
        return 0


class FullInline(Full):
    async_calls = "inline"


TWINS = ["aget", "aset", "adelete", "atouch", "areset", "aclose"]
OPTIONAL = ["acreate", "areplace", "areplace_if", "atake", "acount", "ascan", "apurge_expired"]


async def _drive(storage: Any) -> None:
    await storage.aset("k", b"v", None)
    assert await storage.aget("k") == b"v"
    assert await storage.atouch("k", None) is True
    await storage.adelete("k")
    assert await storage.aget("k") is None
    await storage.areset()
    await storage.aclose()


def test_the_default_runs_each_twin_in_a_worker_thread() -> None:
    storage = Recording()
    asyncio.run(_drive(storage))
    names = [name for name, _, _ in storage.calls]
    assert names == ["set", "get", "touch", "delete", "get", "reset", "close"]
    assert all(thread is not threading.main_thread() for _, thread, _ in storage.calls)
    # Each request-path call knows it runs for a twin, outside the loop; close is plain.
    assert all(call is not None and not call.inline for _, _, call in storage.calls[:-1])
    assert storage.calls[-1][2] is None


def test_inline_twins_run_on_the_loop_without_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_thread(*args: Any) -> Any:
        raise AssertionError("an inline twin went to a worker thread")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    storage = Inline()
    asyncio.run(_drive(storage))
    assert all(thread is threading.main_thread() for _, thread, _ in storage.calls)


def test_a_plain_sync_call_runs_for_no_async_call() -> None:
    storage = Recording()
    storage.set("k", b"v", None)
    assert storage.calls[0][2] is None


@pytest.mark.parametrize("cls", [Recording, Inline])
def test_optional_twins_exist_only_with_their_sync_method(cls: type[Recording]) -> None:
    storage = cls()
    for name in TWINS:
        assert hasattr(storage, name), name
    for name in OPTIONAL:
        assert not hasattr(storage, name), name
    assert isinstance(storage, Storage)
    assert not isinstance(storage, (ConditionalStorage, CreatingStorage, AtomicStorage))


@pytest.mark.parametrize("cls", [Full, FullInline])
def test_optional_twins_follow_the_sync_methods(cls: type[Full]) -> None:
    storage = cls()
    assert isinstance(storage, AtomicStorage) and isinstance(storage, CreatingStorage)

    async def drive() -> list[tuple[str, bytes]]:
        assert await storage.acreate("k", b"v", None) is True
        assert await storage.acreate("k", b"w", None) is False
        assert await storage.areplace("k", b"w", None) is True
        assert await storage.areplace_if("k", b"x", b"y", None) is False
        assert await storage.areplace_if("k", b"w", b"y", None) is True
        assert await storage.acount() == 1
        assert await storage.apurge_expired() == 0
        scanned = [item async for item in storage.ascan()]
        assert await storage.atake("k") is True
        assert await storage.atake("k") is False
        return scanned

    assert asyncio.run(drive()) == [("k", b"y")]


def test_operator_tools_run_in_a_thread_even_for_an_inline_storage() -> None:
    storage = FullInline()
    asyncio.run(storage.acount())
    ((name, thread, call),) = storage.calls
    assert name == "count" and thread is not threading.main_thread() and call is None


def test_ascan_pulls_a_long_walk_in_batches() -> None:
    storage = Full()
    storage.data = {f"k{i:04}": b"v" for i in range(600)}

    async def walk() -> list[str]:
        return [key async for key, _ in storage.ascan()]

    assert asyncio.run(walk()) == sorted(storage.data)


def test_a_twin_written_by_hand_is_kept_in_subclasses_too() -> None:
    class Handmade(Recording):
        async def aget(self, key: str) -> bytes | None:
            return b"by hand"

    class Child(Handmade):
        async_calls = "inline"

    assert asyncio.run(Handmade().aget("k")) == b"by hand"
    assert asyncio.run(Child().aget("k")) == b"by hand"


def test_a_subclass_adding_an_optional_method_gets_its_twin() -> None:
    class WithTake(Recording):
        def take(self, key: str) -> bool:
            return True

    assert asyncio.run(WithTake().atake("k")) is True
    assert not hasattr(Recording(), "atake")  # the parent is left as it was


def test_a_subclass_changing_the_mode_rederives() -> None:
    class Back(Inline):
        async_calls = "thread"  # type: ignore[assignment]  # mypy narrowed the parent's to "inline"

    storage = Back()
    asyncio.run(storage.aget("k"))
    assert storage.calls[0][1] is not threading.main_thread()


def test_an_unknown_mode_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="async_calls must be one of"):

        class Wrong(Recording):
            async_calls = "sometimes"  # type: ignore[assignment]


class Contended(Recording):
    """Would wait while ``busy`` is set: its loop attempt says so instead."""

    async_calls = "inline_first"

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def get(self, key: str) -> bytes | None:
        call = current_async_call()
        self._note("get")
        if self.busy and call is not None and call.inline:
            raise WouldBlock
        return self.data.get(key)


def test_inline_first_stays_on_the_loop_when_nothing_waits() -> None:
    storage = Contended()
    asyncio.run(storage.aget("k"))
    ((_, thread, call),) = storage.calls
    assert thread is threading.main_thread() and call is not None and call.inline


def test_inline_first_retries_in_a_thread_with_the_start_it_had() -> None:
    storage = Contended()
    storage.busy = True
    before = time.monotonic()
    asyncio.run(storage.aget("k"))
    (_, first, tried), (_, second, retried) = storage.calls
    assert first is threading.main_thread() and tried is not None and tried.inline
    assert second is not threading.main_thread() and retried is not None and not retried.inline
    assert retried.started == tried.started >= before  # a deadline counts the wait for a thread


def test_the_old_mixin_keeps_its_thread_twins() -> None:
    class Old(AsyncFromSyncMixin):
        def __init__(self) -> None:
            self.threads: list[threading.Thread] = []

        def get(self, key: str) -> bytes | None:
            self.threads.append(threading.current_thread())
            return None

    storage = Old()
    assert asyncio.run(storage.aget("k")) is None
    assert storage.threads[0] is not threading.main_thread()
