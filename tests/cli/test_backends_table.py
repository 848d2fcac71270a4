"""``sessionkit backends``: a table that fits a terminal, however many schemes a plugin has
(Redis has thirteen: the column once ran to 215 characters)."""

from __future__ import annotations

import pytest

from sessionkit._ops.cli import main


def test_the_table_fits_and_names_every_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 110, out
    assert lines[0].split() == ["backend", "schemes", "distribution", "version"]
    listed = out.replace(",", " ").split()
    for scheme in ("redis", "rediss", "unix", "valkey+sentinel", "sqlite", "memory"):
        assert f"{scheme}://" in listed, out
    redis = next(line for line in lines if line.startswith("redis "))
    assert "sessionkit-redis" in redis  # the distribution stays on the backend's first line
