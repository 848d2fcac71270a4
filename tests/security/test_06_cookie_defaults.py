"""Requirement 6 of ``docs/security.md``:

    "Defaults: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``; ``SameSite=None`` requires ``Secure``;
    ``__Host-`` names require ``Secure``, ``Path=/`` and no ``Domain`` -- violations are a
    ``ConfigError`` at construction."

Why it matters: ``HttpOnly`` keeps the id out of reach of injected script (XSS cannot read the
session cookie); ``SameSite=Lax`` keeps it off cross-site POSTs (most CSRF); ``Path=/`` makes one
cookie serve the whole site, so no path-scoped twin can shadow it. Browsers silently drop a
``SameSite=None`` cookie without ``Secure``, and a ``__Host-``/``__Secure-`` cookie that breaks
its prefix's rules: an application so configured would log nobody in, or (without the prefix)
give up its protection against cookie tossing from sibling subdomains. Such a config must fail
when the application starts, not in a visitor's browser. Browsers match the prefixes whatever
their case (RFC 6265bis), so the rules hold for ``__host-`` as well.

The cookie tests read real responses of the ASGI and the WSGI middleware; the attributes do not
depend on the backend, so they use the memory storage. The construction tests make no request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from sessionkit import Config, ConfigError, Store
from sessionkit.testing import FakeClock
from tests.web._support import Browser, MakeClient, SetCookie, make_store

#: Every path of the test app that sends a session cookie (set, replaced or expired).
COOKIE_PATHS = (
    "/set?a=1",
    "/save?a=1",
    "/expiry?s=60",
    "/regenerate",
    "/reset?then_a=1",
    "/reset",
    "/destroy",
)


async def _every_cookie(make_client: MakeClient, store: Store) -> list[SetCookie]:
    """The session cookie of each of :data:`COOKIE_PATHS`, each sent by a logged-in browser."""
    browser = Browser(make_client(store), store.lookup.name)
    cookies = []
    for path in COOKIE_PATHS:
        await browser.get("/set?user=ada")
        cookies.append((await browser.get(path)).cookie)
    return cookies


async def test_every_session_cookie_is_httponly_samesite_lax_path_root_by_default(
    make_client: MakeClient, clock: FakeClock
) -> None:
    store = make_store(clock)  # nothing but the storage and the clock: every default
    cookies = await _every_cookie(make_client, store)
    assert [c.expired for c in cookies] == [False] * 5 + [True] * 2
    for c in cookies:
        assert c.attrs["httponly"] is True
        assert c.attrs["samesite"] == "Lax"
        assert c.attrs["path"] == "/"
        assert "domain" not in c.attrs  # host-only: no sibling subdomain receives it


@pytest.mark.parametrize(
    "fields",
    [
        {"cookie_same_site": "None", "cookie_secure": True},
        {"key_lookup": "cookie:__Host-sid", "cookie_secure": True},
        {"key_lookup": "cookie:__Secure-sid", "cookie_secure": True, "cookie_domain": "a.test"},
    ],
    ids=["samesite-none", "host-prefix", "secure-prefix"],
)
async def test_a_cookie_that_demands_secure_is_always_sent_secure(
    make_client: MakeClient, clock: FakeClock, fields: dict[str, Any]
) -> None:
    store = make_store(clock, **fields)
    for c in await _every_cookie(make_client, store):
        assert c.name == store.lookup.name
        assert c.attrs["secure"] is True
        if c.name.startswith("__Host-"):
            assert c.attrs["path"] == "/" and "domain" not in c.attrs


@pytest.mark.parametrize("spelling", ["None", "none", "NONE", "nOnE"])
def test_samesite_none_without_secure_is_a_config_error(spelling: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(cookie_same_site=spelling)
    assert info.value.field == "cookie_same_site"
    with pytest.raises(ConfigError, match="cookie_same_site"):
        Store(cookie_same_site=spelling, cookie_secure=False)


HOST_OK: dict[str, Any] = {"key_lookup": "cookie:__Host-sid", "cookie_secure": True}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cookie_secure": False}, "cookie_secure"),
        ({"cookie_path": "/app"}, "cookie_path"),
        ({"cookie_path": "/app/"}, "cookie_path"),
        ({"cookie_domain": "example.com"}, "cookie_domain"),
        ({"cookie_domain": ".example.com"}, "cookie_domain"),
    ],
)
def test_a_host_prefixed_cookie_breaking_its_rules_is_a_config_error_however_built(
    change: dict[str, Any], field: str
) -> None:
    good = Config(**HOST_OK)
    builders: dict[str, Callable[[], object]] = {
        "Config(**fields)": lambda: Config(**{**HOST_OK, **change}),
        "Store(**fields)": lambda: Store(**{**HOST_OK, **change}),
        "Store(config, **overrides)": lambda: Store(good, **change),
        "attrs.evolve(config)": lambda: attrs.evolve(good, **change),
    }
    for how, build in builders.items():
        with pytest.raises(ConfigError) as info:
            build()
        assert info.value.field == field, how


@pytest.mark.parametrize(
    ("name", "fields", "field"),
    [
        ("__host-sid", {}, "cookie_secure"),
        ("__HOST-sid", {}, "cookie_secure"),
        ("__Host-sid", {}, "cookie_secure"),
        ("__hOsT-sid", {"cookie_secure": True, "cookie_path": "/app"}, "cookie_path"),
        ("__host-sid", {"cookie_secure": True, "cookie_domain": "a.test"}, "cookie_domain"),
        ("__secure-sid", {}, "cookie_secure"),
        ("__SECURE-sid", {}, "cookie_secure"),
    ],
)
def test_cookie_prefix_rules_hold_whatever_the_case_of_the_prefix(
    name: str, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Config(key_lookup=f"cookie:{name}", **fields)
    assert info.value.field == field


def test_prefix_rules_do_not_apply_to_header_or_query_names() -> None:
    # No cookie is set for them, so no browser rule can be broken.
    Config(key_lookup="header:__Host-sid")
    Config(key_lookup="query:__Host-sid")
