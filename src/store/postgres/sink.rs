//! Writing to a PostgreSQL ledger through outages: while the database is down or
//! unreachable, batches go to a local spool (a JSONL ledger file, written with the JSONL
//! backend and flushed to the disk), and are sent, oldest first, when it is back. A run id
//! already stored is skipped, so a batch sent twice (the connection broke after the commit,
//! or the process died between sending the spool and emptying it) is stored once.
//!
//! Spool files live in [`spool_dir`] (`LLMLEDGER_SPOOL_DIR`, else
//! `$XDG_STATE_HOME/llmledger/spool`, else `~/.local/state/llmledger/spool`), owner-only
//! (directory `0700`, files `0600`), one per process and database:
//! `<database key>.<pid>.jsonl`. A process holds a lock on its own spool; at start it adopts
//! (and sends) the spools of the same database that no live process holds, so what a
//! process that died during an outage spooled is not lost either.
//!
//! The connection lives on a thread of its own ([`Conn`]): a request (connecting, a batch)
//! not answered within [`REPLY_DEADLINE`] is given up and the connection abandoned, so a
//! server that stops answering while its host still acknowledges TCP (a stopped process, a
//! proxy that stops forwarding: neither the server's timeouts nor TCP's fire then) holds up
//! that thread only, not the writer, `flush()`, `close()` or a `durability="sync"` call. The
//! batch is spooled; should the abandoned connection commit it after all, its run ids are
//! skipped when the spool is sent. One abandoned connection at a time: the sink reconnects
//! once it has ended (the server answered or the connection broke).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::ledger::CallRecord;
use crate::store::jsonl::{JsonlLedger, JsonlReader};
use crate::store::private::{open_private, private_dir};
use crate::store::{Shared, TimeRange};

use super::{describe, OpenError, PgLedger, PgUrl};

/// How long the writer waits for its connection to answer one request (connecting, a batch)
/// before it gives the request up: longer than the server's own bound on the writer's
/// statements ([`super::WRITER_STATEMENT_TIMEOUT`]), so that a server that is up answers
/// first.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(15);

/// A request run on the connection's thread.
type Job = Box<dyn FnOnce(&mut PgLedger) + Send>;

/// The writer's connection, on a thread of its own (see the module).
struct Conn {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// What became of a connection attempt.
enum Opened {
    Ready(Conn),
    Failed(OpenError),
    /// No answer in time: the thread, still trying.
    Stalled(JoinHandle<()>),
}

impl Conn {
    /// Connects (creating or migrating the tables) on a new thread, waiting `deadline` at most.
    fn open(url: &PgUrl, deadline: Duration) -> Opened {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened_tx, opened) = mpsc::sync_channel(1);
        let target = url.clone();
        let spawned = std::thread::Builder::new()
            .name("llmledger-pg".into())
            .spawn(move || {
                let mut db = match PgLedger::open_writer(&target) {
                    Ok(db) => db,
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                if opened_tx.send(Ok(())).is_err() {
                    return;
                }
                for job in queue {
                    job(&mut db);
                }
            });
        let thread = match spawned {
            Ok(t) => t,
            Err(e) => return Opened::Failed(OpenError::Other(url.err(format!("a thread: {e}")))),
        };
        match opened.recv_timeout(deadline) {
            Ok(Ok(())) => Opened::Ready(Conn {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Opened::Failed(e)
            }
            Err(_) => Opened::Stalled(thread),
        }
    }

    /// Runs `f` on the connection; `None` when no answer came within `deadline` (or the
    /// thread is gone): the connection is then to be abandoned.
    fn ask<T: Send + 'static>(
        &self,
        deadline: Duration,
        f: impl FnOnce(&mut PgLedger) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |db| {
            let _ = tx.send(f(db));
        });
        self.jobs.as_ref()?.send(job).ok()?;
        rx.recv_timeout(deadline).ok()
    }

    /// Gives the connection up without waiting for it: its thread, which ends when its
    /// request does (the server answers or the connection breaks).
    fn abandon(mut self) -> Option<JoinHandle<()>> {
        self.jobs = None;
        self.thread.take()
    }
}

impl Drop for Conn {
    /// Closes the connection: its thread ends after the request it runs, if any.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The first pause between reconnection attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Records sent per transaction when a spool is replayed.
const REPLAY_BATCH: usize = 4096;
/// A message about a growing spool every this many records.
const SPOOL_NOTE_EVERY: u64 = 10_000;
/// Messages about records moved to the dead-letter file, at most (then they are only counted).
const DEAD_NOTES: u64 = 5;

/// The server, up, refused the data of a batch (SQLSTATE class 22, data exception; 23,
/// integrity constraint; 54, program limit): one of its records is to blame, not the
/// connection or the server, and sending it again can never succeed.
fn refused_data(e: &postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        let c = d.code().code();
        c.starts_with("22") || c.starts_with("23") || c.starts_with("54")
    })
}

/// A record the server refused, with why (SQLSTATE and the server's message; not its detail,
/// which can quote values).
struct Refused {
    record: CallRecord,
    why: String,
}

/// Inserts `records`; when the server refuses their data, splits the batch in halves until
/// each refused record is alone, so the others land, and hands those to `refused`. Returns
/// the records added; an error is the connection's or the server's (not a record's).
fn land(
    db: &mut PgLedger,
    records: &[CallRecord],
    refused: &mut Vec<Refused>,
) -> std::result::Result<usize, postgres::Error> {
    match db.insert(records) {
        Err(e) if refused_data(&e) => {
            if let [one] = records {
                let why = e.as_db_error().map_or_else(
                    || describe(&e),
                    |d| format!("SQLSTATE {}: {}", d.code().code(), d.message()),
                );
                refused.push(Refused {
                    record: one.clone(),
                    why,
                });
                return Ok(0);
            }
            let (a, b) = records.split_at(records.len() / 2);
            Ok(land(db, a, refused)? + land(db, b, refused)?)
        }
        other => other,
    }
}

/// The directory of spool files.
pub fn spool_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("LLMLEDGER_SPOOL_DIR") {
        return d;
    }
    if let Some(d) = var("XDG_STATE_HOME") {
        return d.join("llmledger").join("spool");
    }
    if let Some(h) = var("HOME") {
        return h.join(".local/state/llmledger/spool");
    }
    std::env::temp_dir().join("llmledger-spool")
}

/// A stable short name of a database (FNV-1a of its URL without the password).
fn database_key(url: &PgUrl) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.redacted().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("pg-{h:016x}")
}

/// One spool file, locked by this process.
struct Spool {
    path: PathBuf,
    /// Holds the lock (and truncates the file once it is sent).
    lock: File,
    /// This process's own spool appends through the JSONL backend.
    writer: Option<JsonlLedger>,
    records: u64,
}

/// A PostgreSQL ledger's writing side: its connection when there is one, and its spools.
pub struct PgSink {
    url: PgUrl,
    db: Option<Conn>,
    /// A connection given up (see the module), until its thread ends.
    abandoned: Option<JoinHandle<()>>,
    /// How long a request may go unanswered ([`REPLY_DEADLINE`]).
    deadline: Duration,
    dir: PathBuf,
    key: String,
    own: Option<Spool>,
    /// Spools adopted from processes that are gone.
    orphans: Vec<Spool>,
    next_try: Instant,
    backoff: Duration,
    down_since: Option<Instant>,
    /// Where records the server refuses go (opened on the first).
    dead: Option<JsonlLedger>,
}

impl std::fmt::Debug for PgSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSink")
            .field("url", &self.url)
            .field("connected", &self.db.is_some())
            .finish_non_exhaustive()
    }
}

impl PgSink {
    /// Connects (creating the tables) and adopts spools left by processes that are gone. An
    /// unreachable server is not an error: the sink starts in an outage, spooling. A refusal
    /// by the server (authentication, a missing database, a newer schema) is.
    pub fn open(url: &PgUrl, shared: &Shared) -> Result<PgSink> {
        PgSink::open_in(url, shared, spool_dir())
    }

    /// [`PgSink::open`] with its spools in `dir`.
    pub fn open_in(url: &PgUrl, shared: &Shared, dir: PathBuf) -> Result<PgSink> {
        PgSink::open_with(url, shared, dir, REPLY_DEADLINE)
    }

    /// [`PgSink::open_in`], waiting `deadline` at most for each answer of the server.
    pub fn open_with(
        url: &PgUrl,
        shared: &Shared,
        dir: PathBuf,
        deadline: Duration,
    ) -> Result<PgSink> {
        let mut sink = PgSink {
            url: url.clone(),
            db: None,
            abandoned: None,
            deadline,
            dir,
            key: database_key(url),
            own: None,
            orphans: Vec::new(),
            next_try: Instant::now(),
            backoff: FIRST_BACKOFF,
            down_since: None,
            dead: None,
        };
        match Conn::open(url, deadline) {
            Opened::Ready(db) => sink.db = Some(db),
            Opened::Failed(OpenError::Connect(e)) if !e.refused() => {
                sink.went_down(&e.to_string(), shared);
            }
            Opened::Failed(OpenError::Connect(e)) => return Err(url.err(e)),
            Opened::Failed(OpenError::Other(e)) => return Err(e),
            Opened::Stalled(thread) => {
                sink.abandoned = Some(thread);
                let why = sink.no_answer("connecting");
                sink.went_down(&why, shared);
            }
        }
        sink.adopt_orphans(shared);
        if sink.db.is_some() && sink.pending() {
            sink.replay(shared);
        }
        Ok(sink)
    }

    /// Records are waiting in a spool.
    pub fn pending(&self) -> bool {
        self.own.as_ref().is_some_and(|s| s.records > 0) || !self.orphans.is_empty()
    }

    fn spooled(&self) -> u64 {
        self.own.as_ref().map_or(0, |s| s.records)
            + self.orphans.iter().map(|s| s.records).sum::<u64>()
    }

    fn own_name(&self) -> String {
        format!("{}.{}.jsonl", self.key, std::process::id())
    }

    fn adopt_orphans(&mut self, shared: &Shared) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let own = self.own_name();
        let prefix = format!("{}.", self.key);
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_spool = Path::new(&name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
            if !name.starts_with(&prefix) || !is_spool || name == own {
                continue;
            }
            let path = entry.path();
            let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_err() {
                continue; // a live process's spool
            }
            let records = std::fs::read(&path).map_or(0, |b| {
                b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count() as u64
            });
            if records == 0 {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            shared.message(format!(
                "ledger {}: found {records} record(s) spooled by a process that is gone ({}); \
                 sending them",
                self.url.redacted(),
                path.display()
            ));
            self.orphans.push(Spool {
                path,
                lock: file,
                writer: None,
                records,
            });
        }
        shared.spooled.store(self.spooled(), Ordering::Relaxed);
    }

    /// Why a request was given up.
    fn no_answer(&self, what: &str) -> String {
        format!(
            "no answer within {} s while {what}: the connection is given up",
            self.deadline.as_secs_f64()
        )
    }

    /// The request on the connection went unanswered: the connection is given up (its thread
    /// kept until it ends), and the sink goes down.
    fn stalled(&mut self, what: &str, shared: &Shared) -> String {
        if let Some(conn) = self.db.take() {
            self.abandoned = conn.abandon();
        }
        let why = self.no_answer(what);
        self.went_down(&why, shared);
        why
    }

    /// The connection failed: spool from now on, and say so once per outage.
    fn went_down(&mut self, why: &str, shared: &Shared) {
        self.db = None;
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        shared.down.store(true, Ordering::Relaxed);
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            shared.message(format!(
                "ledger {} is unreachable ({why}); calls go on, their records are spooled to \
                 {} and sent when the database is back",
                self.url.redacted(),
                self.dir.join(self.own_name()).display()
            ));
        }
    }

    /// Appends records to this process's spool (flushed to the disk).
    fn spool(&mut self, records: &[CallRecord], shared: &Shared) -> Result<()> {
        if self.own.is_none() {
            let path = self.dir.join(self.own_name());
            let e = |m: std::io::Error| self.url.err(format!("spool {}: {m}", path.display()));
            private_dir(&self.dir).map_err(e)?;
            let lock = open_private(&path).map_err(e)?;
            lock.try_lock()
                .map_err(|m| self.url.err(format!("spool {}: {m}", path.display())))?;
            let writer = JsonlLedger::open(&path, true)?;
            self.own = Some(Spool {
                path,
                lock,
                writer: Some(writer),
                records: 0,
            });
        }
        let Some(own) = self.own.as_mut() else {
            return Ok(());
        };
        if let Some(w) = own.writer.as_mut() {
            w.append(records)?;
        }
        let before = own.records;
        own.records += records.len() as u64;
        if before / SPOOL_NOTE_EVERY != own.records / SPOOL_NOTE_EVERY {
            shared.message(format!(
                "ledger {} is still unreachable: {} record(s) spooled in {}",
                self.url.redacted(),
                own.records,
                own.path.display()
            ));
        }
        shared.spooled.store(self.spooled(), Ordering::Relaxed);
        Ok(())
    }

    /// Sends every spool (adopted ones first), emptying each once it is stored. Stops at the
    /// first failure (the connection is then down again).
    fn replay(&mut self, shared: &Shared) {
        let mut sent = 0u64;
        let mut added = 0u64;
        let mut spools: Vec<Spool> = std::mem::take(&mut self.orphans);
        let own_at = spools.len();
        spools.extend(self.own.take());
        let mut failed: Option<String> = None;
        for (i, spool) in spools.iter_mut().enumerate() {
            if failed.is_some() || spool.records == 0 {
                continue;
            }
            match self.send_file(spool, shared) {
                Ok((s, a)) => {
                    sent += s;
                    added += a;
                    spool.records = 0;
                    if i < own_at {
                        let _ = std::fs::remove_file(&spool.path);
                    } else {
                        // Emptied, not removed: this process keeps (and holds) its spool.
                        let _ = spool.lock.set_len(0);
                        let _ = spool.lock.sync_all();
                    }
                }
                Err(why) => failed = Some(why),
            }
        }
        if spools.len() > own_at {
            self.own = spools.pop();
        }
        self.orphans = spools.into_iter().filter(|s| s.records > 0).collect();
        shared.spooled.store(self.spooled(), Ordering::Relaxed);
        if let Some(why) = failed {
            self.went_down(&why, shared);
            return;
        }
        shared.down.store(false, Ordering::Relaxed);
        self.backoff = FIRST_BACKOFF;
        let after = self
            .down_since
            .take()
            .map(|t| format!(" after {:.1} s", t.elapsed().as_secs_f64()))
            .unwrap_or_default();
        shared.message(format!(
            "ledger {} is back{after}: {sent} spooled record(s) sent ({} were already stored)",
            self.url.redacted(),
            sent - added
        ));
    }

    /// Sends one spool file's records. Returns (records read, records added).
    fn send_file(
        &mut self,
        spool: &Spool,
        shared: &Shared,
    ) -> std::result::Result<(u64, u64), String> {
        if self.db.is_none() {
            return Err("not connected".into());
        }
        let mut reader =
            JsonlReader::open(&spool.path, TimeRange::default()).map_err(|e| e.to_string())?;
        let mut batch = Vec::with_capacity(REPLAY_BATCH);
        let (mut sent, mut added) = (0u64, 0u64);
        loop {
            batch.clear();
            while batch.len() < REPLAY_BATCH {
                match reader.next_record().map_err(|e| e.to_string())? {
                    Some(r) => batch.push(r),
                    None => break,
                }
            }
            for w in reader.take_warnings() {
                shared.message(format!("spool {w} (skipped)"));
            }
            if batch.is_empty() {
                return Ok((sent, added));
            }
            let Some(db) = self.db.as_ref() else {
                return Err("not connected".into());
            };
            let n = batch.len() as u64;
            let records = std::mem::take(&mut batch);
            let Some((landed, refused)) = db.ask(self.deadline, move |db| {
                let mut refused = Vec::new();
                let landed = land(db, &records, &mut refused).map_err(|e| describe(&e));
                (landed, refused)
            }) else {
                return Err(self.stalled("sending a spool", shared));
            };
            self.dead_letter(&refused, shared);
            added += landed? as u64;
            sent += n;
        }
    }

    /// The dead-letter file of this process and database (owner-only, beside the spools; a
    /// JSONL ledger, so `llmledger import` reads it).
    pub fn dead_letter_path(&self) -> PathBuf {
        self.dir.join(format!(
            "dead-letter.{}.{}.jsonl",
            self.key,
            std::process::id()
        ))
    }

    /// Moves records the server refused to the dead-letter file, counting and logging them.
    /// Should the file fail too, they are counted as failed (and logged).
    fn dead_letter(&mut self, refused: &[Refused], shared: &Shared) {
        if refused.is_empty() {
            return;
        }
        let path = self.dead_letter_path();
        let records: Vec<CallRecord> = refused.iter().map(|r| r.record.clone()).collect();
        let written = self.write_dead(&path, &records);
        let n = records.len() as u64;
        let before = if written.is_ok() {
            shared.rejected.fetch_add(n, Ordering::Relaxed)
        } else {
            shared.failed.fetch_add(n, Ordering::Relaxed);
            0
        };
        for (i, r) in refused.iter().enumerate() {
            if before + i as u64 >= DEAD_NOTES && written.is_ok() {
                break;
            }
            let whither = match &written {
                Ok(()) => format!("moved to {}", path.display()),
                Err(e) => format!("and the dead-letter file failed too, so it is lost: {e}"),
            };
            shared.message(format!(
                "ledger {} refused the record of run {} ({}); the rest of its batch was \
                 stored, the record {whither}",
                self.url.redacted(),
                crate::ledger::uuid_string(r.record.run_id),
                r.why
            ));
        }
    }

    fn write_dead(&mut self, path: &Path, records: &[CallRecord]) -> Result<()> {
        if self.dead.is_none() {
            let e = |m: std::io::Error| self.url.err(format!("{}: {m}", path.display()));
            private_dir(&self.dir).map_err(e)?;
            drop(open_private(path).map_err(e)?);
            self.dead = Some(JsonlLedger::open(path, true)?);
        }
        if let Some(d) = self.dead.as_mut() {
            d.append(records)?;
        }
        Ok(())
    }

    /// Reconnects and sends the spools, when it is time to try again.
    fn recover(&mut self, shared: &Shared, force: bool) {
        if self.db.is_some() && !self.pending() {
            return;
        }
        if !force && Instant::now() < self.next_try {
            return;
        }
        // A connection given up still waits for its answer: no second one meanwhile.
        if self.abandoned.as_ref().is_some_and(|t| !t.is_finished()) {
            self.next_try = Instant::now() + self.backoff;
            return;
        }
        self.abandoned = None;
        if self.db.is_none() {
            match Conn::open(&self.url, self.deadline) {
                Opened::Ready(db) => self.db = Some(db),
                Opened::Failed(OpenError::Connect(e)) => {
                    return self.went_down(&e.to_string(), shared)
                }
                Opened::Failed(OpenError::Other(e)) => {
                    return self.went_down(&e.to_string(), shared)
                }
                Opened::Stalled(thread) => {
                    self.abandoned = Some(thread);
                    let why = self.no_answer("connecting");
                    return self.went_down(&why, shared);
                }
            }
        }
        self.replay(shared);
    }

    /// Writes records: to the database when it is reachable and nothing older waits in a
    /// spool, else to the spool. Fails only when the spool cannot be written either.
    pub fn write(&mut self, records: &[CallRecord], shared: &Shared) -> Result<usize> {
        self.recover(shared, false);
        if !self.pending() {
            if let Some(db) = self.db.as_ref() {
                let batch = records.to_vec();
                let answer = db.ask(self.deadline, move |db| {
                    let mut refused = Vec::new();
                    let landed = land(db, &batch, &mut refused).map_err(|e| describe(&e));
                    (landed, refused)
                });
                match answer {
                    Some((landed, refused)) => {
                        self.dead_letter(&refused, shared);
                        match landed {
                            Ok(_) => return Ok(records.len()),
                            Err(why) => self.went_down(&why, shared),
                        }
                    }
                    None => {
                        self.stalled("writing a batch", shared);
                    }
                }
            }
        }
        self.spool(records, shared)?;
        Ok(records.len())
    }

    /// What the writer does when idle with records in a spool: try to send them.
    pub fn retry(&mut self, shared: &Shared) {
        self.recover(shared, false);
    }

    /// One last attempt to send the spools (at close).
    pub fn finish(&mut self, shared: &Shared) {
        if self.pending() {
            self.recover(shared, true);
        }
    }
}
