//! The binding layer: `PyO3` classes and functions, and nothing else. Compiled into the
//! `llmledger._core` extension module.

mod advise;
mod attrs;
mod budget;
mod catalog;
mod convert;
mod currency;
mod errors;
mod extract;
mod follow;
mod fork;
mod held;
mod hooks;
mod ledger;
mod log;
mod metrics;
mod run_ids;
mod tokens;
mod tracker;

use pyo3::prelude::*;

/// llmledger's compiled core.
#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // rustls's process default (ring) before any TLS: the redis crate's rediss:// connections
    // build their configuration from it.
    crate::tls::install_default_provider();
    // The readers of LangChain's objects take their instance `__dict__` through the hooks'
    // unsafe code (see `attrs`).
    attrs::install(hooks::instance_dict);
    m.add_class::<tracker::PyTracker>()?;
    m.add_class::<budget::PyBudget>()?;
    m.add_class::<budget::PyBudgetAlert>()?;
    m.add(
        "BudgetExceededError",
        py.get_type::<errors::BudgetExceededError>(),
    )?;
    m.add(
        "BudgetBackendError",
        py.get_type::<errors::BudgetBackendError>(),
    )?;
    m.add_function(wrap_pyfunction!(hooks::bind_hook, m)?)?;
    m.add(
        "HOOK_NAMES",
        pyo3::types::PyTuple::new(py, hooks::HOOK_NAMES)?,
    )?;
    m.add(
        "PRICE_FIELDS",
        pyo3::types::PyTuple::new(py, crate::catalog::schema::PRICE_FIELDS)?,
    )?;
    m.add_function(wrap_pyfunction!(catalog::price, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::cost, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::cost_breakdown, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::suggest_models, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::price_hosts, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::catalog_version, m)?)?;
    m.add_function(wrap_pyfunction!(currency::currency_view, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::catalog_entries, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::count_tokens_batch, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::count_message_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::tokenizer_for, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::token_memo, m)?)?;
    m.add_class::<ledger::PyLedgerReader>()?;
    m.add_function(wrap_pyfunction!(ledger::read_ledger, m)?)?;
    m.add_function(wrap_pyfunction!(ledger::ledger_summary, m)?)?;
    m.add_class::<follow::PyFollower>()?;
    m.add_class::<metrics::PyMetrics>()?;
    m.add_function(wrap_pyfunction!(follow::ledger_digest, m)?)?;
    m.add_function(wrap_pyfunction!(ledger::ledger_report, m)?)?;
    m.add_function(wrap_pyfunction!(advise::ledger_advise, m)?)?;
    m.add_function(wrap_pyfunction!(ledger::ledger_export, m)?)?;
    m.add_function(wrap_pyfunction!(ledger::ledger_import, m)?)?;
    m.add_function(wrap_pyfunction!(ledger::ledger_spend, m)?)?;
    m.add("LedgerError", py.get_type::<errors::LedgerError>())?;
    m.add("SCHEMA_VERSION", crate::store::SCHEMA_VERSION)?;
    m.add("LlmLedgerError", py.get_type::<errors::LlmLedgerError>())?;
    m.add(
        "PriceCatalogError",
        py.get_type::<errors::PriceCatalogError>(),
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    fork::register(m)?;
    Ok(())
}
