"""Fiber's session behaviours, ported (seed: gofiber session_test.go), through the public API.

Each test names the Fiber behaviour it ports. Requests are ASGI scopes and WSGI environs, the
two raw shapes every supported framework request reduces to.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from sessionkit import Config, SessionGone, SessionTooLarge, Store


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def asgi_request(
    cookie: str | None = None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    query: bytes = b"",
) -> dict[str, Any]:
    hs = list(headers or [])
    if cookie is not None:
        hs.append((b"cookie", cookie.encode("latin-1")))
    return {"type": "http", "headers": hs, "query_string": query}


def wsgi_request(cookie: str | None = None) -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "QUERY_STRING": ""}
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    return environ


Request = Callable[..., dict[str, Any]]


@pytest.fixture(params=[asgi_request, wsgi_request], ids=["asgi", "wsgi"])
def request_of(request: pytest.FixtureRequest) -> Request:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def store(clock: FakeClock) -> Store:
    return Store(clock=clock)


def cookie_for(store: Store, sid: str) -> str:
    return f"{store.lookup.name}={sid}"


def test_fiber_fresh_on_first_get(store: Store, request_of: Request) -> None:
    session = store.get(request_of())
    assert session.fresh
    assert store.is_valid_id(session.id)
    assert session.keys() == []


def test_fiber_get_returns_same_object_within_a_request(store: Store, request_of: Request) -> None:
    req = request_of()
    assert store.get(req) is store.get(req)


def test_fiber_id_stable_across_saves(store: Store, request_of: Request) -> None:
    session = store.get(request_of())
    session.set("name", "john")
    session.save()
    first = session.id
    session.set("name", "jane")
    session.save()
    assert session.id == first
    again = store.get(request_of(cookie_for(store, first)))
    assert not again.fresh and again.id == first and again.get("name") == "jane"


def test_fiber_keys_after_delete(store: Store, request_of: Request) -> None:
    session = store.get(request_of())
    session.set("name", "john")
    session.set("age", 40)
    assert sorted(session.keys()) == ["age", "name"]
    session.delete("name")
    session.delete("missing")  # Fiber: no error
    assert session.keys() == ["age"]
    session.save()
    loaded = store.get(request_of(cookie_for(store, session.id)))
    assert loaded.keys() == ["age"] and loaded.get("name") is None


def test_fiber_set_expiry_honoured_and_stored(
    store: Store, clock: FakeClock, request_of: Request
) -> None:
    session = store.get(request_of())
    session.set("x", 1)
    session.set_expiry(timedelta(seconds=30))
    session.save()
    clock.advance(20)
    loaded = store.get(request_of(cookie_for(store, session.id)))
    assert not loaded.fresh and loaded.expiry == timedelta(seconds=30)  # outlives the reload
    clock.advance(11)
    assert store.get(request_of(cookie_for(store, session.id))).fresh


def test_fiber_expiration_from_config(clock: FakeClock, request_of: Request) -> None:
    store = Store(expiration=timedelta(minutes=5), clock=clock)
    session = store.get(request_of())
    session.set("x", 1)
    session.save()
    clock.advance(299)
    assert not store.get(request_of(cookie_for(store, session.id))).fresh
    clock.advance(2)
    expired = store.get(request_of(cookie_for(store, session.id)))
    assert expired.fresh and expired.id != session.id  # expired ids are never adopted


def test_fiber_regenerate_keeps_data_new_id_old_record_deleted(
    store: Store, request_of: Request
) -> None:
    session = store.get(request_of())
    session.set("user", "ada")
    session.save()
    old = session.id
    session.regenerate()
    assert session.id != old and session.fresh and session.get("user") == "ada"
    # nothing is written until the save: it stores the new record, then takes the old one
    assert store.get_by_id(old) is not None and store.get_by_id(session.id) is None
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None and loaded.get("user") == "ada"
    assert store.get_by_id(old) is None


def test_fiber_reset_clears_data_new_id_old_record_deleted(
    store: Store, request_of: Request
) -> None:
    session = store.get(request_of())
    session.set("user", "ada")
    session.set_expiry(timedelta(minutes=1))
    session.save()
    old = session.id
    session.reset()
    assert session.id != old and session.fresh and session.keys() == []
    assert session.expiry == store.config.expiration
    assert store.get_by_id(old) is None


def test_fiber_destroy_deletes_and_a_later_save_starts_a_new_session(
    store: Store, request_of: Request
) -> None:
    session = store.get(request_of())
    session.set("user", "ada")
    session.save()
    old = session.id
    session.destroy()
    assert session.destroyed and session.keys() == []
    assert store.get_by_id(old) is None
    session.set("again", True)
    session.save()
    assert session.id != old and not session.destroyed
    loaded = store.get_by_id(session.id)
    assert loaded is not None and loaded.keys() == ["again"]


def test_fiber_store_reset_drops_all(store: Store, request_of: Request) -> None:
    ids = []
    for i in range(5):
        s = store.get(request_of())
        s.set("i", i)
        s.save()
        ids.append(s.id)
    store.reset()
    assert all(store.get_by_id(i) is None for i in ids)


def test_fiber_store_delete_by_id(store: Store, request_of: Request) -> None:
    s = store.get(request_of())
    s.set("i", 1)
    s.save()
    store.delete(s.id)
    store.delete("not a valid id")  # ignored, no storage call needed
    assert store.get_by_id(s.id) is None


@pytest.mark.parametrize("bad", ["", "short", "x" * 44, "\x00" * 43, "a;b" + "c" * 40, None, 42])
def test_get_by_id_none_for_malformed(store: Store, bad: Any) -> None:
    assert store.get_by_id(bad) is None


def test_unknown_well_formed_id_is_never_adopted(store: Store, request_of: Request) -> None:
    planted = store.new_id()
    session = store.get(request_of(cookie_for(store, planted)))
    assert session.fresh and session.id != planted
    session.set("x", 1)
    session.save()
    assert store.get_by_id(planted) is None


def test_id_sent_twice_counts_as_no_id(store: Store, request_of: Request) -> None:
    s = store.get(request_of())
    s.set("x", 1)
    s.save()
    name = store.lookup.name
    twice = store.get(request_of(f"{name}={s.id}; {name}={s.id}"))
    assert twice.fresh and twice.id != s.id


def test_empty_session_is_never_stored_and_emptied_one_is_deleted(
    store: Store, request_of: Request
) -> None:
    s = store.get(request_of())
    s.save()
    assert store.get_by_id(s.id) is None
    s.set("x", 1)
    s.save()
    s.delete("x")
    s.save()
    assert store.get_by_id(s.id) is None


def test_absolute_timeout_caps_an_active_session(clock: FakeClock, request_of: Request) -> None:
    store = Store(
        expiration=timedelta(minutes=10), absolute_timeout=timedelta(minutes=30), clock=clock
    )
    s = store.get(request_of())
    s.set("x", 1)
    s.save()
    for _ in range(5):  # active every 5 minutes: idle expiry never hits
        clock.advance(300)
        s = store.get(request_of(cookie_for(store, s.id)))
        assert not s.fresh
        s.set("x", s.get("x") + 1)
        s.save()
    clock.advance(301)  # 30 min 1 s since creation
    assert store.get(request_of(cookie_for(store, s.id))).fresh


def test_save_after_concurrent_destroy_writes_nothing(store: Store, request_of: Request) -> None:
    s = store.get(request_of())
    s.set("x", 1)
    s.save()
    cookie = cookie_for(store, s.id)
    slow = store.get(request_of(cookie))
    logout = store.get(request_of(cookie))
    logout.destroy()
    slow.set("x", 2)
    with pytest.raises(SessionGone):
        slow.save()
    assert store.get_by_id(s.id) is None


def test_oversized_session_rejected_and_nothing_written(request_of: Request) -> None:
    store = Store(max_size=1024)
    s = store.get(request_of())
    s.set("blob", "x" * 2000)
    with pytest.raises(SessionTooLarge, match="max_size=1024"):
        s.save()
    assert store.get_by_id(s.id) is None


def test_mapping_protocol(store: Store) -> None:
    s = store.load(None)
    s["a"] = 1
    s.update(b=2)
    assert "a" in s and len(s) == 2 and sorted(s) == ["a", "b"]
    assert s.pop("a") == 1 and s.setdefault("c", 3) == 3
    del s["b"]
    with pytest.raises(KeyError):
        del s["b"]
    s.clear()
    assert len(s) == 0


async def test_async_twins(store: Store) -> None:
    s = await store.aload(None)
    s.set("user", "ada")
    await s.asave()
    loaded = await store.aget_by_id(s.id)
    assert loaded is not None and loaded.get("user") == "ada"
    old = loaded.id
    await loaded.aregenerate()
    await loaded.asave()
    assert await store.aget_by_id(old) is None
    await loaded.areset()
    assert loaded.keys() == []
    loaded.set("k", 1)
    await loaded.asave()
    await loaded.adestroy()
    assert await store.aget_by_id(loaded.id) is None
    req = asgi_request()
    assert await store.aget(req) is await store.aget(req)
    await store.adelete(s.id)
    await store.areset()


def test_corrupt_payload_is_a_lost_session_logged_without_the_id(
    store: Store, request_of: Request, caplog: pytest.LogCaptureFixture
) -> None:
    for payload in [
        b"garbage",
        b'{"v": 99}',
        b'{"v":1,"c":0,"t":0,"l":null,"d":{"x":{"$t":"obj","n":"os.system","v":{}}}}',
        b'{"v":1,"c":0,"t":0',
        b"\xff\xfe",
        b"",
        b'{"v":1,"c":0,"t":0,"l":null,"d":{}}trailing',  # a valid record, then more
        b'{"v":1,"c":0,"t":0,"l":null,"d":{}} ',
        b'{"v":1,"c":"0","t":0,"l":null,"d":{}}',
    ]:
        sid = store.new_id()
        store.storage.set(sid, payload, timedelta(minutes=1))
        with caplog.at_level("WARNING", logger="sessionkit"):
            s = store.get(request_of(cookie_for(store, sid)))
        assert s.fresh and s.id != sid
        assert "unreadable session" in caplog.text and sid not in caplog.text
        caplog.clear()


def test_storage_key_secret_keeps_live_ids_out_of_the_storage(request_of: Request) -> None:
    store = Store(storage_key_secret=b"k" * 32)
    s = store.get(request_of())
    s.set("user", "ada")
    s.save()
    assert store.storage.get(s.id) is None  # the raw id is nowhere in the storage
    key = store.storage_key(s.id)
    assert key != s.id and store.storage.get(key) is not None
    loaded = store.get(request_of(cookie_for(store, s.id)))
    assert not loaded.fresh and loaded.get("user") == "ada"
    other = Store(storage=store.storage, storage_key_secret=b"z" * 32)
    assert other.get_by_id(s.id) is None  # another secret cannot find it
    loaded.destroy()
    assert store.storage.get(key) is None


def test_store_takes_its_config_positionally_or_by_keyword_fields_overriding_it() -> None:
    """api.md: ``Store(config=None, **fields)``."""
    config = Config(cookie_secure=True, max_size=1000)
    for store in (Store(config), Store(config=config)):
        assert store.config is config
    evolved = Store(config=config, max_size=2000).config
    assert (evolved.cookie_secure, evolved.max_size) == (True, 2000)
