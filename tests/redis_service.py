"""Redis for the shared-budget tests: the machine's server (`redis_url`, with a per-test key
prefix, `redis_prefix`, whose keys are deleted afterwards) and a server of the test's own on a
free port (`own_redis`), for kill -9 and restarts without touching the shared one.

Without a Redis on 127.0.0.1:6379 (or `LLMLEDGER_REDIS_URL`) the tests skip, saying how to run
them; with `LLMLEDGER_REQUIRE_SERVICES=1` (what `.ci/run` sets) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

URL = os.environ.get("LLMLEDGER_REDIS_URL", "redis://127.0.0.1:6379/0")
HOW = (
    "start one with `redis-server --daemonize yes` (or point LLMLEDGER_REDIS_URL at one), "
    "or run `.ci/run`, which starts it"
)


def _missing(why: str) -> None:
    if os.environ.get("LLMLEDGER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"Redis is required (LLMLEDGER_REQUIRE_SERVICES=1) but {why}")
    pytest.skip(f"Redis tests skipped: {why}; {HOW}")


def _client(url: str) -> Any:
    try:
        import redis
    except ImportError:
        _missing("the `redis` Python package is not installed (make build installs it)")
    return redis.Redis.from_url(url, socket_timeout=2)


@pytest.fixture(scope="session")
def _redis_server() -> Any:
    r = _client(URL)
    try:
        r.ping()
    except Exception as e:  # noqa: BLE001 - any failure to reach it means "no Redis"
        _missing(f"no Redis answers at {URL} ({type(e).__name__})")
    return r


@pytest.fixture
def redis_url(_redis_server: Any) -> str:
    """The shared Redis's URL (use it with `redis_prefix`)."""
    return URL


@pytest.fixture
def redis_prefix(_redis_server: Any) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted after the test."""
    prefix = f"llmledger-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_keys(_redis_server, prefix)


def delete_keys(r: Any, prefix: str) -> None:
    keys = list(r.scan_iter(match="{" + prefix + "}:*", count=1000))
    for i in range(0, len(keys), 500):
        r.delete(*keys[i : i + 500])


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports (all held at once while they are picked, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class OwnRedis:
    """A redis-server of the test's own (never the shared one on 6379)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.pid: int | None = None

    def start(self, keep_data: bool = True) -> None:
        if not keep_data:
            shutil.rmtree(self.dir / "appendonlydir", ignore_errors=True)
        pidfile = self.dir / "redis.pid"
        pidfile.unlink(missing_ok=True)
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--dir",
                str(self.dir),
                "--pidfile",
                str(pidfile),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            check=True,
        )
        r = _client(self.url)
        for _ in range(200):
            try:
                r.ping()
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.02)
        else:
            raise RuntimeError("own redis-server did not start: " + self.log())
        self.pid = int(pidfile.read_text())

    def kill9(self) -> None:
        assert self.pid is not None
        os.kill(self.pid, 9)
        for _ in range(200):
            try:
                os.kill(self.pid, 0)
                time.sleep(0.01)
            except ProcessLookupError:
                break
        self.pid = None

    def client(self) -> Any:
        return _client(self.url)

    def log(self) -> str:
        p = self.dir / "redis.log"
        return p.read_text() if p.exists() else ""


@pytest.fixture
def own_redis(tmp_path: Path, _redis_server: Any) -> Iterator[OwnRedis]:
    """A redis-server on a free port, with an append-only file (restart with or without its
    data); killed after the test."""
    if shutil.which("redis-server") is None:
        _missing("redis-server is not installed")
    d = tmp_path / "own-redis"
    d.mkdir()
    server = OwnRedis(d)
    server.start()
    yield server
    if server.pid is not None:
        server.kill9()


class OwnCluster:
    """A Redis Cluster of the test's own: `primaries` primaries, each with one replica, on free
    ports (a node timeout of one second, so a killed primary's replica takes over within a few
    seconds)."""

    def __init__(self, directory: Path, primaries: int = 3) -> None:
        self.dir = directory
        self.nodes = [OwnRedis(directory / f"node{i}") for i in range(2 * primaries)]
        self.primaries = primaries
        # Client and cluster-bus ports, all distinct (a bus port picked later could be a port
        # another node was given but has not bound yet).
        ports = free_ports(4 * primaries)
        for n, port in zip(self.nodes, ports, strict=False):
            n.port, n.url = port, f"redis://127.0.0.1:{port}/0"
        self.bus = ports[2 * primaries :]

    def start(self) -> None:
        for n, bus in zip(self.nodes, self.bus, strict=True):
            n.dir.mkdir(parents=True, exist_ok=True)
            pidfile = n.dir / "redis.pid"
            subprocess.run(
                ["redis-server", "--port", str(n.port), "--bind", "127.0.0.1"]
                + ["--daemonize", "yes", "--dir", str(n.dir), "--pidfile", str(pidfile)]
                + ["--save", "", "--appendonly", "no", "--logfile", str(n.dir / "redis.log")]
                + ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
                + ["--cluster-node-timeout", "1000", "--cluster-port", str(bus)],
                check=True,
            )
            deadline = time.monotonic() + 20
            while not (pidfile.exists() and pidfile.read_text().strip()):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {n.port} did not start: {n.log()}")
                time.sleep(0.02)
            n.pid = int(pidfile.read_text())
        subprocess.run(
            ["redis-cli", "--cluster", "create"]
            + [f"127.0.0.1:{n.port}" for n in self.nodes]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok(replicas=True)

    def wait_ok(self, timeout: float = 30, replicas: bool = False) -> None:
        """Until every live node says the cluster is ok and every slot has a live primary
        (and, with `replicas`, every primary a replica in sync)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                live = [n for n in self.nodes if n.pid is not None]
                if all(
                    b"cluster_state:ok" in n.client().execute_command("CLUSTER", "INFO")
                    for n in live
                ) and self.owner_of_slot_ok(live):
                    if not replicas or all(self.replica_online(n) for n in live):
                        return
            except Exception:  # noqa: BLE001 - not settled yet
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("own Redis Cluster did not become ok: " + self.nodes[0].log())
            time.sleep(0.1)

    def owner_of_slot_ok(self, live: list[OwnRedis]) -> bool:
        ports = {n.port for n in live}
        slots = live[0].client().execute_command("CLUSTER", "SLOTS")
        return sum(int(s[1]) - int(s[0]) + 1 for s in slots) == 16384 and all(
            int(s[2][1]) in ports for s in slots
        )

    def replica_online(self, node: OwnRedis) -> bool:
        """`node` is a replica, or a primary whose replica is connected and in sync."""
        info = node.client().info("replication")
        return info["role"] != "master" or (
            info.get("connected_slaves") == 1 and info["slave0"]["state"] == "online"
        )

    def owner(self, key: str) -> OwnRedis:
        """The node that is the primary of `key`'s slot now."""
        c = next(n for n in self.nodes if n.pid is not None).client()
        slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
        for lo, hi, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
            if int(lo) <= slot <= int(hi):
                port = int(primary[1])
                return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no node serves slot {slot}")

    def other_primary(self, node: OwnRedis) -> OwnRedis:
        """A live primary other than `node`."""
        return next(
            n
            for n in self.nodes
            if n is not node
            and n.pid is not None
            and n.client().execute_command("ROLE")[0] == b"master"
        )

    def url(self, *seeds: OwnRedis) -> str:
        """A `redis+cluster://` URL naming `seeds` (default: every node)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in seeds or self.nodes)

    def stop(self) -> None:
        for n in self.nodes:
            if n.pid is not None:
                n.kill9()


@pytest.fixture
def own_cluster(tmp_path: Path, _redis_server: Any) -> Iterator[OwnCluster]:
    """A Redis Cluster of three primaries and three replicas on free ports; killed after the
    test."""
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            _missing(f"{tool} is not installed")
    cluster = OwnCluster(tmp_path / "own-cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
