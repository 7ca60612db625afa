//! One scope value's live state in the in-process budgets: spend (with a rolling window's
//! slots), reservations, thresholds fired; and one budget's map of scope values.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::money::Decimal;

use super::super::{Alert, Budget, Window};

/// A rolling window keeps at most about this many spend entries per scope value: spend is
/// grouped into slots of 1/256 of the window (at least a second).
const ROLLING_SLOTS: i32 = 256;

/// Spend within one rolling-window slot.
pub(super) struct Slot {
    pub(super) first: DateTime<Utc>,
    pub(super) last: DateTime<Utc>,
    pub(super) amount: Decimal,
}

/// How adding spend changes a rolling window's slots.
pub(super) enum SlotEdit {
    /// Not a rolling window.
    None,
    /// The newest slot takes it: its new end and amount.
    Back {
        last: DateTime<Utc>,
        amount: Decimal,
    },
    /// A slot of its own at this position (spend older than the newest slot).
    Insert(usize, Slot),
    /// A new newest slot.
    Push(Slot),
}

/// What settling or charging a call does to one scope value, computed before anything is
/// changed so that the changes to every budget are made at once, or not at all.
pub(super) struct Change {
    pub(super) reserved: Decimal,
    /// The new spend, its slot edit and the thresholds fired (`None`: nothing spent).
    pub(super) spend: Option<(Decimal, SlotEdit, usize)>,
    pub(super) alert: Option<Alert>,
}

impl Change {
    /// Makes the change: plain assignments, nothing that can fail half way.
    pub(super) fn apply(self, st: &mut ValueState) -> Option<Alert> {
        st.reserved = self.reserved;
        if let Some((spent, slot, fired)) = self.spend {
            st.spent = spent;
            st.apply_slot(slot);
            st.fired = fired;
        }
        self.alert
    }
}

#[derive(Default)]
pub(super) struct ValueState {
    pub(super) spent: Decimal,
    pub(super) reserved: Decimal,
    /// Calendar windows: the current window; `None` until first used.
    pub(super) start: Option<DateTime<Utc>>,
    pub(super) end: Option<DateTime<Utc>>,
    /// Rolling windows: spend by slot, oldest first.
    pub(super) slots: VecDeque<Slot>,
    /// Thresholds fired in this window (they are ascending, so a count).
    pub(super) fired: usize,
    /// Whether a call ever touched it (the `None` bucket exists from the start).
    pub(super) used: bool,
    /// When a refusal last produced a `Blocked` alert.
    pub(super) blocked_at: Option<DateTime<Utc>>,
}

impl ValueState {
    /// Brings the window up to `now`: a calendar window that has ended starts afresh, a
    /// rolling window lets its old spend go. A clock that went backwards changes nothing
    /// (an earlier window never comes back with a clean slate).
    pub(super) fn roll(&mut self, def: &Budget, now: DateTime<Utc>) {
        match def.window {
            Window::Calendar { .. } => {
                let ended = self.end.is_some_and(|e| now >= e);
                if self.start.is_none() || ended {
                    self.start = def.window.window_start(now);
                    self.end = def.window.resets_at(now);
                    if ended {
                        self.spent = Decimal::ZERO;
                        self.fired = 0;
                        self.blocked_at = None;
                    }
                }
            }
            Window::Rolling(d) => {
                let cutoff = now - d;
                let mut dropped = false;
                while self.slots.front().is_some_and(|s| s.last <= cutoff) {
                    let s = self.slots.pop_front().expect("front exists");
                    self.spent -= s.amount;
                    dropped = true;
                }
                if self.slots.is_empty() {
                    self.spent = Decimal::ZERO;
                }
                if dropped {
                    // Spend fell: thresholds it is now below fire again when reached again.
                    self.fired = self.fired.min(reached(def, self.spent));
                }
            }
            Window::Lifetime => {}
        }
    }

    /// Adds spend at `time` (rolling windows keep it in its slot until it expires).
    pub(super) fn add(&mut self, def: &Budget, amount: Decimal, time: DateTime<Utc>) {
        let (spent, slot) = self.plan_add(def, amount, time);
        self.spent = spent;
        self.apply_slot(slot);
    }

    /// What adding spend at `time` makes of it: the new `spent` and the slot edit, computed
    /// without changing anything.
    pub(super) fn plan_add(
        &self,
        def: &Budget,
        amount: Decimal,
        time: DateTime<Utc>,
    ) -> (Decimal, SlotEdit) {
        let spent = self.spent.saturating_add(amount);
        let Window::Rolling(d) = def.window else {
            return (spent, SlotEdit::None);
        };
        let slot_len = (d / ROLLING_SLOTS).max(Duration::seconds(1));
        let new = Slot {
            first: time,
            last: time,
            amount,
        };
        let edit = match self.slots.back() {
            Some(s) if time >= s.first && time - s.first < slot_len => SlotEdit::Back {
                last: s.last.max(time),
                amount: s.amount.saturating_add(amount),
            },
            // Older than the newest slot (preloaded out of order): its own slot, in order.
            Some(s) if time < s.first => {
                SlotEdit::Insert(self.slots.partition_point(|s| s.first <= time), new)
            }
            _ => SlotEdit::Push(new),
        };
        (spent, edit)
    }

    /// Applies a slot edit from [`ValueState::plan_add`].
    pub(super) fn apply_slot(&mut self, edit: SlotEdit) {
        match edit {
            SlotEdit::None => {}
            SlotEdit::Back { last, amount } => {
                if let Some(s) = self.slots.back_mut() {
                    s.last = last;
                    s.amount = amount;
                }
            }
            SlotEdit::Insert(at, slot) => self.slots.insert(at, slot),
            SlotEdit::Push(slot) => self.slots.push_back(slot),
        }
    }

    /// When this value's window resets (calendar) or its oldest spend expires (rolling).
    pub(super) fn resets_at(&self, def: &Budget) -> Option<DateTime<Utc>> {
        match def.window {
            Window::Calendar { .. } => self.end,
            Window::Rolling(d) => self.slots.front().map(|s| s.last + d),
            Window::Lifetime => None,
        }
    }

    /// Whether a refusal now should alert: once per calendar window (`roll` clears the
    /// mark), at most once per rolling window length, once per lifetime.
    pub(super) fn block_alert_due(&self, def: &Budget, now: DateTime<Utc>) -> bool {
        match (def.window, self.blocked_at) {
            (_, None) => true,
            (Window::Rolling(d), Some(b)) => now - b >= d,
            _ => false,
        }
    }

    /// Whether it holds nothing worth keeping (after `roll`).
    pub(super) fn is_idle(&self) -> bool {
        self.spent.is_zero() && self.reserved.is_zero() && self.slots.is_empty()
    }
}

/// How many of `def`'s thresholds `spent` has reached.
pub(super) fn reached(def: &Budget, spent: Decimal) -> usize {
    def.alert_at
        .iter()
        .take_while(|t| spent >= t.saturating_mul(def.limit))
        .count()
}

/// One budget's scope values.
#[derive(Default)]
pub(super) struct Values {
    pub(super) map: HashMap<Arc<str>, ValueState>,
    /// Global budgets, and calls lacking the scope's key.
    pub(super) none: ValueState,
    pub(super) sweep_at: usize,
}

impl Values {
    pub(super) fn get(&mut self, v: Option<&Arc<str>>) -> Option<&mut ValueState> {
        match v {
            None => Some(&mut self.none),
            Some(k) => self.map.get_mut(k),
        }
    }

    pub(super) fn get_or_insert(
        &mut self,
        v: Option<&Arc<str>>,
        def: &Budget,
        max: usize,
        now: DateTime<Utc>,
    ) -> &mut ValueState {
        let Some(k) = v else {
            self.none.used = true;
            return &mut self.none;
        };
        if !self.map.contains_key(k) && self.map.len() >= self.sweep_at.max(max) {
            // Forget values with nothing spent in their current window and nothing
            // reserved: they are what a new value would start as. Live values stay, so the
            // map can outgrow `max` only with that many values spending at once; the next
            // sweep waits until the map doubles, keeping sweeps amortised O(1) per insert.
            self.map.retain(|_, s| {
                s.roll(def, now);
                !s.is_idle()
            });
            self.sweep_at = (self.map.len() * 2).max(max);
        }
        self.map.entry(k.clone()).or_default()
    }
}
