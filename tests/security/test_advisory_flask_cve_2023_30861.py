"""Regression for Flask CVE-2023-30861 (GHSA-m2qf-hxjv-5gpq): a response that refreshed the
session cookie without the session being otherwise accessed was sent without
``Vary: Cookie``, so a caching proxy could store it -- ``Set-Cookie`` included -- and hand one
visitor's session cookie to the next visitors of that URL.

sessionkit's rule (``sessionkit/_response.py``): every response of a request that used its
session carries ``Vary`` naming the request header the id travels in -- ``Cookie`` for the
cookie transport, the header's own name for ``key_lookup="header:NAME"``, and nothing for the
query transport, where the id is part of the URL a cache keys on anyway. An application's own
``Vary`` is extended, never repeated, and the rule holds whatever the status (a ``304`` from a
conditional request is stored by caches exactly like the ``200`` it revalidates), on a lost
race, and under Flask.

Each test runs through the ASGI and the WSGI middleware (or Flask); those whose outcome
depends on the storage (a renewal, a lost race, a lifecycle write) run on every backend, the
others on the memory storage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from sessionkit import Session, Store
from sessionkit.testing import FakeClock
from tests.web._support import (
    Browser,
    Client,
    CountingStorage,
    MakeClient,
    Reply,
    asgi_client,
    make_store,
    wsgi_client,
)

# -- a page that uses its session as told, then answers with any status and Vary lines ---------
#
#   use=read|write|gone|none   gone: write, then the record vanishes (another request's destroy)
#   status=304                 the status to answer with
#   vary=...&vary=...          the application's own Vary lines, in order
#   vary_name=VARY             how the application spells the header's name


def _query(raw: str) -> tuple[str, int, str, list[str]]:
    q = parse_qs(raw, keep_blank_values=True)
    use = q.get("use", ["read"])[0]
    return use, int(q.get("status", ["200"])[0]), q.get("vary_name", ["Vary"])[0], q.get("vary", [])


def _use(session: Session, use: str) -> str | None:
    """Use ``session``; return the id whose record must vanish (``use=gone``)."""
    if use == "read":
        session.get("user")
    elif use in ("write", "gone"):
        session["n"] = session.get("n", 0) + 1
        return session.id if use == "gone" else None
    return None


def page_asgi(store: Store) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        use, status, vary_name, vary = _query(scope["query_string"].decode())
        gone = _use(await store.aget(scope), use)
        if gone is not None:
            await store.adelete(gone)
        headers = [(vary_name.encode(), v.encode()) for v in vary]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if status == 304 else b"page"})

    return app


def page_wsgi(store: Store) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        use, status, vary_name, vary = _query(environ.get("QUERY_STRING", ""))
        gone = _use(store.get(environ), use)
        if gone is not None:
            store.delete(gone)
        start_response(f"{status} X", [(vary_name, v) for v in vary])
        return [b"" if status == 304 else b"page"]

    return app


@pytest.fixture
def page(make_client: MakeClient) -> Callable[[Store], Client]:
    """Builds the page above under the middleware of this run."""
    if make_client is asgi_client:
        return lambda store: asgi_client(store, page_asgi(store))
    return lambda store: wsgi_client(store, page_wsgi(store))


def vary_tokens(reply: Reply) -> list[str]:
    return [t.strip().lower() for line in reply.header("vary") for t in line.split(",")]


# -- the advisory's own case ---------------------------------------------------------------------


async def test_a_cookie_refreshed_by_a_read_only_request_comes_with_vary_cookie(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """The CVE exactly: nothing modified, the cookie refreshed (sessionkit renews a session read
    past half its lifetime), and the response must not be cacheable for other visitors."""
    store = make_store(clock, storage, expiration=timedelta(minutes=10))
    browser = Browser(make_client(store))
    sid = (await browser.get("/set?user=ada")).cookie.value
    clock.advance(6 * 60)  # 4 of 10 minutes left: the next read renews
    storage.clear()
    reply = await browser.get("/get?k=user")
    assert storage.writes == 1  # renewed: the precondition of the advisory holds
    assert reply.cookie.value == sid  # the Set-Cookie a cache must not share ...
    assert vary_tokens(reply) == ["cookie"]  # ... and the header that forbids it


@pytest.mark.parametrize(
    "path",
    ["/set?a=1", "/count", "/save?a=1", "/expiry?s=60", "/regenerate", "/reset", "/destroy"],
)
async def test_every_response_setting_the_session_cookie_varies_by_cookie(
    client: Client, path: str
) -> None:
    browser = Browser(client)
    await browser.get("/set?user=ada")
    reply = await browser.get(path)
    assert [c.name for c in reply.cookies] == ["session_id"]
    assert vary_tokens(reply).count("cookie") == 1


# -- the application's own Vary --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_vary", "vary_name", "expected"),
    [
        (["Accept-Encoding"], "Vary", ["Accept-Encoding, Cookie"]),
        (["Accept-Encoding"], "VARY", ["Accept-Encoding, Cookie"]),
        (
            ["Accept-Encoding", "Accept-Language"],
            "Vary",
            ["Accept-Encoding, Cookie", "Accept-Language"],
        ),
        (["Origin", "COOKIE"], "Vary", ["Origin", "COOKIE"]),
        (["Accept-Encoding,cookie"], "vary", ["Accept-Encoding,cookie"]),
        (["*"], "Vary", ["*, Cookie"]),
    ],
    ids=["one", "upper-name", "two-lines", "already-there", "no-space", "star"],
)
async def test_the_apps_own_vary_is_extended_with_cookie_never_repeated(
    page: Callable[[Store], Client],
    clock: FakeClock,
    app_vary: list[str],
    vary_name: str,
    expected: list[str],
) -> None:
    query = "&".join(f"vary={v}" for v in app_vary) + f"&vary_name={vary_name}"
    reply = await page(make_store(clock)).get(f"/?use=read&{query}")
    assert reply.header("vary") == expected
    assert vary_tokens(reply).count("cookie") == 1


# -- other statuses and paths ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [304, 204, 302, 404, 500])
@pytest.mark.parametrize("use", ["read", "write"])
async def test_vary_cookie_whatever_the_status(
    page: Callable[[Store], Client], clock: FakeClock, status: int, use: str
) -> None:
    browser = Browser(page(make_store(clock)))
    await browser.get("/?use=write")
    reply = await browser.get(f"/?use={use}&status={status}&vary=Accept-Encoding")
    assert reply.status == status
    assert vary_tokens(reply) == ["accept-encoding", "cookie"]


async def test_a_lost_race_answers_without_a_cookie_but_with_vary_cookie(
    page: Callable[[Store], Client], store: Store
) -> None:
    """The session was destroyed by another request while this one changed it: nothing is
    written and no cookie sent, yet the page was built from the session."""
    browser = Browser(page(store))
    sid = (await browser.get("/?use=write")).cookie.value
    reply = await browser.get("/?use=gone")
    assert reply.status == 200
    assert reply.header("set-cookie") == []
    assert store.get_by_id(sid) is None  # nothing resurrected
    assert vary_tokens(reply) == ["cookie"]


async def test_an_untouched_session_adds_no_vary_of_its_own(
    page: Callable[[Store], Client], clock: FakeClock
) -> None:
    """The converse, so the rule is "used", not "always": a page that never used its session
    is shared safely, and keeps the application's Vary as sent."""
    browser = Browser(page(make_store(clock)))
    await browser.get("/?use=write")
    reply = await browser.get("/?use=none&vary=Accept-Encoding")
    assert reply.header("vary") == ["Accept-Encoding"]
    assert reply.header("set-cookie") == []


# -- other transports ------------------------------------------------------------------------------


@pytest.mark.parametrize("app_vary", [[], ["Accept-Encoding"], ["x-session-id"]])
async def test_the_header_transport_varies_by_the_header_named_in_key_lookup(
    page: Callable[[Store], Client], clock: FakeClock, app_vary: list[str]
) -> None:
    store = make_store(clock, key_lookup="header:X-Session-Id")
    client = page(store)
    sid = (await client.get("/?use=write")).header("x-session-id")[0]
    query = "".join(f"&vary={v}" for v in app_vary)
    reply = await client.get(f"/?use=read{query}", headers={"X-Session-Id": sid})
    tokens = vary_tokens(reply)
    assert tokens.count("x-session-id") == 1 and "cookie" not in tokens


async def test_the_query_transport_adds_no_vary_the_url_already_keys_the_cache(
    page: Callable[[Store], Client], clock: FakeClock
) -> None:
    store = make_store(clock, key_lookup="query:sid")
    reply = await page(store).get("/?use=write&vary=Accept-Encoding")
    assert reply.header("vary") == ["Accept-Encoding"]


# -- Flask -----------------------------------------------------------------------------------------


def flask_app(store: Store) -> Any:
    import flask

    from sessionkit.flask import init_app

    app = flask.Flask(__name__)
    init_app(app, store)

    @app.get("/login")
    def login() -> str:
        flask.session["user"] = "ada"
        return "ok"

    @app.get("/read")
    def read() -> flask.Response:
        user = str(flask.session.get("user"))  # what a conditional GET would hash into an ETag
        status = int(flask.request.args.get("status", "200"))
        body = "" if status == 304 else user
        response = flask.Response(body, status=status)
        for v in flask.request.args.getlist("vary"):
            response.headers.add("Vary", v)
        return response

    return app


@pytest.mark.parametrize("status", [200, 304])
@pytest.mark.parametrize("app_vary", [[], ["Accept-Encoding"], ["Accept-Encoding", "cookie"]])
def test_flask_views_that_read_the_session_vary_by_cookie(
    clock: FakeClock, storage: CountingStorage, status: int, app_vary: list[str]
) -> None:
    store = make_store(clock, storage, expiration=timedelta(minutes=10))
    client = flask_app(store).test_client()
    client.get("/login")
    query = "".join(f"&vary={v}" for v in app_vary)
    reply = client.get(f"/read?status={status}{query}")
    assert reply.status_code == status
    tokens = [t.strip().lower() for v in reply.headers.getlist("Vary") for t in v.split(",")]
    assert tokens.count("cookie") == 1
    # and the CVE's case under Flask: a refresh of an unmodified session
    clock.advance(6 * 60)
    refreshed = client.get("/read")
    assert refreshed.headers.getlist("Set-Cookie")
    assert "cookie" in refreshed.headers["Vary"].lower()
