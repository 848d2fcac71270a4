"""Entry point of the Redis plugin: describes the backend; redis is imported only on open.

``storage=`` names the storage class as text: it is imported when a URL first asks for it.
"""

from __future__ import annotations

from sessionkit.storage import Backend, hookimpl

#: One server (``redis``, ``rediss`` for TLS, ``unix``), Valkey's names for the same
#: (``valkey``, ``valkeys``), then a Redis Cluster (``+cluster``) and the primary that
#: Sentinels name (``+sentinel``) under each of the four network schemes.
SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "valkey",
    "valkeys",
    *(
        f"{base}+{mode}"
        for mode in ("cluster", "sentinel")
        for base in ("redis", "rediss", "valkey", "valkeys")
    ),
)


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="redis",
            schemes=SCHEMES,
            storage="sessionkit_redis._storage:RedisStorage",
            options="sessionkit_redis._options:RedisURLOptions",
            description="Redis or Valkey: one server, a Cluster or Sentinel; keys under a prefix",
        )
    ]
