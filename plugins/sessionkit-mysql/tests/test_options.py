"""Reading a MySQL storage's URL and options: everything checked before any connection.

No server is needed here: a storage connects on its first call, never when it is made.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from sessionkit import ConfigError, StorageError, open_storage
from sessionkit_mysql import MySQLOptions, MySQLStorage
from sessionkit_mysql._options import DEFAULT_TABLE, TIMEOUT_DEFAULTS

#: A port nothing answers on: these storages are never asked anything.
NOWHERE = "mysql://app:secret@127.0.0.1:1/appdb"


def options(url: str = NOWHERE, **given: object) -> MySQLOptions:
    return MySQLOptions.from_url(url, given)


def refused(url: str = NOWHERE, **given: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        options(url, **given)
    return caught.value


def test_a_full_url_is_read() -> None:
    got = options(
        "mariadb://web%40app:p%40ss%3Aw0rd@db.example.com:3307/sessions_db"
        "?table=web_sessions&read_timeout=1.5&max_connections=4&purge_batch=99"
    )
    assert (got.user, got.password, got.host, got.port) == (
        "web@app",
        "p@ss:w0rd",
        "db.example.com",
        3307,
    )
    assert (got.database, got.table, got.scheme) == ("sessions_db", "web_sessions", "mariadb")
    assert (got.read_timeout, got.max_connections, got.purge_batch) == (1.5, 4, 99)
    assert got.ssl_context is None and got.unix_socket is None


def test_defaults() -> None:
    got = options("mysql://app@localhost/appdb")
    assert (got.port, got.table, got.password, got.max_connections) == (3306, DEFAULT_TABLE, "", 16)
    assert {name: getattr(got, name) for name in TIMEOUT_DEFAULTS} == dict(TIMEOUT_DEFAULTS)
    assert got.lock_wait_seconds == 3


def test_an_ipv6_host_is_read() -> None:
    assert options("mysql://app@[::1]:3306/appdb").host == "::1"


def test_keywords_win_over_the_query() -> None:
    got = options(f"{NOWHERE}?table=from_url&read_timeout=9", table="from_kw", read_timeout=0.25)
    assert (got.table, got.read_timeout) == ("from_kw", 0.25)


def test_user_and_password_may_come_as_options() -> None:
    got = options("mysql://db.internal/appdb", user="app", password="from-a-secret-store")
    assert (got.user, got.password) == ("app", "from-a-secret-store")
    assert options(NOWHERE, password="").password == ""


def test_a_unix_socket_needs_no_host() -> None:
    got = options("mysql://app@/appdb?unix_socket=/run/mysqld/mysqld.sock")
    assert (got.host, got.unix_socket) == (None, "/run/mysqld/mysqld.sock")
    assert got.address == "app@unix:/run/mysqld/mysqld.sock/appdb"


def test_no_server_named_is_refused() -> None:
    assert "name the server" in str(refused("mysql:///appdb"))
    assert "name the server" in str(refused("mysql://app@/appdb"))


@pytest.mark.parametrize(
    "url",
    ["mysql://app@host", "mysql://app@host/", "mysql://app@host/a/b", "mysql://h/" + "d" * 65],
)
def test_a_missing_or_unusable_database_is_refused(url: str) -> None:
    assert refused(url).field == "storage"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@host/db",
        "mysql:app@host/db",
        "mysql+pymysql://app@host/db",
        "mysql://h:x/db",
        "mysql://h:0/db",
        "mysql://h:65536/db",
    ],
)
def test_urls_of_another_shape_are_refused(url: str) -> None:
    refused(url)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("tabel", "table"),
        ("read_timout", "read_timeout"),
        ("connection_timeout", "connect_timeout"),
        ("max_connection", "max_connections"),
        ("unix_sock", "unix_socket"),
    ],
)
def test_an_unknown_option_is_refused_naming_the_nearest(name: str, suggestion: str) -> None:
    error = refused(**{name: "1"})
    assert error.field == name
    assert f"did you mean {suggestion!r}" in str(error)
    assert refused(f"{NOWHERE}?{name}=1").field == name  # the same from the URL


def test_an_unknown_option_with_no_near_name_lists_the_known_ones() -> None:
    assert "known:" in str(refused(sk_no_such_option="1"))


@pytest.mark.parametrize(
    "name",
    ["charset", "collation", "autocommit", "init_command", "sql_mode", "client_flag", "db", "port"],
)
def test_driver_options_the_storage_fixes_are_refused_with_the_reason(name: str) -> None:
    error = refused(**{name: "1"})
    assert error.field == name
    assert "unknown" not in str(error)


def test_an_option_given_twice_in_the_url_is_refused() -> None:
    assert refused(f"{NOWHERE}?table=a&table=b").field == "table"


@pytest.mark.parametrize("name", list(TIMEOUT_DEFAULTS))
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e9", "soon", True, 0, -2.5, None])
def test_timeouts_must_be_positive_and_at_most_a_day(name: str, value: object) -> None:
    assert refused(**{name: value}).field == name


def test_timeouts_take_fractions_as_text_or_numbers() -> None:
    got = options(f"{NOWHERE}?connect_timeout=0.25", pool_timeout=1, write_timeout=86400)
    assert (got.connect_timeout, got.pool_timeout, got.write_timeout) == (0.25, 1.0, 86400.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_connections", "0"),
        ("max_connections", "10001"),
        ("max_connections", "2.5"),
        ("max_connections", True),
        ("purge_batch", "0"),
        ("purge_batch", 100_001),
        ("purge_batch", "lots"),
    ],
)
def test_counts_are_checked(name: str, value: object) -> None:
    assert refused(**{name: value}).field == name


@pytest.mark.parametrize(
    "table", ["no;such", "1sessions", "a-b", "`x`", "sess ions", "", "t" * 65, "ключ", 5]
)
def test_the_table_must_be_a_plain_identifier(table: object) -> None:
    assert refused(table=table).field == "table"


def test_a_64_character_table_name_is_accepted() -> None:
    assert options(table="t" * 64).table == "t" * 64


def test_no_message_quotes_the_password() -> None:
    for url in (
        "mysql://app:s3cr3t-pw@127.0.0.1:99999/appdb",
        "mysql://app:s3cr3t-pw@127.0.0.1:1",
        "mysql://app:s3cr3t-pw@[::1/appdb",
        "mysql://app:s3cr3t-pw@127.0.0.1:1/appdb?tabel=x",
    ):
        assert "s3cr3t-pw" not in str(refused(url))
    storage = MySQLStorage("mysql://app:s3cr3t-pw@127.0.0.1:1/appdb")
    assert "s3cr3t-pw" not in repr(storage)
    assert "s3cr3t-pw" not in repr(storage.options)
    storage.close()


# -- TLS ------------------------------------------------------------------------------------------


def test_no_tls_unless_asked() -> None:
    assert options().ssl_context is None
    assert options(ssl="false").ssl_context is None


def test_ssl_true_verifies_the_server_by_default() -> None:
    context = options(f"{NOWHERE}?ssl=true").ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_verification_can_be_loosened() -> None:
    context = options(ssl="on", ssl_verify_identity="false").ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    context = options(ssl=True, ssl_verify_cert=False).ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    assert refused(ssl_verify_cert="false", ssl_verify_identity="true").field == (
        "ssl_verify_identity"
    )


def test_a_context_of_your_own_is_used_as_it_is() -> None:
    mine = ssl.create_default_context()
    assert options(ssl=mine).ssl_context is mine
    assert refused(ssl=mine, ssl_ca="/etc/ssl/certs/ca-certificates.crt").field == "ssl_ca"


def test_missing_tls_files_are_refused_naming_the_option(tmp_path: Path) -> None:
    assert refused(ssl_ca=str(tmp_path / "absent.pem")).field == "ssl_ca"
    assert refused(ssl_cert=str(tmp_path / "absent.pem")).field == "ssl_cert"
    assert refused(ssl_key=str(tmp_path / "key.pem")).field == "ssl_key"  # without ssl_cert
    assert refused(ssl="maybe").field == "ssl"
    assert refused(ssl="false", ssl_ca="/x.pem").field == "ssl_ca"


# -- opening --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["mysql", "mariadb", "MySQL"])
def test_open_storage_finds_the_plugin_by_either_scheme(scheme: str) -> None:
    storage = open_storage(f"{scheme}://app@127.0.0.1:1/appdb?table=t1", read_timeout=2)
    try:
        assert isinstance(storage, MySQLStorage)
        assert (storage.table, storage.options.read_timeout) == ("t1", 2.0)
    finally:
        storage.close()


def test_making_a_storage_connects_to_nothing() -> None:
    """An application starts while its database is down: the storage is made, and its calls
    fail (503) until the server is back."""
    storage = MySQLStorage("mysql://app@127.0.0.1:1/appdb", connect_timeout=0.5)
    try:
        with pytest.raises(StorageError) as caught:
            storage.get("k")
        assert caught.value.__cause__ is not None
        assert "app@127.0.0.1:1/appdb" in str(caught.value)
    finally:
        storage.close()


def test_a_closed_storage_refuses_calls() -> None:
    storage = MySQLStorage(NOWHERE)
    storage.close()
    storage.close()
    with pytest.raises(StorageError, match="closed"):
        storage.get("k")


def test_listing_the_backends_imports_no_driver() -> None:
    """The entry point describes the backend; PyMySQL is imported when a storage is made, and
    aiomysql only when a storage is first used asynchronously."""
    code = (
        "import sys\n"
        "from sessionkit import available_backends\n"
        "names = {b.backend.name for b in available_backends()}\n"
        "assert 'mysql' in names, names\n"
        "assert 'pymysql' not in sys.modules and 'aiomysql' not in sys.modules\n"
        "from sessionkit import open_storage\n"
        "open_storage('mysql://app@127.0.0.1:1/appdb').close()\n"
        "assert 'pymysql' in sys.modules and 'aiomysql' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
