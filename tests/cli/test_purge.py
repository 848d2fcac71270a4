"""``sessionkit purge URL [--expired-only] [--yes]``: asks first, shows progress, clear codes."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from sessionkit import Storage, Store
from sessionkit._ops.cli import main
from sessionkit_mongo import MongoStorage
from sessionkit_sqlite import SQLiteStorage
from tests.cli.conftest import KeptMemoryStorage, OpenPair, PlainStorage, fill


@pytest.fixture
def answer(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Feed the confirmation prompt (stdin) with the given text."""

    def feed(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    return feed


@pytest.fixture
def filled(memory: KeptMemoryStorage, use_storage: Callable[[Storage], None]) -> KeptMemoryStorage:
    fill(Store(storage=memory), [10, 20, 30])
    use_storage(memory)
    return memory


@pytest.mark.parametrize(
    ("reply", "status", "left"),
    [("n\n", 3, 3), ("\n", 3, 3), ("", 3, 3), ("nope\n", 3, 3), ("y\n", 0, 0), ("YES\n", 0, 0)],
    ids=["n", "enter", "eof", "other", "y", "YES"],
)
def test_only_yes_at_the_prompt_deletes_and_anything_else_aborts_with_status_3(
    reply: str,
    status: int,
    left: int,
    filled: KeptMemoryStorage,
    answer: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    answer(reply)
    assert main(["purge", "memory://"]) == status
    captured = capsys.readouterr()
    assert (
        "Delete all 3 sessions in memory://? Their users will be logged out. [y/N]" in captured.err
    )
    assert ("aborted; nothing was deleted" in captured.err) == (status == 3)
    assert ("deleted 3 session(s) from memory://" in captured.out) == (status == 0)
    assert filled.count() == left


def test_yes_flag_skips_the_prompt(
    filled: KeptMemoryStorage, answer: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    answer("")  # nothing to read: a prompt would abort
    assert main(["purge", "memory://", "--yes"]) == 0
    assert "[y/N]" not in capsys.readouterr().err
    assert filled.count() == 0


def test_long_purges_report_progress_on_stderr(
    memory: KeptMemoryStorage,
    use_storage: Callable[[Storage], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for i in range(25):
        memory.set(f"k{i}", b"v", None)
    use_storage(memory)
    monkeypatch.setattr("sessionkit._ops.purge.PROGRESS_EVERY", 10)
    assert main(["purge", "memory://", "-y"]) == 0
    captured = capsys.readouterr()
    note, *progress = captured.err.splitlines()  # the note: memory:// is this process's own
    assert note.startswith("sessionkit: note: memory://")
    assert progress == ["purge: 10/25 deleted", "purge: 20/25 deleted"]
    assert "deleted 25 session(s)" in captured.out


def test_a_storage_that_cannot_scan_is_reset(
    use_storage: Callable[[Storage], None], capsys: pytest.CaptureFixture[str]
) -> None:
    storage = PlainStorage()
    fill(Store(storage=storage), [1, 2])
    use_storage(storage)
    assert main(["purge", "plain://", "--yes"]) == 0
    assert "deleted every session from plain://" in capsys.readouterr().out
    assert storage.inner.count() == 0


def test_expired_only_keeps_live_sessions(
    sqlite_url: str, answer: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    past = SQLiteStorage(path, clock=lambda: time.time() - 3600)
    for i in range(4):
        past.set(f"old{i}", b"expired an hour ago", timedelta(minutes=1))
    past.close()
    store = Store(storage=sqlite_url)
    (live,) = fill(store, [10])
    answer("y\n")
    assert main(["purge", sqlite_url, "--expired-only"]) == 0
    captured = capsys.readouterr()
    assert "Delete the expired sessions in" in captured.err
    assert "deleted 4 expired session(s)" in captured.out
    assert store.get_by_id(live) is not None


def test_expired_only_on_memory(
    use_storage: Callable[[Storage], None], capsys: pytest.CaptureFixture[str]
) -> None:
    now = [100.0]
    storage = KeptMemoryStorage(clock=lambda: now[0])
    for i in range(5):
        storage.set(f"short{i}", b"v", timedelta(seconds=10))
    storage.set("long", b"v", timedelta(hours=1))
    storage.set("forever", b"v", None)
    now[0] += 60
    use_storage(storage)
    assert main(["purge", "memory://", "--expired-only", "--yes"]) == 0
    assert "deleted 5 expired session(s)" in capsys.readouterr().out
    assert len(storage) == 2 and storage.count() == 2


def test_expired_only_on_a_backend_without_it_fails_before_asking(
    use_storage: Callable[[Storage], None],
    answer: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_storage(PlainStorage())
    answer("y\n")
    assert main(["purge", "plain://", "--expired-only"]) == 1
    err = capsys.readouterr().err
    assert "not supported by this backend" in err and "[y/N]" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["purge"])
    assert info.value.code == 2
    assert main(["purge", "nosuch://", "--yes"]) == 2


def test_a_server_backend_purges_its_namespace_only_key_by_key(
    served_pair: tuple[str, Store, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    url, mine, theirs = served_pair
    fill(mine, [1, 2])
    (kept,) = fill(theirs, [3])
    assert main(["purge", url, "--yes"]) == 0
    assert "deleted 2 session(s)" in capsys.readouterr().out  # counted, then scanned
    assert main(["stats", url]) == 0
    assert "live sessions  0" in capsys.readouterr().out
    assert theirs.get_by_id(kept) is not None


@pytest.mark.redis
def test_redis_expired_only_has_nothing_to_do(
    redis_url: str, neighbours: OpenPair, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server expires keys itself: the purge succeeds, deletes nothing, signs no one out."""
    url, store, _ = neighbours(redis_url, "prefix={}:")
    (live,) = fill(store, [10])
    assert main(["purge", url, "--expired-only", "--yes"]) == 0
    assert "deleted 0 expired session(s)" in capsys.readouterr().out
    assert store.get_by_id(live) is not None


@pytest.mark.mongo
def test_mongo_expired_only_deletes_before_the_ttl_monitor(
    mongo_url: str, use_storage: Callable[[Storage], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """Records expired by the storage's clock, which the server's TTL monitor (on real time,
    a day behind) has not reaped and will not during the test."""
    collection = f"expired{uuid.uuid4().hex[:8]}"
    ahead = time.time() + 86_400
    writer = MongoStorage(mongo_url, collection=collection, clock=lambda: ahead)
    for i in range(4):
        writer.set(f"old{i}", b"expired", timedelta(minutes=1))
    writer.set("live", b"live", timedelta(hours=1))
    writer.close()
    later = MongoStorage(mongo_url, collection=collection, clock=lambda: ahead + 120)
    use_storage(later)
    assert main(["purge", "mongodb://db/app", "--expired-only", "--yes"]) == 0
    assert "deleted 4 expired session(s)" in capsys.readouterr().out
    reader = MongoStorage(mongo_url, collection=collection, clock=lambda: ahead)
    assert [key for key, _ in reader.scan()] == ["live"]
    reader.close()


def test_subprocess_reads_the_answer_from_stdin(sqlite_url: str) -> None:
    fill(Store(storage=sqlite_url), [10, 20])
    command = [sys.executable, "-m", "sessionkit", "purge", sqlite_url]
    refused = subprocess.run(command, input="n\n", capture_output=True, text=True, timeout=60)
    assert refused.returncode == 3, refused.stderr
    done = subprocess.run(command, input="y\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Delete all 2 sessions" in done.stderr
    assert "deleted 2 session(s)" in done.stdout
