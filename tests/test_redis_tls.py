"""Budgets shared through Redis over TLS (`budget_store="rediss://..."`), against a real
redis-server of the test's own that listens only on a TLS port (`--port 0 --tls-port ...`),
with a password and a server certificate from a CA the test makes (`tls_certs.py`). llmledger
finds the CA as it finds the system's roots (rustls-native-certs), here through
`SSL_CERT_FILE`; the tracker runs in a subprocess so the variable is set before its first TLS
connection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis_service import _missing, free_port
from tls_certs import CertAuthority, need_openssl

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="redis-server")

PASSWORD = "r3dis-Pa55w0rd"

# Three calls of $0.00002 fill a $0.00006 daily budget; the fourth is refused by it. "closed":
# a Redis that cannot be reached refuses the call (BudgetBackendError) instead of admitting it
# unchecked, so a TLS failure cannot pass for success.
CHILD = """
import json, sys
from decimal import Decimal
from llmledger import Budget, BudgetBackendError, BudgetExceededError, CostTracker
from llmledger.testing import UsageFakeChatModel

url, prefix = sys.argv[1], sys.argv[2]
t = CostTracker(
    prices={"shared-model": {"input": "0", "output": "1"}},
    budgets=[Budget.daily(Decimal("0.00006"), per="user_id")],
    budget_store=url, budget_prefix=prefix, budget_backend_error="closed",
)
llm = UsageFakeChatModel(model="shared-model", provider="acme", responses=["fine"],
                         usage={"input_tokens": 3, "output_tokens": 20, "total_tokens": 23})
def call():
    llm.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": "alice"}}, max_tokens=20)
out = {"calls": 0}
try:
    for _ in range(4):
        call()
        out["calls"] += 1
except BudgetBackendError as e:
    out["backend_error"] = str(e)
except BudgetExceededError as e:
    out["refused_by"] = e.budget
t.flush()
if "backend_error" not in out:
    (state,) = [b for b in t.budgets() if b["value"] == "alice"]
    out["spent"] = str(state["spent"])
info = t.budget_store_info()
out["url"] = info["url"]
out["errors"] = info["errors"]
t.close()
print(json.dumps(out))
"""


@dataclass
class TlsRedis:
    port: int
    ca: CertAuthority
    client: Any

    @property
    def url(self) -> str:
        return f"rediss://:{PASSWORD}@127.0.0.1:{self.port}/0"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    need_openssl()
    if shutil.which("redis-server") is None:
        _missing("redis-server is not installed")
    try:
        import redis
    except ImportError:
        _missing("the `redis` Python package is not installed (make build installs it)")
    ca = CertAuthority(tmp_path)
    server = ca.issue("redis", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    port = free_port()
    pidfile = tmp_path / "redis.pid"
    log = tmp_path / "redis.log"
    subprocess.run(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(server.cert), "--tls-key-file", str(server.key),
         "--tls-ca-cert-file", str(ca.cert), "--tls-auth-clients", "no",
         "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
         "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(tmp_path),
         "--logfile", str(log)],
        check=True,
    )  # fmt: skip
    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        password=PASSWORD,
        ssl=True,
        ssl_ca_certs=str(ca.cert),
        socket_timeout=2,
    )
    for _ in range(250):
        try:
            client.ping()
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.02)
    else:
        raise RuntimeError("TLS redis-server did not start: " + log.read_text())
    try:
        yield TlsRedis(port, ca, client)
    finally:
        os.kill(int(pidfile.read_text()), 9)


def run_child(url: str, prefix: str, cert_file: Path | None, tmp_path: Path) -> dict[str, Any]:
    env = {**os.environ, "LLMLEDGER_SPOOL_DIR": str(tmp_path / "spool")}
    env.pop("SSL_CERT_FILE", None)
    # No directory of extra roots either: only the file below (or the system's bundle).
    empty = tmp_path / "no-certs"
    empty.mkdir(exist_ok=True)
    env["SSL_CERT_DIR"] = str(empty)
    if cert_file is not None:
        env["SSL_CERT_FILE"] = str(cert_file)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, prefix],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_rediss_budgets_reserve_and_settle_over_tls(tls_redis: TlsRedis, tmp_path: Path) -> None:
    prefix = f"llmledger-tls-{uuid.uuid4().hex[:8]}"
    out = run_child(tls_redis.url, prefix, tls_redis.ca.cert, tmp_path)
    assert out["calls"] == 3 and out["refused_by"] == "day per user_id", out
    assert out["spent"] == "0.00006" and out["errors"] == 0, out
    assert out["url"] == f"rediss://***@127.0.0.1:{tls_redis.port}/0"
    # The window and the settled runs are in this Redis, under the prefix.
    keys = {k.decode() for k in tls_redis.client.scan_iter(match="{" + prefix + "}:*")}
    assert any(k.startswith("{" + prefix + "}:w:") for k in keys), keys
    assert sum(k.startswith("{" + prefix + "}:r:") for k in keys) == 3, keys


def test_rediss_with_an_untrusted_certificate_is_refused(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    # The system's roots (this machine's bundle) do not hold the test's CA.
    out = run_child(tls_redis.url, "llmledger-tls-untrusted", None, tmp_path)
    assert out["calls"] == 0 and "backend_error" in out, out
    assert "certificate" in out["backend_error"].lower(), out
    assert PASSWORD not in out["backend_error"]
    # Another CA as "the system" is refused the same way.
    other = CertAuthority(tmp_path, "other-ca")
    out = run_child(tls_redis.url, "llmledger-tls-untrusted", other.cert, tmp_path)
    assert out["calls"] == 0 and "certificate" in out["backend_error"].lower(), out


def test_rediss_url_names_its_own_ca(tls_redis: TlsRedis, tmp_path: Path) -> None:
    # `?sslrootcert=` in the URL: no SSL_CERT_FILE, the system's bundle does not hold the CA.
    prefix = f"llmledger-tls-{uuid.uuid4().hex[:8]}"
    out = run_child(f"{tls_redis.url}?sslrootcert={tls_redis.ca.cert}", prefix, None, tmp_path)
    assert out["calls"] == 3 and out["refused_by"] == "day per user_id", out
    assert out["spent"] == "0.00006" and out["errors"] == 0, out
    # A CA file that does not exist is a clear error when the tracker is made.
    bad = subprocess.run(
        [sys.executable, "-c", CHILD, f"{tls_redis.url}?sslrootcert=/nonexistent/ca.pem", prefix],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "/nonexistent/ca.pem" in bad.stderr, bad.stderr[-2000:]
    assert PASSWORD not in bad.stderr
