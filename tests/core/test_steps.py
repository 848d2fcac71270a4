"""The store's multi-call storage work is written once and driven sync or async
(``sessionkit._steps``): both drivers must make the same calls and treat failures alike."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sessionkit import StorageError
from sessionkit._steps import DELETE, GET, PAUSE, SET, Steps, adrive, drive


class Recorder:
    """A storage whose calls are recorded; ``get`` of ``"broken"`` fails as a driver would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.data: dict[str, bytes] = {"k": b"v"}

    def get(self, key: str) -> bytes | None:
        self.calls.append(("get", (key,)))
        if key == "broken":
            raise ConnectionError("driver down")
        return self.data.get(key)

    def set(self, key: str, value: bytes) -> None:
        self.calls.append(("set", (key, value)))
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.calls.append(("delete", (key,)))
        self.data.pop(key, None)

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)

    async def aset(self, key: str, value: bytes) -> None:
        self.set(key, value)

    async def adelete(self, key: str) -> None:
        self.delete(key)


def copy_then_clean(source: str) -> Steps[str]:
    """Read ``source``, copy it; on a failed read, clean up and re-raise."""
    try:
        value = yield GET, (source,)
    except StorageError:
        yield DELETE, ("copy",)
        raise
    yield SET, ("copy", value or b"")
    return "copied"


class SyncOnly(Recorder):
    """For the async driver told the storage runs inline: it calls the sync methods itself,
    never the async twins."""

    async def aget(self, key: str) -> bytes | None:
        raise AssertionError("an inline drive awaited a twin")

    aset = adelete = aget  # type: ignore[assignment]


MODES = ["sync", "async", "inline"]


def run(mode: str, storage: Recorder, steps: Steps[str]) -> str:
    if mode == "sync":
        return drive(storage, steps)
    return asyncio.run(adrive(storage, steps, inline=mode == "inline"))


def recorder(mode: str) -> Recorder:
    return SyncOnly() if mode == "inline" else Recorder()


@pytest.mark.parametrize("mode", MODES)
def test_both_drivers_make_the_same_calls_and_return_the_result(mode: str) -> None:
    storage = recorder(mode)
    assert run(mode, storage, copy_then_clean("k")) == "copied"
    assert storage.calls == [("get", ("k",)), ("set", ("copy", b"v"))]


@pytest.mark.parametrize("mode", MODES)
def test_a_driver_error_reaches_the_step_as_a_chained_storage_error(mode: str) -> None:
    storage = recorder(mode)
    with pytest.raises(StorageError) as caught:
        run(mode, storage, copy_then_clean("broken"))
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert caught.value.__suppress_context__
    # The step's cleanup ran before the error left it.
    assert storage.calls == [("get", ("broken",)), ("delete", ("copy",))]


def pause_then_read() -> Steps[bytes | None]:
    yield PAUSE, (0.05,)
    found: bytes | None = yield GET, ("k",)
    return found


@pytest.mark.parametrize("inline", [False, True])
async def test_a_pause_sleeps_on_the_loop_with_either_async_call(inline: bool) -> None:
    """A merge's pause between retries lets the loop's other tasks run, also where the
    storage's calls are made inline."""
    storage = SyncOnly() if inline else Recorder()
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    result, _ = await asyncio.gather(adrive(storage, pause_then_read(), inline), other())
    assert result == b"v"
    assert ran == ["other"]
    assert storage.calls == [("get", ("k",))]
