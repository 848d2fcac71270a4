"""``sessionkit stats`` on a storage of encrypted records (``encryption_keys``): they are
sessions, counted as encrypted, never as "not sessionkit envelopes"."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from sessionkit import Store
from sessionkit._ops.stats import collect_stats, format_stats

pytest.importorskip("cryptography")


def test_encrypted_records_are_counted_as_sessions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    store = Store(storage=url, encryption_keys=[secrets.token_urlsafe(32)])
    for user in ("ada", "bob"):
        session = store.load(None)
        session["user"] = user
        session.save()
    stats = collect_stats(store.storage)
    assert (stats.live, stats.encrypted, stats.unreadable) == (2, 2, 0)
    lines = format_stats(url, stats, time.time())
    assert any(line.startswith("encrypted") and "2 records" in line for line in lines), lines
    assert not any(line.startswith("not sessions") for line in lines), lines
    store.close()
