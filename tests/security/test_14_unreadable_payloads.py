"""Requirement 14 of ``docs/security.md``:

    "A stored payload that is corrupt, truncated, of an unknown version or naming an
    unregistered type is a lost session (fresh id, logged at warning), never a 500 and never
    code run."

Why it matters: storages get corrupted (a disk error, a half-written value, a tool writing into
the wrong namespace), deployments move on (a record written by a newer release, a class that was
removed), and an attacker who can write to the storage will try whatever makes the decoder
fail. If a bad record made every request of that visitor answer 500, one write would lock a
user out of the site, and a decoder that crashes is one step from a decoder that does
something worse. So an unreadable record is treated as absent: the visitor gets a new session
under a new server-made id (the old id is never adopted), the request is served normally, and
the operator gets a WARNING that names the session only by a non-reversible fingerprint -- a
log must not hand out live session ids.

Payloads are written raw under the session's storage key (the id itself, or its HMAC with
``storage_key_secret``), then requested through the ASGI and the WSGI middleware, on every
backend.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import sys
from collections.abc import Callable
from datetime import timedelta

import pytest

from sessionkit import Store
from sessionkit._store import fingerprint
from sessionkit.testing import FakeClock
from tests.security._records import envelope, plant, raw_storage
from tests.web._support import Browser, Client, CountingStorage, MakeClient, make_store

Payload = Callable[[float], bytes]


def _env(data: object = None, **fields: object) -> Payload:
    """An envelope at time ``now`` with ``fields`` replaced, encoded as the store would."""

    def build(now: float) -> bytes:
        env: dict[str, object] = {"v": 1, "c": now, "t": now, "l": None, "d": {"n": 41}}
        if data is not None:
            env["d"] = data
        env.update(fields)
        return json.dumps(env, separators=(",", ":")).encode()

    return build


def _without(field: str) -> Payload:
    def build(now: float) -> bytes:
        env = json.loads(_env()(now))
        del env[field]
        return json.dumps(env).encode()

    return build


UNREADABLE: dict[str, Payload] = {
    # corrupt
    "empty": lambda now: b"",
    "garbage": lambda now: b"garbage",
    "binary": lambda now: bytes(range(256)),
    "invalid-utf8": lambda now: b'{"v":1,"d":"\xff\xfe"}',
    "nul-bytes": lambda now: b"\x00" * 64,
    "json-null": lambda now: b"null",
    "json-list": lambda now: b"[1,2,3]",
    "json-string": lambda now: b'"session"',
    "deeply-nested": lambda now: b'{"v":1,"c":0,"t":0,"l":null,"d":{"x":' + b"[" * 100_000,
    "deeply-nested-closed": lambda now: (
        b'{"v":1,"c":0,"t":0,"l":null,"d":{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    ),
    # truncated
    "truncated-half": lambda now: _env()(now)[: len(_env()(now)) // 2],
    "truncated-last-byte": lambda now: _env()(now)[:-1],
    # unknown or malformed version / envelope
    "version-2": _env(v=2),
    "version-0": _env(v=0),
    "version-as-string": _env(v="1"),
    "version-true": _env(v=True),
    "no-version": _without("v"),
    "no-created": _without("c"),
    "no-data": _without("d"),
    "extra-field": _env(x="surprise"),
    "created-as-string": _env(c="yesterday"),
    "saved-as-null": _env(t=None),
    "lifetime-as-string": _env(l="forever"),
    "data-is-a-list": _env(data=[["n", 41]]),
    # numbers Python's json reads but no clock holds: a NaN time never compares as expired
    # (sessionkit writes none of them; a lifetime above 400 days is kept at 400, see
    # tests/core/test_hardening.py)
    "created-nan": _env(c=float("nan")),
    "saved-nan": _env(t=float("nan")),
    "saved-infinity": _env(t=float("inf")),
    "created-minus-infinity": _env(c=float("-inf")),
    "created-int-beyond-float": _env(c=10**400),
    "lifetime-nan": _env(l=float("nan")),
    "lifetime-infinity": _env(l=float("inf")),
    "lifetime-zero": _env(l=0),
    "lifetime-negative": _env(l=-60.0),
    # unregistered or malformed tagged values
    "unregistered-obj": _env(data={"n": 41, "u": {"$t": "obj", "n": "myapp.User", "v": {}}}),
    "unregistered-enum": _env(data={"n": 41, "e": {"$t": "enum", "n": "myapp.Role", "v": 1}}),
    "unknown-tag": _env(data={"n": 41, "x": {"$t": "complex", "v": [1, 2]}}),
    "tag-with-extra-key": _env(data={"n": 41, "x": {"$t": "tuple", "v": [], "w": 1}}),
    "bad-base64": _env(data={"n": 41, "b": {"$t": "bytes", "v": "not base64!"}}),
    "bad-datetime": _env(data={"n": 41, "d": {"$t": "datetime", "v": "tomorrow"}}),
    "bad-decimal": _env(data={"n": 41, "d": {"$t": "decimal", "v": "one"}}),
    "bad-uuid": _env(data={"n": 41, "u": {"$t": "uuid", "v": "xyz"}}),
    "bad-timedelta": _env(data={"n": 41, "t": {"$t": "timedelta", "v": [1, 2]}}),
    "set-of-lists": _env(data={"n": 41, "s": {"$t": "set", "v": [[1], [2]]}}),
}


def _lost_session_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "sessionkit" and r.levelno == logging.WARNING and "unreadable" in r.message
    ]


def _assert_logged_without_the_id(caplog: pytest.LogCaptureFixture, sid: str) -> None:
    (warning,) = _lost_session_warnings(caplog)
    assert fingerprint(sid) in warning.getMessage()  # correlatable ...
    for record in caplog.records:  # ... but no record says the id, or a usable part of it
        assert sid[:16] not in record.getMessage()
        assert sid[:16] not in str(record.args)
    assert sid[:16] not in caplog.text


@pytest.mark.parametrize("make", UNREADABLE.values(), ids=UNREADABLE.keys())
async def test_unreadable_record_is_a_lost_session_with_a_new_id_logged_without_the_id(
    client: Client,
    store: Store,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    make: Payload,
) -> None:
    sid = store.new_id()
    plant(store, sid, make(clock.now))
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await client.get("/count", cookie=f"session_id={sid}")
    assert reply.status == 200
    assert reply.text == "1"  # nothing of the bad record was used
    assert reply.cookie.value != sid  # a new, server-made id
    _assert_logged_without_the_id(caplog, sid)
    assert store.get_by_id(sid) is None


class _Relay:
    """Garbage in a cycle whose finalizer makes the next: so there is always some for the
    collector to find, and its finalizer runs wherever a collection happens."""

    going = True

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        if _Relay.going:
            _Relay._calls(50)  # as a finalizer that closes a connection calls a few levels deep
            _Relay()

    @staticmethod
    def _calls(levels: int) -> int:
        return 0 if levels == 0 else _Relay._calls(levels - 1)


async def test_no_finalizer_runs_out_of_stack_while_a_deep_record_is_read(
    client: Client, store: Store, clock: FakeClock
) -> None:
    """A record nested 100,000 deep is refused before it is parsed. Parsed, it spent the whole
    recursion budget, and any finalizer the collector ran meanwhile failed for want of stack:
    in the test suite a PerLoop's, which releases a closed loop's connections."""
    sid = store.new_id()
    plant(store, sid, UNREADABLE["deeply-nested"](clock.now))
    failed: list[BaseException | None] = []
    hook, threshold = sys.unraisablehook, gc.get_threshold()
    sys.unraisablehook = lambda unraisable: failed.append(unraisable.exc_value)
    _Relay.going = True
    _Relay()
    gc.set_threshold(10)  # a collection every few allocations, the parser's included
    try:
        reply = await client.get("/count", cookie=f"session_id={sid}")
    finally:
        gc.set_threshold(*threshold)
        _Relay.going = False
        gc.collect()
        sys.unraisablehook = hook
    assert reply.status == 200 and reply.text == "1"
    assert failed == []


@pytest.mark.parametrize("path", ["/get?k=n", "/noop", "/all", "/id", "/destroy", "/regenerate"])
async def test_every_kind_of_request_on_an_unreadable_record_is_served(
    client: Client, store: Store, clock: FakeClock, path: str
) -> None:
    """Not only writes: reads, lifecycle calls and untouched routes answer 200 too."""
    sid = store.new_id()
    plant(store, sid, b"\x80\x04corrupt")
    reply = await client.get(path, cookie=f"session_id={sid}")
    assert reply.status == 200
    assert sid not in reply.text
    assert all(c.value != sid for c in reply.cookies)


async def test_record_truncated_in_place_under_a_live_cookie_is_replaced(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real session, its stored bytes cut short in the backend: the browser's next request
    gets a new session, and the user is logged out rather than served an error."""
    store = make_store(clock, storage)
    browser = Browser(make_client(store))
    await browser.get("/set?user=ada&n=41")
    sid = browser.value
    assert sid is not None
    key = store.storage_key(sid)
    stored = raw_storage(storage).get(key)
    assert stored is not None
    raw_storage(storage).set(key, stored[: len(stored) - 3], timedelta(days=1))

    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        assert (await browser.get("/get?k=user")).text == "null"
        reply = await browser.get("/count")
    assert reply.status == 200 and reply.text == "1"
    assert browser.value is not None and browser.value != sid
    assert len(_lost_session_warnings(caplog)) == 2  # once per request that read it
    assert sid[:16] not in caplog.text and fingerprint(sid) in caplog.text


@dataclasses.dataclass
class Cart:
    items: list[str]


async def test_record_of_a_type_no_longer_registered_is_a_lost_session(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Written by a release that registered ``Cart``, read by one that does not (a rollback, a
    removed class): a lost session, not a 500 on every request of that visitor."""
    old = make_store(clock, storage)
    old.register_type(Cart, name="shop.Cart")
    session = old.load(None)
    session["cart"] = Cart(["book"])
    session["n"] = 41
    session.save()
    assert old.get_by_id(session.id) is not None

    new = make_store(clock, storage)
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await make_client(new).get("/count", cookie=f"session_id={session.id}")
    assert reply.status == 200 and reply.text == "1" and reply.cookie.value != session.id
    _assert_logged_without_the_id(caplog, session.id)


async def test_unreadable_record_under_a_hashed_storage_key_is_a_lost_session(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With ``storage_key_secret`` the record lives under the id's HMAC; a corrupt one there is
    handled the same way (and the log names neither the id nor the key)."""
    store = make_store(clock, storage, storage_key_secret=b"s" * 32)
    sid = store.new_id()
    key = plant(store, sid, b"{corrupt")
    assert key != sid
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await make_client(store).get("/count", cookie=f"session_id={sid}")
    assert reply.status == 200 and reply.text == "1" and reply.cookie.value != sid
    _assert_logged_without_the_id(caplog, sid)
    assert key[:16] not in caplog.text


async def test_control_a_well_formed_record_planted_the_same_way_is_adopted(
    client: Client, store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Control: the planting helper writes where the store reads, so every refusal above is the
    payload's doing; and a good record logs no warning."""
    sid = store.new_id()
    plant(store, sid, envelope({"n": 41}, created=clock.now, saved=clock.now))
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        reply = await client.get("/count", cookie=f"session_id={sid}")
    assert reply.text == "42" and reply.cookie.value == sid
    assert _lost_session_warnings(caplog) == []
