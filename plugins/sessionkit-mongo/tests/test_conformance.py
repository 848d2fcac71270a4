"""The Mongo storage against the shared conformance suite (injected clock, conditional, atomic)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sessionkit import Storage
from sessionkit.testing import StorageConformance
from sessionkit_mongo import MongoStorage

pytestmark = pytest.mark.mongo

#: The suite's fake clock starts at the real time and its TTLs are a second or two, but the
#: server's TTL sweeper reaps by *real* time (every 60 s): it could delete a record the fake
#: clock still calls live. Seen from a day ahead, no record of a test is due during the run.
#: A constant shift changes no expiry decision: the storage compares its clock with itself.
CLOCK_SHIFT = 86_400.0


class TestMongoStorage(StorageConformance):
    clock_injectable = True
    conditional = True
    atomic = True
    creating = True

    @pytest.fixture(autouse=True)
    def _server(self, mongo_url: str) -> None:
        self.url = mongo_url

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is not None
        return MongoStorage(self.url, collection=namespace, clock=lambda: clock() + CLOCK_SHIFT)
