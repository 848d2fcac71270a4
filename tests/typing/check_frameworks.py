"""Type-checked by ``nox -s typing`` (not run): the middlewares mount under every framework's
own types with no cast. Litestar types the ASGI triple as TypedDicts, Starlette as mappings;
a middleware that fits one and not the other would fail here.
"""

from __future__ import annotations

from fastapi import FastAPI
from flask import Flask
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware

from sessionkit import Store
from sessionkit.asgi import SessionMiddleware
from sessionkit.flask import init_app
from sessionkit.wsgi import SessionMiddleware as WSGISessionMiddleware

store = Store()


@get("/")
async def index(request: Request[object, object, State]) -> dict[str, int]:
    request.session["n"] = request.session.get("n", 0) + 1
    return {"n": request.session["n"]}


litestar_app = Litestar(
    route_handlers=[index], middleware=[DefineMiddleware(SessionMiddleware, store=store)]
)
starlette_app = Starlette(middleware=[Middleware(SessionMiddleware, store=store, autoload=False)])
fastapi_app = FastAPI()
fastapi_app.add_middleware(SessionMiddleware, store=store)
flask_app = Flask(__name__)
init_app(flask_app, store)
wsgi_app = WSGISessionMiddleware(flask_app.wsgi_app, store)
