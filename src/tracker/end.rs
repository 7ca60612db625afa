//! A run's end, step by step: what the start left ([`Run`]), the call's usage ([`Counted`]:
//! the provider's counts, with llmledger's own count for any the provider got wrong), its
//! price, the budget settlement, and the record kept.

use std::sync::Arc;
use std::time::Instant;

use super::{price_variant, warned_models, EndInfo, EndOutcome, RunContext, SeenPrompt, Tracker};
use crate::budget::{Alert, CallScope, ReservationId};
use crate::ledger::{CallRecord, RequestFacts};
use crate::metrics::Operation;
use crate::shared_names::shared_name;
use crate::tokens::{self, Counter};
use crate::usage::{partial_description, Field, Fields, Usage, UsageSource};

/// What the run's start left for its end (or, when the start was never seen, what the end
/// says).
struct Run {
    latency: Option<f64>,
    parent_run_id: Option<u128>,
    root_run_id: u128,
    root_run_name: Option<Arc<str>>,
    requested_model: Option<Arc<str>>,
    provider: Option<Arc<str>>,
    attribution: Vec<(Arc<str>, String)>,
    tags: Vec<String>,
    service_tier: Option<String>,
    chunks: u32,
    reservation: Option<ReservationId>,
    /// What llmledger can count itself (estimates on, start seen).
    seen: Option<Seen>,
    /// The request's cap and fingerprints.
    request: RequestFacts,
    /// What kind of request it was (chat unless the start said otherwise).
    operation: Operation,
    /// The last running-total usage a stream chunk carried (see
    /// [`super::StartInfo::cumulative_chunks`]).
    chunk_usage: Option<Box<Usage>>,
    /// The user's local endpoint the call went to (see [`crate::local_endpoints`]).
    local_endpoint: Option<Arc<str>>,
}

/// The text a run's start and stream left: its prompt (or the prompt's count) and the
/// streamed output.
struct Seen {
    prompt: Option<SeenPrompt>,
    streamed: String,
    streamed_tokens: u64,
}

/// A call's usage and how it was obtained.
struct Counted {
    usage: Usage,
    source: UsageSource,
    estimated_by: Option<String>,
    /// Counts neither the provider nor llmledger could give: the cost is unknown.
    unknown: Fields,
}

impl Tracker {
    /// Whether ending `info` may count tokens (the binding then releases the GIL): estimates
    /// are on, the response is not an LLM-cache replay (which costs nothing), and it reported
    /// no usage, or an input or output count that is malformed or missing.
    pub fn may_estimate(&self, info: &EndInfo) -> bool {
        self.config.estimate
            && !info.llm_cache_hit
            && (info.usage.is_none() || info.malformed.has_countable())
    }

    /// Whether ending `info` may count the prompt: as [`Tracker::may_estimate`], and the
    /// response reported no usage or a malformed input count. A caller that kept the prompt
    /// itself counts it then, and only then, into [`EndInfo::prompt_tokens`], for the model the
    /// response names, else the one asked for (the model `end` counts for).
    pub fn needs_prompt(&self, info: &EndInfo) -> bool {
        self.may_estimate(info)
            && (info.usage.is_none() || info.malformed.contains(crate::usage::Field::Input))
    }

    /// A run ended (or failed): builds, prices and records its call, and settles its budget
    /// reservation to the real cost (releasing it when the cost is unknown). Returns the
    /// warnings to log (malformed usage, unknown model the first time, missing variant) and
    /// the budget alerts that fired.
    ///
    /// `end_tags` reads the end hook's tags; it is called only when the start was never seen
    /// (the start's tags are the run's tags otherwise).
    pub fn end(&self, mut end: EndInfo, end_tags: impl FnOnce() -> Vec<String>) -> EndOutcome {
        let ctx = self.runs.lock().remove(&end.run_id);
        // One clock read gives the latency and the record's time.
        let ended = Instant::now();
        let mut run = match ctx {
            Some(c) => self.run_of(c, ended, end.prompt_tokens),
            None => self.run_without_start(&end, end_tags),
        };
        if let Some(u) = run.chunk_usage.take() {
            last_chunk_usage(&mut end, *u);
        }
        let mut warnings = std::mem::take(&mut end.warnings);
        // The model the response names (often a dated snapshot of the one asked for).
        let model = match end.model.take() {
            Some(m) if run.requested_model.as_deref() != Some(&*m) => Some(m),
            _ => run.requested_model.clone(),
        };
        let usage = self.count_usage(&mut end, &run, model.as_deref(), &mut warnings);
        let mut record = CallRecord {
            time: self.clock.now_at(ended),
            run_id: end.run_id,
            parent_run_id: run.parent_run_id,
            root_run_id: run.root_run_id,
            root_run_name: run.root_run_name,
            model,
            requested_model: run.requested_model,
            provider: run.provider,
            attribution: run.attribution,
            tags: run.tags,
            usage: usage.usage,
            usage_source: usage.source,
            estimated_by: usage.estimated_by,
            service_tier: end.service_tier.or(run.service_tier),
            cost: None,
            unpriced_reason: None,
            price_entry: None,
            catalog_version: None,
            latency: run.latency,
            chunks: run.chunks,
            error: end.error,
            usage_notes: end.usage_notes,
            price_notes: None,
            request: run.request,
        };
        self.price(
            &mut record,
            run.local_endpoint.as_deref(),
            usage.unknown,
            &mut warnings,
        );
        if record.usage_source == UsageSource::Estimated && record.chunks > 0 {
            // A stream that reported no usage: once per model, how to get exact usage.
            if let (Some(m), None) = (record.model.as_deref(), &record.error) {
                let hint = crate::guidance::estimated_stream(m, record.provider.as_deref());
                warnings.extend(hint);
            }
        }
        let alerts = self.settle(run.reservation, &record);
        let returned = self.return_records.then(|| record.clone());
        self.keep(record, run.operation, &mut warnings);
        EndOutcome {
            warnings,
            alerts,
            record: returned,
        }
    }

    /// What a started run's context leaves for its end.
    /// `counted_at_end`: the prompt's tokens, counted by the caller from a prompt it kept.
    fn run_of(&self, c: RunContext, ended: Instant, counted_at_end: Option<u64>) -> Run {
        let prompt = match (c.prompt, c.prompt_tokens.or(counted_at_end)) {
            (Some(p), _) => Some(SeenPrompt::Text(p)),
            (None, Some(n)) => Some(SeenPrompt::Counted(n)),
            (None, None) => None,
        };
        let seen = self.config.estimate.then_some(Seen {
            prompt,
            streamed: c.streamed,
            streamed_tokens: c.streamed_tokens,
        });
        Run {
            latency: Some(ended.duration_since(c.started).as_secs_f64()),
            parent_run_id: c.parent_run_id,
            root_run_id: c.root_run_id,
            root_run_name: c.root_run_name,
            requested_model: c.model,
            provider: c.provider,
            attribution: c.attribution,
            tags: c.tags,
            service_tier: c.service_tier,
            chunks: c.chunks,
            reservation: c.reservation,
            seen,
            request: c.request,
            operation: if c.completion {
                Operation::TextCompletion
            } else {
                Operation::Chat
            },
            chunk_usage: c.chunk_usage,
            local_endpoint: c.local_endpoint,
        }
    }

    /// What an end whose start was never seen says about its run.
    fn run_without_start(&self, end: &EndInfo, end_tags: impl FnOnce() -> Vec<String>) -> Run {
        let (root_run_id, root_run_name) = match end.parent_run_id {
            Some(p) => self.root_of(p),
            None => (end.run_id, None),
        };
        Run {
            latency: None,
            parent_run_id: end.parent_run_id,
            root_run_id,
            root_run_name,
            requested_model: None,
            provider: None,
            attribution: Vec::new(),
            tags: end_tags(),
            service_tier: None,
            chunks: 0,
            reservation: None,
            seen: None,
            request: RequestFacts::default(),
            operation: Operation::Chat,
            chunk_usage: None,
            local_endpoint: None,
        }
    }

    /// The call's usage: the provider's, with llmledger's own count of an input or output
    /// count the provider got wrong (or unknown when it cannot count it); else, when the
    /// response reported none, llmledger's count of the whole call, marked estimated.
    fn count_usage(
        &self,
        end: &mut EndInfo,
        run: &Run,
        model: Option<&str>,
        warnings: &mut Vec<String>,
    ) -> Counted {
        let mut out = Counted {
            usage: Usage::default(),
            source: UsageSource::None,
            estimated_by: None,
            unknown: Fields::default(),
        };
        match end.usage.take() {
            Some(u) if end.llm_cache_hit => {
                out.usage = u;
                out.source = UsageSource::Cache;
            }
            Some(u) => {
                out.usage = u;
                out.source = UsageSource::Provider;
                if !end.malformed.is_empty() {
                    self.repair(&mut out, end, run, model, warnings);
                }
                warnings.extend(out.usage.reconcile());
            }
            None if end.llm_cache_hit => out.source = UsageSource::Cache,
            // A failed call is billed only when it got as far as generating something.
            None if end.error.is_none() || run.chunks > 0 => {
                let text = run.seen.as_ref().filter(|s| s.prompt.is_some());
                if let Some(seen) = text {
                    let counter = tokens::counter_for(model.unwrap_or_default());
                    out.usage = Usage {
                        input: seen
                            .prompt
                            .as_ref()
                            .map_or(0, |p| prompt_tokens(p, &counter)),
                        output: output_tokens(seen, &end.output_text, &counter),
                        ..Usage::default()
                    };
                    out.source = UsageSource::Estimated;
                    out.estimated_by = Some(counter.describe());
                }
            }
            None => {}
        }
        out
    }

    /// Replaces the provider's malformed input or output count with llmledger's own, where it
    /// has the text; what it cannot count (parts of a whole, a prompt never seen, estimates
    /// off) is unknown. Both are named in `estimated_by`.
    #[cold]
    #[inline(never)]
    fn repair(
        &self,
        out: &mut Counted,
        end: &EndInfo,
        run: &Run,
        model: Option<&str>,
        warnings: &mut Vec<String>,
    ) {
        let counter = tokens::counter_for(model.unwrap_or_default());
        let mut estimated = Fields::default();
        let mut unknown = Fields::default();
        for field in end.malformed.iter() {
            let count = match (field, run.seen.as_ref()) {
                (Field::Input, Some(seen)) => {
                    seen.prompt.as_ref().map(|p| prompt_tokens(p, &counter))
                }
                (Field::Output, Some(seen)) => {
                    Some(output_tokens(seen, &end.output_text, &counter))
                }
                // An end without a start: the response's own text is all there is.
                (Field::Output, None) if self.config.estimate => {
                    Some(end.output_text.iter().map(|t| counter.count(t)).sum())
                }
                _ => None,
            };
            match (field, count) {
                (Field::Input, Some(n)) => out.usage.input = n,
                (Field::Output, Some(n)) => out.usage.output = n,
                _ => {}
            }
            if count.is_some() {
                estimated.insert(field);
            } else {
                unknown.insert(field);
            }
        }
        let by = (!estimated.is_empty()).then(|| counter.describe());
        out.estimated_by = partial_description(estimated, by.as_deref(), unknown);
        out.unknown = unknown;
        if !unknown.is_empty() {
            warnings.push(unknown_warning(unknown, self.config.estimate));
        }
    }

    /// Prices `record` by its model and usage: sets its cost (`None` when unknown, with the
    /// reason), the catalog entry and version. `unknown` counts make the cost unknown.
    /// `local_endpoint`: the user's local endpoint the call went to, if any.
    fn price(
        &self,
        record: &mut CallRecord,
        local_endpoint: Option<&str>,
        unknown: Fields,
        warnings: &mut Vec<String>,
    ) {
        match record.usage_source {
            UsageSource::Cache => {
                record.cost = Some(crate::catalog::CostBreakdown::default());
                return;
            }
            UsageSource::None => {
                if record.error.is_none() {
                    record.unpriced_reason = Some("the response reported no token usage".into());
                }
                return;
            }
            UsageSource::Provider | UsageSource::Estimated => {}
        }
        if let Some(rt) = self.local_runtime_of(record, local_endpoint) {
            // A model served by the user's own runtime: no API fee, whatever its name.
            record.cost = Some(crate::catalog::CostBreakdown::default());
            record.unpriced_reason = None;
            record.price_entry = Some(shared_name(&local_entry(rt)));
            record.catalog_version = Some(self.catalog_version.clone());
            return;
        }
        if !unknown.is_empty() {
            record.unpriced_reason = Some(format!(
                "the provider's {} count is malformed and could not be counted",
                unknown.names()
            ));
            return;
        }
        let Some(m) = record.model.as_deref() else {
            record.unpriced_reason = Some("the response and the request name no model".into());
            warnings.extend(crate::guidance::unnamed_model(record.provider.as_deref()));
            return;
        };
        let Some(r) = self.config.catalog.resolve(m, record.provider.as_deref()) else {
            let reason = format!("no price for model '{m}'");
            if warned_models().lock().insert(m.to_string()) {
                let w = self.unpriced_warning(&reason, m, record.provider.as_deref());
                warnings.push(w);
            }
            record.unpriced_reason = Some(reason);
            return;
        };
        record.price_entry = Some(shared_name(r.entry.key()));
        record.catalog_version = Some(self.catalog_version.clone());
        let variant = price_variant(record.service_tier.as_deref());
        match r.entry.cost_at(&record.usage, record.time, variant) {
            Ok(p) => {
                warnings.extend(p.warnings);
                record.cost = Some(p.cost);
                if !p.notes.is_empty() {
                    record.price_notes = Some(p.notes.join("; "));
                }
            }
            Err(e) => {
                warnings.push(format!("cost of a call is unknown: {e}"));
                record.unpriced_reason = Some(e);
            }
        }
    }

    /// The local runtime (`ollama`, `vllm`, ...) or the user's local endpoint
    /// (`http://localhost:8000/v1`) that served `record`'s call, when its provider is a local
    /// runtime or it went to a local endpoint, and the user's `prices=` give its model no
    /// price of its own.
    fn local_runtime_of<'a>(
        &self,
        record: &CallRecord,
        local_endpoint: Option<&'a str>,
    ) -> Option<&'a str> {
        let rt = record
            .provider
            .as_deref()
            .and_then(crate::catalog::local_runtime)
            .or(local_endpoint)?;
        let user_priced = record.model.as_deref().is_some_and(|m| {
            self.config
                .catalog
                .resolve(m, record.provider.as_deref())
                .is_some_and(|r| r.entry.is_override)
        });
        (!user_priced).then_some(rt)
    }

    /// The warning for a model without a price: the nearest catalog ids, and how to add one.
    #[cold]
    fn unpriced_warning(&self, reason: &str, model: &str, provider: Option<&str>) -> String {
        let near = crate::suggest::models(&self.config.catalog, model, provider);
        let near = crate::suggest::did_you_mean(model, near.iter().map(String::as_str));
        format!(
            "{reason}{}{near}: its calls are recorded with cost None. Add a price with \
             CostTracker(prices={{\"{model}\": {{\"input\": \"<USD per 1M>\", \"output\": \"<USD per 1M>\"}}}}) \
             or a JSON/TOML price file",
            provider.map(|p| format!(" (provider '{p}')")).unwrap_or_default()
        )
    }

    /// Settles the run's budget reservation to the record's cost (releasing it when the cost
    /// is unknown), or charges the cost when the start was never seen. Returns the alerts.
    fn settle(&self, reservation: Option<ReservationId>, record: &CallRecord) -> Vec<Alert> {
        let Some(budgets) = &self.budgets else {
            return Vec::new();
        };
        let spent = record.cost.as_ref().map(|c| c.total);
        match (reservation, spent) {
            (Some(id), _) => budgets.settle(id, spent, record.time),
            // The start was never seen: nothing was reserved, the money is spent.
            (None, Some(s)) => budgets.charge(
                record.run_id,
                &CallScope::from_record(record),
                s,
                record.time,
            ),
            (None, None) => Vec::new(),
        }
    }

    /// Sends `record` to the durable ledger (if any) and keeps it in memory.
    fn keep(&self, record: CallRecord, operation: Operation, warnings: &mut Vec<String>) {
        if let Some(store) = &self.store {
            store.append(&record);
            warnings.extend(store.take_messages());
        }
        for m in &self.metrics {
            m.add_call(&record, operation);
        }
        self.ledger.lock().push(record);
    }
}

/// A prompt's tokens: counted now, or at start (for a budget's reservation).
fn prompt_tokens(p: &SeenPrompt, counter: &Counter) -> u64 {
    match p {
        SeenPrompt::Text(p) => p.count(counter),
        SeenPrompt::Counted(n) => *n,
    }
}

/// The output's tokens: the response's text, else what was streamed.
fn output_tokens(seen: &Seen, output_text: &[String], counter: &Counter) -> u64 {
    if output_text.is_empty() {
        seen.streamed_tokens + counter.count(&seen.streamed)
    } else {
        output_text.iter().map(|t| counter.count(t)).sum()
    }
}

/// The warning for counts llmledger could not replace, and why.
#[cold]
fn unknown_warning(unknown: Fields, estimate: bool) -> String {
    let mut why = Vec::new();
    if !unknown.filter(|f| !f.countable()).is_empty() {
        why.push("cached, reasoning and audio tokens cannot be counted from text");
    }
    if !unknown.filter(Field::countable).is_empty() {
        why.push(if estimate {
            "the prompt was not seen: no start, or one without messages"
        } else {
            "estimates are off: estimate=False"
        });
    }
    format!(
        "malformed usage: the provider's {} count could not be replaced by llmledger's own \
         ({}); the call is recorded with cost None",
        unknown.names(),
        why.join("; ")
    )
}

/// A stream whose chunks each carried the call's running total: LangChain's end adds them
/// up (two chunks of 2,000 input tokens report 4,000), so the last chunk's usage replaces
/// what the end says, and the record's `usage_notes` says so. An LLM-cache replay keeps its
/// stored usage.
#[cold]
fn last_chunk_usage(end: &mut EndInfo, usage: Usage) {
    if end.llm_cache_hit {
        return;
    }
    end.usage = Some(usage);
    end.malformed = Fields::default();
    end.usage_notes = Some(LAST_CHUNK_NOTE.to_string());
}

/// The `usage_notes` of a stream priced by its last chunk's running-total usage.
pub const LAST_CHUNK_NOTE: &str =
    "usage of the last stream chunk (the integration's chunks carry running totals)";

/// The `price_entry` of a call served by local runtime `rt` (or a local endpoint):
/// `local:ollama`, `local:http://localhost:8000/v1`. Totals count
/// these calls apart ([`crate::ledger::Totals::local_calls`]).
pub fn local_entry(rt: &str) -> String {
    format!("{}{rt}", crate::ledger::LOCAL_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::tokens::Prompt;
    use crate::tracker::{StartInfo, TrackerConfig};

    fn tracker(estimate: bool) -> Tracker {
        Tracker::new(TrackerConfig {
            attribute: Vec::new(),
            catalog: Catalog::bundled().unwrap(),
            max_records: None,
            estimate,
        })
    }

    fn bad_output_end(t: &Tracker, run: u128) -> CallRecord {
        t.start(StartInfo {
            run_id: run,
            model: Some("gpt-4o".into()),
            prompt: Some(Prompt::Text(vec!["a prompt of some words".into()])),
            ..StartInfo::default()
        })
        .unwrap();
        let mut malformed = Fields::default();
        malformed.insert(Field::Output);
        let info = EndInfo {
            run_id: run,
            usage: Some(Usage {
                input: 100,
                ..Usage::default()
            }),
            malformed,
            output_text: vec!["four words of output".into()],
            ..EndInfo::default()
        };
        assert_eq!(t.may_estimate(&info), t.config.estimate);
        t.end(info, Vec::new);
        t.records().pop().unwrap()
    }

    #[test]
    fn a_malformed_output_is_counted_from_the_text() {
        let t = tracker(true);
        let r = bad_output_end(&t, 1);
        let counter = tokens::counter_for("gpt-4o");
        assert_eq!(r.usage.input, 100);
        assert_eq!(r.usage.output, counter.count("four words of output"));
        assert_eq!(r.usage_source, UsageSource::Provider);
        assert_eq!(
            r.estimated_by.as_deref(),
            Some("provider+estimated:output_tokens (o200k_base)")
        );
        assert!(r.cost.is_some());
        assert_eq!(t.totals().malformed_usage_calls, 1);
    }

    #[test]
    fn without_estimates_a_malformed_output_is_unknown() {
        let t = tracker(false);
        let r = bad_output_end(&t, 1);
        assert_eq!(r.usage.output, 0);
        assert_eq!(
            r.estimated_by.as_deref(),
            Some("provider+unknown:output_tokens")
        );
        assert!(r.cost.is_none());
        let reason = r.unpriced_reason.unwrap();
        assert!(reason.contains("output_tokens"), "{reason}");
        let totals = t.totals();
        assert_eq!(
            (totals.unpriced_calls, totals.malformed_usage_calls),
            (1, 1)
        );
    }

    fn io(input: u64, output: u64) -> Usage {
        Usage {
            input,
            output,
            ..Usage::default()
        }
    }

    /// A stream of two chunks, each with usage `chunks`, ended with LangChain's sum of them.
    fn streamed(t: &Tracker, run: u128, cumulative: bool, chunks: [Usage; 2]) -> CallRecord {
        t.start(StartInfo {
            run_id: run,
            model: Some("gpt-4o".into()),
            cumulative_chunks: cumulative,
            ..StartInfo::default()
        })
        .unwrap();
        let mut sum = Usage::default();
        for u in chunks {
            assert_eq!(t.token(run, "x"), Ok(cumulative));
            sum.add(&u);
            t.chunk_usage(run, u);
        }
        t.end(
            EndInfo {
                run_id: run,
                usage: Some(sum),
                ..EndInfo::default()
            },
            Vec::new,
        );
        t.records().pop().unwrap()
    }

    #[test]
    fn running_total_chunks_count_the_last_chunk_once() {
        let t = tracker(true);
        let r = streamed(&t, 1, true, [io(2_000, 150), io(2_000, 300)]);
        assert_eq!((r.usage.input, r.usage.output), (2_000, 300));
        assert_eq!(r.usage_notes.as_deref(), Some(LAST_CHUNK_NOTE));
        assert_eq!(r.usage_source, UsageSource::Provider);
    }

    #[test]
    fn delta_chunks_keep_the_sum() {
        // Any other run: the chunk usage handed over is ignored, the end's sum stands.
        let t = tracker(true);
        let r = streamed(&t, 1, false, [io(0, 150), io(2_000, 150)]);
        assert_eq!((r.usage.input, r.usage.output), (2_000, 300));
        assert_eq!(r.usage_notes, None);
    }

    #[test]
    fn a_failed_running_total_stream_is_billed_its_last_chunk() {
        let t = tracker(true);
        t.start(StartInfo {
            run_id: 1,
            model: Some("gpt-4o".into()),
            cumulative_chunks: true,
            ..StartInfo::default()
        })
        .unwrap();
        assert_eq!(t.token(1, "x"), Ok(true));
        t.chunk_usage(1, io(2_000, 150));
        t.end(
            EndInfo {
                run_id: 1,
                error: Some("ConnectionError: reset".into()),
                ..EndInfo::default()
            },
            Vec::new,
        );
        let r = t.records().pop().unwrap();
        assert_eq!((r.usage.input, r.usage.output), (2_000, 150));
        assert!(r.cost.is_some());
    }
}
