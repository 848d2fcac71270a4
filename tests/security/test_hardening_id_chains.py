"""Hardening (issue 21): every id rule holds per source of a chain of id sources.

``key_lookup="cookie:session_id,header:X-Session-Id,query:sid"`` (Fiber v3's chained
extractors) reads the id from the first source the request carries. Why each rule must hold
per source: a chain is only as strict as its loosest source. An attacker who cannot plant a
cookie may still send a header or a link with ``?sid=``; so in every source a malformed or
repeated id is dropped before the storage (and does not fall through to a later source, where
a second, live id could be slipped in), an unknown id is never adopted, and an id read from
the query string (or an ``Authorization: Bearer`` token) is never written back into a cookie
or a header -- a link must not be able to plant a session cookie (requirement 4).

Runs through the ASGI and WSGI middleware and Flask, on every backend.
"""

from __future__ import annotations

import pytest

from sessionkit import ConfigError, Store
from sessionkit.testing import FakeClock
from tests.security._support_ids import WELL_FORMED
from tests.web._parity import (
    Kind,
    build,
)
from tests.web._support import Client, CountingStorage, Reply, make_store

CHAIN = "cookie:session_id,header:X-Session-Id,query:sid"


@pytest.fixture
def chained(clock: FakeClock, storage: CountingStorage) -> Store:
    return make_store(clock, storage, key_lookup=CHAIN)


def _ids(reply: Reply) -> tuple[list[str], list[str]]:
    """The ids ``reply`` hands back: in its cookies, and in its X-Session-Id header."""
    return [c.value for c in reply.cookies], reply.header("x-session-id")


async def _live(client: Client) -> str:
    reply = await client.get("/set?user=ada")
    cookies, headers = _ids(reply)
    assert cookies == headers and WELL_FORMED.match(cookies[0])  # both carriers, one id
    return cookies[0]


async def test_the_first_source_present_wins_and_the_id_goes_back_through_every_carrier(
    kind: Kind, chained: Store
) -> None:
    client = build(kind, chained)
    ada, bob = await _live(client), await _live(client)
    by_header = await client.get("/get?k=user", headers={"X-Session-Id": ada})
    assert by_header.text == '"ada"'
    assert set(by_header.header("vary")[0].split(", ")) == {"Cookie", "X-Session-Id"}
    both = await client.get(
        "/get?k=user", cookie=f"session_id={ada}", headers={"X-Session-Id": bob}
    )
    assert both.text == '"ada"'  # the cookie comes first in the chain
    saved = await client.get("/set?n=1", headers={"X-Session-Id": ada})
    assert _ids(saved) == ([ada], [ada])


@pytest.mark.parametrize("source", ["cookie", "header", "query"])
async def test_a_malformed_or_repeated_id_in_a_source_is_no_id_and_never_falls_through(
    kind: Kind, chained: Store, storage: CountingStorage, source: str
) -> None:
    client = build(kind, chained)
    live = await _live(client)
    repeated = "twice"
    for bad in (live[:-1], live + "A", live[:-1] + "!", repeated):
        storage.clear()
        # A live id in the header, after the source under test: it must not be used.
        cookie, headers, path = None, {"X-Session-Id": live}, "/get?k=user"
        if source == "cookie":
            value = f"{live}; session_id={live}" if bad == repeated else bad
            cookie = f"session_id={value}"
        elif source == "header":
            headers = {"X-Session-Id": f"{live},{live}" if bad == repeated else bad}
        else:
            headers = {}
            path += f"&sid={live}&sid={live}" if bad == repeated else f"&sid={bad}"
        reply = await client.get(path, cookie=cookie, headers=headers)
        assert reply.text == "null", (source, bad)
        assert storage.reads == 0, (source, bad)  # never reached the storage


@pytest.mark.parametrize("source", ["cookie", "header", "query"])
async def test_an_unknown_id_from_any_source_is_never_adopted(
    kind: Kind, chained: Store, source: str
) -> None:
    client = build(kind, chained)
    planted = "P" * 43
    cookie = f"session_id={planted}" if source == "cookie" else None
    headers = {"X-Session-Id": planted} if source == "header" else None
    path = "/set?user=eve" + (f"&sid={planted}" if source == "query" else "")
    reply = await client.get(path, cookie=cookie, headers=headers)
    cookies, sent = _ids(reply)
    assert planted not in cookies + sent and cookies == sent and len(cookies) == 1


async def test_an_id_read_from_the_query_is_never_written_into_a_cookie_or_a_header(
    kind: Kind, chained: Store
) -> None:
    client = build(kind, chained)
    live = await _live(client)
    written = await client.get(f"/set?n=2&sid={live}")  # saved under the query's id ...
    assert _ids(written) == ([], [])  # ... which goes back nowhere
    assert (await client.get(f"/get?k=n&sid={live}")).text == "2"
    moved = await client.get(f"/regenerate?sid={live}")  # a server-made id may go out
    cookies, headers = _ids(moved)
    assert cookies == headers and cookies[0] != live


async def test_a_bearer_token_is_read_and_never_sent_back(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, key_lookup="header:Authorization,cookie:session_id")
    client = build(kind, store)
    live = (await client.get("/set?user=ada")).cookie.value
    reply = await client.get("/set?n=1", headers={"Authorization": f"Bearer {live}"})
    assert reply.header("authorization") == [] and reply.header("set-cookie") == []
    assert (
        await client.get("/get?k=user", headers={"Authorization": f"bearer {live}"})
    ).text == '"ada"'
    assert "Authorization" in reply.header("vary")[0]
    # Basic credentials are no session id: the chain goes on to the cookie.
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert (
        await client.get("/get?k=user", cookie=f"session_id={live}", headers=basic)
    ).text == '"ada"'
    # A malformed bearer token is no id, and does not fall through to the cookie.
    bad = {"Authorization": f"Bearer {live}x"}
    assert (
        await client.get("/get?k=user", cookie=f"session_id={live}", headers=bad)
    ).text == "null"


@pytest.mark.parametrize(
    "lookup",
    ["cookie:a,cookie:b", "header:X-Id,header:x-id", "cookie:sid,", "cookie:sid,header:Vary"],
)
def test_a_chain_that_cannot_work_is_a_config_error(lookup: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Store(key_lookup=lookup)
    assert caught.value.field == "key_lookup"


def test_a_host_prefixed_cookie_anywhere_in_a_chain_keeps_its_rules() -> None:
    with pytest.raises(ConfigError) as caught:
        Store(key_lookup="header:X-Session-Id,cookie:__Host-sid")
    assert caught.value.field == "cookie_secure"
