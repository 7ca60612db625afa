//! What a digest shows, as serialisable values: every amount an exact decimal (a JSON string),
//! every share and rate rounded here, so the viewer only lays them out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ledger::{uuid_string, Totals};
use crate::money::Decimal;

use super::{series, CallBrief, Digest};

/// Minutes the spend rate is measured over.
pub const RATE_MINUTES: i64 = 5;

/// Totals as shown.
#[derive(Clone, Debug, Serialize)]
pub struct TotalsView {
    /// Calls, failed included.
    pub calls: u64,
    /// Failed calls.
    pub failed: u64,
    /// Calls whose cost is unknown.
    pub unpriced: u64,
    /// Calls with estimated usage.
    pub estimated: u64,
    /// LLM-cache hits.
    pub llm_cache_hits: u64,
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Cached input tokens.
    pub cache_read_tokens: u64,
    /// Cache-write tokens.
    pub cache_write_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Input plus output tokens.
    pub total_tokens: u64,
    /// The exact sum of known costs.
    pub cost: Decimal,
    /// Cost per priced call (8 decimal places); `None` without priced calls.
    pub avg_cost: Option<Decimal>,
}

impl TotalsView {
    fn of(t: &Totals) -> TotalsView {
        let calls = t.successful_requests + t.failed_requests;
        let priced = calls.saturating_sub(t.unpriced_calls);
        TotalsView {
            calls,
            failed: t.failed_requests,
            unpriced: t.unpriced_calls,
            estimated: t.estimated_calls,
            llm_cache_hits: t.llm_cache_hits,
            input_tokens: t.usage.input,
            cache_read_tokens: t.usage.cache_read,
            cache_write_tokens: t.usage.cache_write,
            output_tokens: t.usage.output,
            reasoning_tokens: t.usage.reasoning,
            total_tokens: t.usage.total(),
            cost: t.cost.normalize(),
            avg_cost: (priced > 0)
                .then(|| (t.cost / Decimal::from(priced)).round_dp(8).normalize()),
        }
    }
}

/// One row of a top list.
#[derive(Clone, Debug, Serialize)]
pub struct RowView {
    /// The group's value (`None`: not set).
    pub key: Option<String>,
    /// A root run's name (root-run rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The group's totals.
    #[serde(flatten)]
    pub totals: TotalsView,
    /// Its share of the total cost (0..1, 4 decimal places).
    pub share: Decimal,
}

/// A top list by one dimension.
#[derive(Clone, Debug, Serialize)]
pub struct DimView {
    /// The dimension.
    pub name: String,
    /// Distinct values seen.
    pub groups: usize,
    /// The most expensive values.
    pub rows: Vec<RowView>,
}

/// Spend and token rates over the last minutes.
#[derive(Clone, Debug, Serialize)]
pub struct RatesView {
    /// Minutes measured.
    pub minutes: i64,
    /// USD per minute (8 decimal places).
    pub cost_per_minute: Decimal,
    /// USD per hour at that rate.
    pub cost_per_hour: Decimal,
    /// Tokens per second.
    pub tokens_per_second: Decimal,
    /// Calls per minute.
    pub calls_per_minute: Decimal,
}

/// A budget's state.
#[derive(Clone, Debug, Serialize)]
pub struct BudgetView {
    /// As given (`10/day`).
    pub name: String,
    /// The window (`day`, `rolling 15m`).
    pub window: String,
    /// USD.
    pub limit: Decimal,
    /// Spent in the current window.
    pub spent: Decimal,
    /// Left in it.
    pub remaining: Decimal,
    /// Spent over limit (4 decimal places).
    pub used: Decimal,
    /// When a calendar window starts over.
    pub resets_at: Option<String>,
    /// When it runs out at the current rate, if before the reset.
    pub exhausts_at: Option<String>,
}

/// A threshold crossing.
#[derive(Clone, Debug, Serialize)]
pub struct AlertView {
    /// When it was seen.
    pub time: String,
    /// The budget.
    pub budget: String,
    /// The share crossed (0.5, 0.8, 1).
    pub threshold: Decimal,
    /// Spent then.
    pub spent: Decimal,
    /// The limit.
    pub limit: Decimal,
}

/// Everything a viewer draws.
#[derive(Clone, Debug, Serialize)]
pub struct View {
    /// When the view was made.
    pub now: String,
    /// The first and last call times.
    pub first: Option<String>,
    /// See `first`.
    pub last: Option<String>,
    /// Totals.
    pub totals: TotalsView,
    /// Catalog versions that priced the calls, with their call counts.
    pub catalog_versions: BTreeMap<String, u64>,
    /// A top list per `by` dimension.
    pub by: Vec<DimView>,
    /// The most expensive root runs.
    pub roots: Vec<RowView>,
    /// The most expensive calls.
    pub top_calls: Vec<CallBrief>,
    /// The latest calls, newest first.
    pub latest: Vec<CallBrief>,
    /// Spend over time.
    pub series: series::SeriesView,
    /// Rates over the last minutes.
    pub rates: RatesView,
    /// Followed budgets.
    pub budgets: Vec<BudgetView>,
    /// Thresholds crossed while following, newest first.
    pub alerts: Vec<AlertView>,
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Share of `part` in `whole`, 4 places.
fn share(part: Decimal, whole: Decimal) -> Decimal {
    if whole.is_zero() {
        Decimal::ZERO
    } else {
        (part / whole).round_dp(4).normalize()
    }
}

/// The `n` most expensive of `items` (then most calls, then by key).
fn top<K: Ord + Clone>(items: Vec<(K, &Totals)>, n: usize) -> Vec<(K, Totals)> {
    let mut items = items;
    let cmp = |a: &(K, &Totals), b: &(K, &Totals)| {
        b.1.cost
            .cmp(&a.1.cost)
            .then(b.1.successful_requests.cmp(&a.1.successful_requests))
            .then_with(|| a.0.cmp(&b.0))
    };
    if items.len() > n && n > 0 {
        items.select_nth_unstable_by(n - 1, cmp);
        items.truncate(n);
    }
    items.sort_by(cmp);
    items.into_iter().map(|(k, t)| (k, t.clone())).collect()
}

impl Digest {
    fn rates(&self, now: DateTime<Utc>) -> RatesView {
        let to = now.timestamp().div_euclid(60);
        let mut cost = Decimal::ZERO;
        let (mut tokens, mut calls) = (0u64, 0u64);
        for (_, c) in self.minutes.range(to - RATE_MINUTES + 1..=to) {
            cost += c.cost;
            tokens += c.tokens;
            calls += c.calls;
        }
        let per_minute = (cost / Decimal::from(RATE_MINUTES)).round_dp(8);
        RatesView {
            minutes: RATE_MINUTES,
            cost_per_minute: per_minute.normalize(),
            cost_per_hour: (per_minute * Decimal::from(60)).normalize(),
            tokens_per_second: (Decimal::from(tokens) / Decimal::from(RATE_MINUTES * 60))
                .round_dp(1)
                .normalize(),
            calls_per_minute: (Decimal::from(calls) / Decimal::from(RATE_MINUTES))
                .round_dp(2)
                .normalize(),
        }
    }

    fn dim_views(&self) -> Vec<DimView> {
        let whole = self.totals.cost;
        self.config
            .by
            .iter()
            .zip(&self.per_dim)
            .map(|(name, groups)| DimView {
                name: name.clone(),
                groups: groups.len(),
                rows: top(groups.iter().collect(), self.config.top)
                    .into_iter()
                    .map(|(key, t)| RowView {
                        key: key.map(str::to_string),
                        name: None,
                        share: share(t.cost, whole),
                        totals: TotalsView::of(&t),
                    })
                    .collect(),
            })
            .collect()
    }

    fn root_views(&self) -> Vec<RowView> {
        let whole = self.totals.cost;
        let items = self.roots.iter().map(|(k, r)| (*k, &r.totals)).collect();
        top(items, self.config.top)
            .into_iter()
            .map(|(id, t)| RowView {
                key: Some(uuid_string(id)),
                name: self
                    .roots
                    .get(&id)
                    .and_then(|r| r.name.as_deref().map(str::to_string)),
                share: share(t.cost, whole),
                totals: TotalsView::of(&t),
            })
            .collect()
    }

    /// The view as of `now`.
    pub fn view(&self, now: DateTime<Utc>) -> View {
        let rates = self.rates(now);
        let per_second = rates.cost_per_minute / Decimal::from(60);
        let mut top_calls: Vec<(Decimal, u64)> = self
            .top_calls
            .iter()
            .map(|std::cmp::Reverse((c, std::cmp::Reverse(s)))| (*c, *s))
            .collect();
        top_calls.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        View {
            now: time_text(now),
            first: self.first.map(time_text),
            last: self.last.map(time_text),
            totals: TotalsView::of(&self.totals),
            catalog_versions: self
                .catalog_versions
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            by: self.dim_views(),
            roots: self.root_views(),
            top_calls: top_calls
                .iter()
                .filter_map(|(_, s)| self.top_briefs.get(s).cloned())
                .collect(),
            latest: self.latest.iter().rev().map(CallBrief::of).collect(),
            series: series::view(&self.hours),
            budgets: self
                .budgets
                .iter()
                .map(|b| b.view(now, per_second))
                .collect(),
            alerts: self.alerts.iter().rev().cloned().collect(),
            rates,
        }
    }
}
