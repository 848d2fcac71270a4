"""The demo's HTML: plain pages, one small stylesheet inline, no script, no external asset.

Every value that came from a visitor or from the session is escaped here, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

import attrs

__all__ = ["NO_SESSION", "SKUS", "CartItem", "HomeView", "home_page", "session_page"]

#: What the demo shop sells.
SKUS = ("apple", "pear", "plum")

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
section { border: 1px solid #ccc; border-radius: 6px; padding: 0 1rem 1rem; margin: 1rem 0; }
form { display: inline-block; margin: 0.25rem 0.5rem 0.25rem 0; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2rem 0.5rem; }
code { background: #f3f3f3; padding: 0 0.2rem; } .muted { color: #666; font-size: 0.9rem; }
"""


@attrs.frozen
class CartItem:
    """One line of the cart: a registered attrs type, so it comes back as a ``CartItem``."""

    sku: str
    qty: int


@attrs.frozen
class HomeView:
    """What the home page shows, read from the session by the route."""

    user: str | None
    count: int
    cart: Sequence[CartItem]
    #: A hash of the session id; ``None`` when no stored session was loaded (a new visitor,
    #: or after log-out), whose id is a new random one on every request until it is saved.
    id_tag: str | None
    storage: str


def _layout(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _button(action: str, label: str, fields: str = "") -> str:
    return f'<form method="post" action="{action}">{fields}<button>{escape(label)}</button></form>'


def _login(user: str | None) -> str:
    if user is None:
        field = (
            '<label>Username <input name="username" required maxlength="40" '
            'autocomplete="username"></label> '
        )
        return '<p id="status">You are <strong>logged out</strong>.</p>' + _button(
            "/login", "Log in", field
        )
    return (
        f'<p id="status">Logged in as <strong id="user">{escape(user)}</strong>.</p>'
        + _button("/relogin", "Log in again (new session id)")
        + _button("/logout", "Log out")
    )


def _cart(cart: Sequence[CartItem]) -> str:
    if cart:
        rows = "".join(f"<tr><td>{escape(item.sku)}</td><td>{item.qty}</td></tr>" for item in cart)
        listing = f'<table id="cart"><tr><th>item</th><th>qty</th></tr>{rows}</table>'
    else:
        listing = '<p id="cart">The cart is empty.</p>'
    options = "".join(f'<option value="{sku}">{sku}</option>' for sku in SKUS)
    fields = (
        f'<select name="sku">{options}</select> '
        '<input name="qty" type="number" min="1" max="99" value="1" size="3"> '
    )
    return listing + _button("/cart", "Add to cart", fields) + _button("/cart/empty", "Empty cart")


def home_page(view: HomeView) -> str:
    """The one page of the demo: log-in state, a counter, a cart."""
    body = f"""<h1>sessionkit demo</h1>
<section><h2>Account</h2>{_login(view.user)}</section>
<section><h2>Counter</h2><p>Clicked <strong id="count">{view.count}</strong> times.</p>
{_button("/count", "+1")}</section>
<section><h2>Cart</h2>{_cart(view.cart)}</section>
<p><a href="/session">What the session holds</a></p>
<p class="muted">{_identity(view.id_tag)} &middot;
storage <code>{escape(view.storage)}</code></p>"""
    return _layout("sessionkit demo", body)


#: What the page says instead of an id tag when there is no stored session.
NO_SESSION = "no session yet"


def _identity(id_tag: str | None) -> str:
    if id_tag is None:
        return (
            f'Session: <strong id="no-session">{NO_SESSION}</strong> (nothing is stored and no '
            "cookie is set until something changes: click +1 or log in)"
        )
    return (
        f'Session id tag <code id="tag">{escape(id_tag)}</code>\n'
        "(a hash: the id itself lives only in an HttpOnly cookie)"
    )


def session_page(rows: Iterable[tuple[str, str]], facts: Iterable[tuple[str, str]]) -> str:
    """A listing of the session's keys and values (``repr``), and facts about the session."""
    data = "".join(
        f"<tr><td>{escape(k)}</td><td><code>{escape(v)}</code></td></tr>" for k, v in rows
    )
    about = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    body = f"""<h1>What the session holds</h1>
<table id="facts">{about}</table>
<h2>Data</h2>
<table id="data"><tr><th>key</th><th>value</th></tr>{data}</table>
<p><a href="/">Back</a></p>"""
    return _layout("sessionkit demo: session", body)
