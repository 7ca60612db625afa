//! The per-run state machine: callback events in, call records out.
//!
//! LangChain hands `metadata` only to the start hooks, so the start captures everything a
//! record needs (model asked for, provider, attribution, tags, root run) keyed by run id; the
//! end adds what the response says (usage, model actually used, service tier), prices it and
//! records it. An end without a start (langchain#39633) is still recorded from what it
//! carries.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::budget::LedgerSpend as _;
use crate::budget::{
    Alert, BudgetBackend, BudgetExceeded, BudgetState, Budgets, CallScope, Clock, ReservationId,
    SystemClock,
};
use crate::catalog::{Catalog, Entry};
use crate::fingerprint;
use crate::ids::RunMap;
use crate::ledger::{CallRecord, Dimension, Ledger, RequestFacts, SummaryRow, Totals};
use crate::local_endpoints::LocalEndpoints;
use crate::metrics::Metrics;
use crate::money::Decimal;
use crate::store::Store;
use crate::tokens::{self, Prompt};
use crate::usage::{Fields, Usage};

mod end;

/// Chain runs remembered at most; past this (ends never seen) the map is cleared.
const MAX_OPEN_CHAINS: usize = 100_000;
/// LLM runs remembered at most; past this (ends never seen) the oldest half is dropped.
const MAX_OPEN_RUNS: usize = 100_000;
/// Streamed text held per run before it is counted and let go (keeps long streams small).
const STREAM_TEXT_COUNT_AT: usize = 256 * 1024;

/// How a tracker is set up.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// Metadata keys captured for attribution (default `user_id`, `session_id`).
    pub attribute: Vec<Arc<str>>,
    /// The price catalog (bundled, or bundled plus the user's overrides).
    pub catalog: Arc<Catalog>,
    /// Records kept in memory at most (`None`: all). Totals always count every call.
    pub max_records: Option<usize>,
    /// Count the tokens of calls whose response reports no usage (prompt captured at start,
    /// streamed or final text at end) and price them, marked estimated.
    pub estimate: bool,
}

/// What a start hook tells about a run.
#[derive(Clone, Debug, Default)]
pub struct StartInfo {
    /// The run's id.
    pub run_id: u128,
    /// Its parent's id.
    pub parent_run_id: Option<u128>,
    /// The run's name (`ChatOpenAI`, ...).
    pub name: Option<String>,
    /// The model asked for (invocation params, else `ls_model_name`).
    pub model: Option<Arc<str>>,
    /// `ls_provider`.
    pub provider: Option<Arc<str>>,
    /// Captured metadata values.
    pub attribution: Vec<(Arc<str>, String)>,
    /// The run's tags.
    pub tags: Vec<String>,
    /// The service tier asked for, if any.
    pub service_tier: Option<String>,
    /// The prompt, kept until the end in case usage must be estimated (and counted at
    /// start for a budget's reservation), when the caller hands it over as text.
    pub prompt: Option<Prompt>,
    /// The prompt's tokens, when the caller counted them itself (the binding counts a
    /// budgeted call's prompt through the token memo, without the GIL); used instead of
    /// `prompt` for the reservation and the end's estimate.
    pub prompt_tokens: Option<u64>,
    /// The most output tokens the request allows (`max_tokens` and its kin, times `n`), if
    /// it says: bounds a budget's reservation, and is recorded (the advisor's
    /// `uncapped_output`) when fingerprints are on.
    pub max_output: Option<u64>,
    /// The request's sampling parameters as the binding rendered them (equal bytes for equal
    /// parameters): part of the request fingerprint.
    pub params: Vec<u8>,
    /// The caller holds the prompt itself (by reference) to count at the end if need be:
    /// `prompt` is then only hashed for the request fingerprint, not kept.
    pub prompt_held: bool,
    /// A completion model's call on text prompts (`on_llm_start`), not a chat model's: the
    /// metrics' `gen_ai.operation.name`.
    pub completion: bool,
    /// The integration's stream chunks each carry the call's usage so far (a running total,
    /// not a delta), which LangChain adds up at the end: the last chunk's usage is the call's
    /// (see [`Tracker::token`] and [`Tracker::chunk_usage`]).
    pub cumulative_chunks: bool,
    /// The client's base URL (`ChatOpenAI(base_url=...)`), read only when the tracker has
    /// local endpoints ([`Tracker::with_local_endpoints`]).
    pub base_url: Option<String>,
    /// The request fingerprint, when the caller computed it (the binding hashes the Python
    /// strings' own text, no copy); else it is computed from `prompt`.
    pub fingerprint: Option<Arc<fingerprint::Fingerprint>>,
    /// Problems found while reading the start's arguments (attribution cut, tags dropped),
    /// for the binding to log.
    pub warnings: Vec<String>,
}

/// What a start hook made of a run: `Err` when a blocking budget refused it (the binding
/// raises `BudgetExceededError`, and no request is sent).
pub type StartResult = Result<(), Box<BudgetExceeded>>;

/// What a streamed chunk made of a run: `Ok(true)` when the run's chunks carry running-total
/// usage (the caller then hands the chunk's usage to [`Tracker::chunk_usage`]); `Err` when a
/// blocking `cut_streams` budget stops the stream.
pub type TokenResult = Result<bool, Box<BudgetExceeded>>;

/// What recording a finished run produced, for the binding to pass on.
#[derive(Debug, Default)]
pub struct EndOutcome {
    /// Warnings for the `llmledger` logger (malformed usage, unknown model, ...).
    pub warnings: Vec<String>,
    /// Budget thresholds the call's cost crossed.
    pub alerts: Vec<Alert>,
    /// A copy of the finished record, when the tracker returns them (see
    /// [`Tracker::with_records_returned`]); the totals already count it.
    pub record: Option<CallRecord>,
}

/// What an end (or error) hook tells about a run.
#[derive(Clone, Debug, Default)]
pub struct EndInfo {
    /// The run's id.
    pub run_id: u128,
    /// Its parent's id (used when the start was never seen).
    pub parent_run_id: Option<u128>,
    /// The usage read from the response, if any.
    pub usage: Option<Usage>,
    /// True when the response is a replay from LangChain's LLM cache.
    pub llm_cache_hit: bool,
    /// The model the response names (often a dated snapshot).
    pub model: Option<Arc<str>>,
    /// The service tier the response reports.
    pub service_tier: Option<String>,
    /// Problems found while reading the response (malformed fields).
    pub warnings: Vec<String>,
    /// The usage fields the response got wrong (malformed, or an input or output count
    /// missing): the tracker counts input and output itself where it can, and records the
    /// others as unknown (see [`crate::usage::PARTIAL_PREFIX`]).
    pub malformed: Fields,
    /// The error, for `on_llm_error`.
    pub error: Option<String>,
    /// Where usage details missing from `usage_metadata` were read instead (see
    /// [`crate::ledger::CallRecord::usage_notes`]).
    pub usage_notes: Option<String>,
    /// The generated text (messages, tool calls), read only when the tracker may count
    /// tokens ([`Tracker::may_estimate`]).
    pub output_text: Vec<String>,
    /// The prompt's tokens, counted by the caller at the end from a prompt it kept by
    /// reference (the binding does not copy the prompt at start), when the start left no
    /// prompt of its own and [`Tracker::needs_prompt`] said so.
    pub prompt_tokens: Option<u64>,
}

struct RunContext {
    started: Instant,
    parent_run_id: Option<u128>,
    root_run_id: u128,
    root_run_name: Option<Arc<str>>,
    model: Option<Arc<str>>,
    provider: Option<Arc<str>>,
    attribution: Vec<(Arc<str>, String)>,
    tags: Vec<String>,
    service_tier: Option<String>,
    chunks: u32,
    prompt: Option<Prompt>,
    /// Streamed text not yet counted.
    streamed: String,
    /// Tokens of streamed text already counted (long streams, or every chunk when a budget
    /// cuts streams).
    streamed_tokens: u64,
    /// The prompt's tokens, counted at start for a budget's reservation (the prompt itself
    /// is then let go).
    prompt_tokens: Option<u64>,
    /// The budget reservation this run holds.
    reservation: Option<ReservationId>,
    /// The catalog entry its reservation was priced with and the model's token counter,
    /// kept to count and price a stream's running estimate when a budget cuts streams.
    priced_by: Option<(Arc<Entry>, tokens::Counter)>,
    /// The request's cap and fingerprints, for the record.
    request: RequestFacts,
    /// A completion model's call (see [`StartInfo::completion`]).
    completion: bool,
    /// See [`StartInfo::cumulative_chunks`].
    cumulative_chunks: bool,
    /// The latest usage a chunk of a `cumulative_chunks` run carried (boxed: every run
    /// carries the field, few ever fill it).
    chunk_usage: Option<Box<Usage>>,
    /// The user's local endpoint its base URL lies under (normalised), if any.
    local_endpoint: Option<Arc<str>>,
}

/// A run's prompt as its start left it: the text (to count if usage must be estimated), or
/// its count (taken at start for a budget's reservation).
enum SeenPrompt {
    Text(Prompt),
    Counted(u64),
}

/// The catalog variant a service tier is priced at (`None`: standard prices).
fn price_variant(tier: Option<&str>) -> Option<&str> {
    crate::catalog::tier_variant(tier)
}

struct ChainNode {
    parent: Option<u128>,
    name: Option<Arc<str>>,
}

/// The tracker's core: thread-safe, shared by every run it sees.
pub struct Tracker {
    config: TrackerConfig,
    catalog_version: Arc<str>,
    runs: Mutex<RunMap<RunContext>>,
    chains: Mutex<RunMap<ChainNode>>,
    ledger: Mutex<Ledger>,
    /// The durable ledger every finished record is also sent to, if any.
    store: Option<Arc<Store>>,
    /// Budgets checked before each call and charged after it, if any.
    budgets: Option<Box<dyn BudgetBackend>>,
    /// Where time comes from (record times, budget windows); injectable for tests.
    clock: Arc<dyn Clock>,
    /// Calls refused by a blocking budget.
    blocked: AtomicU64,
    /// Whether `end` returns a copy of each record (for a per-record hook).
    return_records: bool,
    /// The secret request fingerprints are keyed with; `None`: no fingerprints.
    fingerprint_key: Option<fingerprint::Key>,
    /// Monitoring aggregates every finished (or refused) call is also counted in.
    metrics: Vec<Arc<Metrics>>,
    /// Base URLs whose calls are served by the user's own hardware (`local_endpoints=`).
    local_endpoints: LocalEndpoints,
}

/// Models already warned about as unpriced, process-wide: one warning per model.
fn warned_models() -> &'static Mutex<HashSet<String>> {
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    WARNED.get_or_init(|| Mutex::new(HashSet::new()))
}

impl Tracker {
    /// A tracker with `config`.
    pub fn new(config: TrackerConfig) -> Self {
        let catalog_version = Arc::from(config.catalog.version());
        Tracker {
            ledger: Mutex::new(Ledger::new(config.max_records)),
            config,
            catalog_version,
            runs: Mutex::new(RunMap::default()),
            chains: Mutex::new(RunMap::default()),
            store: None,
            budgets: None,
            clock: Arc::new(SystemClock),
            blocked: AtomicU64::new(0),
            return_records: false,
            fingerprint_key: None,
            metrics: Vec::new(),
            local_endpoints: LocalEndpoints::default(),
        }
    }

    /// This tracker, recording calls to `endpoints` as local (cost 0, `price_entry`
    /// `local:<endpoint>`) unless the user's prices name their model (see
    /// [`crate::local_endpoints`]).
    #[must_use]
    pub fn with_local_endpoints(mut self, endpoints: LocalEndpoints) -> Self {
        self.local_endpoints = endpoints;
        self
    }

    /// The user's local endpoints (the binding reads a start's base URL only if there are).
    pub fn local_endpoints(&self) -> &LocalEndpoints {
        &self.local_endpoints
    }

    /// Records request fingerprints (and output caps) keyed with `key` (see
    /// [`crate::fingerprint`]).
    #[must_use]
    pub fn with_fingerprints(mut self, key: fingerprint::Key) -> Self {
        self.fingerprint_key = Some(key);
        self
    }

    /// Whether calls are fingerprinted (the binding then reads their prompts and caps).
    pub fn fingerprints(&self) -> bool {
        self.fingerprint_key.is_some()
    }

    /// The secret calls are fingerprinted with, if they are (for a caller that computes the
    /// fingerprint itself, `StartInfo::fingerprint`).
    pub fn fingerprint_key(&self) -> Option<fingerprint::Key> {
        self.fingerprint_key
    }

    /// What the start leaves for the advisor: the request's cap and fingerprints. Hashing
    /// the prompt once, front to back, is the only work (see [`crate::fingerprint::of`]).
    fn request_facts(&self, info: &mut StartInfo) -> RequestFacts {
        let Some(key) = self.fingerprint_key else {
            return RequestFacts::default();
        };
        let computed = info.fingerprint.take();
        RequestFacts {
            max_tokens: info.max_output,
            fingerprint: computed.or_else(|| {
                info.prompt
                    .as_ref()
                    .map(|p| Arc::new(fingerprint::of(key, p, info.model.as_deref(), &info.params)))
            }),
        }
    }

    /// This tracker, also counting every call in `metrics` (Prometheus, OpenTelemetry).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics.push(metrics);
        self
    }

    /// This tracker, returning a copy of each finished record from `end` (a per-record hook
    /// calls the application with it). Off by default: no copy is made.
    #[must_use]
    pub fn with_records_returned(mut self) -> Self {
        self.return_records = true;
        self
    }

    /// This tracker, checking `budgets` before every call (no-op for an empty set).
    #[must_use]
    pub fn with_budgets(self, budgets: Budgets) -> Self {
        self.with_budget_backend(Box::new(budgets))
    }

    /// This tracker, checking the budgets of `backend` (in-process or shared) before every
    /// call (no-op for an empty set).
    #[must_use]
    pub fn with_budget_backend(mut self, backend: Box<dyn BudgetBackend>) -> Self {
        self.budgets = Some(backend).filter(|b| !b.is_empty());
        self
    }

    /// This tracker, taking the time from `clock` (tests move it by hand).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The budgets, if any.
    pub fn budgets(&self) -> Option<&dyn BudgetBackend> {
        self.budgets.as_deref()
    }

    /// The time now, by the tracker's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Calls refused by a blocking budget.
    pub fn blocked_calls(&self) -> u64 {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Every budget's state now, per scope value (empty without budgets).
    pub fn budget_states(&self) -> Vec<BudgetState> {
        self.budgets
            .as_ref()
            .map(|b| b.state(self.now()))
            .unwrap_or_default()
    }

    /// Rebuilds the budgets' current windows from the durable ledger, so that a restart (or
    /// another process sharing the ledger) resumes where the spend was. Returns the problems
    /// met reading the ledger (bad lines are skipped). No-op without budgets or a store.
    pub fn preload_budgets(&self) -> crate::Result<Vec<String>> {
        let (Some(budgets), Some(store)) = (&self.budgets, &self.store) else {
            return Ok(Vec::new());
        };
        if !budgets.preloads() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let Some(since) = budgets.preload_since(now) else {
            return Ok(Vec::new());
        };
        let ledger = crate::store::StoreSpend(store.clone());
        ledger.for_each_since(since, &mut |call, time, cost| {
            budgets.preload(call, time, cost, now);
        })
    }

    /// A call's worst-case cost before it is sent: its prompt tokens, and output bounded by
    /// the request's `max_output`, else the model's output limit in the catalog, else none.
    /// Zero when the model has no price (a budget already over its limit still refuses).
    fn reservation_estimate(
        &self,
        model: Option<&str>,
        provider: Option<&str>,
        tier: Option<&str>,
        prompt_tokens: u64,
        max_output: Option<u64>,
        now: DateTime<Utc>,
    ) -> (Decimal, Option<Arc<Entry>>) {
        let Some(r) = model.and_then(|m| self.config.catalog.resolve(m, provider)) else {
            return (Decimal::ZERO, None);
        };
        let usage = Usage {
            input: prompt_tokens,
            output: max_output.or(r.entry.max_output_tokens).unwrap_or(0),
            ..Usage::default()
        };
        let cost = r
            .entry
            .cost_at(&usage, now, price_variant(tier))
            .map_or(Decimal::ZERO, |p| p.cost.total);
        (cost, Some(r.entry))
    }

    /// This tracker, also storing every finished record in `store`.
    #[must_use]
    pub fn with_store(mut self, store: Arc<Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The durable ledger, if any.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// A chain, tool, retriever or graph run started: remembered to find LLM calls' roots.
    pub fn chain_start(&self, run_id: u128, parent_run_id: Option<u128>, name: Option<&str>) {
        let mut chains = self.chains.lock();
        if chains.len() >= MAX_OPEN_CHAINS {
            chains.clear();
        }
        chains.insert(
            run_id,
            ChainNode {
                parent: parent_run_id,
                name: name.map(Arc::from),
            },
        );
    }

    /// A chain-like run ended.
    pub fn chain_end(&self, run_id: u128) {
        self.chains.lock().remove(&run_id);
    }

    /// The outermost known run above `parent` and its name.
    fn root_of(&self, parent: u128) -> (u128, Option<Arc<str>>) {
        let chains = self.chains.lock();
        let mut cur = parent;
        let mut name = None;
        for _ in 0..1024 {
            match chains.get(&cur) {
                Some(node) => {
                    name.clone_from(&node.name);
                    match node.parent {
                        Some(p) if chains.contains_key(&p) => cur = p,
                        _ => break,
                    }
                }
                None => break,
            }
        }
        (cur, name)
    }

    /// An LLM or chat-model run started. With budgets, its worst-case cost is reserved
    /// first; a blocking budget that cannot take it refuses the run (`Err`), and nothing of
    /// it is kept.
    pub fn start(&self, mut info: StartInfo) -> StartResult {
        let (root_run_id, root_run_name) = match info.parent_run_id {
            Some(p) => self.root_of(p),
            None => (info.run_id, info.name.as_deref().map(Arc::from)),
        };
        let request = self.request_facts(&mut info);
        let local_endpoint = info
            .base_url
            .take()
            .and_then(|u| self.local_endpoints.matching(&u));
        let mut prompt_tokens = None;
        let mut reservation = None;
        let mut priced_by = None;
        if let Some(budgets) = &self.budgets {
            let now = self.now();
            let model = info.model.as_deref();
            let counter = tokens::counter_for(model.unwrap_or_default());
            let prompt_count = match info.prompt_tokens {
                Some(n) => n,
                None => info.prompt.take().map_or(0, |p| p.count(&counter)),
            };
            prompt_tokens = Some(prompt_count);
            let (estimate, entry) = self.reservation_estimate(
                model,
                info.provider.as_deref(),
                info.service_tier.as_deref(),
                prompt_count,
                info.max_output,
                now,
            );
            // A local endpoint's call costs nothing, unless the user priced its model.
            let (estimate, entry) = match entry {
                Some(e) if local_endpoint.is_some() && !e.is_override => (Decimal::ZERO, None),
                e => (estimate, e),
            };
            let scope = CallScope {
                model,
                provider: info.provider.as_deref(),
                attribution: &info.attribution,
                tags: &info.tags,
                root_run_id: Some(root_run_id),
                root_run_name: root_run_name.as_deref(),
            };
            match budgets.reserve(info.run_id, &scope, estimate, now) {
                Ok(id) => reservation = Some(id),
                Err(refused) => {
                    self.blocked.fetch_add(1, Ordering::Relaxed);
                    for m in &self.metrics {
                        m.refused(model, info.provider.as_deref(), &info.attribution);
                    }
                    return Err(refused);
                }
            }
            if budgets.cuts_streams() {
                priced_by = entry.map(|e| (e, counter));
            }
        }
        let ctx = RunContext {
            started: Instant::now(),
            parent_run_id: info.parent_run_id,
            root_run_id,
            root_run_name,
            model: info.model,
            provider: info.provider,
            attribution: info.attribution,
            tags: info.tags,
            service_tier: info.service_tier,
            chunks: 0,
            // Kept for the end's estimate unless the caller counted it (`prompt_tokens`) or
            // holds it itself.
            prompt: info.prompt.filter(|_| {
                self.config.estimate && !info.prompt_held && info.prompt_tokens.is_none()
            }),
            streamed: String::new(),
            streamed_tokens: 0,
            prompt_tokens,
            reservation,
            priced_by,
            request,
            completion: info.completion,
            cumulative_chunks: info.cumulative_chunks,
            chunk_usage: None,
            local_endpoint,
        };
        // Reservations to give back, released after the runs' lock (a shared budget store is
        // a network request).
        let mut release = Vec::new();
        let mut runs = self.runs.lock();
        if runs.len() >= MAX_OPEN_RUNS {
            // Starts whose ends never came: forget the oldest half rather than grow forever.
            let mut by_age: Vec<(u128, Instant)> =
                runs.iter().map(|(k, v)| (*k, v.started)).collect();
            by_age.sort_by_key(|(_, t)| *t);
            for (k, _) in by_age.iter().take(by_age.len() / 2) {
                release.extend(runs.remove(k).and_then(|c| c.reservation));
            }
        }
        if let Some(old) = runs.insert(info.run_id, ctx) {
            // The same run id started twice: its first reservation would never be settled.
            release.extend(old.reservation);
        }
        drop(runs);
        if let Some(b) = &self.budgets {
            for id in release {
                b.release(id);
            }
        }
        Ok(())
    }

    /// Forgets a started run without recording it, releasing its reservation: another
    /// tracker's budget refused the call after this one admitted it, so no request is sent
    /// and no end will come. Returns whether the run was open.
    pub fn abandon(&self, run_id: u128) -> bool {
        let Some(ctx) = self.runs.lock().remove(&run_id) else {
            return false;
        };
        if let (Some(b), Some(id)) = (&self.budgets, ctx.reservation) {
            b.release(id);
        }
        true
    }

    /// Whether streamed text must be handed to [`Tracker::token`]: to estimate the output
    /// of a stream that reports no usage, or to watch a stream a budget may cut.
    pub fn wants_stream_text(&self) -> bool {
        self.config.estimate || self.budgets.as_ref().is_some_and(|b| b.cuts_streams())
    }

    /// A streamed chunk arrived for `run_id`, with its text (kept to estimate the output of
    /// a stream that reports no usage or fails half way). When a budget cuts streams, the
    /// chunk's tokens grow the run's reservation; `Err` means a blocking `cut_streams` budget
    /// is now over its limit and the binding must stop the stream (the reservation then holds
    /// what was generated, charged when the run ends). `Ok(true)`: the run's chunks carry
    /// running-total usage, to be handed over with [`Tracker::chunk_usage`] (the flag comes
    /// back from the lookup this chunk needs anyway, so other runs pay nothing for it).
    pub fn token(&self, run_id: u128, text: &str) -> TokenResult {
        let mut runs = self.runs.lock();
        let Some(ctx) = runs.get_mut(&run_id) else {
            return Ok(false);
        };
        ctx.chunks = ctx.chunks.saturating_add(1);
        let cumulative = ctx.cumulative_chunks;
        if let (Some((entry, counter)), Some(id)) = (&ctx.priced_by, ctx.reservation) {
            // A budget cuts streams: count each chunk as it comes (with the counter found at
            // start, not looked up per chunk) and price the stream so far.
            ctx.streamed_tokens += counter.count(text);
            let usage = Usage {
                input: ctx.prompt_tokens.unwrap_or(0),
                output: ctx.streamed_tokens,
                ..Usage::default()
            };
            let entry = entry.clone();
            let tier = ctx.service_tier.clone();
            // The clock may be Python's (`clock=`): never read it with the lock held.
            drop(runs);
            let now = self.now();
            let Ok(so_far) = entry.cost_at(&usage, now, price_variant(tier.as_deref())) else {
                return Ok(cumulative);
            };
            if let Some(b) = &self.budgets {
                b.reserve_at_least(id, so_far.cost.total, now)?;
            }
            return Ok(cumulative);
        }
        if !self.config.estimate {
            return Ok(cumulative);
        }
        ctx.streamed.push_str(text);
        if ctx.streamed.len() >= STREAM_TEXT_COUNT_AT {
            // Rare (a very long stream): count what is held and let it go. Cutting between
            // chunks may split a token; the estimate is off by at most one per cut.
            let counter = tokens::counter_for(ctx.model.as_deref().unwrap_or_default());
            ctx.streamed_tokens += counter.count(&ctx.streamed);
            ctx.streamed.clear();
        }
        Ok(cumulative)
    }

    /// The usage a stream chunk of `run_id` carried, for a run whose chunks carry running
    /// totals ([`StartInfo::cumulative_chunks`]): the latest is kept, and replaces at the end
    /// the sum LangChain made of them. Ignored for any other run.
    pub fn chunk_usage(&self, run_id: u128, usage: Usage) {
        if let Some(ctx) = self.runs.lock().get_mut(&run_id) {
            if ctx.cumulative_chunks {
                match &mut ctx.chunk_usage {
                    Some(kept) => **kept = usage,
                    None => ctx.chunk_usage = Some(Box::new(usage)),
                }
            }
        }
    }

    /// Running totals.
    pub fn totals(&self) -> Totals {
        self.ledger.lock().totals().clone()
    }

    /// Kept records, oldest first (cloned).
    pub fn records(&self) -> Vec<CallRecord> {
        self.ledger.lock().records().cloned().collect()
    }

    /// The latest `n` kept records, oldest first (cloned).
    pub fn recent_records(&self, n: usize) -> Vec<CallRecord> {
        let ledger = self.ledger.lock();
        let skip = ledger.records().len().saturating_sub(n);
        ledger.records().skip(skip).cloned().collect()
    }

    /// Records dropped from memory because of `max_records`.
    pub fn dropped_records(&self) -> u64 {
        self.ledger.lock().dropped()
    }

    /// Group-by summary over dimension names.
    pub fn summary(&self, by: &[String]) -> crate::Result<Vec<SummaryRow>> {
        let dims = by
            .iter()
            .map(|d| Dimension::parse(d, &self.config.attribute))
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(self.ledger.lock().summary(&dims))
    }

    /// Forgets all records and totals (open runs stay open).
    pub fn reset(&self) {
        self.blocked.store(0, Ordering::Relaxed);
        self.ledger.lock().clear();
    }

    /// Runs started and not yet ended.
    pub fn open_runs(&self) -> usize {
        self.runs.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Decimal;
    use crate::usage::UsageSource;
    use std::str::FromStr;

    fn tracker() -> Tracker {
        Tracker::new(TrackerConfig {
            attribute: vec!["user_id".into()],
            catalog: Catalog::bundled().unwrap(),
            max_records: None,
            estimate: true,
        })
    }

    fn usage(i: u64, o: u64) -> Usage {
        Usage {
            input: i,
            output: o,
            ..Usage::default()
        }
    }

    #[test]
    fn start_end_records_attribution_and_root() {
        let t = tracker();
        t.chain_start(10, None, Some("my_graph"));
        t.chain_start(11, Some(10), Some("node"));
        t.start(StartInfo {
            run_id: 1,
            parent_run_id: Some(11),
            model: Some("gpt-4o-mini".into()),
            provider: Some("openai".into()),
            attribution: vec![("user_id".into(), "alice".into())],
            ..StartInfo::default()
        })
        .unwrap();
        let w = t
            .end(
                EndInfo {
                    run_id: 1,
                    usage: Some(usage(1_000_000, 1_000_000)),
                    model: Some("gpt-4o-mini-2024-07-18".into()),
                    ..EndInfo::default()
                },
                Vec::new,
            )
            .warnings;
        assert!(w.is_empty(), "{w:?}");
        let r = &t.records()[0];
        assert_eq!(r.root_run_id, 10);
        assert_eq!(r.root_run_name.as_deref(), Some("my_graph"));
        assert_eq!(r.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        assert_eq!(
            r.cost.as_ref().unwrap().total,
            Decimal::from_str("0.75").unwrap()
        );
        assert_eq!(r.attribution[0].1, "alice");
        assert_eq!(t.open_runs(), 0);
    }

    #[test]
    fn unknown_model_is_unpriced_and_warned_once() {
        let t = tracker();
        for run in 0..3 {
            let w = t
                .end(
                    EndInfo {
                        run_id: run,
                        usage: Some(usage(5, 5)),
                        model: Some("no-such-model-xyz".into()),
                        ..EndInfo::default()
                    },
                    Vec::new,
                )
                .warnings;
            assert_eq!(w.len(), usize::from(run == 0), "{w:?}");
        }
        let tot = t.totals();
        assert_eq!(tot.unpriced_calls, 3);
        assert_eq!(tot.cost, Decimal::ZERO);
        assert_eq!(tot.usage.total(), 30);
        assert!(t.records()[0].cost.is_none());
    }

    #[test]
    fn cache_hits_cost_nothing_and_errors_are_not_unpriced() {
        let t = tracker();
        t.end(
            EndInfo {
                run_id: 1,
                usage: Some(usage(10, 10)),
                llm_cache_hit: true,
                model: Some("gpt-4o".into()),
                ..EndInfo::default()
            },
            Vec::new,
        );
        t.end(
            EndInfo {
                run_id: 2,
                error: Some("RateLimitError: 429".into()),
                ..EndInfo::default()
            },
            Vec::new,
        );
        let tot = t.totals();
        assert_eq!(tot.llm_cache_hits, 1);
        assert_eq!(tot.usage.total(), 0);
        assert_eq!(tot.failed_requests, 1);
        assert_eq!(tot.successful_requests, 1);
        assert_eq!(tot.unpriced_calls, 0);
    }

    fn budgeted(limit: &str, cut: bool) -> (Tracker, crate::budget::ManualClock) {
        use crate::budget::{Budget, ManualClock};
        let clock = ManualClock::new(
            DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        let b = Budget::daily(Decimal::from_str(limit).unwrap())
            .unwrap()
            .cut_streams(cut);
        let t = tracker()
            .with_budgets(Budgets::new(vec![b]).unwrap())
            .with_clock(Arc::new(clock.clone()));
        (t, clock)
    }

    fn start_4o(t: &Tracker, run: u128, max_output: Option<u64>) -> StartResult {
        t.start(StartInfo {
            run_id: run,
            model: Some("gpt-4o".into()),
            provider: Some("openai".into()),
            prompt: Some(Prompt::Text(vec!["x".repeat(40)])),
            max_output,
            ..StartInfo::default()
        })
    }

    fn spent_reserved(t: &Tracker) -> (Decimal, Decimal) {
        let s = &t.budget_states()[0];
        (s.spent, s.reserved)
    }

    #[test]
    fn budgets_reserve_at_start_settle_at_end_and_refuse_when_full() {
        // gpt-4o: $2.50 in, $10 out per 1M. 1M in + 100k out = $3.50.
        let (t, _) = budgeted("5", false);
        start_4o(&t, 1, Some(100_000)).unwrap();
        let (spent, reserved) = spent_reserved(&t);
        assert_eq!(spent, Decimal::ZERO);
        // The prompt (40 x's) and 100k output tokens at $10 per 1M: a bit over $1.
        assert!(reserved > Decimal::ONE && reserved < Decimal::from_str("1.01").unwrap());
        let out = t.end(
            EndInfo {
                run_id: 1,
                usage: Some(usage(1_000_000, 100_000)),
                ..EndInfo::default()
            },
            Vec::new,
        );
        assert_eq!(
            spent_reserved(&t),
            (Decimal::from_str("3.5").unwrap(), Decimal::ZERO)
        );
        // 70% of the limit: the 50% threshold fired.
        assert_eq!(out.alerts.len(), 1);
        assert_eq!(out.alerts[0].threshold, Decimal::from_str("0.5").unwrap());
        // $3.50 spent + ~$1.00 for another call fits; a third ~$1.00 does not.
        start_4o(&t, 2, Some(100_000)).unwrap();
        let refused = start_4o(&t, 3, Some(100_000)).unwrap_err();
        assert_eq!(refused.spent, Decimal::from_str("3.5").unwrap());
        assert!(refused.reserved > Decimal::ONE);
        assert!(refused.alert.is_some());
        assert_eq!(t.blocked_calls(), 1);
        assert_eq!(t.open_runs(), 1, "a refused run is not kept");
        // An error before any output releases the reservation.
        t.end(
            EndInfo {
                run_id: 2,
                error: Some("RateLimitError".into()),
                ..EndInfo::default()
            },
            Vec::new,
        );
        assert_eq!(spent_reserved(&t).1, Decimal::ZERO);
    }

    #[test]
    fn the_catalogs_output_limit_bounds_a_reservation_without_max_tokens() {
        let (t, _) = budgeted("1", false);
        start_4o(&t, 1, None).unwrap();
        // gpt-4o may write 16,384 tokens: $0.16384 at $10 per 1M, plus the prompt.
        let reserved = spent_reserved(&t).1;
        let output = Decimal::from_str("0.16384").unwrap();
        assert!(reserved > output && reserved < output + Decimal::from_str("0.001").unwrap());
    }

    #[test]
    fn an_end_without_a_start_is_charged() {
        let (t, _) = budgeted("1", false);
        let out = t.end(
            EndInfo {
                run_id: 9,
                usage: Some(usage(400_000, 0)),
                model: Some("gpt-4o".into()),
                ..EndInfo::default()
            },
            Vec::new,
        );
        assert_eq!(spent_reserved(&t), (Decimal::ONE, Decimal::ZERO));
        assert_eq!(out.alerts.len(), 1);
        assert!(start_4o(&t, 10, None).is_err());
    }

    #[test]
    fn a_cut_stream_is_charged_what_it_generated() {
        // A model with no output limit in the catalog, and no max_tokens: the reservation is
        // the prompt only, and the stream is watched. gpt-4o's prices.
        let (t, _) = budgeted("0.0001", true);
        let user = Catalog::parse(
            r#"{"models": [{"id": "house-model", "prices": [{"input": "2.5", "output": "10"}]}]}"#,
            "test",
            false,
            crate::catalog::schema::Strictness::User,
        )
        .unwrap();
        let t = Tracker {
            config: TrackerConfig {
                catalog: Arc::new(t.config.catalog.with_overrides(&user)),
                ..t.config.clone()
            },
            ..t
        };
        t.start(StartInfo {
            run_id: 1,
            model: Some("house-model".into()),
            prompt: Some(Prompt::Text(vec!["x".repeat(40)])),
            ..StartInfo::default()
        })
        .unwrap();
        let mut cut_at = None;
        for i in 0..100 {
            if t.token(1, " word").is_err() {
                cut_at = Some(i);
                break;
            }
        }
        // $10 per 1M output: 10 tokens are $0.0001, with the prompt's few the 9th or 10th
        // token crosses the limit.
        let cut_at = cut_at.expect("the stream is cut");
        assert!((8..=10).contains(&cut_at), "{cut_at}");
        let (_, reserved) = spent_reserved(&t);
        assert!(reserved > Decimal::from_str("0.0001").unwrap());
        t.end(
            EndInfo {
                run_id: 1,
                error: Some("BudgetExceededError: cut".into()),
                ..EndInfo::default()
            },
            Vec::new,
        );
        let r = &t.records()[0];
        assert_eq!(r.usage_source, UsageSource::Estimated);
        assert_eq!(r.usage.output, cut_at + 1);
        assert_eq!(spent_reserved(&t), (reserved, Decimal::ZERO));
        assert_eq!(r.cost.as_ref().unwrap().total, reserved);
    }

    #[test]
    fn budget_windows_follow_the_clock() {
        let (t, clock) = budgeted("1", false);
        t.end(
            EndInfo {
                run_id: 1,
                usage: Some(usage(400_000, 0)),
                model: Some("gpt-4o".into()),
                ..EndInfo::default()
            },
            Vec::new,
        );
        assert!(start_4o(&t, 2, None).is_err());
        clock.advance(chrono::Duration::hours(14));
        assert!(start_4o(&t, 2, None).is_ok());
        assert_eq!(spent_reserved(&t).0, Decimal::ZERO);
        assert_eq!(
            t.records()[0].time.to_rfc3339(),
            "2026-11-23T10:00:00+00:00"
        );
    }
}
