//! `currency_view`: USD amounts shown in another currency at the user's rate, for the
//! presentation layers that read amounts the core did not convert (the HTML report's digest,
//! `llmledger watch`). The conversion is the core's (`money::Currency`), exact.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert;
use crate::money::Decimal;

/// The amounts (USD, exact decimals; `None` for unknown) in `currency` at `rate` (units per
/// USD: a `Decimal`, an `int` or a decimal string, never a float). Returns a dict: `code`
/// (upper case), `rate` (a `Decimal`), `label` (the line that names the rate, as the text
/// report prints it) and `amounts` (each converted, exact; `None` stays `None`).
///
/// ```python
/// >>> _core.currency_view(["0.06", None], "cny", "7.12")["amounts"]
/// [Decimal('0.4272'), None]
/// ```
#[pyfunction]
#[pyo3(signature = (amounts, currency, rate))]
pub fn currency_view<'py>(
    py: Python<'py>,
    amounts: Vec<Option<Decimal>>,
    currency: &str,
    rate: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let Some(c) = convert::currency_arg(Some(currency), Some(rate))? else {
        return Err(PyValueError::new_err(
            "currency and rate go together: currency=\"CNY\", rate=\"7.12\" (units per USD)",
        ));
    };
    let mut out = Vec::with_capacity(amounts.len());
    for a in amounts {
        out.push(match a {
            None => None,
            Some(usd) => Some(c.convert(usd).ok_or_else(|| {
                PyValueError::new_err(format!("{usd} USD in {} overflows", c.code))
            })?),
        });
    }
    let d = PyDict::new(py);
    d.set_item("code", &c.code)?;
    d.set_item("rate", c.rate)?;
    d.set_item("label", c.describe())?;
    d.set_item("amounts", out)?;
    Ok(d)
}
