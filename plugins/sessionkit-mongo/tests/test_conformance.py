"""The Mongo storage against the shared conformance suite (injected clock, conditional, atomic)."""

from __future__ import annotations

from collections.abc import Callable

import pymongo
import pytest

from sessionkit import Storage
from sessionkit.testing import StorageConformance, closed_port
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
    processes_share_storage = True
    bad_urls = (
        "mongodb://127.0.0.1:1/db?collecton=sessions",
        "mongodb://127.0.0.1:1/db?collection=",
        "mongodb://127.0.0.1:1/db?timeoutMS=-5",
    )

    @pytest.fixture(autouse=True)
    def _server(self, mongo_url: str) -> None:
        self.url = mongo_url

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is not None
        return MongoStorage(self.url, collection=namespace, clock=lambda: clock() + CLOCK_SHIFT)

    def make_broken_storage(self, namespace: str) -> Storage:
        # Short deadlines: server selection against a dead port fails after them.
        url = f"mongodb://127.0.0.1:{closed_port()}/db?timeoutMS=300&serverSelectionTimeoutMS=300"
        return MongoStorage(url, collection=namespace)

    def storage_url(self, namespace: str) -> str:
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}collection={namespace}"

    def drop_namespace(self, namespace: str) -> None:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(self.url)
        try:
            client.get_default_database("sessionkit").drop_collection(namespace)
        finally:
            client.close()
