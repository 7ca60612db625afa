//! Budgets that stop a call before it spends.
//!
//! A [`Budget`] caps the spend of a scope (everything, or each value of a key such as
//! `user_id`) over a [`Window`] (calendar-aligned in a time zone, rolling, or the tracker's
//! lifetime). [`Budgets`] holds the live state of every budget a tracker has, behind one lock,
//! so that a call's reservation is checked and taken atomically across all of them:
//!
//! 1. at the start hook the tracker estimates the call's cost and [`Budgets::reserve`]s it;
//!    a blocking budget that the reservation would overrun refuses it with
//!    [`BudgetExceeded`] and no request reaches the provider;
//! 2. a stream's running estimate may grow the reservation ([`Budgets::add_to_reservation`]),
//!    which can cut the stream for `cut_streams` budgets;
//! 3. at the end hook [`Budgets::settle`] replaces the reservation by the real cost, and at
//!    an error [`Budgets::release`] frees it.
//!
//! Concurrent calls can therefore never overrun a budget by more than what already-admitted
//! reservations underestimated. Thresholds (`alert_at`) produce [`Alert`]s, once per window
//! and scope value; the [`crate::alert`] module posts them to a webhook. See
//! `docs/budgets.md`.

mod alert;
mod backend;
mod clock;
mod redis;
mod scope;
mod state;
mod window;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::money::{format_usd, Decimal};

pub use alert::{Alert, AlertKind};
pub use backend::{BackendInfo, BudgetBackend, LedgerSpend, Refusal, SharedLedger};
pub use clock::{Clock, ManualClock, SystemClock};
pub use redis::{OnBackendError, RedisBudgets, RedisSettings};
pub use scope::{CallScope, Scope, ScopeKey, NONE_VALUE};
pub use state::{BudgetState, Budgets, ReservationId, DEFAULT_MAX_VALUES};
pub use window::{CalendarUnit, Window, Zone};

/// What a budget does when a call would exceed it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Action {
    /// Refuse the call before it is sent (`BudgetExceededError`); alerts fire as well.
    #[default]
    Block,
    /// Never refuse a call: only fire the alerts.
    Alert,
}

impl Action {
    /// `block` or `alert`.
    pub fn parse(s: &str) -> Result<Action> {
        match s.trim() {
            "block" => Ok(Action::Block),
            "alert" => Ok(Action::Alert),
            other => Err(Error::InvalidArgument(format!(
                "unknown budget action '{other}': use 'block' (refuse calls that would exceed \
                 the limit) or 'alert' (only alert)"
            ))),
        }
    }

    /// `block` or `alert`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Alert => "alert",
        }
    }
}

/// The thresholds alerted by default: half, 80 % and all of the limit.
pub fn default_alert_at() -> Vec<Decimal> {
    vec![Decimal::new(5, 1), Decimal::new(8, 1), Decimal::ONE]
}

/// The largest alert threshold accepted (1000 % of the limit), for alert-only budgets that
/// want to hear about overruns.
const MAX_THRESHOLD: i64 = 10;

/// One budget's definition (its state lives in [`Budgets`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Its name, unique within a tracker (default: the window, plus `per <key>`).
    pub name: String,
    /// The most that may be spent in one window, per scope value (USD, exact).
    pub limit: Decimal,
    /// The window.
    pub window: Window,
    /// Global, or one budget per value of a key.
    pub scope: Scope,
    /// Fractions of the limit that fire an alert, ascending, each in `(0, 10]`.
    pub alert_at: Vec<Decimal>,
    /// Block calls, or only alert.
    pub action: Action,
    /// Cut a stream whose generated tokens push this (blocking) budget past its limit.
    pub cut_streams: bool,
}

impl Budget {
    /// A global, blocking budget of `limit` USD per `window`, alerting at 50 %, 80 %, 100 %.
    pub fn new(limit: Decimal, window: Window) -> Result<Budget> {
        if limit <= Decimal::ZERO {
            return Err(Error::InvalidArgument(format!(
                "budget limit must be positive, got {limit}"
            )));
        }
        Ok(Budget {
            name: String::new(),
            limit,
            window,
            scope: Scope::Global,
            alert_at: default_alert_at(),
            action: Action::Block,
            cut_streams: false,
        })
    }

    /// `limit` USD per UTC hour.
    pub fn hourly(limit: Decimal) -> Result<Budget> {
        Budget::new(limit, Window::calendar(CalendarUnit::Hour))
    }

    /// `limit` USD per UTC day.
    pub fn daily(limit: Decimal) -> Result<Budget> {
        Budget::new(limit, Window::calendar(CalendarUnit::Day))
    }

    /// `limit` USD per week (Monday 00:00 UTC to Monday).
    pub fn weekly(limit: Decimal) -> Result<Budget> {
        Budget::new(limit, Window::calendar(CalendarUnit::Week))
    }

    /// `limit` USD per calendar month (UTC).
    pub fn monthly(limit: Decimal) -> Result<Budget> {
        Budget::new(limit, Window::calendar(CalendarUnit::Month))
    }

    /// `limit` USD over the tracker's lifetime.
    pub fn lifetime(limit: Decimal) -> Result<Budget> {
        Budget::new(limit, Window::Lifetime)
    }

    /// Names it.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Budget {
        self.name = name.into();
        self
    }

    /// One budget per value of `key` (`per="user_id"`).
    #[must_use]
    pub fn per(mut self, key: ScopeKey) -> Budget {
        self.scope = Scope::Per(key);
        self
    }

    /// Blocks or only alerts.
    #[must_use]
    pub fn action(mut self, action: Action) -> Budget {
        self.action = action;
        self
    }

    /// Cuts streams that overrun it.
    #[must_use]
    pub fn cut_streams(mut self, yes: bool) -> Budget {
        self.cut_streams = yes;
        self
    }

    /// Sets the alert thresholds (fractions of the limit; empty: no alerts). They are sorted
    /// and duplicates removed; each must be in `(0, 10]`.
    pub fn alert_at(mut self, thresholds: impl IntoIterator<Item = Decimal>) -> Result<Budget> {
        let mut t: Vec<Decimal> = thresholds.into_iter().map(|d| d.normalize()).collect();
        if let Some(bad) = t
            .iter()
            .find(|x| **x <= Decimal::ZERO || **x > Decimal::from(MAX_THRESHOLD))
        {
            return Err(Error::InvalidArgument(format!(
                "alert threshold {bad} is out of range: thresholds are fractions of the limit \
                 in (0, {MAX_THRESHOLD}], such as 0.5, 0.8, 1.0"
            )));
        }
        t.sort();
        t.dedup();
        self.alert_at = t;
        Ok(self)
    }

    /// The name to use when none is given: `day`, `rolling 15m per model`, ...
    pub fn default_name(&self) -> String {
        match &self.scope {
            Scope::Global => self.window.to_string(),
            Scope::Per(k) => format!("{} per {}", self.window, k.name()),
        }
    }

    /// Whether calls are refused when it would be exceeded.
    pub fn blocks(&self) -> bool {
        self.action == Action::Block
    }
}

/// Gives every unnamed budget its default name and makes names unique (`day`, `day #2`).
fn assign_names(budgets: &mut [Budget]) {
    let mut seen = HashSet::new();
    for b in budgets {
        if b.name.trim().is_empty() {
            b.name = b.default_name();
        }
        if !seen.insert(b.name.clone()) {
            let mut n = 2;
            while seen.contains(&format!("{} #{n}", b.name)) {
                n += 1;
            }
            b.name = format!("{} #{n}", b.name);
            seen.insert(b.name.clone());
        }
    }
}

/// A call refused by a blocking budget: what users read in `BudgetExceededError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetExceeded {
    /// The budget's name.
    pub budget: String,
    /// `global` or the scope key (`user_id`, `model`, `tag`, ...).
    pub scope: String,
    /// The scope value the call belongs to (`None`: global, or the call lacks the key).
    pub value: Option<String>,
    /// The limit.
    pub limit: Decimal,
    /// Spent in the current window.
    pub spent: Decimal,
    /// Reserved by calls in flight.
    pub reserved: Decimal,
    /// What this call asked for (its estimate, or a stream's growth).
    pub requested: Decimal,
    /// The window, as text (`day`, `day (Europe/Berlin)`, `rolling 15m`, `lifetime`).
    pub window: String,
    /// When the window resets (calendar windows), or when the oldest spend leaves a
    /// rolling window; `None` for lifetime budgets.
    pub resets_at: Option<DateTime<Utc>>,
    /// Whether `resets_at` is a rolling window's oldest spend expiring.
    pub rolling: bool,
    /// The alert to send for this refusal ([`AlertKind::Blocked`]): present for the first
    /// refusal per window and scope value, so the sinks are not flooded.
    pub alert: Option<Alert>,
    /// Set when no budget refused the call but the shared budget store could not be asked
    /// and the tracker refuses calls then (`budget_backend_error="closed"`): what failed.
    /// The binding raises `BudgetBackendError` for it.
    pub backend_error: Option<String>,
}

impl BudgetExceeded {
    /// The refusal of a call because the budget store is unreachable (`closed` mode).
    pub fn unreachable(message: String) -> BudgetExceeded {
        BudgetExceeded {
            budget: String::new(),
            scope: String::new(),
            value: None,
            limit: Decimal::ZERO,
            spent: Decimal::ZERO,
            reserved: Decimal::ZERO,
            requested: Decimal::ZERO,
            window: String::new(),
            resets_at: None,
            rolling: false,
            alert: None,
            backend_error: Some(message),
        }
    }
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.backend_error {
            return write!(
                f,
                "the budget store is unreachable and this tracker refuses calls then \
                 (budget_backend_error='closed'): {e}"
            );
        }
        write!(f, "budget '{}' (", self.budget)?;
        if self.scope == "global" {
            f.write_str("global")?;
        } else {
            match &self.value {
                Some(v) => write!(f, "per {} = '{v}'", self.scope)?,
                None => write!(f, "per {} = {NONE_VALUE}", self.scope)?,
            }
        }
        write!(
            f,
            "): {} spent + {} reserved + {} for this call would exceed the {} limit of the {} \
             window",
            format_usd(self.spent),
            format_usd(self.reserved),
            format_usd(self.requested),
            format_usd(self.limit),
            self.window,
        )?;
        match (self.resets_at, self.rolling) {
            (Some(t), false) => write!(f, " (resets at {})", t.format("%Y-%m-%d %H:%M UTC")),
            (Some(t), true) => write!(
                f,
                " (the oldest spend in it expires at {})",
                t.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            (None, _) => Ok(()),
        }
    }
}

impl std::error::Error for BudgetExceeded {}

impl FromStr for Action {
    type Err = Error;
    fn from_str(s: &str) -> Result<Action> {
        Action::parse(s)
    }
}
