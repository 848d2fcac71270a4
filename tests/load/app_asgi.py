"""The ASGI app the load suite serves with uvicorn: Starlette, with a session layer chosen by env.

Environment (read once, at import, in every worker):

* ``LOAD_STORAGE``: the storage URL (sessionkit's ``open_storage`` syntax; for starsessions,
  ``memory://`` or a ``redis://`` URL whose ``prefix`` query names its key prefix).
* ``LOAD_LAYER``: ``sessionkit`` (default), ``starsessions`` or ``bare`` (no session layer: the
  same routes answering constants, the floor of the comparison table).
* ``LOAD_SHAPE``: ``inner`` (default; ``Starlette(middleware=[...])``, where Starlette's error
  layer sits outside the session middleware) or ``outer`` (``SessionMiddleware(Starlette(...))``,
  as a Quart app or any wrapped ASGI app mounts it: the app's own error layer turns exceptions
  into 500s before the session middleware sees them).

Routes (every body is ``"<user> <n>"``, cheap for the load generator to parse):

* ``/read``: the session's user and counter;
* ``/write``: increments the counter; a 200 acknowledges the value stored;
* ``/login?user=NAME``: ``regenerate()`` (new id, data kept), then sets the user;
* ``/logout``: ``destroy()``;
* ``/reset``: ``reset()`` (sessionkit only);
* ``/health``: never touches the session.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from tests.load.asgi_routes import (
    bare_read,
    health,
    login,
    logout,
    read,
    reset,
    star_login,
    star_logout,
    write,
)

STORAGE = os.environ.get("LOAD_STORAGE", "memory://")
LAYER = os.environ.get("LOAD_LAYER", "sessionkit")
SHAPE = os.environ.get("LOAD_SHAPE", "inner")


def _routes(layer: str) -> list[Route]:
    if layer == "bare":
        return [
            Route("/health", health),
            Route("/read", bare_read),
            Route("/write", bare_read),
            Route("/login", bare_read),
            Route("/logout", bare_read),
        ]
    if layer == "starsessions":
        return [
            Route("/health", health),
            Route("/read", read),
            Route("/write", write),
            Route("/login", star_login),
            Route("/logout", star_logout),
        ]
    return [
        Route("/health", health),
        Route("/read", read),
        Route("/write", write),
        Route("/login", login),
        Route("/logout", logout),
        Route("/reset", reset),
    ]


def _starsessions_middleware(url: str) -> list[Middleware]:
    from starsessions import InMemoryStore, SessionAutoloadMiddleware, SessionMiddleware

    store: Any
    if url.startswith("redis"):
        from starsessions.stores.redis import RedisStore

        parts = urlsplit(url)
        prefix = parse_qs(parts.query).get("prefix", ["starsessions:"])[0]
        store = RedisStore(url=parts._replace(query="").geturl(), prefix=prefix)
    else:
        store = InMemoryStore()
    return [
        Middleware(SessionMiddleware, store=store, lifetime=86400, cookie_https_only=False),
        Middleware(SessionAutoloadMiddleware),
    ]


def build() -> Any:
    if LAYER == "bare":
        return Starlette(routes=_routes("bare"))
    if LAYER == "starsessions":
        return Starlette(routes=_routes(LAYER), middleware=_starsessions_middleware(STORAGE))
    if LAYER != "sessionkit":
        raise ValueError(f"LOAD_LAYER={LAYER!r}: sessionkit, starsessions or bare")

    from sessionkit import Store
    from sessionkit.asgi import SessionMiddleware

    store = Store(storage=STORAGE)
    if SHAPE == "outer":
        return SessionMiddleware(Starlette(routes=_routes(LAYER)), store)
    if SHAPE != "inner":
        raise ValueError(f"LOAD_SHAPE={SHAPE!r}: inner or outer")
    return Starlette(routes=_routes(LAYER), middleware=[Middleware(SessionMiddleware, store=store)])


app = build()
