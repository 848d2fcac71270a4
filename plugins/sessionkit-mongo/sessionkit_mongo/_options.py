"""Reading a Mongo storage's options from a URL and keyword arguments.

A MongoDB URL's query mixes pymongo's URI options (``retryWrites``, ``w``, ``authSource``...)
with the storage's own (``collection``, ``write_concern``). The storage's own are taken out of
the URL; the rest stay in it, untouched (repeatable ones such as ``readPreferenceTags``
included). Every option is checked by pymongo's own validators when the storage is opened, so
a misspelt one is a :class:`~sessionkit.ConfigError` naming it there, rather than the warning
pymongo would log and ignore. Keyword arguments go to the client as keywords, which pymongo
lets win over the URL.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote_plus, urlsplit, urlunsplit

import pymongo.common
import pymongo.errors
import pymongo.uri_parser
from pymongo.write_concern import WriteConcern

from sessionkit import ConfigError

from ._plugin import REPEATABLE

__all__ = [
    "DEFAULT_COLLECTION",
    "DEFAULT_DATABASE",
    "DRIVER_DEFAULTS",
    "OWN_OPTIONS",
    "check_collection",
    "driver_options",
    "parse_write_concern",
]

DEFAULT_DATABASE = "sessionkit"
DEFAULT_COLLECTION = "sessions"

#: The storage's own options, which may come in the URL's query but are not pymongo's.
OWN_OPTIONS = frozenset({"collection", "write_concern"})
#: pymongo waits 30 s to find a server and forever for a reply by default; an outage should
#: fail a request fast with a StorageError instead. Each can be overridden (URL or keyword).
DRIVER_DEFAULTS: Mapping[str, int] = {
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 5000,
    "socketTimeoutMS": 10000,
}


def _query_name(pair: str) -> str:
    return unquote_plus(pair.split("=", 1)[0])


def driver_options(
    url: str, options: Mapping[str, Any]
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Return ``(url for pymongo, keywords for the client, own options found in the query)``."""
    parts = _split(url)
    pairs = [p for p in parts.query.split("&") if p]
    names = [_query_name(p) for p in pairs]
    folded = [name.lower() for name in names]  # pymongo's option names ignore case
    for name, key in zip(names, folded, strict=True):
        if folded.count(key) > 1 and key not in REPEATABLE:
            raise ConfigError(name, "appears more than once in the storage URL; give it once")
    own = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k in OWN_OPTIONS}
    kept = [p for p in pairs if _query_name(p) not in OWN_OPTIONS]
    in_url = dict(parse_qsl("&".join(kept), keep_blank_values=True))
    for name, value in {**in_url, **options}.items():
        try:
            pymongo.common.validate(name, value)
        except (pymongo.errors.ConfigurationError, ValueError, TypeError) as exc:
            own_match = difflib.get_close_matches(name, sorted(OWN_OPTIONS), n=1)
            if own_match and name.lower() not in pymongo.common.VALIDATORS:
                raise ConfigError(
                    name, f"unknown option for the mongo storage; did you mean {own_match[0]!r}?"
                ) from None
            raise ConfigError(name, f"not a valid option for the mongo storage: {exc}") from None
    kwargs = {k: v for k, v in options.items() if k not in in_url or in_url[k] != v}
    given = {name.lower() for name in (*in_url, *options)}
    for name, default in DRIVER_DEFAULTS.items():
        if name.lower() not in given:
            kwargs[name] = default
    driver_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))
    return driver_url, kwargs, own


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
