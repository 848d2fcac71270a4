"""The pluggy hook through which storage backends are found.

A plugin distribution declares an entry point in the ``sessionkit`` group pointing at a module
(or object) carrying :data:`hookimpl`-marked functions. Keep that module light: it should only
*describe* backends, and import its driver inside :attr:`Backend.open`, so listing the installed
backends never imports redis or pymongo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import pluggy

from ._storage import Storage

__all__ = ["PROJECT_NAME", "Backend", "HookSpecs", "hookimpl", "hookspec"]

PROJECT_NAME = "sessionkit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


def _schemes(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _check_schemes(_: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value or any(not s or s != s.lower() for s in value):
        raise ValueError(
            f"{attribute.name} must be non-empty lower-case URL schemes, got {value!r}"
        )


def _lower_names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(name.lower() for name in names)


@attrs.frozen
class Backend:
    """One storage backend offered by a plugin.

    ``open(url, options)`` builds the storage. ``options`` holds the URL's query parameters
    merged with the keyword arguments given to :func:`sessionkit.open_storage` (keywords win);
    the opener rejects options it does not know with a :class:`~sessionkit.ConfigError`.

    ``repeatable`` names the query parameters that may legitimately appear more than once
    (MongoDB's ``readPreferenceTags``), matched without regard to case; the opener then reads
    them from the URL itself, since ``options`` holds only the last value. Any other name
    given twice is refused before ``open`` is called: silently keeping one of two
    ``prefix=`` values would put sessions where nobody meant them.
    """

    name: str
    schemes: tuple[str, ...] = attrs.field(converter=_schemes, validator=_check_schemes)
    open: Callable[[str, Mapping[str, Any]], Storage]
    description: str = ""
    repeatable: frozenset[str] = attrs.field(default=frozenset(), converter=_lower_names)


class HookSpecs:
    """The hooks a storage plugin may implement (all named ``sessionkit_*``)."""

    @hookspec
    def sessionkit_backends(self) -> list[Backend]:  # type: ignore[empty-body]
        """Return the storage backends this plugin provides."""
