"""Opened by URL, a PostgreSQL storage's options are read once, by the core, against
``PostgresOptions``: the storage builds its settings from the URL's body and those."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from psycopg.conninfo import conninfo_to_dict

from sessionkit import ConfigError, open_storage
from sessionkit_postgres import PostgresOptions, PostgresStorage

URL = "postgresql://app:s3cret@db.internal:5433/shop"


@pytest.mark.parametrize(("query", "field"), [("tabel=x", "tabel"), ("sslmod=require", "sslmod")])
def test_a_bad_option_fails_before_the_storage_module_is_imported(query: str, field: str) -> None:
    script = f"""
import json, sys
from sessionkit import ConfigError, open_storage
try:
    open_storage({URL + "?" + query!r})
except ConfigError as exc:
    print(json.dumps([exc.field, str(exc), "sessionkit_postgres._storage" in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    got, message, imported = json.loads(done.stdout)
    assert got == field
    assert "did you mean" in message
    assert not imported


def test_open_storage_and_the_class_read_a_url_alike() -> None:
    query = "?sslmode=require&application_name=web&table=t&pool_min_size=12&ssl=true"
    storage = open_storage(URL + query, statement_timeout="1.5")
    try:
        assert isinstance(storage, PostgresStorage)
        direct = PostgresOptions.from_url(URL + query, {"statement_timeout": "1.5"})
        assert storage.options == direct
        assert (direct.pool_min_size, direct.pool_max_size) == (12, 12)
        params = conninfo_to_dict(direct.conninfo)
        assert (params["sslmode"], params["application_name"]) == ("require", "web")
        assert params["options"] == "-c statement_timeout=1500"
    finally:
        storage.close()


def test_settings_already_read_make_a_storage() -> None:
    settings = PostgresOptions.from_url(URL, {"table": "t"})
    storage = PostgresStorage(settings)
    try:
        assert storage.options is settings
    finally:
        storage.close()
    with pytest.raises(ConfigError) as caught:
        PostgresStorage(settings, table="other")
    assert caught.value.field == "table"
