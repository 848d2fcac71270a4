"""The app of the unsaved-changes scenario: Starlette under sessionkit, served by uvicorn.

``LOAD_STORAGE`` (environment) is the storage URL. Routes (plain text bodies), beside
``/health``:

* ``/login?u=NAME``: ``user = NAME``, ``n = 1``: a new session, saved, with its cookie;
* ``/spoil``: changes every value of the session (``user``, ``n``, a new ``tag``), then fails
  before its response starts: uvicorn answers 500, and nothing may be saved;
* ``/read``: ``"<user> <n> <tag>"``.
"""

from __future__ import annotations

import os
from typing import Any

from sessionkit import Store
from tests.load._apps import built_on_first_use, starlette_app

__all__ = ["store"]  # and asgi: see __getattr__

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
        session = request.session
        session["user"] = "eve"
        session["n"] = session.get("n", 0) + 1000
        session["tag"] = "spoiled"
        raise Spoiled("after changing the session, before any response")

    async def read(request: Any) -> str:
        session = request.session
        return f"{session.get('user')} {session.get('n')} {session.get('tag')}"

    return starlette_app(store, {"/login": login, "/spoil": spoil, "/read": read})


__getattr__ = built_on_first_use(globals(), {"asgi": _asgi})
