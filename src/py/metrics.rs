//! `llmledger._core.Metrics`: the monitoring aggregates (`src/metrics.rs`) that the Prometheus
//! and OpenTelemetry adapters read when they are collected. Fed by a tracker's end path (given
//! to `Tracker(metrics=[...])`) or by a ledger's follow cursor (`Metrics(ledger=...)`: a
//! SQLite or JSONL file, or a `postgresql://` URL), so one exporter covers every process
//! writing the ledger.

// PyO3 hands extracted arguments (paths, lists) over by value.
#![allow(clippy::needless_pass_by_value)]

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::ledger::location;
use super::log::log_warnings;
use crate::digest::BudgetSpec;
use crate::metrics::budgets::LedgerBudgets;
use crate::metrics::{Metrics, MetricsConfig, Status, DURATION_BUCKETS, USAGE_SOURCES};
use crate::store::follow::Follower;
use crate::usage::Usage;

/// Monitoring aggregates: counters per label set (model, provider, extra labels, each capped
/// to its first `top_n` values, the rest `other`), duration bucket counters, and optionally a
/// bounded buffer of per-call observations (OpenTelemetry histograms).
#[pyclass(frozen, name = "Metrics", module = "llmledger._core")]
pub struct PyMetrics {
    core: Arc<Metrics>,
    /// The ledger followed, for a file exporter (`llmledger metrics LEDGER`).
    follower: Option<Mutex<Follower>>,
    /// Budgets measured against the followed ledger (`llmledger metrics --budget 10/day`).
    budgets: Mutex<LedgerBudgets>,
}

impl PyMetrics {
    /// The core aggregates (a tracker counts its calls in them).
    pub(super) fn core(&self) -> &Arc<Metrics> {
        &self.core
    }

    fn read_new(&self) -> crate::Result<(u64, Vec<String>)> {
        let Some(f) = &self.follower else {
            return Ok((0, Vec::new()));
        };
        let mut f = f.lock();
        let core = &self.core;
        let mut budgets = self.budgets.lock();
        let mut add = |r: crate::ledger::CallRecord| {
            core.add(&r);
            budgets.add(&r);
        };
        let mut poll = f.poll(&mut add)?;
        if poll.reset {
            // The file went back: count it again from scratch (a counter reset, which
            // Prometheus' rate() handles).
            core.clear();
            budgets.clear();
            let again = f.poll(&mut |r| {
                core.add(&r);
                budgets.add(&r);
            })?;
            poll.records = again.records;
            poll.warnings.extend(again.warnings);
        }
        Ok((poll.records, poll.warnings))
    }
}

fn usage_tuple(py: Python<'_>, u: &Usage) -> PyResult<Py<PyTuple>> {
    Ok(PyTuple::new(
        py,
        [u.input, u.cache_read, u.cache_write, u.output, u.reasoning],
    )?
    .unbind())
}

#[pymethods]
impl PyMetrics {
    /// Aggregates with extra `labels` (captured metadata keys or built-in dimensions), each
    /// keeping `top_n` values; `series`: keep the counters (Prometheus); `max_observations`:
    /// per-call observations buffered at most (OpenTelemetry; 0: none); `ledger`: follow this
    /// ledger (a SQLite or JSONL path, or a `postgresql://` URL; it may not exist yet)
    /// instead of a tracker, read by `poll()`.
    #[new]
    #[pyo3(signature = (*, labels=None, top_n=20, series=true, max_observations=0, ledger=None, budgets=None))]
    fn new(
        labels: Option<Vec<String>>,
        top_n: usize,
        series: bool,
        max_observations: usize,
        ledger: Option<&Bound<'_, PyAny>>,
        budgets: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let follower = ledger
            .filter(|l| !l.is_none())
            .map(|l| location(l).map(|at| Mutex::new(Follower::at(&at))))
            .transpose()?;
        let budgets = budgets
            .unwrap_or_default()
            .iter()
            .map(|b| BudgetSpec::parse(b))
            .collect::<crate::Result<Vec<_>>>()?;
        if !budgets.is_empty() && follower.is_none() {
            return Err(crate::Error::InvalidArgument(
                "budgets= are measured against a followed ledger: give ledger= too (a \
                 tracker's own budgets are exported from the tracker)"
                    .into(),
            )
            .into());
        }
        // The signature's literal default is the core's (a path there would hide it from
        // the stub checker).
        debug_assert_eq!(crate::metrics::DEFAULT_TOP_N, 20);
        let core = Metrics::new(MetricsConfig {
            labels: labels.unwrap_or_default(),
            top_n,
            series,
            max_observations,
        })?;
        Ok(PyMetrics {
            core: Arc::new(core),
            follower,
            budgets: Mutex::new(LedgerBudgets::new(budgets)),
        })
    }

    /// Reads the records added to the followed ledger since the last poll (no-op without a
    /// ledger); returns how many were counted. Bad lines are logged on the `llmledger` logger.
    fn poll(&self, py: Python<'_>) -> PyResult<u64> {
        let (n, warnings) = py.detach(|| self.read_new())?;
        log_warnings(py, &warnings);
        Ok(n)
    }

    /// The `budgets=` as of now, measured against what `poll()` read: one dict per budget
    /// with `budget` (as given), `window`, `limit`, `spent`, `remaining` (exact `Decimal`s)
    /// and `window_end` (an aware `datetime`: when a calendar window resets, or when a
    /// rolling window's oldest spend leaves it; None otherwise).
    fn budget_gauges<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let gauges = self.budgets.lock().gauges(chrono::Utc::now());
        let out = PyList::empty(py);
        for g in gauges {
            let d = PyDict::new(py);
            d.set_item("budget", g.name)?;
            d.set_item("window", g.window)?;
            d.set_item("limit", g.limit)?;
            d.set_item("spent", g.spent)?;
            d.set_item("remaining", g.remaining)?;
            d.set_item("window_end", g.window_end)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// The followed ledger's name (its path, or its URL without the password); None for a
    /// tracker's metrics.
    #[getter]
    fn ledger(&self) -> Option<String> {
        self.follower
            .as_ref()
            .map(|f| f.lock().path().display().to_string())
    }

    /// The extra label names, in order (after `model` and `provider`).
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.core.config().labels.clone()
    }

    /// Values each label keeps before `other`.
    #[getter]
    fn top_n(&self) -> usize {
        self.core.config().top_n
    }

    /// The metadata keys among the labels (the tracker captures them).
    #[getter]
    fn metadata_keys(&self) -> Vec<String> {
        self.core.metadata_keys().map(str::to_string).collect()
    }

    /// Duration bucket upper bounds, in seconds.
    #[staticmethod]
    fn duration_buckets() -> Vec<f64> {
        DURATION_BUCKETS.to_vec()
    }

    /// Every series: `(labels, calls, tokens, cost, unpriced, buckets, duration_sum, count)`
    /// with `labels` the values of model, provider and the extra labels (`""`: none),
    /// `calls` a list of `(status, usage_source, n)` for the non-zero ones, `tokens`
    /// `(input, cached, cache_write, output, reasoning)`, `cost` the exact `Decimal`,
    /// `buckets` cumulative counts per bound of `duration_buckets()` then `+Inf`, and the
    /// duration sum in seconds.
    fn series<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let all = self.core.series();
        let out = PyList::empty(py);
        for v in all {
            let s = &v.series;
            let labels: Vec<&str> = v.labels.iter().map(AsRef::as_ref).collect();
            let calls = PyList::empty(py);
            for st in Status::ALL {
                for src in USAGE_SOURCES {
                    let n = s.calls_of(st, src);
                    if n > 0 {
                        calls.append((st.as_str(), src.as_str(), n))?;
                    }
                }
            }
            let mut cumulative = Vec::with_capacity(s.duration.buckets.len());
            let mut acc = 0u64;
            for b in &s.duration.buckets {
                acc += b;
                cumulative.push(acc);
            }
            #[allow(clippy::cast_precision_loss)] // microseconds: exact below 2^53
            let sum = s.duration.sum_micros as f64 / 1e6;
            out.append((
                PyTuple::new(py, labels)?,
                calls,
                usage_tuple(py, &s.usage)?,
                s.cost.normalize(),
                s.unpriced,
                cumulative,
                sum,
                s.duration.count,
            ))?;
        }
        Ok(out)
    }

    /// Takes the per-call observations buffered since the last take: `(observations,
    /// dropped)`, each `(operation, provider, request_model, response_model, error_type, tokens, cost,
    /// duration)` with `tokens` as in `series()` or None (nothing consumed), `cost` a
    /// `Decimal` or None (unknown), `duration` seconds or None (start not seen).
    fn take_observations<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, u64)> {
        let (obs, dropped) = self.core.take_observations();
        let out = PyList::empty(py);
        for o in obs {
            let usage = o.usage.as_ref().map(|u| usage_tuple(py, u)).transpose()?;
            out.append((
                o.operation.as_str(),
                o.provider.as_deref(),
                o.request_model.as_deref(),
                o.response_model.as_deref(),
                o.error_type,
                usage,
                o.cost.map(|c| c.normalize()),
                o.duration,
            ))?;
        }
        Ok((out, dropped))
    }
}
