"""Bytes per live session in the in-process stores: sessionkit's memory storage against
starsessions' and Litestar's in-memory stores, with the same session data, and where
sessionkit's bytes go.

    .venv/bin/python benchmarks/memory_bytes.py [--n 100000] [--compare OLD_STORAGE.py]

Each store is filled with ``n`` sessions holding ``scaling.py``'s data (a user and a two-item
cart), written the way its middleware writes them (its own id, its own encoding, its own
expiry bookkeeping); the figure is the growth of the Python heap (``tracemalloc``) over ``n``.

What the stores keep is not the same: sessionkit's memory storage expires entries server-side
(each entry's expiry, checked on every read, and an order to purge them in) and can cap their
number (``max_entries``, evicting the least recently written); starsessions' ``InMemoryStore``
is a bare dict of bytes -- no expiry, no cap -- so its figure is a floor, not a target.

``--compare`` names another version of ``sessionkit_memory/_storage.py`` (say, ``git show
HEAD~1:plugins/sessionkit-memory/sessionkit_memory/_storage.py > /tmp/old.py``): it is filled
in the same run, and both versions' storage calls are timed, interleaved, at ``n`` entries.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import secrets
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sessionkit import Store

DATA: dict[str, Any] = {"user": "user-{i}", "cart": [["sku-1", 2], ["sku-2", 1]]}


def data(i: int) -> dict[str, Any]:
    return {"user": f"user-{i}", "cart": [("sku-1", 2), ("sku-2", 1)]}


def heap_growth(n: int, fill: Callable[[int], Any]) -> tuple[float, Any]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = fill(n)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n, kept


def sessionkit_fill(n: int, storage: Any = "memory") -> Store:
    store = Store(storage=storage)
    for i in range(n):
        s = store.load(None)
        s.update(data(i))
        s.save()
    return store


def starsessions_fill(n: int) -> Any:
    from starsessions import InMemoryStore
    from starsessions.serializers import JsonSerializer

    store, serializer = InMemoryStore(), JsonSerializer()

    async def go() -> None:
        for i in range(n):
            sid = secrets.token_hex(16)  # starsessions' own id
            await store.write(sid, serializer.serialize(data(i)), lifetime=86400, ttl=86400)

    asyncio.run(go())
    return store


def litestar_fill(n: int) -> Any:
    from litestar.stores.memory import MemoryStore

    store = MemoryStore()

    async def go() -> None:
        for i in range(n):
            sid = secrets.token_hex(16)
            await store.set(sid, json.dumps(data(i)).encode(), expires_in=86400)

    asyncio.run(go())
    return store


def unwrapped(store: Store) -> Any:
    """The memory storage under any wrapper the Store put around it."""
    storage: Any = store.storage
    raw = getattr(storage, "_storage", storage)
    while not hasattr(raw, "_data") and hasattr(raw, "_inner"):
        raw = raw._inner
    return raw


def breakdown(store: Store) -> list[tuple[str, int]]:
    """One entry of sessionkit's memory storage, object by object (``sys.getsizeof``)."""
    raw = unwrapped(store)
    entries = raw._data
    n = max(len(entries), 1)
    key, (value, expires_at) = next(iter(entries.items()))
    dict_slot = (sys.getsizeof(entries) - sys.getsizeof({})) / n
    lanes = list(getattr(raw, "_lanes", {}).values())
    lane_slots = sum(sys.getsizeof(q) - sys.getsizeof(type(q)()) for q in lanes) / n
    order = getattr(raw, "_order", None)
    order_slots = (sys.getsizeof(order) - sys.getsizeof(type(order)())) / n if order else 0
    heap = raw._heap
    heap_items = sum(sys.getsizeof(item) for item in heap) / n
    heap_slots = (sys.getsizeof(heap) - sys.getsizeof([])) / n
    return [
        (f"the key: a str of {len(key)} characters", sys.getsizeof(key)),
        (f"the record: bytes of {len(value)} ({value[:70]!r}...)", sys.getsizeof(value)),
        ("the (record, expires_at) tuple", sys.getsizeof((value, expires_at))),
        ("expires_at, a float (shared with the expiry order)", sys.getsizeof(expires_at)),
        ("the dict's slot (index + entry, amortised)", round(dict_slot)),
        (f"expiry lanes ({len(lanes)}): key + expires_at slots (amortised)", round(lane_slots)),
        ("write order, kept under max_entries only (amortised)", round(order_slots)),
        (f"heap items, (expires_at, key) tuples ({len(heap):,} for {n:,})", round(heap_items)),
        ("the heap list's slots (amortised)", round(heap_slots)),
    ]


def load_storage(path: str) -> Any:
    """The ``MemoryStorage`` class of another version of ``_storage.py``."""
    import sessionkit_memory

    spec = importlib.util.spec_from_file_location("sessionkit_memory._compared", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = sessionkit_memory.__name__  # for its relative imports
    spec.loader.exec_module(module)
    return module.MemoryStorage


HOUR = timedelta(hours=1)


def op_times(cls: Any, n: int, record: bytes) -> dict[str, Callable[[], Callable[[int], None]]]:
    """Storage calls to time, each built on a storage of ``n`` live entries: ``setup()``
    returns ``step(i)``, which makes the call on the ``i``-th key."""
    keys = [secrets.token_urlsafe(32) for _ in range(n)]

    def filled(**options: Any) -> Any:
        storage = cls(**options)
        for key in keys:
            storage.set(key, record, HOUR)
        return storage

    def new_session() -> Callable[[int], None]:
        storage, fresh = filled(), [secrets.token_urlsafe(32) for _ in range(n)]
        return lambda i: storage.set(fresh[i % n], record, HOUR)

    def create() -> Callable[[int], None]:
        storage, fresh = filled(), [secrets.token_urlsafe(32) for _ in range(n)]
        return lambda i: storage.create(fresh[i % n], record, HOUR)

    def get() -> Callable[[int], None]:
        storage = filled()
        return lambda i: storage.get(keys[i % n])

    def replace_if() -> Callable[[int], None]:
        storage = filled()
        return lambda i: storage.replace_if(keys[i % n], record, record, HOUR)

    def touch() -> Callable[[int], None]:
        storage = filled()
        return lambda i: storage.touch(keys[i % n], HOUR)

    def evict() -> Callable[[int], None]:
        storage, fresh = filled(max_entries=n), [secrets.token_urlsafe(32) for _ in range(n)]
        return lambda i: storage.set(fresh[i % n], record, HOUR)

    return {
        "set, a new key": new_session,
        "create, a new key": create,
        "get": get,
        "replace_if": replace_if,
        "touch": touch,
        "set at max_entries (evicts one)": evict,
    }


def speed(classes: dict[str, Any], n: int, calls: int, rounds: int) -> list[str]:
    """µs per call of each storage version: the median of ``rounds`` rounds (the lowest in
    brackets), each call timed on every version in turn, so the machine's drift falls on
    all alike. CPU time of this thread (``time.thread_time``), so time the OS gives other
    processes on a busy machine is left out."""
    record = next(iter(unwrapped(sessionkit_fill(1))._data.values()))[0]  # a real one
    times: dict[tuple[str, str], list[float]] = {}
    ops = list(op_times(next(iter(classes.values())), 1, record))
    for _ in range(rounds):
        built = {name: op_times(cls, n, record) for name, cls in classes.items()}
        for op in ops:
            for name in classes:
                step = built[name][op]()
                gc.collect()
                t0 = time.thread_time()
                for i in range(calls):
                    step(i)
                elapsed = (time.thread_time() - t0) / calls * 1e6
                times.setdefault((op, name), []).append(elapsed)
                del step
    names = list(classes)
    lines = [
        f"| call, at {n:,} entries | " + " | ".join(f"{name} µs" for name in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for op in ops:
        cells = [
            f"{statistics.median(times[(op, name)]):.2f} ({min(times[(op, name)]):.2f})"
            for name in names
        ]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--compare", metavar="PATH", help="another version of _storage.py")
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    args = parser.parse_args()
    from sessionkit_memory import MemoryStorage

    fills: list[tuple[str, Callable[[int], Any]]] = [
        ("sessionkit memory storage", sessionkit_fill),
        ("starsessions InMemoryStore", starsessions_fill),
        ("Litestar MemoryStore", litestar_fill),
    ]
    capped = 10 * args.n
    fills.insert(
        1,
        (
            f"sessionkit memory storage, max_entries={capped:,}",
            lambda n: sessionkit_fill(n, MemoryStorage(max_entries=capped)),
        ),
    )
    classes = {"this version": MemoryStorage}
    if args.compare:
        classes["compared version"] = compared = load_storage(args.compare)
        fills[2:2] = [
            (
                "sessionkit memory storage, compared version",
                lambda n: sessionkit_fill(n, compared()),
            ),
            (
                f"sessionkit memory storage, compared version, max_entries={capped:,}",
                lambda n: sessionkit_fill(n, compared(max_entries=capped)),
            ),
        ]
    for _, fill in fills:
        fill(10)  # imports and first-call caches, outside the measured heap
    rows = []
    for name, fill in fills:
        per, kept = heap_growth(args.n, fill)
        rows.append((name, per))
        if name == "sessionkit memory storage":
            parts = breakdown(kept)
        del kept
    print(f"{args.n:,} live sessions, bytes per session (Python heap):\n")
    print("| store | bytes per session |\n|---|---:|")
    for name, per in rows:
        print(f"| {name} | {per:.0f} |")
    print("\nOne sessionkit entry:\n\n| part | bytes |\n|---|---:|")
    for what, size in parts:
        print(f"| {what} | {size} |")
    print(f"| **sum** | **{sum(s for _, s in parts)}** |")
    if args.compare:
        print(
            f"\nThe memory storage's own calls: median µs per call of {args.rounds} "
            "interleaved rounds (the fastest round in brackets):\n"
        )
        print("\n".join(speed(classes, args.n, args.calls, args.rounds)))


if __name__ == "__main__":
    main()
