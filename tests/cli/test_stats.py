"""``sessionkit stats URL``: what the backend can tell, and "not supported" for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from sessionkit import Storage, Store, open_storage
from sessionkit._ops.cli import main
from sessionkit._ops.stats import collect_stats
from tests.cli.conftest import KeptMemoryStorage, PlainStorage, fill


def report(out: str) -> dict[str, str]:
    return {line[:14].strip(): line[15:] for line in out.splitlines()}


def test_memory_storage_reports_count_oldest_and_largest(
    memory: KeptMemoryStorage,
    use_storage: Callable[[Storage], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = [time.time() - 7200]
    store = Store(storage=memory, clock=lambda: now[0])
    fill(store, [10])  # created two hours ago
    now[0] = time.time()
    fill(store, [5000, 20])
    memory.set("expired", b"{}", timedelta(seconds=1))
    memory._data["expired"] = (b"{}", 0.0)  # expired long ago, not purged yet
    use_storage(memory)
    assert main(["stats", "memory://"]) == 0
    lines = report(capsys.readouterr().out)
    assert lines["live sessions"] == "3"
    assert lines["oldest"].endswith("(2 h 0 min ago)")
    size = int(lines["largest"].split("(")[1].split()[0])
    assert 5000 < size < 5200 and lines["largest"].startswith("5.0 KiB")


def test_json_output(
    memory: KeptMemoryStorage,
    use_storage: Callable[[Storage], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill(Store(storage=memory), [1, 2])
    memory.set("not-a-session", b"\xff garbage", None)
    use_storage(memory)
    assert main(["stats", "--json", "memory://"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["storage"] == "memory://"
    assert data["live"] == 3 and data["unreadable"] == 1 and data["scanned"] is True
    assert isinstance(data["oldest"], float) and data["largest"] > 0


def test_sqlite_counts_and_scans(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    fill(Store(storage=sqlite_url), [100, 300])
    assert main(["stats", sqlite_url]) == 0
    lines = report(capsys.readouterr().out)
    assert lines["live sessions"] == "2"
    assert "ago)" in lines["oldest"]
    assert lines["largest"].endswith("bytes")


def test_empty_scannable_storage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "memory://"]) == 0
    lines = report(capsys.readouterr().out)
    assert (lines["live sessions"], lines["oldest"], lines["largest"]) == ("0", "-", "-")


def test_a_backend_without_the_abilities_says_so(
    use_storage: Callable[[Storage], None], capsys: pytest.CaptureFixture[str]
) -> None:
    storage = PlainStorage()
    assert collect_stats(storage).live is None
    use_storage(storage)
    assert main(["stats", "redis://:hunter2@cache:6379/0"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "redis://:***@cache:6379/0" in out
    lines = report(out)
    for label in ("live sessions", "oldest", "largest"):
        assert lines[label] == "not supported by this backend"


def test_a_server_backend_counts_and_scans_its_namespace_only(
    served_pair: tuple[str, Store, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    url, mine, theirs = served_pair
    fill(mine, [100, 3000])
    fill(theirs, [5])
    assert main(["stats", url]) == 0
    lines = report(capsys.readouterr().out)
    assert lines["live sessions"] == "2"
    assert "ago)" in lines["oldest"] and lines["largest"].startswith("3.0 KiB")


def test_a_record_nested_deeper_than_any_sessionkit_writes_is_counted_unreadable(
    sqlite_url: str,
) -> None:
    """A record nested 100,000 deep (corrupt, or planted): the command counts it as unreadable
    instead of stopping on a ``RecursionError`` (run as an operator runs it, in a process of
    its own, over a SQLite file)."""
    fill(Store(storage=sqlite_url), [50])
    storage = open_storage(sqlite_url)
    deep = b'{"v":1,"c":0,"t":0,"l":null,"d":{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    storage.set("planted", deep, timedelta(hours=1))
    storage.close()
    done = subprocess.run(
        [sys.executable, "-m", "sessionkit", "stats", "--json", sqlite_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["live"], data["unreadable"]) == (2, 1)
