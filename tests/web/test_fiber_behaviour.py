"""Fiber's session behaviours, through real HTTP, under the ASGI and the WSGI middleware alike.

Every test runs twice (the ``client`` fixture is parametrised): the session travels only in
the cookies the responses set, as it would in a browser.
"""

from __future__ import annotations

import pytest

from sessionkit import Store
from tests.web._support import Browser, Client, CountingStorage, FakeClock


def cookie(store: Store, sid: str) -> str:
    return f"{store.lookup.name}={sid}"


async def test_fresh_on_first_get(client: Client, storage: CountingStorage) -> None:
    reply = await client.get("/fresh")
    assert reply.text == "true"
    assert reply.header("set-cookie") == []  # read only: nothing to store, no cookie
    assert storage.calls == {}


async def test_id_stable_across_saves(client: Client, store: Store) -> None:
    first = (await client.get("/set?name=john")).cookie
    assert store.is_valid_id(first.value)
    second = (await client.get("/set?name=jane", cookie=cookie(store, first.value))).cookie
    assert second.value == first.value
    reply = await client.get("/get?k=name", cookie=cookie(store, first.value))
    assert reply.text == '"jane"'
    assert (await client.get("/fresh", cookie=cookie(store, first.value))).text == "false"


async def test_keys_after_delete(client: Client) -> None:
    browser = Browser(client)
    await browser.get("/set?name=john&age=40")
    assert (await browser.get("/keys")).text == '["age", "name"]'
    await browser.get("/delete?k=name")
    await browser.get("/delete?k=missing")  # Fiber: no error
    assert (await browser.get("/keys")).text == '["age"]'
    assert (await browser.get("/get?k=name")).text == "null"


async def test_set_expiry_honoured_across_requests(client: Client, clock: FakeClock) -> None:
    browser = Browser(client)
    reply = await browser.get("/expiry?s=30")
    assert reply.cookie.attrs["max-age"] == "30"
    clock.advance(10)  # 20 s left of 30: more than half, so reading does not renew
    assert (await browser.get("/get?k=x")).text == "1"
    clock.advance(21)  # 31 s after the save
    assert (await browser.get("/fresh")).text == "true"


async def test_save_keeps_id_and_refreshes_max_age(client: Client, store: Store) -> None:
    browser = Browser(client)
    sid = (await browser.get("/set?a=1")).cookie.value
    again = (await browser.get("/save?b=2")).cookie
    assert again.value == sid and again.attrs["max-age"] == "86400"
    assert store.get_by_id(sid) is not None


async def test_regenerate_keeps_data_new_id_old_record_deleted(
    client: Client, store: Store
) -> None:
    browser = Browser(client)
    old = (await browser.get("/set?user=ada")).cookie.value
    new = (await browser.get("/regenerate")).cookie
    assert new.value != old and not new.expired
    assert (await browser.get("/get?k=user")).text == '"ada"'
    assert store.get_by_id(old) is None
    # the old id is never adopted again
    reply = await client.get("/fresh", cookie=cookie(store, old))
    assert reply.text == "true"


async def test_reset_clears_data_new_id_old_record_deleted(client: Client, store: Store) -> None:
    browser = Browser(client)
    old = (await browser.get("/set?user=ada")).cookie.value
    # reset alone leaves nothing to save: the cookie is expired
    assert (await browser.get("/reset")).cookie.expired
    assert store.get_by_id(old) is None
    # reset then set: a new id, old data gone
    browser.value = (await browser.get("/set?user=ada")).cookie.value
    old = browser.value
    new = (await browser.get("/reset?then_cart=1")).cookie
    assert new.value != old and not new.expired
    assert (await browser.get("/all")).text == '{"cart": 1}'
    assert store.get_by_id(old) is None


async def test_destroy_expires_cookie_and_deletes_record(client: Client, store: Store) -> None:
    browser = Browser(client)
    sid = (await browser.get("/set?user=ada")).cookie.value
    gone = (await browser.get("/destroy")).cookie
    assert gone.name == store.lookup.name and gone.value == "" and gone.expired
    assert store.get_by_id(sid) is None
    assert browser.value is None
    # after destroy, setting and saving starts a new session under a new id
    reply = await client.get("/count", cookie=cookie(store, sid))
    assert reply.text == "1" and reply.cookie.value not in ("", sid)


async def test_store_reset_drops_all(client: Client, store: Store) -> None:
    a = (await client.get("/set?who=a")).cookie.value
    b = (await client.get("/set?who=b")).cookie.value
    store.reset()
    for sid in (a, b):
        assert (await client.get("/fresh", cookie=cookie(store, sid))).text == "true"


async def test_unknown_id_is_never_adopted(client: Client, store: Store) -> None:
    planted = store.new_id()  # well formed, never stored
    read = await client.get("/fresh", cookie=cookie(store, planted))
    assert read.text == "true"
    assert read.header("set-cookie") == []  # a stale cookie is left alone (see _response)
    written = (await client.get("/set?x=1", cookie=cookie(store, planted))).cookie
    assert written.value != planted and store.is_valid_id(written.value)
    assert store.get_by_id(planted) is None


@pytest.mark.parametrize(
    "sent",
    [
        "session_id=short",
        "session_id=" + "A" * 42 + "!",
        "session_id=" + "A" * 44,
        "session_id=" + "A" * 43 + "; session_id=" + "B" * 43,  # sent twice
        'session_id="' + "A" * 43 + '"',
    ],
)
async def test_malformed_id_costs_no_storage_call(
    client: Client, storage: CountingStorage, sent: str
) -> None:
    reply = await client.get("/fresh", cookie=sent)
    assert reply.status == 200 and reply.text == "true"
    assert storage.calls == {}
