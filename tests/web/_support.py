"""Test helpers for the web integration: counting and failing storages, a clock, one small test
app mounted under both middlewares, clients over real HTTP plumbing, and a Set-Cookie parser.
"""

from __future__ import annotations

import collections
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl

import attrs
import httpx
import pytest
from werkzeug.test import Client as WerkzeugClient

from sessionkit import Session, Storage, Store
from sessionkit.asgi import SessionMiddleware as ASGISessionMiddleware
from sessionkit.testing import FakeClock
from sessionkit.wsgi import SessionMiddleware as WSGISessionMiddleware
from sessionkit_memory import MemoryStorage


class CountingStorage:
    """A storage (any backend; memory by default), counting every call by name (``get`` and ``aget`` both count as
    ``get``), so tests can prove how many storage round trips a request costs; the calls named
    in ``failing`` raise as a driver would (not a sessionkit error).

    Each storage method is looked up on the wrapped storage and wrapped on first use, so the
    wrapper satisfies the storage protocols (``ConditionalStorage`` and ``AtomicStorage`` too)
    without restating them.
    """

    READS = frozenset({"get"})
    WRITES = frozenset({"set", "create", "replace", "touch", "delete", "take", "replace_if"})
    OPS = READS | WRITES | {"reset", "close"}

    def __init__(self, inner: Storage | None = None) -> None:
        self.inner: Storage = MemoryStorage() if inner is None else inner
        self.calls: collections.Counter[str] = collections.Counter()
        self.failing: frozenset[str] = frozenset()

    @property
    def down(self) -> bool:
        return bool(self.failing)

    @down.setter
    def down(self, value: bool) -> None:
        self.failing = self.OPS - {"close"} if value else frozenset()

    @property
    def reads(self) -> int:
        return sum(n for k, n in self.calls.items() if k in self.READS)

    @property
    def writes(self) -> int:
        return sum(n for k, n in self.calls.items() if k in self.WRITES)

    def clear(self) -> None:
        self.calls.clear()

    def _count(self, op: str) -> None:
        self.calls[op] += 1
        if op in self.failing:
            raise ConnectionError(f"storage is down ({op})")

    def __getattr__(self, name: str) -> Any:
        op = name[1:] if name[:1] == "a" and name[1:] in self.OPS else name
        if op not in self.OPS:
            raise AttributeError(name)
        method = getattr(self.inner, name)
        if inspect.iscoroutinefunction(method):

            async def acall(*args: Any) -> Any:
                self._count(op)
                return await method(*args)

            wrapper: Any = acall
        else:

            def call(*args: Any) -> Any:
                self._count(op)
                return method(*args)

            wrapper = call
        setattr(self, name, wrapper)
        return wrapper


def make_store(clock: FakeClock, storage: CountingStorage | None = None, **fields: Any) -> Store:
    if storage is None:
        storage = CountingStorage(MemoryStorage(clock=clock))
    return Store(storage=storage, clock=clock, **fields)


# -- Set-Cookie -------------------------------------------------------------------------------


@attrs.frozen
class SetCookie:
    name: str
    value: str
    attrs: dict[str, str | bool]

    @classmethod
    def parse(cls, line: str) -> SetCookie:
        """Parse strictly: every attribute once, names kept as sent (lower-cased for lookup)."""
        first, *rest = line.split(";")
        name, sep, value = first.partition("=")
        assert sep, line
        parsed: dict[str, str | bool] = {}
        for part in rest:
            assert part.startswith(" "), f"attribute not separated by '; ': {line!r}"
            key, eq, val = part.strip().partition("=")
            assert key.lower() not in parsed, f"attribute {key} twice in {line!r}"
            parsed[key.lower()] = val if eq else True
        return cls(name, value, parsed)

    @property
    def expired(self) -> bool:
        return self.attrs.get("max-age") == "0"


# -- the test app: one set of operations, mounted under both middlewares ------------------------


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _set(session: Session, q: dict[str, str]) -> str:
    for key, value in q.items():
        session[key] = int(value) if value.isdigit() else value
    return "ok"


def _expiry(session: Session, q: dict[str, str]) -> str:
    session.set_expiry(timedelta(seconds=int(q["s"])))
    session["x"] = 1
    return "ok"


def _clear(session: Session, q: dict[str, str]) -> str:
    session.clear()
    return "ok"


def _delete(session: Session, key: str) -> str:
    session.delete(key)
    return "ok"


def _count(session: Session, q: dict[str, str]) -> str:
    session["n"] = session.get("n", 0) + 1
    return str(session["n"])


#: Path -> what the app does with the session; the body is what it returns.
OPS: dict[str, Callable[[Session, dict[str, str]], str]] = {
    "noop": lambda s, q: "untouched",
    "get": lambda s, q: _json(s.get(q["k"])),
    "all": lambda s, q: _json(dict(s.items())),
    "keys": lambda s, q: _json(sorted(s.keys())),
    "fresh": lambda s, q: _json(s.fresh),
    "id": lambda s, q: s.id,
    "set": _set,
    "setid": lambda s, q: (_set(s, q), s.id)[1],
    "count": _count,
    "delete": lambda s, q: _delete(s, q["k"]),
    "clear": _clear,
    "expiry": _expiry,
}
#: Paths that run a lifecycle method (``name`` or its async twin ``aname``): the query's values
#: are set before it, those named ``then_KEY`` after it.
LIFECYCLE = ("destroy", "regenerate", "reset", "save")


def _around(q: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    after = {k[5:]: v for k, v in q.items() if k.startswith("then_")}
    return {k: v for k, v in q.items() if not k.startswith("then_")}, after


def _split(path: str, query: str) -> tuple[str, dict[str, str]]:
    return path.strip("/"), dict(parse_qsl(query, keep_blank_values=True))


def _extra_headers(q: dict[str, str]) -> list[tuple[str, str]]:
    # "?_vary=Accept-Encoding" makes the app send its own Vary header.
    return [("vary", q.pop("_vary"))] if "_vary" in q else []


def asgi_app(store: Store) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        op, q = _split(scope["path"], scope["query_string"].decode())
        extra = _extra_headers(q)
        session = scope["session"]
        assert await store.aget(scope) is session  # one object per request
        if op in LIFECYCLE:
            before, after = _around(q)
            _set(session, before)
            await getattr(session, "a" + op)()
            body = _set(session, after)
        else:
            body = OPS[op](session, q)
        headers = [(b"content-type", b"text/plain")]
        headers += [(k.encode(), v.encode()) for k, v in extra]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})

    return app


def wsgi_app(store: Store) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        op, q = _split(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
        extra = _extra_headers(q)
        session = environ["sessionkit.session"]
        assert store.get(environ) is session
        if op in LIFECYCLE:
            before, after = _around(q)
            _set(session, before)
            getattr(session, op)()
            body = _set(session, after)
        else:
            body = OPS[op](session, q)
        start_response("200 OK", [("content-type", "text/plain"), *extra])
        return [body.encode()]

    return app


# -- clients ----------------------------------------------------------------------------------


@attrs.frozen
class Reply:
    status: int
    text: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def cookies(self) -> list[SetCookie]:
        return [SetCookie.parse(v) for v in self.header("set-cookie")]

    @property
    def cookie(self) -> SetCookie:
        (only,) = self.cookies
        return only


class Client(Protocol):
    kind: str
    #: Whether a request carrying an id reads the storage before the app runs (ASGI).
    eager: bool

    async def get(
        self, path: str, *, cookie: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply: ...


def _request_headers(cookie: str | None, headers: dict[str, str] | None) -> dict[str, str]:
    out = dict(headers or {})
    if cookie is not None:
        out["cookie"] = cookie
    return out


class ASGIClient:
    """Real HTTP messages into the ASGI middleware (httpx's ASGI transport)."""

    kind = "asgi"
    eager = True

    def __init__(self, app: Callable[..., Awaitable[None]], *, server: bool = False) -> None:
        # server=True: an exception the app re-raises after its response (Starlette's error
        # layer does) is left to the server, as uvicorn does, instead of failing the test.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=not server)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def get(
        self, path: str, *, cookie: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        response = await self.http.get(path, headers=_request_headers(cookie, headers))
        self.http.cookies.clear()  # no jar: each test says exactly what the client sends
        return Reply(response.status_code, response.text, list(response.headers.multi_items()))


class WSGIClient:
    """Real HTTP messages into the WSGI middleware (Werkzeug's test client)."""

    kind = "wsgi"
    eager = False

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.http = WerkzeugClient(app, use_cookies=False)

    async def get(
        self, path: str, *, cookie: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        response = self.http.get(path, headers=_request_headers(cookie, headers))
        return Reply(response.status_code, response.get_data(as_text=True), list(response.headers))


def asgi_client(store: Store, app: Callable[..., Awaitable[None]] | None = None) -> ASGIClient:
    return ASGIClient(ASGISessionMiddleware(app or asgi_app(store), store))


def wsgi_client(store: Store, app: Callable[..., Iterable[bytes]] | None = None) -> WSGIClient:
    return WSGIClient(WSGISessionMiddleware(app or wsgi_app(store), store))


MakeClient = Callable[[Store], Client]


class Browser:
    """A cookie jar in front of a client: keeps the session cookie the way a browser does."""

    def __init__(self, client: Client, name: str = "session_id") -> None:
        self.client = client
        self.name = name
        self.value: str | None = None

    async def get(self, path: str) -> Reply:
        cookie = None if self.value is None else f"{self.name}={self.value}"
        reply = await self.client.get(path, cookie=cookie)
        for c in reply.cookies:
            if c.name == self.name:
                self.value = None if c.expired else c.value
        return reply


def failure_logs(
    caplog: pytest.LogCaptureFixture,
) -> tuple[list[logging.LogRecord], list[logging.LogRecord]]:
    """The storage failures sessionkit logged: its WARNING lines (one per kind per interval)
    and its DEBUG records, each with the traceback (capture ``sessionkit`` at DEBUG)."""
    ours = [r for r in caplog.records if r.name == "sessionkit"]
    lines = [r for r in ours if r.levelno == logging.WARNING and r.module == "_failurelog"]
    tracebacks = [r for r in ours if r.levelno == logging.DEBUG and r.exc_info is not None]
    return lines, tracebacks
