//! Forks: `os.register_at_fork` tells the core when this process is a new child, so the
//! store and the webhook start their own threads in it (see `crate::fork`).

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Runs in a child right after `os.fork()` (and every fork Python knows of).
#[pyfunction]
fn _after_fork_in_child() {
    crate::fork::after_fork_in_child();
}

/// Runs in the parent right before a fork: waits for ledger I/O in progress (see
/// `crate::fork::before_fork`), with the GIL released so that a writer thread is not held up.
#[pyfunction]
fn _before_fork(py: Python<'_>) {
    py.detach(crate::fork::before_fork);
}

/// Runs in the parent right after a fork.
#[pyfunction]
fn _after_fork_in_parent() {
    crate::fork::after_fork_in_parent();
}

/// Registers the hooks (no-op where `os.register_at_fork` does not exist: Windows).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let os = py.import("os")?;
    if let Ok(register) = os.getattr("register_at_fork") {
        let kwargs = PyDict::new(py);
        kwargs.set_item("before", wrap_pyfunction!(_before_fork, m)?)?;
        kwargs.set_item(
            "after_in_parent",
            wrap_pyfunction!(_after_fork_in_parent, m)?,
        )?;
        kwargs.set_item("after_in_child", wrap_pyfunction!(_after_fork_in_child, m)?)?;
        register.call((), Some(&kwargs))?;
    }
    Ok(())
}
