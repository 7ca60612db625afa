//! Call records and their aggregates: exact totals, and group-by summaries over any
//! attribution dimension.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::catalog::CostBreakdown;
use crate::error::{Error, Result};
use crate::money::Decimal;
use crate::usage::{Usage, UsageSource, PARTIAL_PREFIX};

/// Everything recorded about one LLM call. Never holds prompt or completion text.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRecord {
    /// When the call ended (UTC).
    pub time: DateTime<Utc>,
    /// The LLM run's id.
    pub run_id: u128,
    /// Its parent run (a chain, agent or graph node), if any.
    pub parent_run_id: Option<u128>,
    /// The outermost run this call belongs to (itself when it has no parent).
    pub root_run_id: u128,
    /// The outermost run's name, when known.
    pub root_run_name: Option<Arc<str>>,
    /// The model, as the response (or else the request) named it.
    pub model: Option<Arc<str>>,
    /// The model the request asked for (invocation params, else `ls_model_name`), when the
    /// start was seen: `gpt-4o` where `model` says `gpt-4o-2024-08-06`. Per-model budgets
    /// count by it (falling back to `model`).
    pub requested_model: Option<Arc<str>>,
    /// The provider (LangChain's `ls_provider`).
    pub provider: Option<Arc<str>>,
    /// The metadata keys the tracker captures, with their values.
    pub attribution: Vec<(Arc<str>, String)>,
    /// The run's tags.
    pub tags: Vec<String>,
    /// Token counts.
    pub usage: Usage,
    /// Where the counts came from.
    pub usage_source: UsageSource,
    /// For estimated usage, how it was counted (`o200k_base`, or `estimate for Claude:
    /// o200k_base x 1.20` for a model without a public tokenizer). For the provider's usage
    /// with malformed counts, which llmledger counted and which are unknown
    /// (`provider+estimated:output_tokens (o200k_base)`, see [`PARTIAL_PREFIX`]).
    pub estimated_by: Option<String>,
    /// Service tier the provider reported (`priority`, `flex`, ...).
    pub service_tier: Option<String>,
    /// The cost; `None` when it is unknown (unknown model, missing price dimension).
    pub cost: Option<CostBreakdown>,
    /// Why the cost is unknown.
    pub unpriced_reason: Option<String>,
    /// The catalog entry that priced the call (`provider/id`).
    pub price_entry: Option<Arc<str>>,
    /// The catalog version that priced the call.
    pub catalog_version: Option<Arc<str>>,
    /// Seconds from start to end, when the start was seen.
    pub latency: Option<f64>,
    /// Streamed chunks seen.
    pub chunks: u32,
    /// The error, for failed calls (`Type: message`).
    pub error: Option<String>,
    /// Where usage details came from when LangChain's `usage_metadata` lacked them
    /// (`cache_read_tokens from llm_output.token_usage`): the provider's raw usage, each
    /// count taken once.
    pub usage_notes: Option<String>,
    /// Components priced by a fallback rather than a price of their own
    /// (`cache_read_tokens at the input price: no cache_read price`), `; `-separated.
    pub price_notes: Option<String>,
    /// What the start saw of the request that the advisor needs: its output cap and its
    /// fingerprints (never text).
    pub request: RequestFacts,
}

/// What a call's start saw of its request, for the advisor (`crate::advise`): no text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// The output cap the request set (`max_tokens` and its kin, times `n`); `None`: it set
    /// none, or its start was not seen (then `fingerprint` is `None` too).
    pub max_tokens: Option<u64>,
    /// Keyed hashes of the prompt's prefixes and of the whole request; `None` when the start
    /// was not seen, gave no prompt, or fingerprints are off.
    pub fingerprint: Option<Arc<crate::fingerprint::Fingerprint>>,
}

impl CallRecord {
    /// Whether the provider's usage had a malformed or missing count (see
    /// [`PARTIAL_PREFIX`]).
    pub fn usage_was_malformed(&self) -> bool {
        self.estimated_by
            .as_deref()
            .is_some_and(|e| e.starts_with(PARTIAL_PREFIX))
    }

    /// The group-by keys this record falls under for `dims`: one value per dimension, and one
    /// key per combination when a dimension has several values (tags).
    pub fn group_keys(&self, dims: &[Dimension]) -> Vec<Vec<Option<String>>> {
        let mut keys: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(dims.len())];
        for dim in dims {
            let mut values = self.dimension(dim);
            if values.len() == 1 {
                let v = values.pop().flatten();
                for k in &mut keys {
                    k.push(v.clone());
                }
            } else {
                keys = keys
                    .into_iter()
                    .flat_map(|k| {
                        values.iter().map(move |v| {
                            let mut k2 = k.clone();
                            k2.push(v.clone());
                            k2
                        })
                    })
                    .collect();
            }
        }
        keys
    }

    /// The value of a summary dimension for this record (several for `tag`).
    pub fn dimension(&self, dim: &Dimension) -> Vec<Option<String>> {
        match dim {
            Dimension::Model => vec![self.model.as_deref().map(str::to_string)],
            Dimension::RequestedModel => {
                vec![self.requested_model.as_deref().map(str::to_string)]
            }
            Dimension::Provider => vec![self.provider.as_deref().map(str::to_string)],
            Dimension::RootRunName => vec![self.root_run_name.as_deref().map(str::to_string)],
            Dimension::RootRunId => vec![Some(uuid_string(self.root_run_id))],
            Dimension::UsageSource => vec![Some(self.usage_source.as_str().to_string())],
            Dimension::ServiceTier => vec![self.service_tier.clone()],
            Dimension::Day => vec![Some(self.time.format("%Y-%m-%d").to_string())],
            Dimension::Hour => vec![Some(self.time.format("%Y-%m-%dT%H:00").to_string())],
            Dimension::Error => vec![self
                .error
                .as_deref()
                .map(|e| e.split(':').next().unwrap_or(e).to_string())],
            Dimension::PriceEntry => vec![self.price_entry.as_deref().map(str::to_string)],
            Dimension::Tag => {
                if self.tags.is_empty() {
                    vec![None]
                } else {
                    self.tags.iter().cloned().map(Some).collect()
                }
            }
            Dimension::Metadata(key) => vec![self
                .attribution
                .iter()
                .find(|(k, _)| k.as_ref() == key.as_str())
                .map(|(_, v)| v.clone())],
        }
    }
}

/// A run id as the usual hyphenated UUID text.
pub fn uuid_string(id: u128) -> String {
    uuid::Uuid::from_u128(id).hyphenated().to_string()
}

/// A dimension records can be grouped by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// `model`: as the response named it (often a dated snapshot).
    Model,
    /// `requested_model`: the model the request asked for (`None` when the start was not
    /// seen). Per-model budgets count by it.
    RequestedModel,
    /// `provider`
    Provider,
    /// `root_run_name` (the outermost chain or graph)
    RootRunName,
    /// `root_run_id`
    RootRunId,
    /// `usage_source`
    UsageSource,
    /// `service_tier`
    ServiceTier,
    /// `day` (UTC date)
    Day,
    /// `hour` (UTC)
    Hour,
    /// `error` (the error's type; `None` for successful calls)
    Error,
    /// `price_entry`
    PriceEntry,
    /// `tag`: a call with several tags counts in each tag's row.
    Tag,
    /// A captured metadata key (`user_id`, ...).
    Metadata(String),
}

/// The built-in dimension names.
pub const BUILTIN_DIMENSIONS: &[&str] = &[
    "model",
    "requested_model",
    "provider",
    "root_run_name",
    "root_run_id",
    "usage_source",
    "service_tier",
    "day",
    "hour",
    "error",
    "price_entry",
    "tag",
];

impl Dimension {
    /// Parses a dimension name; metadata keys must be among `captured`.
    pub fn parse(name: &str, captured: &[Arc<str>]) -> Result<Dimension> {
        Ok(match name {
            "model" => Dimension::Model,
            "requested_model" => Dimension::RequestedModel,
            "provider" => Dimension::Provider,
            "root_run_name" | "root" => Dimension::RootRunName,
            "root_run_id" => Dimension::RootRunId,
            "usage_source" => Dimension::UsageSource,
            "service_tier" => Dimension::ServiceTier,
            "day" | "date" => Dimension::Day,
            "hour" => Dimension::Hour,
            "error" => Dimension::Error,
            "price_entry" => Dimension::PriceEntry,
            "tag" | "tags" => Dimension::Tag,
            key if captured.iter().any(|k| k.as_ref() == key) => {
                Dimension::Metadata(key.to_string())
            }
            other => {
                let near = crate::suggest::did_you_mean(
                    other,
                    BUILTIN_DIMENSIONS
                        .iter()
                        .copied()
                        .chain(captured.iter().map(AsRef::as_ref)),
                );
                return Err(Error::InvalidArgument(format!(
                    "unknown dimension '{other}'{near}: use one of {} or a metadata key this \
                     tracker captures ({}); capture more with CostTracker(attribute=[...])",
                    BUILTIN_DIMENSIONS.join(", "),
                    captured
                        .iter()
                        .map(AsRef::as_ref)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        })
    }
}

/// The label of a missing attribution value (a call without `user_id`, without tags, ...)
/// wherever it is shown as text: report tables, budget messages, `reset_budget(value=...)`.
/// In data (record and summary dicts, JSON) a missing value is `None` / `null`.
pub const NONE_VALUE: &str = "(none)";

/// Running totals over every call a ledger has seen (records dropped by `max_records`
/// included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Calls that ended without error (`get_openai_callback`'s `successful_requests`).
    pub successful_requests: u64,
    /// Calls that ended with an error.
    pub failed_requests: u64,
    /// Token counts, summed (LLM-cache hits excluded: they consumed nothing).
    pub usage: Usage,
    /// The exact sum of every known cost.
    pub cost: Decimal,
    /// Calls whose cost is unknown.
    pub unpriced_calls: u64,
    /// Calls answered from LangChain's LLM cache (`usage_source = "cache"`).
    pub llm_cache_hits: u64,
    /// Calls whose usage was estimated (`usage_source = "estimated"`).
    pub estimated_calls: u64,
    /// Calls whose usage the provider reported (`usage_source = "provider"`).
    pub reported_calls: u64,
    /// Calls without any usage (`usage_source = "none"`).
    pub no_usage_calls: u64,
    /// The earliest call's time.
    pub first_call: Option<DateTime<Utc>>,
    /// The latest call's time.
    pub last_call: Option<DateTime<Utc>>,
    /// The sum of the known latencies, in whole microseconds (each rounded once), so sums
    /// are exact and the same however they are grouped.
    pub latency_micros: u64,
    /// Calls whose latency is known (their start was seen).
    pub timed_calls: u64,
    /// Calls whose provider-reported usage had a malformed (or missing) count, which
    /// llmledger counted itself or recorded as unknown: their `estimated_by` starts with
    /// [`PARTIAL_PREFIX`].
    pub malformed_usage_calls: u64,
    /// Calls served by a local runtime (Ollama, llama.cpp, vLLM, ...) without a user price:
    /// cost 0, `price_entry` starting with [`LOCAL_PREFIX`]. They are priced calls.
    pub local_calls: u64,
    /// Calls with a component priced by a fallback (`price_notes`: cached tokens at the
    /// input price where the entry has no cache-read price, ...).
    pub fallback_priced_calls: u64,
}

/// The start of a local call's `price_entry` (`local:ollama`).
pub const LOCAL_PREFIX: &str = "local:";

/// Whether a record's `price_entry` says it was served by a local runtime.
pub fn is_local_entry(price_entry: Option<&str>) -> bool {
    price_entry.is_some_and(|e| e.starts_with(LOCAL_PREFIX))
}

/// A latency in seconds as whole microseconds (negative or not finite: none).
pub fn latency_micros(seconds: f64) -> Option<u64> {
    let us = (seconds * 1e6).round();
    // In range: a u64 of microseconds is 584,000 years.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (0.0..1.8e19).contains(&us).then_some(us as u64)
}

/// Decimals an average cost is rounded to: a pico-dollar, the ledger's money unit.
pub const AVERAGE_COST_DECIMALS: u32 = 12;

impl Totals {
    /// Counts one call.
    pub fn add(&mut self, r: &CallRecord) {
        if r.error.is_some() {
            self.failed_requests += 1;
        } else {
            self.successful_requests += 1;
        }
        match r.usage_source {
            UsageSource::Cache => self.llm_cache_hits += 1,
            UsageSource::Estimated => self.estimated_calls += 1,
            UsageSource::Provider => {
                self.reported_calls += 1;
                if r.usage_was_malformed() {
                    self.malformed_usage_calls += 1;
                }
            }
            UsageSource::None => self.no_usage_calls += 1,
        }
        if r.usage_source != UsageSource::Cache {
            self.usage.add(&r.usage);
        }
        if is_local_entry(r.price_entry.as_deref()) {
            self.local_calls += 1;
        }
        if r.price_notes.is_some() {
            self.fallback_priced_calls += 1;
        }
        match &r.cost {
            Some(c) => self.cost += c.total,
            // A failed call that reported no usage billed nothing we know of: not "unpriced".
            None if r.error.is_some() && r.usage.is_empty() => {}
            None => self.unpriced_calls += 1,
        }
        self.add_time(r.time);
        if let Some(us) = r.latency.and_then(latency_micros) {
            self.add_latency(us);
        }
    }

    /// Widens the first/last call times to include `t`.
    pub fn add_time(&mut self, t: DateTime<Utc>) {
        self.first_call = Some(self.first_call.map_or(t, |f| f.min(t)));
        self.last_call = Some(self.last_call.map_or(t, |l| l.max(t)));
    }

    /// Adds one known latency.
    pub fn add_latency(&mut self, micros: u64) {
        self.latency_micros = self.latency_micros.saturating_add(micros);
        self.timed_calls += 1;
    }

    /// Every call counted.
    pub fn calls(&self) -> u64 {
        self.successful_requests + self.failed_requests
    }

    /// Calls whose cost is known (LLM-cache hits and failed calls that billed nothing
    /// included, at $0).
    pub fn priced_calls(&self) -> u64 {
        self.calls().saturating_sub(self.unpriced_calls)
    }

    /// The cost per priced call, rounded to [`AVERAGE_COST_DECIMALS`] (`None` without one).
    pub fn average_cost(&self) -> Option<Decimal> {
        let n = self.priced_calls();
        (n > 0).then(|| {
            (self.cost / Decimal::from(n))
                .round_dp(AVERAGE_COST_DECIMALS)
                .normalize()
        })
    }

    /// The sum of the known latencies, in seconds.
    #[allow(clippy::cast_precision_loss)] // microseconds: exact below 2^53 (285 years)
    pub fn latency_seconds(&self) -> f64 {
        self.latency_micros as f64 / 1e6
    }
}

/// One row of a group-by summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The group's values, one per requested dimension (`None`: not set).
    pub key: Vec<Option<String>>,
    /// The group's totals.
    pub totals: Totals,
}

/// Records in memory plus exact running totals.
#[derive(Debug, Default)]
pub struct Ledger {
    records: VecDeque<CallRecord>,
    totals: Totals,
    max_records: Option<usize>,
    dropped: u64,
}

impl Ledger {
    /// A ledger keeping at most `max_records` records (the oldest are dropped; totals still
    /// count them).
    pub fn new(max_records: Option<usize>) -> Self {
        Ledger {
            max_records,
            ..Ledger::default()
        }
    }

    /// Adds a record.
    pub fn push(&mut self, r: CallRecord) {
        self.totals.add(&r);
        if self.max_records == Some(0) {
            self.dropped += 1;
            return;
        }
        if let Some(max) = self.max_records {
            while self.records.len() >= max {
                self.records.pop_front();
                self.dropped += 1;
            }
        }
        self.records.push_back(r);
    }

    /// Running totals.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Records kept, oldest first.
    pub fn records(&self) -> impl ExactSizeIterator<Item = &CallRecord> {
        self.records.iter()
    }

    /// Records dropped because of `max_records`.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets every record and total.
    pub fn clear(&mut self) {
        self.records.clear();
        self.totals = Totals::default();
        self.dropped = 0;
    }

    /// Groups the kept records by `dims`; rows sorted by cost, then calls, descending.
    pub fn summary(&self, dims: &[Dimension]) -> Vec<SummaryRow> {
        let mut groups: HashMap<Vec<Option<String>>, Totals> = HashMap::new();
        for r in &self.records {
            for k in r.group_keys(dims) {
                groups.entry(k).or_default().add(r);
            }
        }
        let mut rows: Vec<SummaryRow> = groups
            .into_iter()
            .map(|(key, totals)| SummaryRow { key, totals })
            .collect();
        sort_rows(&mut rows);
        rows
    }
}

/// Summary rows in report order: most expensive first, then most calls, then by key (the
/// in-memory summary and every ledger report alike).
pub fn sort_rows(rows: &mut [SummaryRow]) {
    rows.sort_by(|a, b| {
        b.totals
            .cost
            .cmp(&a.totals.cost)
            .then(
                b.totals
                    .successful_requests
                    .cmp(&a.totals.successful_requests),
            )
            .then_with(|| a.key.cmp(&b.key))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn rec(user: &str, model: &str, cost: Option<&str>, tags: &[&str]) -> CallRecord {
        CallRecord {
            time: Utc::now(),
            run_id: 1,
            parent_run_id: None,
            root_run_id: 1,
            root_run_name: None,
            model: Some(model.into()),
            requested_model: None,
            provider: Some("openai".into()),
            attribution: vec![("user_id".into(), user.to_string())],
            tags: tags.iter().map(|s| (*s).to_string()).collect(),
            usage: Usage {
                input: 10,
                output: 5,
                ..Usage::default()
            },
            usage_source: UsageSource::Provider,
            estimated_by: None,
            service_tier: None,
            cost: cost.map(|c| {
                let t = Decimal::from_str(c).unwrap();
                CostBreakdown {
                    total: t,
                    input: t,
                    ..CostBreakdown::default()
                }
            }),
            unpriced_reason: None,
            price_entry: None,
            catalog_version: None,
            latency: None,
            chunks: 0,
            error: None,
            usage_notes: None,
            price_notes: None,
            request: crate::ledger::RequestFacts::default(),
        }
    }

    #[test]
    fn summary_by_user_and_model() {
        let mut l = Ledger::new(None);
        l.push(rec("a", "m1", Some("0.1"), &[]));
        l.push(rec("a", "m1", Some("0.2"), &[]));
        l.push(rec("b", "m2", None, &[]));
        let captured: Vec<Arc<str>> = vec!["user_id".into()];
        let dims = vec![
            Dimension::parse("user_id", &captured).unwrap(),
            Dimension::parse("model", &captured).unwrap(),
        ];
        let rows = l.summary(&dims);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].key, vec![Some("a".into()), Some("m1".into())]);
        assert_eq!(rows[0].totals.cost, Decimal::from_str("0.3").unwrap());
        assert_eq!(rows[0].totals.successful_requests, 2);
        assert_eq!(rows[1].totals.unpriced_calls, 1);
        assert_eq!(l.totals().usage.total(), 45);
        assert!(Dimension::parse("team", &captured)
            .unwrap_err()
            .to_string()
            .contains("unknown dimension 'team'"));
    }

    #[test]
    fn totals_have_times_latency_and_average() {
        let mut t = Totals::default();
        assert_eq!(t.average_cost(), None);
        let mut a = rec("a", "m", Some("0.00001"), &[]);
        a.latency = Some(0.25);
        let mut b = rec("a", "m", None, &[]);
        b.time = a.time - chrono::Duration::seconds(5);
        b.latency = Some(0.000_000_4);
        let c = rec("a", "m", Some("0"), &[]);
        for r in [&a, &b, &c] {
            t.add(r);
        }
        assert_eq!(
            (t.first_call, t.last_call),
            (Some(b.time), Some(c.time.max(a.time)))
        );
        assert_eq!((t.latency_micros, t.timed_calls), (250_000, 2));
        assert_eq!((t.priced_calls(), t.unpriced_calls), (2, 1));
        assert_eq!(
            t.average_cost(),
            Some(Decimal::from_str("0.000005").unwrap())
        );
        assert_eq!(latency_micros(f64::NAN), None);
        assert_eq!(latency_micros(-1.0), None);
    }

    #[test]
    fn requested_model_is_a_dimension() {
        let mut l = Ledger::new(None);
        let mut r = rec("a", "gpt-4o-2024-08-06", Some("0.1"), &[]);
        r.requested_model = Some("gpt-4o".into());
        l.push(r);
        l.push(rec("a", "gpt-4o-2024-11-20", Some("0.1"), &[]));
        let dim = Dimension::parse("requested_model", &[]).unwrap();
        let rows = l.summary(&[dim]);
        let keys: Vec<_> = rows.iter().map(|r| r.key[0].clone()).collect();
        assert_eq!(keys, vec![None, Some("gpt-4o".to_string())]);
    }

    #[test]
    fn tags_explode_and_max_records_keeps_totals() {
        let mut l = Ledger::new(Some(2));
        l.push(rec("a", "m", Some("1"), &["x", "y"]));
        l.push(rec("a", "m", Some("1"), &["x"]));
        l.push(rec("a", "m", Some("1"), &[]));
        assert_eq!(l.records().len(), 2);
        assert_eq!(l.dropped(), 1);
        assert_eq!(l.totals().cost, Decimal::from(3));
        let rows = l.summary(&[Dimension::Tag]);
        assert_eq!(rows.len(), 2);
    }
}
