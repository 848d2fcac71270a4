"""A store builds its cattrs converter only when a class is registered (or a refused value is
placed), once, even when threads register at the same time."""

from __future__ import annotations

import datetime
import decimal
import json
import subprocess
import sys
import threading
import time
from typing import Any

import attrs
import pytest

import sessionkit._values._shapes as shapes_module
from sessionkit import Store


def _counting(monkeypatch: pytest.MonkeyPatch, slow: float = 0.0) -> list[object]:
    """Record each converter the registries build from now on (each taking ``slow`` seconds
    more, to widen a race)."""
    built: list[object] = []
    make = shapes_module.make_converter

    def counted() -> Any:
        converter = make()
        time.sleep(slow)
        built.append(converter)
        return converter

    monkeypatch.setattr(shapes_module, "make_converter", counted)
    return built


def test_a_store_of_builtin_values_never_builds_a_converter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = _counting(monkeypatch)
    store = Store()
    session = store.load(None)
    value = {
        "n": 1,
        "when": datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc),
        "price": decimal.Decimal("1.50"),
        "tags": ("a", "b"),
        "seen": {1, 2},
    }
    session.set("cart", value)
    session.save()
    again = store.load(session.id)
    assert again.get("cart") == value
    assert built == []


@attrs.frozen
class Item:
    sku: str
    count: int


def test_registering_builds_it_once_and_values_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _counting(monkeypatch)
    store = Store()
    store.register_type(Item)
    store.register_type(Item)
    session = store.load(None)
    session.set("item", Item("a", 2))
    session.save()
    assert store.load(session.id).get("item") == Item("a", 2)
    assert len(built) == 1


def test_threads_registering_at_once_share_one_converter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every class registered by racing threads is admitted and loads back: none of them went
    to a converter that another thread then replaced."""
    built = _counting(monkeypatch, slow=0.05)
    classes = [attrs.make_class(f"Racer{i}", {"n": attrs.field(type=int)}) for i in range(16)]
    for cls in classes:
        cls.__module__ = __name__
    store = Store()
    start = threading.Barrier(len(classes))

    def register(cls: type) -> None:
        start.wait()
        store.register_type(cls)

    threads = [threading.Thread(target=register, args=(cls,)) for cls in classes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    session = store.load(None)
    for i, cls in enumerate(classes):
        session.set(f"v{i}", cls(n=i))
    session.save()
    loaded = store.load(session.id)
    assert [loaded.get(f"v{i}") for i in range(len(classes))] == [
        cls(n=i) for i, cls in enumerate(classes)
    ]


def test_a_process_of_builtin_values_never_imports_cattrs() -> None:
    """cattrs (a sixth of importing sessionkit) loads with the first registered class, so a
    CLI run or a web worker whose sessions hold built-in values never pays for it."""
    script = """
import json, sys
import attrs
import sessionkit.asgi, sessionkit.wsgi
from sessionkit import Store
store = Store()
session = store.load(None)
session.set("v", {"n": [1, (2, 3)], "s": {"x"}})
session.save()
assert store.load(session.id).get("v") == {"n": [1, (2, 3)], "s": {"x"}}
before = "cattrs" in sys.modules
@attrs.frozen
class Item:
    n: int
store.register_type(Item)
print(json.dumps([before, "cattrs" in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [False, True]
