"""``Backend(storage=...)`` names the storage class lazily, so a plugin needs no ``_open``
trampoline and listing backends imports no driver; the older ``open=`` form still works."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sessionkit.storage import Backend, Storage
from sessionkit_memory import MemoryStorage


@pytest.fixture
def lazy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module holding a storage class, not imported yet."""
    name = "sk_lazy_storage_probe"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from sessionkit_memory import MemoryStorage

            class Probe(MemoryStorage):
                @classmethod
                def from_url(cls, url, options):
                    storage = cls()
                    storage.opened_with = (url, dict(options))
                    return storage
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_a_class_named_as_text_is_imported_only_when_opened(lazy_module: str) -> None:
    backend = Backend(name="probe", schemes="probe", storage=f"{lazy_module}:Probe")
    assert lazy_module not in sys.modules
    storage: Any = backend.open("probe://?x=1", {"x": "1"})
    assert lazy_module in sys.modules
    assert type(storage).__name__ == "Probe"
    assert storage.opened_with == ("probe://?x=1", {"x": "1"})


def test_a_zero_argument_loader_names_the_class() -> None:
    calls: list[int] = []

    def load() -> type[MemoryStorage]:
        calls.append(1)
        return MemoryStorage

    backend = Backend(name="m", schemes=("m",), storage=load)
    assert calls == []
    storage = backend.open("m://", {"max_entries": "3"})
    assert isinstance(storage, MemoryStorage) and storage.max_entries == 3
    assert calls == [1]


def test_the_older_open_form_still_works() -> None:
    def _open(url: str, options: Mapping[str, Any]) -> Storage:
        return MemoryStorage()

    backend = Backend("old", ("old",), _open)  # positional, as plugins wrote it
    assert isinstance(backend.open("old://", {}), MemoryStorage)
    assert backend.storage is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"open": lambda url, options: MemoryStorage(), "storage": "sessionkit_memory:X"},
    ],
    ids=["neither", "both"],
)
def test_exactly_one_of_storage_and_open(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="exactly one of storage= or open="):
        Backend(name="x", schemes=("x",), **kwargs)


@pytest.mark.parametrize("spec", ["no_colon", "a:b:c", ":Cls", "module:"])
def test_a_malformed_class_name_is_refused_at_once(spec: str) -> None:
    with pytest.raises(ValueError, match=r"package\.module:Class"):
        Backend(name="x", schemes=("x",), storage=spec)


def test_first_party_plugins_list_without_importing_their_storage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("sessionkit_sqlite._storage", "sessionkit_redis._storage"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    from sessionkit_redis import _plugin as redis_plugin
    from sessionkit_sqlite import _plugin as sqlite_plugin

    backends = [*sqlite_plugin.sessionkit_backends(), *redis_plugin.sessionkit_backends()]
    assert [b.storage for b in backends] == [
        "sessionkit_sqlite._storage:SQLiteStorage",
        "sessionkit_redis._storage:RedisStorage",
    ]
    assert "sessionkit_sqlite._storage" not in sys.modules
    assert "sessionkit_redis._storage" not in sys.modules
