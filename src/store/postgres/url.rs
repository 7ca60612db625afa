//! A PostgreSQL ledger's URL: kept whole for connecting, shown only without its password.

use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, Config};

use super::passfile;
use super::tls::{self, ConnectError, SslMode, TlsParams};
use crate::error::{Error, Result};

/// How long a connection attempt waits for the server, unless the URL sets
/// `connect_timeout`: short, because the writer (and a fork waiting for it) waits that long
/// when the database is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long sent data may stay unacknowledged before the connection counts as broken (a
/// server gone without a reset, e.g. behind a dead network link).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// A `postgresql://` (or `postgres://`) URL. Its `Debug` and [`PgUrl::redacted`] never show the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// The URL the `postgres` client parses: the given one without its TLS parameters.
    text: String,
    redacted: String,
    /// `sslmode` and the rest of the TLS parameters.
    tls: TlsParams,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// The byte ranges of `text` holding a password: the user part's, and every `password=`
/// parameter's value. The user part's password runs from its first `:` to the `@` that ends
/// it; that is the first `@` for the client (a password may hold an unencoded `/` or `?`), and
/// the last one before the host for a reader (a password may hold an unencoded `@`): both are
/// hidden.
fn secret_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let start = text.find("://").map_or(0, |i| i + 3);
    let rest = &text[start..];
    let mut spans = Vec::new();
    let mut user: Option<std::ops::Range<usize>> = None;
    let mut widen = |colon: usize, at: usize| {
        let r = start + colon + 1..start + at;
        user = Some(match user.take() {
            Some(u) => u.start.min(r.start)..u.end.max(r.end),
            None => r,
        });
    };
    if let Some(at) = rest.find('@') {
        if let Some(colon) = rest[..at].find(':') {
            widen(colon, at);
        }
    }
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    if let Some(at) = authority.rfind('@') {
        if let Some(colon) = authority[..at].find(':') {
            widen(colon, at);
        }
    }
    spans.extend(user);
    // `password=` wherever a parameter can start: the query's start depends on where the
    // user part ends, so every `?` or `&` counts.
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password=") {
        let key = from + i;
        let value = key + "password=".len();
        if key > 0 && matches!(lower.as_bytes()[key - 1], b'?' | b'&') {
            let end = text[value..].find('&').map_or(text.len(), |j| value + j);
            spans.push(value..end);
        }
        from = value;
    }
    spans.sort_by_key(|r| r.start);
    spans
}

/// `text` with the password of its user part and any `password=` parameter replaced by
/// `***`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in secret_spans(text) {
        if span.start < at {
            at = at.max(span.end);
            continue;
        }
        out.push_str(&text[at..span.start]);
        out.push_str("***");
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

/// `message` with every password of `url` in it replaced by `***` (for messages of the
/// client library, which might quote the URL); a password too short to replace safely (it
/// could be part of any word) drops the message instead.
fn scrub(message: &str, url: &str) -> String {
    let mut m = message.to_string();
    for span in secret_spans(url) {
        let secret = &url[span];
        if secret.len() >= 4 {
            m = m.replace(secret, "***");
        } else if !secret.is_empty() && m.contains(secret) {
            return "the client could not parse it".into();
        }
    }
    m
}

impl PgUrl {
    /// Checks `text` is a URL the PostgreSQL client can connect with. The error shows the URL
    /// without its password.
    pub fn parse(text: &str) -> Result<PgUrl> {
        let redacted = redact(text);
        let bad = |why: String| {
            Error::InvalidArgument(format!(
                "'{redacted}' is not a PostgreSQL URL llmledger can use ({why}): write \
                 postgresql://user[:password]@host[:port]/database[?sslmode=...]"
            ))
        };
        let is_url = text.starts_with("postgresql://") || text.starts_with("postgres://");
        let (client_text, params) = if is_url {
            crate::tls::take_query_params(text, &tls::PARAMS)
        } else {
            (text.to_string(), Vec::new())
        };
        let cfg = Config::from_str(&client_text).map_err(|e| {
            use std::error::Error as _;
            let why = e
                .source()
                .map_or_else(|| e.to_string(), ToString::to_string);
            bad(scrub(&why, text))
        })?;
        let tls = if is_url {
            TlsParams::from_params(&params).map_err(bad)?
        } else {
            TlsParams::from_config(&cfg)
        };
        if cfg.get_ssl_negotiation() == postgres::config::SslNegotiation::Direct
            && !matches!(
                tls.mode,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
            )
        {
            // As libpq: direct TLS has no plain fallback to negotiate.
            return Err(bad(
                "sslnegotiation=direct needs sslmode=require, verify-ca or verify-full".into(),
            ));
        }
        Ok(PgUrl {
            text: client_text,
            redacted,
            tls,
        })
    }

    /// The URL without its password: for messages, logs and results.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The URL's `sslmode` (libpq's: `prefer` when it says nothing).
    pub fn ssl_mode(&self) -> SslMode {
        self.tls.mode
    }

    /// A new connection (session time zone UTC, so times read back as `+00:00`), over TLS as
    /// the URL's `sslmode` says.
    pub fn connect(&self) -> std::result::Result<Client, ConnectError> {
        // Parsed when the URL was accepted: cannot fail now.
        let mut cfg = Config::from_str(&self.text).unwrap_or_default();
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(CONNECT_TIMEOUT);
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("llmledger");
        }
        cfg.tcp_user_timeout(TCP_USER_TIMEOUT);
        // No password in the URL: PGPASSWORD or the password file, as libpq.
        let ignored = passfile::fill(&mut cfg);
        let mut client = tls::connect(&cfg, &self.tls).map_err(|mut e| {
            if let Some(w) = ignored {
                e.add_note(&w);
            }
            e
        })?;
        client
            .batch_execute("SET TIME ZONE 'UTC'")
            .map_err(|e| ConnectError::after_connect(&e))?;
        Ok(client)
    }

    /// The error of a failed operation on this ledger, as the store reports it.
    pub fn err(&self, message: impl std::fmt::Display) -> Error {
        Error::Ledger {
            path: self.redacted.clone(),
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgresql://app:s3cr@t@db.example:5432/costs?sslmode=disable"),
            "postgresql://app:***@db.example:5432/costs?sslmode=disable"
        );
        assert_eq!(
            redact("postgres://db/costs?user=app&password=hunter2"),
            "postgres://db/costs?user=app&password=***"
        );
        assert_eq!(
            redact("postgresql://app@db/costs"),
            "postgresql://app@db/costs"
        );
        let u = PgUrl::parse("postgresql://app:hunter2@localhost/costs").unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
        let e = PgUrl::parse("postgresql://app:hunter2@localhost:notaport/costs")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn passwords_with_slashes_and_question_marks_are_redacted() {
        // The client reads the password up to the first '@', so '/' and '?' may be in it
        // unencoded; the redaction once stopped at the first '/' and showed the rest.
        assert_eq!(
            redact("postgresql://app:pa/ss?wd@db:5432/costs?sslmode=require"),
            "postgresql://app:***@db:5432/costs?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://db/costs?sslmode=require&PASSWORD=x&user=u"),
            "postgresql://db/costs?sslmode=require&PASSWORD=***&user=u"
        );
        let u = PgUrl::parse("postgresql://app:pa/ss@db/costs").unwrap();
        assert_eq!(u.redacted(), "postgresql://app:***@db/costs");
    }

    #[test]
    fn client_messages_are_scrubbed_of_passwords() {
        let url = "postgresql://app:hunter2@db/x";
        assert_eq!(scrub("bad hunter2 here", url), "bad *** here");
        assert_eq!(
            scrub("unknown option `o`", "postgresql://app:o@db/x"),
            "the client could not parse it"
        );
        assert_eq!(
            scrub("unknown option `x`", "postgresql://app:zq@db/x"),
            "unknown option `x`"
        );
    }

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let u = PgUrl::parse(
            "postgresql://app:pw@db:5432/costs?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem\
             &connect_timeout=5&sslcert=/c.pem&sslkey=/k.pem&sslsni=0",
        )
        .unwrap();
        assert_eq!(u.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(
            u.text,
            "postgresql://app:pw@db:5432/costs?connect_timeout=5"
        );
        // What the user wrote, password aside, is what messages show.
        assert!(u
            .redacted()
            .contains("sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"));
        assert_eq!(
            PgUrl::parse("postgresql://db/costs").unwrap().ssl_mode(),
            SslMode::Prefer
        );
        for mode in ["allow", "verify-ca"] {
            let u = PgUrl::parse(&format!("postgres://db/x?sslmode={mode}")).unwrap();
            assert_eq!(u.text, "postgres://db/x");
        }
        // key=value strings: the client's own sslmode.
        let u = PgUrl::parse("host=db dbname=x sslmode=require").unwrap();
        assert_eq!(u.ssl_mode(), SslMode::Require);
    }

    #[test]
    fn bad_tls_parameters_are_named_without_the_password() {
        let e = PgUrl::parse("postgresql://app:hunter2@db/x?sslmode=verify")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode=verify is not one of"), "{e}");
        assert!(!e.contains("hunter2") && e.contains("app:***@db"), "{e}");
        let e = PgUrl::parse("postgresql://app:hunter2@db/x?sslrootcert=system&sslmode=prefer")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode=verify-full"), "{e}");
        let e = PgUrl::parse("postgresql://db/x?sslnegotiation=direct")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sslnegotiation=direct needs sslmode=require"),
            "{e}"
        );
        assert!(PgUrl::parse("postgresql://db/x?sslnegotiation=direct&sslmode=require").is_ok());
        let e = PgUrl::parse("postgresql://app:hunter2@db/x?sslcrl=/x.pem")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown option `sslcrl`") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn refused_connections_name_the_problem() {
        // Nothing listens on port 1: not a refusal (the tracker spools and retries).
        let u = PgUrl::parse("postgresql://app:hunter2@127.0.0.1:1/x?sslmode=require").unwrap();
        let e = u.connect().err().unwrap();
        assert!(!e.refused(), "{e}");
        assert!(!e.to_string().contains("hunter2"));
        // verify-full without roots fails before connecting, and says what to give.
        let u = PgUrl::parse(
            "postgresql://127.0.0.1:1/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap();
        let e = u.connect().err().unwrap();
        assert!(e.refused(), "{e}");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
