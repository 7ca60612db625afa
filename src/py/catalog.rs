//! The catalog's bindings: loading `prices=` overrides, and the module-level functions
//! `price`, `cost`, `cost_breakdown`, `suggest_models`, `catalog_version` and
//! `catalog_entries`.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyDict};

use super::convert;
use super::log::log_warnings;
use crate::catalog::schema::Strictness;
use crate::catalog::{Catalog, CostBreakdown};
use crate::money::Decimal;
use crate::usage::Usage;

/// Loads `prices=`: a dict (entries in the catalog schema or the short form), or a path to a
/// JSON or TOML file. Returns the bundled catalog with those entries on top.
pub fn catalog_with(prices: Option<&Bound<'_, PyAny>>) -> PyResult<Arc<Catalog>> {
    let bundled = Catalog::bundled()?;
    let Some(prices) = prices.filter(|p| !p.is_none()) else {
        return Ok(bundled);
    };
    let py = prices.py();
    let user = if prices.cast::<PyDict>().is_ok() {
        // Decimal and other numbers become their exact text.
        let text: String = py
            .import("json")?
            .call_method(
                "dumps",
                (prices,),
                Some(&[("default", py.import("builtins")?.getattr("str")?)].into_py_dict(py)?),
            )?
            .extract()?;
        Catalog::parse(&text, "prices dict", false, Strictness::User)?
    } else {
        let path: std::path::PathBuf = prices.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(
                "prices= must be a dict of model prices or a path to a JSON or TOML price file",
            )
        })?;
        let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let is_toml = Path::new(&path)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        Catalog::parse(
            &text,
            &path.display().to_string(),
            is_toml,
            Strictness::User,
        )?
    };
    Ok(Arc::new(bundled.with_overrides(&user)))
}

pub fn price_dict<'py>(
    py: Python<'py>,
    catalog: &Arc<Catalog>,
    model: &str,
    provider: Option<&str>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    catalog
        .resolve(model, provider)
        .map(|r| convert::entry_dict(py, &r.entry, catalog.version(), Utc::now().date_naive()))
        .transpose()
}

/// The catalog entry used to price `model` (at `provider`), as a dict, or None if unknown.
///
/// `provider` is what LangChain reports as `ls_provider` (`openai`, `anthropic`, `azure`,
/// `google_vertexai`, `bedrock`, ...): the answer is the entry a call of `model` through that
/// provider's client is priced with. Without one, the entry a call without `ls_provider` is
/// priced with (the first entry of that name, makers before hosts) — which may be another
/// host's: `price("claude-3-opus")` is Vertex's entry, while a ChatAnthropic call
/// (`provider="anthropic"`) of that name is unpriced, Anthropic listing it only as
/// `claude-3-opus-20240229`. `llmledger prices MODEL` shows the model at every host.
#[pyfunction]
#[pyo3(signature = (model, provider=None, *, prices=None))]
pub fn price<'py>(
    py: Python<'py>,
    model: &str,
    provider: Option<&str>,
    prices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    price_dict(py, &catalog_with(prices)?, model, provider)
}

/// The entries of `model` at each provider that lists it (the one a call without a provider
/// gets first), as dicts like `price()`'s.
#[pyfunction]
#[pyo3(signature = (model, *, prices=None))]
pub fn price_hosts<'py>(
    py: Python<'py>,
    model: &str,
    prices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let catalog = catalog_with(prices)?;
    let today = Utc::now().date_naive();
    catalog
        .hosts_of(model)
        .iter()
        .map(|e| convert::entry_dict(py, e, catalog.version(), today))
        .collect()
}

/// `cost`'s and `cost_breakdown`'s arguments past the model, as Python passes them.
macro_rules! usage_signature {
    ($(#[$doc:meta])* $name:ident, $ret:ty, $body:expr) => {
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(signature = (
            model, input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0,
            reasoning_tokens=0, provider=None, *, cache_write_1h_tokens=0, input_audio_tokens=0,
            output_audio_tokens=0, service_tier=None, date=None, prices=None, at=None
        ))]
        #[allow(clippy::too_many_arguments)]
        pub fn $name<'py>(
            py: Python<'py>,
            model: &str,
            input_tokens: u64,
            output_tokens: u64,
            cache_read_tokens: u64,
            cache_write_tokens: u64,
            reasoning_tokens: u64,
            provider: Option<&str>,
            cache_write_1h_tokens: u64,
            input_audio_tokens: u64,
            output_audio_tokens: u64,
            service_tier: Option<&str>,
            date: Option<NaiveDate>,
            prices: Option<&Bound<'py, PyAny>>,
            at: Option<&Bound<'py, PyAny>>,
        ) -> PyResult<$ret> {
            let usage = Usage {
                input: input_tokens,
                cache_read: cache_read_tokens,
                cache_write: cache_write_tokens.max(cache_write_1h_tokens),
                cache_write_1h: cache_write_1h_tokens,
                output: output_tokens,
                reasoning: reasoning_tokens,
                input_audio: input_audio_tokens,
                output_audio: output_audio_tokens,
            };
            let call = UsageCall {
                model,
                provider,
                service_tier,
                at: call_time(date, at)?,
            };
            let priced = price_usage(py, usage, &call, prices)?;
            #[allow(clippy::redundant_closure_call)]
            ($body)(py, priced)
        }
    };
}

/// What a usage is priced for, besides the usage.
struct UsageCall<'a> {
    model: &'a str,
    provider: Option<&'a str>,
    service_tier: Option<&'a str>,
    /// When the call was made: `at`, else noon (UTC) of `date`, else now.
    at: DateTime<Utc>,
}

/// The time `cost()` prices a call at: `at` (a datetime; naive is UTC), else noon (UTC) of
/// `date`, else now. Time-of-day prices (DeepSeek's off-peak hours) depend on it.
fn call_time(date: Option<NaiveDate>, at: Option<&Bound<'_, PyAny>>) -> PyResult<DateTime<Utc>> {
    if let Some(at) = at.filter(|a| !a.is_none()) {
        if let Ok(t) = at.extract::<DateTime<chrono::FixedOffset>>() {
            return Ok(t.with_timezone(&Utc));
        }
        return at
            .extract::<chrono::NaiveDateTime>()
            .map(|t| t.and_utc())
            .map_err(|_| PyValueError::new_err("at must be a datetime (naive: UTC)"));
    }
    Ok(date.map_or_else(Utc::now, crate::catalog::noon))
}

/// Prices `usage` of `call.model`: the breakdown and the entry's key, or None (unknown
/// model or price dimension, warned about).
fn price_usage(
    py: Python<'_>,
    mut usage: Usage,
    call: &UsageCall<'_>,
    prices: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<(CostBreakdown, Arc<str>)>> {
    let problems = usage.reconcile();
    if !problems.is_empty() {
        return Err(PyValueError::new_err(format!(
            "inconsistent usage: {} (input_tokens includes cached and audio tokens, and \
             output_tokens includes reasoning tokens, as LangChain counts them)",
            problems.join("; ")
        )));
    }
    let catalog = catalog_with(prices)?;
    // Exactly as the tracker prices a call: resolve, then the entry under the tier's variant.
    let Some(call_price) = catalog.price_call(
        call.model,
        call.provider,
        &usage,
        call.at,
        call.service_tier,
    ) else {
        return Ok(None);
    };
    let r = call_price.entry;
    match call_price.priced {
        Ok(p) => {
            log_warnings(py, &p.warnings);
            Ok(Some((p.cost, r.key().clone())))
        }
        Err(e) => {
            log_warnings(py, &[format!("cost is unknown: {e}")]);
            Ok(None)
        }
    }
}

usage_signature!(
    /// The exact cost (a `Decimal`, USD) of a usage of `model`, or None for an unknown model.
    ///
    /// Priced exactly as the tracker prices a call: the entry `price(model, provider)` gives
    /// (`provider` as LangChain's `ls_provider`; none: a call without one), at
    /// `service_tier`'s prices (`flex`, `priority`, `batch`; anything else is standard), on
    /// `date` (default today).
    cost,
    Option<Decimal>,
    |_py: Python<'py>, priced: Option<(CostBreakdown, Arc<str>)>| -> PyResult<Option<Decimal>> {
        Ok(priced.map(|(c, _)| c.total.normalize()))
    }
);

usage_signature!(
    /// `cost`, with its parts: a dict of `total`, `components` (input, cache_read,
    /// cache_write, output, reasoning, audio, total) and `price_entry`, or None for an
    /// unknown model.
    cost_breakdown,
    Option<Bound<'py, PyDict>>,
    |py: Python<'py>,
     priced: Option<(CostBreakdown, Arc<str>)>|
     -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some((c, entry)) = priced else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("total", c.total.normalize())?;
        d.set_item("components", convert::cost_dict(py, &c)?)?;
        d.set_item("price_entry", &*entry)?;
        Ok(Some(d))
    }
);

/// The catalog ids and aliases nearest to `model`, a name no entry has (at most 3, nearest
/// first; with `provider`, that provider's entries): for "did you mean ...?".
#[pyfunction]
#[pyo3(signature = (model, provider=None, *, prices=None))]
pub fn suggest_models(
    model: &str,
    provider: Option<&str>,
    prices: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<String>> {
    Ok(crate::suggest::models(
        &*catalog_with(prices)?,
        model,
        provider,
    ))
}

/// The bundled catalog's version string.
#[pyfunction]
pub fn catalog_version() -> PyResult<String> {
    Ok(Catalog::bundled()?.version().to_string())
}

/// Every entry of the catalog (bundled, plus `prices=` overrides) as dicts.
#[pyfunction]
#[pyo3(signature = (*, prices=None))]
pub fn catalog_entries<'py>(
    py: Python<'py>,
    prices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let catalog = catalog_with(prices)?;
    let today = Utc::now().date_naive();
    catalog
        .entries()
        .iter()
        .map(|e| convert::entry_dict(py, e, catalog.version(), today))
        .collect()
}
