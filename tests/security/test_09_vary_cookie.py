"""Requirement 9 of ``docs/security.md``:

    "Responses that read a session carry ``Vary: Cookie``."

Why it matters: a response built from a session is one visitor's page. Without ``Vary: Cookie``
a shared cache (a CDN, a reverse proxy, a corporate proxy) may store it under the URL alone and
serve it to the next visitor -- with that visitor's name, basket or CSRF token, or worse, with
the first visitor's ``Set-Cookie``, handing over the session itself (Flask CVE-2023-30861,
replayed in ``test_advisory_flask_cve_2023_30861.py``). The header is owed whenever the session
was used, whether or not anything was written, and whatever the client sent: no cookie, a live
one, a stale one or a malformed one all produce a page that depends on the ``Cookie`` header.

Each test runs through the ASGI and the WSGI middleware, on every backend.
"""

from __future__ import annotations

import pytest

from sessionkit import Store
from tests.web._support import Client, Reply

#: Every path of the test app that uses its session, reading or writing.
READING_PATHS = (
    "/fresh",
    "/id",
    "/get?k=user",
    "/all",
    "/keys",
    "/set?a=1",
    "/setid?a=1",
    "/count",
    "/delete?k=user",
    "/clear",
    "/expiry?s=60",
    "/save",
    "/regenerate",
    "/reset",
    "/destroy",
)

CLIENT_STATES = ("no-cookie", "live", "unknown", "malformed")


def vary_tokens(reply: Reply) -> list[str]:
    """Every token of every ``Vary`` line, lower-cased."""
    return [t.strip().lower() for line in reply.header("vary") for t in line.split(",")]


async def _cookie_for(state: str, client: Client, store: Store) -> str | None:
    if state == "no-cookie":
        return None
    if state == "live":
        return f"session_id={(await client.get('/setid?user=ada')).text}"
    if state == "unknown":
        return f"session_id={store.new_id()}"
    return "session_id=not-an-id"


@pytest.mark.parametrize("state", CLIENT_STATES)
async def test_every_response_that_used_the_session_varies_by_cookie(
    client: Client, store: Store, state: str
) -> None:
    for path in READING_PATHS:
        cookie = await _cookie_for(state, client, store)
        reply = await client.get(path, cookie=cookie)
        assert reply.status == 200, path
        assert vary_tokens(reply).count("cookie") == 1, (path, reply.header("vary"))


@pytest.mark.parametrize("state", ["live", "unknown"])
async def test_a_read_that_writes_nothing_still_varies_by_cookie(
    client: Client, store: Store, state: str
) -> None:
    """The case a save-driven implementation misses: no write, no ``Set-Cookie``, yet the page
    shows session data."""
    cookie = await _cookie_for(state, client, store)
    reply = await client.get("/get?k=user", cookie=cookie)
    assert reply.header("set-cookie") == []
    assert vary_tokens(reply) == ["cookie"]
