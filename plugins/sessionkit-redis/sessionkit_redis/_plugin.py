"""Entry point of the Redis plugin: describes the backend; redis is imported only on open.

``storage=`` names the storage class as text: it is imported when a URL first asks for it.
"""

from __future__ import annotations

from sessionkit.storage import Backend, hookimpl


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="redis",
            schemes=("redis", "rediss", "unix"),
            storage="sessionkit_redis._storage:RedisStorage",
            description="Redis or Valkey server; keys under a prefix, TTL kept by the server",
        )
    ]
