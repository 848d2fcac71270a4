"""CSRF protection over the session: a per-session token, and what the CSRF middlewares
(``sessionkit.asgi.CSRFMiddleware``, ``sessionkit.wsgi.CSRFMiddleware``, Flask's
``init_app(csrf=True)``) share.

The token is the synchronizer-token pattern (Django with ``CSRF_USE_SESSIONS``, Flask-WTF):
a random value kept in the session, put by the app into its forms (a hidden field) or its
JavaScript (a header), and compared with what an unsafe request sends back. A cross-site page
can make a browser send the session cookie, but cannot read the token, so its forged POST
fails. The token lives in the session's data, under :data:`CSRF_KEY`, so it is stored,
expired and destroyed with the session, and a new id (``regenerate``, ``reset``,
``destroy``) gets a new token: one read before log-in is worth nothing after it.

What a page carries is the token *masked* afresh each time (:func:`mask`: a random pad, and
the secret XOR that pad), as Django does: a page compressed over TLS with an attacker's
reflected guesses beside it (BREACH) then shows no repeated secret for the compression to
give away. :func:`unmask` takes either form back: a masked token, or the bare secret that
pages of earlier releases carried.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ._errors import ConfigError
from ._skip import skipper

if TYPE_CHECKING:
    from ._store import Store

__all__ = [
    "CSRF_KEY",
    "CSRFGuard",
    "DEFAULT_FIELD",
    "DEFAULT_HEADER",
    "FORBIDDEN_BODY",
    "MAX_FORM_BYTES",
    "UNSAFE_METHODS",
    "check_token",
    "form_token",
    "is_form",
    "mask",
    "new_secret",
]

#: The session key holding the token (Flask-WTF's name, with the underscore of the keys the
#: library itself keeps, as Flask's ``_flashes``).
CSRF_KEY = "_csrf_token"
#: Methods that change state (RFC 9110 section 9.2.1 names the others safe).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_HEADER = "X-CSRF-Token"
DEFAULT_FIELD = "csrf_token"
FORBIDDEN_BODY = b"Forbidden: CSRF token missing or invalid\n"
#: The largest form body read for its token: a bigger one is refused (403) rather than
#: buffered whole in memory.
MAX_FORM_BYTES = 1 << 20
# What a header name (RFC 9110 token) or a form field name given here may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


#: Bytes of a token's secret (its text in the session: 43 base64url characters).
_SECRET_BYTES = 32


def new_secret() -> str:
    """A new token secret, as kept in the session."""
    return secrets.token_urlsafe(_SECRET_BYTES)


def mask(secret: str) -> str:
    """``secret`` as a page carries it: a fresh random pad, then the secret XOR the pad
    (86 base64url characters, different at every call)."""
    raw = _decoded(secret)
    if raw is None:  # not one this module made: carried as it is, checked as it is
        return secret
    pad = secrets.token_bytes(_SECRET_BYTES)
    masked = pad + bytes(a ^ b for a, b in zip(pad, raw, strict=True))
    return base64.urlsafe_b64encode(masked).rstrip(b"=").decode()


def check_token(token: object, secret: object) -> bool:
    """Whether ``token`` (masked, or the bare secret) carries ``secret``, compared in constant
    time; False for anything that is not text."""
    if type(token) is not str or type(secret) is not str or not token.isascii():
        return False
    raw = _decoded(token)
    if raw is not None and len(raw) == 2 * _SECRET_BYTES:
        pad, body = raw[:_SECRET_BYTES], raw[_SECRET_BYTES:]
        token = base64.urlsafe_b64encode(bytes(a ^ b for a, b in zip(pad, body, strict=True)))
        token = token.rstrip(b"=").decode()
    return hmac.compare_digest(token.encode(), secret.encode())


def _decoded(text: str) -> bytes | None:
    """The bytes of base64url ``text`` (no padding); ``None`` when it is not that."""
    if not text.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def is_form(content_type: str) -> bool:
    """Whether the body is ``application/x-www-form-urlencoded`` (parameters ignored)."""
    return content_type.partition(";")[0].strip().lower() == "application/x-www-form-urlencoded"


def form_token(body: bytes, field: str) -> str | None:
    """The one value of ``field`` in a urlencoded form body; ``None`` when absent or repeated."""
    try:
        text = body.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None
    values = [v for k, v in parse_qsl(text, keep_blank_values=True) if k == field]
    return values[0] if len(values) == 1 else None


class CSRFGuard:
    """What the ASGI and the WSGI CSRF middleware share: their options, checked once.

    ``header_name`` and ``field_name`` name where the token travels; ``skip``/``exclude``
    leave routes alone (a webhook verified by its signature), as on the session middleware.
    A subclass gives ``_path`` (how to read a request's path) and may prepare its own form of
    the header name in ``_prepare``.
    """

    _path: Callable[[Any], str]

    def __init__(
        self,
        app: Any,
        store: Store,
        *,
        header_name: str = DEFAULT_HEADER,
        field_name: str = DEFAULT_FIELD,
        skip: Callable[[Any], bool] | None = None,
        exclude: str | Iterable[str] | None = None,
    ) -> None:
        for field, value in (("header_name", header_name), ("field_name", field_name)):
            if not isinstance(value, str) or not _TOKEN.match(value):
                raise ConfigError(field, f"expected a header or field name, got {value!r}")
        self.app = app
        self.store = store
        self.header_name = header_name
        self.field_name = field_name
        self._skip = skipper(skip, exclude, type(self)._path)
        self._prepare()

    def _prepare(self) -> None:
        """Precompute what a request needs from the options (nothing by default)."""
