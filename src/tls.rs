//! TLS for the servers llmledger connects to (the PostgreSQL ledger, Redis budgets): rustls
//! with the ring provider, the only crypto provider compiled in, and no system OpenSSL.
//!
//! The pieces both backends use: the provider, root certificates (a PEM file, or the system's
//! store through rustls-native-certs, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), a
//! client certificate, the three ways of checking a server (not at all, its chain only, its
//! chain and name), and [`redis_client`] for `rediss://` URLs naming their own CA.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// The crypto provider of every TLS connection: ring's.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Makes ring the process-wide default provider of this library's rustls (a no-op when one
/// is set), for crates that build their own `ClientConfig` with `ClientConfig::builder()`
/// (the `redis` crate): with it they never panic about a missing provider, even should a
/// second provider ever be compiled in.
pub fn install_default_provider() {
    if CryptoProvider::get_default().is_none() {
        // Err: another thread installed one first, which is as good.
        let _ = CryptoProvider::install_default((*provider()).clone());
    }
}

/// Where the certificates that may sign a server's certificate come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The certificates of a PEM file.
    File(PathBuf),
    /// The system's trusted roots (rustls-native-certs: `SSL_CERT_FILE` / `SSL_CERT_DIR` when
    /// set, else the distribution's bundle).
    System,
}

impl std::fmt::Display for Roots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Roots::File(p) => write!(f, "the root certificate file {}", p.display()),
            Roots::System => f.write_str(
                "the system's trusted roots (SSL_CERT_FILE / SSL_CERT_DIR when set, else the \
                 system's bundle)",
            ),
        }
    }
}

impl Roots {
    /// The root store, or what is wrong with the file or the system's store.
    pub fn load(&self) -> Result<RootCertStore, String> {
        let mut store = RootCertStore::empty();
        match self {
            Roots::File(path) => {
                for cert in pem_certificates(path, "root certificate")? {
                    store.add(cert).map_err(|e| {
                        format!(
                            "the root certificate file {} holds a certificate rustls cannot \
                             use as a root ({e})",
                            path.display()
                        )
                    })?;
                }
            }
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                let (_, ignored) = store.add_parsable_certificates(found.certs);
                if store.is_empty() {
                    let why = found
                        .errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Err(format!(
                        "no trusted root certificates found in the system's store ({}){}",
                        if why.is_empty() { "it is empty" } else { &why },
                        if ignored > 0 {
                            format!(", {ignored} unusable")
                        } else {
                            String::new()
                        }
                    ));
                }
            }
        }
        Ok(store)
    }
}

/// Every certificate of the PEM file `path`; `what` names it in messages.
fn pem_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read the {what} file {shown}: {}", pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the {what} file {shown} is not PEM: {}", pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "the {what} file {shown} holds no certificate (a PEM file with BEGIN CERTIFICATE \
             blocks is expected)"
        ));
    }
    Ok(certs)
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    }
}

/// A client certificate (its chain) and its private key, for servers that ask for one.
pub struct ClientAuth {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ClientAuth {
    /// Reads the certificate chain `cert` and the unencrypted private key `key` (PKCS#8,
    /// PKCS#1 or SEC1 PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<ClientAuth, String> {
        let chain = pem_certificates(cert, "client certificate")?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            format!(
                "cannot read a private key from {} ({}): an unencrypted PKCS#8, PKCS#1 or SEC1 \
                 PEM key is expected",
                key.display(),
                pem_error(&e)
            )
        })?;
        Ok(ClientAuth { chain, key })
    }
}

/// How a server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Not at all: the connection is encrypted, the server not authenticated (libpq's
    /// `sslmode=require` without a root certificate).
    Nothing,
    /// Its chain up to one of the roots, not the name in it (libpq's `verify-ca`).
    Chain,
    /// Its chain and that it names the host connected to (libpq's `verify-full`, and what
    /// HTTPS does).
    ChainAndName,
}

/// A client configuration: ring, TLS 1.2 and 1.3, servers checked as `check` says against
/// `roots` (unused with [`Check::Nothing`]), `auth` sent when the server asks.
pub fn client_config(
    check: Check,
    roots: Option<RootCertStore>,
    auth: Option<ClientAuth>,
) -> Result<ClientConfig, String> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match (check, roots) {
        (Check::Nothing, _) => Arc::new(Unverified(provider.clone())),
        (_, None) => return Err("no root certificates to check the server against".into()),
        (check, Some(roots)) => {
            let full =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("the root certificates cannot be used ({e})"))?;
            if check == Check::Chain {
                Arc::new(ChainOnly(full))
            } else {
                full
            }
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match auth {
        None => Ok(builder.with_no_client_auth()),
        Some(a) => builder
            .with_client_auth_cert(a.chain, a.key)
            .map_err(|e| format!("the client certificate or its key cannot be used ({e})")),
    }
}

/// Accepts any certificate (the handshake's signatures are still checked, so the session is
/// with whoever holds the certificate's key, whoever that is).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The WebPKI check without its last step, the name: webpki checks the chain (signatures,
/// validity dates, key usage) before the name, so a name mismatch means the rest passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A TLS failure in words: what was wrong with the server's certificate, or rustls's own
/// message for anything else.
pub fn describe_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "the server's certificate is not trusted: it is \
                 not signed by any of the root certificates (UnknownIssuer)"
                .into(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's certificate does not name the host connected to: {}",
                    rustls::Error::InvalidCertificate(c.clone())
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the server's certificate has expired ({e})")
            }
            other => format!(
                "the server's certificate was rejected: {}",
                rustls::Error::InvalidCertificate(other.clone())
            ),
        },
        other => format!("TLS failed: {other}"),
    }
}

/// The rustls error among `e`'s sources (a handshake failure), if any.
pub fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// The query parameters [`redis_client`] takes out of a `rediss://` URL.
const REDIS_TLS_PARAMS: [&str; 3] = ["sslrootcert", "sslcert", "sslkey"];

/// A Redis client for `url`, as `redis::Client::open` makes one, except that a `rediss://`
/// URL may name its own CA and client certificate with the query parameters
/// `sslrootcert=/path/ca.pem` (or `system`, the default: the system's store), `sslcert=` and
/// `sslkey=` (PEM files), which are taken out before the `redis` crate sees the URL.
pub fn redis_client(url: &str) -> redis::RedisResult<redis::Client> {
    install_default_provider();
    let (base, params) = take_query_params(url, &REDIS_TLS_PARAMS);
    if params.is_empty() {
        return redis::Client::open(url);
    }
    let invalid =
        |m: String| redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "TLS", m));
    if !url.starts_with("rediss://") {
        return Err(invalid(
            "sslrootcert=, sslcert= and sslkey= need a rediss:// (TLS) URL".into(),
        ));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let read = |what: &str, p: &str| {
        std::fs::read(p).map_err(|e| invalid(format!("cannot read the {what} file {p}: {e}")))
    };
    let root_cert = match get("sslrootcert") {
        None | Some("system") => None,
        Some(p) => Some(read("root certificate", p)?),
    };
    let client_tls = match (get("sslcert"), get("sslkey")) {
        (None, None) => None,
        (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
            client_cert: read("client certificate", c)?,
            client_key: read("client key", k)?,
        }),
        _ => return Err(invalid("sslcert= and sslkey= go together".into())),
    };
    redis::Client::build_with_tls(
        base.as_str(),
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
}

/// `url` without the query parameters named in `names`, and those parameters (percent-decoded,
/// in order). The query starts at the first `?` after the user part (which ends at the first
/// `@`, as the PostgreSQL client reads it).
pub fn take_query_params(url: &str, names: &[&str]) -> (String, Vec<(String, String)>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let after_user = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |i| after_scheme + i + 1);
    let Some(q) = url[after_user..].find('?').map(|i| after_user + i) else {
        return (url.to_string(), Vec::new());
    };
    let (head, query) = (&url[..q], &url[q + 1..]);
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let key = percent_decode(k);
        if names.contains(&key.as_str()) {
            taken.push((key, percent_decode(v)));
        } else {
            kept.push(part);
        }
    }
    let rebuilt = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    (rebuilt, taken)
}

/// `%XX` escapes decoded (a malformed escape is kept as it is).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                // Two hex digits: at most 255.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_taken_out() {
        let (rest, taken) = take_query_params(
            "postgresql://u:p%3Fw@h:5/db?sslmode=verify-full&connect_timeout=5&sslrootcert=%2Ftmp%2Fca%20x.pem",
            &["sslmode", "sslrootcert"],
        );
        assert_eq!(rest, "postgresql://u:p%3Fw@h:5/db?connect_timeout=5");
        assert_eq!(
            taken,
            vec![
                ("sslmode".to_string(), "verify-full".to_string()),
                ("sslrootcert".to_string(), "/tmp/ca x.pem".to_string())
            ]
        );
        // A '?' in the (unencoded) password is not the query's start.
        let (rest, taken) =
            take_query_params("postgresql://u:a?b@h/db?sslmode=require", &["sslmode"]);
        assert_eq!(rest, "postgresql://u:a?b@h/db");
        assert_eq!(taken.len(), 1);
        let (rest, taken) = take_query_params("rediss://h:6380/0", &REDIS_TLS_PARAMS);
        assert_eq!((rest.as_str(), taken.len()), ("rediss://h:6380/0", 0));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn only_ring_is_compiled_in() {
        // One crypto provider (ring) and no system OpenSSL: rustls then never needs to be
        // told which provider to use, and the wheel links no libssl.
        let lock = include_str!("../Cargo.lock");
        for banned in ["aws-lc-rs", "aws-lc-sys", "openssl-sys", "native-tls"] {
            assert!(
                !lock.contains(&format!("name = \"{banned}\"")),
                "{banned} is in Cargo.lock"
            );
        }
        install_default_provider();
        assert!(CryptoProvider::get_default().is_some());
        // What the redis crate does for every rediss:// connection.
        let _ = ClientConfig::builder();
    }

    #[test]
    fn missing_files_are_named() {
        let e = Roots::File("/nonexistent/ca.pem".into())
            .load()
            .unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = std::env::temp_dir().join(format!("llmledger-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Roots::File(empty.clone()).load().unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");
        let e = ClientAuth::load(&empty, &empty).err().unwrap();
        assert!(e.contains("client certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(client_config(Check::ChainAndName, None, None).is_err());
        assert!(client_config(Check::Nothing, None, None).is_ok());
    }

    #[test]
    fn redis_tls_params_need_rediss() {
        let e = redis_client("redis://h:6379/0?sslrootcert=/tmp/x.pem").unwrap_err();
        assert!(e.to_string().contains("rediss://"), "{e}");
        let e = redis_client("rediss://h:6379/0?sslrootcert=/nonexistent/ca.pem").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let e = redis_client("rediss://h:6379/0?sslcert=/tmp/c.pem").unwrap_err();
        assert!(e.to_string().contains("go together"), "{e}");
        assert!(redis_client("rediss://:pw@h:6379/0?sslrootcert=system").is_ok());
        assert!(redis_client("rediss://h:6379/0").is_ok());
    }
}
