//! Reading a ledger's records back in batches, pulled by the caller: what
//! `llmledger.read_ledger` iterates, and what every full read of a ledger (exports, imports,
//! budget preloads, reports that cannot use SQLite's integer sums) goes through.
//!
//! A reader holds at most one batch in memory, so a ledger of millions of rows streams. It
//! reads the records the ledger held when it was opened: SQLite's and PostgreSQL's up to the
//! row id that was the last one then (in time order), JSONL's up to the byte that was the
//! last one (in file order).

use std::path::PathBuf;

use crate::error::Result;
use crate::ledger::CallRecord;

use super::advise_row::AdviseRows;
use super::jsonl::JsonlReader;
use super::location::Location;
use super::postgres::{PgLedger, PgUrl};
use super::sqlite::{range_condition_from, read_row, SqliteLedger, SELECT, SELECT_ID};
use super::{Format, TimeRange};

/// A ledger's records in a time range, batch by batch.
pub trait RecordReader: Send {
    /// Appends up to `max` more records to `out` (`max` at least 1); appends none at the end.
    fn next_batch(&mut self, max: usize, out: &mut Vec<CallRecord>) -> Result<()>;

    /// Problems met so far (bad JSONL lines, with their numbers), taken once each.
    fn take_warnings(&mut self) -> Vec<String>;

    /// How far the read is, for progress: bytes (JSONL) or records (SQLite) so far.
    fn progress(&self) -> u64;
}

/// Which of a record's fields a reader fills: a reader that needs fewer skips the rest in the
/// database, so they are neither sent, copied nor parsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Columns {
    /// Every field.
    #[default]
    All,
    /// What the advisor (`crate::advise`) reads. Left empty (`None`, zero): `requested_model`,
    /// `estimated_by`, the output, reasoning and audio parts of the cost, `price_entry`,
    /// `catalog_version`, `latency`, `usage_notes` and `price_notes`; `error` is `Some("")`
    /// for a failed call (the advisor asks only whether it failed). JSONL lines are parsed
    /// whole (the fields are in the text either way).
    Advise,
}

/// The SQLite columns [`Columns::Advise`] reads, in [`SELECT`]'s positions (`read_row` reads
/// both): NULL where the advisor needs nothing, so SQLite neither copies nor decodes them.
pub(super) const SELECT_ADVISE: &str =
    "SELECT time, run_id, parent_run_id, root_run_id, root_run_name, model, \
    provider, attribution, tags, input_tokens, cache_read_tokens, cache_write_tokens, \
    cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens, \
    output_audio_tokens, usage_source, service_tier, cost, cost_input, cost_cache_read, \
    cost_cache_write, NULL, NULL, NULL, unpriced_reason, NULL, \
    NULL, NULL, streamed_chunks, CASE WHEN error IS NULL THEN NULL ELSE '' END, NULL, NULL, \
    NULL, NULL, max_tokens, request_hash, prompt_prefixes, prompt_bytes, c.id \
    FROM calls c";

/// Opens a reader of the records of `location` in `range`: the one place a read picks its
/// backend.
pub fn open_reader(location: &Location, range: TimeRange) -> Result<Box<dyn RecordReader>> {
    open_reader_columns(location, range, Columns::All)
}

/// [`open_reader`], filling only `columns`.
pub fn open_reader_columns(
    location: &Location,
    range: TimeRange,
    columns: Columns,
) -> Result<Box<dyn RecordReader>> {
    location.check_exists()?;
    match location {
        Location::File {
            path,
            format: Format::Jsonl,
        } => Ok(Box::new(JsonlReader::open(path, range)?)),
        Location::File {
            path,
            format: Format::Sqlite,
        } => Ok(Box::new(SqliteReader::open(path, range, columns)?)),
        Location::Postgres(url) => Ok(Box::new(PgReader::open(url, range, columns)?)),
    }
}

/// Pages through a PostgreSQL ledger in `(time, id)` order over its time index, keyset
/// paging as [`SqliteReader`] does, up to the last id when it opened.
struct PgReader {
    db: PgLedger,
    range: TimeRange,
    last_id: i64,
    after: Option<(chrono::DateTime<chrono::Utc>, i64)>,
    read: u64,
    done: bool,
    columns: Columns,
}

impl PgReader {
    fn open(url: &PgUrl, range: TimeRange, columns: Columns) -> Result<Self> {
        let mut db = PgLedger::open_read(url)?;
        let last_id = db.last_id()?;
        Ok(PgReader {
            db,
            range,
            columns,
            last_id,
            after: None,
            read: 0,
            done: last_id == 0,
        })
    }
}

impl RecordReader for PgReader {
    fn next_batch(&mut self, max: usize, out: &mut Vec<CallRecord>) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let mut last = None;
        let mut f = |r, time, id| {
            out.push(r);
            last = Some((time, id));
        };
        let n = match self.columns {
            Columns::All => {
                self.db
                    .for_each_page(&self.range, self.last_id, self.after, max, &mut f)?
            }
            Columns::Advise => {
                self.db
                    .for_each_page_advise(&self.range, self.last_id, self.after, max, &mut f)?
            }
        };
        self.read += n as u64;
        if n < max {
            self.done = true;
        }
        if last.is_some() {
            self.after = last;
        }
        Ok(())
    }

    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn progress(&self) -> u64 {
        self.read
    }
}

impl RecordReader for JsonlReader {
    fn next_batch(&mut self, max: usize, out: &mut Vec<CallRecord>) -> Result<()> {
        for _ in 0..max {
            match self.next_record()? {
                Some(r) => out.push(r),
                None => break,
            }
        }
        Ok(())
    }

    fn take_warnings(&mut self) -> Vec<String> {
        JsonlReader::take_warnings(self)
    }

    fn progress(&self) -> u64 {
        self.bytes_read()
    }
}

/// Pages through a SQLite ledger in `(time, id)` order over the time index, each page a
/// fresh query after the last row seen (keyset paging: no statement or read transaction
/// stays open between batches, so writers are never held up).
struct SqliteReader {
    db: SqliteLedger,
    range: TimeRange,
    /// The last row id when the reader opened.
    last_id: i64,
    /// The last row read: its time as stored and its id.
    after: Option<(String, i64)>,
    read: u64,
    done: bool,
    /// [`SELECT`] or [`SELECT_ADVISE`].
    select: &'static str,
    /// With [`SELECT_ADVISE`]: its decoder (rows read in place).
    advise: Option<AdviseRows>,
}

impl SqliteReader {
    fn open(path: &std::path::Path, range: TimeRange, columns: Columns) -> Result<Self> {
        let db = SqliteLedger::open_read(path)?;
        let last_id: Option<i64> = db
            .conn
            .query_row("SELECT max(id) FROM calls", [], |r| r.get(0))
            .map_err(|e| SqliteLedger::err(path, e))?;
        Ok(SqliteReader {
            db,
            range,
            last_id: last_id.unwrap_or(0),
            after: None,
            read: 0,
            done: last_id.is_none(),
            select: match columns {
                Columns::All => SELECT,
                Columns::Advise => SELECT_ADVISE,
            },
            advise: (columns == Columns::Advise).then(AdviseRows::default),
        })
    }

    fn path(&self) -> PathBuf {
        self.db.path.clone()
    }
}

impl RecordReader for SqliteReader {
    fn next_batch(&mut self, max: usize, out: &mut Vec<CallRecord>) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let (cond, range_args) = range_condition_from(&self.range, 0);
        let mut args: Vec<rusqlite::types::Value> = range_args
            .into_iter()
            .map(rusqlite::types::Value::Text)
            .collect();
        let mut conds = vec![format!("c.id <= {}", self.last_id)];
        if let Some((time, id)) = &self.after {
            args.push(rusqlite::types::Value::Text(time.clone()));
            args.push(rusqlite::types::Value::Integer(*id));
            let (t, i) = (args.len() - 1, args.len());
            // `c.time >= ?` alone bounds the index scan; the rest skips what was read. The
            // id is a parameter, so every page is the one cached statement.
            conds.push(format!("c.time >= ?{t} AND (c.time > ?{t} OR c.id > ?{i})"));
        }
        let glue = if cond.is_empty() { " WHERE " } else { " AND " };
        let sql = format!(
            "{}{cond}{glue}{} ORDER BY c.time, c.id LIMIT {max}",
            self.select,
            conds.join(" AND ")
        );
        let path = self.path();
        let e = |m: rusqlite::Error| SqliteLedger::err(&path, m);
        let mut stmt = self.db.conn.prepare_cached(&sql).map_err(e)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(e)?;
        let mut n = 0usize;
        // The last row's time as stored, in one buffer (not a String per row).
        let mut last_time = String::new();
        let mut last_id = None;
        while let Some(row) = rows.next().map_err(e)? {
            let time = match row.get_ref(0).map_err(e)? {
                rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).ok(),
                _ => None,
            };
            match time {
                Some(t) => {
                    last_time.clear();
                    last_time.push_str(t);
                }
                // What `get` says of a time that is not text.
                None => last_time = row.get(0).map_err(e)?,
            }
            let id: i64 = row.get(SELECT_ID).map_err(e)?;
            let record = match &mut self.advise {
                Some(rows) => rows.read(row),
                None => read_row(row),
            };
            out.push(record.map_err(|m| SqliteLedger::err(&path, m))?);
            last_id = Some(id);
            n += 1;
        }
        self.read += n as u64;
        if n < max {
            self.done = true;
        }
        if let Some(id) = last_id {
            self.after = Some((last_time, id));
        }
        Ok(())
    }

    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn progress(&self) -> u64 {
        self.read
    }
}

/// Hands every record of `location` in `range` to `f` (which returns false to stop), in
/// batches of `batch`. Returns the problems met while reading.
pub fn for_each_batched(
    location: &Location,
    range: TimeRange,
    columns: Columns,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(CallRecord) -> bool,
) -> Result<Vec<String>> {
    const BATCH: usize = 4096;
    let mut reader = open_reader_columns(location, range, columns)?;
    let mut batch = Vec::with_capacity(BATCH);
    let mut warnings = Vec::new();
    'read: loop {
        reader.next_batch(BATCH, &mut batch)?;
        warnings.extend(reader.take_warnings());
        if batch.is_empty() {
            break;
        }
        progress(reader.progress());
        for r in batch.drain(..) {
            if !f(r) {
                break 'read;
            }
        }
    }
    progress(reader.progress());
    Ok(warnings)
}
