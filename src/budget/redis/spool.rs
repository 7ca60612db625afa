//! The outage queue's copy on the local disk: settlements of calls that ended while Redis was
//! unreachable, one JSON line each, flushed to the disk (`fdatasync`) before the end hook
//! goes on. A process that dies during an outage leaves its file; the next tracker of the same
//! Redis and prefix adopts it (a file no live process holds locked) and applies its
//! settlements once Redis answers. Applied once: the script's done mark makes a settlement
//! sent twice (by a process that died after sending it but before emptying its file) count
//! once.
//!
//! Files live in the same directory as the PostgreSQL ledger's outage spool
//! (`LLMLEDGER_SPOOL_DIR`, else `$XDG_STATE_HOME/llmledger/spool`, else
//! `~/.local/state/llmledger/spool`), owner-only (`0700` directory, `0600` files), named
//! `redis-<key>.<pid>-<n>.jsonl` (`<key>`: a hash of the URL without its password and the
//! prefix). A line: `{"run", "actual" (pico-dollars, or null for a release), "at" (ms),
//! "parts": [[budget name, scope value or null], ...]}`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::store::private::{open_private, private_dir};

use chrono::DateTime;
use parking_lot::Mutex;

use crate::budget::Budget;

use super::Pending;

/// Spool files opened by this process so far (each tracker has its own).
static OPENED: AtomicU64 = AtomicU64::new(0);

/// This tracker's spool file, created at its first outage and held locked.
struct Own {
    path: PathBuf,
    file: File,
    /// The fork generation that created it: a forked child has a file of its own (were it to
    /// write into the parent's, the parent's `clear` would remove the child's settlements,
    /// and the child's its parent's).
    generation: u64,
}

pub(super) struct SettlementSpool {
    dir: PathBuf,
    key: String,
    own: Mutex<Option<Own>>,
}

fn line(defs: &[Budget], p: &Pending) -> String {
    let parts: Vec<serde_json::Value> = p
        .parts
        .iter()
        .map(|(i, v)| serde_json::json!([defs[*i].name, v.as_deref()]))
        .collect();
    let v = serde_json::json!({
        "run": p.run,
        "actual": p.actual.map(|a| a.to_string()),
        "at": p.at.timestamp_millis(),
        "parts": parts,
    });
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// A spooled settlement, its budgets found by name among `defs` (`None`: unreadable, or a
/// budget this tracker does not define).
fn parse(defs: &[Budget], text: &str) -> Option<Pending> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let run = v.get("run")?.as_str()?.to_string();
    let actual = match v.get("actual")? {
        serde_json::Value::Null => None,
        a => Some(a.as_str()?.parse::<i128>().ok()?),
    };
    let at = DateTime::from_timestamp_millis(v.get("at")?.as_i64()?)?;
    let mut parts = Vec::new();
    for p in v.get("parts")?.as_array()? {
        let name = p.get(0)?.as_str()?;
        let value = p.get(1)?.as_str().map(Arc::<str>::from);
        let i = defs.iter().position(|b| b.name == name)?;
        parts.push((i, value));
    }
    Some(Pending {
        run,
        parts,
        actual,
        at,
    })
}

impl SettlementSpool {
    /// The spool of the Redis `shown_url` (no password) and key `prefix`.
    pub fn new(shown_url: &str, prefix: &str) -> SettlementSpool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in shown_url.bytes().chain([0]).chain(prefix.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        SettlementSpool {
            dir: crate::store::postgres::sink::spool_dir(),
            key: format!("redis-{h:016x}"),
            own: Mutex::new(None),
        }
    }

    /// Appends `p` to this tracker's file (flushed to the disk).
    pub fn append(&self, defs: &[Budget], p: &Pending) -> std::io::Result<()> {
        let mut own = self.own.lock();
        let generation = crate::fork::generation();
        if own.as_ref().is_some_and(|o| o.generation != generation) {
            // The parent's file (and its lock, which the parent keeps): left to the parent.
            *own = None;
        }
        if own.is_none() {
            private_dir(&self.dir)?;
            let n = OPENED.fetch_add(1, Ordering::Relaxed);
            let path = self
                .dir
                .join(format!("{}.{}-{n}.jsonl", self.key, std::process::id()));
            let file = open_private(&path)?;
            file.try_lock().map_err(std::io::Error::other)?;
            *own = Some(Own {
                path,
                file,
                generation,
            });
        }
        let Some(o) = own.as_mut() else {
            return Ok(());
        };
        o.file.write_all(line(defs, p).as_bytes())?;
        o.file.sync_data()
    }

    /// Empties this tracker's file: every settlement in it has been applied.
    pub fn clear(&self) {
        if let Some(o) = self.own.lock().take() {
            if o.generation == crate::fork::generation() {
                let _ = std::fs::remove_file(&o.path);
            }
        }
    }

    /// The settlements in files of this Redis and prefix that no live process holds (left by
    /// processes that died during an outage), each file's path with them. The caller spools
    /// them as its own, then removes the files.
    pub fn orphans(&self, defs: &[Budget]) -> Vec<(PathBuf, Vec<Pending>, usize)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let prefix = format!("{}.", self.key);
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let jsonl = Path::new(&name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
            if !name.starts_with(&prefix) || !jsonl {
                continue;
            }
            let path = entry.path();
            let Ok(file) = OpenOptions::new().read(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_err() {
                continue; // a live tracker's spool (this process's own included)
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let found: Vec<Pending> = lines.iter().filter_map(|l| parse(defs, l)).collect();
            let unusable = lines.len() - found.len();
            out.push((path, found, unusable));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Decimal;

    #[test]
    fn a_forked_child_spools_to_a_file_of_its_own_and_leaves_the_parents() {
        let dir = std::env::temp_dir().join(format!("llmledger-spool-fork-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut spool = SettlementSpool::new("redis://127.0.0.1:1/0", "fork-test");
        spool.dir.clone_from(&dir);
        let mut defs = vec![Budget::daily(Decimal::ONE).unwrap()];
        defs[0].name = "day".into();
        let p = |run: &str| Pending {
            run: run.into(),
            parts: vec![(0, None)],
            actual: Some(1),
            at: DateTime::from_timestamp_millis(1_764_633_600_000).unwrap(),
        };
        let files = || {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            v.sort();
            v
        };
        spool.append(&defs, &p("parent")).unwrap();
        let [parent] = files().try_into().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                crate::fork::tests::simulate_fork();
                spool.append(&defs, &p("child")).unwrap();
                assert_eq!(files().len(), 2);
                // The child's Redis is back: it empties its own file, not its parent's.
                spool.clear();
                assert_eq!(files(), vec![parent.clone()]);
            });
        });
        assert_eq!(std::fs::read_to_string(&parent).unwrap().lines().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_spooled_settlement_reads_back_by_budget_name() {
        let mut defs = vec![Budget::daily(Decimal::ONE).unwrap()];
        defs[0].name = "day".into();
        let p = Pending {
            run: "00ff".into(),
            parts: vec![(0, Some(Arc::from("al:ice"))), (0, None)],
            actual: Some(123_456_789_012_345_678),
            at: DateTime::from_timestamp_millis(1_764_633_600_123).unwrap(),
        };
        let back = parse(&defs, line(&defs, &p).trim()).unwrap();
        assert_eq!(back.run, p.run);
        assert_eq!(back.parts, p.parts);
        assert_eq!(back.actual, p.actual);
        assert_eq!(back.at, p.at);
        let release = Pending { actual: None, ..p };
        assert_eq!(parse(&defs, &line(&defs, &release)).unwrap().actual, None);
        // A budget this tracker does not define: not applied to the wrong one.
        defs[0].name = "other".into();
        assert!(parse(
            &defs,
            line(&[Budget::daily(Decimal::ONE).unwrap()], &release).trim()
        )
        .is_none());
        assert!(parse(&defs, "not json").is_none());
    }
}
