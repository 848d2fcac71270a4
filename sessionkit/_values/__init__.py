"""The value codec: session values to JSON and back, type-exact, with no pickle.

Built-ins that JSON lacks (tuple, set, bytes, datetime, ...) travel as small tagged objects
``{"$t": tag, "v": ...}``; a user dict that itself holds a ``"$t"`` key is escaped the same
way, so no stored text can pose as a tag. Registered attrs classes, dataclasses and enums are
unstructured by the registry's own cattrs converter and tagged with their registered name;
decoding looks that name up in the registry and nowhere else, so stored data can never make
the process import or call anything it was not told about.

Inside a registered class, a field whose annotation pins its value's type travels as cattrs
writes it, compactly; any other (``Any``, a bare ``list``, a union of built-ins, ...) travels
through the same tagged codec as a top-level value, so it comes back exactly too.

Everything ``set()`` accepts can be saved and loaded back: a class is registered only once the
converter can structure it again; a value nested deeper than :data:`MAX_DEPTH` levels (or one
that contains itself) is refused, and stored text nested deeper than :data:`MAX_NESTING` is
refused before it is parsed; a value a field's annotation does not admit is refused, named
by its path (``Cart.items[1]``); and a string holding lone surrogates, which UTF-8 cannot
carry, travels tagged rather than failing at save time.

The modules, by job: :mod:`._text` (JSON text), :mod:`._tags` (the built-in tags),
:mod:`._shapes` (which positions cattrs carries, and the converter), :mod:`._registry` (the
registry and the codec), :mod:`._paths` (naming a refused part), :mod:`._faults` (errors).
"""

from __future__ import annotations

from ._faults import DecodeError
from ._registry import MAX_DEPTH, TypeRegistry
from ._text import MAX_NESTING, TAG, check_nesting

__all__ = ["MAX_DEPTH", "MAX_NESTING", "TAG", "DecodeError", "TypeRegistry", "check_nesting"]
