"""PostgreSQL storage for sessionkit (``postgresql://``, ``postgres://``), on psycopg 3.

:class:`PostgresStorage` is imported on first use: loading the plugin's entry point (which
imports this package) to list the installed backends must not import psycopg, nor load libpq.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._options import PostgresOptions
    from ._storage import PostgresStorage

__all__ = ["PostgresOptions", "PostgresStorage"]


def __getattr__(name: str) -> Any:
    if name == "PostgresStorage":
        from ._driver import load_storage_class

        return load_storage_class()
    if name == "PostgresOptions":
        from ._driver import load_storage_class

        load_storage_class()  # the same clear error without libpq
        from ._options import PostgresOptions

        return PostgresOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
