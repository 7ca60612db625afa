//! Where a ledger lives: the one place a path or URL given by the user chooses the backend
//! that reads and writes it.
//!
//! A ledger is a file (SQLite or JSONL, by header or extension) or a PostgreSQL database
//! (`postgresql://...`). Each backend is one arm in the `match`es of [`super::Sink`],
//! [`super::reader`] and [`super::read`]: nothing above the store (tracker, reports, the
//! Python API) knows which one it has.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::postgres::PgUrl;
use super::Format;

/// A ledger's location, parsed once from what the user gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A ledger file.
    File {
        /// The file.
        path: PathBuf,
        /// Its format: by its header when it exists, else by its extension.
        format: Format,
    },
    /// A PostgreSQL database (`postgresql://` or `postgres://`).
    Postgres(PgUrl),
}

/// The scheme of `text` when it is written as a URL (`scheme://...`), else `None`. A scheme
/// is a letter then letters, digits, `+`, `-` or `.`, at least two characters (so a Windows
/// drive, `C:\...`, is a path).
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (scheme.len() >= 2
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

impl Location {
    /// Parses a path or URL: `costs.db`, `costs.jsonl`, `/var/lib/app/costs.db`, or
    /// `file:///var/lib/app/costs.db`, or `postgresql://user@host:5432/db`. An error never
    /// repeats a URL's password.
    pub fn parse(text: &str) -> Result<Location> {
        let Some(scheme) = url_scheme(text) else {
            return Ok(Location::file(Path::new(text)));
        };
        let lower = scheme.to_ascii_lowercase();
        match lower.as_str() {
            "file" => Ok(Location::file(Path::new(&text[scheme.len() + 3..]))),
            "postgres" | "postgresql" => Ok(Location::Postgres(PgUrl::parse(text)?)),
            _ => Err(Error::InvalidArgument(format!(
                "'{scheme}://' is not a ledger location llmledger knows: use a path to a SQLite \
                 (.db) or JSONL (.jsonl) file, or a postgresql:// URL"
            ))),
        }
    }

    /// A ledger file at `path`.
    pub fn file(path: &Path) -> Location {
        Location::File {
            path: path.to_path_buf(),
            format: Format::of(path),
        }
    }

    /// The ledger's name for messages and results: the file's path (a server's URL without
    /// its password).
    pub fn display_name(&self) -> String {
        match self {
            Location::File { path, .. } => path.display().to_string(),
            Location::Postgres(url) => url.redacted().to_string(),
        }
    }

    /// The backend's name: `sqlite`, `jsonl` or `postgresql`.
    pub fn format_name(&self) -> &'static str {
        match self {
            Location::File { format, .. } => format.as_str(),
            Location::Postgres(_) => "postgresql",
        }
    }

    /// An error unless the ledger exists (a reader never creates one).
    pub fn check_exists(&self) -> Result<()> {
        match self {
            Location::File { path, .. } if !path.exists() => Err(Error::Ledger {
                path: path.display().to_string(),
                message: "no such file".into(),
            }),
            Location::File { .. } | Location::Postgres(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        assert_eq!(
            Location::parse("costs.jsonl").unwrap(),
            Location::File {
                path: "costs.jsonl".into(),
                format: Format::Jsonl
            }
        );
        assert_eq!(
            Location::parse("file:///tmp/x/costs.db").unwrap(),
            Location::file(Path::new("/tmp/x/costs.db"))
        );
        assert_eq!(
            Location::parse(r"C:\data\costs.db").unwrap().format_name(),
            "sqlite"
        );
        let pg = Location::parse("postgresql://u:secret@db/costs").unwrap();
        assert_eq!(pg.format_name(), "postgresql");
        assert_eq!(pg.display_name(), "postgresql://u:***@db/costs");
        assert!(!format!("{pg:?}").contains("secret"));
        let e = Location::parse("postgresql://u:secret@db:port/costs")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
        let e = Location::parse("s3://bucket/costs.db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'s3://' is not a ledger location"), "{e}");
    }
}
