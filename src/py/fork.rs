//! Forks: `os.register_at_fork` tells the core when this process is a new child, so the
//! store and the webhook start their own threads in it (see `crate::fork`).

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Runs in a child right after `os.fork()` (and every fork Python knows of).
#[pyfunction]
fn _after_fork_in_child() {
    crate::fork::after_fork_in_child();
}

/// Registers the child hook (no-op where `os.register_at_fork` does not exist: Windows).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let os = py.import("os")?;
    if let Ok(register) = os.getattr("register_at_fork") {
        let hook = wrap_pyfunction!(_after_fork_in_child, m)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("after_in_child", hook)?;
        register.call((), Some(&kwargs))?;
    }
    Ok(())
}
