"""Entry point of the Mongo plugin: describes the backend; pymongo is imported only on open."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionkit import Backend, Storage, hookimpl

#: Query parameters pymongo reads once per occurrence (a tag set each, in order of preference);
#: any other given twice is refused, by ``open_storage`` and by ``MongoStorage(url)`` alike.
#: Lower case: pymongo's option names ignore case. Here, not in ``_options``: listing the
#: backends must not import pymongo.
REPEATABLE = frozenset({"readpreferencetags"})


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
            repeatable=REPEATABLE,
        )
    ]
