"""The apps under test: the same three handlers for every framework and session layer.

- ``/new``: no cookie; the handler sets one value -> a session is created, saved, a cookie returned.
- ``/read``: valid cookie; the handler reads one value.
- ``/write``: valid cookie; the handler increments a counter -> saved.

Each factory returns a :class:`Contender`; peers are built exactly as their docs show. The
"floor" contenders are the same framework apps whose handlers make a session's redis round trips
themselves, with no session layer: the lowest time any session library could reach there.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REDIS_DB = 15  # benchmarks never touch db 0; each contender uses its own key prefix there
#: The key of the encrypted rows (32 bytes, fresh each run: records never outlive it).
BENCH_KEY = secrets.token_bytes(32)
FLOOR_TTL = 86400  # seconds, a day: what the floors' SET EX gives, like a session's lifetime


@dataclass
class Contender:
    name: str
    framework: str  # starlette | litestar | flask | wsgi
    backend: str  # none | memory | sqlite | redis
    kind: str  # asgi | wsgi
    app: Any
    cookie: str  # cookie name carrying the session id
    peer: bool  # True for other libraries, False for sessionkit and baselines
    cleanup: Callable[[], None] | None = None
    floor: bool = False  # True for the hand-made round trips: neither sessionkit nor a peer


# -- Floors: the round trips made by hand ------------------------------------------------------


class _Floor:
    """A server-side session's redis round trips, made by the handler itself.

    ``/new`` is one ``SET EX`` (to its own key, as a new session never touches the cookie's)
    and a fresh token in a ``Set-Cookie``; ``/read`` one ``GET``; ``/write`` one ``GET`` and one
    ``SET EX``. The value is a small JSON dict, encoded and decoded on every request as a session
    layer must. One fixed key each, so the timed loop leaves no litter; the cookie's session is
    written once, here. The cookie header is formatted by hand: the frameworks' cookie helpers
    cost 5 to 25 µs more (Litestar's ``Cookie`` the most), which a floor must not count.

    The commands go on one redis-py connection held for the whole run (``send_command`` and
    ``read_response``), not through the client, whose pool checkout costs about 25 µs a
    command: the cheapest round trip Python code gets out of redis-py, so no session layer
    using it can beat the floor.
    """

    def __init__(self, redis_url: str, framework: str, use_asyncio: bool) -> None:
        import redis
        import redis.asyncio as aredis

        url = f"{redis_url}/{REDIS_DB}"
        self.new_key = f"bench-floor:{framework}:new"
        self.key = f"bench-floor:{framework}:s"
        self.sync = redis.Redis.from_url(url)
        self.sync.set(self.key, json.dumps({"v": "hello", "n": 0}), ex=FLOOR_TTL)
        self.conn = self.sync.connection_pool.get_connection()
        self.aclient = aredis.Redis.from_url(url) if use_asyncio else None
        self.aconn: Any = None
        # The loop the async client's connections belong to: they can only be closed on it.
        self._loop: asyncio.AbstractEventLoop | None = None

    @staticmethod
    def set_cookie() -> str:
        """A ``Set-Cookie`` value carrying a new 43-character token."""
        token = secrets.token_urlsafe(32)
        return f"session={token}; Max-Age={FLOOR_TTL}; Path=/; HttpOnly; SameSite=Lax"

    def _cmd(self, *args: Any) -> Any:
        self.conn.send_command(*args)
        return self.conn.read_response()

    def new(self) -> str:
        """Write a new session's value; return its ``Set-Cookie`` value."""
        self._cmd("SET", self.new_key, json.dumps({"v": "hello", "n": 0}), "EX", FLOOR_TTL)
        return self.set_cookie()

    def read(self) -> str:
        return str(json.loads(self._cmd("GET", self.key))["v"])

    def write(self) -> str:
        data = json.loads(self._cmd("GET", self.key))
        data["n"] += 1
        self._cmd("SET", self.key, json.dumps(data), "EX", FLOOR_TTL)
        return str(data["n"])

    async def _acmd(self, *args: Any) -> Any:
        if self.aconn is None:
            assert self.aclient is not None
            self._loop = asyncio.get_running_loop()
            self.aconn = await self.aclient.connection_pool.get_connection()
        await self.aconn.send_command(*args)
        return await self.aconn.read_response()

    async def anew(self) -> str:
        await self._acmd("SET", self.new_key, json.dumps({"v": "hello", "n": 0}), "EX", FLOOR_TTL)
        return self.set_cookie()

    async def aread(self) -> str:
        return str(json.loads(await self._acmd("GET", self.key))["v"])

    async def awrite(self) -> str:
        data = json.loads(await self._acmd("GET", self.key))
        data["n"] += 1
        await self._acmd("SET", self.key, json.dumps(data), "EX", FLOOR_TTL)
        return str(data["n"])

    def cleanup(self) -> None:
        """Delete both keys and close the clients; run outside the loop (as run.py does)."""
        self.sync.connection_pool.release(self.conn)
        self.sync.delete(self.new_key, self.key)
        self.sync.close()
        loop = self._loop
        # A loop that is gone or busy cannot close the client: drop it, its sockets die with us.
        usable = loop is not None and not loop.is_closed() and not loop.is_running()
        if self.aclient is not None and loop is not None and usable:
            loop.run_until_complete(self.aclient.aclose())
        self.aclient = None


# -- Starlette ----------------------------------------------------------------------------------


def _starlette_app(middleware: list[Any], user: bool = False) -> Any:
    """``user``: each new session also holds a user of its own (a log-in), for the rows that
    measure ``principal_key``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    has_session = bool(middleware)

    async def new(request: Request) -> PlainTextResponse:
        if has_session:
            request.session["v"] = "hello"
            if user:
                request.session["user"] = secrets.token_hex(8)
        return PlainTextResponse("ok")

    async def read(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.session.get("v", "") if has_session else "hello")

    async def write(request: Request) -> PlainTextResponse:
        n = 1
        if has_session:
            n = request.session.get("n", 0) + 1
            request.session["n"] = n
        return PlainTextResponse(str(n))

    routes = [Route("/new", new), Route("/read", read), Route("/write", write)]
    return Starlette(routes=routes, middleware=middleware)


def starlette_bare() -> Contender:
    return Contender(
        "starlette (no sessions)", "starlette", "none", "asgi", _starlette_app([]), "", peer=False
    )


def sessionkit_starlette(
    storage_url: str, backend: str, feature: str = "", **fields: Any
) -> Contender:
    """``feature``: a label for the ``Config`` ``fields`` given (the cost of a feature is its
    row against the plain one, e.g. ``principal_key``, ``encryption_keys``)."""
    from starlette.middleware import Middleware

    from sessionkit import Store
    from sessionkit.asgi import SessionMiddleware

    store = Store(storage=storage_url, **fields)
    app = _starlette_app(
        [Middleware(SessionMiddleware, store=store)], user="principal_key" in fields
    )
    return Contender(
        f"sessionkit asgi ({backend}{', ' + feature if feature else ''})",
        "starlette",
        backend,
        "asgi",
        app,
        store.lookup.name,
        peer=False,
        cleanup=store.reset,
    )


def starsessions_starlette(backend: str, redis_url: str | None = None) -> Contender:
    from starlette.middleware import Middleware
    from starsessions import InMemoryStore, SessionAutoloadMiddleware, SessionMiddleware

    if backend == "redis":
        from starsessions.stores.redis import RedisStore

        store: Any = RedisStore(url=f"{redis_url}/{REDIS_DB}", prefix="bench-starsessions:")
    else:
        store = InMemoryStore()
    app = _starlette_app(
        [
            Middleware(SessionMiddleware, store=store, lifetime=86400, cookie_https_only=False),
            Middleware(SessionAutoloadMiddleware),
        ]
    )
    return Contender(
        f"starsessions ({backend})", "starlette", backend, "asgi", app, "session", peer=True
    )


def starlette_floor(redis_url: str) -> Contender:
    """Starlette whose handlers make the redis round trips themselves: no session layer."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    floor = _Floor(redis_url, "starlette", use_asyncio=True)

    async def new(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"set-cookie": await floor.anew()})

    async def read(request: Request) -> PlainTextResponse:
        return PlainTextResponse(await floor.aread())

    async def write(request: Request) -> PlainTextResponse:
        return PlainTextResponse(await floor.awrite())

    routes = [Route("/new", new), Route("/read", read), Route("/write", write)]
    return Contender(
        "starlette + raw redis calls (floor)",
        "starlette",
        "redis",
        "asgi",
        Starlette(routes=routes),
        "session",
        peer=False,
        cleanup=floor.cleanup,
        floor=True,
    )


# -- Litestar -----------------------------------------------------------------------------------


def _litestar_app(middleware: list[Any], stores: dict[str, Any] | None, session: bool) -> Any:
    from litestar import Litestar, Request, get

    @get("/new", sync_to_thread=False)
    def new(request: Request[Any, Any, Any]) -> str:
        if session:
            request.session["v"] = "hello"
        return "ok"

    @get("/read", sync_to_thread=False)
    def read(request: Request[Any, Any, Any]) -> str:
        return str(request.session.get("v", "")) if session else "hello"

    @get("/write", sync_to_thread=False)
    def write(request: Request[Any, Any, Any]) -> str:
        n = 1
        if session:
            n = request.session.get("n", 0) + 1
            request.session["n"] = n
        return str(n)

    return Litestar(
        route_handlers=[new, read, write],
        middleware=middleware,
        stores=stores,
        debug=False,
        logging_config=None,
    )


def litestar_bare() -> Contender:
    return Contender(
        "litestar (no sessions)",
        "litestar",
        "none",
        "asgi",
        _litestar_app([], None, session=False),
        "",
        peer=False,
    )


def litestar_sessions(backend: str, redis_url: str | None = None) -> Contender:
    from litestar.middleware.session.server_side import ServerSideSessionConfig

    if backend == "redis":
        from litestar.stores.redis import RedisStore

        store: Any = RedisStore.with_client(
            url=f"{redis_url}/{REDIS_DB}", namespace="bench-litestar"
        )
    else:
        from litestar.stores.memory import MemoryStore

        store = MemoryStore()
    config = ServerSideSessionConfig()
    app = _litestar_app([config.middleware], {"sessions": store}, session=True)
    return Contender(
        f"litestar sessions ({backend})", "litestar", backend, "asgi", app, "session", peer=True
    )


def litestar_floor(redis_url: str) -> Contender:
    """Litestar whose handlers make the redis round trips themselves: no session layer."""
    from litestar import Litestar, Response, get

    floor = _Floor(redis_url, "litestar", use_asyncio=True)

    @get("/new")
    async def new() -> Response[str]:
        return Response("ok", headers={"set-cookie": await floor.anew()}, media_type="text/plain")

    @get("/read")
    async def read() -> str:
        return await floor.aread()

    @get("/write")
    async def write() -> str:
        return await floor.awrite()

    app = Litestar(
        route_handlers=[new, read, write],
        debug=False,
        logging_config=None,
        # Annotations are strings here (``from __future__``); Litestar resolves them by name.
        signature_namespace={"Response": Response},
    )
    return Contender(
        "litestar + raw redis calls (floor)",
        "litestar",
        "redis",
        "asgi",
        app,
        "session",
        peer=False,
        cleanup=floor.cleanup,
        floor=True,
    )


def sessionkit_litestar(storage_url: str, backend: str) -> Contender:
    from litestar.middleware import DefineMiddleware

    from sessionkit import Store
    from sessionkit.asgi import SessionMiddleware

    store = Store(storage=storage_url)
    app = _litestar_app([DefineMiddleware(SessionMiddleware, store=store)], None, session=True)
    return Contender(
        f"sessionkit asgi on litestar ({backend})",
        "litestar",
        backend,
        "asgi",
        app,
        store.lookup.name,
        peer=False,
        cleanup=store.reset,
    )


# -- Flask --------------------------------------------------------------------------------------


def _flask_app(session: bool) -> Any:
    import flask

    app = flask.Flask("bench")

    @app.get("/new")
    def new() -> str:
        if session:
            flask.session["v"] = "hello"
        return "ok"

    @app.get("/read")
    def read() -> str:
        return str(flask.session.get("v", "")) if session else "hello"

    @app.get("/write")
    def write() -> str:
        n = 1
        if session:
            n = flask.session.get("n", 0) + 1
            flask.session["n"] = n
        return str(n)

    return app


def flask_bare() -> Contender:
    app = _flask_app(session=False)
    return Contender("flask (no sessions)", "flask", "none", "wsgi", app.wsgi_app, "", peer=False)


def flask_session(backend: str, redis_url: str | None = None) -> Contender:
    from flask_session import Session

    app = _flask_app(session=True)
    if backend == "redis":
        import redis

        app.config.update(
            SESSION_TYPE="redis",
            SESSION_KEY_PREFIX="bench-flasksession:",
            SESSION_REDIS=redis.Redis.from_url(f"{redis_url}/{REDIS_DB}"),
        )
    else:
        from cachelib import SimpleCache

        app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=SimpleCache(threshold=10**6))
    Session(app)
    return Contender(
        f"flask-session ({backend})", "flask", backend, "wsgi", app.wsgi_app, "session", peer=True
    )


def flask_floor(redis_url: str) -> Contender:
    """Flask whose views make the redis round trips themselves: no session layer."""
    import flask

    floor = _Floor(redis_url, "flask", use_asyncio=False)
    app = flask.Flask("bench")

    @app.get("/new")
    def new() -> tuple[str, dict[str, str]]:
        return "ok", {"set-cookie": floor.new()}

    @app.get("/read")
    def read() -> str:
        return floor.read()

    @app.get("/write")
    def write() -> str:
        return floor.write()

    return Contender(
        "flask + raw redis calls (floor)",
        "flask",
        "redis",
        "wsgi",
        app.wsgi_app,
        "session",
        peer=False,
        cleanup=floor.cleanup,
        floor=True,
    )


def sessionkit_flask(storage_url: str, backend: str) -> Contender:
    from sessionkit import Store
    from sessionkit.flask import init_app

    app = _flask_app(session=True)
    store = Store(storage=storage_url)
    init_app(app, store)
    return Contender(
        f"sessionkit flask ({backend})",
        "flask",
        backend,
        "wsgi",
        app.wsgi_app,
        store.lookup.name,
        peer=False,
        cleanup=store.reset,
    )


def sessionkit_wsgi(storage_url: str, backend: str) -> Contender:
    """sessionkit's plain WSGI middleware around a minimal WSGI app (no framework)."""
    from sessionkit import Store
    from sessionkit.wsgi import SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["sessionkit.session"]
        path = environ["PATH_INFO"]
        if path == "/new":
            session["v"] = "hello"
            body = b"ok"
        elif path == "/read":
            body = str(session.get("v", "")).encode()
        else:
            n = session.get("n", 0) + 1
            session["n"] = n
            body = str(n).encode()
        start_response(
            "200 OK", [("content-type", "text/plain"), ("content-length", str(len(body)))]
        )
        return [body]

    store = Store(storage=storage_url)
    return Contender(
        f"sessionkit wsgi, no framework ({backend})",
        "wsgi",
        backend,
        "wsgi",
        SessionMiddleware(app, store),
        store.lookup.name,
        peer=False,
        cleanup=store.reset,
    )


def wsgi_bare() -> Contender:
    answers = {"/new": b"ok", "/read": b"hello", "/write": b"1"}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = answers[environ["PATH_INFO"]]
        start_response(
            "200 OK", [("content-type", "text/plain"), ("content-length", str(len(body)))]
        )
        return [body]

    return Contender(
        "wsgi (no framework, no sessions)", "wsgi", "none", "wsgi", app, "", peer=False
    )


def wsgi_floor(redis_url: str) -> Contender:
    """A minimal WSGI app making the redis round trips itself: no framework, no session layer."""
    floor = _Floor(redis_url, "wsgi", use_asyncio=False)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        headers = [("content-type", "text/plain")]
        if path == "/new":
            headers.append(("set-cookie", floor.new()))
            body = b"ok"
        elif path == "/read":
            body = floor.read().encode()
        else:
            body = floor.write().encode()
        headers.append(("content-length", str(len(body))))
        start_response("200 OK", headers)
        return [body]

    return Contender(
        "wsgi + raw redis calls (floor)",
        "wsgi",
        "redis",
        "wsgi",
        app,
        "session",
        peer=False,
        cleanup=floor.cleanup,
        floor=True,
    )
