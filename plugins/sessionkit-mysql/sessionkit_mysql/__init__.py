"""MySQL / MariaDB session storage for sessionkit (``mysql://``, ``mariadb://``).

:class:`MySQLStorage` is imported on first use: loading the plugin's entry point (which imports
this package) to list the installed backends must not import PyMySQL or aiomysql.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._options import MySQLOptions

if TYPE_CHECKING:
    from ._storage import MySQLStorage

__all__ = ["MySQLOptions", "MySQLStorage"]


def __getattr__(name: str) -> Any:
    if name == "MySQLStorage":
        from ._storage import MySQLStorage

        return MySQLStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
