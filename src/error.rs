//! The core's error type. The binding layer maps each variant to a Python exception under
//! `llmledger.LlmLedgerError`.

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A price catalog (the bundled one or a user's file) is malformed. `origin` names the file
    /// or source, `entry` the model entry (if any) and the message the offending field.
    #[error("price catalog {origin}: {message}")]
    Catalog {
        /// Where the catalog came from: `bundled`, a file path, or `dict`.
        origin: String,
        /// What is wrong, naming the entry and field.
        message: String,
    },
    /// An argument from the caller is not acceptable.
    #[error("{0}")]
    InvalidArgument(String),
    /// A durable ledger (SQLite database or JSONL file) cannot be used: newer schema, not a
    /// ledger, unwritable. `path` names the file.
    #[error("ledger {path}: {message}")]
    Ledger {
        /// The ledger file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file that could not be read.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;
