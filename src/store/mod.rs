//! The durable ledger: every finished call record, kept in a SQLite database (the default) or
//! a JSONL file, written off the LLM call's path, shared by processes, read back by reports.
//!
//! A [`Store`] is the tracker's sink. With [`Durability::Batch`] a writer thread owns the file
//! and commits in batches (a crash loses at most the last batch); with [`Durability::Sync`]
//! each record is committed on the caller's thread before the call's end hook returns. Store
//! I/O errors never reach the LLM call: they are collected as messages the tracker logs.
//!
//! Reading ([`read`], [`reader`]): group-by reports, window spend for budgets, exports and
//! imports, and records streamed in batches, over either format. Where a ledger is, and so
//! which backend reads it, is decided in one place: [`Location`].

pub mod follow;
pub mod jsonl;
pub mod key;
pub mod location;
pub mod read;
pub mod reader;
pub mod record;
pub mod sqlite;
mod sqlite_scan;
mod unseen_keys;
pub mod writer;

use std::path::{Path, PathBuf};
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

/// An open ledger file, written by one owner at a time.
#[derive(Debug)]
pub enum Sink {
    /// SQLite.
    Sqlite(SqliteLedger),
    /// JSONL.
    Jsonl(JsonlLedger),
}

impl Sink {
    /// Opens `path` for appending in `format`.
    pub fn open(path: &Path, format: Format, sync: bool) -> Result<Sink> {
        Ok(match format {
            Format::Sqlite => Sink::Sqlite(SqliteLedger::open(path, sync)?),
            Format::Jsonl => Sink::Jsonl(JsonlLedger::open(path, sync)?),
        })
    }

    /// Appends records (a SQLite ledger skips run ids it already has). Returns how many were
    /// added.
    pub fn write(&mut self, records: &[CallRecord]) -> Result<usize> {
        match self {
            Sink::Sqlite(s) => s.insert(records),
            Sink::Jsonl(j) => j.append(records),
        }
    }
}

/// Messages kept for the tracker to log, at most.
const MAX_MESSAGES: usize = 20;

/// State shared by a store's handle and its writer thread.
#[derive(Debug)]
pub struct Shared {
    path: PathBuf,
    messages: Mutex<Vec<String>>,
    has_messages: AtomicBool,
    suppressed: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

impl Shared {
    fn new(path: &Path) -> Self {
        Shared {
            path: path.to_path_buf(),
            messages: Mutex::new(Vec::new()),
            has_messages: AtomicBool::new(false),
            suppressed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
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
        let written = sink.write(batch);
        drop(io);
        match written {
            Ok(_) => {
                self.written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
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
}

/// Runs a blocking section (the binding releases the GIL around it).
pub type BlockingSection = Box<dyn Fn(&mut (dyn FnMut() + Send)) + Send + Sync>;

enum Mode {
    Batch(writer::BatchWriter),
    Sync(Mutex<Option<Sink>>),
}

impl Mode {
    /// Opens `path` and, for `Batch`, starts the writer thread.
    fn open(
        path: &Path,
        format: Format,
        durability: Durability,
        shared: &Arc<Shared>,
    ) -> Result<Mode> {
        let io = crate::fork::writing();
        let sink = Sink::open(path, format, durability == Durability::Sync);
        drop(io);
        let sink = sink?;
        Ok(match durability {
            Durability::Batch => Mode::Batch(
                writer::BatchWriter::start(sink, shared.clone()).map_err(|e| Error::Ledger {
                    path: path.display().to_string(),
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
    fn reopen(path: &Path, format: Format, durability: Durability, generation: u64) -> Proc {
        let shared = Arc::new(Shared::new(path));
        let mode = match Mode::open(path, format, durability, &shared) {
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
                self.shared.path.display()
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
    path: PathBuf,
    format: Format,
    durability: Durability,
    /// The side of the process that opened the store (its children's hang below it).
    root: Proc,
    blocking: OnceLock<BlockingSection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating) the ledger at `path` (format by extension or header). Errors here —
    /// an unwritable path, a newer schema, a file that is not a ledger — are the caller's to
    /// raise; after this, nothing the store does raises.
    pub fn open(path: &Path, durability: Durability) -> Result<Store> {
        let format = Format::of(path);
        if format == Format::Jsonl && Format::by_extension(path) == Some(Format::Sqlite) {
            // Never append JSON lines to a file named like a database.
            return Err(Error::Ledger {
                path: path.display().to_string(),
                message: "is not a SQLite database; refusing to write into it".into(),
            });
        }
        let shared = Arc::new(Shared::new(path));
        let mode = Mode::open(path, format, durability, &shared)?;
        Ok(Store {
            path: path.to_path_buf(),
            format,
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

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its format.
    pub fn format(&self) -> Format {
        self.format
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
                    Box::new(Proc::reopen(
                        &self.path,
                        self.format,
                        self.durability,
                        generation,
                    ))
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
    pub fn flush(&self) {
        if let Some(Proc {
            mode: Some(Mode::Batch(w)),
            ..
        }) = self.find()
        {
            w.flush();
        }
    }

    /// Flushes, closes the file and stops the writer (this process's). Later appends are not
    /// stored (one message says so). Idempotent.
    pub fn close(&self) {
        match self.find().and_then(|p| p.mode.as_ref()) {
            Some(Mode::Batch(w)) => w.close(),
            Some(Mode::Sync(s)) => drop(s.lock().take()),
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
