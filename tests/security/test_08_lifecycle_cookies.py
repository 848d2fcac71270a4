"""Requirement 8 of ``docs/security.md``:

    "``destroy()`` expires the cookie; ``regenerate()`` and ``reset()`` replace it."

Why it matters: log-out must leave nothing in the browser that the server would still honour,
and log-in (``regenerate``) must leave nothing of the pre-log-in id, which an attacker may
have planted or seen. The server deleting the record is half of it; the browser must also be
told, in the same response, to drop or replace its cookie -- with exactly the name, path and
domain of the cookie it holds (a browser keys cookies by all three, so a mismatched expiry
leaves the old cookie in place), and with one session cookie per response (two lines for one
cookie leave the browser's choice to the order of headers).

Each test runs through the ASGI and the WSGI middleware, on every backend, with a browser-like
cookie jar (``Browser``) following the responses.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest

from sessionkit import Store
from sessionkit.testing import FakeClock
from tests.web._support import Browser, Client, CountingStorage, MakeClient, SetCookie, make_store


async def _logged_in(client: Client) -> tuple[Browser, str]:
    browser = Browser(client)
    await browser.get("/set?user=ada")
    assert browser.value is not None
    return browser, browser.value


def _assert_expires(cookie: SetCookie, now: float) -> None:
    assert cookie.value == "" and cookie.expired
    assert parsedate_to_datetime(str(cookie.attrs["expires"])).timestamp() < now


@pytest.mark.parametrize("path", ["/destroy", "/reset"])
async def test_ending_a_session_expires_its_cookie_and_deletes_its_record(
    client: Client, store: Store, clock: FakeClock, path: str
) -> None:
    browser, sid = await _logged_in(client)
    reply = await browser.get(path)
    _assert_expires(reply.cookie, clock.now)  # ``reply.cookie``: exactly one Set-Cookie
    assert browser.value is None
    assert store.get_by_id(sid) is None
    # replayed by someone who kept a copy, the old id is dead
    assert (await client.get("/get?k=user", cookie=f"session_id={sid}")).text == "null"


@pytest.mark.parametrize("path", ["/regenerate", "/reset?then_cart=1", "/destroy?then_cart=1"])
async def test_a_new_id_replaces_the_cookie_in_one_line_and_the_old_id_is_dead(
    client: Client, store: Store, path: str
) -> None:
    browser, old = await _logged_in(client)
    reply = await browser.get(path)
    new = reply.cookie  # exactly one session cookie: no expiry racing the new value
    assert not new.expired and new.value not in ("", old)
    assert browser.value == new.value
    assert store.get_by_id(old) is None
    kept = '"ada"' if path == "/regenerate" else "null"
    assert (await browser.get("/get?k=user")).text == kept
    assert (await client.get("/fresh", cookie=f"session_id={old}")).text == "true"


@pytest.mark.parametrize("path", ["/regenerate", "/reset?then_a=1", "/reset", "/destroy"])
async def test_the_replacing_cookie_has_the_name_path_and_domain_of_the_replaced_one(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage, path: str
) -> None:
    store = make_store(
        clock,
        storage,
        key_lookup="cookie:__Secure-sid",
        cookie_path="/app",
        cookie_domain="example.com",
        cookie_secure=True,
        cookie_same_site="Strict",
    )
    browser = Browser(make_client(store), "__Secure-sid")
    first = (await browser.get("/set?user=ada")).cookie
    after = (await browser.get(path)).cookie
    scope = ("path", "domain", "secure", "httponly", "samesite")
    assert after.name == first.name
    assert {k: after.attrs.get(k) for k in scope} == {k: first.attrs.get(k) for k in scope}
    assert after.value != first.value


async def test_lifecycle_on_the_header_transport_replaces_or_clears_the_header(
    make_client: MakeClient, clock: FakeClock, storage: CountingStorage
) -> None:
    store = make_store(clock, storage, key_lookup="header:X-Session-Id")
    client = make_client(store)

    async def call(path: str, sid: str) -> list[str]:
        return (await client.get(path, headers={"X-Session-Id": sid})).header("x-session-id")

    sid = (await client.get("/setid?user=ada")).text
    (regenerated,) = await call("/regenerate", sid)
    assert regenerated not in ("", sid) and store.get_by_id(sid) is None
    (reset,) = await call("/reset?then_a=1", regenerated)
    assert reset not in ("", regenerated) and store.get_by_id(regenerated) is None
    assert await call("/destroy", reset) == [""]  # empty: the client forgets its id
    assert store.get_by_id(reset) is None


async def test_destroy_without_a_session_still_tells_the_browser_to_drop_its_cookie(
    client: Client, store: Store, storage: CountingStorage, clock: FakeClock
) -> None:
    """Log-out with a cookie the server no longer knows (expired, or from another deploy):
    the browser is told to drop it all the same."""
    stale = store.new_id()
    reply = await client.get("/destroy", cookie=f"session_id={stale}")
    _assert_expires(reply.cookie, clock.now)
    assert not {"set", "create", "replace", "replace_if"} & set(storage.calls)
