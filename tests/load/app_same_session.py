"""The apps of the same-session scenario (issue 20): many clients changing one session at once.

``asgi`` (Starlette, served by uvicorn) and ``wsgi`` (Flask with ``sessionkit.flask``, served by
gunicorn), each built on first use, so a server imports only its own framework.

Environment (read once, at import, in every worker):

* ``LOAD_STORAGE``: the storage URL (sessionkit's ``open_storage`` syntax);
* ``LOAD_CONFLICT``: ``merge`` or ``overwrite``, ``Config.conflict``; unset or empty: the
  default (``merge``).

Routes (every body is plain text, cheap for the load generator to parse):

* ``/create``: sets ``created`` so the session is stored; answers ``ok`` and its cookie;
* ``/set?k=NAME&v=N``: sets key ``NAME`` to the integer ``N``; answers the value the key held
  when the request loaded the session (``0`` when it had none), so the client sees at its next
  request whether its last acknowledged write is still there;
* ``/dump``: every ``k*`` key, ``"k00=5 k01=7 ..."``;
* ``/health``: never touches the session.
"""

from __future__ import annotations

import os
from typing import Any

from sessionkit import Store

__all__ = ["CONFLICT", "STORAGE", "dump_text", "store"]  # and asgi, wsgi: see __getattr__

STORAGE = os.environ.get("LOAD_STORAGE", "memory://")
CONFLICT = os.environ.get("LOAD_CONFLICT", "")

fields: dict[str, Any] = {"conflict": CONFLICT} if CONFLICT else {}
store = Store(storage=STORAGE, **fields)


def dump_text(session: Any) -> str:
    """The ``k*`` keys of ``session``, sorted, as ``"k00=5 k01=7"``."""
    keys = sorted(k for k in session if k.startswith("k"))
    return " ".join(f"{k}={session.get(k)}" for k in keys)


def _asgi() -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from sessionkit.asgi import SessionMiddleware

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def create(request: Request) -> PlainTextResponse:
        request.session["created"] = 1
        return PlainTextResponse("ok")

    async def set_key(request: Request) -> PlainTextResponse:
        key, value = request.query_params["k"], int(request.query_params["v"])
        session = request.session
        previous = session.get(key, 0)
        session[key] = value
        return PlainTextResponse(str(previous))

    async def dump(request: Request) -> PlainTextResponse:
        return PlainTextResponse(dump_text(request.session))

    routes = [
        Route("/health", health),
        Route("/create", create),
        Route("/set", set_key),
        Route("/dump", dump),
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

    @app.get("/create")
    def create() -> flask.Response:
        flask.session["created"] = 1
        return text("ok")

    @app.get("/set")
    def set_key() -> flask.Response:
        key, value = flask.request.args["k"], int(flask.request.args["v"])
        previous = flask.session.get(key, 0)
        flask.session[key] = value
        return text(str(previous))

    @app.get("/dump")
    def dump() -> flask.Response:
        return text(dump_text(flask.session))

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
