"""Hardening (issue 21): CSRF protection over the session.

Why it matters: ``SameSite=Lax`` stops most cross-site POSTs, not all (same-site subdomains,
top-level navigations within two minutes in some browsers, older browsers). The synchronizer
token closes the rest: a page on another site can make the browser send the cookie, but cannot
read the token. So an unsafe request (POST, PUT, PATCH, DELETE) without the session's token --
in the ``X-CSRF-Token`` header or the form's ``csrf_token`` field -- is refused with a 403
before the app runs; the token of another session, a token sent twice, or one read before a
log-in (``regenerate``/``reset``/``destroy`` rotate it) are refused too. A urlencoded body
read for its token is replayed: the app still sees every byte.

Runs through the ASGI and WSGI CSRF middleware and Flask's ``init_app(csrf=True)``, on every
backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
import pytest
from werkzeug.test import Client as WerkzeugClient

from sessionkit import Session, Store
from sessionkit.asgi import CSRFMiddleware as ASGICSRF
from sessionkit.asgi import SessionMiddleware as ASGISession
from sessionkit.wsgi import CSRFMiddleware as WSGICSRF
from sessionkit.wsgi import SessionMiddleware as WSGISession
from tests.web._support import CountingStorage

Kind = Literal["asgi", "wsgi", "flask"]


def _handle(session: Session, method: str, path: str, body: bytes) -> str:
    if path == "/token":
        return session.csrf_token()
    if path == "/login":  # a privilege change: a new id, and so a new token
        session.regenerate()
        session["user"] = "ada"
        return "ok"
    if path == "/logout":
        session.destroy()
        return "bye"
    if path == "/reset":
        session.reset()
        session["n"] = 0
        return "reset"
    session["n"] = session.get("n", 0) + 1  # the state a forged request would change
    return json.dumps({"method": method, "body": body.decode(), "n": session["n"]})


def asgi_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        text = _handle(scope["session"], scope["method"], scope["path"], b"".join(chunks))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": text.encode()})

    return app


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    text = _handle(
        environ["sessionkit.session"], environ["REQUEST_METHOD"], environ["PATH_INFO"], body
    )
    start_response("200 OK", [("content-type", "text/plain")])
    return [text.encode()]


def flask_app(store: Store) -> Any:
    import flask

    from sessionkit.flask import init_app

    app = flask.Flask(__name__, static_folder=None)
    init_app(app, store, csrf=True)

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def any_route(path: str) -> str:
        request = flask.request
        if request.form:  # parsed (Flask caches it): the view still gets every field
            body = "&".join(f"{k}={v}" for k, v in request.form.items(multi=True)).encode()
        else:
            body = request.get_data()
        return _handle(flask.session._get_current_object(), request.method, "/" + path, body)  # type: ignore[attr-defined]

    return app


class Browser:
    """A cookie jar over the app under one integration, with any method and body."""

    def __init__(self, kind: Kind, store: Store) -> None:
        self.kind = kind
        self.cookie: str | None = None
        if kind == "asgi":
            app = ASGISession(ASGICSRF(asgi_app(), store), store)
            self._asgi = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            )
        else:
            wsgi = WSGISession(WSGICSRF(wsgi_app, store), store) if kind == "wsgi" else None
            self._wsgi = WerkzeugClient(wsgi or flask_app(store), use_cookies=False)

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        data: str | None = None,
        form: bool = False,
    ) -> tuple[int, str]:
        headers = dict(headers or {})
        if self.cookie:
            headers["cookie"] = self.cookie
        if form:
            headers["content-type"] = "application/x-www-form-urlencoded"
        if self.kind == "asgi":
            reply = await self._asgi.request(method, path, headers=headers, content=data)
            self._asgi.cookies.clear()
            status, text, cookies = (
                reply.status_code,
                reply.text,
                reply.headers.get_list("set-cookie"),
            )
        else:
            response = self._wsgi.open(path, method=method, headers=headers, data=data)
            status, text = response.status_code, response.get_data(as_text=True)
            cookies = response.headers.getlist("Set-Cookie")
        for line in cookies:
            pair = line.split(";")[0]
            self.cookie = None if "Max-Age=0" in line else pair
        return status, text


async def test_an_unsafe_request_without_the_token_is_refused_before_the_app_runs(
    kind: Kind, store: Store
) -> None:
    browser = Browser(kind, store)
    await browser.send("GET", "/token")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        status, text = await browser.send(method, "/change")
        assert status == 403 and "CSRF" in text, method
    forged = await browser.send("POST", "/change", data="csrf_token=guess", form=True)
    assert forged[0] == 403
    status, text = await browser.send("GET", "/change")  # safe methods need no token
    assert status == 200 and json.loads(text)["n"] == 1  # the refused ones changed nothing


async def test_the_token_in_the_header_or_the_form_lets_the_request_through_with_its_body(
    kind: Kind, store: Store
) -> None:
    browser = Browser(kind, store)
    _, token = await browser.send("GET", "/token")
    status, text = await browser.send("DELETE", "/change", headers={"X-CSRF-Token": token})
    assert status == 200 and json.loads(text)["method"] == "DELETE"
    form = f"title=hello&csrf_token={token}&tag=a&tag=b"
    status, text = await browser.send("POST", "/change", data=form, form=True)
    assert status == 200
    assert dict(parse_qsl(json.loads(text)["body"]))["title"] == "hello"  # body replayed
    assert json.loads(text)["body"].count("tag=") == 2
    json_body = json.dumps({"title": "x"})
    status, text = await browser.send(
        "PATCH", "/change", data=json_body, headers={"X-CSRF-Token": token}
    )
    assert status == 200 and json.loads(json.loads(text)["body"]) == {"title": "x"}


async def test_another_sessions_token_or_a_token_sent_twice_is_refused(
    kind: Kind, store: Store
) -> None:
    victim, attacker = Browser(kind, store), Browser(kind, store)
    await victim.send("GET", "/token")
    _, own = await attacker.send("GET", "/token")  # the attacker's own, valid session
    assert (await victim.send("POST", "/change", headers={"X-CSRF-Token": own}))[0] == 403
    _, token = await victim.send("GET", "/token")
    twice = f"csrf_token={token}&csrf_token={token}"
    assert (await victim.send("POST", "/change", data=twice, form=True))[0] == 403


@pytest.mark.parametrize("call", ["/login", "/reset", "/logout"])
async def test_regenerate_reset_and_destroy_rotate_the_token(
    kind: Kind, store: Store, call: str
) -> None:
    browser = Browser(kind, store)
    _, before = await browser.send("GET", "/token")
    assert (await browser.send("POST", call, headers={"X-CSRF-Token": before}))[0] == 200
    _, after = await browser.send("GET", "/token")
    assert after != before
    assert (await browser.send("POST", "/change", headers={"X-CSRF-Token": before}))[0] == 403
    assert (await browser.send("POST", "/change", headers={"X-CSRF-Token": after}))[0] == 200


async def test_a_session_without_a_token_accepts_none(
    kind: Kind, store: Store, storage: CountingStorage
) -> None:
    browser = Browser(kind, store)
    assert (await browser.send("POST", "/change", headers={"X-CSRF-Token": ""}))[0] == 403
    session = store.load(None)
    assert not session.check_csrf("") and not session.check_csrf(None)
    assert not session.check_csrf("é" * 43) and not session.check_csrf(b"x")  # type: ignore[arg-type]
    token = session.csrf_token()
    assert session.check_csrf(token) and session.check_csrf(session.csrf_token())


def test_tokens_are_masked_afresh_and_the_bare_secret_still_checks(store: Store) -> None:
    """BREACH: a page compressed beside reflected guesses must not carry a repeated secret.
    Each ``csrf_token()`` is a new masking of the one secret; each checks; the secret itself
    (what pages of earlier releases carried) still checks; another session's never does."""
    session, other = store.load(None), store.load(None)
    tokens = {session.csrf_token() for _ in range(20)}
    secret = session["_csrf_token"]
    assert len(tokens) == 20 and all(secret not in token for token in tokens)
    assert all(session.check_csrf(token) for token in tokens)
    assert session.check_csrf(secret)
    assert not any(other.check_csrf(token) for token in tokens)
    assert not other.check_csrf(secret)
    forged = next(iter(tokens))
    flipped = forged[:-2] + ("A" if forged[-2] != "A" else "B") + forged[-1]
    assert not session.check_csrf(flipped)


def test_bad_csrf_options_are_config_errors_naming_the_field(store: Store) -> None:
    from sessionkit import ConfigError

    for middleware in (ASGICSRF, WSGICSRF):
        for options, field in (
            ({"header_name": "X CSRF"}, "header_name"),
            ({"field_name": ""}, "field_name"),
            ({"exclude": "("}, "exclude"),
        ):
            with pytest.raises(ConfigError) as caught:
                middleware(wsgi_app, store, **options)
            assert caught.value.field == field
