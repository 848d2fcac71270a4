"""Developer sessions: ``.venv/bin/nox`` runs lint, typing and the tests; ``-l`` lists the rest.

Every session runs in the one shared environment ``.venv`` that ``scripts/bootstrap.sh``
creates (uv installs it in seconds; four per-session venvs used to take minutes and a gigabyte
and a half). A session first brings ``.venv`` up to date through that script (a no-op taking
well under a second when nothing changed), so ``.venv/bin/nox -s docs`` works on a fresh clone
after ``bash scripts/test.sh`` or ``bash scripts/bootstrap.sh``. This repo's distributions are
installed from the working tree, so no ``sessionkit*`` name is ever resolved from the package
index, where ``sessionkit`` belongs to an unrelated project.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
# What ``tests`` and ``slow`` leave out: the ``load`` and ``django`` sessions run these folders
# in processes of their own.
OWN_PROCESS = ("--ignore", str(ROOT / "tests" / "load"), "--ignore", str(ROOT / "tests" / "django"))

# scripts/test.sh (the README's test command) runs lint, typing, django and slow beside tests
# (without its slow tests), then load: keep the two lists in step.
nox.options.sessions = ["lint", "typing", "django", "tests", "load"]
nox.options.default_venv_backend = "none"
nox.options.error_on_missing_interpreters = False

# Every session caches compiled bytecode (and pytest's rewritten test modules). Where the
# environment sets PYTHONDONTWRITEBYTECODE (this machine kind does), every process would
# otherwise compile each module it imports from source again: each pytest worker, and every
# uvicorn, gunicorn and test-server process the tests start.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def sync(session: nox.Session, *requirements: Path) -> None:
    """Bring the shared ``.venv`` up to date: the whole dev set, plus ``requirements``.
    (Skipped when scripts/test.sh has just done it and runs sessions side by side: two
    installers must not work on one venv at once.)"""
    if os.environ.get("SESSIONKIT_VENV_READY") == "1" and not requirements:
        return
    session.run("bash", str(ROOT / "scripts" / "bootstrap.sh"), "dev", *map(str, requirements))


def run(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    """Run a Python module (``pytest``, ``mypy``, ...) in the shared ``.venv``."""
    session.run(str(VENV_PYTHON), "-m", *args, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over everything (ruff pinned in requirements/lint.txt)."""
    sync(session)
    run(session, "ruff", "check", str(ROOT))
    run(session, "ruff", "format", "--check", str(ROOT))


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict over the core and every plugin, and the framework mounting examples."""
    sync(session)
    packages = [str(ROOT / "sessionkit"), *(str(next(p.glob("sessionkit_*"))) for p in PLUGINS)]
    run(session, "mypy", "--strict", *packages)
    # The middlewares under each framework's own types, without casts.
    run(session, "mypy", "--strict", str(ROOT / "tests" / "typing"))
    run(session, "mypy", "--strict", str(ROOT / "noxfile.py"))


@contextlib.contextmanager
def shared_topologies() -> Iterator[dict[str, str]]:
    """One Redis Cluster and one Sentinel set for every worker of a run, as external servers.

    Each worker would otherwise start its own on first use (session-scoped fixtures are per
    process): six clusters and six Sentinel sets, 48 servers to start, sync and keep busy even
    when idle (the cluster's nodes gossip and the Sentinels ping, about 1.6 s of CPU a minute
    per pair). Shared, the lane took 208 s from a clean clone where it had taken 252 s (beside
    lint, typing and django; one run each). Their tests namespace every key (a prefix per
    test) and never fail the shared set over (``redis_sentinel_set`` gives a test its own), so
    the workers share them as they share the Redis on 6379. A URL already set in the
    environment is kept. (The Mongo test server stays one per worker: SecantusDB is a Python
    server, and one shared by six workers used more CPU, 31 s, than six, 24 s, in a
    clean-clone run.)
    """
    sys.path.insert(0, str(ROOT))
    from tests._servers import start_redis_cluster, start_redis_sentinel

    starters: dict[str, Callable[[], Any]] = {
        "SESSIONKIT_TEST_REDIS_CLUSTER_URL": start_redis_cluster,
        "SESSIONKIT_TEST_REDIS_SENTINEL_URL": start_redis_sentinel,
    }
    wanted = {name: start for name, start in starters.items() if not os.environ.get(name)}
    env: dict[str, str] = {}
    with contextlib.ExitStack() as servers:
        # Side by side: each start mostly waits (the cluster's nodes to agree, the Sentinels to
        # find the primary), 2.3 s and 1.3 s one after the other.
        with concurrent.futures.ThreadPoolExecutor(max(1, len(wanted))) as pool:
            starting = {name: pool.submit(start) for name, start in wanted.items()}
        for future in starting.values():  # every group that started is closed, even if one failed
            if future.exception() is None:
                servers.callback(future.result().close)
        for name, future in starting.items():
            env[name] = future.result().url
        yield env


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on every backend, ``tests/security`` included, on six workers: its tests
    wait on servers, sockets and real-time expiries as well as on the CPU, so on two cores six
    workers keep the CPU busier than four (the lane alone, this machine, same code: 203 s on
    six, 224 s on four, 96 % against 84 % of the CPU); everything but ``tests/load`` and
    ``tests/django``, which the ``load`` and ``django`` sessions run in processes of their own.
    Starts its own Mongo test server, one Redis Cluster and one Sentinel set that the workers
    share (``shared_topologies``), and Redis if none answers. Arguments go to pytest:
    ``-m "not slow"`` skips the wheel and template tests that pip-install (a local loop),
    ``-n 0`` runs on one process."""
    sync(session)
    workers = [] if any(a == "-n" or a.startswith("-n") for a in session.posargs) else ["-n", "6"]
    with shared_topologies() as env:
        run(
            session,
            "pytest",
            *workers,
            "--dist",
            "loadfile",
            "--no-loadscope-reorder",  # the order of conftest.py's pytest_collection_modifyitems
            *OWN_PROCESS,
            *session.posargs,
            env=env,
        )


@nox.session
def slow(session: nox.Session) -> None:
    """Only the tests marked ``slow`` (also part of ``tests``): they build wheels or pip-install
    into fresh venvs, and spend most of their time waiting on pip and the package index, not
    on the CPU. ``scripts/test.sh`` runs them here, in one process beside the others, and runs
    ``tests`` without them: as the tests lane's last files they kept its end waiting on pip
    while the rest of the machine idled. Arguments go to pytest."""
    sync(session)
    tests = [str(ROOT / "tests"), str(ROOT / "plugins")]
    run(session, "pytest", "-m", "slow", *OWN_PROCESS, *tests, *session.posargs)


def pyproject(project: Path) -> dict[str, Any]:
    """The ``pyproject.toml`` of ``project`` (the repo, or a plugin's folder), read."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # nox itself requires tomli there
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    parsed: dict[str, Any] = tomllib.loads((project / "pyproject.toml").read_text())
    return parsed


def declared_floors() -> list[str]:
    """``name==version`` for every lower bound (``>=``) a distribution of this repo declares,
    the extras' (``crypto``) included: what ``floors`` installs."""
    from packaging.requirements import Requirement

    floors: dict[str, str] = {}
    for project in (ROOT, *PLUGINS):
        hook = pyproject(project)["tool"]["hatch"]
        declared = hook["metadata"]["hooks"]["custom"]
        wanted = list(declared.get("dependencies", []))
        for extra in declared.get("optional-dependencies", {}).values():
            wanted += extra
        for line in wanted:
            requirement = Requirement(line)
            for spec in requirement.specifier:
                if spec.operator == ">=":
                    floors[requirement.name.lower()] = f"{requirement.name}=={spec.version}"
    return sorted(floors.values())


def oldest_python() -> str:
    """The oldest Python the distributions declare (``requires-python``) if one is installed
    and runs (``python3.10`` on PATH, or one pyenv installed: its shim on PATH runs only the
    versions pyenv is set to); else this one."""
    oldest = pyproject(ROOT)["project"]["requires-python"].removeprefix(">=").strip()
    name = f"python{oldest}"
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(name), *sorted(pyenv.glob(f"versions/{oldest}.*/bin/{name}"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run(  # noqa: S603 (an interpreter of this machine, found above)
            [str(candidate), "-c", "pass"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return str(candidate)
    return sys.executable


@nox.session
def floors(session: nox.Session) -> None:
    """The test suite (``tests/django`` included, not the load suite) against the oldest
    release of every requirement the distributions declare (``redis>=7.2.0`` installs redis
    7.2.0, and so on), on the oldest Python they declare when it is installed
    (``python3.10``), in a venv of its own, ``.nox/floors-X.Y``: a declared lower bound is a
    promise that those releases work. Not part of ``scripts/test.sh``, for its time; run it
    whenever a lower bound or a use of a requirement's API changes. Arguments go to pytest."""
    interpreter = oldest_python()
    said = session.run(
        interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])", silent=True
    )
    version = str(said).strip()
    venv = ROOT / ".nox" / f"floors-{version}"
    python = venv / "bin" / "python"
    constraints = venv / "floors.txt"
    uv = (str(VENV_PYTHON), "-m", "uv")
    sync(session)
    if not python.exists():
        session.run(*uv, "venv", "-q", "--python", interpreter, str(venv))
    pins = declared_floors()
    constraints.write_text("\n".join(pins) + "\n")
    session.log(f"floors: Python {version}, " + ", ".join(pins))
    editable = [arg for project in (ROOT, *PLUGINS) for arg in ("-e", str(project))]
    session.run(
        *uv, "pip", "install", "-q", "--python", str(python), *editable,
        "-e", str(ROOT / "tests" / "thirdparty_plugin"),
        "-r", str(ROOT / "requirements" / "test.txt"),
        "pip",  # the Django tests fetch Django's sdist with it
        "-c", str(constraints),
    )  # fmt: skip
    workers = [] if any(a.startswith("-n") for a in session.posargs) else ["-n", "6"]
    with shared_topologies() as env:
        session.run(
            str(python), "-m", "pytest", *workers, "--dist", "loadfile", "-m", "not slow",
            *OWN_PROCESS, str(ROOT / "tests"), str(ROOT / "plugins"), *session.posargs,
            env=env,
        )  # fmt: skip
    # In a process of its own, as the django session runs it (settings are set once).
    session.run(str(python), "-m", "pytest", str(ROOT / "tests" / "django"), *session.posargs)


@nox.session(name="tests-plugin")
@nox.parametrize("plugin", [p.name for p in PLUGINS])
def tests_plugin(session: nox.Session, plugin: str) -> None:
    """One plugin's tests (e.g. ``.venv/bin/nox -s "tests-plugin(plugin='sessionkit-redis')"``)."""
    sync(session)
    run(session, "pytest", str(ROOT / "plugins" / plugin), *session.posargs)


@nox.session
def security(session: nox.Session) -> None:
    """Only the security requirements of shared/spec/security.md (``tests/security``, which the
    ``tests`` session runs too), on every installed backend."""
    sync(session)
    run(session, "pytest", str(ROOT / "tests" / "security"), *session.posargs)


@nox.session
def load(session: nox.Session) -> None:
    """The load-and-fault suite (``tests/load``): real uvicorn and gunicorn servers, hundreds of
    clients, storage faults mid-run. Short by default (part of the default run);
    ``.venv/bin/nox -s load -- --full`` (or ``SESSIONKIT_LOAD=full``) runs every scenario at
    full size and the comparison with starsessions. Other arguments go to pytest.

    A short run takes its scenarios eight at a time, the longest first (``tests/load/conftest.py``
    orders them for pytest-xdist): a fault scenario spends most of its time waiting out a fault
    window on a private storage server, and each scenario's promises (no acknowledged write
    lost, no 500, every answer within the storage timeout plus a second) are about correctness,
    not speed, so they hold on a shared CPU; run one alone (``-n 0``) to read its throughput.
    On this 2-core machine, alone: 28 to 31 s eight at a time, longest first; 40 to 50 s four
    at a time in file order. The exception, marked ``alone``: 500 clients on one worker, whose
    promise is its own latency (a connection within the pool's 2 s wait), runs afterwards by
    itself (about 6 s); beside three other scenarios it answered a 503 one run in three."""
    sync(session)
    args = list(session.posargs)
    mode = os.environ.get("SESSIONKIT_LOAD") or "short"
    if "--full" in args:
        args.remove("--full")
        mode = "full"
    env = {"SESSIONKIT_LOAD": mode}
    suite = str(ROOT / "tests" / "load")
    if mode == "full" or args:
        run(session, "pytest", suite, *args, env=env)
        return
    run(session, "pytest", suite, "-n", "8", "--dist", "load", "-m", "not alone", env=env)
    # Scenarios whose promise is their own latency (500 clients on one worker) run alone.
    run(session, "pytest", suite, "-m", "alone", env=env)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    sync(session, ROOT / "docs" / "requirements.txt")
    # mkdocs-material 9.x prints an end-of-life banner on every build; the versions are pinned
    # on purpose (docs/requirements.txt), so the banner is noise that would hide real warnings.
    quiet = {"NO_MKDOCS_2_WARNING": "1"}
    run(session, "mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"), env=quiet)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers (not part of the test run); writes benchmarks/results.md."""
    sync(session, ROOT / "benchmarks" / "requirements.txt")
    session.run(str(VENV_PYTHON), str(ROOT / "benchmarks" / "run.py"), *session.posargs)


@nox.session(name="bench-load")
def bench_load(session: nox.Session) -> None:
    """sessionkit, the peers, the floors and the bare apps through real uvicorn and gunicorn
    servers under load (not part of the test run); writes benchmarks/load/results.md (and
    .json). About 20 minutes; arguments go to benchmarks/load/compare.py, e.g.
    ``-- --rounds 1 --seconds 2 --frameworks starlette``."""
    sync(session, ROOT / "benchmarks" / "requirements.txt")
    compare = ROOT / "benchmarks" / "load" / "compare.py"
    session.run(str(VENV_PYTHON), str(compare), *session.posargs)
    session.run(str(VENV_PYTHON), str(compare.with_name("same_session.py")))  # issue 20


@nox.session
def build(session: nox.Session) -> None:
    """Build every distribution's wheel into ``dist/`` (see docs/install.md)."""
    session.run("bash", str(ROOT / "scripts" / "wheels.sh"), *session.posargs)


@nox.session
def django(session: nox.Session) -> None:
    """``sessionkit.django`` (``tests/django``), in a pytest process of its own: Django's
    settings can be configured once per process, and the docs' samples configure it too.
    Django's own session tests (taken from its sdist at test time, cached under ``.cache/``) on
    every storage, for Django's LTS (``.venv``'s) and its newest release (a Python 3.12+ venv
    built once under ``.cache/``), and a ``startproject`` end to end, through Django's test
    client and gunicorn. Arguments go to pytest."""
    sync(session)
    run(session, "pytest", str(ROOT / "tests" / "django"), *session.posargs)
