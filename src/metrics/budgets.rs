//! Budget gauges computed from a ledger (`llmledger metrics LEDGER --budget 10/day`): the
//! exporter has no tracker and no budget state of its own, so it keeps the followed ledger's
//! exact spend per minute and derives each budget's spent, remaining and window end from it
//! when it is collected.
//!
//! Calendar windows start on a minute boundary (every time zone's offset is whole minutes),
//! so their spend is exact. A rolling window counts the minute it starts in whole (as
//! `llmledger watch` does): its spend can include up to one minute more than the window.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::budget::Window;
use crate::digest::BudgetSpec;
use crate::ledger::CallRecord;
use crate::money::Decimal;

/// A budget's state as of one collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetGauge {
    /// As given (`10/day`).
    pub name: String,
    /// The window (`day`, `rolling 15m`, `lifetime`).
    pub window: String,
    /// USD.
    pub limit: Decimal,
    /// Spent in the current window, exact.
    pub spent: Decimal,
    /// `limit - spent`, never below zero.
    pub remaining: Decimal,
    /// When the window resets (calendar), or when its oldest spend leaves it (rolling);
    /// `None` for a lifetime budget, or a rolling one with nothing spent in it.
    pub window_end: Option<DateTime<Utc>>,
}

/// The exact spend of a followed ledger by minute, and the budgets measured against it.
#[derive(Clone, Debug, Default)]
pub struct LedgerBudgets {
    specs: Vec<BudgetSpec>,
    /// Cost per minute (Unix minute), of the minutes some window may still need.
    minutes: BTreeMap<i64, Decimal>,
    /// Every known cost ever read.
    lifetime: Decimal,
}

fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

impl LedgerBudgets {
    /// Follows `specs` (none: nothing is kept).
    pub fn new(specs: Vec<BudgetSpec>) -> LedgerBudgets {
        LedgerBudgets {
            specs,
            ..LedgerBudgets::default()
        }
    }

    /// Whether any budget is followed.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Counts one record's known cost (unpriced calls cost nothing known).
    pub fn add(&mut self, r: &CallRecord) {
        if self.specs.is_empty() {
            return;
        }
        if let Some(c) = &r.cost {
            *self.minutes.entry(minute_of(r.time)).or_default() += c.total;
            self.lifetime += c.total;
        }
    }

    /// Forgets every spend (the ledger went back and is read again).
    pub fn clear(&mut self) {
        self.minutes.clear();
        self.lifetime = Decimal::ZERO;
    }

    /// Each budget's state as of `now`, in the order given; minutes no window needs any
    /// more are dropped.
    pub fn gauges(&mut self, now: DateTime<Utc>) -> Vec<BudgetGauge> {
        let out: Vec<BudgetGauge> = self.specs.iter().map(|s| self.gauge(s, now)).collect();
        // A lifetime budget reads `lifetime`, not the minutes: only windows keep them.
        let keep_from = self
            .specs
            .iter()
            .filter_map(|s| s.window.window_start(now).map(minute_of))
            .min();
        match keep_from {
            Some(from) => self.minutes = self.minutes.split_off(&from),
            None => self.minutes.clear(),
        }
        out
    }

    fn gauge(&self, spec: &BudgetSpec, now: DateTime<Utc>) -> BudgetGauge {
        let start = spec.window.window_start(now).map(minute_of);
        let spent = start.map_or(self.lifetime, |from| {
            self.minutes.range(from..).map(|(_, c)| *c).sum()
        });
        let window_end = match spec.window {
            Window::Rolling(d) => start.and_then(|from| {
                let (oldest, _) = self.minutes.range(from..).find(|(_, c)| !c.is_zero())?;
                // The oldest minute's spend has left the window once its last second has.
                DateTime::from_timestamp((oldest + 1) * 60, 0).map(|t| t + d.max(Duration::zero()))
            }),
            _ => spec.window.resets_at(now),
        };
        BudgetGauge {
            name: spec.name.clone(),
            window: spec.window.to_string(),
            limit: spec.limit.normalize(),
            spent: spent.normalize(),
            remaining: (spec.limit - spent).max(Decimal::ZERO).normalize(),
            window_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn record(time: &str, cost: Option<&str>) -> CallRecord {
        let mut r = crate::digest::tests::record(1, cost.unwrap_or("0"));
        r.time = at(time);
        if cost.is_none() {
            r.cost = None;
        }
        r
    }

    fn budgets(specs: &[&str]) -> LedgerBudgets {
        LedgerBudgets::new(
            specs
                .iter()
                .map(|s| BudgetSpec::parse(s).unwrap())
                .collect(),
        )
    }

    #[test]
    fn calendar_rolling_and_lifetime_windows_from_the_ledger() {
        let mut b = budgets(&["10/day", "1/rolling:15m", "100"]);
        b.add(&record("2026-03-01T23:59:59Z", Some("0.5"))); // yesterday
        b.add(&record("2026-03-02T09:00:10Z", Some("0.25")));
        b.add(&record("2026-03-02T11:50:30Z", Some("0.000001")));
        b.add(&record("2026-03-02T11:58:00Z", Some("0.7")));
        b.add(&record("2026-03-02T11:59:00Z", None)); // unpriced: nothing known spent
        let g = b.gauges(at("2026-03-02T12:00:00Z"));
        assert_eq!(g[0].name, "10/day");
        assert_eq!(g[0].spent, "0.950001".parse().unwrap());
        assert_eq!(g[0].remaining, "9.049999".parse().unwrap());
        assert_eq!(g[0].window_end, Some(at("2026-03-03T00:00:00Z")));
        // 11:45 on: the 11:50 and 11:58 minutes; the oldest leaves at 11:51 + 15m.
        assert_eq!(g[1].spent, "0.700001".parse().unwrap());
        assert_eq!(g[1].remaining, "0.299999".parse().unwrap());
        assert_eq!(g[1].window_end, Some(at("2026-03-02T12:06:00Z")));
        assert_eq!(g[2].spent, "1.450001".parse().unwrap());
        assert_eq!(g[2].window_end, None);
        // Over the limit: remaining is zero, never negative.
        b.add(&record("2026-03-02T12:00:01Z", Some("2")));
        let g = b.gauges(at("2026-03-02T12:00:02Z"));
        assert_eq!(g[1].remaining, Decimal::ZERO);
        // Later, the rolling window is empty: no end, nothing spent.
        let g = b.gauges(at("2026-03-02T13:00:00Z"));
        assert_eq!(g[1].spent, Decimal::ZERO);
        assert_eq!(g[1].window_end, None);
        b.clear();
        assert_eq!(b.gauges(at("2026-03-02T13:00:00Z"))[2].spent, Decimal::ZERO);
    }

    #[test]
    fn minutes_no_window_needs_are_dropped() {
        let mut b = budgets(&["1/hour", "500"]);
        for m in 0..120 {
            b.add(&record(
                &format!("2026-03-02T{:02}:{:02}:00Z", 10 + m / 60, m % 60),
                Some("0.01"),
            ));
        }
        let g = b.gauges(at("2026-03-02T11:30:00Z"));
        assert_eq!(g[0].spent, "0.60".parse().unwrap());
        assert_eq!(g[1].spent, "1.20".parse().unwrap());
        // A lifetime budget beside it keeps no minutes of its own.
        assert_eq!(b.minutes.len(), 60);
        let mut lifetime = budgets(&["500"]);
        lifetime.add(&record("2026-03-02T10:00:00Z", Some("0.01")));
        assert_eq!(
            lifetime.gauges(at("2026-03-02T11:30:00Z"))[0].spent,
            "0.01".parse().unwrap()
        );
        assert!(lifetime.minutes.is_empty());
    }
}
