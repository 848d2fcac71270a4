"""The MySQL storage against the shared conformance suite (the server's clock, every ability)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sessionkit import Storage
from sessionkit.testing import StorageConformance, closed_port
from sessionkit_mysql import MySQLStorage
from tests._server_mysql import _connect

pytestmark = pytest.mark.mysql


class TestMySQLStorage(StorageConformance):
    # Expiry is judged by the server's clock, in SQL: the suite waits in real time.
    clock_injectable = False
    conditional = True
    atomic = True
    creating = True
    processes_share_storage = True
    bad_urls = (
        "mysql://root@127.0.0.1:1/test?tabel=sessions",  # misspelt
        "mysql://root@127.0.0.1:1/test?table=no;such",  # not an identifier
        "mysql://root@127.0.0.1:1/test?read_timeout=-1",
        "mysql://root@127.0.0.1:1/test?max_connections=0",
        "mysql://root@127.0.0.1:1/test?charset=latin1",  # fixed by the storage
        "mysql://root@127.0.0.1:1/?table=sessions",  # no database
        "mariadb://root@127.0.0.1:99999/test",  # no such port
        "mariadb://root@127.0.0.1:1/test?ssl_ca=/no/such/ca.pem",
    )

    @pytest.fixture(autouse=True)
    def _server(self, mysql_url: str) -> None:
        self.url = mysql_url

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is None
        return MySQLStorage(self.url, table=namespace)

    def make_broken_storage(self, namespace: str) -> Storage:
        return MySQLStorage(f"mysql://root@127.0.0.1:{closed_port()}/test", table=namespace)

    def storage_url(self, namespace: str) -> str:
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}table={namespace}"

    def drop_namespace(self, namespace: str) -> None:
        conn = _connect(self.url)
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS `{namespace}`")
        finally:
            conn.close()
