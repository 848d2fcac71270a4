"""Hardening (issue 21): an ``on_error`` hook cannot break requirement 21's "503 without
``Set-Cookie``".

Why it matters: the 503 of a storage outage carries no cookie so that nobody is logged out by
it. An application's error page is ordinary code: it may copy headers from a template
response, a framework default or a helper that sets a consent cookie. If those reached the
503, a one-minute outage would overwrite or expire every visitor's session cookie. So whatever
the hook returns, ``Set-Cookie``, the session's own header (``key_lookup="header:..."``) and
the headers the response's framing depends on are dropped, and a header line that could split
the response is never sent; the status stays the library's.

Runs through the ASGI and WSGI middleware and Flask, on every backend.
"""

from __future__ import annotations

from typing import Any

import pytest

from sessionkit import ErrorResponse, SessionKitError
from sessionkit.testing import FakeClock
from tests.web._parity import KINDS, Kind, build
from tests.web._support import CountingStorage, make_store

HOSTILE_HEADERS = [
    ("Set-Cookie", "session_id=; Max-Age=0"),
    ("set-cookie", "other=1"),
    ("X-Session-Id", "planted"),
    ("Content-Length", "0"),
    ("Transfer-Encoding", "chunked"),
    ("X-Split", "a\r\nSet-Cookie: injected=1"),
    ("Bad Name", "x"),
    ("Retry-After", "30"),
]


def hostile(request: Any, error: SessionKitError) -> ErrorResponse:
    return ErrorResponse("down for a moment", headers=HOSTILE_HEADERS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lookup", ["cookie:session_id", "header:X-Session-Id"])
async def test_whatever_the_hook_returns_the_503_sets_no_cookie_and_no_id(
    kind: Kind, lookup: str, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, key_lookup=lookup)
    client = build(kind, store, on_error=hostile)
    first = await client.get("/set?user=ada")
    sid = first.cookie.value if lookup.startswith("cookie") else first.header("x-session-id")[0]
    by_cookie = lookup.startswith("cookie")
    cookie, headers = (f"session_id={sid}", None) if by_cookie else (None, {"X-Session-Id": sid})
    storage.down = True
    reply = await client.get("/get?k=user", cookie=cookie, headers=headers)
    assert reply.status == 503 and reply.text == "down for a moment"
    assert reply.header("set-cookie") == []
    if not by_cookie:  # the session's own header; under the cookie transport, an app header
        assert reply.header("x-session-id") == []
    assert reply.header("transfer-encoding") == []
    assert reply.header("x-split") == [] and reply.header("bad name") == []
    assert reply.header("content-length") == [str(len("down for a moment"))]
    assert reply.header("retry-after") == ["30"]  # what is safe goes through
    storage.down = False
    assert (await client.get("/get?k=user", cookie=cookie, headers=headers)).text == '"ada"'
