"""Opened by URL, a Mongo storage's options are read once, by the core, against
``MongoURLOptions``: the query is not read again, but for the tag sets pymongo reads from it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import sessionkit
from sessionkit import ConfigError
from sessionkit_mongo import MongoStorage

URL = "mongodb://127.0.0.1:1/?retryWrites=false"


def test_a_bad_option_fails_before_the_storage_module_is_imported() -> None:
    script = f"""
import json, sys
from sessionkit import ConfigError, open_storage
try:
    open_storage({URL + "&colection=x"!r})
except ConfigError as exc:
    print(json.dumps([exc.field, str(exc), "sessionkit_mongo._storage" in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    field, message, imported = json.loads(done.stdout)
    assert field == "colection"
    assert "did you mean 'collection'" in message
    assert not imported


def test_a_name_given_twice_in_two_cases_is_refused_by_open_storage() -> None:
    with pytest.raises(ConfigError, match="more than once") as caught:
        sessionkit.open_storage("mongodb://127.0.0.1:1/db?retryWrites=false&retrywrites=true")
    assert caught.value.field == "retryWrites"  # as first given


def test_the_query_reaches_pymongo_and_a_keyword_wins_in_any_case() -> None:
    storage = sessionkit.open_storage(
        URL + "&appname=web&readPreference=nearest&readPreferenceTags=dc:ny&readPreferenceTags=",
        retrywrites=True,
    )
    try:
        assert isinstance(storage, MongoStorage)
        options = storage._client.options  # type: ignore[union-attr]
        assert options.retry_writes is True
        assert options.pool_options.metadata["application"] == {"name": "web"}
        assert options.read_preference.tag_sets == [{"dc": "ny"}, {}]
    finally:
        storage.close()


def test_the_database_may_be_given_as_an_option() -> None:
    for storage in (
        sessionkit.open_storage(URL, database="kw"),
        sessionkit.open_storage(URL + "&database=kw"),
        MongoStorage(URL + "&database=kw"),
    ):
        try:
            assert storage.database == "kw"  # type: ignore[attr-defined]
        finally:
            storage.close()  # type: ignore[attr-defined]
