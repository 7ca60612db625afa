//! `rediss://` URLs that name their own CA or client certificate.

use super::{install_default_provider, take_query_params};

/// The query parameters [`redis_client`] takes out of a `rediss://` URL.
const REDIS_TLS_PARAMS: [&str; 3] = ["sslrootcert", "sslcert", "sslkey"];

/// A Redis client for `url`, as `redis::Client::open` makes one, except that a `rediss://`
/// URL may name its own CA and client certificate with the query parameters
/// `sslrootcert=/path/ca.pem` (or `system`, the default: the system's store), `sslcert=` and
/// `sslkey=` (PEM files), which are taken out before the `redis` crate sees the URL.
pub fn redis_client(url: &str) -> redis::RedisResult<redis::Client> {
    match redis_tls(url)? {
        (_, None) => redis::Client::open(url),
        (base, Some(certs)) => redis::Client::build_with_tls(base.as_str(), certs),
    }
}

/// `url` without the TLS parameters [`redis_client`] reads, and the certificates they name
/// (None when they name none): for clients built another way, such as
/// `redis::cluster::ClusterClientBuilder::new(nodes).certs(certificates)`.
pub fn redis_tls(url: &str) -> redis::RedisResult<(String, Option<redis::TlsCertificates>)> {
    install_default_provider();
    let (base, params) = take_query_params(url, &REDIS_TLS_PARAMS);
    if params.is_empty() {
        return Ok((base, None));
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
    Ok((
        base,
        Some(redis::TlsCertificates {
            client_tls,
            root_cert,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

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

    /// A redis-server listening only on a TLS port, its certificate (for 127.0.0.1) signed
    /// by a CA `openssl` made in `dir` (beside a second CA, `other-ca.pem`); killed when
    /// dropped.
    struct TlsRedis {
        dir: PathBuf,
        port: u16,
        child: std::process::Child,
    }

    impl Drop for TlsRedis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Runs `openssl` in `dir` with `args` (split at spaces).
    fn openssl(dir: &Path, args: &str) {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args.split(' '))
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args}: {out:?}");
    }

    const EC_KEY: &str = "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out";

    /// `ca.pem` and `other-ca.pem`, and `server.pem` (DNS:localhost, IP:127.0.0.1) signed by
    /// the first, with their keys.
    fn make_certs(dir: &Path) {
        for ca in ["ca", "other-ca"] {
            openssl(dir, &format!("{EC_KEY} {ca}.key"));
            openssl(
                dir,
                &format!(
                    "req -x509 -new -key {ca}.key -out {ca}.pem -days 2 -subj /CN={ca} \
                     -addext basicConstraints=critical,CA:TRUE \
                     -addext keyUsage=critical,keyCertSign,cRLSign"
                ),
            );
        }
        openssl(dir, &format!("{EC_KEY} server.key"));
        openssl(
            dir,
            "req -new -key server.key -out server.csr -subj /CN=localhost",
        );
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            dir,
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 7 -out server.pem \
             -days 2 -extfile server.ext",
        );
    }

    impl TlsRedis {
        /// The server, or None (and a note) without `openssl` or `redis-server`, unless
        /// LLMLEDGER_REQUIRE_SERVICES=1.
        fn start() -> Option<TlsRedis> {
            let have = |p: &str, arg: &str| {
                std::process::Command::new(p)
                    .arg(arg)
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if !(have("openssl", "version") && have("redis-server", "--version")) {
                assert!(
                    std::env::var("LLMLEDGER_REQUIRE_SERVICES").as_deref() != Ok("1"),
                    "TLS Redis test required (LLMLEDGER_REQUIRE_SERVICES=1) but openssl or \
                     redis-server is missing"
                );
                eprintln!("TLS Redis test skipped: openssl or redis-server is missing");
                return None;
            }
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "llmledger-tls-redis-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            make_certs(&dir);
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let args = format!(
                "--port 0 --tls-port {port} --bind 127.0.0.1 --tls-cert-file server.pem \
                 --tls-key-file server.key --tls-ca-cert-file ca.pem --tls-auth-clients no \
                 --appendonly no --logfile redis.log"
            );
            let child = std::process::Command::new("redis-server")
                .current_dir(&dir)
                .args(args.split(' '))
                .args(["--save", ""])
                .spawn()
                .unwrap();
            let server = TlsRedis { dir, port, child };
            for _ in 0..250 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(server);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            panic!("TLS redis-server did not start");
        }

        fn ping(&self, query: &str) -> redis::RedisResult<String> {
            let url = format!("rediss://127.0.0.1:{}/0{query}", self.port);
            let client = redis_client(&url)?;
            let mut c = client.get_connection_with_timeout(std::time::Duration::from_secs(5))?;
            redis::cmd("PING").query(&mut c)
        }
    }

    #[test]
    fn redis_client_trusts_the_ca_its_url_names() {
        let Some(server) = TlsRedis::start() else {
            return;
        };
        let ca = server.dir.join("ca.pem");
        assert_eq!(
            server
                .ping(&format!("?sslrootcert={}", ca.display()))
                .unwrap(),
            "PONG"
        );
        let other = server.dir.join("other-ca.pem");
        let e = server
            .ping(&format!("?sslrootcert={}", other.display()))
            .unwrap_err();
        assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        if std::env::var_os("SSL_CERT_FILE").is_none() {
            // The system's roots do not hold the test's CA.
            let e = server.ping("").unwrap_err();
            assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        }
    }
}
