"""The stored record: a versioned envelope around a session's data.

``{"v": 1, "c": created, "t": saved, "l": lifetime | null, "d": {...}}`` -- created-at and the
last save time let the server enforce idle expiry and ``absolute_timeout`` itself (the backend's
TTL is a second line, not the only one), and ``l`` keeps a per-session ``set_expiry`` across
requests. Two optional keys, written only when they apply so other records keep their bytes:
``"b": true`` (a browser session) and ``"p": horizon`` (indexed under its principal until then;
see ``sessionkit._principals``).
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ._config import MAX_LIFETIME
from ._values import DecodeError, TypeRegistry, check_nesting

__all__ = [
    "VERSION",
    "Record",
    "Times",
    "decode_record",
    "encode_envelope",
    "encode_record",
    "envelope_times",
    "written_record",
]

VERSION = 1


@attrs.define(slots=True)
class Record:
    """A decoded envelope."""

    data: dict[str, Any]
    created: float
    saved: float
    lifetime: float | None
    #: ``set_expiry(timedelta(0))`` / Flask's ``permanent = False``: a cookie without
    #: ``Max-Age``, the server still ending the session after the config's ``expiration``.
    #: Stored as ``"b": true``, only when set, so other records keep their bytes.
    browser: bool = False
    #: With ``Config.principal_key``: the time until which the principal index is known to list
    #: this record (``"p"``). A save that would make the record outlive it indexes it again
    #: first; ``None``: not indexed (no principal, or stored before ``principal_key`` was set).
    indexed: float | None = None

    def copied(self) -> Record:
        """The same record with a data dict of its own (the values are shared)."""
        return Record(
            dict(self.data), self.created, self.saved, self.lifetime, self.browser, self.indexed
        )


def encode_record(registry: TypeRegistry, record: Record) -> bytes:
    """Encode ``record`` to bytes (one JSON pass over the data)."""
    return encode_envelope(
        registry,
        record.data,
        record.created,
        record.saved,
        record.lifetime,
        record.browser,
        record.indexed,
    )


def encode_envelope(
    registry: TypeRegistry,
    data: dict[str, Any],
    created: float,
    saved: float,
    lifetime: float | None,
    browser: bool = False,
    indexed: float | None = None,
) -> bytes:
    """:func:`encode_record` without building a :class:`Record` first (the save path).

    The header is formatted here and only the data goes through the JSON encoder: the same
    bytes as encoding the whole envelope as one dict (``float.__repr__`` is how ``json``
    writes a float), and a fifth less of the time a small session takes to encode.
    """
    life = "null" if lifetime is None else _float(float(lifetime))
    flag = _BROWSER if browser else ""
    if indexed is not None:
        flag += f'"p":{_float(float(indexed))},'
    return (
        f'{{"v":{VERSION},"c":{_float(float(created))},"t":{_float(float(saved))},'
        f'"l":{life},{flag}"d":{registry.dumps_text(registry.encode_data(data))}}}'
    ).encode()


_float = float.__repr__
_ENVELOPE_KEYS = frozenset({"v", "c", "t", "l", "d"})
#: The keys of a browser-session record (see :attr:`Record.browser`).
_BROWSER_KEYS = _ENVELOPE_KEYS | {"b"}
#: Every shape a record may have: the base keys, with either or both optional ones.
_SHAPES = (_ENVELOPE_KEYS, _BROWSER_KEYS, _ENVELOPE_KEYS | {"p"}, _BROWSER_KEYS | {"p"})
_BROWSER = '"b":true,'
_INF = float("inf")
# No lifetime can be stored above what Config and set_expiry accept: a larger one was not
# written by sessionkit, and far above it a save's cookie date or storage TTL overflows.
_MAX_LIFETIME = MAX_LIFETIME.total_seconds()


def _number(value: Any) -> float:
    """``value`` as a finite float; anything else is a malformed envelope.

    Python's ``json`` reads ``NaN`` and ``Infinity``, and no comparison with NaN is ever true:
    a NaN time would never expire. An int too big for a float is refused here too, rather than
    escaping as an ``OverflowError``.
    """
    kind = type(value)
    if kind is float:  # what the encoder writes: the fast path
        # One chained comparison, False for NaN and for both infinities.
        number: float = value
        if -_INF < number < _INF:
            return number
        raise DecodeError("envelope number is not finite")
    if kind is int:  # written by hand or by another tool; a float of it is finite or overflows
        try:
            return float(value)
        except OverflowError:
            raise DecodeError("envelope number out of range") from None
    raise DecodeError("envelope field is not a number")


def decode_record(registry: TypeRegistry, payload: bytes) -> Record:
    """Decode bytes written by :func:`encode_record`; raise :class:`DecodeError` on any defect."""
    env = registry.loads(payload)
    created, saved, lifetime = _checked_times(env)
    browser = "b" in env
    if browser and (env["b"] is not True or lifetime is not None):
        raise DecodeError("malformed browser-session flag")
    indexed = _number(env["p"]) if "p" in env else None
    return Record(env["d"], created, saved, lifetime, browser, indexed)


#: Value types JSON carries as themselves: decoded, each is an equal value of the same type.
_JSON_NATIVE = frozenset((str, int, float, bool, type(None)))


def written_record(
    data: dict[str, Any],
    created: float,
    saved: float,
    lifetime: float | None,
    browser: bool = False,
    indexed: float | None = None,
) -> Record | None:
    """The record :func:`decode_record` reads back from :func:`encode_envelope` of the same
    arguments, told without decoding, for a store that keeps what it has just written (see
    sessionkit._decoded). ``None`` unless every value is of a type JSON carries as itself
    (a ``datetime`` comes back with a fixed-offset ``tzinfo``, a tuple is a tagged list: those
    are left to a real decode), and for times the decode would refuse.

    ``data`` is the record's as it is: the caller copies it. That the two agree is checked
    with Hypothesis in ``tests/core/test_decoded_records.py``.
    """
    if not _JSON_NATIVE.issuperset(map(type, data.values())):
        return None
    if lifetime is None and indexed is None and type(created) is type(saved) is float:
        # The usual save (clock readings, no lifetime of its own, no index): what
        # _checked_times asks of its two times is that they be finite.
        if -_INF < created < _INF and -_INF < saved < _INF:
            return Record(data, created, saved, None, browser, None)
        return None
    try:
        # As encoded (float(...) written with repr), then as _checked_times reads it back.
        created, saved = _number(float(created)), _number(float(saved))
        if lifetime is not None:
            lifetime = _checked_lifetime(float(lifetime))
        if indexed is not None:
            indexed = _number(float(indexed))
    except (DecodeError, OverflowError):
        return None
    if browser and lifetime is not None:
        return None
    return Record(data, created, saved, lifetime, browser, indexed)


def _checked_times(env: Any) -> tuple[float, float, float | None]:
    """The times of a loaded envelope, once its shape is checked; :class:`DecodeError` on any
    defect (the one check of an envelope, for the store and for the tools)."""
    # ``type(...) is int``: True == 1 and 1.0 == 1 in Python, and neither is version 1.
    if type(env) is not dict or type(env.get("v")) is not int or env["v"] != VERSION:
        raise DecodeError("not a sessionkit record of a known version")
    keys = env.keys()
    if keys not in _SHAPES or type(env["d"]) is not dict:
        raise DecodeError("malformed envelope")
    lifetime = env["l"]
    if lifetime is not None:
        lifetime = _checked_lifetime(lifetime)
    return _number(env["c"]), _number(env["t"]), lifetime


def _checked_lifetime(value: Any) -> float:
    """A stored lifetime as a record holds it: positive and finite (:class:`DecodeError`
    otherwise), at most the 400-day bound. Longer ones were accepted by ``set_expiry`` before
    the bound: kept, at the bound. (The decode's rule, and :func:`written_record`'s.)"""
    lifetime = _number(value)
    if not lifetime > 0.0:
        raise DecodeError("envelope lifetime out of range")
    return min(lifetime, _MAX_LIFETIME)


@attrs.frozen
class Times:
    """The envelope's clock fields alone: what a tool needs to judge a record's expiry."""

    created: float
    saved: float
    lifetime: float | None


def envelope_times(payload: bytes) -> Times:
    """The times of a plaintext envelope, checked as :func:`decode_record` checks them, with
    the data left undecoded: a tool such as ``sessionkit rekey`` has no value registry (it
    cannot know the application's registered types), and needs none to carry a record over.
    """
    try:
        check_nesting(payload)
    except ValueError as exc:
        raise DecodeError(str(exc)) from None
    try:
        env = json.loads(payload)
    except (ValueError, RecursionError):
        raise DecodeError("not JSON") from None
    return Times(*_checked_times(env))
