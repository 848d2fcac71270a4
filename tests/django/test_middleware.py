"""``sessionkit.django.SessionMiddleware`` through Django's test clients (WSGI-style and ASGI).

The cookie Django's settings describe (or ``SESSIONKIT`` where it sets a field), sessionkit's
rules on the way in (a key sent twice, or malformed, or unknown, is never used) and out (no
record for a visitor who wrote nothing, a stale cookie left alone), and a storage outage
answered with a 503 without ``Set-Cookie`` wherever it is met in the request.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from datetime import timedelta
from http.cookies import Morsel
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import AsyncClient, Client, override_settings

from sessionkit.django import SessionStore
from sessionkit_memory import MemoryStorage
from tests.django.conftest import using
from tests.web._support import CountingStorage

pytestmark = pytest.mark.usefixtures("urls")
NAME = "sessionid"


@pytest.fixture
def urls() -> Iterator[None]:
    with override_settings(ROOT_URLCONF="tests.django._views"):
        yield


@pytest.fixture
def counting() -> Iterator[CountingStorage]:
    storage = CountingStorage(MemoryStorage())
    with using(storage):
        yield storage


def _cookie(response: HttpResponse, name: str = NAME) -> Morsel[str] | None:
    return response.cookies.get(name)


def _live_key(client: Client, **data: str) -> str:
    """Write ``data`` to the client's session; return its key (from the cookie)."""
    cookie = _cookie(client.get("/put", data))
    assert cookie is not None and cookie.value
    return cookie.value


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert response.cookies == {} and "Set-Cookie" not in response
    assert response["Cache-Control"] == "no-store"
    assert response.content == b"Service Unavailable: session storage failed\n"


# -- the cookie ---------------------------------------------------------------------------------


def test_a_session_lives_across_requests_on_every_storage(storage: str) -> None:
    client = Client()
    key = _live_key(client, user="ada")
    cookie = _cookie(client.get("/put", {"n": "1"}))
    assert cookie is not None and cookie.value == key
    assert client.get("/read", {"user": "", "n": ""}).json() == {"user": "ada", "n": "1"}


def test_the_cookie_is_the_one_djangos_settings_describe() -> None:
    response = Client().get("/put", {"a": "1"})
    cookie = _cookie(response)
    assert cookie is not None
    assert (cookie["max-age"], cookie["path"], cookie["samesite"]) == (1209600, "/", "Lax")
    assert cookie["httponly"] is True and not cookie["secure"] and not cookie["domain"]
    assert response["Vary"] == "Cookie"
    with override_settings(
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_AGE=600,
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SAMESITE=None,
    ):
        cookie = _cookie(Client().get("/put", {"a": "1"}), "sid")
    assert cookie is not None
    assert (cookie["max-age"], cookie["path"], cookie["domain"]) == (600, "/app", "example.com")
    assert cookie["secure"] is True and not cookie["httponly"] and not cookie["samesite"]


def test_sessionkit_fields_win_over_djangos_settings() -> None:
    fields: dict[str, Any] = {
        "key_lookup": "cookie:sk",
        "expiration": timedelta(hours=1),
        "cookie_secure": True,
        "cookie_same_site": "Strict",
    }
    with using("memory://", **fields), override_settings(SESSION_COOKIE_PATH="/app"):
        client = Client()
        response = client.get("/put", {"a": "1"})
        cookie = _cookie(response, "sk")
        assert _cookie(response) is None and cookie is not None
        assert (cookie["max-age"], cookie["samesite"], cookie["secure"]) == (3600, "Strict", True)
        assert cookie["path"] == "/app"  # not set by SESSIONKIT: Django's
        client.cookies["sk"]["secure"] = False  # the test client would not send it back
        assert client.get("/read", {"a": ""}).json() == {"a": "1"}


def test_expire_at_browser_close_sends_a_session_cookie() -> None:
    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True):
        cookie = _cookie(Client().get("/put", {"a": "1"}))
    assert cookie is not None and cookie["max-age"] == "" and cookie["expires"] == ""
    cookie = _cookie(Client().get("/expiry", {"s": "0"}))
    assert cookie is not None and cookie["max-age"] == ""


def test_set_expiry_gives_the_cookie_its_max_age() -> None:
    cookie = _cookie(Client().get("/expiry", {"s": "300"}))
    assert cookie is not None and cookie["max-age"] == 300


def test_a_read_only_request_sets_no_cookie_but_varies() -> None:
    client = Client()
    _live_key(client, a="1")
    response = client.get("/read", {"a": ""})
    assert _cookie(response) is None and response["Vary"] == "Cookie"
    assert "Vary" not in client.get("/noop")


def test_an_emptied_session_keeps_its_key_record_and_cookie(counting: CountingStorage) -> None:
    """What Django's ``test_empty_session_saved`` checks, through sessionkit's store."""
    client = Client()
    key = _live_key(client, foo="bar")
    response = client.get("/emptied")
    cookie = _cookie(response)
    assert cookie is not None and cookie.value == key and response["Vary"] == "Cookie"
    assert SessionStore(key).load() == {}
    assert SessionStore().exists(key)


def test_flush_expires_the_cookie_and_takes_the_record() -> None:
    client = Client()
    key = _live_key(client, a="1")
    response = client.get("/flush")
    cookie = _cookie(response)
    assert cookie is not None and cookie.value == "" and cookie["max-age"] == 0
    assert not SessionStore().exists(key)


def test_cycle_key_sends_the_new_key() -> None:
    client = Client()
    old = _live_key(client, a="1")
    response = client.get("/cycle")
    new = response.json()["key"]
    cookie = _cookie(response)
    assert cookie is not None and cookie.value == new != old
    assert client.get("/read", {"a": ""}).json() == {"a": "1"}


def test_values_keep_their_types_through_requests(storage: str) -> None:
    client = Client()
    client.get("/typed")
    types = {k: v[0] for k, v in client.get("/typed/read").json().items()}
    assert types == {
        "when": "datetime",
        "day": "date",
        "price": "Decimal",
        "tags": "set",
        "pair": "tuple",
    }


def test_messages_are_kept_in_the_session() -> None:
    client = Client()
    response = client.get("/message")
    assert _cookie(response) is not None
    assert client.get("/messages").json() == ["hello"]
    assert client.get("/messages").json() == []


def test_a_5xx_response_saves_nothing(counting: CountingStorage) -> None:
    response = Client().get("/error")
    assert response.status_code == 500 and _cookie(response) is None
    assert counting.writes == 0


def test_a_session_above_max_size_is_an_error_of_the_app_and_stores_nothing(
    counting: CountingStorage,
) -> None:
    with using(counting, max_size=256):
        response = Client(raise_request_exception=False).get("/put", {"a": "x" * 300})
    assert response.status_code == 500 and _cookie(response) is None
    assert counting.writes == 0


def test_a_session_deleted_meanwhile_is_djangos_session_interrupted() -> None:
    client = Client(raise_request_exception=False)
    key = _live_key(client, a="1")
    response = client.get("/raced")  # deleted by a log-out while the request ran
    assert response.status_code == 400 and _cookie(response) is None
    assert not SessionStore().exists(key)  # not resurrected
    assert client.get("/read", {"a": ""}).json() == {"a": None}


# -- ids on the way in --------------------------------------------------------------------------


def test_an_unknown_key_is_never_adopted(counting: CountingStorage) -> None:
    planted = secrets.token_urlsafe(32)
    client = Client()
    client.cookies[NAME] = planted
    response = client.get("/put", {"user": "mallory"})
    cookie = _cookie(response)
    assert cookie is not None and cookie.value not in ("", planted)
    assert counting.inner.get(planted) is None


@pytest.mark.parametrize("value", ["../x", "a" * 100, "*", '{"$gt":""}'])
def test_a_malformed_key_costs_no_storage_call(counting: CountingStorage, value: str) -> None:
    client = Client()
    client.cookies[NAME] = value
    assert client.get("/read", {"a": ""}).json() == {"a": None}
    assert sum(counting.calls.values()) == 0


def test_a_key_sent_twice_is_not_used(counting: CountingStorage) -> None:
    key = _live_key(Client(), a="1")
    counting.clear()
    twice = f"{NAME}={key}; {NAME}={key}"
    assert Client().get("/read", {"a": ""}, headers={"Cookie": twice}).json() == {"a": None}
    assert counting.reads == 0


@pytest.mark.parametrize("every_request", [False, True])
@pytest.mark.parametrize("path", ["/read?a=", "/noop", "/flush", "/cycle", "/a/flush", "/a/cycle"])
def test_visitors_who_write_nothing_create_no_records(
    counting: CountingStorage, path: str, every_request: bool
) -> None:
    """No record for an anonymous visitor, with no cookie or a stale one (CVE-2015-5143 and
    -5963 in Django), ``SESSION_SAVE_EVERY_REQUEST`` or not."""
    with override_settings(SESSION_SAVE_EVERY_REQUEST=every_request):
        for cookie in (None, secrets.token_urlsafe(32), "junk"):
            client = Client()
            if cookie is not None:
                client.cookies[NAME] = cookie
            response = client.get(path)
            assert response.status_code == 200
            assert counting.writes == counting.calls["delete"]  # deletes only
            set_cookie = _cookie(response)
            assert set_cookie is None or set_cookie.value == ""  # at most an expiry
    assert not list(counting.inner.scan())


def test_a_stale_cookie_is_left_alone(counting: CountingStorage) -> None:
    """Deleting it could land after a log-in's new cookie from a racing request."""
    client = Client()
    client.cookies[NAME] = secrets.token_urlsafe(32)
    assert _cookie(client.get("/read", {"a": ""})) is None


def test_save_every_request_renews_a_live_session() -> None:
    client = Client()
    key = _live_key(client, a="1")
    with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
        cookie = _cookie(client.get("/noop"))
    assert cookie is not None and cookie.value == key


# -- a storage outage ---------------------------------------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, "sessionkit")
    caplog.set_level(logging.DEBUG, "django.request")
    return caplog


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "sessionkit" and r.levelno == logging.WARNING
    ]


def _django_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django.request" and r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("path", "down"),
    [
        ("/read?a=", "get"),  # the view loads its session
        ("/put?a=2", "get"),  # the view writes, which loads first
        ("/put?a=2", "replace"),  # the save at the end of the request
        ("/cycle", "take"),  # a key change
        ("/flush", "delete"),  # a log-out
        ("/user", "get"),  # django.contrib.auth's lazy user, read in the view
        ("/message", "get"),  # the messages middleware, after the view: Django's 500 page
        ("/a/read?a=", "get"),  # an async view
        ("/a/put?a=2", "replace"),
    ],
)
def test_an_outage_answers_503_without_a_cookie(
    counting: CountingStorage, logs: pytest.LogCaptureFixture, path: str, down: str
) -> None:
    client = Client(raise_request_exception=False)
    key = _live_key(client, a="1")
    counting.failing = frozenset({down})
    for _ in range(3):
        _assert_unavailable(client.get(path))
    counting.failing = frozenset()
    assert client.get("/read", {"a": ""}).json() == {"a": "1"}  # nobody was logged out
    assert SessionStore(key).load()["a"] == "1"
    warnings = _warnings(logs)
    assert len(warnings) == 1 and "answered 503 without Set-Cookie" in warnings[0]
    assert not _django_errors(logs)  # no traceback per request from Django


def test_the_outage_answers_503_under_asgi(counting: CountingStorage) -> None:
    client = AsyncClient(raise_request_exception=False)

    async def scenario() -> None:
        response = await client.get("/a/put", {"a": "1"})
        assert response.status_code == 200 and _cookie(response) is not None
        counting.down = True
        for path in ("/a/read?a=", "/read?a=", "/a/put?a=2", "/message"):
            _assert_unavailable(await client.get(path))
        counting.down = False
        assert (await client.get("/a/read", {"a": ""})).json() == {"a": "1"}

    asyncio.run(scenario())


def test_async_views_work_on_every_storage(storage: str) -> None:
    async def scenario() -> None:
        client = AsyncClient()
        key = (await client.get("/a/put", {"a": "1"})).json()["key"]
        assert (await client.get("/a/read", {"a": ""})).json() == {"a": "1"}
        response = await client.get("/a/cycle")
        new = response.json()["key"]
        assert new != key and _cookie(response).value == new  # type: ignore[union-attr]
        assert not SessionStore().exists(key)
        response = await client.get("/a/flush")
        assert _cookie(response).value == ""  # type: ignore[union-attr]
        assert not SessionStore().exists(new)

    asyncio.run(scenario())


def test_async_login_and_logout(storage: str) -> None:
    """``django.contrib.auth``'s ``alogin()``/``alogout()``: a new key, then no record."""
    name = f"async-{secrets.token_hex(4)}"
    get_user_model().objects.create_user(name, password="Correct-Horse-7")

    async def scenario() -> None:
        client = AsyncClient()
        before = _cookie(await client.get("/a/put", {"cart": "book"}))
        assert before is not None
        response = await client.get("/a/login", {"u": name, "p": "Correct-Horse-7"})
        after = _cookie(response)
        assert after is not None and after.value not in ("", before.value)
        assert not await SessionStore().aexists(before.value)
        assert (await client.get("/a/who")).json() == {"user": name}
        assert (await client.get("/a/read", {"cart": ""})).json() == {"cart": "book"}
        gone = _cookie(await client.get("/a/logout"))
        assert gone is not None and gone.value == ""
        assert not await SessionStore().aexists(after.value)
        assert (await client.get("/a/who")).json() == {"user": "AnonymousUser"}

    asyncio.run(scenario())


class AsyncOnly:
    """A memory storage noting every call of a sync method."""

    def __init__(self) -> None:
        self.inner = MemoryStorage()
        self.sync_calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name.startswith("a"):
            return method

        def call(*args: Any) -> Any:
            self.sync_calls.append(name)
            return method(*args)

        return call


def test_async_views_under_asgi_make_only_async_storage_calls() -> None:
    """The session's async API and the middleware's response side await the storage's async
    twins: no sync call blocks the event loop."""
    storage = AsyncOnly()

    async def scenario() -> None:
        client = AsyncClient()
        await client.get("/a/put", {"a": "1"})
        assert (await client.get("/a/read", {"a": ""})).json() == {"a": "1"}
        await client.get("/a/put", {"b": "2"})
        await client.get("/a/cycle")
        await client.get("/a/flush")

    with using(storage):
        asyncio.run(scenario())
        assert storage.sync_calls == []


def test_a_view_that_catches_the_error_is_served_without_a_cookie(
    counting: CountingStorage,
) -> None:
    client = Client()
    _live_key(client, a="1")
    counting.down = True
    response = client.get("/caught")
    counting.down = False
    assert response.status_code == 200 and response.json() == {"degraded": True}
    assert _cookie(response) is None


@pytest.mark.parametrize("settings", [{"DEBUG": True}, {"DEBUG_PROPAGATE_EXCEPTIONS": True}])
def test_the_outage_is_a_503_in_debug_too(counting: CountingStorage, settings: Any) -> None:
    client = Client(raise_request_exception=False)
    _live_key(client, a="1")
    counting.down = True
    with override_settings(**settings):
        _assert_unavailable(client.get("/message"))
        _assert_unavailable(client.get("/read", {"a": ""}))
    counting.down = False
