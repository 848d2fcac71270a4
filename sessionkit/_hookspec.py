"""The pluggy hook through which storage backends are found.

A plugin distribution declares an entry point in the ``sessionkit`` group pointing at a module
(or object) carrying :data:`hookimpl`-marked functions. Keep that module light: it should only
*describe* backends, naming the storage class as text (``storage="pkg._storage:Cls"``), so
listing the installed backends never imports redis or pymongo.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs
import pluggy

from ._storage import Storage

__all__ = ["PROJECT_NAME", "Backend", "HookSpecs", "OpensFromURL", "hookimpl", "hookspec"]

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


class OpensFromURL(Protocol):
    """A storage class as :class:`Backend` names it: it builds itself from a URL."""

    def from_url(self, url: str, options: Mapping[str, Any], /) -> Storage: ...


#: A storage class named lazily: ``"package.module:Class"``, or a function returning it.
StorageClass = str | Callable[[], OpensFromURL]


def load_named(spec: str | Callable[[], Any]) -> Any:
    """Import the object ``spec`` names (``"module:Class"``) or call the loader it is."""
    if callable(spec):
        return spec()
    module, _, name = spec.partition(":")
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def load_storage_class(spec: StorageClass) -> OpensFromURL:
    """The storage class ``spec`` names."""
    storage_class: OpensFromURL = load_named(spec)
    return storage_class


def _check_storage(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, str) and (value.count(":") != 1 or not all(value.split(":"))):
        raise ValueError(f"{attribute.name} must be 'package.module:Class', got {value!r}")


def _lazy_opener(spec: StorageClass) -> Callable[[str, Mapping[str, Any]], Storage]:
    """An ``open`` that imports the class named by ``spec`` only when a URL asks for it."""

    def open_lazily(url: str, options: Mapping[str, Any]) -> Storage:
        return load_storage_class(spec).from_url(url, options)

    open_lazily.__qualname__ = f"open_lazily[{spec}]"
    return open_lazily


@attrs.frozen
class Backend:
    """One storage backend offered by a plugin.

    ``storage`` names the class that builds it, lazily: ``"package.module:Class"`` (imported
    on first use, so the module describing the backend stays light), or a zero-argument
    function returning the class. The class's ``from_url(url, options)`` builds the storage.
    ``options`` holds the URL's query parameters merged with the keyword arguments given to
    :func:`sessionkit.open_storage` (keywords win); it rejects options it does not know with
    a :class:`~sessionkit.ConfigError`. ``open(url, options)``, a function that builds the
    storage itself, is the older form and still accepted in place of ``storage``; given
    ``storage``, ``open`` is made from it.

    ``options`` names, as lazily, the attrs class declaring the storage's URL options (see
    :func:`sessionkit.storage.parse_options`): the core then reads the query and keyword
    options against it before the storage class is imported, refusing an unknown one with the
    nearest known name, and ``from_url`` gets them typed and checked. Without it, ``from_url``
    gets the options as given (query values as text) and must check them itself.

    ``repeatable`` names the query parameters that may legitimately appear more than once
    (MongoDB's ``readPreferenceTags``), matched without regard to case; the opener then reads
    them from the URL itself, since ``options`` holds only the last value. Any other name
    given twice is refused before ``open`` is called: silently keeping one of two
    ``prefix=`` values would put sessions where nobody meant them.
    """

    name: str
    schemes: tuple[str, ...] = attrs.field(converter=_schemes, validator=_check_schemes)
    # Typed as always set: __attrs_post_init__ fills it in from ``storage``.
    open: Callable[[str, Mapping[str, Any]], Storage] = attrs.field(default=None)
    description: str = ""
    repeatable: frozenset[str] = attrs.field(default=frozenset(), converter=_lower_names)
    storage: StorageClass | None = attrs.field(default=None, kw_only=True, validator=_check_storage)
    options: str | Callable[[], type] | None = attrs.field(
        default=None, kw_only=True, validator=_check_storage
    )

    def __attrs_post_init__(self) -> None:
        if (self.open is None) == (self.storage is None):
            raise TypeError(f"Backend {self.name!r} needs exactly one of storage= or open=")
        if self.storage is not None:
            object.__setattr__(self, "open", _lazy_opener(self.storage))


class HookSpecs:
    """The hooks a storage plugin may implement (all named ``sessionkit_*``)."""

    @hookspec
    def sessionkit_backends(self) -> list[Backend]:  # type: ignore[empty-body]
        """Return the storage backends this plugin provides."""
