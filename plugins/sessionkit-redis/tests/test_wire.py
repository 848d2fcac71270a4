"""The asyncio lane's own reply reader (``sessionkit_redis._wire``), against real servers.

The Wire replaces redis-py's reading of replies on the lane's plain connections, so each test
here is a promise redis-py's path kept and the Wire must keep too: every reply to the command
that asked for it, the same exception classes for error replies, a bounded wait, a write
larger than the transport's buffer, and a connection that reconnects after a failure.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionkit import StorageError
from sessionkit_redis import RedisStorage, _wire
from sessionkit_redis._wire import Wire
from tests._servers import ServerProcess, free_port, start_redis

pytestmark = pytest.mark.redis

HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def private() -> Iterator[ServerProcess]:
    """A server of this module's own, for the tests that pause it (``CLIENT PAUSE`` stops
    every client of a server, and the shared one serves other tests at the same time)."""
    server = start_redis()
    yield server
    server.close()


@pytest.fixture
def paused_raw(private: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(private.url)
    yield client
    client.close()


@pytest.fixture
async def storage(redis_url: str, prefix: str) -> AsyncIterator[RedisStorage]:
    """A storage built from the URL, closed in the test's loop (``close()`` after the test
    cannot close a loop's connections, which then leave unclosed transports behind)."""
    storage = RedisStorage(redis_url, prefix=prefix)
    yield storage
    await storage.aclose()


def _wires(storage: RedisStorage) -> list[Wire]:
    """The Wires on the transports of the connections the running loop's lane holds idle."""
    lane = storage._async_lane_here()
    return [
        conn._writer.transport.get_protocol()
        for conn in lane.connections()
        if conn.is_connected and isinstance(conn._writer.transport.get_protocol(), Wire)
    ]


async def test_a_storage_built_from_a_url_reads_through_a_wire(storage: RedisStorage) -> None:
    await storage.aset("k", b"v", HOUR)
    assert await storage.aget("k") == b"v"
    assert len(_wires(storage)) == 1


@pytest.mark.parametrize("query", ["protocol=3", "health_check_interval=30"])
async def test_other_connections_keep_redis_pys_reader(
    redis_url: str, prefix: str, query: str
) -> None:
    storage = RedisStorage(f"{redis_url}?{query}", prefix=prefix)
    try:
        await storage.aset("k", b"v", HOUR)
        assert await storage.aget("k") == b"v"
        assert _wires(storage) == []
    finally:
        await storage.aclose()


async def test_a_timed_out_read_leaves_no_stale_reply_for_the_next_command(
    private: ServerProcess, prefix: str, paused_raw: redis.Redis
) -> None:
    storage = RedisStorage(private.url, prefix=prefix, socket_timeout=0.05)
    try:
        await storage.aset("a", b"A", HOUR)
        await storage.aset("b", b"B", HOUR)
        (wire,) = _wires(storage)
        paused_raw.client_pause(300)
        began = time.monotonic()
        with pytest.raises(StorageError, match="redis GET failed") as caught:
            await storage.aget("a")
        assert time.monotonic() - began < 0.25
        assert isinstance(caught.value.__cause__, redis.TimeoutError)
        # Closed at the timeout, not when the late reply comes: no later command can queue
        # behind the unanswered GET on that connection.
        assert wire.lost and wire.transport.is_closing()
        await asyncio.sleep(0.35)  # the pause ends; the server answers the GET that timed out
        assert await storage.aget("b") == b"B"  # the reply to *this* GET, not the stale "A"
        assert await storage.aget("a") == b"A"
    finally:
        await storage.aclose()


async def test_a_cancelled_read_closes_its_connection_at_once(
    private: ServerProcess, prefix: str, paused_raw: redis.Redis
) -> None:
    storage = RedisStorage(private.url, prefix=prefix)
    try:
        await storage.aset("a", b"A", HOUR)
        (wire,) = _wires(storage)
        paused_raw.client_pause(300)
        pending = asyncio.ensure_future(storage.aget("a"))
        await asyncio.sleep(0.05)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert wire.lost and wire.transport.is_closing()
        await asyncio.sleep(0.3)
        assert await storage.aget("a") == b"A"
    finally:
        await storage.aclose()


async def test_a_failed_pair_leaves_no_unread_error_behind(
    private: ServerProcess, prefix: str, paused_raw: redis.Redis
) -> None:
    """A write and its ``WAIT`` go together; when the pair times out, the reply the caller
    never awaited must not surface later as "Future exception was never retrieved"."""
    storage = RedisStorage(
        f"{private.url}?wait_replicas=1&wait_timeout=0.02", prefix=prefix, socket_timeout=0.05
    )
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        await storage.aget("k")  # connected
        paused_raw.client_pause(300)
        with pytest.raises(StorageError):
            await storage.aset("k", b"v", HOUR)
        await asyncio.sleep(0.35)
        gc.collect()
        await asyncio.sleep(0)
        # Only this kind: the collection may also finalise what earlier tests of this worker
        # left (an unclosed client reports itself through the same handler).
        unread = [c for c in reported if c.get("message") == "Future exception was never retrieved"]
        assert unread == []
    finally:
        loop.set_exception_handler(None)
        await storage.aclose()


async def test_many_tasks_each_get_their_own_reply(storage: RedisStorage) -> None:
    values = {f"k{n}": secrets.token_bytes(n * 7 % 300 + 1) for n in range(200)}
    await asyncio.gather(*(storage.aset(key, value, HOUR) for key, value in values.items()))
    for _ in range(3):
        keys = list(values)
        got = await asyncio.gather(*(storage.aget(key) for key in keys))
        assert dict(zip(keys, got, strict=True)) == values


async def test_values_larger_than_the_write_buffer(storage: RedisStorage) -> None:
    """A write past the transport's high-water mark (64 KiB) waits for the server to read,
    and a reply spread over many reads comes back whole."""
    values = {f"big{n}": secrets.token_bytes(2**20 + n) for n in range(4)}
    await asyncio.gather(*(storage.aset(key, value, HOUR) for key, value in values.items()))
    got = await asyncio.gather(*(storage.aget(key) for key in values))
    assert got == list(values.values())


async def test_a_script_the_server_forgot_is_sent_again(
    storage: RedisStorage, raw: redis.Redis
) -> None:
    """``NOSCRIPT`` reaches the storage as redis-py's ``NoScriptError``, which it answers by
    sending the script whole."""
    await storage.aset("k", b"v1", HOUR)
    raw.script_flush()
    assert await storage.areplace_if("k", b"v1", b"v2", HOUR)
    assert await storage.aget("k") == b"v2"


@pytest.fixture
def read_only() -> Iterator[ServerProcess]:
    """A private server made a replica of a primary that is not there: it refuses writes with
    ``READONLY`` and still answers reads."""
    server = start_redis()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("sessionkit-test:k", b"v")
        client.execute_command("REPLICAOF", "127.0.0.1", "1")
        client.close()
        yield server
    finally:
        server.close()


async def test_an_error_reply_keeps_its_class_and_the_connection(
    read_only: ServerProcess,
) -> None:
    storage = RedisStorage(read_only.url, prefix="sessionkit-test:")
    try:
        assert await storage.aget("k") == b"v"
        with pytest.raises(StorageError) as caught:
            await storage.aset("k", b"w", HOUR)
        assert isinstance(caught.value.__cause__, redis.ReadOnlyError)
        wires = _wires(storage)
        assert await storage.aget("k") == b"v"  # on the same connection, still in step
        assert _wires(storage) == wires
    finally:
        await storage.aclose()


async def test_a_connection_the_server_closed_is_replaced_by_a_new_wire(
    redis_url: str, prefix: str, raw: redis.Redis
) -> None:
    name = f"sk-wire-{secrets.token_hex(5)}"
    storage = RedisStorage(redis_url, prefix=prefix, client_name=name)
    try:
        await storage.aset("k", b"v", HOUR)
        (before,) = _wires(storage)
        for entry in raw.client_list():
            if entry["name"] == name:
                raw.client_kill_filter(_id=entry["id"])
        assert await storage.aget("k") == b"v"
        (after,) = _wires(storage)
        assert after is not before
        assert before.lost
    finally:
        await storage.aclose()


async def test_a_killed_server_fails_a_call_at_once(
    prefix: str,
) -> None:
    server = start_redis()
    storage = RedisStorage(server.url, prefix=prefix, socket_timeout=2.0)
    try:
        await storage.aset("k", b"v", HOUR)
        server.close()
        began = time.monotonic()
        with pytest.raises(StorageError):
            await storage.aget("k")
        assert time.monotonic() - began < 1.0  # refused at once, not after socket_timeout
    finally:
        await storage.aclose()


async def test_a_unix_socket_reads_through_a_wire(tmp_path: Path, prefix: str) -> None:
    sock = tmp_path / "redis.sock"
    server = start_redis("--unixsocket", str(sock), "--unixsocketperm", "700")
    storage = RedisStorage(f"unix://{sock}?db=0", prefix=prefix)
    try:
        await storage.aset("k", b"v", HOUR)
        assert await storage.aget("k") == b"v"
        assert len(_wires(storage)) == 1
    finally:
        await storage.aclose()
        server.close()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made for one test."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_reads_through_a_wire(tmp_path: Path, prefix: str) -> None:
    """Over TLS the Wire is the protocol under asyncio's TLS layer: large values, a timed-out
    read that leaves no stale reply, and a connection the server closed, all as over TCP."""
    cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    server = start_redis(
        "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
    )  # fmt: skip
    raw = redis.Redis.from_url(server.url)  # the plain port, for looking behind its back
    name = f"sk-wire-{secrets.token_hex(5)}"
    url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}&client_name={name}"
    storage = RedisStorage(url, prefix=prefix, socket_timeout=0.2)
    try:
        big = secrets.token_bytes(2**20)
        await storage.aset("big", big, HOUR)
        await storage.aset("a", b"A", HOUR)
        assert await storage.aget("big") == big
        (wire,) = _wires(storage)
        raw.client_pause(500)
        with pytest.raises(StorageError):
            await storage.aget("a")
        assert wire.lost
        await asyncio.sleep(0.6)
        assert await storage.aget("big") == big  # not the stale "A"
        for entry in raw.client_list():
            if entry["name"] == name:
                raw.client_kill_filter(_id=entry["id"])
        assert await storage.aget("a") == b"A"
        assert len(_wires(storage)) == 1
    finally:
        await storage.aclose()
        raw.close()
        server.close()


# -- the sync lane's commands, packed by hiredis directly ---------------------------------------

_ARG = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),  # no lone surrogates
    st.binary(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
)
_COMMAND = st.tuples(st.sampled_from(["GET", "SET", "EVALSHA", "SCRIPT LOAD"])).flatmap(
    lambda name: st.lists(_ARG, max_size=6).map(lambda rest: (*name, *rest))
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_COMMAND, min_size=1, max_size=3))
def test_hiredis_packs_the_sync_lanes_commands_as_redis_py_does(
    commands: list[tuple[object, ...]],
) -> None:
    """The sync lane sends what redis-py's own ``send_command`` would, byte for byte, for
    every kind of argument a command can carry (the connection is never connected)."""
    conn = redis.Connection()
    assert _wire.packs_plainly(conn)
    expected = b"".join(conn.pack_commands(commands))
    assert _wire.packed(conn, tuple(commands)) == expected


def test_only_plain_utf8_connections_are_packed_by_hiredis() -> None:
    class Wrapped(redis.Connection):  # a subclass may do more in send_command
        pass

    assert not _wire.packs_plainly(Wrapped())
    assert not _wire.packs_plainly(redis.Connection(encoding="latin-1"))
    assert not _wire.packs_plainly(redis.Connection(encoding_errors="replace"))
    assert _wire.packs_plainly(redis.UnixDomainSocketConnection(path="/nonexistent"))
