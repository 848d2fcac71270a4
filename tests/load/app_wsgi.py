"""The WSGI app the load suite serves with gunicorn: Flask, with sessionkit mounted by env.

Environment (read once, at import, in every worker):

* ``LOAD_STORAGE``: the storage URL.
* ``LOAD_SHAPE``: ``flask`` (default; ``sessionkit.flask.init_app``, so ``flask.session`` is the
  sessionkit session) or ``outer`` (``sessionkit.wsgi.SessionMiddleware`` around the Flask app,
  whose own error handling turns an exception into a 500 page before the middleware sees it).

The routes and bodies are ``app_asgi``'s: ``/read``, ``/write``, ``/login?user=``, ``/logout``,
``/health``, each answering ``"<user> <n>"``; ``/reset`` (``reset()``), and ``/aread``, which
reads the session through the async API on an event loop of its own.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import flask

from sessionkit import Store

STORAGE = os.environ.get("LOAD_STORAGE", "memory://")
SHAPE = os.environ.get("LOAD_SHAPE", "flask")

flask_app = flask.Flask(__name__)
store = Store(storage=STORAGE)


def _session() -> Any:
    if SHAPE == "outer":
        return flask.request.environ["sessionkit.session"]
    return flask.session


def _text(user: object, n: object) -> flask.Response:
    return flask.Response(f"{user} {n}", mimetype="text/plain")


@flask_app.get("/health")
def health() -> flask.Response:
    return flask.Response("ok", mimetype="text/plain")


@flask_app.get("/read")
def read() -> flask.Response:
    session = _session()
    return _text(session.get("user", "-"), session.get("n", 0))


@flask_app.get("/write")
def write() -> flask.Response:
    session = _session()
    n = session.get("n", 0) + 1
    session["n"] = n
    return _text(session.get("user", "-"), n)


@flask_app.get("/login")
def login() -> flask.Response:
    user = flask.request.args["user"]
    session = _session()
    session.regenerate()
    session["user"] = user
    return _text(user, session.get("n", 0))


@flask_app.get("/logout")
def logout() -> flask.Response:
    _session().destroy()
    return _text("-", 0)


@flask_app.get("/reset")
def reset() -> flask.Response:
    _session().reset()
    return _text("-", 0)


@flask_app.get("/aread")
def aread() -> flask.Response:
    """The session read through the async API on an event loop of its own, which ends with the
    request: what an async view served over WSGI does (Django's ``async_to_sync``). Every
    finished loop must leave no client, socket or Redis connection behind (issue 14, item 6).
    """
    sid = flask.request.cookies.get("session_id")

    async def load() -> Any:
        return None if not sid else await store.aget_by_id(sid)

    session = asyncio.run(load())
    if session is None:
        return _text("-", 0)
    return _text(session.get("user", "-"), session.get("n", 0))


app: Any
if SHAPE == "outer":
    from sessionkit.wsgi import SessionMiddleware

    app = SessionMiddleware(flask_app.wsgi_app, store)
elif SHAPE == "flask":
    from sessionkit.flask import init_app

    init_app(flask_app, store)
    app = flask_app
else:
    raise ValueError(f"LOAD_SHAPE={SHAPE!r}: flask or outer")
