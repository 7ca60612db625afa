//! llmledger's core: the cost ledger for LLM applications.
//!
//! Everything that counts lives here, in plain Rust that knows nothing about Python: the price
//! catalog and exact decimal money ([`catalog`], [`money`]), normalised token usage
//! ([`usage`]), per-call records and their aggregates ([`ledger`]) and the per-run state machine
//! that turns callback events into records ([`tracker`]), the durable ledger that keeps them
//! ([`store`]), token counting ([`tokens`]), budgets that stop a call before it spends
//! ([`budget`]), the aggregates monitoring systems collect ([`metrics`]), the webhook that carries their alerts ([`webhook`]), the nearest-name
//! suggestions of "did you mean ...?" messages ([`suggest`]) and the once-per-process
//! warnings that say how to fix what they warn about ([`guidance`]). The binding layer in
//! `py` (built with the default `python` feature) converts LangChain's objects into these
//! types and back.

pub mod advise;
pub mod budget;
pub mod catalog;
pub mod digest;
pub mod error;
pub mod fingerprint;
pub mod fork;
pub mod guidance;
pub mod ids;
pub mod ledger;
pub mod local_endpoints;
pub mod metrics;
pub mod money;
pub mod report;
pub mod shared_names;
pub mod store;
pub mod suggest;
pub mod tls;
pub mod tokens;
pub mod tracker;
pub mod usage;
pub mod webhook;

#[cfg(feature = "python")]
mod py;

pub use budget::{Alert, Budget, BudgetExceeded, Budgets, CallScope};
pub use catalog::{Catalog, CostBreakdown, Entry};
pub use error::{Error, Result};
pub use ledger::{CallRecord, Ledger, SummaryRow, Totals};
pub use money::Decimal;
pub use store::{Durability, Store};
pub use tracker::{EndInfo, StartInfo, Tracker, TrackerConfig};
pub use usage::{Usage, UsageSource};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
