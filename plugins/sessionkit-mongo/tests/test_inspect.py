"""The Mongo storage's abilities for operators: ``count``, ``scan``, ``purge_expired``.

The shared conformance suite checks what every backend promises; these check how MongoDB keeps
it: expiry judged by the storage's clock before the server's TTL monitor has run, the commands
sent (one ``count``, a ``find`` of key and value in batches, one ``delete``), and failures.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import Any

import pymongo
import pytest
from pymongo import monitoring

from sessionkit import (
    ConfigError,
    CountableStorage,
    PurgeableStorage,
    ScannableStorage,
    StorageError,
)
from sessionkit.testing import FakeClock
from sessionkit_mongo import MongoStorage
from tests._servers import free_port

pytestmark = pytest.mark.mongo

Document = dict[str, Any]
HOUR = timedelta(hours=1)


class Sent(monitoring.CommandListener):
    """Records every command a client sends (name and body), minus the driver's own chatter."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, Document]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in ("endSessions", "createIndexes"):
            self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def names(self) -> list[str]:
        return [name for name, _ in self.commands]


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def watched(
    mongo_url: str, collection: str, clock: FakeClock, sent: Sent
) -> Iterator[MongoStorage]:
    """A storage on the fake clock whose commands are recorded in ``sent``."""
    storage = MongoStorage(mongo_url, collection=collection, clock=clock, event_listeners=[sent])
    yield storage
    storage.close()


def test_the_storage_has_all_three_abilities(storage: MongoStorage) -> None:
    assert isinstance(storage, CountableStorage)
    assert isinstance(storage, ScannableStorage)
    assert isinstance(storage, PurgeableStorage)


# -- expiry by the storage's clock ---------------------------------------------------------------


def test_records_expired_by_the_clock_are_not_counted_before_the_monitor_reaps_them(
    storage: MongoStorage, raw: pymongo.MongoClient[Document], collection: str, clock: FakeClock
) -> None:
    storage.set("short", b"s", timedelta(seconds=10))
    storage.set("long", b"l", HOUR)
    storage.set("forever", b"f", None)
    assert storage.count() == 3
    clock.advance(11)
    assert raw.sessionkit[collection].count_documents({}) == 3, "nothing reaped yet"
    assert storage.count() == 2
    assert sorted(storage.scan()) == [("forever", b"f"), ("long", b"l")]


def test_purge_expired_deletes_what_the_clock_says_has_expired(
    storage: MongoStorage, raw: pymongo.MongoClient[Document], collection: str, clock: FakeClock
) -> None:
    """Exactly the records ``get`` no longer returns: expiry at ``now`` is expired."""
    for index in range(3):
        storage.set(f"short{index}", b"s", timedelta(seconds=10))
    storage.set("long", b"l", HOUR)
    storage.set("forever", b"f", None)
    assert storage.purge_expired() == 0
    clock.advance(10)  # exactly at the expiry of the short ones
    assert storage.get("short0") is None
    assert storage.purge_expired() == 3
    left = sorted(doc["_id"] for doc in raw.sessionkit[collection].find())
    assert left == ["forever", "long"]
    assert storage.purge_expired() == 0


def test_purge_expired_stays_in_its_collection(
    mongo_url: str, storage: MongoStorage, clock: FakeClock, collection: str
) -> None:
    other = MongoStorage(mongo_url, collection=f"{collection}_other", clock=clock)
    other.set("k", b"theirs", timedelta(seconds=10))
    storage.set("k", b"mine", timedelta(seconds=10))
    clock.advance(11)
    assert storage.purge_expired() == 1
    assert other.count() == 0 and other.purge_expired() == 1
    other.close()


# -- what is sent --------------------------------------------------------------------------------


def test_count_is_one_command_of_unexpired_records(watched: MongoStorage, sent: Sent) -> None:
    watched.set("k", b"v", HOUR)
    sent.commands.clear()
    assert watched.count() == 1
    assert sent.names() == ["aggregate"]  # count_documents is a $match + $group aggregate
    pipeline = sent.commands[0][1]["pipeline"]
    assert "$or" in pipeline[0]["$match"]


def test_scan_reads_key_and_value_only_in_batches(
    watched: MongoStorage, sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sessionkit_mongo._storage.SCAN_BATCH", 4)
    written = {f"k{index:02}": bytes([index]) * index for index in range(10)}
    for key, value in written.items():
        watched.set(key, value, HOUR)
    sent.commands.clear()
    scanned = {}
    for key, value in watched.scan():
        scanned[key] = value
        watched.delete(key)  # the caller may delete what it was given
    assert scanned == written
    (find,) = [body for name, body in sent.commands if name == "find"]
    assert find["projection"] == {"_id": True, "v": True}
    assert find["batchSize"] == 4
    assert sent.names().count("getMore") >= 2  # 10 records, 4 a batch
    assert watched.count() == 0


def test_a_scan_stopped_early_closes_its_cursor(
    watched: MongoStorage, sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sessionkit_mongo._storage.SCAN_BATCH", 2)
    for index in range(6):
        watched.set(f"k{index}", b"v", HOUR)
    walk = watched.scan()
    next(walk)
    assert isinstance(walk, Generator)
    walk.close()  # what a for loop left by break or an exception does, once collected
    assert "killCursors" in sent.names()


def test_purge_expired_is_one_delete(watched: MongoStorage, sent: Sent) -> None:
    watched.set("k", b"v", HOUR)
    sent.commands.clear()
    assert watched.purge_expired() == 0
    assert sent.names() == ["delete"]


# -- failures and clients ------------------------------------------------------------------------


def test_unreachable_server_is_a_storage_error_fast() -> None:
    url = f"mongodb://127.0.0.1:{free_port()}/?retryWrites=false&serverSelectionTimeoutMS=300"
    storage = MongoStorage(url)
    started = time.monotonic()
    calls = {
        "count_documents": storage.count,
        "find": lambda: list(storage.scan()),
        "delete_many": storage.purge_expired,
    }
    for operation, call in calls.items():
        with pytest.raises(StorageError, match=f"mongo {operation} failed") as caught:
            call()
        assert isinstance(caught.value.__cause__, pymongo.errors.ServerSelectionTimeoutError)
    assert time.monotonic() - started < 5
    storage.close()


def test_closed_storage_refuses_every_ability(storage: MongoStorage) -> None:
    storage.close()
    for call in (storage.count, lambda: list(storage.scan()), storage.purge_expired):
        with pytest.raises(StorageError, match="closed"):
            call()


def test_an_async_only_storage_has_no_sync_client_for_them(mongo_url: str) -> None:
    storage = MongoStorage(async_client=pymongo.AsyncMongoClient(mongo_url), database="x")
    for call in (storage.count, lambda: list(storage.scan()), storage.purge_expired):
        with pytest.raises(ConfigError) as caught:
            call()
        assert caught.value.field == "client"
