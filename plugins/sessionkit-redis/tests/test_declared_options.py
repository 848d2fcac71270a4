"""Opened by URL, a Redis storage's options are read once, by the core, against
``RedisURLOptions``: the storage checks them against the kind of URL without reading the
query again."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sessionkit import ConfigError, open_storage
from sessionkit_redis import RedisStorage
from sessionkit_redis._options import parse_url, typed_target


def test_a_bad_option_fails_before_the_storage_module_is_imported() -> None:
    script = """
import json, sys
from sessionkit import ConfigError, open_storage
try:
    open_storage("redis://h/0?socket_timout=1")
except ConfigError as exc:
    print(json.dumps([exc.field, str(exc), "sessionkit_redis._storage" in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    field, message, imported = json.loads(done.stdout)
    assert field == "socket_timout"
    assert "did you mean 'socket_timeout'" in message
    assert not imported


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:1/3?prefix=app:&socket_timeout=1.5&wait_replicas=1&wait_timeout=0.5",
        "unix:///run/redis.sock?db=2&client_cache=yes&client_cache_max_entries=10",
        "rediss+cluster://a:1,b:2?max_connections=8&require_full_coverage=false",
        "rediss+sentinel://s1,s2/svc/1?sentinel_password=x&sentinel_ssl=no&min_other_sentinels=1",
    ],
)
def test_open_storage_and_the_class_read_a_url_alike(url: str) -> None:
    storage = open_storage(url, client_name="web")
    try:
        assert isinstance(storage, RedisStorage)
        assert storage._target == parse_url(url, {"client_name": "web"})
    finally:
        storage.close()


@pytest.mark.parametrize(
    ("url", "field", "words"),
    [
        ("redis+cluster://h:1?pool_timeout=1", "pool_timeout", "do not wait for a free"),
        ("redis+cluster://h:1?read_from_replicas=true", "read_from_replicas", "lag behind"),
        ("redis://h/0?sentinel_password=x", "sentinel_password", "unknown option"),
        ("redis://h/0?min_other_sentinels=1", "min_other_sentinels", "unknown option"),
        ("redis://h/0?decode_responses=true", "decode_responses", "keeps bytes"),
    ],
)
def test_each_kind_of_url_still_takes_only_its_own_options(
    url: str, field: str, words: str
) -> None:
    for opening in (lambda: open_storage(url), lambda: RedisStorage(url)):
        with pytest.raises(ConfigError, match=words) as caught:
            opening()
        assert caught.value.field == field


def test_a_target_read_already_makes_a_storage() -> None:
    target = typed_target("redis://h/0", {"prefix": "a:"})
    storage = RedisStorage(target)
    try:
        assert storage.prefix == "a:"
    finally:
        storage.close()
    with pytest.raises(ConfigError) as caught:
        RedisStorage(target, socket_timeout=1)
    assert caught.value.field == "socket_timeout"
