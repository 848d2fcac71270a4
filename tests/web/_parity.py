"""One small app under the ASGI middleware, the WSGI middleware and Flask's ``init_app``, built
with the integration's options (``skip``, ``exclude``, ``on_error``, ``csrf``, ...), for the
tests of issue 21 (peer parity), which must hold through all three.

Routes (the body is what the handler returns; ``?k=v`` sets values):

* ``/set?k=v``: set values; ``/get?k=KEY``: the JSON of one value; ``/id``: the session id;
* ``/touchless``: never touches the session, answers whether the request has one
  (``present``/``absent``); every other path answers like ``/touchless``;
* ``/expiry?s=N``: ``set_expiry(timedelta(seconds=N))`` and a value; ``/browser``:
  ``set_expiry(timedelta(0))`` and a value; ``/permanent?v=0|1``: Flask's ``permanent``, or
  the same through ``set_expiry`` elsewhere;
* ``/flash?category=message``: ``sessionkit.flash``; ``/flashes?only=a,b``: the JSON of
  ``get_flashed_messages(with_categories=True, category_filter=...)``;
* ``/expires_at``: ``session.expires_at`` as a Unix timestamp; ``/regenerate``,
  ``/reset``, ``/destroy``: the lifecycle call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl

import pytest

from sessionkit import Session, Store
from sessionkit.asgi import SessionMiddleware as ASGISessionMiddleware
from sessionkit.wsgi import SessionMiddleware as WSGISessionMiddleware
from tests.web._support import ASGIClient, Client, WSGIClient, _expiry, _set

Kind = Literal["asgi", "wsgi", "flask"]
KINDS: tuple[Kind, ...] = ("asgi", "wsgi", "flask")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> Kind:
    """Each integration in turn (import it into a test module to use it)."""
    return request.param  # type: ignore[no-any-return]


Handler = Callable[[Session, dict[str, str]], str]


def _browser(session: Session, q: dict[str, str]) -> str:
    session.set_expiry(timedelta(0))
    session["x"] = 1
    return "ok"


def _permanent(session: Session, q: dict[str, str]) -> str:
    """Flask's ``session.permanent = ...`` (the Flask app only)."""
    session.permanent = q.get("v", "1") == "1"  # type: ignore[attr-defined]
    session["x"] = 1
    return "ok"


def _lifecycle(name: str) -> Handler:
    def run(session: Session, q: dict[str, str]) -> str:
        getattr(session, name)()
        return _set(session, q)

    return run


def _flash(session: Session, q: dict[str, str]) -> str:
    from sessionkit import flash

    for category, message in q.items():
        flash(session, message, category)
    return "ok"


def _flashes(session: Session, q: dict[str, str]) -> str:
    from sessionkit import get_flashed_messages

    categories = [c for c in q.get("only", "").split(",") if c]
    pairs = get_flashed_messages(session, with_categories=True, category_filter=categories)
    return json.dumps(pairs)


HANDLERS: dict[str, Handler] = {
    "flash": _flash,
    "flashes": _flashes,
    "set": _set,
    "get": lambda s, q: json.dumps(s.get(q["k"])),
    "id": lambda s, q: s.id,
    "expiry": _expiry,
    "browser": _browser,
    "permanent": _permanent,
    "expires_at": lambda s, q: repr(s.expires_at.timestamp()),
    "regenerate": _lifecycle("regenerate"),
    "reset": _lifecycle("reset"),
    "destroy": _lifecycle("destroy"),
}


def _route(path: str, query: str) -> tuple[Handler | None, dict[str, str]]:
    return HANDLERS.get(path.strip("/")), dict(parse_qsl(query, keep_blank_values=True))


def asgi_app(extra: dict[str, Any] | None = None) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        handler, q = _route(scope["path"], scope["query_string"].decode())
        if handler is None:
            body = "present" if "session" in scope else "absent"
        else:
            body = handler(scope["session"], q)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

    return app


def wsgi_app() -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        handler, q = _route(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
        if handler is None:
            body = "present" if "sessionkit.session" in environ else "absent"
        else:
            body = handler(environ["sessionkit.session"], q)
        start_response("200 OK", [("content-type", "text/plain")])
        return [body.encode()]

    return app


def flask_app(store: Store, **options: Any) -> Any:
    import flask

    from sessionkit.flask import SkippedSession, init_app

    app = flask.Flask(__name__, static_folder=None)
    init_app(app, store, **options)

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def any_route(path: str) -> str:
        handler, q = _route(path, flask.request.query_string.decode())
        if handler is None:
            skipped = isinstance(flask.session._get_current_object(), SkippedSession)  # type: ignore[attr-defined]
            return "absent" if skipped else "present"
        return handler(flask.session._get_current_object(), q)  # type: ignore[attr-defined]

    return app


def build(kind: Kind, store: Store, **options: Any) -> Client:
    """A client of the test app under ``kind``'s integration, built with ``options``."""
    if kind == "asgi":
        return ASGIClient(ASGISessionMiddleware(asgi_app(), store, **options))
    if kind == "wsgi":
        return WSGIClient(WSGISessionMiddleware(wsgi_app(), store, **options))
    client = WSGIClient(flask_app(store, **options))
    client.kind = "flask"
    return client
