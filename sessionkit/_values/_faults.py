"""What the codec raises: :class:`DecodeError` when loading, ``TypeError`` subclasses when storing.

The storing errors are ``TypeError`` because that is what ``session.set()`` promises for a value
it cannot store; the subclasses let the encoder tell its own refusals (whose messages are meant
for the user) from an error of a class's own code, and a depth refusal (which needs no path)
from the rest.
"""

from __future__ import annotations

import typing
from typing import Any

__all__ = ["Circular", "DecodeError", "Misfit", "Refused", "TooDeep", "show", "unsupported"]


class DecodeError(ValueError):
    """A stored payload cannot be decoded (corrupt, truncated, or naming an unknown type)."""


class Refused(TypeError):
    """A value the codec will not store; the message says why, the caller adds where."""


class TooDeep(Refused):
    pass


class Circular(Refused):
    pass


class Misfit(Refused):
    """A value at a position whose annotation does not admit it (attrs does not check)."""

    def __init__(self, value: Any, declared: Any) -> None:
        super().__init__(
            f"sessionkit cannot store a {type(value).__qualname__} where {show(declared)} is "
            "declared: it would not load back the same"
        )


def unsupported(value: Any) -> Refused:
    return Refused(
        f"sessionkit cannot store a value of type {type(value).__qualname__}: "
        "use built-in types, or call store.register_type() for an attrs class, "
        "dataclass or enum"
    )


def show(annotation: Any) -> str:
    """An annotation as its source spells it (``list[int]``, ``int | None``, ``Cart``)."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")
