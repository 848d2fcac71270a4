"""Starlette under uvicorn: bare, sessionkit, starsessions (memory, Redis) or the floor."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from benchmarks.load.apps import BACKEND, LAYER, NS, SPIN, URL, burn, profiled
from tests.load.asgi_routes import (
    bare_read,
    health,
    login,
    logout,
    read,
    star_login,
    star_logout,
    text,
    write,
)


async def _spun(request: Request) -> PlainTextResponse:
    """The bare app's answer after a known cost (``compare.py --calibrate``)."""
    burn()
    return await bare_read(request)


def _floor_routes() -> list[Route]:
    from benchmarks.load.apps._floor import COOKIE, AsyncFloor, set_cookie

    floor = AsyncFloor(BACKEND, URL, NS)

    async def f_read(request: Request) -> PlainTextResponse:
        return text(*await floor.read(request.cookies.get(COOKIE)))

    async def f_write(request: Request) -> PlainTextResponse:
        return text(*await floor.write(request.cookies.get(COOKIE)))

    async def f_login(request: Request) -> PlainTextResponse:
        user = request.query_params["user"]
        token = await floor.login(user)
        return text(user, 0, {"set-cookie": set_cookie(token)})

    return [
        Route("/health", health),
        Route("/read", f_read),
        Route("/write", f_write),
        Route("/login", f_login),
    ]


def _starsessions() -> list[Middleware]:
    from starsessions import InMemoryStore, SessionAutoloadMiddleware, SessionMiddleware

    store: Any
    if BACKEND == "redis":
        from starsessions.stores.redis import RedisStore

        store = RedisStore(url=URL, prefix=NS)
    elif BACKEND == "memory":
        store = InMemoryStore()
    else:
        raise ValueError(f"starsessions on {BACKEND!r}")
    return [
        Middleware(SessionMiddleware, store=store, lifetime=86400, cookie_https_only=False),
        Middleware(SessionAutoloadMiddleware),
    ]


def build() -> Starlette:
    if LAYER == "bare":
        answer = _spun if SPIN else bare_read
        return Starlette(
            routes=[
                Route("/health", health),
                *(Route(p, answer) for p in ("/read", "/write", "/login")),
            ]
        )
    if LAYER == "floor":
        return Starlette(routes=_floor_routes())
    if LAYER == "peer":
        routes = [
            Route("/health", health),
            Route("/read", read),
            Route("/write", write),
            Route("/login", star_login),
            Route("/logout", star_logout),
        ]
        return Starlette(routes=routes, middleware=_starsessions())
    if LAYER != "sessionkit":
        raise ValueError(f"LOAD_LAYER={LAYER!r}")
    from sessionkit import Store
    from sessionkit.asgi import SessionMiddleware

    store = Store(storage=URL)
    routes = [
        Route("/health", health),
        Route("/read", read),
        Route("/write", write),
        Route("/login", login),
        Route("/logout", logout),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SessionMiddleware, store=store)])


app = profiled(build(), "asgi")
