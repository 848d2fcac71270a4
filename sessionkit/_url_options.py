"""A storage's URL options as a declared schema, read by the core once for every plugin.

A plugin declares its options as an attrs class: one field per option, with its type, its
default and its validators (:func:`in_range`, :func:`matches`, or any attrs validator raising
:class:`~sessionkit.ConfigError`). ``Backend(options="pkg._options:Cls")`` names that class, and
the core then reads the URL's query and the keyword arguments of ``open_storage`` against it
before the storage class is even imported: text (``?purge_batch=64``) is converted by the
field's declared type, values given in code are checked as they are, and a name the class
lacks is refused with the nearest known name (``prefx`` → "did you mean 'prefix'?"), so a typo
can never put every key in the default namespace. The storage's ``from_url`` then gets every
option already typed, checked and defaulted; it never parses a query again.

One reading for every plugin keeps the rules the same everywhere: ``1_000`` and ``+5`` are not
integers in a URL (``int()`` would take them), ``nan`` is not a number of seconds, ``yes`` and
``on`` are booleans, an empty value or ``none`` means ``None`` where a field allows it.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._errors import ConfigError

__all__ = ["in_range", "matches", "option_names", "parse_options"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_INTEGER = re.compile(r"-?[0-9]+")


def option_names(cls: type) -> list[str]:
    """The options ``cls`` declares: its attrs fields taken by ``__init__``, but for those
    marked ``metadata={"option": False}`` (read from the URL's body, such as a path)."""
    return sorted(_name(field) for field in _option_fields(cls))


def parse_options(cls: type, options: Mapping[str, Any], *, backend: str) -> dict[str, Any]:
    """``options`` (URL text or values given in code) checked against the fields of ``cls``:
    each converted from text by its field's type and held to its field's validator; returns
    them typed, ready for ``cls(..., **typed)``.

    Each option is checked on its own, so the class may have fields that are not options (a
    path). Checks across fields (a minimum above a maximum) are the class's own, when it is
    built. Raises :class:`~sessionkit.ConfigError` naming the option: unknown (with the
    nearest known name), unconvertible text, or a value its validator refuses.
    """
    fields = {_name(field): field for field in _option_fields(cls)}
    hints = _hints(cls)
    typed: dict[str, Any] = {}
    for name, given in options.items():
        field = fields.get(name)
        if field is None:
            raise _unknown(name, backend, sorted(fields))
        value = _from_text(name, given, hints.get(field.name)) if isinstance(given, str) else given
        if field.validator is not None:
            try:
                field.validator(None, field, value)
            except ConfigError:
                raise
            except (TypeError, ValueError) as exc:  # a validator that is not ours
                raise ConfigError(name, str(exc)) from None
        typed[name] = value
    return typed


def _name(field: attrs.Attribute[Any]) -> str:
    """The keyword that sets ``field`` (attrs strips a leading underscore)."""
    return field.alias or field.name


def _option_fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [f for f in attrs.fields(cls) if f.init and f.metadata.get("option", True)]


def in_range(
    low: float, high: float | None = None, *, integer: bool = False, unit: str = ""
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: a number from ``low`` to ``high`` (``None``: no upper bound), an
    ``int`` when ``integer``; never a bool, NaN or infinity. ``unit`` names it in the message
    ("seconds")."""
    kind = "a whole number" if integer else "a number"
    if unit:
        kind += f" of {unit}"
    span = f"of at least {_show(low)}" if high is None else f"from {_show(low)} to {_show(high)}"
    allowed = (int,) if integer else (int, float)

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, allowed)
            or not math.isfinite(value)
            or value < low
            or (high is not None and value > high)
        ):
            raise ConfigError(_name(attribute), f"must be {kind} {span}, got {value!r}")

    return check


def matches(pattern: str, shape: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: a ``str`` matching ``pattern`` whole; ``shape`` describes it in the
    message ("a table name: letters, digits and _")."""
    compiled = re.compile(pattern)

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise ConfigError(_name(attribute), f"must be {shape}, got {value!r}")

    return check


def _show(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be resolved: text passes through unparsed
        return {}


def _unknown(name: str, backend: str, known: list[str]) -> ConfigError:
    # Field "storage": the setting that is wrong is the storage URL (or open_storage's call).
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        "storage",
        f"unknown {backend} storage option {name!r}{hint} (its options: {', '.join(known)})",
    )


def _from_text(name: str, text: str, kind: Any) -> Any:
    """``text`` from a URL's query, as the field's declared type ``kind`` wants it."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if text.strip().lower() in ("", "none"):
            return None
        rest = [arg for arg in args if arg is not type(None)]
        kind = rest[0] if len(rest) == 1 else str
    stripped = text.strip()
    if kind is bool:
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ConfigError(name, f"expected true or false, got {text!r}")
    if kind is int:
        if not _INTEGER.fullmatch(stripped):  # int() would also take "1_000" and "+5"
            raise ConfigError(name, f"expected a whole number, got {text!r}")
        return int(stripped)
    if kind is float:
        try:
            number = float(stripped)
        except ValueError:
            raise ConfigError(name, f"expected a number, got {text!r}") from None
        if not math.isfinite(number):
            raise ConfigError(name, f"expected a finite number, got {text!r}")
        return number
    return text
