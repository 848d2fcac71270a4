"""Sessions saved straight through a store, for tests that need some records to work on."""

from __future__ import annotations

from sessionkit import Store


def saved_sessions(store: Store, n: int) -> list[str]:
    """Save ``n`` new sessions in ``store`` (the i-th holds ``{"n": i}``); return their ids."""
    ids = []
    for i in range(n):
        session = store.load(None)
        session["n"] = i
        session.save()
        ids.append(session.id)
    return ids
