"""``Config``: every knob of a store, validated once at construction.

A bad value raises :class:`ConfigError` naming the field when the application starts, so no
request ever pays for validation and no misconfiguration is discovered by a visitor.
"""

from __future__ import annotations

import contextlib
import dis
import functools
import ipaddress
import itertools
import operator
import random
import re
import secrets
import types
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, Literal

import attrs

from ._crypto import aead_class, parse_keys
from ._errors import ConfigError
from ._storage import Storage

__all__ = ["MAX_LIFETIME", "Config", "KeyLookup", "default_key_generator", "parse_lookups"]

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


# -- vetting a custom key_generator ----------------------------------------------------------
#
# The statistics below refuse, with a chance of refusing a sound generator (ids from `secrets`
# over the URL-safe alphabet or its letters and digits, of at least 22 characters) below one
# in ten million: counters, clocks, constants, small alphabets and ids that differ only in a
# few places. They cannot see a generator that is predictable in a subtler way (the `random`
# module's Mersenne Twister passes every statistical test): that one is looked for in the code
# the generator names (_mersenne_twister), as a guard against the common mistake.

#: How many ids a custom ``key_generator`` is sampled for at construction.
KEY_GENERATOR_SAMPLES = 64
#: The fewest different characters the sampled ids must show between them. 64 ids of at least
#: 21 random characters are over 1,300 draws: a generator over the 64 URL-safe characters, or
#: the 62 letters and digits, shows every one of its characters (missing one has a chance
#: below 1e-8), while hex (16), digits (10) or lowercase (26 or 36) ids fall far short.
MIN_ID_ALPHABET = 62
#: The fewest positions at which consecutive ids must differ (the median over the sample):
#: two random ids differ almost everywhere, counters and clocks in their last (or first) few
#: characters. 21 characters of 6 bits are the 126 bits that make a 22-character id's 128.
MIN_ID_CHANGES = 21

# What the `random` module draws with its Mersenne Twister (`SystemRandom` draws from the OS).
_MT_FUNCTIONS = frozenset(
    {
        "betavariate",
        "binomialvariate",
        "choice",
        "choices",
        "expovariate",
        "gauss",
        "getrandbits",
        "randbytes",
        "randint",
        "random",
        "randrange",
        "sample",
        "seed",
        "shuffle",
        "triangular",
        "uniform",
        "Random",
    }
)
# How many calls deep the code a generator names is followed.
_MT_DEPTH = 4


def _is_mersenne_twister(value: object) -> bool:
    """A ``random.Random`` (not ``SystemRandom``), the class itself, or a method of one."""
    owner = getattr(value, "__self__", None)
    for candidate in (value, owner):
        if candidate is random.Random or (
            isinstance(candidate, random.Random) and not isinstance(candidate, random.SystemRandom)
        ):
            return True
    return False


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and the code nested in it (comprehensions, generator expressions, lambdas)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _mersenne_twister(generator: object) -> str | None:
    """How ``generator`` reaches the ``random`` module's generator, or ``None`` if it does not
    seem to: a look at the objects and code it names, a few calls deep, not a proof."""
    seen: set[int] = set()
    todo: list[tuple[object, int]] = [(generator, 0)]
    while todo:
        value, depth = todo.pop()
        if id(value) in seen or depth > _MT_DEPTH:
            continue
        seen.add(id(value))
        if _is_mersenne_twister(value):
            return _describe_mersenne_twister(value)
        if getattr(value, "__module__", None) == "random" or isinstance(
            getattr(value, "__self__", None), random.SystemRandom
        ):
            continue  # the module's own code, or secrets.choice: decided above, by the owner
        named: list[object] = []
        if isinstance(value, functools.partial):
            named += [value.func, *value.args, *value.keywords.values()]
        elif isinstance(value, types.MethodType):
            named += [value.__func__, value.__self__]
        elif isinstance(value, types.FunctionType):
            closure = [cell.cell_contents for cell in value.__closure__ or () if _filled(cell)]
            named += [*closure, *(value.__defaults__ or ()), *(value.__kwdefaults__ or {}).values()]
            for code in _codes(value.__code__):
                names = set(code.co_names)
                module_used = ("random" in names and _imports_random(code)) or any(
                    value.__globals__.get(name) is random for name in names
                )
                drawn = sorted(names & _MT_FUNCTIONS)
                if module_used and drawn and "SystemRandom" not in names:
                    return f"random.{drawn[0]}"
                named += [value.__globals__[name] for name in names if name in value.__globals__]
        elif not isinstance(value, (type, types.ModuleType, types.BuiltinFunctionType)):
            call = next(
                (vars(k)["__call__"] for k in type(value).__mro__ if "__call__" in vars(k)), None
            )
            if isinstance(call, types.FunctionType):  # an object with a __call__ of its own
                named += [call, *getattr(value, "__dict__", {}).values()]
        todo += [(child, depth + 1) for child in named]
    return None


def _describe_mersenne_twister(value: object) -> str:
    if value is random.Random:
        return "random.Random"
    name = getattr(value, "__name__", "")
    owner = getattr(value, "__self__", None)
    if owner is getattr(random, "_inst", None):  # the module's functions: random.choices
        return f"random.{name}"
    if owner is not None:
        return f"random.Random().{name}"
    return "a random.Random object"


def _imports_random(code: types.CodeType) -> bool:
    """Whether ``code`` runs ``import random`` (or ``from random import ...``) itself."""
    return any(
        ins.opname == "IMPORT_NAME" and ins.argval == "random" for ins in dis.get_instructions(code)
    )


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _check_key_generator(generator: Callable[[], str]) -> None:
    """Refuse, as a ``ConfigError`` naming ``key_generator``, a generator whose ids are not of
    one URL-safe shape of 128 bits or more, or are visibly not random (see the constants
    above): repeated ids, ids that change in few places, ids over a small alphabet, or a
    generator that draws from the ``random`` module."""

    def refuse(why: str) -> ConfigError:
        return ConfigError("key_generator", why)

    samples: list[object] = []
    for _ in range(KEY_GENERATOR_SAMPLES):
        try:
            samples.append(generator())
        except Exception as exc:
            raise refuse(f"raised {type(exc).__name__}: {exc}") from exc
    for sample in samples:
        if not isinstance(sample, str) or not _ID_ALPHABET.match(sample):
            raise refuse(f"must return URL-safe text ([A-Za-z0-9_-]), got {sample!r}")
        if len(sample) < MIN_ID_LENGTH:
            raise refuse(
                f"ids must be at least {MIN_ID_LENGTH} characters (128 bits), got {len(sample)}"
            )
    ids = [str(sample) for sample in samples]
    lengths = sorted({len(sid) for sid in ids})
    if len(lengths) > 1:
        raise refuse(f"must return ids of one fixed length, got lengths {lengths}")
    distinct = len(set(ids))
    if distinct < len(ids):
        raise refuse(
            f"returned only {distinct} different ids in {len(ids)} calls: ids must never repeat"
        )
    changes = sorted(sum(map(operator.ne, x, y)) for x, y in itertools.pairwise(ids))
    median = changes[len(changes) // 2]
    if median < MIN_ID_CHANGES:
        raise refuse(
            f"consecutive ids differ in only {median} of their {lengths[0]} characters (the "
            f"median of {len(changes)} pairs), as a counter's or a clock's do; random ids differ "
            f"in nearly all (at least {MIN_ID_CHANGES}): draw them from secrets, such as "
            "secrets.token_urlsafe(32)"
        )
    alphabet = "".join(sorted(set("".join(ids))))
    if len(alphabet) < MIN_ID_ALPHABET:
        raise refuse(
            f"{len(ids)} ids used only {len(alphabet)} different characters ({alphabet!r}); "
            f"random URL-safe ids use all 64 (at least {MIN_ID_ALPHABET}, letters and digits): "
            "hex, digits or lowercase carry too few bits a character for their length to tell "
            "their strength, use secrets.token_urlsafe(32)"
        )
    drawn = _mersenne_twister(generator)
    if drawn is not None:
        raise refuse(
            f"draws from the random module ({drawn}), whose ids can be predicted from earlier "
            "ones; draw them from secrets, such as secrets.token_urlsafe(32)"
        )


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


def parse_lookups(value: str) -> tuple[KeyLookup, ...]:
    """``key_lookup`` as its sources: one, or a comma-separated chain (Fiber v3's chained
    extractors), ``"cookie:session_id,header:X-Session-Id"``, whose first source present in
    a request is used.

    A chain names each source once, and at most one cookie: a response can hand the id back
    through one cookie only.
    """
    lookups = tuple(KeyLookup.parse(part.strip()) for part in value.split(","))
    seen = [(lookup.source, lookup.name.lower()) for lookup in lookups]
    if len(set(seen)) != len(seen):
        raise ConfigError("key_lookup", f"{value!r} names a source twice")
    if sum(lookup.source == "cookie" for lookup in lookups) > 1:
        raise ConfigError(
            "key_lookup", f"{value!r} names two cookies: a response can set only one of them"
        )
    return lookups


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


def _storage(field: str, value: object) -> None:
    """A URL, or a storage *object*: not a storage class, nor anything else."""
    if isinstance(value, str):
        if not value:
            raise ConfigError(field, "the storage URL is empty")
        return
    if isinstance(value, type):
        # A storage class has every method, as unbound functions: it would pass a protocol
        # check, then fail every call, each request answering 503 as if the storage were down.
        if all(callable(getattr(value, name, None)) for name in _STORAGE_METHODS):
            raise ConfigError(
                field,
                f"got the class {value.__name__}, not a storage object: pass an instance "
                f"({value.__name__}()) or a URL such as 'memory://'",
            )
        raise ConfigError(
            field, f"expected a URL or a storage object, got the class {value.__name__}"
        )
    missing = [name for name in _STORAGE_METHODS if not callable(getattr(value, name, None))]
    if missing:
        raise ConfigError(
            field,
            f"expected a URL or a storage object, got {type(value).__name__} "
            f"(it lacks {', '.join(missing)})",
        )


def _cookie_domain(field: str, value: object) -> None:
    """``""`` (no ``Domain``: this host only), a host name, or an IPv4 address.

    Browsers ignore a ``Domain`` attribute they cannot match against a host (a URL, a port, a
    path, an ``=``) and keep the cookie host-only, or drop it: the session would never stick,
    with no error anywhere. So anything but a plain host name is refused at start-up.
    """
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


_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _checked(check: Callable[[str, Any], None]) -> _Validator:
    """An attrs validator from a check that takes the field's name (for its ConfigError)."""

    def validate(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check(attribute.name, value)

    return validate


def _bool(field: str, value: object) -> None:
    # A truthy string ("false") would silently mean True.
    if not isinstance(value, bool):
        raise ConfigError(field, f"expected a bool, got {value!r}")


def _absolute_timeout(config: Config, _: attrs.Attribute[Any], value: timedelta | None) -> None:
    if value is None:
        return
    _lifetime("absolute_timeout", value)
    if value < config.expiration:
        raise ConfigError(
            "absolute_timeout", f"{value!r} is shorter than expiration {config.expiration!r}"
        )


def _key_lookup(field: str, value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(field, f"expected a str, got {type(value).__name__}")
    parse_lookups(value)


def _cookie_path(field: str, value: object) -> None:
    _attr_value(field, value)
    if not str(value).startswith("/"):
        raise ConfigError(field, f"must start with '/', got {value!r}")


def _same_site(config: Config, _: attrs.Attribute[Any], value: object) -> None:
    if value not in _SAME_SITE.values():
        raise ConfigError("cookie_same_site", f"expected 'Lax', 'Strict' or 'None', got {value!r}")
    # Browsers drop a SameSite=None cookie that is not Secure: the session would never stick.
    if value == "None" and not config.cookie_secure:
        raise ConfigError("cookie_same_site", "SameSite=None requires cookie_secure=True")


def _key_generator(field: str, value: object) -> None:
    if not callable(value):
        raise ConfigError(field, "expected a callable returning a str")
    # The default draws from ``secrets`` and always has the shape: it needs no sampling.
    if value is not default_key_generator:
        _check_key_generator(value)


def _max_size(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 64:
        raise ConfigError(field, f"expected an int of at least 64 bytes, got {value!r}")


def _conflict(field: str, value: object) -> None:
    if value not in ("merge", "overwrite"):
        raise ConfigError(field, f"expected 'merge' or 'overwrite', got {value!r}")


def _principal_key(field: str, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(field, f"expected a session key (a non-empty str) or None, got {value!r}")


def _storage_key_secret(field: str, value: object) -> None:
    """One secret, or a sequence of them while rotating: the first names records, the
    others are still looked under (see ``Store._read``)."""
    if value is None:
        return
    secrets_ = (value,) if isinstance(value, (bytes, str)) else value
    if not isinstance(secrets_, tuple) or not secrets_:
        raise ConfigError(field, "must be bytes or str of at least 32 bytes, or a list of them")
    for secret in secrets_:
        if (
            not isinstance(secret, (bytes, str))
            or len(secret.encode() if isinstance(secret, str) else secret) < 32
        ):
            raise ConfigError(field, "must be bytes or str of at least 32 bytes, or a list of them")
    if len({s.encode() if isinstance(s, str) else s for s in secrets_}) != len(secrets_):
        raise ConfigError(field, "a secret is listed twice")


def _as_tuple(value: Any) -> Any:
    """A list or other non-text sequence as a tuple (a frozen config must hash, and must not
    change under the store when the caller's list does); anything else as it is."""
    if isinstance(value, (list, tuple, range)) or (
        isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))
    ):
        return tuple(value)
    return value


def _encryption_keys(field: str, value: object) -> None:
    if value is not None:
        parse_keys(field, value)
        aead_class()  # the library is there: fail at start-up, not at the first save


def _encryption_required(config: Config, _: attrs.Attribute[Any], value: object) -> None:
    _bool("encryption_required", value)
    if value and config.encryption_keys is None:
        raise ConfigError("encryption_required", "requires encryption_keys")


@attrs.frozen(kw_only=True)
class Config:
    """Settings of a :class:`~sessionkit.Store` (Fiber's ``session.Config``, Python spelling).

    Every field is checked as the object is built (attrs validators, which ``attrs.evolve``
    runs too), so a bad setting fails at start-up with a :class:`~sessionkit.ConfigError`
    naming the field, not at the first request. Rules that tie fields together (a
    ``__Host-`` cookie's) are checked once all fields are.
    """

    #: Lifetime of a session, renewed at each save.
    expiration: timedelta = attrs.field(default=timedelta(hours=24), validator=_checked(_lifetime))
    #: Hard cap from creation, whatever the activity; ``None`` for none.
    absolute_timeout: timedelta | None = attrs.field(default=None, validator=_absolute_timeout)
    #: A URL for :func:`~sessionkit.open_storage`, or a storage object.
    storage: str | Storage = attrs.field(default="memory", validator=_checked(_storage))
    #: ``"cookie:NAME"``, ``"header:NAME"`` or ``"query:NAME"``, or a comma-separated chain of
    #: them whose first source present in a request is used (see :func:`parse_lookups`).
    key_lookup: str = attrs.field(default="cookie:session_id", validator=_checked(_key_lookup))
    cookie_domain: str = attrs.field(default="", validator=_checked(_cookie_domain))
    cookie_path: str = attrs.field(default="/", validator=_checked(_cookie_path))
    cookie_secure: bool = attrs.field(default=False, validator=_checked(_bool))
    cookie_http_only: bool = attrs.field(default=True, validator=_checked(_bool))
    cookie_same_site: str = attrs.field(
        default="Lax", converter=_normalise_same_site, validator=_same_site
    )
    #: No ``Expires``/``Max-Age`` on the cookie: it dies with the browser session.
    cookie_session_only: bool = attrs.field(default=False, validator=_checked(_bool))
    key_generator: Callable[[], str] = attrs.field(
        default=default_key_generator, validator=_checked(_key_generator)
    )
    #: Largest encoded session, in bytes.
    max_size: int = attrs.field(default=65536, validator=_checked(_max_size))
    #: Renew every session a request uses (rewritten, its cookie's ``Max-Age`` refreshed),
    #: not only once it is past half its lifetime: starsessions' ``rolling``, Flask's
    #: ``SESSION_REFRESH_EACH_REQUEST``. One write per request that reads its session.
    rolling: bool = attrs.field(default=False, validator=_checked(_bool))
    #: When set (32+ bytes), the storage holds an HMAC of each id instead of the id itself,
    #: so a leaked database or Redis dump holds no live session ids. Changing it logs everyone out.
    #: A sequence of them rotates the secret: records are named with the first, and still
    #: found under the others (an extra read on a miss), moved to the first on their next write.
    storage_key_secret: bytes | str | Sequence[bytes | str] | None = attrs.field(
        default=None, repr=False, converter=_as_tuple, validator=_checked(_storage_key_secret)
    )
    #: Keys (32 random bytes, or their base64url text) that encrypt stored records: the first
    #: seals every write, any of them opens a record. ``None``: records are stored in the clear.
    encryption_keys: Sequence[bytes | str] | None = attrs.field(
        default=None, repr=False, converter=_as_tuple, validator=_checked(_encryption_keys)
    )
    #: With ``encryption_keys``: refuse a record stored in the clear (a lost session) instead
    #: of reading it; turn on once ``sessionkit rekey`` has sealed every record.
    encryption_required: bool = attrs.field(default=False, validator=_encryption_required)
    #: What a save does when its record changed since this request loaded it: ``"merge"``
    #: re-applies only this request's own changes (keys set and deleted) on top of the stored
    #: record; ``"overwrite"`` writes the session whole (the last writer wins).
    conflict: Literal["merge", "overwrite"] = attrs.field(
        default="merge", validator=_checked(_conflict)
    )
    #: The session key whose value (a str or an int) names the user: a session holding it is
    #: indexed under that value on save, so ``Store.sessions_for`` lists a user's sessions and
    #: ``Store.destroy_all`` logs the user out everywhere. ``None``: no index is kept.
    principal_key: str | None = attrs.field(default=None, validator=_checked(_principal_key))

    def __attrs_post_init__(self) -> None:
        for lookup in self.lookups:
            if lookup.source == "cookie":
                self._check_cookie_prefix(lookup.name)

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

    @property
    def lookup(self) -> KeyLookup:
        """``key_lookup`` parsed into its source and name (a chain's first source)."""
        return self.lookups[0]

    @property
    def lookups(self) -> tuple[KeyLookup, ...]:
        """``key_lookup`` parsed: its one source, or each source of a chain, in order."""
        return parse_lookups(self.key_lookup)

    @property
    def id_length(self) -> int:
        """The fixed length of ids made by ``key_generator``."""
        return len(self.key_generator())
