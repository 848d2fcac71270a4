"""What the load scenarios' small apps share: a Starlette app and a Flask app of plain-text
routes under sessionkit, each with the ``/health`` route the harness waits for, and the
module ``__getattr__`` that builds an app on first use (a server imports only its framework).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sessionkit import Store

__all__ = ["built_on_first_use", "flask_app", "starlette_app"]


def starlette_app(store: Store, routes: Mapping[str, Callable[[Any], Awaitable[str]]]) -> Any:
    """Starlette under ``sessionkit.asgi.SessionMiddleware``: ``routes`` maps a path to a
    coroutine function of the request returning the body."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from sessionkit.asgi import SessionMiddleware

    def endpoint(handler: Callable[[Request], Awaitable[str]]) -> Any:
        async def respond(request: Request) -> PlainTextResponse:
            return PlainTextResponse(await handler(request))

        return respond

    async def health(request: Request) -> str:
        return "ok"

    table = [Route(path, endpoint(h)) for path, h in {"/health": health, **routes}.items()]
    return Starlette(routes=table, middleware=[Middleware(SessionMiddleware, store=store)])


def flask_app(store: Store, routes: Mapping[str, Callable[[], str]]) -> Any:
    """Flask under ``sessionkit.flask``: ``routes`` maps a path to a view returning the body."""
    import flask

    from sessionkit.flask import init_app

    app = flask.Flask(__name__)
    for path, view in {"/health": lambda: "ok", **routes}.items():

        def respond(view: Callable[[], str] = view) -> flask.Response:
            return flask.Response(view(), mimetype="text/plain")

        app.add_url_rule(path, path, respond)
    init_app(app, store)
    return app


def built_on_first_use(
    module: dict[str, Any], builders: Mapping[str, Callable[[], Any]]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` making ``module``'s ``asgi`` and ``wsgi`` apps on first use."""

    def getattr_(name: str) -> Any:
        if name not in builders:
            raise AttributeError(f"module {module['__name__']!r} has no attribute {name!r}")
        app = module[name] = builders[name]()
        return app

    return getattr_
