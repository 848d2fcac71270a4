"""Litestar under uvicorn: bare, sessionkit, Litestar's server-side sessions (memory, Redis or
file store) or the floor.

Litestar's sessions have no call that gives a session a new id, so the peer's ``/login`` only
sets the user (on the first login the client has no cookie, and the session is new anyway).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.middleware import DefineMiddleware

from benchmarks.load.apps import BACKEND, LAYER, NS, SPIN, URL, burn, profiled

TEXT = MediaType.TEXT


def _text(user: object, n: object, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(f"{user} {n}", media_type=TEXT, headers=headers)


@get("/health", sync_to_thread=False, media_type=TEXT)
def health() -> str:
    return "ok"


@get("/read", sync_to_thread=False, media_type=TEXT)
def read(request: Request[Any, Any, Any]) -> str:
    session = request.session
    return f"{session.get('user', '-')} {session.get('n', 0)}"


@get("/write", sync_to_thread=False, media_type=TEXT)
def write(request: Request[Any, Any, Any]) -> str:
    session = request.session
    n = session.get("n", 0) + 1
    session["n"] = n
    return f"{session.get('user', '-')} {n}"


@get("/login", media_type=TEXT)
async def sk_login(request: Request[Any, Any, Any], user: str) -> str:
    session = request.session
    await session.aregenerate()
    session["user"] = user
    return f"{user} {session.get('n', 0)}"


@get("/login", sync_to_thread=False, media_type=TEXT)
def peer_login(request: Request[Any, Any, Any], user: str) -> str:
    session = request.session
    session["user"] = user
    return f"{user} {session.get('n', 0)}"


@get(["/read", "/write", "/login"], sync_to_thread=False, media_type=TEXT)
def bare() -> str:
    return "- 0"


@get(["/read", "/write", "/login"], sync_to_thread=False, media_type=TEXT)
def spun() -> str:
    """A calibration row's answer (``SPIN``): the bare app's after a known cost. A handler of
    its own, so that the bare app's answers call nothing."""
    burn()
    return "- 0"


def _floor_handlers() -> list[Any]:
    from benchmarks.load.apps._floor import COOKIE, AsyncFloor, set_cookie

    floor = AsyncFloor(BACKEND, URL, NS)

    @get("/read")
    async def f_read(request: Request[Any, Any, Any]) -> Response[str]:
        return _text(*await floor.read(request.cookies.get(COOKIE)))

    @get("/write")
    async def f_write(request: Request[Any, Any, Any]) -> Response[str]:
        return _text(*await floor.write(request.cookies.get(COOKIE)))

    @get("/login")
    async def f_login(user: str) -> Response[str]:
        token = await floor.login(user)
        return _text(user, 0, {"set-cookie": set_cookie(token)})

    return [f_read, f_write, f_login]


def _peer_store() -> Any:
    if BACKEND == "memory":
        from litestar.stores.memory import MemoryStore

        return MemoryStore()
    if BACKEND == "redis":
        from litestar.stores.redis import RedisStore

        return RedisStore.with_client(url=URL, namespace=NS)
    if BACKEND == "file":
        from litestar.stores.file import FileStore

        return FileStore(path=Path(URL))
    raise ValueError(f"Litestar sessions on {BACKEND!r}")


def build() -> Litestar:
    options: dict[str, Any] = {
        "debug": False,
        "logging_config": None,
        # Annotations are strings here (``from __future__``); Litestar resolves them by name.
        "signature_namespace": {"Response": Response, "Request": Request, "Any": Any},
    }
    if LAYER == "bare":
        return Litestar(route_handlers=[health, spun if SPIN else bare], **options)
    if LAYER == "floor":
        return Litestar(route_handlers=[health, *_floor_handlers()], **options)
    if LAYER == "peer":
        from litestar.middleware.session.server_side import ServerSideSessionConfig

        config = ServerSideSessionConfig()
        return Litestar(
            route_handlers=[health, read, write, peer_login],
            middleware=[config.middleware],
            stores={"sessions": _peer_store()},
            **options,
        )
    if LAYER != "sessionkit":
        raise ValueError(f"LOAD_LAYER={LAYER!r}")
    from sessionkit import Store
    from sessionkit.asgi import SessionMiddleware

    store = Store(storage=URL)
    return Litestar(
        route_handlers=[health, read, write, sk_login],
        middleware=[DefineMiddleware(SessionMiddleware, store=store)],
        **options,
    )


app = profiled(build(), "asgi")
