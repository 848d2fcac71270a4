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
from tests.load._apps import built_on_first_use, flask_app, starlette_app

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
    async def create(request: Any) -> str:
        request.session["created"] = 1
        return "ok"

    async def set_key(request: Any) -> str:
        key, value = request.query_params["k"], int(request.query_params["v"])
        session = request.session
        previous = session.get(key, 0)
        session[key] = value
        return str(previous)

    async def dump(request: Any) -> str:
        return dump_text(request.session)

    return starlette_app(store, {"/create": create, "/set": set_key, "/dump": dump})


def _wsgi() -> Any:
    import flask

    session: Any = flask.session

    def create() -> str:
        session["created"] = 1
        return "ok"

    def set_key() -> str:
        key, value = flask.request.args["k"], int(flask.request.args["v"])
        previous = session.get(key, 0)
        session[key] = value
        return str(previous)

    def dump() -> str:
        return dump_text(session)

    return flask_app(store, {"/create": create, "/set": set_key, "/dump": dump})


__getattr__ = built_on_first_use(globals(), {"asgi": _asgi, "wsgi": _wsgi})
