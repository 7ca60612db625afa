//! The live state of a tracker's budgets: spend per window and scope value, reservations of
//! calls in flight, thresholds fired. One lock guards all of it, so a reservation is checked
//! and taken across every budget that applies as one step.

mod value;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::money::Decimal;

use super::{
    assign_names, Action, Alert, AlertKind, Budget, BudgetExceeded, CallScope, Window, NONE_VALUE,
};
use value::{reached, Change, ValueState, Values};

/// Scope values kept per budget before idle ones (nothing spent in the current window,
/// nothing reserved) are swept out.
pub const DEFAULT_MAX_VALUES: usize = 100_000;

/// A reservation taken by [`Budgets::reserve`], to settle or release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReservationId(pub(crate) u64);

impl ReservationId {
    /// The raw number (unique within one `Budgets`).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// One budget's state for one scope value, as `tracker.budgets()` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetState {
    /// The budget's name.
    pub budget: String,
    /// `global` or the scope key.
    pub scope: String,
    /// The scope value (`None`: global, or calls lacking the key).
    pub value: Option<String>,
    /// The window, as text.
    pub window: String,
    /// `block` or `alert`.
    pub action: Action,
    /// The limit.
    pub limit: Decimal,
    /// Spent in the current window.
    pub spent: Decimal,
    /// Reserved by calls in flight.
    pub reserved: Decimal,
    /// `limit - spent - reserved`, never below zero.
    pub remaining: Decimal,
    /// `spent / limit` in percent, rounded to two decimals.
    pub percent: Decimal,
    /// The current window's start (`None` for lifetime budgets).
    pub window_start: Option<DateTime<Utc>>,
    /// When the calendar window resets, or when the oldest spend leaves a rolling window.
    pub resets_at: Option<DateTime<Utc>>,
}

/// A call in flight: what it reserved and where.
struct Reservation {
    amount: Decimal,
    /// (budget index, scope value) pairs the amount is reserved in.
    parts: Vec<(usize, Option<Arc<str>>)>,
}

struct Inner {
    values: Vec<Values>,
    reservations: HashMap<u64, Reservation>,
    next_id: u64,
}

/// Every budget of a tracker and their live state. Thread-safe; every method takes the time
/// (`now`) from the caller's [`super::Clock`], so tests never sleep.
pub struct Budgets {
    defs: Vec<Budget>,
    max_values: usize,
    inner: Mutex<Inner>,
}

impl Budgets {
    /// Budgets from their definitions. Unnamed budgets get their default name (`day`,
    /// `month per user_id`); duplicate names get ` #2`, ` #3`.
    pub fn new(mut budgets: Vec<Budget>) -> Result<Budgets> {
        for b in &mut budgets {
            // The fields are public: check what the constructors check, and keep the
            // thresholds sorted (firing counts on it).
            b.alert_at = Budget::new(b.limit, b.window)?
                .alert_at(b.alert_at.iter().copied())?
                .alert_at;
        }
        assign_names(&mut budgets);
        let values = budgets.iter().map(|_| Values::default()).collect();
        Ok(Budgets {
            defs: budgets,
            max_values: DEFAULT_MAX_VALUES,
            inner: Mutex::new(Inner {
                values,
                reservations: HashMap::new(),
                next_id: 1,
            }),
        })
    }

    /// Sets how many scope values each budget keeps before idle ones are swept out.
    #[must_use]
    pub fn with_max_values(mut self, max: usize) -> Budgets {
        self.max_values = max.max(1);
        self
    }

    /// The definitions, named.
    pub fn definitions(&self) -> &[Budget] {
        &self.defs
    }

    /// Whether there are no budgets.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Whether any budget cuts streams (the tracker then keeps a running estimate of each
    /// stream and calls [`Budgets::add_to_reservation`]).
    pub fn cuts_streams(&self) -> bool {
        self.defs.iter().any(|b| b.cut_streams && b.blocks())
    }

    /// The metadata keys budgets are scoped by: the tracker must capture them.
    pub fn metadata_keys(&self) -> Vec<Arc<str>> {
        let mut keys: Vec<Arc<str>> = Vec::new();
        for b in &self.defs {
            if let super::Scope::Per(super::ScopeKey::Metadata(k)) = &b.scope {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    /// Checks each budget's metadata key against the keys the tracker captures (`attribute`):
    /// a key not among them that is near one of them, or near a scope name (`user` for
    /// `user_id`, `models` for `model`), is taken for a typo, since no call would carry it and
    /// every call would share one `(none)` budget. Any other key is captured as asked.
    pub fn check_keys(&self, attribute: &[Arc<str>]) -> crate::Result<()> {
        for b in &self.defs {
            let super::Scope::Per(super::ScopeKey::Metadata(k)) = &b.scope else {
                continue;
            };
            if attribute.contains(k) {
                continue;
            }
            let known = attribute
                .iter()
                .map(AsRef::as_ref)
                .chain(super::scope::SCOPE_NAMES.iter().copied());
            let near = crate::suggest::did_you_mean(k, known);
            if near.is_empty() {
                continue;
            }
            let captured: Vec<String> = attribute.iter().map(|a| format!("'{a}'")).collect();
            let captured = captured.join(", ");
            return Err(crate::Error::InvalidArgument(format!(
                "budget '{}': per='{k}' is not a key this tracker captures (attribute=[{captured}]){near}: \
                 no call would carry it, and every call would share one '(none)' budget. To split \
                 by a metadata key named '{k}', capture it: CostTracker(attribute=[..., '{k}'])",
                b.name
            )));
        }
        Ok(())
    }

    /// Calls in flight holding a reservation.
    pub fn open_reservations(&self) -> usize {
        self.inner.lock().reservations.len()
    }

    /// The (budget index, scope value) pairs a call belongs to.
    fn parts(&self, call: &CallScope) -> Vec<(usize, Option<Arc<str>>)> {
        super::backend::parts(&self.defs, call)
    }

    /// Reserves a call's estimated cost in every budget that applies, or in none: if a
    /// blocking budget's `spent + reserved + amount` would exceed its limit, the call is
    /// refused with the first such budget. Alert-only budgets never refuse but count the
    /// reservation. A negative amount counts as zero (an exhausted budget still refuses a
    /// call estimated at zero).
    pub fn reserve(
        &self,
        call: &CallScope,
        amount: Decimal,
        now: DateTime<Utc>,
    ) -> std::result::Result<ReservationId, Box<BudgetExceeded>> {
        let amount = amount.max(Decimal::ZERO);
        let parts = self.parts(call);
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        for (i, v) in &parts {
            let def = &self.defs[*i];
            let st = inner.values[*i].get_or_insert(v.as_ref(), def, self.max_values, now);
            st.roll(def, now);
            if def.blocks()
                && st.spent.saturating_add(st.reserved).saturating_add(amount) > def.limit
            {
                return Err(Box::new(exceeded(def, v.as_ref(), st, amount, now)));
            }
        }
        for (i, v) in &parts {
            let def = &self.defs[*i];
            let st = inner.values[*i].get_or_insert(v.as_ref(), def, self.max_values, now);
            st.reserved = st.reserved.saturating_add(amount);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.reservations.insert(id, Reservation { amount, parts });
        Ok(ReservationId(id))
    }

    /// Grows a call's reservation by `delta` (a stream's running estimate passed what was
    /// reserved). The delta is always added, since those tokens exist; if a blocking
    /// `cut_streams` budget is now over its limit the error says which, and the caller cuts
    /// the stream, then settles the reservation with what was generated. Unknown ids are
    /// ignored.
    pub fn add_to_reservation(
        &self,
        id: ReservationId,
        delta: Decimal,
        now: DateTime<Utc>,
    ) -> std::result::Result<(), Box<BudgetExceeded>> {
        let delta = delta.max(Decimal::ZERO);
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let Some(r) = inner.reservations.get_mut(&id.0) else {
            return Ok(());
        };
        // Checked first, then changed at once (as `settle`).
        let mut over = None;
        for (k, (i, v)) in r.parts.iter().enumerate() {
            faults::hit(k);
            let def = &self.defs[*i];
            let st = inner.values[*i].get_or_insert(v.as_ref(), def, self.max_values, now);
            st.roll(def, now);
            if over.is_none()
                && def.blocks()
                && def.cut_streams
                && st.spent.saturating_add(st.reserved).saturating_add(delta) > def.limit
            {
                over = Some(k);
            }
        }
        let err = over.map(|k| {
            let (i, v) = &r.parts[k];
            let def = &self.defs[*i];
            let st = inner.values[*i].get_or_insert(v.as_ref(), def, self.max_values, now);
            Box::new(exceeded(def, v.as_ref(), st, delta, now))
        });
        for (i, v) in &r.parts {
            let def = &self.defs[*i];
            let st = inner.values[*i].get_or_insert(v.as_ref(), def, self.max_values, now);
            st.reserved = st.reserved.saturating_add(delta);
        }
        r.amount = r.amount.saturating_add(delta);
        err.map_or(Ok(()), Err)
    }

    /// Grows a call's reservation to at least `total` (no-op when it already is): the form
    /// a stream's running estimate is easiest to report in.
    pub fn reserve_at_least(
        &self,
        id: ReservationId,
        total: Decimal,
        now: DateTime<Utc>,
    ) -> std::result::Result<(), Box<BudgetExceeded>> {
        let held = self.inner.lock().reservations.get(&id.0).map(|r| r.amount);
        match held {
            Some(h) if total > h => self.add_to_reservation(id, total - h, now),
            _ => Ok(()),
        }
    }

    /// What a call holds reserved (`None`: no such reservation).
    pub fn reserved_for(&self, id: ReservationId) -> Option<Decimal> {
        self.inner.lock().reservations.get(&id.0).map(|r| r.amount)
    }

    /// Ends a call: its reservation is replaced by `actual`, charged at `now` to the same
    /// scope values it reserved in. `None` (cost unknown: no price for the model) releases
    /// the reservation and charges nothing; the tracker has already warned that the call
    /// is unpriced. Returns the alerts that fire. An unknown id does nothing (use
    /// [`Budgets::charge`] for a call that reserved nothing).
    pub fn settle(
        &self,
        id: ReservationId,
        actual: Option<Decimal>,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let Some(r) = inner.reservations.get(&id.0) else {
            return Vec::new();
        };
        // Everything is computed first (a panic there leaves the state as it was, the
        // reservation held), then committed at once.
        let mut changes = Vec::with_capacity(r.parts.len());
        for (k, (i, v)) in r.parts.iter().enumerate() {
            faults::hit(k);
            let def = &self.defs[*i];
            let st = inner.values[*i].get_or_insert(v.as_ref(), def, self.max_values, now);
            // Bringing a window up to now changes nothing of its meaning (every reader does).
            st.roll(def, now);
            let reserved = (st.reserved - r.amount).max(Decimal::ZERO);
            changes.push(match actual {
                Some(cost) => {
                    plan_spend(def, v.as_ref(), st, reserved, cost.max(Decimal::ZERO), now)
                }
                None => Change {
                    reserved,
                    spend: None,
                    alert: None,
                },
            });
        }
        let Some(r) = inner.reservations.remove(&id.0) else {
            return Vec::new();
        };
        self.commit(inner, &r.parts, changes, now)
    }

    /// Applies changes computed for `parts`, returning the alerts they fire.
    fn commit(
        &self,
        inner: &mut Inner,
        parts: &[(usize, Option<Arc<str>>)],
        changes: Vec<Change>,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for ((i, v), change) in parts.iter().zip(changes) {
            let def = &self.defs[*i];
            let st = inner.values[*i].get_or_insert(v.as_ref(), def, self.max_values, now);
            alerts.extend(change.apply(st));
        }
        alerts
    }

    /// Frees a call's reservation without charging (the call failed before it cost
    /// anything). Returns whether the reservation existed.
    pub fn release(&self, id: ReservationId) -> bool {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let Some(r) = inner.reservations.remove(&id.0) else {
            return false;
        };
        for (i, v) in &r.parts {
            if let Some(st) = inner.values[*i].get(v.as_ref()) {
                st.reserved = (st.reserved - r.amount).max(Decimal::ZERO);
            }
        }
        true
    }

    /// Charges a call that holds no reservation (its start was never seen) to every budget
    /// that applies. Never refuses: the money is already spent. Returns the alerts.
    pub fn charge(&self, call: &CallScope, amount: Decimal, now: DateTime<Utc>) -> Vec<Alert> {
        let parts = self.parts(call);
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        // As `settle`: computed first, committed at once.
        let mut changes = Vec::with_capacity(parts.len());
        for (k, (i, v)) in parts.iter().enumerate() {
            faults::hit(k);
            let def = &self.defs[*i];
            let st = inner.values[*i].get_or_insert(v.as_ref(), def, self.max_values, now);
            st.roll(def, now);
            let reserved = st.reserved;
            changes.push(plan_spend(
                def,
                v.as_ref(),
                st,
                reserved,
                amount.max(Decimal::ZERO),
                now,
            ));
        }
        self.commit(inner, &parts, changes, now)
    }

    /// Rebuilds window state at start from a durable ledger: a call that cost `amount` at
    /// `time` is counted in every calendar or rolling budget whose current window (at
    /// `now`) contains `time`. Feed records oldest first, from [`Budgets::preload_since`].
    /// Thresholds already reached are marked fired, so a restart does not alert again.
    /// Lifetime budgets are the tracker's own lifetime and are not preloaded.
    pub fn preload(
        &self,
        call: &CallScope,
        time: DateTime<Utc>,
        amount: Decimal,
        now: DateTime<Utc>,
    ) {
        let parts = self.parts(call);
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        for (i, v) in &parts {
            let def = &self.defs[*i];
            let in_window = match def.window {
                Window::Calendar { .. } => def.window.window_start(now).is_some_and(|s| time >= s),
                Window::Rolling(d) => time > now - d,
                Window::Lifetime => false,
            };
            if !in_window || time > now {
                continue;
            }
            let st = inner.values[*i].get_or_insert(v.as_ref(), def, self.max_values, now);
            st.roll(def, now);
            st.add(def, amount.max(Decimal::ZERO), time);
            st.fired = st.fired.max(reached(def, st.spent));
        }
    }

    /// The oldest time a record must have to count in some budget's current window at `now`
    /// (what the store reads back for [`Budgets::preload`]); `None` when no budget has a
    /// calendar or rolling window.
    pub fn preload_since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.defs
            .iter()
            .filter(|b| b.window != Window::Lifetime)
            .filter_map(|b| b.window.window_start(now))
            .min()
    }

    /// Clears what was spent (and the thresholds fired) in the current window, for an
    /// operator: `budget` by name (`None`: every budget), `value` one scope value (`None`:
    /// all of them; `"(none)"` the bucket of calls lacking the key). Reservations of calls
    /// in flight stay. Returns how many scope values were reset.
    pub fn reset(&self, budget: Option<&str>, value: Option<&str>) -> Result<usize> {
        let targets: Vec<usize> = match budget {
            None => (0..self.defs.len()).collect(),
            Some(name) => vec![self
                .defs
                .iter()
                .position(|b| b.name == name)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "no budget named '{name}': the budgets are {}",
                        self.defs
                            .iter()
                            .map(|b| format!("'{}'", b.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?],
        };
        let clear = |st: &mut ValueState| {
            st.spent = Decimal::ZERO;
            st.slots.clear();
            st.fired = 0;
            st.blocked_at = None;
        };
        let mut inner = self.inner.lock();
        let mut n = 0;
        for i in targets {
            let vals = &mut inner.values[i];
            match value {
                None => {
                    clear(&mut vals.none);
                    vals.map.values_mut().for_each(clear);
                    n += 1 + vals.map.len();
                }
                Some(v) if v == NONE_VALUE => {
                    clear(&mut vals.none);
                    n += 1;
                }
                Some(v) => {
                    if let Some(st) = vals.map.get_mut(v) {
                        clear(st);
                        n += 1;
                    }
                }
            }
        }
        Ok(n)
    }

    /// Every budget's state at `now`, per scope value: global budgets always have their one
    /// row; per-key budgets one row per value seen (the `None` bucket when calls lacked the
    /// key), ordered by value.
    pub fn state(&self, now: DateTime<Utc>) -> Vec<BudgetState> {
        let mut inner = self.inner.lock();
        let mut rows = Vec::new();
        for (i, def) in self.defs.iter().enumerate() {
            let vals = &mut inner.values[i];
            let global = def.scope == super::Scope::Global;
            // A per-key budget shows the bucket of calls lacking the key once it was used.
            vals.none.roll(def, now);
            if global || vals.none.used {
                rows.push(row(def, None, &vals.none, now));
            }
            let mut entries: Vec<(&Arc<str>, &mut ValueState)> = vals.map.iter_mut().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (k, st) in entries {
                st.roll(def, now);
                rows.push(row(def, Some(k), st, now));
            }
        }
        rows
    }
}

/// What spending `amount` at `now` makes of `st` (already rolled to `now`), its reservation
/// becoming `reserved`: the new spend, and the alert for the highest threshold newly reached
/// (reaching two at once, 40 % -> 90 %, sends one alert, for 80 %; both count as fired).
fn plan_spend(
    def: &Budget,
    value: Option<&Arc<str>>,
    st: &ValueState,
    reserved: Decimal,
    amount: Decimal,
    now: DateTime<Utc>,
) -> Change {
    let (spent, slot) = st.plan_add(def, amount, now);
    let n = reached(def, spent);
    let alert = (n > st.fired).then(|| {
        let mut a = alert(
            AlertKind::Threshold,
            def.alert_at[n - 1],
            def,
            value,
            st,
            now,
        );
        a.spent = spent;
        a.reserved = reserved;
        a
    });
    Change {
        reserved,
        spend: Some((spent, slot, n.max(st.fired))),
        alert,
    }
}

/// An alert of `kind` at `threshold` for `def` and scope value `value`, as things stand.
fn alert(
    kind: AlertKind,
    threshold: Decimal,
    def: &Budget,
    value: Option<&Arc<str>>,
    st: &ValueState,
    now: DateTime<Utc>,
) -> Alert {
    Alert {
        kind,
        budget: def.name.clone(),
        scope: def.scope.name().to_string(),
        value: value.map(ToString::to_string),
        threshold,
        spent: st.spent,
        reserved: st.reserved,
        limit: def.limit,
        window: def.window.to_string(),
        action: def.action.name(),
        // Only a calendar window resets at a known time.
        resets_at: match def.window {
            Window::Calendar { .. } => st.end,
            _ => None,
        },
        time: now,
    }
}

/// The refusal by `def` for scope value `value`, with its alert when one is due.
fn exceeded(
    def: &Budget,
    value: Option<&Arc<str>>,
    st: &mut ValueState,
    requested: Decimal,
    now: DateTime<Utc>,
) -> BudgetExceeded {
    let resets_at = st.resets_at(def);
    let alert = st.block_alert_due(def, now).then(|| {
        st.blocked_at = Some(now);
        alert(AlertKind::Blocked, Decimal::ONE, def, value, st, now)
    });
    BudgetExceeded {
        budget: def.name.clone(),
        scope: def.scope.name().to_string(),
        value: value.map(ToString::to_string),
        limit: def.limit,
        spent: st.spent,
        reserved: st.reserved,
        requested,
        window: def.window.to_string(),
        resets_at,
        rolling: matches!(def.window, Window::Rolling(_)),
        alert,
        backend_error: None,
    }
}

fn row(def: &Budget, value: Option<&Arc<str>>, st: &ValueState, now: DateTime<Utc>) -> BudgetState {
    state_row(
        def,
        value.map(AsRef::as_ref),
        st.spent,
        st.reserved,
        match def.window {
            Window::Calendar { .. } => st.start.or_else(|| def.window.window_start(now)),
            Window::Rolling(_) => def.window.window_start(now),
            Window::Lifetime => None,
        },
        match def.window {
            Window::Calendar { .. } => st.end.or_else(|| def.window.resets_at(now)),
            _ => st.resets_at(def),
        },
    )
}

/// One budget's row for scope value `value`, as every backend reports it.
pub(crate) fn state_row(
    def: &Budget,
    value: Option<&str>,
    spent: Decimal,
    reserved: Decimal,
    window_start: Option<DateTime<Utc>>,
    resets_at: Option<DateTime<Utc>>,
) -> BudgetState {
    let percent = (spent.saturating_mul(Decimal::ONE_HUNDRED))
        .checked_div(def.limit)
        .unwrap_or(Decimal::MAX)
        .round_dp(2)
        .normalize();
    BudgetState {
        budget: def.name.clone(),
        scope: def.scope.name().to_string(),
        value: value.map(ToString::to_string),
        window: def.window.to_string(),
        action: def.action,
        limit: def.limit,
        spent,
        reserved,
        remaining: (def.limit - spent.saturating_add(reserved)).max(Decimal::ZERO),
        percent,
        window_start,
        resets_at,
    }
}

/// Failures injected by tests halfway through a change of state (nothing outside tests).
pub(super) mod faults {
    #[cfg(test)]
    use std::cell::Cell;

    #[cfg(test)]
    thread_local! {
        static FAIL_AT: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Makes this thread's next change of state panic at its `part`th budget part.
    #[cfg(test)]
    pub(crate) fn fail_at(part: Option<usize>) {
        FAIL_AT.with(|f| f.set(part));
    }

    /// Panics if a test injected a failure at `part`.
    #[inline]
    pub(super) fn hit(part: usize) {
        #[cfg(test)]
        if FAIL_AT.with(Cell::get) == Some(part) {
            FAIL_AT.with(|f| f.set(None));
            panic!("injected failure at part {part}");
        }
        #[cfg(not(test))]
        let _ = part;
    }
}

#[cfg(test)]
impl Budgets {
    /// Rolling slots held by budget `i`'s `None` bucket.
    pub(super) fn none_slots(&self, i: usize) -> usize {
        self.inner.lock().values[i].none.slots.len()
    }

    /// The scope values budget `i` keeps.
    pub(super) fn kept_values(&self, i: usize) -> Vec<Arc<str>> {
        self.inner.lock().values[i].map.keys().cloned().collect()
    }
}
