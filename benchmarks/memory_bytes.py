"""Bytes per live session in the in-process stores: sessionkit's memory storage against
starsessions' and Litestar's in-memory stores, with the same session data, and where
sessionkit's bytes go.

    .venv/bin/python benchmarks/memory_bytes.py [--n 100000]

Each store is filled with ``n`` sessions holding ``scaling.py``'s data (a user and a two-item
cart), written the way its middleware writes them (its own id, its own encoding, its own
expiry bookkeeping); the figure is the growth of the Python heap (``tracemalloc``) over ``n``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import sys
import tracemalloc
from collections.abc import Callable
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


def sessionkit_fill(n: int) -> Store:
    store = Store(storage="memory")
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


def breakdown(store: Store) -> list[tuple[str, int]]:
    """One entry of sessionkit's memory storage, object by object (``sys.getsizeof``)."""
    storage: Any = store.storage
    raw = getattr(storage, "_storage", storage)  # under any wrapper the Store put around it
    while not hasattr(raw, "_data") and hasattr(raw, "_inner"):
        raw = raw._inner
    entries = raw._data
    key, (value, expires_at) = next(iter(entries.items()))
    heap_item = raw._heap[0]
    dict_slot = (sys.getsizeof(entries) - sys.getsizeof({})) / max(len(entries), 1)
    list_slot = (sys.getsizeof(raw._heap) - sys.getsizeof([])) / max(len(raw._heap), 1)
    return [
        (f"the key: a str of {len(key)} characters", sys.getsizeof(key)),
        (f"the record: bytes of {len(value)} ({value[:70]!r}...)", sys.getsizeof(value)),
        ("the (record, expires_at) tuple", sys.getsizeof((value, expires_at))),
        ("expires_at, a float (shared with the heap item)", sys.getsizeof(expires_at)),
        ("the dict's slot (index + entry, amortised)", round(dict_slot)),
        ("the heap item: an (expires_at, key) tuple", sys.getsizeof(heap_item)),
        ("the heap list's slot (amortised)", round(list_slot)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    rows = []
    for name, fill in (
        ("sessionkit memory storage", sessionkit_fill),
        ("starsessions InMemoryStore", starsessions_fill),
        ("Litestar MemoryStore", litestar_fill),
    ):
        per, kept = heap_growth(args.n, fill)
        rows.append((name, per))
        if name.startswith("sessionkit"):
            parts = breakdown(kept)
    print(f"{args.n:,} live sessions, bytes per session (Python heap):\n")
    print("| store | bytes per session |\n|---|---:|")
    for name, per in rows:
        print(f"| {name} | {per:.0f} |")
    print("\nOne sessionkit entry:\n\n| part | bytes |\n|---|---:|")
    for what, size in parts:
        print(f"| {what} | {size} |")
    print(f"| **sum** | **{sum(s for _, s in parts)}** |")


if __name__ == "__main__":
    main()
