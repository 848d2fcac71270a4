"""The storage conformance suite: the one set of tests every storage plugin runs unchanged.

A storage plugin proves it keeps the contract of :class:`sessionkit.Storage` by subclassing
:class:`StorageConformance` in one of its test modules::

    from sessionkit.testing import StorageConformance

    class TestMyStorage(StorageConformance):
        clock_injectable = True          # make_storage honours `clock` for every TTL decision
        bad_urls = ["mine://?prefx=a"]   # URLs the plugin must refuse with ConfigError

        def make_storage(self, namespace, clock):
            return MyStorage(prefix=f"{namespace}:", clock=clock)

        def make_broken_storage(self, namespace):   # or: no_driver_faults = "why"
            return MyStorage(url=f"mine://127.0.0.1:{closed_port()}", prefix=f"{namespace}:")

        def storage_url(self, namespace):
            return f"mine://?prefix={namespace}:"

Most tests run twice, through the sync methods (``[sync]``) and through their async twins
(``[async]``). The async runs own a private event loop, in which the storage is created, used
and closed, so they neither depend on the consumer's pytest-asyncio mode nor hand a loop-bound
client (``redis.asyncio``, ``AsyncMongoClient``) to another loop.

The suite is split by job: ``_harness`` (test data, the handle and per-test harness that clean
up), ``_base`` (what a plugin declares, the fixtures), ``_contract`` (one promise of the
protocol a test), ``_promises`` (faults, races, event loops, URLs, TTL edges), ``_machine``
(the stateful model). Their ``assert`` statements are rewritten by pytest, registered here
before any of them is imported, so a failing check shows the values it compared. Names are
loaded on first use: ``from sessionkit.testing import FakeClock`` stays cheap, and a process
the suite spawns imports no more than it needs. The core package never imports this one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pytest

pytest.register_assert_rewrite(
    "sessionkit.testing._base",
    "sessionkit.testing._contract",
    "sessionkit.testing._harness",
    "sessionkit.testing._machine",
    "sessionkit.testing._principals",
    "sessionkit.testing._promises",
    "sessionkit.testing._suite",
)

if TYPE_CHECKING:
    from ._clock import FakeClock
    from ._harness import BINARY_VALUES as BINARY_VALUES
    from ._harness import BYSTANDER_KEYS as BYSTANDER_KEYS
    from ._harness import ODD_KEYS as ODD_KEYS
    from ._harness import Harness, StorageHandle
    from ._machine import _StorageMachine as _StorageMachine
    from ._ports import closed_port
    from ._suite import StorageConformance

__all__ = ["FakeClock", "Harness", "StorageConformance", "StorageHandle", "closed_port"]

#: Where each public (and test-imported) name lives.
_HOMES = {
    "FakeClock": "._clock",
    "Harness": "._harness",
    "StorageHandle": "._harness",
    "ODD_KEYS": "._harness",
    "BYSTANDER_KEYS": "._harness",
    "BINARY_VALUES": "._harness",
    "StorageConformance": "._suite",
    "_StorageMachine": "._machine",
    "closed_port": "._ports",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
