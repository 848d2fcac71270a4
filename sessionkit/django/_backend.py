"""``SessionStore``: Django's ``SessionBase`` on a sessionkit :class:`~sessionkit.Store`.

Django's contract, kept whole (its own ``SessionTestsMixin`` runs against this class, see
``tests/django``), with sessionkit's rules underneath:

* **Ids** are drawn by the store's ``key_generator`` (256 bits from ``secrets`` by default). A
  key from the client is only ever a lookup: one that is malformed reaches no storage, one
  that loads nothing is dropped (``session_key`` becomes ``None``, as Django's own engines
  do), and a save then stores the data under a new, server-made key. A new record is written
  create-only, so it can never overwrite another visitor's.
* **Values** go through sessionkit's codec: typed (a ``datetime`` comes back a ``datetime``),
  no pickle, and an unstorable value fails where it is set, not at the end of the request.
  ``SESSION_SERIALIZER`` plays no part.
* **Expiry** is the server's: each write stores the age Django computes
  (``get_expiry_age()``: ``set_expiry`` or the cookie age) inside the record, and a read of a
  record past it finds nothing, whatever the storage's own TTL did. A session whose expiry
  date has passed is not written at all.
* **Saves never resurrect**: an update writes only over a record that still exists, else
  ``UpdateError`` (Django's middleware turns it into ``SessionInterrupted``).
* **Storage failures** raise :class:`~sessionkit.StorageError` (never an empty session in its
  place); the session remembers it, so the middleware answers 503 even when an error layer in
  between turned the exception into a 500 page.

Underneath, this class goes through one face of the core: ``store._records``
(:class:`~sessionkit._records.Records`: reading a record by id, judging it live, encoding a
write and the create-only, replace-if-live, take and delete writes), the same reads and writes
a sessionkit save is made of, with their storage keys, guards and atomic operations. It calls
no other private name of :class:`~sessionkit.Store`.

Where sessionkit's rules and Django's differ, this class follows Django's: ``save()`` and
``create()`` store an empty session when asked to (apps call them to get a ``session_key``),
while the middleware, as Django's does, never saves a session nobody wrote to.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from .._abilities import PurgeableStorage
from .._config import MAX_LIFETIME
from .._envelope import decode_record, encode_envelope
from .._errors import StorageError
from .._noting import FailureNoting
from .._records import Plan, Records, aquietly, fingerprint, guard, quietly
from .._store import Store
from .._values import DecodeError
from ._engine import engine

__all__ = ["SessionStore"]

logger = logging.getLogger("sessionkit")

_T = TypeVar("_T")
_MAX_AGE = MAX_LIFETIME.total_seconds()


class _Write(NamedTuple):
    """A save worked out before any storage call: the ``plan`` to write (``None``: the
    session's expiry date has passed, and nothing is written), its ``age`` in seconds, and
    when the session began."""

    plan: Plan | None
    age: float
    created: float


class _State(NamedTuple):
    """What :meth:`SessionStore.cycle_key` restores when a storage call fails half-way."""

    key: str | None
    known: str | None
    stored: bool
    created: float | None
    written: float | None
    modified: bool
    indexed: tuple[str, float] | None


class SessionStore(FailureNoting, SessionBase):
    """A Django session engine on sessionkit: ``SESSION_ENGINE = "sessionkit.django"``."""

    if TYPE_CHECKING:  # SessionBase's internals this class works with (not in Django's stubs)
        _session_cache: dict[str, Any]

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...
        @property
        def _session(self) -> dict[str, Any]: ...

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        #: The key of a record this object loaded or made itself: the only key a save may
        #: write under (any other is the client's, and never adopted).
        self._known: str | None = None
        #: Whether a record is stored under ``_known`` (as far as this object knows).
        self._stored = False
        #: When the session began (Unix time; ``None``: not yet), kept across ``cycle_key``
        #: so ``absolute_timeout`` counts from the first log-in, not the last key change.
        self._created: float | None = None
        #: Seconds the last write stored the session for: the cookie's ``Max-Age``.
        self._written: float | None = None
        #: A storage call for this session failed in this request (see the middleware).
        self._broke: StorageError | None = None
        #: With ``principal_key``: the principal the record under ``_known`` was indexed
        #: under and the horizon it was indexed until, so a save that keeps both does not
        #: index it again (see sessionkit._principals).
        self._indexed: tuple[str, float] | None = None
        #: ``flush()`` ended the session in this request: the middleware expires its cookie.
        self._flushed = False

    # -- values -------------------------------------------------------------------------------

    def _admit(self, key: object, value: Any) -> None:
        """Refuse now what the codec could not store at the end of the request."""
        if type(key) is not str:
            raise TypeError(f"session keys must be str, got {type(key).__qualname__}")
        engine().store.types.encode(value)

    def __setitem__(self, key: str, value: Any) -> None:
        self._admit(key, value)
        super().__setitem__(key, value)

    async def aset(self, key: str, value: Any) -> None:
        self._admit(key, value)
        await super().aset(key, value)

    def update(self, dict_: Any) -> None:  # type: ignore[override]
        items = dict(dict_)
        for key, value in items.items():
            self._admit(key, value)
        super().update(items)

    async def aupdate(self, dict_: Any) -> None:
        items = dict(dict_)
        for key, value in items.items():
            self._admit(key, value)
        await super().aupdate(items)

    def encode(self, session_dict: dict[str, Any]) -> str:
        """``session_dict`` as sessionkit stores it (a versioned JSON envelope, no pickle)."""
        store = engine().store
        now = store.now()
        return encode_envelope(store.types, session_dict, now, now, None).decode()

    def decode(self, session_data: bytes | str) -> dict[str, Any]:
        """The data of an :meth:`encode`'d session; ``{}`` for anything else, logged to
        ``django.security.SuspiciousSession`` as Django's engines do."""
        try:
            if isinstance(session_data, str):
                session_data = session_data.encode()
            return decode_record(engine().store.types, session_data).data
        except (DecodeError, UnicodeError):
            logging.getLogger("django.security.SuspiciousSession").warning("Session data corrupted")
            return {}

    # -- expiry -------------------------------------------------------------------------------

    def get_session_cookie_age(self) -> int:
        """``SESSIONKIT["expiration"]`` if set, else ``SESSION_COOKIE_AGE``."""
        return engine().cookie.age

    def get_expire_at_browser_close(self) -> bool:
        expiry = self.get("_session_expiry")
        return engine().cookie.session_only if expiry is None else expiry == 0

    async def aget_expire_at_browser_close(self) -> bool:
        expiry = await self.aget("_session_expiry")
        return engine().cookie.session_only if expiry is None else expiry == 0

    def _write_for(self, store: Store, data: dict[str, Any], same_key: bool = False) -> _Write:
        """Encode ``data`` for a write now (``max_size`` and the values checked here).

        Its age is Django's (``get_expiry_age``), reckoned from the store's clock, which also
        stamps the record and judges its expiry on every read.
        """
        now = store.now()
        modification = datetime.fromtimestamp(now, tz=timezone.utc if settings.USE_TZ else None)
        expiry = data.get("_session_expiry")
        age = float(self.get_expiry_age(modification=modification, expiry=expiry))
        created = now if self._created is None else self._created
        if age <= 0:
            return _Write(None, age, created)
        records = store._records
        plan = records.plan(
            data, created, min(age, _MAX_AGE), indexed=self._horizon(records, data, same_key)
        )
        return _Write(plan, plan.lifetime, created)

    def _horizon(self, records: Records, data: dict[str, Any], same_key: bool) -> float | None:
        """The horizon the record is known to be indexed until, if a write of ``data`` under
        the same key keeps its principal (``None``: the write indexes it first)."""
        index, indexed = records.principals, self._indexed
        if not same_key or index is None or indexed is None:
            return None
        return indexed[1] if index.named_in(data) == indexed[0] else None

    def _wrote(self, write: _Write) -> None:
        """A write of ``write`` stands under ``_known``."""
        plan = write.plan
        self._stored = plan is not None
        self._written = write.age
        if plan is None or plan.principal is None or plan.horizon is None:
            self._indexed = None
        else:
            self._indexed = (plan.principal, plan.horizon)

    def _max_age(self) -> int:
        """The cookie's ``Max-Age`` after a save: the stored record's lifetime."""
        return int(self.get_expiry_age() if self._written is None else self._written)

    # -- keys ---------------------------------------------------------------------------------

    def _get_new_session_key(self) -> str:
        return engine().store.new_id()

    async def _aget_new_session_key(self) -> str:
        return engine().store.new_id()

    def _forget(self) -> None:
        """No key: the next save starts a new session (the data, if any, is kept)."""
        self._session_key = None
        self._known = None
        self._stored = False
        self._created = None
        self._written = None
        self._indexed = None

    def _took(self, key: str, write: _Write) -> None:
        """A new record (or, for an expired session, none) now stands under ``key``."""
        self._session_key = key
        self._known = key
        self._created = write.created
        self._wrote(write)
        self._flushed = False

    def _state(self) -> _State:
        return _State(
            self._session_key,
            self._known,
            self._stored,
            self._created,
            self._written,
            self.modified,
            self._indexed,
        )

    def _restore(self, state: _State) -> None:
        self._session_key = state.key
        self._known = state.known
        self._stored = state.stored
        self._created = state.created
        self._written = state.written
        self.modified = state.modified
        self._indexed = state.indexed

    # -- storage calls, through store._records (see the module's docstring) -------------------

    def _read(self, store: Store, key: str | None) -> bytes | None:
        if key is None or not store.is_valid_id(key):
            return None  # a malformed key never reaches the storage
        return self._noting(store._records.read, key)

    async def _aread(self, store: Store, key: str | None) -> bytes | None:
        if key is None or not store.is_valid_id(key):
            return None
        return await self._anoting(store._records.aread(key))

    def _found(self, store: Store, key: str | None, payload: bytes | None) -> dict[str, Any] | None:
        """Take the record ``payload`` read under ``key``; ``None`` (and no key) if there is
        none live: a client's key that loads nothing is dropped, never adopted."""
        records = store._records
        record = None if key is None else records.live_record(key, payload, store.now())
        if record is None:
            self._forget()
            return None
        self._known = key
        self._stored = True
        self._created = record.created
        self._indexed = None
        index = records.principals
        if index is not None and record.indexed is not None:
            principal = index.named_in(record.data)
            if principal is not None:
                self._indexed = (principal, record.indexed)
        return record.data

    # -- Django's contract --------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        store = engine().store
        key = self._session_key
        data = self._found(store, key, self._read(store, key))
        return {} if data is None else data

    async def aload(self) -> dict[str, Any]:
        store = engine().store
        key = self._session_key
        data = self._found(store, key, await self._aread(store, key))
        return {} if data is None else data

    def exists(self, session_key: str | None) -> bool:
        store = engine().store
        payload = self._read(store, session_key)
        return (
            payload is not None
            and store._records.live_record(session_key, payload, store.now()) is not None
        )

    async def aexists(self, session_key: str | None) -> bool:
        store = engine().store
        payload = await self._aread(store, session_key)
        return (
            payload is not None
            and store._records.live_record(session_key, payload, store.now()) is not None
        )

    def create(self) -> None:
        """Store the session under a new key, create-only (an id that names a live record is
        drawn again); ``modified`` is set so the middleware sends the new cookie."""
        store = engine().store
        write = self._write_for(store, self._get_session(no_load=True))
        key = store.new_id()
        if write.plan is not None:
            key = self._noting(store._records.create, key, write.plan)
        self._took(key, write)
        self.modified = True

    async def acreate(self) -> None:
        store = engine().store
        write = self._write_for(store, await self._aget_session(no_load=True))
        key = store.new_id()
        if write.plan is not None:
            plan = write.plan
            key = await self._anoting(store._records.acreate(key, plan))
        self._took(key, write)
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        """Write the session: ``must_create`` creates its record (``CreateError`` if one is
        there); otherwise only an existing record is replaced (``UpdateError`` if it is gone).

        A key this object did not load or make is the client's: it is never written under.
        A save without such a key, or with one that loads nothing, is a new session.
        """
        if self.session_key is None:
            return self.create()
        store = engine().store
        data = self._get_session(no_load=must_create)
        key = self.session_key
        if key is not None and key != self._known and not must_create:
            # The data was set without loading the record (clear(), then values): find it.
            self._found(store, key, self._read(store, key))
            key = self.session_key
        if key is None or key != self._known:
            return self.create()
        write = self._write_for(store, data, same_key=self._stored)
        if write.plan is None:
            self._end(store, key, write)
        elif must_create or not self._stored:
            if not self._noting(store._records.create_once, key, write.plan):
                raise CreateError if must_create else UpdateError
        elif not self._noting(store._records.replace_live, key, write.plan):
            raise UpdateError
        self._wrote(write)

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        store = engine().store
        data = await self._aget_session(no_load=must_create)
        key = self.session_key
        if key is not None and key != self._known and not must_create:
            self._found(store, key, await self._aread(store, key))
            key = self.session_key
        if key is None or key != self._known:
            return await self.acreate()
        write = self._write_for(store, data, same_key=self._stored)
        if write.plan is None:
            await self._aend(store, key, write)
        elif must_create or not self._stored:
            if not await self._anoting(store._records.acreate_once(key, write.plan)):
                raise CreateError if must_create else UpdateError
        elif not await self._anoting(store._records.areplace_live(key, write.plan)):
            raise UpdateError
        self._wrote(write)

    def _end(self, store: Store, key: str, write: _Write) -> None:
        """A save after the session's expiry date: its record goes, nothing is written."""
        if self._stored:
            self._noting(store._records.delete, key)
        self._wrote(write)

    async def _aend(self, store: Store, key: str, write: _Write) -> None:
        if self._stored:
            await self._anoting(store._records.adelete(key))
        self._wrote(write)

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            session_key = self.session_key
            if session_key is None:
                return
        store = engine().store
        if store.is_valid_id(session_key):
            self._noting(store._records.delete, session_key)

    async def adelete(self, session_key: str | None = None) -> None:
        if session_key is None:
            session_key = self.session_key
            if session_key is None:
                return
        store = engine().store
        if store.is_valid_id(session_key):
            await self._anoting(store._records.adelete(session_key))

    def flush(self) -> None:
        """End the session: its record is deleted first, so a failure changes nothing."""
        self.delete()
        self.clear()
        self._forget()
        self._flushed = True

    async def aflush(self) -> None:
        await self.adelete()
        self.clear()
        self._forget()
        self._flushed = True

    def cycle_key(self) -> None:
        """A new key for the same data (a log-in): the data is stored under the new key
        first, create-only, then the old record is taken.

        If the old record is already gone, another request ended the session meanwhile (a
        log-out): its data is not carried over, and the session starts empty (sessionkit's
        ``regenerate()``). A session with neither data nor a record gets no record at all.
        If a storage call fails, the session and its stored record stay as they were.
        """
        data = self._session
        old, state = self.session_key, self._state()
        stored = old is not None and old == self._known and self._stored
        if not data and not stored:
            self._forget()
            return
        store = engine().store
        self.create()
        self._session_cache = data
        new = self._known
        if old is None or new is None:
            return
        try:
            taken = self._noting(_retire, store, old, stored)
        except StorageError:
            quietly(store._records.delete, new)
            self._restore(state)
            raise
        if not taken:
            quietly(store._records.delete, new)
            self._lost(old)

    async def acycle_key(self) -> None:
        data = await self._aget_session()
        old, state = self.session_key, self._state()
        stored = old is not None and old == self._known and self._stored
        if not data and not stored:
            self._forget()
            return
        store = engine().store
        await self.acreate()
        self._session_cache = data
        new = self._known
        if old is None or new is None:
            return
        try:
            taken = await self._anoting(_aretire(store, old, stored))
        except StorageError:
            await aquietly(store._records.adelete(new))
            self._restore(state)
            raise
        if not taken:
            await aquietly(store._records.adelete(new))
            self._lost(old)

    def _lost(self, old: str) -> None:
        logger.info(
            "sessionkit: session %s was ended by another request first; cycle_key() did not "
            "carry its data over",
            fingerprint(old),
        )
        self._session_cache = {}
        self._forget()

    @classmethod
    def clear_expired(cls) -> None:
        """Delete expired sessions (``manage.py clearsessions``) where the storage can
        (``purge_expired``: memory, SQLite, Redis and Mongo, the last two by their TTLs).

        A storage without it raises ``NotImplementedError``, which ``clearsessions`` reports:
        its expired sessions are never served (the store checks expiry on every read), but
        whether they take up space until overwritten is the storage's business.
        """
        storage = engine().store.storage
        if not isinstance(storage, PurgeableStorage):
            raise NotImplementedError(
                f"{type(storage).__qualname__} cannot delete expired sessions in bulk "
                "(it has no purge_expired); they are never served, and expire by the "
                "storage's own TTL if it has one"
            )
        guard(storage.purge_expired)


def _retire(store: Store, old: str, stored: bool) -> bool:
    """Remove the record of the key ``cycle_key`` moved away from; whether it was there.

    A key this object never loaded (its data was set without a load) is deleted as Django
    does, and counts as there: nothing was carried over from it.
    """
    if stored:
        return store._records.take(old)
    if store.is_valid_id(old):
        store._records.delete(old)
    return True


async def _aretire(store: Store, old: str, stored: bool) -> bool:
    if stored:
        return await store._records.atake(old)
    if store.is_valid_id(old):
        await store._records.adelete(old)
    return True
