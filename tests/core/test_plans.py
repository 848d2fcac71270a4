"""``run_plan`` / ``arun_plan`` (``sessionkit.storage``): driver work written once, as a
generator of calls, made as they are from sync code and awaited from async code."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from sessionkit.storage import ENTER, EXIT, Plan, arun_plan, run_plan


class Flaky(Exception):
    """A driver's own error (not a sessionkit one)."""


class SyncDriver:
    def __init__(self) -> None:
        self.log: list[str] = []

    def get(self, key: str, *, default: str = "-") -> str:
        self.log.append(f"get {key}")
        if key == "bad":
            raise Flaky(key)
        return default if key == "none" else key.upper()

    def pipeline(self) -> contextlib.AbstractContextManager[SyncDriver]:
        @contextlib.contextmanager
        def managed() -> Iterator[SyncDriver]:
            self.log.append("enter")
            yield self
            self.log.append("exit")

        return managed()


class AsyncDriver(SyncDriver):
    async def get(self, key: str, *, default: str = "-") -> str:  # type: ignore[override]
        await asyncio.sleep(0)
        if key == "slow":
            await asyncio.sleep(10)
        return SyncDriver.get(self, key, default=default)

    def pipeline(self) -> contextlib.AbstractAsyncContextManager[SyncDriver]:  # type: ignore[override]
        @contextlib.asynccontextmanager
        async def managed() -> AsyncIterator[SyncDriver]:
            self.log.append("enter")
            yield self
            self.log.append("exit")

        return managed()


def fetch(driver: Any, first: str) -> Plan[str]:
    """One decision between calls: ``first``, then ``fallback`` when the driver fails."""
    manager = driver.pipeline()
    pipe = yield manager, ENTER, ()
    try:
        try:
            return (yield pipe, "get", (first,))
        except Flaky:  # the driver's own error, thrown in unwrapped
            return (yield pipe, "get", ("none",), {"default": "fallback"})
    finally:
        yield manager, EXIT, (None, None, None)


def test_sync_and_async_make_the_same_calls_and_decisions() -> None:
    sync, aio = SyncDriver(), AsyncDriver()
    assert run_plan(fetch(sync, "a")) == "A"
    assert run_plan(fetch(sync, "bad")) == "fallback"
    assert asyncio.run(arun_plan(fetch(aio, "a"))) == "A"
    assert asyncio.run(arun_plan(fetch(aio, "bad"))) == "fallback"
    assert sync.log == aio.log == [
        "enter", "get a", "exit", "enter", "get bad", "get none", "exit"
    ]  # fmt: skip


def test_an_error_the_plan_does_not_handle_reaches_the_caller_after_its_finally() -> None:
    def failing(driver: SyncDriver) -> Plan[str]:
        try:
            return (yield driver, "get", ("bad",))
        finally:
            driver.log.append("cleaned")

    driver = SyncDriver()
    with pytest.raises(Flaky):
        run_plan(failing(driver))
    assert driver.log == ["get bad", "cleaned"]


async def test_a_cancelled_task_runs_the_plans_finally_at_once() -> None:
    driver = AsyncDriver()
    task = asyncio.create_task(arun_plan(fetch(driver, "slow")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert driver.log == ["enter", "exit"]
