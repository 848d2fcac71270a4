"""Saves that do not lose each other's changes (``Config.conflict="merge"``, the default).

Two requests of one session load it, change it, and save it. A save whose record changed since
it was loaded re-applies only its own request's changes (keys set, keys deleted, a lifetime
given) on top of the record as stored, by compare-and-swap (``replace_if``): a request that
only set ``cart`` no longer brings back the ``user`` a parallel log-out removed. Two saves of
one key: the later wins. A removal elsewhere (destroy, regenerate, reset) still wins over any
save, and a merge never brings back a key or a session. ``conflict="overwrite"`` keeps the
whole-session, last-writer-wins save. On every backend, through the store and through the
ASGI and WSGI middlewares.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import attrs
import pytest

from sessionkit import ConfigError, SessionGone, Store
from sessionkit.asgi import SessionMiddleware as ASGIMiddleware
from sessionkit.wsgi import SessionMiddleware as WSGIMiddleware
from tests.security._faults import in_threads, wsgi_get
from tests.web._support import ASGIClient, CountingStorage


def _stored(store: Store, sid: str) -> dict[str, Any] | None:
    session = store.get_by_id(sid)
    return None if session is None else dict(session.items())


def _logged_in(store: Store) -> str:
    session = store.load(None)
    session["user"] = "ada"
    session["theme"] = "dark"
    session.save()
    return session.id


def test_a_save_keeps_a_parallel_requests_removal(store: Store) -> None:
    sid = _logged_in(store)
    shopping, logging_out = store.load(sid), store.load(sid)
    del logging_out["user"]
    logging_out.save()
    shopping["cart"] = [1, 2]
    shopping.save()
    assert _stored(store, sid) == {"theme": "dark", "cart": [1, 2]}
    # The session object now holds what is stored: its next save merges from there.
    assert dict(shopping.items()) == {"theme": "dark", "cart": [1, 2]}


def test_the_later_save_of_one_key_wins(store: Store) -> None:
    sid = _logged_in(store)
    first, second = store.load(sid), store.load(sid)
    first["theme"] = "light"
    first.save()
    second["theme"] = "blue"
    second.save()
    assert _stored(store, sid) == {"user": "ada", "theme": "blue"}


def test_a_merge_never_brings_back_a_deleted_key(store: Store) -> None:
    sid = _logged_in(store)
    stale, remover = store.load(sid), store.load(sid)
    remover.delete("theme")
    remover.save()
    stale["cart"] = "x"
    stale.save()
    assert _stored(store, sid) == {"user": "ada", "cart": "x"}


def test_clear_removes_only_the_keys_this_request_saw(store: Store) -> None:
    sid = _logged_in(store)
    clearing, adding = store.load(sid), store.load(sid)
    adding["later"] = 1
    adding.save()
    clearing.clear()
    clearing["fresh"] = True
    clearing.save()
    assert _stored(store, sid) == {"later": 1, "fresh": True}


@pytest.mark.parametrize("removal", ["destroy", "regenerate", "reset"])
def test_a_removal_elsewhere_wins_over_any_save(store: Store, removal: str) -> None:
    sid = _logged_in(store)
    saving, removing = store.load(sid), store.load(sid)
    getattr(removing, removal)()
    if removal == "regenerate":
        removing.save()  # the data moves to a new id; the old record is taken
    saving["cart"] = "x"
    with pytest.raises(SessionGone):
        saving.save()
    assert _stored(store, sid) is None


def test_a_lifetime_set_here_survives_the_merge(store: Store) -> None:
    sid = _logged_in(store)
    mine, other = store.load(sid), store.load(sid)
    other["seen"] = 1
    other.save()
    mine.set_expiry(timedelta(minutes=5))
    mine.save()
    again = store.get_by_id(sid)
    assert again is not None and again.expiry == timedelta(minutes=5)
    assert dict(again.items()) == {"user": "ada", "theme": "dark", "seen": 1}


async def test_async_saves_merge_too(store: Store) -> None:
    sid = _logged_in(store)
    shopping, logging_out = await store.aload(sid), await store.aload(sid)
    logging_out.delete("user")
    await logging_out.asave()
    shopping["cart"] = 3
    await shopping.asave()
    assert _stored(store, sid) == {"theme": "dark", "cart": 3}


def test_overwrite_keeps_the_last_writer_whole(store: Store) -> None:
    overwriting = Store(attrs.evolve(store.config, conflict="overwrite"), clock=store.now)
    sid = _logged_in(overwriting)
    shopping, logging_out = overwriting.load(sid), overwriting.load(sid)
    del logging_out["user"]
    logging_out.save()
    shopping["cart"] = 1
    shopping.save()
    assert _stored(overwriting, sid) == {"user": "ada", "theme": "dark", "cart": 1}


def test_conflict_takes_merge_or_overwrite_only() -> None:
    with pytest.raises(ConfigError) as caught:
        Store(conflict="last")
    assert caught.value.field == "conflict"


def test_writers_of_their_own_keys_lose_nothing(store: Store) -> None:
    """Twenty writers, each setting its own key of one session, ten times, at once."""
    sid = _logged_in(store)
    writers, rounds = 20, 10

    def work(index: int) -> None:
        for i in range(rounds):
            session = store.load(sid)
            session[f"k{index}"] = i
            session.save()

    in_threads(writers, work)
    stored = _stored(store, sid)
    assert stored is not None
    assert {f"k{i}": rounds - 1 for i in range(writers)}.items() <= stored.items()
    assert stored["user"] == "ada"


def _counted(store: Store) -> tuple[Store, CountingStorage]:
    storage = CountingStorage(store.storage)
    return Store(attrs.evolve(store.config, storage=storage), clock=store.now), storage


def test_saves_of_one_session_in_one_process_take_turns(store: Store) -> None:
    """Twenty threads save one session at once: each waits for the save before it and then
    merges once, so none races the others round after round (and none runs out of its
    merge budget with a 503): at most two writes per save, the first save one."""
    counted, storage = _counted(store)
    sid = _logged_in(counted)
    writers = 20

    def work(index: int) -> None:
        session = counted.load(sid)
        session[f"k{index}"] = index
        session.save()

    storage.clear()
    in_threads(writers, work)
    stored = _stored(store, sid)
    assert stored is not None and {f"k{i}": i for i in range(writers)}.items() <= stored.items()
    assert storage.calls["replace_if"] <= 2 * writers - 1, storage.calls


class _Yielding(CountingStorage):
    """Every async call lets the loop's other tasks run first, as a network call would (a
    storage in this process answers inline, so its saves never overlap)."""

    def __getattr__(self, name: str) -> Any:
        method = super().__getattr__(name)
        if name[:1] != "a" or name[1:] not in self.OPS:
            return method

        async def after_others(*args: Any) -> Any:
            await asyncio.sleep(0)
            return await method(*args)

        setattr(self, name, after_others)  # in place of the counting wrapper kept there
        return after_others


async def test_async_saves_of_one_session_take_turns_in_their_loop(store: Store) -> None:
    """Twenty tasks save one session at once: each waits for the save before it and merges
    onto what that save wrote, so none races the others: one write per save, no read back."""
    storage = _Yielding(store.storage)
    counted = Store(attrs.evolve(store.config, storage=storage), clock=store.now)
    sid = _logged_in(counted)
    writers = 20
    sessions = [await counted.aload(sid) for _ in range(writers)]

    async def save(index: int) -> None:
        sessions[index][f"k{index}"] = index
        await sessions[index].asave()

    storage.clear()
    await asyncio.gather(*(save(i) for i in range(writers)))
    stored = _stored(store, sid)
    assert stored is not None and {f"k{i}": i for i in range(writers)}.items() <= stored.items()
    assert storage.calls == {"replace_if": writers}, storage.calls


# -- through the middlewares: a slow request saving after a parallel log-out ------------------


async def test_asgi_a_slow_request_does_not_undo_a_parallel_logout(store: Store) -> None:
    loaded, logged_out = asyncio.Event(), asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        session = scope["session"]
        if scope["path"] == "/slow-cart":
            session.get("user")  # loaded: the record as it was before the log-out
            loaded.set()
            await logged_out.wait()
            session["cart"] = "full"
        elif scope["path"] == "/logout":
            session.delete("user")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sid = _logged_in(store)
    client = ASGIClient(ASGIMiddleware(app, store))
    cookie = f"session_id={sid}"

    async def logout() -> None:
        await loaded.wait()
        reply = await client.get("/logout", cookie=cookie)
        assert reply.status == 200
        logged_out.set()

    slow, _ = await asyncio.gather(client.get("/slow-cart", cookie=cookie), logout())
    assert slow.status == 200
    assert _stored(store, sid) == {"theme": "dark", "cart": "full"}


def test_wsgi_a_slow_request_does_not_undo_a_parallel_logout(store: Store) -> None:
    loaded, logged_out = threading.Event(), threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session = environ["sessionkit.session"]
        if environ["PATH_INFO"] == "/slow-cart":
            session.get("user")
            loaded.set()
            assert logged_out.wait(10)
            session["cart"] = "full"
        elif environ["PATH_INFO"] == "/logout":
            session.delete("user")
        start_response("200 OK", [])
        return [b"ok"]

    sid = _logged_in(store)
    wrapped = WSGIMiddleware(app, store)
    cookie = f"session_id={sid}"

    def work(index: int) -> int:
        if index == 0:
            return wsgi_get(wrapped, "/slow-cart", cookie).status
        assert loaded.wait(10)
        status = wsgi_get(wrapped, "/logout", cookie).status
        logged_out.set()
        return status

    assert in_threads(2, work) == [200, 200]
    assert _stored(store, sid) == {"theme": "dark", "cart": "full"}


def test_encrypted_records_merge_and_stay_sealed(store: Store) -> None:
    pytest.importorskip("cryptography")
    sealed = Store(
        attrs.evolve(store.config, encryption_keys=[secrets.token_urlsafe(32)]), clock=store.now
    )
    sid = _logged_in(sealed)
    shopping, logging_out = sealed.load(sid), sealed.load(sid)
    del logging_out["user"]
    logging_out.save()
    shopping["cart"] = "x"
    shopping.save()
    assert _stored(sealed, sid) == {"theme": "dark", "cart": "x"}
    raw = sealed.storage.get(sealed.storage_key(sid))
    assert raw is not None and b"dark" not in raw and b"cart" not in raw


def test_a_merge_while_the_secret_rotates_moves_the_record(store: Store) -> None:
    """A session still under the older secret's name is saved (and moved), not called gone."""
    old_secret, new_secret = secrets.token_bytes(32), secrets.token_bytes(32)
    before = Store(attrs.evolve(store.config, storage_key_secret=old_secret), clock=store.now)
    sid = _logged_in(before)
    rotating = Store(
        attrs.evolve(store.config, storage_key_secret=[new_secret, old_secret]), clock=store.now
    )
    first, second = rotating.load(sid), rotating.load(sid)
    first["a"] = 1
    first.save()
    second["b"] = 2
    second.save()
    stored = _stored(rotating, sid)
    assert stored is not None and stored["user"] == "ada" and stored["b"] == 2


class _Slow(CountingStorage):
    """``areplace_if`` takes a while, as a far server's would."""

    async def areplace_if(self, *args: Any) -> bool:
        await asyncio.sleep(0.2)
        return bool(await self.inner.areplace_if(*args))  # type: ignore[attr-defined]


async def test_a_request_cancelled_while_waiting_its_turn_holds_nothing(store: Store) -> None:
    """A save cancelled in the queue (the client went away) leaves the turn to the next."""
    storage = _Slow(store.storage)
    counted = Store(attrs.evolve(store.config, storage=storage), clock=store.now)
    sid = _logged_in(counted)
    first, gone, last = [await counted.aload(sid) for _ in range(3)]
    for name, session in (("a", first), ("b", gone), ("c", last)):
        session[name] = 1
    saving = asyncio.create_task(first.asave())
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(gone.asave())
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(last.asave())  # behind the one about to go away
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await saving
    await asyncio.wait_for(queued, 2)  # not held up by the cancelled one
    stored = _stored(store, sid)
    assert stored is not None and stored["a"] == 1 and stored["c"] == 1 and "b" not in stored
