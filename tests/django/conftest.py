"""Django is set up once for this process, on a freshly generated ``startproject``.

Django's settings can be configured once per process, so ``tests/django`` runs in a pytest
process of its own (``.venv/bin/nox -s django``), never beside other tests that configure
Django (the documentation's samples): a run given other paths too leaves this directory out,
and says so in its header. The project comes from ``django-admin startproject`` with only its
settings changed (:mod:`tests.django._project`); its database is migrated here, and the tests
switch storages with ``override_settings(SESSIONKIT=...)``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._backends import BACKENDS
from tests.django._contract import ContractRuns
from tests.django._project import NAME, make_project

HERE = Path(__file__).resolve().parent
_home: Path | None = None
#: This run was given paths outside ``tests/django``: nothing here is collected.
_left_out = False


def _alone(config: pytest.Config) -> bool:
    """Whether every path the run was given lies in ``tests/django``; a run given some of
    its files beside other paths is refused (those files would be collected regardless)."""
    start = config.invocation_params.dir
    paths = [(start / str(arg).split("::", 1)[0]).resolve() for arg in config.args]
    inside = [p == HERE or HERE in p.parents for p in paths]
    files = [p for p, within in zip(paths, inside, strict=True) if within and p != HERE]
    if files and not all(inside):
        raise pytest.UsageError(
            "tests/django runs in a pytest process of its own (.venv/bin/nox -s django): "
            "give its paths alone"
        )
    return bool(paths) and all(inside)


def pytest_configure(config: pytest.Config) -> None:
    global _home, _left_out
    if not _alone(config):
        _left_out = True
        return
    import django
    from django.conf import settings

    if settings.configured:
        raise pytest.UsageError(
            "Django is already configured in this process: run tests/django on its own "
            "(nox -s django), not beside other tests that configure Django"
        )
    _home = make_project(Path(tempfile.mkdtemp(prefix="sessionkit-django-")))
    sys.path.insert(0, str(_home))
    os.environ["DJANGO_SETTINGS_MODULE"] = f"{NAME}.settings"
    os.environ.setdefault("SESSIONKIT_STORAGE", "memory://")
    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return True if _left_out else None


def pytest_report_header(config: pytest.Config) -> str | None:
    if _left_out:
        return "tests/django left out: it runs in a process of its own (.venv/bin/nox -s django)"
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    if _home is not None:
        shutil.rmtree(_home.parent, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Django's own tests wait for processes started with the first test: they go last."""
    waiting = [item for item in items if "contract" in getattr(item, "fixturenames", ())]
    items[:] = [item for item in items if item not in waiting] + waiting


@pytest.fixture(scope="session")
def contract(
    redis_url: str, mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], dict[str, Any]]]:
    """Django's own session tests, one process per Django version (``test_contract.py``);
    ``contract(version)`` waits for one's report."""
    runs = ContractRuns(redis_url, mongo_url, tmp_path_factory.mktemp("contract"))
    try:
        runs.start()
        yield runs.report
    finally:
        runs.stop()


@pytest.fixture(scope="session", autouse=True)
def _contract_beside_the_rest(request: pytest.FixtureRequest) -> None:
    """Start Django's own tests with the first test, when they are selected, so they run
    beside the others (the machine has a core to spare while these wait on sockets)."""
    if any("contract" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("contract")


@pytest.fixture(scope="session")
def project() -> Path:
    """The generated project's directory (``manage.py`` is in it)."""
    assert _home is not None
    return _home


#: The storages every behaviour is checked on: the first-party ones and a third-party plugin.
STORAGES = (*BACKENDS, "example")
_MARKS = {"redis": pytest.mark.redis, "mongo": pytest.mark.mongo}


@pytest.fixture(params=[pytest.param(n, marks=_MARKS.get(n, ()), id=n) for n in STORAGES])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A storage URL of each kind in turn, in a namespace of its own, in use for the test
    (``SESSIONKIT = {"storage": url}``) and emptied after it."""
    url = url_for(request, request.param, tmp_path)
    with using(url):
        yield url


@contextlib.contextmanager
def using(storage: object, **fields: object) -> Iterator[None]:
    """``SESSIONKIT = {"storage": storage, **fields}`` for the block; the storage's namespace
    is emptied at its end."""
    from django.test import override_settings

    from sessionkit.django import get_store

    with override_settings(SESSIONKIT={"storage": storage, **fields}):
        try:
            yield
        finally:
            get_store().reset()


def url_for(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    """A URL of storage ``kind`` (a backend of ``tests._backends``, or ``example``) with a
    namespace of its own."""
    tag = os.urandom(6).hex()
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/sessions-{tag}.db"
    if kind == "redis":
        base = request.getfixturevalue("redis_url")
        return f"{base}{'&' if '?' in base else '?'}prefix=sk-django-{tag}:"
    if kind == "mongo":
        base = request.getfixturevalue("mongo_url")
        head, _, query = base.partition("?")
        query = "&".join(filter(None, [query, f"collection=django_{tag}"]))
        return f"{head.rstrip('/')}/sessionkit?{query}"
    if kind == "postgres":
        # In the run's own schema, dropped with its tables when the run ends.
        base = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")
        return f"{base}{'&' if '?' in base else '?'}schema={schema}&table=django_{tag}"
    if kind == "mysql":
        from tests._server_mysql import _drop_tables

        base = request.getfixturevalue("mysql_url")
        request.addfinalizer(lambda: _drop_tables(base, {f"django_{tag}"}))
        return f"{base}{'&' if '?' in base else '?'}table=django_{tag}"
    if kind == "example":
        return f"example://?prefix=django-{tag}:"
    raise ValueError(kind)
