"""Flask under gunicorn: bare, sessionkit, Flask-Session (cachelib in memory, Redis, or
SQLAlchemy on SQLite, PostgreSQL or MySQL) or the floor.

For Flask-Session's SQLAlchemy store, ``LOAD_URL`` is an SQLAlchemy URL and ``LOAD_NS`` the
table, ``schema.table`` for a table in a schema of its own.
"""

from __future__ import annotations

from typing import Any

import flask

from benchmarks.load.apps import BACKEND, LAYER, NS, SPIN, URL, burn, profiled

flask_app = flask.Flask(__name__)


def _text(user: object, n: object, headers: dict[str, str] | None = None) -> flask.Response:
    return flask.Response(f"{user} {n}", mimetype="text/plain", headers=headers)


@flask_app.get("/health")
def health() -> flask.Response:
    return flask.Response("ok", mimetype="text/plain")


def _session_routes() -> None:
    @flask_app.get("/read")
    def read() -> flask.Response:
        session = flask.session
        return _text(session.get("user", "-"), session.get("n", 0))

    @flask_app.get("/write")
    def write() -> flask.Response:
        session = flask.session
        n = session.get("n", 0) + 1
        session["n"] = n
        return _text(session.get("user", "-"), n)


def _bare_routes() -> None:
    """The bare app's routes; a calibration row's (``SPIN``) burn its CPU first. Chosen once
    here, so that the bare app's own routes call nothing more than a constant answer."""

    def constant() -> flask.Response:
        return _text("-", 0)

    def spun() -> flask.Response:
        burn()
        return _text("-", 0)

    for path in ("/read", "/write", "/login"):
        flask_app.add_url_rule(path, path, spun if SPIN else constant, methods=["GET"])


def _sessionkit() -> None:
    from sessionkit import Store
    from sessionkit.flask import init_app

    _session_routes()

    @flask_app.get("/login")
    def login() -> flask.Response:
        user = flask.request.args["user"]
        session: Any = flask.session
        session.regenerate()
        session["user"] = user
        return _text(user, session.get("n", 0))

    @flask_app.get("/logout")
    def logout() -> flask.Response:
        session: Any = flask.session
        session.destroy()
        return _text("-", 0)

    init_app(flask_app, Store(storage=URL))


def _flask_session() -> None:
    from flask_session import Session

    if BACKEND == "memory":
        from cachelib import SimpleCache

        flask_app.config.update(
            SESSION_TYPE="cachelib", SESSION_CACHELIB=SimpleCache(threshold=10**6)
        )
    elif BACKEND == "redis":
        import redis

        flask_app.config.update(
            SESSION_TYPE="redis", SESSION_KEY_PREFIX=NS, SESSION_REDIS=redis.Redis.from_url(URL)
        )
    elif BACKEND in ("sqlite", "postgres", "mysql"):
        from flask_sqlalchemy import SQLAlchemy

        schema, _, table = NS.rpartition(".")
        flask_app.config.update(SQLALCHEMY_DATABASE_URI=URL)
        db = SQLAlchemy(flask_app)
        flask_app.config.update(
            SESSION_TYPE="sqlalchemy",
            SESSION_SQLALCHEMY=db,
            SESSION_SQLALCHEMY_TABLE=table,
            SESSION_SQLALCHEMY_SCHEMA=schema or None,
        )
    else:
        raise ValueError(f"Flask-Session on {BACKEND!r}")
    _session_routes()

    @flask_app.get("/login")
    def login() -> flask.Response:
        user = flask.request.args["user"]
        interface: Any = flask_app.session_interface
        interface.regenerate(flask.session)
        flask.session["user"] = user
        return _text(user, flask.session.get("n", 0))

    @flask_app.get("/logout")
    def logout() -> flask.Response:
        flask.session.clear()
        return _text("-", 0)

    Session(flask_app)


def _floor() -> None:
    from benchmarks.load.apps._floor import COOKIE, SyncFloor, set_cookie

    floor = SyncFloor(BACKEND, URL, NS)

    @flask_app.get("/read")
    def read() -> flask.Response:
        return _text(*floor.read(flask.request.cookies.get(COOKIE)))

    @flask_app.get("/write")
    def write() -> flask.Response:
        return _text(*floor.write(flask.request.cookies.get(COOKIE)))

    @flask_app.get("/login")
    def login() -> flask.Response:
        user = flask.request.args["user"]
        response = _text(user, 0)
        response.headers["set-cookie"] = set_cookie(floor.login(user))
        return response


if LAYER == "bare":
    _bare_routes()
elif LAYER == "sessionkit":
    _sessionkit()
elif LAYER == "peer":
    _flask_session()
elif LAYER == "floor":
    _floor()
else:
    raise ValueError(f"LOAD_LAYER={LAYER!r}")

app = profiled(flask_app, "wsgi")
