"""PostgreSQL for the ledger tests: the `postgres_url` fixture gives each test a fresh database
on the server at 127.0.0.1:5432 (user `postgres`, trust authentication; `LLMLEDGER_PG_ADMIN_URL`
names another server) and drops it afterwards. It talks to the server with `psql`.
`throwaway_cluster()` starts a cluster of the test's own (initdb + pg_ctl on a temporary
directory and a free port; `LLMLEDGER_PG_BIN` names the server's programs), for tests that stop
the server or configure it (TLS, pg_hba.conf).

Without a server the tests are skipped with a message saying how to run them, except where
LLMLEDGER_REQUIRE_SERVICES=1 (`.ci/run` sets it): there they fail."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ADMIN_URL = os.environ.get(
    "LLMLEDGER_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
HOW_TO_RUN = (
    "start PostgreSQL on 127.0.0.1:5432 with trust authentication for user postgres "
    "(Debian: `pg_ctlcluster 15 main start`), or point LLMLEDGER_PG_ADMIN_URL at a server"
)
# The server programs of throwaway clusters (`Cluster`).
PG_BIN = Path(os.environ.get("LLMLEDGER_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _missing(why: str) -> None:
    if os.environ.get("LLMLEDGER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PostgreSQL test required (LLMLEDGER_REQUIRE_SERVICES=1) but {why}")
    pytest.skip(f"PostgreSQL test skipped: {why}; to run it, {HOW_TO_RUN}")


def psql(url: str, sql: str, *, timeout: float = 30) -> str:
    """Runs `sql` with psql against `url`; returns its unaligned output (raises on errors)."""
    out = subprocess.run(
        ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return out.stdout.strip()


def with_database(url: str, name: str) -> str:
    """`url` with its database replaced by `name`."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def _server_ok() -> str | None:
    if shutil.which("psql") is None:
        return "psql is not installed (apt-get install postgresql-client)"
    try:
        psql(ADMIN_URL, "SELECT 1", timeout=10)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        err = getattr(e, "stderr", "") or str(e)
        return f"no PostgreSQL answers at {ADMIN_URL} ({err.strip().splitlines()[-1:]})"
    return None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    why = _server_ok()
    if why:
        _missing(why)
    name = f"llmledger_test_{uuid.uuid4().hex[:12]}"
    psql(ADMIN_URL, f"CREATE DATABASE {name}")
    try:
        yield with_database(ADMIN_URL, name)
    finally:
        psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A PostgreSQL cluster in `root/pgdata` on a free port of 127.0.0.1, run as user
    `postgres` when we are root; `settings` are extra server settings (`-c name=value`), `hba`
    replaces pg_hba.conf."""

    def __init__(
        self, root: Path, settings: dict[str, str] | None = None, hba: str | None = None
    ) -> None:
        self.root = root
        self.dir = root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # psql through the Unix socket in the data directory (pg_hba.conf's `local` lines).
        self.socket_url = f"postgresql://postgres@/postgres?host={self.dir}&port={self.port}"
        self.log = root / "pg.log"
        self.settings = {"listen_addresses": "127.0.0.1", "fsync": "off", **(settings or {})}
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
        self.run("initdb", "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync")
        if hba is not None:
            (self.dir / "pg_hba.conf").write_text(hba)

    def give(self, path: Path) -> None:
        """Makes `path` the server's own (its key files must be, and owner-only)."""
        if self.as_user:
            shutil.chown(path, "postgres")

    def run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(PG_BIN / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        opts = " ".join(
            [f"-p {self.port}", f"-k {self.dir}"]
            + [f"-c {k}={v}" for k, v in self.settings.items()]
        )
        self.run("pg_ctl", "-D", str(self.dir), "-l", str(self.log), "-o", opts, "-w", "start")

    def crash(self) -> None:
        self.run("pg_ctl", "-D", str(self.dir), "-m", "immediate", "-w", "stop")


@contextlib.contextmanager
def throwaway_cluster(
    settings: dict[str, str] | None = None,
    hba: str | None = None,
    setup: Callable[[Cluster], None] | None = None,
) -> Iterator[Cluster]:
    """A started `Cluster`, stopped and removed afterwards; `setup(cluster)` runs before the
    start (to put files the server needs, such as certificates, in `cluster.root`)."""
    if not (PG_BIN / "initdb").exists():
        _missing(f"no {PG_BIN}/initdb (apt-get install postgresql-15)")
    # Not under pytest's tmp_path: the server's user must reach it (pytest's is root-only).
    root = Path(tempfile.mkdtemp(prefix="llmledger-pg-"))
    try:
        c = Cluster(root, settings, hba)
        if setup is not None:
            setup(c)
        c.start()
        try:
            yield c
        finally:
            try:
                c.run("pg_ctl", "-D", str(c.dir), "-m", "immediate", "stop")
            except subprocess.CalledProcessError:
                pass  # already stopped
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster of the test's own (stopped, crashed and started at will)."""
    with throwaway_cluster() as c:
        yield c
