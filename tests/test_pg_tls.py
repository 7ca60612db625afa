"""The PostgreSQL ledger over TLS, against a real server: a throwaway cluster with `ssl=on`, a
server certificate from a CA made by the test (`tls_certs.py`), a password (SCRAM) and a
pg_hba.conf of `hostssl` lines only, so a plain connection over TCP is refused. Each libpq
`sslmode` is tried for what it promises (docs/hosts.md, "TLS"), and no message, error or log
line shows the password."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from llmledger import CostTracker, LedgerError, ledger_summary
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel
from pg_service import Cluster, psql, throwaway_cluster
from tls_certs import CertAuthority, Issued, need_openssl

PASSWORD = "s3cret-Pa55w0rd"
# `local` (the test's psql, through the socket), a client-certificate user, then password
# logins: every TCP line is hostssl.
HBA = """\
local all all trust
hostssl all certuser 127.0.0.1/32 cert
hostssl all all 127.0.0.1/32 scram-sha-256
"""


@dataclass
class TlsServer:
    cluster: Cluster
    ca: CertAuthority
    other_ca: CertAuthority
    client: Issued

    def url(
        self,
        query: str,
        host: str = "127.0.0.1",
        user: str = "postgres",
        password: str | None = PASSWORD,
    ) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@{host}:{self.cluster.port}/postgres?{query}"

    def clear(self) -> None:
        psql(self.cluster.socket_url, "DROP TABLE IF EXISTS llmledger_calls, llmledger_schema, "
             "llmledger_secret")  # fmt: skip


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    need_openssl()
    made: dict[str, object] = {}

    def setup(c: Cluster) -> None:
        certs = c.root / "certs"
        certs.mkdir()
        ca = CertAuthority(certs)
        server = ca.issue("server", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
        c.give(server.key)
        made.update(
            ca=ca,
            other_ca=CertAuthority(certs, "other-ca"),
            client=ca.issue("client", "certuser"),
        )
        c.settings.update(
            ssl="on",
            ssl_cert_file=str(server.cert),
            ssl_key_file=str(server.key),
            ssl_ca_file=str(ca.cert),
        )

    with throwaway_cluster(hba=HBA, setup=setup) as c:
        psql(
            c.socket_url,
            f"ALTER ROLE postgres PASSWORD '{PASSWORD}'; CREATE ROLE certuser LOGIN SUPERUSER",
        )
        yield TlsServer(c, made["ca"], made["other_ca"], made["client"])  # type: ignore[arg-type]


@pytest.fixture
def server(tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TlsServer:
    # No ~/.postgresql/root.crt (libpq's default root certificate) from the machine.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LLMLEDGER_SPOOL_DIR", str(tmp_path / "spool"))
    tls_server.clear()
    return tls_server


def calls(store: str, n: int = 3) -> CostTracker:
    t = CostTracker(store=store)
    llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["hello"])
    for i in range(n):
        llm.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": f"u{i % 2}"}})
    t.flush()
    return t


def refused(store: str) -> str:
    """The error a tracker on `store` raises at its start (never the password)."""
    with pytest.raises(LedgerError) as e:
        CostTracker(store=store)
    message = str(e.value)
    assert PASSWORD not in message and ":***@" in message, message
    return message


def session_ssl(c: Cluster) -> str:
    """Whether the tracker's open connection (application_name llmledger) is TLS."""
    return psql(
        c.socket_url,
        "SELECT string_agg(ssl::text, ',') FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
        "WHERE application_name = 'llmledger'",
    )


def test_tracker_writes_and_report_reads_with_sslmode_require(
    server: TlsServer, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llmledger")
    url = server.url("sslmode=require")
    t = calls(url)
    assert session_ssl(server.cluster) == "true"
    info = t.store_info()
    assert info is not None and info["backend_down"] is False and PASSWORD not in info["path"]
    t.close()
    assert psql(server.cluster.socket_url, "SELECT count(*) FROM llmledger_calls") == "3"
    assert main(["report", url, "--by", "user_id"]) == 0
    out = capsys.readouterr().out
    assert f"Ledger: postgresql://postgres:***@127.0.0.1:{server.cluster.port}/postgres" in out
    assert "u0" in out and "u1" in out and PASSWORD not in out
    assert ledger_summary(url)["totals"]["calls"] == 3
    assert not any(PASSWORD in r.getMessage() for r in caplog.records)


def test_the_default_is_prefer_and_uses_tls_when_offered(server: TlsServer) -> None:
    t = calls(server.url("connect_timeout=5"))
    assert session_ssl(server.cluster) == "true"
    t.close()


def test_verify_full_with_the_ca_works(server: TlsServer) -> None:
    url = server.url(f"sslmode=verify-full&sslrootcert={server.ca.cert}")
    calls(url).close()
    assert ledger_summary(url)["totals"]["calls"] == 3
    # The certificate names localhost too.
    url = server.url(f"sslmode=verify-full&sslrootcert={server.ca.cert}", host="localhost")
    assert ledger_summary(url)["totals"]["calls"] == 3


def test_verify_full_without_a_ca_fails_saying_what_to_give(
    server: TlsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for mode in ["verify-full", "verify-ca"]:
        m = refused(server.url(f"sslmode={mode}"))
        assert f"sslmode={mode} needs a root certificate" in m, m
        assert "sslrootcert=/path/to/ca.pem" in m and "sslrootcert=system" in m, m
    assert main(["report", server.url("sslmode=verify-full")]) != 0
    err = capsys.readouterr().err
    assert "needs a root certificate" in err and PASSWORD not in err, err


def test_verify_full_against_a_name_the_certificate_does_not_carry_fails(
    server: TlsServer,
) -> None:
    # Connect to 127.0.0.1 but check the certificate against db.wrong.example.
    query = f"hostaddr=127.0.0.1&sslrootcert={server.ca.cert}"
    m = refused(server.url(f"sslmode=verify-full&{query}", host="db.wrong.example"))
    assert "does not name the host connected to" in m and "db.wrong.example" in m, m
    # verify-ca checks the chain only: the same connection is accepted.
    url = server.url(f"sslmode=verify-ca&{query}", host="db.wrong.example")
    calls(url).close()


def test_a_certificate_from_another_ca_is_not_trusted(server: TlsServer) -> None:
    for mode in ["verify-full", "verify-ca", "require"]:
        # require with a root certificate checks the chain, as in libpq.
        m = refused(server.url(f"sslmode={mode}&sslrootcert={server.other_ca.cert}"))
        assert "the server's certificate is not trusted" in m, m
        assert str(server.other_ca.cert) in m, m
    # prefer (the default) then tries without TLS, as libpq does; this server refuses that,
    # and the message gives both reasons.
    m = refused(server.url(f"sslrootcert={server.other_ca.cert}"))
    assert "no encryption" in m and "over TLS failed first" in m and "not trusted" in m, m


def test_sslrootcert_system_reads_ssl_cert_file(
    server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rustls-native-certs reads SSL_CERT_FILE at each connection: the test CA as "the system".
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca.cert))
    url = server.url("sslrootcert=system")  # sslmode defaults to verify-full with it
    calls(url).close()
    monkeypatch.setenv("SSL_CERT_FILE", str(server.other_ca.cert))
    assert "not trusted" in refused(url)


def test_sslmode_disable_against_a_hostssl_only_server_gets_the_servers_refusal(
    server: TlsServer,
) -> None:
    m = refused(server.url("sslmode=disable"))
    assert "no pg_hba.conf entry" in m and "no encryption" in m, m
    # allow: plain first, then TLS when the server refuses plain.
    calls(server.url("sslmode=allow")).close()


def test_a_wrong_password_over_tls_is_refused_without_showing_it(server: TlsServer) -> None:
    m = refused(server.url("sslmode=require", password="not-" + PASSWORD))
    assert "password authentication failed" in m and "not-" not in m, m


def test_client_certificate(server: TlsServer) -> None:
    c = server.client
    url = server.url(
        f"sslmode=verify-full&sslrootcert={server.ca.cert}&sslcert={c.cert}&sslkey={c.key}",
        user="certuser",
        password=None,
    )
    calls(url).close()
    assert ledger_summary(url)["totals"]["calls"] == 3
    # Without it, the server refuses (pg_hba.conf's `cert` line).
    with pytest.raises(LedgerError) as e:
        CostTracker(store=server.url("sslmode=require", user="certuser", password=None))
    assert "certificate" in str(e.value), e.value


def test_sslmode_require_against_a_server_without_tls(tmp_path: Path) -> None:
    with throwaway_cluster() as c:  # ssl off (initdb's default), trust
        with pytest.raises(LedgerError) as e:
            CostTracker(store=f"{c.url}?sslmode=require")
        assert "the server does not support TLS" in str(e.value), e.value
        # prefer (the default) connects without TLS.
        t = calls(c.url)
        assert session_ssl(c) == "false"
        t.close()


def test_a_url_without_a_password_takes_it_from_pgpass_or_pgpassword(
    server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    store = server.url("sslmode=require", password=None)
    passfile = tmp_path / "pgpass"
    passfile.write_text(
        "# libpq's format\n"
        f"127.0.0.1:{server.cluster.port}:other-db:postgres:wrong\n"
        f"127.0.0.1:{server.cluster.port}:postgres:postgres:{PASSWORD}\n"
    )
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    t = calls(store)
    assert (t.store_info() or {})["written"] == 3
    t.close()
    # A password file others can read is ignored, as libpq ignores it, and the error says so.
    passfile.chmod(0o644)
    message = str(pytest.raises(LedgerError, CostTracker, store=store).value)
    assert "ignored" in message and str(passfile) in message and PASSWORD not in message
    assert "asks for a password and none was given" in message, message
    # PGPASSWORD comes first.
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    calls(store).close()
