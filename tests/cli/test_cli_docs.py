"""docs/cli.md quotes the command line as it runs: the messages and output it shows are the
ones the commands print today."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

import sessionkit
from sessionkit._ops.cli import main

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")


def output_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    with contextlib.suppress(SystemExit):  # the usage errors
        main(argv)
    captured = capsys.readouterr()
    return (captured.err + captured.out).splitlines()


@pytest.mark.parametrize(
    "argv",
    [
        ["stats", "memory://"],
        ["check", "localhost:6379"],
        ["check", "db1:27017"],
        ["check", "--reset-scrach", "redis://localhost:6379/0"],
    ],
)
def test_the_page_shows_what_the_command_prints(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for line in output_of(argv, capsys):
        assert line in PAGE.splitlines(), line


def test_the_page_shows_the_path_hint_and_the_new_plugin_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    (line,) = output_of(["stats", "sessions.db"], capsys)
    assert line.replace(str(tmp_path), "/home/me") in PAGE.splitlines()
    main(["new-plugin", "etcd", "--dir", str(tmp_path)])
    out = capsys.readouterr().out.replace(str(tmp_path), "/home/me/src")
    assert out.split("next:\n")[1] in PAGE


def test_the_page_documents_version_and_the_demo_output() -> None:
    for fragment in (
        "## `sessionkit --version`",
        f"sessionkit-redis {sessionkit.__version__} (redis://, rediss://, unix://, valkey://, "
        "valkeys://, redis+cluster://, rediss+cluster://, valkey+cluster://, valkeys+cluster://, "
        "redis+sentinel://, rediss+sentinel://, valkey+sentinel://, valkeys+sentinel://)",
        "sessionkit demo: opening storage sqlite:///sessionkit-demo.db (the default;",
        "sessionkit demo: requests are logged below: method, path, status, time",
        "GET / 200 4.6 ms",
        '"no session yet"',
    ):
        assert fragment in PAGE, fragment
