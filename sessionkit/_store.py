"""``Store``: where sessions come from and go to (Fiber's ``session.Store``).

The store owns the configuration, the value registry, the id format and the record layer
under its sessions (sessionkit._records: the storage and how records are named, sealed and
written); every per-request decision that can be made once is made here at construction.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import random
import re
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import attrs

from ._config import Config, KeyLookup, default_key_generator
from ._envelope import decode_record
from ._errors import ConfigError, SessionGone, SessionKitError, StorageError
from ._id_lookup import ASGI_KEY, WSGI_KEY, asgi_values, carrier_of, client_values, wsgi_values
from ._principals import Entry, PrincipalIndex, principal_text
from ._records import Plan, Records, aguard, cleanup_failed, guard
from ._records import fingerprint as fingerprint  # for the core's logs (_finish, demo)
from ._session import DEFERRED, EAGER, PENDING, STORED, Loading, Session
from ._steps import DELETE, GET, PAUSE, REPLACE_IF, SET, Steps, adrive, drive
from ._storage import Storage
from ._turns import Turns
from ._values import DecodeError, TypeRegistry

__all__ = ["Store"]

logger = logging.getLogger("sessionkit")


class Store:
    """Sessions for one application (Fiber: ``session.New(config)``).

    ``Store(config)`` or ``Store(**fields)``; fields given beside a config override it.
    ``clock`` (seconds since the epoch) is for tests that need to move time.

    Under the sessions lie their records (:class:`~sessionkit._records.Records`): read, judged
    live, encoded and written by id. The store keeps the one it builds as ``_records``, which
    is not public API but is the designated entry point for the Django engine
    (sessionkit.django), whose own session object needs the records without this store's
    ``Session``: the engine calls the public names of ``_records`` and no other private name
    here, so the store's internals are free to change under it.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        clock: Callable[[], float] = time.time,
        **fields: Any,
    ) -> None:
        if not isinstance(config, Config | None):
            raise _not_a_config(config)
        unknown = fields.keys() - _FIELDS
        if unknown:
            raise _unknown_field(sorted(unknown)[0])
        if config is None:
            config = Config(**fields)
        elif fields:
            config = attrs.evolve(config, **fields)
        self.config = config
        self.now = clock
        self.types = TypeRegistry()
        self.lookup = config.lookup
        #: Where ids are read from: the one source, or a chain's sources (see _id_lookup).
        lookups = config.lookups
        self._sources: KeyLookup | tuple[KeyLookup, ...] = (
            lookups[0] if len(lookups) == 1 else lookups
        )
        self._id_length = config.id_length
        self._id_pattern = re.compile(rf"[A-Za-z0-9_-]{{{self._id_length}}}\Z")
        self._generate = config.key_generator
        # The default draws from ``secrets`` and always has the shape: it needs no check.
        self._trusted_ids = config.key_generator is default_key_generator
        #: The record layer (see the class's docstring): the storage, the storage keys, the
        #: keyring, the write strategy and the principal index are its.
        records = self._records = Records(self, config)
        self.storage: Storage = records.storage
        self.storage_key: Callable[[str], str] = records.storage_key
        self._keyring = records.keyring
        self._strategy = records.strategy
        self._merging = config.conflict == "merge" and records.strategy.compares
        self._inline = records.inline
        #: This process's saves of one session take turns (sessionkit._turns).
        self._turns = Turns()
        # The record layer's methods that this store's per-request path calls, and those
        # other core modules call on the store (sessionkit._strategy, _session, _finish),
        # bound once here under the names they had as Store's own: a call through one costs
        # what a call of a method of Store's costs, with no hop to the record layer between.
        self._read = records.read
        self._aread = records.aread
        self._live_record = records.live_record
        self._plan = records.plan
        self._sealed = records.sealed
        self._index_steps = records.index_steps
        self._lifetime = records.lifetime
        self._ttl = records.ttl
        self._absolute = records.absolute

    # -- public API ---------------------------------------------------------------------------

    def register_type(self, cls: type, *, name: str | None = None) -> None:
        """Admit an attrs class, dataclass or enum as a session value (Fiber: ``RegisterType``)."""
        self.types.register_type(cls, name=name)

    def new_id(self) -> str:
        """Return a new server-made session id.

        A custom ``key_generator`` is checked on every id, not only when the config samples
        it: an id that could break out of a header line, or has another length than the ids
        clients are held to, fails here with :class:`~sessionkit.SessionKitError`, before it
        names a record or reaches a response.
        """
        session_id = self._generate()
        if self._trusted_ids or self.is_valid_id(session_id):
            return session_id
        raise SessionKitError(
            f"key_generator returned {session_id!r}, not an id of the configured shape "
            f"({self._id_length} characters of A-Z a-z 0-9 _ -); nothing was stored"
        )

    def is_valid_id(self, session_id: object) -> bool:
        """Return whether ``session_id`` has the exact shape of ids this store makes."""
        return isinstance(session_id, str) and self._id_pattern.match(session_id) is not None

    def client_id(self, request: Any) -> str | None:
        """The well-formed id the request carries, or ``None`` (absent, repeated or malformed)."""
        is_asgi, carrier = carrier_of(request)
        return self._sid(client_values(is_asgi, carrier, self._sources))

    def _sid(self, values: list[str]) -> str | None:
        """The id among what the client sent: exactly one value, well formed; else ``None``."""
        if len(values) == 1 and self._id_pattern.match(values[0]):
            return values[0]
        return None

    def get(self, request: Any) -> Session:
        """Return the request's session, loading it on first call (Fiber: ``store.Get(c)``).

        Within one request the same object is returned each time. An id the client made up,
        or one that is unknown or expired, is never adopted: the session is then fresh, with
        a new id made here.
        """
        is_asgi, carrier = carrier_of(request)
        return self._session_for(is_asgi, carrier)

    async def aget(self, request: Any) -> Session:
        """Async twin of :meth:`get`.

        Under ``SessionMiddleware(app, store, autoload=False)`` this is what loads the
        request's session (one storage read). A session whose load already failed is returned
        as it is (its first use raises the error): during an outage, retrying on every call
        would only stack up timeouts.
        """
        is_asgi, carrier = carrier_of(request)
        return await self._asession_for(is_asgi, carrier)

    def get_by_id(self, session_id: str) -> Session | None:
        """Load a session by id, or ``None`` for an empty, malformed, unknown or expired id."""
        if not self.is_valid_id(session_id):
            return None
        session = self._from_payload(session_id, self._read(session_id))
        return None if session.fresh else session

    async def aget_by_id(self, session_id: str) -> Session | None:
        """Async twin of :meth:`get_by_id`."""
        if not self.is_valid_id(session_id):
            return None
        session = self._from_payload(session_id, await self._aread(session_id))
        return None if session.fresh else session

    def load(self, session_id: str | None) -> Session:
        """Return the session stored under ``session_id``, or a fresh one (for middleware)."""
        if session_id is None or not self.is_valid_id(session_id):
            return self._from_payload(None, None)
        return self._from_payload(session_id, self._read(session_id))

    async def aload(self, session_id: str | None) -> Session:
        """Async twin of :meth:`load`."""
        if session_id is None or not self.is_valid_id(session_id):
            return self._from_payload(None, None)
        return self._from_payload(session_id, await self._aread(session_id))

    def delete(self, session_id: str) -> None:
        """Delete one session by id (log a user out everywhere); a malformed id is ignored."""
        if self.is_valid_id(session_id):
            self._records.delete(session_id)

    async def adelete(self, session_id: str) -> None:
        """Async twin of :meth:`delete`."""
        if self.is_valid_id(session_id):
            await self._records.adelete(session_id)

    def sessions_for(self, principal: str | int) -> list[str]:
        """The ids of the live sessions holding ``principal`` under ``Config.principal_key``
        (a user's devices), read from the user's index: no scan of the storage."""
        return self._listed(principal, drive(self.storage, self._live_steps(principal)))

    async def asessions_for(self, principal: str | int) -> list[str]:
        """Async twin of :meth:`sessions_for`."""
        return self._listed(
            principal, await adrive(self.storage, self._live_steps(principal), self._inline)
        )

    def destroy_all(self, principal: str | int, *, keep: str | None = None) -> int:
        """Destroy every live session holding ``principal`` (log the user out everywhere), or
        every one but ``keep`` (a session id: "log out my other devices"); return how many.

        A session saved holding ``principal`` after this returns (a log-in racing it) is not
        destroyed. A parallel save of a destroyed session does not bring it back.
        """
        return drive(self.storage, self._destroy_all_steps(principal, keep))

    async def adestroy_all(self, principal: str | int, *, keep: str | None = None) -> int:
        """Async twin of :meth:`destroy_all`."""
        return await adrive(self.storage, self._destroy_all_steps(principal, keep), self._inline)

    def reset(self) -> None:
        """Delete every session of this store (its storage namespace only)."""
        guard(self.storage.reset)

    async def areset(self) -> None:
        """Async twin of :meth:`reset`."""
        await aguard(self.storage.areset())

    def close(self) -> None:
        """Release the storage's connections."""
        guard(self.storage.close)

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await aguard(self.storage.aclose())

    # -- the principal index (see sessionkit._principals) ---------------------------------------

    def _index(self) -> PrincipalIndex:
        index = self._records.principals
        if index is None:
            raise ConfigError("principal_key", "is not set: no index of sessions by user is kept")
        return index

    def _live_steps(self, principal: str | int) -> Steps[list[Entry]]:
        return (yield from self._index().live_steps(principal_text(principal)))

    def _listed(self, principal: str | int, entries: list[Entry]) -> list[str]:
        index, ids = self._index(), []
        for entry in entries:
            try:
                ids.append(index.session_id(entry))
            except DecodeError as exc:
                logger.warning("sessionkit: a session of a user cannot be listed (%s)", exc)
        return ids

    def _destroy_all_steps(self, principal: str | int, keep: str | None) -> Steps[int]:
        index, text = self._index(), principal_text(principal)
        kept = None if keep is None else self.storage_key(keep)
        gone: set[str] = set()
        for entry in (yield from index.live_steps(text)):
            if kept in entry.names:
                continue
            if (yield from self._records.take_each_steps(entry.names)):
                gone.add(entry.names[0])
        if gone:
            yield from index.prune_steps(text, gone)
        return len(gone)

    # -- loading ------------------------------------------------------------------------------

    def _session_for(
        self,
        is_asgi: bool,
        carrier: MutableMapping[str, Any],
        loading: Loading = EAGER,
        cls: type[Session] = Session,
        *,
        failure: StorageError | None = None,
    ) -> Session:
        """The request's session: the one way it is obtained, by :meth:`get` and by every
        middleware (:meth:`_asession_for` is the twin whose eager read is async).

        ``carrier`` is the request's scope (``is_asgi``) or environ, and keeps the session for
        the rest of the request: one already there is returned as it is. Otherwise the id the
        client sent is read from it, and ``loading`` says when the record is read (see
        :class:`~sessionkit._session.Loading`). A request without a well-formed id has nothing
        to read, so its session is fresh at once, unless it is :data:`DEFERRED`: a handler
        that forgot the ``aget`` must fail on its first request, not only once visitors come
        back with cookies.

        ``failure``: the storage error an eager load of this request met (the ASGI
        middleware's). The session is then pending and its first use raises the error again,
        so a route that never touches its session is served during an outage, and one that
        does answers 503.
        """
        key, values = _CARRIERS[is_asgi]
        cached = carrier.get(key)
        # ``is not None`` first: Session is a MutableMapping, and isinstance(None, an ABC)
        # goes through ABCMeta's Python-level check on every request that has no session yet.
        if cached is not None and isinstance(cached, Session) and cached._store is self:
            return cached
        sid = self._sid(values(carrier, self._sources))
        if loading is EAGER:
            session = self._from_payload(sid, None if sid is None else self._read(sid), cls)
        elif loading is DEFERRED:
            why = failure or SessionKitError(_UNLOADED)
            session = cls(self, sid or "", None, now=0.0, client_id=sid, pending=True, failure=why)
        elif sid is None:  # nothing to read
            session = self._from_payload(None, None, cls)
        else:
            session = cls(self, sid, None, now=0.0, client_id=sid, pending=True, failure=failure)
        carrier[key] = session
        return session

    async def _asession_for(self, is_asgi: bool, carrier: MutableMapping[str, Any]) -> Session:
        """:meth:`_session_for`, :data:`EAGER`, with the storage's async read: :meth:`aget`,
        and the ASGI middleware before its app runs (one read, and the session built once).

        A session already in ``carrier`` but not read yet (``autoload=False``) is read now,
        unless its load failed (see :meth:`aget`).
        """
        key, values = _CARRIERS[is_asgi]
        cached = carrier.get(key)
        if cached is not None and isinstance(cached, Session) and cached._store is self:
            if cached._state is PENDING and not isinstance(cached._failure, StorageError):
                await self._afill(cached)
            return cached
        sid = self._sid(values(carrier, self._sources))
        session = self._from_payload(sid, None if sid is None else await self._aread(sid))
        carrier[key] = session
        return session

    def _from_payload(
        self, session_id: str | None, payload: bytes | None, cls: type[Session] = Session
    ) -> Session:
        now = self.now()
        record = self._live_record(session_id, payload, now)
        if record is not None and session_id is not None:
            return cls(self, session_id, record, now=now, client_id=session_id, raw=payload)
        return cls(self, self.new_id(), None, now=now, client_id=session_id)

    def _fill(self, session: Session) -> None:
        """Load a pending session (see :meth:`_session_for`); on a storage error it stays
        pending."""
        failure = session._failure
        if failure is not None:
            if isinstance(failure, StorageError):
                session._broke = failure
                raise StorageError(str(failure)) from failure.__cause__
            raise SessionKitError(str(failure))
        self._loaded(session, session._noting(self._read, session._id))

    async def _afill(self, session: Session) -> None:
        """Async twin of :meth:`_fill`, for ``await store.aget(request)``: an async read may
        load a session that sync code must not (``autoload=False``).

        Two tasks of one request may both await the load: the first to finish loads the
        session, and the second's read is dropped, or it would undo what the first task has
        done with the session meanwhile.
        """
        if session._client_id is None:
            payload = None
        else:
            payload = await session._anoting(self._aread(session._id))
        if session._state is PENDING:
            self._loaded(session, payload)

    def _loaded(self, session: Session, payload: bytes | None) -> None:
        sid = session._id
        now = self.now()
        record = self._live_record(sid, payload, now)
        if record is None:
            session._filled(self.new_id(), None, now)
        else:
            session._filled(sid, record, now, payload)

    # -- saving -------------------------------------------------------------------------------

    def _plan_save(self, session: Session) -> Plan | None:
        """Encode ``session``; ``None`` when it is empty and must not be stored."""
        if not session._data:
            return None
        # The horizon the stored record was indexed until holds for its id and principal: not
        # for a new record (a new id) nor when this request changed the principal.
        indexed = session._indexed
        if session._state is not STORED or self.config.principal_key in session._edits:
            indexed = None
        return self._plan(
            session._data,
            session._created,
            session._lifetime,
            browser=session._browser,
            indexed=indexed,
        )

    def _saved(self, session: Session, wrote: bool, plan: Plan) -> None:
        if not wrote:
            # The session stays "persisted": a later save of this object is again a
            # conditional write, and fails the same way instead of re-creating the record.
            session._modified = False
            raise SessionGone(
                f"session {fingerprint(session._id)} was destroyed or regenerated meanwhile; "
                "nothing was written"
            )
        # What is stored now, which the next save in this request merges against: the plan's
        # bytes, unless encryption sealed them on the way (then unknown here, and that save
        # re-reads the record first).
        raw = plan.payload if self._keyring is None else None
        session._stored(plan.now, plan.lifetime, raw, plan.horizon)

    # Each save is written once, as steps (see sessionkit._steps): the sync method drives them
    # with the storage's sync calls, its async twin with the async ones.

    def _run_save(self, session: Session, plan: Plan | None = None) -> None:
        """Save ``session`` (``plan``: already encoded, by a renewal). A save that may merge
        first waits its turn among this process's saves of the session (sessionkit._turns)."""
        if not self._merges(session):
            drive(self.storage, self._save_steps(session, plan))
            return
        deadline = time.monotonic() + _MERGE_BUDGET
        with self._turns.turn(session._id, deadline) as turn:
            if turn is None:
                raise _kept_changing(session)
            known, turn.stored = turn.stored, None
            drive(self.storage, self._save_steps(session, plan, deadline, known))
            turn.stored = _left_stored(session)

    async def _arun_save(self, session: Session, plan: Plan | None = None) -> None:
        """Async twin of :meth:`_run_save` (turns among the tasks of the running loop).

        On a storage whose calls run inline (memory), a save never suspends its task between
        its read and its write: no other task of the loop can come between them, and the
        save takes no turn. (Its merge's pause between retries does suspend; a retry means
        another thread or process saved meanwhile, and the compare-and-swap decides as it
        does between processes.)
        """
        if self._inline or not self._merges(session):
            await adrive(self.storage, self._save_steps(session, plan), self._inline)
            return
        deadline = time.monotonic() + _MERGE_BUDGET
        turn = self._turns.aturn(session._id, deadline)
        try:
            if not (turn.take() or await turn.wait()):
                raise _kept_changing(session)
            slot = turn.slot
            known, slot.stored = slot.stored, None
            await adrive(self.storage, self._save_steps(session, plan, deadline, known))
            slot.stored = _left_stored(session)
        finally:
            turn.leave()

    def _merges(self, session: Session) -> bool:
        """Whether a save of ``session`` goes over what it loaded, merging if that changed."""
        return self._merging and session._state is STORED and session._raw is not None

    def _save_steps(
        self,
        session: Session,
        plan: Plan | None,
        deadline: float | None = None,
        known: bytes | None = None,
    ) -> Steps[None]:
        """A save; ``deadline`` (``time.monotonic()``) bounds a merge's retries (default: the
        merge budget from now); ``known``: what the save before it in this process left
        stored (see :meth:`_merge_steps`).

        Not a generator itself: it encodes the record at once (as the first step would) and
        hands back the steps of the one kind of write due, so a save's calls pass through one
        generator, not two.
        """
        if plan is None:
            plan = self._plan_save(session)
        if plan is None:
            return self._empty_steps(session)
        if session._state is not STORED:
            return self._create_steps(session, plan)
        if self._merges(session):
            return self._merge_steps(session, plan, deadline, known)
        return self._replace_steps(session, plan)

    def _empty_steps(self, session: Session) -> Steps[None]:
        """An emptied session: its stored record is taken, and nothing written."""
        old = session._stored_id()
        self._emptied(session, old, old is not None and (yield from self._records.take_steps(old)))

    def _create_steps(self, session: Session, plan: Plan) -> Steps[None]:
        """A new record (a new session, or one ``regenerate()`` moved: the old one is retired)."""
        new_id = yield from self._records.create_steps(session._id, plan)
        retired: Plan | None = plan
        if session._retiring is not None:
            retired = yield from self._retire_steps(session, new_id, plan)
        session._id = new_id
        if retired is not None:
            self._saved(session, True, retired)

    def _replace_steps(self, session: Session, plan: Plan) -> Steps[None]:
        """A stored record written over, with no merge (``conflict="overwrite"``, a storage
        that cannot compare and swap, or a session whose loaded bytes are not known)."""
        self._saved(session, (yield from self._records.replace_steps(session._id, plan)), plan)

    def _merge_steps(
        self,
        session: Session,
        plan: Plan,
        deadline: float | None = None,
        known: bytes | None = None,
    ) -> Steps[None]:
        """Save a loaded session over exactly the bytes it was loaded from (``replace_if``);
        when another request saved it meanwhile, re-read it, re-apply this request's own
        changes on top (:meth:`_rebase`) and try again, for at most :data:`_MERGE_BUDGET`.

        So two requests of one session no longer undo each other: a request that only set
        ``cart`` does not bring back the ``user`` a parallel log-out removed. Two requests setting
        one key: the later save wins, as before. A record destroyed or regenerated meanwhile
        stays gone (:class:`~sessionkit.SessionGone`): a merge never brings a session back.

        ``known``: the bytes the save before this one in this process left stored (its turn,
        see sessionkit._turns). When they are not what this session loaded, that save has
        replaced them: this one merges onto ``known`` at once, and skips a write bound to
        fail and a read. The compare-and-swap still checks ``known``, so a change another
        process made meanwhile is found and merged as ever.
        """
        key = self.storage_key(session._id)
        expected = session._raw
        if known is not None and known != expected and self._rebase(session, known):
            rebased = self._plan_save(session)
            if rebased is not None:  # else the loop below finds the record and takes it
                plan, expected = rebased, known
        if deadline is None:
            deadline = time.monotonic() + _MERGE_BUDGET
        indexed = None
        for attempt in itertools.count():
            if attempt > 1:  # others keep saving: step aside a random while, up to 50 ms
                if time.monotonic() >= deadline:
                    break
                yield PAUSE, (random.uniform(0, min(0.05, 0.001 * 2**attempt)),)
            if plan.indexing and (plan.principal, plan.horizon) != indexed:
                yield from self._index_steps(session._id, plan)
                indexed = (plan.principal, plan.horizon)
            payload = self._sealed(key, plan)
            if (yield REPLACE_IF, (key, expected, payload, plan.ttl)):
                self._saved(session, True, plan)
                if self._keyring is not None:
                    session._raw = payload
                return
            current = yield GET, (key,)
            if current is None and self._records.older_names:
                # Perhaps still under an older secret's name (storage_key_secret rotating):
                # the plain save moves it, or finds it gone.
                ok = yield from self._records.replace_steps(session._id, plan)
                self._saved(session, ok, plan)
                return
            if not self._rebase(session, current):
                self._saved(session, False, plan)  # raises SessionGone
            rebased = self._plan_save(session)
            if rebased is None:  # this request deleted every key the record still held
                taken = yield from self._records.take_steps(session._id)
                self._emptied(session, session._id, taken)
                return
            plan, expected = rebased, current
        raise _kept_changing(session)  # others kept this one from landing for the whole budget

    def _rebase(self, session: Session, stored: bytes | None) -> bool:
        """Put ``session``'s own changes on top of the record as ``stored`` now; ``False`` when
        no live record is there any more (destroyed, regenerated, expired or unreadable)."""
        record = self._live_record(session._id, stored, self.now())
        if record is None:
            return False
        session._rebased(record)
        logger.debug(
            "sessionkit: session %s was saved by another request meanwhile; this request's "
            "changes were merged on top",
            fingerprint(session._id),
        )
        return True

    def _retire_steps(self, session: Session, new_id: str, plan: Plan) -> Steps[Plan | None]:
        """The second step of a ``regenerate()``'s save, once ``plan`` is stored under
        ``new_id``: take the old record. Return the plan that now stands under ``new_id``
        (``None``: nothing does, and the session is empty).

        If the take fails, the new copy is removed (as far as the storage lets us) and the
        error raised: the old record is intact. If the old record was already gone, the new
        copy is rewritten to what :meth:`_lost` keeps, or removed.
        """
        retiring = session._retiring
        assert retiring is not None
        new_key = self.storage_key(new_id)
        try:
            taken = yield from self._records.take_steps(retiring)
        except StorageError:
            try:
                yield DELETE, (new_key,)
            except StorageError as exc:
                cleanup_failed(exc)
            raise
        if taken:
            return plan
        kept = self._lost(session, retiring)
        if kept is None:
            yield DELETE, (new_key,)
        else:  # our own copy, under an id no one else has: a plain write replaces it
            yield from self._index_steps(new_id, kept)
            yield SET, (new_key, self._sealed(new_key, kept), kept.ttl)
        return kept

    def _emptied(self, session: Session, old: str | None, taken: bool) -> None:
        """A save found ``session`` empty; ``old``: the id of its stored record (``None``:
        none), ``taken``: that record was deleted just now.

        When the record was already gone, another request destroyed or regenerated this
        session first, and that request's response owns the cookie: this one must not expire
        it (it could land after a log-in's new cookie and delete that).
        """
        session._emptied(forgotten=old is not None, taken=taken)

    def _renew(self, session: Session) -> None:
        """Rewrite a session that was only read (see :meth:`Finisher.write_due
        <sessionkit._finish.Finisher.write_due>`), but only over the exact bytes it was
        loaded from: if another request saved it meanwhile (a log-out removing a key), that
        save stands, and this request skips its renewal; the other write renewed it anyway.
        """
        drive(self.storage, self._renew_steps(session))

    async def _arenew(self, session: Session) -> None:
        """Async twin of :meth:`_renew`."""
        await adrive(self.storage, self._renew_steps(session), self._inline)

    def _renew_steps(self, session: Session) -> Steps[None]:
        raw = session._raw
        plan = self._renewal_plan(session)
        if raw is None or plan is None:
            return
        key = self.storage_key(session._id)
        renewed = yield from self._strategy.renew(self, session, plan, key, raw)
        if not renewed and self._records.older_names:
            yield from self._renew_older_steps(session, plan, raw)

    def _renew_older_steps(self, session: Session, plan: Plan, raw: bytes) -> Steps[None]:
        """A renewal of a record still under an older secret's name: moved (a save of the
        renewal's plan) if it is still exactly what was loaded, else left to the save that
        changed it."""
        for name in self._records.older_names:
            if (yield GET, (name(session._id),)) == raw:
                yield from self._save_steps(session, plan)
                return

    def _renewal_plan(self, session: Session) -> Plan | None:
        """:meth:`_plan_save` for a renewal: the record *as stored* (``session._raw``, decoded
        again), with a new save time; ``None`` when there is nothing to renew.

        Not the session's data as it is now: a read-only request may have changed a value in
        place (appended to a stored list) without marking the session modified, and such a
        change is not saved by a renewal any more than by the end of the request. So a renewal
        never writes more than was stored: it cannot push a record past ``max_size`` (it was
        held to it when stored), and it is not held to it again, or a record stored a few
        bytes under the cap (a longer time stamp), or before ``max_size`` was lowered, would
        turn a page view into an error. A stored value this release refuses to write (nested
        deeper than the value registry allows, stored by an earlier release) skips the
        renewal, logged, as a failed one does: the read must still be served.
        """
        raw = session._raw
        if raw is None:
            return None
        try:
            stored = decode_record(self.types, self._records.opened(session._id, raw))
            if not stored.data:
                return None
            return self._plan(
                stored.data,
                stored.created,
                stored.lifetime,
                renewal=True,
                browser=stored.browser,
                indexed=stored.indexed,
            )
        except (TypeError, DecodeError) as exc:
            logger.warning(
                "sessionkit: session %s cannot be renewed (%s); served without renewing it",
                fingerprint(session._id),
                exc,
            )
            return None

    def _lost(self, session: Session, old_id: str) -> Plan | None:
        """A regenerated session's save found its old record gone: another request destroyed
        or regenerated it first. Its data is not carried over (see
        :meth:`Session.regenerate`): the session keeps only the keys this request set since
        ``regenerate()``. Return the plan that stores them (``None``: nothing is left)."""
        logger.info(
            "sessionkit: session %s was destroyed or regenerated by another request first; "
            "regenerate() did not carry its data over",
            fingerprint(old_id),
        )
        session._kept_changes(self.now())
        return self._plan_save(session)


#: The record layer's plan under the name sessionkit._strategy knows it by.
_Plan = Plan

#: How long, in seconds, a save keeps re-applying its changes over other requests' saves of the
#: same session before it gives up with a StorageError (a 503: nothing written, so nothing
#: acknowledged is lost): the storage's own timeout, 5 s by default. From the third try on, a
#: try first waits a random while (exponential backoff with jitter, capped at 50 ms), so
#: requests saving one session at once take turns: a handful merge in a few milliseconds.
_MERGE_BUDGET = 5.0

#: Where a WSGI environ (``False``) and an ASGI scope (``True``) keep the request's session, and
#: how the id the client sent is read from each.
_CARRIERS = ((WSGI_KEY, wsgi_values), (ASGI_KEY, asgi_values))

#: Why a :data:`DEFERRED` session's use before ``await store.aget(request)`` fails.
_UNLOADED = (
    "the session is not loaded: the ASGI middleware runs with autoload=False, so "
    "call `await store.aget(request)` before using request.session"
)

#: The names ``Store(**fields)`` takes: the config's fields.
_FIELDS = frozenset(field.name for field in attrs.fields(Config))


def _left_stored(session: Session) -> bytes | None:
    """What a save left stored for the next save's turn (``None``: unknown, or no record)."""
    return session._raw if session._state is STORED else None


def _kept_changing(session: Session) -> StorageError:
    """A save that others kept from landing for the whole merge budget, waiting its turn or
    losing the race: it fails (a 503; nothing written, so nothing acknowledged is lost, and
    the client may retry) rather than overwrite what the others saved."""
    return StorageError(
        f"session {fingerprint(session._id)} kept changing for {_MERGE_BUDGET:.0f} s while "
        "this request merged its changes into it; nothing was written"
    )


def _not_a_config(value: object) -> ConfigError:
    if isinstance(value, str):
        return ConfigError(
            "storage",
            f"Store() takes a Config as its first argument, not the text {value!r}; "
            f"for a storage URL write Store(storage={value!r})",
        )
    return ConfigError(
        "config", f"Store() takes a Config as its first argument, got {type(value).__qualname__}"
    )


def _unknown_field(name: str) -> ConfigError:
    close = difflib.get_close_matches(name, sorted(_FIELDS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; the settings are {sorted(_FIELDS)}"
    return ConfigError(name, f"Store() has no setting {name!r}{hint}")
