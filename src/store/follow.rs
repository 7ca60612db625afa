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
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ledger::CallRecord;

use super::location::Location;
use super::postgres::{PgLedger, PgUrl};
use super::record::parse_json_line;
use super::sqlite::{read_row, SELECT, SELECT_ID};
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

/// A cursor over a ledger.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    format: Option<Format>,
    db: Option<SqliteLedger>,
    /// A PostgreSQL ledger: its URL, connection (once it has the tables) and id gaps.
    pg: Option<Box<PgFollow>>,
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
            pg: None,
            pos: 0,
            line: 0,
        }
    }

    /// A cursor at the start of the ledger at `location` (a file, or a PostgreSQL database
    /// that may not have the ledger's tables yet).
    pub fn at(location: &Location) -> Follower {
        match location {
            Location::File { path, .. } => Follower::new(path),
            Location::Postgres(url) => Follower {
                pg: Some(Box::new(PgFollow {
                    url: url.clone(),
                    db: None,
                    gaps: Vec::new(),
                })),
                ..Follower::new(Path::new(url.redacted()))
            },
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
        if let Some(pg) = self.pg.as_mut() {
            return pg.poll(&mut self.pos, f);
        }
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
                let id: i64 = row.get(SELECT_ID).map_err(e)?;
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

/// How long a gap in PostgreSQL row ids is watched for rows committed late.
const GAP_WATCH: Duration = Duration::from_secs(30);
/// Gaps watched at most (the oldest go first).
const MAX_GAPS: usize = 1024;

/// Following a PostgreSQL ledger by row id. Ids are handed out when rows are inserted, not
/// when they commit: with several writers, a row with a lower id can commit after one with a
/// higher id was read. So the ids skipped over (gaps: rows in flight, or ids a rolled-back
/// COPY used up) are looked at again on each poll for [`GAP_WATCH`]; a row appearing there is
/// handed over then, once.
#[derive(Debug)]
struct PgFollow {
    url: PgUrl,
    db: Option<PgLedger>,
    /// Ranges `(after, up_to]` of ids not seen yet, and when they were found.
    gaps: Vec<(i64, i64, Instant)>,
}

impl PgFollow {
    /// Hands over the rows committed since the last poll. A failed poll (the database down, a
    /// connection broken) drops the connection, so the next one connects again; the cursor
    /// and the gaps already include every row handed over before the failure, so none is
    /// handed over twice.
    fn poll(&mut self, pos: &mut u64, f: &mut dyn FnMut(CallRecord)) -> Result<Poll> {
        let r = self.poll_connected(pos, f);
        if r.is_err() {
            self.db = None;
        }
        r
    }

    fn poll_connected(&mut self, pos: &mut u64, f: &mut dyn FnMut(CallRecord)) -> Result<Poll> {
        let mut poll = Poll::default();
        if self.db.is_none() {
            match PgLedger::open_read(&self.url) {
                Ok(db) => self.db = Some(db),
                // No ledger tables yet: waited for, like a file that does not exist yet.
                Err(e) if e.to_string().contains("no llmledger_schema table") => return Ok(poll),
                Err(e) => return Err(e),
            }
        }
        let Some(db) = self.db.as_mut() else {
            return Ok(poll);
        };
        let max = db.last_id()?;
        let mut cursor = i64::try_from(*pos).unwrap_or(i64::MAX);
        if max < cursor {
            poll.reset = true;
            cursor = 0;
            self.gaps.clear();
        }
        let now = Instant::now();
        self.gaps.retain(|g| now.duration_since(g.2) < GAP_WATCH);
        // Rows committed late, in gaps seen before.
        let mut found: Vec<i64> = Vec::new();
        let mut late = Ok(());
        for &(after, up_to, _) in &self.gaps {
            late = db
                .ids_between(after, up_to, &mut |r, id| {
                    found.push(id);
                    poll.records += 1;
                    f(r);
                })
                .map(drop);
            if late.is_err() {
                break;
            }
        }
        // Rows handed over leave their gaps even when the read failed part-way.
        for id in found {
            split_gap(&mut self.gaps, id);
        }
        late?;
        // Then the new rows.
        loop {
            let mut last = cursor;
            let n = db.after_id(cursor, SQLITE_PAGE, &mut |r, id| {
                if id > last + 1 {
                    self.gaps.push((last, id - 1, now));
                }
                last = id;
                poll.records += 1;
                f(r);
            });
            // The cursor moves past every row handed over, even when the read failed
            // part-way.
            cursor = last;
            *pos = u64::try_from(cursor).unwrap_or(0);
            if i64::try_from(n?).unwrap_or(0) < SQLITE_PAGE {
                break;
            }
        }
        if self.gaps.len() > MAX_GAPS {
            let extra = self.gaps.len() - MAX_GAPS;
            self.gaps.drain(..extra);
        }
        *pos = u64::try_from(cursor).unwrap_or(0);
        Ok(poll)
    }
}

/// Id `id` was read: it is no longer in a gap.
fn split_gap(gaps: &mut Vec<(i64, i64, Instant)>, id: i64) {
    if let Some(i) = gaps.iter().position(|g| g.0 < id && id <= g.1) {
        let (after, up_to, t) = gaps.remove(i);
        if id - 1 > after {
            gaps.push((after, id - 1, t));
        }
        if up_to > id {
            gaps.push((id, up_to, t));
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
