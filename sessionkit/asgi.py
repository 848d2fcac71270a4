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

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ._csrf import (
    FORBIDDEN_BODY,
    MAX_FORM_BYTES,
    UNSAFE_METHODS,
    CSRFGuard,
    form_token,
    is_form,
)
from ._errors import SessionKitError, StorageError
from ._finish import FAILURES, ErrorHook, Failure, Finisher, Outcome, add_vary
from ._id_lookup import OWNER_KEY
from ._session import DEFERRED, LAZY, Session
from ._skip import asgi_path, skipper
from ._store import Store

__all__ = ["ASGIApp", "CSRFMiddleware", "Message", "Receive", "Scope", "Send", "SessionMiddleware"]

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

    **Websockets** get the session loaded, with the same id rules: there is no response to
    carry a cookie, so nothing is saved on its own; ``await session.asave()`` writes it
    (a session the client has no cookie for yet is stored under an id it never learns). A
    storage failure closes the handshake (code 1011).

    **Skipping routes** (Fiber's ``Next``, Litestar's ``exclude``): ``exclude`` takes regular
    expressions searched in ``scope["path"]``, ``skip`` a function of the scope returning
    ``True`` for a request to leave alone. A skipped request has no ``scope["session"]``:
    nothing is read, written or sent (no cookie, no ``Vary``).

    **Error pages**: ``on_error(scope, error)`` returns the :class:`~sessionkit.ErrorResponse`
    (body, content type, headers) of the 503 (or 500) that replaces the app's response; the
    status stays, and no ``Set-Cookie`` goes out whatever it returns. One that raises is
    logged and the plain-text default is sent.
    """

    def __init__(
        self,
        app: ASGIApp,
        store: Store,
        *,
        autoload: bool = True,
        skip: Callable[[Scope], bool] | None = None,
        exclude: str | Iterable[str] | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.autoload = autoload
        self._skip = skipper(skip, exclude, asgi_path)
        self._finisher = finisher = Finisher(store, on_error)
        name = finisher.header_name
        self._header = None if name is None else name.encode("latin-1")
        self._varies = tuple(vary.encode("latin-1") for vary in finisher.varies)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Typed Any on purpose: frameworks type the ASGI triple differently (Starlette with
        # mappings, Litestar with TypedDicts), and a middleware must fit every one of them.
        # Inside, they are a Scope, a Receive and a Send.
        kind = scope["type"]
        if (
            (kind != "http" and kind != "websocket")
            or scope.get(OWNER_KEY) is self.store
            or (self._skip is not None and self._skip(scope))
        ):
            # Not ours, ours further out (OWNER_KEY), or a route the app excluded.
            await self.app(scope, receive, send)
            return
        scope[OWNER_KEY] = self.store
        if not self.autoload and kind == "http":
            session = self.store._session_for(True, scope, DEFERRED)
        else:
            try:
                session = await self.store._asession_for(True, scope)
            except StorageError as exc:
                if kind != "http":
                    self._finisher.failure(exc)  # logged
                    await send({"type": "websocket.close", "code": 1011})
                    return
                # The app may never touch its session: it is served, and answers 503 if it does.
                session = self.store._session_for(True, scope, LAZY, failure=exc)
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self, session, send, scope)
        try:
            await self.app(scope, receive, exchange.send)
        except FAILURES as exc:
            await exchange.fail(exc)

    def headers(self, message: Message, outcome: Outcome) -> list[Any]:
        """The headers of ``message`` (a response start) with the session's added."""
        headers = list(message.get("headers", ()))
        if outcome.value is not None and self._header is not None:
            headers.append((self._header, outcome.value.encode("latin-1")))
        if outcome.more:  # a chain's other carriers
            headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in outcome.more]
        if outcome.vary:
            for vary in self._varies:
                add_vary(headers, b"vary", vary, b", ")
        return headers


class _Exchange:
    """One request's response side: finishes the session as the response starts."""

    __slots__ = ("_middleware", "_scope", "_send", "_session", "_state")

    def __init__(
        self, middleware: SessionMiddleware, session: Session, send: Send, scope: Scope
    ) -> None:
        self._middleware = middleware
        self._scope = scope
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
                finisher = middleware._finisher
                outcome = finisher.settled(self._session, self._scope)
                if isinstance(outcome, int):  # a save or a renewal is due
                    outcome = await finisher.afinish(self._session, self._scope, outcome)
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
        failure = self._middleware._finisher.failure(
            exc, replaced=self._state == _WAITING, request=self._scope
        )
        if self._state == _WAITING:
            self._state = _REPLACED
            await _send_failure(self._send, failure)


_FORBIDDEN = Failure(403, "Forbidden", FORBIDDEN_BODY)


class CSRFMiddleware(CSRFGuard):
    """Rejects unsafe requests (POST, PUT, PATCH, DELETE) that lack the session's CSRF token,
    with a plain 403.

    Mount it *inside* :class:`SessionMiddleware` (``app = SessionMiddleware(CSRFMiddleware(app,
    store), store)``; with Starlette, list it after ``SessionMiddleware``). The token is read
    from the ``X-CSRF-Token`` header (``header_name``), or else from the ``csrf_token`` field
    (``field_name``) of an ``application/x-www-form-urlencoded`` body, which is read here and
    replayed to the app, so the app still reads the whole body. Multipart forms and JSON
    send the header. ``skip``/``exclude`` leave routes alone (webhooks signed otherwise), as
    on :class:`SessionMiddleware`.
    """

    app: ASGIApp
    _path = staticmethod(asgi_path)

    def _prepare(self) -> None:
        self._header = self.header_name.lower().encode("latin-1")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE_METHODS
            or (self._skip is not None and self._skip(scope))
        ):
            await self.app(scope, receive, send)
            return
        session = await self.store.aget(scope)
        tokens = [v for k, v in scope.get("headers", ()) if k.lower() == self._header]
        token: str | None = tokens[0].decode("latin-1") if len(tokens) == 1 else None
        if not tokens and is_form(_content_type(scope)):
            body, receive = await _buffered(receive)
            token = None if body is None else form_token(body, self.field_name)
        if not session.check_csrf(token):
            await _send_failure(send, _FORBIDDEN)
            return
        await self.app(scope, receive, send)


def _content_type(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-type":
            return str(value.decode("latin-1"))
    return ""


async def _buffered(receive: Receive) -> tuple[bytes | None, Receive]:
    """Read the request body, and return it with a ``receive`` that hands the app the same
    messages again, then the original's (a disconnect); ``None`` for a body larger than
    :data:`~sessionkit._csrf.MAX_FORM_BYTES`."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > MAX_FORM_BYTES:
            return None, receive
        if not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    pending = iter(messages)

    async def replay() -> Message:
        return next(pending, None) or await receive()

    return body, replay
