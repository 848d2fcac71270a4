"""``sessionkit new-plugin``: the generated distribution installs, registers its scheme and
passes the conformance suite, as generated.

The end-to-end test installs the plugin into the running environment (``pip install --no-deps
-e``: nothing else is installed or upgraded) and uninstalls it at teardown; its tests run in a
subprocess, so this process's plugin registry, already loaded, never sees it.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkit._cli import main
from sessionkit._newplugin import PluginNames

# Unique per run: two test runs sharing one environment must not uninstall each other's probe.
TOKEN = secrets.token_hex(3)
NAME = f"cliprobe-{TOKEN}"
DIST = f"sessionkit-{NAME}"
PACKAGE = f"sessionkit_cliprobe_{TOKEN}"


def run(
    *argv: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parent = tmp_path_factory.mktemp("plugins")
    assert main(["new-plugin", NAME, "--dir", str(parent)]) == 0
    return parent / DIST


@pytest.fixture(scope="module")
def installed(generated: Path) -> Iterator[Path]:
    done = run("-m", "pip", "install", "-q", "--no-deps", "-e", str(generated))
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield generated
    finally:
        run("-m", "pip", "uninstall", "-q", "-y", DIST)


def test_layout(generated: Path) -> None:
    files = sorted(p.relative_to(generated).as_posix() for p in generated.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        f"{PACKAGE}/__init__.py",
        f"{PACKAGE}/_plugin.py",
        f"{PACKAGE}/_storage.py",
        f"{PACKAGE}/py.typed",
        "tests/test_conformance.py",
    ]
    pyproject = (generated / "pyproject.toml").read_text()
    assert f'[project.entry-points.sessionkit]\n{NAME} = "{PACKAGE}._plugin"' in pyproject
    assert "$" not in pyproject  # every placeholder filled


def test_generated_code_is_lint_and_type_clean(generated: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    config = str(root / "pyproject.toml")
    for argv in (
        # Judged as an outsider's project: its own package first-party, sessionkit third-party.
        (
            "-m",
            "ruff",
            "check",
            "--config",
            config,
            "--config",
            f"lint.isort.known-first-party = ['{PACKAGE}']",
            ".",
        ),
        ("-m", "ruff", "format", "--check", "--config", config, "."),
        ("-m", "mypy", "--strict", "--no-incremental", PACKAGE, "tests"),
    ):
        done = run(*argv, cwd=generated)
        assert done.returncode == 0, done.stdout + done.stderr


def test_installed_plugin_registers_and_passes_the_conformance_suite(installed: Path) -> None:
    listed = run("-m", "sessionkit", "backends")
    assert DIST in listed.stdout and f"{NAME}://" in listed.stdout, listed.stdout
    suite = run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=installed)
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    assert " passed" in suite.stdout and "failed" not in suite.stdout
    check = run("-m", "sessionkit", "check", f"{NAME}://", "--reset-scratch")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["new-plugin", "Bad Name"], "plugin name 'Bad Name'"),
        (["new-plugin", "good", "--scheme", "no_underscores"], "scheme 'no_underscores'"),
        (
            ["new-plugin", "myredis", "--scheme", "redis"],
            "scheme 'redis' belongs to sessionkit-redis",
        ),
        (["new-plugin", "memory"], "scheme 'memory' belongs to sessionkit-memory"),
    ],
)
def test_bad_names_and_taken_schemes_are_usage_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sessionkit-mine").mkdir()
    (tmp_path / "sessionkit-mine" / "keep.txt").write_text("my work")
    assert main(["new-plugin", "mine", "--dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "sessionkit-mine" / "keep.txt").read_text() == "my work"


def test_names_derive_from_the_short_name() -> None:
    names = PluginNames.parse("sessionkit-my_kv")
    assert (names.name, names.scheme, names.dist, names.package, names.cls) == (
        "my_kv",
        "my-kv",
        "sessionkit-my-kv",
        "sessionkit_my_kv",
        "MyKvStorage",
    )
