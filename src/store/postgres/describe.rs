//! A PostgreSQL client error as text, for messages and logs (never with a password: the
//! client's errors do not carry the URL).

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
