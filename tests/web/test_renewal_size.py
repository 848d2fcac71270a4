"""A renewal writes the record as it is stored, never a request's unsaved in-place changes.

A read-only request past half-life renews its session by rewriting it. It used to rewrite the
session's data *as the request left it*: a value changed in place (a list appended to, which
the session cannot see) went into the renewal, unchecked against ``max_size`` -- a 50 KB
record under ``max_size=2048`` -- after which every save of that session failed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sessionkit import Store
from sessionkit.asgi import SessionMiddleware as ASGIMiddleware
from sessionkit.wsgi import SessionMiddleware as WSGIMiddleware
from tests.web._support import (
    ASGIClient,
    Browser,
    CountingStorage,
    FakeClock,
    MakeClient,
    WSGIClient,
    asgi_client,
    make_store,
)

BIG = "x" * 50_000


def _asgi(store: Store) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        session, path = scope["session"], scope["path"]
        if path == "/start":
            session["items"] = [1, 2]
        elif path == "/peek":  # reads, and changes a value in place without saying so
            session["items"].append(BIG)
        elif path == "/add":
            session["items"] = [*session["items"], 3]
        body = repr(session.get("items")).encode()[:100]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return ASGIMiddleware(app, store)


def _wsgi(store: Store) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        session, path = environ["sessionkit.session"], environ["PATH_INFO"]
        if path == "/start":
            session["items"] = [1, 2]
        elif path == "/peek":
            session["items"].append(BIG)
        elif path == "/add":
            session["items"] = [*session["items"], 3]
        start_response("200 OK", [])
        return [repr(session.get("items")).encode()[:100]]

    return WSGIMiddleware(app, store)


async def test_a_renewal_never_writes_in_place_changes_past_max_size(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, expiration=timedelta(minutes=10), max_size=2048)
    asgi = make_client is asgi_client
    browser = Browser(ASGIClient(_asgi(store)) if asgi else WSGIClient(_wsgi(store)))
    await browser.get("/start")
    sid = browser.value
    assert sid is not None
    clock.advance(360)  # 4 of 10 minutes left: the next read is due for renewal
    storage.clear()
    reply = await browser.get("/peek")
    assert reply.status == 200 and storage.calls["replace_if"] == 1  # it was renewed
    stored = store.get_by_id(sid)
    assert stored is not None and stored["items"] == [1, 2]  # as stored: the renewal wrote no more
    # and the session keeps working: the next real change saves
    reply = await browser.get("/add")
    assert (reply.status, reply.text) == (200, "[1, 2, 3]")
    clock.advance(500)  # the renewal moved the expiry: alive past the first save's lifetime
    assert (await browser.get("/add")).text == "[1, 2, 3, 3]"
