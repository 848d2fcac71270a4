"""Helpers for the encryption-at-rest and key-rotation tests (``test_23``, ``test_24``).

``WEB`` mounts the web suite's test app (``tests.web._support.OPS``) under the ASGI middleware,
the WSGI middleware, or Flask (``sessionkit.flask.init_app``), so a promise about a request is
proved through each integration. ``key_of`` tells which key a stored record was sealed with,
from its header, the way ``sessionkit rekey`` does.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from sessionkit import Store
from sessionkit._crypto import key_id, parse_key, sealed_key_id
from tests._backends import ALL_TOPOLOGIES
from tests.security._records import raw_storage, stored_records
from tests.web._support import (
    LIFECYCLE,
    OPS,
    MakeClient,
    Reply,
    _around,
    _set,
    asgi_client,
    wsgi_client,
)

__all__ = ["WEB", "FlaskClient", "flask_client", "key_of", "new_key", "records", "stored_names"]


def records(storage: Any, request: pytest.FixtureRequest) -> list[tuple[str, bytes]]:
    """Every ``(key, value)`` the test storage holds: read raw from the server
    (``tests.security._records``), except on the Redis topologies, which that reader does not
    reach (it reads the single test Redis): there through the plugin's own ``scan()``."""
    if request.getfixturevalue("backend") in ALL_TOPOLOGIES:
        return sorted(raw_storage(storage).scan())  # type: ignore[attr-defined]
    return stored_records(storage, request)


def stored_names(storage: Any, request: pytest.FixtureRequest) -> list[str]:
    """The keys of :func:`records`, sorted."""
    return sorted(key for key, _ in records(storage, request))


def new_key() -> str:
    """A key as the docs tell users to make one: the base64url text of 32 random bytes."""
    return secrets.token_urlsafe(32)


def key_of(raw: bytes, *keys: str) -> str | None:
    """Which of ``keys`` sealed ``raw`` (by its key id), ``"plaintext"`` for an unsealed
    record, ``None`` for a sealed one under none of them."""
    kid = sealed_key_id(raw)
    if kid is None:
        return "plaintext"
    return next((k for k in keys if key_id(parse_key("key", k)) == kid), None)


class FlaskClient:
    """The test app's operations as Flask views, through Flask's test client (no cookie jar:
    each request says what it sends, as the other clients do)."""

    kind = "flask"
    eager = False

    def __init__(self, store: Store) -> None:
        import flask

        from sessionkit.flask import init_app

        app = flask.Flask(__name__)
        init_app(app, store)

        @app.route("/<op>")
        def view(op: str) -> str:
            session: Any = flask.session
            query = dict(flask.request.args)
            if op not in LIFECYCLE:
                return OPS[op](session, query)
            before, after = _around(query)  # as the ASGI and WSGI apps run them
            _set(session, before)
            getattr(session, op)()
            return _set(session, after)

        self.http: Any = app.test_client(use_cookies=False)

    async def get(
        self, path: str, *, cookie: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        sent = dict(headers or {})
        if cookie is not None:
            sent["cookie"] = cookie
        response = self.http.get(path, headers=sent)
        return Reply(response.status_code, response.get_data(as_text=True), list(response.headers))


def flask_client(store: Store) -> FlaskClient:
    return FlaskClient(store)


#: Every integration a request can come through.
WEB: dict[str, MakeClient] = {"asgi": asgi_client, "wsgi": wsgi_client, "flask": flask_client}
