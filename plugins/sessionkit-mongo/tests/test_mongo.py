"""What the Mongo storage does on a real server beyond the shared contract.

Record layout, the TTL index (made once, lazily), expiry on read before the server's sweeper,
operator-looking keys, one command per operation, ``reset`` confined to its collection,
clients passed in, and failures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pymongo
import pytest
from pymongo import monitoring

from sessionkit import StorageError
from sessionkit.testing import FakeClock
from sessionkit_mongo import MongoStorage
from tests._servers import ServerProcess, free_port, start_mongo

pytestmark = pytest.mark.mongo

Document = dict[str, Any]
HOUR = timedelta(hours=1)


class Commands(monitoring.CommandListener):
    """Records the name of every command a client sends: one command is one round trip."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class PoolEvents(monitoring.ConnectionPoolListener):
    """Counts connection pools closed, which happens when their client is closed."""

    def __init__(self) -> None:
        self.closed = 0

    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None:
        self.closed += 1

    def __getattr__(self, name: str) -> Any:  # every other pool event: ignored
        return lambda event: None


def ttl_indexes(raw: pymongo.MongoClient[Document], collection: str) -> list[Mapping[str, Any]]:
    indexes = raw.sessionkit[collection].list_indexes()
    return [index for index in indexes if dict(index["key"]) == {"expires_at": 1}]


# -- records and expiry ------------------------------------------------------------------------


def test_record_layout(
    storage: MongoStorage, raw: pymongo.MongoClient[Document], collection: str, clock: FakeClock
) -> None:
    storage.set("k", b"\x00v", timedelta(seconds=30))
    storage.set("forever", b"f", None)
    records = raw.sessionkit[collection]
    record = records.find_one({"_id": "k"})
    assert record is not None
    assert set(record) == {"_id", "v", "expires_at"}
    assert record["v"] == b"\x00v"
    expected = datetime.fromtimestamp(clock.now + 30, tz=timezone.utc).replace(tzinfo=None)
    assert record["expires_at"] == expected
    assert records.find_one({"_id": "forever"}) == {"_id": "forever", "v": b"f", "expires_at": None}


def test_expired_record_is_absent_before_the_sweeper_runs(
    storage: MongoStorage, raw: pymongo.MongoClient[Document], collection: str, clock: FakeClock
) -> None:
    storage.set("k", b"v", timedelta(seconds=10))
    clock.advance(11)
    assert storage.get("k") is None
    assert storage.touch("k", HOUR) is False
    assert storage.replace("k", b"w", HOUR) is False
    record = raw.sessionkit[collection].find_one({"_id": "k"})
    assert record is not None and record["v"] == b"v", "the server has not reaped it yet"
    storage.set("k", b"new", HOUR)  # a plain set writes over the expired record
    assert storage.get("k") == b"new"


# -- take and replace_if ----------------------------------------------------------------------


def test_take_removes_an_expired_record_too(
    storage: MongoStorage, raw: pymongo.MongoClient[Document], collection: str, clock: FakeClock
) -> None:
    storage.set("expired", b"v", timedelta(seconds=10))
    storage.set("live", b"v", HOUR)
    clock.advance(11)
    assert storage.take("expired") is False
    assert raw.sessionkit[collection].find_one({"_id": "expired"}) is None, (
        "not left to the sweeper"
    )
    assert storage.take("live") is True
    assert raw.sessionkit[collection].count_documents({}) == 0
    # A record with no expires_at at all reads as never expiring, and take agrees: the
    # server returns it as {} (no projected field), which is still a record.
    raw.sessionkit[collection].insert_one({"_id": "bare", "v": b"v"})
    assert storage.get("bare") == b"v"
    assert storage.take("bare") is True


def test_take_is_one_find_and_modify_reading_only_the_expiry(
    mongo_url: str, collection: str
) -> None:
    sent: list[Document] = []

    class Listener(Commands):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            sent.append(dict(event.command))

    client: pymongo.MongoClient[Document] = pymongo.MongoClient(
        mongo_url, event_listeners=[Listener()]
    )
    storage = MongoStorage(client=client, collection=collection)
    storage.set("k", b"secret data", HOUR)
    sent.clear()
    assert storage.take("k") is True
    (command,) = sent
    assert command["findAndModify"] == collection
    assert command["query"] == {"_id": "k"}
    assert command["remove"] is True
    assert command["fields"] == {"_id": False, "expires_at": True}
    client.close()


@pytest.mark.parametrize(
    "codec",
    [
        {},
        {"tz_aware": True},
        {"tz_aware": True, "tzinfo": timezone(timedelta(hours=-5))},
        {"datetime_conversion": "DATETIME_MS"},
    ],
    ids=["naive", "aware", "aware-utc-5", "datetime-ms"],
)
def test_take_judges_expiry_as_the_live_filter_does(
    mongo_url: str, collection: str, clock: FakeClock, codec: dict[str, Any]
) -> None:
    """The expiry ``take`` reads back is compared on the client, whatever the client decodes
    dates to, with the server's ``$gt``: a record expiring exactly now is gone."""
    client: pymongo.MongoClient[Document] = pymongo.MongoClient(mongo_url, **codec)
    storage = MongoStorage(client=client, collection=collection, clock=clock)
    for key in ("before", "at", "after"):
        storage.set(key, b"v", timedelta(seconds=10))
    storage.set("forever", b"v", None)
    clock.advance(9.999)
    assert storage.take("before") is True
    clock.advance(0.001)
    assert storage.get("at") is None
    assert storage.take("at") is False, "expires_at == now is expired, as for get"
    clock.advance(0.001)
    assert storage.take("after") is False
    assert storage.take("forever") is True
    client.close()


def test_replace_if_matches_the_exact_binary_value(
    storage: MongoStorage, raw: pymongo.MongoClient[Document], collection: str
) -> None:
    storage.set("empty", b"", HOUR)
    assert storage.replace_if("empty", b"\x00", b"x", HOUR) is False
    assert storage.replace_if("empty", b"", b"x", HOUR) is True
    raw.sessionkit[collection].insert_one({"_id": "raw", "v": b"abc", "expires_at": None})
    assert storage.replace_if("raw", b"ab", b"x", HOUR) is False
    assert storage.replace_if("raw", b"abc", b"y", None) is True, "bytes are stored as Binary 0"
    assert storage.get("raw") == b"y"


# -- the TTL index -----------------------------------------------------------------------------


def test_ttl_index_is_made_lazily_and_once_per_storage(
    mongo_url: str, raw: pymongo.MongoClient[Document], collection: str
) -> None:
    commands = Commands()
    client: pymongo.MongoClient[Document] = pymongo.MongoClient(
        mongo_url, event_listeners=[commands]
    )
    async_client: pymongo.AsyncMongoClient[Document] = pymongo.AsyncMongoClient(
        mongo_url, event_listeners=[commands]
    )
    storage = MongoStorage(client=client, async_client=async_client, collection=collection)
    assert "createIndexes" not in commands.names, "not at construction"
    assert ttl_indexes(raw, collection) == []
    for index in range(5):
        storage.set(f"k{index}", b"v", HOUR)
        storage.get(f"k{index}")

    async def use() -> None:
        for index in range(5):
            await storage.aset(f"a{index}", b"v", HOUR)
        await storage.aclose()
        await async_client.close()

    asyncio.run(use())
    assert commands.names.count("createIndexes") == 1
    (ttl_index,) = ttl_indexes(raw, collection)
    assert ttl_index["expireAfterSeconds"] == 0
    client.close()


def test_ttl_index_exists_exactly_once_after_several_opens(
    mongo_url: str, raw: pymongo.MongoClient[Document], collection: str
) -> None:

    async def use(storage: MongoStorage) -> None:
        await storage.aget("k")
        await storage.aclose()

    for _ in range(3):
        storage = MongoStorage(mongo_url, collection=collection)
        storage.set("k", b"v", HOUR)
        asyncio.run(use(storage))
    assert len(ttl_indexes(raw, collection)) == 1


async def test_concurrent_first_calls_make_the_index_once(mongo_url: str, collection: str) -> None:
    commands = Commands()
    async_client: pymongo.AsyncMongoClient[Document] = pymongo.AsyncMongoClient(
        mongo_url, event_listeners=[commands]
    )
    storage = MongoStorage(async_client=async_client, collection=collection)
    await asyncio.gather(*(storage.aset(f"k{index}", b"v", HOUR) for index in range(20)))
    assert commands.names.count("createIndexes") == 1
    await async_client.close()


# -- keys are literal ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ['{"$gt": ""}', "$where", "$gt", '{"$ne": null}', "this.v == this.v", "a.b"]
)
def test_operator_looking_keys_are_literal_ids(
    storage: MongoStorage, raw: pymongo.MongoClient[Document], collection: str, key: str
) -> None:
    storage.set("victim", b"secret", HOUR)
    assert storage.get(key) is None
    assert storage.touch(key, HOUR) is False
    assert storage.replace(key, b"x", HOUR) is False
    assert storage.take(key) is False
    assert storage.replace_if(key, b"secret", b"x", HOUR) is False
    storage.delete(key)
    storage.set(key, b"mine", HOUR)
    assert storage.get(key) == b"mine"
    assert raw.sessionkit[collection].find_one({"_id": key}) is not None
    assert storage.get("victim") == b"secret"


def test_a_key_that_is_not_text_is_refused(storage: MongoStorage) -> None:
    operator: Any = {"$gt": ""}
    storage.set("victim", b"secret", HOUR)
    for call in (storage.get, storage.delete):
        with pytest.raises(TypeError, match="str"):
            call(operator)
    assert storage.get("victim") == b"secret"


# -- round trips -------------------------------------------------------------------------------

#: operation -> (method, arguments after the key, the one command it sends)
OPERATIONS: dict[str, tuple[str, tuple[Any, ...], str]] = {
    "get": ("get", (), "find"),
    "set": ("set", (b"v", HOUR), "update"),
    "replace": ("replace", (b"v", HOUR), "update"),
    "touch": ("touch", (HOUR,), "update"),
    "delete": ("delete", (), "delete"),
    "take": ("take", (), "findAndModify"),
    "replace_if": ("replace_if", (b"v", b"w", HOUR), "update"),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_each_operation_is_one_command(mongo_url: str, collection: str, operation: str) -> None:
    commands = Commands()
    client: pymongo.MongoClient[Document] = pymongo.MongoClient(
        mongo_url, event_listeners=[commands]
    )
    storage = MongoStorage(client=client, collection=collection)
    storage.set("k", b"v", HOUR)  # the first call also makes the index
    method, args, command = OPERATIONS[operation]
    commands.names.clear()
    getattr(storage, method)("k", *args)
    assert commands.names == [command]
    client.close()


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_each_async_operation_is_one_command(
    mongo_url: str, collection: str, operation: str
) -> None:
    commands = Commands()
    client: pymongo.AsyncMongoClient[Document] = pymongo.AsyncMongoClient(
        mongo_url, event_listeners=[commands]
    )
    storage = MongoStorage(async_client=client, collection=collection)
    await storage.aset("k", b"v", HOUR)
    method, args, command = OPERATIONS[operation]
    commands.names.clear()
    await getattr(storage, f"a{method}")("k", *args)
    assert commands.names == [command]
    await client.close()


# -- reset -------------------------------------------------------------------------------------


def test_reset_empties_its_collection_and_keeps_it_and_its_indexes(
    mongo_url: str, raw: pymongo.MongoClient[Document], collection: str
) -> None:
    neighbour = raw.sessionkit[f"{collection}_other"]
    neighbour.insert_one({"_id": "k", "v": b"theirs"})
    storage = MongoStorage(mongo_url, collection=collection)
    storage.set("k", b"mine", HOUR)
    storage.reset()
    assert storage.get("k") is None
    assert collection in raw.sessionkit.list_collection_names()
    assert len(ttl_indexes(raw, collection)) == 1
    assert neighbour.find_one({"_id": "k"}) == {"_id": "k", "v": b"theirs"}
    storage.close()


# -- write concern -----------------------------------------------------------------------------


def test_majority_write_concern_is_sent(mongo_url: str, collection: str) -> None:
    commands: list[Document] = []

    class Listener(Commands):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            commands.append(dict(event.command))

    storage = MongoStorage(
        mongo_url, collection=collection, write_concern="majority", event_listeners=[Listener()]
    )
    storage.set("k", b"v", HOUR)
    assert storage.replace("k", b"w", HOUR) is True
    writes = [c for c in commands if "update" in c]
    assert [c["writeConcern"] for c in writes] == [{"w": "majority"}] * 2
    storage.close()


# -- clients -----------------------------------------------------------------------------------


def test_close_closes_the_clients_the_storage_made(mongo_url: str, collection: str) -> None:
    pools = PoolEvents()
    storage = MongoStorage(mongo_url, collection=collection, event_listeners=[pools])
    storage.set("k", b"v", HOUR)

    async def use() -> None:
        assert await storage.aget("k") == b"v"
        await storage.aclose()

    asyncio.run(use())
    assert pools.closed == 2  # the sync client's pool and this loop's asyncio client's
    with pytest.raises(StorageError, match="closed"):
        storage.get("k")
    sync_only = MongoStorage(mongo_url, collection=collection, event_listeners=[pools])
    sync_only.get("k")
    sync_only.close()
    assert pools.closed == 3


def test_clients_passed_in_are_not_closed(mongo_url: str, collection: str) -> None:
    client: pymongo.MongoClient[Document] = pymongo.MongoClient(mongo_url)
    storage = MongoStorage(client=client, collection=collection)
    storage.set("k", b"v", HOUR)
    storage.close()
    assert client.admin.command("ping")["ok"] == 1  # a closed MongoClient would refuse
    client.close()


async def test_async_clients_passed_in_are_not_closed(mongo_url: str, collection: str) -> None:
    client: pymongo.AsyncMongoClient[Document] = pymongo.AsyncMongoClient(mongo_url)
    storage = MongoStorage(async_client=client, collection=collection)
    await storage.aset("k", b"v", HOUR)
    await storage.aclose()
    assert (await client.admin.command("ping"))["ok"] == 1
    await client.close()


def test_one_storage_serves_several_event_loops(storage: MongoStorage) -> None:
    """AsyncMongoClient is bound to a loop; the storage makes one client per loop."""
    storage.set("k", b"v", HOUR)
    for _ in range(3):
        assert asyncio.run(storage.aget("k")) == b"v"


# -- failures ----------------------------------------------------------------------------------


def test_unreachable_server_is_a_storage_error_fast() -> None:
    url = f"mongodb://127.0.0.1:{free_port()}/?retryWrites=false&serverSelectionTimeoutMS=300"
    storage = MongoStorage(url)
    started = time.monotonic()
    with pytest.raises(StorageError, match="mongo find failed") as caught:
        storage.get("k")
    assert isinstance(caught.value.__cause__, pymongo.errors.ServerSelectionTimeoutError)

    async def use() -> None:
        with pytest.raises(StorageError) as caught:
            await storage.aset("k", b"v", HOUR)
        assert isinstance(caught.value.__cause__, pymongo.errors.PyMongoError)
        await storage.aclose()

    asyncio.run(use())
    assert time.monotonic() - started < 3


RECOVERY_MS = 2000


@pytest.fixture
def private_mongo() -> Iterator[ServerProcess]:
    server = start_mongo()
    yield server
    server.close()


def test_killed_server_fails_then_recovers_with_its_index(
    private_mongo: ServerProcess, collection: str
) -> None:
    # The deadline (the server selection timeout, as no timeoutMS is given) must leave room
    # for pymongo's monitor to find the server again: it checks at most every 500 ms
    # (minHeartbeatFrequencyMS), and the first call after a restart waited 0.39 s for it on
    # an idle machine. A 500 ms deadline failed that call under CI's load.
    storage = MongoStorage(
        private_mongo.url + f"&serverSelectionTimeoutMS={RECOVERY_MS}", collection=collection
    )
    storage.set("k", b"v", HOUR)
    private_mongo.kill()
    with pytest.raises(StorageError) as caught:
        storage.get("k")
    assert isinstance(caught.value.__cause__, pymongo.errors.PyMongoError)
    private_mongo.restart()  # in memory: it comes back empty
    assert storage.get("k") is None
    storage.set("k", b"again", HOUR)
    assert storage.get("k") == b"again"
    raw: pymongo.MongoClient[Document] = pymongo.MongoClient(private_mongo.url)
    assert len(ttl_indexes(raw, collection)) == 1, "the index is made again after the outage"
    raw.close()
    storage.close()
