"""A real MariaDB (or MySQL) server for the test suite, as a pytest plugin.

The root conftest loads this module (``pytest_plugins``), and tests ask for:

* ``mysql_url`` (session scope): ``SESSIONKIT_TEST_MYSQL_URL`` when set (an external server: a
  CI service, a MySQL to check against); else the MariaDB answering on 127.0.0.1:3306 as root
  without a password, database ``test`` (machines of this project start one; set
  ``SESSIONKIT_TEST_MYSQL_SHARED=0`` to ignore it); else a private ``mariadbd`` started for the
  session from Debian's packages (``mariadb-server``), so nothing depends on a shared server.
  The database is ``test`` on each, which the documentation's samples name too.
* ``open_backend_storage(request)``: a new, empty storage on ``mysql_url`` for one test of
  ``tests/_backends.py``, on a table emptied by an earlier test when there is one (making and
  dropping a table per test is most of such a test's cost); every table is dropped when the
  run ends.
* ``start_mariadb()``: a private server of its own (a :class:`~tests._servers.ServerProcess`
  with ``pause``/``resume``/``kill``/``restart`` on a fixed port) for the tests that freeze,
  kill or reconfigure a server; its data survives ``kill()`` and ``restart()``.

Tests sharing a server must keep to tables unique to their run and drop them afterwards. A
server that cannot be started fails the run loudly: in CI nothing may be skipped in silence.
The checks here speak PyMySQL, imported only when a MySQL test asks for a server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._servers import HOST, ServerProcess, ServerStartError, _launch, _server_url

__all__ = [
    "mysql_answers",
    "mysql_url",
    "open_backend_storage",
    "run_sql",
    "start_mariadb",
]

SHARED_PORT = 3306
DATABASE = "test"
#: Seconds the private server's install step may take (it bootstraps the system tables).
INSTALL_TIMEOUT = 120.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mysql: needs the MySQL/MariaDB test server")


def mysql_answers(url: str, timeout: float = 1.0) -> bool:
    """True when the server at ``url`` accepts a login and ``SELECT 1`` (PyMySQL)."""
    try:
        conn = _connect(url, timeout)
    except Exception:
        return False
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False
    finally:
        conn.close()


def _connect(url: str, timeout: float = 5.0, *, database: bool = True) -> Any:
    """A plain PyMySQL connection to ``mysql://user[:password]@host:port/database``."""
    from urllib.parse import unquote, urlsplit

    import pymysql  # type: ignore[import-untyped, unused-ignore]

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or HOST,
        port=parts.port or SHARED_PORT,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=(unquote(parts.path.lstrip("/")) or None) if database else None,
        connect_timeout=timeout,
        read_timeout=max(timeout, 5.0),
        autocommit=True,
        ssl_disabled=True,
    )


def run_sql(conn: Any, statement: str) -> tuple[tuple[Any, ...], ...]:
    """Run ``statement`` on a PyMySQL connection; its rows (an empty tuple for none)."""
    with conn.cursor() as cursor:
        cursor.execute(statement)
        return tuple(cursor.fetchall())


def _tool(*names: str) -> str:
    for name in names:
        for folder in ("/usr/sbin", "/usr/bin"):
            path = f"{folder}/{name}"
            if os.path.exists(path):
                return path
        found = shutil.which(name)
        if found is not None:
            return found
    raise ServerStartError(
        f"none of {', '.join(names)} found: install Debian's mariadb-server (apt-get install "
        "mariadb-server), or set SESSIONKIT_TEST_MYSQL_URL"
    )


def _install(datadir: Path, tmpdir: Path) -> None:
    """Create a new data directory: the system tables, root without a password (normal
    authentication, so TCP logins work), small InnoDB files. The server it runs for that uses
    ``tmpdir`` too (see ``start_mariadb``): in /tmp, another install starting at the same
    moment deleted its temporary tables ("Can't find file: '/tmp/#sql-temptable-...'")."""
    argv = [
        _tool("mariadb-install-db", "mysql_install_db"),
        "--no-defaults",
        f"--datadir={datadir}",
        f"--tmpdir={tmpdir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--user=root",
        "--skip-name-resolve",
        *_SMALL,
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise ServerStartError(f"{argv[0]} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")


#: Server settings for a throw-away test server: small, quick, and still durable enough that
#: what a statement committed survives ``kill()`` (the log reaches the OS at each commit).
_SMALL = (
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-flush-log-at-trx-commit=2",
    "--innodb-use-native-aio=0",
)


def start_mariadb(*extra: str) -> ServerProcess:
    """Start a private ``mariadbd`` on a free port of 127.0.0.1, with a database ``test``.

    Its data directory lives in the server's private directory, made on the first start and
    reopened by ``restart()`` and after ``kill()``. The server runs as root (``--user=root``),
    which is who runs the tests here. ``extra`` are more server options
    (``"--ssl-cert=..."``).
    """
    binary = _tool("mariadbd", "mysqld")

    def argv(port: int, workdir: Path) -> list[str]:
        datadir = workdir / "data"
        # Its own tmpdir: a server starting up deletes the "#sql" temporary files it finds
        # there, and in /tmp those may be the live temporary tables of another MariaDB (the
        # machine's), whose statements then fail.
        (workdir / "tmp").mkdir(exist_ok=True)
        if not (datadir / "mysql").is_dir():
            _install(datadir, workdir / "tmp")
        return [
            binary, "--no-defaults", f"--datadir={datadir}", f"--tmpdir={workdir / 'tmp'}",
            f"--port={port}",
            f"--bind-address={HOST}", f"--socket={workdir / 'mysqld.sock'}",
            f"--pid-file={workdir / 'mysqld.pid'}", "--user=root", "--skip-log-bin",
            "--skip-name-resolve", "--performance-schema=OFF", "--max-connections=500",
            f"--log-error={workdir / 'error.log'}", *_SMALL, *extra,
        ]  # fmt: skip

    def url(port: int) -> str:
        return f"mysql://root@{HOST}:{port}/{DATABASE}"

    def ready(server: ServerProcess) -> bool:
        try:
            conn = _connect(server.url, 0.5, database=False)
        except Exception:
            return False
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
            return True
        except Exception:
            return False
        finally:
            conn.close()

    return _launch("mariadb", argv, url, ready)


def _shared_mysql() -> str | None:
    if os.environ.get("SESSIONKIT_TEST_MYSQL_SHARED", "1") == "0":
        return None
    url = f"mysql://root@{HOST}:{SHARED_PORT}/{DATABASE}"
    return url if mysql_answers(url) else None


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """URL of a MySQL/MariaDB server and database for the whole test session (see above)."""
    with _server_url("SESSIONKIT_TEST_MYSQL_URL", _shared_mysql, start_mariadb) as url:
        yield url


#: Tables of ``open_backend_storage`` that a finished test emptied, by server URL, for the next
#: test to take; and the tables this process made, dropped when the run ends.
_FREE_TABLES: dict[str, list[str]] = {}
_MADE_TABLES: dict[str, set[str]] = {}


def open_backend_storage(request: pytest.FixtureRequest) -> tuple[Any, Callable[[], None]]:
    """A new, empty ``MySQLStorage`` for the requesting test, and the function to call once
    its ``reset()`` has emptied it at teardown (the table is then handed to the next test).

    A table not known to be empty when the test ends (its reset failed) is dropped.
    """
    from sessionkit_mysql import MySQLStorage

    url: str = request.getfixturevalue("mysql_url")
    made = _MADE_TABLES.get(url)
    if made is None:
        made = _MADE_TABLES[url] = set()
        request.config.add_cleanup(lambda: _drop_tables(url, made))
    free = _FREE_TABLES.setdefault(url, [])
    table = free.pop() if free else f"skb_{uuid.uuid4().hex[:12]}"
    made.add(table)
    storage = MySQLStorage(url, table=table)
    emptied: list[bool] = []

    def release() -> None:  # after the test's teardown: finalizers run last in, first out
        if emptied:
            free.append(table)
        else:
            made.discard(table)
            _drop_tables(url, {table})

    request.addfinalizer(release)
    return storage, lambda: emptied.append(True)


def _drop_tables(url: str, tables: set[str]) -> None:
    if not tables:
        return
    conn = _connect(url)
    try:
        for table in sorted(tables):
            run_sql(conn, f"DROP TABLE IF EXISTS `{table}`")
    finally:
        conn.close()
