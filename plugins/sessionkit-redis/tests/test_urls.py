"""The URL forms beyond one server: ``valkey://``, ``redis+cluster://``, ``redis+sentinel://``.

What each form builds, which options go where (a Sentinel's own, the data connections'), and
every way a URL is refused. None of these talk to a server: opening a storage never connects,
not even for a cluster (whose sync client would ask a node for the layout when made).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import redis.sentinel

import sessionkit
from sessionkit import ConfigError, StorageError
from sessionkit_redis import RedisStorage
from sessionkit_redis._options import parse_url
from sessionkit_redis._plugin import SCHEMES
from sessionkit_redis._topology import BlockingSentinelPool

SENTINELS = "redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster"


@pytest.mark.parametrize(
    "url",
    [
        "valkey://h:6379/0",
        "valkeys://h:6380/1",
        *(f"{base}+cluster://h1:7000,h2:7001" for base in ("redis", "rediss", "valkey", "valkeys")),
        *(f"{base}+sentinel://s1,s2/svc" for base in ("redis", "rediss", "valkey", "valkeys")),
        "REDIS+SENTINEL://s1/svc/0",
    ],
)
def test_open_storage_takes_every_scheme_without_connecting(url: str) -> None:
    storage = sessionkit.open_storage(url)
    try:
        assert isinstance(storage, RedisStorage)
    finally:
        storage.close()


def test_the_plugin_declares_each_scheme_once() -> None:
    assert len(SCHEMES) == len(set(SCHEMES)) == 13
    assert SCHEMES[:3] == ("redis", "rediss", "unix")


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("valkey://u:pw@h:7/3", "redis"), ("valkeys://h/0", "rediss")],
)
def test_valkey_is_redis(url: str, scheme: str) -> None:
    target = parse_url(url, {})
    assert target.kind == "single" and target.driver_url.startswith(f"{scheme}://")
    storage = RedisStorage(url)
    pool: Any = storage._sync().connection_pool  # type: ignore[union-attr]
    assert pool.connection_kwargs["host"] == "h"
    assert (scheme == "rediss") == issubclass(pool.connection_class, redis.SSLConnection)
    storage.close()


# -- Redis Cluster -------------------------------------------------------------------------------


def test_cluster_url_names_every_startup_node() -> None:
    target = parse_url(
        "rediss+cluster://u:p%40ss@h1:7000,h2,[::1]:7002/?prefix=x&socket_timeout=1", {}
    )
    assert target.kind == "cluster" and target.tls
    assert target.hosts == (("h1", 7000), ("h2", 6379), ("::1", 7002))
    assert (target.kwargs["username"], target.kwargs["password"]) == ("u", "p@ss")
    assert target.kwargs["socket_timeout"] == 1.0 and target.prefix == "x"
    assert "pool_timeout" not in target.kwargs and "db" not in target.kwargs


def test_cluster_clients_get_the_options_and_no_retries() -> None:
    """The sync client is made on first use (it connects); the asyncio one per loop."""
    storage = RedisStorage("redis+cluster://127.0.0.1:1,127.0.0.1:2?socket_timeout=1.5")
    with pytest.raises(StorageError) as caught:
        storage.get("k")  # nothing listens: the layout cannot be read
    assert isinstance(caught.value.__cause__, (redis.RedisError, redis.RedisClusterException))
    assert storage._lane is None  # the next call tries again

    async def made() -> Any:
        return storage._async()

    client = asyncio.run(made())
    assert isinstance(client, redis.asyncio.cluster.RedisCluster)
    assert client.retry.get_retries() == 0
    assert [(node.host, node.port) for node in client.nodes_manager.startup_nodes.values()] == [
        ("127.0.0.1", 1),
        ("127.0.0.1", 2),
    ]
    storage.close()


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("redis+cluster://h:1/1", {}, "db"),
        ("redis+cluster://h:1/0", {"db": 2}, "db"),
        ("redis+cluster://h:1/x", {}, "db"),
        ("redis+cluster://h:1?read_from_replicas=true", {}, "read_from_replicas"),
        ("redis+cluster://h:1?pool_timeout=1", {}, "pool_timeout"),
        ("redis+cluster://h:1?decode_responses=true", {}, "decode_responses"),
        ("redis+cluster://h:1?socket_timout=1", {}, "socket_timout"),
        ("redis+cluster://h:1?max_connections=0", {}, "max_connections"),
        ("redis+cluster://h:1?wait_replicas=1", {}, "wait_replicas"),
        ("redis+cluster://h:1?sentinel_password=x", {}, "sentinel_password"),
        ("redis+cluster://", {}, "storage"),
        ("redis+cluster://u:pw@", {}, "storage"),
        ("redis+cluster://h:1,,h:2", {}, "storage"),
        ("redis+cluster://h:1,h:abc", {}, "storage"),
        ("redis+cluster://h:1,h:70000", {}, "storage"),
        ("redis+cluster://[::1:7000", {}, "storage"),
        ("redis+cluster://h:1:2", {}, "storage"),
        ("redis+cluster://h:1?prefix=", {}, "prefix"),
    ],
)
def test_bad_cluster_urls_are_refused_naming_the_field(
    url: str, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RedisStorage(url, **options)
    assert caught.value.field == field


def test_cluster_unknown_option_suggests_the_near_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'require_full_coverage'"):
        RedisStorage("redis+cluster://h:1?require_full_covrage=false")


# -- Sentinel -----------------------------------------------------------------------------------


def test_sentinel_url_splits_data_options_from_the_sentinels() -> None:
    target = parse_url(
        "redis+sentinel://u:pw@s1,s2:26380/my%20master/3?socket_timeout=2"
        "&sentinel_password=sp&sentinel_username=su&sentinel_socket_timeout=0.2"
        "&min_other_sentinels=1&sentinel_check_interval=0.5",
        {},
    )
    assert target.kind == "sentinel" and not target.tls
    assert target.hosts == (("s1", 26379), ("s2", 26380)) and target.service == "my master"
    data, sentinels = target.kwargs, target.sentinel_kwargs
    assert (data["username"], data["password"], data["db"]) == ("u", "pw", 3)
    assert data["socket_timeout"] == 2.0 and "ssl" not in data
    assert (sentinels["username"], sentinels["password"]) == ("su", "sp")
    assert sentinels == {
        "socket_connect_timeout": 0.5,
        "socket_timeout": 0.2,
        "username": "su",
        "password": "sp",
    }
    assert (target.min_other_sentinels, target.sentinel_check_interval) == (1, 0.5)


def test_rediss_sentinel_speaks_tls_to_both_unless_told() -> None:
    both = parse_url("rediss+sentinel://s1/svc?ssl_cert_reqs=none", {})
    assert both.kwargs["ssl"] is True and both.sentinel_kwargs["ssl"] is True
    assert both.sentinel_kwargs["ssl_cert_reqs"] == "none"  # inherited by the Sentinels
    own = parse_url(
        "rediss+sentinel://s1/svc?ssl_cert_reqs=none&sentinel_ssl_cert_reqs=required", {}
    )
    assert own.sentinel_kwargs["ssl_cert_reqs"] == "required"
    data_only = parse_url("rediss+sentinel://s1/svc?sentinel_ssl=false", {})
    assert data_only.kwargs["ssl"] is True and "ssl" not in data_only.sentinel_kwargs
    sentinels_only = parse_url("redis+sentinel://s1/svc?sentinel_ssl=true", {})
    assert "ssl" not in sentinels_only.kwargs and sentinels_only.sentinel_kwargs["ssl"] is True


def test_sentinel_clients_block_for_a_connection_and_never_retry() -> None:
    storage = RedisStorage(f"{SENTINELS}/2?max_connections=8&pool_timeout=0.5")
    pool: Any = storage._sync().connection_pool  # type: ignore[union-attr]
    assert isinstance(pool, BlockingSentinelPool) and pool.service_name == "mymaster"
    assert (pool.max_connections, pool.timeout) == (8, 0.5)
    assert pool.connection_kwargs["db"] == 2
    helpers = storage._sync_lane().helpers
    assert [h.get_connection_kwargs()["port"] for h in helpers] == [1, 2]
    for helper in helpers:
        kwargs = helper.get_connection_kwargs()
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.5, 0.5)
        assert kwargs["retry"].get_retries() == 0
    storage.close()


def test_an_unreachable_sentinel_set_is_a_storage_error() -> None:
    storage = RedisStorage(SENTINELS)
    with pytest.raises(StorageError) as caught:
        storage.set("k", b"v", None)
    assert isinstance(caught.value.__cause__, redis.sentinel.MasterNotFoundError)
    storage.close()


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("redis+sentinel://s1:1", {}, "service"),
        ("redis+sentinel://s1:1/", {}, "service"),
        ("redis+sentinel://s1:1//0", {}, "service"),
        ("redis+sentinel://s1:1/svc/0/x", {}, "service"),
        ("redis+sentinel://s1:1/svc/x", {}, "db"),
        ("redis+sentinel://s1:1/svc/-1", {}, "db"),
        ("redis+sentinel:///svc", {}, "storage"),
        ("redis+sentinel://s1:1,/svc", {}, "storage"),
        ("redis+sentinel://s1:1/svc?sentinel_pasword=x", {}, "sentinel_pasword"),
        ("redis+sentinel://s1:1/svc?sentinel_socket_timeout=0", {}, "sentinel_socket_timeout"),
        ("redis+sentinel://s1:1/svc?sentinel_db=1", {}, "sentinel_db"),
        ("redis+sentinel://s1:1/svc?sentinel_ssl=maybe", {}, "sentinel_ssl"),
        ("redis+sentinel://s1:1/svc?sentinel_check_interval=-1", {}, "sentinel_check_interval"),
        ("redis+sentinel://s1:1/svc?min_other_sentinels=x", {}, "min_other_sentinels"),
        ("redis+sentinel://s1:1/svc?ssl_cert_reqs=none", {}, "ssl_cert_reqs"),  # no TLS
        ("redis+sentinel://s1:1/svc", {"decode_responses": True}, "decode_responses"),
        ("redis+sentinel://s1:1/svc?wait_replicas=-1", {}, "wait_replicas"),
        ("redis+sentinel://s1:1/svc?wait_replicas=1&wait_timeout=3", {}, "wait_timeout"),
        ("redis+sentinel://s1:1/svc?wait_replicas=1&wait_timeout=0", {}, "wait_timeout"),
        ("redis+sentinel://s1:1/svc?wait_replicas=two", {}, "wait_replicas"),
        ("redis+sentinel://s1:1/svc?prefx=a", {}, "prefx"),
    ],
)
def test_bad_sentinel_urls_are_refused_naming_the_field(
    url: str, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RedisStorage(url, **options)
    assert caught.value.field == field


def test_sentinel_unknown_option_suggests_the_near_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'sentinel_password'"):
        RedisStorage(f"{SENTINELS}?sentinel_pasword=x")


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://u:s3cretpw@s1:1/svc/x",
        "redis+cluster://u:s3cretpw@h:1,h:x",
        "redis+cluster://u:s3cretpw@",
        "redis+sentinel://u:s3cretpw@[::1/svc",
    ],
)
def test_errors_never_quote_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RedisStorage(url)
    assert "s3cretpw" not in str(caught.value)


# -- wait_replicas ----------------------------------------------------------------------------


def test_wait_options_from_the_url_or_keywords() -> None:
    storage = RedisStorage("redis://h/0?wait_replicas=2&wait_timeout=0.25")
    assert storage.wait_replicas == 2 and storage._wait == ("WAIT", 2, 250)
    storage.close()
    storage = RedisStorage("redis://h/0?wait_replicas=2", wait_replicas=1, wait_timeout=0.0004)
    assert storage._wait == ("WAIT", 1, 1)  # milliseconds, rounded up
    storage.close()
    assert RedisStorage("redis://h/0").wait_replicas == 0


def test_wait_options_beside_clients_passed_in() -> None:
    storage = RedisStorage(client=redis.Redis(), wait_replicas=1, wait_timeout=0.5)
    assert storage._wait == ("WAIT", 1, 500)
    with pytest.raises(ConfigError) as caught:
        RedisStorage(
            async_client=redis.asyncio.cluster.RedisCluster(host="h", port=1), wait_replicas=1
        )
    assert caught.value.field == "wait_replicas"
    with pytest.raises(ConfigError) as caught:
        RedisStorage(client=redis.Redis(), wait_replicas=-1)
    assert caught.value.field == "wait_replicas"
