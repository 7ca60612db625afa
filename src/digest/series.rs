//! Spend and tokens over time: one cell per hour while reading, rolled up to days for long
//! windows when viewed, stacked by one dimension (its most expensive values, the rest as
//! "other").

use std::collections::{BTreeMap, HashMap};

use super::groups::{each_value, Groups};

use crate::ledger::{CallRecord, Dimension};
use crate::money::Decimal;
use crate::usage::{Usage, UsageSource};

/// One hour: spend per stack value, tokens by kind, calls.
#[derive(Clone, Debug, Default)]
pub(super) struct HourCell {
    by_key: Groups<Decimal>,
    usage: Usage,
    calls: u64,
    unpriced: u64,
}

impl HourCell {
    pub(super) fn add(&mut self, r: &CallRecord, stack: &Dimension) {
        let cost = r.cost.as_ref().map_or(Decimal::ZERO, |c| c.total);
        self.unpriced += u64::from(r.cost.is_none());
        each_value(r, stack, &mut |k| *self.by_key.get(k) += cost);
        if r.usage_source != UsageSource::Cache {
            self.usage.add(&r.usage);
        }
        self.calls += 1;
    }

    fn merge(&mut self, other: &HourCell) {
        for (k, v) in other.by_key.iter() {
            *self.by_key.get(k) += *v;
        }
        self.usage.add(&other.usage);
        self.calls += other.calls;
        self.unpriced += other.unpriced;
    }
}

/// Spend over time, stacked, and tokens by kind over time.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SeriesView {
    /// `hour` or `day`.
    pub bucket: &'static str,
    /// Bucket starts, Unix seconds (every bucket from the first to the last, gaps as zeros).
    pub t: Vec<i64>,
    /// The stacked values, most expensive first; `"other"` folds the rest.
    pub keys: Vec<Option<String>>,
    /// Exact spend per key, per bucket (`cost[k][i]`).
    pub cost: Vec<Vec<Decimal>>,
    /// Calls per bucket.
    pub calls: Vec<u64>,
    /// Calls per bucket whose cost is unknown (not in `cost`: a bucket of only unpriced
    /// calls has a cost of 0 there, and this says it is not free).
    pub unpriced: Vec<u64>,
    /// Input tokens (cached included) per bucket.
    pub input: Vec<u64>,
    /// Cached input tokens per bucket.
    pub cache_read: Vec<u64>,
    /// Cache-write tokens per bucket.
    pub cache_write: Vec<u64>,
    /// Output tokens (reasoning included) per bucket.
    pub output: Vec<u64>,
    /// Reasoning tokens per bucket.
    pub reasoning: Vec<u64>,
}

/// Windows longer than this many hours are drawn by day.
const HOURLY_UP_TO: i64 = 72;
/// Stacked values drawn apart; the rest are "other".
const STACKED: usize = 8;

/// The series view of `hours` (keyed by Unix hour).
pub(super) fn view(hours: &BTreeMap<i64, HourCell>) -> SeriesView {
    let (Some(first), Some(last)) = (hours.keys().next(), hours.keys().next_back()) else {
        return SeriesView {
            bucket: "hour",
            ..SeriesView::default()
        };
    };
    let daily = last - first >= HOURLY_UP_TO;
    let width = if daily { 24 } else { 1 };
    let mut buckets: BTreeMap<i64, HourCell> = BTreeMap::new();
    for (h, cell) in hours {
        buckets.entry(h.div_euclid(width)).or_default().merge(cell);
    }
    let mut key_totals: HashMap<Option<String>, Decimal> = HashMap::new();
    for cell in buckets.values() {
        for (k, v) in cell.by_key.iter() {
            *key_totals.entry(k.map(str::to_string)).or_default() += *v;
        }
    }
    let mut ranked: Vec<(Option<String>, Decimal)> = key_totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let other = ranked.len() > STACKED;
    let mut keys: Vec<Option<String>> = ranked
        .iter()
        .take(if other { STACKED - 1 } else { STACKED })
        .map(|(k, _)| k.clone())
        .collect();
    let index: HashMap<Option<String>, usize> = keys
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    if other {
        keys.push(Some("other".into()));
    }
    let (b0, b1) = (first.div_euclid(width), last.div_euclid(width));
    let n = usize::try_from(b1 - b0 + 1).unwrap_or(0);
    let mut out = SeriesView {
        bucket: if daily { "day" } else { "hour" },
        cost: vec![vec![Decimal::ZERO; n]; keys.len()],
        ..SeriesView::default()
    };
    let empty = HourCell::default();
    for (i, b) in (b0..=b1).enumerate() {
        let cell = buckets.get(&b).unwrap_or(&empty);
        out.t.push(b * width * 3600);
        for (k, v) in cell.by_key.iter() {
            let row = index
                .get(&k.map(str::to_string))
                .copied()
                .unwrap_or(keys.len() - 1);
            out.cost[row][i] += *v;
        }
        out.calls.push(cell.calls);
        out.unpriced.push(cell.unpriced);
        out.input.push(cell.usage.input);
        out.cache_read.push(cell.usage.cache_read);
        out.cache_write.push(cell.usage.cache_write);
        out.output.push(cell.usage.output);
        out.reasoning.push(cell.usage.reasoning);
    }
    for row in &mut out.cost {
        for v in row.iter_mut() {
            *v = v.normalize();
        }
    }
    out.keys = keys;
    out
}
