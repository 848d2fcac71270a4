"""``sessionkit stats`` and ``sessionkit rekey`` beside users' session indexes
(``Config.principal_key``): an index is neither a session nor an unreadable record."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from sessionkit import Store
from sessionkit._ops.cli import main
from sessionkit._ops.stats import collect_stats, format_stats


def _logins(store: Store, users: list[str]) -> None:
    for user in users:
        session = store.load(None)
        session["user"] = user
        session.save()


def test_indexes_are_counted_apart_from_sessions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    store = Store(storage=url, principal_key="user")
    _logins(store, ["ada", "ada", "bob"])
    stats = collect_stats(store.storage)
    assert (stats.live, stats.indexes, stats.unreadable) == (3, 2, 0)
    lines = format_stats(url, stats, time.time())
    assert any(line.startswith("user indexes") and "2" in line for line in lines), lines
    assert not any(line.startswith("not sessions") for line in lines), lines
    store.close()


def test_rekey_leaves_indexes_and_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("cryptography")
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    store = Store(storage=url, principal_key="user", encryption_keys=[old])
    _logins(store, ["ada", "bob"])
    store.close()
    monkeypatch.setenv("SESSIONKIT_ENCRYPTION_KEYS", f"{new},{old}")
    assert main(["rekey", url]) == 0
    out = capsys.readouterr().out
    assert "2 re-encrypted" in out and "2 user index(es)" in out, out
    store = Store(storage=url, principal_key="user", encryption_keys=[new])
    assert len(store.sessions_for("ada")) == 1
    store.close()
