"""The apps of the served log-out-everywhere scenario (issue 20): ``Config(principal_key=...)``.

``asgi`` (Starlette, served by uvicorn) and ``wsgi`` (Flask with ``sessionkit.flask``, served by
gunicorn), each built on first use. ``LOAD_STORAGE`` (environment) is the storage URL.

Routes (plain text bodies):

* ``/login?u=NAME``: ``regenerate()``, then ``user = NAME``: a log-in, with its new cookie;
* ``/touch``: counts a visit in the session (a save); answers the user, or ``anon``;
* ``/who``: the user, or ``anon`` (reads only);
* ``/everywhere``: ``destroy_all(user, keep=<this session>)``: "log out my other devices";
  answers how many sessions ended;
* ``/health``: never touches the session (the harness waits for it).
"""

from __future__ import annotations

import os
from typing import Any

from sessionkit import Store

__all__ = ["store"]  # and asgi, wsgi: see __getattr__

store = Store(storage=os.environ.get("LOAD_STORAGE", "memory://"), principal_key="user")


def _asgi() -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from sessionkit.asgi import SessionMiddleware

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def login(request: Request) -> PlainTextResponse:
        session = request.session
        await session.aregenerate()
        session["user"] = request.query_params["u"]
        return PlainTextResponse("ok")

    async def touch(request: Request) -> PlainTextResponse:
        session = request.session
        session["n"] = session.get("n", 0) + 1
        return PlainTextResponse(session.get("user", "anon"))

    async def who(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.session.get("user", "anon"))

    async def everywhere(request: Request) -> PlainTextResponse:
        session = request.session
        ended = await store.adestroy_all(session["user"], keep=session.id)
        return PlainTextResponse(str(ended))

    routes = [
        Route("/health", health),
        Route("/login", login),
        Route("/touch", touch),
        Route("/who", who),
        Route("/everywhere", everywhere),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SessionMiddleware, store=store)])


def _wsgi() -> Any:
    import flask

    from sessionkit.flask import init_app

    app = flask.Flask(__name__)

    def text(body: str) -> flask.Response:
        return flask.Response(body, mimetype="text/plain")

    @app.get("/health")
    def health() -> flask.Response:
        return text("ok")

    @app.get("/login")
    def login() -> flask.Response:
        flask.session.regenerate()  # type: ignore[attr-defined]
        flask.session["user"] = flask.request.args["u"]
        return text("ok")

    @app.get("/touch")
    def touch() -> flask.Response:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return text(flask.session.get("user", "anon"))

    @app.get("/who")
    def who() -> flask.Response:
        return text(flask.session.get("user", "anon"))

    @app.get("/everywhere")
    def everywhere() -> flask.Response:
        session: Any = flask.session
        return text(str(store.destroy_all(session["user"], keep=session.id)))

    init_app(app, store)
    return app


def __getattr__(name: str) -> Any:
    """``asgi`` and ``wsgi``, built on first use (and kept)."""
    builders = {"asgi": _asgi, "wsgi": _wsgi}
    if name not in builders:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = builders[name]()
    globals()[name] = app
    return app
