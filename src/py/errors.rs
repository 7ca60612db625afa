//! The exception hierarchy, rooted at `llmledger.LlmLedgerError`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::PyErr;

use crate::error::Error;

create_exception!(
    llmledger,
    LlmLedgerError,
    PyException,
    "Base class of every exception llmledger raises."
);
create_exception!(
    llmledger,
    PriceCatalogError,
    LlmLedgerError,
    "A price catalog (a `prices=` dict or file) is malformed; the message names the entry and field."
);

create_exception!(
    llmledger,
    LedgerError,
    LlmLedgerError,
    "A durable ledger (SQLite or JSONL) cannot be opened or read: newer schema, not a ledger, unwritable path. The message names the file."
);

create_exception!(
    llmledger,
    BudgetExceededError,
    LlmLedgerError,
    "A blocking budget refused a call before it was sent (or cut a stream). Attributes: `budget`, `scope`, `value`, `limit`, `spent`, `reserved`, `requested`, `window`, `resets_at`; the message says the same in words. The only exception a CostTracker lets out."
);

create_exception!(
    llmledger,
    BudgetBackendError,
    BudgetExceededError,
    "The shared budget store (`budget_store=\"redis://...\"`) could not be asked and the tracker refuses calls then (`budget_backend_error=\"closed\"`). A subclass of `BudgetExceededError`, so code that stops on a budget stops on it too; `budget` and the other attributes are empty, the message says what failed (never the URL's password)."
);

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Catalog { .. } | Error::Io { .. } => PriceCatalogError::new_err(e.to_string()),
            Error::Ledger { .. } => LedgerError::new_err(e.to_string()),
            Error::InvalidArgument(m) => PyValueError::new_err(m),
        }
    }
}
