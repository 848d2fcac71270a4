"""Entry point of the memory plugin: describes the backend, imports nothing heavy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionkit import Backend, Storage, hookimpl


def _open(url: str, options: Mapping[str, Any]) -> Storage:
    from ._storage import MemoryStorage

    return MemoryStorage.from_url(url, options)


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="memory",
            schemes=("memory",),
            open=_open,
            description="in-process dictionary; sessions vanish with the process",
        )
    ]
