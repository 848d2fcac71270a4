"""``SessionMiddleware(app, store, autoload=False)``: ASGI sessions loaded on demand.

By default the ASGI middleware reads the session before the app runs (its methods are
synchronous). With ``autoload=False`` a handler loads it with ``await store.aget(request)``, so
a route that never needs it costs no storage call even when the client sends a cookie, on
every backend.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sessionkit import SessionKitError, Store
from sessionkit.asgi import SessionMiddleware
from tests.web._support import CountingStorage, SetCookie


def _app(store: Store) -> Starlette:
    async def login(request: Request) -> PlainTextResponse:
        session = await store.aget(request)
        session["user"] = "ada"
        return PlainTextResponse("ok")

    async def whoami(request: Request) -> PlainTextResponse:
        session = await store.aget(request)
        assert session is request.session  # the same object, now loaded
        return PlainTextResponse(str(request.session.get("user")))

    async def noop(request: Request) -> PlainTextResponse:
        return PlainTextResponse("untouched")

    async def too_early(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.session.get("user")))  # no await store.aget()

    routes = [Route(f"/{f.__name__}", f) for f in (login, whoami, noop, too_early)]
    return Starlette(
        routes=routes, middleware=[Middleware(SessionMiddleware, store=store, autoload=False)]
    )


@pytest.fixture
def http(store: Store) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(store), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _login(http: httpx.AsyncClient) -> str:
    reply = await http.get("/login")
    (line,) = reply.headers.get_list("set-cookie")
    cookie = SetCookie.parse(line)
    http.cookies.clear()
    return f"{cookie.name}={cookie.value}"


async def test_a_route_that_never_loads_costs_no_storage_call(
    http: httpx.AsyncClient, storage: CountingStorage
) -> None:
    cookie = await _login(http)
    storage.clear()
    reply = await http.get("/noop", headers={"cookie": cookie})
    assert reply.text == "untouched" and storage.calls == {}
    assert "set-cookie" not in reply.headers and "vary" not in reply.headers


async def test_await_store_aget_loads_with_one_read(
    http: httpx.AsyncClient, storage: CountingStorage
) -> None:
    cookie = await _login(http)
    storage.clear()
    reply = await http.get("/whoami", headers={"cookie": cookie})
    assert reply.text == "ada" and storage.calls == {"get": 1}
    assert reply.headers["vary"] == "Cookie" and "set-cookie" not in reply.headers


async def test_using_the_session_before_loading_it_names_the_fix(
    store: Store, storage: CountingStorage
) -> None:
    transport = httpx.ASGITransport(app=_app(store))  # app exceptions propagate here
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        cookie = await _login(http)
        storage.clear()
        with pytest.raises(SessionKitError, match=r"await store\.aget\(request\)"):
            await http.get("/too_early", headers={"cookie": cookie})
    assert storage.calls == {}  # and it never read synchronously on the event loop


async def test_without_a_cookie_the_session_must_be_loaded_all_the_same(
    store: Store, storage: CountingStorage
) -> None:
    """A handler that forgot ``await store.aget(request)`` fails on its first request, not
    only once a visitor comes back with a cookie (which would pass every test run without
    one and break in production)."""
    transport = httpx.ASGITransport(app=_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        with pytest.raises(SessionKitError, match=r"await store\.aget\(request\)"):
            await http.get("/too_early")
        reply = await http.get("/whoami")  # loaded with aget: nothing to read, fresh
    assert reply.text == "None" and storage.calls == {}


async def test_two_tasks_loading_one_session_keep_what_the_first_did(
    store: Store, storage: CountingStorage
) -> None:
    """Both await ``store.aget``; the second load lands after the first task wrote: it must
    not bring back the stored copy over the first task's change."""
    import asyncio

    from starlette.routing import Route

    async def gather(request: Request) -> PlainTextResponse:
        async def first() -> None:
            session = await store.aget(request)
            session["cart"] = "3 items"

        async def second() -> None:
            await asyncio.sleep(0)
            await store.aget(request)

        await asyncio.gather(first(), second())
        return PlainTextResponse(str(request.session.get("cart")))

    app = _app(store)
    app.router.routes.append(Route("/gather", gather))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        cookie = await _login(http)
        reply = await http.get("/gather", headers={"cookie": cookie})
    assert reply.text == "3 items"
    sid = cookie.split("=", 1)[1]
    stored = store.get_by_id(sid)
    assert stored is not None and stored.get("cart") == "3 items" and stored["user"] == "ada"
