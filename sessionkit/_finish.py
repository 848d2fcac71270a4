"""What a finished request writes: the save, the cookie (or header) and ``Vary``.

The ASGI middleware, the WSGI middleware and the Flask session interface all finish a request
through :class:`Finisher`; they differ only in how they put headers on their response.

Cookie decisions, from the session's state once the request is done (``client`` is the
well-formed id the request carried):

==========================================================  =================================
state at the end of the request                             the response
==========================================================  =================================
untouched (never read or written)                           nothing: no write, no cookie
read only, more than half its lifetime left                 ``Vary`` only
read only, less than half left                              renewal write, cookie refreshed
written (``save`` by the app or at the end of the request)  cookie set (new or refreshed)
``regenerate()``, data kept                                 old record deleted, new cookie
``reset()``/``regenerate()``/``clear()`` leaving it empty   record deleted, cookie expired
``destroy()``                                               record deleted, cookie expired
empty, ``client`` was unknown/expired, nothing else done    nothing (the stale cookie stays)
save found the record gone (``SessionGone``)                nothing written, no cookie
==========================================================  =================================

The stale cookie of the next-to-last row is left alone on purpose, as Fiber does (starsessions
expires it): a request carrying an id that another request of the same browser just
regenerated away (a login running in parallel with a page's other requests) would otherwise
answer with an expiry that lands after the login's new cookie and deletes it, logging the user
out. Leaving it costs one storage read per request until the browser's next write replaces it,
the same as any anonymous visitor with a cookie; the id is never adopted either way.
"""

from __future__ import annotations

import logging
from typing import AnyStr, NamedTuple

import attrs

from ._cookies import CookieRenderer
from ._errors import SessionGone, SessionKitError, SessionTooLarge, StorageError
from ._failurelog import FailureLog, kind_of
from ._session import Session
from ._store import Store, fingerprint

__all__ = ["FAILURES", "Failure", "Finisher", "Outcome", "add_vary"]

logger = logging.getLogger("sessionkit")

#: The errors a middleware turns into a response of its own (see :meth:`Finisher.failure`).
FAILURES = (StorageError, SessionTooLarge)


@attrs.frozen
class Failure:
    """A plain-text response that replaces the application's when the session fails."""

    status: int
    reason: str
    body: bytes

    @property
    def status_line(self) -> str:
        return f"{self.status} {self.reason}"

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", str(len(self.body))),
            ("cache-control", "no-store"),
        ]


_UNAVAILABLE = Failure(503, "Service Unavailable", b"Service Unavailable: session storage failed\n")
_TOO_LARGE = Failure(500, "Internal Server Error", b"Internal Server Error: session too large\n")


class Outcome(NamedTuple):
    """What to add to a response: ``value`` for the id's header (``None``: none), and ``Vary``.

    A named tuple, not an attrs class: one is made per response that carries a cookie, and a
    tuple is the cheapest immutable record Python builds.
    """

    value: str | None
    vary: bool


#: :meth:`Finisher.write_due`: the session changed and must be saved.
SAVE = 1
#: :meth:`Finisher.write_due`: the session was only read, and is due for renewal.
RENEW = 2

_NOTHING = Outcome(None, False)
_VARY_ONLY = Outcome(None, True)


def add_vary(
    headers: list[tuple[AnyStr, AnyStr]], name: AnyStr, token: AnyStr, sep: AnyStr
) -> None:
    """Add ``token`` to the ``Vary`` header in ``headers`` (in place), never twice.

    ``name`` is the lower-case header name; ``sep`` the joiner (``", "``). Works on ``str``
    (WSGI) and ``bytes`` (ASGI) headers alike. An existing ``Vary`` is extended rather than
    repeated, because some caches read only the first.
    """
    wanted = token.lower()
    comma = sep[:1]
    first = -1
    for i, (key, value) in enumerate(headers):
        if key.lower() == name:
            if any(t.strip().lower() == wanted for t in value.split(comma)):
                return
            if first < 0:
                first = i
    if first < 0:
        headers.append((name, token))
    else:
        key, value = headers[first]
        headers[first] = (key, value + sep + token)


class Finisher:
    """Finishes requests for one store: renews or saves, then decides the cookie.

    Built once per middleware; a request then costs attribute reads and, when something is
    sent, one string format.
    """

    __slots__ = ("_cookies", "_header", "_log", "backend", "header_name", "store", "vary")

    def __init__(self, store: Store) -> None:
        if not isinstance(store, Store):
            raise TypeError(
                "the session middleware takes a sessionkit Store, got "
                f"{type(store).__qualname__}: build one with Store(config) or Store(**fields)"
            )
        self.store = store
        #: Names the storage in failure logs.
        self.backend = type(store.storage).__qualname__
        #: One WARNING line per kind of failure per interval (see :mod:`sessionkit._failurelog`).
        self._log = FailureLog()
        lookup = store.lookup
        self._cookies = CookieRenderer(store.config) if lookup.source == "cookie" else None
        self._header = lookup.source == "header"
        #: Lower-case name of the response header carrying the id (``None``: query lookup,
        #: where the application passes ``session.id`` on itself, in its links or redirects).
        self.header_name: str | None = {
            "cookie": "set-cookie",
            "header": lookup.name.lower(),
            "query": None,
        }[lookup.source]
        #: The request header the response depends on when the session was read.
        self.vary: str | None = {"cookie": "Cookie", "header": lookup.name, "query": None}[
            lookup.source
        ]

    def write_due(self, session: Session) -> int:
        """What the request must write: nothing (0), a save of changes (:data:`SAVE`), or a
        renewal (:data:`RENEW`).

        Renewal: a session that was read, and whose stored record has less than half of its
        lifetime left, is rewritten -- only over the exact bytes it was loaded from
        (``replace_if`` where the storage has it, see :meth:`Store._renew
        <sessionkit.Store._renew>`), so it can neither resurrect a session destroyed meanwhile
        nor undo another request's save, and the backend's TTL moves along with the envelope. A mere ``touch`` is not
        enough: the core enforces idle expiry from the save time ``t`` inside the envelope,
        which only a rewrite moves. Renewing at half-life rather than on every read keeps a
        busy session to about one write per half lifetime.
        """
        if session._pending:
            return 0
        if session._modified:
            return SAVE
        loaded_at = session._loaded_at
        if not session._accessed or not session._persisted or session._wrote or loaded_at is None:
            return 0
        store = self.store
        now = store.now()
        lifetime = store._lifetime(session._lifetime)
        left = loaded_at + lifetime - now
        # Renew only past half-life, and only if a rewrite would extend it (absolute_timeout).
        return (
            RENEW
            if left < lifetime / 2 and store._ttl(session._lifetime, session._created, now) > left
            else 0
        )

    def finish(self, session: Session) -> Outcome:
        """Write what the request needs and return what the response carries."""
        due = self.write_due(session)
        if due:
            try:
                if due == SAVE:
                    self.store._run_save(session)  # session.save() minus its _touch
                else:
                    self.store._renew(session)
            except SessionGone:
                return self._gone(session)
            except StorageError as exc:
                self._unrenewed(due, session, exc)
        return self.outcome(session)

    async def afinish(self, session: Session) -> Outcome:
        """Async twin of :meth:`finish`."""
        due = self.write_due(session)
        if due:
            try:
                if due == SAVE:
                    await self.store._arun_save(session)
                else:
                    await self.store._arenew(session)
            except SessionGone:
                return self._gone(session)
            except StorageError as exc:
                self._unrenewed(due, session, exc)
        return self.outcome(session)

    def _unrenewed(self, due: int, session: Session, exc: StorageError) -> None:
        """A failed save propagates (the response becomes a 503); a failed renewal does not.

        The request only read its session, and the read worked: a storage that refuses writes
        for a while (a read-only replica, a full disk) must not turn every page view into a
        503. The record keeps its old expiry and the next request tries again.
        """
        if due != RENEW:
            raise exc
        self._log.report(
            ("renewal", *kind_of(self.backend, exc)),
            f"{self.backend}: renewing session {fingerprint(session._id)} failed ({exc}); "
            "served without renewing it",
            exc,
        )

    def failure(self, exc: SessionKitError, *, replaced: bool = True) -> Failure:
        """Log ``exc`` and return the response that replaces the app's.

        A storage outage answers 503 and sets no cookie, so nobody is logged out by it and
        clients may retry; it is logged as one WARNING line per kind of failure per interval
        (the backend, the driver's message, how many repeats were left out) and at DEBUG with
        the traceback, so an outage cannot flood the log. An oversized session is the
        application's bug (500), and nothing was written: logged at ERROR with its traceback,
        every time. ``replaced=False``: the app's response had already started, and ends
        where it broke.
        """
        if not replaced:
            outcome = "the response had started and ends here"
        else:
            outcome = "answered 503 without Set-Cookie"
        if isinstance(exc, StorageError):
            self._log.report(kind_of(self.backend, exc), f"{self.backend}: {exc}; {outcome}", exc)
            return _UNAVAILABLE
        logger.error("sessionkit: %s; %s", exc, outcome, exc_info=exc)
        return _TOO_LARGE

    def _gone(self, session: Session) -> Outcome:
        logger.info(
            "sessionkit: session %s was destroyed or regenerated by another request; "
            "this request's changes were dropped",
            fingerprint(session._id),
        )
        return _VARY_ONLY if self.vary is not None else _NOTHING

    def outcome(self, session: Session) -> Outcome:
        """The header value (see the module's table) and whether to add ``Vary``."""
        if session._pending:
            return _NOTHING
        vary = session._accessed and self.vary is not None
        if session._persisted:
            wrote = session._wrote
            if wrote is None:
                return _VARY_ONLY if vary else _NOTHING
            return Outcome(self._set(session, *wrote), vary)
        if session._destroyed or session._loaded_at is not None:
            return Outcome(self._expire(), vary)
        return _VARY_ONLY if vary else _NOTHING

    def _set(self, session: Session, now: float, lifetime: float) -> str | None:
        """The header value for a session written at ``now`` for ``lifetime`` seconds."""
        cookies = self._cookies
        if cookies is not None:
            return cookies.set(session._id, lifetime, now)
        return session._id if self._header else None

    def _expire(self) -> str | None:
        if self._cookies is not None:
            return self._cookies.expire
        # Header transport: an empty value tells the client to forget the id it holds.
        return "" if self._header else None
