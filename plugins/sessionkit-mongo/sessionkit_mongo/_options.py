"""Reading a Mongo storage's options from a URL and keyword arguments.

A MongoDB URL's query mixes pymongo's URI options (``retryWrites``, ``w``, ``authSource``...)
with the storage's own (``collection``, ``write_concern``). The storage's own are taken out of
the URL; the rest stay in it, untouched (repeatable ones such as ``readPreferenceTags``
included). Every option is checked by pymongo's own validators when the storage is opened, so
a misspelt one is a :class:`~sessionkit.ConfigError` naming it there, rather than the warning
pymongo would log and ignore. Keyword arguments go to the client as keywords, which pymongo
lets win over the URL.

:class:`MongoURLOptions` declares them for the core (``Backend(options=...)``): the storage's
own, and pymongo's as its :func:`driver_options`, each checked by pymongo's validators. Opened
by URL, the core reads the query once, and :func:`typed_driver_options` gives pymongo the
URL's body (with the repeatable ``readPreferenceTags``, which pymongo reads from the URL) and
the rest as keywords. :func:`driver_options` reads a URL given to ``MongoStorage`` directly.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote_plus, urlsplit, urlunsplit

import attrs
import pymongo.common
import pymongo.errors
import pymongo.uri_parser
from pymongo.write_concern import WriteConcern

from sessionkit import ConfigError
from sessionkit.storage import driver_options as declared_driver_options
from sessionkit.storage import query_options, read_with

from ._plugin import REPEATABLE

__all__ = [
    "DEFAULT_COLLECTION",
    "DEFAULT_DATABASE",
    "DRIVER_DEFAULTS",
    "OWN_OPTIONS",
    "MongoURLOptions",
    "check_clock",
    "check_collection",
    "check_driver_option",
    "driver_options",
    "parse_write_concern",
    "typed_driver_options",
]

DEFAULT_DATABASE = "sessionkit"
DEFAULT_COLLECTION = "sessions"

#: The storage's own options, which may come in the URL's query but are not pymongo's
#: (``database``: in place of the URL's path, as ``open_storage``'s keyword has always been).
OWN_OPTIONS = frozenset({"collection", "write_concern", "database"})

#: pymongo waits 30 s to find a server and forever for a reply by default; an outage should
#: fail a request fast with a StorageError instead. ``timeoutMS`` (pymongo's client-side
#: operation timeout) bounds a whole storage call: server selection, checking a connection
#: out of the pool, connecting, the reply, and the one retry pymongo makes of a read or write
#: that failed on the network (without it, a frozen server took socketTimeoutMS for the read,
#: then serverSelectionTimeoutMS for the retry's selection: 10 + 5 = 15 s). The storage also
#: runs the TTL index's creation and the operation under one deadline. While ``timeoutMS``
#: is set, pymongo selects a server for as long as the deadline allows, in place of
#: ``serverSelectionTimeoutMS`` (which still serves its monitors, and ``timeoutMS=0``). Each
#: can be overridden (URL or keyword).
DRIVER_DEFAULTS: Mapping[str, int] = {
    "timeoutMS": 5000,  # or shorter: see _default_deadline_ms
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 5000,
}

#: A day, in milliseconds: the most any time option takes. pymongo takes up to a billion
#: (11 days) and, for ``wTimeoutMS``, any integer at all, which overflows BSON at the first
#: write. Zero keeps pymongo's meaning where it has one (no limit, or for ``timeoutMS``
#: none of its own).
_DAY_MS = 86_400_000
_TIME_OPTIONS = frozenset(
    {
        "timeoutms",
        "serverselectiontimeoutms",
        "connecttimeoutms",
        "sockettimeoutms",
        "waitqueuetimeoutms",
        "maxidletimems",
        "heartbeatfrequencyms",
        "localthresholdms",
        "wtimeoutms",
    }
)
#: Whole-number options: (lowest, highest) after pymongo's own validation.
_INT_RANGES: Mapping[str, tuple[int, int]] = {
    "maxpoolsize": (0, 100_000),  # 0: no cap (pymongo's meaning)
    "minpoolsize": (0, 100_000),
    "maxconnecting": (1, 1_000),
    "srvmaxhosts": (0, 1_000),
    "maxadaptiveretries": (0, 10),
    "maxstalenessseconds": (-1, 31_536_000),  # -1: none; a year at most
}


#: The per-step timeouts a user may set; the default deadline is no longer than the longest.
_STEP_TIMEOUTS = ("serverselectiontimeoutms", "sockettimeoutms", "connecttimeoutms")


def _default_deadline_ms(validated: Mapping[str, Any]) -> int:
    """``timeoutMS`` when the user gave none: 5 s, or the longest per-step timeout they set
    if that is shorter.

    While ``timeoutMS`` is set, pymongo ignores ``socketTimeoutMS`` and lets server selection
    run to the deadline, so a user's ``serverSelectionTimeoutMS=300`` (fail fast when no
    server answers) would wait the whole default 5 s. A deadline of their longest step keeps
    each step as long as they allowed it, and keeps pymongo's retry from adding another.
    """
    steps = [validated[name] for name in _STEP_TIMEOUTS if validated.get(name)]  # s; 0: none
    default = DRIVER_DEFAULTS["timeoutMS"]
    return min(default, max(int(seconds * 1000) for seconds in steps)) if steps else default


def _check_range(name: str, raw: object, validated: object) -> None:
    """Refuse a value pymongo accepts but that fails at first use or means "never"."""
    key = name.lower()
    if key in _TIME_OPTIONS:
        ms = raw if not isinstance(raw, str) else float(raw)
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and not 0 <= ms <= _DAY_MS:
            raise ConfigError(
                name, f"must be a number of milliseconds from 0 to {_DAY_MS} (a day), got {raw!r}"
            )
    elif key in _INT_RANGES and isinstance(validated, int):
        low, high = _INT_RANGES[key]
        if not low <= validated <= high:
            raise ConfigError(name, f"must be a whole number from {low} to {high}, got {raw!r}")


def _query_name(pair: str) -> str:
    return unquote_plus(pair.split("=", 1)[0])


def check_driver_option(name: str, value: Any) -> Any:
    """``value`` if pymongo takes it for ``name`` (and it is in range); refused naming it."""
    try:
        _, validated = pymongo.common.validate(name, value)
        _check_range(name, value, validated)
    except ConfigError:
        raise
    except (pymongo.errors.ConfigurationError, ValueError, TypeError) as exc:
        own_match = difflib.get_close_matches(name, sorted(OWN_OPTIONS), n=1)
        if own_match and name.lower() not in pymongo.common.VALIDATORS:
            raise ConfigError(
                name, f"unknown option for the mongo storage; did you mean {own_match[0]!r}?"
            ) from None
        raise ConfigError(name, f"not a valid option for the mongo storage: {exc}") from None
    return value


def driver_options(
    url: str, options: Mapping[str, Any]
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Return ``(url for pymongo, keywords for the client, own options found in the query)``."""
    parts = _split(url)
    pairs = [p for p in parts.query.split("&") if p]
    # As open_storage reads it: pymongo's option names ignore case.
    query = query_options(parts.query, REPEATABLE, fold_case=True)
    own = {k: v for k, v in query.items() if k in OWN_OPTIONS}
    kept = [p for p in pairs if _query_name(p) not in OWN_OPTIONS]
    in_url = dict(parse_qsl("&".join(kept), keep_blank_values=True))
    merged = {**in_url, **options}
    for name, value in merged.items():
        check_driver_option(name, value)
    kwargs = {k: v for k, v in options.items() if k not in in_url or in_url[k] != v}
    driver_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))
    return driver_url, _with_defaults(merged, kwargs), own


def typed_driver_options(url: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return ``(url for pymongo, keywords for the client)`` for a storage the core opened:
    ``options`` are pymongo's, query and keywords, already checked (:class:`MongoURLOptions`).

    The URL keeps only the repeatable tag sets, which pymongo reads from it one occurrence
    each (``options`` holds the last); the rest go as keywords, read by pymongo as in a URL.
    """
    parts = _split(url)
    tags = [p for p in parts.query.split("&") if p and _query_name(p).lower() in REPEATABLE]
    in_url = dict(parse_qsl("&".join(tags), keep_blank_values=True))
    kwargs = {k: v for k, v in options.items() if k not in in_url or in_url[k] != v}
    driver_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(tags), ""))
    return driver_url, _with_defaults(options, kwargs)


def _with_defaults(merged: Mapping[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with :data:`DRIVER_DEFAULTS` for what ``merged`` (every pymongo option
    given, checked) leaves out; refuses a pool whose least size exceeds its most."""
    validated = {k.lower(): pymongo.common.validate(k, v)[1] for k, v in merged.items()}
    low = validated.get("minpoolsize") or 0
    high = validated.get("maxpoolsize", pymongo.common.MAX_POOL_SIZE)
    if high and low > high:  # pymongo would refuse it only when the client is made
        raise ConfigError("minPoolSize", f"must not exceed maxPoolSize ({high}), got {low}")
    given = {name.lower() for name in merged}
    for name, default in DRIVER_DEFAULTS.items():
        if name.lower() not in given:
            kwargs[name] = default
    if "timeoutms" not in given:
        kwargs["timeoutMS"] = _default_deadline_ms(validated)
    return kwargs


def _split(url: str) -> SplitResult:
    """``url`` split, its hosts checked: pymongo raises a bare ValueError for a bad port."""
    try:
        parts = urlsplit(url)
    except ValueError:  # its message may quote the netloc, password and all
        raise ConfigError("storage", "not a usable mongodb URL: it cannot be parsed") from None
    hosts = parts.netloc.rpartition("@")[2]
    if not url[len(parts.scheme) + 1 :].startswith("//") or not hosts:
        raise ConfigError(
            "storage", "expected mongodb://host[:port][,host[:port]...]/database or mongodb+srv://"
        )
    try:
        pymongo.uri_parser.split_hosts(hosts)
    except (pymongo.errors.ConfigurationError, ValueError) as exc:
        raise ConfigError("storage", f"not a usable mongodb URL: {exc}") from None
    return parts


def parse_write_concern(value: object) -> WriteConcern | None:
    """``"majority"``, a tag set name, a node count (int or digits) or a WriteConcern.

    Writes must be acknowledged: ``replace`` and ``touch`` report whether a record matched.
    """
    if value is None or isinstance(value, WriteConcern):
        concern = value
    elif isinstance(value, (int, str)) and not isinstance(value, bool) and value != "":
        w = int(value) if isinstance(value, str) and value.isdigit() else value
        try:
            concern = WriteConcern(w=w)
        except (pymongo.errors.ConfigurationError, ValueError, TypeError) as exc:
            raise ConfigError("write_concern", str(exc)) from None
    else:
        raise ConfigError("write_concern", f"expected 'majority', a tag or an int, got {value!r}")
    if concern is not None and not concern.acknowledged:
        raise ConfigError("write_concern", "must acknowledge writes (w=0 cannot report matches)")
    return concern


def check_collection(name: object) -> str:
    """Return ``name`` if MongoDB accepts it as an ordinary collection's name."""
    if (
        not isinstance(name, str)
        or not name
        or "$" in name
        or "\0" in name
        or name.startswith(("system.", "."))
        or name.endswith(".")
    ):
        raise ConfigError("collection", f"not a usable collection name: {name!r}")
    return name


def check_clock(clock: object) -> Callable[[], float] | None:
    """``clock`` if it can be the storage's clock (``None``: ``time.time``)."""
    if clock is not None and not callable(clock):
        raise ConfigError("clock", f"must be a callable returning epoch seconds: {clock!r}")
    return clock


def _database(name: str, value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(name, f"must be a database name, got {value!r}")
    return value


@attrs.frozen
class MongoURLOptions:
    """What ``open_storage`` takes for a Mongo storage: the storage's own options
    (:data:`OWN_OPTIONS`, and ``clock`` as a keyword) and any of pymongo's client options,
    checked by pymongo's validators, by name in any case."""

    collection: str | None = attrs.field(
        default=None, metadata=read_with(lambda _, value: check_collection(value))
    )
    write_concern: WriteConcern | None = attrs.field(
        default=None, metadata=read_with(lambda _, value: parse_write_concern(value))
    )
    database: str | None = attrs.field(default=None, metadata=read_with(_database))
    clock: Callable[[], float] | None = attrs.field(
        default=None, metadata=read_with(lambda _, value: check_clock(value))
    )
    driver: Mapping[str, Any] = declared_driver_options(None, check_driver_option, fold_case=True)
