"""Helpers shared by the value tests of ``tests/core`` (``test_values*.py``)."""

from __future__ import annotations

from typing import Any

from sessionkit import Store


def round_trip(store: Store, value: Any) -> Any:
    """``value`` set in a new session of ``store``, saved, and loaded back from storage."""
    session = store.load(None)
    session["v"] = value
    session.save()
    loaded = store.get_by_id(session.id)
    assert loaded is not None, "the session was lost at load"
    return loaded["v"]
