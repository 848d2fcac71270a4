"""How many storage round trips a request costs, counted by a wrapping storage (security.md 16).

ASGI loads eagerly (one read per request carrying an id); WSGI loads on first use.
"""

from __future__ import annotations

from datetime import timedelta

from sessionkit import Store
from tests.web._support import Browser, Client, CountingStorage, FakeClock, MakeClient, make_store


async def _logged_in(client: Client, storage: CountingStorage) -> Browser:
    browser = Browser(client)
    await browser.get("/set?user=ada")
    storage.clear()
    return browser


async def test_no_cookie_untouched_costs_nothing(client: Client, storage: CountingStorage) -> None:
    reply = await client.get("/noop")
    assert storage.calls == {}
    assert reply.header("set-cookie") == [] and reply.header("vary") == []


async def test_no_cookie_read_only_costs_nothing(client: Client, storage: CountingStorage) -> None:
    reply = await client.get("/get?k=user")
    assert storage.calls == {}
    assert reply.header("set-cookie") == [] and reply.header("vary") == ["Cookie"]


async def test_cookie_untouched(client: Client, storage: CountingStorage) -> None:
    browser = await _logged_in(client, storage)
    reply = await browser.get("/noop")
    # ASGI: the one eager read; WSGI: lazy, not even that
    assert (storage.reads, storage.writes) == ((1, 0) if client.eager else (0, 0))
    assert reply.header("set-cookie") == [] and reply.header("vary") == []


async def test_cookie_read_costs_one_read(client: Client, storage: CountingStorage) -> None:
    browser = await _logged_in(client, storage)
    reply = await browser.get("/get?k=user")
    assert reply.text == '"ada"'
    assert (storage.reads, storage.writes) == (1, 0)
    assert reply.header("set-cookie") == [] and reply.header("vary") == ["Cookie"]


async def test_write_costs_one_read_one_write(client: Client, storage: CountingStorage) -> None:
    browser = await _logged_in(client, storage)
    reply = await browser.get("/count")
    assert reply.text == "1"
    assert storage.calls == {
        "get": 1,
        "replace_if": 1,
    }  # over what it loaded: merges, never resurrects
    assert reply.cookie.value == browser.value


async def test_first_write_costs_one_write(client: Client, storage: CountingStorage) -> None:
    await client.get("/count")
    assert storage.calls == {"create": 1}  # create-only: never overwrites a live record


async def test_empty_session_is_never_stored(client: Client, storage: CountingStorage) -> None:
    reply = await client.get("/reset?a=1")  # data set, then reset: nothing left to store
    assert storage.calls == {}
    assert reply.header("set-cookie") == []  # the client had no cookie to expire
    reply = await client.get("/destroy?a=1")
    assert storage.calls == {}
    assert reply.cookie.expired  # destroy always expires the cookie


async def test_clearing_a_stored_session_deletes_it(
    client: Client, storage: CountingStorage, store: Store
) -> None:
    browser = await _logged_in(client, storage)
    sid = browser.value
    reply = await browser.get("/clear")
    assert storage.calls == {"get": 1, "take": 1}
    assert reply.cookie.expired and browser.value is None
    assert sid is not None and store.get_by_id(sid) is None


async def test_renewal_past_half_life(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, expiration=timedelta(minutes=10))
    client = make_client(store)
    browser = await _logged_in(client, storage)
    sid = browser.value
    clock.advance(240)  # 6 of 10 minutes left: no renewal
    reply = await browser.get("/get?k=user")
    assert storage.writes == 0 and reply.header("set-cookie") == []
    clock.advance(120)  # 4 left: renewed by a rewrite over the loaded bytes, cookie refreshed
    reply = await browser.get("/get?k=user")
    assert storage.calls == {"get": 2, "replace_if": 1}
    assert reply.cookie.value == sid and reply.cookie.attrs["max-age"] == "600"
    # the envelope's save time moved: alive past the original expiry
    clock.advance(500)  # 860 s after the first save, 500 after the renewal
    assert (await browser.get("/get?k=user")).text == '"ada"'
    # and a read that does not look at the session renews nothing
    storage.clear()
    clock.advance(400)
    await browser.get("/noop")
    assert storage.writes == 0


async def test_no_renewal_when_absolute_timeout_forbids(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(
        clock, storage, expiration=timedelta(minutes=10), absolute_timeout=timedelta(minutes=12)
    )
    browser = await _logged_in(make_client(store), storage)
    clock.advance(420)  # 3 min idle left, 5 min absolute left: renewing helps
    await browser.get("/get?k=user")
    assert storage.writes == 1
    storage.clear()
    clock.advance(290)  # 10 s absolute left < idle left: a rewrite would not extend it
    assert (await browser.get("/get?k=user")).text == '"ada"'
    assert storage.writes == 0
