"""Records decoded once per process, by their bytes (``sessionkit._decoded``): a read of an
unchanged session copies the record the last read decoded. What must not show: a session
never sees what another request did to its own copy and did not save, expiry is judged on
every read, and the cache stays bounded."""

from __future__ import annotations

import asyncio
import copy
import secrets
import threading
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionkit import Store, _decoded
from sessionkit._decoded import MAX_BYTES, MAX_ENTRIES, DecodedRecords
from sessionkit._envelope import decode_record, encode_envelope, written_record
from sessionkit._values import DecodeError
from sessionkit_memory import MemoryStorage
from tests.core.test_values import make_store, same, values


def _saved(store: Store, data: dict[str, Any]) -> str:
    session = store.load(None)
    session.update(data)
    session.save()
    return session.id


def _kept(store: Store) -> int:
    return len(store._records._decoded)


def test_a_change_not_saved_by_one_request_is_not_seen_by_the_next() -> None:
    """Two loads of one unchanged record share nothing: a value set, deleted or changed in
    place on one (and never saved) is not on the next."""
    store = Store()
    sid = _saved(store, {"n": 1, "name": "ada", "cart": [1, 2], "prefs": {"theme": "dark"}})
    first = store.get_by_id(sid)
    assert first is not None
    first["n"] = 2
    del first["name"]
    first["cart"].append(3)  # in place: nothing marks the session changed
    first["prefs"]["theme"] = "light"
    again = store.get_by_id(sid)
    assert again is not None
    assert dict(again) == {"n": 1, "name": "ada", "cart": [1, 2], "prefs": {"theme": "dark"}}


def test_a_record_of_immutable_values_is_decoded_once_and_copied_after() -> None:
    store = Store()
    sid = _saved(store, {"n": 1, "when": (1, "a"), "id": b"\x00"})
    first, second = store.get_by_id(sid), store.get_by_id(sid)
    assert first is not None and second is not None
    assert _kept(store) == 1
    first["n"] = 99
    assert second["n"] == 1
    assert store.get_by_id(sid)["n"] == 1  # type: ignore[index]


def test_a_record_holding_a_value_changeable_in_place_is_never_kept() -> None:
    store = Store()
    for value in ([1], {"a": 1}, {1, 2}, (1, [2])):
        sid = _saved(store, {"v": value})
        assert store.get_by_id(sid) is not None
    assert _kept(store) == 0


def test_expiry_is_judged_on_every_read_of_a_kept_record() -> None:
    now = [1_800_000_000.0]
    store = Store(clock=lambda: now[0], expiration=timedelta(minutes=30))
    sid = _saved(store, {"n": 1})
    assert store.get_by_id(sid) is not None
    assert _kept(store) == 1
    now[0] += 30 * 60
    assert store.get_by_id(sid) is None


def test_a_store_with_encryption_keeps_no_plaintext() -> None:
    store = Store(encryption_keys=[secrets.token_urlsafe(32)])
    sid = _saved(store, {"n": 1})
    assert store.get_by_id(sid)["n"] == 1  # type: ignore[index]
    assert _kept(store) == 0


def _payload(store: Store, data: dict[str, Any], saved: float = 1.0) -> bytes:
    return encode_envelope(store.types, data, 1.0, saved, None, False, None)


def test_the_cache_is_bounded_and_emptied_when_full() -> None:
    store = Store()
    decoded = DecodedRecords(store.types)
    payloads = [_payload(store, {"n": i}) for i in range(MAX_ENTRIES + 10)]
    sizes = []
    for payload in payloads:
        decoded.decode(payload)
        sizes.append(len(decoded))
    assert max(sizes) == MAX_ENTRIES
    assert sizes[MAX_ENTRIES] == 1  # the one past the bound found it full: emptied first
    assert len(decoded) == 10
    big = _payload(store, {"s": "x" * MAX_BYTES})
    assert decoded.decode(big).data == {"s": "x" * MAX_BYTES}
    assert len(decoded) == 10  # never kept
    # What went with the emptying is decoded again, the same.
    assert decoded.decode(payloads[0]).data == {"n": 0}
    assert decoded.decode(payloads[-1]).data == {"n": MAX_ENTRIES + 9}
    assert len(decoded) == 11


def test_keep_false_keeps_nothing() -> None:
    store = Store()
    decoded = DecodedRecords(store.types, keep=False)
    decoded.decode(_payload(store, {"n": 1}))
    assert len(decoded) == 0


def test_an_undecodable_payload_is_refused_every_time() -> None:
    decoded = DecodedRecords(Store().types)
    for _ in range(2):
        with pytest.raises(DecodeError):
            decoded.decode(b'{"v":1}')
    assert len(decoded) == 0


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), values, max_size=4))
def test_a_kept_record_decodes_as_a_fresh_decode_and_is_never_changed_by_its_readers(
    data: dict[str, Any],
) -> None:
    store = make_store()
    decoded = DecodedRecords(store.types)
    payload = _payload(store, data)
    expected = decode_record(store.types, payload)
    for _ in range(3):
        record = decoded.decode(payload)
        assert same(record.data, expected.data)
        assert (record.created, record.saved, record.lifetime) == (1.0, 1.0, None)
        # A reader may do anything to its copy: clear it, change what it holds in place.
        for value in record.data.values():
            if hasattr(value, "clear") and not isinstance(value, bytes | frozenset):
                value.clear()
        record.data.clear()


def test_threads_reading_and_filling_at_once_get_their_own_records() -> None:
    store = Store()
    decoded = DecodedRecords(store.types)
    payloads = [_payload(store, {"n": i}) for i in range(MAX_ENTRIES * 2)]
    wrong: list[Any] = []

    def reader(start: int) -> None:
        for round_ in range(3):
            for i in range(start, start + MAX_ENTRIES):
                index = (i + round_ * 7) % len(payloads)
                record = decoded.decode(payloads[index])
                if record.data != {"n": index}:
                    wrong.append((index, copy.copy(record.data)))
                record.data["n"] = -1

    threads = [threading.Thread(target=reader, args=(k * 97,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(decoded) <= MAX_ENTRIES


# -- what a save keeps ---------------------------------------------------------------------------

#: Strings with lone surrogates too (they travel tagged), keys that pose as tags.
_texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
_natives = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False),
    _texts,
)
_times = st.one_of(st.floats(allow_nan=True), st.integers(min_value=-(2**70), max_value=2**70))


@settings(max_examples=400, deadline=None)
@given(
    data=st.dictionaries(
        st.one_of(_texts, st.just("$t"), st.just("v")), _natives | values, max_size=5
    ),
    created=_times,
    saved=_times,
    lifetime=st.none() | _times,
    browser=st.booleans(),
    indexed=st.none() | _times,
)
def test_what_a_save_keeps_is_what_decoding_its_bytes_gives(
    data: dict[str, Any],
    created: float,
    saved: float,
    lifetime: float | None,
    browser: bool,
    indexed: float | None,
) -> None:
    """``written_record`` (the record kept at a save, made without decoding) against a real
    decode of the same bytes: equal, value by value and type by type, whenever it gives one,
    and never one for bytes the decode refuses (values of every type: those JSON does not
    carry as themselves are left to a real decode)."""
    store = make_store()
    try:
        payload = encode_envelope(store.types, data, created, saved, lifetime, browser, indexed)
    except (OverflowError, ValueError):
        return  # no envelope to compare: a save would have failed before keeping anything
    written = written_record(dict(data), created, saved, lifetime, browser, indexed)
    try:
        decoded = decode_record(store.types, payload)
    except DecodeError:
        assert written is None
        return
    if written is None:  # left to a real decode: allowed, only ever for the times' sake
        return
    assert same(written.data, decoded.data)
    fields = ("created", "saved", "lifetime", "browser", "indexed")
    assert [getattr(written, f) for f in fields] == [getattr(decoded, f) for f in fields]


def test_the_read_after_a_save_finds_the_record_kept_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store()
    decodes: list[bytes] = []

    def counted(types: Any, payload: bytes) -> Any:
        decodes.append(payload)
        return decode_record(types, payload)

    monkeypatch.setattr(_decoded, "decode_record", counted)
    sid = _saved(store, {"n": 1, "name": "ada"})
    for n in range(2, 5):
        session = store.get_by_id(sid)
        assert session is not None and session["n"] == n - 1
        session["n"] = n
        session.save()
    assert store.get_by_id(sid)["n"] == 4  # type: ignore[index]
    assert decodes == []
    # A value JSON does not carry as itself is decoded on the read after the save.
    session = store.get_by_id(sid)
    assert session is not None
    session["when"] = (1, 2)
    session.save()
    assert store.get_by_id(sid)["when"] == (1, 2)  # type: ignore[index]
    assert len(decodes) == 1


def test_a_change_after_the_save_in_the_same_request_is_not_kept() -> None:
    """What is kept is a copy made before the encoding: the session's own dict, changed
    after the save and never saved again, is not what the next read finds."""
    store = Store()
    sid = _saved(store, {"n": 1})
    session = store.get_by_id(sid)
    assert session is not None
    session["n"] = 2
    session.save()
    session["n"] = 3  # never saved
    session["extra"] = "x"
    again = store.get_by_id(sid)
    assert again is not None and dict(again) == {"n": 2}


class Suspending(MemoryStorage):
    """The memory storage with an async ``replace_if`` that lets other tasks run before it
    writes (so the store awaits it: not inline)."""

    async def areplace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool:
        await asyncio.sleep(0)
        return self.replace_if(key, expected, value, ttl)


async def test_a_change_made_while_an_async_save_is_in_flight_is_not_kept() -> None:
    """Under asyncio a save may await its storage between encoding and writing; a task that
    changes the session meanwhile changes neither the bytes written nor the record kept."""
    storage = Suspending()
    store = Store(storage=storage)
    sid = _saved(store, {"n": 1})
    session = await store.aget_by_id(sid)
    assert session is not None
    session["n"] = 2
    saving = asyncio.ensure_future(session.asave())
    await asyncio.sleep(0)  # the save encodes, then waits in areplace_if
    assert not saving.done()
    session["n"] = 99  # in flight: neither written nor kept
    await saving
    again = await store.aget_by_id(sid)
    assert again is not None and again["n"] == 2
    fresh = await Store(storage=storage).aget_by_id(sid)  # a store that kept nothing
    assert fresh is not None and fresh["n"] == 2
