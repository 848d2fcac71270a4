"""Sessions for any ASGI application: Starlette, FastAPI, Litestar, Quart, or a bare ASGI app.

Mounting::

    store = Store()
    app = Starlette(routes=..., middleware=[Middleware(SessionMiddleware, store=store)])
    app.add_middleware(SessionMiddleware, store=store)                          # FastAPI
    Litestar(route_handlers=..., middleware=[DefineMiddleware(SessionMiddleware, store=store)])
    app.asgi_app = SessionMiddleware(app.asgi_app, store)                       # Quart
    app = SessionMiddleware(app, store)                                         # any ASGI app

The session is ``scope["session"]``, so Starlette's and Litestar's ``request.session`` is the
sessionkit :class:`~sessionkit.Session`, and ``await store.aget(request)`` returns that same
object. This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._errors import SessionKitError, StorageError
from ._finish import FAILURES, Failure, Finisher, Outcome, add_vary
from ._id_lookup import OWNER_KEY
from ._session import Session
from ._store import Store

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "SessionMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WAITING, _STARTED, _REPLACED = range(3)


async def _send_failure(send: Send, failure: Failure) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in failure.headers]
    await send({"type": "http.response.start", "status": failure.status, "headers": headers})
    await send({"type": "http.response.body", "body": failure.body})


class SessionMiddleware:
    """Loads the session before the app runs; saves it and sets the cookie as headers leave.

    **Loading is eager** by default: a request carrying a well-formed id costs one async
    storage read before the app is called, because a session's methods are synchronous and so
    cannot read on first use under asyncio. A request with no id, or a malformed one, gets a
    fresh session with no storage call at all. With ``autoload=False`` nothing is read until a
    handler calls ``await store.aget(request)``, so routes that never need the session cost no
    storage call even with a cookie; using ``request.session`` before that raises
    :class:`~sessionkit.SessionKitError`, naming the fix.

    **Saving** happens when the app sends ``http.response.start``, before any header leaves,
    so the cookie and the stored record always agree: a changed session is written, a read one
    is renewed past half its lifetime (see :meth:`Finisher.write_due
    <sessionkit._finish.Finisher.write_due>`), and an untouched one costs nothing more and
    sets no cookie. Changes made after the response started (in a streamed body) are not saved.

    **Failures**: a :class:`~sessionkit.StorageError` while loading, while saving, or raised by
    the app before its response started, replaces the response with a plain 503 carrying no
    ``Set-Cookie`` (a :class:`~sessionkit.SessionTooLarge` with a 500); the error is logged with
    its driver exception. So does a 500 that the app (or an error layer of its framework, such
    as Starlette's when this middleware wraps a whole Starlette app) answers after a storage
    call of its session failed in the request. A failed load is not answered at once: the app runs, and its first
    use of the session raises the load's error again, so routes that never touch the session
    keep being served during an outage, with or without a cookie, and no cookie is changed.
    If the app already started its response, the error is only logged and the response ends
    where it broke.

    **Websockets** get the session loaded, read-only: there is no response to carry a cookie,
    so nothing is ever saved. A storage failure closes the handshake (code 1011).
    """

    def __init__(self, app: ASGIApp, store: Store, *, autoload: bool = True) -> None:
        self.app = app
        self.store = store
        self.autoload = autoload
        self._finisher = finisher = Finisher(store)
        name, vary = finisher.header_name, finisher.vary
        self._header = None if name is None else name.encode("latin-1")
        self._vary = None if vary is None else vary.encode("latin-1")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Typed Any on purpose: frameworks type the ASGI triple differently (Starlette with
        # mappings, Litestar with TypedDicts), and a middleware must fit every one of them.
        # Inside, they are a Scope, a Receive and a Send.
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or scope.get(OWNER_KEY) is self.store:
            await self.app(scope, receive, send)  # not ours, or ours further out (OWNER_KEY)
            return
        scope[OWNER_KEY] = self.store
        if not self.autoload and kind == "http":
            session = self.store._get_unloaded(scope)
        else:
            try:
                session = await self.store._aload_scope(scope)
            except StorageError as exc:
                if kind != "http":
                    self._finisher.failure(exc)  # logged
                    await send({"type": "websocket.close", "code": 1011})
                    return
                # The app may never touch its session: it is served, and answers 503 if it does.
                session = self.store._get_unavailable(scope, exc)
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self, session, send)
        try:
            await self.app(scope, receive, exchange.send)
        except FAILURES as exc:
            await exchange.fail(exc)

    def headers(self, message: Message, outcome: Outcome) -> list[Any]:
        """The headers of ``message`` (a response start) with the session's added."""
        headers = list(message.get("headers", ()))
        if outcome.value is not None and self._header is not None:
            headers.append((self._header, outcome.value.encode("latin-1")))
        if outcome.vary and self._vary is not None:
            add_vary(headers, b"vary", self._vary, b", ")
        return headers


class _Exchange:
    """One request's response side: finishes the session as the response starts."""

    __slots__ = ("_middleware", "_send", "_session", "_state")

    def __init__(self, middleware: SessionMiddleware, session: Session, send: Send) -> None:
        self._middleware = middleware
        self._session = session
        self._send = send
        self._state = _WAITING

    async def send(self, message: Message) -> None:
        if self._state == _WAITING and message["type"] == "http.response.start":
            middleware = self._middleware
            broke = self._session._broke
            if broke is not None and message.get("status") == 500:
                # An error layer inside (Starlette's, Quart's, the app's own) turned this
                # request's storage failure into a 500: it is an outage all the same.
                await self.fail(broke)
                return
            try:
                outcome = await middleware._finisher.afinish(self._session)
            except FAILURES as exc:
                await self.fail(exc)
                return
            self._state = _STARTED
            if outcome.value is not None or outcome.vary:
                message = {**message, "headers": middleware.headers(message, outcome)}
            await self._send(message)
        elif self._state != _REPLACED:
            await self._send(message)
        # else: the app's own response was replaced by a failure; the rest of it is dropped.

    async def fail(self, exc: SessionKitError) -> None:
        """Answer the failure if no header left yet; else it is only logged."""
        failure = self._middleware._finisher.failure(exc, replaced=self._state == _WAITING)
        if self._state == _WAITING:
            self._state = _REPLACED
            await _send_failure(self._send, failure)
