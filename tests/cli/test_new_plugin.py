"""``sessionkit new-plugin``: the generated distribution installs, registers its scheme and
passes the conformance suite, as generated.

The end-to-end test installs the plugin (``pip install --no-deps -e``, as printed) into a
throwaway venv layered over the running one (its site-packages added through a ``.pth`` file),
never into the running environment itself: other test processes share that one, and a plugin
appearing in it mid-run would change what their registries load. Its tests and commands run in
that venv's interpreter.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

import sessionkit
from sessionkit._ops.cli import main
from sessionkit._ops.newplugin import TEMPLATE, PluginNames

# Unique per run: two test runs sharing one environment must not uninstall each other's probe.
TOKEN = secrets.token_hex(3)
NAME = f"cliprobe-{TOKEN}"
DIST = f"sessionkit-{NAME}"
PACKAGE = f"sessionkit_cliprobe_{TOKEN}"


def run(
    *argv: str, cwd: Path | None = None, timeout: float = 300, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def layered_venv(where: Path) -> str:
    """A new venv (no pip of its own) that also sees the running environment's packages, with
    their ``.pth`` files (editable installs) processed: whatever is installed into it stays
    in it. Returns its interpreter."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = run(
        "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", python=str(python)
    )
    parent = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in parent)
    (Path(purelib.stdout.strip()) / "_layered_over_parent.pth").write_text(lines)
    return str(python)


@pytest.fixture(scope="module")
def generation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The generated root, and the next steps the command printed (without their indent)."""
    parent = tmp_path_factory.mktemp("plugins")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["new-plugin", NAME, "--dir", str(parent)]) == 0
    lines = out.getvalue().splitlines()
    return parent / DIST, [line.strip() for line in lines[lines.index("next:") + 1 :]]


@pytest.fixture(scope="module")
def generated(generation: tuple[Path, list[str]]) -> Path:
    return generation[0]


@pytest.fixture(scope="module")
def installed(generation: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The interpreter of a throwaway venv holding the installed plugin."""
    _, (install, _, _) = generation
    python = layered_venv(tmp_path_factory.mktemp("venv"))
    # The printed command as printed ("pip install -e ROOT[test]"), with --no-deps: the test
    # extra's pytest and hypothesis are here already, and nothing is fetched from an index.
    pip, verb, *arguments = shlex.split(install)
    assert (pip, verb) == ("pip", "install")
    done = run("-m", "pip", "install", "-q", "--no-deps", *arguments, python=python)
    assert done.returncode == 0, done.stdout + done.stderr
    return python


def test_layout(generated: Path) -> None:
    files = sorted(p.relative_to(generated).as_posix() for p in generated.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        f"{PACKAGE}/__init__.py",
        f"{PACKAGE}/_options.py",
        f"{PACKAGE}/_plugin.py",
        f"{PACKAGE}/_storage.py",
        f"{PACKAGE}/py.typed",
        "tests/test_conformance.py",
    ]
    pyproject = (generated / "pyproject.toml").read_text()
    assert f'[project.entry-points.sessionkit]\n{NAME} = "{PACKAGE}._plugin"' in pyproject
    assert "$" not in pyproject  # every placeholder filled


@pytest.mark.slow
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


@pytest.mark.slow
def test_installed_plugin_registers_and_passes_the_conformance_suite(
    installed: str, generation: tuple[Path, list[str]], tmp_path: Path
) -> None:
    _, (_, pytest_step, check_step) = generation
    listed = run("-m", "sessionkit", "backends", python=installed)
    assert DIST in listed.stdout and f"{NAME}://" in listed.stdout, listed.stdout
    # The printed "pytest ROOT", run from elsewhere, as a reader of the output would.
    tool, *paths = shlex.split(pytest_step)
    assert tool == "pytest"
    suite = run(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths, cwd=tmp_path, python=installed
    )
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    assert " passed" in suite.stdout and "failed" not in suite.stdout
    tool, *arguments = shlex.split(check_step)
    assert tool == "sessionkit"
    check = run("-m", "sessionkit", *arguments, "--reset-scratch", python=installed)
    # ... and none of it reached the running environment, which other test processes share.
    assert DIST not in run("-m", "sessionkit", "backends").stdout
    assert check.returncode == 0, check.stdout + check.stderr


def test_next_steps_install_the_test_extra_then_run_the_suite_then_check(
    generation: tuple[Path, list[str]],
) -> None:
    root, steps = generation
    assert steps == [
        f'pip install -e "{root}[test]"',
        f"pytest {root}",
        f"sessionkit check {NAME}://",
    ]


def test_next_steps_are_absolute_and_quoted_for_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new-plugin", "kv", "--dir", "my plugins"]) == 0
    out = capsys.readouterr().out
    root = tmp_path / "my plugins" / "sessionkit-kv"
    assert f"created {root}\n" in out
    assert f"  pip install -e \"{root}[test]\"\n  pytest '{root}'\n" in out
    assert shlex.split(f'pip install -e "{root}[test]"')[-1] == f"{root}[test]"


def test_the_core_requirement_cannot_be_met_by_the_unrelated_sessionkit(generated: Path) -> None:
    """The generated plugin needs this core release or later; the project that owns the name
    ``sessionkit`` on the public index (0.3.x) cannot satisfy that."""
    pyproject = (generated / "pyproject.toml").read_text()
    version = sessionkit.__version__
    assert f'dependencies = ["sessionkit>={version}", ' in pyproject
    requirement = SpecifierSet(f">={version}")
    assert version in requirement
    assert not any(v in requirement for v in ("0.3.1", "0.3.9", "0.9.9"))


def test_every_place_shows_the_test_extra(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (TEMPLATE / "README.md.tmpl").read_text()
    assert 'pip install -e ".[test]"' in readme and "\npytest " in readme
    with pytest.raises(SystemExit):
        main(["new-plugin", "--help"])
    help_text = capsys.readouterr().out
    assert 'pip install -e ".[test]"' in help_text
    assert "  pytest\n" in help_text and "sessionkit check etcd://" in help_text


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
