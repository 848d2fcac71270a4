"""URLs and options: what passes through to libpq, what the storage takes, what is refused.

None of these connects: a storage opens no connection until its first call.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from psycopg.conninfo import conninfo_to_dict

from sessionkit import ConfigError, open_storage
from sessionkit_postgres import PostgresOptions, PostgresStorage
from sessionkit_postgres._sql import index_name, lock_id

URL = "postgresql://app:s3cret@db.internal:5433/shop"


def conninfo(url: str = URL, **options: object) -> dict[str, str]:
    return {
        k: str(v)
        for k, v in conninfo_to_dict(PostgresOptions.from_url(url, options).conninfo).items()
    }


def refused(url: str, **options: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        PostgresOptions.from_url(url, options)
    assert "s3cret" not in str(caught.value), "a message must never show the password"
    return caught.value


def test_the_url_reaches_libpq_with_the_storage_defaults() -> None:
    params = conninfo()
    assert params["user"] == "app"
    assert params["password"] == "s3cret"
    assert params["host"] == "db.internal"
    assert params["port"] == "5433"
    assert params["dbname"] == "shop"
    assert params["connect_timeout"] == "2"  # libpq's own default waits for ever
    assert params["fallback_application_name"] == "sessionkit"
    assert params["options"] == "-c statement_timeout=2500"


def test_both_schemes_open_a_postgres_storage() -> None:
    for scheme in ("postgresql", "postgres", "POSTGRESQL"):
        storage = open_storage(f"{scheme}://h/db?table=mine")
        try:
            assert isinstance(storage, PostgresStorage)
            assert storage.table == "mine"
        finally:
            storage.close()


def test_libpq_parameters_pass_through_and_own_options_are_taken_off() -> None:
    url = (
        f"{URL}?sslmode=verify-full&application_name=shop-web&target_session_attrs=read-write"
        "&keepalives_idle=30&table=web_sessions&schema=app&pool_max_size=4&pool_timeout=1.5"
        "&statement_timeout=0.75&purge_batch=50&prepare_threshold=none&connect_timeout=7"
    )
    options = PostgresOptions.from_url(url, {})
    params = conninfo_to_dict(options.conninfo)
    assert params["sslmode"] == "verify-full"
    assert params["application_name"] == "shop-web"
    assert params["target_session_attrs"] == "read-write"
    assert params["keepalives_idle"] == "30"
    assert params["connect_timeout"] == "7"
    assert params["options"] == "-c statement_timeout=750"
    for own in ("table", "schema", "pool_max_size", "pool_timeout", "purge_batch"):
        assert own not in params
    assert (options.table, options.schema) == ("web_sessions", "app")
    assert (options.pool_min_size, options.pool_max_size) == (0, 4)
    assert (options.pool_timeout, options.statement_timeout) == (1.5, 0.75)
    assert (options.purge_batch, options.prepare_threshold) == (50, None)


def test_keywords_win_over_the_query_and_take_values() -> None:
    options = PostgresOptions.from_url(
        f"{URL}?table=from_url&sslmode=disable",
        {"table": "from_keyword", "sslmode": "require", "pool_max_size": 3, "statement_timeout": 1},
    )
    assert options.table == "from_keyword"
    assert options.pool_max_size == 3
    assert options.statement_timeout == 1.0
    assert conninfo_to_dict(options.conninfo)["sslmode"] == "require"


def test_a_users_options_parameter_is_kept_after_the_statement_timeout() -> None:
    # Later -c settings win in PostgreSQL: the user's own statement_timeout there prevails.
    params = conninfo(f"{URL}?options=-c%20search_path%3Dshop%20-c%20statement_timeout%3D9s")
    assert (
        params["options"] == "-c statement_timeout=2500 -c search_path=shop -c statement_timeout=9s"
    )


def test_ssl_true_means_sslmode_require() -> None:
    assert conninfo(f"{URL}?ssl=true")["sslmode"] == "require"
    assert conninfo(f"{URL}?ssl=true&sslmode=verify-ca")["sslmode"] == "verify-ca"
    assert refused(f"{URL}?ssl=yes").field == "ssl"


def test_multi_host_urls_pass_through() -> None:
    params = conninfo("postgresql://app@db1:5432,db2:5433/shop?target_session_attrs=primary")
    assert params["host"] == "db1,db2"
    assert params["port"] == "5432,5433"


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("tabel=x", "tabel", "did you mean 'table'"),
        ("sslmod=require", "sslmod", "did you mean 'sslmode'"),
        ("statment_timeout=1", "statment_timeout", "did you mean 'statement_timeout'"),
        ("pool_max=3", "pool_max", "did you mean 'pool_max_size'"),
        ("zzz=1", "zzz", "unknown option"),
        ("table=", "table", "non-empty"),
        ("table=" + "x" * 64, "table", "63 bytes"),
        ("table=" + "é" * 32, "table", "63 bytes"),  # 64 bytes in UTF-8
        ("table=a%00b", "table", "control"),
        ("table=a%0Ab", "table", "control"),
        ("schema=", "schema", "non-empty"),
        ("statement_timeout=0", "statement_timeout", "positive"),
        ("statement_timeout=nan", "statement_timeout", "positive"),
        ("statement_timeout=1e9", "statement_timeout", "at most"),
        ("statement_timeout=soon", "statement_timeout", "number of seconds"),
        ("pool_timeout=-1", "pool_timeout", "positive"),
        ("pool_min_size=-1", "pool_min_size", "whole number"),
        ("pool_max_size=0", "pool_max_size", "whole number"),
        ("pool_max_size=2.5", "pool_max_size", "whole number"),
        ("pool_min_size=5&pool_max_size=2", "pool_max_size", "at least pool_min_size"),
        ("purge_batch=0", "purge_batch", "whole number"),
        ("prepare_threshold=-1", "prepare_threshold", "whole number"),
        ("connect_timeout=0", "connect_timeout", "whole number of seconds"),
        ("connect_timeout=1.5", "connect_timeout", "whole number of seconds"),
        ("sslmode=requir", "sslmode", "verify-full"),
        ("target_session_attrs=primary-only", "target_session_attrs", "read-write"),
        ("replication=database", "replication", "replication"),
        ("table=a&table=b", "table", "more than once"),
    ],
)
def test_bad_options_are_refused_naming_the_option(query: str, field: str, words: str) -> None:
    error = refused(f"{URL}?{query}")
    assert error.field == field
    assert words in str(error)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cret@[db.internal/shop",  # an unclosed IPv6 bracket
        "postgresql://app:s3cret@db.internal:99999/shop",
        "postgresql://app:s3cret@db.internal:port/shop",
        "postgresql:app:s3cret@db.internal/shop",  # no //
        "mysql://app:s3cret@db.internal/shop",
    ],
)
def test_unusable_urls_are_refused_without_showing_the_password(url: str) -> None:
    refused(url)


def test_a_keyword_that_is_no_text_is_refused() -> None:
    assert refused(URL, sslmode=["require"]).field == "sslmode"
    assert refused(URL, pool_max_size=True).field == "pool_max_size"


def test_the_repr_shows_where_but_never_the_password() -> None:
    storage = PostgresStorage(f"{URL}?table=web")
    try:
        assert "s3cret" not in repr(storage)
        assert "s3cret" not in repr(storage.options)
        assert "app@db.internal:5433/shop" in repr(storage)
        assert "'web'" in repr(storage)
    finally:
        storage.close()


def test_odd_identifiers_are_accepted_as_they_are() -> None:
    for name in ('we"ird', "'; DROP TABLE x; --", "Sessions", "сессии", "a.b", "x" * 63):
        assert PostgresOptions.from_url(URL, {"table": name, "schema": name}).table == name


def test_index_names_stay_within_63_bytes_and_apart() -> None:
    assert index_name("sessions") == "sessions_expires_at"
    long_a, long_b = "a" * 62 + "1", "a" * 62 + "2"
    assert len(index_name(long_a).encode()) <= 63
    assert index_name(long_a) != index_name(long_b)
    unicode = "é" * 31
    assert len(index_name(unicode).encode()) <= 63
    assert index_name(unicode).startswith("é")


def test_lock_ids_are_signed_64_bit_and_per_table() -> None:
    ids = {lock_id(None, "a"), lock_id("s", "a"), lock_id(None, "b"), lock_id("a", "")}
    assert len(ids) == 4
    assert all(-(2**63) <= i < 2**63 for i in ids)


def test_without_libpq_the_error_says_what_to_install() -> None:
    """psycopg that cannot load libpq fails to import: the storage says what to install."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None  # as if importing psycopg failed
        from sessionkit import open_storage
        try:
            open_storage("postgresql://h/db")
        except ImportError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert 'pip install "psycopg[binary]"' in done.stdout
    assert "libpq" in done.stdout


def test_listing_the_backends_imports_no_driver() -> None:
    code = textwrap.dedent(
        """
        import sys
        from sessionkit import available_backends
        names = {b.backend.name for b in available_backends()}
        assert "postgres" in names, names
        print("psycopg" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
