"""MongoDB session storage for sessionkit (``mongodb://``, ``mongodb+srv://``).

The package imports pymongo only when :class:`MongoStorage` is first used, so that listing the
installed backends (which imports this package's entry point) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._storage import MongoStorage

__all__ = ["MongoStorage"]


def __getattr__(name: str) -> Any:
    if name == "MongoStorage":
        from ._storage import MongoStorage

        return MongoStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
