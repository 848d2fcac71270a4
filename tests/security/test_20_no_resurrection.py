"""Requirement 20: a save never resurrects a session destroyed or regenerated away meanwhile.

The documented behaviour (``api.md``, ``Store._saved``, ``Finisher.finish``): the core saves a
session it loaded with the storage's conditional ``replace`` (a write only if the record still
lives); when the record is gone, ``save()`` writes nothing and raises ``SessionGone``, and the
middleware, whose own end-of-request save that is, answers the application's response normally,
without ``Set-Cookie`` (``Vary: Cookie`` only), and logs it at INFO.

Every first-party backend implements ``replace`` atomically on its server (memory: under its
lock; SQLite: ``UPDATE ... WHERE key = ? AND live``; Redis: ``SET ... XX``; Mongo:
``update_one`` on the live document), so the promise holds under real races too. A storage
without ``replace`` gets the core's ``touch``-then-``set`` fallback, which only narrows the race:
the racing tests below hold it to the strict promise only when the storage is conditional, and
require every first-party backend to be.

``tests/web/test_failures.py`` already covers a ``store.delete()`` made inside the racing app;
here the interloper is a real second request through the same middleware, the renewal write,
a second save after ``SessionGone``, and threads racing saves against destroys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from sessionkit import ConditionalStorage, Session, SessionGone, Store
from sessionkit.asgi import Receive, Scope, Send
from sessionkit.asgi import SessionMiddleware as ASGIMiddleware
from sessionkit.testing import FakeClock
from sessionkit.wsgi import SessionMiddleware as WSGIMiddleware
from tests.security._faults import in_threads, wsgi_get
from tests.web._support import (
    ASGIClient,
    Browser,
    Client,
    CountingStorage,
    MakeClient,
    Reply,
    WSGIClient,
    asgi_client,
    wsgi_app,
)

#: The first-party plugins, and the Redis plugin on a Cluster, behind Sentinel and cached.
FIRST_PARTY = (
    "memory", "sqlite", "redis", "mongo", "mysql", "postgres",
    "redis-cluster", "redis-sentinel", "redis-cached",
)  # fmt: skip
#: The lifecycle calls that delete the record a concurrent request still holds.
REMOVALS = ("destroy", "regenerate", "reset")


def _cookie(sid: str) -> str:
    return f"session_id={sid}"


async def _logged_in(client: Client) -> str:
    browser = Browser(client)
    reply = await browser.get("/set?user=ada")
    assert reply.status == 200 and browser.value is not None
    return browser.value


#: What the racing app does once the interloper has run: (session, SessionGone seen) -> None.
Finish = Callable[[Session, list[bool]], None]


def _write_mallory(session: Session, gone: list[bool]) -> None:
    session["user"] = "mallory"


def _read_only(session: Session, gone: list[bool]) -> None:
    pass


def _save_twice(session: Session, gone: list[bool]) -> None:
    """An application that saves explicitly, catches ``SessionGone`` and goes on writing."""
    session["cart"] = 1
    try:
        session.save()
    except SessionGone:
        gone.append(True)
    session["seen"] = 1


def _racing_client(
    kind: str, store: Store, action: str, finish: Finish, log: list[Reply], gone: list[bool]
) -> Client:
    """A client whose app reads its session, then lets *another request* of the same browser
    run ``/{action}`` on it through the same store and middleware, then calls ``finish``.

    The racer's own end-of-request save comes last, after the interloper's has landed: the
    worst order for it, made deterministic.
    """
    if kind == "asgi":
        other = asgi_client(store)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            session = scope["session"]
            seen = session.get("user")
            log.append(await other.get(f"/{action}", cookie=_cookie(session.id)))
            finish(session, gone)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": f"done {seen}".encode()})

        return ASGIClient(ASGIMiddleware(app, store))

    other_app = WSGIMiddleware(wsgi_app(store), store)

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["sessionkit.session"]
        seen = session.get("user")
        log.append(wsgi_get(other_app, f"/{action}", _cookie(session.id)))
        finish(session, gone)
        start_response("200 OK", [("content-type", "text/plain")])
        return [f"done {seen}".encode()]

    return WSGIClient(WSGIMiddleware(wsgi, store))


def _check_interloper(action: str, reply: Reply, old: str, store: Store) -> None:
    """The interloper's request did what its lifecycle call promises (api.md's table)."""
    assert reply.status == 200
    if action == "regenerate":  # data kept under a new id, the racer's change nowhere
        new = reply.cookie.value
        assert new != old
        moved = store.get_by_id(new)
        assert moved is not None and dict(moved.items()) == {"user": "ada"}
    else:  # destroy; reset with nothing saved afterwards: the cookie is expired
        assert reply.cookie.expired


@pytest.mark.parametrize("action", REMOVALS)
async def test_save_after_another_requests_removal_writes_nothing(
    make_client: MakeClient, store: Store, action: str, caplog: pytest.LogCaptureFixture
) -> None:
    old = await _logged_in(make_client(store))
    log: list[Reply] = []
    racer = _racing_client(make_client(store).kind, store, action, _write_mallory, log, [])
    caplog.set_level(logging.INFO, logger="sessionkit")
    reply = await racer.get("/", cookie=_cookie(old))
    assert (reply.status, reply.text) == (200, "done ada")  # answered normally
    assert reply.header("set-cookie") == []  # no cookie for a session that is gone
    assert reply.header("vary") == ["Cookie"]
    assert store.get_by_id(old) is None  # not resurrected
    _check_interloper(action, log[0], old, store)
    assert any(
        r.levelno == logging.INFO and "destroyed or regenerated" in r.getMessage()
        for r in caplog.records
    )


async def test_renewal_after_another_requests_destroy_writes_nothing(
    make_client: MakeClient, store: Store, clock: FakeClock
) -> None:
    """A request that only reads renews a session past half its lifetime: that write too is
    conditional, so it cannot bring back what a logout removed meanwhile."""
    client = make_client(store)
    old, control = await _logged_in(client), await _logged_in(client)
    clock.advance(store.config.expiration * 0.6)
    renewed = await client.get("/get?k=user", cookie=_cookie(control))
    assert renewed.cookie.value == control  # without a race, this read does write
    log: list[Reply] = []
    racer = _racing_client(client.kind, store, "destroy", _read_only, log, [])
    reply = await racer.get("/", cookie=_cookie(old))
    assert (reply.status, reply.text) == (200, "done ada")
    assert reply.header("set-cookie") == []
    assert store.get_by_id(old) is None
    assert log[0].cookie.expired


async def test_second_save_after_session_gone_does_not_resurrect(
    make_client: MakeClient, store: Store
) -> None:
    """``save()`` raised ``SessionGone``; the app caught it and went on writing. Neither its
    next save nor the middleware's may write the destroyed id back."""
    old = await _logged_in(make_client(store))
    gone: list[bool] = []
    racer = _racing_client(make_client(store).kind, store, "destroy", _save_twice, [], gone)
    reply = await racer.get("/", cookie=_cookie(old))
    assert gone == [True]
    assert reply.status == 200
    assert store.get_by_id(old) is None, "the destroyed session was written back under its id"
    assert all(c.value != old for c in reply.cookies)


# -- the Store alone: another Session object, or store.delete, removes the record -------------


def _remove(store: Store, sid: str, how: str) -> None:
    if how == "store.delete":
        store.delete(sid)
        return
    other = store.load(sid)
    assert not other.fresh
    getattr(other, how)()
    other.save()  # regenerate: saves under the new id; destroy/reset: nothing left to save


async def _aremove(store: Store, sid: str, how: str) -> None:
    if how == "store.delete":
        await store.adelete(sid)
        return
    other = await store.aload(sid)
    assert not other.fresh
    await getattr(other, "a" + how)()
    await other.asave()


def _saved(store: Store) -> str:
    session = store.load(None)
    session["user"] = "ada"
    session.save()
    return session.id


@pytest.mark.parametrize("how", ["store.delete", *REMOVALS])
def test_store_save_after_removal_raises_session_gone(
    store: Store, storage: CountingStorage, how: str
) -> None:
    sid = _saved(store)
    racer = store.load(sid)
    assert not racer.fresh
    _remove(store, sid, how)
    storage.clear()
    racer["user"] = "mallory"
    with pytest.raises(SessionGone):
        racer.save()
    assert storage.calls["set"] == 0  # the only write tried was the conditional one
    assert store.get_by_id(sid) is None


@pytest.mark.parametrize("how", ["store.delete", *REMOVALS])
async def test_store_asave_after_removal_raises_session_gone(
    store: Store, storage: CountingStorage, how: str
) -> None:
    sid = _saved(store)
    racer = await store.aload(sid)
    assert not racer.fresh
    await _aremove(store, sid, how)
    storage.clear()
    racer["user"] = "mallory"
    with pytest.raises(SessionGone):
        await racer.asave()
    assert storage.calls["set"] == 0
    assert await store.aget_by_id(sid) is None


def test_store_second_save_after_session_gone_does_not_resurrect(store: Store) -> None:
    """A caller that catches ``SessionGone`` and saves again (a retry, or more writes) must not
    write the removed id back: the record is gone for this session object for good."""
    sid = _saved(store)
    racer = store.load(sid)
    store.delete(sid)
    racer["user"] = "mallory"
    with pytest.raises(SessionGone):
        racer.save()
    racer["retry"] = 1
    with contextlib.suppress(SessionGone):
        racer.save()
    assert store.get_by_id(sid) is None, "a second save() wrote the removed id back"


async def test_store_second_asave_after_session_gone_does_not_resurrect(store: Store) -> None:
    sid = _saved(store)
    racer = await store.aload(sid)
    await store.adelete(sid)
    racer["user"] = "mallory"
    with pytest.raises(SessionGone):
        await racer.asave()
    racer["retry"] = 1
    with contextlib.suppress(SessionGone):
        await racer.asave()
    assert await store.aget_by_id(sid) is None, "a second asave() wrote the removed id back"


def test_first_party_backends_are_conditional(backend: str, storage: CountingStorage) -> None:
    """What the strict racing tests below rely on: every first-party storage has ``replace``."""
    assert backend in FIRST_PARTY
    assert isinstance(storage.inner, ConditionalStorage)


# -- real races: threads and tasks interleave saves and removals on one id ---------------------

ROUNDS = 8
SAVERS = 4


def _race_round(store: Store, sid: str, delay: float) -> list[str]:
    """``SAVERS`` threads save their loaded copy of ``sid`` in a loop until ``SessionGone``;
    one more thread deletes the record ``delay`` seconds after they were released."""
    loaded = [store.load(sid) for _ in range(SAVERS)]
    assert not any(s.fresh for s in loaded)

    def work(index: int) -> str:
        if index == SAVERS:
            time.sleep(delay)
            store.delete(sid)
            return "destroyed"
        session, deadline = loaded[index], time.monotonic() + 20
        n = 0
        while time.monotonic() < deadline:
            n += 1
            session["n"] = n
            try:
                session.save()
            except SessionGone:
                return "gone"
        return "never gone"

    return in_threads(SAVERS + 1, work)


def test_threads_racing_saves_and_destroys_never_resurrect(
    store: Store, storage: CountingStorage
) -> None:
    conditional = isinstance(storage.inner, ConditionalStorage)
    for round_ in range(ROUNDS):
        sid = _saved(store)
        outcomes = _race_round(store, sid, 0.001 * (round_ % 4))
        raw = storage.inner.get(store.storage_key(sid))
        if conditional:
            assert raw is None, f"round {round_}: a save resurrected the destroyed record"
            # Every saver met the removal: each save after it was refused, not written.
            assert outcomes == ["gone"] * SAVERS + ["destroyed"]
        else:  # touch-then-set narrows the race but cannot close it: clean up, promise nothing
            store.delete(sid)


@pytest.mark.parametrize("action", ["destroy", "regenerate"])
def test_wsgi_requests_racing_a_removal_never_resurrect(
    store: Store, storage: CountingStorage, action: str
) -> None:
    app = WSGIMiddleware(wsgi_app(store), store)
    first = wsgi_get(app, "/count")
    old = first.cookie.value
    writers = 6

    def work(index: int) -> list[Reply]:
        if index == writers:
            time.sleep(0.005)
            return [wsgi_get(app, f"/{action}", _cookie(old))]
        return [wsgi_get(app, "/count", _cookie(old)) for _ in range(10)]

    results = in_threads(writers + 1, work)
    _check_race(store, storage, old, action, [r for rs in results[:writers] for r in rs])
    _check_removal(store, action, results[writers][0], old)


@pytest.mark.parametrize("action", ["destroy", "regenerate"])
async def test_asgi_requests_racing_a_removal_never_resurrect(
    store: Store, storage: CountingStorage, action: str
) -> None:
    client = asgi_client(store)
    old = (await client.get("/count")).cookie.value
    counts = [client.get("/count", cookie=_cookie(old)) for _ in range(40)]
    removal = client.get(f"/{action}", cookie=_cookie(old))
    replies = await asyncio.gather(*counts[:20], removal, *counts[20:])
    _check_race(store, storage, old, action, [*replies[:20], *replies[21:]])
    _check_removal(store, action, replies[20], old)


def _check_race(
    store: Store, storage: CountingStorage, old: str, action: str, counts: list[Reply]
) -> None:
    for reply in counts:
        assert reply.status == 200, (reply.status, reply.text)
        for cookie in reply.cookies:
            # A request that loaded after the removal starts afresh: new id, counter 1 --
            # the removed session's data is never carried over.
            if cookie.value != old:
                assert reply.text == "1", reply.text
    if isinstance(storage.inner, ConditionalStorage):
        assert store.get_by_id(old) is None, f"a save resurrected the session after {action}"


def _check_removal(store: Store, action: str, reply: Reply, old: str) -> None:
    assert reply.status == 200
    if action == "regenerate":
        moved = store.get_by_id(reply.cookie.value)
        assert moved is not None and type(moved["n"]) is int
    else:
        assert reply.cookie.expired


# -- regenerate(), emptying and renewal racing another request (AtomicStorage) -----------------


def _regenerate_then(value: str | None, ids: list[str]) -> Finish:
    """The racer's own regenerate() (a log-in), then ``user=value`` when given."""

    def finish(session: Session, gone: list[bool]) -> None:
        session.regenerate()
        ids.append(session.id)
        if value is not None:
            session["user"] = value

    return finish


@pytest.mark.parametrize("action", ["destroy", "regenerate"])
async def test_regenerate_after_another_requests_removal_carries_nothing_over(
    make_client: MakeClient, store: Store, action: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A log-out (or a log-in elsewhere) landed first: this regenerate() must not bring the
    session's data back under an id of its own, nor expire the cookie the other one set."""
    old = await _logged_in(make_client(store))
    log: list[Reply] = []
    ids: list[str] = []
    racer = _racing_client(
        make_client(store).kind, store, action, _regenerate_then(None, ids), log, []
    )
    caplog.set_level(logging.INFO, logger="sessionkit")
    reply = await racer.get("/", cookie=_cookie(old))
    assert (reply.status, reply.text) == (200, "done ada")
    assert reply.header("set-cookie") == []  # nothing stored; the other response owns the cookie
    assert ids[0] != old and store.get_by_id(ids[0]) is None, "regenerate() copied the session"
    assert store.get_by_id(old) is None
    _check_interloper(action, log[0], old, store)  # a regenerating interloper alone kept it
    assert any("did not carry its data over" in r.getMessage() for r in caplog.records)


async def test_log_in_racing_a_log_out_starts_from_an_empty_session(
    make_client: MakeClient, store: Store
) -> None:
    browser = Browser(make_client(store))
    await browser.get("/set?user=ada&role=admin")
    old = browser.value
    assert old is not None
    ids: list[str] = []
    racer = _racing_client(
        make_client(store).kind, store, "destroy", _regenerate_then("bob", ids), [], []
    )
    reply = await racer.get("/", cookie=_cookie(old))
    assert reply.cookie.value == ids[0]
    fresh = store.get_by_id(ids[0])
    assert fresh is not None and dict(fresh.items()) == {"user": "bob"}, "ada's data came along"


def _empty(session: Session, gone: list[bool]) -> None:
    session.delete("user")  # a flash message popped: the session ends empty


async def test_emptying_after_another_requests_regenerate_leaves_its_cookie_alone(
    make_client: MakeClient, store: Store
) -> None:
    """The log-in's new cookie may reach the browser first: an expiry sent after it for the old
    id would delete it (same cookie name), logging the user out."""
    old = await _logged_in(make_client(store))
    log: list[Reply] = []
    racer = _racing_client(make_client(store).kind, store, "regenerate", _empty, log, [])
    reply = await racer.get("/", cookie=_cookie(old))
    assert reply.status == 200
    assert reply.header("set-cookie") == [], "the old id's expiry would delete the new cookie"
    _check_interloper("regenerate", log[0], old, store)


async def test_emptying_without_a_race_still_expires_the_cookie(
    make_client: MakeClient, store: Store
) -> None:
    old = await _logged_in(make_client(store))
    reply = await make_client(store).get("/delete?k=user", cookie=_cookie(old))
    assert reply.cookie.expired and store.get_by_id(old) is None


async def test_renewal_never_undoes_another_requests_save(
    make_client: MakeClient, store: Store, clock: FakeClock
) -> None:
    """A read-only request past half-life renews its session; a change another request saved
    meanwhile (a log-out removing a key, a switch of user) must stand, not be overwritten by
    the stale copy."""
    client = make_client(store)
    old = await _logged_in(client)
    clock.advance(store.config.expiration * 0.6)
    log: list[Reply] = []
    racer = _racing_client(client.kind, store, "set?user=bob", _read_only, log, [])
    reply = await racer.get("/", cookie=_cookie(old))
    assert (reply.status, reply.text) == (200, "done ada")
    assert log[0].status == 200
    after = store.get_by_id(old)
    assert after is not None and after["user"] == "bob", "the renewal wrote the stale copy back"
    assert reply.header("set-cookie") == []  # not renewed: the other save renewed it


def test_threads_regenerating_one_session_leave_one_copy(store: Store) -> None:
    """A thief replaying a stolen cookie races its owner's log-in: whoever regenerates first
    moves the data, the other starts empty. Never two live copies."""

    def regenerate(session: Session) -> str | None:
        session.regenerate()
        session.save()
        return session.id if session else None  # an empty session: it carried nothing

    for round_ in range(ROUNDS):
        sid = _saved(store)
        loaded = [store.load(sid) for _ in range(SAVERS)]
        new_ids = [i for i in in_threads(SAVERS, lambda n, s=loaded: regenerate(s[n])) if i]
        assert len(new_ids) == 1, f"round {round_}: {len(new_ids)} copies of one session"
        kept = store.get_by_id(new_ids[0])
        assert kept is not None and kept["user"] == "ada"
        assert store.get_by_id(sid) is None
