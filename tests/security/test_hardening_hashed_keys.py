"""Optional hardening: ``storage_key_secret`` keeps live session ids out of the storage.

    "When set (32 bytes or more), the storage holds an HMAC-SHA256 of each id instead of the id
    itself. Someone who reads a database dump, a Redis ``MONITOR``, or a backup then holds no
    usable session ids." (``docs/configuration.md``)

Why it matters: with plain keys, read access to the session storage is write access to every
account -- copy a key into a cookie and you are that user. Storage is often less guarded than
the app (shared Redis, backups, replicas, ops dashboards). With the secret, a key is an HMAC of
the id: it cannot be turned back into the id, and sending the key itself as a cookie only
makes the store HMAC it again and look in the wrong place.

Each test runs through the ASGI and the WSGI middleware, on every backend; the storage is
listed from outside the store (``tests/security/_records.py``): memory and SQLite by their own
scan, Redis and Mongo read straight from the server.
"""

from __future__ import annotations

import re

import pytest

from sessionkit import ConfigError, Store
from sessionkit.testing import FakeClock
from tests.security._records import stored_keys, stored_records
from tests.web._support import Browser, CountingStorage, MakeClient, make_store

SECRET = b"0123456789abcdef0123456789abcdef-app"
OTHER_SECRET = "another secret of at least thirty-two bytes"


def _hashed(clock: FakeClock, storage: CountingStorage, secret: bytes | str = SECRET) -> Store:
    return make_store(clock, storage, storage_key_secret=secret)


async def _sessions(browsers: list[Browser]) -> set[str]:
    """Log in every browser, regenerate half of them; return every id ever issued."""
    issued: set[str] = set()
    for i, browser in enumerate(browsers):
        await browser.get(f"/set?user=user{i}")
        assert browser.value is not None
        issued.add(browser.value)
        if i % 2:
            await browser.get("/regenerate?role=admin")
            assert browser.value is not None
            issued.add(browser.value)
    return issued


async def test_storage_holds_no_issued_id_in_any_key_or_value(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    request: pytest.FixtureRequest,
) -> None:
    store = _hashed(clock, storage)
    client = make_client(store)
    browsers = [Browser(client) for _ in range(6)]
    issued = await _sessions(browsers)
    live = {b.value for b in browsers}

    records = stored_records(storage, request)
    assert len(records) == len(browsers)  # one record per live session, regenerated ones gone
    for key, value in records:
        for sid in issued:
            assert sid not in key and key not in sid
            assert sid.encode() not in value
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key)  # an HMAC-SHA256, URL-safe base64
    assert {store.storage_key(sid) for sid in live if sid} == {k for k, _ in records}


async def test_control_without_a_secret_the_scan_finds_the_ids_themselves(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    request: pytest.FixtureRequest,
) -> None:
    """Control: the same listing on a store without the secret shows the ids as keys, so the
    test above would see an id if one were stored."""
    client = make_client(make_store(clock, storage))
    browsers = [Browser(client) for _ in range(3)]
    issued = await _sessions(browsers)
    keys = stored_keys(storage, request)
    assert keys and set(keys) <= issued and set(keys) == {b.value for b in browsers}


async def test_a_leaked_storage_key_sent_as_a_cookie_does_not_log_in(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    request: pytest.FixtureRequest,
) -> None:
    store = _hashed(clock, storage)
    client = make_client(store)
    victim = Browser(client)
    await victim.get("/set?user=victim&n=41")
    (leaked,) = stored_keys(storage, request)
    assert store.is_valid_id(leaked)  # same shape as an id: it reaches the lookup ...

    attacker = Browser(client)
    attacker.value = leaked
    assert (await attacker.get("/get?k=user")).text == "null"  # ... and finds nothing
    reply = await attacker.get("/count")
    assert reply.text == "1" and attacker.value not in (leaked, victim.value)
    assert store.get_by_id(leaked) is None
    assert (await victim.get("/get?k=user")).text == '"victim"'  # the victim is unaffected


async def test_sessions_work_end_to_end_with_hashed_keys(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    request: pytest.FixtureRequest,
) -> None:
    """get / set / save / regenerate / reset / destroy, and ``store.delete`` by id."""
    store = _hashed(clock, storage)
    browser = Browser(make_client(store))
    await browser.get("/set?user=ada")
    first = browser.value
    assert first is not None
    assert (await browser.get("/get?k=user")).text == '"ada"'
    assert (await browser.get("/count")).text == "1"

    await browser.get("/regenerate")
    second = browser.value
    assert second is not None and second != first
    assert (await browser.get("/get?k=user")).text == '"ada"'
    assert store.get_by_id(first) is None
    assert stored_keys(storage, request) == [store.storage_key(second)]

    await browser.get("/reset?then_cart=3")
    third = browser.value
    assert third is not None and third != second
    assert (await browser.get("/all")).text == '{"cart": 3}'
    assert stored_keys(storage, request) == [store.storage_key(third)]

    reply = await browser.get("/destroy")
    assert reply.cookie.expired and browser.value is None
    assert stored_keys(storage, request) == []

    bob = Browser(browser.client)
    await bob.get("/set?user=bob")
    assert bob.value is not None
    store.delete(bob.value)
    assert stored_keys(storage, request) == []
    assert (await bob.get("/get?k=user")).text == "null"


async def test_a_different_secret_cannot_read_the_sessions(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Another secret (a rotation, another app) or no secret at all finds nothing under the same
    ids: rotating the secret is how every session is invalidated at once."""
    owner = _hashed(clock, storage)
    browser = Browser(make_client(owner))
    await browser.get("/set?user=ada&n=41")
    sid = browser.value
    assert sid is not None

    for other in (_hashed(clock, storage, OTHER_SECRET), make_store(clock, storage)):
        assert other.get_by_id(sid) is None
        reply = await make_client(other).get("/count", cookie=f"session_id={sid}")
        assert reply.text == "1" and reply.cookie.value != sid
    assert owner.get_by_id(sid) is not None  # still there for the right secret


async def test_the_same_secret_as_str_or_bytes_in_another_worker_reads_the_sessions(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    """Control for the test above: every worker with the same secret shares the sessions."""
    secret = "a shared secret of at least thirty-two bytes"
    browser = Browser(make_client(_hashed(clock, storage, secret)))
    await browser.get("/set?user=ada")
    browser.client = make_client(_hashed(clock, storage, secret.encode()))
    assert (await browser.get("/get?k=user")).text == '"ada"'


@pytest.mark.parametrize("bad", [b"short", "x" * 31, b"", 12345], ids=repr)
def test_a_secret_shorter_than_32_bytes_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        Store(storage_key_secret=bad)
    assert info.value.field == "storage_key_secret"


def test_the_secret_never_appears_in_the_config_repr() -> None:
    store = Store(storage_key_secret=SECRET)
    assert SECRET.decode() not in repr(store.config)
