"""Developer sessions: ``nox`` runs lint, typing and the tests; see ``nox -l`` for the rest.

Every session that installs the project installs all of this repo's distributions from the
working tree in one pip run (``install_repo``), so no ``sessionkit*`` name is ever resolved from
the package index, where ``sessionkit`` belongs to an unrelated project.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
THIRD_PARTY = ROOT / "tests" / "thirdparty_plugin"
DEV = ROOT / "requirements-dev.txt"

nox.options.sessions = ["lint", "typing", "tests", "security", "load"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


def install_repo(session: nox.Session, *extra: str) -> None:
    """Install every distribution of this repo, editable, in one resolver run."""
    paths = [str(ROOT), *(str(p) for p in PLUGINS)]
    if THIRD_PARTY.exists():
        paths.append(str(THIRD_PARTY))
    args = [arg for path in paths for arg in ("-e", path)]
    session.install(*args, "-r", str(DEV), *extra)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over everything (ruff pinned in requirements-dev)."""
    pin = next(line for line in DEV.read_text().splitlines() if line.startswith("ruff=="))
    session.install(pin)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict over the core and every plugin, and the framework mounting examples."""
    install_repo(session)
    packages = ["sessionkit", *(str(next(p.glob("sessionkit_*"))) for p in PLUGINS)]
    session.run("mypy", "--strict", *packages)
    # The middlewares under each framework's own types, without casts.
    session.run("mypy", "--strict", str(ROOT / "tests" / "typing"))


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on every backend (starts its own Mongo test server; Redis if absent),
    except ``tests/security`` and ``tests/load``, the ``security`` and ``load`` sessions'."""
    install_repo(session)
    session.run(
        "pytest",
        "--ignore",
        str(ROOT / "tests" / "security"),
        "--ignore",
        str(ROOT / "tests" / "load"),
        *session.posargs,
    )


@nox.session(name="tests-plugin")
@nox.parametrize("plugin", [p.name for p in PLUGINS])
def tests_plugin(session: nox.Session, plugin: str) -> None:
    """One plugin's tests (e.g. ``nox -s "tests-plugin(plugin='sessionkit-redis')"``)."""
    install_repo(session)
    session.run("pytest", str(ROOT / "plugins" / plugin), *session.posargs)


@nox.session
def security(session: nox.Session) -> None:
    """The security requirements of shared/spec/security.md, on every installed backend."""
    install_repo(session)
    session.run("pytest", str(ROOT / "tests" / "security"), *session.posargs)


@nox.session
def load(session: nox.Session) -> None:
    """The load-and-fault suite (``tests/load``): real uvicorn and gunicorn servers, hundreds of
    clients, storage faults mid-run. Short by default (at most two minutes, part of the default
    run); ``nox -s load -- --full`` (or ``SESSIONKIT_LOAD=full``) runs every scenario at full size
    and the comparison with starsessions. Other arguments go to pytest."""
    install_repo(session)
    args = list(session.posargs)
    mode = os.environ.get("SESSIONKIT_LOAD") or "short"
    if "--full" in args:
        args.remove("--full")
        mode = "full"
    session.run("pytest", str(ROOT / "tests" / "load"), *args, env={"SESSIONKIT_LOAD": mode})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    install_repo(session, "-r", str(ROOT / "docs" / "requirements.txt"))
    # mkdocs-material 9.x prints an end-of-life banner on every build; the versions are pinned
    # on purpose (docs/requirements.txt), so the banner is noise that would hide real warnings.
    quiet = {"NO_MKDOCS_2_WARNING": "1"}
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"), env=quiet)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers (not part of the test run); writes benchmarks/results.md."""
    install_repo(session, "-r", str(ROOT / "benchmarks" / "requirements.txt"))
    session.run("python", str(ROOT / "benchmarks" / "run.py"), *session.posargs)
