"""The demo web app: Starlette routes over a sessionkit :class:`~sessionkit.Store`.

Every change is a POST answered by a 303 redirect to ``/`` (post/redirect/get), so reloading a
page never repeats an action. The session cookie is ``SameSite=Lax``, which keeps other sites'
forms from posting with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import cast
from urllib.parse import parse_qs

import attrs
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .._redact import redact
from .._session import Session
from .._store import Store, fingerprint
from ..asgi import SessionMiddleware
from ._pages import NO_SESSION, SKUS, CartItem, HomeView, home_page, session_page

__all__ = ["create_app"]

#: Largest form body the demo reads.
_MAX_FORM = 4096

Handler = Callable[[Request], Awaitable[Response]]


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded form fields, first value of each (no multipart parser needed)."""
    body = await request.body()
    if len(body) > _MAX_FORM:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {k: v[0] for k, v in fields.items()}


def _session(request: Request) -> Session:
    # Starlette types _session(request) as a dict; under sessionkit's middleware it is a Session.
    return cast(Session, request.session)


def _back() -> Response:
    return RedirectResponse("/", status_code=303)


async def home(request: Request) -> Response:
    session = _session(request)
    view = HomeView(
        user=session.get("user"),
        count=session.get("count", 0),
        cart=session.get("cart", []),
        id_tag=_id_tag(session),
        storage=request.app.state.storage_label,
    )
    return HTMLResponse(home_page(view))


def _id_tag(session: Session) -> str | None:
    """The tag of a stored session's id; ``None`` for a session not stored yet, whose id is
    drawn anew on each request (showing it would suggest a session that changes on reload)."""
    return None if session.fresh else fingerprint(session.id)


async def login(request: Request) -> Response:
    username = (await _form(request)).get("username", "").strip()
    if not username or len(username) > 40:
        return PlainTextResponse("a username of 1 to 40 characters, please", status_code=400)
    session = _session(request)
    await session.aregenerate()  # privileges change: an id planted before log-in is worthless
    session["user"] = username
    return _back()


async def relogin(request: Request) -> Response:
    await _session(request).aregenerate()
    return _back()


async def logout(request: Request) -> Response:
    await _session(request).adestroy()
    return _back()


async def count(request: Request) -> Response:
    session = _session(request)
    session["count"] = session.get("count", 0) + 1
    return _back()


async def add_to_cart(request: Request) -> Response:
    form = await _form(request)
    sku, qty = form.get("sku", ""), form.get("qty", "1")
    if sku not in SKUS or not qty.isdigit() or not 1 <= int(qty) <= 99:
        return PlainTextResponse("unknown item or quantity", status_code=400)
    session = _session(request)
    cart: list[CartItem] = list(session.get("cart", []))
    for i, item in enumerate(cart):
        if item.sku == sku:
            cart[i] = attrs.evolve(item, qty=min(99, item.qty + int(qty)))
            break
    else:
        cart.append(CartItem(sku, int(qty)))
    session["cart"] = cart
    return _back()


async def empty_cart(request: Request) -> Response:
    _session(request).delete("cart")
    return _back()


async def show_session(request: Request) -> Response:
    session = _session(request)
    rows = [(key, repr(session[key])) for key in sorted(session.keys())]
    created = datetime.fromtimestamp(session.created, timezone.utc)
    facts = [
        ("id tag", _id_tag(session) or NO_SESSION),
        ("fresh", str(session.fresh)),
        ("created", created.isoformat(timespec="seconds")),
        ("lifetime", str(session.expiry)),
    ]
    return HTMLResponse(session_page(rows, facts))


def create_app(store: Store, *, storage_label: str = "") -> Starlette:
    """The demo as an ASGI app; registers :class:`CartItem` on ``store``."""
    store.register_type(CartItem)
    routes: list[tuple[str, Handler, str]] = [
        ("/", home, "GET"),
        ("/session", show_session, "GET"),
        ("/login", login, "POST"),
        ("/relogin", relogin, "POST"),
        ("/logout", logout, "POST"),
        ("/count", count, "POST"),
        ("/cart", add_to_cart, "POST"),
        ("/cart/empty", empty_cart, "POST"),
    ]
    app = Starlette(
        routes=[Route(path, fn, methods=[method]) for path, fn, method in routes],
        middleware=[Middleware(SessionMiddleware, store=store)],
    )
    # Shown on every page: a URL's password is masked (redact leaves other labels alone).
    app.state.storage_label = redact(storage_label) if storage_label else _label(store)
    return app


def _label(store: Store) -> str:
    storage = store.config.storage
    return redact(storage) if isinstance(storage, str) else type(storage).__name__
