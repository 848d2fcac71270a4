"""Requirement 4 of ``docs/security.md``:

    "An id read from a query string is never written back into a cookie."

Why it matters: a link is the easiest thing to plant. If an id arriving in ``?sid=...`` were
turned into a cookie, one click on an attacker's link would fix the victim's session for every
later request, query or not: the classic URL-based session fixation. And an id echoed into a
cookie leaves the URL (where it is visible in logs and ``Referer``) for a store that outlives
the page. With ``key_lookup="query:NAME"`` the application passes ``session.id`` on itself,
in its own links; the middleware sends the id in no cookie and no header, on any path.

Each test runs through the ASGI and the WSGI middleware, on every backend.
"""

from __future__ import annotations

import pytest

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.web._support import Client, CountingStorage, MakeClient, Reply, make_store

#: Every route of the test app that touches the session, and every lifecycle method.
PATHS = (
    "/fresh",
    "/id",
    "/get?k=user",
    "/set?visits=2",
    "/count",
    "/save?a=1",
    "/expiry?s=60",
    "/regenerate",
    "/regenerate?then_a=1",
    "/reset",
    "/reset?then_a=1",
    "/clear",
    "/destroy",
    "/destroy?then_a=1",
)


def _with(path: str, sid: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}sid={sid}"


def _assert_carries_no_id(reply: Reply, *ids: str) -> None:
    assert reply.status == 200
    assert reply.header("set-cookie") == [], reply.header("set-cookie")
    for name, value in reply.headers:
        for sid in ids:
            assert sid not in value, f"{name}: {value!r} carries a session id"


@pytest.fixture
def query_store(clock: FakeClock, storage: CountingStorage) -> Store:
    return make_store(clock, storage, key_lookup="query:sid")


async def test_a_live_id_from_the_query_goes_back_in_no_cookie_and_no_header(
    make_client: MakeClient, query_store: Store
) -> None:
    client = make_client(query_store)
    for path in PATHS:
        sid = (await client.get("/setid?user=ada")).text
        assert query_store.get_by_id(sid) is not None

        reply = await client.get(_with(path, sid))
        _assert_carries_no_id(reply, sid)
        if path.startswith(("/regenerate", "/reset", "/destroy")):
            # the session moved to a new id or ended: the old one is dead, and no cookie
            # carried the new one either
            assert query_store.get_by_id(sid) is None, path


async def test_a_new_session_made_for_a_query_client_is_sent_in_no_cookie(
    make_client: MakeClient, query_store: Store
) -> None:
    client = make_client(query_store)
    for path in PATHS:
        planted = query_store.new_id()  # well formed, unknown
        _assert_carries_no_id(await client.get(_with(path, planted)), planted)


async def test_the_query_id_is_the_only_way_back_into_the_session(
    make_client: MakeClient, query_store: Store
) -> None:
    client = make_client(query_store)
    sid = (await client.get("/setid?user=ada")).text
    assert (await client.get(_with("/get?k=user", sid))).text == '"ada"'
    # a client that kept nothing but cookies and headers has no session: nothing was set
    assert (await client.get("/get?k=user", cookie=f"sid={sid}")).text == "null"
    assert (await client.get("/get?k=user", headers={"sid": sid})).text == "null"


async def test_a_session_id_in_the_query_is_not_cookied_by_a_cookie_store(
    client: Client, store: Store
) -> None:
    """The default (cookie) store ignores an id in the query, and never copies it to a cookie:
    a link ``?session_id=<attacker's live id>`` logs nobody into the attacker's session."""
    attacker = (await client.get("/setid?user=mallory")).text
    reply = await client.get(f"/count?session_id={attacker}")
    assert reply.text == "1"  # a new session, not the attacker's
    assert reply.cookie.value not in ("", attacker)
    _assert_carries_no_id(
        await client.get(f"/get?k=user&session_id={attacker}"), attacker
    )  # read only: no cookie at all
