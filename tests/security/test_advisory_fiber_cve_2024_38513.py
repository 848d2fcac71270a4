"""Regression for Fiber CVE-2024-38513 (GHSA-98j2-3j3p-fw2v, "session middleware token
injection"): before 2.52.5, Fiber's session middleware accepted a ``session_id`` the client
made up and created the session under it. An attacker could choose the id of a victim's session
in advance -- plant it (a tossed cookie, a crafted link, a header set by a script), let the
victim log in, then present the same id and be logged in as the victim (session fixation).
Flask-Session #76 is the same flaw.

sessionkit's rule: the id a session is stored under is always made by the server's
``key_generator``; an id the client presents is only ever used to *find* an existing, live
session. Here the attack is replayed for each transport (``cookie:session_id``,
``header:X-Session-Id``, ``query:sid``) and each kind of id an attacker may hold: one made up,
one of theirs that expired, one destroyed by a log-out, one regenerated away by a log-in. The
application under attack does not even call ``regenerate()`` at log-in: the middleware alone
must defeat the fixation.

Each test runs through the ASGI and the WSGI middleware, on every backend.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.security._support_ids import (
    TRANSPORTS,
    KeyRecorder,
    RecordingGenerator,
    Transport,
)
from tests.web._support import Client, CountingStorage, MakeClient, make_store

EXPIRATION = timedelta(hours=1)
#: Made up by the attacker: well formed (so it is looked up), never made by the server.
CHOSEN = "fixated-by-the-attacker-" + "A" * 19


@pytest.fixture(params=TRANSPORTS, ids=lambda t: t.source)
def transport(request: pytest.FixtureRequest) -> Transport:
    t: Transport = request.param
    return t


async def _attackers_id(
    held: str, transport: Transport, client: Client, store: Store, clock: FakeClock
) -> str:
    """The id the attacker plants, of the kind ``held``, checked to be dead now."""
    if held == "chosen":
        assert store.is_valid_id(CHOSEN)
        return CHOSEN
    sid = (await transport.get(client, "/setid?user=mallory")).text  # the attacker's own
    if held == "expired":
        clock.advance(EXPIRATION.total_seconds() + 1)
    elif held == "destroyed":
        await transport.get(client, "/destroy", sid)  # log-out
    elif held == "regenerated":
        await transport.get(client, "/regenerate", sid)  # log-in moved it to a new id
    assert store.get_by_id(sid) is None
    return sid


@pytest.mark.parametrize("held", ["chosen", "expired", "destroyed", "regenerated"])
async def test_a_planted_id_is_replaced_at_log_in_and_worthless_to_the_attacker(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    transport: Transport,
    held: str,
) -> None:
    generator = RecordingGenerator()
    recorder = KeyRecorder(storage)
    store = make_store(
        clock,
        recorder,
        key_lookup=transport.lookup,
        expiration=EXPIRATION,
        key_generator=generator,
    )
    client = make_client(store)
    planted = await _attackers_id(held, transport, client, store, clock)
    recorder.keys.clear()

    # The victim's browser carries the planted id, and the victim logs in.
    login = await transport.get(client, "/setid?user=victim", planted)
    assert login.status == 200
    victims = login.text
    assert victims != planted
    assert victims in generator.made  # made by the server's generator, not derived from input
    if transport.source != "query":
        assert transport.issued(login) == victims  # the response hands out the NEW id
    # Nothing was ever written under the planted id: only looked up, and found wanting.
    assert [op for op, key in recorder.keys if key == planted] == ["get"]

    # The attacker replays the planted id: an anonymous, empty session.
    replay = await transport.get(client, "/get?k=user", planted)
    assert replay.status == 200 and replay.text == "null"
    assert transport.issued(replay) is None
    assert (await transport.get(client, "/fresh", planted)).text == "true"
    assert store.get_by_id(planted) is None
    # The victim, with the id the server made, is logged in.
    assert (await transport.get(client, "/get?k=user", victims)).text == '"victim"'


#: For each transport, the other two places a client could put an id of the same name.
ELSEWHERE = {
    "cookie": ("query", "header"),
    "header": ("cookie", "query"),
    "query": ("cookie", "header"),
}


async def test_a_live_id_offered_where_the_store_does_not_read_it_is_ignored(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage, transport: Transport
) -> None:
    """Login CSRF by fixation: a link or a script offers the attacker's own *live* id in a
    place the application does not read ids from; the victim must not end up in it."""
    store = make_store(clock, storage, key_lookup=transport.lookup)
    client = make_client(store)
    attackers = (await transport.get(client, "/setid?user=mallory")).text
    for place in ELSEWHERE[transport.source]:
        offer = Transport(f"{place}:{transport.name}")
        reply = await offer.get(client, "/setid?visitor=victim", attackers)
        assert reply.text != attackers, place
        assert (await transport.get(client, "/get?k=visitor", attackers)).text == "null"
        assert (await transport.get(client, "/get?k=user", reply.text)).text == "null"
    assert (await transport.get(client, "/get?k=user", attackers)).text == '"mallory"'
