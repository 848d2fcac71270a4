"""The built-in tags: how each type JSON lacks is written, and read back.

A decoder gets the tag's ``"v"`` already parsed (bottom-up), checks its JSON shape, and raises
:class:`DecodeError` (or lets the type's own constructor raise, which ``loads`` turns into one)
for anything a well-behaved encoder would not have written.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from ._faults import DecodeError
from ._text import tagged

__all__ = ["DECODERS", "LEAF_ENCODERS", "int_limit"]

#: Encoders of the leaf types (a container's encoder needs the registry, see ``_registry``).
LEAF_ENCODERS: dict[type, Callable[[Any, int], Any]] = {
    bytes: lambda v, _: tagged("bytes", base64.b64encode(v).decode("ascii")),
    datetime: lambda v, _: tagged("datetime", v.isoformat()),
    date: lambda v, _: tagged("date", v.isoformat()),
    time: lambda v, _: tagged("time", v.isoformat()),
    timedelta: lambda v, _: tagged("timedelta", [v.days, v.seconds, v.microseconds]),
    Decimal: lambda v, _: tagged("decimal", str(v)),
    UUID: lambda v, _: tagged("uuid", v.hex),
}


def _str(value: Any) -> str:
    if type(value) is not str:
        raise DecodeError("expected a string")
    return value


def _list_of(kind: Callable[[list[Any]], Any]) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise DecodeError("expected a list")
        return kind(value)

    return decode


def _decode_escaped_dict(value: Any) -> dict[str, Any]:
    if type(value) is not list or not all(
        type(p) is list and len(p) == 2 and type(p[0]) is str for p in value
    ):
        raise DecodeError("malformed escaped dict")
    return dict(value)


def _decode_surrogate_str(value: Any) -> str:
    return base64.b64decode(_str(value), validate=True).decode("utf-8", "surrogatepass")


def _decode_timedelta(value: Any) -> timedelta:
    if type(value) is not list or len(value) != 3 or not all(type(x) is int for x in value):
        raise DecodeError("malformed timedelta")
    return timedelta(days=value[0], seconds=value[1], microseconds=value[2])


DECODERS: dict[str, Callable[[Any], Any]] = {
    "tuple": _list_of(tuple),
    "set": _list_of(set),
    "frozenset": _list_of(frozenset),
    "dict": _decode_escaped_dict,
    "bytes": lambda v: base64.b64decode(_str(v), validate=True),
    "datetime": lambda v: datetime.fromisoformat(_str(v)),
    "date": lambda v: date.fromisoformat(_str(v)),
    "time": lambda v: time.fromisoformat(_str(v)),
    "timedelta": _decode_timedelta,
    "decimal": lambda v: Decimal(_str(v)),
    "uuid": lambda v: UUID(hex=_str(v)),
    "str": _decode_surrogate_str,
}


def int_limit() -> tuple[int, int, int]:
    """``(digits, bits, bound)``: ``digits`` is the limit on int-to-text conversion; an int of
    at most ``bits`` bits has no more digits than that, and a bigger one fits only if its
    magnitude is below ``bound``.

    Read when a registry is made (a store reads the limit set when it was built). No limit
    (0, or Python 3.10, which has none) gives a bit length no int reaches.
    """
    get_limit = getattr(sys, "get_int_max_str_digits", None)
    limit = get_limit() if get_limit is not None else 0
    if not limit:
        return 0, sys.maxsize, 0
    bound = 10**limit  # the smallest int of limit + 1 digits
    return limit, bound.bit_length() - 1, bound
