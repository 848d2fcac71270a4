"""Storage failures and lost races, through both middlewares (security.md 20, 21; api.md).

A storage outage answers 503 with no ``Set-Cookie`` (nobody is logged out by it) and is logged
with the driver's error; requests that need no storage keep being served.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from sessionkit import SessionGone, SessionKitError, StorageError, Store
from sessionkit.asgi import SessionMiddleware as ASGIMiddleware
from sessionkit.wsgi import SessionMiddleware as WSGIMiddleware
from tests.web._support import (
    Browser,
    Client,
    CountingStorage,
    FakeClock,
    MakeClient,
    Reply,
    WSGIClient,
    failure_logs,
    make_store,
)


def assert_unavailable(reply: Reply) -> None:
    assert reply.status == 503
    assert reply.header("set-cookie") == []
    assert reply.header("content-type") == ["text/plain; charset=utf-8"]
    assert "storage" in reply.text


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Failures are logged with their traceback at DEBUG (the WARNING line has none)."""
    caplog.set_level(logging.DEBUG, logger="sessionkit")


def assert_logged_with_driver_error(caplog: pytest.LogCaptureFixture) -> None:
    lines, tracebacks = failure_logs(caplog)
    assert lines and "ConnectionError" in lines[-1].getMessage(), caplog.text
    assert tracebacks, caplog.text
    exc_info = tracebacks[-1].exc_info
    assert exc_info is not None and isinstance(exc_info[1], StorageError)
    assert isinstance(exc_info[1].__cause__, ConnectionError)  # the driver's exception


async def _logged_in(client: Client) -> Browser:
    browser = Browser(client)
    await browser.get("/set?user=ada")
    assert browser.value is not None
    return browser


async def test_load_failure_answers_503(
    client: Client, storage: CountingStorage, caplog: pytest.LogCaptureFixture
) -> None:
    browser = await _logged_in(client)
    storage.down = True
    reply = await browser.get("/get?k=user")
    assert_unavailable(reply)
    assert_logged_with_driver_error(caplog)
    storage.down = False
    assert (await browser.get("/get?k=user")).text == '"ada"'  # not logged out by the outage


async def test_save_failure_answers_503_and_writes_nothing(
    client: Client, storage: CountingStorage, caplog: pytest.LogCaptureFixture
) -> None:
    browser = await _logged_in(client)
    storage.failing = frozenset({"replace", "replace_if", "set"})
    assert_unavailable(await browser.get("/set?user=bob"))
    assert_logged_with_driver_error(caplog)
    storage.failing = frozenset()
    assert (await browser.get("/get?k=user")).text == '"ada"'


async def test_requests_without_a_cookie_are_served_while_down(
    client: Client, storage: CountingStorage
) -> None:
    storage.down = True
    assert (await client.get("/noop")).status == 200
    reply = await client.get("/get?k=user")
    assert (reply.status, reply.text) == (200, "null")
    assert_unavailable(await client.get("/count"))  # a write needs the storage


async def test_untouched_route_with_a_cookie_while_down(
    client: Client, storage: CountingStorage
) -> None:
    browser = await _logged_in(client)
    storage.down = True
    reply = await browser.get("/noop")
    # ASGI tried to read before the app ran, WSGI reads on first use: either way, served.
    assert (reply.status, reply.text) == (200, "untouched")
    assert reply.header("set-cookie") == [] and reply.header("vary") == []
    assert_unavailable(await browser.get("/get?k=user"))
    storage.down = False
    assert (await browser.get("/get?k=user")).text == '"ada"'


async def test_session_gone_writes_nothing_and_answers_normally(
    make_client: MakeClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    browser = await _logged_in(make_client(store))

    # the same app, but another request logs the user out while this one runs
    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        session = scope["session"]
        await store.adelete(session.id)
        session["user"] = "mallory"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["sessionkit.session"]
        store.delete(session.id)
        session["user"] = "mallory"
        start_response("200 OK", [])
        return [b"done"]

    client = browser.client
    raw = ASGIMiddleware(asgi, store) if client.kind == "asgi" else WSGIMiddleware(wsgi, store)
    racer = Browser(type(client)(raw))  # type: ignore[call-arg]
    racer.value = browser.value
    caplog.set_level(logging.INFO, logger="sessionkit")
    reply = await racer.get("/")
    assert (reply.status, reply.text) == (200, "done")
    assert reply.header("set-cookie") == []
    assert reply.header("vary") == ["Cookie"]
    assert browser.value is not None and store.get_by_id(browser.value) is None  # not resurrected
    assert any(
        r.levelno == logging.INFO and "destroyed or regenerated" in r.getMessage()
        for r in caplog.records
    )


async def test_too_large_answers_500_and_writes_nothing(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    client = make_client(make_store(clock, storage, max_size=64))
    reply = await client.get("/set?big=" + "x" * 100)
    assert reply.status == 500 and reply.header("set-cookie") == []
    assert storage.writes == 0


# -- failures at awkward moments, one middleware at a time --------------------------------------


async def test_asgi_app_raising_storage_error_before_start(store: Store) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise StorageError("the app's own storage call failed")

    sent = await _drive_asgi(ASGIMiddleware(app, store))
    assert sent[0]["status"] == 503
    assert all(name != b"set-cookie" for name, _ in sent[0]["headers"])


async def test_asgi_failure_after_the_response_started_is_only_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["session"]["n"] = 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise StorageError("failed mid-stream")

    sent = await _drive_asgi(ASGIMiddleware(app, store))  # does not raise
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert "failed mid-stream" in caplog.text


async def test_asgi_replaced_response_drops_the_apps_body(
    store: Store, storage: CountingStorage
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["session"]["n"] = 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"secret", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    storage.down = True
    sent = await _drive_asgi(ASGIMiddleware(app, store))
    assert [m.get("status") for m in sent] == [503, None]
    assert b"secret" not in b"".join(m.get("body", b"") for m in sent)


async def test_asgi_save_failure_never_raises_into_the_app(
    store: Store, storage: CountingStorage
) -> None:
    # An app (or a middleware between) that swallows errors from send() still answers 503.
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["session"]["n"] = 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except Exception:
            pytest.fail("send() raised into the app")
        await send({"type": "http.response.body", "body": b"secret"})

    storage.down = True
    sent = await _drive_asgi(ASGIMiddleware(app, store))
    assert sent[0]["status"] == 503 and len(sent) == 2


async def test_asgi_websocket_load_failure_closes(store: Store, storage: CountingStorage) -> None:
    sid = store.new_id()
    storage.down = True

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    scope = {"type": "websocket", "headers": [(b"cookie", f"session_id={sid}".encode())]}
    sent = await _drive_asgi(ASGIMiddleware(app, store), scope)
    assert sent == [{"type": "websocket.close", "code": 1011}]


async def test_asgi_lifespan_passes_through(store: Store, storage: CountingStorage) -> None:
    seen = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await _drive_asgi(ASGIMiddleware(app, store), {"type": "lifespan"})
    assert seen == ["lifespan"] and storage.calls == {}


async def _drive_asgi(app: Any, scope: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope or {"type": "http", "headers": [], "query_string": b""}, receive, send)
    return sent


def _generator_app(fail_mid_stream: bool) -> Any:
    """A WSGI app that calls start_response only while its body is iterated."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        environ["sessionkit.session"]["n"] = 1
        start_response("200 OK", [("content-type", "text/plain")])
        yield b"first "
        if fail_mid_stream:
            raise StorageError("failed mid-stream")
        yield b"second"

    return app


async def test_wsgi_generator_app_save_failure_answers_503(
    store: Store, storage: CountingStorage
) -> None:
    client = WSGIClient(WSGIMiddleware(_generator_app(False), store))
    assert (await client.get("/")).text == "first second"
    storage.down = True
    reply = await client.get("/")
    assert_unavailable(reply)
    assert "first" not in reply.text


async def test_wsgi_failure_mid_stream_reaches_the_server(store: Store) -> None:
    """The body broke after its headers left: the server must see it (and end the response
    as broken), not receive a short body that looks complete. See test_wsgi_edges.py."""
    client = WSGIClient(WSGIMiddleware(_generator_app(True), store))
    with pytest.raises(StorageError, match="failed mid-stream"):
        await client.get("/")


async def test_wsgi_closes_a_replaced_apps_iterable(store: Store, storage: CountingStorage) -> None:
    closed = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"secret"

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["sessionkit.session"]["n"] = 1
        start_response("200 OK", [])
        return Body()

    storage.down = True
    reply = await WSGIClient(WSGIMiddleware(app, store)).get("/")
    assert reply.status == 503 and "secret" not in reply.text
    assert closed == [True]


def test_failure_classes_are_library_errors() -> None:
    assert issubclass(StorageError, SessionKitError) and issubclass(SessionGone, SessionKitError)


async def test_failed_renewal_serves_the_read_and_logs(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Writes refused while the reads work (a read-only replica, a full disk): a request that
    only reads its session is served; its due renewal is skipped, logged, and tried again."""
    store = make_store(clock, storage, expiration=timedelta(minutes=10))
    browser = await _logged_in(make_client(store))
    sid = browser.value
    clock.advance(360)  # 4 of 10 minutes left: this read is due for renewal
    storage.failing = frozenset({"replace", "replace_if", "set", "touch"})
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await browser.get("/get?k=user")
    assert (reply.status, reply.text) == (200, '"ada"')
    assert reply.header("set-cookie") == [] and reply.header("vary") == ["Cookie"]
    assert "renewing session" in caplog.text and str(sid) not in caplog.text
    assert storage.calls["replace_if"] == 1  # it was tried
    # a change still needs the storage: that request answers 503, as before
    assert_unavailable(await browser.get("/set?user=bob"))
    storage.failing = frozenset()
    reply = await browser.get("/get?k=user")  # writes are back: renewed now
    assert reply.text == '"ada"' and reply.cookie.value == sid


async def test_a_renewal_is_not_held_to_max_size(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """A record saved a few bytes under ``max_size`` grows by a longer time stamp when it is
    renewed, and ``max_size`` may have been lowered since: a page view that only reads its
    session is renewed all the same, never answered with a 500."""
    store = make_store(clock, storage, expiration=timedelta(minutes=10))
    browser = await _logged_in(make_client(store))
    sid = browser.value
    lowered = make_store(clock, storage, expiration=timedelta(minutes=10), max_size=64)
    reader = Browser(make_client(lowered))
    reader.value = sid
    clock.advance(360)  # 4 of 10 minutes left: due for renewal
    reply = await reader.get("/get?k=user")
    assert (reply.status, reply.text) == (200, '"ada"')
    assert reply.cookie.value == sid  # renewed, cookie refreshed
    changed = await reader.get("/set?more=" + "x" * 64)
    assert changed.status == 500  # a change is still held to max_size
