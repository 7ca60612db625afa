//! Presentation aggregates: everything the HTML report and the live dashboard draw, summed
//! exactly here so that the Python side only lays it out.
//!
//! A [`Digest`] takes call records one at a time (a whole ledger for the HTML report, the rows
//! appended since the last refresh for `llmledger watch`) and keeps, in bounded memory per
//! group: totals, totals per value of each `--by` dimension, spend and tokens per hour stacked
//! by one dimension, totals per root run, the most expensive calls, the latest calls, spend per
//! minute (for rates and budget windows) and the state of `--budget` limits. [`Digest::view`]
//! turns it into a [`view::View`], serialised to JSON with every amount an exact decimal string.

mod budgets;
mod groups;
mod series;
pub mod view;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::ledger::{CallRecord, Dimension, Totals};
use crate::money::Decimal;
use crate::store::read::parse_dims;
use crate::usage::Usage;

pub use budgets::BudgetSpec;
use budgets::BudgetTrack;
use groups::{each_value, Groups};
use series::HourCell;

/// How a digest groups and how much it keeps.
#[derive(Clone, Debug, Default)]
pub struct DigestConfig {
    /// Dimensions with a top list each (`model`, `user_id`, `node`, ...).
    pub by: Vec<String>,
    /// The dimension spend over time is stacked by (default: the first of `by`, else model).
    pub stack_by: Option<String>,
    /// Budgets to follow (`10/day`).
    pub budgets: Vec<BudgetSpec>,
    /// Length of each top list (default 10).
    pub top: usize,
    /// Length of the latest-calls feed (default 12).
    pub feed: usize,
}

/// One call, as the feed and the top-calls list show it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CallBrief {
    /// When it ended, RFC 3339.
    pub time: String,
    /// The run id.
    pub run_id: String,
    /// The root run's name.
    pub root_run_name: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// Captured metadata (`user_id`, `node`, ...).
    pub attribution: BTreeMap<String, String>,
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Cached input tokens.
    pub cache_read_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// The exact cost; `None` when unknown.
    pub cost: Option<Decimal>,
    /// `provider`, `estimated`, `cache`, ...
    pub usage_source: &'static str,
    /// Whether the call failed.
    pub failed: bool,
}

impl CallBrief {
    pub(super) fn of(r: &CallRecord) -> CallBrief {
        CallBrief {
            time: r.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            run_id: crate::ledger::uuid_string(r.run_id),
            root_run_name: r.root_run_name.as_deref().map(str::to_string),
            model: r.model.as_deref().map(str::to_string),
            attribution: r
                .attribution
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            input_tokens: r.usage.input,
            cache_read_tokens: r.usage.cache_read,
            output_tokens: r.usage.output,
            cost: r.cost.as_ref().map(|c| c.total.normalize()),
            usage_source: r.usage_source.as_str(),
            failed: r.error.is_some(),
        }
    }
}

/// Totals of one root run (a chain, agent or graph invocation).
#[derive(Clone, Debug, Default)]
struct RootAgg {
    name: Option<Arc<str>>,
    totals: Totals,
    first: Option<DateTime<Utc>>,
}

/// Spend and tokens in one minute.
#[derive(Clone, Copy, Debug, Default)]
struct MinuteCell {
    cost: Decimal,
    tokens: u64,
    calls: u64,
}

/// A min-heap entry of the top-calls list: cost, then earlier calls win ties.
type TopKey = Reverse<(Decimal, Reverse<u64>)>;

/// Exact aggregates of a stream of call records, for drawing.
#[derive(Debug)]
pub struct Digest {
    config: DigestConfig,
    dims: Vec<Dimension>,
    stack: Dimension,
    totals: Totals,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    per_dim: Vec<Groups<Totals>>,
    hours: BTreeMap<i64, HourCell>,
    roots: HashMap<u128, RootAgg>,
    top_calls: BinaryHeap<TopKey>,
    top_briefs: HashMap<u64, CallBrief>,
    latest: VecDeque<CallRecord>,
    minutes: BTreeMap<i64, MinuteCell>,
    catalog_versions: BTreeMap<Arc<str>, u64>,
    budgets: Vec<BudgetTrack>,
    alerts: VecDeque<view::AlertView>,
    seq: u64,
}

/// Alerts kept for the view, newest last.
const ALERTS_KEPT: usize = 20;

impl Digest {
    /// An empty digest; fails on an unknown dimension name.
    pub fn new(mut config: DigestConfig) -> Result<Digest> {
        if config.top == 0 {
            config.top = 10;
        }
        if config.feed == 0 {
            config.feed = 12;
        }
        let dims = parse_dims(&config.by)?;
        let stack_name = config
            .stack_by
            .clone()
            .or_else(|| config.by.first().cloned())
            .unwrap_or_else(|| "model".into());
        let stack = parse_dims(&[stack_name])?.remove(0);
        let budgets = config
            .budgets
            .iter()
            .cloned()
            .map(BudgetTrack::new)
            .collect();
        Ok(Digest {
            per_dim: vec![Groups::default(); dims.len()],
            dims,
            stack,
            config,
            totals: Totals::default(),
            first: None,
            last: None,
            hours: BTreeMap::new(),
            roots: HashMap::new(),
            top_calls: BinaryHeap::new(),
            top_briefs: HashMap::new(),
            latest: VecDeque::new(),
            minutes: BTreeMap::new(),
            catalog_versions: BTreeMap::new(),
            budgets,
            alerts: VecDeque::new(),
            seq: 0,
        })
    }

    /// Calls counted so far.
    pub fn calls(&self) -> u64 {
        self.totals.successful_requests + self.totals.failed_requests
    }

    /// Exact totals so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Counts one call (kept whole while it is among the latest few).
    pub fn add(&mut self, r: CallRecord) {
        self.count(&r);
        self.latest.push_back(r);
        while self.latest.len() > self.config.feed {
            self.latest.pop_front();
        }
    }

    fn count(&mut self, r: &CallRecord) {
        self.seq += 1;
        self.totals.add(r);
        self.first = Some(self.first.map_or(r.time, |f| f.min(r.time)));
        self.last = Some(self.last.map_or(r.time, |l| l.max(r.time)));
        for (dim, groups) in self.dims.iter().zip(&mut self.per_dim) {
            each_value(r, dim, &mut |v| groups.get(v).add(r));
        }
        let hour = r.time.timestamp().div_euclid(3600);
        self.hours.entry(hour).or_default().add(r, &self.stack);
        let root = self.roots.entry(r.root_run_id).or_default();
        if root.name.is_none() {
            root.name.clone_from(&r.root_run_name);
        }
        root.first = Some(root.first.map_or(r.time, |f| f.min(r.time)));
        root.totals.add(r);
        self.add_top_call(r);
        let cost = r.cost.as_ref().map_or(Decimal::ZERO, |c| c.total);
        let m = self
            .minutes
            .entry(r.time.timestamp().div_euclid(60))
            .or_default();
        m.cost += cost;
        m.tokens += r.usage.total();
        m.calls += 1;
        if let Some(v) = &r.catalog_version {
            *self.catalog_versions.entry(v.clone()).or_default() += 1;
        }
    }

    fn add_top_call(&mut self, r: &CallRecord) {
        let Some(cost) = r.cost.as_ref().map(|c| c.total) else {
            return;
        };
        let key = Reverse((cost, Reverse(self.seq)));
        if self.top_calls.len() >= self.config.top {
            match self.top_calls.peek() {
                Some(min) if key < *min => {
                    let Some(Reverse((_, Reverse(old)))) = self.top_calls.pop() else {
                        return;
                    };
                    self.top_briefs.remove(&old);
                }
                _ => return,
            }
        }
        self.top_calls.push(key);
        self.top_briefs.insert(self.seq, CallBrief::of(r));
    }

    /// Brings budget windows up to `now` and fires the thresholds crossed since the last call;
    /// returns the alerts fired now. Minutes no budget or rate needs any more are dropped.
    pub fn advance(&mut self, now: DateTime<Utc>) -> Vec<view::AlertView> {
        let mut fired = Vec::new();
        let keep_from = self
            .budgets
            .iter()
            .filter_map(|b| b.window_start(now))
            .chain(std::iter::once(now - chrono::Duration::hours(1)))
            .min()
            .map(|t| t.timestamp().div_euclid(60));
        let lifetime = self.totals.cost;
        for b in &mut self.budgets {
            let spent = b.window_start(now).map_or(lifetime, |start| {
                sum_minutes(&self.minutes, start.timestamp().div_euclid(60))
            });
            fired.extend(b.update(now, spent));
        }
        if let Some(from) = keep_from {
            self.minutes = self.minutes.split_off(&from);
        }
        self.alerts.extend(fired.iter().cloned());
        while self.alerts.len() > ALERTS_KEPT {
            self.alerts.pop_front();
        }
        fired
    }

    /// Usage of the whole digest (what the headline shows).
    pub fn usage(&self) -> &Usage {
        &self.totals.usage
    }
}

/// Exact spend of the minutes from `from_minute` on.
fn sum_minutes(minutes: &BTreeMap<i64, MinuteCell>, from_minute: i64) -> Decimal {
    minutes.range(from_minute..).map(|(_, c)| c.cost).sum()
}

#[cfg(test)]
pub(crate) mod tests;
