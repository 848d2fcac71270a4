"""The apps of the unsaved-changes scenario: ``asgi`` (Starlette under sessionkit, served by
uvicorn) and ``wsgi`` (a bare WSGI app under ``sessionkit.wsgi``, served by gunicorn's threads).

``LOAD_STORAGE`` (environment) is the storage URL. Routes (plain text bodies), beside
``/health``:

* ``/login?u=NAME``: ``user = NAME``, ``n = 1``: a new session, saved, with its cookie;
* ``/spoil``: changes every value of the session (``user``, ``n``, a new ``tag``), then fails
  before its response starts: the server answers 500, and nothing may be saved;
* ``/read``: ``"<user> <n> <tag>"``.
"""

from __future__ import annotations

import os
from typing import Any

from sessionkit import Store
from tests.load._apps import built_on_first_use, starlette_app

__all__ = ["store"]  # and asgi, wsgi: see __getattr__

store = Store(storage=os.environ.get("LOAD_STORAGE", "memory://"))


class Spoiled(Exception):
    """The handler's failure, after it changed its session."""


def _asgi() -> Any:
    async def login(request: Any) -> str:
        session = request.session
        session["user"] = request.query_params["u"]
        session["n"] = 1
        return "ok"

    async def spoil(request: Any) -> str:
        _spoil(request.session)
        return "unreachable"

    async def read(request: Any) -> str:
        session = request.session
        return f"{session.get('user')} {session.get('n')} {session.get('tag')}"

    return starlette_app(store, {"/login": login, "/spoil": spoil, "/read": read})


def _spoil(session: Any) -> None:
    session["user"] = "eve"
    session["n"] = session.get("n", 0) + 1000
    session["tag"] = "spoiled"
    raise Spoiled("after changing the session, before any response")


def _wsgi() -> Any:
    from urllib.parse import parse_qs

    from sessionkit.wsgi import SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["sessionkit.session"]
        path = environ["PATH_INFO"]
        if path == "/login":
            session["user"] = parse_qs(environ["QUERY_STRING"])["u"][0]
            session["n"] = 1
            body = "ok"
        elif path == "/spoil":
            _spoil(session)
        elif path == "/read":
            body = f"{session.get('user')} {session.get('n')} {session.get('tag')}"
        else:  # /health
            body = "ok"
        data = body.encode()
        start_response(
            "200 OK", [("content-type", "text/plain"), ("content-length", str(len(data)))]
        )
        return [data]

    return SessionMiddleware(app, store)


__getattr__ = built_on_first_use(globals(), {"asgi": _asgi, "wsgi": _wsgi})
