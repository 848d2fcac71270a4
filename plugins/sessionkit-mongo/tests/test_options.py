"""Opening a Mongo storage: database, collection, write concern, driver options, errors.

None of these talk to a server: building a storage does not connect.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from pymongo.write_concern import WriteConcern

import sessionkit
from sessionkit import ConfigError, PluginRegistry
from sessionkit_mongo import MongoStorage
from sessionkit_mongo._options import driver_options

URL = "mongodb://127.0.0.1:1/?retryWrites=false"


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    """Storages a test opens; closed at teardown."""
    storages: list[Any] = []
    yield storages
    for storage in storages:
        storage.close()


def open_storage(opened: list[Any], url: str, **options: Any) -> MongoStorage:
    storage = sessionkit.open_storage(url, **options)
    assert isinstance(storage, MongoStorage)
    opened.append(storage)
    return storage


def test_both_schemes_belong_to_the_mongo_backend() -> None:
    by_scheme = PluginRegistry().by_scheme()
    assert by_scheme["mongodb"].backend.name == by_scheme["mongodb+srv"].backend.name == "mongo"


def test_database_comes_from_the_url_path(opened: list[Any]) -> None:
    assert open_storage(opened, URL).database == "sessionkit"
    assert open_storage(opened, "mongodb://127.0.0.1:1/appdb?retryWrites=false").database == "appdb"


def test_collection_defaults_and_comes_from_query_or_keyword(opened: list[Any]) -> None:
    assert open_storage(opened, URL).collection == "sessions"
    assert open_storage(opened, URL + "&collection=web").collection == "web"
    assert open_storage(opened, URL + "&collection=web", collection="kw").collection == "kw"


def test_own_options_leave_the_url_and_the_driver_keeps_the_rest() -> None:
    url, kwargs, own = driver_options(
        "mongodb://u:p%40ss@a:1,b:2/db?collection=c&readPreferenceTags=dc:ny"
        "&readPreferenceTags=&retryWrites=false&write_concern=majority",
        {"appname": "web"},
    )
    assert url == (
        "mongodb://u:p%40ss@a:1,b:2/db?readPreferenceTags=dc:ny&readPreferenceTags=&retryWrites=false"
    )
    assert own == {"collection": "c", "write_concern": "majority"}
    assert kwargs == {
        "appname": "web",
        "timeoutMS": 5000,
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 5000,
    }


def test_timeouts_default_short_and_can_be_overridden(opened: list[Any]) -> None:
    """``timeoutMS`` (5 s) bounds a whole call, retries included; no socket timeout of its
    own, which would only be a second, longer bound."""
    options = open_storage(opened, URL)._client.options  # type: ignore[union-attr]
    assert options.timeout == 5.0
    assert options.server_selection_timeout == 5.0
    assert options.pool_options.connect_timeout == 5.0
    assert options.pool_options.socket_timeout is None
    assert open_storage(opened, URL + "&timeoutMS=1500")._client.options.timeout == 1.5  # type: ignore[union-attr]
    from_url = open_storage(opened, URL + "&serverselectiontimeoutms=250")
    assert from_url._client.options.server_selection_timeout == 0.25  # type: ignore[union-attr]
    from_keyword = open_storage(opened, URL, serverSelectionTimeoutMS=750)
    assert from_keyword._client.options.server_selection_timeout == 0.75  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "document"),
    [
        ("majority", {"w": "majority"}),
        ("2", {"w": 2}),
        (1, {"w": 1}),
        (WriteConcern(w="majority", j=True), {"w": "majority", "j": True}),
    ],
)
def test_write_concern_option(opened: list[Any], value: Any, document: dict[str, Any]) -> None:
    storage = open_storage(opened, URL, write_concern=value)
    assert storage._collection.write_concern.document == document  # type: ignore[union-attr]


def test_write_concern_in_the_query(opened: list[Any]) -> None:
    storage = open_storage(opened, URL + "&write_concern=majority")
    assert storage._collection.write_concern.document == {"w": "majority"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("option", "values"),
    [
        # Times in ms: from 0 to a day. pymongo takes up to a billion (11 days), and any
        # integer for wTimeoutMS, which overflows BSON at the first write.
        ("timeoutMS", ["86400001", 999_999_999, "-1"]),
        ("socketTimeoutMS", ["999999999", 1e8]),
        ("connectTimeoutMS", ["100000000"]),
        ("serverSelectionTimeoutMS", [9e8]),
        ("waitQueueTimeoutMS", ["5e8"]),
        ("maxIdleTimeMS", [10**8]),
        ("heartbeatFrequencyMS", ["900000000"]),
        ("localThresholdMS", ["86400001"]),
        ("wTimeoutMS", ["100000000000000000000", 10**20]),
        # Sizes and counts.
        ("maxPoolSize", ["1000000", 10**12]),
        ("minPoolSize", [10**12]),
        ("maxConnecting", ["100000"]),
        ("srvMaxHosts", ["5000"]),
        ("maxAdaptiveRetries", ["1000000"]),
        ("maxStalenessSeconds", [10**12]),
    ],
)
def test_numeric_options_out_of_range_are_refused_at_open(
    option: str, values: list[object]
) -> None:
    for value in values:
        cases = [(URL, {option: value})]
        if isinstance(value, str):
            cases.append((f"{URL}&{option}={value}", {}))
        for url, options in cases:
            with pytest.raises(ConfigError) as caught:
                MongoStorage(url, **options)
            assert caught.value.field == option, (url, options)


def test_min_pool_size_above_max_pool_size_is_refused_at_open() -> None:
    with pytest.raises(ConfigError) as caught:
        MongoStorage(URL + "&minPoolSize=20&maxPoolSize=10")
    assert caught.value.field == "minPoolSize"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeoutMS", "0"),  # pymongo's "no timeout of its own"
        ("timeoutMS", "86400000"),
        ("socketTimeoutMS", "0"),
        ("wTimeoutMS", "86400000"),
        ("maxPoolSize", "0"),  # pymongo's "no cap"
        ("maxPoolSize", "100000"),
        ("maxStalenessSeconds", "-1"),
        ("maxStalenessSeconds", "120&readPreference=secondary"),
    ],
)
def test_numeric_options_at_their_bounds_are_taken(option: str, value: str) -> None:
    MongoStorage(f"{URL}&{option}={value}").close()


def test_a_huge_w_timeout_used_to_fail_only_at_the_first_write() -> None:
    """What the range check is for: pymongo takes it, BSON cannot encode it."""
    with pytest.raises(ConfigError, match="wTimeoutMS"):
        MongoStorage(URL, wTimeoutMS=2**64)


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        (URL + "&bogus=1", {}, "bogus"),
        (URL, {"serverSelectionTimeout": 5}, "serverSelectionTimeout"),
        (URL + "&socketTimeoutMS=soon", {}, "socketTimeoutMS"),
        (URL, {"write_concern": 0}, "write_concern"),
        (URL + "&w=0", {}, "write_concern"),
        (URL, {"write_concern": True}, "write_concern"),
        (URL, {"write_concern": -1}, "write_concern"),
        (URL, {"collection": ""}, "collection"),
        (URL, {"collection": "a$b"}, "collection"),
        (URL, {"collection": "system.users"}, "collection"),
        (URL + "&clock=now", {}, "clock"),
        (URL, {"clock": 3.0}, "clock"),
        ("mongodb://127.0.0.1:1/bad%20db?retryWrites=false", {}, "storage"),
        ("mongodb://127.0.0.1:1/?retryWrites=maybe", {}, "retryWrites"),
    ],
)
def test_bad_options_are_config_errors_naming_them(
    url: str, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        sessionkit.open_storage(url, **options).get("k")
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("collection=a&collection=b", "collection"),
        ("write_concern=1&write_concern=majority", "write_concern"),
        ("retryWrites=false&retrywrites=true", "retryWrites"),  # pymongo ignores the case
    ],
)
def test_a_parameter_given_twice_is_refused_when_built_directly_too(query: str, field: str) -> None:
    """``open_storage`` refuses it before the plugin sees the URL; ``MongoStorage(url)`` must too
    (it took the last one, and pymongo only warns), while tag sets may repeat."""
    with pytest.raises(ConfigError, match="more than once") as caught:
        MongoStorage(f"mongodb://127.0.0.1:1/db?{query}")
    assert caught.value.field == field
    storage = MongoStorage(
        URL + "&readPreference=nearest&readPreferenceTags=dc:ny&readPreferenceTags="
    )
    storage.close()


def test_client_arguments_are_checked() -> None:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(URL, connect=False)
    with pytest.raises(ConfigError, match="not both"):
        MongoStorage(URL, client=client)
    with pytest.raises(ConfigError, match="needs a URL"):
        MongoStorage()
    with pytest.raises(ConfigError) as caught:
        MongoStorage(client=client, appname="x")
    assert caught.value.field == "appname"
    storage = MongoStorage(client=client, database="app", collection="web")
    assert (storage.database, storage.collection) == ("app", "web")
    with pytest.raises(ConfigError) as caught:
        asyncio.run(storage.aget("k"))
    assert caught.value.field == "async_client"
    client.close()


def test_listing_backends_does_not_import_pymongo() -> None:
    """The entry point is light: pymongo is imported when a storage is opened, not before."""
    code = (
        "import sys, sessionkit\n"
        "names = {b.backend.name for b in sessionkit.available_backends()}\n"
        "assert 'mongo' in names, names\n"
        "assert 'pymongo' not in sys.modules, 'pymongo imported by discovery'\n"
        f"sessionkit.open_storage({URL!r}).close()\n"
        "assert 'pymongo' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "url",
    [
        "mongodb://127.0.0.1:notaport/app",
        "mongodb://u:s3cretpw@127.0.0.1:notaport/app",
        "mongodb://127.0.0.1:99999/app",
        "mongodb://a:1,b:x/app",
        "mongodb://",
        "mongodb:///app",
        "mongodb:127.0.0.1/app",
        "mongodb://u:s3cretpw@[::1/app",
    ],
)
def test_a_malformed_url_is_a_config_error_naming_the_storage(url: str) -> None:
    """pymongo raises a bare ValueError for a port that is no number (``mongodb://`` became
    ``mongodb:``, read as a host name with an empty port)."""
    with pytest.raises(ConfigError) as caught:
        MongoStorage(url)
    assert caught.value.field == "storage"
    assert "s3cretpw" not in str(caught.value)


def test_a_misspelt_own_option_suggests_it_not_a_pymongo_one() -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        (URL + "&colection=x", {}, "collection"),
        (URL, {"writeconcern": "majority"}, "write_concern"),
    ]
    for url, options, meant in cases:
        with pytest.raises(ConfigError, match=f"did you mean {meant!r}") as caught:
            MongoStorage(url, **options)
        assert caught.value.field != "storage"
    with pytest.raises(ConfigError, match="Unknown option") as caught:
        MongoStorage(URL + "&bogus=1")  # near nothing of ours: pymongo's own hint stands
    assert caught.value.field == "bogus"


@pytest.mark.parametrize(
    ("query", "deadline"),
    [
        ("", 5.0),
        ("&serverSelectionTimeoutMS=300", 0.3),  # fail fast with no server, as asked
        ("&socketTimeoutMS=1000&serverSelectionTimeoutMS=500", 1.0),  # the longest step
        ("&connectTimeoutMS=20000", 5.0),  # never longer than the default
        ("&socketTimeoutMS=0", 5.0),  # 0: no limit of its own, so no shorter deadline
        ("&timeoutMS=1200&serverSelectionTimeoutMS=300", 1.2),  # given: taken as it is
        ("&timeoutMS=0", None),  # pymongo's "no deadline"
    ],
)
def test_the_default_deadline_is_never_longer_than_the_steps_you_set(
    opened: list[Any], query: str, deadline: float | None
) -> None:
    """pymongo's deadline replaces ``socketTimeoutMS`` and lets server selection run to it,
    so a default 5 s deadline would override a shorter step a user set."""
    storage = open_storage(opened, URL + query)
    assert storage._deadline == deadline
    assert (storage._client.options.timeout or None) == deadline  # type: ignore[union-attr]
