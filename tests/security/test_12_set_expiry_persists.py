"""Requirement 12 of ``docs/security.md``:

    "``set_expiry`` outlives a reload: a per-session lifetime is stored with the session."

Why it matters: ``set_expiry`` is how an application gives one session a lifetime of its own --
a short one for an elevated or sensitive session, a long one for "remember me". If that lifetime
lived only in the request that set it, the next request would load the session and save it back
under the configured ``expiration``: a 5 minute admin session would silently become a 24 hour
one at its first reload, and a "remember me" session would be cut back. The lifetime is part of
the stored envelope, so every later load, save, renewal, cookie ``Max-Age`` and expiry check
uses it -- in any worker, after any restart.

Each HTTP test runs through the ASGI and the WSGI middleware, on every backend.
"""

from __future__ import annotations

from datetime import timedelta

from sessionkit.testing import FakeClock
from tests.security._records import raw_storage
from tests.web._support import Browser, CountingStorage, MakeClient, make_store

HOUR = timedelta(hours=1)


async def test_short_lifetime_survives_later_saves_and_ends_the_session_early(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Default 24 h expiration; one session gets 60 s. Two requests later (no ``set_expiry`` in
    them) its saves still carry 60 s, and 61 s of idleness end it -- even with the backend
    told to keep the record for a day."""
    store = make_store(clock, storage)
    browser = Browser(make_client(store))
    reply = await browser.get("/expiry?s=60")
    assert reply.cookie.attrs["max-age"] == "60"
    sid = browser.value
    assert sid is not None

    clock.advance(30)
    reply = await browser.get("/count")  # a plain save in a later request
    assert reply.text == "1" and reply.cookie.value == sid
    assert reply.cookie.attrs["max-age"] == "60"  # not the config's 86400

    raw_storage(storage).touch(store.storage_key(sid), timedelta(days=1))
    clock.advance(61)
    assert (await browser.get("/get?k=x")).text == "null"
    assert store.get_by_id(sid) is None


async def test_long_lifetime_keeps_the_session_past_the_configured_expiration(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Expiration 1 h; "remember me" for 2 h: alive after 1.5 h idle, gone 2 h after its last
    save."""
    browser = Browser(make_client(make_store(clock, storage, expiration=HOUR)))
    await browser.get("/expiry?s=7200")
    clock.advance(5400)
    reply = await browser.get("/get?k=x")
    assert reply.text == "1"
    # 1.5 h of 2 h gone: renewed under its own lifetime, not the configured hour
    assert reply.cookie.attrs["max-age"] == "7200"
    clock.advance(7199)
    assert (await browser.get("/get?k=x")).text == "1"
    clock.advance(7200)
    assert (await browser.get("/get?k=x")).text == "null"


async def test_lifetime_is_read_back_by_another_store_on_the_same_storage(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """A restart, or another worker: a new ``Store`` on the same storage knows nothing but what
    was stored, and still honours the session's own lifetime."""
    first = make_store(clock, storage, expiration=HOUR)
    browser = Browser(make_client(first))
    await browser.get("/expiry?s=7200")
    sid = browser.value
    assert sid is not None

    second = make_store(clock, storage, expiration=HOUR)
    loaded = second.get_by_id(sid)
    assert loaded is not None and loaded.expiry == timedelta(seconds=7200)
    clock.advance(5400)
    browser.client = make_client(second)
    assert (await browser.get("/get?k=x")).text == "1"


async def test_session_without_set_expiry_keeps_the_configured_expiration(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Control: no lifetime stored, no lifetime invented -- 1 h 1 s idle ends it."""
    browser = Browser(make_client(make_store(clock, storage, expiration=HOUR)))
    reply = await browser.get("/set?x=1")
    assert reply.cookie.attrs["max-age"] == "3600"
    clock.advance(3601)
    assert (await browser.get("/get?k=x")).text == "null"


async def test_regenerate_keeps_the_stored_lifetime(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """A short-lived session stays short-lived when its id is rotated at a privilege change."""
    store = make_store(clock, storage)
    browser = Browser(make_client(store))
    await browser.get("/expiry?s=60")
    old = browser.value
    reply = await browser.get("/regenerate?user=ada")
    assert browser.value != old and reply.cookie.attrs["max-age"] == "60"
    new = browser.value
    assert new is not None
    loaded = store.get_by_id(new)
    assert loaded is not None and loaded.expiry == timedelta(seconds=60)
