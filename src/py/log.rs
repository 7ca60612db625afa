//! The `llmledger` logger, as the binding layer writes to it. Imports nothing else from
//! `src/py`, so every binding module can use it.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOGGER
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("logging")?
                    .call_method1("getLogger", ("llmledger",))?
                    .unbind(),
            )
        })
        .map(|l| l.bind(py))
}

/// Sends warnings to the `llmledger` logger.
pub fn log_warnings(py: Python<'_>, warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    if let Ok(l) = logger(py) {
        for w in warnings {
            let _ = l.call_method1("warning", ("%s", w));
        }
    }
}

/// Sends an error to the `llmledger` logger.
pub fn log_error(py: Python<'_>, message: &str) {
    if let Ok(l) = logger(py) {
        let _ = l.call_method1("error", ("llmledger: %s", message));
    }
}
