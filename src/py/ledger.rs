//! Bindings of the durable ledger: opening a tracker's store; the public reading API
//! (`read_ledger`, its `LedgerReader`, `ledger_summary`); and the functions the CLI uses
//! (`ledger_report`, `ledger_export`, `ledger_import`, `ledger_spend`). Every file access runs
//! with the GIL released. A ledger is named by a path or URL, parsed once by
//! [`Location::parse`]: the core's one place that picks a backend.

// PyO3 hands extracted arguments (paths, callables) over by value.
#![allow(clippy::needless_pass_by_value)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDate, PyDateTime, PyDict, PyList, PyString};

use super::convert;
use super::log::log_warnings;
use crate::ledger::CallRecord;
use crate::report;
use crate::store::read::{self, ExportFormat, Report};
use crate::store::{open_reader, Durability, Location, RecordReader, Store, TimeRange};

/// A ledger named by Python: text is a path or a URL; a path-like object is a path.
pub fn location(ledger: &Bound<'_, PyAny>) -> PyResult<Location> {
    if let Ok(s) = ledger.cast::<PyString>() {
        return Ok(Location::parse(&s.to_cow()?)?);
    }
    let path: PathBuf = ledger.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "a ledger is a path (str or os.PathLike: costs.db, costs.jsonl) or a URL, not {}",
            ledger
                .get_type()
                .name()
                .map_or_else(|_| "this".into(), |n| n.to_string())
        ))
    })?;
    Ok(Location::file(&path))
}

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
    if store.cast::<PyString>().is_err() && store.extract::<PathBuf>().is_err() {
        return Err(PyTypeError::new_err(
            "store= must be a path to a ledger file (costs.db, costs.jsonl), a \
             postgresql:// URL, or None",
        ));
    }
    let location = location(store)?;
    let s = py.detach(|| Store::open_at(&location, durability))?;
    s.set_blocking_section(Box::new(|f| Python::attach(|py| py.detach(f))));
    Ok(Some(Arc::new(s)))
}

/// A store's counters and identity as a dict.
pub fn stats_dict<'py>(py: Python<'py>, s: &Store) -> PyResult<Bound<'py, PyDict>> {
    let st = s.stats();
    let d = PyDict::new(py);
    d.set_item("path", s.location().display_name())?;
    d.set_item("format", s.location().format_name())?;
    d.set_item("durability", s.durability().as_str())?;
    d.set_item("written", st.written)?;
    d.set_item("queued", st.queued)?;
    d.set_item("dropped", st.dropped)?;
    d.set_item("failed", st.failed)?;
    d.set_item("spooled", st.spooled)?;
    d.set_item("backend_down", st.backend_down)?;
    d.set_item("rejected", st.rejected)?;
    if let Location::Postgres(_) = s.location() {
        d.set_item(
            "spool_dir",
            crate::store::postgres::sink::spool_dir()
                .display()
                .to_string(),
        )?;
    }
    Ok(d)
}

/// A time bound: `None`, a `datetime` (aware; naive ones are taken as UTC), a `date`
/// (midnight UTC; as `until`, the end of that day, as the CLI reads a bare date), or text
/// (`7d`, `24h`, `2026-11-01`, an ISO time) read by the CLI's own parser.
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
    if v.cast::<PyDateTime>().is_ok() {
        if let Ok(t) = v.extract::<DateTime<Utc>>() {
            return Ok(Some(t));
        }
        let naive: chrono::NaiveDateTime = v.extract()?;
        return Ok(Some(naive.and_utc()));
    }
    if v.cast::<PyDate>().is_ok() {
        let day: chrono::NaiveDate = v.extract()?;
        let day = if end_of_day {
            day.succ_opt().unwrap_or(day)
        } else {
            day
        };
        return Ok(Some(day.and_time(chrono::NaiveTime::MIN).and_utc()));
    }
    Err(PyTypeError::new_err(format!(
        "a time bound is a datetime, a date, or text (30d, 24h, 2026-11-01, an ISO time), not {}",
        v.get_type()
            .name()
            .map_or_else(|_| "this".into(), |n| n.to_string())
    )))
}

pub(super) fn range(
    since: Option<&Bound<'_, PyAny>>,
    until: Option<&Bound<'_, PyAny>>,
) -> PyResult<TimeRange> {
    Ok(TimeRange {
        since: bound(since, false)?,
        until: bound(until, true)?,
    })
}

/// Calls a Python progress callback from a thread without the GIL.
pub(super) fn progress_fn(cb: Option<&Py<PyAny>>) -> impl FnMut(u64) + '_ {
    move |n| {
        if let Some(cb) = cb {
            Python::attach(|py| {
                let _ = cb.call1(py, (n,));
            });
        }
    }
}

/// The summary dict of a report: what `ledger_summary` returns.
fn summary_dict<'py>(
    py: Python<'py>,
    location: &Location,
    range: &TimeRange,
    rep: &Report,
    cur: Option<&crate::money::Currency>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ledger", location.display_name())?;
    d.set_item("format", location.format_name())?;
    d.set_item("by", PyList::new(py, &rep.by)?)?;
    d.set_item("since", range.since.as_ref().map(convert::time_text))?;
    d.set_item("until", range.until.as_ref().map(convert::time_text))?;
    let rows = PyList::empty(py);
    for r in &rep.rows {
        let row = convert::row_dict(py, &rep.by, r)?;
        if let Some(c) = cur {
            convert::add_converted(&row, &r.totals, c)?;
        }
        rows.append(row)?;
    }
    d.set_item("rows", rows)?;
    let totals = convert::totals_dict(py, &rep.totals)?;
    if let Some(c) = cur {
        convert::add_converted(&totals, &rep.totals, c)?;
    }
    d.set_item("totals", totals)?;
    d.set_item("warnings", PyList::new(py, &rep.warnings)?)?;
    Ok(d)
}

/// Reads a report with the GIL released and logs its warnings.
fn read_report(
    py: Python<'_>,
    location: &Location,
    by: &[String],
    range: &TimeRange,
    progress: Option<&Py<PyAny>>,
) -> PyResult<Report> {
    let rep = py.detach(|| read::report(location, by, range, &mut progress_fn(progress)))?;
    log_warnings(py, &rep.warnings);
    Ok(rep)
}

/// The totals and group-by rows of a durable ledger: the same rows and totals as
/// `llmledger report` (and as `tracker.summary(by)` / `tracker.totals()` over the same
/// calls), computed by the core in one streaming pass (on SQLite, exact integer sums over
/// the time index).
///
/// `ledger` is a path (`costs.db`, `costs.jsonl`) or URL; `by` names dimensions (`model`,
/// `requested_model`, `provider`, `tag`, `day`, ...) or metadata keys; `since` (included) and
/// `until` (excluded) are datetimes, dates or text as the CLI takes them (`30d`, `24h`,
/// `2026-11-01`, an ISO time). Returns a dict: `ledger`, `format`, `by`, `since` and `until`
/// (resolved, ISO text or None), `rows` (most expensive first), `totals`, `warnings` (bad
/// JSONL lines, also logged on the `llmledger` logger).
///
/// Example:
///
/// ```python
/// s = ledger_summary("costs.db", by=["user_id"], since="30d")
/// s["totals"]["cost"], [(r["user_id"], r["cost"]) for r in s["rows"]]
/// # (Decimal('1.25'), [('alice', Decimal('1.0')), (None, Decimal('0.25'))])
/// ```
#[pyfunction]
#[pyo3(signature = (ledger, by=None, *, since=None, until=None))]
pub fn ledger_summary<'py>(
    py: Python<'py>,
    ledger: &Bound<'py, PyAny>,
    by: Option<&Bound<'py, PyAny>>,
    since: Option<&Bound<'py, PyAny>>,
    until: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let location = location(ledger)?;
    let range = range(since, until)?;
    let by: Vec<String> = match by.filter(|b| !b.is_none()) {
        None => Vec::new(),
        Some(b) if b.cast::<PyString>().is_ok() => vec![b.extract()?],
        Some(b) => b.extract()?,
    };
    let rep = read_report(py, &location, &by, &range, None)?;
    summary_dict(py, &location, &range, &rep, None)
}

/// `ledger_summary` plus the text the CLI prints (`summary_text`, `table`) and progress.
#[pyfunction]
#[pyo3(signature = (path, by=None, since=None, until=None, progress=None, currency=None, rate=None))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments
pub fn ledger_report<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    by: Option<Vec<String>>,
    since: Option<&Bound<'py, PyAny>>,
    until: Option<&Bound<'py, PyAny>>,
    progress: Option<Py<PyAny>>,
    currency: Option<&str>,
    rate: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cur = convert::currency_arg(currency, rate)?;
    let location = location(path)?;
    let range = range(since, until)?;
    let by = by.unwrap_or_default();
    let rep = read_report(py, &location, &by, &range, progress.as_ref())?;
    let d = summary_dict(py, &location, &range, &rep, cur.as_ref())?;
    d.set_item("path", location.display_name())?;
    d.set_item(
        "summary_text",
        report::totals_text_in(&rep.totals, cur.as_ref()),
    )?;
    d.set_item(
        "table",
        (!by.is_empty()).then(|| report::table_in(&by, &rep.rows, &rep.totals, cur.as_ref())),
    )?;
    Ok(d)
}

/// The reader's state: its backend (taken out while a batch is read) and the batch.
struct ReaderState {
    source: Option<Box<dyn RecordReader>>,
    batch: VecDeque<CallRecord>,
    done: bool,
}

/// The records of a durable ledger, one dict at a time (the same dicts as
/// `tracker.records()`), read by the core in batches with the GIL released: memory stays one
/// batch however large the ledger. SQLite ledgers are read in time order, JSONL ledgers in
/// file order; the records are those the ledger held when the reader opened. Returned by
/// `read_ledger`; also a context manager (`close()` lets the file go before the end).
#[pyclass(frozen, module = "llmledger._core", name = "LedgerReader")]
pub struct PyLedgerReader {
    state: Mutex<ReaderState>,
    batch_size: usize,
    ledger: String,
}

impl PyLedgerReader {
    /// The next record, reading a batch when the last one is used up.
    fn next_record(&self, py: Python<'_>) -> PyResult<Option<CallRecord>> {
        loop {
            let mut source = {
                let mut st = self.state.lock();
                if let Some(r) = st.batch.pop_front() {
                    return Ok(Some(r));
                }
                if st.done {
                    return Ok(None);
                }
                st.source.take().ok_or_else(|| {
                    PyRuntimeError::new_err(
                        "this LedgerReader is being read by another thread; give each thread                          its own read_ledger(...)",
                    )
                })?
            };
            let mut batch = Vec::with_capacity(self.batch_size);
            let read = py.detach(|| source.next_batch(self.batch_size, &mut batch));
            let warnings = source.take_warnings();
            {
                let mut st = self.state.lock();
                st.done = read.is_err() || batch.is_empty();
                st.batch.extend(batch);
                if !st.done {
                    st.source = Some(source);
                }
            }
            log_warnings(py, &warnings);
            read?;
        }
    }
}

#[pymethods]
impl PyLedgerReader {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.next_record(py)?
            .map(|r| convert::record_dict(py, &r))
            .transpose()
    }

    /// Stops reading and lets the ledger file go (also at the end, and on `with` exit).
    fn close(&self) {
        let source = {
            let mut st = self.state.lock();
            st.done = true;
            st.batch.clear();
            st.source.take()
        };
        drop(source);
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        format!("<LedgerReader {}>", self.ledger)
    }
}

/// The records of a durable ledger (a path: `costs.db`, `costs.jsonl`; or a URL), as an
/// iterator of dicts with the fields of `tracker.records()`, streamed: the core reads
/// `batch_size` records at a time with the GIL released, so millions of rows take the memory
/// of one batch. `since` (included) and `until` (excluded) are datetimes, dates or text as the
/// CLI takes them (`30d`, `24h`, `2026-11-01`, an ISO time). SQLite ledgers come in time
/// order, JSONL in file order. Bad JSONL lines are skipped and logged on the `llmledger`
/// logger with their numbers. A missing or unreadable ledger raises `LedgerError` here, before
/// the first record.
///
/// Example:
///
/// ```python
/// for r in read_ledger("costs.db", since="7d"):
///     print(r["time"], r["model"], r["cost"])
/// ```
#[pyfunction]
#[pyo3(signature = (ledger, *, since=None, until=None, batch_size=1024))]
pub fn read_ledger(
    py: Python<'_>,
    ledger: &Bound<'_, PyAny>,
    since: Option<&Bound<'_, PyAny>>,
    until: Option<&Bound<'_, PyAny>>,
    batch_size: usize,
) -> PyResult<PyLedgerReader> {
    if batch_size == 0 {
        return Err(PyValueError::new_err("batch_size must be at least 1"));
    }
    let location = location(ledger)?;
    let range = range(since, until)?;
    let source = py.detach(|| open_reader(&location, range))?;
    Ok(PyLedgerReader {
        state: Mutex::new(ReaderState {
            source: Some(source),
            batch: VecDeque::with_capacity(batch_size),
            done: false,
        }),
        batch_size,
        ledger: location.display_name(),
    })
}

/// Writes a ledger's records as CSV or JSONL text through `write` (called with `str` chunks
/// of about 1 MiB). Returns the number of records.
#[pyfunction]
#[pyo3(signature = (path, format, write, since=None, until=None, progress=None))]
pub fn ledger_export<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    format: &str,
    write: Py<PyAny>,
    since: Option<&Bound<'py, PyAny>>,
    until: Option<&Bound<'py, PyAny>>,
    progress: Option<Py<PyAny>>,
) -> PyResult<u64> {
    let format: ExportFormat = format.parse()?;
    let location = location(path)?;
    let range = range(since, until)?;
    let mut py_err: Option<PyErr> = None;
    let result = py.detach(|| {
        read::export(
            &location,
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

/// Copies a ledger (JSONL, SQLite or PostgreSQL) into a SQLite ledger or a PostgreSQL
/// database; run ids already there are skipped.
#[pyfunction]
#[pyo3(signature = (source, into, progress=None))]
pub fn ledger_import<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    into: &Bound<'py, PyAny>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let source = location(source)?;
    let into = location(into)?;
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
    path: &Bound<'py, PyAny>,
    since: &Bound<'py, PyAny>,
    by: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let location = location(path)?;
    let since = bound(Some(since), false)?.unwrap_or_else(Utc::now);
    let spend = py.detach(|| read::spend_since(&location, since, by.as_deref()))?;
    let d = PyDict::new(py);
    for (k, v) in spend {
        d.set_item(k, v.normalize())?;
    }
    Ok(d)
}
