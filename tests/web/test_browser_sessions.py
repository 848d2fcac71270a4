"""Sessions that end with the browser, per session (issue 21): ``set_expiry(timedelta(0))``
and Flask's ``session.permanent = False``, through the ASGI and WSGI middleware and Flask on
every backend; the server-side side of it is in
``tests/security/test_hardening_browser_session_expiry.py``.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sessionkit import Store
from sessionkit._envelope import decode_record
from sessionkit._values import DecodeError, TypeRegistry
from sessionkit.testing import FakeClock
from tests.web._parity import (
    Kind,
    build,
)
from tests.web._support import CountingStorage, make_store


async def test_a_lifetime_set_afterwards_brings_max_age_back(kind: Kind, store: Store) -> None:
    client = build(kind, store)
    first = await client.get("/browser")
    assert "max-age" not in first.cookie.attrs
    again = await client.get("/expiry?s=600", cookie=f"session_id={first.cookie.value}")
    assert again.cookie.attrs["max-age"] == "600"


async def test_regenerate_keeps_the_browser_session_and_reset_ends_it(
    kind: Kind, store: Store
) -> None:
    client = build(kind, store)
    cookie = f"session_id={(await client.get('/browser')).cookie.value}"
    moved = await client.get("/regenerate?user=ada", cookie=cookie)
    assert moved.cookie.value != cookie.partition("=")[2]
    assert "max-age" not in moved.cookie.attrs
    cookie = f"session_id={moved.cookie.value}"
    fresh = await client.get("/reset?user=bob", cookie=cookie)
    assert fresh.cookie.attrs["max-age"] == "86400"


def test_flask_permanent_reads_and_writes_the_flag(
    clock: FakeClock, storage: CountingStorage
) -> None:
    import flask

    from sessionkit.flask import init_app

    store = make_store(clock, storage)
    app = flask.Flask(__name__)
    init_app(app, store)

    @app.before_request
    def keep_permanent() -> None:  # the usual Flask idiom: must cost nothing by itself
        if flask.request.args.get("keep") == "1":
            flask.session.permanent = True

    @app.get("/login")
    def login() -> str:
        flask.session["user"] = "ada"
        flask.session.permanent = flask.request.args.get("remember") == "1"
        return "ok"

    @app.get("/state")
    def state() -> dict[str, object]:
        return {"permanent": flask.session.permanent, "user": flask.session.get("user")}

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    client = app.test_client(use_cookies=False)
    reply = client.get("/login?remember=0")
    sid = reply.headers["Set-Cookie"].split(";")[0].partition("=")[2]
    assert "Max-Age" not in reply.headers["Set-Cookie"]
    cookie = {"Cookie": f"session_id={sid}"}
    assert client.get("/state", headers=cookie).json == {"permanent": False, "user": "ada"}

    storage.clear()
    untouched = client.get("/plain?keep=1", headers=cookie)  # permanent = True, never read
    assert untouched.text == "plain" and storage.calls == {} and "Vary" not in untouched.headers

    made_permanent = client.get("/state?keep=1", headers=cookie)  # applied once it is read
    assert made_permanent.json == {"permanent": True, "user": "ada"}
    assert "Max-Age=86400" in made_permanent.headers["Set-Cookie"]
    assert client.get("/state", headers=cookie).json == {"permanent": True, "user": "ada"}
    storage.clear()
    again = client.get("/state?keep=1", headers=cookie)  # already permanent: no write
    assert storage.writes == 0 and "Set-Cookie" not in again.headers


def _envelope(**fields: object) -> bytes:
    env = {"v": 1, "c": 1.0, "t": 2.0, "l": None, "d": {"a": 1}, **fields}
    return json.dumps(env).encode()


def test_records_written_before_read_as_before_and_a_bad_flag_is_unreadable() -> None:
    registry = TypeRegistry()
    assert decode_record(registry, _envelope()).browser is False  # a record of an earlier release
    assert decode_record(registry, _envelope(b=True)).browser is True
    for bad in (_envelope(b=False), _envelope(b=1), _envelope(b=True, l=60.0)):
        with pytest.raises(DecodeError):
            decode_record(registry, bad)


def test_set_expiry_still_refuses_negative_and_overlong_lifetimes(store: Store) -> None:
    session = store.load(None)
    for bad in (timedelta(seconds=-1), timedelta(days=401), 0):
        with pytest.raises(ValueError, match="timedelta"):
            session.set_expiry(bad)  # type: ignore[arg-type]
