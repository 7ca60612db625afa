"""Certificates for the TLS tests, made with the `openssl` command: a CA of the test's own and
certificates it signs (server certificates naming hosts as subjectAltNames, client
certificates naming a user), EC P-256 keys, valid for two days. Nothing leaves the machine.

Without `openssl` the tests skip, saying how to get it, except where
LLMLEDGER_REQUIRE_SERVICES=1 (`.ci/run` sets it, and installs openssl): there they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


def need_openssl() -> str:
    """The `openssl` program, or the test skips (fails under LLMLEDGER_REQUIRE_SERVICES=1)."""
    found = shutil.which("openssl")
    if found is None:
        why = "the openssl command is not installed (apt-get install openssl)"
        if os.environ.get("LLMLEDGER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"TLS test required (LLMLEDGER_REQUIRE_SERVICES=1) but {why}")
        pytest.skip(f"TLS test skipped: {why}")
    return found


def _openssl(*args: str | Path) -> None:
    subprocess.run([need_openssl(), *map(str, args)], check=True, capture_output=True, timeout=60)


def _key(path: Path) -> Path:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    path.chmod(0o600)
    return path


@dataclass
class Issued:
    """A certificate (PEM) and its private key (PEM, owner-only)."""

    cert: Path
    key: Path


class CertAuthority:
    """A CA in `directory` (`ca.pem`, `ca.key`) that issues certificates there."""

    def __init__(self, directory: Path, name: str = "ca") -> None:
        self.dir = directory
        self.name = name
        self.cert = directory / f"{name}.pem"
        self.key = _key(directory / f"{name}.key")
        _openssl(
            "req", "-x509", "-new", "-key", self.key, "-out", self.cert, "-days", "2",
            "-subj", f"/CN=llmledger test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip

    def issue(self, stem: str, common_name: str, alt_names: list[str] | None = None) -> Issued:
        """A certificate for `common_name`: a server's when `alt_names` (`DNS:host`,
        `IP:1.2.3.4`) are given, else a client's (PostgreSQL's `cert` authentication reads the
        user from the common name)."""
        key = _key(self.dir / f"{stem}.key")
        csr = self.dir / f"{stem}.csr"
        _openssl("req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={common_name}")
        ext = self.dir / f"{stem}.ext"
        lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature"]
        if alt_names:
            lines += ["extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(alt_names)]
        else:
            lines += ["extendedKeyUsage=clientAuth"]
        ext.write_text("\n".join(lines) + "\n")
        cert = self.dir / f"{stem}.pem"
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
            "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
            "-out", cert, "-days", "2", "-extfile", ext,
        )  # fmt: skip
        return Issued(cert, key)
