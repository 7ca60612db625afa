//! TLS for the servers llmledger connects to (the PostgreSQL ledger, Redis budgets): rustls
//! with the ring provider, the only crypto provider compiled in, and no system OpenSSL.
//!
//! The pieces both backends use: the provider, root certificates (a PEM file, or the system's
//! store through rustls-native-certs, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), a
//! client certificate, the three ways of checking a server (not at all, its chain only, its
//! chain and name), and [`redis_client`] for `rediss://` URLs naming their own CA.

mod params;
mod redis_url;
#[cfg(test)]
mod tests;

pub use params::{percent_decode, take_query_params};
pub use redis_url::{redis_client, redis_tls};

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
