"""A file path or a ``host:port`` given where a storage URL goes: the error says what it looks
like and the exact URL to type instead (status 2, bad usage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionkit._ops.cli import main


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


@pytest.mark.parametrize("command", ["check", "stats", "purge"])
@pytest.mark.parametrize(
    "path", ["sessions.db", "data/app.sqlite", "./x.sqlite3", "var/sessions", "sessions.DB"]
)
def test_a_relative_path_gets_the_absolute_sqlite_url(
    command: str, path: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = error_of([command, path], capsys)
    absolute = (in_tmp / path).resolve()
    assert f"'{path}' looks like a file path, not a storage URL" in err
    assert f"use sqlite:///{absolute}\n" in err
    assert err.count("\n") == 1


def test_an_absolute_path_and_an_existing_file_without_a_suffix(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = error_of(["stats", str(in_tmp / "s.db")], capsys)
    assert f"use sqlite:///{in_tmp}/s.db" in err  # four slashes in all
    (in_tmp / "sessions").write_bytes(b"")
    err = error_of(["check", "sessions"], capsys)
    assert f"use sqlite:///{in_tmp}/sessions" in err


def test_a_path_with_a_space_or_hash_is_percent_encoded(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = error_of(["stats", "my sessions#1.db"], capsys)
    assert f"use sqlite:///{in_tmp}/my%20sessions%231.db" in err


@pytest.mark.parametrize(
    ("argument", "url"),
    [
        ("localhost:6379", "redis://localhost:6379/0"),
        ("127.0.0.1:6379", "redis://127.0.0.1:6379/0"),
        ("cache.internal:6380", "redis://cache.internal:6380/0"),
        ("localhost:6379/2", "redis://localhost:6379/2"),
        ("[::1]:6379", "redis://[::1]:6379/0"),
    ],
)
@pytest.mark.parametrize("command", ["check", "stats", "purge"])
def test_host_and_port_gets_the_redis_url(
    command: str, argument: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = error_of([command, argument], capsys)
    assert f"'{argument}' looks like a host and port, not a storage URL; for Redis use {url}" in err
    assert "mongodb://" not in err


def test_the_mongodb_port_gets_the_mongodb_url_first(capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of(["stats", "db1:27017"], capsys)
    assert "for MongoDB use mongodb://db1:27017/db (for Redis: redis://db1:27017/0)" in err


def test_an_unknown_scheme_keeps_the_backend_message(capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of(["check", "nosuch"], capsys)
    assert "no storage backend for scheme 'nosuch'" in err and "looks like" not in err
