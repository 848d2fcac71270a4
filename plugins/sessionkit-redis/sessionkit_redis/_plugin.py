"""Entry point of the Redis plugin: describes the backend; redis is imported only on open."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionkit import Backend, Storage, hookimpl


def _open(url: str, options: Mapping[str, Any]) -> Storage:
    from ._storage import RedisStorage

    return RedisStorage.from_url(url, options)


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="redis",
            schemes=("redis", "rediss", "unix"),
            open=_open,
            description="Redis or Valkey server; keys under a prefix, TTL kept by the server",
        )
    ]
