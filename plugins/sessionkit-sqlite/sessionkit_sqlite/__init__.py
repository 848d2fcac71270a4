"""SQLite storage for sessionkit (``sqlite:///path.db``, ``sqlite://:memory:``), stdlib sqlite3 only.

:class:`SQLiteStorage` is imported on first use: loading the plugin's entry point (which imports
this package) to list the installed backends must not import ``sqlite3``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._options import SQLiteOptions

if TYPE_CHECKING:
    from ._storage import SQLiteStorage

__all__ = ["SQLiteOptions", "SQLiteStorage"]


def __getattr__(name: str) -> Any:
    if name == "SQLiteStorage":
        from ._storage import SQLiteStorage

        return SQLiteStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
