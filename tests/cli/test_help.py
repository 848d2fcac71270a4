"""``--help`` reads well: every command says what it does, its exit codes, and an example."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sessionkit._ops.cli import main

COMMANDS = ["backends", "check", "stats", "purge", "new-plugin"]


def help_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command_on_one_line_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of([], capsys)
    for command in COMMANDS:
        assert f"    {command}" in text


@pytest.mark.parametrize("command", ["check", "stats", "purge", "new-plugin"])
def test_operator_commands_explain_exit_status(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of([command], capsys)
    assert "exit status: 0" in text
    assert max(len(line) for line in text.splitlines()) <= 100  # no runaway lines


def test_purge_help_names_its_options_and_codes(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(["purge"], capsys)
    for fragment in ("--expired-only", "--yes", "3 aborted at the prompt", "[y/N]"):
        assert fragment.replace("[y/N]", "y/N") in text


def test_python_m_sessionkit_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sessionkit", "check", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--reset-scratch" in done.stdout
