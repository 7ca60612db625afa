//! Bindings of the durable ledger: opening a tracker's store, and the reading functions the CLI
//! uses (`ledger_report`, `ledger_export`, `ledger_import`, `ledger_spend`). Every file access
//! runs with the GIL released.

// PyO3 hands extracted arguments (paths, callables) over by value.
#![allow(clippy::needless_pass_by_value)]

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::convert;
use super::log::log_warnings;
use crate::report;
use crate::store::read::{self, ExportFormat};
use crate::store::{Durability, Store, TimeRange};

/// Opens `store=` for a tracker: `None` keeps memory only. The store's blocking work (a sync
/// commit, waiting for room in a full queue) runs with the GIL released.
pub fn open_store(
    py: Python<'_>,
    store: Option<&Bound<'_, PyAny>>,
    durability: Option<&str>,
) -> PyResult<Option<Arc<Store>>> {
    let durability = Durability::parse(durability.unwrap_or("batch"))?;
    let Some(store) = store.filter(|s| !s.is_none()) else {
        return Ok(None);
    };
    let path: PathBuf = store.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(
            "store= must be a path to a ledger file (costs.db, costs.jsonl) or None",
        )
    })?;
    let s = py.detach(|| Store::open(&path, durability))?;
    s.set_blocking_section(Box::new(|f| Python::attach(|py| py.detach(f))));
    Ok(Some(Arc::new(s)))
}

/// A store's counters and identity as a dict.
pub fn stats_dict<'py>(py: Python<'py>, s: &Store) -> PyResult<Bound<'py, PyDict>> {
    let st = s.stats();
    let d = PyDict::new(py);
    d.set_item("path", s.path().display().to_string())?;
    d.set_item("format", s.format().as_str())?;
    d.set_item("durability", s.durability().as_str())?;
    d.set_item("written", st.written)?;
    d.set_item("queued", st.queued)?;
    d.set_item("dropped", st.dropped)?;
    d.set_item("failed", st.failed)?;
    Ok(d)
}

/// A time bound: `None`, a `datetime` (aware; naive ones are taken as UTC), or text
/// (`7d`, `24h`, `2026-11-01`, an ISO time).
fn bound(v: Option<&Bound<'_, PyAny>>, end_of_day: bool) -> PyResult<Option<DateTime<Utc>>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Some(read::parse_time_bound(
            &s.to_cow()?,
            Utc::now(),
            end_of_day,
        )?));
    }
    if let Ok(t) = v.extract::<DateTime<Utc>>() {
        return Ok(Some(t));
    }
    let naive: chrono::NaiveDateTime = v.extract()?;
    Ok(Some(naive.and_utc()))
}

fn range(
    since: Option<&Bound<'_, PyAny>>,
    until: Option<&Bound<'_, PyAny>>,
) -> PyResult<TimeRange> {
    Ok(TimeRange {
        since: bound(since, false)?,
        until: bound(until, true)?,
    })
}

/// Calls a Python progress callback from a thread without the GIL.
fn progress_fn(cb: Option<&Py<PyAny>>) -> impl FnMut(u64) + '_ {
    move |n| {
        if let Some(cb) = cb {
            Python::attach(|py| {
                let _ = cb.call1(py, (n,));
            });
        }
    }
}

/// Totals and group-by rows of a ledger (SQLite or JSONL).
#[pyfunction]
#[pyo3(signature = (path, by=None, since=None, until=None, progress=None))]
pub fn ledger_report<'py>(
    py: Python<'py>,
    path: PathBuf,
    by: Option<Vec<String>>,
    since: Option<&Bound<'py, PyAny>>,
    until: Option<&Bound<'py, PyAny>>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let by = by.unwrap_or_default();
    let range = range(since, until)?;
    let rep =
        py.detach(|| read::report(&path, &by, &range, &mut progress_fn(progress.as_ref())))?;
    log_warnings(py, &rep.warnings);
    let d = PyDict::new(py);
    d.set_item("path", path.display().to_string())?;
    d.set_item("format", rep.format.map(crate::store::Format::as_str))?;
    d.set_item("by", PyList::new(py, &by)?)?;
    let rows = PyList::empty(py);
    for r in &rep.rows {
        rows.append(convert::row_dict(py, &by, r)?)?;
    }
    d.set_item("rows", rows)?;
    d.set_item("totals", convert::totals_dict(py, &rep.totals)?)?;
    d.set_item("summary_text", report::totals_text(&rep.totals))?;
    d.set_item(
        "table",
        if by.is_empty() {
            None
        } else {
            Some(report::table(&by, &rep.rows, &rep.totals))
        },
    )?;
    d.set_item("warnings", PyList::new(py, &rep.warnings)?)?;
    Ok(d)
}

/// Writes a ledger's records as CSV or JSONL text through `write` (called with `str` chunks
/// of about 1 MiB). Returns the number of records.
#[pyfunction]
#[pyo3(signature = (path, format, write, since=None, until=None, progress=None))]
pub fn ledger_export<'py>(
    py: Python<'py>,
    path: PathBuf,
    format: &str,
    write: Py<PyAny>,
    since: Option<&Bound<'py, PyAny>>,
    until: Option<&Bound<'py, PyAny>>,
    progress: Option<Py<PyAny>>,
) -> PyResult<u64> {
    let format: ExportFormat = format.parse()?;
    let range = range(since, until)?;
    let mut py_err: Option<PyErr> = None;
    let result = py.detach(|| {
        read::export(
            &path,
            format,
            &range,
            &mut |chunk| {
                Python::attach(|py| {
                    let text = String::from_utf8_lossy(chunk);
                    match write.call1(py, (text.as_ref(),)) {
                        Ok(_) => Ok(()),
                        Err(e) => {
                            let m = e.to_string();
                            py_err = Some(e);
                            Err(crate::Error::InvalidArgument(m))
                        }
                    }
                })
            },
            &mut progress_fn(progress.as_ref()),
        )
    });
    if let Some(e) = py_err {
        return Err(e);
    }
    let (n, warnings) = result?;
    log_warnings(py, &warnings);
    Ok(n)
}

/// Copies a JSONL (or SQLite) ledger into a SQLite ledger; run ids already there are skipped.
#[pyfunction]
#[pyo3(signature = (source, into, progress=None))]
pub fn ledger_import(
    py: Python<'_>,
    source: PathBuf,
    into: PathBuf,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'_, PyDict>> {
    let stats =
        py.detach(|| read::import_jsonl(&source, &into, &mut progress_fn(progress.as_ref())))?;
    log_warnings(py, &stats.warnings);
    let d = PyDict::new(py);
    d.set_item("read", stats.read)?;
    d.set_item("added", stats.added)?;
    d.set_item("already_present", stats.already_present)?;
    d.set_item("bad_lines", stats.warnings.len())?;
    d.set_item("warnings", PyList::new(py, &stats.warnings)?)?;
    Ok(d)
}

/// Exact spend (priced calls) since `since`, per value of `by` (a dimension or metadata key),
/// as `{value: Decimal}`; without `by`, `{None: total}`.
#[pyfunction]
#[pyo3(signature = (path, since, by=None))]
pub fn ledger_spend<'py>(
    py: Python<'py>,
    path: PathBuf,
    since: &Bound<'py, PyAny>,
    by: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let since = bound(Some(since), false)?.unwrap_or_else(Utc::now);
    let spend = py.detach(|| read::spend_since(&path, since, by.as_deref()))?;
    let d = PyDict::new(py);
    for (k, v) in spend {
        d.set_item(k, v.normalize())?;
    }
    Ok(d)
}
