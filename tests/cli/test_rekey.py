"""``sessionkit rekey URL``: re-encrypts every session under the first key, through the real
command line (the installed ``sessionkit`` script, in a process of its own) on SQLite and
Redis, and in-process for what needs a storage built by the test (no ``scan()``, a storage
without ``replace_if``).

Keys come from ``$SESSIONKIT_ENCRYPTION_KEYS`` or ``--keys-file``, never from the command line,
and are never printed; what the command did is read back from the storage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sessionkit import Storage, Store
from sessionkit._ops.cli import main
from sessionkit._ops.rekey import parse_duration
from tests._sessions import saved_sessions
from tests.cli.conftest import KeptMemoryStorage, PlainStorage, with_query
from tests.security._crypto_support import key_of, new_key

SCRIPT = Path(sys.executable).with_name("sessionkit")
K1, K2 = new_key(), new_key()


def run(*args: str, keys: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSIONKIT_ENCRYPTION_KEYS"}
    if keys is not None:
        env["SESSIONKIT_ENCRYPTION_KEYS"] = keys
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh namespace on SQLite (a file) or on the test Redis (a prefix of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sessions.db'}"
        return
    server: str = request.getfixturevalue("redis_url")
    url = with_query(server, f"prefix=rekey{uuid.uuid4().hex[:8]}:")
    yield url
    store = Store(storage=url)
    store.reset()
    store.close()


def _fill(url: str, keys: list[str] | None, n: int) -> list[str]:
    store = Store(storage=url, encryption_keys=keys)
    try:
        return saved_sessions(store, n)
    finally:
        store.close()


def _sealed_by(url: str) -> list[str]:
    store = Store(storage=url)
    try:
        values = [store.storage.get(key) for key, _ in store.storage.scan()]  # type: ignore[attr-defined]
    finally:
        store.close()
    return sorted(str(key_of(v or b"", K1, K2)) for v in values)


def _values(url: str, keys: list[str], ids: list[str]) -> list[object]:
    store = Store(storage=url, encryption_keys=keys)
    try:
        return [None if (s := store.get_by_id(sid)) is None else s["n"] for sid in ids]
    finally:
        store.close()


def test_rekey_seals_every_record_under_the_first_key_and_a_rerun_skips_them(url: str) -> None:
    ids = _fill(url, [K1], 4) + _fill(url, None, 2)  # sealed ones, and plaintext ones
    first = run("rekey", url, keys=f"{K2},{K1}")
    assert first.returncode == 0, first.stderr
    assert "6 record(s): 6 re-encrypted, 0 already under the first key" in first.stdout
    assert _sealed_by(url) == [K2] * 6
    assert _values(url, [K2], ids) == [0, 1, 2, 3, 0, 1]  # nobody logged out

    again = run("rekey", url, keys=f"{K2},{K1}")
    assert again.returncode == 0, again.stderr
    assert "0 re-encrypted, 6 already under the first key" in again.stdout
    for output in (first.stdout + first.stderr, again.stdout + again.stderr):
        assert K1 not in output and K2 not in output  # keys are never printed


def test_keys_from_a_file_with_comments(url: str, tmp_path: Path) -> None:
    _fill(url, [K1], 2)
    path = tmp_path / "keys"
    path.write_text(f"# new key first\n{K2}\n\n{K1}  # the old one\n")
    done = run("rekey", url, "--keys-file", str(path))
    assert done.returncode == 0, done.stderr
    assert _sealed_by(url) == [K2, K2]


def test_records_no_given_key_opens_are_left_and_the_status_is_1(url: str) -> None:
    """An operator who forgot an old key is told, and nothing is lost: those records are left
    as they are for a run with the full list."""
    ids = _fill(url, [K1], 3)
    done = run("rekey", url, keys=K2)
    assert done.returncode == 1
    assert "3 unreadable" in done.stdout and "were all the old keys given?" in done.stderr
    assert _sealed_by(url) == [K1] * 3
    assert _values(url, [K1], ids) == [0, 1, 2]


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        (None, "none given: set $SESSIONKIT_ENCRYPTION_KEYS or use --keys-file"),
        ("", "none given"),
        ("not-a-key", "base64url"),
        (f"{K1},{K1}", "a key is listed twice"),
    ],
    ids=["unset", "empty", "malformed", "twice"],
)
def test_missing_or_bad_keys_are_bad_usage_and_never_echoed(
    url: str, keys: str | None, says: str
) -> None:
    done = run("rekey", url, keys=keys)
    assert done.returncode == 2
    assert says in done.stderr
    assert K1 not in done.stderr and "not-a-key" not in done.stderr


def test_progress_goes_to_stderr(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memory = KeptMemoryStorage()
    store = Store(storage=memory, encryption_keys=[K1])
    for i in range(25):
        session = store.load(None)
        session["n"] = i
        session.save()
    monkeypatch.setattr("sessionkit._ops.cli.open_storage", lambda url, **options: memory)
    monkeypatch.setattr("sessionkit._ops.rekey.PROGRESS_EVERY", 10)
    monkeypatch.setenv("SESSIONKIT_ENCRYPTION_KEYS", f"{K2} {K1}")
    assert main(["rekey", "memory://"]) == 0
    err = capsys.readouterr().err
    assert "rekey: 10/25 scanned, 10 re-encrypted" in err
    assert "rekey: 20/25 scanned, 20 re-encrypted" in err


def test_a_storage_that_cannot_scan_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain: Storage = PlainStorage()  # type: ignore[assignment]
    monkeypatch.setattr("sessionkit._ops.cli.open_storage", lambda url, **options: plain)
    monkeypatch.setenv("SESSIONKIT_ENCRYPTION_KEYS", K1)
    assert main(["rekey", "memory://"]) == 1
    assert "rekey needs a storage that can scan" in capsys.readouterr().err


def test_the_app_expiration_is_what_records_without_a_lifetime_keep(url: str) -> None:
    """A record keeps the TTL it has left, counted from its save with the app's expiration:
    rewritten with --expiration 1h, a record saved with a 1-hour expiration is not given 24."""
    store = Store(storage=url, encryption_keys=[K1], expiration=timedelta(hours=1))
    session = store.load(None)
    session["n"] = 1
    session.save()
    store.close()
    done = run("rekey", url, "--expiration", "1h", keys=f"{K2},{K1}")
    assert done.returncode == 0, done.stderr
    assert _sealed_by(url) == [K2]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "-1h", "0", "soon", "inf"])
def test_bad_durations_are_bad_usage(text: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["rekey", "memory://", "--expiration", text])
    assert stopped.value.code == 2


class ScanOnlyStorage(PlainStorage):
    """Scans and replaces, but has no atomic ``replace_if``: rekey compares, then replaces."""

    def scan(self) -> Iterator[tuple[str, bytes]]:
        return self.inner.scan()

    def count(self) -> int:
        return self.inner.count()


def test_without_replace_if_rekey_compares_then_replaces(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionkit import AtomicStorage

    storage = ScanOnlyStorage()
    assert not isinstance(storage, AtomicStorage)
    store = Store(storage=storage, encryption_keys=[K1])
    session = store.load(None)
    session["n"] = 7
    session.save()
    monkeypatch.setattr("sessionkit._ops.cli.open_storage", lambda url, **options: storage)
    monkeypatch.setenv("SESSIONKIT_ENCRYPTION_KEYS", f"{K2},{K1}")
    assert main(["rekey", "memory://"]) == 0
    assert "1 re-encrypted" in capsys.readouterr().out
    (value,) = [v for _, v in storage.scan()]
    assert key_of(value, K1, K2) == K2
    reread = Store(storage=storage, encryption_keys=[K2]).get_by_id(session.id)
    assert reread is not None and reread["n"] == 7
