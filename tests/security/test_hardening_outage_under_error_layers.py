"""An outage under an application's own error layer still answers 503 (issue 14, item 5).

``SessionMiddleware(Starlette(...))`` -- the whole app wrapped from outside, as the
``sessionkit.asgi`` docstring shows for Quart (``app.asgi_app = SessionMiddleware(...)``, tested
here too) and any ASGI app -- puts Starlette's
``ServerErrorMiddleware`` *inside* ours: a StorageError raised by a route becomes Starlette's
500 page before our middleware sees the exception. Flask mounted under the plain WSGI
middleware does the same with its own 500 page, and so does any WSGI app with an error page of
its own. The middleware knows a storage call of the request's session failed, so that 500 is
an outage: 503, no ``Set-Cookie``, and nobody logged out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import flask
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sessionkit import Store
from sessionkit.asgi import SessionMiddleware as ASGIMiddleware
from sessionkit.wsgi import SessionMiddleware as WSGIMiddleware
from tests.web._support import (
    ASGIClient,
    Browser,
    Client,
    CountingStorage,
    FakeClock,
    WSGIClient,
    make_store,
)
from tests.web.test_failures import assert_unavailable


def _starlette(store: Store) -> Any:
    async def login(request: Request) -> PlainTextResponse:
        request.session["user"] = "ada"
        return PlainTextResponse("in")

    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.session.get("user")))

    async def logout(request: Request) -> PlainTextResponse:
        request.session.reset()
        return PlainTextResponse("out")

    async def broken(request: Request) -> PlainTextResponse:
        raise RuntimeError("the app's own bug")

    routes = [
        Route("/login", login),
        Route("/whoami", whoami),
        Route("/logout", logout),
        Route("/broken", broken),
    ]
    return ASGIMiddleware(Starlette(routes=routes), store)


def _quart(store: Store) -> Any:
    """Quart, mounted as the ``sessionkit.asgi`` docstring shows: ``app.asgi_app`` wrapped, so
    Quart's own error handling (its 500 page) sits inside the session middleware."""
    import quart

    app = quart.Quart(__name__)

    def session() -> Any:
        return quart.request.scope["session"]

    @app.get("/login")
    async def login() -> str:
        session()["user"] = "ada"
        return "in"

    @app.get("/whoami")
    async def whoami() -> str:
        return str(session().get("user"))

    @app.get("/logout")
    async def logout() -> str:
        await session().areset()
        return "out"

    @app.get("/broken")
    async def broken() -> str:
        raise RuntimeError("the app's own bug")

    app.asgi_app = ASGIMiddleware(app.asgi_app, store)  # type: ignore[method-assign]
    return app


def _flask(store: Store) -> Any:
    app = flask.Flask(__name__)
    app.testing = False  # errors become Flask's own 500 page, as in production

    def session() -> Any:
        return flask.request.environ["sessionkit.session"]

    @app.get("/login")
    def login() -> str:
        session()["user"] = "ada"
        return "in"

    @app.get("/whoami")
    def whoami() -> str:
        return str(session().get("user"))

    @app.get("/logout")
    def logout() -> str:
        session().reset()
        return "out"

    @app.get("/broken")
    def broken() -> str:
        raise RuntimeError("the app's own bug")

    return WSGIMiddleware(app.wsgi_app, store)


def _error_page_wsgi(store: Store) -> Any:
    """A bare WSGI app that answers every exception with an error page of its own."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session = environ["sessionkit.session"]
        path = environ["PATH_INFO"]
        try:
            if path == "/login":
                session["user"] = "ada"
                body = "in"
            elif path == "/logout":
                session.reset()
                body = "out"
            elif path == "/broken":
                raise RuntimeError("the app's own bug")
            else:
                body = str(session.get("user"))
        except Exception:
            start_response("500 Internal Server Error", [("content-type", "text/html")])
            return [b"<h1>Oops</h1>"]
        start_response("200 OK", [("content-type", "text/plain")])
        return [body.encode()]

    return WSGIMiddleware(app, store)


APPS = {
    "starlette": ("asgi", _starlette),
    "quart": ("asgi", _quart),
    "flask": ("wsgi", _flask),
    "wsgi": ("wsgi", _error_page_wsgi),
}


@pytest.fixture(params=sorted(APPS))
def wrapped(request: pytest.FixtureRequest, clock: FakeClock, storage: CountingStorage) -> Client:
    """The app with the session middleware mounted outside the framework's error layer."""
    kind, build = APPS[request.param]
    app = build(make_store(clock, storage))
    return ASGIClient(app, server=True) if kind == "asgi" else WSGIClient(app)


async def test_a_load_failure_under_the_apps_error_layer_answers_503(
    wrapped: Client, storage: CountingStorage
) -> None:
    browser = Browser(wrapped)
    await browser.get("/login")
    sid = browser.value
    assert sid is not None
    storage.down = True
    assert_unavailable(await browser.get("/whoami"))
    storage.down = False
    assert (await browser.get("/whoami")).text == "ada"  # nobody was logged out
    assert browser.value == sid


async def test_a_failed_reset_under_the_apps_error_layer_answers_503(
    wrapped: Client, storage: CountingStorage
) -> None:
    """A failed log-out: no expiring cookie (that logged the browser out while the record
    stayed), and the session is still there to be logged out of once the storage is back."""
    browser = Browser(wrapped)
    await browser.get("/login")
    sid = browser.value
    storage.failing = frozenset({"delete", "take"})
    assert_unavailable(await browser.get("/logout"))
    assert browser.value == sid
    storage.failing = frozenset()
    assert (await browser.get("/whoami")).text == "ada"


async def test_the_apps_own_500_stays_a_500(wrapped: Client, storage: CountingStorage) -> None:
    """Only a 500 that follows a failed storage call of this request becomes the 503."""
    browser = Browser(wrapped)
    await browser.get("/login")
    reply = await browser.get("/broken")
    assert reply.status == 500
    with pytest.raises(AssertionError):
        assert_unavailable(reply)
