//! The ledger's fingerprint secret (see [`crate::fingerprint`]): 32 hex digits in a sidecar
//! file beside the ledger, `<ledger>.key`, created owner-only (mode 0600 on Unix) by the first
//! writer and read by every later one, so all the processes writing one ledger hash alike.
//!
//! The secret lives beside the ledger rather than in it so that a ledger (or its export)
//! handed to someone else does not carry it: without it a fingerprint cannot be checked
//! against a guessed prompt. The advisor only compares fingerprints and never reads it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fingerprint::Key;

use super::location::Location;

/// The key file of the ledger file `ledger`.
pub fn key_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

fn err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Ledger {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The fingerprint secret of the ledger at `location`, created when it has none.
pub fn fingerprint_key(location: &Location) -> Result<Key> {
    let path = match location {
        Location::File { path, .. } => path,
        Location::Postgres(url) => return super::postgres::fingerprint_key(url),
    };
    let kp = key_path(path);
    for _ in 0..3 {
        match std::fs::read_to_string(&kp) {
            Ok(text) => {
                if let Some(k) = Key::from_hex(&text) {
                    return Ok(k);
                }
                if !text.trim().is_empty() {
                    return Err(err(
                        &kp,
                        "is not an llmledger fingerprint key (32 hex digits)",
                    ));
                }
                // Empty: another process is writing it right now.
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(&kp, e)),
        }
        let key = Key::random().map_err(|e| err(&kp, e))?;
        match super::private::create_private(&kp) {
            Ok(mut f) => {
                f.write_all(key.to_hex().as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| err(&kp, e))?;
                return Ok(key);
            }
            // Another process created it first: read theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(&kp, e)),
        }
    }
    Err(err(&kp, "could not be read or created"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_owner_only_and_shared() {
        let dir = std::env::temp_dir().join(format!("llmledger-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ledger = dir.join("costs.db");
        let loc = Location::file(&ledger);
        let _ = std::fs::remove_file(key_path(&ledger));
        let a = fingerprint_key(&loc).unwrap();
        let b = fingerprint_key(&loc).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(&ledger))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(key_path(&ledger), "nonsense").unwrap();
        assert!(fingerprint_key(&loc).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
