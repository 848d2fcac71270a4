"""Cookie attributes, Vary and the three id transports, read off real responses (both middlewares).

security.md 4, 6-9; api.md "Config" and "Lifecycle".
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionkit import SessionKitError
from sessionkit._cookies import CookieRenderer, http_date
from tests.web._support import Browser, FakeClock, MakeClient, SetCookie, make_store


async def test_default_attributes(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client(make_store(clock))
    reply = await client.get("/set?a=1")
    (line,) = reply.header("set-cookie")
    c = SetCookie.parse(line)
    assert c.name == "session_id" and len(c.value) == 43
    assert c.attrs == {
        "max-age": "86400",
        "expires": http_date(clock.now + 86400),
        "path": "/",
        "httponly": True,
        "samesite": "Lax",
    }
    expires = parsedate_to_datetime(str(c.attrs["expires"]))
    assert expires.timestamp() == clock.now + 86400
    assert str(c.attrs["expires"]).endswith(" GMT")  # RFC 1123, not RFC 850 or asctime


async def test_every_config_attribute_is_rendered(
    make_client: MakeClient, clock: FakeClock
) -> None:
    store = make_store(
        clock,
        key_lookup="cookie:__Secure-sid",
        cookie_domain="example.com",
        cookie_path="/app",
        cookie_secure=True,
        cookie_http_only=False,
        cookie_same_site="strict",
        expiration=timedelta(minutes=30),
    )
    c = (await make_client(store).get("/set?a=1")).cookie
    assert c.name == "__Secure-sid"
    assert c.attrs == {
        "max-age": "1800",
        "expires": http_date(clock.now + 1800),
        "path": "/app",
        "domain": "example.com",
        "secure": True,
        "samesite": "Strict",
    }


async def test_samesite_none_with_secure(make_client: MakeClient, clock: FakeClock) -> None:
    store = make_store(clock, cookie_same_site="None", cookie_secure=True)
    c = (await make_client(store).get("/set?a=1")).cookie
    assert c.attrs["samesite"] == "None" and c.attrs["secure"] is True


async def test_session_only_cookie_has_no_expiry(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client(make_store(clock, cookie_session_only=True))
    c = (await client.get("/set?a=1")).cookie
    assert "max-age" not in c.attrs and "expires" not in c.attrs
    assert c.attrs["path"] == "/" and c.attrs["httponly"] is True


async def test_set_expiry_sets_max_age(make_client: MakeClient, clock: FakeClock) -> None:
    c = (await make_client(make_store(clock)).get("/expiry?s=90")).cookie
    assert c.attrs["max-age"] == "90" and c.attrs["expires"] == http_date(clock.now + 90)


async def test_absolute_timeout_caps_max_age(make_client: MakeClient, clock: FakeClock) -> None:
    store = make_store(clock, expiration=timedelta(hours=1), absolute_timeout=timedelta(hours=2))
    browser = Browser(make_client(store))
    assert (await browser.get("/set?a=1")).cookie.attrs["max-age"] == "3600"
    clock.advance(3000)
    assert (await browser.get("/set?a=2")).cookie.attrs["max-age"] == "3600"
    clock.advance(2400)  # 90 min in, 40 idle: 30 min of the absolute cap left
    c = (await browser.get("/set?a=3")).cookie
    assert c.attrs["max-age"] == "1800" and c.attrs["expires"] == http_date(clock.now + 1800)


async def test_destroy_sends_an_expiry_cookie(make_client: MakeClient, clock: FakeClock) -> None:
    store = make_store(clock, cookie_domain="example.com", cookie_path="/app")
    browser = Browser(make_client(store))
    await browser.get("/set?a=1")
    c = (await browser.get("/destroy")).cookie
    # the same name, path and domain as the cookie it deletes, or the browser keeps the old one
    assert (c.name, c.value) == ("session_id", "")
    assert c.attrs["max-age"] == "0"
    assert parsedate_to_datetime(str(c.attrs["expires"])).timestamp() < clock.now
    assert (c.attrs["path"], c.attrs["domain"]) == ("/app", "example.com")


async def test_vary_cookie_when_the_session_was_read(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = make_client(make_store(clock))
    assert (await client.get("/fresh")).header("vary") == ["Cookie"]
    assert (await client.get("/noop")).header("vary") == []  # untouched: no Vary, no cookie
    assert (await client.get("/noop")).header("set-cookie") == []


@pytest.mark.parametrize(
    ("app_vary", "expected"),
    [
        ("Accept-Encoding", ["Accept-Encoding, Cookie"]),
        ("cookie", ["cookie"]),
        ("Accept-Encoding, Cookie", ["Accept-Encoding, Cookie"]),
    ],
)
async def test_vary_is_merged_never_duplicated(
    make_client: MakeClient, clock: FakeClock, app_vary: str, expected: list[str]
) -> None:
    client = make_client(make_store(clock))
    reply = await client.get(f"/fresh?_vary={app_vary}")
    assert reply.header("vary") == expected


async def test_header_transport(make_client: MakeClient, clock: FakeClock) -> None:
    store = make_store(clock, key_lookup="header:X-Session-Id")
    client = make_client(store)
    first = await client.get("/set?user=ada")
    assert first.header("set-cookie") == []
    (sid,) = first.header("x-session-id")
    assert store.is_valid_id(sid)
    assert first.header("vary") == ["X-Session-Id"]
    again = await client.get("/get?k=user", headers={"X-Session-Id": sid})
    assert again.text == '"ada"' and again.header("x-session-id") == []  # unchanged: not resent
    # a cookie of the same name is not the header
    assert (await client.get("/fresh", cookie=f"X-Session-Id={sid}")).text == "true"
    gone = await client.get("/destroy", headers={"X-Session-Id": sid})
    assert gone.header("x-session-id") == [""]  # empty: the client forgets the id


async def test_query_transport_is_read_only(make_client: MakeClient, clock: FakeClock) -> None:
    store = make_store(clock, key_lookup="query:sid")
    client = make_client(store)
    # the new id goes back in no cookie and no header: the app hands session.id on itself
    first = await client.get("/setid?user=ada")
    assert first.header("set-cookie") == [] and first.header("vary") == []
    sid = first.text
    assert store.get_by_id(sid) is not None
    again = await client.get(f"/setid?sid={sid}&visits=2")
    assert again.text == sid and again.header("set-cookie") == []  # security.md 4
    assert (await client.get(f"/get?sid={sid}&k=user")).text == '"ada"'
    # a cookie of that name is not the query
    assert (await client.get("/fresh", cookie=f"sid={sid}")).text == "true"
    # an unknown id in the query is not adopted
    planted = store.new_id()
    assert (await client.get(f"/setid?sid={planted}&x=1")).text != planted


@pytest.mark.parametrize(
    "bad", ["A" * 40 + ";x=", "A" * 30, "A" * 42 + "\u00e9"], ids=["separator", "short", "latin-1"]
)
async def test_bad_server_id_is_refused_when_made(
    make_client: MakeClient, clock: FakeClock, bad: str
) -> None:
    turned = False

    def generator() -> str:
        # well formed (and strong) while the config and the store sample it, then not
        return bad if turned else secrets.token_urlsafe(32)

    store = make_store(clock, key_generator=generator)
    turned = True
    with pytest.raises(SessionKitError, match="key_generator returned"):
        await make_client(store).get("/set?a=1")
    with pytest.raises(SessionKitError, match="key_generator returned"):
        store.new_id()
    assert store.storage.writes == 0  # type: ignore[attr-defined]


def test_default_ids_have_the_shape_clients_are_held_to(clock: FakeClock) -> None:
    store = make_store(clock)
    ids = {store.new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(store.is_valid_id(i) for i in ids)


def test_expires_date_is_cached_per_second_only(clock: FakeClock) -> None:
    renderer = CookieRenderer(make_store(clock).config)
    a = renderer.set("A" * 43, 60, 1_800_000_000.2)
    b = renderer.set("A" * 43, 60, 1_800_000_000.9)
    c = renderer.set("A" * 43, 60, 1_800_000_001.0)
    assert a == b and a != c
    assert SetCookie.parse(c).attrs["expires"] == http_date(1_800_000_061)


@given(
    st.lists(
        st.tuples(
            # Small ranges, so that lines of different lifetimes often end in one second.
            st.integers(min_value=1_700_000_000, max_value=1_700_000_040),
            st.floats(min_value=0.0, max_value=40.0),
            st.booleans(),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_a_renderer_that_formats_each_second_once_renders_every_line_afresh(
    calls: list[tuple[int, float, bool]],
) -> None:
    """The part after the id is kept per second and lifetime: whatever came before, each
    line is the one a renderer that kept nothing would write, and says what it must (two
    lifetimes ending in the same second still get their own ``Max-Age``)."""
    from sessionkit import Config

    config = Config()
    kept = CookieRenderer(config)
    for now, max_age, browser in calls:
        sid = secrets.token_urlsafe(32)
        line = kept.set(sid, max_age, now, browser)
        assert line == CookieRenderer(config).set(sid, max_age, now, browser)
        c = SetCookie.parse(line)
        assert c.value == sid
        if browser:
            assert "max-age" not in c.attrs and "expires" not in c.attrs
        else:
            seconds = max(1, int(max_age))
            assert c.attrs["max-age"] == str(seconds)
            assert c.attrs["expires"] == http_date(now + seconds)
