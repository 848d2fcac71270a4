"""``Session``: one visitor's data, with Fiber's lifecycle (save/destroy/regenerate/reset).

A session is a mutable mapping of ``str`` keys to storable values. Values are checked at
``set()`` (an unstorable type fails where it is written, not in a later request), and kept as
the objects given; they are encoded once, when the session is saved.

Each lifecycle method is split into a pure *plan* (what to write, computed here) and the storage
call (sync or async, done by the store), so ``save`` and ``asave`` cannot drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, MutableMapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from ._config import MAX_LIFETIME
from ._csrf import CSRF_KEY, check_token, mask, new_secret
from ._errors import StorageError
from ._noting import FailureNoting

if TYPE_CHECKING:
    from ._envelope import Record
    from ._errors import SessionKitError
    from ._store import Store

__all__ = [
    "DEFERRED",
    "DESTROYED",
    "EAGER",
    "LAZY",
    "MOVING",
    "NEW",
    "PENDING",
    "STORED",
    "Loading",
    "Session",
    "State",
]

_MISSING: Any = object()
_T = TypeVar("_T")


class State(enum.Enum):
    """Where a session is in its lifecycle: one of these at a time.

    Beside it, three facts that are not states: ``fresh`` (its id was made in this request),
    ``modified`` (changes not saved yet) and ``accessed`` (the response depends on it).
    """

    #: The client's id is known, its record not read yet: the first use reads it (see
    #: :meth:`Store._fill`), so a request that never touches its session costs no storage call
    #: (a :data:`LAZY` or :data:`DEFERRED` session, or one whose load failed).
    PENDING = "pending"
    #: Nothing is stored under its id: a new session, or one whose record a save removed.
    NEW = "new"
    #: Its record is stored under its id: loaded, or saved by this request.
    STORED = "stored"
    #: After ``regenerate()``: its data goes under the new id at the next save, and then the
    #: record under the old id (``_retiring``) is taken.
    MOVING = "moving"
    #: After ``destroy()``: its record is removed, and its cookie is expired unless it is saved
    #: again.
    DESTROYED = "destroyed"


PENDING, NEW, STORED, MOVING, DESTROYED = State


class Loading(enum.Enum):
    """When a request's session reads its record: the one thing the ways of obtaining a
    session differ in (see :meth:`Store._session_for`)."""

    #: Now, before the session is handed out: ``store.get``/``aget`` and the ASGI middleware,
    #: whose sessions cannot read on first use (their methods are synchronous, and a read
    #: there would block the event loop).
    EAGER = "eager"
    #: At the first use (the session is :data:`PENDING` until then): the WSGI middleware and
    #: Flask, so a route that never touches its session costs no storage call.
    LAZY = "lazy"
    #: Only when a coroutine calls ``await store.aget(request)``
    #: (``SessionMiddleware(autoload=False)``); a use before that raises, naming the fix.
    DEFERRED = "deferred"


EAGER, LAZY, DEFERRED = Loading


class Session(FailureNoting, MutableMapping[str, Any]):
    """A server-side session.

    Obtain one from :meth:`Store.get` / :meth:`Store.aget` (or ``request.session`` under the
    middleware); do not construct it yourself.
    """

    __slots__ = (
        "_accessed",
        "_broke",
        "_browser",
        "_changed",
        "_client_id",
        "_created",
        "_data",
        "_edits",
        "_failure",
        "_fresh",
        "_id",
        "_indexed",
        "_lifetime",
        "_lifetime_set",
        "_loaded_at",
        "_modified",
        "_raw",
        "_retiring",
        "_state",
        "_store",
        "_wrote",
    )

    def __init__(
        self,
        store: Store,
        session_id: str,
        record: Record | None,
        *,
        now: float,
        client_id: str | None = None,
        pending: bool = False,
        raw: bytes | None = None,
        failure: SessionKitError | None = None,
    ) -> None:
        self._store = store
        #: The well-formed id the client presented, if any (the middleware uses it to decide
        #: whether an old cookie must be expired).
        self._client_id = client_id
        self._accessed = False
        self._modified = False
        #: ``(time, lifetime)`` of this request's last write, ``None`` until one: the cookie
        #: is then refreshed, with the same lifetime as the record.
        self._wrote: tuple[float, float] | None = None
        #: Set on a pending session that must not read synchronously (the ASGI middleware):
        #: the load's storage error, or why it was not loaded; its first use raises it again
        #: instead of reading (see :meth:`Store._fill`).
        self._failure = failure
        #: A storage call made for this session in this request failed (see :meth:`_noting`).
        self._broke: StorageError | None = None
        #: The id :meth:`regenerate` moved away from, whose record the next save takes once
        #: the data is stored under the new id (``None``: nothing to retire).
        self._retiring: str | None = None
        #: While a record is retiring: the keys this request set or deleted since
        #: :meth:`regenerate`, all that is kept if the old record turns out to be gone.
        self._changed: set[str] | None = None
        if pending:
            # Nothing is known of its record yet: every use of it but ``modified``,
            # ``accessed`` and ``destroyed`` goes through _touch, which reads the record and
            # sets the rest (_filled); the finisher leaves a pending session alone.
            self._id = session_id
            self._state = PENDING
        else:
            self._apply(session_id, record, now, raw)

    def _apply(
        self, session_id: str, record: Record | None, now: float, raw: bytes | None = None
    ) -> None:
        """Take the state of a loaded ``record`` (``raw``: its stored bytes), or of a new
        session when it is ``None``."""
        self._id = session_id
        #: The bytes the record was loaded from (then: last written): a renewal writes only
        #: over exactly these, so it cannot undo another request's save (see
        #: :meth:`Store._renew`), and a save merges when the record no longer holds them.
        self._raw = raw
        #: The keys this request set or deleted since the record was loaded or last written,
        #: and whether it gave the session a lifetime: what a save re-applies on top of the
        #: stored record when another request saved it meanwhile (``conflict="merge"``).
        self._edits: set[str] = set()
        self._lifetime_set = False
        #: The horizon the stored record is indexed until under its principal (see
        #: sessionkit._principals); ``None``: not indexed, or nothing stored.
        self._indexed = None if record is None else record.indexed
        if record is None:
            self._data: dict[str, Any] = {}
            self._created = now
            self._lifetime: float | None = None
            #: Ends with the browser: no ``Max-Age`` on its cookie (``set_expiry(timedelta(0))``).
            self._browser = False
            self._fresh = True
            self._state = NEW
            #: Save time of the record the client's id loaded (``None``: nothing loaded); the
            #: middleware renews a session read past half its lifetime from it.
            self._loaded_at: float | None = None
        else:
            self._data = record.data
            self._created = record.created
            self._lifetime = record.lifetime
            self._browser = record.browser
            self._fresh = False
            self._state = STORED
            self._loaded_at = record.saved

    # -- transitions the store makes (one method each, so the state is changed in one place) --

    def _filled(
        self, session_id: str, record: Record | None, now: float, raw: bytes | None = None
    ) -> None:
        """A pending session loaded: ``record`` read under ``session_id`` (``None``: nothing
        live there, and ``session_id`` is a new id)."""
        self._failure = None
        self._apply(session_id, record, now, raw)

    def _stored(
        self, now: float, lifetime: float, raw: bytes | None, indexed: float | None
    ) -> None:
        """A save wrote the session's record at ``now`` for ``lifetime`` seconds; ``raw``: the
        bytes stored (``None``: unknown here, sealed on the way), ``indexed``: the horizon
        the record is indexed until under its principal."""
        self._modified = False
        self._state = STORED
        self._retiring = None
        self._indexed = indexed
        self._wrote = (now, lifetime)
        self._raw = raw
        self._edits = set()

    def _rebased(self, record: Record) -> None:
        """A merge: this request's own changes (keys set and deleted, a lifetime given) put on
        top of ``record``, which another request stored meanwhile."""
        data, own = record.data, self._data
        for name in self._edits:
            if name in own:
                data[name] = own[name]
            else:
                data.pop(name, None)
        self._data = data
        self._created = record.created
        self._indexed = record.indexed
        if not self._lifetime_set:
            self._lifetime = record.lifetime
            self._browser = record.browser

    def _emptied(self, *, forgotten: bool, taken: bool) -> None:
        """A save found the session empty: its record (if ``forgotten``: there was one) is
        removed, ``taken``: by this save (else another request had removed it already, and
        that request's response owns the cookie)."""
        if forgotten:
            self._state = NEW
            self._retiring = None
            if not taken:
                self._loaded_at = None
        self._modified = False

    def _kept_changes(self, now: float) -> None:
        """A regenerated session whose old record another request removed first: it keeps
        only the keys this request set since :meth:`regenerate`, as a new session made
        ``now``."""
        data, changed = self._data, self._changed or set()
        self._data = {key: data[key] for key in changed if key in data}
        self._lifetime = None
        self._browser = False
        self._created = now
        self._modified = False
        self._loaded_at = None
        self._retiring = None
        self._changed = None
        self._indexed = None
        self._state = NEW

    def _touch(self) -> None:
        """Mark the session used (the response then varies by its cookie), and read a lazily
        loaded one now; a storage failure propagates."""
        self._accessed = True
        if self._state is PENDING:
            self._store._fill(self)

    # -- identity -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The session id (Fiber: ``ID()``). Changes on ``regenerate``, ``reset`` and ``destroy``."""
        self._touch()
        return self._id

    @property
    def fresh(self) -> bool:
        """True when no stored session was loaded: new, or after ``regenerate``/``reset``/``destroy``."""
        self._touch()
        return self._fresh

    @property
    def modified(self) -> bool:
        """True when there are changes not yet saved."""
        return self._modified

    @property
    def accessed(self) -> bool:
        """True once the session was used -- its data, id or freshness read, or anything written
        -- so the response depends on the cookie and is sent with ``Vary: Cookie``."""
        return self._accessed

    @property
    def destroyed(self) -> bool:
        """True after ``destroy()`` until the session is saved again."""
        return self._state is DESTROYED

    @property
    def created(self) -> float:
        """When the session was created, as a Unix timestamp (survives ``regenerate``)."""
        self._touch()
        return self._created

    @property
    def expiry(self) -> timedelta:
        """The lifetime this session is saved with: ``set_expiry``'s value or the config's."""
        self._touch()
        if self._lifetime is None:
            return self._store.config.expiration
        return timedelta(seconds=self._lifetime)

    @property
    def expires_at(self) -> datetime:
        """When the session ends if nothing touches it again (UTC): its last save plus its
        lifetime, capped by ``absolute_timeout``. For a session not stored yet, or changed
        and about to be saved, the time it would end if saved now."""
        self._touch()
        store = self._store
        wrote = self._wrote
        if wrote is not None:
            end = wrote[0] + wrote[1]
        elif self._state is STORED and not self._modified and self._loaded_at is not None:
            end = self._loaded_at + store._lifetime(self._lifetime)
            if store._absolute is not None:
                end = min(end, self._created + store._absolute)
        else:
            now = store.now()
            end = now + store._ttl(self._lifetime, self._created, now)
        return datetime.fromtimestamp(end, timezone.utc)

    # -- data (Fiber names) -------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value stored under ``key``, or ``default``."""
        self._touch()
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``.

        Raises ``TypeError`` now if ``key`` is not a ``str`` or ``value`` (or anything inside
        it) is neither a supported built-in nor a registered type.
        """
        if type(key) is not str:
            raise TypeError(f"session keys must be str, got {type(key).__qualname__}")
        self._touch()
        self._store.types.encode(value)
        self._modified = True
        self._data[key] = value
        self._edits.add(key)
        if self._changed is not None:
            self._changed.add(key)

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        self._touch()
        if self._data.pop(key, _MISSING) is not _MISSING:
            self._modified = True
            self._edits.add(key)
            if self._changed is not None:
                self._changed.add(key)

    def keys(self) -> list[str]:  # type: ignore[override]
        """Return the keys, as a list (Fiber: ``Keys()``)."""
        self._touch()
        return list(self._data)

    @property
    def expire_at_browser_close(self) -> bool:
        """Whether the cookie dies with the browser: ``set_expiry(timedelta(0))`` on this
        session, or ``cookie_session_only`` for all (Django:
        ``get_expire_at_browser_close()``)."""
        self._touch()
        return self._browser or self._store.config.cookie_session_only

    def set_expiry(self, expiry: timedelta) -> None:
        """Give this session its own lifetime; it is stored with the session and outlives reloads.

        ``timedelta(0)`` (Django's meaning) ends the session with the browser: its cookie
        carries no ``Max-Age``/``Expires``, while the server still ends it after the config's
        ``expiration`` of idleness, since a browser that is never closed (or restores its
        tabs) keeps such a cookie for ever.
        """
        if not isinstance(expiry, timedelta) or not timedelta(0) <= expiry <= MAX_LIFETIME:
            raise ValueError(
                "set_expiry() takes a timedelta of at most 400 days (browsers cap a cookie's "
                "lifetime there, RFC 6265bis), or timedelta(0) for a session that ends with "
                f"the browser; got {expiry!r}"
            )
        self._touch()
        self._modified = True
        self._lifetime_set = True
        if expiry:
            self._lifetime = expiry.total_seconds()
            self._browser = False
        else:
            self._lifetime = None
            self._browser = True

    # -- CSRF ---------------------------------------------------------------------------------

    def csrf_token(self) -> str:
        """This session's CSRF token, made (and stored with the session) on first use.

        Put it in forms (a hidden ``csrf_token`` field) or send it from JavaScript (an
        ``X-CSRF-Token`` header); :meth:`check_csrf` or the CSRF middleware checks it on
        unsafe requests. ``regenerate()``, ``reset()`` and ``destroy()`` rotate it. Each call
        returns the token masked afresh (see :mod:`sessionkit._csrf`: no secret repeats in
        compressed pages); every one of them checks.
        """
        secret = self.get(CSRF_KEY)
        if type(secret) is not str:
            secret = new_secret()
            self.set(CSRF_KEY, secret)
        return mask(secret)

    def check_csrf(self, token: object) -> bool:
        """Whether ``token`` is this session's CSRF token, compared in constant time.

        False for anything else: no token, one of another session, a session that never made
        one, a value that is not text.
        """
        return check_token(token, self.get(CSRF_KEY))

    # -- mapping protocol ---------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self._touch()
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        self._touch()
        del self._data[key]
        self._modified = True
        self._edits.add(key)
        if self._changed is not None:
            self._changed.add(key)

    def __iter__(self) -> Iterator[str]:
        self._touch()
        return iter(list(self._data))

    def __len__(self) -> int:
        self._touch()
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        self._touch()
        return key in self._data

    def clear(self) -> None:
        """Remove every key (the id stays; use ``reset()`` for a new id as well)."""
        self._touch()
        if self._data:
            self._modified = True
            self._edits.update(self._data)
            self._data.clear()

    def __repr__(self) -> str:
        if self._state is PENDING:
            return "<Session pending>"
        state = "fresh" if self._fresh else "loaded"
        return f"<Session {state} keys={sorted(self._data)!r}>"

    # -- lifecycle ----------------------------------------------------------------------------

    def save(self) -> None:
        """Write the session with its lifetime (Fiber: ``Save()``).

        An empty session is never stored (an existing record is deleted instead). Raises
        :class:`~sessionkit.SessionTooLarge` above ``max_size`` and
        :class:`~sessionkit.SessionGone` if another request destroyed or regenerated this
        session meanwhile, in which case nothing is written.
        """
        self._touch()
        self._noting(self._store._run_save, self)

    async def asave(self) -> None:
        """Async twin of :meth:`save`."""
        self._touch()
        await self._anoting(self._store._arun_save(self))

    # Each lifecycle call makes its storage call *before* it changes the session: one that
    # fails with StorageError leaves id, data and record as they were, so the response
    # carries no cookie (nobody is logged out by an outage) and the call can be retried.

    def destroy(self) -> None:
        """Delete the stored record and clear the data; the cookie is expired (Fiber: ``Destroy()``).

        Setting a value afterwards and saving starts a new session under a new id.
        """
        old, new_id = self._begin()
        if old is not None:
            self._noting(self._store._records.delete, old)
        self._switch(new_id, keep_data=False, destroyed=True)

    async def adestroy(self) -> None:
        """Async twin of :meth:`destroy`."""
        old, new_id = self._begin()
        if old is not None:
            await self._anoting(self._store._records.adelete(old))
        self._switch(new_id, keep_data=False, destroyed=True)

    def regenerate(self) -> None:
        """Move the data to a new id and retire the old one (Fiber: ``Regenerate()``).

        Call it when privileges change (log-in), so an id planted before log-in is worthless.

        Nothing is written yet: the session's next save (the middleware's, at the end of the
        request, or :meth:`save`) stores the data under the new id first, create-only, and
        only then takes the old record. So a log-in whose write fails (a storage refusing
        writes, or going down between the two) answers 503 and the visitor's old cookie still
        opens the session it had; and the log-in's own changes (the user it sets after
        regenerating) go out in that same write.

        If another request destroyed or regenerated the old record meanwhile, its data is not
        carried over: the save keeps only what this request set after ``regenerate()`` (the
        log-in's user), and the copy stored under the new id is rewritten to that, or removed
        when nothing is left. A log-out racing a log-in stays a log-out of the old data, and of
        two requests regenerating one id, only the first keeps the data (so a copied cookie
        cannot race its owner's log-in into a session of its own).
        """
        self._retire_id()

    async def aregenerate(self) -> None:
        """Async twin of :meth:`regenerate` (it does no I/O either)."""
        self._retire_id()

    def reset(self) -> None:
        """Clear the data, delete the old record and take a new id (Fiber: ``Reset()``)."""
        old, new_id = self._begin()
        if old is not None:
            self._noting(self._store._records.delete, old)
        self._switch(new_id, keep_data=False, destroyed=False)

    async def areset(self) -> None:
        """Async twin of :meth:`reset`."""
        old, new_id = self._begin()
        if old is not None:
            await self._anoting(self._store._records.adelete(old))
        self._switch(new_id, keep_data=False, destroyed=False)

    def _begin(self) -> tuple[str | None, str]:
        """Load the session if it is pending, and draw the new id a lifecycle call moves to
        (before any storage call: a custom key_generator that fails changes nothing); return
        the id whose record the call must remove (``None``: nothing is stored) and the new id.
        """
        self._touch()
        return self._stored_id(), self._store.new_id()

    def _stored_id(self) -> str | None:
        """The id this session's stored record is under: its own once saved, or the one a
        :meth:`regenerate` retired and the next save has not taken yet; ``None``: none."""
        return self._retiring or (self._id if self._state is STORED else None)

    def _retire_id(self) -> None:
        """:meth:`regenerate`: a new id now, the stored record taken at the next save."""
        self._touch()
        new_id = self._store.new_id()
        if self._state is STORED:
            self._retiring = self._id
            self._changed = set()
        # A token seen before a log-in must not work after it: the next csrf_token() makes one.
        self._data.pop(CSRF_KEY, None)
        self._switch(new_id, keep_data=True, destroyed=False)

    def _switch(self, new_id: str, *, keep_data: bool, destroyed: bool) -> None:
        """Take ``new_id``, nothing stored under it yet (after a lifecycle call's storage work
        succeeded: a record it removed is no longer the session's to retire)."""
        if not keep_data:
            self._retiring = None
            self._changed = None
        self._id = new_id
        self._fresh = True
        if destroyed:
            self._state = DESTROYED
        else:
            self._state = NEW if self._retiring is None else MOVING
        if keep_data:
            self._modified = True
        else:
            self._data = {}
            self._lifetime = None
            self._browser = False
            self._created = self._store.now()
            self._modified = not destroyed
