//! The password of a URL that gives none, as libpq finds it: `PGPASSWORD`, else the password
//! file (`PGPASSFILE`, else `~/.pgpass`), whose lines are `host:port:database:user:password`
//! (`*` matches anything, `\:` and `\\` escape, `#` starts a comment; the first matching line
//! wins). A password file that its group or others can read is ignored, with a warning, as
//! libpq does.

use std::path::{Path, PathBuf};

use postgres::config::Host;
use postgres::Config;

/// The file libpq reads passwords from.
fn passfile() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass"))
}

/// The fields of one line (unescaped), or `None` for a comment, a blank or a short line.
fn fields(line: &str) -> Option<Vec<String>> {
    if line.trim_start().starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut()?.push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    (out.len() == 5).then_some(out)
}

/// The password for (`host`, `port`, `db`, `user`) in a password file's `text`.
pub(super) fn lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    text.lines().filter_map(fields).find_map(|f| {
        let ok = |field: &str, value: &str| field == "*" || field == value;
        (ok(&f[0], host) && ok(&f[1], &port) && ok(&f[2], db) && ok(&f[3], user))
            .then(|| f[4].clone())
    })
}

/// Sets `cfg`'s password from the environment or the password file when it has none.
/// Returns a warning to log (a password file others can read), never the password.
pub(super) fn fill(cfg: &mut Config) -> Option<String> {
    if cfg.get_password().is_some() {
        return None;
    }
    if let Ok(p) = std::env::var("PGPASSWORD") {
        cfg.password(p);
        return None;
    }
    let path = passfile()?;
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Some(format!(
                "the password file {} is ignored: its group or others can read it (chmod 0600 it, \
                 as libpq requires)",
                path.display()
            ));
        }
    }
    if !meta.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let user = cfg.get_user()?.to_string();
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        // A Unix socket matches `localhost` (libpq's rule).
        _ => "localhost".to_string(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let db = cfg.get_dbname().unwrap_or(&user).to_string();
    if let Some(p) = lookup(&text, &host, port, &db, &user) {
        cfg.password(p);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_as_libpq_reads_them() {
        let text = "# a comment\n\
                    db.example:5432:costs:app:s3cret\n\
                    *:*:*:reader:r\\:pw\\\\x\n\
                    short:line\n\
                    *:6543:*:app:other\n";
        assert_eq!(
            lookup(text, "db.example", 5432, "costs", "app").as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            lookup(text, "elsewhere", 1, "x", "reader").as_deref(),
            Some("r:pw\\x")
        );
        assert_eq!(
            lookup(text, "h", 6543, "any", "app").as_deref(),
            Some("other")
        );
        assert_eq!(lookup(text, "db.example", 5432, "other", "app"), None);
        // A password may hold ':' unescaped after the fourth field.
        assert_eq!(
            lookup("h:1:d:u:a:b", "h", 1, "d", "u").as_deref(),
            Some("a:b")
        );
    }
}
