//! Aggregates for monitoring systems (Prometheus, OpenTelemetry), kept per call in the core so
//! that an exporter only reads them when it is collected.
//!
//! A [`Metrics`] takes each finished [`CallRecord`] (from the tracker's end path, or from a
//! ledger file's follow cursor) and keeps, per label set:
//! - counters: calls by status and usage source, tokens by kind, the exact cost, unpriced
//!   calls, and a duration histogram (bucket counters, exact microsecond sum);
//! - optionally a bounded buffer of per-call [`Observation`]s, for OpenTelemetry histograms
//!   (whose API takes single values only): the exporter drains it when it is collected.
//!
//! Label values are capped so that a `user_id` label can never explode a monitoring server:
//! each label keeps at most `top_n` distinct values, the first ones seen, and every later
//! value is counted under [`OTHER`]. The first ones seen, not the largest: a counter moved out
//! of `other` into its own series would make `other` go down, and a counter never goes down.

pub mod budgets;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::ledger::{latency_micros, CallRecord, Dimension};
use crate::money::Decimal;
use crate::usage::{Usage, UsageSource};

/// The label value every value past a label's cap is counted under.
pub const OTHER: &str = "other";
/// Distinct values each label keeps by default.
pub const DEFAULT_TOP_N: usize = 20;
/// Duration bucket bounds, in seconds: the ones the OpenTelemetry GenAI conventions advise for
/// `gen_ai.client.operation.duration`.
pub const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// Observations buffered at most between two collections; past this they are dropped (and
/// counted): an OpenTelemetry meter provider that is never collected must not grow memory.
pub const DEFAULT_MAX_OBSERVATIONS: usize = 100_000;

/// A call's outcome, as the `status` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Ended without error.
    Ok,
    /// Ended with an error.
    Error,
    /// Refused at its start by a blocking budget (never sent).
    Refused,
}

impl Status {
    /// Every status, in label order.
    pub const ALL: [Status; 3] = [Status::Ok, Status::Error, Status::Refused];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Refused => "refused",
        }
    }
}

/// Every usage source, in label order.
pub const USAGE_SOURCES: [UsageSource; 4] = [
    UsageSource::Provider,
    UsageSource::Estimated,
    UsageSource::Cache,
    UsageSource::None,
];

fn source_index(s: UsageSource) -> usize {
    match s {
        UsageSource::Provider => 0,
        UsageSource::Estimated => 1,
        UsageSource::Cache => 2,
        UsageSource::None => 3,
    }
}

/// What a [`Metrics`] keeps.
#[derive(Clone, Debug)]
pub struct MetricsConfig {
    /// Labels beyond `model` and `provider`: captured metadata keys (`feature`, `user_id`) or
    /// single-valued built-in dimensions (`root_run_name`, `service_tier`, ...).
    pub labels: Vec<String>,
    /// Distinct values each label keeps (model and provider included); the rest are
    /// [`OTHER`].
    pub top_n: usize,
    /// Whether to keep the per-label-set counters (Prometheus).
    pub series: bool,
    /// Per-call observations buffered at most (OpenTelemetry); 0: none kept.
    pub max_observations: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            labels: Vec::new(),
            top_n: DEFAULT_TOP_N,
            series: true,
            max_observations: 0,
        }
    }
}

/// Bucket counters of durations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Calls per bucket of [`DURATION_BUCKETS`] (not cumulative), then one past the last bound.
    pub buckets: Vec<u64>,
    /// The exact sum, in whole microseconds.
    pub sum_micros: u64,
    /// Calls counted.
    pub count: u64,
}

impl Histogram {
    fn observe(&mut self, micros: u64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; DURATION_BUCKETS.len() + 1];
        }
        // Bounds are inclusive upper bounds (`le`), compared in microseconds, exactly.
        let i = DURATION_BUCKETS
            .iter()
            .position(|b| micros <= bound_micros(*b))
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum_micros = self.sum_micros.saturating_add(micros);
        self.count += 1;
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn bound_micros(seconds: f64) -> u64 {
    (seconds * 1e6).round() as u64
}

/// The counters of one label set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Series {
    /// Calls by [`Status::ALL`] x [`USAGE_SOURCES`] (status-major).
    pub calls: [u64; 12],
    /// Tokens, summed (LLM-cache hits excluded, as the tracker's totals).
    pub usage: Usage,
    /// The exact sum of the known costs.
    pub cost: Decimal,
    /// Calls whose cost is unknown (as the tracker's totals count them).
    pub unpriced: u64,
    /// Durations of the calls whose start was seen.
    pub duration: Histogram,
}

impl Series {
    /// Calls with `status` and `source`.
    pub fn calls_of(&self, status: Status, source: UsageSource) -> u64 {
        self.calls[status as usize * 4 + source_index(source)]
    }

    fn add(&mut self, r: &CallRecord) {
        let status = if r.error.is_some() {
            Status::Error
        } else {
            Status::Ok
        };
        self.calls[status as usize * 4 + source_index(r.usage_source)] += 1;
        if r.usage_source != UsageSource::Cache {
            self.usage.add(&r.usage);
        }
        match &r.cost {
            Some(c) => self.cost += c.total,
            // As `Totals::add`: a failed call that reported no usage billed nothing known.
            None if r.error.is_some() && r.usage.is_empty() => {}
            None => self.unpriced += 1,
        }
        if let Some(us) = r.latency.and_then(latency_micros) {
            self.duration.observe(us);
        }
    }
}

/// What kind of request a call was, as `gen_ai.operation.name` says it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Operation {
    /// A chat model's call (LangChain's `on_chat_model_start`).
    #[default]
    Chat,
    /// A completion model's call on text prompts (LangChain's `on_llm_start`).
    TextCompletion,
}

impl Operation {
    /// The GenAI conventions' `gen_ai.operation.name` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::TextCompletion => "text_completion",
        }
    }
}

/// One call, as OpenTelemetry's histograms record it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// `gen_ai.operation.name`.
    pub operation: Operation,
    /// `gen_ai.provider.name` (LangChain's provider name).
    pub provider: Option<Arc<str>>,
    /// `gen_ai.request.model`.
    pub request_model: Option<Arc<str>>,
    /// `gen_ai.response.model`.
    pub response_model: Option<Arc<str>>,
    /// `error.type`, for failed calls (the error's type name).
    pub error_type: Option<String>,
    /// Token counts (`None` for an LLM-cache hit or a call without usage: nothing consumed).
    pub usage: Option<Usage>,
    /// The exact cost (`None`: unknown).
    pub cost: Option<Decimal>,
    /// Seconds from start to end, when the start was seen.
    pub duration: Option<f64>,
}

impl Observation {
    fn of(r: &CallRecord, operation: Operation) -> Observation {
        Observation {
            operation,
            provider: r.provider.clone(),
            request_model: r.requested_model.clone(),
            response_model: r.model.clone(),
            error_type: r
                .error
                .as_deref()
                .map(|e| e.split(':').next().unwrap_or(e).trim().to_string()),
            usage: (!matches!(r.usage_source, UsageSource::Cache | UsageSource::None))
                .then_some(r.usage),
            cost: r.cost.as_ref().map(|c| c.total),
            duration: r.latency.filter(|l| l.is_finite() && *l >= 0.0),
        }
    }
}

/// Admitted values of one label: at most `top_n`, shared as `Arc`s by every series key.
#[derive(Debug, Default)]
struct Admitted {
    values: HashSet<Arc<str>>,
}

struct Inner {
    admitted: Vec<Admitted>,
    series: HashMap<Vec<Arc<str>>, Series>,
    observations: Vec<Observation>,
    dropped_observations: u64,
    empty: Arc<str>,
    other: Arc<str>,
}

impl Inner {
    /// The capped value of label `i`: its own while it fits in the cap, else `other`.
    fn capped(&mut self, i: usize, value: Option<&str>, top_n: usize) -> Arc<str> {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return self.empty.clone();
        };
        let admitted = &mut self.admitted[i].values;
        if let Some(a) = admitted.get(v) {
            return a.clone();
        }
        if admitted.len() < top_n {
            let a: Arc<str> = Arc::from(v);
            admitted.insert(a.clone());
            return a;
        }
        self.other.clone()
    }
}

/// A snapshot of one series, with its label values (model, provider, then the extra labels).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesView {
    /// Label values; `""` when a call had none.
    pub labels: Vec<Arc<str>>,
    /// The counters.
    pub series: Series,
}

/// The monitoring aggregates of every call it was given. Thread-safe.
pub struct Metrics {
    config: MetricsConfig,
    dims: Vec<Dimension>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Dimensions a label can be (single-valued, and not `model` / `provider`, always there).
fn label_dimension(name: &str) -> Result<Dimension> {
    let dims = crate::store::read::parse_dims(&[name.to_string()])?;
    match dims.into_iter().next() {
        Some(Dimension::Tag) => Err(Error::InvalidArgument(
            "'tag' cannot be a metrics label: a call has several tags, and it would count in \
             each; budget or summarise by tag instead"
                .into(),
        )),
        Some(Dimension::Model | Dimension::Provider) => Err(Error::InvalidArgument(format!(
            "'{name}' is always a metrics label; list only the extra ones"
        ))),
        Some(d) => Ok(d),
        None => Err(Error::InvalidArgument("an empty label name".into())),
    }
}

impl Metrics {
    /// Aggregates with `config`. Label names must be metadata keys or built-in dimensions.
    pub fn new(config: MetricsConfig) -> Result<Metrics> {
        if config.top_n == 0 {
            return Err(Error::InvalidArgument(
                "top_n must be at least 1 (values per label kept before 'other')".into(),
            ));
        }
        let dims = config
            .labels
            .iter()
            .map(|l| label_dimension(l))
            .collect::<Result<Vec<_>>>()?;
        let mut seen = HashSet::new();
        if let Some(dup) = config.labels.iter().find(|l| !seen.insert(l.as_str())) {
            return Err(Error::InvalidArgument(format!(
                "label '{dup}' is listed twice"
            )));
        }
        Ok(Metrics {
            inner: Mutex::new(Inner {
                admitted: (0..dims.len() + 2).map(|_| Admitted::default()).collect(),
                series: HashMap::new(),
                observations: Vec::new(),
                dropped_observations: 0,
                empty: Arc::from(""),
                other: Arc::from(OTHER),
            }),
            dims,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MetricsConfig {
        &self.config
    }

    /// The metadata keys among the labels (a tracker must capture them).
    pub fn metadata_keys(&self) -> impl Iterator<Item = &str> {
        self.dims.iter().filter_map(|d| match d {
            Dimension::Metadata(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// Counts one finished call (a chat call, for the observations: a ledger does not say).
    pub fn add(&self, r: &CallRecord) {
        self.add_call(r, Operation::Chat);
    }

    /// Counts one finished call of kind `operation`.
    pub fn add_call(&self, r: &CallRecord, operation: Operation) {
        let top_n = self.config.top_n;
        // Values are read before the lock (they may allocate); the lock only caps and adds.
        let extra: Vec<Option<String>> = self.dims.iter().map(|d| d.clone_value_of(r)).collect();
        let mut inner = self.inner.lock();
        if self.config.series {
            let key = Self::key(
                &mut inner,
                r.model.as_deref(),
                r.provider.as_deref(),
                &extra,
                top_n,
            );
            inner.series.entry(key).or_default().add(r);
        }
        if self.config.max_observations > 0 {
            if inner.observations.len() < self.config.max_observations {
                inner.observations.push(Observation::of(r, operation));
            } else {
                inner.dropped_observations += 1;
            }
        }
    }

    /// Counts one call a budget refused at its start (`attribution` as the start captured it).
    pub fn refused(
        &self,
        model: Option<&str>,
        provider: Option<&str>,
        attribution: &[(Arc<str>, String)],
    ) {
        if !self.config.series {
            return;
        }
        let extra: Vec<Option<String>> = self
            .dims
            .iter()
            .map(|d| match d {
                Dimension::Metadata(k) => attribution
                    .iter()
                    .find(|(ak, _)| ak.as_ref() == k.as_str())
                    .map(|(_, v)| v.clone()),
                _ => None,
            })
            .collect();
        let mut inner = self.inner.lock();
        let key = Self::key(&mut inner, model, provider, &extra, self.config.top_n);
        let s = inner.series.entry(key).or_default();
        s.calls[Status::Refused as usize * 4 + source_index(UsageSource::None)] += 1;
    }

    fn key(
        inner: &mut Inner,
        model: Option<&str>,
        provider: Option<&str>,
        extra: &[Option<String>],
        top_n: usize,
    ) -> Vec<Arc<str>> {
        let mut key = Vec::with_capacity(extra.len() + 2);
        key.push(inner.capped(0, model, top_n));
        key.push(inner.capped(1, provider, top_n));
        for (i, v) in extra.iter().enumerate() {
            key.push(inner.capped(i + 2, v.as_deref(), top_n));
        }
        key
    }

    /// Every series as of now, sorted by label values.
    pub fn series(&self) -> Vec<SeriesView> {
        let mut v: Vec<SeriesView> = self
            .inner
            .lock()
            .series
            .iter()
            .map(|(k, s)| SeriesView {
                labels: k.clone(),
                series: s.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Takes the buffered observations, and how many were dropped since the last take.
    pub fn take_observations(&self) -> (Vec<Observation>, u64) {
        let mut inner = self.inner.lock();
        let dropped = std::mem::take(&mut inner.dropped_observations);
        (std::mem::take(&mut inner.observations), dropped)
    }

    /// Forgets everything (a followed ledger that went back is counted again).
    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.series.clear();
        inner.observations.clear();
        inner.dropped_observations = 0;
        for a in &mut inner.admitted {
            a.values.clear();
        }
    }
}

impl Dimension {
    /// The single value of this dimension for `r` (the first, for `tag`).
    fn clone_value_of(&self, r: &CallRecord) -> Option<String> {
        r.dimension(self).into_iter().next().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::tests::record;
    use std::str::FromStr;

    fn metrics(labels: &[&str], top_n: usize) -> Metrics {
        Metrics::new(MetricsConfig {
            labels: labels.iter().map(|s| (*s).to_string()).collect(),
            top_n,
            series: true,
            max_observations: 10,
        })
        .unwrap()
    }

    #[test]
    fn counts_equal_the_totals_and_histogram_is_exact() {
        let m = metrics(&[], 20);
        let mut totals = crate::ledger::Totals::default();
        let mut a = record(1, "0.5");
        a.latency = Some(0.32);
        let mut b = record(2, "0.25");
        b.latency = Some(100.0);
        b.error = Some("RateLimitError: slow down".into());
        b.model.clone_from(&a.model);
        for r in [&a, &b] {
            m.add(r);
            totals.add(r);
        }
        let all = m.series();
        assert_eq!(all.len(), 1);
        let s = &all[0].series;
        assert_eq!(s.cost, totals.cost);
        assert_eq!(s.usage, totals.usage);
        assert_eq!(s.calls_of(Status::Ok, UsageSource::Provider), 1);
        assert_eq!(s.calls_of(Status::Error, UsageSource::Provider), 1);
        // 0.32 s sits in the bucket `le=0.32` (inclusive); 100 s past the last bound.
        assert_eq!(s.duration.buckets[5], 1);
        assert_eq!(s.duration.buckets[DURATION_BUCKETS.len()], 1);
        assert_eq!((s.duration.sum_micros, s.duration.count), (100_320_000, 2));
        let (obs, dropped) = m.take_observations();
        assert_eq!((obs.len(), dropped), (2, 0));
        assert_eq!(obs[1].error_type.as_deref(), Some("RateLimitError"));
        assert_eq!(obs[0].cost, Some(Decimal::from_str("0.5").unwrap()));
        assert!(m.take_observations().0.is_empty());
    }

    #[test]
    fn label_values_are_capped_to_the_first_n_and_the_rest_are_other() {
        let m = metrics(&["user_id"], 3);
        let mut total = Decimal::ZERO;
        for i in 0..1000u128 {
            let mut r = record(i, "0.001");
            r.attribution = vec![("user_id".into(), format!("u{}", i % 500))];
            r.model = Some("m".into());
            total += Decimal::from_str("0.001").unwrap();
            m.add(&r);
        }
        let all = m.series();
        let users: Vec<&str> = all.iter().map(|s| s.labels[2].as_ref()).collect();
        assert_eq!(users, vec!["other", "u0", "u1", "u2"]);
        let sum: Decimal = all.iter().map(|s| s.series.cost).sum();
        assert_eq!(sum, total);
        let other = &all[0].series;
        assert_eq!(other.calls_of(Status::Ok, UsageSource::Provider), 994);
    }

    #[test]
    fn refused_calls_and_bad_labels() {
        let m = metrics(&["feature"], 5);
        m.refused(
            Some("gpt-4o"),
            Some("openai"),
            &[("feature".into(), "chat".into())],
        );
        let s = m.series();
        assert_eq!(
            s[0].labels.iter().map(AsRef::as_ref).collect::<Vec<&str>>(),
            ["gpt-4o", "openai", "chat"]
        );
        assert_eq!(s[0].series.calls_of(Status::Refused, UsageSource::None), 1);
        for bad in ["tag", "model", ""] {
            let e = Metrics::new(MetricsConfig {
                labels: vec![bad.into()],
                ..MetricsConfig::default()
            });
            assert!(e.is_err(), "{bad}");
        }
        assert!(Metrics::new(MetricsConfig {
            top_n: 0,
            ..MetricsConfig::default()
        })
        .is_err());
    }

    #[test]
    fn observations_are_bounded() {
        let m = metrics(&[], 20);
        for i in 0..15 {
            m.add(&record(i, "1"));
        }
        let (obs, dropped) = m.take_observations();
        assert_eq!((obs.len(), dropped), (10, 5));
    }
}
