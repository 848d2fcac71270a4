"""Everything a storage plugin is written against, in one import.

A plugin describes its backend with :class:`Backend` in a :data:`hookimpl` function, naming its
storage class lazily (``storage="sessionkit_etcd._storage:EtcdStorage"``). The class keeps
the :class:`Storage` contract, and may offer more: :class:`CreatingStorage`,
:class:`ConditionalStorage` and :class:`AtomicStorage` close races the core would otherwise
narrow with reads; :class:`CountableStorage`, :class:`ScannableStorage` and
:class:`PurgeableStorage` serve the operator's command line. A storage written with a
synchronous driver subclasses :class:`SyncStorage` and gets its async twins derived; one with
an asyncio driver makes one client per event loop with :class:`PerLoop`. Every TTL passes
through :func:`ttl_seconds`. The storage's URL options are declared as an attrs class
(``Backend(options=...)``, validators :func:`in_range` and :func:`matches`), which the core
reads once with :func:`parse_options`; a driver's own options pass through a field declared
with :func:`driver_options`, a field with checks of its own reads its text with
:func:`read_with`, and a storage built from a URL directly reads the query with
:func:`query_options`. A driver without a pool fit to serve threads, forked workers and
short-lived event loops gets bounded ones: :class:`SyncPool`, and :class:`AsyncPool` (one per
loop, with :class:`PerLoop`), told how to check and close its connections by
:class:`DriverOps`; their :class:`PoolTimeout` and :class:`PoolClosed` are storage errors
(:class:`StorageError`), so one that escapes is still answered as a storage failure. Driver
work of several calls that decides between them (a script, then a transaction where scripts
are refused) is written once as a :data:`Plan`, a generator of driver calls that
:func:`run_plan` makes and :func:`arun_plan` awaits (with
:func:`blocking` and :func:`within` for the calls every driver's plans need). The conformance
suite stays in :mod:`sessionkit.testing`.

The same names are importable from :mod:`sessionkit`, where they were first published (all but
the ones added with this module: :class:`SyncStorage`, :class:`WouldBlock`,
:func:`current_async_call`, :class:`AsyncCall`, the option helpers after
:func:`parse_options`, the plans, and the pools).
"""

from __future__ import annotations

from ._abilities import CountableStorage, PurgeableStorage, ScannableStorage
from ._errors import ConfigError, StorageError
from ._hookspec import Backend, hookimpl
from ._loops import PerLoop
from ._plans import ENTER, EXIT, Plan, PlanCall, arun_plan, blocking, run_plan, within
from ._pools import AsyncPool, DriverOps, PoolClosed, PoolTimeout, SyncPool
from ._storage import (
    AsyncFromSyncMixin,
    AtomicStorage,
    ConditionalStorage,
    CreatingStorage,
    Storage,
    ttl_seconds,
)
from ._syncstorage import AsyncCall, SyncStorage, WouldBlock, current_async_call
from ._url_options import (
    driver_options,
    in_range,
    matches,
    option_names,
    parse_options,
    query_options,
    read_with,
)

__all__ = [
    "ENTER",
    "EXIT",
    "AsyncCall",
    "AsyncFromSyncMixin",
    "AsyncPool",
    "AtomicStorage",
    "Backend",
    "ConditionalStorage",
    "ConfigError",
    "CountableStorage",
    "CreatingStorage",
    "DriverOps",
    "PerLoop",
    "Plan",
    "PlanCall",
    "PoolClosed",
    "PoolTimeout",
    "PurgeableStorage",
    "ScannableStorage",
    "Storage",
    "StorageError",
    "SyncPool",
    "SyncStorage",
    "WouldBlock",
    "arun_plan",
    "blocking",
    "current_async_call",
    "driver_options",
    "hookimpl",
    "in_range",
    "matches",
    "option_names",
    "parse_options",
    "query_options",
    "read_with",
    "run_plan",
    "ttl_seconds",
    "within",
]
