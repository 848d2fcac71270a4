"""Redis / Valkey session storage for sessionkit: ``redis://``, ``rediss://``, ``valkey://``,
``valkeys://``, ``unix://``, and the ``+cluster`` and ``+sentinel`` forms of the first four.

The package imports redis only when :class:`RedisStorage` is first used, so that listing the
installed backends (which imports this package's entry point) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._storage import RedisStorage

__all__ = ["RedisStorage"]


def __getattr__(name: str) -> Any:
    if name == "RedisStorage":
        from ._storage import RedisStorage

        return RedisStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
