//! Core values to Python objects: records, summary rows, catalog entries.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::catalog::{CostBreakdown, Entry, PriceSet, Tiered};
use crate::ledger::{uuid_string, CallRecord, SummaryRow, Totals};
use crate::money::Decimal;
use crate::usage::Usage;

fn usage_into(d: &Bound<'_, PyDict>, u: &Usage) -> PyResult<()> {
    d.set_item("input_tokens", u.input)?;
    d.set_item("cache_read_tokens", u.cache_read)?;
    d.set_item("cache_write_tokens", u.cache_write)?;
    d.set_item("cache_write_1h_tokens", u.cache_write_1h)?;
    d.set_item("output_tokens", u.output)?;
    d.set_item("reasoning_tokens", u.reasoning)?;
    d.set_item("input_audio_tokens", u.input_audio)?;
    d.set_item("output_audio_tokens", u.output_audio)?;
    d.set_item("total_tokens", u.total())?;
    Ok(())
}

/// A cost breakdown as a dict of `Decimal`s.
pub fn cost_dict<'py>(py: Python<'py>, c: &CostBreakdown) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in [
        ("input", c.input),
        ("cache_read", c.cache_read),
        ("cache_write", c.cache_write),
        ("output", c.output),
        ("reasoning", c.reasoning),
        ("audio", c.audio),
        ("total", c.total),
    ] {
        d.set_item(k, v.normalize())?;
    }
    Ok(d)
}

/// One call record as a dict (the documented record fields).
pub fn record_dict<'py>(py: Python<'py>, r: &CallRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("time", time_text(&r.time))?;
    d.set_item("run_id", uuid_string(r.run_id))?;
    d.set_item("parent_run_id", r.parent_run_id.map(uuid_string))?;
    d.set_item("root_run_id", uuid_string(r.root_run_id))?;
    d.set_item("root_run_name", r.root_run_name.as_deref())?;
    d.set_item("model", r.model.as_deref())?;
    d.set_item("provider", r.provider.as_deref())?;
    let attribution = PyDict::new(py);
    for (k, v) in &r.attribution {
        attribution.set_item(k.as_ref(), v)?;
    }
    d.set_item("attribution", attribution)?;
    d.set_item("tags", PyList::new(py, &r.tags)?)?;
    usage_into(&d, &r.usage)?;
    d.set_item("usage_source", r.usage_source.as_str())?;
    d.set_item("estimated_by", r.estimated_by.as_deref())?;
    d.set_item("requested_model", r.requested_model.as_deref())?;
    d.set_item("service_tier", r.service_tier.as_deref())?;
    d.set_item("cost", r.cost.as_ref().map(|c| c.total.normalize()))?;
    d.set_item(
        "cost_components",
        r.cost.as_ref().map(|c| cost_dict(py, c)).transpose()?,
    )?;
    d.set_item("unpriced_reason", r.unpriced_reason.as_deref())?;
    d.set_item("price_entry", r.price_entry.as_deref())?;
    d.set_item("catalog_version", r.catalog_version.as_deref())?;
    d.set_item("latency_s", r.latency)?;
    d.set_item("streamed_chunks", r.chunks)?;
    d.set_item("error", r.error.as_deref())?;
    d.set_item("usage_notes", r.usage_notes.as_deref())?;
    d.set_item("price_notes", r.price_notes.as_deref())?;
    let req = crate::store::record::RequestColumns::of(&r.request);
    d.set_item("max_tokens", req.max_tokens)?;
    d.set_item("request_hash", req.request_hash)?;
    d.set_item("prompt_prefixes", req.prompt_prefixes)?;
    d.set_item("prompt_bytes", req.prompt_bytes)?;
    Ok(d)
}

/// A time as records give it: RFC 3339, UTC, microseconds, `Z`.
pub fn time_text(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Totals as a dict (the documented totals fields).
pub fn totals_dict<'py>(py: Python<'py>, t: &Totals) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("calls", t.calls())?;
    d.set_item("successful_requests", t.successful_requests)?;
    d.set_item("failed_requests", t.failed_requests)?;
    usage_into(&d, &t.usage)?;
    d.set_item("cost", t.cost.normalize())?;
    d.set_item("unpriced_calls", t.unpriced_calls)?;
    d.set_item("priced_calls", t.priced_calls())?;
    d.set_item("average_cost", t.average_cost())?;
    d.set_item("llm_cache_hits", t.llm_cache_hits)?;
    d.set_item("estimated_calls", t.estimated_calls)?;
    let sources = PyDict::new(py);
    sources.set_item("provider", t.reported_calls)?;
    sources.set_item("estimated", t.estimated_calls)?;
    sources.set_item("cache", t.llm_cache_hits)?;
    sources.set_item("none", t.no_usage_calls)?;
    d.set_item("calls_by_usage_source", sources)?;
    d.set_item("first_call", t.first_call.as_ref().map(time_text))?;
    d.set_item("last_call", t.last_call.as_ref().map(time_text))?;
    d.set_item("latency_s_sum", t.latency_seconds())?;
    d.set_item("timed_calls", t.timed_calls)?;
    d.set_item("malformed_usage_calls", t.malformed_usage_calls)?;
    d.set_item("local_calls", t.local_calls)?;
    d.set_item("fallback_priced_calls", t.fallback_priced_calls)?;
    Ok(d)
}

/// A summary row: the dimension values, then the totals.
pub fn row_dict<'py>(
    py: Python<'py>,
    dims: &[String],
    row: &SummaryRow,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in dims.iter().zip(&row.key) {
        d.set_item(k, v.as_deref())?;
    }
    let t = totals_dict(py, &row.totals)?;
    d.update(t.as_mapping())?;
    Ok(d)
}

fn price_set_dict<'py>(py: Python<'py>, p: &PriceSet) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let opt = |v: Option<Decimal>| v.map(|d| d.normalize());
    d.set_item("input", p.input.normalize())?;
    d.set_item("output", p.output.normalize())?;
    for (k, v) in [
        ("cache_read", p.cache_read),
        ("cache_write", p.cache_write),
        ("cache_write_1h", p.cache_write_1h),
        ("reasoning", p.reasoning),
        ("input_audio", p.input_audio),
        ("output_audio", p.output_audio),
    ] {
        if let Some(v) = opt(v) {
            d.set_item(k, v)?;
        }
    }
    Ok(d)
}

fn tiered_dict<'py>(py: Python<'py>, t: &Tiered) -> PyResult<Bound<'py, PyDict>> {
    let d = price_set_dict(py, &t.base)?;
    if !t.tiers.is_empty() {
        let tiers = PyList::empty(py);
        for tier in &t.tiers {
            let td = price_set_dict(py, &tier.prices)?;
            td.set_item("above", tier.above)?;
            tiers.append(td)?;
        }
        d.set_item("tiers", tiers)?;
    }
    Ok(d)
}

/// Time-of-day windows as dicts: `start` and `end` (`HH:MM`, UTC) with the window's prices.
fn windows_list<'py>(
    py: Python<'py>,
    windows: &[crate::catalog::TimeWindow],
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for w in windows {
        let wd = tiered_dict(py, &w.prices)?;
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        wd.set_item("start", hm(w.start))?;
        wd.set_item("end", hm(w.end))?;
        out.append(wd)?;
    }
    Ok(out)
}

/// A catalog entry as a dict: its identity, provenance and the price version in force on
/// `date` (prices in USD per 1M tokens, as `Decimal`), plus every version.
pub fn entry_dict<'py>(
    py: Python<'py>,
    e: &Entry,
    catalog_version: &str,
    date: chrono::NaiveDate,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &e.id)?;
    d.set_item("provider", e.provider.as_deref())?;
    d.set_item("key", e.key().as_ref())?;
    d.set_item("name", e.name.as_deref())?;
    d.set_item("aliases", PyList::new(py, &e.aliases)?)?;
    d.set_item("source", e.source.as_deref())?;
    d.set_item("checked", e.checked.map(|c| c.to_string()))?;
    d.set_item("notes", e.notes.as_deref())?;
    d.set_item("context_window", e.context_window)?;
    d.set_item("max_output_tokens", e.max_output_tokens)?;
    d.set_item("catalog_version", catalog_version)?;
    d.set_item("override", e.is_override)?;
    d.set_item("unit", "USD per 1M tokens")?;
    let current = e.version_at(date);
    d.set_item("effective_from", current.from.map(|f| f.to_string()))?;
    d.set_item("prices", tiered_dict(py, &current.standard)?)?;
    let variants = PyDict::new(py);
    for (name, t) in &current.variants {
        variants.set_item(name, tiered_dict(py, t)?)?;
    }
    d.set_item("variants", variants)?;
    d.set_item("windows", windows_list(py, &current.windows)?)?;
    let history = PyList::empty(py);
    for v in &e.versions {
        let vd = tiered_dict(py, &v.standard)?;
        vd.set_item("from", v.from.map(|f| f.to_string()))?;
        let vv = PyDict::new(py);
        for (name, t) in &v.variants {
            vv.set_item(name, tiered_dict(py, t)?)?;
        }
        vd.set_item("variants", vv)?;
        vd.set_item("windows", windows_list(py, &v.windows)?)?;
        history.append(vd)?;
    }
    d.set_item("versions", history)?;
    Ok(d)
}

/// The `currency=` / `rate=` pair of `summary()`, `report()` and the ledger reports: both or
/// neither. The rate is a `Decimal`, an `int` or a decimal string (`"7.12"`); a `float` is
/// refused, as prices are (its text need not be the rate meant).
pub fn currency_arg(
    currency: Option<&str>,
    rate: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<crate::money::Currency>> {
    use pyo3::exceptions::PyValueError;
    use pyo3::types::{PyFloat, PyString};
    let rate = rate.filter(|r| !r.is_none());
    let (code, rate) =
        match (currency, rate) {
            (None, None) => return Ok(None),
            (Some(c), Some(r)) => (c, r),
            _ => return Err(PyValueError::new_err(
                "currency and rate go together: currency=\"CNY\", rate=\"7.12\" (units per USD)",
            )),
        };
    let value: Decimal = if rate.is_instance_of::<PyFloat>() {
        return Err(PyValueError::new_err(format!(
            "rate must be exact: write it as a string (rate=\"{}\") or a Decimal, not a float",
            rate.str()?
        )));
    } else if let Ok(s) = rate.cast::<PyString>() {
        let text = s.to_str()?;
        text.trim()
            .parse()
            .map_err(|_| PyValueError::new_err(format!("rate '{text}' is not a decimal number")))?
    } else {
        rate.extract()?
    };
    crate::money::Currency::new(code, value)
        .map(Some)
        .map_err(PyValueError::new_err)
}

/// Adds `currency`, `rate` and `converted_cost` (the cost in that currency, exact) to a
/// totals or row dict.
pub fn add_converted(
    d: &Bound<'_, PyDict>,
    t: &Totals,
    c: &crate::money::Currency,
) -> PyResult<()> {
    d.set_item("currency", &c.code)?;
    d.set_item("rate", c.rate)?;
    d.set_item("converted_cost", c.convert(t.cost))?;
    Ok(())
}
