"""A storage whose async calls are its sync calls made on the loop (``SyncStorage`` with
``async_calls = "inline"``, the memory storage): the store's async paths call the sync methods
themselves, with no coroutine per call, and its async saves take no turn, as nothing in them
suspends (``sessionkit._syncstorage.runs_inline``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from sessionkit import SessionGone, StorageError, Store
from sessionkit._syncstorage import runs_inline
from sessionkit._turns import Turns
from sessionkit_memory import MemoryStorage
from tests.core.test_sync_storage import FullInline, Inline, Recording
from tests.web._support import CountingStorage

#: The twins the store's async work would await: its multi-call work (saves, regenerations)
#: and the read of every request with a cookie. (A destroy's single delete still awaits its
#: twin.)
STEP_TWINS = ("aget", "acreate", "areplace", "areplace_if", "atake", "aset")


class InlineFirst(Inline):
    async_calls = "inline_first"  # type: ignore[assignment]


class Handmade(Inline):
    async def aget(self, key: str) -> bytes | None:
        await asyncio.sleep(0)  # a twin of its own may suspend: not inline
        return None


def test_only_a_sync_storage_whose_every_twin_is_derived_inline_runs_inline() -> None:
    assert runs_inline(MemoryStorage())
    assert runs_inline(Inline())  # the optional twins it lacks are absent, not hand-written
    assert runs_inline(FullInline())
    assert not runs_inline(Recording())  # the default: worker threads
    assert not runs_inline(InlineFirst())
    assert not runs_inline(Handmade())
    patched = Inline()
    patched.aget = Handmade().aget  # type: ignore[method-assign]
    assert not runs_inline(patched)
    # A wrapper (a test's counting storage, a third party's) is awaited as before.
    assert not runs_inline(CountingStorage(MemoryStorage()))


class Watched(MemoryStorage):
    """The memory storage, whose step twins can be made to fail once the store is built."""


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Store:
    built = Store(storage=Watched())

    async def awaited(*args: Any) -> Any:
        raise AssertionError("a twin was awaited on a storage that runs inline")

    for name in STEP_TWINS:
        monkeypatch.setattr(Watched, name, awaited)
    return built


async def test_async_saves_call_the_sync_methods_themselves(store: Store) -> None:
    session = await store.aload(None)
    session["user"] = "ada"
    await session.asave()  # create
    again = await store.aload(session.id)
    assert again.get("user") == "ada"
    again["theme"] = "dark"
    await again.asave()  # replace_if
    await again.aregenerate()
    await again.asave()  # create under the new id, take the old
    assert await store.aget_by_id(session.id) is None
    await again.adestroy()
    assert await store.aget_by_id(again.id) is None


async def test_a_save_over_a_changed_record_merges_without_a_turn(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty sessions of one record, loaded before any saves, saved by twenty tasks at once:
    each save runs without a pause (nothing suspends on an inline storage), takes no turn,
    finds the record changed by the ones before it and merges once; none is lost."""

    def no_turn(*args: Any) -> Any:
        raise AssertionError("a save on an inline storage took a turn")

    monkeypatch.setattr(Turns, "aturn", no_turn)
    first = await store.aload(None)
    first["user"] = "ada"
    await first.asave()
    writers = 20
    sessions = [await store.aload(first.id) for _ in range(writers)]

    async def save(index: int) -> None:
        sessions[index][f"k{index}"] = index
        await sessions[index].asave()

    await asyncio.gather(*(save(i) for i in range(writers)))
    stored = await store.aget_by_id(first.id)
    assert stored is not None
    assert dict(stored.items()) == {"user": "ada", **{f"k{i}": i for i in range(writers)}}


async def test_a_save_over_a_destroyed_record_still_fails(store: Store) -> None:
    session = await store.aload(None)
    session["user"] = "ada"
    await session.asave()
    stale = await store.aload(session.id)
    await session.adestroy()
    stale["cart"] = 1
    with pytest.raises(SessionGone):
        await stale.asave()
    assert await store.aget_by_id(session.id) is None


class Broken(MemoryStorage):
    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        raise ConnectionError("driver down")


class BrokenRead(MemoryStorage):
    broken = False

    def get(self, key: str) -> bytes | None:
        if self.broken:
            raise ConnectionError("driver down")
        return super().get(key)


async def test_a_failed_read_is_a_chained_storage_error() -> None:
    """The async read calls the sync ``get`` itself, and wraps its failure as the twin's
    would have been wrapped."""
    storage = BrokenRead()
    store = Store(storage=storage)
    assert runs_inline(storage)
    session = await store.aload(None)
    session["user"] = "ada"
    await session.asave()
    storage.broken = True
    with pytest.raises(StorageError) as caught:
        await store.aload(session.id)
    assert isinstance(caught.value.__cause__, ConnectionError)


async def test_a_sync_methods_failure_is_a_chained_storage_error() -> None:
    store = Store(storage=Broken())
    assert runs_inline(store.storage)
    session = await store.aload(None)
    session["user"] = "ada"
    await session.asave()
    again = await store.aload(session.id)
    again["theme"] = "dark"
    with pytest.raises(StorageError) as caught:
        await again.asave()
    assert isinstance(caught.value.__cause__, ConnectionError)
