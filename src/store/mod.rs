//! The durable ledger: every finished call record, kept in a SQLite database (the default), a
//! JSONL file or a PostgreSQL database, written off the LLM call's path, shared by processes
//! (and, with PostgreSQL, hosts), read back by reports.
//!
//! A [`Store`] is the tracker's sink. With [`Durability::Batch`] a writer thread owns the file
//! and commits in batches (a crash loses at most the last batch); with [`Durability::Sync`]
//! each record is committed on the caller's thread before the call's end hook returns. Store
//! I/O errors never reach the LLM call: they are collected as messages the tracker logs.
//!
//! Reading ([`read`], [`reader`]): group-by reports, window spend for budgets, exports and
//! imports, and records streamed in batches, over either format. Where a ledger is, and so
//! which backend reads it, is decided in one place: [`Location`].

mod advise_row;
pub mod follow;
pub mod jsonl;
pub mod key;
pub mod location;
pub mod postgres;
pub(crate) mod private;
pub mod read;
pub mod reader;
pub mod record;
pub mod spend;
pub mod sqlite;
mod sqlite_scan;
mod unseen_keys;
pub mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::ledger::CallRecord;

pub use jsonl::JsonlLedger;
pub use key::fingerprint_key;
pub use location::Location;
pub use read::{export, import_jsonl, parse_time_bound, report, spend_since, ImportStats, Report};
pub use reader::{open_reader, RecordReader};
pub use spend::StoreSpend;
pub use sqlite::{SqliteLedger, SCHEMA_VERSION};

/// The file format of a ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A SQLite database.
    Sqlite,
    /// JSON lines.
    Jsonl,
}

impl Format {
    /// The format of `path`: an existing file by its header, else by its extension
    /// (`.jsonl`, `.ndjson`, `.json` are JSONL; anything else is SQLite).
    pub fn of(path: &Path) -> Format {
        if path.metadata().is_ok_and(|m| m.len() > 0) {
            return if sqlite::has_sqlite_header(path) {
                Format::Sqlite
            } else {
                Format::Jsonl
            };
        }
        Format::by_extension(path).unwrap_or(Format::Sqlite)
    }

    /// The format named by `path`'s extension alone (`None`: no known extension).
    fn by_extension(path: &Path) -> Option<Format> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl" | "ndjson" | "json") => Some(Format::Jsonl),
            Some("db" | "sqlite" | "sqlite3" | "db3") => Some(Format::Sqlite),
            _ => None,
        }
    }

    /// `sqlite` or `jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Sqlite => "sqlite",
            Format::Jsonl => "jsonl",
        }
    }
}

/// When a record is safe on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Written by a writer thread in batches; a crash loses at most the last batch.
    Batch,
    /// Committed (and flushed to the disk) before the call's end hook returns.
    Sync,
}

impl Durability {
    /// Parses `batch` or `sync`.
    pub fn parse(s: &str) -> Result<Durability> {
        match s {
            "batch" => Ok(Durability::Batch),
            "sync" => Ok(Durability::Sync),
            other => Err(Error::InvalidArgument(format!(
                "durability must be 'batch' or 'sync', not '{other}'"
            ))),
        }
    }

    /// `batch` or `sync`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Batch => "batch",
            Durability::Sync => "sync",
        }
    }
}

/// A half-open time window `[since, until)`; `None` ends are open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// First instant included.
    pub since: Option<DateTime<Utc>>,
    /// First instant excluded.
    pub until: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// True when `t` is in the window.
    pub fn contains(&self, t: &DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| *t >= s) && self.until.is_none_or(|u| *t < u)
    }
}

/// An open ledger, written by one owner at a time.
#[derive(Debug)]
pub enum Sink {
    /// SQLite.
    Sqlite(SqliteLedger),
    /// JSONL.
    Jsonl(JsonlLedger),
    /// PostgreSQL (with its spool for outages).
    Postgres(Box<postgres::PgSink>),
}

impl Sink {
    /// Opens the ledger file `path` for appending in `format`.
    pub fn open(path: &Path, format: Format, sync: bool) -> Result<Sink> {
        let location = Location::File {
            path: path.to_path_buf(),
            format,
        };
        Sink::open_at(&location, sync, &Shared::new(&location))
    }

    /// Appends records to a file (SQLite skips run ids it already has). Returns how many were
    /// added.
    pub fn write(&mut self, records: &[CallRecord]) -> Result<usize> {
        let shared = Shared {
            name: String::new(),
            ..Shared::new(&Location::file(Path::new("")))
        };
        self.write_with(records, &shared)
    }

    /// Opens the ledger at `location` for appending.
    fn open_at(location: &Location, sync: bool, shared: &Shared) -> Result<Sink> {
        Ok(match location {
            Location::File {
                path,
                format: Format::Sqlite,
            } => Sink::Sqlite(SqliteLedger::open(path, sync)?),
            Location::File {
                path,
                format: Format::Jsonl,
            } => Sink::Jsonl(JsonlLedger::open(path, sync)?),
            Location::Postgres(url) => {
                Sink::Postgres(Box::new(postgres::PgSink::open(url, shared)?))
            }
        })
    }

    /// Appends records (SQLite and PostgreSQL skip run ids they already have; PostgreSQL
    /// spools them while the database is unreachable). Returns how many were handed over.
    fn write_with(&mut self, records: &[CallRecord], shared: &Shared) -> Result<usize> {
        match self {
            Sink::Sqlite(s) => s.insert(records),
            Sink::Jsonl(j) => j.append(records),
            Sink::Postgres(p) => p.write(records, shared),
        }
    }

    /// Records wait in a spool for the database to come back.
    fn pending(&self) -> bool {
        matches!(self, Sink::Postgres(p) if p.pending())
    }

    /// Tries to send spooled records (the writer does when idle).
    fn retry(&mut self, shared: &Shared) {
        if let Sink::Postgres(p) = self {
            p.retry(shared);
        }
    }

    /// One last attempt to send spooled records, before the sink is closed.
    fn finish(&mut self, shared: &Shared) {
        if let Sink::Postgres(p) = self {
            p.finish(shared);
        }
    }
}

/// Messages kept for the tracker to log, at most.
const MAX_MESSAGES: usize = 20;

/// State shared by a store's handle and its writer thread.
#[derive(Debug)]
pub struct Shared {
    /// The ledger's name in messages (a URL without its password).
    name: String,
    messages: Mutex<Vec<String>>,
    has_messages: AtomicBool,
    suppressed: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Records waiting in a spool (PostgreSQL while the database is unreachable).
    spooled: AtomicU64,
    /// The database is unreachable (PostgreSQL).
    down: AtomicBool,
    /// Records the server refused, moved to the dead-letter file (PostgreSQL).
    rejected: AtomicU64,
}

impl Shared {
    fn new(location: &Location) -> Self {
        Shared {
            name: location.display_name(),
            messages: Mutex::new(Vec::new()),
            has_messages: AtomicBool::new(false),
            suppressed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            down: AtomicBool::new(false),
            rejected: AtomicU64::new(0),
        }
    }

    fn message(&self, m: String) {
        let mut msgs = self.messages.lock();
        if msgs.len() < MAX_MESSAGES {
            msgs.push(m);
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
        self.has_messages.store(true, Ordering::Release);
    }

    /// Writes a batch; a failure is counted and reported, never raised.
    fn write(&self, sink: &mut Sink, batch: &[CallRecord]) {
        // Not while a fork copies the process (see `crate::fork`).
        let io = crate::fork::writing();
        let rejected = self.rejected.load(Ordering::Relaxed);
        let written = sink.write_with(batch, self);
        drop(io);
        match written {
            Ok(_) => {
                // Records moved to the dead-letter file are counted there, not here.
                let moved = self.rejected.load(Ordering::Relaxed) - rejected;
                self.written.fetch_add(
                    (batch.len() as u64).saturating_sub(moved),
                    Ordering::Relaxed,
                );
            }
            Err(e) => {
                self.failed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.message(format!(
                    "could not write {} record(s) to the ledger (they stay in the tracker's \
                     totals): {e}",
                    batch.len()
                ));
            }
        }
    }

    /// Tries to send spooled records (in a section of ledger I/O).
    fn retry(&self, sink: &mut Sink) {
        let io = crate::fork::writing();
        sink.retry(self);
        drop(io);
    }

    /// Sends what it can and closes the sink (in a section of ledger I/O).
    fn close(&self, mut sink: Sink) {
        let io = crate::fork::writing();
        sink.finish(self);
        drop(sink);
        drop(io);
    }
}

/// Counters of a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Records handed to the file (committed, or skipped as already present).
    pub written: u64,
    /// Records dropped because the queue stayed full.
    pub dropped: u64,
    /// Records whose write failed.
    pub failed: u64,
    /// Records waiting in the queue.
    pub queued: u64,
    /// Records waiting in the local spool for the database to come back (PostgreSQL).
    pub spooled: u64,
    /// The database is unreachable: records go to the spool (PostgreSQL).
    pub backend_down: bool,
    /// Records the server refused while up, moved to the dead-letter file (PostgreSQL).
    pub rejected: u64,
}

/// Runs a blocking section (the binding releases the GIL around it).
pub type BlockingSection = Box<dyn Fn(&mut (dyn FnMut() + Send)) + Send + Sync>;

enum Mode {
    Batch(writer::BatchWriter),
    Sync(Mutex<Option<Sink>>),
}

impl Mode {
    /// Opens `location` and, for `Batch`, starts the writer thread.
    fn open(location: &Location, durability: Durability, shared: &Arc<Shared>) -> Result<Mode> {
        let io = crate::fork::writing();
        let sink = Sink::open_at(location, durability == Durability::Sync, shared);
        drop(io);
        let sink = sink?;
        Ok(match durability {
            Durability::Batch => Mode::Batch(
                writer::BatchWriter::start(sink, shared.clone()).map_err(|e| Error::Ledger {
                    path: location.display_name(),
                    message: format!("cannot start the writer thread: {e}"),
                })?,
            ),
            Durability::Sync => Mode::Sync(Mutex::new(Some(sink))),
        })
    }
}

/// One process's side of a store: its connection or writer thread, and its counters. A child
/// forked from the process that opened the store gets its own ([`Store::here`]): the parent's
/// writer thread does not exist in the child, and the parent's connection must be neither
/// used nor closed there (SQLite forbids both).
struct Proc {
    /// The [`crate::fork::generation`] it belongs to.
    generation: u64,
    shared: Arc<Shared>,
    /// `None` when the ledger could not be opened in this (forked) process.
    mode: Option<Mode>,
    closed_warned: AtomicBool,
    /// The side of a child forked from this process, once the child used the store.
    child: OnceLock<Box<Proc>>,
}

impl Proc {
    /// The side of the child process of generation `generation`: never fails (a problem is a
    /// message, and the child's records are counted as failed).
    fn reopen(location: &Location, durability: Durability, generation: u64) -> Proc {
        let shared = Arc::new(Shared::new(location));
        let mode = match Mode::open(location, durability, &shared) {
            Ok(m) => Some(m),
            Err(e) => {
                shared.message(format!(
                    "could not open the ledger in this forked process (its calls are tracked \
                     in memory only): {e}"
                ));
                None
            }
        };
        Proc {
            generation,
            shared,
            mode,
            closed_warned: AtomicBool::new(false),
            child: OnceLock::new(),
        }
    }

    fn warn_closed(&self) {
        if !self.closed_warned.swap(true, Ordering::Relaxed) {
            self.shared.message(format!(
                "ledger {} is closed: calls are tracked in memory only from now on",
                self.shared.name
            ));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.generation != crate::fork::generation() {
            // Another process's connection and queue (this is a forked child): closing them
            // here could damage the parent's ledger or wait for a thread that is gone.
            std::mem::forget(self.mode.take());
        }
    }
}

/// A tracker's durable sink.
pub struct Store {
    location: Location,
    durability: Durability,
    /// The side of the process that opened the store (its children's hang below it).
    root: Proc,
    blocking: OnceLock<BlockingSection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating) the ledger at `path` (format by extension or header). Errors here —
    /// an unwritable path, a newer schema, a file that is not a ledger — are the caller's to
    /// raise; after this, nothing the store does raises.
    pub fn open(path: &Path, durability: Durability) -> Result<Store> {
        Store::open_at(&Location::file(path), durability)
    }

    /// Opens (creating) the ledger at `location`: a file, or a PostgreSQL database (an
    /// unreachable one is not an error: its records are spooled until it is back).
    pub fn open_at(location: &Location, durability: Durability) -> Result<Store> {
        if let Location::File { path, format } = location {
            if *format == Format::Jsonl && Format::by_extension(path) == Some(Format::Sqlite) {
                // Never append JSON lines to a file named like a database.
                return Err(Error::Ledger {
                    path: path.display().to_string(),
                    message: "is not a SQLite database; refusing to write into it".into(),
                });
            }
        }
        let shared = Arc::new(Shared::new(location));
        let mode = Mode::open(location, durability, &shared)?;
        Ok(Store {
            location: location.clone(),
            durability,
            root: Proc {
                generation: crate::fork::generation(),
                shared,
                mode: Some(mode),
                closed_warned: AtomicBool::new(false),
                child: OnceLock::new(),
            },
            blocking: OnceLock::new(),
        })
    }

    /// Sets how blocking work is run (once; the Python binding releases the GIL).
    pub fn set_blocking_section(&self, f: BlockingSection) {
        let _ = self.blocking.set(f);
    }

    fn blocking<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self.blocking.get() {
            None => f(),
            Some(section) => {
                let mut f = Some(f);
                let mut out = None;
                section(&mut || {
                    if let Some(f) = f.take() {
                        out = Some(f());
                    }
                });
                match out {
                    Some(o) => o,
                    // The section did not run the closure: run it here.
                    None => (f.take().expect("closure not run"))(),
                }
            }
        }
    }

    /// Where the ledger is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// This process's side, if it has used the store yet (a forked child has not until its
    /// first record).
    fn find(&self) -> Option<&Proc> {
        let generation = crate::fork::generation();
        let mut p = &self.root;
        while p.generation != generation {
            p = p.child.get()?;
        }
        Some(p)
    }

    /// This process's side, opening the ledger again in a forked child (with the GIL
    /// released: it is file I/O).
    fn here(&self) -> &Proc {
        if let Some(p) = self.find() {
            return p;
        }
        let generation = crate::fork::generation();
        self.blocking(|| {
            let mut p = &self.root;
            while p.generation != generation {
                p = p.child.get_or_init(|| {
                    Box::new(Proc::reopen(&self.location, self.durability, generation))
                });
            }
            p
        })
    }

    /// Stores a finished call. Never fails: problems become messages.
    pub fn append(&self, r: &CallRecord) {
        let p = self.here();
        match &p.mode {
            None => {
                p.shared.failed.fetch_add(1, Ordering::Relaxed);
            }
            Some(Mode::Batch(w)) => match w.try_append(Box::new(r.clone())) {
                writer::Queued::Yes => {}
                writer::Queued::Closed => p.warn_closed(),
                writer::Queued::Full(r) => match self.blocking(|| w.append_waiting(r)) {
                    writer::Queued::Yes => {}
                    writer::Queued::Closed => p.warn_closed(),
                    writer::Queued::Full(_) => writer::count_dropped(&p.shared),
                },
            },
            Some(Mode::Sync(sink)) => {
                let shared = &p.shared;
                let done = self.blocking(|| {
                    let mut guard = sink.lock();
                    match guard.as_mut() {
                        Some(s) => {
                            shared.write(s, std::slice::from_ref(r));
                            true
                        }
                        None => false,
                    }
                });
                if !done {
                    p.warn_closed();
                }
            }
        }
    }

    /// Messages to log (write errors, drops), taken once each.
    pub fn take_messages(&self) -> Vec<String> {
        let Some(shared) = self.find().map(|p| &p.shared) else {
            return Vec::new();
        };
        if !shared.has_messages.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut msgs = shared.messages.lock();
        shared.has_messages.store(false, Ordering::Release);
        let mut out: Vec<String> = msgs.drain(..).map(|m| format!("llmledger: {m}")).collect();
        let suppressed = shared.suppressed.swap(0, Ordering::Relaxed);
        if suppressed > 0 {
            out.push(format!(
                "llmledger: {suppressed} more ledger message(s) suppressed"
            ));
        }
        out
    }

    /// Waits until every record this process appended so far is committed.
    /// With `durability="sync"` (no writer thread), it is also when records spooled during a
    /// database outage are tried again (as on each append).
    pub fn flush(&self) {
        let Some(p) = self.find() else { return };
        match &p.mode {
            Some(Mode::Batch(w)) => w.flush(),
            Some(Mode::Sync(sink)) => self.blocking(|| {
                if let Some(s) = sink.lock().as_mut() {
                    if s.pending() {
                        p.shared.retry(s);
                    }
                }
            }),
            None => {}
        }
    }

    /// Flushes, closes the file and stops the writer (this process's). Later appends are not
    /// stored (one message says so). Idempotent.
    pub fn close(&self) {
        match self.find().and_then(|p| p.mode.as_ref()) {
            Some(Mode::Batch(w)) => w.close(),
            Some(Mode::Sync(s)) => {
                let p = self.find().map(|p| p.shared.clone());
                if let (Some(sink), Some(shared)) = (s.lock().take(), p) {
                    shared.close(sink);
                }
            }
            None => {}
        }
    }

    /// This process's counters (a forked child counts its own records from zero).
    pub fn stats(&self) -> StoreStats {
        let Some(p) = self.find() else {
            return StoreStats::default();
        };
        StoreStats {
            written: p.shared.written.load(Ordering::Relaxed),
            dropped: p.shared.dropped.load(Ordering::Relaxed),
            failed: p.shared.failed.load(Ordering::Relaxed),
            queued: match &p.mode {
                Some(Mode::Batch(w)) => w.queued() as u64,
                _ => 0,
            },
            spooled: p.shared.spooled.load(Ordering::Relaxed),
            backend_down: p.shared.down.load(Ordering::Relaxed),
            rejected: p.shared.rejected.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests;
