"""``sessionkit check URL``: a round trip on scratch keys, never on real sessions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from sessionkit import Storage, Store
from sessionkit._ops.cli import main
from sessionkit_memory import MemoryStorage
from tests.cli.conftest import KeptMemoryStorage, fill

STEPS = [
    "set",
    "get",
    "touch",
    "replace",
    "replace_if",
    "delete",
    "take",
    "expiry",
    "async",
    "reset",
]


def lines(out: str) -> dict[str, str]:
    """``{step: its line}`` from the check's output."""
    found = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[0] in STEPS:
            found[words[0]] = line
    return found


def test_memory_round_trip_passes_and_reports_latency(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "memory://"]) == 0
    out = capsys.readouterr().out
    steps = lines(out)
    assert list(steps) == STEPS
    for name in STEPS[:-1]:
        assert " ok " in steps[name] and " ms" in steps[name], steps[name]
    assert "skipped" in steps["reset"] and "--reset-scratch" in steps["reset"]
    assert out.rstrip().endswith("all checks passed")


def test_reset_is_skipped_when_the_backend_takes_no_namespace_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "memory://", "--reset-scratch"]) == 0
    reset = lines(capsys.readouterr().out)["reset"]
    assert "skipped" in reset and "prefix, table, collection" in reset


def test_sqlite_check_leaves_real_sessions_alone_and_resets_a_scratch_table(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(storage=sqlite_url)
    ids = fill(store, [10, 20])
    assert main(["check", sqlite_url, "--reset-scratch"]) == 0
    steps = lines(capsys.readouterr().out)
    assert " ok " in steps["reset"] and "table=" in steps["reset"]
    assert all(store.get_by_id(i) is not None for i in ids)
    assert store.storage.count() == 2  # type: ignore[attr-defined]  # no scratch key left


@pytest.mark.redis
def test_redis_check_with_scratch_reset(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{redis_url}?prefix=clitest-check:"
    store = Store(storage=url)
    (sid,) = fill(store, [5])
    try:
        assert main(["check", url, "--reset-scratch"]) == 0
        steps = lines(capsys.readouterr().out)
        assert " ok " in steps["reset"] and "prefix=" in steps["reset"]
        assert store.get_by_id(sid) is not None
    finally:
        store.reset()
        store.close()


class ForgetfulTouch(KeptMemoryStorage):
    """Breaks the contract: ``touch`` of a present key reports it absent."""

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        return False


class NoExpiry(KeptMemoryStorage):
    """Breaks the contract: TTLs are ignored."""

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        super().set(key, value, None)


@pytest.mark.parametrize(
    ("storage", "step", "reason"),
    [
        (ForgetfulTouch(), "touch", "touch of a present key returned False, expected True"),
        (NoExpiry(), "expiry", "1 s TTL returned b'"),
    ],
    ids=["touch", "expiry"],
)
def test_a_broken_storage_fails_the_check_at_the_broken_step(
    storage: Storage,
    step: str,
    reason: str,
    use_storage: Callable[[Storage], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_storage(storage)
    assert main(["check", "broken://"]) == 1
    out = capsys.readouterr().out
    steps = lines(out)
    assert "FAILED" in steps[step] and reason in steps[step]
    assert list(steps)[-1] == step  # the first failure ends the check
    assert out.rstrip().endswith("check FAILED")
    assert isinstance(storage, MemoryStorage) and storage.count() == 0  # scratch keys deleted


def test_storage_errors_fail_with_the_driver_error(
    memory: KeptMemoryStorage,
    use_storage: Callable[[Storage], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    MemoryStorage.close(memory)  # really closed: every call raises StorageError
    use_storage(memory)
    assert main(["check", "memory://"]) == 1
    assert "StorageError: memory storage is closed" in lines(capsys.readouterr().out)["set"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuch://x", "no storage backend for scheme 'nosuch'"),
        ("memory://?colour=blue", "unknown memory storage option 'colour'"),
    ],
)
def test_a_url_nothing_can_open_is_a_usage_error(
    url: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", url]) == 2
    assert message in capsys.readouterr().err


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """``sessionkit check URL | head -1``: no traceback and no error line once head exits."""
    import subprocess
    import sys

    with subprocess.Popen(  # leaving the block closes its pipes
        [sys.executable, "-m", "sessionkit", "check", "memory://"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(b"checking memory://")
        proc.stdout.close()  # head -1 exits; the check goes on writing for a second (expiry)
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=30)
    # Only the notice that memory:// is the command's own store, printed before the check.
    notes = [line for line in stderr.splitlines() if line.startswith("sessionkit: note: memory")]
    assert stderr == "".join(f"{line}\n" for line in notes) and len(notes) == 1, stderr
