//! Budgets a viewer follows (`llmledger watch --budget 10/day`): spent in the current window,
//! the thresholds crossed, and when the money runs out at the current burn rate.

use chrono::{DateTime, Utc};

use crate::budget::Window;
use crate::error::{Error, Result};
use crate::money::Decimal;

use super::view::{AlertView, BudgetView};

/// Shares of the limit that fire an alert when crossed.
const THRESHOLDS: [(i64, u32); 3] = [(5, 1), (8, 1), (1, 0)];

/// A limit over a window: `10/day`, `2.50/hour`, `100/month`, `5/rolling:15m`, `500` (the
/// whole ledger).
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetSpec {
    /// As written.
    pub name: String,
    /// USD.
    pub limit: Decimal,
    /// The window.
    pub window: Window,
}

impl BudgetSpec {
    /// Parses `AMOUNT[/WINDOW]` (windows as `Budget(per=...)` takes them; UTC).
    pub fn parse(s: &str) -> Result<BudgetSpec> {
        let t = s.trim().trim_start_matches('$');
        let (amount, window) = t.split_once('/').unwrap_or((t, "lifetime"));
        let bad = || {
            Error::InvalidArgument(format!(
                "budget '{s}': use AMOUNT/WINDOW in USD, such as 10/day, 2.50/hour, 100/month \
                 or 5/rolling:15m (a bare amount is over the whole ledger)"
            ))
        };
        let limit: Decimal = amount.trim().parse().map_err(|_| bad())?;
        if limit <= Decimal::ZERO {
            return Err(bad());
        }
        Ok(BudgetSpec {
            name: s.trim().to_string(),
            limit,
            window: Window::parse(window, None)?,
        })
    }
}

/// A followed budget's state.
#[derive(Clone, Debug)]
pub(super) struct BudgetTrack {
    spec: BudgetSpec,
    spent: Decimal,
    window_start: Option<DateTime<Utc>>,
    fired: usize,
}

impl BudgetTrack {
    pub(super) fn new(spec: BudgetSpec) -> BudgetTrack {
        BudgetTrack {
            spec,
            spent: Decimal::ZERO,
            window_start: None,
            fired: 0,
        }
    }

    pub(super) fn window_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.spec.window.window_start(now)
    }

    /// Sets the window's spend as of `now`; returns the thresholds crossed since last time.
    pub(super) fn update(&mut self, now: DateTime<Utc>, spent: Decimal) -> Vec<AlertView> {
        let start = self.window_start(now);
        if self.spec.window.is_calendar() && start != self.window_start {
            self.fired = 0;
        }
        self.window_start = start;
        self.spent = spent;
        let mut out = Vec::new();
        while self.fired < THRESHOLDS.len() {
            let (m, scale) = THRESHOLDS[self.fired];
            let share = Decimal::new(m, scale);
            if self.spent < self.spec.limit * share {
                break;
            }
            out.push(AlertView {
                time: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                budget: self.spec.name.clone(),
                threshold: share.normalize(),
                spent: self.spent.normalize(),
                limit: self.spec.limit.normalize(),
            });
            self.fired += 1;
        }
        out
    }

    /// The budget's state; `per_second` is the current burn rate.
    pub(super) fn view(&self, now: DateTime<Utc>, per_second: Decimal) -> BudgetView {
        let remaining = (self.spec.limit - self.spent).max(Decimal::ZERO);
        let resets_at = self.spec.window.resets_at(now);
        let exhausts_at = if remaining.is_zero() {
            Some(now)
        } else if per_second > Decimal::ZERO {
            (remaining / per_second)
                .round()
                .try_into()
                .ok()
                .and_then(|s: i64| now.checked_add_signed(chrono::Duration::seconds(s)))
                .filter(|t| resets_at.is_none_or(|r| *t < r))
        } else {
            None
        };
        BudgetView {
            name: self.spec.name.clone(),
            window: self.spec.window.to_string(),
            limit: self.spec.limit.normalize(),
            spent: self.spent.normalize(),
            remaining: remaining.normalize(),
            used: if self.spec.limit.is_zero() {
                Decimal::ZERO
            } else {
                (self.spent / self.spec.limit).round_dp(4).normalize()
            },
            resets_at: resets_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            exhausts_at: exhausts_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        }
    }
}
