"""A closed memory storage refuses every call with a ``StorageError``, sync and async alike:
a store whose storage was closed under it (at shutdown, by a test's teardown) must answer 503,
not read or write a map nobody will purge any more."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from sessionkit import StorageError
from sessionkit_memory import MemoryStorage

TTL = timedelta(minutes=5)

CALLS: dict[str, Callable[[MemoryStorage], Any]] = {
    "get": lambda s: s.get("k"),
    "set": lambda s: s.set("k", b"v", TTL),
    "create": lambda s: s.create("new", b"v", TTL),
    "replace": lambda s: s.replace("k", b"v2", TTL),
    "replace_if": lambda s: s.replace_if("k", b"v", b"v2", TTL),
    "touch": lambda s: s.touch("k", TTL),
    "delete": lambda s: s.delete("k"),
    "take": lambda s: s.take("k"),
    "reset": lambda s: s.reset(),
    "count": lambda s: s.count(),
    "scan": lambda s: list(s.scan()),
    "purge_expired": lambda s: s.purge_expired(),
}


def _closed_with_an_entry() -> MemoryStorage:
    storage = MemoryStorage()
    storage.set("k", b"v", TTL)
    storage.close()
    return storage


@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_call_on_a_closed_storage_is_a_storage_error(call: str) -> None:
    storage = _closed_with_an_entry()
    with pytest.raises(StorageError, match="closed"):
        CALLS[call](storage)


@pytest.mark.parametrize("call", ["aget", "areplace_if", "aset", "atake"])
def test_the_async_twins_refuse_too(call: str) -> None:
    storage = _closed_with_an_entry()
    args: dict[str, tuple[Any, ...]] = {
        "aget": ("k",),
        "areplace_if": ("k", b"v", b"v2", TTL),
        "aset": ("k", b"v", TTL),
        "atake": ("k",),
    }
    with pytest.raises(StorageError, match="closed"):
        asyncio.run(getattr(storage, call)(*args[call]))
