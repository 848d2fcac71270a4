"""Requirement 17 of ``docs/security.md``:

    "A configurable cap on the encoded session size (default 64 KiB) rejects oversized saves
    with a clear error."

Why it matters: a session is read (and decoded) on every request that uses it, so its size is
paid for again and again; a route that lets a visitor grow their session (a cart without a
limit, a form echoed into it, a list appended to per request) is a memory and bandwidth
amplifier aimed at the storage and at every worker. The cap turns that into one clear error --
``SessionTooLarge``, a ``SessionKitError`` naming ``max_size`` -- at the save that would cross it,
with nothing written: the record already stored stays exactly as it was, and under the
middleware the response is a 500 (the app's bug) with no ``Set-Cookie``.

The size is the encoded record's, in bytes (UTF-8 text, base64 for ``bytes``), not a count of
characters or items. HTTP tests run through the ASGI and the WSGI middleware, on every backend.
"""

from __future__ import annotations

import logging

import pytest

from sessionkit import Config, ConfigError, Session, SessionKitError, SessionTooLarge, Store
from sessionkit.testing import FakeClock
from tests.security._records import handler_client, raw_storage, stored_keys
from tests.web._support import Browser, CountingStorage, MakeClient, make_store

DEFAULT = 65536


def _grow(session: Session, q: dict[str, str]) -> str:
    """``?user=NAME`` sets ``user``; ``?big=N`` stores N characters under ``big`` (the value is
    made here: a URL that long is refused by HTTP clients); ``?k=KEY`` reads ``KEY``."""
    if "user" in q:
        session["user"] = q["user"]
    if "big" in q:
        session["big"] = "x" * int(q["big"])
    if "k" in q:
        return repr(session.get(q["k"]))
    return "ok"


def test_default_max_size_is_64_kib() -> None:
    assert Config().max_size == DEFAULT
    assert Store().config.max_size == DEFAULT


def _overhead(store: Store) -> int:
    """Bytes the envelope adds around one ``"b": "<text>"`` value, measured on a real save."""
    probe = store.load(None)
    probe["b"] = "x"
    probe.save()
    stored = raw_storage(store.storage).get(store.storage_key(probe.id))
    assert stored is not None
    probe.destroy()
    return len(stored) - 1


def test_a_save_of_exactly_max_size_bytes_passes_and_one_byte_more_raises(
    store: Store, storage: CountingStorage
) -> None:
    """At the default cap, on every backend: the limit is inclusive and counted in bytes of the
    stored record."""
    fill = DEFAULT - _overhead(store)
    fits = store.load(None)
    fits["b"] = "x" * fill
    fits.save()
    stored = raw_storage(storage).get(store.storage_key(fits.id))
    assert stored is not None and len(stored) == DEFAULT

    storage.clear()
    over = store.load(None)
    over["b"] = "x" * (fill + 1)
    with pytest.raises(SessionTooLarge) as info:
        over.save()
    assert isinstance(info.value, SessionKitError)
    assert f"max_size={DEFAULT}" in str(info.value) and str(DEFAULT + 1) in str(info.value)
    assert storage.writes == 0
    assert store.get_by_id(over.id) is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("é" * 40_000, "40 000 characters, 80 000 UTF-8 bytes"),
        (b"\x00" * 50_000, "50 000 bytes, 66 668 once base64-encoded"),
        (list(range(20_000)), "20 000 small items"),
        ({f"k{i}": i for i in range(8_000)}, "8 000 keys"),
    ],
    ids=["multibyte-text", "bytes", "long-list", "wide-dict"],
)
def test_the_cap_counts_encoded_bytes_whatever_the_shape(
    store: Store, storage: CountingStorage, value: object, why: str
) -> None:
    session = store.load(None)
    session["v"] = value
    with pytest.raises(SessionTooLarge):
        session.save()
    assert storage.writes == 0, why


async def test_oversized_save_through_the_middleware_answers_500_without_set_cookie(
    make_client: MakeClient, store: Store, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """At the default cap: a new visitor's first, oversized save stores nothing."""
    reply = await handler_client(make_client, store, _grow).get(f"/?big={DEFAULT}")
    assert reply.status == 500
    assert reply.header("set-cookie") == []
    assert "session too large" in reply.text.lower()
    assert storage.writes == 0
    assert stored_keys(storage, request) == []


async def test_oversized_save_leaves_the_stored_record_byte_for_byte_intact(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = make_store(clock, storage)
    browser = Browser(handler_client(make_client, store, _grow))
    await browser.get("/?user=ada")
    sid = browser.value
    assert sid is not None
    key = store.storage_key(sid)
    before = raw_storage(storage).get(key)
    storage.clear()

    clock.advance(60)
    with caplog.at_level(logging.ERROR, logger="sessionkit"):
        reply = await browser.get(f"/?big={DEFAULT}")
    assert reply.status == 500 and reply.header("set-cookie") == []
    assert storage.writes == 0
    assert raw_storage(storage).get(key) == before
    assert any("max_size" in r.getMessage() for r in caplog.records)  # the operator is told

    assert browser.value == sid
    assert (await browser.get("/?k=user")).text == "'ada'"
    assert (await browser.get("/?k=big")).text == "None"


async def test_configured_max_size_is_honoured_through_the_middleware(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    client = make_client(make_store(clock, storage, max_size=1024))
    assert (await client.get("/set?small=" + "x" * 500)).status == 200
    assert storage.writes == 1
    reply = await client.get("/set?big=" + "x" * 1024)
    assert reply.status == 500 and reply.header("set-cookie") == []
    assert storage.writes == 1


def test_a_session_that_grew_over_the_cap_cannot_be_saved_but_can_shrink_back(
    store: Store, storage: CountingStorage
) -> None:
    """The cap applies at every save, not only the first: a stored session cannot be grown
    past it; deleting the big value lets the same session save again."""
    session = store.load(None)
    session["user"] = "ada"
    session.save()
    session["log"] = ["entry"] * 20_000
    with pytest.raises(SessionTooLarge):
        session.save()
    del session["log"]
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None and dict(loaded) == {"user": "ada"}


@pytest.mark.parametrize("bad", [0, 63, -1, True, 1.5, "65536", None])
def test_max_size_must_be_an_int_of_at_least_64_bytes(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        Store(max_size=bad)
    assert info.value.field == "max_size"
