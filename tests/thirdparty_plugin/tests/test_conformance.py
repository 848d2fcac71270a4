"""The example plugin runs sessionkit's conformance suite exactly as any outside plugin would."""

from __future__ import annotations

from collections.abc import Callable

from sessionkit import Storage
from sessionkit.testing import StorageConformance
from sessionkit_example_thirdparty import ExampleStorage


class TestExampleStorage(StorageConformance):
    clock_injectable = True
    conditional = False  # no replace(): the core uses touch-then-set for it
    no_driver_faults = "a dict in this process stands in for the server"
    bad_urls = ("example://?prefx=a", "example://somehost")

    def storage_url(self, namespace: str) -> str:
        return f"example://?prefix={namespace}:"

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is not None
        return ExampleStorage(prefix=f"{namespace}:", clock=clock)
