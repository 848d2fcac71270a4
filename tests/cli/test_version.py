"""``sessionkit --version``: the core and every installed plugin distribution, with versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import sessionkit
from sessionkit import available_backends
from sessionkit._ops.cli import main


def expected_lines() -> list[str]:
    plugins: dict[str, set[str]] = {}
    for installed in available_backends():
        line = f"{installed.distribution} {installed.version}"
        plugins.setdefault(line, set()).update(f"{s}://" for s in installed.backend.schemes)
    return [f"sessionkit {sessionkit.__version__}", *sorted(plugins)]


def test_version_names_the_core_then_each_plugin_with_its_schemes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"sessionkit {sessionkit.__version__}"
    # "sessionkit-redis 1.0.0 (redis://, rediss://, unix://, valkey://, ...)"
    assert [line.split(" (")[0] for line in lines] == expected_lines()
    redis = next((line for line in lines if line.startswith("sessionkit-redis ")), None)
    if redis is not None:
        assert redis.endswith(
            "(redis://, rediss://, unix://, valkey://, valkeys://, redis+cluster://, "
            "rediss+cluster://, valkey+cluster://, valkeys+cluster://, redis+sentinel://, "
            "rediss+sentinel://, valkey+sentinel://, valkeys+sentinel://)"
        )
    memory = next(line for line in lines if line.startswith("sessionkit-memory "))
    assert memory.endswith(" (memory://)")


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([str(Path(sys.executable).with_name("sessionkit"))], id="console-script"),
        pytest.param([sys.executable, "-m", "sessionkit"], id="python-m"),
    ],
)
def test_the_real_command_prints_the_versions(command: list[str]) -> None:
    if not Path(command[0]).exists():
        pytest.skip("no sessionkit console script next to this interpreter")
    done = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"sessionkit {sessionkit.__version__}"
    assert any(line.startswith("sessionkit-memory ") for line in done.stdout.splitlines())
