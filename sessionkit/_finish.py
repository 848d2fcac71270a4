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
import re
from collections.abc import Callable, Sequence
from typing import Any, AnyStr, NamedTuple

import attrs

from ._cookies import CookieRenderer
from ._errors import ConfigError, SessionGone, SessionKitError, SessionTooLarge, StorageError
from ._failurelog import FailureLog, kind_of
from ._id_lookup import UNCARRIED_KEY, carries
from ._session import DESTROYED, PENDING, STORED, Session
from ._store import Store, fingerprint

__all__ = ["FAILURES", "ErrorHook", "ErrorResponse", "Failure", "Finisher", "Outcome", "add_vary"]

logger = logging.getLogger("sessionkit")

#: The errors a middleware turns into a response of its own (see :meth:`Finisher.failure`).
FAILURES = (StorageError, SessionTooLarge)


@attrs.frozen
class Failure:
    """The response that replaces the application's when the session fails: plain text, or
    what the application's ``on_error`` hook chose (``content_type``, ``extra`` headers)."""

    status: int
    reason: str
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def status_line(self) -> str:
        return f"{self.status} {self.reason}"

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [
            ("content-type", self.content_type),
            ("content-length", str(len(self.body))),
            ("cache-control", "no-store"),
            *self.extra,
        ]


@attrs.frozen
class ErrorResponse:
    """What an ``on_error`` hook returns: the body and headers of the failure response.

    The status stays the library's (503 for a storage failure, 500 for an oversized session),
    and so does the rule that the response sets no cookie: a ``Set-Cookie`` among ``headers``
    (or the session's own header, with ``key_lookup="header:..."``) is dropped, as are the
    headers the response's framing depends on, so no hook can log visitors out during an
    outage or break the response.
    """

    body: bytes | str
    content_type: str = "text/plain; charset=utf-8"
    headers: Sequence[tuple[str, str]] = ()


#: ``on_error(request, error)``: the request (an ASGI scope, a WSGI environ, a Flask request)
#: and the :class:`~sessionkit.StorageError` or :class:`~sessionkit.SessionTooLarge`.
ErrorHook = Callable[[Any, SessionKitError], ErrorResponse]

#: Headers an ``on_error`` hook may not set (lower-case): the cookie, and what the failure
#: response writes itself or its framing depends on.
_HOOK_DROPS = frozenset(
    {"set-cookie", "content-length", "content-type", "cache-control", "transfer-encoding",
     "connection", "keep-alive", "upgrade", "te", "trailer"}
)  # fmt: skip
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*\Z")


_UNAVAILABLE = Failure(503, "Service Unavailable", b"Service Unavailable: session storage failed\n")
_TOO_LARGE = Failure(500, "Internal Server Error", b"Internal Server Error: session too large\n")


class Outcome(NamedTuple):
    """What to add to a response: ``value`` for the id's header (``None``: none), and ``Vary``;
    ``more``: the ``(header, value)`` pairs of a chain's other carriers (a cookie and a header).

    A named tuple, not an attrs class: one is made per response that carries a cookie, and a
    tuple is the cheapest immutable record Python builds.
    """

    value: str | None
    vary: bool
    more: tuple[tuple[str, str], ...] = ()


#: :meth:`Finisher.write_due`: the session changed and must be saved.
SAVE = 1
#: :meth:`Finisher.write_due`: the session was only read, and is due for renewal.
RENEW = 2

_NOTHING = Outcome(None, False)
_VARY_ONLY = Outcome(None, True)


def _header_ok(name: object, value: object) -> bool:
    """Whether ``name: value`` can go on a header line as it is (nothing a hook returns is
    allowed to split or end the line)."""
    return (
        isinstance(name, str)
        and isinstance(value, str)
        and _HEADER_NAME.match(name) is not None
        and _HEADER_VALUE.match(value) is not None
    )


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

    __slots__ = (
        "_cookies",
        "_header",
        "_log",
        "_more",
        "_on_error",
        "_rolling",
        "_uncarried",
        "backend",
        "header_name",
        "store",
        "varies",
        "vary",
    )

    def __init__(self, store: Store, on_error: ErrorHook | None = None) -> None:
        if not isinstance(store, Store):
            raise TypeError(
                "the session middleware takes a sessionkit Store, got "
                f"{type(store).__qualname__}: build one with Store(config) or Store(**fields)"
            )
        self.store = store
        if on_error is not None and not callable(on_error):
            raise ConfigError("on_error", f"expected a callable, got {on_error!r}")
        self._on_error = on_error
        self._rolling = store.config.rolling
        #: Names the storage in failure logs.
        self.backend = type(store.storage).__qualname__
        #: One WARNING line per kind of failure per interval (see :mod:`sessionkit._failurelog`).
        self._log = FailureLog()
        config = store.config
        lookups = config.lookups
        # The sources a response hands the id back through (see _id_lookup.carries): the
        # first is the primary (``Outcome.value``), a chain's others go in ``Outcome.more``.
        carriers = [lookup for lookup in lookups if carries(lookup)]
        first = carriers[0] if carriers else None
        self._cookies = (
            CookieRenderer(config, first.name) if first and first.source == "cookie" else None
        )
        self._header = first is not None and first.source == "header"
        #: Lower-case name of the response header carrying the id (``None``: query lookup,
        #: where the application passes ``session.id`` on itself, in its links or redirects,
        #: and ``header:Authorization``, whose token the client got from the app).
        self.header_name: str | None = (
            None if first is None else "set-cookie" if self._cookies else first.name.lower()
        )
        self._more = tuple(
            ("set-cookie", CookieRenderer(config, c.name))
            if c.source == "cookie"
            else (c.name.lower(), None)
            for c in carriers[1:]
        )
        #: A chain with a source that carries nothing back: an id read from it is never
        #: written into a cookie or a header (see :meth:`finish`).
        self._uncarried = len(lookups) > 1 and len(carriers) < len(lookups)
        #: The request headers the response depends on when the session was read.
        self.varies: tuple[str, ...] = tuple(
            dict.fromkeys(
                "Cookie" if lookup.source == "cookie" else lookup.name
                for lookup in lookups
                if lookup.source != "query"
            )
        )
        self.vary: str | None = self.varies[0] if self.varies else None

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
        busy session to about one write per half lifetime; ``Config.rolling`` renews at every
        request that used the session instead.
        """
        if session._state is PENDING:
            return 0
        if session._modified:
            return SAVE
        loaded_at = session._loaded_at
        if (
            not session._accessed
            or session._state is not STORED
            or session._wrote
            or loaded_at is None
        ):
            return 0
        store = self.store
        now = store.now()
        lifetime = store._lifetime(session._lifetime)
        left = loaded_at + lifetime - now
        # Renew only past half-life (or always, ``rolling``), and only if a rewrite would
        # extend it (absolute_timeout).
        return (
            RENEW
            if (left < lifetime / 2 or self._rolling)
            and store._ttl(session._lifetime, session._created, now) > left
            else 0
        )

    def finish(self, session: Session, carrier: Any = None) -> Outcome:
        """Write what the request needs and return what the response carries.

        ``carrier``: the request's scope or environ, where a chain of id sources notes that
        the id came from one that carries nothing back (the query string): a response never
        writes such an id into a cookie or a header (only an id the server made, after a
        ``regenerate`` or for a new session, goes out).
        """
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
        return self._carried(session, carrier)

    async def afinish(
        self, session: Session, carrier: Any = None, due: int | None = None
    ) -> Outcome:
        """Async twin of :meth:`finish` (``due``: :meth:`write_due`, when the caller has it:
        the ASGI middleware awaits this only when something is due, see :meth:`settled`)."""
        if due is None:
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
        return self._carried(session, carrier)

    def settled(self, session: Session, carrier: Any = None) -> Outcome | int:
        """The outcome of a request that has nothing to write (most reads), without a
        coroutine; else what :meth:`write_due` says is due, for :meth:`afinish`."""
        due = self.write_due(session)
        if due:
            return due
        return self._carried(session, carrier)

    def _carried(self, session: Session, carrier: Any) -> Outcome:
        """:meth:`outcome`, or :meth:`_uncarried_outcome` where the lookup may carry nothing."""
        if self._uncarried:
            return self._uncarried_outcome(session, carrier)
        return self.outcome(session)

    def _uncarried_outcome(self, session: Session, carrier: Any) -> Outcome:
        """:meth:`outcome`, minus the id when it is the one the client sent through a source
        that carries nothing back (a query id is never written into a cookie)."""
        outcome = self.outcome(session)
        if (
            carrier is not None
            and UNCARRIED_KEY in carrier
            and session._id == session._client_id
            and (outcome.value is not None or outcome.more)
        ):
            return _VARY_ONLY if outcome.vary else _NOTHING
        return outcome

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

    def failure(
        self, exc: SessionKitError, *, replaced: bool = True, request: Any = None
    ) -> Failure:
        """Log ``exc`` and return the response that replaces the app's (its body and headers
        chosen by the ``on_error`` hook when there is one, see :meth:`_hooked`).

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
            failure = _UNAVAILABLE
        else:
            logger.error("sessionkit: %s; %s", exc, outcome, exc_info=exc)
            failure = _TOO_LARGE
        if self._on_error is None or not replaced:
            return failure
        return self._hooked(failure, exc, request)

    def _hooked(self, failure: Failure, exc: SessionKitError, request: Any) -> Failure:
        """``failure`` with the body and headers the ``on_error`` hook returns.

        Whatever the hook returns, the status stays and no cookie is set: ``Set-Cookie``, the
        session's own header and the framing headers are dropped. A hook that raises, or
        returns anything but an :class:`ErrorResponse` a header line can carry, is logged and
        the default response is sent: an error page must not turn an outage into a 500.
        """
        assert self._on_error is not None
        try:
            answer = self._on_error(request, exc)
            if not isinstance(answer, ErrorResponse):
                raise TypeError(f"on_error must return an ErrorResponse, got {answer!r}")
            body = answer.body.encode() if isinstance(answer.body, str) else answer.body
            if not isinstance(body, bytes):
                raise TypeError(f"ErrorResponse.body must be bytes or str, got {body!r}")
            drop = _HOOK_DROPS | {self.header_name or "set-cookie"}
            extra = tuple(
                (str(name), str(value))
                for name, value in answer.headers
                if _header_ok(name, value) and name.lower() not in drop
            )
            if not _header_ok("content-type", answer.content_type):
                raise ValueError(f"unusable content_type {answer.content_type!r}")
        except Exception:
            logger.exception("sessionkit: the on_error hook failed; sent the default response")
            return failure
        return attrs.evolve(failure, body=body, content_type=answer.content_type, extra=extra)

    def _gone(self, session: Session) -> Outcome:
        logger.info(
            "sessionkit: session %s was destroyed or regenerated by another request; "
            "this request's changes were dropped",
            fingerprint(session._id),
        )
        return _VARY_ONLY if self.vary is not None else _NOTHING

    def outcome(self, session: Session) -> Outcome:
        """The header value (see the module's table) and whether to add ``Vary``."""
        if session._state is PENDING:
            return _NOTHING
        vary = session._accessed and self.vary is not None
        if session._state is STORED:
            wrote = session._wrote
            if wrote is None:
                return _VARY_ONLY if vary else _NOTHING
            if self._more:
                return Outcome(self._set(session, *wrote), vary, self._more_set(session, *wrote))
            return Outcome(self._set(session, *wrote), vary)
        if session._state is DESTROYED or session._loaded_at is not None:
            if self._more:
                return Outcome(self._expire(), vary, self._more_expire())
            return Outcome(self._expire(), vary)
        return _VARY_ONLY if vary else _NOTHING

    def _more_set(
        self, session: Session, now: float, lifetime: float
    ) -> tuple[tuple[str, str], ...]:
        """The other carriers' values for a session written at ``now``."""
        return tuple(
            (name, session._id if cookies is None else cookies.set(
                session._id, lifetime, now, session._browser
            ))
            for name, cookies in self._more
        )  # fmt: skip

    def _more_expire(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (name, "" if cookies is None else cookies.expire) for name, cookies in self._more
        )

    def _set(self, session: Session, now: float, lifetime: float) -> str | None:
        """The header value for a session written at ``now`` for ``lifetime`` seconds."""
        cookies = self._cookies
        if cookies is not None:
            return cookies.set(session._id, lifetime, now, session._browser)
        return session._id if self._header else None

    def _expire(self) -> str | None:
        if self._cookies is not None:
            return self._cookies.expire
        # Header transport: an empty value tells the client to forget the id it holds.
        return "" if self._header else None
