"""Fixtures for the command-line tests: storages with sessions in them, and a way to hand one
to the CLI in-process (a ``memory://`` URL opened by the CLI itself is always empty)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
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


def with_query(url: str, query: str) -> str:
    """``url`` with ``query`` added to the query it may already have (the test Mongo URL has
    ``?retryWrites=false``)."""
    return f"{url}{'&' if '?' in url else '?'}{query}"


#: Opens two stores on neighbouring namespaces of a server; see the ``neighbours`` fixture.
OpenPair = Callable[[str, str], tuple[str, Store, Store]]


@pytest.fixture
def neighbours() -> Iterator[OpenPair]:
    """``open_pair(server_url, option)``: the URL of a fresh namespace, a Store on it, and a
    Store on a neighbouring one. ``option`` names the namespace, ``{}`` standing for a unique
    name (``"prefix={}:"``, ``"collection={}"``). Both are emptied and closed after the test,
    so the shared Redis keeps nothing."""
    opened: list[Store] = []

    def open_pair(server_url: str, option: str) -> tuple[str, Store, Store]:
        run = uuid.uuid4().hex[:8]
        urls = [with_query(server_url, option.format(f"cli{run}{side}")) for side in "ab"]
        mine, theirs = Store(storage=urls[0]), Store(storage=urls[1])
        opened.extend((mine, theirs))
        return urls[0], mine, theirs

    yield open_pair
    for store in opened:
        store.reset()
        store.close()


@pytest.fixture(
    params=[
        pytest.param(("redis_url", "prefix={}:"), marks=pytest.mark.redis, id="redis"),
        pytest.param(("mongo_url", "collection={}"), marks=pytest.mark.mongo, id="mongo"),
    ]
)
def served_pair(request: pytest.FixtureRequest, neighbours: OpenPair) -> tuple[str, Store, Store]:
    """On each backend with a server (Redis, MongoDB): what ``neighbours`` opens."""
    server_fixture, option = request.param
    return neighbours(request.getfixturevalue(server_fixture), option)


@pytest.fixture
def memory() -> KeptMemoryStorage:
    return KeptMemoryStorage()


@pytest.fixture
def use_storage(monkeypatch: pytest.MonkeyPatch) -> Callable[[Storage], None]:
    """Make the CLI open the given storage whatever URL it is handed."""

    def use(storage: Storage) -> None:
        monkeypatch.setattr("sessionkit._ops.cli.open_storage", lambda url, **options: storage)

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
