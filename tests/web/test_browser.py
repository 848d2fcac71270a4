"""The demo in a real browser: headless Chromium (Debian's ``chromium``), driven over CDP.

Skipped only outside CI when no Chromium is installed; with ``CI`` set, a missing browser
fails the run (the CI script installs ``chromium``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from sessionkit import Store
from sessionkit.demo._server import running
from sessionkit.demo.app import create_app
from tests.web._cdp import Page, chromium, find_chromium

EXECUTABLE = find_chromium()

if EXECUTABLE is None:
    if os.environ.get("CI"):
        pytest.fail("CI: chromium is not installed (apt-get install -y chromium)", pytrace=False)
    pytest.skip("chromium is not installed", allow_module_level=True)


@pytest.fixture
def page() -> Iterator[Page]:
    assert EXECUTABLE is not None
    with chromium(EXECUTABLE) as page:
        yield page


def _click(page: Page, action: str) -> None:
    page.submit(f"document.querySelector('form[action=\"{action}\"] button').click()")


def test_demo_in_a_browser(page: Page) -> None:
    store = Store()
    with running(create_app(store)) as url:
        page.navigate(url)
        assert "logged out" in (page.text("status") or "")
        assert page.cookies(url) == []  # looking stores nothing

        page.submit(
            "document.querySelector('input[name=username]').value = 'ada';"
            "document.querySelector('form[action=\"/login\"]').submit()"
        )
        assert page.text("user") == "ada"
        (cookie,) = page.cookies(url)
        assert cookie["name"] == "session_id" and store.is_valid_id(cookie["value"])
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
        assert cookie["path"] == "/"
        assert cookie["session"] is False
        assert abs(cookie["expires"] - (time.time() + 86400)) < 120  # ~24 h ahead
        # HttpOnly: the page's script cannot read it
        assert "session_id" not in page.evaluate("document.cookie")

        for expected in ("1", "2", "3"):
            _click(page, "/count")
            assert page.text("count") == expected

        before = cookie["value"]
        _click(page, "/relogin")
        (renewed,) = page.cookies(url)
        assert renewed["value"] != before and page.text("user") == "ada"
        assert store.get_by_id(before) is None

        _click(page, "/logout")
        assert page.cookies(url) == []  # the browser dropped the expired cookie
        assert "logged out" in (page.text("status") or "")
        assert page.text("count") == "0"
        assert store.get_by_id(renewed["value"]) is None
