"""``sessionkit.storage``, the face for plugin authors, pinned: a name added to or dropped from
its ``__all__`` fails here, and every name it shares with ``sessionkit`` is the same object."""

from __future__ import annotations

import sessionkit
import sessionkit.storage

FACE = [
    "AsyncCall", "AsyncFromSyncMixin", "AsyncPool", "AtomicStorage", "Backend",
    "ConditionalStorage", "ConfigError", "CountableStorage", "CreatingStorage", "DriverOps",
    "ENTER", "EXIT", "PerLoop", "Plan", "PlanCall", "PoolClosed", "PoolTimeout",
    "PurgeableStorage", "ScannableStorage", "Storage", "StorageError", "SyncPool", "SyncStorage",
    "WouldBlock",
    "arun_plan", "blocking", "current_async_call", "driver_options", "hookimpl", "in_range", "matches", "option_names",
    "parse_options", "query_options", "read_with", "run_plan", "ttl_seconds", "within",
]  # fmt: skip


def test_the_face_is_exactly_the_snapshot() -> None:
    assert sorted(sessionkit.storage.__all__) == sorted(FACE)
    for name in FACE:
        assert hasattr(sessionkit.storage, name), name


def test_names_published_by_sessionkit_first_are_the_same_objects() -> None:
    shared = set(FACE) & set(sessionkit.__all__)
    assert shared >= {"Backend", "PerLoop", "Storage", "AsyncFromSyncMixin", "hookimpl"}
    for name in shared:
        assert getattr(sessionkit.storage, name) is getattr(sessionkit, name), name


def test_the_old_mixin_is_a_sync_storage_in_threads() -> None:
    assert issubclass(sessionkit.AsyncFromSyncMixin, sessionkit.storage.SyncStorage)
    assert sessionkit.AsyncFromSyncMixin.async_calls == "thread"
