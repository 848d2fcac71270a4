"""Hardening (issue 21): a session that ends with the browser still ends on the server.

``set_expiry(timedelta(0))`` (Django's meaning) and Flask's ``session.permanent = False`` make
the cookie a browser-session cookie: no ``Max-Age``, no ``Expires``. Why the server must still
end it: browsers that restore their tabs keep "session" cookies for weeks, and a cookie
copied off a machine has no browser to close at all. So such a session lives the config's
``expiration`` from its last save, enforced from the stored record (requirement 10), and the
flag is stored with the record (requirement 12): every later save, renewal and reload keeps
the cookie free of ``Max-Age`` -- not only the request that asked for it.

Runs through the ASGI and WSGI middleware and Flask, on every backend.
"""

from __future__ import annotations

from datetime import timedelta

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.security._records import raw_storage
from tests.web._parity import (
    Kind,
    build,
)
from tests.web._support import Client, CountingStorage, Reply, make_store

HOUR = timedelta(hours=1)


def _no_lifetime_on(cookie: object) -> bool:
    attrs = cookie.attrs  # type: ignore[attr-defined]
    return "max-age" not in attrs and "expires" not in attrs


async def _browser_session(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> tuple[Store, Client, Reply]:
    """A store that keeps sessions an hour, a client of it under ``kind``, and the reply to a
    first request that makes a browser session (Flask's ``permanent = False``)."""
    store = make_store(clock, storage, expiration=HOUR)
    client = build(kind, store)
    return store, client, await client.get("/permanent?v=0" if kind == "flask" else "/browser")


async def test_a_browser_session_cookie_has_no_max_age_in_any_later_save_or_renewal(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> None:
    _, client, first = await _browser_session(kind, clock, storage)
    assert first.status == 200 and _no_lifetime_on(first.cookie)
    cookie = f"session_id={first.cookie.value}"

    clock.advance(60)
    saved = await client.get("/set?y=2", cookie=cookie)  # a later request's plain save
    assert saved.cookie.value == first.cookie.value and _no_lifetime_on(saved.cookie)

    clock.advance(40 * 60)  # past half-life: a read renews the record ...
    storage.clear()
    renewed = await client.get("/get?k=y", cookie=cookie)
    assert renewed.text == "2" and storage.writes == 1
    assert _no_lifetime_on(renewed.cookie)  # ... and its cookie stays a browser-session one


async def test_a_browser_session_idle_past_expiration_is_over_although_the_cookie_lives(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> None:
    store, client, first = await _browser_session(kind, clock, storage)
    sid = first.cookie.value
    # The backend is told to keep the record for a day: only the envelope can end it.
    raw_storage(storage).touch(store.storage_key(sid), timedelta(days=1))
    clock.advance(HOUR.total_seconds() + 1)
    reply = await client.get("/get?k=x", cookie=f"session_id={sid}")
    assert reply.text == "null"
    assert store.get_by_id(sid) is None


async def test_the_flag_is_read_back_by_another_store_on_the_same_storage(
    clock: FakeClock, storage: CountingStorage
) -> None:
    writer = make_store(clock, storage)
    session = writer.load(None)
    session["x"] = 1
    session.set_expiry(timedelta(0))
    session.save()
    reader = make_store(clock, storage)  # another worker, after a restart
    loaded = reader.get_by_id(session.id)
    assert loaded is not None and loaded.expire_at_browser_close
    loaded["y"] = 2
    loaded.save()
    assert make_store(clock, storage).get_by_id(session.id).expire_at_browser_close  # type: ignore[union-attr]
