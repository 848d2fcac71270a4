"""Fixtures for the web integration tests (helpers live in ``_support``)."""

from __future__ import annotations

import pytest

from sessionkit import Store
from tests._backends import open_backend
from tests.web._parity import kind
from tests.web._support import (
    Client,
    CountingStorage,
    FakeClock,
    MakeClient,
    asgi_client,
    make_store,
    wsgi_client,
)

__all__ = ["client", "clock", "kind", "make_client", "storage", "store"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def storage(request: pytest.FixtureRequest, backend: str, clock: FakeClock) -> CountingStorage:
    """The storage under test: each backend in turn (``tests._backends``), counting its calls."""
    return CountingStorage(open_backend(request, backend, clock))


@pytest.fixture
def store(clock: FakeClock, storage: CountingStorage) -> Store:
    return make_store(clock, storage)


@pytest.fixture(params=["asgi", "wsgi"])
def make_client(request: pytest.FixtureRequest) -> MakeClient:
    """Builds the test app under the ASGI or the WSGI middleware for a given store."""
    return asgi_client if request.param == "asgi" else wsgi_client


@pytest.fixture
def client(make_client: MakeClient, store: Store) -> Client:
    return make_client(store)
