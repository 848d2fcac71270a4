"""Loading the storage class, with a clear word when psycopg or libpq is missing.

psycopg is a Python layer over libpq, PostgreSQL's C client library, which it loads when first
imported: the system's (Debian and Ubuntu: the ``libpq5`` package, present wherever PostgreSQL
or its client is), or one bundled in the ``psycopg[binary]`` wheel. This plugin requires plain
``psycopg``, so that the system's libpq (and its security updates) is used where there is one;
where there is none, the import fails, and this says what to install.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["NO_LIBPQ", "load_storage_class"]

NO_LIBPQ = (
    "the postgres storage cannot import psycopg ({error}). psycopg needs libpq, PostgreSQL's "
    "client library: install it from the system's packages (Debian and Ubuntu: "
    'apt install libpq5), or a psycopg that bundles one: pip install "psycopg[binary]"'
)


def load_storage_class() -> Any:
    """Import and return :class:`~sessionkit_postgres._storage.PostgresStorage`."""
    try:
        importlib.import_module("psycopg")
    except ImportError as exc:
        raise ImportError(NO_LIBPQ.format(error=exc)) from exc
    from ._storage import PostgresStorage

    return PostgresStorage
