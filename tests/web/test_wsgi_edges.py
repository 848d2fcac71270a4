"""The WSGI middleware at PEP 3333's corners: a second ``start_response`` with ``exc_info``, and
errors raised while the body is produced, for apps that return a list, an iterable or a
generator."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from sessionkit import StorageError, Store
from sessionkit.wsgi import SessionMiddleware

App = Any


def serve(app: App, cookie: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
    """A minimal PEP 3333 server: headers go out with the first chunk, so a second
    ``start_response`` with ``exc_info`` before that replaces them."""
    state: dict[str, Any] = {"status": None, "headers": None}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if state["status"] is not None and not exc_info:
            raise AssertionError("start_response called twice without exc_info")
        state["status"], state["headers"] = status, list(headers)
        return lambda data: None

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.input": None}
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return state["status"], state["headers"], body


def _cookie(headers: list[tuple[str, str]]) -> str | None:
    values = [v for k, v in headers if k.lower() == "set-cookie"]
    assert len(values) <= 1, values
    return values[0].split(";", 1)[0] if values else None


@pytest.fixture
def store() -> Store:
    return Store()


def _logged_in(store: Store) -> str:
    def login(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessionkit.session"]["user"] = "ada"
        start_response("200 OK", [])
        return [b""]

    cookie = _cookie(serve(SessionMiddleware(login, store))[1])
    assert cookie is not None
    return cookie


def test_an_error_page_sent_with_exc_info_carries_the_saved_sessions_cookie(store: Store) -> None:
    """The first ``start_response`` saved the regenerated session; the error page that
    replaces the response must carry its cookie, or the browser keeps the deleted id."""
    old = _logged_in(store)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["sessionkit.session"]
        session.regenerate()
        start_response("200 OK", [("content-type", "text/plain")])
        try:
            raise RuntimeError("the template failed")
        except RuntimeError:
            start_response(
                "500 Internal Server Error", [("content-type", "text/plain")], sys.exc_info()
            )
            return [b"error page"]

    status, headers, body = serve(SessionMiddleware(app, store), old)
    assert (status, body) == ("500 Internal Server Error", b"error page")
    new = _cookie(headers)
    assert new is not None and new != old
    moved = store.get_by_id(new.split("=", 1)[1])
    assert moved is not None and moved["user"] == "ada"
    assert [v for k, v in headers if k.lower() == "vary"] == ["Cookie"]


class _Broken:
    """A body that fails after its first chunk, as a storage read inside a template would."""

    def __iter__(self) -> Iterator[bytes]:
        yield b"first"
        raise StorageError("lost mid-body")


def _list_app(body: _Broken) -> App:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return body

    return app


def _generator_app(body: _Broken) -> App:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield from body

    return app


@pytest.mark.parametrize("shape", [_list_app, _generator_app], ids=["iterable", "generator"])
def test_an_error_after_the_response_started_reaches_the_server(store: Store, shape: Any) -> None:
    """Whatever the app's shape: a body that breaks must look broken to the server, which
    then ends the response (a short body that looked complete would be cached as such)."""
    body = _Broken()
    with pytest.raises(StorageError, match="lost mid-body"):
        serve(SessionMiddleware(shape(body), store))


def test_an_error_raised_right_after_start_response_reaches_the_server(store: Store) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessionkit.session"]["k"] = 1
        start_response("200 OK", [])
        raise StorageError("lost before the body")

    with pytest.raises(StorageError, match="before the body"):
        serve(SessionMiddleware(app, store))


def test_the_same_store_mounted_twice_sends_one_cookie(store: Store) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessionkit.session"]["k"] = 1
        start_response("200 OK", [])
        return [b""]

    twice = SessionMiddleware(SessionMiddleware(app, store), store)
    headers = serve(twice)[1]
    assert len([v for k, v in headers if k.lower() == "set-cookie"]) == 1
    assert len([v for k, v in headers if k.lower() == "vary"]) == 1


def test_a_session_an_outer_layer_loaded_first_is_still_saved(store: Store) -> None:
    """An auth layer outside the middleware peeks with ``store.get(environ)``: the session
    it put in the environ is the middleware's to finish all the same."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessionkit.session"]["k"] = 1
        start_response("200 OK", [])
        return [b""]

    inner = SessionMiddleware(app, store)

    def peeking(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        assert store.get(environ).get("user") is None
        return inner(environ, start_response)

    cookie = _cookie(serve(peeking)[1])
    assert cookie is not None
    saved = store.get_by_id(cookie.split("=", 1)[1])
    assert saved is not None and saved["k"] == 1
