"""Opened by URL, a MySQL storage's options are read once, by the core, against
``MySQLURLOptions``: the storage builds its settings from the URL's body and those."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sessionkit import ConfigError, open_storage
from sessionkit_mysql import MySQLOptions, MySQLStorage

NOWHERE = "mysql://app:secret@127.0.0.1:1/appdb"


@pytest.mark.parametrize(("query", "field"), [("tabel=x", "tabel"), ("charset=latin1", "charset")])
def test_a_bad_option_fails_before_the_storage_module_is_imported(query: str, field: str) -> None:
    script = f"""
import json, sys
from sessionkit import ConfigError, open_storage
try:
    open_storage({NOWHERE + "?" + query!r})
except ConfigError as exc:
    print(json.dumps([exc.field, "sessionkit_mysql._storage" in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == [field, False]


def test_open_storage_and_the_class_read_a_url_alike() -> None:
    query = "?table=web&read_timeout=1.5&max_connections=4&ssl_verify_cert=false"
    storage = open_storage(NOWHERE + query, user="other", purge_batch="9")
    try:
        assert isinstance(storage, MySQLStorage)
        direct = MySQLOptions.from_url(NOWHERE + query, {"user": "other", "purge_batch": "9"})
        mine, theirs = storage.options, direct
        assert (mine.table, mine.read_timeout, mine.max_connections) == ("web", 1.5, 4)
        assert (mine.user, mine.purge_batch) == ("other", 9)
        assert mine.ssl_context is not None and theirs.ssl_context is not None
        assert mine.ssl_context.verify_mode == theirs.ssl_context.verify_mode
        assert attrs_without_ssl(mine) == attrs_without_ssl(theirs)
    finally:
        storage.close()


def attrs_without_ssl(options: MySQLOptions) -> dict[str, object]:
    import attrs

    return {k: v for k, v in attrs.asdict(options).items() if k != "ssl_context"}


def test_settings_already_read_make_a_storage() -> None:
    settings = MySQLOptions.from_url(NOWHERE, {"table": "t"})
    storage = MySQLStorage(settings)
    try:
        assert storage.options is settings
    finally:
        storage.close()
    with pytest.raises(ConfigError) as caught:
        MySQLStorage(settings, table="other")
    assert caught.value.field == "table"
