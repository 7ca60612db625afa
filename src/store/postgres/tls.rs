//! TLS for the PostgreSQL ledger, as libpq means it: `sslmode` (disable, allow, prefer,
//! require, verify-ca, verify-full; `prefer` when the URL says nothing), `sslrootcert` (a PEM
//! file, or `system`), `sslcert` / `sslkey` (a client certificate) and `sslsni`. The `postgres`
//! client parses only disable / prefer / require, so the URL's TLS parameters are taken out
//! before it sees the URL, and each connection attempt is made here with rustls.

use std::path::PathBuf;

use postgres::config::{Host, SslMode as WireMode, SslNegotiation};
use postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::describe::describe;
use crate::tls::{self as shared, Check, ClientAuth, Roots};

/// The URL parameters this module reads (the rest go to the `postgres` client).
pub const PARAMS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "sslsni"];

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// Plain first; TLS when the server refuses a plain connection.
    Allow,
    /// TLS when the server offers it, else plain (libpq's default).
    Prefer,
    /// TLS or nothing; the certificate checked only against a root certificate, when one is
    /// given.
    Require,
    /// TLS, the certificate's chain checked against the root certificates.
    VerifyCa,
    /// TLS, the chain checked and the certificate naming the host.
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Option<SslMode> {
        Some(match v {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// The TLS settings of one URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsParams {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert` as given (`system`, or a file).
    rootcert: Option<String>,
    /// `sslcert`.
    cert: Option<PathBuf>,
    /// `sslkey`.
    key: Option<PathBuf>,
    /// `sslsni` (default on): send the host name in the handshake.
    sni: bool,
}

impl Default for TlsParams {
    fn default() -> Self {
        TlsParams {
            mode: SslMode::Prefer,
            rootcert: None,
            cert: None,
            key: None,
            sni: true,
        }
    }
}

/// A file in `~/.postgresql/` (where libpq looks when the URL names none).
fn libpq_default(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".postgresql").join(name))
}

impl TlsParams {
    /// The settings of the URL's TLS parameters (each `(name, decoded value)`; a later one
    /// wins), or what is wrong with them.
    pub fn from_params(params: &[(String, String)]) -> Result<TlsParams, String> {
        let mut p = TlsParams::default();
        let mut mode_given = false;
        for (k, v) in params {
            match k.as_str() {
                "sslmode" => {
                    p.mode = SslMode::parse(v).ok_or_else(|| {
                        format!(
                            "sslmode={v} is not one of disable, allow, prefer, require, \
                             verify-ca, verify-full"
                        )
                    })?;
                    mode_given = true;
                }
                "sslrootcert" => p.rootcert = Some(v.clone()).filter(|v| !v.is_empty()),
                "sslcert" => p.cert = Some(PathBuf::from(v)).filter(|_| !v.is_empty()),
                "sslkey" => p.key = Some(PathBuf::from(v)).filter(|_| !v.is_empty()),
                "sslsni" => {
                    p.sni = match v.as_str() {
                        "1" => true,
                        "0" => false,
                        _ => return Err(format!("sslsni={v} is not 0 or 1")),
                    }
                }
                _ => {}
            }
        }
        if p.rootcert.as_deref() == Some("system") {
            // libpq 16: the system's roots vouch for any public name, so only a name check
            // makes them mean something; verify-full is their default and the only mode.
            if !mode_given {
                p.mode = SslMode::VerifyFull;
            } else if p.mode != SslMode::VerifyFull && p.mode != SslMode::Disable {
                return Err(format!(
                    "sslmode={} may not be used with sslrootcert=system (use sslmode=verify-full)",
                    p.mode.name()
                ));
            }
        }
        Ok(p)
    }

    /// The settings the `postgres` client parsed itself (a `key=value` connection string).
    pub fn from_config(cfg: &Config) -> TlsParams {
        let mode = match cfg.get_ssl_mode() {
            WireMode::Disable => SslMode::Disable,
            WireMode::Require => SslMode::Require,
            _ => SslMode::Prefer,
        };
        TlsParams {
            mode,
            ..TlsParams::default()
        }
    }

    /// The roots to check the server against: `sslrootcert`, else `~/.postgresql/root.crt` if
    /// it exists, else none.
    fn roots(&self) -> Option<Roots> {
        match self.rootcert.as_deref() {
            Some("system") => Some(Roots::System),
            Some(path) => Some(Roots::File(PathBuf::from(path))),
            None => libpq_default("root.crt")
                .filter(|p| p.is_file())
                .map(Roots::File),
        }
    }

    /// The client certificate to offer: `sslcert` and `sslkey` (each defaulting to libpq's
    /// `~/.postgresql/postgresql.crt` / `.key`; named ones must exist), else none.
    fn client_auth(&self) -> Result<Option<ClientAuth>, String> {
        let cert = self
            .cert
            .clone()
            .or_else(|| libpq_default("postgresql.crt").filter(|p| p.is_file()));
        let Some(cert) = cert else {
            return Ok(None);
        };
        let key = self
            .key
            .clone()
            .or_else(|| libpq_default("postgresql.key"))
            .filter(|p| self.key.is_some() || p.is_file());
        match key {
            Some(key) => ClientAuth::load(&cert, &key).map(Some),
            None if self.cert.is_none() => Ok(None),
            None => Err(format!(
                "sslcert={} needs its private key: give sslkey=",
                cert.display()
            )),
        }
    }

    /// The rustls configuration of a TLS attempt, or why there can be none.
    fn client_config(&self, negotiation: SslNegotiation) -> Result<rustls::ClientConfig, String> {
        let roots = self.roots();
        let check = match (self.mode, &roots) {
            (SslMode::VerifyFull, Some(_)) => Check::ChainAndName,
            (mode, None) if mode.verifies() => {
                let default = libpq_default("root.crt").map_or_else(
                    || "~/.postgresql/root.crt".into(),
                    |p| p.display().to_string(),
                );
                return Err(format!(
                    "sslmode={} needs a root certificate to check the server's certificate \
                     against, and there is none ({default} does not exist): give \
                     sslrootcert=/path/to/ca.pem (the CA that signed the server's certificate) \
                     or sslrootcert=system (the system's trusted roots), or use sslmode=require \
                     to encrypt without checking the server",
                    mode.name()
                ));
            }
            // verify-ca; and libpq's weaker modes check the chain too when there is a root
            // certificate.
            (_, Some(_)) => Check::Chain,
            (_, None) => Check::Nothing,
        };
        let store = roots.as_ref().map(Roots::load).transpose()?;
        let mut config = shared::client_config(check, store, self.client_auth()?)?;
        config.enable_sni = self.sni;
        if negotiation == SslNegotiation::Direct {
            // Direct TLS (PostgreSQL 17) needs the protocol named by ALPN.
            config.alpn_protocols = vec![b"postgresql".to_vec()];
        }
        Ok(config)
    }

    /// What the roots are, for messages.
    fn roots_shown(&self) -> String {
        self.roots().map_or_else(
            || "none (the certificate is not checked)".into(),
            |r| r.to_string(),
        )
    }
}

/// Why a connection could not be made.
#[derive(Debug)]
pub struct ConnectError {
    message: String,
    /// Connecting again will not help: the server refused (a wrong password, no such
    /// database), or TLS said no (a certificate not trusted, a missing root certificate, TLS
    /// required but not offered).
    refused: bool,
    /// The server answered with an error (`allow` then tries TLS).
    by_server: bool,
    /// The TLS handshake failed (`prefer` then connects without TLS, as libpq does).
    handshake: bool,
}

impl ConnectError {
    /// Adds `note` to the message (something that may explain the failure).
    pub fn add_note(&mut self, note: &str) {
        self.message.push_str(" (");
        self.message.push_str(note);
        self.message.push(')');
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

impl ConnectError {
    /// Connecting again will not help (the server or the TLS check said no), as opposed to
    /// a server that could not be reached.
    pub fn refused(&self) -> bool {
        self.refused
    }

    fn tls_setup(message: &str) -> ConnectError {
        ConnectError {
            message: format!("TLS: {message}"),
            refused: true,
            by_server: false,
            handshake: false,
        }
    }

    /// A failed attempt's error; `p` says how TLS was set up, for the message.
    pub fn from_client(e: &postgres::Error, p: &TlsParams) -> ConnectError {
        use std::error::Error as _;
        if e.as_db_error().is_some() {
            return ConnectError {
                message: describe(e),
                refused: true,
                by_server: true,
                handshake: false,
            };
        }
        if let Some(r) = e.source().and_then(shared::rustls_error) {
            let mut message = format!(
                "TLS (sslmode={}, roots: {}): {}",
                p.mode.name(),
                p.roots_shown(),
                shared::describe_error(r)
            );
            if matches!(r, rustls::Error::AlertReceived(_)) {
                message.push_str(
                    " (the server ended the handshake: does it want a client certificate, \
                     sslcert= and sslkey=?)",
                );
            }
            return ConnectError {
                message,
                refused: true,
                by_server: false,
                handshake: true,
            };
        }
        if e.source()
            .is_some_and(|s| s.to_string() == "server does not support TLS")
        {
            return ConnectError {
                message: format!(
                    "the server does not support TLS (its `ssl` setting is off), and \
                     sslmode={} requires TLS: turn ssl on in the server, or use sslmode=prefer",
                    p.mode.name()
                ),
                refused: true,
                by_server: false,
                handshake: false,
            };
        }
        if describe(e).contains("password missing") {
            // The server asks for a password and none was given (URL, PGPASSWORD, password
            // file): asking again will not find one.
            return ConnectError {
                message: "the server asks for a password and none was given: put it in the URL \
                          (postgresql://user:password@host/db), PGPASSWORD or a password file \
                          (PGPASSFILE, else ~/.pgpass, owner-only)"
                    .into(),
                refused: true,
                by_server: false,
                handshake: false,
            };
        }
        ConnectError {
            message: describe(e),
            refused: false,
            by_server: false,
            handshake: false,
        }
    }

    /// This error of a second attempt, saying how the first (`how`) failed too.
    fn after(mut self, first: &ConnectError, how: &str) -> ConnectError {
        self.message = format!(
            "{} (the attempt {how} failed first: {})",
            self.message, first.message
        );
        self
    }

    /// A session error right after connecting (the connection broke, or the server refused).
    pub fn after_connect(e: &postgres::Error) -> ConnectError {
        ConnectError {
            message: describe(e),
            refused: e.as_db_error().is_some(),
            by_server: e.as_db_error().is_some(),
            handshake: false,
        }
    }
}

/// Every host of `cfg` is a Unix socket, where libpq uses no TLS.
fn unix_sockets_only(cfg: &Config) -> bool {
    !cfg.get_hosts().is_empty()
        && cfg.get_hostaddrs().is_empty()
        && cfg.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)))
}

/// A connection as `p` says: plain, TLS, or one and then the other (`allow`, `prefer`).
pub fn connect(cfg: &Config, p: &TlsParams) -> Result<Client, ConnectError> {
    if p.mode == SslMode::Disable || unix_sockets_only(cfg) {
        return plain(cfg, p);
    }
    match p.mode {
        SslMode::Allow => match plain(cfg, p) {
            Err(first) if first.by_server => {
                with_tls(cfg, p, WireMode::Require).map_err(|e| e.after(&first, "without TLS"))
            }
            other => other,
        },
        SslMode::Prefer => match with_tls(cfg, p, WireMode::Prefer) {
            Err(first) if first.handshake => plain(cfg, p).map_err(|e| e.after(&first, "over TLS")),
            other => other,
        },
        _ => with_tls(cfg, p, WireMode::Require),
    }
}

fn plain(cfg: &Config, p: &TlsParams) -> Result<Client, ConnectError> {
    let mut cfg = cfg.clone();
    cfg.ssl_mode(WireMode::Disable);
    cfg.connect(postgres::NoTls)
        .map_err(|e| ConnectError::from_client(&e, p))
}

fn with_tls(cfg: &Config, p: &TlsParams, wire: WireMode) -> Result<Client, ConnectError> {
    let config = p
        .client_config(cfg.get_ssl_negotiation())
        .map_err(|m| ConnectError::tls_setup(&m))?;
    let mut cfg = cfg.clone();
    cfg.ssl_mode(wire);
    cfg.connect(MakeRustlsConnect::new(config))
        .map_err(|e| ConnectError::from_client(&e, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<TlsParams, String> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        TlsParams::from_params(&v)
    }

    #[test]
    fn sslmode_values() {
        assert_eq!(params(&[]).unwrap().mode, SslMode::Prefer);
        for (v, m) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Allow),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(params(&[("sslmode", v)]).unwrap().mode, m);
            assert_eq!(m.name(), v);
        }
        let e = params(&[("sslmode", "strict")]).unwrap_err();
        assert!(
            e.contains("sslmode=strict") && e.contains("verify-full"),
            "{e}"
        );
        // A later value wins, as in libpq.
        let p = params(&[("sslmode", "disable"), ("sslmode", "require")]).unwrap();
        assert_eq!(p.mode, SslMode::Require);
    }

    #[test]
    fn sslrootcert_system_means_verify_full() {
        let p = params(&[("sslrootcert", "system")]).unwrap();
        assert_eq!(
            (p.mode, p.roots()),
            (SslMode::VerifyFull, Some(Roots::System))
        );
        let e = params(&[("sslrootcert", "system"), ("sslmode", "require")]).unwrap_err();
        assert!(e.contains("verify-full"), "{e}");
        let p = params(&[("sslrootcert", "/etc/ca.pem"), ("sslmode", "require")]).unwrap();
        assert_eq!(p.roots(), Some(Roots::File("/etc/ca.pem".into())));
    }

    #[test]
    fn sslsni_and_client_certificates() {
        assert!(!params(&[("sslsni", "0")]).unwrap().sni);
        assert!(params(&[("sslsni", "yes")]).is_err());
        let p = params(&[("sslcert", "/nonexistent/c.pem")]).unwrap();
        let e = p.client_auth().err().unwrap();
        assert!(e.contains("/nonexistent/c.pem"), "{e}");
    }

    #[test]
    fn verify_without_a_root_certificate_says_what_to_give() {
        // HOME pointed nowhere, so ~/.postgresql/root.crt cannot exist.
        let p = TlsParams {
            mode: SslMode::VerifyFull,
            ..TlsParams::default()
        };
        if p.roots().is_some() {
            return; // this machine has a ~/.postgresql/root.crt
        }
        let e = p.client_config(SslNegotiation::Postgres).unwrap_err();
        assert!(
            e.contains("sslmode=verify-full needs a root certificate")
                && e.contains("sslrootcert=system"),
            "{e}"
        );
        let p = TlsParams {
            mode: SslMode::Require,
            ..TlsParams::default()
        };
        assert!(p.client_config(SslNegotiation::Postgres).is_ok());
    }

    #[test]
    fn unix_sockets_get_no_tls() {
        let cfg: Config = "host=/run/postgresql user=x".parse().unwrap();
        assert!(unix_sockets_only(&cfg));
        let cfg: Config = "host=db user=x".parse().unwrap();
        assert!(!unix_sockets_only(&cfg));
    }
}
