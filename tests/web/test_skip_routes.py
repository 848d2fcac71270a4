"""Skipping routes (issue 21; Fiber's ``Next``, Litestar's ``exclude``): a health check or a
static file under an excluded path gets no session, so it reads nothing, writes nothing, sets
no cookie and adds no ``Vary``, through the ASGI and WSGI middleware and Flask, on every
backend.
"""

from __future__ import annotations

from typing import Any

import pytest

from sessionkit import ConfigError, Store
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


async def _live_cookie(client: Any) -> str:
    reply = await client.get("/set?user=ada")
    return f"session_id={reply.cookie.value}"


async def test_an_excluded_path_reads_writes_and_sends_nothing(
    kind: Kind, store: Store, storage: CountingStorage
) -> None:
    client = build(kind, store, exclude=["^/health$", "^/static/"])
    cookie = await _live_cookie(client)
    storage.clear()
    for path in ("/health", "/static/app.css"):
        reply = await client.get(path, cookie=cookie)
        assert reply.status == 200 and reply.text == "absent"
        assert reply.header("set-cookie") == [] and reply.header("vary") == []
    assert storage.calls == {}
    # Paths the patterns do not match keep their session.
    assert (await client.get("/healthz", cookie=cookie)).text == "present"
    assert (await client.get("/get?k=user", cookie=cookie)).text == '"ada"'


async def test_a_skip_predicate_leaves_its_requests_alone(
    kind: Kind, store: Store, storage: CountingStorage
) -> None:
    if kind == "asgi":
        options: dict[str, Any] = {"skip": lambda scope: scope["path"].startswith("/metrics")}
    elif kind == "wsgi":
        options = {"skip": lambda environ: environ["PATH_INFO"].startswith("/metrics")}
    else:
        options = {"skip": lambda request: request.path.startswith("/metrics")}
    client = build(kind, store, **options)
    cookie = await _live_cookie(client)
    storage.clear()
    reply = await client.get("/metrics", cookie=cookie)
    assert reply.text == "absent" and reply.header("set-cookie") == [] and not reply.header("vary")
    assert storage.calls == {}
    assert (await client.get("/get?k=user", cookie=cookie)).text == '"ada"'


async def test_skip_and_exclude_together_skip_what_either_names(kind: Kind, store: Store) -> None:
    skip: Any = lambda request: False  # noqa: E731
    client = build(kind, store, exclude="^/static/", skip=skip)
    assert (await client.get("/static/x")).text == "absent"
    assert (await client.get("/other")).text == "present"


def test_a_skipped_flask_route_cannot_write_its_session(store: Store) -> None:
    import flask

    from sessionkit import SessionKitError

    app = flask_app(store, exclude="^/static/")

    @app.get("/static/write")
    def write() -> str:
        try:
            flask.session["x"] = 1
        except SessionKitError as exc:
            return str(exc)
        return "written"

    reply = app.test_client().get("/static/write")
    assert "excluded from sessions" in reply.text
    assert reply.headers.get("set-cookie") is None


async def test_an_excluded_websocket_gets_no_session(
    store: Store, storage: CountingStorage
) -> None:
    seen: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append("session" in scope)
        await send({"type": "websocket.close", "code": 1000})

    middleware = ASGISessionMiddleware(app, store, exclude="^/ws/feed$")
    session = store.load(None)
    session["n"] = 1
    session.save()
    storage.clear()
    for path in ("/ws/feed", "/ws/other"):
        scope = {
            "type": "websocket",
            "path": path,
            "query_string": b"",
            "headers": [(b"cookie", f"session_id={session.id}".encode())],
        }
        await middleware(scope, _never, _ignore)
    assert seen == [False, True]
    assert storage.calls == {"get": 1}  # the one route not excluded


async def _never() -> dict[str, Any]:
    raise AssertionError("not called")


async def _ignore(message: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"exclude": "("}, "exclude"),
        ({"exclude": []}, "exclude"),
        ({"exclude": [""]}, "exclude"),
        ({"exclude": 42}, "exclude"),
        ({"skip": "health"}, "skip"),
    ],
)
def test_bad_skip_options_are_config_errors_naming_the_field(
    store: Store, options: dict[str, Any], field: str
) -> None:
    for build_one in (
        lambda: ASGISessionMiddleware(asgi_app(), store, **options),
        lambda: WSGISessionMiddleware(wsgi_app(), store, **options),
        lambda: flask_app(store, **options),
    ):
        with pytest.raises(ConfigError) as caught:
            build_one()
        assert caught.value.field == field
