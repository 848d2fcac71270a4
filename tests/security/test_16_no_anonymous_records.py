"""Requirement 16 of ``docs/security.md``:

    "Anonymous requests that never write the session create no record (no storage flooding)."

Why it matters: if merely *visiting* a page -- or reading a value that is not there -- created
a session record, anyone could fill the session storage with a loop of anonymous requests
(Django's CVE-2015-5143 and CVE-2015-5963, see ``test_advisory_django_cve_2015_5143_5963.py``):
memory exhausted, Redis evicting real users' sessions, a database growing without bound, and a
``Set-Cookie`` on every response defeating HTTP caches. A session is stored only when the
application puts something in it; until then a request costs no storage write and sets no
cookie.

Every test runs through the ASGI and the WSGI middleware, on every backend; the records are
counted from outside the store (``tests/security/_records.py``: the backend's own scan, or the
Redis / Mongo server read directly).
"""

from __future__ import annotations

import pytest

from sessionkit.testing import FakeClock
from tests.security._records import stored_keys
from tests.web._support import Client, CountingStorage, MakeClient, make_store

#: Routes that read the session, or do nothing with it, or write and undo in one request.
READ_ONLY = [
    "/noop",
    "/get?k=user",
    "/get?k=missing",
    "/all",
    "/keys",
    "/fresh",
    "/id",
    "/delete?k=user",
    "/clear",
]
#: Lifecycle calls on an anonymous session: nothing to delete, nothing left to save.
EMPTY_LIFECYCLE = ["/regenerate", "/reset", "/save", "/reset?user=ada"]
REPEAT = 20


async def test_read_only_anonymous_requests_create_no_record_write_nothing_and_set_no_cookie(
    client: Client, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    for _ in range(REPEAT):
        for path in READ_ONLY:
            reply = await client.get(path)
            assert reply.status == 200, path
            assert reply.header("set-cookie") == [], path
    assert storage.writes == 0
    assert storage.calls == {}  # no cookie, nothing to read either
    assert stored_keys(storage, request) == []


async def test_lifecycle_calls_on_an_empty_anonymous_session_create_no_record(
    client: Client, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """``regenerate``/``reset``/``save`` leaving the session empty store nothing (an empty
    session is never stored) and set no cookie: the client had none to replace."""
    for _ in range(REPEAT):
        for path in EMPTY_LIFECYCLE:
            reply = await client.get(path)
            assert reply.status == 200, path
            assert reply.header("set-cookie") == [], path
    assert storage.writes == 0
    assert stored_keys(storage, request) == []


async def test_anonymous_logout_creates_no_record_and_only_expires_the_cookie(
    client: Client, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """``destroy()`` (a logout view hit by anonymous visitors, as in CVE-2015-5963) deletes
    nothing, stores nothing, and answers with an expired cookie only."""
    for _ in range(REPEAT):
        reply = await client.get("/destroy")
        assert reply.status == 200
        assert reply.cookie.expired
    assert storage.writes == 0
    assert stored_keys(storage, request) == []


@pytest.mark.parametrize("lookup", ["header:X-Session", "query:sid"])
async def test_read_only_anonymous_requests_over_header_or_query_transport_store_nothing(
    make_client: MakeClient,
    clock: FakeClock,
    storage: CountingStorage,
    request: pytest.FixtureRequest,
    lookup: str,
) -> None:
    client = make_client(make_store(clock, storage, key_lookup=lookup))
    for _ in range(REPEAT):
        for path in READ_ONLY:
            reply = await client.get(path)
            assert reply.status == 200
            assert reply.header("set-cookie") == [] and reply.header("x-session") == []
    assert storage.writes == 0
    assert stored_keys(storage, request) == []


async def test_control_one_write_creates_exactly_one_record(
    client: Client, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """Control: the counting sees records (so the zeros above mean something), and a write
    request stores one record under the id its cookie carries."""
    for _ in range(REPEAT):
        await client.get("/get?k=user")
    reply = await client.get("/set?user=ada")
    assert storage.writes == 1
    assert stored_keys(storage, request) == [reply.cookie.value]
