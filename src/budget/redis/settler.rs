//! Settlements off the call's path. A call's end hook only queues its settlement (the
//! reservation stays counted in Redis until it is applied, so the budget is never looser for
//! the wait); a settler thread sends what is queued in one pipeline, and the next call's
//! reservation takes along whatever is still queued in its own round trip. Each call then
//! waits for one round trip (its reservation) instead of two.
//!
//! Alerts of a settlement applied later are handed to the tracker by the next end hook, or
//! by `flush()` / `close()`, which first wait until every queued settlement is applied.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::money::Decimal;

use super::super::backend::{BackendInfo, BudgetBackend, Refusal, SharedLedger};
use super::super::{Alert, Budget, BudgetState, CallScope, ReservationId};
use super::keys::WindowSpec;
use super::{ms, Failure, Inner, Pending, RedisSettings, Reply};

/// How long the settler waits after a settlement is queued before sending it.
const LINGER: StdDuration = StdDuration::from_millis(1);
/// Operations per script run of a batch: one run holds Redis's one thread, so a long queue
/// (an outage's replay, a burst of calls ending) goes as several runs in one pipeline.
const BATCH: usize = 64;

#[derive(Default)]
struct Queue {
    items: Vec<Pending>,
    /// Batches taken and not yet applied (or queued for the outage replay).
    in_flight: usize,
    stop: bool,
    /// The settler waits for a first settlement (a push must wake it).
    sleeping: bool,
    /// The fork generation the queue belongs to (see [`Outbox::lock`]).
    generation: u64,
}

/// Settlements waiting to be sent, and the alerts of those applied.
///
/// The queue and its condition variables are the standard library's (futex words), not
/// parking_lot's: the settler thread waits on them most of its life, and a parking_lot wait
/// leaves the thread in a process-wide table of parked threads that a forked child copies
/// and would then walk (a crash seen in the child's first wait).
#[derive(Default)]
pub(super) struct Outbox {
    queue: Mutex<Queue>,
    wake: Condvar,
    idle: Condvar,
    alerts: parking_lot::Mutex<Vec<Alert>>,
}

impl Outbox {
    /// The queue, locked. In a forked child, first emptied of what the parent had queued or
    /// in flight: the parent applies its own settlements.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        let mut q = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = crate::fork::generation();
        if q.generation != generation {
            *q = Queue {
                generation,
                ..Queue::default()
            };
        }
        q
    }

    /// Waits on `cv` (for at most `limit`), the queue unlocked meanwhile.
    fn wait<'a>(
        cv: &Condvar,
        q: MutexGuard<'a, Queue>,
        limit: Option<StdDuration>,
    ) -> (MutexGuard<'a, Queue>, bool) {
        match limit {
            None => (
                cv.wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                false,
            ),
            Some(d) => {
                let (q, r) = cv
                    .wait_timeout(q, d)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                (q, r.timed_out())
            }
        }
    }

    pub fn push(&self, p: Pending) {
        let mut q = self.lock();
        q.items.push(p);
        // Only a sleeping settler needs waking: one lingering sends this too.
        if q.sleeping {
            q.sleeping = false;
            drop(q);
            self.wake.notify_one();
        }
    }

    /// Everything queued, taken out (and counted in flight until `done`).
    pub fn take(&self) -> Vec<Pending> {
        let mut q = self.lock();
        if q.items.is_empty() {
            return Vec::new();
        }
        q.in_flight += 1;
        std::mem::take(&mut q.items)
    }

    fn done(&self) {
        let mut q = self.lock();
        q.in_flight = q.in_flight.saturating_sub(1);
        if q.in_flight == 0 {
            self.idle.notify_all();
        }
    }

    /// What is queued, once the batches in flight have been applied (waiting at most
    /// `limit`): a process's next reservation never overtakes its own earlier settlements,
    /// so it never sees its own finished calls as still reserved.
    pub fn take_in_order(&self, limit: StdDuration) -> Vec<Pending> {
        let mut q = self.lock();
        if q.in_flight > 0 {
            let until = Instant::now() + limit;
            while q.in_flight > 0 {
                let left = until.saturating_duration_since(Instant::now());
                let (g, timed_out) = Self::wait(&self.idle, q, Some(left));
                q = g;
                if timed_out {
                    break;
                }
            }
        }
        if q.items.is_empty() {
            return Vec::new();
        }
        q.in_flight += 1;
        std::mem::take(&mut q.items)
    }

    /// Waits (at most `limit`) until nothing is queued or in flight.
    fn wait_idle(&self, limit: StdDuration) {
        let until = Instant::now() + limit;
        let mut q = self.lock();
        while q.in_flight > 0 || !q.items.is_empty() {
            if q.in_flight == 0 {
                // Queued, not taken: the caller sends it.
                return;
            }
            let left = until.saturating_duration_since(Instant::now());
            let (g, timed_out) = Self::wait(&self.idle, q, Some(left));
            q = g;
            if timed_out {
                return;
            }
        }
    }

    fn add_alerts(&self, a: Vec<Alert>) {
        if !a.is_empty() {
            self.alerts.lock().extend(a);
        }
    }

    pub fn take_alerts(&self) -> Vec<Alert> {
        let mut a = self.alerts.lock();
        if a.is_empty() {
            return Vec::new();
        }
        std::mem::take(&mut *a)
    }
}

impl Inner {
    /// Queues a settlement (`actual` `None`: a release); returns the alerts of settlements
    /// applied since the last call.
    pub(super) fn defer(
        &self,
        run: String,
        parts: Vec<(usize, Option<Arc<str>>)>,
        actual: Option<i128>,
        at: DateTime<Utc>,
    ) -> Vec<Alert> {
        self.outbox.push(Pending {
            run,
            parts,
            actual,
            at,
        });
        self.outbox.take_alerts()
    }

    /// Sends the settlements `batch` (taken from the outbox) and then the script call `extra`
    /// (a reservation) whose reply is returned, as one script run (`batch`: a run per
    /// [`BATCH`] operations, in one pipeline). A settlement the script
    /// sends back (a window to seed, a clock correction, the script forgotten by a restarted
    /// Redis) is settled again on its own; Redis unreachable: they wait for the outage replay.
    pub(super) fn send_batch(
        &self,
        batch: Vec<Pending>,
        extra: Option<(&[String], &[String])>,
    ) -> std::result::Result<Reply, Failure> {
        let r = self.send_batch_inner(batch, extra);
        self.outbox.done();
        r
    }

    fn send_batch_inner(
        &self,
        batch: Vec<Pending>,
        extra: Option<(&[String], &[String])>,
    ) -> std::result::Result<Reply, Failure> {
        let mut calls: Vec<(Vec<String>, Vec<String>)> = Vec::with_capacity(batch.len() + 1);
        let mut sent: Vec<(Pending, Vec<WindowSpec>)> = Vec::with_capacity(batch.len());
        let t = self.redis_now();
        for p in batch {
            let amount = p.actual.map(|a| a.to_string()).unwrap_or_default();
            let mut keys = self.base_keys(&p.run);
            let mut args = self.head("settle", &p.run, &amount, p.parts.len());
            args[9] = ms(p.at).to_string();
            let windows = self.add_parts(&p.parts, t, &mut keys, &mut args);
            calls.push((keys, args));
            sent.push((p, windows));
        }
        let mut ops: Vec<(&[String], &[String])> = calls
            .iter()
            .map(|(k, a)| (k.as_slice(), a.as_slice()))
            .collect();
        if let Some(op) = extra {
            ops.push(op);
        }
        // One script run per BATCH operations (a settlement's own reply, or a run's error,
        // per operation).
        let invocations: Vec<redis::ScriptInvocation<'_>> = ops
            .chunks(BATCH)
            .map(|chunk| self.batch_invocation(chunk))
            .collect();
        let runs = match self.exec(|c| c.pipeline::<Vec<Reply>>(&invocations, &self.script)) {
            Ok(r) => r,
            Err(f) => {
                for (p, _) in sent {
                    if p.actual.is_some() {
                        self.for_outage(p);
                    }
                }
                return Err(f);
            }
        };
        let mut results = ops.chunks(BATCH).zip(runs).flat_map(|(chunk, run)| {
            let mut replies = run.map(Vec::into_iter).ok();
            (0..chunk.len()).map(move |_| replies.as_mut().and_then(Iterator::next))
        });
        // Redis answers: settlements queued during an outage go first.
        self.replay();
        for (p, windows) in sent {
            let alerts = match results.next().flatten() {
                Some(reply)
                    if !matches!(reply.first().map(String::as_str), Some("clock" | "seed")) =>
                {
                    self.alerts(&p.parts, &windows, &reply)
                }
                _ => self.settle_run(p.run, p.parts, p.actual, p.at),
            };
            self.outbox.add_alerts(alerts);
        }
        match extra {
            None => Ok(Vec::new()),
            Some((k, a)) => match results.next().flatten() {
                Some(reply) if !reply.is_empty() => Ok(reply),
                _ => self.run(k, a),
            },
        }
    }

    /// Applies what is queued now, here, and waits for what the settler has in flight.
    pub(super) fn drain(&self) {
        self.replay();
        let batch = self.outbox.take();
        if !batch.is_empty() {
            let _ = self.send_batch(batch, None);
        }
        self.outbox
            .wait_idle(self.settings.timeout * 3 + StdDuration::from_millis(100));
    }
}

/// The settler thread: sends what is queued as soon as it is queued (calls ending faster
/// than a round trip are batched), until told to stop with nothing left.
fn settler(inner: &Inner) {
    loop {
        {
            let mut q = inner.outbox.lock();
            while q.items.is_empty() && !q.stop {
                q.sleeping = true;
                q = Outbox::wait(&inner.outbox.wake, q, None).0;
            }
            q.sleeping = false;
        }
        // From here to the batch applied: a fork waits (the child must not copy the queue,
        // the connection pool or the budgets' locks held by this thread, which it has not).
        let _work = crate::fork::hook_work();
        let batch = {
            let mut q = inner.outbox.lock();
            if !q.stop {
                // A moment for the process's next call to take the settlement along in its
                // own round trip (and for more calls' settlements to join the batch); a
                // process making calls back to back wakes this thread once per LINGER.
                q = Outbox::wait(&inner.outbox.wake, q, Some(LINGER)).0;
            }
            if q.items.is_empty() {
                if q.stop {
                    return;
                }
                continue;
            }
            q.in_flight += 1;
            std::mem::take(&mut q.items)
        };
        let _ = inner.send_batch(batch, None);
    }
}

/// Budgets whose windows live in Redis.
pub struct RedisBudgets {
    inner: Arc<Inner>,
    /// The settler thread and the fork generation it was started in.
    settler: parking_lot::Mutex<Option<(u64, JoinHandle<()>)>>,
}

impl RedisBudgets {
    /// Budgets from their definitions, shared through the Redis `settings` name. Nothing is
    /// sent until the first call; a bad URL is an error now. `ledger`: where a missing
    /// window's spend is read from.
    pub fn new(
        budgets: Vec<Budget>,
        settings: RedisSettings,
        ledger: Option<SharedLedger>,
    ) -> Result<RedisBudgets> {
        Ok(RedisBudgets {
            inner: Arc::new(Inner::new(budgets, settings, ledger)?),
            settler: parking_lot::Mutex::new(None),
        })
    }

    /// Starts the settler thread unless it runs (in this process: a forked child has none);
    /// `false` when it cannot be started.
    fn settler_runs(&self) -> bool {
        let generation = crate::fork::generation();
        let mut s = self.settler.lock();
        if s.as_ref().is_some_and(|(g, _)| *g == generation) {
            return true;
        }
        let inner = Arc::clone(&self.inner);
        match std::thread::Builder::new()
            .name("llmledger-budget-settler".into())
            .spawn(move || settler(&inner))
        {
            Ok(h) => {
                // A forked child's copy of the parent's handle is dropped, never joined.
                if let Some((_, old)) = s.replace((generation, h)) {
                    drop(old);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// After a settlement was queued: it is sent by the settler, or here when there is none.
    fn queued(&self, alerts: Vec<Alert>) -> Vec<Alert> {
        if self.settler_runs() {
            return alerts;
        }
        self.inner.drain();
        let mut alerts = alerts;
        alerts.extend(self.inner.outbox.take_alerts());
        alerts
    }
}

impl Drop for RedisBudgets {
    fn drop(&mut self) {
        {
            let mut q = self.inner.outbox.lock();
            q.stop = true;
            q.sleeping = false;
        }
        self.inner.outbox.wake.notify_all();
        if let Some((generation, h)) = self.settler.lock().take() {
            if generation == crate::fork::generation() {
                let _ = h.join();
            }
        }
        self.inner.drain();
    }
}

impl BudgetBackend for RedisBudgets {
    fn definitions(&self) -> &[Budget] {
        self.inner.definitions()
    }

    fn reserve(
        &self,
        run_id: u128,
        call: &CallScope,
        amount: Decimal,
        now: DateTime<Utc>,
    ) -> std::result::Result<ReservationId, Refusal> {
        self.inner.reserve(run_id, call, amount, now)
    }

    fn reserve_at_least(
        &self,
        id: ReservationId,
        total: Decimal,
        now: DateTime<Utc>,
    ) -> std::result::Result<(), Refusal> {
        self.inner.reserve_at_least(id, total, now)
    }

    fn settle(&self, id: ReservationId, actual: Option<Decimal>, now: DateTime<Utc>) -> Vec<Alert> {
        let alerts = self.inner.settle(id, actual, now);
        self.queued(alerts)
    }

    fn release(&self, id: ReservationId) -> bool {
        let held = self.inner.release(id);
        let _ = self.queued(Vec::new());
        held
    }

    fn charge(
        &self,
        run_id: u128,
        call: &CallScope,
        amount: Decimal,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        let alerts = self.inner.charge(run_id, call, amount, now);
        self.queued(alerts)
    }

    fn flush(&self) -> Vec<Alert> {
        self.inner.drain();
        self.inner.outbox.take_alerts()
    }

    fn state(&self, now: DateTime<Utc>) -> Vec<BudgetState> {
        self.inner.state(now)
    }

    fn reset(&self, budget: Option<&str>, value: Option<&str>) -> Result<usize> {
        self.inner.reset(budget, value)
    }

    fn open_reservations(&self) -> usize {
        self.inner.open_reservations()
    }

    fn take_messages(&self) -> Vec<String> {
        self.inner.take_messages()
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn info(&self) -> Option<BackendInfo> {
        Some(self.inner.info())
    }
}
