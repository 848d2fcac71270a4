"""The apps of the served log-out-everywhere scenario (issue 20): ``Config(principal_key=...)``.

``asgi`` (Starlette, served by uvicorn) and ``wsgi`` (Flask with ``sessionkit.flask``, served by
gunicorn), each built on first use. ``LOAD_STORAGE`` (environment) is the storage URL.

Routes (plain text bodies), beside ``/health``:

* ``/login?u=NAME``: ``regenerate()``, then ``user = NAME``: a log-in, with its new cookie;
* ``/touch``: counts a visit in the session (a save); answers the user, or ``anon``;
* ``/who``: the user, or ``anon`` (reads only);
* ``/everywhere``: ``destroy_all(user, keep=<this session>)``: "log out my other devices";
  answers how many sessions ended.
"""

from __future__ import annotations

import os
from typing import Any

from sessionkit import Store
from tests.load._apps import built_on_first_use, flask_app, starlette_app

__all__ = ["store"]  # and asgi, wsgi: see __getattr__

store = Store(storage=os.environ.get("LOAD_STORAGE", "memory://"), principal_key="user")


def _asgi() -> Any:
    async def login(request: Any) -> str:
        session = request.session
        await session.aregenerate()
        session["user"] = request.query_params["u"]
        return "ok"

    async def touch(request: Any) -> str:
        session = request.session
        session["n"] = session.get("n", 0) + 1
        return str(session.get("user", "anon"))

    async def who(request: Any) -> str:
        return str(request.session.get("user", "anon"))

    async def everywhere(request: Any) -> str:
        session = request.session
        return str(await store.adestroy_all(session["user"], keep=session.id))

    routes = {"/login": login, "/touch": touch, "/who": who, "/everywhere": everywhere}
    return starlette_app(store, routes)


def _wsgi() -> Any:
    import flask

    session: Any = flask.session

    def login() -> str:
        session.regenerate()
        session["user"] = flask.request.args["u"]
        return "ok"

    def touch() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session.get("user", "anon"))

    def who() -> str:
        return str(session.get("user", "anon"))

    def everywhere() -> str:
        return str(store.destroy_all(session["user"], keep=session.id))

    routes = {"/login": login, "/touch": touch, "/who": who, "/everywhere": everywhere}
    return flask_app(store, routes)


__getattr__ = built_on_first_use(globals(), {"asgi": _asgi, "wsgi": _wsgi})
