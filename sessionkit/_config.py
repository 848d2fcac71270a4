"""``Config``: every knob of a store, validated once at construction.

A bad value raises :class:`ConfigError` naming the field when the application starts, so no
request ever pays for validation and no misconfiguration is discovered by a visitor.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

import attrs

from ._errors import ConfigError
from ._storage import Storage

__all__ = ["MAX_LIFETIME", "Config", "KeyLookup", "default_key_generator"]

# RFC 7230 token: what a cookie name or a header name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Characters that would end or split a Set-Cookie attribute (or a header) if injected.
_UNSAFE_ATTR = re.compile(r"[;,\x00-\x1f\x7f]")
_ID_ALPHABET = re.compile(r"[A-Za-z0-9_-]+\Z")
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
# One label of a host name: letters, digits and inner hyphens, 1 to 63 characters (RFC 1123),
# and underscores, which browsers accept and container and service names often carry.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")
# A last label the URL standard reads as a number, making the whole host an IPv4 address.
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0[xX][0-9A-Fa-f]*)\Z")
#: The methods a storage object must have (the ``Storage`` protocol), looked up with
#: ``getattr`` so a proxy that provides them through ``__getattr__`` is a storage too.
_STORAGE_METHODS = tuple(
    name for name, value in vars(Storage).items() if not name.startswith("_") and callable(value)
)

#: The longest lifetime a session may be given (``expiration``, ``absolute_timeout``, and
#: ``set_expiry``). RFC 6265bis has browsers cap a cookie's ``Expires``/``Max-Age`` at 400 days,
#: so a longer server-side lifetime would outlive every cookie that could point to the record;
#: and far beyond it the cookie's ``Expires`` date cannot even be rendered (year 10000).
MAX_LIFETIME = timedelta(days=400)

# Headers the id must never travel in with ``key_lookup="header:NAME"``: writing the id there
# would break the response's framing (the length, the transfer coding, the connection), take
# over a header the server or the browser acts on (a redirect, a cookie, the content type), or
# be overwritten by the server itself. Compared lowercased: header names are case-insensitive.
_FORBIDDEN_HEADERS = frozenset(
    {
        # framing and hop-by-hop (RFC 9110 section 7.6.1, RFC 9112)
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-connection",
        # what the server or the browser acts on, or the server writes itself
        "host",
        "cookie",
        "set-cookie",
        "location",
        "content-type",
        "content-encoding",
        "vary",
        "date",
        "server",
    }
)

#: The smallest id length accepted from a ``key_generator``: 22 URL-safe characters carry
#: 132 bits, above the 128 bits the security contract demands.
MIN_ID_LENGTH = 22


def default_key_generator() -> str:
    """Return 32 random bytes from :mod:`secrets`, URL-safe (43 characters, 256 bits)."""
    return secrets.token_urlsafe(32)


@attrs.frozen
class KeyLookup:
    """Where the session id travels: a cookie, a request/response header, or the query string."""

    source: Literal["cookie", "header", "query"]
    name: str

    @classmethod
    def parse(cls, value: str) -> KeyLookup:
        source, sep, name = value.partition(":")
        if not sep or source not in ("cookie", "header", "query"):
            raise ConfigError(
                "key_lookup",
                f"expected 'cookie:NAME', 'header:NAME' or 'query:NAME', got {value!r}",
            )
        if not _TOKEN.match(name):
            raise ConfigError("key_lookup", f"{name!r} is not a valid {source} name")
        if source == "header" and name.lower() in _FORBIDDEN_HEADERS:
            raise ConfigError(
                "key_lookup",
                f"{name!r} cannot carry the session id: the server, the browser or a proxy "
                "gives that header its own meaning (framing, redirects, cookies, content), "
                "so writing the id into it would break or hijack the response; "
                "use a header of your own, such as 'header:X-Session'",
            )
        return cls(source, name)  # type: ignore[arg-type]


def _lifetime(field: str, value: timedelta) -> None:
    """A positive ``timedelta`` of at most :data:`MAX_LIFETIME`.

    The upper bound is checked here, at start-up: a longer lifetime would otherwise be found
    out by the first save, after its record was written, as a cookie date that cannot be
    rendered (or a cookie the browser shortens to 400 days anyway).
    """
    if not isinstance(value, timedelta):
        raise ConfigError(field, f"expected a datetime.timedelta, got {type(value).__name__}")
    if value <= timedelta(0):
        raise ConfigError(field, f"must be positive, got {value!r}")
    if value > MAX_LIFETIME:
        raise ConfigError(
            field,
            f"must be at most {MAX_LIFETIME.days} days, got {value!r}: browsers cap a "
            "cookie's lifetime at 400 days (RFC 6265bis), so a longer session would outlive "
            "every cookie pointing to it",
        )


def _attr_value(field: str, value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(field, f"expected a str, got {type(value).__name__}")
    # Headers are latin-1 on the wire (ASGI encodes them, WSGI must hold latin-1 text): only
    # ASCII is safe, and anything else would fail at the first response, as a 500.
    if not value.isascii() or _UNSAFE_ATTR.search(value) or " " in value:
        raise ConfigError(
            field, f"must be ASCII, without ';', ',', spaces or control characters: {value!r}"
        )


def _storage(value: object) -> None:
    """A URL, or a storage *object*: not a storage class, nor anything else."""
    if isinstance(value, str):
        if not value:
            raise ConfigError("storage", "the storage URL is empty")
        return
    if isinstance(value, type):
        # A storage class has every method, as unbound functions: it would pass a protocol
        # check, then fail every call, each request answering 503 as if the storage were down.
        if all(callable(getattr(value, name, None)) for name in _STORAGE_METHODS):
            raise ConfigError(
                "storage",
                f"got the class {value.__name__}, not a storage object: pass an instance "
                f"({value.__name__}()) or a URL such as 'memory://'",
            )
        raise ConfigError(
            "storage", f"expected a URL or a storage object, got the class {value.__name__}"
        )
    missing = [name for name in _STORAGE_METHODS if not callable(getattr(value, name, None))]
    if missing:
        raise ConfigError(
            "storage",
            f"expected a URL or a storage object, got {type(value).__name__} "
            f"(it lacks {', '.join(missing)})",
        )


def _cookie_domain(value: object) -> None:
    """``""`` (no ``Domain``: this host only), a host name, or an IPv4 address.

    Browsers ignore a ``Domain`` attribute they cannot match against a host (a URL, a port, a
    path, an ``=``) and keep the cookie host-only, or drop it: the session would never stick,
    with no error anywhere. So anything but a plain host name is refused at start-up.
    """
    field = "cookie_domain"
    if not isinstance(value, str):
        raise ConfigError(field, f"expected a str, got {type(value).__name__}")
    if not value.isascii():
        hint = ""
        with contextlib.suppress(UnicodeError):
            hint = f" ({value.encode('idna').decode('ascii')!r})"
        raise ConfigError(
            field,
            f"{value!r} is not ASCII: write an internationalised domain name in its punycode "
            f"(xn--) form{hint}, as it travels in headers",
        )
    _attr_value(field, value)
    if not value:
        return
    if "://" in value:
        raise ConfigError(
            field, f"{value!r} is a URL: give the host name alone, such as 'example.com'"
        )
    if ":" in value:
        raise ConfigError(
            field,
            f"{value!r} holds a ':' (a port, or an IPv6 address): give the host name alone; "
            "cookies ignore ports, and for an IPv6 host leave cookie_domain empty",
        )
    if "/" in value:
        raise ConfigError(
            field, f"{value!r} holds a '/': give the host name alone, the path is cookie_path"
        )
    host = value[1:] if value.startswith(".") else value
    if not host or host.startswith("."):
        raise ConfigError(
            field,
            f"{value!r}: at most one leading '.' before a host name (browsers ignore it: "
            "'.example.com' is 'example.com', which already covers its subdomains)",
        )
    if host.endswith("."):
        raise ConfigError(
            field,
            f"{value!r} ends with '.': browsers match no host against such a Domain, drop it",
        )
    if len(host) > 253:
        raise ConfigError(field, f"a host name is at most 253 characters, got {len(host)}")
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        # Browsers read a host whose last label is a number as an IPv4 address (the URL
        # standard), so "1.2.3" or "010.0.0.1" would be some other address, or none.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ConfigError(
                field,
                f"{value!r} ends in a number, so browsers read it as an IPv4 address, and it "
                "is not one in dotted-decimal form (four numbers 0-255, no leading zeros)",
            ) from None
        if host != value:
            raise ConfigError(
                field, f"{value!r}: an IP address has no subdomains, drop the leading '.'"
            )
        return
    for label in labels:
        if not _LABEL.match(label):
            raise ConfigError(
                field,
                f"{value!r} is not a host name: each dot-separated label must be 1-63 "
                "letters, digits or '-', not starting or ending with '-' "
                f"(offending label: {label!r})",
            )


def _normalise_same_site(value: Any) -> Any:
    if isinstance(value, str):
        return _SAME_SITE.get(value.lower(), value)
    return value


@attrs.frozen(kw_only=True)
class Config:
    """Settings of a :class:`~sessionkit.Store` (Fiber's ``session.Config``, Python spelling)."""

    #: Lifetime of a session, renewed at each save.
    expiration: timedelta = timedelta(hours=24)
    #: Hard cap from creation, whatever the activity; ``None`` for none.
    absolute_timeout: timedelta | None = None
    #: A URL for :func:`~sessionkit.open_storage`, or a storage object.
    storage: str | Storage = "memory"
    #: ``"cookie:NAME"``, ``"header:NAME"`` or ``"query:NAME"``.
    key_lookup: str = "cookie:session_id"
    cookie_domain: str = ""
    cookie_path: str = "/"
    cookie_secure: bool = False
    cookie_http_only: bool = True
    cookie_same_site: str = attrs.field(default="Lax", converter=_normalise_same_site)
    #: No ``Expires``/``Max-Age`` on the cookie: it dies with the browser session.
    cookie_session_only: bool = False
    key_generator: Callable[[], str] = default_key_generator
    #: Largest encoded session, in bytes.
    max_size: int = 65536
    #: When set (32+ bytes), the storage holds an HMAC of each id instead of the id itself,
    #: so a leaked database or Redis dump holds no live session ids. Changing it logs everyone out.
    storage_key_secret: bytes | str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        _lifetime("expiration", self.expiration)
        if self.absolute_timeout is not None:
            _lifetime("absolute_timeout", self.absolute_timeout)
            if self.absolute_timeout < self.expiration:
                raise ConfigError(
                    "absolute_timeout",
                    f"{self.absolute_timeout!r} is shorter than expiration {self.expiration!r}",
                )
        _storage(self.storage)
        if not isinstance(self.key_lookup, str):
            raise ConfigError("key_lookup", f"expected a str, got {type(self.key_lookup).__name__}")
        lookup = KeyLookup.parse(self.key_lookup)
        _cookie_domain(self.cookie_domain)
        _attr_value("cookie_path", self.cookie_path)
        if not self.cookie_path.startswith("/"):
            raise ConfigError("cookie_path", f"must start with '/', got {self.cookie_path!r}")
        for name in ("cookie_secure", "cookie_http_only", "cookie_session_only"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, f"expected a bool, got {getattr(self, name)!r}")
        if self.cookie_same_site not in _SAME_SITE.values():
            raise ConfigError(
                "cookie_same_site",
                f"expected 'Lax', 'Strict' or 'None', got {self.cookie_same_site!r}",
            )
        if self.cookie_same_site == "None" and not self.cookie_secure:
            raise ConfigError("cookie_same_site", "SameSite=None requires cookie_secure=True")
        if lookup.source == "cookie":
            self._check_cookie_prefix(lookup.name)
        if not callable(self.key_generator):
            raise ConfigError("key_generator", "expected a callable returning a str")
        self._check_key_generator()
        secret = self.storage_key_secret
        if secret is not None and (
            not isinstance(secret, (bytes, str))
            or len(secret.encode() if isinstance(secret, str) else secret) < 32
        ):
            raise ConfigError("storage_key_secret", "must be bytes or str of at least 32 bytes")
        if (
            isinstance(self.max_size, bool)
            or not isinstance(self.max_size, int)
            or self.max_size < 64
        ):
            raise ConfigError(
                "max_size", f"expected an int of at least 64 bytes, got {self.max_size!r}"
            )

    def _check_cookie_prefix(self, name: str) -> None:
        # Browsers match the prefixes whatever their case (RFC 6265bis), and drop a cookie that
        # breaks their rules without a word: "__host-sid" is held to "__Host-"'s rules.
        lowered = name.lower()
        if lowered.startswith("__host-"):
            if not self.cookie_secure:
                raise ConfigError("cookie_secure", "a __Host- cookie requires cookie_secure=True")
            if self.cookie_path != "/":
                raise ConfigError("cookie_path", "a __Host- cookie requires cookie_path='/'")
            if self.cookie_domain:
                raise ConfigError("cookie_domain", "a __Host- cookie must not set a domain")
        elif lowered.startswith("__secure-") and not self.cookie_secure:
            raise ConfigError("cookie_secure", "a __Secure- cookie requires cookie_secure=True")

    def _check_key_generator(self) -> None:
        samples = [self.key_generator() for _ in range(2)]
        for sample in samples:
            if not isinstance(sample, str) or not _ID_ALPHABET.match(sample):
                raise ConfigError(
                    "key_generator", f"must return URL-safe text ([A-Za-z0-9_-]), got {sample!r}"
                )
            if len(sample) < MIN_ID_LENGTH:
                raise ConfigError(
                    "key_generator",
                    f"ids must be at least {MIN_ID_LENGTH} characters (128 bits), got {len(sample)}",
                )
        if len(samples[0]) != len(samples[1]) or samples[0] == samples[1]:
            raise ConfigError(
                "key_generator", "must return distinct random ids of one fixed length"
            )

    @property
    def lookup(self) -> KeyLookup:
        """``key_lookup`` parsed into its source and name."""
        return KeyLookup.parse(self.key_lookup)

    @property
    def id_length(self) -> int:
        """The fixed length of ids made by ``key_generator``."""
        return len(self.key_generator())
