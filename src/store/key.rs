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
    // An empty file is one an older llmledger is writing right now (this one never shows a
    // partial file): wait for it a little, then say so.
    let mut empty_reads = 0;
    loop {
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
                empty_reads += 1;
                if empty_reads > 200 {
                    return Err(err(
                        &kp,
                        "is empty (a process died while creating it?); remove it to have a \
                         new key made",
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(&kp, e)),
        }
        let key = Key::random().map_err(|e| err(&kp, e))?;
        if create_whole(&kp, &key)? {
            return Ok(key);
        }
        // Another process created it first: read theirs.
    }
}

/// Creates the key file `kp` holding `key`, all at once: the key is written and synced to a
/// file of its own, which is then linked in as `kp` only if `kp` does not exist, so no
/// process ever reads a half-written key. False: another process's file was there first.
fn create_whole(kp: &Path, key: &Key) -> Result<bool> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut name = kp.as_os_str().to_owned();
    name.push(format!(".{}-{nanos}.tmp", std::process::id()));
    let tmp = PathBuf::from(name);
    let written = super::private::create_private(&tmp).and_then(|mut f| {
        f.write_all(key.to_hex().as_bytes())?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, kp));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // A file system without hard links: create the file in place.
        Err(_) => match super::private::create_private(kp) {
            Ok(mut f) => {
                f.write_all(key.to_hex().as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| err(kp, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(err(kp, e)),
        },
    }
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
        std::fs::write(key_path(&ledger), "").unwrap();
        let e = fingerprint_key(&loc).unwrap_err().to_string();
        assert!(e.contains("is empty") && e.contains("remove it"), "{e}");
        assert!(fingerprint_key(&loc).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writers_creating_the_key_at_once_all_get_the_same_key() {
        for i in 0..30 {
            let dir =
                std::env::temp_dir().join(format!("llmledger-key-race-{}-{i}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let loc = Location::file(&dir.join("costs.db"));
            let start = std::sync::Barrier::new(4);
            let keys: Vec<Key> = std::thread::scope(|s| {
                let got: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            fingerprint_key(&loc).unwrap()
                        })
                    })
                    .collect();
                got.into_iter().map(|g| g.join().unwrap()).collect()
            });
            assert!(keys.iter().all(|k| *k == keys[0]));
            // Only the ledger's key file is left: no temporary file behind.
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
