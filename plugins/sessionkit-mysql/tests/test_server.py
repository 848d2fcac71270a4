"""The MySQL storage against a server in trouble, or configured unlike the defaults.

Everything here runs on a private ``mariadbd`` of this module (``start_mariadb()``), never on a
shared server: the tests freeze it (``SIGSTOP``: its sockets accept, nothing answers), kill it,
restart it, turn it read-only and change its time zone. Each fault must end a call in a
:class:`~sessionkit.StorageError` within its documented bound plus a second of slack, and the
storage must recover by itself when the server is back. Most tests use short timeouts to stay
fast; one runs on the defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest

from sessionkit import StorageError
from sessionkit_mysql import MySQLStorage
from tests._server_mysql import _connect, run_sql, start_mariadb
from tests._servers import HOST, ServerProcess

pytestmark = pytest.mark.mysql

HOUR = timedelta(hours=1)
SHORT = {"connect_timeout": 0.5, "read_timeout": 0.5, "write_timeout": 0.5, "pool_timeout": 0.3}
SLACK = 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    server = start_mariadb()
    yield server
    server.close()


@pytest.fixture
def root(server: ServerProcess) -> Iterator[Any]:
    """The private server's root, for setting it up behind the storage's back."""
    conn = _connect(server.url)
    yield conn
    with contextlib.suppress(Exception):
        conn.close()


def _fails_within(call: Callable[[], Any]) -> float:
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        call()
    assert caught.value.__cause__ is not None
    return time.monotonic() - began


def _afails_within(make: Callable[[], Any]) -> float:
    async def run() -> float:
        began = time.monotonic()
        with pytest.raises(StorageError) as caught:
            await make()
        assert caught.value.__cause__ is not None
        return time.monotonic() - began

    return asyncio.run(run())


class _Silent:
    """A port that accepts connections (the kernel's backlog) and never says a word: the
    handshake's greeting never comes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.url = f"mysql://root@{HOST}:{self.sock.getsockname()[1]}/test"

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# -- a frozen server -------------------------------------------------------------------------


def test_a_frozen_server_fails_a_call_within_read_timeout(server: ServerProcess) -> None:
    """The storage's connection is open and idle; the server stops answering."""
    storage = MySQLStorage(server.url, table="frozen", **SHORT)
    try:
        storage.set("k", b"v", HOUR)
        with server.frozen():
            assert _fails_within(lambda: storage.get("k")) < 0.5 + SLACK
            assert _fails_within(lambda: storage.set("k", b"w", HOUR)) < 0.5 + SLACK
        # Thawed: the connections that timed out were dropped; a new one works.
        assert storage.get("k") == b"v"
    finally:
        storage.close()


def test_an_async_call_on_a_frozen_server_fails_within_read_timeout(
    server: ServerProcess,
) -> None:
    storage = MySQLStorage(server.url, table="frozen", **SHORT)

    async def run() -> list[float]:
        await storage.aset("k", b"v", HOUR)  # an open, idle connection of this loop
        took = []
        with server.frozen():
            for call in (lambda: storage.aget("k"), lambda: storage.atake("k")):
                began = time.monotonic()
                with pytest.raises(StorageError) as caught:
                    await call()
                assert caught.value.__cause__ is not None
                took.append(time.monotonic() - began)
        assert await storage.aget("k") == b"v"  # thawed: a new connection
        await storage.aclose()
        return took

    try:
        assert max(asyncio.run(run())) < 0.5 + SLACK
    finally:
        storage.close()


def test_a_server_that_never_greets_fails_a_new_connection() -> None:
    """A server frozen before the storage connected: TCP connects (the kernel answers), the
    handshake never comes. Sync: ``read_timeout``; async: ``connect_timeout + read_timeout``."""
    with _Silent() as silent:
        storage = MySQLStorage(silent.url, **SHORT)
        try:
            assert _fails_within(lambda: storage.get("k")) < 0.5 + SLACK
            assert _afails_within(lambda: storage.aget("k")) < 0.5 + 0.5 + SLACK
        finally:
            storage.close()


def test_a_frozen_server_on_the_default_timeouts(server: ServerProcess) -> None:
    """The documented bound with nothing configured: ``read_timeout``, 3 s, for a call on an
    open connection, sync and async at once."""
    storage = MySQLStorage(server.url, table="frozen")
    took: dict[str, float] = {}

    def sync_call() -> None:
        took["sync"] = _fails_within(lambda: storage.get("k"))

    async def run() -> None:
        await storage.aset("k", b"v", HOUR)
        storage.set("k", b"v", HOUR)
        with server.frozen():
            worker = threading.Thread(target=sync_call)
            worker.start()
            began = time.monotonic()
            with pytest.raises(StorageError, match="read_timeout"):
                await storage.aget("k")
            took["async"] = time.monotonic() - began
            await asyncio.to_thread(worker.join)
        await storage.aclose()

    try:
        asyncio.run(run())
    finally:
        storage.close()
    assert set(took) == {"sync", "async"}
    assert all(2.9 < seconds < 3.0 + SLACK for seconds in took.values()), took


def test_a_frozen_server_under_load_fails_every_call_within_the_bound(
    server: ServerProcess,
) -> None:
    """100 calls in flight over 4 connections: 4 wait ``read_timeout`` for a reply, the others
    ``pool_timeout`` for a connection; none longer than both together."""
    storage = MySQLStorage(server.url, table="frozen", max_connections=4, **SHORT)

    async def run() -> list[tuple[bool, float]]:
        await asyncio.gather(*(storage.aset(f"k{n}", b"v", HOUR) for n in range(8)))

        async def one(n: int) -> tuple[bool, float]:
            began = time.monotonic()
            try:
                await storage.aget(f"k{n % 8}")
            except StorageError:
                return False, time.monotonic() - began
            return True, time.monotonic() - began

        with server.frozen():
            results = await asyncio.gather(*(one(n) for n in range(100)))
        await storage.aclose()
        return results

    try:
        results = asyncio.run(run())
    finally:
        storage.close()
    assert not any(ok for ok, _ in results)
    assert max(took for _, took in results) < 0.3 + 0.5 + SLACK


# -- a killed, a restarted server ---------------------------------------------------------------


def test_a_killed_server_fails_calls_at_once_and_they_recover_when_it_is_back(
    server: ServerProcess,
) -> None:
    storage = MySQLStorage(server.url, table="restarts", **SHORT)

    async def use(value: bytes) -> bytes | None:
        await storage.aset("a", value, HOUR)
        return await storage.aget("a")

    async def down() -> None:
        with pytest.raises(StorageError):
            await storage.aget("a")

    try:
        storage.set("k", b"before", HOUR)
        assert asyncio.run(use(b"before")) == b"before"
        server.kill()
        try:
            assert _fails_within(lambda: storage.get("k")) < SLACK
            began = time.monotonic()
            asyncio.run(down())
            assert time.monotonic() - began < SLACK
        finally:
            server.start()
        # The first call after the restart succeeds: dead idle connections are never used.
        assert storage.get("k") == b"before"  # committed before the kill: still there
        storage.set("k", b"after", HOUR)
        assert storage.get("k") == b"after"
        assert asyncio.run(use(b"after")) == b"after"
    finally:
        storage.close()


def test_a_restarted_server_costs_no_failed_call(server: ServerProcess) -> None:
    """Every idle connection, sync and async, dies with the restart; none is handed out."""
    storage = MySQLStorage(server.url, table="restarts", **SHORT)

    async def around_restart() -> list[bytes | None]:
        await asyncio.gather(*(storage.aset(f"a{n}", b"v", HOUR) for n in range(4)))
        await asyncio.to_thread(server.restart)
        values = await asyncio.gather(*(storage.aget(f"a{n}") for n in range(4)))
        await storage.aclose()
        return values

    try:
        with ThreadPool(4) as pool:
            pool(lambda n: storage.set(f"s{n}", b"v", HOUR))  # four idle connections
        server.restart()
        with ThreadPool(4) as pool:
            assert pool(lambda n: storage.get(f"s{n}")) == [b"v"] * 4
        assert asyncio.run(around_restart()) == [b"v"] * 4
    finally:
        storage.close()


class ThreadPool:
    """Run a call for 0..n-1 in n threads at once; return the results in order."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> Callable[[Callable[[int], Any]], list[Any]]:
        def run(call: Callable[[int], Any]) -> list[Any]:
            results: list[Any] = [None] * self.n
            barrier = threading.Barrier(self.n)

            def work(i: int) -> None:
                barrier.wait(10)
                results[i] = call(i)

            threads = [threading.Thread(target=work, args=(i,)) for i in range(self.n)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return results

        return run

    def __exit__(self, *exc: object) -> None:
        return None


# -- servers configured otherwise ----------------------------------------------------------------


@contextlib.contextmanager
def _user(root: Any, name: str, password: str, grants: list[str]) -> Iterator[None]:
    run_sql(root, f"DROP USER IF EXISTS '{name}'@'%'")
    run_sql(root, f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'")
    for grant in grants:
        run_sql(root, f"GRANT {grant} TO '{name}'@'%'")
    try:
        yield
    finally:
        run_sql(root, f"DROP USER IF EXISTS '{name}'@'%'")


def _as(server: ServerProcess, user: str, password: str) -> str:
    from urllib.parse import quote

    return f"mysql://{quote(user)}:{quote(password)}@{HOST}:{server.port}/test"


def test_a_read_only_server_fails_writes_and_serves_reads(server: ServerProcess, root: Any) -> None:
    """A replica, or a primary switched read-only for maintenance: each write is a
    ``StorageError`` (the app answers 503, nobody is logged out), reads go on, and a storage
    opened meanwhile reads the existing table although it cannot run ``CREATE TABLE``."""
    with _user(root, "sk_app", "app-pw", ["ALL ON test.* "]):
        url = _as(server, "sk_app", "app-pw")
        storage = MySQLStorage(url, table="readonly")
        storage.set("k", b"v", HOUR)
        run_sql(root, "SET GLOBAL read_only = ON")
        try:
            with pytest.raises(StorageError) as caught:
                storage.set("k", b"w", HOUR)
            assert isinstance(caught.value.__cause__, pymysql.err.MySQLError)
            assert caught.value.__cause__.args[0] == 1290  # --read-only
            with pytest.raises(StorageError):
                asyncio.run(storage.acreate("new", b"v", HOUR))
            assert storage.get("k") == b"v"
            later = MySQLStorage(url, table="readonly")
            try:
                assert later.get("k") == b"v"
                assert asyncio.run(later.aget("k")) == b"v"
            finally:
                later.close()
        finally:
            run_sql(root, "SET GLOBAL read_only = OFF")
        storage.set("k", b"w", HOUR)  # writable again, on the same connections
        assert storage.get("k") == b"w"
        storage.close()


def test_a_user_without_create_works_on_a_table_made_beforehand(
    server: ServerProcess, root: Any
) -> None:
    made = MySQLStorage(server.url, table="premade")
    made.reset()  # made by root
    made.close()
    with _user(root, "sk_dml", "dml-pw", ["SELECT, INSERT, UPDATE, DELETE ON test.*"]):
        storage = MySQLStorage(_as(server, "sk_dml", "dml-pw"), table="premade")
        try:
            storage.set("k", b"v", HOUR)
            assert asyncio.run(storage.aget("k")) == b"v"
        finally:
            storage.close()
        missing = MySQLStorage(_as(server, "sk_dml", "dml-pw"), table="never_made")
        try:
            with pytest.raises(StorageError, match="CREATE command denied") as caught:
                missing.get("k")
            assert caught.value.__cause__ is not None
        finally:
            missing.close()


def test_a_utf8_password_logs_in_from_both_clients(server: ServerProcess, root: Any) -> None:
    """Both clients would send a password as Latin-1, which has no Cyrillic."""
    with _user(root, "sk_utf8", "пароль-ключ-🔑", ["ALL ON test.*"]):
        storage = MySQLStorage(_as(server, "sk_utf8", "пароль-ключ-🔑"), table="utf8")
        try:
            storage.set("k", b"v", HOUR)
            assert asyncio.run(storage.aget("k")) == b"v"
        finally:
            storage.close()


def test_time_zones_do_not_move_expiry(server: ServerProcess, root: Any) -> None:
    """Each connection has the time zone the server gives it (``time_zone``, which an
    application may set too). Expiry is written and judged with ``UTC_TIMESTAMP``, so a
    session written from a connection 10 hours ahead lives its hour when read from one 10
    hours behind, and the other way round. With ``NOW()`` the first would live 21 hours and
    the second be expired at once."""
    try:
        run_sql(root, "SET GLOBAL time_zone = '+10:00'")
        east = MySQLStorage(server.url, table="zones")
        east.set("from_east", b"e", HOUR)
        run_sql(root, "SET GLOBAL time_zone = '-10:00'")
        west = MySQLStorage(server.url, table="zones")
        west.set("from_west", b"w", HOUR)
        assert (west.get("from_east"), east.get("from_west")) == (b"e", b"w")
        assert asyncio.run(east.aget("from_west")) == b"w"
        stored = run_sql(
            root,
            "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), `expires_at`) FROM `zones` ORDER BY `k`",
        )
        assert all(3590 <= left <= 3600 for (left,) in stored), stored
        east.close()
        west.close()
    finally:
        run_sql(root, "SET GLOBAL time_zone = 'SYSTEM'")


# -- TLS -------------------------------------------------------------------------------------------


def _certificates(folder: Path) -> dict[str, Path]:
    """A CA, and a server certificate it signed for 127.0.0.1 (openssl's command line)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl's command line is not installed (Debian: openssl)")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key",
        "-out", "ca.pem", "-subj", "/CN=sessionkit test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    run(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
    )
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "server.ext",
    )  # fmt: skip
    return {name: folder / f"{name}.pem" for name in ("ca", "server")} | {
        "key": folder / "server.key"
    }


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    files = _certificates(tmp_path_factory.mktemp("tls"))
    server = start_mariadb(
        f"--ssl-ca={files['ca']}", f"--ssl-cert={files['server']}", f"--ssl-key={files['key']}"
    )
    yield server, files["ca"]
    server.close()


def _cipher(storage: MySQLStorage) -> tuple[str, str]:
    """The TLS cipher of a sync and of an async connection of ``storage`` ("" for none)."""
    query = "SHOW SESSION STATUS LIKE 'Ssl_cipher'"

    async def on_async() -> str:
        ((_, cipher),) = await storage._aexecute("test", query, rows=True)
        await storage.aclose()
        return str(cipher)

    ((_, cipher),) = storage._execute("test", query, rows=True)
    return str(cipher), asyncio.run(on_async())


def test_tls_verified_against_a_ca_of_your_own(tls_server: tuple[ServerProcess, Path]) -> None:
    server, ca = tls_server
    storage = MySQLStorage(server.url, table="tls", ssl_ca=str(ca))
    try:
        storage.set("k", b"v", HOUR)
        sync_cipher, async_cipher = _cipher(storage)
        assert sync_cipher and async_cipher, "both clients must speak TLS"
    finally:
        storage.close()
    plain = MySQLStorage(server.url, table="tls")  # TLS only when asked
    try:
        assert _cipher(plain) == ("", "")
    finally:
        plain.close()


def test_tls_refuses_a_certificate_it_cannot_verify(tls_server: tuple[ServerProcess, Path]) -> None:
    server, _ = tls_server
    storage = MySQLStorage(server.url, table="tls", ssl="true", **SHORT)  # the system's CAs
    try:
        _fails_within(lambda: storage.get("k"))
        _afails_within(lambda: storage.aget("k"))
    finally:
        storage.close()
    unverified = MySQLStorage(server.url, table="tls", ssl="true", ssl_verify_cert="false")
    try:
        assert unverified.get("nothing") is None
        assert all(_cipher(unverified))
    finally:
        unverified.close()


def test_tls_asked_of_a_server_without_it_is_refused_by_both_clients(
    server: ServerProcess,
) -> None:
    """A server that does not offer TLS (or someone in between who removed the offer): no
    session travels in plain text. aiomysql alone would go on without TLS."""
    storage = MySQLStorage(server.url, table="tls", ssl="true", ssl_verify_cert="false", **SHORT)
    try:
        with pytest.raises(StorageError, match=r"TLS|SSL"):
            storage.get("k")
        with pytest.raises(StorageError, match=r"TLS|SSL"):
            asyncio.run(storage.aget("k"))
    finally:
        storage.close()
