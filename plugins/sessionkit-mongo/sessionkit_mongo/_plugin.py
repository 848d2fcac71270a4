"""Entry point of the Mongo plugin: describes the backend; pymongo is imported only on open."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionkit import Backend, Storage, hookimpl


def _open(url: str, options: Mapping[str, Any]) -> Storage:
    from ._storage import MongoStorage

    return MongoStorage.from_url(url, options)


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="mongo",
            schemes=("mongodb", "mongodb+srv"),
            open=_open,
            description="MongoDB collection; TTL index plus expiry checked on every read",
            # A tag set per occurrence, in order of preference; pymongo reads them from the URL.
            repeatable={"readPreferenceTags"},
        )
    ]
