"""Flash messages for ASGI and WSGI apps (``sessionkit.flash`` / ``get_flashed_messages``;
issue 21), through both middlewares and Flask, on every backend; Flask's own ``flask.flash``
reads and writes the same queue.
"""

from __future__ import annotations

import json

from sessionkit import Store, flash, get_flashed_messages
from sessionkit.testing import FakeClock
from tests.web._parity import (
    Kind,
    build,
)
from tests.web._support import CountingStorage, make_store


async def test_a_message_is_shown_once_in_a_later_request(kind: Kind, store: Store) -> None:
    client = build(kind, store)
    first = await client.get("/flash?message=saved")
    cookie = f"session_id={first.cookie.value}"
    await client.get("/flash?error=disk%20full", cookie=cookie)
    shown = await client.get("/flashes", cookie=cookie)
    assert json.loads(shown.text) == [["message", "saved"], ["error", "disk full"]]
    assert json.loads((await client.get("/flashes", cookie=cookie)).text) == []  # once only


async def test_a_category_filter_returns_some_and_removes_all(kind: Kind, store: Store) -> None:
    client = build(kind, store)
    cookie = f"session_id={(await client.get('/flash?info=a&error=b')).cookie.value}"
    assert json.loads((await client.get("/flashes?only=error", cookie=cookie)).text) == [
        ["error", "b"]
    ]
    assert json.loads((await client.get("/flashes", cookie=cookie)).text) == []


async def test_reading_an_empty_queue_writes_nothing(
    kind: Kind, clock: FakeClock, storage: CountingStorage
) -> None:
    client = build(kind, make_store(clock, storage))
    cookie = f"session_id={(await client.get('/set?a=1')).cookie.value}"
    storage.clear()
    reply = await client.get("/flashes", cookie=cookie)
    assert reply.text == "[]" and storage.writes == 0 and reply.header("set-cookie") == []


def test_flask_and_sessionkit_share_one_queue(store: Store) -> None:
    import flask

    from sessionkit.flask import init_app

    app = flask.Flask(__name__)
    init_app(app, store)

    @app.get("/mine")
    def mine() -> str:
        flash(flask.session._get_current_object(), "from sessionkit", "info")  # type: ignore[attr-defined]
        flask.flash("from flask")
        return "ok"

    @app.get("/show")
    def show() -> str:
        return json.dumps(flask.get_flashed_messages(with_categories=True))

    client = app.test_client()
    client.get("/mine")
    assert json.loads(client.get("/show").text) == [
        ["info", "from sessionkit"],
        ["message", "from flask"],
    ]


def test_messages_are_any_storable_value(store: Store) -> None:
    session = store.load(None)
    flash(session, {"text": "saved", "id": 3}, "toast")
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None
    assert get_flashed_messages(loaded) == [{"text": "saved", "id": 3}]
    assert get_flashed_messages(loaded) == []
