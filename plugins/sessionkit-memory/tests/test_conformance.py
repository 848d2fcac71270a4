"""The memory storage against the shared conformance suite (fake clock, conditional)."""

from __future__ import annotations

from collections.abc import Callable

from sessionkit import Storage
from sessionkit.testing import StorageConformance
from sessionkit_memory import MemoryStorage


class TestMemoryStorage(StorageConformance):
    clock_injectable = True
    conditional = True
    atomic = True
    creating = True
    no_driver_faults = "an in-process dict: no server, file or library call can fail"
    bad_urls = ("memory://?max_entrie=5", "memory://?max_entries=-1", "memory://?purge_batch=x")

    def storage_url(self, namespace: str) -> str:
        return "memory://"  # each storage opened by URL is a dict of its own

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        # Every MemoryStorage is its own dict: a namespace is a separate instance.
        assert clock is not None
        return MemoryStorage(clock=clock)
