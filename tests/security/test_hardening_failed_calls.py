"""A lifecycle call whose storage work fails changes nothing (api.md, "Lifecycle, exactly").

Faults are injected between the two writes of one operation: ``regenerate()`` stores the new
record, then takes the old one, and either step may fail. The promise is the same everywhere:
the call raises :class:`~sessionkit.StorageError`, the session keeps its id, its data and its
record, the response carries no ``Set-Cookie``, and the client's cookie still opens the session
afterwards. On every backend, through both middlewares.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from sessionkit import StorageError, Store
from tests.web._support import (
    Browser,
    Client,
    CountingStorage,
    MakeClient,
    Reply,
    asgi_client,
    wsgi_client,
)
from tests.web.test_failures import assert_unavailable

LIFECYCLE = ("destroy", "reset", "regenerate")


async def _logged_in(client: Client) -> Browser:
    browser = Browser(client)
    await browser.get("/set?user=ada&cart=3")
    assert browser.value is not None
    return browser


def _live_records(storage: CountingStorage) -> int:
    count: int = storage.inner.count()  # type: ignore[attr-defined]
    return count


async def _assert_intact(browser: Browser, sid: str, storage: CountingStorage) -> None:
    """The client's cookie still opens the session it had, and nothing else was stored."""
    assert browser.value == sid, "the failed call changed the client's cookie"
    storage.failing = frozenset()
    assert (await browser.get("/all")).text == '{"cart": 3, "user": "ada"}'
    assert _live_records(storage) == 1, "a half-done call left a second record behind"


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param({"create", "set"}, id="new-record-write-refused"),
        pytest.param({"take"}, id="old-record-take-refused"),
    ],
)
async def test_regenerate_that_fails_keeps_the_old_session(
    client: Client, storage: CountingStorage, refused: set[str]
) -> None:
    """A log-in's ``regenerate()`` while the storage refuses writes (Redis at ``maxmemory``
    with ``noeviction``, a locked SQLite file): 503 without ``Set-Cookie``, and the visitor's
    old cookie still opens the old session. (It used to take the old record first and store
    the new one at response time, so a failed write left the cookie opening nothing.)"""
    browser = await _logged_in(client)
    sid = browser.value
    assert sid is not None
    storage.failing = frozenset(refused)  # reads work: the refusal hits the call itself
    assert_unavailable(await browser.get("/regenerate?then_user=bob"))
    await _assert_intact(browser, sid, storage)


@pytest.mark.parametrize("op", ["destroy", "reset"])
async def test_destroy_or_reset_that_fails_keeps_the_session(
    client: Client, storage: CountingStorage, op: str
) -> None:
    browser = await _logged_in(client)
    sid = browser.value
    assert sid is not None
    storage.failing = frozenset({"delete", "take"})
    assert_unavailable(await browser.get(f"/{op}"))
    await _assert_intact(browser, sid, storage)


# -- the session object itself --------------------------------------------------------------


@pytest.mark.parametrize(("op", "refused"), [("destroy", "delete"), ("reset", "delete")])
def test_a_failed_call_leaves_id_data_and_record_as_they_were(
    store: Store, storage: CountingStorage, op: str, refused: str
) -> None:
    session = store.load(None)
    session["user"] = "ada"
    session.save()
    sid = session.id
    loaded = store.get_by_id(sid)
    assert loaded is not None
    storage.failing = frozenset({refused})
    with pytest.raises(StorageError):
        getattr(loaded, op)()
    assert (loaded.id, dict(loaded), loaded.fresh) == (sid, {"user": "ada"}, False)
    storage.failing = frozenset()
    again = store.get_by_id(sid)
    assert again is not None and dict(again) == {"user": "ada"}
    assert _live_records(storage) == 1
    getattr(loaded, op)()  # and the call can be retried
    assert loaded.id != sid and store.get_by_id(sid) is None


@pytest.mark.parametrize("refused", ["create", "take"])
def test_a_regenerate_whose_save_fails_leaves_the_old_record(
    store: Store, storage: CountingStorage, refused: str
) -> None:
    """``regenerate()`` writes nothing itself; its save stores the new record, then takes the
    old one. Refused at either step, the save raises, the old record is as it was (the
    visitor's cookie still opens it), no second record is left, and the save can be retried."""
    session = store.load(None)
    session["user"] = "ada"
    session.save()
    sid = session.id
    loaded = store.get_by_id(sid)
    assert loaded is not None
    loaded.regenerate()
    new = loaded.id
    loaded["user"] = "ada, logged in"
    storage.failing = frozenset({refused})
    with pytest.raises(StorageError):
        loaded.save()
    assert (loaded.id, dict(loaded)) == (new, {"user": "ada, logged in"})
    storage.failing = frozenset()
    again = store.get_by_id(sid)
    assert again is not None and dict(again) == {"user": "ada"}
    assert _live_records(storage) == 1 and store.get_by_id(new) is None
    loaded.save()  # retried: the new record stored, the old one taken
    assert store.get_by_id(sid) is None
    stored = store.get_by_id(new)
    assert stored is not None and dict(stored) == {"user": "ada, logged in"}


@pytest.mark.parametrize("op", ["destroy", "reset", "save"])
async def test_a_failed_async_call_leaves_id_data_and_record_as_they_were(
    store: Store, storage: CountingStorage, op: str
) -> None:
    session = await store.aload(None)
    session["user"] = "ada"
    await session.asave()
    sid = session.id
    loaded = await store.aget_by_id(sid)
    assert loaded is not None
    if op == "save":  # a log-in: regenerate, then the save that writes it
        await loaded.aregenerate()
        sid = loaded.id
    storage.failing = frozenset({"create", "take", "delete"})
    with pytest.raises(StorageError):
        await getattr(loaded, "a" + op)()
    assert (loaded.id, dict(loaded)) == (sid, {"user": "ada"})
    storage.failing = frozenset()
    assert _live_records(storage) == 1


# -- an app that catches the error and answers anyway ----------------------------------------


def _catching_asgi(store: Store) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        session = scope["session"]
        op = scope["path"].strip("/")
        if op == "set":
            session["user"] = "ada"
            body = b"set"
        else:
            try:
                await getattr(session, "a" + op)()
                body = b"done"
            except StorageError:
                body = b"failed, carried on"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def _catching_wsgi(store: Store) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session = environ["sessionkit.session"]
        op = environ["PATH_INFO"].strip("/")
        if op == "set":
            session["user"] = "ada"
            body = b"set"
        else:
            try:
                getattr(session, op)()
                body = b"done"
            except StorageError:
                body = b"failed, carried on"
        start_response("200 OK", [("content-type", "text/plain")])
        return [body]

    return app


@pytest.mark.parametrize("op", LIFECYCLE)
async def test_an_app_that_carries_on_after_a_failed_call_sets_no_cookie(
    make_client: MakeClient, store: Store, storage: CountingStorage, op: str
) -> None:
    """The app catches the StorageError and answers 200: the response must not log the
    browser out (it used to expire the cookie after a failed ``reset()``) nor move it to an
    id whose record was never written. (``regenerate()`` itself writes nothing: the save at
    the end of the request fails, so that request answers 503, also without a cookie.)"""
    if make_client is asgi_client:
        client: Client = asgi_client(store, _catching_asgi(store))
    else:
        client = wsgi_client(store, _catching_wsgi(store))
    browser = Browser(client)
    await browser.get("/set")
    sid = browser.value
    assert sid is not None
    storage.failing = frozenset({"create", "take", "delete"})
    reply: Reply = await browser.get(f"/{op}")
    if op == "regenerate":
        assert_unavailable(reply)
    else:
        assert (reply.status, reply.text) == (200, "failed, carried on")
    assert reply.header("set-cookie") == []
    storage.failing = frozenset()
    again = store.get_by_id(sid)
    assert again is not None and dict(again) == {"user": "ada"}
