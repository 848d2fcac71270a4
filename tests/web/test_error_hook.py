"""The error hook (issue 21): the 503 answered on a storage failure takes its body and headers
from the application's ``on_error`` (JSON for an API, a page for a browser), through the ASGI
and WSGI middleware and Flask, on every backend. The status stays, a hook that raises falls
back to the default, and no hook can set a cookie (``tests/security/
test_hardening_error_hook_sets_no_cookie.py``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from sessionkit import ConfigError, ErrorResponse, SessionKitError, StorageError, Store
from sessionkit.asgi import SessionMiddleware as ASGISessionMiddleware
from sessionkit.wsgi import SessionMiddleware as WSGISessionMiddleware
from tests.web._parity import (
    Kind,
    asgi_app,
    build,
    flask_app,
    wsgi_app,
)
from tests.web._support import CountingStorage

DEFAULT_BODY = "Service Unavailable: session storage failed\n"


def _accept(request: Any) -> str:
    """The request's Accept header, whatever the integration hands the hook."""
    if isinstance(request, dict) and "headers" in request:  # an ASGI scope
        return dict(request["headers"]).get(b"accept", b"").decode()
    if isinstance(request, dict):  # a WSGI environ
        return str(request.get("HTTP_ACCEPT", ""))
    return str(request.headers.get("Accept", ""))  # a Flask request


def negotiating(request: Any, error: SessionKitError) -> ErrorResponse:
    assert isinstance(error, StorageError)
    if "application/json" in _accept(request):
        body = json.dumps({"error": "session_storage_unavailable"})
        return ErrorResponse(body, "application/json", [("Retry-After", "5")])
    return ErrorResponse("<h1>Back soon</h1>", "text/html; charset=utf-8", [("Retry-After", "5")])


async def _failing(kind: Kind, store: Store, storage: CountingStorage, **options: Any) -> Any:
    client = build(kind, store, **options)
    cookie = f"session_id={(await client.get('/set?user=ada')).cookie.value}"
    storage.down = True
    return client, cookie


async def test_the_hook_chooses_body_and_headers_by_what_the_client_accepts(
    kind: Kind, store: Store, storage: CountingStorage
) -> None:
    client, cookie = await _failing(kind, store, storage, on_error=negotiating)
    api = await client.get("/get?k=user", cookie=cookie, headers={"Accept": "application/json"})
    assert api.status == 503
    assert json.loads(api.text) == {"error": "session_storage_unavailable"}
    assert api.header("content-type") == ["application/json"]
    assert api.header("retry-after") == ["5"]
    assert api.header("content-length") == [str(len(api.text))]
    assert api.header("cache-control") == ["no-store"]
    page = await client.get("/get?k=user", cookie=cookie, headers={"Accept": "text/html"})
    assert page.status == 503 and page.text == "<h1>Back soon</h1>"
    assert page.header("content-type") == ["text/html; charset=utf-8"]
    # A save that fails goes through the hook too (no cookie: nothing to load, a write fails).
    fresh = await client.get("/set?a=1", headers={"Accept": "application/json"})
    assert fresh.status == 503 and fresh.header("retry-after") == ["5"]
    assert fresh.header("set-cookie") == []


async def test_a_hook_that_raises_falls_back_to_the_default_503(
    kind: Kind, store: Store, storage: CountingStorage, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: Any, error: SessionKitError) -> ErrorResponse:
        raise RuntimeError("template missing")

    client, cookie = await _failing(kind, store, storage, on_error=broken)
    with caplog.at_level(logging.ERROR, logger="sessionkit"):
        reply = await client.get("/get?k=user", cookie=cookie)
    assert reply.status == 503 and reply.text == DEFAULT_BODY
    assert reply.header("set-cookie") == []
    assert any("on_error hook failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "answer",
    [
        "just a string",
        ErrorResponse(12345),  # type: ignore[arg-type]
        ErrorResponse("x", content_type="text/html\r\nSet-Cookie: a=b"),
    ],
    ids=["not-an-error-response", "bad-body", "bad-content-type"],
)
async def test_a_hook_returning_something_unusable_falls_back_to_the_default(
    kind: Kind, store: Store, storage: CountingStorage, answer: Any
) -> None:
    client, cookie = await _failing(kind, store, storage, on_error=lambda r, e: answer)
    reply = await client.get("/get?k=user", cookie=cookie)
    assert reply.status == 503 and reply.text == DEFAULT_BODY
    assert reply.header("set-cookie") == []


async def test_without_a_hook_the_503_is_the_plain_default(
    kind: Kind, store: Store, storage: CountingStorage
) -> None:
    client, cookie = await _failing(kind, store, storage)
    reply = await client.get("/get?k=user", cookie=cookie)
    assert reply.status == 503 and reply.text == DEFAULT_BODY
    assert reply.header("content-type") == ["text/plain; charset=utf-8"]


def test_a_hook_that_is_not_callable_is_a_config_error(store: Store) -> None:
    for build_one in (
        lambda: ASGISessionMiddleware(asgi_app(), store, on_error="oops"),
        lambda: WSGISessionMiddleware(wsgi_app(), store, on_error="oops"),
        lambda: flask_app(store, on_error="oops"),
    ):
        with pytest.raises(ConfigError) as caught:
            build_one()
        assert caught.value.field == "on_error"
