"""Regression tests after Django's session-store flooding advisories.

* **CVE-2015-5143** (Django 1.4.21 / 1.7.9 / 1.8.3): "Denial-of-service possibility by filling
  session store". Django's cache and database backends *created and saved an empty session*
  when a request carried a session key they did not know, so a script sending random session
  cookies grew the store by one record per request.
* **CVE-2015-5963** (Django 1.4.22 / 1.7.10 / 1.8.4): "Denial-of-service possibility in
  logout() view by filling session store". ``session.flush()`` and ``cycle_key()`` on an empty
  anonymous session -- the logout view, or ``contrib.messages`` -- saved a new empty record per
  request.

sessionkit's rule (security.md 16): a request that never puts data in its session creates no
record, whatever id it carries and whatever lifecycle call the app makes. These tests send
random unknown ids, malformed ids, ids destroyed earlier and no id at all to views that only
read, log out (``destroy``), flush (``reset``) or cycle the key (``regenerate``), through the ASGI
and the WSGI middleware, on every backend; then count the storage's records from outside the
store and the storage writes it saw.
"""

from __future__ import annotations

import secrets

import pytest

from tests.security._records import stored_keys
from tests.web._support import Browser, Client, CountingStorage, SetCookie

N = 25

#: Views that never put data in the session: read-only, and Django's flushing/cycling ones.
VIEWS = ["/get?k=user", "/noop", "/keys", "/id", "/destroy", "/reset", "/regenerate", "/clear"]


def _random_ids() -> list[str]:
    """Well-formed ids (the default shape: 43 URL-safe characters) that no server made."""
    return [secrets.token_urlsafe(32) for _ in range(N)]


def _junk_ids() -> list[str]:
    return [
        "",
        "x",
        "a" * 44,
        "a" * 42,
        "../../etc/passwd",
        "*",
        '{"$gt":""}',
        secrets.token_hex(64),
        secrets.token_urlsafe(32)[:-1] + "!",
    ]


def _assert_no_live_cookie(cookies: list[SetCookie], path: str) -> None:
    for cookie in cookies:
        assert cookie.expired, f"{path} set a live cookie"


async def test_cve_2015_5143_random_unknown_session_ids_create_no_records(
    client: Client, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    for sid in _random_ids():
        for path in VIEWS:
            reply = await client.get(path, cookie=f"session_id={sid}")
            assert reply.status == 200, path
            _assert_no_live_cookie(reply.cookies, path)
    assert storage.writes == 0
    assert storage.reads <= N * len(VIEWS)  # at most one lookup per request, nothing else
    assert stored_keys(storage, request) == []


async def test_cve_2015_5143_malformed_session_ids_create_no_records_and_cost_no_reads(
    client: Client, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    for sid in _junk_ids():
        for path in VIEWS:
            reply = await client.get(path, cookie=f"session_id={sid}")
            assert reply.status == 200, (sid, path)
            _assert_no_live_cookie(reply.cookies, path)
    assert storage.calls == {}
    assert stored_keys(storage, request) == []


async def test_cve_2015_5963_anonymous_logout_flush_and_cycle_key_create_no_records(
    client: Client, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """No cookie at all: the logout view (``destroy``), ``flush`` (``reset``) and
    ``cycle_key`` (``regenerate``) hit again and again by anonymous visitors."""
    for _ in range(N):
        for path in ("/destroy", "/reset", "/regenerate", "/save"):
            reply = await client.get(path)
            assert reply.status == 200
            _assert_no_live_cookie(reply.cookies, path)
    assert storage.calls == {}
    assert stored_keys(storage, request) == []


async def test_ids_of_destroyed_sessions_replayed_create_no_records(
    client: Client, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """A logged-out browser (or a script replaying old cookies) keeps sending its dead id."""
    dead: list[str] = []
    for _ in range(5):
        browser = Browser(client)
        await browser.get("/set?user=ada")
        assert browser.value is not None
        dead.append(browser.value)
        await browser.get("/destroy")
    assert stored_keys(storage, request) == []
    storage.clear()
    for sid in dead:
        for path in VIEWS:
            reply = await client.get(path, cookie=f"session_id={sid}")
            assert reply.status == 200
            _assert_no_live_cookie(reply.cookies, path)
    assert storage.writes == 0
    assert stored_keys(storage, request) == []


async def test_control_the_record_count_sees_real_sessions(
    client: Client, storage: CountingStorage, request: pytest.FixtureRequest
) -> None:
    """Control: N logged-in visitors are N records, each under the id of its cookie, and
    their read-only visits afterwards add none."""
    ids = set()
    for _ in range(5):
        reply = await client.get("/set?user=ada")
        ids.add(reply.cookie.value)
    for sid in ids:
        await client.get("/get?k=user", cookie=f"session_id={sid}")
    assert sorted(ids) == stored_keys(storage, request)
