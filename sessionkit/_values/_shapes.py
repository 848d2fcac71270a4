"""Which positions inside a registered class cattrs carries compactly, and the converter doing it.

A field's annotation either *pins* the runtime type of what it holds -- ``int``, ``list[Cart]``,
``dict[str, Decimal]``, ``Cart | None``, ``tuple[int, ...]``, an attrs class, an enum -- or it
does not: ``Any``, ``object``, no annotation, a bare ``list``/``dict``/``tuple``/``set``/
``frozenset``, an abstract collection (``Sequence[int]``), a union of built-ins. A pinned
position travels as cattrs unstructures it, untagged: the annotation tells the loader what to
rebuild, and that keeps typed classes small and fast. Any other position is left to the
session's own tagged codec, as a top-level value is, so a tuple inside a bare ``list`` field
stays a tuple and a registered object inside an ``Any`` field stays that object.

Two guards keep the compact path exact. Unstructuring a pinned container or class checks that
the value is of exactly the declared class (cattrs would quietly make a list of a tuple held in
a ``list[int]`` field, or a base class of a subclass). And structuring a scalar takes the value
as it is when it is of the declared type; otherwise, while ``set()`` checks a value
(:data:`CHECKING`), it refuses it, and while a stored record loads, it converts as the previous
release did (``int("5")``), so that records written before this release, and records of a
field since retyped, still load when they can.

Records written by the previous release load unchanged: a loose position accepts what the tagged
codec decoded when it is of an admitted type and, failing that, hands the value to a converter
configured as the previous release's was (:func:`previous_converter`), which rebuilds what that
release stored there (a bare ``tuple`` field was stored as a JSON list).
"""

from __future__ import annotations

import collections.abc as abc
import contextvars
import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

import attrs
import cattrs
from cattrs.enums import enum_unstructure_factory
from cattrs.fns import identity
from cattrs.gen import (
    iterable_unstructure_factory,
    make_hetero_tuple_unstructure_fn,
    mapping_unstructure_factory,
    override,
)

from ._faults import DecodeError, Misfit

__all__ = [
    "CHECKING",
    "field_types",
    "item_annotation",
    "make_converter",
    "previous_converter",
]

CHECKING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sessionkit_values_checking", default=False
)
"""True while ``set()`` checks that a value loads back: a scalar of the wrong type is refused
then, rather than converted as it is when a stored record loads."""

_ANYTHING: tuple[type, ...] = (object,)
_BARE = frozenset({list, dict, tuple, set, frozenset})
#: Abstract collections, and the concrete types (the ones the tagged codec stores) they admit.
_ABSTRACT: dict[Any, tuple[type, ...]] = {
    abc.Sequence: (list, tuple),
    abc.MutableSequence: (list,),
    abc.Collection: (list, tuple, set, frozenset, dict),
    abc.Iterable: (list, tuple, set, frozenset, dict),
    abc.Set: (set, frozenset),
    abc.MutableSet: (set,),
    abc.Mapping: (dict,),
    abc.MutableMapping: (dict,),
}
_MAPPINGS = (abc.Mapping, abc.MutableMapping)
#: What a scalar annotation admits as it is (PEP 484: an int is a float; bool is an int).
_SCALARS: dict[type, tuple[type, ...]] = {
    int: (int,),
    float: (int, float),
    str: (str,),
    bool: (bool,),
}
_LEAVES = (datetime, date, time, timedelta, Decimal, UUID, bytes)


@attrs.frozen
class Loose:
    """A position the tagged codec carries: the concrete types it admits, and the annotation of
    its items when it is an abstract collection of pinned items (``Sequence[Cart]``)."""

    admits: tuple[type, ...]
    items: Any = None
    mapping: bool = False


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``Annotated[X, ...]`` and of a ``NewType`` over ``X``."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif hasattr(annotation, "__supertype__"):
            annotation = annotation.__supertype__
        else:
            return annotation


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) is Union or isinstance(annotation, types.UnionType)


def _is_record(kind: Any) -> bool:
    return isinstance(kind, type) and (attrs.has(kind) or dataclasses.is_dataclass(kind))


def loose(annotation: Any) -> Loose | None:
    """How the tagged codec carries a position annotated ``annotation``; ``None`` when the
    annotation pins the value's type and cattrs carries it (see the module's docstring)."""
    try:
        return _loose_cached(annotation)
    except TypeError:  # an unhashable annotation (Annotated metadata, say): not cached
        return _loose(annotation)


def _loose(annotation: Any) -> Loose | None:
    t = _unwrap(annotation)
    if t is Any or t is object or t is None or isinstance(t, TypeVar):
        return Loose(_ANYTHING)
    if _is_union(t):
        return _loose_union(t)
    origin, args = get_origin(t), get_args(t)
    if origin is None:
        if t in _BARE:
            return Loose((t,))
        if t in _ABSTRACT:
            return Loose(_ABSTRACT[t])
        return None
    if origin in _BARE and not args:  # typing.List, typing.Dict, ... unsubscripted
        return Loose((origin,))
    if origin in _ABSTRACT:
        items = args[-1] if args else None
        if items is not None and loose(items) is not None:
            items = None  # loose items: the whole collection is the tagged codec's
        return Loose(_ABSTRACT[origin], items, origin in _MAPPINGS)
    return None


_loose_cached = functools.lru_cache(maxsize=1024)(_loose)


def _loose_union(union: Any) -> Loose | None:
    members = get_args(union)
    rest = [m for m in members if m is not type(None)]
    if len(rest) == 1 and loose(rest[0]) is None:
        return None  # X | None, X pinned: cattrs writes X or null
    if all(_is_record(_unwrap(m)) for m in rest):
        return None  # records only: cattrs tells them apart by their fields
    admitted: list[type] = []
    for member in members:
        shape = loose(member)
        if shape is not None and shape.admits is _ANYTHING:
            return Loose(_ANYTHING)
        admitted.extend(shape.admits if shape is not None else _runtime_types(member))
    return Loose(tuple(dict.fromkeys(admitted)))


def _runtime_types(pinned: Any) -> tuple[type, ...]:
    """The classes a value at a pinned position ``pinned`` may be of, for a union's check."""
    t = _unwrap(pinned)
    origin = get_origin(t)
    if origin is Literal:
        return tuple({type(v) for v in get_args(t)})
    if origin is not None:
        return (origin,) if isinstance(origin, type) else _ANYTHING
    if t in _SCALARS:
        return _SCALARS[t]
    return (t,) if isinstance(t, type) else _ANYTHING


def _pinned_class(annotation: Any) -> type | None:
    """The exact class of what a pinned container, record or enum position holds."""
    if get_origin(annotation) is Annotated or hasattr(annotation, "__supertype__"):
        return None  # cattrs unwraps these, and asks again for what is inside
    if _is_union(annotation) or loose(annotation) is not None:
        return None
    origin = get_origin(annotation) or annotation
    if origin in _BARE:
        return origin  # type: ignore[no-any-return]
    if _is_record(origin) or (isinstance(origin, type) and issubclass(origin, enum.Enum)):
        return origin  # type: ignore[no-any-return]
    return None


def _is_record_union(annotation: Any) -> bool:
    """A union of records (and maybe None) that cattrs carries: ``A | B``, ``A | B | None``."""
    if not _is_union(annotation) or loose(annotation) is not None:
        return False
    rest = [m for m in get_args(annotation) if m is not type(None)]
    return len(rest) > 1


def item_annotation(annotation: Any, container: type, index: int) -> Any:
    """The annotation of item ``index`` of a ``container`` held at a position ``annotation``
    (``Any`` when the annotation says nothing about it), for naming a failing position."""
    t = _unwrap(annotation)
    shape = loose(t)
    if shape is not None:
        return Any if shape.items is None else shape.items
    origin, args = get_origin(t), get_args(t)
    if _is_union(t):
        rest = [m for m in args if m is not type(None)]
        return item_annotation(rest[0], container, index) if len(rest) == 1 else Any
    if origin is not container or not args:
        return Any
    if container is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return args[index] if index < len(args) else Any
    return args[-1] if container is dict else args[0]


@functools.lru_cache(maxsize=1024)
def field_types(cls: type) -> tuple[tuple[str, Any], ...]:
    """``(name, annotation)`` of each field of a record class, annotations resolved."""
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception:  # an unresolvable forward reference: cattrs says so at registration
        hints = {}
    fields: Any = attrs.fields(cls) if attrs.has(cls) else dataclasses.fields(cls)
    return tuple((f.name, hints.get(f.name, f.type)) for f in fields)


# -- hooks ----------------------------------------------------------------------------------


def _as_is(value: Any, _: Any) -> Any:
    return value


def _passthrough(kind: type) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise DecodeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return structure


def _scalar(kind: type, admits: tuple[type, ...]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, cl: Any) -> Any:
        if cl is not kind:  # an int or str enum, dispatched here by its base: by value
            return cl(value)
        if isinstance(value, admits):
            return value
        if CHECKING.get():
            raise Misfit(value, kind)
        return kind(value)  # a record of an earlier release, or of a retyped field

    return structure


def _loose_unstructure(annotation: Any, converter: cattrs.Converter) -> Callable[[Any], Any]:
    shape = loose(annotation)
    assert shape is not None
    admits = shape.admits
    if admits is _ANYTHING:
        return identity
    item = None if shape.items is None else converter.get_unstructure_hook(shape.items)
    if item is None or item is identity:

        def unstructure(value: Any) -> Any:
            if isinstance(value, admits):
                return value
            raise Misfit(value, annotation)

        return unstructure

    def unstructure_items(value: Any) -> Any:
        kind = type(value)
        if kind not in admits:
            raise Misfit(value, annotation)
        if kind is dict:
            return {k: item(v) for k, v in value.items()}
        return kind(item(v) for v in value)

    return unstructure_items


def _loose_structure(
    annotation: Any, converter: cattrs.Converter, previous: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    shape = loose(annotation)
    assert shape is not None
    admits = shape.admits
    if admits is _ANYTHING:
        return _as_is
    items = shape.items
    item = None if items is None else converter.get_structure_hook(items)
    if item is None or item is _as_is:

        def structure(value: Any, _: Any) -> Any:
            if isinstance(value, admits):
                return value
            return previous(value, annotation)

        return structure

    def structure_items(value: Any, _: Any) -> Any:
        kind = type(value)
        if kind not in admits:
            return previous(value, annotation)
        if kind is dict:
            return {k: item(v, items) for k, v in value.items()}
        return kind(item(v, items) for v in value)

    return structure_items


def _pinned_unstructure(annotation: Any, converter: cattrs.Converter) -> Callable[[Any], Any]:
    kind = _pinned_class(annotation)
    assert kind is not None
    inner: Any  # each cattrs factory is typed for its own kind of value
    if _is_record(kind):
        inner = converter.gen_unstructure_attrs_fromdict(annotation)
    elif issubclass(kind, enum.Enum):
        inner = enum_unstructure_factory(kind, converter)
    elif kind is dict:
        inner = mapping_unstructure_factory(annotation, converter, unstructure_to=dict)
    elif kind is tuple and get_args(annotation)[-1:] != (Ellipsis,):
        inner = make_hetero_tuple_unstructure_fn(annotation, converter, unstructure_to=tuple)
    else:  # list, set, frozenset, tuple[X, ...]: what cattrs makes of each, as before
        to = kind if kind in (set, frozenset) else list
        inner = iterable_unstructure_factory(annotation, converter, unstructure_to=to)

    def unstructure(value: Any) -> Any:
        if type(value) is kind:
            return inner(value)
        raise Misfit(value, annotation)

    return unstructure


def _record_union_unstructure(annotation: Any, converter: cattrs.Converter) -> Callable[[Any], Any]:
    members = get_args(annotation)
    hooks = {m: converter.get_unstructure_hook(m) for m in members if m is not type(None)}
    optional = type(None) in members

    def unstructure(value: Any) -> Any:
        hook = hooks.get(type(value))
        if hook is not None:
            return hook(value)
        if value is None and optional:
            return None
        raise Misfit(value, annotation)

    return unstructure


def _is_any(kind: Any) -> bool:
    return kind is Any or kind is object


def previous_converter() -> cattrs.Converter:
    """A converter configured as the previous release's, to load what that release stored at a
    position this one reads differently (see the module's docstring)."""
    converter = cattrs.Converter()
    converter.register_unstructure_hook_func(_is_any, identity)
    converter.register_structure_hook_func(_is_any, _as_is)
    for leaf in (*_LEAVES, set, frozenset):
        converter.register_structure_hook(leaf, _passthrough(leaf))
    return converter


def make_converter() -> cattrs.Converter:
    """The converter of one registry: cattrs for pinned positions, guarded, and hooks handing
    every other position to the tagged codec (see the module's docstring)."""
    untyped = override(unstruct_hook=identity, struct_hook=_as_is)
    # An attrs field with no annotation at all: cattrs' type_overrides are keyed by annotation.
    converter = cattrs.Converter(type_overrides={None: untyped})  # type: ignore[dict-item]
    earlier: list[cattrs.Converter] = []

    def previous(value: Any, annotation: Any) -> Any:
        if not earlier:  # built on first need: only records of an earlier release need it
            earlier.append(previous_converter())
        return earlier[0].structure(value, annotation)

    for leaf in _LEAVES:
        converter.register_structure_hook(leaf, _passthrough(leaf))
    for kind, admits in _SCALARS.items():
        converter.register_structure_hook(kind, _scalar(kind, admits))
    is_loose: Callable[[Any], bool] = lambda t: loose(t) is not None  # noqa: E731
    converter.register_unstructure_hook_factory(
        lambda t: _pinned_class(t) is not None, lambda t: _pinned_unstructure(t, converter)
    )
    converter.register_unstructure_hook_factory(
        _is_record_union, lambda t: _record_union_unstructure(t, converter)
    )
    converter.register_unstructure_hook_factory(
        is_loose, lambda t: _loose_unstructure(t, converter)
    )
    converter.register_structure_hook_factory(
        is_loose, lambda t: _loose_structure(t, converter, previous)
    )
    return converter
