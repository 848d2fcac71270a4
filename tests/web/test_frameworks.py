"""Real framework apps keep a counter across requests: Starlette, FastAPI, Litestar, Flask.

Each goes through the framework's own request object (``request.session``, ``flask.session``,
``store.get(request)``) and the client's cookie jar, as a browser would.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest

from sessionkit import Session, Store
from sessionkit.asgi import SessionMiddleware
from tests.web._support import CountingStorage, FakeClock, SetCookie, make_store

# -- Starlette ----------------------------------------------------------------------------------


def starlette_app(store: Store) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    async def count(request: Request) -> PlainTextResponse:
        session = request.session
        assert isinstance(session, Session) and await store.aget(request) is session
        session["n"] = session.get("n", 0) + 1
        return PlainTextResponse(str(session["n"]))

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        session = websocket.session
        await websocket.send_text(str(session.get("n")))
        session["n"] = 1000  # read-only: never saved
        await websocket.close()

    return Starlette(
        routes=[Route("/", count), WebSocketRoute("/ws", ws)],
        middleware=[Middleware(SessionMiddleware, store=store)],
    )


async def _count_three_times(app: Any, path: str = "/") -> list[str]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return [(await http.get(path)).text for _ in range(3)]


async def test_starlette_counter(store: Store) -> None:
    assert await _count_three_times(starlette_app(store)) == ["1", "2", "3"]


async def test_the_same_store_mounted_twice_sends_one_cookie(store: Store) -> None:
    """An app whose sub-app mounts the middleware again (or a copy-pasted line): the outer one
    owns the session; the inner one passes the request through."""
    app = SessionMiddleware(starlette_app(store), store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        reply = await http.get("/")
        assert len(reply.headers.get_list("set-cookie")) == 1
        assert reply.headers.get_list("vary") == ["Cookie"]
        assert (await http.get("/")).text == "2"


async def test_a_session_an_outer_layer_loaded_first_is_still_saved(store: Store) -> None:
    """An auth middleware outside the session middleware peeks with ``await store.aget``: the
    session it put in the scope is still the session middleware's to save."""
    inner = starlette_app(store)

    async def peeking(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await store.aget(scope)
        await inner(scope, receive, send)

    transport = httpx.ASGITransport(app=peeking)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        reply = await http.get("/")
        assert len(reply.headers.get_list("set-cookie")) == 1
        assert (await http.get("/")).text == "2"


async def test_starlette_websocket_reads_the_session_and_never_saves(
    store: Store, storage: CountingStorage
) -> None:
    app = starlette_app(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/")).text == "1"
        cookie = f"session_id={http.cookies['session_id']}"
        storage.clear()
        sent: list[dict[str, Any]] = []
        incoming = iter([{"type": "websocket.connect"}])

        async def receive() -> dict[str, Any]:
            return next(incoming, {"type": "websocket.disconnect", "code": 1000})

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "websocket",
            "path": "/ws",
            "raw_path": b"/ws",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"cookie", cookie.encode())],
            "scheme": "ws",
            "server": ("testserver", 80),
            "subprotocols": [],
        }
        await app(scope, receive, send)
        assert [m["type"] for m in sent] == [
            "websocket.accept",
            "websocket.send",
            "websocket.close",
        ]
        assert sent[1]["text"] == "1"
        assert storage.calls == {"get": 1}  # the one load; no write
        assert (await http.get("/")).text == "2"


# -- FastAPI ------------------------------------------------------------------------------------


async def test_fastapi_counter(store: Store) -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=store)

    @app.get("/")
    async def count(request: FastAPIRequest) -> int:
        session = await store.aget(request)
        assert session is request.session
        session["n"] = session.get("n", 0) + 1
        return int(session["n"])

    assert await _count_three_times(app) == ["1", "2", "3"]


# -- Litestar -----------------------------------------------------------------------------------


async def test_litestar_counter(store: Store) -> None:
    # Litestar mounts a pure ASGI middleware through DefineMiddleware, which calls
    # SessionMiddleware(app=<next app>, store=store).
    from litestar import Litestar, Request, get
    from litestar.middleware import DefineMiddleware

    @get("/", media_type="text/plain")
    async def count(request: Request[Any, Any, Any]) -> str:
        session = request.session
        assert isinstance(session, Session) and await store.aget(request) is session
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    app = Litestar(
        route_handlers=[count], middleware=[DefineMiddleware(SessionMiddleware, store=store)]
    )
    assert await _count_three_times(app) == ["1", "2", "3"]


# -- Flask --------------------------------------------------------------------------------------


def flask_app(store: Store) -> Any:
    import flask

    from sessionkit.flask import FlaskSession, init_app

    app = flask.Flask(__name__)
    init_app(app, store)

    @app.get("/")
    def count() -> str:
        session = flask.session
        assert store.get(flask.request) is session._get_current_object()  # type: ignore[attr-defined]
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.get("/plain")
    def plain() -> str:
        return "no session used"

    @app.get("/cart/add")
    def cart_add() -> str:
        cart = flask.session.setdefault("cart", [])
        cart.append(flask.request.args["sku"])  # in place: invisible to the session ...
        flask.session.modified = True  # ... until the app says so, as with Flask's own
        return "ok"

    @app.get("/cart")
    def cart() -> str:
        return ",".join(flask.session.get("cart", []))

    @app.get("/flash")
    def flash() -> str:
        flask.flash("saved!")
        return "ok"

    @app.get("/flashes")
    def flashes() -> str:
        return "|".join(flask.get_flashed_messages())

    @app.get("/about")
    def about() -> dict[str, Any]:
        session = flask.session
        assert isinstance(session._get_current_object(), FlaskSession)  # type: ignore[attr-defined]
        session.permanent = True  # accepted, ignored: the store decides
        return {"new": session.new, "permanent": session.permanent}

    @app.get("/logout")
    def logout() -> str:
        session = flask.session._get_current_object()  # type: ignore[attr-defined]
        session.destroy()
        return "bye"

    return app


def test_flask_counter(store: Store) -> None:
    client = flask_app(store).test_client()
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]


def test_flask_cookie_vary_and_logout(store: Store) -> None:
    client = flask_app(store).test_client()
    first = client.get("/")
    (line,) = first.headers.getlist("Set-Cookie")
    cookie = SetCookie.parse(line)
    assert cookie.attrs["httponly"] is True and cookie.attrs["samesite"] == "Lax"
    assert "Cookie" in first.headers["Vary"]
    again = client.get("/")
    assert again.headers.getlist("Set-Cookie")  # written: refreshed
    bye = client.get("/logout")
    assert SetCookie.parse(bye.headers["Set-Cookie"]).expired
    assert store.get_by_id(cookie.value) is None
    assert client.get("/").text == "1"


def test_flask_untouched_view_costs_nothing(store: Store, storage: CountingStorage) -> None:
    client = flask_app(store).test_client()
    client.get("/")
    storage.clear()
    reply = client.get("/plain")
    assert storage.calls == {}
    assert "Set-Cookie" not in reply.headers and "Vary" not in reply.headers


def test_flask_modified_flag_saves_in_place_changes(store: Store) -> None:
    client = flask_app(store).test_client()
    client.get("/cart/add?sku=a")
    client.get("/cart/add?sku=b")
    assert client.get("/cart").text == "a,b"


def test_flask_flash_messages_round_trip(store: Store) -> None:
    client = flask_app(store).test_client()
    client.get("/flash")
    assert client.get("/flashes").text == "saved!"
    assert client.get("/flashes").text == ""


def test_flask_session_attributes(clock: FakeClock) -> None:
    client = flask_app(make_store(clock)).test_client()
    assert client.get("/about").json == {"new": True, "permanent": True}
    client.get("/")
    assert client.get("/about").json == {"new": False, "permanent": True}
    session_only = flask_app(make_store(clock, cookie_session_only=True)).test_client()
    assert session_only.get("/about").json == {"new": True, "permanent": False}


def test_flask_storage_down(
    store: Store, storage: CountingStorage, caplog: pytest.LogCaptureFixture
) -> None:
    client = flask_app(store).test_client()
    client.get("/")
    storage.down = True
    reply = client.get("/")  # the view's first use of the session fails
    assert reply.status_code == 503 and "Set-Cookie" not in reply.headers
    assert reply.mimetype == "text/plain"
    assert client.get("/plain").status_code == 200  # needs no storage: served
    storage.failing = frozenset({"replace", "replace_if"})  # reads work, the save fails
    reply = client.get("/")
    assert reply.status_code == 503 and "Set-Cookie" not in reply.headers
    assert "storage" in reply.text
    lines = [r for r in caplog.records if r.name == "sessionkit" and r.levelno >= logging.WARNING]
    assert len(lines) == 1  # the same kind of failure twice: one line, the repeat held back
    storage.failing = frozenset()
    assert client.get("/").text == "2"  # nobody was logged out


def test_flask_after_request_hook_using_the_session_during_an_outage_answers_503(
    store: Store, storage: CountingStorage
) -> None:
    """Flask routes an exception from an ``after_request`` hook to its 500 handling, past the
    handlers registered by class: the 503 must come out all the same, and other 500s must
    still reach the app's own handler."""
    import flask

    app = flask_app(store)

    @app.errorhandler(500)
    def own_500(error: Exception) -> tuple[str, int]:
        return "the app's own 500 page", 500

    from sessionkit.flask import init_app

    # Mounted again, after the app registered its own 500 handler (as an app that sets up its
    # error pages first would): that handler must keep serving every other 500.
    init_app(app, store)

    @app.after_request
    def who(response: flask.Response) -> flask.Response:
        if flask.request.path != "/plain":
            response.headers["x-user"] = str(flask.session.get("n"))
        return response

    @app.get("/bug")
    def bug() -> str:
        raise RuntimeError("a bug of the app")

    client = app.test_client()
    assert client.get("/").text == "1"
    storage.down = True
    reply = client.get("/about")
    assert reply.status_code == 503 and "Set-Cookie" not in reply.headers
    assert "storage" in reply.text
    storage.down = False
    reply = client.get("/bug")
    assert (reply.status_code, reply.text) == (500, "the app's own 500 page")


def test_flask_with_the_wsgi_middleware_too_is_refused(store: Store) -> None:
    from sessionkit import SessionKitError
    from sessionkit.wsgi import SessionMiddleware as WSGIMiddleware

    app = flask_app(store)
    app.testing = True  # exceptions propagate to the test
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, store)  # type: ignore[method-assign]
    with pytest.raises(SessionKitError, match="not both"):
        app.test_client().get("/")


def test_flask_asks_whether_a_session_is_null_and_gets_flasks_answer(store: Store) -> None:
    """The interface answers ``is_null_session`` itself (a type check, not the ABC's
    ``isinstance``): never for one of its sessions, always for Flask's null ones, its own
    skipped-route session included, and for a session a test opens by hand."""
    import flask
    from flask.sessions import NullSession

    from sessionkit.flask import FlaskSession, SkippedSession

    app = flask_app(store)
    interface = app.session_interface
    with app.test_request_context("/"):
        session = interface.open_session(app, flask.request)
        assert isinstance(session, FlaskSession)
        assert interface.is_null_session(session) is False
    assert interface.is_null_session(SkippedSession()) is True
    assert interface.is_null_session(NullSession()) is True
    with app.test_client() as client:  # Flask's own use of the answer: a session to set up
        with client.session_transaction() as prepared:
            prepared["cart"] = ["x"]
        assert client.get("/cart").text == "x"
