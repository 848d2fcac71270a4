"""``session.expires_at`` and rolling sessions (``Config.rolling``; issue 21), through the ASGI
and WSGI middleware and Flask, on every backend.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sessionkit import ConfigError, Store
from sessionkit.testing import FakeClock
from tests.web._parity import (
    Kind,
    build,
)
from tests.web._support import CountingStorage, make_store

HOUR = timedelta(hours=1)


async def test_expires_at_is_the_last_save_plus_the_lifetime(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, expiration=HOUR)
    client = build(kind, store)
    saved_at = clock.now
    cookie = f"session_id={(await client.get('/set?a=1')).cookie.value}"
    clock.advance(600)
    reply = await client.get("/expires_at", cookie=cookie)  # only read: not renewed
    assert float(reply.text) == saved_at + 3600
    clock.advance(600)
    await client.get("/set?a=2", cookie=cookie)  # a save moves it
    assert float((await client.get("/expires_at", cookie=cookie)).text) == clock.now + 3600
    await client.get("/expiry?s=60", cookie=cookie)  # so does a lifetime of its own
    assert float((await client.get("/expires_at", cookie=cookie)).text) == clock.now + 60


async def test_expires_at_is_capped_by_the_absolute_timeout(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, expiration=HOUR, absolute_timeout=2 * HOUR)
    client = build(kind, store)
    created = clock.now
    cookie = f"session_id={(await client.get('/set?a=1')).cookie.value}"
    for value in (2, 3):
        clock.advance(50 * 60)
        await client.get(f"/set?a={value}", cookie=cookie)
    assert float((await client.get("/expires_at", cookie=cookie)).text) == created + 7200


def test_expires_at_is_an_aware_utc_datetime(clock: FakeClock) -> None:
    store = make_store(clock)
    session = store.load(None)  # not stored yet: when it would end if saved now
    assert session.expires_at == datetime.fromtimestamp(clock.now + 86400, timezone.utc)
    assert session.expires_at.tzinfo is timezone.utc


async def test_a_rolling_store_renews_every_request_that_reads_its_session(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> None:
    rolling = build(kind, make_store(clock, storage, expiration=HOUR, rolling=True))
    first = await rolling.get("/set?a=1")
    cookie = f"session_id={first.cookie.value}"
    for _ in range(3):
        clock.advance(60)  # far from half-life
        storage.clear()
        reply = await rolling.get("/get?k=a", cookie=cookie)
        assert reply.text == "1" and storage.writes == 1
        assert reply.cookie.value == first.cookie.value
        assert reply.cookie.attrs["max-age"] == "3600"
    storage.clear()
    untouched = await rolling.get("/touchless", cookie=cookie)  # a route that never used it
    assert untouched.header("set-cookie") == [] and storage.writes == 0
    # 50 idle minutes after the last read, it is still alive: each read moved its expiry.
    clock.advance(50 * 60)
    assert (await rolling.get("/get?k=a", cookie=cookie)).text == "1"


async def test_without_rolling_a_read_before_half_life_writes_nothing(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> None:
    client = build(kind, make_store(clock, storage, expiration=HOUR))
    cookie = f"session_id={(await client.get('/set?a=1')).cookie.value}"
    clock.advance(60)
    storage.clear()
    reply = await client.get("/get?k=a", cookie=cookie)
    assert reply.text == "1" and storage.writes == 0 and reply.header("set-cookie") == []


async def test_rolling_never_extends_past_the_absolute_timeout(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, expiration=HOUR, absolute_timeout=HOUR, rolling=True)
    client = build(kind, store)
    cookie = f"session_id={(await client.get('/set?a=1')).cookie.value}"
    clock.advance(30 * 60)
    storage.clear()
    reply = await client.get("/get?k=a", cookie=cookie)
    assert storage.writes == 0 and reply.header("set-cookie") == []  # nothing to extend
    clock.advance(30 * 60)
    assert (await client.get("/get?k=a", cookie=cookie)).text == "null"


def test_rolling_must_be_a_bool() -> None:
    with pytest.raises(ConfigError) as caught:
        Store(rolling="yes")
    assert caught.value.field == "rolling"
