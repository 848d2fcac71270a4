"""A plugin installed as its own distribution is found through the entry point, like ours.

``tests/thirdparty_plugin`` is installed (editable) alongside the repo's distributions; nothing
in the core knows its name.
"""

from __future__ import annotations

import sessionkit
from sessionkit import ConditionalStorage, Store
from sessionkit_example_thirdparty import ExampleStorage


def test_open_storage_finds_the_third_party_scheme() -> None:
    storage = sessionkit.open_storage("example://")
    try:
        assert isinstance(storage, ExampleStorage)
        storage.set("k", b"v", None)
        assert storage.get("k") == b"v"
    finally:
        storage.reset()
        storage.close()


def test_query_options_reach_the_third_party_opener() -> None:
    storage = sessionkit.open_storage("example://?prefix=discovery:")
    assert isinstance(storage, ExampleStorage)
    assert storage.prefix == "discovery:"
    storage.close()


def test_backends_list_names_the_third_party_distribution() -> None:
    found = {b.backend.name: b for b in sessionkit.available_backends()}
    assert found["example"].distribution == "sessionkit-example-thirdparty"
    assert found["example"].version == "0.1.0"
    assert found["example"].backend.schemes == ("example",)


def test_store_saves_and_reloads_through_a_storage_without_replace() -> None:
    """The core's touch-then-set fallback is what serves an outside, non-conditional plugin."""
    store = Store(storage="example://?prefix=store:")
    assert not isinstance(store.storage, ConditionalStorage)
    try:
        session = store.get({"REQUEST_METHOD": "GET"})  # a bare WSGI environ: no cookie
        session.set("user", "ada")
        session.save()
        session.set("user", "grace")
        session.save()  # an existing session: touch, then set
        reloaded = store.get_by_id(session.id)
        assert reloaded is not None
        assert reloaded["user"] == "grace"
    finally:
        store.reset()
        store.close()
