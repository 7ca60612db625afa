//! Bindings of the presentation digest: `LedgerFollower` (what `llmledger watch` and
//! `llmledger.live` redraw from: the rows added to a ledger, or the calls a tracker recorded,
//! since the last poll) and `ledger_digest` (what the HTML report draws). Views are JSON text
//! whose amounts are the core's exact decimal strings. File reads run with the GIL released.

// PyO3 hands extracted arguments (paths, lists) over by value.
#![allow(clippy::needless_pass_by_value)]

use std::sync::Arc;

use chrono::Utc;
use parking_lot::Mutex;
use pyo3::prelude::*;

use super::ledger::location;
use super::log::log_warnings;
use super::tracker::PyTracker;
use crate::digest::{BudgetSpec, Digest, DigestConfig};
use crate::error::Error;
use crate::store::follow::Follower;
use crate::store::read::{for_each, parse_time_bound};
use crate::store::TimeRange;
use crate::Tracker;

/// Where a follower's records come from.
enum Source {
    /// A ledger file, by its cursor.
    Ledger(Follower),
    /// A tracker's kept records; `seen` counts every record ever pushed that was read.
    Tracker { tracker: Arc<Tracker>, seen: u64 },
}

struct State {
    source: Source,
    digest: Digest,
}

fn config(
    by: Option<Vec<String>>,
    stack_by: Option<String>,
    budgets: Option<Vec<String>>,
    top: usize,
) -> PyResult<DigestConfig> {
    Ok(DigestConfig {
        by: by.unwrap_or_else(|| vec!["model".into()]),
        stack_by,
        budgets: budgets
            .unwrap_or_default()
            .iter()
            .map(|b| BudgetSpec::parse(b))
            .collect::<crate::Result<_>>()?,
        top,
        feed: 12,
    })
}

fn range(since: Option<&str>, until: Option<&str>) -> PyResult<TimeRange> {
    let now = Utc::now();
    Ok(TimeRange {
        since: since.map(|s| parse_time_bound(s, now, false)).transpose()?,
        until: until.map(|s| parse_time_bound(s, now, true)).transpose()?,
    })
}

fn json(v: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| Error::InvalidArgument(e.to_string()).into())
}

/// Follows a ledger file (or a tracker) and keeps the dashboard's exact aggregates.
#[pyclass(frozen, name = "LedgerFollower", module = "llmledger._core")]
pub struct PyFollower {
    state: Mutex<State>,
    config: DigestConfig,
    range: TimeRange,
}

impl PyFollower {
    /// Reads what is new; `(records, warnings)`.
    fn read_new(&self) -> crate::Result<(u64, Vec<String>)> {
        let mut st = self.state.lock();
        let State { source, digest } = &mut *st;
        let range = self.range;
        match source {
            Source::Ledger(f) => {
                let mut added = 0u64;
                let mut poll = f.poll(&mut |r| {
                    if range.contains(&r.time) {
                        digest.add(r);
                        added += 1;
                    }
                })?;
                if poll.reset {
                    // The file went back: count it again from scratch.
                    *digest = Digest::new(self.config.clone())?;
                    let again = f.poll(&mut |r| {
                        if range.contains(&r.time) {
                            digest.add(r);
                        }
                    })?;
                    poll.warnings.extend(again.warnings);
                }
                Ok((added, poll.warnings))
            }
            Source::Tracker { tracker, seen } => {
                // Without max_records nothing is dropped and this is exact; with it, a call
                // pushed between the two reads may be counted twice or missed.
                let dropped = tracker.dropped_records();
                let records = tracker.records();
                let total = dropped + records.len() as u64;
                let skip = usize::try_from(seen.saturating_sub(dropped)).unwrap_or(usize::MAX);
                let mut added = 0u64;
                for r in records.into_iter().skip(skip) {
                    if range.contains(&r.time) {
                        digest.add(r);
                        added += 1;
                    }
                }
                *seen = total;
                Ok((added, Vec::new()))
            }
        }
    }
}

#[pymethods]
impl PyFollower {
    /// Follows the ledger at `path` (SQLite or JSONL, or a postgresql:// URL; it may not
    /// exist yet). `by`: a top list
    /// per dimension (default `["model"]`); `stack_by`: what spend over time is stacked by;
    /// `budgets`: `["10/day", ...]`; `since` / `until`: text bounds as `llmledger report`
    /// takes them.
    #[new]
    #[pyo3(signature = (path, *, by=None, stack_by=None, budgets=None, since=None, until=None, top=10))]
    fn new(
        path: &Bound<'_, PyAny>,
        by: Option<Vec<String>>,
        stack_by: Option<String>,
        budgets: Option<Vec<String>>,
        since: Option<&str>,
        until: Option<&str>,
        top: usize,
    ) -> PyResult<Self> {
        let config = config(by, stack_by, budgets, top)?;
        Ok(PyFollower {
            state: Mutex::new(State {
                source: Source::Ledger(Follower::at(&location(path)?)),
                digest: Digest::new(config.clone())?,
            }),
            config,
            range: range(since, until)?,
        })
    }

    /// Follows the calls `tracker` records (in memory; what `llmledger.live` shows).
    #[staticmethod]
    #[pyo3(signature = (tracker, *, by=None, stack_by=None, budgets=None, top=10))]
    fn of_tracker(
        tracker: PyRef<'_, PyTracker>,
        by: Option<Vec<String>>,
        stack_by: Option<String>,
        budgets: Option<Vec<String>>,
        top: usize,
    ) -> PyResult<Self> {
        let config = config(by, stack_by, budgets, top)?;
        Ok(PyFollower {
            state: Mutex::new(State {
                source: Source::Tracker {
                    tracker: tracker.core().clone(),
                    seen: 0,
                },
                digest: Digest::new(config.clone())?,
            }),
            config,
            range: TimeRange::default(),
        })
    }

    /// Reads the records added since the last poll; returns how many were counted. Bad
    /// ledger lines are logged on the `llmledger` logger.
    fn poll(&self, py: Python<'_>) -> PyResult<u64> {
        let (n, warnings) = py.detach(|| self.read_new())?;
        log_warnings(py, &warnings);
        Ok(n)
    }

    /// The view as of now, as JSON text (budget thresholds crossed since the last view are
    /// fired first and listed under `alerts`).
    fn view(&self, py: Python<'_>) -> PyResult<String> {
        let now = Utc::now();
        // Top lists over many groups take a while: built without the GIL.
        let v = py.detach(|| {
            let mut st = self.state.lock();
            st.digest.advance(now);
            st.digest.view(now)
        });
        json(&v)
    }

    /// Calls counted so far.
    #[getter]
    fn calls(&self) -> u64 {
        self.state.lock().digest.calls()
    }
}

/// The HTML report's aggregates of a ledger, as JSON text: totals, top lists per `by`
/// dimension, the most expensive root runs and calls, spend and tokens over time stacked by
/// `stack_by` (default: the first of `by`), and `budgets` (`["10/day"]`) as of now.
#[pyfunction]
#[pyo3(signature = (path, *, by=None, stack_by=None, budgets=None, since=None, until=None, top=10))]
#[allow(clippy::too_many_arguments)]
pub fn ledger_digest(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    by: Option<Vec<String>>,
    stack_by: Option<String>,
    budgets: Option<Vec<String>>,
    since: Option<&str>,
    until: Option<&str>,
    top: usize,
) -> PyResult<String> {
    let mut digest = Digest::new(config(by, stack_by, budgets, top)?)?;
    let range = range(since, until)?;
    let mut warnings = Vec::new();
    let location = location(path)?;
    py.detach(|| {
        for_each(&location, &range, &mut warnings, &mut |_| {}, &mut |r| {
            digest.add(r);
            true
        })
    })?;
    log_warnings(py, &warnings);
    let now = Utc::now();
    digest.advance(now);
    json(&digest.view(now))
}
