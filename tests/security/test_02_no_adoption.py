"""Requirement 2 of ``docs/security.md``:

    "An id from the client that is unknown, expired, destroyed or regenerated away is never
    adopted (Fiber CVE-2024-38513, Flask-Session #76): a fresh id is made by the server, for
    every transport (cookie, header, query)."

Why it matters: a server that stores a session under whatever id the client presents lets an
attacker choose the id of the victim's session in advance (session fixation): plant the id in
the victim's browser, wait for the log-in, replay the id. An id that once was valid is no
better: after log-out (destroy), expiry or a privilege change (regenerate), the old id must be
dead for good, or a stolen or leaked copy revives the session.

Each test runs for the three transports, through the ASGI and the WSGI middleware, on every
backend. ``tests/security/test_advisory_fiber_cve_2024_38513.py`` replays the attack itself.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.security._support_ids import TRANSPORTS, Transport
from tests.web._support import Client, CountingStorage, MakeClient, make_store

EXPIRATION = timedelta(minutes=30)
STATES = ("unknown", "expired", "destroyed", "regenerated")


@pytest.fixture(params=TRANSPORTS, ids=lambda t: t.source)
def transport(request: pytest.FixtureRequest) -> Transport:
    t: Transport = request.param
    return t


async def _stale_id(
    state: str, transport: Transport, client: Client, store: Store, clock: FakeClock
) -> str:
    """An id in ``state``, presented through ``transport``; the session it named held
    ``user=ada``. Each state is checked to hold, so no test passes for want of a setup."""
    if state == "unknown":
        sid = store.new_id()  # well formed, made by this very server, never stored
        assert store.get_by_id(sid) is None
        return sid
    sid = (await transport.get(client, "/setid?user=ada")).text
    assert store.get_by_id(sid) is not None
    if state == "expired":
        clock.advance(EXPIRATION.total_seconds() + 1)
    elif state == "destroyed":
        assert (await transport.get(client, "/destroy", sid)).status == 200
    else:
        reply = await transport.get(client, "/regenerate?then_k=v", sid)
        if transport.source != "query":  # the query transport hands no id back
            successor = transport.issued(reply)
            assert successor and successor != sid
            assert (await transport.get(client, "/get?k=user", successor)).text == '"ada"'
    assert store.get_by_id(sid) is None
    return sid


@pytest.mark.parametrize("state", STATES)
async def test_a_stale_id_gets_a_fresh_session_under_a_new_server_made_id(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    transport: Transport,
    state: str,
) -> None:
    store = make_store(clock, storage, key_lookup=transport.lookup, expiration=EXPIRATION)
    client = make_client(store)
    stale = await _stale_id(state, transport, client, store, clock)

    storage.clear()
    read = await transport.get(client, "/fresh", stale)
    assert read.status == 200 and read.text == "true"
    assert storage.calls == {"get": 1}  # well formed: looked up, found wanting, not adopted
    assert transport.issued(read) is None  # nothing written, so no id handed out

    written = await transport.get(client, "/setid?visitor=eve", stale)
    new = written.text
    assert new != stale and store.is_valid_id(new)
    if transport.source != "query":
        assert transport.issued(written) == new  # the response hands out the new id
    # the new session holds what this request wrote, and nothing of the old one
    assert (await transport.get(client, "/get?k=visitor", new)).text == '"eve"'
    assert (await transport.get(client, "/get?k=user", new)).text == "null"
    # and nothing was (re)created under the client's id
    assert store.get_by_id(stale) is None
    assert (await transport.get(client, "/fresh", stale)).text == "true"


@pytest.mark.parametrize("state", STATES)
async def test_a_stale_id_never_reaches_a_write(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    transport: Transport,
    state: str,
) -> None:
    store = make_store(clock, storage, key_lookup=transport.lookup, expiration=EXPIRATION)
    client = make_client(store)
    stale = await _stale_id(state, transport, client, store, clock)
    storage.clear()
    # every lifecycle path, starting from the stale id: none may write under it
    for path in ("/count", "/save?a=1", "/regenerate?a=1", "/reset?then_a=1", "/expiry?s=60"):
        reply = await transport.get(client, path, stale)
        assert reply.status == 200
        assert transport.issued(reply) != stale
    writes = {op for op in storage.calls if op in CountingStorage.WRITES}
    assert writes == {"create"}  # only brand-new records: never a replace/touch of the stale one
    assert store.get_by_id(stale) is None
