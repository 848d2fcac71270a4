"""No request pays for an ``isinstance`` against an abstract base class on sessionkit's side.

``Session`` is a ``MutableMapping``, so ``isinstance(x, Session)`` for anything but a session
(``None``: a request whose session is not made yet) runs ``ABCMeta.__instancecheck__`` in
Python; so does Flask's ``is_null_session`` for every response (``NullSession`` is a mapping
too). Each costs about as much as a small function of the read path (docs/performance.md,
*Records decoded once*). Counted here through real request cycles: Starlette, Flask.
"""

from __future__ import annotations

import abc
import sys
from collections import Counter
from typing import Any

import flask
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sessionkit import Session, Store
from sessionkit.asgi import SessionMiddleware
from sessionkit.flask import init_app

REQUESTS = 20


@pytest.fixture
def abc_checks(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every ABC ``isinstance`` made, by the class asked about and the caller's file."""
    seen: Counter[str] = Counter()
    original = abc.ABCMeta.__instancecheck__

    def counting(cls: abc.ABCMeta, instance: Any) -> bool:
        caller = sys._getframe(1).f_code.co_filename
        seen[f"{cls.__name__} from {caller}"] += 1
        return original(cls, instance)

    monkeypatch.setattr(abc.ABCMeta, "__instancecheck__", counting)
    return seen


def _ours(seen: Counter[str]) -> dict[str, int]:
    """The checks sessionkit made, or made Flask make about a session."""
    return {
        where: n
        for where, n in seen.items()
        if "sessionkit" in where or where.startswith(("Session ", "NullSession ", "FlaskSession "))
    }


async def test_starlette_requests_make_no_abc_check(abc_checks: Counter[str]) -> None:
    async def visit(request: Request) -> PlainTextResponse:
        session: Session = request.scope["session"]
        session["n"] = session.get("n", 0) + 1
        return PlainTextResponse(str(session["n"]))

    async def look(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.scope["session"].get("n")))

    store = Store(storage="memory://")
    app = SessionMiddleware(Starlette(routes=[Route("/", visit), Route("/look", look)]), store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/")  # the first request makes the session
        abc_checks.clear()
        for _ in range(REQUESTS):
            assert (await client.get("/look")).status_code == 200
            assert (await client.get("/")).status_code == 200
    assert _ours(abc_checks) == {}


def test_flask_requests_make_no_abc_check(abc_checks: Counter[str]) -> None:
    app = flask.Flask("abc")

    @app.get("/")
    def visit() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    @app.get("/look")
    def look() -> str:
        return str(flask.session.get("n"))

    init_app(app, Store(storage="memory://"))
    client = app.test_client()
    client.get("/")
    abc_checks.clear()
    for _ in range(REQUESTS):
        assert client.get("/look").status_code == 200
        assert client.get("/").status_code == 200
    assert _ours(abc_checks) == {}
