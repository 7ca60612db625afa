//! The budget backend: where a tracker's budget windows live. In the process
//! ([`super::Budgets`], the default) or in Redis ([`super::RedisBudgets`], shared by every
//! process and host naming the same Redis and budgets). The tracker only speaks this trait:
//! reserve at a call's start, grow a stream's reservation, settle or release at its end.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::money::Decimal;

use super::{Alert, Budget, BudgetExceeded, BudgetState, CallScope, ReservationId};

/// A refusal (a blocking budget, or, with `budget_backend_error="closed"`, an unreachable
/// budget store).
pub type Refusal = Box<BudgetExceeded>;

/// What a shared backend reports about itself (`tracker.budget_store_info()`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackendInfo {
    /// `redis`.
    pub backend: &'static str,
    /// The server's address, without any password.
    pub url: String,
    /// The key prefix (every key is `{prefix}:...`).
    pub prefix: String,
    /// `open` or `closed`.
    pub on_error: &'static str,
    /// The lease of a reservation, in seconds.
    pub lease_seconds: f64,
    /// Whether the store answered the last request.
    pub reachable: bool,
    /// Requests that failed (connection refused, timeout, script error).
    pub errors: u64,
    /// Calls admitted without a check while the store was unreachable (`open`).
    pub admitted_unchecked: u64,
    /// Calls refused because the store was unreachable (`closed`).
    pub refused_unreachable: u64,
    /// Settlements waiting for the store to come back.
    pub pending_settlements: usize,
    /// Settlements applied after the store came back.
    pub replayed_settlements: u64,
    /// Settlements given up because too many were waiting.
    pub dropped_settlements: u64,
    /// Windows seeded from the ledger (a missing window: new, flushed or restarted store).
    pub seeded_windows: u64,
}

/// Every budget of a tracker and where their state lives. Thread-safe. `run_id` is the
/// LangChain run a reservation is for: a shared backend keys its reservation by it, so that
/// settling twice, or after a release, changes nothing.
pub trait BudgetBackend: Send + Sync {
    /// The definitions, named.
    fn definitions(&self) -> &[Budget];

    /// Reserves a call's estimated cost in every budget that applies, or in none (see
    /// [`super::Budgets::reserve`]).
    fn reserve(
        &self,
        run_id: u128,
        call: &CallScope,
        amount: Decimal,
        now: DateTime<Utc>,
    ) -> std::result::Result<ReservationId, Refusal>;

    /// Grows a call's reservation to at least `total` (a stream's running estimate); `Err`
    /// when a blocking `cut_streams` budget is now over its limit.
    fn reserve_at_least(
        &self,
        id: ReservationId,
        total: Decimal,
        now: DateTime<Utc>,
    ) -> std::result::Result<(), Refusal>;

    /// Replaces a call's reservation by its cost (`None`: unknown, releases only). Returns
    /// the alerts that fire.
    fn settle(&self, id: ReservationId, actual: Option<Decimal>, now: DateTime<Utc>) -> Vec<Alert>;

    /// Frees a call's reservation without charging. Returns whether it existed.
    fn release(&self, id: ReservationId) -> bool;

    /// Charges a call that holds no reservation (its start was never seen). Never refuses.
    fn charge(
        &self,
        run_id: u128,
        call: &CallScope,
        amount: Decimal,
        now: DateTime<Utc>,
    ) -> Vec<Alert>;

    /// Applies every settlement still on its way to a shared store (waiting a little for
    /// those in flight) and returns the alerts they fired that no hook has handed out yet.
    fn flush(&self) -> Vec<Alert> {
        Vec::new()
    }

    /// Every budget's state at `now`, per scope value.
    fn state(&self, now: DateTime<Utc>) -> Vec<BudgetState>;

    /// Clears the current window's spend of `budget` (`None`: all) for `value` (`None`:
    /// all). Returns how many scope values were reset.
    fn reset(&self, budget: Option<&str>, value: Option<&str>) -> Result<usize>;

    /// Calls in flight holding a reservation (this process's).
    fn open_reservations(&self) -> usize;

    /// Whether the tracker should rebuild the windows from its ledger when it starts (the
    /// in-process state starts empty; a shared backend seeds missing windows itself).
    fn preloads(&self) -> bool {
        false
    }

    /// Counts one ledger record in the current windows (see [`super::Budgets::preload`]).
    fn preload(&self, call: &CallScope, time: DateTime<Utc>, amount: Decimal, now: DateTime<Utc>) {
        let _ = (call, time, amount, now);
    }

    /// Messages for the `llmledger` logger (the store became unreachable, came back, ...),
    /// taken once each.
    fn take_messages(&self) -> Vec<String> {
        Vec::new()
    }

    /// A shared backend's address and counters (`None`: in-process).
    fn info(&self) -> Option<BackendInfo> {
        None
    }

    /// Whether its calls go over the network (the binding then releases the GIL for them).
    fn is_shared(&self) -> bool {
        false
    }

    /// Whether there are no budgets.
    fn is_empty(&self) -> bool {
        self.definitions().is_empty()
    }

    /// Whether any blocking budget cuts streams.
    fn cuts_streams(&self) -> bool {
        self.definitions()
            .iter()
            .any(|b| b.cut_streams && b.blocks())
    }

    /// The oldest time a record must have to count in some budget's current window at `now`.
    fn preload_since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        preload_since(self.definitions(), now)
    }
}

/// The oldest start of a current calendar or rolling window among `defs` at `now`.
pub(crate) fn preload_since(defs: &[Budget], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    defs.iter()
        .filter(|b| b.window != super::Window::Lifetime)
        .filter_map(|b| b.window.window_start(now))
        .min()
}

/// The (budget index, scope value) pairs a call belongs to.
pub(crate) fn parts(defs: &[Budget], call: &CallScope) -> Vec<(usize, Option<Arc<str>>)> {
    let mut parts = Vec::with_capacity(defs.len());
    let mut vals = Vec::new();
    for (i, def) in defs.iter().enumerate() {
        call.values(&def.scope, &mut vals);
        parts.extend(vals.drain(..).map(|v| (i, v)));
    }
    parts
}

/// What a shared backend reads a missing window's spend from: every priced record of the
/// ledger since a time, through the ledger's one read path (`src/store/read.rs`). The tracker
/// makes it from its store; `flush` first commits what this process has queued.
pub trait LedgerSpend: Send + Sync {
    /// Commits the records this process has queued, so a read sees them.
    fn flush(&self);

    /// Hands `f` the scope, time and cost of every priced record with `time >= since`.
    fn for_each_since(
        &self,
        since: DateTime<Utc>,
        f: &mut dyn FnMut(&CallScope, DateTime<Utc>, Decimal),
    ) -> Result<Vec<String>>;
}

/// A shared handle on a [`LedgerSpend`].
pub type SharedLedger = Arc<dyn LedgerSpend>;

impl BudgetBackend for super::Budgets {
    fn definitions(&self) -> &[Budget] {
        super::Budgets::definitions(self)
    }

    fn reserve(
        &self,
        _run_id: u128,
        call: &CallScope,
        amount: Decimal,
        now: DateTime<Utc>,
    ) -> std::result::Result<ReservationId, Refusal> {
        super::Budgets::reserve(self, call, amount, now)
    }

    fn reserve_at_least(
        &self,
        id: ReservationId,
        total: Decimal,
        now: DateTime<Utc>,
    ) -> std::result::Result<(), Refusal> {
        super::Budgets::reserve_at_least(self, id, total, now)
    }

    fn settle(&self, id: ReservationId, actual: Option<Decimal>, now: DateTime<Utc>) -> Vec<Alert> {
        super::Budgets::settle(self, id, actual, now)
    }

    fn release(&self, id: ReservationId) -> bool {
        super::Budgets::release(self, id)
    }

    fn charge(
        &self,
        _run_id: u128,
        call: &CallScope,
        amount: Decimal,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        super::Budgets::charge(self, call, amount, now)
    }

    fn state(&self, now: DateTime<Utc>) -> Vec<BudgetState> {
        super::Budgets::state(self, now)
    }

    fn reset(&self, budget: Option<&str>, value: Option<&str>) -> Result<usize> {
        super::Budgets::reset(self, budget, value)
    }

    fn open_reservations(&self) -> usize {
        super::Budgets::open_reservations(self)
    }

    fn preloads(&self) -> bool {
        true
    }

    fn preload(&self, call: &CallScope, time: DateTime<Utc>, amount: Decimal, now: DateTime<Utc>) {
        super::Budgets::preload(self, call, time, amount, now);
    }
}
