"""Requirement 19: concurrent requests on one session never corrupt it, nor undo each other.

Many threads (WSGI middleware) or asyncio tasks (ASGI middleware) run a read-modify-write
(``/count``) on one session at once, on every backend. Two saves of one key: the later wins
(a counter loses increments, as with every peer) -- but nothing else is allowed: no exception,
no 5xx, every body parses, every write keeps the session's id, and the stored record always
decodes to what the saves wrote, never torn. With ``conflict="merge"`` (the default), a save
re-applies only its own request's changes on top of the stored record, so keys that different
requests change are never lost; with ``conflict="overwrite"`` the last save to land wins whole.
Distinct sessions hammered at once never see each other's data.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable
from typing import Any

import attrs

from sessionkit import Store
from sessionkit.wsgi import SessionMiddleware as WSGIMiddleware
from tests.security._faults import in_threads, wsgi_get
from tests.web._support import Reply, asgi_client, wsgi_app

THREADS = 8
PER_THREAD = 25
READERS = 2
TASKS = 50
SESSIONS = 8


def _counter_of(store: Store, sid: str) -> int:
    """The stored counter, read behind the middleware's back: the record must decode."""
    session = store.get_by_id(sid)
    assert session is not None, "the hammered session was lost"
    value = session["n"]
    assert type(value) is int, f"the counter decoded as {value!r}"
    return value


def _check_hammered(store: Store, sid: str, writes: list[Reply], total: int) -> int:
    """Check every property of one session hammered by ``total`` counting requests (the first,
    which created it, included); return the final counter."""
    written = {1}  # the value the creating request wrote
    for reply in writes:
        assert reply.status == 200, (reply.status, reply.text)
        n = int(reply.text)  # the body parses: the loaded record decoded
        assert 2 <= n <= total, n
        # The save kept the id: never a fresh session, never someone else's cookie.
        assert [(c.name, c.value) for c in reply.cookies] == [("session_id", sid)]
        written.add(n)
    final = _counter_of(store, sid)
    assert 1 <= final <= total
    # Last-writer-wins per save: the record is what one save wrote, never a mix.
    assert final in written, (final, sorted(written))
    return final


def _check_reads(replies: Iterable[Reply], total: int) -> None:
    for reply in replies:
        assert reply.status == 200, (reply.status, reply.text)
        value = json.loads(reply.text)
        assert type(value) is int and 1 <= value <= total, value
        assert reply.header("set-cookie") == []  # a read writes nothing (no renewal due)


def test_wsgi_threads_hammer_one_session(store: Store) -> None:
    app = WSGIMiddleware(wsgi_app(store), store)
    first = wsgi_get(app, "/count")
    assert (first.status, first.text) == (200, "1")
    sid = first.cookie.value
    cookie = f"session_id={sid}"

    def worker(index: int) -> list[Reply]:
        path = "/count" if index < THREADS else "/get?k=n"
        return [wsgi_get(app, path, cookie) for _ in range(PER_THREAD)]

    results = in_threads(THREADS + READERS, worker)
    total = 1 + THREADS * PER_THREAD
    final = _check_hammered(store, sid, [r for rs in results[:THREADS] for r in rs], total)
    _check_reads((r for rs in results[THREADS:] for r in rs), total)
    assert wsgi_get(app, "/get?k=n", cookie).text == str(final)


async def test_asgi_tasks_hammer_one_session(store: Store) -> None:
    client = asgi_client(store)
    first = await client.get("/count")
    assert (first.status, first.text) == (200, "1")
    sid = first.cookie.value
    cookie = f"session_id={sid}"
    writes = [client.get("/count", cookie=cookie) for _ in range(TASKS)]
    reads = [client.get("/get?k=n", cookie=cookie) for _ in range(TASKS // 5)]
    replies = await asyncio.gather(*writes, *reads)
    total = 1 + TASKS
    final = _check_hammered(store, sid, list(replies[:TASKS]), total)
    _check_reads(replies[TASKS:], total)
    assert (await client.get("/get?k=n", cookie=cookie)).text == str(final)


def test_wsgi_threads_on_distinct_sessions_never_cross(store: Store) -> None:
    app = WSGIMiddleware(wsgi_app(store), store)

    def worker(index: int) -> tuple[str, list[str]]:
        first = wsgi_get(app, f"/set?owner=t{index}")
        sid = first.cookie.value
        bodies = [wsgi_get(app, "/count", f"session_id={sid}").text for _ in range(PER_THREAD)]
        return sid, bodies

    results = in_threads(SESSIONS, worker)
    assert len({sid for sid, _ in results}) == SESSIONS  # every browser got its own id
    for index, (sid, bodies) in enumerate(results):
        # One browser's requests are sequential: its counter is exact, nothing is lost.
        assert bodies == [str(n) for n in range(1, PER_THREAD + 1)]
        session = store.get_by_id(sid)
        assert session is not None
        assert dict(session.items()) == {"owner": f"t{index}", "n": PER_THREAD}


async def test_asgi_tasks_on_distinct_sessions_never_cross(store: Store) -> None:
    client = asgi_client(store)
    rounds = 10

    async def browser(index: int) -> tuple[str, list[str]]:
        first = await client.get(f"/set?owner=t{index}")
        sid = first.cookie.value
        bodies = []
        for _ in range(rounds):
            bodies.append((await client.get("/count", cookie=f"session_id={sid}")).text)
        return sid, bodies

    results = await asyncio.gather(*(browser(i) for i in range(SESSIONS)))
    assert len({sid for sid, _ in results}) == SESSIONS
    for index, (sid, bodies) in enumerate(results):
        assert bodies == [str(n) for n in range(1, rounds + 1)]
        session = await store.aget_by_id(sid)
        assert session is not None
        assert dict(session.items()) == {"owner": f"t{index}", "n": rounds}


# -- the same rule one level down: Store.load / Session.set / save from many threads ----------


def _saved_session(store: Store) -> str:
    session = store.load(None)
    session["n"] = 0
    session.save()
    return session.id


def _threads_load_set_save(store: Store) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``THREADS`` threads each load one saved session, add one to its counter, set a key of
    their own and save, ``PER_THREAD`` times; return the stored record then, and every
    snapshot that was saved."""
    sid = _saved_session(store)
    written: list[dict[str, Any]] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for i in range(PER_THREAD):
            session = store.load(sid)
            assert session.id == sid and not session.fresh, "a live session was not loaded"
            n = session["n"]
            assert type(n) is int
            session["n"] = n + 1
            session[f"w{index}"] = i
            snapshot = dict(session.items())
            session.save()
            with lock:
                written.append(snapshot)

    in_threads(THREADS, worker)
    final = store.get_by_id(sid)
    assert final is not None
    return dict(final.items()), written


def test_store_level_threads_load_set_save(store: Store) -> None:
    _check_merged(*_threads_load_set_save(store))


async def test_store_level_tasks_aload_set_asave(store: Store) -> None:
    sid = _saved_session(store)
    written: list[dict[str, Any]] = []

    async def worker(index: int) -> None:
        for i in range(PER_THREAD):
            session = await store.aload(sid)
            assert session.id == sid and not session.fresh
            session["n"] = session["n"] + 1
            session[f"w{index}"] = i
            snapshot = dict(session.items())
            await session.asave()
            written.append(snapshot)

    await asyncio.gather(*(worker(i) for i in range(THREADS)))
    final = await store.aget_by_id(sid)
    assert final is not None
    _check_merged(dict(final.items()), written)


def _check_merged(record: dict[str, Any], written: list[dict[str, Any]]) -> None:
    """``conflict="merge"``: every writer's own key holds its last value (no change lost);
    the counter they all wrote holds one save's value."""
    assert {f"w{index}": PER_THREAD - 1 for index in range(THREADS)}.items() <= record.items()
    assert record["n"] in {snapshot["n"] for snapshot in written}


def test_store_level_overwrite_keeps_one_saves_snapshot(store: Store) -> None:
    """``conflict="overwrite"``: the last save to land wins whole; the record is exactly what
    one save wrote, never a mix."""
    overwriting = Store(attrs.evolve(store.config, conflict="overwrite"), clock=store.now)
    record, written = _threads_load_set_save(overwriting)
    assert record in written, record
    assert 1 <= record["n"] <= THREADS * PER_THREAD
