"""Entry point of the Mongo plugin: describes the backend; pymongo is imported only on open.

``storage=`` names the storage class as text: it is imported when a URL first asks for it.
"""

from __future__ import annotations

from sessionkit.storage import Backend, hookimpl

#: Query parameters pymongo reads once per occurrence (a tag set each, in order of preference);
#: any other given twice is refused, by ``open_storage`` and by ``MongoStorage(url)`` alike.
#: Lower case: pymongo's option names ignore case. Here, not in ``_options``: listing the
#: backends must not import pymongo.
REPEATABLE = frozenset({"readpreferencetags"})


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="mongo",
            schemes=("mongodb", "mongodb+srv"),
            storage="sessionkit_mongo._storage:MongoStorage",
            options="sessionkit_mongo._options:MongoURLOptions",
            description="MongoDB collection; TTL index plus expiry checked on every read",
            # A tag set per occurrence, in order of preference; pymongo reads them from the URL.
            repeatable=REPEATABLE,
        )
    ]
