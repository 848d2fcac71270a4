"""``memory://`` on the command line is a store of the command's own process: ``stats``,
``check`` and ``purge`` say so, on stderr, and report on that empty store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sessionkit import Store
from sessionkit._ops.cli import main
from tests.cli.conftest import fill

NOTICE = (
    "sessionkit: note: memory:// lives inside one process, so this command sees a new, empty "
    "store of its own, not your application's sessions\n"
)


@pytest.mark.parametrize(
    ("argv", "report"),
    [
        (["stats", "memory://"], "live sessions  0"),
        (["stats", "memory"], "live sessions  0"),
        (["check", "memory://"], "all checks passed"),
        (["purge", "--yes", "memory://"], "deleted 0 session(s) from memory://"),
        (["purge", "--yes", "--expired-only", "memory://"], "deleted 0 expired session(s)"),
    ],
)
def test_memory_commands_say_they_see_their_own_empty_store(
    argv: list[str], report: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(NOTICE)
    assert report in captured.out
    assert "note:" not in captured.out


def test_sqlite_in_memory_gets_the_notice_too(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sessionkit_sqlite")
    assert main(["stats", "sqlite://:memory:"]) == 0
    assert "sqlite://:memory: lives inside one process" in capsys.readouterr().err


def test_the_json_report_stays_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--json", "memory://"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["live"] == 0
    assert captured.err == NOTICE


def test_a_shared_storage_gets_no_notice(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sessionkit_sqlite")
    fill(Store(storage=sqlite_url), [10])
    assert main(["stats", sqlite_url]) == 0
    captured = capsys.readouterr()
    assert "live sessions  1" in captured.out and captured.err == ""


def test_the_real_command_prints_the_notice_before_the_prompt() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sessionkit", "purge", "memory://"],
        input="n\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert done.stderr.startswith(NOTICE)
    assert "Delete all 0 sessions in memory://?" in done.stderr
