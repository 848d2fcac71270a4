"""Fixtures for the Mongo plugin's tests: raw access, a collection and a storage per test.

The server is a private in-memory SecantusDB for the run (``mongo_url``), so collections are
not cleaned up: they vanish with the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest

from sessionkit.testing import FakeClock
from sessionkit_mongo import MongoStorage

Document = dict[str, Any]


@pytest.fixture(scope="session")
def raw(mongo_url: str) -> Iterator[pymongo.MongoClient[Document]]:
    """A plain client on the test server, for looking behind the storage's back."""
    client: pymongo.MongoClient[Document] = pymongo.MongoClient(mongo_url)
    yield client
    client.close()


@pytest.fixture
def collection() -> str:
    """A collection name of this test's own."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> FakeClock:
    """Epoch seconds that move only when told to (starts at the current second)."""
    return FakeClock()


@pytest.fixture
def storage(mongo_url: str, collection: str, clock: FakeClock) -> Iterator[MongoStorage]:
    """A storage built from the URL, as ``open_storage`` builds it, on a fake clock."""
    storage = MongoStorage(mongo_url, collection=collection, clock=clock)
    yield storage
    storage.close()
