"""Fixtures for the command-line tests: storages with sessions in them, and a way to hand one
to the CLI in-process (a ``memory://`` URL opened by the CLI itself is always empty)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from sessionkit import AsyncFromSyncMixin, Storage, Store
from sessionkit_memory import MemoryStorage


class KeptMemoryStorage(MemoryStorage):
    """A memory storage that survives the CLI's ``close()``, so a test can look inside after."""

    def close(self) -> None:
        pass


def fill(store: Store, sizes: list[int]) -> list[str]:
    """Save one session per size (bytes of payload); return their ids."""
    ids = []
    for size in sizes:
        session = store.load(None)
        session["payload"] = "x" * size
        session.save()
        ids.append(session.id)
    return ids


@pytest.fixture
def memory() -> KeptMemoryStorage:
    return KeptMemoryStorage()


@pytest.fixture
def use_storage(monkeypatch: pytest.MonkeyPatch) -> Callable[[Storage], None]:
    """Make the CLI open the given storage whatever URL it is handed."""

    def use(storage: Storage) -> None:
        monkeypatch.setattr("sessionkit._cli.open_storage", lambda url, **options: storage)

    return use


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.db'}"


class PlainStorage(AsyncFromSyncMixin):
    """Only the storage contract, none of the optional abilities (like a backend that cannot
    count or scan); the data lives in a memory storage that survives ``close()``."""

    def __init__(self) -> None:
        self.inner = KeptMemoryStorage()

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        self.inner.set(key, value, ttl)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        return self.inner.touch(key, ttl)

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return self.inner.replace(key, value, ttl)

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        pass
