"""PostgreSQL for the ledger tests: the `postgres_url` fixture gives each test a fresh database
on the server at 127.0.0.1:5432 (user `postgres`, trust authentication; `LLMLEDGER_PG_ADMIN_URL`
names another server) and drops it afterwards. It talks to the server with `psql`.

Without a server the tests are skipped with a message saying how to run them, except where
LLMLEDGER_REQUIRE_SERVICES=1 (`.ci/run` sets it): there they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

ADMIN_URL = os.environ.get(
    "LLMLEDGER_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
HOW_TO_RUN = (
    "start PostgreSQL on 127.0.0.1:5432 with trust authentication for user postgres "
    "(Debian: `pg_ctlcluster 15 main start`), or point LLMLEDGER_PG_ADMIN_URL at a server"
)


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
