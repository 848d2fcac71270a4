"""Requirement 10 of ``docs/security.md``:

    "Expiry is enforced by the server from metadata stored with the data, not only by the
    backend's TTL or the cookie."

Why it matters: a backend's TTL is a clean-up tool, not a security control. Redis keeps TTLs on
its own clock, a Mongo TTL index sweeps once a minute, a SQLite row lives until it is purged,
a restored backup or a copied key may carry no TTL at all, and an operator may change
``expiration`` while sessions are stored. A cookie's ``Max-Age`` is only advice to an honest
browser: an attacker who stole a cookie keeps sending it. So each load checks the envelope's
own save time and lifetime against the server's clock, and an expired session is never
adopted: the visitor gets a fresh session under a new server-made id.

Each test runs through the ASGI and the WSGI middleware, on every backend. The records are made
to outlive their expiry in the backend (a long backend TTL), and each test checks that the
backend still returns the record, so it is the server, not the backend, that refused it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.security._records import envelope, plant, raw_storage
from tests.web._support import Browser, Client, CountingStorage, MakeClient, make_store

TEN_MINUTES = timedelta(minutes=10)


async def _adopted(client: Client, session_id: str) -> tuple[bool, str | None]:
    """Send ``session_id`` to ``/count``: whether its stored ``n`` was continued, and the id the
    response's cookie carries (a fresh session starts counting at 1 under a new id)."""
    reply = await client.get("/count", cookie=f"session_id={session_id}")
    assert reply.status == 200
    return reply.text != "1", reply.cookie.value


async def test_session_idle_past_expiration_gets_a_fresh_id_although_the_backend_still_has_it(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, expiration=TEN_MINUTES)
    client = make_client(store)
    browser = Browser(client)
    await browser.get("/set?user=ada")
    sid = browser.value
    assert sid is not None
    # The backend is told to keep the record for a month: only the envelope says it expires.
    assert raw_storage(storage).touch(store.storage_key(sid), timedelta(days=30))
    clock.advance(TEN_MINUTES.total_seconds() + 1)
    assert raw_storage(storage).get(store.storage_key(sid)) is not None  # backend: still there

    reply = await browser.get("/get?k=user")
    assert reply.status == 200 and reply.text == "null"
    assert store.get_by_id(sid) is None
    reply = await browser.get("/setid?user=eve")
    assert reply.text != sid and reply.cookie.value == reply.text  # a new, server-made id


async def test_session_read_just_before_expiry_is_still_served(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """The control for the test above: the same record, one second earlier, is adopted."""
    store = make_store(clock, storage, expiration=TEN_MINUTES)
    browser = Browser(make_client(store))
    await browser.get("/set?user=ada")
    clock.advance(TEN_MINUTES.total_seconds() - 1)
    assert (await browser.get("/get?k=user")).text == '"ada"'


async def test_stale_envelope_with_a_long_backend_ttl_is_not_adopted(
    client: Client, store: Store, clock: FakeClock
) -> None:
    day = store.config.expiration.total_seconds()
    sid = store.new_id()
    key = plant(
        store, sid, envelope({"n": 41}, created=clock.now - 2 * day, saved=clock.now - day - 1)
    )
    assert raw_storage(store.storage).get(key) is not None  # the backend serves it

    adopted, new_id = await _adopted(client, sid)
    assert not adopted and new_id != sid
    assert store.get_by_id(sid) is None


async def test_stored_per_session_lifetime_expires_the_record_before_the_config_would(
    client: Client, store: Store, clock: FakeClock
) -> None:
    """The record's own lifetime (``set_expiry``: 60 s) wins over the 24 h of the config."""
    sid = store.new_id()
    plant(
        store, sid, envelope({"n": 41}, created=clock.now - 61, saved=clock.now - 61, lifetime=60)
    )
    adopted, new_id = await _adopted(client, sid)
    assert not adopted and new_id != sid


async def test_fresh_envelope_planted_the_same_way_is_adopted(
    client: Client, store: Store, clock: FakeClock
) -> None:
    """Control: a hand-written record within its lifetime is served, so the refusals above come
    from the expiry check and not from a malformed plant."""
    sid = store.new_id()
    plant(
        store, sid, envelope({"n": 41}, created=clock.now - 59, saved=clock.now - 59, lifetime=60)
    )
    reply = await client.get("/count", cookie=f"session_id={sid}")
    assert reply.text == "42" and reply.cookie.value == sid


async def test_shortening_expiration_ends_sessions_the_cookie_max_age_still_allows(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """A session saved under a 24 h expiration (cookie Max-Age 86400, backend TTL 24 h) is
    refused once the application is restarted with a 10 minute expiration and it is idle for 11:
    the stored save time decides, not the cookie or the TTL it was written with."""
    before = make_store(clock, storage)
    browser = Browser(make_client(before))
    reply = await browser.get("/set?user=ada")
    assert reply.cookie.attrs["max-age"] == "86400"
    sid = browser.value
    assert sid is not None

    after = make_store(clock, storage, expiration=TEN_MINUTES)
    browser.client = make_client(after)
    clock.advance(11 * 60)
    assert raw_storage(storage).get(after.storage_key(sid)) is not None
    assert (await browser.get("/get?k=user")).text == "null"
    assert after.get_by_id(sid) is None
    assert before.get_by_id(sid) is not None  # the record itself was fine under 24 h


async def test_replayed_cookie_after_its_max_age_is_refused(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """A client that ignores ``Max-Age`` (a stolen cookie replayed by a script) gains nothing."""
    store = make_store(clock, storage, expiration=TEN_MINUTES)
    client = make_client(store)
    first = await client.get("/count")
    stolen = first.cookie
    assert stolen.attrs["max-age"] == "600"
    raw_storage(storage).touch(store.storage_key(stolen.value), timedelta(days=30))
    clock.advance(3600)
    adopted, new_id = await _adopted(client, stolen.value)
    assert not adopted and new_id != stolen.value


@pytest.mark.parametrize("saved_ago", [86_400, 86_401, 10 * 86_400])
def test_get_by_id_refuses_expired_envelopes(
    store: Store, clock: FakeClock, saved_ago: int
) -> None:
    """The same check outside the middleware: ``get_by_id`` (used by admin tools and
    websockets) answers ``None`` for a record whose envelope is expired, at the boundary too."""
    sid = store.new_id()
    plant(
        store,
        sid,
        envelope({"user": "ada"}, created=clock.now - saved_ago, saved=clock.now - saved_ago),
    )
    assert store.get_by_id(sid) is None
