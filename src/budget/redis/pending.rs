//! Settlements of calls that ended while Redis was unreachable, kept in memory until it is
//! back. Each is applied once: the script marks a settled run done, so one sent twice (its
//! reply lost to a timeout) counts once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

/// Settlements kept at most; older ones are dropped (and counted) past it.
const MAX_PENDING: usize = 100_000;
/// Settlements applied per replay, so one call's hook is not held up long.
const BATCH: usize = 256;

/// A settlement to apply when Redis is back.
pub(super) struct Pending {
    pub run: String,
    pub parts: Vec<(usize, Option<Arc<str>>)>,
    /// The cost in pico-dollars (`None`: nothing to charge).
    pub actual: Option<i128>,
    /// When the call ended: its windows are the ones containing this time.
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub(super) struct PendingQueue {
    /// The queue and the fork generation it belongs to.
    queue: Mutex<(u64, VecDeque<Pending>)>,
    replayed: AtomicU64,
    dropped: AtomicU64,
}

impl PendingQueue {
    /// The queue, locked. A forked child starts with none of its parent's settlements: the
    /// parent applies them (or, if it dies first, the next tracker adopts its spool file).
    fn lock(&self) -> parking_lot::MappedMutexGuard<'_, VecDeque<Pending>> {
        let mut g = self.queue.lock();
        let generation = crate::fork::generation();
        if g.0 != generation {
            *g = (generation, VecDeque::new());
        }
        parking_lot::MutexGuard::map(g, |(_, q)| q)
    }

    pub fn push(&self, p: Pending) {
        let mut q = self.lock();
        if q.len() >= MAX_PENDING {
            q.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back(p);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to a batch of the oldest, taken out (`None`: nothing waits).
    pub fn take_batch(&self) -> Option<Vec<Pending>> {
        let mut q = self.lock();
        if q.is_empty() {
            return None;
        }
        let n = q.len().min(BATCH);
        Some(q.drain(..n).collect())
    }

    /// Puts back what could not be applied, oldest first.
    pub fn put_back(&self, left: Vec<Pending>) {
        if left.is_empty() {
            return;
        }
        let mut q = self.lock();
        for p in left.into_iter().rev() {
            q.push_front(p);
        }
    }

    pub fn replayed(&self) {
        self.replayed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn replayed_count(&self) -> u64 {
        self.replayed.load(Ordering::Relaxed)
    }

    pub fn dropped_count(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
