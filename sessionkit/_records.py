"""``Records``: the stored side of sessions, by id: read, judged live, encoded, written.

A *record* is what the storage holds for one session id: an envelope (see
sessionkit._envelope), sealed when ``encryption_keys`` are set, under the id's storage key
(an HMAC of it with ``storage_key_secret``, and for a while under older secrets' names too).
This layer knows ids, keys, envelopes, expiry and the principal index; it knows nothing of a
request or of a :class:`~sessionkit.Session` object.

Two callers stand on it, and nothing else reaches under it:

* :class:`~sessionkit.Store`, whose session path (load, save, merge, ``regenerate``) is
  built from these reads and writes; it builds the one ``Records`` it has in ``__init__``
  and keeps it as ``store._records``.
* The Django engine (sessionkit.django), which keeps Django's own session object and so
  needs the records without Store's ``Session``. ``store._records`` is its single entry
  point into the core: it calls the public names of this class and no private name of
  ``Store``.

So the public names here are a contract between the core and the engine, as
:class:`~sessionkit._strategy.Strategy`'s are between the store and the storage: a change
to them is a change to both callers, and a refactor of ``Store`` that keeps them breaks
neither. The class itself is private: it is not sessionkit's API.

Each write that takes more than one storage call is written once, as steps (see
sessionkit._steps); the sync and async methods only drive them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from ._config import Config
from ._crypto import Keyring, is_sealed
from ._decoded import DecodedRecords
from ._discovery import open_storage
from ._envelope import Record, encode_envelope, written_record
from ._errors import SessionKitError, SessionTooLarge, StorageError
from ._principals import PrincipalIndex
from ._steps import DELETE, GET, Steps, adrive, drive, storage_error
from ._storage import Storage
from ._strategy import Strategy, strategy_for
from ._syncstorage import runs_inline
from ._values import DecodeError, TypeRegistry

if TYPE_CHECKING:
    from ._store import Store

__all__ = [
    "Plan",
    "Records",
    "aguard",
    "aquietly",
    "cleanup_failed",
    "fingerprint",
    "guard",
    "quietly",
]

logger = logging.getLogger("sessionkit")


def fingerprint(session_id: str) -> str:
    """A short, non-reversible tag for logs: enough to correlate lines, useless as a credential."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


class Plan(NamedTuple):
    """A save, encoded and ready to write: what to write, and when and for how long."""

    payload: bytes
    ttl: timedelta
    now: float
    lifetime: float
    #: With ``principal_key``: the principal the record holds (see sessionkit._principals),
    #: the horizon its envelope says it is indexed until, and whether the index must be
    #: written first to make that true.
    principal: str | None = None
    horizon: float | None = None
    indexing: bool = False


class Records:
    """The records of one store (see the module's docstring for who may call what).

    Built by :class:`~sessionkit.Store` from its config: the storage, the storage keys, the
    keyring, the write strategy and the principal index are made here, once, and the store
    keeps references to the ones its session path uses.
    """

    __slots__ = (
        "_config",
        "_decoded",
        "_store",
        "absolute",
        "expiration",
        "inline",
        "keyring",
        "older_names",
        "principals",
        "storage",
        "storage_key",
        "strategy",
        "types",
    )

    def __init__(self, store: Store, config: Config) -> None:
        #: The store's clock and id source, read through it: tests replace ``store.now``.
        self._store = store
        self._config = config
        self.types: TypeRegistry = store.types
        #: Seconds a session lives after a save without a ``set_expiry`` of its own.
        self.expiration = config.expiration.total_seconds()
        #: ``absolute_timeout`` in seconds (``None``: no cap).
        self.absolute = (
            None if config.absolute_timeout is None else config.absolute_timeout.total_seconds()
        )
        secret = config.storage_key_secret
        secrets = () if secret is None else (secret,) if isinstance(secret, bytes | str) else secret
        secret_bytes = tuple(s.encode() if isinstance(s, str) else s for s in secrets)
        namers = [functools.partial(_hashed_key, s) for s in secret_bytes]
        #: A session id's storage key (its current name).
        self.storage_key: Callable[[str], str] = namers[0] if namers else _plain_key
        #: The names records had under the earlier secrets of a ``storage_key_secret`` being
        #: rotated: looked under only when the first name misses, and taken when the record
        #: is moved (its next write) or the session ends.
        self.older_names: tuple[Callable[[str], str], ...] = tuple(namers[1:])
        keys = config.encryption_keys
        self.keyring = (
            None if keys is None else Keyring.from_config(keys, not config.encryption_required)
        )
        #: Records decoded once, by their bytes (see sessionkit._decoded); none kept with
        #: encryption on.
        self._decoded = DecodedRecords(self.types, keep=self.keyring is None)
        storage = config.storage
        self.storage: Storage = open_storage(storage) if isinstance(storage, str) else storage
        #: How the writes go with what this storage can do (see sessionkit._strategy).
        self.strategy: Strategy = strategy_for(self.storage)
        #: The storage's async calls are its sync ones, made on the loop (the memory
        #: storage): the async paths make them directly (see :func:`adrive`).
        self.inline = runs_inline(self.storage)
        principal = config.principal_key
        #: The index of sessions by user (``principal_key``; see sessionkit._principals).
        self.principals = (
            None if principal is None else PrincipalIndex(self, principal, secret_bytes)
        )

    def now(self) -> float:
        """The store's clock (seconds since the epoch)."""
        return self._store.now()

    # -- reading ------------------------------------------------------------------------------

    def read(self, session_id: str) -> bytes | None:
        """The bytes stored for ``session_id`` (under an older secret's name if the current
        one misses), or ``None``; :class:`~sessionkit.StorageError` when the storage fails."""
        result: bytes | None = guard(self.storage.get, self.storage_key(session_id))
        if result is None and self.older_names:
            result = drive(self.storage, self._older_read_steps(session_id))
        return result

    async def aread(self, session_id: str) -> bytes | None:
        """Async twin of :meth:`read`."""
        # aguard inlined: every ASGI request with a cookie comes through here, and a
        # coroutine less is a measurable share of a memory-backed request. A storage whose
        # async twins only call the sync methods on the loop (memory) is called directly.
        try:
            key = self.storage_key(session_id)
            result: bytes | None = (
                self.storage.get(key) if self.inline else await self.storage.aget(key)
            )
        except SessionKitError:
            raise
        except Exception as exc:
            raise storage_error(exc) from exc
        if result is None and self.older_names:
            result = await adrive(self.storage, self._older_read_steps(session_id), self.inline)
        return result

    def _older_read_steps(self, session_id: str) -> Steps[bytes | None]:
        """A miss under the first name, while ``storage_key_secret`` rotates: the record may
        still be under an earlier secret's name (one more read per older secret, on a miss
        only)."""
        for name in self.older_names:
            found: bytes | None = yield GET, (name(session_id),)
            if found is not None:
                return found
        return None

    def names(self, session_id: str) -> Iterator[str]:
        """Every storage key ``session_id``'s record may be under, the current one first."""
        yield self.storage_key(session_id)
        for name in self.older_names:
            yield name(session_id)

    def opened(self, session_id: str, payload: bytes) -> bytes:
        """``payload`` decrypted when encryption is on (:class:`DecodeError` when no key opens
        it under any of the record's names), else as it is."""
        keyring = self.keyring
        return payload if keyring is None else keyring.open(payload, self.names(session_id))

    def live_record(
        self, session_id: str | None, payload: bytes | None, now: float
    ) -> Record | None:
        """Decode ``payload``; ``None`` when absent, unreadable (logged) or expired."""
        if payload is None or session_id is None:
            return None
        try:
            # The names only open an encrypted record: no generator made for a plain one.
            names = () if self.keyring is None else self.names(session_id)
            return self.record_of(payload, names, now)
        except DecodeError as exc:
            why: object = exc
            if self.keyring is None and is_sealed(payload):
                why = "an encrypted record, and no encryption_keys are configured"
            logger.warning(
                "sessionkit: unreadable session %s dropped (%s)", fingerprint(session_id), why
            )
            return None

    def record_of(self, payload: bytes, names: Iterable[str], now: float) -> Record | None:
        """The record ``payload`` holds, stored under one of ``names`` (decrypted when
        encryption is on); ``None`` when expired, :class:`DecodeError` when unreadable."""
        if self.keyring is not None:
            payload = self.keyring.open(payload, names)
        record = self._decoded.decode(payload)
        return None if self.expired(record, now) else record

    # -- expiry -------------------------------------------------------------------------------

    def lifetime(self, per_session: float | None) -> float:
        """Seconds a session lives after a save: its own ``set_expiry`` or the configured one."""
        return self.expiration if per_session is None else per_session

    def ttl(self, per_session: float | None, created: float, now: float) -> float:
        """Seconds a session created at ``created`` would live if saved at ``now``: its
        lifetime, capped by ``absolute_timeout`` (the storage TTL and the cookie's Max-Age
        both use it)."""
        lifetime = self.lifetime(per_session)
        if self.absolute is not None:
            lifetime = max(1.0, min(lifetime, created + self.absolute - now))
        return lifetime

    def expired(self, record: Record, now: float) -> bool:
        """Whether ``record`` is past its lifetime or ``absolute_timeout`` at ``now``."""
        if now >= record.saved + self.lifetime(record.lifetime):
            return True
        return self.absolute is not None and now >= record.created + self.absolute

    # -- encoding -----------------------------------------------------------------------------

    def plan(
        self,
        data: dict[str, Any],
        created: float,
        per_session: float | None,
        renewal: bool = False,
        browser: bool = False,
        indexed: float | None = None,
    ) -> Plan:
        """Encode a record of ``data`` saved now, held to ``max_size`` unless it is a
        ``renewal`` (see :meth:`Store._renewal_plan <sessionkit.Store._renewal_plan>`).
        ``indexed``: the horizon the stored record is known to be indexed until under the
        principal ``data`` holds (``None``: unknown)."""
        now = self._store.now()
        lifetime = self.ttl(per_session, created, now)
        principal = horizon = None
        indexing = False
        if self.principals is not None:
            principal = self.principals.principal_of(data)
            if principal is None:
                pass
            elif indexed is not None and indexed >= now + lifetime:
                horizon = indexed
            else:  # twice the lifetime ahead: indexed again about once per lifetime
                horizon, indexing = now + 2 * lifetime, True
        # A copy, encoded and then kept as the record the bytes hold (the read after the save
        # finds it without decoding), which nothing can change in between.
        decoded = self._decoded
        if decoded.keeps:
            data = dict(data)
        payload = encode_envelope(self.types, data, created, now, per_session, browser, horizon)
        config = self._config
        if len(payload) > config.max_size and not renewal:
            raise SessionTooLarge(
                f"encoded session is {len(payload)} bytes, above max_size={config.max_size}"
            )
        if decoded.keeps:
            written = written_record(data, created, now, per_session, browser, horizon)
            decoded.keep_written(payload, written)
        # The usual case (no set_expiry, no absolute cap) reuses the config's timedelta.
        ttl = config.expiration if lifetime == self.expiration else timedelta(seconds=lifetime)
        return Plan(payload, ttl, now, lifetime, principal, horizon, indexing)

    def sealed(self, key: str, plan: Plan) -> bytes:
        """``plan``'s bytes as stored under ``key``: sealed when encryption is on."""
        keyring = self.keyring
        return plan.payload if keyring is None else keyring.seal(plan.payload, key)

    def index_steps(self, session_id: str, plan: Plan) -> Steps[None]:
        """Before ``plan`` is written under ``session_id``: list it in its principal's index
        when the record would otherwise outlive what the index knows of it."""
        if plan.indexing and self.principals is not None:
            assert plan.principal is not None and plan.horizon is not None
            yield from self.principals.add_steps(session_id, plan.principal, plan.horizon)

    # -- writing ------------------------------------------------------------------------------
    # Each through the storage's atomic operation where it has one (see sessionkit._strategy).

    def create(self, session_id: str, plan: Plan) -> str:
        """Store a new record create-only; return the id it went under (see
        :meth:`create_steps`)."""
        return drive(self.storage, self.create_steps(session_id, plan))

    async def acreate(self, session_id: str, plan: Plan) -> str:
        """Async twin of :meth:`create`."""
        return await adrive(self.storage, self.create_steps(session_id, plan), self.inline)

    def create_steps(self, session_id: str, plan: Plan) -> Steps[str]:
        """A new record never overwrites a live one: an id that names a live record (a
        collision, a weak custom ``key_generator``) is replaced by a fresh one and the write
        tried again, a few times at most."""
        for _ in range(_CREATE_TRIES):
            if (yield from self.create_once_steps(session_id, plan)):
                return session_id
            session_id = self._collided(session_id)
        raise _collisions()

    def create_once(self, session_id: str, plan: Plan) -> bool:
        """Write a record under ``session_id`` only if no live one is there; whether it was
        written (one try: no other id is drawn)."""
        return drive(self.storage, self.create_once_steps(session_id, plan))

    async def acreate_once(self, session_id: str, plan: Plan) -> bool:
        """Async twin of :meth:`create_once`."""
        return await adrive(self.storage, self.create_once_steps(session_id, plan), self.inline)

    def create_once_steps(self, session_id: str, plan: Plan) -> Steps[bool]:
        yield from self.index_steps(session_id, plan)
        key = self.storage_key(session_id)
        return (yield from self.strategy.create(key, self.sealed(key, plan), plan.ttl))

    def replace_live(self, session_id: str, plan: Plan) -> bool:
        """Replace the record under ``session_id`` only if it is still live; whether it was
        (a session destroyed meanwhile by another request stays destroyed)."""
        return drive(self.storage, self.replace_steps(session_id, plan))

    async def areplace_live(self, session_id: str, plan: Plan) -> bool:
        """Async twin of :meth:`replace_live`."""
        return await adrive(self.storage, self.replace_steps(session_id, plan), self.inline)

    def replace_steps(self, session_id: str, plan: Plan) -> Steps[bool]:
        """A miss while ``storage_key_secret`` rotates may be a record still under an older
        name: it is moved (see :meth:`_move_steps`)."""
        yield from self.index_steps(session_id, plan)
        if (yield from self._replace_once_steps(session_id, plan)):
            return True
        if not self.older_names:
            return False
        return (yield from self._move_steps(session_id, plan))

    def _replace_once_steps(self, session_id: str, plan: Plan) -> Steps[bool]:
        key = self.storage_key(session_id)
        return (yield from self.strategy.replace(key, self.sealed(key, plan), plan.ttl))

    def _move_steps(self, session_id: str, plan: Plan) -> Steps[bool]:
        """Save a record found under an older secret's name to its current name, then take the
        old copy; whether the session was still live.

        The new copy is written create-only before the old one is taken, as a
        ``regenerate()``'s save does (``Store._retire_steps``): a load looks under the current
        name first, so it sees one copy at every moment, and never none (nobody is logged
        out). A request that moved the record first wins the create: this save then replaces
        its copy. If the old copy is gone by the time it is taken, the session was destroyed
        meanwhile, and the new copy is removed again: a save never resurrects a session.

        The record changes its name: its principal's index lists it again first (the entry
        may predate the secret it is moving to).
        """
        if plan.principal is not None:
            plan = plan._replace(indexing=True)
        older = [name(session_id) for name in self.older_names]
        for key in older:
            if (yield GET, (key,)) is not None:
                break
        else:
            return False  # under no name: destroyed or regenerated away
        if not (yield from self.create_once_steps(session_id, plan)):
            return (yield from self._replace_once_steps(session_id, plan))
        if (yield from self.take_each_steps(older)):
            return True
        yield DELETE, (self.storage_key(session_id),)
        return False

    def take(self, session_id: str) -> bool:
        """Delete the record of ``session_id``; return whether a live one was there."""
        return drive(self.storage, self.take_steps(session_id))

    async def atake(self, session_id: str) -> bool:
        """Async twin of :meth:`take`."""
        return await adrive(self.storage, self.take_steps(session_id), self.inline)

    def take_steps(self, session_id: str) -> Steps[bool]:
        if not self.older_names:
            return (yield from self.take_each_steps((self.storage_key(session_id),)))
        # Every name: a session ending must not live on under an older secret's name.
        return (yield from self.take_each_steps(list(self.names(session_id))))

    def take_each_steps(self, keys: Iterable[str]) -> Steps[bool]:
        """Delete the records under ``keys``; whether a live one was under any."""
        taken = False
        for key in keys:
            taken = (yield from self.strategy.take(key)) or taken
        return taken

    def delete(self, session_id: str) -> None:
        """Delete the record of ``session_id`` under every name it may have, whether or not
        one is there."""
        guard(self.storage.delete, self.storage_key(session_id))
        for name in self.older_names:
            guard(self.storage.delete, name(session_id))

    async def adelete(self, session_id: str) -> None:
        """Async twin of :meth:`delete`."""
        await aguard(self.storage.adelete(self.storage_key(session_id)))
        for name in self.older_names:
            await aguard(self.storage.adelete(name(session_id)))

    def _collided(self, session_id: str) -> str:
        logger.warning(
            "sessionkit: a new session id (%s) names a live session; another id is drawn. "
            "Unless key_generator is custom and weak, this does not happen",
            fingerprint(session_id),
        )
        return self._store.new_id()


#: How many ids a new record may try before giving up: with ids from ``secrets`` even a
#: second try never happens; a custom generator that collides three times running is broken.
_CREATE_TRIES = 3


def _collisions() -> SessionKitError:
    return SessionKitError(
        f"key_generator made {_CREATE_TRIES} ids in a row that name live sessions; nothing was "
        "stored (use the default generator, or one drawing at least 128 bits from secrets)"
    )


def _plain_key(session_id: str) -> str:
    return session_id


def _hashed_key(secret: bytes, session_id: str) -> str:
    """The storage key for ``session_id`` when ``storage_key_secret`` is set: HMAC-SHA256.

    A dump of the storage then holds no usable id: turning a key back into a cookie would
    need both a preimage and the secret, which lives only in the application's config.
    """
    digest = hmac.new(secret, session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def guard(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``: a driver's exception becomes :class:`~sessionkit.StorageError` (chained),
    the library's own errors pass through."""
    try:
        return fn(*args)
    except SessionKitError:
        raise
    except Exception as exc:
        raise storage_error(exc) from exc


async def aguard(awaitable: Any) -> Any:
    """Async twin of :func:`guard`."""
    try:
        return await awaitable
    except SessionKitError:
        raise
    except Exception as exc:
        raise storage_error(exc) from exc


def quietly(fn: Callable[..., Any], *args: Any) -> None:
    """Undo a step of a failed operation, as far as the storage lets us: the error that made
    the operation fail is the one the caller must see, not this one's."""
    try:
        fn(*args)
    except StorageError as exc:
        cleanup_failed(exc)


async def aquietly(awaitable: Any) -> None:
    """Async twin of :func:`quietly`."""
    try:
        await awaitable
    except StorageError as exc:
        cleanup_failed(exc)


def cleanup_failed(exc: StorageError) -> None:
    """A step undoing a failed operation failed too: logged, and otherwise let be."""
    # DEBUG: the failure that made the operation fail is logged already (once per interval,
    # see _failurelog), and what is left behind is a copy under an id that never left the
    # server, which nobody can open and which expires with its TTL.
    logger.debug("sessionkit: cleaning up after a failed call failed too (%s)", exc)
