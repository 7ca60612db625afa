//! The writer thread of `durability="batch"`: records queue on a bounded channel and are
//! written in batches (a batch closes at `MAX_BATCH` records or `LINGER` after its first
//! record), so no LLM call ever waits for the disk.
//!
//! Queue-full policy: the queue holds `QUEUE_CAPACITY` records. When it is full (the disk or
//! another process's lock has stalled the writer for a while), `append` waits up to
//! `FULL_WAIT` for room — the GIL released — and then drops the record from the ledger (it
//! stays in the tracker's in-memory totals), counting it in `dropped` and logging a warning.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

use crate::ledger::CallRecord;

use super::{Shared, Sink};

/// Records queued at most.
pub const QUEUE_CAPACITY: usize = 32_768;
/// Records written in one transaction at most.
pub const MAX_BATCH: usize = 4_096;
/// How long a batch waits for more records after its first.
pub const LINGER: Duration = Duration::from_millis(50);
/// How often an idle writer tries to send records spooled while the database was down.
pub const RETRY: Duration = Duration::from_secs(1);
/// How long `append` waits for room in a full queue before dropping the record.
pub const FULL_WAIT: Duration = Duration::from_millis(250);

enum Msg {
    Record(Box<CallRecord>),
    Flush(Sender<()>),
}

/// The handle of a running writer thread.
pub struct BatchWriter {
    tx: RwLock<Option<Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Whether a record was queued.
pub enum Queued {
    /// It is in the queue.
    Yes,
    /// The queue stayed full: the record was not queued.
    Full(Box<CallRecord>),
    /// The writer was closed.
    Closed,
}

impl BatchWriter {
    /// Starts the writer thread, which owns `sink`.
    pub fn start(mut sink: Sink, shared: Arc<Shared>) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<Msg>(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("llmledger-writer".into())
            .spawn(move || {
                let mut batch: Vec<CallRecord> = Vec::with_capacity(MAX_BATCH);
                let mut acks: Vec<Sender<()>> = Vec::new();
                let mut open = true;
                while open {
                    // With records in a spool, wake up now and then to send them.
                    let first = if sink.pending() {
                        match rx.recv_timeout(RETRY) {
                            Err(RecvTimeoutError::Timeout) => {
                                shared.retry(&mut sink);
                                continue;
                            }
                            other => other.map_err(|_| ()),
                        }
                    } else {
                        rx.recv().map_err(|_| ())
                    };
                    match first {
                        Ok(Msg::Record(r)) => batch.push(*r),
                        Ok(Msg::Flush(a)) => acks.push(a),
                        Err(()) => break,
                    }
                    let deadline = Instant::now() + LINGER;
                    while acks.is_empty() && batch.len() < MAX_BATCH {
                        match rx.recv_deadline(deadline) {
                            Ok(Msg::Record(r)) => batch.push(*r),
                            Ok(Msg::Flush(a)) => acks.push(a),
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => {
                                open = false;
                                break;
                            }
                        }
                    }
                    if !batch.is_empty() {
                        shared.write(&mut sink, &batch);
                        batch.clear();
                    }
                    for a in acks.drain(..) {
                        let _ = a.send(());
                    }
                }
                // Closing the connection is ledger I/O too (see `crate::fork`).
                shared.close(sink);
            })?;
        Ok(BatchWriter {
            tx: RwLock::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a record without waiting.
    pub fn try_append(&self, r: Box<CallRecord>) -> Queued {
        let tx = self.tx.read();
        let Some(tx) = tx.as_ref() else {
            return Queued::Closed;
        };
        match tx.try_send(Msg::Record(r)) {
            Ok(()) => Queued::Yes,
            Err(TrySendError::Full(Msg::Record(r))) => Queued::Full(r),
            Err(_) => Queued::Closed,
        }
    }

    /// Queues a record, waiting up to `FULL_WAIT` for room.
    pub fn append_waiting(&self, r: Box<CallRecord>) -> Queued {
        let tx = self.tx.read();
        let Some(tx) = tx.as_ref() else {
            return Queued::Closed;
        };
        match tx.send_timeout(Msg::Record(r), FULL_WAIT) {
            Ok(()) => Queued::Yes,
            Err(SendTimeoutError::Timeout(Msg::Record(r))) => Queued::Full(r),
            Err(_) => Queued::Closed,
        }
    }

    /// Waits until everything queued before this call is committed.
    pub fn flush(&self) {
        let (ack_tx, ack_rx) = bounded(1);
        {
            let tx = self.tx.read();
            let Some(tx) = tx.as_ref() else { return };
            if tx.send(Msg::Flush(ack_tx)).is_err() {
                return;
            }
        }
        let _ = ack_rx.recv();
    }

    /// Writes what is queued, stops the thread and waits for it. Idempotent.
    pub fn close(&self) {
        drop(self.tx.write().take());
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// Records waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.read().as_ref().map_or(0, Sender::len)
    }
}

/// Counts a record the queue had no room for.
pub fn count_dropped(shared: &Shared) {
    let n = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
    if n == 1 || n.is_multiple_of(10_000) {
        shared.message(format!(
            "ledger {}: the write queue is full ({QUEUE_CAPACITY} records waiting for more than \
             {} ms); {n} record(s) dropped from the ledger so far (they are still in the \
             tracker's totals)",
            shared.name,
            FULL_WAIT.as_millis()
        ));
    }
}
