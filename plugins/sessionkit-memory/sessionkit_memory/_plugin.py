"""Entry point of the memory plugin: describes the backend, imports nothing heavy."""

from __future__ import annotations

from sessionkit.storage import Backend, hookimpl


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="memory",
            schemes=("memory",),
            storage="sessionkit_memory._storage:MemoryStorage",
            options="sessionkit_memory._options:MemoryOptions",
            description="in-process dictionary; sessions vanish with the process",
        )
    ]
