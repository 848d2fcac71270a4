"""A typo in a sub-command's option is reported by that sub-command: its usage line, the
unrecognized argument, the closest option it has, status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sessionkit._ops.cli import main


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


@pytest.mark.parametrize(
    ("argv", "usage", "error"),
    [
        (
            ["check", "--reset-scrach", "redis://x"],
            "usage: sessionkit check [-h] [--reset-scratch] URL",
            "sessionkit check: error: unrecognized arguments: --reset-scrach "
            "(did you mean --reset-scratch?)",
        ),
        (
            ["purge", "--yess", "memory://"],
            "usage: sessionkit purge [-h] [--expired-only] [--yes] URL",
            "sessionkit purge: error: unrecognized arguments: --yess (did you mean --yes?)",
        ),
        (
            ["stats", "memory://", "--jsno"],
            "usage: sessionkit stats [-h] [--json] URL",
            "sessionkit stats: error: unrecognized arguments: --jsno (did you mean --json?)",
        ),
        (
            ["check", "memory://", "extra"],
            "usage: sessionkit check ",
            "sessionkit check: error: unrecognized arguments: extra\n",
        ),
        (
            ["demo", "--prot", "8001"],
            "usage: sessionkit demo ",
            "sessionkit demo: error: unrecognized arguments: --prot 8001 (did you mean --port?)",
        ),
        (
            ["new-plugin", "etcd", "--schme", "e"],
            "usage: sessionkit new-plugin ",
            "unrecognized arguments: --schme e (did you mean --scheme?)",
        ),
    ],
)
def test_a_typo_after_a_sub_command_shows_that_sub_command_usage(
    argv: list[str], usage: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(argv, capsys)
    assert err.startswith(usage)
    assert error in err
    assert "usage: sessionkit [-h]" not in err


def test_a_typo_before_the_sub_command_is_still_the_top_level_s(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = usage_error(["--verison", "check", "memory://"], capsys)
    assert err.startswith("usage: sessionkit [-h]")


def test_the_real_command_exits_2_with_the_sub_command_usage() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sessionkit", "check", "--reset-scrach", "redis://x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("usage: sessionkit check ")
    assert "unrecognized arguments: --reset-scrach" in done.stderr
