//! Call records and their aggregates: exact totals, and group-by summaries over any
//! attribution dimension.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::catalog::CostBreakdown;
use crate::error::{Error, Result};
use crate::money::Decimal;
use crate::usage::{Usage, UsageSource};

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
    /// o200k_base x 1.20` for a model without a public tokenizer).
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
}

impl CallRecord {
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
    /// `model`
    Model,
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
    /// Calls answered from LangChain's LLM cache.
    pub llm_cache_hits: u64,
    /// Calls whose usage was estimated.
    pub estimated_calls: u64,
}

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
            _ => {}
        }
        if r.usage_source != UsageSource::Cache {
            self.usage.add(&r.usage);
        }
        match &r.cost {
            Some(c) => self.cost += c.total,
            // A failed call that reported no usage billed nothing we know of: not "unpriced".
            None if r.error.is_some() && r.usage.is_empty() => {}
            None => self.unpriced_calls += 1,
        }
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
        rows
    }
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
