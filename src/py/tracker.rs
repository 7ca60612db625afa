//! `llmledger._core.Tracker`: the frozen Python class the `CostTracker` shim holds.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use pyo3::{PyTraverseError, PyVisit};

use super::budget::{self, AlertSinks, PyClock};
use super::catalog::{catalog_with, price_dict};
use super::convert;
use super::extract;
use super::held::HeldPrompts;
use super::log::{log_error, log_exception, log_warnings};
use super::metrics::PyMetrics;
use super::run_ids;
use super::tokens;
use crate::budget::{BudgetBackend, Budgets, RedisBudgets};
use crate::money::Decimal;
use crate::report;
use crate::tracker::{EndInfo, StartInfo, StartResult, Tracker, TrackerConfig};

/// Errors are recorded as `Type: message`, at most this many characters.
const MAX_ERROR_CHARS: usize = 500;

/// The core of a `CostTracker`: per-run state, records and totals, all behind locks, shared
/// by every thread and task.
#[pyclass(frozen, module = "llmledger._core", name = "Tracker")]
pub struct PyTracker {
    core: Arc<Tracker>,
    attribute_keys: Vec<Py<PyString>>,
    /// Where budget alerts go (logger, `on_alert`, webhook).
    sinks: AlertSinks,
    /// The first calls' check for a captured key sent under a near name (`userId`).
    key_watch: crate::guidance::KeyWatch,
    /// Hook calls that failed inside llmledger (bad arguments, conversion errors, panics):
    /// logged, never raised.
    internal_errors: AtomicU64,
    /// Whether the budgets live in a shared store (Redis): their calls release the GIL.
    shared_budgets: bool,
    /// The `clock=` callable's holder (also the core's clock), for the garbage collector.
    clock: Option<Arc<PyClock>>,
    /// `on_record`: called with each finished record's dict (behind a lock only so the
    /// garbage collector can clear it; taken only for a record the core returned).
    on_record: parking_lot::Mutex<Option<Py<PyAny>>>,
    /// Open runs' prompts, by reference, to count at their end if the response reports no
    /// usage (trackers without budgets; see `held.rs`).
    held: HeldPrompts,
    /// `advise=True`: which live hints were logged.
    live: Option<crate::advise::live::Live>,
}

fn error_text(error: &Bound<'_, PyAny>) -> String {
    let ty = error
        .get_type()
        .name()
        .map_or_else(|_| "Error".into(), |n| n.to_string());
    let msg = error.str().map(|s| s.to_string()).unwrap_or_default();
    let mut s = if msg.is_empty() {
        ty
    } else {
        format!("{ty}: {msg}")
    };
    if s.chars().count() > MAX_ERROR_CHARS {
        s = s.chars().take(MAX_ERROR_CHARS).collect::<String>() + "...";
    }
    s
}

/// What `advise()` says of a tracker whose calls carry no request fingerprints.
const NO_FINGERPRINTS: &str = "advise(): this tracker records no request fingerprints (off by \
    default without a ledger, or turned off), so the rules that need them (prompt_caching, duplicate_requests, \
    uncapped_output) find nothing in its calls: CostTracker(fingerprints=True), or store=, \
    records them";

/// The fingerprint secret: the ledger's (its owner-only key file), or for a tracker without
/// a ledger (or whose key file cannot be read) a fresh one for this tracker, with a warning.
fn fingerprint_key(py: Python<'_>, store: Option<&crate::store::Store>) -> crate::fingerprint::Key {
    use crate::fingerprint::Key;
    if let Some(s) = store {
        let loc = s.location().clone();
        match py.detach(|| crate::store::fingerprint_key(&loc)) {
            Ok(k) => return k,
            Err(e) => log_warnings(
                py,
                &[format!(
                    "{e}: this tracker's request fingerprints get a key of their own, so the \
                     advisor cannot match them with other processes' calls"
                )],
            ),
        }
    }
    // The OS's randomness failing is not a reason to stop tracking: the time and process id
    // still make a key that no key file holds.
    Key::random().unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        #[allow(clippy::cast_possible_truncation)]
        Key([t as u64, u64::from(std::process::id()) ^ (t >> 64) as u64])
    })
}

fn opt_uuid(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u128>> {
    match v {
        Some(v) if !v.is_none() => Ok(Some(run_ids::run_id(v)?)),
        _ => Ok(None),
    }
}

/// Calls `on_record` with a finished record's dict (no Rust lock is held: the core released
/// them when `end` returned). Whatever it raises is logged with its traceback, never raised.
fn call_on_record(py: Python<'_>, hook: &Py<PyAny>, r: &crate::ledger::CallRecord) {
    let result = convert::record_dict(py, r).and_then(|d| hook.call1(py, (d,)));
    if let Err(e) = result {
        let message = format!(
            "on_record raised {} (ignored; the call was recorded)",
            error_text(e.value(py).as_any())
        );
        log_exception(py, &message, &e);
    }
}

impl PyTracker {
    /// The core tracker (for the dashboard's digest, `follow.rs`).
    pub(super) fn core(&self) -> &Arc<Tracker> {
        &self.core
    }

    /// Logs a hook's failure on the `llmledger` logger and counts it; the call goes on.
    pub(super) fn internal_error(&self, py: Python<'_>, hook: &str, message: &str) {
        self.internal_errors.fetch_add(1, Ordering::Relaxed);
        log_error(
            py,
            &format!("internal error in {hook} (the call goes on untracked): {message}"),
        );
    }

    /// Whether the core may count this run's tokens itself (see `Tracker::may_estimate`).
    fn may_estimate(&self, info: &EndInfo) -> bool {
        self.core.may_estimate(info)
    }

    /// Records an ended run, logs what the core had to say about it and sends the budget
    /// alerts it fired.
    fn record(&self, py: Python<'_>, mut info: EndInfo, tags: Option<&Bound<'_, PyAny>>) {
        self.count_held_prompt(py, &mut info);
        let outcome = if self.shared_budgets || self.may_estimate(&info) {
            // The core may count the prompt and output: without the GIL (can be long); a
            // shared budget store's settlement is a network request. A fork waits for this
            // (it takes the tracker's locks without the GIL: see `crate::fork`).
            let tags = tags.map(extract::tag_list).unwrap_or_default();
            py.detach(|| {
                let _fork = crate::fork::hook_work();
                self.core.end(info, || tags)
            })
        } else {
            self.core
                .end(info, || tags.map(extract::tag_list).unwrap_or_default())
        };
        log_warnings(py, &outcome.warnings);
        self.log_budget_messages(py);
        if !outcome.alerts.is_empty() {
            self.sinks.dispatch(py, outcome.alerts);
        }
        if let Some(r) = outcome.record {
            // The reference is cloned out so the lock is not held while Python runs.
            let hook = self.on_record.lock().as_ref().map(|h| h.clone_ref(py));
            if let Some(hook) = hook {
                call_on_record(py, &hook, &r);
            }
        }
        if let Some(live) = &self.live {
            super::advise::live_hints(py, &self.core, live);
        }
    }

    /// Applies the settlements still on their way to a shared budget store and sends the
    /// alerts they fired.
    fn flush_budgets(&self, py: Python<'_>) {
        if let Some(b) = self.core.budgets() {
            let alerts = py.detach(|| b.flush());
            self.log_budget_messages(py);
            if !alerts.is_empty() {
                self.sinks.dispatch(py, alerts);
            }
        }
    }

    /// Logs what a shared budget store had to say (it became unreachable, came back).
    fn log_budget_messages(&self, py: Python<'_>) {
        if let Some(b) = self.core.budgets() {
            for m in b.take_messages() {
                log_error(py, &m);
            }
        }
    }

    /// What a start does with its prompt. With budgets, it is counted now for the reservation
    /// (through the token memo: only messages never seen are tokenized, without the GIL when
    /// long). Without budgets and with estimates on, nothing is read or copied: a reference to
    /// it is returned, held until the end, and counted only if the response reports no usage.
    fn prompt_at_start(
        &self,
        py: Python<'_>,
        call: &Start<'_, '_>,
        info: &mut StartInfo,
    ) -> Option<tokens::PromptRef> {
        if self.core.budgets().is_some() {
            info.max_output = extract::max_output(call.invocation_params);
            let inputs = call.inputs?;
            let counter = crate::tokens::counter_for(info.model.as_deref().unwrap_or_default());
            let tools = tokens::tools_param(call.invocation_params);
            info.prompt_tokens = tokens::count_prompt(py, inputs, tools.as_ref(), &counter);
            return None;
        }
        if !self.core.config().estimate {
            return None;
        }
        tokens::PromptRef::of(call.inputs?, call.invocation_params)
    }

    /// At a run's end: lets go of the prompt its start held, counting it first when the core
    /// will estimate the call's input (the response reports no usage, or a malformed input
    /// count), for the model the core counts for (the response's, else the one asked for).
    fn count_held_prompt(&self, py: Python<'_>, info: &mut EndInfo) {
        let Some(held) = self.held.take(info.run_id) else {
            return;
        };
        if self.core.needs_prompt(info) {
            let model = info.model.as_deref().or(held.model.as_deref());
            let counter = crate::tokens::counter_for(model.unwrap_or_default());
            info.prompt_tokens = held.prompt.count(py, &counter);
        }
        // Dropped here: with the GIL, no lock held.
        drop(held);
    }

    /// A budget's refusal becomes `BudgetExceededError`, after its alert (if due) went out.
    /// A call refused at its start is never sent, and LangChain sends no error event after a
    /// start hook raises: every other budgeted tracker forgets the run it admitted.
    fn refused(&self, py: Python<'_>, run_id: u128, result: StartResult) -> PyResult<()> {
        self.log_budget_messages(py);
        match result {
            Ok(()) => Ok(()),
            Err(mut refusal) => {
                if let Some(alert) = refusal.alert.take() {
                    self.sinks.dispatch(py, vec![alert]);
                }
                budgeted::abandon_elsewhere(&self.core, run_id);
                Err(budget::exceeded_error(py, &refusal))
            }
        }
    }
}

/// A start hook's arguments.
pub(super) struct Start<'a, 'py> {
    pub serialized: Option<&'a Bound<'py, PyAny>>,
    pub run_id: &'a Bound<'py, PyAny>,
    pub parent_run_id: Option<&'a Bound<'py, PyAny>>,
    pub tags: Option<&'a Bound<'py, PyAny>>,
    pub metadata: Option<&'a Bound<'py, PyAny>>,
    /// `invocation_params` (the model, its limits, the tools).
    pub invocation_params: Option<&'a Bound<'py, PyAny>>,
    /// `name` (the run's name).
    pub name: Option<&'a Bound<'py, PyAny>>,
    pub inputs: Option<&'a Bound<'py, PyAny>>,
    /// `on_llm_start` (a completion model on text prompts), not `on_chat_model_start`.
    pub completion: bool,
}

/// The process's trackers with budgets, so that one refusing a call can release what the
/// others reserved for it.
mod budgeted {
    use std::sync::{Arc, Weak};

    use parking_lot::Mutex;

    use crate::tracker::Tracker;

    static TRACKERS: Mutex<Vec<Weak<Tracker>>> = Mutex::new(Vec::new());

    /// Adds `tracker` (dropped trackers leave the list as others are added).
    pub fn register(tracker: &Arc<Tracker>) {
        let mut all = TRACKERS.lock();
        all.retain(|t| t.strong_count() > 0);
        all.push(Arc::downgrade(tracker));
    }

    /// Every budgeted tracker but `refuser` forgets `run_id`, releasing its reservation.
    pub fn abandon_elsewhere(refuser: &Tracker, run_id: u128) {
        let others: Vec<Arc<Tracker>> = TRACKERS
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|t| !std::ptr::eq(Arc::as_ptr(t), refuser))
            .collect();
        for t in others {
            t.abandon(run_id);
        }
    }
}

/// The hooks' work, called by the fastcall functions of `hooks.rs` with LangChain's
/// arguments. Their errors go back to the hooks' entry point (`hooks.rs`), which logs and
/// counts them: none reaches the application but a budget stop.
impl PyTracker {
    /// `on_chat_model_start` / `on_llm_start`: remembers the run's context (metadata only
    /// arrives at the start) and, with budgets, reserves the call's worst-case cost or refuses
    /// it.
    pub(super) fn on_start(&self, py: Python<'_>, call: &Start<'_, '_>) -> PyResult<()> {
        let run_id = run_ids::run_id(call.run_id)?;
        let mut info = extract::start_info(
            run_id,
            opt_uuid(call.parent_run_id)?,
            call.serialized,
            call.tags,
            call.metadata,
            call.invocation_params,
            call.name,
        );
        if let Some(md) = call.metadata.and_then(|m| m.cast::<PyDict>().ok()) {
            let keys = &self.core.config().attribute;
            let captured = extract::attribution(md, keys, &self.attribute_keys, &mut info.warnings);
            info.attribution.extend(captured);
            if self.key_watch.active() && self.key_watch.lacks_some(&info.attribution) {
                let keys: Vec<String> = md.keys().iter().filter_map(|k| k.extract().ok()).collect();
                log_warnings(py, &self.key_watch.check(&info.attribution, &keys));
            }
        }
        log_warnings(py, &std::mem::take(&mut info.warnings));
        info.completion = call.completion;
        if !self.core.local_endpoints().is_empty() {
            info.base_url = extract::base_url(call.serialized, call.invocation_params);
        }
        let held = self.prompt_at_start(py, call, &mut info);
        if let Some(key) = self.core.fingerprint_key() {
            // The request fingerprint hashes the Python strings' own text (no copy), here
            // while the prompt is at hand; the core keeps the result.
            if info.max_output.is_none() {
                info.max_output = extract::max_output(call.invocation_params);
            }
            info.params = extract::request_params(call.invocation_params);
            info.fingerprint = call
                .inputs
                .and_then(|i| {
                    let model = info.model.as_deref();
                    tokens::fingerprint(py, key, i, call.invocation_params, model, &info.params)
                })
                .map(Arc::new);
        }
        let model = if held.is_some() {
            info.model.clone()
        } else {
            None
        };
        let result = if self.shared_budgets {
            // A shared budget store's reservation is a network request: without the GIL.
            py.detach(|| {
                let _fork = crate::fork::hook_work();
                self.core.start(info)
            })
        } else {
            self.core.start(info)
        };
        if let (Some(prompt), Ok(())) = (held, &result) {
            self.held.hold(run_id, prompt, model);
        }
        self.refused(py, run_id, result)
    }

    /// `on_llm_new_token`: counts streamed chunks and keeps their text (to estimate a stream
    /// that reports no usage, or for a budget that may cut it).
    pub(super) fn on_token(
        &self,
        py: Python<'_>,
        run_id: &Bound<'_, PyAny>,
        token: Option<&Bound<'_, PyAny>>,
        chunk: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let run_id = run_ids::run_id(run_id)?;
        let result = match token {
            Some(t) if self.core.wants_stream_text() => {
                let text = tokens::chunk_text(t, chunk);
                if self.shared_budgets {
                    py.detach(|| {
                        let _fork = crate::fork::hook_work();
                        self.core.token(run_id, &text)
                    })
                } else {
                    self.core.token(run_id, &text)
                }
            }
            _ => self.core.token(run_id, ""),
        };
        let result = result.map(|cumulative| {
            // Only a run whose chunks carry running totals (Qianfan's) reads the chunk's usage.
            if cumulative {
                if let Some(u) = chunk.and_then(extract::chunk_usage) {
                    self.core.chunk_usage(run_id, u);
                }
            }
        });
        self.refused(py, run_id, result)
    }

    /// `on_llm_end`: reads the response's usage, prices and records the call.
    pub(super) fn on_end(
        &self,
        py: Python<'_>,
        response: &Bound<'_, PyAny>,
        run_id: &Bound<'_, PyAny>,
        parent_run_id: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut info = EndInfo {
            run_id: run_ids::run_id(run_id)?,
            parent_run_id: opt_uuid(parent_run_id)?,
            ..EndInfo::default()
        };
        extract::end_info(response, &mut info);
        if self.may_estimate(&info) {
            info.output_text = tokens::output_texts(response);
        }
        self.record(py, info, tags);
        Ok(())
    }

    /// `on_llm_error`: records the failure (and any usage a partial `response` carries).
    pub(super) fn on_error(
        &self,
        py: Python<'_>,
        error: &Bound<'_, PyAny>,
        run_id: &Bound<'_, PyAny>,
        parent_run_id: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
        response: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut info = EndInfo {
            run_id: run_ids::run_id(run_id)?,
            parent_run_id: opt_uuid(parent_run_id)?,
            error: Some(error_text(error)),
            ..EndInfo::default()
        };
        if let Some(r) = response.filter(|r| !r.is_none()) {
            extract::end_info(r, &mut info);
        }
        self.record(py, info, tags);
        Ok(())
    }

    /// `on_chain_start` (and tool and retriever starts): runs above the LLM are remembered
    /// only to find each call's root run (and the root's name).
    pub(super) fn on_chain_start(
        &self,
        serialized: Option<&Bound<'_, PyAny>>,
        run_id: &Bound<'_, PyAny>,
        parent_run_id: Option<&Bound<'_, PyAny>>,
        name: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let parent = opt_uuid(parent_run_id)?;
        // Only a root's name is ever reported; nested runs need just their parent link.
        let name = if parent.is_none() {
            name.and_then(extract::text_of)
                .or_else(|| serialized.and_then(extract::serialized_name))
        } else {
            None
        };
        self.core
            .chain_start(run_ids::run_id(run_id)?, parent, name.as_deref());
        Ok(())
    }

    /// `on_chain_end` / `on_chain_error` (and tool and retriever ends and errors).
    pub(super) fn on_chain_end(&self, run_id: &Bound<'_, PyAny>) -> PyResult<()> {
        self.core.chain_end(run_ids::run_id(run_id)?);
        Ok(())
    }
}

#[pymethods]
impl PyTracker {
    #[new]
    #[pyo3(signature = (*, attribute=None, prices=None, max_records=None, estimate=true, fingerprints=None, advise=false, store=None, durability=None, budgets=None, on_alert=None, alert_webhook=None, clock=None, log_alerts=true, on_record=None, budget_store=None, budget_prefix=None, budget_lease=None, budget_timeout=None, budget_backend_error=None, metrics=None, local_endpoints=None))]
    // Python's keyword arguments, one per option.
    #[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
    fn new(
        py: Python<'_>,
        attribute: Option<Vec<String>>,
        prices: Option<&Bound<'_, PyAny>>,
        max_records: Option<usize>,
        estimate: bool,
        fingerprints: Option<bool>,
        advise: bool,
        store: Option<&Bound<'_, PyAny>>,
        durability: Option<&str>,
        budgets: Option<&Bound<'_, PyAny>>,
        on_alert: Option<&Bound<'_, PyAny>>,
        alert_webhook: Option<&str>,
        clock: Option<&Bound<'_, PyAny>>,
        log_alerts: bool,
        on_record: Option<&Bound<'_, PyAny>>,
        budget_store: Option<&str>,
        budget_prefix: Option<&str>,
        budget_lease: Option<f64>,
        budget_timeout: Option<f64>,
        budget_backend_error: Option<&str>,
        metrics: Option<Vec<PyRef<'_, PyMetrics>>>,
        local_endpoints: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let local_endpoints = local_endpoint_list(local_endpoints)?;
        let shared = budget::shared_settings(
            budget_store,
            budget_prefix,
            budget_lease,
            budget_timeout,
            budget_backend_error,
        )?;
        let metrics: Vec<Arc<crate::metrics::Metrics>> = metrics
            .unwrap_or_default()
            .iter()
            .map(|m| m.core().clone())
            .collect();
        let on_record = match on_record.filter(|f| !f.is_none()) {
            Some(f) if !f.is_callable() => {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "on_record= must be a callable taking one record dict, or None",
                ))
            }
            f => f.map(|f| f.clone().unbind()),
        };
        let budgets = match budgets.filter(|b| !b.is_none()) {
            Some(b) => Some(Budgets::new(budget::definitions(b)?)?),
            None => None,
        };
        let attribute = captured_keys(attribute, budgets.as_ref(), &metrics)?;
        let attribute_keys = attribute
            .iter()
            .map(|k| PyString::new(py, k).unbind())
            .collect();
        let key_watch = key_watch(&attribute);
        let catalog = catalog_with(prices)?;
        let mut core = Tracker::new(TrackerConfig {
            attribute,
            catalog,
            max_records,
            estimate,
        });
        let store = super::ledger::open_store(py, store, durability)?;
        if !local_endpoints.is_empty() {
            core = core.with_local_endpoints(local_endpoints);
        }
        // By default, only where something reads them: a ledger (`llmledger advise`, the
        // advisor over it) or the live hints. They cost a start about a third of its time.
        if fingerprints.unwrap_or(store.is_some() || advise) {
            core = core.with_fingerprints(fingerprint_key(py, store.as_deref()));
        }
        if let Some(s) = store {
            core = core.with_store(s);
        }
        let clock = clock
            .filter(|c| !c.is_none())
            .map(|c| PyClock::new(c).map(Arc::new))
            .transpose()?;
        if let Some(c) = &clock {
            core = core.with_clock(c.clone());
        }
        if on_record.is_some() {
            core = core.with_records_returned();
        }
        for m in metrics {
            core = core.with_metrics(m);
        }
        let sinks = AlertSinks::new(on_alert, alert_webhook, log_alerts)?;
        let budgeted = budgets.is_some();
        if let Some(b) = budgets {
            core = match shared {
                // Shared windows: a missing one is seeded from the ledger by the backend.
                Some(settings) => {
                    let ledger = core.store().map(|s| {
                        Arc::new(crate::store::StoreSpend(s.clone())) as crate::budget::SharedLedger
                    });
                    let redis = RedisBudgets::new(b.definitions().to_vec(), settings, ledger)?;
                    core.with_budget_backend(Box::new(redis))
                }
                None => core.with_budgets(b),
            };
            // Resume the current windows from the durable ledger (a restart, or other
            // processes writing to it).
            let warnings = core.preload_budgets()?;
            log_warnings(py, &warnings);
        } else if shared.is_some() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "budget_store= shares budgets among processes: pass budgets=[...] too",
            ));
        }
        let shared_budgets = core.budgets().is_some_and(BudgetBackend::is_shared);
        let core = Arc::new(core);
        if budgeted {
            budgeted::register(&core);
        }
        Ok(PyTracker {
            core,
            attribute_keys,
            sinks,
            key_watch,
            internal_errors: AtomicU64::new(0),
            shared_budgets,
            clock,
            on_record: parking_lot::Mutex::new(on_record),
            held: HeldPrompts::default(),
            live: advise.then(crate::advise::live::Live::default),
        })
    }

    /// The Python objects it holds (`on_alert`, `clock`, `on_record`), for the garbage collector: a
    /// tracker given a bound method of an object that holds the tracker is a cycle.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.sinks.traverse(&visit)?;
        // Never wait during a collection: a busy lock only delays collecting a cycle.
        if let Some(f) = self.on_record.try_lock() {
            if let Some(f) = f.as_ref() {
                visit.call(f)?;
            }
        }
        if let Some(c) = &self.clock {
            c.traverse(&visit)?;
        }
        self.held.traverse(&visit)?;
        Ok(())
    }

    /// Lets go of them (the garbage collector breaking such a cycle).
    fn __clear__(&self) {
        self.sinks.clear();
        let f = self.on_record.lock().take();
        drop(f);
        if let Some(c) = &self.clock {
            c.clear();
        }
        self.held.clear();
    }

    /// What to change and how many dollars it is worth, from this tracker's calls (its
    /// ledger's, when it has one): a list of finding dicts, largest saving first (see
    /// `ledger_advise`).
    #[pyo3(signature = (since=None, *, min_saving=None, batch_keywords=None))]
    fn advise<'py>(
        &self,
        py: Python<'py>,
        since: Option<&Bound<'py, PyAny>>,
        min_saving: Option<&Bound<'py, PyAny>>,
        batch_keywords: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = super::advise::options(min_saving, batch_keywords)?;
        if self.core.store().is_none() && self.core.fingerprint_key().is_none() {
            log_warnings(py, &[NO_FINGERPRINTS.to_string()]);
        }
        let advice = super::advise::tracker_advice(py, &self.core, since, options)?;
        super::advise::advice_object(py, &advice)?.get_item("findings")
    }

    /// Running totals as a dict.
    fn totals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        convert::totals_dict(py, &self.core.totals())
    }

    #[getter]
    fn total_tokens(&self) -> u64 {
        self.core.totals().usage.total()
    }
    #[getter]
    fn prompt_tokens(&self) -> u64 {
        self.core.totals().usage.input
    }
    #[getter]
    fn completion_tokens(&self) -> u64 {
        self.core.totals().usage.output
    }
    #[getter]
    fn prompt_tokens_cached(&self) -> u64 {
        self.core.totals().usage.cache_read
    }
    #[getter]
    fn cache_write_tokens(&self) -> u64 {
        self.core.totals().usage.cache_write
    }
    #[getter]
    fn reasoning_tokens(&self) -> u64 {
        self.core.totals().usage.reasoning
    }
    #[getter]
    fn successful_requests(&self) -> u64 {
        self.core.totals().successful_requests
    }
    #[getter]
    fn failed_requests(&self) -> u64 {
        self.core.totals().failed_requests
    }
    #[getter]
    fn unpriced_calls(&self) -> u64 {
        self.core.totals().unpriced_calls
    }
    #[getter]
    fn llm_cache_hits(&self) -> u64 {
        self.core.totals().llm_cache_hits
    }
    #[getter]
    fn estimated_calls(&self) -> u64 {
        self.core.totals().estimated_calls
    }
    #[getter]
    fn total_cost(&self) -> Decimal {
        self.core.totals().cost.normalize()
    }
    #[getter]
    fn catalog_version(&self) -> String {
        self.core.config().catalog.version().to_string()
    }
    #[getter]
    fn open_runs(&self) -> usize {
        self.core.open_runs()
    }
    /// Open runs whose prompt is held by reference (to count at the end if the response
    /// reports no usage).
    #[getter]
    fn held_prompts(&self) -> usize {
        self.held.len()
    }
    /// Hook calls that failed inside llmledger (bad arguments, an internal error): each was
    /// logged on the `llmledger` logger and the LLM call went on.
    #[getter]
    fn internal_errors(&self) -> u64 {
        self.internal_errors.load(Ordering::Relaxed)
    }
    #[getter]
    fn dropped_records(&self) -> u64 {
        self.core.dropped_records()
    }
    #[getter]
    fn attribute(&self) -> Vec<String> {
        self.core
            .config()
            .attribute
            .iter()
            .map(std::string::ToString::to_string)
            .collect()
    }

    /// Group-by summary rows (dicts), most expensive first; with `currency` and `rate`, each
    /// row also says its cost in that currency (`converted_cost`, exact).
    #[pyo3(signature = (by=None, currency=None, rate=None))]
    fn summary<'py>(
        &self,
        py: Python<'py>,
        by: Option<Vec<String>>,
        currency: Option<&str>,
        rate: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let cur = convert::currency_arg(currency, rate)?;
        let by = by.unwrap_or_default();
        let rows = self.core.summary(&by)?;
        let out = PyList::empty(py);
        for r in &rows {
            let d = convert::row_dict(py, &by, r)?;
            if let Some(c) = &cur {
                convert::add_converted(&d, &r.totals, c)?;
            }
            out.append(d)?;
        }
        Ok(out)
    }

    /// A text table grouped by `by` (default: model); with `currency` and `rate`, the cost
    /// column in that currency and a line naming the rate.
    #[pyo3(signature = (by=None, currency=None, rate=None))]
    fn report(
        &self,
        by: Option<Vec<String>>,
        currency: Option<&str>,
        rate: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let cur = convert::currency_arg(currency, rate)?;
        let by = by.unwrap_or_else(|| vec!["model".into()]);
        let rows = self.core.summary(&by)?;
        let mut out = report::table_in(&by, &rows, &self.core.totals(), cur.as_ref());
        let dropped = self.core.dropped_records();
        if dropped > 0 {
            let _ = write!(
                out,
                "\n({dropped} older records were dropped from memory by max_records; TOTAL counts them, the rows do not)"
            );
        }
        Ok(out)
    }

    /// The kept per-call records, oldest first, as dicts.
    fn records<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for r in self.core.records() {
            out.append(convert::record_dict(py, &r)?)?;
        }
        Ok(out)
    }

    /// `get_openai_callback`'s summary text plus llmledger's extra lines.
    fn summary_text(&self) -> String {
        let mut s = report::totals_text(&self.core.totals());
        let blocked = self.core.blocked_calls();
        if blocked > 0 {
            let _ = write!(s, "\nBlocked Requests (budget): {blocked}");
        }
        s
    }

    /// Waits until every call recorded so far is in the durable ledger and every queued
    /// webhook alert went out or was given up on (no-op without them).
    fn flush(&self, py: Python<'_>) {
        self.flush_budgets(py);
        if let Some(s) = self.core.store() {
            py.detach(|| s.flush());
            log_warnings(py, &s.take_messages());
        }
        self.sinks.flush(py);
    }

    /// Flushes and closes the durable ledger and the alert webhook; later calls are tracked
    /// in memory only.
    fn close(&self, py: Python<'_>) {
        self.flush_budgets(py);
        if let Some(s) = self.core.store() {
            py.detach(|| s.close());
            log_warnings(py, &s.take_messages());
        }
        self.sinks.close(py);
    }

    /// Every budget's state, per scope value, as dicts.
    fn budgets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for s in self.core.budget_states() {
            out.append(budget::state_dict(py, &s)?)?;
        }
        Ok(out)
    }

    /// Clears the current window's spend (and fired thresholds) of budget `name` (None:
    /// all), for scope `value` (None: all values). Returns how many were reset.
    #[pyo3(signature = (name=None, value=None))]
    fn reset_budget(&self, name: Option<&str>, value: Option<&str>) -> PyResult<usize> {
        match self.core.budgets() {
            Some(b) => Ok(b.reset(name, value)?),
            None => Err(pyo3::exceptions::PyValueError::new_err(
                "this tracker has no budgets: pass CostTracker(budgets=[...])",
            )),
        }
    }

    /// Calls refused by a blocking budget.
    #[getter]
    fn blocked_calls(&self) -> u64 {
        self.core.blocked_calls()
    }

    /// The alert webhook's host and counts (`sent`, `failed`, `dropped`), or None.
    fn alert_info<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.sinks.stats(py)
    }

    /// The shared budget store's address (no password), settings and counters, or None
    /// (in-process budgets, or none).
    fn budget_store_info<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.log_budget_messages(py);
        self.core
            .budgets()
            .and_then(BudgetBackend::info)
            .map(|i| budget::backend_info_dict(py, &i))
            .transpose()
    }

    /// Calls in flight holding a budget reservation in this tracker.
    #[getter]
    fn open_reservations(&self) -> usize {
        self.core
            .budgets()
            .map_or(0, BudgetBackend::open_reservations)
    }

    /// The durable ledger's path, format, durability and counters, or None.
    fn store_info<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.core
            .store()
            .map(|s| super::ledger::stats_dict(py, s))
            .transpose()
    }

    /// Forgets every record and total.
    fn reset(&self) {
        self.core.reset();
    }

    /// The catalog entry this tracker would price `model` with, or None.
    #[pyo3(signature = (model, provider=None))]
    fn price<'py>(
        &self,
        py: Python<'py>,
        model: &str,
        provider: Option<&str>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        price_dict(py, &self.core.config().catalog, model, provider)
    }
}

/// `local_endpoints=`: a list (or any iterable) of base URL strings, normalised; a string
/// alone is one URL. A malformed entry is a `ValueError` naming it, a non-string a
/// `TypeError`.
fn local_endpoint_list(
    v: Option<&Bound<'_, PyAny>>,
) -> PyResult<crate::local_endpoints::LocalEndpoints> {
    let mut urls: Vec<String> = Vec::new();
    if let Some(v) = v.filter(|v| !v.is_none()) {
        let not_str = || {
            pyo3::exceptions::PyTypeError::new_err(
                "local_endpoints= must be a list of base URL strings, e.g. \
                 [\"http://localhost:8000/v1\"]",
            )
        };
        if let Ok(s) = v.cast::<PyString>() {
            urls.push(s.to_str()?.to_string());
        } else {
            for item in v.try_iter().map_err(|_| not_str())? {
                let item = item?;
                let s = item.cast::<PyString>().map_err(|_| not_str())?;
                urls.push(s.to_str()?.to_string());
            }
        }
    }
    crate::local_endpoints::LocalEndpoints::new(&urls)
        .map_err(pyo3::exceptions::PyValueError::new_err)
}

/// The watch over a tracker's first calls for captured keys sent under a near name. LangGraph's
/// node is captured from LangGraph's own metadata, never sent by the application: not a key
/// whose near misses are worth a warning.
fn key_watch(attribute: &[Arc<str>]) -> crate::guidance::KeyWatch {
    let watched: Vec<Arc<str>> = attribute
        .iter()
        .filter(|k| k.as_ref() != extract::NODE_KEY)
        .cloned()
        .collect();
    crate::guidance::KeyWatch::new(&watched)
}

/// The metadata keys a tracker captures: the ones asked for (`user_id`, `session_id` by
/// default), LangGraph's node, and every key a budget or a metrics label is per.
fn captured_keys(
    attribute: Option<Vec<String>>,
    budgets: Option<&Budgets>,
    metrics: &[Arc<crate::metrics::Metrics>],
) -> PyResult<Vec<Arc<str>>> {
    let mut attribute: Vec<Arc<str>> = attribute
        .unwrap_or_else(|| vec!["user_id".into(), "session_id".into()])
        .into_iter()
        .map(Arc::from)
        .collect();
    // LangGraph's node path is always captured (`extract::graph_node`), so `node` is a
    // dimension of every tracker.
    let node: Arc<str> = Arc::from(extract::NODE_KEY);
    if !attribute.contains(&node) {
        attribute.push(node);
    }
    // A budget per metadata key needs that key captured; one near a captured key is a typo.
    if let Some(b) = budgets {
        b.check_keys(&attribute)?;
    }
    for key in budgets.into_iter().flat_map(Budgets::metadata_keys) {
        if !attribute.contains(&key) {
            attribute.push(key);
        }
    }
    // A metrics label from metadata needs its key captured.
    for key in metrics.iter().flat_map(|m| m.metadata_keys()) {
        if !attribute.iter().any(|k| k.as_ref() == key) {
            attribute.push(Arc::from(key));
        }
    }
    Ok(attribute)
}
