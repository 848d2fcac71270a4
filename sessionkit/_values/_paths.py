"""Naming where, inside a value, the part that cannot be stored sits (``Cart.items[1]``).

Only a refused value pays for this: the encoder itself keeps no path (it runs on every save),
so the search starts over from the value, trying each part alone at its position, with the
annotation it is declared with there, and going down into the parts that fail until none of a
failing part's own parts does. That part is the culprit, and its own error says what is wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from ._faults import Circular, TooDeep
from ._shapes import field_types, item_annotation

__all__ = ["locate"]

Check = Callable[[Any, Any], None]


def locate(check: Check, value: Any, annotation: Any, root: str) -> tuple[str, Exception] | None:
    """``(path, error)`` of the innermost part of ``value`` that ``check`` refuses, ``root``
    naming ``value`` itself; ``None`` when ``check`` accepts ``value`` whole, or when it
    refuses it only for its depth or for containing itself (which no path explains)."""
    try:
        check(value, annotation)
    except (TooDeep, Circular, RecursionError):
        return None
    except Exception as exc:
        return _innermost(check, value, annotation, root, exc, 0)
    return None


def _innermost(
    check: Check, value: Any, annotation: Any, path: str, error: Exception, level: int
) -> tuple[str, Exception]:
    if level < 64:  # a refused value is within the depth limit, or refused for its depth
        for step, part, declared in _parts(value, annotation):
            try:
                check(part, declared)
            except (TooDeep, Circular, RecursionError):
                continue
            except Exception as exc:
                return _innermost(check, part, declared, path + step, exc, level + 1)
    return path, error


def _parts(value: Any, annotation: Any) -> Iterator[tuple[str, Any, Any]]:
    """``(step, part, annotation)`` of each part of ``value``, held at ``annotation``."""
    kind = type(value)
    if isinstance(value, type):
        return
    if attrs.has(kind) or dataclasses.is_dataclass(kind):
        for name, declared in field_types(kind):
            part = getattr(value, name, _MISSING)
            if part is not _MISSING:
                yield f".{name}", part, declared
    elif kind is dict:
        for key, part in value.items():
            yield f"[{key!r}]", part, item_annotation(annotation, dict, 0)
    elif kind is list or kind is tuple:
        for index, part in enumerate(value):
            yield f"[{index}]", part, item_annotation(annotation, kind, index)
    elif kind is set or kind is frozenset:
        for part in value:
            yield "{...}", part, item_annotation(annotation, kind, 0)


_MISSING = object()
