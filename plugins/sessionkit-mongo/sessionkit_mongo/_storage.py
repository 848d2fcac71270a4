"""MongoDB storage: one document per key in a collection of its own.

A record is ``{_id: key, v: Binary(value), expires_at: datetime | None}``. A TTL index on
``expires_at`` (``expireAfterSeconds=0``) lets the server delete expired records, but its
sweeper runs about once a minute, so every read and conditional write also filters on
``expires_at`` itself: an expired record is absent the moment it expires. The index is created
once per storage, on first use (neither at import nor per request; again only after a failed
operation, as the server may have come back empty), and creating it again is a no-op, so many
storages or processes may share a collection.

Each operation is one command, so one round trip (plus ``createIndexes`` once per storage):
``get`` = ``find``; ``set`` = ``replace_one(upsert=True)``; ``replace`` and ``touch`` =
``update_one`` on the live record only (never upserting, so a destroyed session is not
brought back); ``delete`` = ``delete_one``; ``reset`` = ``delete_many({})`` on the storage's
own collection, which keeps the collection and its indexes.

It is a :class:`~sessionkit.CreatingStorage`: ``create`` = ``update_one`` filtered on ``_id``
*and* an expiry at or before now, with ``upsert=True``. No record: the upsert inserts it. An
expired record: the filter matches and the update overwrites it. A live record (or one with
no expiry): the filter misses, the upsert's insert hits the ``_id`` unique index, and the
server answers a duplicate key error, which is the ``False``. One command, atomic on the
server; a plain ``insert_one`` would refuse an expired record the TTL sweeper has not reaped.

It is an :class:`~sessionkit.AtomicStorage`, each answer from one atomic command:
``replace_if`` = ``update_one`` on the live record whose ``v`` is exactly the expected bytes
(BSON binary equality: same subtype, length and bytes); ``take`` = ``find_one_and_delete`` by
``_id`` alone, projecting ``expires_at``, so an expired record is removed too and the storage
judges the returned expiry by its clock, exactly as the ``$gt`` of the live filter would.

For operators (``sessionkit stats``, ``sessionkit purge``): ``count`` = ``count_documents``
and ``scan`` = ``find`` in batches, both of the unexpired records only, and ``purge_expired``
= ``delete_many`` of the expired ones, all judged by the storage's clock as reads are.

The key is only ever the value of ``_id`` in a filter built here, and must be a ``str``: text
such as ``{"$gt": ""}`` or ``$where`` is a literal id, never an operator.

From a URL (``mongodb://host/dbname?collection=sessions``; the database defaults to
``sessionkit``) a storage makes its own ``MongoClient`` and, lazily, one ``AsyncMongoClient``
per event loop, and closes them; clients passed in (``client=``, ``async_client=``, with
``database=``) are used and never closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, TypeAlias

import pymongo
import pymongo.errors
from bson.binary import Binary
from bson.datetime_ms import DatetimeMS
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection
from pymongo.write_concern import WriteConcern

from sessionkit import ConfigError, PerLoop, StorageError, ttl_seconds
from sessionkit.storage import ENTER, EXIT, Plan, arun_plan, blocking, run_plan

from ._options import (
    DEFAULT_COLLECTION,
    DEFAULT_DATABASE,
    check_clock,
    check_collection,
    driver_options,
    parse_write_concern,
    typed_driver_options,
)
from ._plan import call

__all__ = ["MongoStorage"]

Document: TypeAlias = dict[str, Any]
#: A side's collection and the lock its index is made under, as a plan gets them:
#: ``MongoStorage._sync_place`` or ``_async_place``.
Place: TypeAlias = Callable[
    [], tuple[Collection[Document], threading.Lock] | tuple[AsyncCollection[Document], asyncio.Lock]
]

#: Records per batch of the cursor that ``scan`` reads: the most it holds in memory at once.
SCAN_BATCH = 256

#: What ``take`` reads of the record it deletes: its expiry alone, never the session's data.
_TAKE_PROJECTION: Document = {"_id": False, "expires_at": True}

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _AsyncSide(NamedTuple):
    """An asyncio client, its collection, and the lock that guards index creation in its loop."""

    client: AsyncMongoClient[Document]
    collection: AsyncCollection[Document]
    index_lock: asyncio.Lock


@contextlib.contextmanager
def _config_errors() -> Iterator[None]:
    try:
        yield
    except (pymongo.errors.ConfigurationError, pymongo.errors.InvalidName) as exc:
        raise ConfigError("storage", str(exc)) from exc


def _brief(exc: Exception, limit: int = 240) -> str:
    """The driver's message, cut short: pymongo appends a whole topology description."""
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _by_id(key: str) -> Document:
    """The filter for ``key``, refusing anything but text (a dict here would be a query)."""
    if type(key) is not str:
        raise TypeError(f"storage keys are str, got {type(key).__name__}")
    return {"_id": key}


def _unexpired(now: datetime) -> Document:
    """The filter for records that have not expired at ``now`` (no expiry, or a later one)."""
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}


def _live(key: str, now: datetime) -> Document:
    """The filter for ``key`` while it has not expired."""
    return {**_by_id(key), **_unexpired(now)}


def _expired(key: str, now: datetime) -> Document:
    """The filter for ``key`` once it has expired (the complement of :func:`_live` on
    ``_id``): a record with no expiry never matches."""
    return {**_by_id(key), "expires_at": {"$lte": now}}


def _was_live(doc: Document | None, now: datetime) -> bool:
    """Whether ``doc`` (``{expires_at: ...}`` or ``None``) had not expired at ``now``: the
    client-side twin of :func:`_unexpired`, for a record ``take`` has removed.

    A BSON date holds milliseconds and ``now`` is finer, but ``stored > now`` and the server's
    ``stored > now`` (``now`` cut to milliseconds) agree: ``stored`` is a whole millisecond.
    """
    if doc is None:
        return False
    expires = doc.get("expires_at")
    if expires is None:  # null or missing, both of which ``{expires_at: null}`` matches
        return True
    if isinstance(expires, DatetimeMS):  # a client with datetime_conversion=DATETIME_MS
        return int(expires) > _millis(now)
    if not isinstance(expires, datetime):  # not written by this storage: not a live record
        return False
    if expires.tzinfo is None:  # a client without tz_aware: naive UTC
        expires = expires.replace(tzinfo=timezone.utc)
    return expires > now


def _millis(moment: datetime) -> int:
    """``moment`` in whole milliseconds since the epoch, as BSON would store it."""
    return int((moment - _EPOCH) // timedelta(milliseconds=1))


def _expires(now: datetime, ttl: timedelta | None) -> datetime | None:
    if ttl is None:
        return None
    ttl_seconds(ttl)  # rejects a zero or negative TTL, as every storage does
    return now + ttl


def _release_dead_loop(side: _AsyncSide, loop: asyncio.AbstractEventLoop) -> None:
    """Free the sockets of an asyncio client whose event loop was closed (``PerLoop``'s
    ``release``).

    ``AsyncMongoClient.close()`` needs its loop, and its connections (the pool's, the
    monitors') live in several places inside pymongo; all of them are transports of that
    loop, whose sockets :meth:`PerLoop.close_transports` closes. The loop is closed, so no
    other transport of it can ever be used again. Its background tasks ended with the loop.
    The client is then marked closed, as its ``close()`` marks it: else, once collected, it
    reports itself unclosed (a ``ResourceWarning``), though nothing of it is left open.
    """
    PerLoop.close_transports(loop)
    side.client._closed = True


class MongoStorage:
    """Session storage in a MongoDB collection.

    ``MongoStorage("mongodb://host/db?retryWrites=false", collection="web_sessions",
    write_concern="majority")``; any pymongo client option is accepted (checked by name;
    ``timeoutMS``, the deadline of each whole call, and the server selection and connect
    timeouts default to 5 s). ``clock``
    returns seconds since the epoch (tests move time with it). Or pass clients:
    ``MongoStorage(client=..., async_client=..., database="app")``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: MongoClient[Document] | None = None,
        async_client: AsyncMongoClient[Document] | None = None,
        database: str | None = None,
        collection: str | None = None,
        write_concern: str | int | WriteConcern | None = None,
        clock: Callable[[], float] | None = None,
        **options: Any,
    ) -> None:
        driver: tuple[str, dict[str, Any]] | None = None
        own: Mapping[str, str] = {}
        if url is not None:
            if client is not None or async_client is not None:
                raise ConfigError("client", "give a URL or clients, not both")
            driver_url, kwargs, own = driver_options(url, options)
            driver = (driver_url, kwargs)
        elif options:
            raise ConfigError(min(options), "client options need a URL; set them on your client")
        elif client is None and async_client is None:
            raise ConfigError("storage", "MongoStorage needs a URL, a client or an async_client")
        self._start(
            driver,
            client=client,
            async_client=async_client,
            database=own.get("database") if database is None else database,
            collection=own.get("collection") if collection is None else collection,
            write_concern=own.get("write_concern") if write_concern is None else write_concern,
            clock=clock,
        )

    def _start(
        self,
        driver: tuple[str, dict[str, Any]] | None,
        *,
        client: MongoClient[Document] | None = None,
        async_client: AsyncMongoClient[Document] | None = None,
        database: str | None = None,
        collection: str | None = None,
        write_concern: str | int | WriteConcern | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Set up, with clients made from ``driver`` (pymongo's URL and keywords) or given."""
        clock = check_clock(clock)
        self._clock: Callable[[], float] = time.time if clock is None else clock
        self._closed = False
        self._index_ready = False
        self._index_lock = threading.Lock()
        self._loop_sides: PerLoop[_AsyncSide] | None = None
        self._async_side: _AsyncSide | None = None
        if driver is not None:
            driver_url, kwargs = driver
            with _config_errors():
                client = MongoClient(driver_url, connect=False, **kwargs)
                database = database or client.get_default_database(DEFAULT_DATABASE).name
            self._loop_sides = PerLoop(
                lambda: self._side(AsyncMongoClient(driver_url, **kwargs)), _release_dead_loop
            )
        self._owned = driver is not None
        self._client = client
        try:
            self._database = database or DEFAULT_DATABASE
            self._name = check_collection(DEFAULT_COLLECTION if collection is None else collection)
            self._concern = parse_write_concern(write_concern)
            self._collection = None if client is None else self._bind(client)
            if async_client is not None:
                self._async_side = self._side(async_client)
            #: The client's ``timeoutMS`` in seconds, applied to each storage call as one
            #: deadline (see ``_failures``); None for none (``timeoutMS`` unset or 0).
            given = (client or async_client).options.timeout  # type: ignore[union-attr]
            self._deadline: float | None = given or None
        except BaseException:
            if self._owned and client is not None:
                client.close()
            raise

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> MongoStorage:
        """Build from ``mongodb://host/db?collection=...`` and options (the plugin's opener):
        the options come checked by the core, the query read (``Backend(options=...)``)."""
        own = dict(options)
        storage = cls.__new__(cls)
        storage._start(typed_driver_options(url, own.pop("driver", {})), **own)
        return storage

    @property
    def database(self) -> str:
        return self._database

    @property
    def collection(self) -> str:
        return self._name

    def _bind(self, client: MongoClient[Document]) -> Collection[Document]:
        with _config_errors():
            collection = client[self._database].get_collection(
                self._name, write_concern=self._concern
            )
        if not collection.write_concern.acknowledged:
            raise ConfigError(
                "write_concern", "must acknowledge writes (w=0 cannot report matches)"
            )
        return collection

    def _side(self, client: AsyncMongoClient[Document]) -> _AsyncSide:
        with _config_errors():
            collection = client[self._database].get_collection(
                self._name, write_concern=self._concern
            )
        return _AsyncSide(client, collection, asyncio.Lock())

    @contextlib.contextmanager
    def _failures(self, operation: str, *, bounded: bool = True) -> Iterator[None]:
        """Report a driver failure as a StorageError with the cause chained.

        The TTL index is made again after a failure: the server may have come back empty.
        The whole call runs under one ``pymongo.timeout`` of the client's ``timeoutMS``, so
        the index's creation (on first use, and after a failure) and the operation together
        stay within it, rather than each getting its own. ``bounded=False`` for ``scan``,
        a walk at the caller's pace (each of its batches is still bounded by the client).
        """
        try:
            if self._deadline is None or not bounded:
                yield
            else:
                with pymongo.timeout(self._deadline):
                    yield
        except pymongo.errors.PyMongoError as exc:
            self._index_ready = False
            raise StorageError(f"mongo {operation} failed: {_brief(exc)}") from exc

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=timezone.utc)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("mongo storage is closed")

    def _sync_place(self) -> tuple[Collection[Document], threading.Lock]:
        """The collection and the lock its index is made under, for sync calls."""
        self._check_open()
        if self._collection is None:
            raise ConfigError("client", "this storage has only an async_client; pass client= too")
        return self._collection, self._index_lock

    def _async_place(self) -> tuple[AsyncCollection[Document], asyncio.Lock]:
        """The asyncio collection of the running loop and its loop's index lock."""
        self._check_open()
        side = self._async_side if self._loop_sides is None else self._loop_sides.get()
        if side is None:
            raise ConfigError("async_client", "this storage has only a client; pass async_client=")
        return side.collection, side.index_lock

    def _sync(self) -> Collection[Document]:
        """The collection, its TTL index made on first use (call inside ``_failures``)."""
        collection: Collection[Document] = run_plan(self._indexed(self._sync_place))
        return collection

    async def _async(self) -> AsyncCollection[Document]:
        """The asyncio collection of the running loop, its TTL index made on first use."""
        collection: AsyncCollection[Document] = await arun_plan(self._indexed(self._async_place))
        return collection

    def conn(self) -> Collection[Document]:
        """The pymongo collection this storage keeps its sessions in (Fiber's ``Conn()``), its
        TTL index made; ``conn().database.client`` is the client. Do not close it yourself:
        ``close()`` does."""
        with self._failures("connect"):
            return self._sync()

    async def aconn(self) -> AsyncCollection[Document]:
        """The asyncio collection of the running event loop."""
        with self._failures("connect"):
            return await self._async()

    # -- plans: each operation's calls and decisions, written once (see ``_plan``) -------------
    # ``place`` is the side's collection getter, ``_sync_place`` or ``_async_place``.

    def _indexed(self, place: Place) -> Plan[Any]:
        """The side's collection, its TTL index made first if it is not known to exist (once
        per storage, by one caller at a time; again after a failure)."""
        collection, lock = place()
        if not self._index_ready:
            yield call(lock, ENTER)
            try:
                if not self._index_ready:
                    yield call(collection, "create_index", "expires_at", expireAfterSeconds=0)
                    self._index_ready = True
            finally:
                yield call(lock, EXIT, None, None, None)
        return collection

    def _get(self, place: Place, key: str) -> Plan[bytes | None]:
        with self._failures("find"):
            collection = yield from self._indexed(place)
            found = _live(key, self._now())
            doc = yield call(collection, "find_one", found, {"v": True, "_id": False})
        return None if doc is None else bytes(doc["v"])

    def _set(self, place: Place, key: str, value: bytes, ttl: timedelta | None) -> Plan[None]:
        record = {"v": Binary(bytes(value)), "expires_at": _expires(self._now(), ttl)}
        with self._failures("replace_one"):
            collection = yield from self._indexed(place)
            yield call(collection, "replace_one", _by_id(key), record, upsert=True)

    def _replace(self, place: Place, key: str, value: bytes, ttl: timedelta | None) -> Plan[bool]:
        now = self._now()
        change = {"$set": {"v": Binary(bytes(value)), "expires_at": _expires(now, ttl)}}
        with self._failures("update_one"):
            collection = yield from self._indexed(place)
            result = yield call(collection, "update_one", _live(key, now), change)
            return bool(result.matched_count == 1)

    def _create(self, place: Place, key: str, value: bytes, ttl: timedelta | None) -> Plan[bool]:
        now = self._now()
        change = {"$set": {"v": Binary(bytes(value)), "expires_at": _expires(now, ttl)}}
        with self._failures("update_one"):
            collection = yield from self._indexed(place)
            try:
                yield call(collection, "update_one", _expired(key, now), change, upsert=True)
            except pymongo.errors.DuplicateKeyError:  # a live record holds the _id
                return False
        return True

    def _touch(self, place: Place, key: str, ttl: timedelta | None) -> Plan[bool]:
        now = self._now()
        change = {"$set": {"expires_at": _expires(now, ttl)}}
        with self._failures("update_one"):
            collection = yield from self._indexed(place)
            result = yield call(collection, "update_one", _live(key, now), change)
            return bool(result.matched_count == 1)

    def _replace_if(
        self, place: Place, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> Plan[bool]:
        now = self._now()
        change = {"$set": {"v": Binary(bytes(value)), "expires_at": _expires(now, ttl)}}
        match = {**_live(key, now), "v": Binary(bytes(expected))}
        with self._failures("update_one"):
            collection = yield from self._indexed(place)
            result = yield call(collection, "update_one", match, change)
            return bool(result.matched_count == 1)

    def _take(self, place: Place, key: str) -> Plan[bool]:
        now = self._now()
        with self._failures("find_one_and_delete"):
            collection = yield from self._indexed(place)
            doc = yield call(collection, "find_one_and_delete", _by_id(key), _TAKE_PROJECTION)
        return _was_live(doc, now)

    def _delete(self, place: Place, key: str) -> Plan[None]:
        with self._failures("delete_one"):
            collection = yield from self._indexed(place)
            yield call(collection, "delete_one", _by_id(key))

    def _reset(self, place: Place) -> Plan[None]:
        with self._failures("delete_many"):
            collection = yield from self._indexed(place)
            yield call(collection, "delete_many", {})

    def _close(self, in_loop: bool) -> Plan[None]:
        """``close`` (``in_loop``: ``aclose``, which also closes the running loop's client).
        ``MongoClient.close()`` may talk to the server (``endSessions``): from a loop, it runs
        in a thread."""
        if self._closed:
            return
        self._closed = True
        if self._owned and self._client is not None and self._loop_sides is not None:
            side = self._loop_sides.pop_current() if in_loop else None
            self._loop_sides.clear()
            with self._failures("close"):
                if side is not None:
                    yield call(side.client, "close")
                yield blocking(self._client.close)

    # -- sync ----------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        return run_plan(self._get(self._sync_place, key))

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        run_plan(self._set(self._sync_place, key, value, ttl))

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if its record exists and has not expired."""
        return run_plan(self._replace(self._sync_place, key, value, ttl))

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if no live record holds it; False (nothing written) otherwise."""
        return run_plan(self._create(self._sync_place, key, value, ttl))

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        return run_plan(self._touch(self._sync_place, key, ttl))

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if its record is live and holds exactly ``expected``."""
        return run_plan(self._replace_if(self._sync_place, key, expected, value, ttl))

    def take(self, key: str) -> bool:
        """Delete ``key`` (expired or not); return whether its record was live."""
        return run_plan(self._take(self._sync_place, key))

    def delete(self, key: str) -> None:
        run_plan(self._delete(self._sync_place, key))

    def reset(self) -> None:
        """Delete every record of this storage's collection; the collection and indexes stay."""
        run_plan(self._reset(self._sync_place))

    def drop(self) -> None:
        """Drop this storage's collection, its TTL index with it (``reset`` empties it and
        keeps it, as a namespace in use needs).

        For a tool that made a collection of its own and must not leave it behind:
        ``sessionkit check --reset-scratch`` drops its ``skcheck_...`` collection with it.
        Nothing on the request path calls it. The storage's next write makes the collection
        and its index again.
        """
        with self._failures("drop"):
            self._sync().drop()
        self._index_ready = False

    # -- optional abilities for operators (see sessionkit._abilities) ----------------------------

    def count(self) -> int:
        """Count the unexpired records (the TTL monitor may not have removed expired ones yet)."""
        with self._failures("count_documents"):
            return self._sync().count_documents(_unexpired(self._now()))

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """Yield ``(key, value)`` of each unexpired record, ``SCAN_BATCH`` records per round trip.

        Only ``_id`` and ``v`` are fetched. A cursor is not a snapshot; deleting records it
        has already returned is safe, and the cursor is closed if the caller stops early.
        """
        with self._failures("find", bounded=False):
            found = self._sync().find(
                _unexpired(self._now()), {"_id": True, "v": True}, batch_size=SCAN_BATCH
            )
            with found as cursor:
                for doc in cursor:
                    yield doc["_id"], bytes(doc["v"])

    def purge_expired(self) -> int:
        """Delete the records expired by this storage's clock now; return how many.

        The server's TTL monitor deletes them too, but only about once a minute, by the
        server's clock. ``<=`` is the complement of the ``>`` of every read: a record is
        purged exactly when ``get`` stops returning it.
        """
        with self._failures("delete_many"):
            expired = {"expires_at": {"$lte": self._now()}}
            return self._sync().delete_many(expired).deleted_count

    def close(self) -> None:
        """Close the clients this storage made; clients passed in are left open.

        asyncio clients cannot be closed from sync code; call ``aclose()`` from the loop.
        """
        run_plan(self._close(in_loop=False))

    # -- async ---------------------------------------------------------------------------------

    async def aget(self, key: str) -> bytes | None:
        return await arun_plan(self._get(self._async_place, key))

    async def aset(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        await arun_plan(self._set(self._async_place, key, value, ttl))

    async def areplace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return await arun_plan(self._replace(self._async_place, key, value, ttl))

    async def acreate(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return await arun_plan(self._create(self._async_place, key, value, ttl))

    async def atouch(self, key: str, ttl: timedelta | None) -> bool:
        return await arun_plan(self._touch(self._async_place, key, ttl))

    async def areplace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool:
        return await arun_plan(self._replace_if(self._async_place, key, expected, value, ttl))

    async def atake(self, key: str) -> bool:
        return await arun_plan(self._take(self._async_place, key))

    async def adelete(self, key: str) -> None:
        await arun_plan(self._delete(self._async_place, key))

    async def areset(self) -> None:
        await arun_plan(self._reset(self._async_place))

    async def aclose(self) -> None:
        """Close this loop's asyncio client and the sync client, if this storage made them."""
        await arun_plan(self._close(in_loop=True))
