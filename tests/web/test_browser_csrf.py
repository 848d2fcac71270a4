"""CSRF in a real browser (issue 21): headless Chromium posts a form carrying the session's
token, and a page of another origin on the same site (another port of the same host: the
cookie is sent, ``SameSite=Lax`` does not stop it) posts a forged form, which
``sessionkit.asgi.CSRFMiddleware`` refuses with a 403, changing nothing.

Skipped only outside CI when no Chromium is installed, as ``test_browser.py``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from sessionkit import Store
from sessionkit.asgi import CSRFMiddleware, SessionMiddleware
from sessionkit.demo._server import running
from tests.web._cdp import Page, chromium, find_chromium

EXECUTABLE = find_chromium()

if EXECUTABLE is None:
    if os.environ.get("CI"):
        pytest.fail("CI: chromium is not installed (apt-get install -y chromium)", pytrace=False)
    pytest.skip("chromium is not installed", allow_module_level=True)


async def _respond(send: Any, status: int, body: str) -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def victim(store: Store) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        session = scope["session"]
        if scope["method"] == "POST":
            fields = parse_qs((await _body(receive)).decode())
            session["title"] = fields["title"][0]
            await _respond(send, 200, f'<p id="result">saved {html.escape(session["title"])}</p>')
            return
        token = session.csrf_token()
        page = (
            f'<p id="title">{html.escape(str(session.get("title")))}</p>'
            '<form method="post" action="/save">'
            f'<input type="hidden" name="csrf_token" value="{token}">'
            '<input name="title"><button>Save</button></form>'
        )
        await _respond(send, 200, page)

    return SessionMiddleware(CSRFMiddleware(app, store), store)


def attacker(target: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        page = (
            f'<form id="forged" method="post" action="{target}save">'
            '<input type="hidden" name="title" value="pwned"></form>'
        )
        await _respond(send, 200, page)

    return app


@pytest.fixture
def page() -> Iterator[Page]:
    assert EXECUTABLE is not None
    with chromium(EXECUTABLE) as page:
        yield page


def test_a_real_form_posts_with_its_token_and_a_forged_one_is_refused(page: Page) -> None:
    store = Store()
    with running(victim(store)) as site, running(attacker(site)) as evil:
        page.navigate(site + "form")
        (cookie,) = page.cookies(site)
        page.submit(
            "document.querySelector('input[name=title]').value = 'hello';"
            "document.querySelector('form').submit()"
        )
        assert page.text("result") == "saved hello"

        page.navigate(evil)  # another origin, the same site: the browser sends the cookie
        page.submit("document.getElementById('forged').submit()")
        assert "CSRF token missing or invalid" in page.evaluate("document.body.textContent")

        page.navigate(site + "form")
        assert page.text("title") == "hello"  # the forged post changed nothing
        assert store.get_by_id(cookie["value"])["title"] == "hello"  # type: ignore[index]
