//! Following a ledger other processes write: each [`Follower::poll`] hands over only the records
//! added since the last one, so a dashboard over millions of calls reads each row once.
//!
//! The cursor is the SQLite row id (rows are only ever appended; `id` is the primary key) or
//! the JSONL byte offset just past the last complete line. A JSONL line still being written
//! (no newline yet) is left for the next poll. A ledger that shrank or was replaced (its row
//! ids or size went back) is read again from the start, and the poll says so.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::ledger::CallRecord;

use super::record::parse_json_line;
use super::sqlite::{read_row, SELECT};
use super::{Format, SqliteLedger};

/// Rows read per SQLite statement, so the writer is never kept waiting on a long read.
const SQLITE_PAGE: i64 = 50_000;

/// What one poll read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    /// Records handed over.
    pub records: u64,
    /// The ledger went back (shrank or was replaced): it was read from the start, and what
    /// was counted from it before must be forgotten.
    pub reset: bool,
    /// Lines that did not parse, as `path:line: why`.
    pub warnings: Vec<String>,
}

/// A cursor over a ledger file.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    format: Option<Format>,
    db: Option<SqliteLedger>,
    /// SQLite: the last row id read; JSONL: bytes consumed.
    pos: u64,
    /// JSONL: complete lines consumed (for warnings).
    line: u64,
}

fn err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Ledger {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl Follower {
    /// A cursor at the start of `path`, which may not exist yet (it is then waited for).
    pub fn new(path: &Path) -> Follower {
        Follower {
            path: path.to_path_buf(),
            format: None,
            db: None,
            pos: 0,
            line: 0,
        }
    }

    /// The ledger's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cursor: the last SQLite row id read, or the JSONL bytes consumed.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Hands every record added since the last poll to `f`, in the order they were written.
    pub fn poll(&mut self, f: &mut dyn FnMut(CallRecord)) -> Result<Poll> {
        if self.format.is_none() {
            if !self.path.metadata().is_ok_and(|m| m.len() > 0) {
                return Ok(Poll::default());
            }
            self.format = Some(Format::of(&self.path));
        }
        match self.format {
            Some(Format::Sqlite) => self.poll_sqlite(f),
            _ => self.poll_jsonl(f),
        }
    }

    fn poll_sqlite(&mut self, f: &mut dyn FnMut(CallRecord)) -> Result<Poll> {
        if self.db.is_none() {
            // A ledger another process is still creating (schema not written yet) is waited
            // for, as a missing one is.
            self.db = SqliteLedger::open_read_when_ready(&self.path)?;
        }
        let Some(db) = self.db.as_ref() else {
            return Ok(Poll::default());
        };
        let e = |m: rusqlite::Error| err(&self.path, m);
        let mut poll = Poll::default();
        let max: Option<i64> = db
            .conn
            .query_row("SELECT max(id) FROM calls", [], |r| r.get(0))
            .map_err(e)?;
        let max = u64::try_from(max.unwrap_or(0)).unwrap_or(0);
        if max < self.pos {
            poll.reset = true;
            self.pos = 0;
        }
        let sql = format!(
            "{} WHERE c.id > ?1 ORDER BY c.id LIMIT {SQLITE_PAGE}",
            SELECT.replacen(" FROM calls c", ", c.id FROM calls c", 1)
        );
        let mut stmt = db.conn.prepare_cached(&sql).map_err(e)?;
        loop {
            let mut rows = stmt
                .query([i64::try_from(self.pos).unwrap_or(i64::MAX)])
                .map_err(e)?;
            let mut page = 0i64;
            while let Some(row) = rows.next().map_err(e)? {
                let id: i64 = row.get(34).map_err(e)?;
                let rec = read_row(row).map_err(|m| err(&self.path, m))?;
                self.pos = u64::try_from(id).unwrap_or(self.pos);
                page += 1;
                poll.records += 1;
                f(rec);
            }
            if page < SQLITE_PAGE {
                break;
            }
        }
        Ok(poll)
    }

    fn poll_jsonl(&mut self, f: &mut dyn FnMut(CallRecord)) -> Result<Poll> {
        let mut poll = Poll::default();
        let mut file = File::open(&self.path).map_err(|e| err(&self.path, e))?;
        let len = file.metadata().map_err(|e| err(&self.path, e))?.len();
        if len < self.pos {
            poll.reset = true;
            self.pos = 0;
            self.line = 0;
        }
        file.seek(SeekFrom::Start(self.pos))
            .map_err(|e| err(&self.path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| err(&self.path, e))?;
            if n == 0 || buf.last() != Some(&b'\n') {
                // The end, or a line still being written: it is read whole next time.
                break;
            }
            self.pos += n as u64;
            self.line += 1;
            let Ok(text) = std::str::from_utf8(&buf).map(str::trim) else {
                self.warn(&mut poll, "not UTF-8 text");
                continue;
            };
            if text.is_empty() {
                continue;
            }
            match parse_json_line(text) {
                Ok(rec) => {
                    poll.records += 1;
                    f(rec);
                }
                Err(why) => self.warn(&mut poll, &why),
            }
        }
        Ok(poll)
    }

    fn warn(&self, poll: &mut Poll, why: &str) {
        if poll.warnings.len() < 100 {
            poll.warnings.push(format!(
                "{}:{}: {why}; line skipped",
                self.path.display(),
                self.line
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::tests::record;
    use crate::store::record::write_json_line;
    use std::io::Write;

    #[test]
    fn jsonl_reads_only_new_complete_lines() {
        let dir = tempdir();
        let path = dir.join("l.jsonl");
        let mut bytes = Vec::new();
        write_json_line(&record(1, "0.5"), &mut bytes);
        write_json_line(&record(2, "0.25"), &mut bytes);
        let cut = bytes.len() - 10;
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let mut fo = Follower::new(&path);
        let mut seen = Vec::new();
        let p = fo.poll(&mut |r| seen.push(r.run_id)).unwrap();
        assert_eq!((p.records, p.reset, seen.clone()), (1, false, vec![1]));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        // The rest of the torn line arrives: it is read once, whole.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&bytes[cut..]).unwrap();
        let p = fo.poll(&mut |r| seen.push(r.run_id)).unwrap();
        assert_eq!((p.records, seen.clone()), (1, vec![1, 2]));
        assert_eq!(fo.position(), bytes.len() as u64);
        assert_eq!(fo.poll(&mut |_| panic!("nothing new")).unwrap().records, 0);
        // Replaced by a shorter file: read from the start, flagged.
        std::fs::write(&path, &bytes[..cut - 40]).unwrap();
        let p = fo.poll(&mut |_| {}).unwrap();
        assert!(p.reset);
    }

    #[test]
    fn sqlite_being_created_is_waited_for() {
        let dir = tempdir();
        let path = dir.join("l.db");
        // What a writer's first moment leaves: a database file without the ledger's schema.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        drop(conn);
        assert!(path.metadata().unwrap().len() > 0);
        let mut fo = Follower::new(&path);
        assert_eq!(fo.poll(&mut |_| {}).unwrap(), Poll::default());
        let mut db = SqliteLedger::open(&path, false).unwrap();
        db.insert(&[record(1, "0.5")]).unwrap();
        assert_eq!(fo.poll(&mut |_| {}).unwrap().records, 1);
    }

    #[test]
    fn sqlite_reads_rows_after_the_last_id() {
        let dir = tempdir();
        let path = dir.join("l.db");
        let mut fo = Follower::new(&path);
        assert_eq!(fo.poll(&mut |_| {}).unwrap(), Poll::default());
        let mut db = SqliteLedger::open(&path, false).unwrap();
        db.insert(&[record(1, "0.5"), record(2, "0.25")]).unwrap();
        let mut seen = Vec::new();
        assert_eq!(fo.poll(&mut |r| seen.push(r.run_id)).unwrap().records, 2);
        db.insert(&[record(3, "1")]).unwrap();
        assert_eq!(fo.poll(&mut |r| seen.push(r.run_id)).unwrap().records, 1);
        assert_eq!(seen, vec![1, 2, 3]);
        assert_eq!(fo.position(), 3);
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "llmledger-follow-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
