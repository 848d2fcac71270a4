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
``on`` are booleans, an empty value or ``none`` means ``None`` where a field allows it. A field
whose value needs a reading of its own declares it (:func:`read_with`).

A storage whose driver takes options of its own (libpq's ``sslmode``, pymongo's ``retryWrites``)
declares one more field, :func:`driver_options`: it names the driver's options (and those the
storage refuses, with the reason) and how one is checked, and collects them, by name, for the
storage to hand to the driver as they are. Any other name is still refused, with the nearest
of both sets.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs

from ._errors import ConfigError

__all__ = [
    "DriverOptions",
    "driver_options",
    "folds_case",
    "in_range",
    "matches",
    "option_names",
    "parse_options",
    "query_options",
    "read_with",
    "refuse_repeats",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_INTEGER = re.compile(r"-?[0-9]+")


def option_names(cls: type) -> list[str]:
    """The options ``cls`` declares: its attrs fields taken by ``__init__``, but for those
    marked ``metadata={"option": False}`` (read from the URL's body, such as a path)."""
    return sorted(_name(field) for field in _option_fields(cls))


def parse_options(cls: type, options: Mapping[str, Any], *, backend: str) -> dict[str, Any]:
    """``options`` (URL text or values given in code) checked against the fields of ``cls``:
    each converted from text by its field's type (or read by its :func:`read_with`) and held
    to its field's validator; returns them typed, ready for ``cls(..., **typed)``.

    Each option is checked on its own, so the class may have fields that are not options (a
    path). Checks across fields (a minimum above a maximum) are the class's own, when it is
    built. Raises :class:`~sessionkit.ConfigError` naming the option: unknown (with the
    nearest known name), unconvertible text, or a value its validator refuses.

    A class with a :func:`driver_options` field takes the driver's options too: each is
    checked by that field's ``convert`` and collected under the field's name (always
    present, empty when none was given).
    """
    fields = {_name(field): field for field in _option_fields(cls)}
    hints = _hints(cls)
    driver = _driver_field(cls)
    typed: dict[str, Any] = {}
    passed: dict[str, Any] = {}
    for name, given in options.items():
        field = fields.get(name)
        if field is not None:
            typed[name] = _read(name, given, field, hints.get(field.name))
        elif driver is not None:
            if driver[1].fold_case:  # a keyword (after the query) wins over another case
                for other in [n for n in passed if n.lower() == name.lower()]:
                    del passed[other]
            passed[name] = _pass(name, given, driver[1], sorted(fields), backend)
        else:
            raise _unknown(name, backend, sorted(fields))
    if driver is not None:
        typed[driver[0]] = passed
    return typed


def _read(name: str, given: Any, field: attrs.Attribute[Any], kind: Any) -> Any:
    """One option's value: read (text by the field's type, or by its reader) and checked."""
    try:
        reader = field.metadata.get(_READ)
        if reader is not None:
            value = reader(name, given)
        else:
            value = _from_text(name, given, kind) if isinstance(given, str) else given
        if field.validator is not None:
            field.validator(None, field, value)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # a reader or validator that is not ours
        raise ConfigError(name, str(exc)) from None
    return value


def read_with(reader: Callable[[str, Any], Any]) -> dict[str, Any]:
    """A field's metadata making ``reader(name, value)`` read its option, in place of its
    type: for an option whose text (or value given in code) needs a reading of its own, such
    as ``off`` for ``None``, or a storage's own messages. The reader returns the typed value or
    raises :class:`~sessionkit.ConfigError` naming ``name``:
    ``attrs.field(default=2.0, metadata=read_with(seconds))``."""
    return {_READ: reader}


_READ = "sessionkit.read_with"


@attrs.frozen
class DriverOptions:
    """How an options class takes its driver's options (see :func:`driver_options`)."""

    #: The names the driver takes, or a function returning them (called when options are
    #: read, so the module declaring them need not import the driver); ``None``: ``convert``
    #: judges every name the class lacks, raising for one the driver does not know.
    names: Iterable[str] | Callable[[], Iterable[str]] | None
    #: ``convert(name, value)``: the value checked (and typed) for the driver.
    convert: Callable[[str, Any], Any]
    #: Driver options the storage refuses, each with the reason.
    refused: Mapping[str, str]
    #: What the driver's options are, for the message refusing an unknown name.
    what: str
    #: The driver's names ignore case (pymongo's do): a name given twice in the query in two
    #: cases is refused, and a keyword wins over the query's name in another case.
    fold_case: bool = False

    def known(self) -> frozenset[str] | None:
        names = self.names() if callable(self.names) else self.names
        return None if names is None else frozenset(names)


def driver_options(
    names: Iterable[str] | Callable[[], Iterable[str]] | None = None,
    convert: Callable[[str, Any], Any] | None = None,
    *,
    refused: Mapping[str, str] | None = None,
    what: str = "",
    fold_case: bool = False,
) -> Any:
    """A field of an options class collecting the driver's own options, by name, to be passed
    to the driver: ``libpq: Mapping[str, str] = driver_options(libpq_names, check_text,
    refused={"replication": "..."}, what="a libpq connection parameter")``.

    A name the class's other fields lack is one of the driver's when ``names`` holds it:
    ``convert(name, value)`` checks it (``ConfigError`` naming it) and returns what the driver
    gets (the value as given, without ``convert``). A name in ``refused`` is refused with its
    reason; any other is refused as unknown, naming it (it may be the driver's, misspelt) and
    the nearest name of either set, or else the storage's own options. ``fold_case``: the
    driver's names ignore case (see :attr:`DriverOptions.fold_case`).
    """
    spec = DriverOptions(
        names=frozenset(names) if names is not None and not callable(names) else names,
        convert=convert if convert is not None else _as_given,
        refused=dict(refused or {}),
        what=what,
        fold_case=fold_case,
    )
    return attrs.field(factory=dict, repr=False, metadata={"option": False, _DRIVER: spec})


_DRIVER = "sessionkit.driver_options"


def _as_given(_: str, value: Any) -> Any:
    return value


def folds_case(cls: type | None) -> bool:
    """Whether the options class ``cls`` takes driver options whose names ignore case."""
    driver = None if cls is None else _driver_field(cls)
    return driver is not None and driver[1].fold_case


def _driver_field(cls: type) -> tuple[str, DriverOptions] | None:
    for field in attrs.fields(cls):
        spec = field.metadata.get(_DRIVER)
        if isinstance(spec, DriverOptions):
            return _name(field), spec
    return None


def _pass(name: str, given: Any, spec: DriverOptions, own: list[str], backend: str) -> Any:
    """A driver option's value, checked by ``spec``; refused when the driver lacks it too."""
    if name in spec.refused:
        raise ConfigError(name, spec.refused[name])
    known = spec.known()
    if known is not None and name not in known:
        close = difflib.get_close_matches(name, sorted({*own, *known}), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(own)}"
        neither = f" (neither the storage's own nor {spec.what})" if spec.what else ""
        raise ConfigError(name, f"unknown option for the {backend} storage{neither}{hint}")
    try:
        return spec.convert(name, given)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, str(exc)) from None


def query_options(
    query: str, repeatable: Iterable[str] = (), *, fold_case: bool = False
) -> dict[str, str]:
    """A URL's query as options, read as the core reads it for ``open_storage``: blank values
    kept, a name given twice refused (in any case, with ``fold_case``), but the
    ``repeatable`` names (lower case). For a storage opened with a URL directly
    (``PostgresStorage(url)``), where the core is not in the path."""
    pairs = parse_qsl(query, keep_blank_values=True)
    refuse_repeats(pairs, frozenset(repeatable), fold_case=fold_case)
    return dict(pairs)


def refuse_repeats(
    pairs: Iterable[tuple[str, str]], repeatable: frozenset[str], *, fold_case: bool = False
) -> None:
    """Refuse a query parameter given twice, unless the backend reads repeats itself;
    ``fold_case``: in any case (``retryWrites`` and ``retrywrites``)."""
    seen: dict[str, str] = {}  # each name (folded) as first given
    for name, _ in pairs:
        key = name.lower() if fold_case else name
        if key in seen and name.lower() not in repeatable:
            raise ConfigError(seen[key], "appears more than once in the storage URL; give it once")
        seen.setdefault(key, name)


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


@functools.cache
def _hints(cls: type) -> Mapping[str, Any]:
    """``cls``'s resolved annotations, read once per class: resolving them (``eval`` of each
    string annotation) was half of what opening a storage by URL cost."""
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
