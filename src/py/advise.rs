//! The advisor's bindings: `ledger_advise` (what `llmledger advise` prints) and the advice of
//! a tracker (`tracker.advise()`, and the live hints of `CostTracker(advise=True)`).

use std::str::FromStr;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::catalog::catalog_with;
use super::ledger::{location, progress_fn, range};
use super::log::log_warnings;
use crate::advise::{self, Advice, Options};
use crate::money::Decimal;

/// The advisor's options from the Python arguments.
pub(super) fn options(
    min_saving: Option<&Bound<'_, PyAny>>,
    batch_keywords: Option<Vec<String>>,
) -> PyResult<Options> {
    let mut o = Options::default();
    if let Some(m) = min_saving.filter(|m| !m.is_none()) {
        let text = m.str()?.to_string();
        o.min_saving = Decimal::from_str(text.trim())
            .ok()
            .filter(|d| !d.is_sign_negative())
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "min_saving must be a non-negative amount in USD (0.01), not '{text}'"
                ))
            })?;
    }
    if let Some(k) = batch_keywords {
        o.batch_keywords.extend(k);
    }
    Ok(o)
}

/// The advice as Python objects (through its JSON: money stays exact decimal strings).
pub(super) fn advice_object<'py>(py: Python<'py>, advice: &Advice) -> PyResult<Bound<'py, PyAny>> {
    let text = advice.to_json().to_string();
    py.import("json")?.call_method1("loads", (text,))
}

/// What to change and how many dollars it is worth, computed from a ledger's own calls: every
/// figure re-prices the recorded token counts with the catalog (exact decimals). `ledger` is
/// a path or URL; `since` / `until` as for `ledger_summary`; `min_saving` (USD, default 0.01)
/// drops smaller money findings; `prices` layers prices on the catalog as `CostTracker`'s;
/// `batch_keywords` adds words that mark batch work in root run names and tags. Returns
/// `{"window": {...}, "findings": [...]}`, findings ranked by saving, money as decimal
/// strings (`docs/advise.md`).
///
/// Example:
///
/// ```python
/// a = ledger_advise("costs.db", since="30d")
/// [(f["rule"], f["monthly_saving_usd"]) for f in a["findings"]]
/// ```
#[pyfunction]
#[pyo3(signature = (ledger, *, since=None, until=None, min_saving=None, prices=None, batch_keywords=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn ledger_advise<'py>(
    py: Python<'py>,
    ledger: &Bound<'py, PyAny>,
    since: Option<&Bound<'py, PyAny>>,
    until: Option<&Bound<'py, PyAny>>,
    min_saving: Option<&Bound<'py, PyAny>>,
    prices: Option<&Bound<'py, PyAny>>,
    batch_keywords: Option<Vec<String>>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let progress = progress
        .filter(|p| !p.is_none())
        .map(|p| p.clone().unbind());
    let location = location(ledger)?;
    let range = range(since, until)?;
    let options = options(min_saving, batch_keywords)?;
    let catalog = catalog_with(prices)?;
    let (advice, warnings) = py.detach(|| {
        advise::advise_ledger(
            &location,
            &range,
            catalog,
            options,
            &mut progress_fn(progress.as_ref()),
        )
    })?;
    log_warnings(py, &warnings);
    advice_object(py, &advice)
}

/// A tracker's advice: over its durable ledger when it has one (flushed first), else over the
/// calls it keeps in memory; `since` as for `ledger_advise`.
pub(super) fn tracker_advice(
    py: Python<'_>,
    core: &Arc<crate::tracker::Tracker>,
    since: Option<&Bound<'_, PyAny>>,
    options: Options,
) -> PyResult<Advice> {
    let range = range(since, None)?;
    let catalog = core.config().catalog.clone();
    if let Some(store) = core.store() {
        let loc = store.location().clone();
        let store = store.clone();
        let (advice, warnings) = py.detach(move || {
            store.flush();
            advise::advise_ledger(&loc, &range, catalog, options, &mut |_| {})
        })?;
        log_warnings(py, &warnings);
        return Ok(advice);
    }
    let records = core.records();
    Ok(py.detach(move || {
        advise::advise_records(
            records
                .iter()
                .filter(|r| range.since.is_none_or(|s| r.time >= s)),
            catalog,
            options,
        )
    }))
}

/// Live hints: when due, the advice over the tracker's latest calls, each finding logged once
/// per rule and scope. Called after the end hook's locks are released.
pub(super) fn live_hints(
    py: Python<'_>,
    core: &crate::tracker::Tracker,
    live: &advise::live::Live,
) {
    if !live.due() {
        return;
    }
    let records = core.recent_records(advise::live::LIVE_WINDOW);
    let catalog = core.config().catalog.clone();
    let advice = py.detach(move || advise::advise_records(&records, catalog, Options::default()));
    log_warnings(py, &live.untold(&advice));
}
