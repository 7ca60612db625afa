//! A PostgreSQL ledger's URL: kept whole for connecting, shown only without its password.

use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, Config, NoTls};

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
    text: String,
    redacted: String,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// `text` with the password of its user part and any `password=` parameter replaced by
/// `***`.
pub fn redact(text: &str) -> String {
    let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        None => tail.to_string(),
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
    };
    if scheme.is_empty() {
        format!("{authority}{tail}")
    } else {
        format!("{scheme}://{authority}{tail}")
    }
}

impl PgUrl {
    /// Checks `text` is a URL the PostgreSQL client can connect with. The error shows the URL
    /// without its password.
    pub fn parse(text: &str) -> Result<PgUrl> {
        let redacted = redact(text);
        Config::from_str(text).map_err(|_| {
            Error::InvalidArgument(format!(
                "'{redacted}' is not a PostgreSQL URL llmledger can use: write \
                 postgresql://user[:password]@host[:port]/database"
            ))
        })?;
        Ok(PgUrl {
            text: text.to_string(),
            redacted,
        })
    }

    /// The URL without its password: for messages, logs and results.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// A new connection (session time zone UTC, so times read back as `+00:00`).
    pub fn connect(&self) -> std::result::Result<Client, postgres::Error> {
        // Parsed when the URL was accepted: cannot fail now.
        let mut cfg = Config::from_str(&self.text).unwrap_or_default();
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(CONNECT_TIMEOUT);
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("llmledger");
        }
        cfg.tcp_user_timeout(TCP_USER_TIMEOUT);
        let mut client = cfg.connect(NoTls)?;
        client.batch_execute("SET TIME ZONE 'UTC'")?;
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

/// A client error as text: the server's message (with its detail and hint) when the server
/// refused, else the client's (a refused or broken connection).
pub fn describe(e: &postgres::Error) -> String {
    use std::error::Error as _;
    use std::fmt::Write as _;
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            let _ = write!(m, " ({d})");
        }
        if let Some(h) = db.hint() {
            let _ = write!(m, "; hint: {h}");
        }
        return m;
    }
    match e.source() {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
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
}
