//! `uncapped_output` (long outputs of calls that set no output cap) and `long_prompt`
//! (prompts over [`LONG_PROMPT`] tokens that dominate spend).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::{usd, Call, FastMap, Finding, ModelKey, Narrow, Rule};
use crate::catalog::{tier_variant, Entry};
use crate::money::{self, Decimal};
use crate::usage::Usage;

/// An output longer than this (tokens) is long (the tutorial's rule); a suggested cap is never
/// below it.
pub const LONG_OUTPUT: u64 = 500;
/// A prompt longer than this (tokens) is long (the tutorial's rule).
pub const LONG_PROMPT: u64 = 1000;
/// Long prompts are reported when their input costs at least this share of the window's
/// spend (percent).
pub const LONG_PROMPT_SHARE_PCT: i64 = 50;
/// The cap suggested is this percentile of the calls' outputs (nearest rank).
pub const CAP_PERCENTILE: usize = 90;

/// A long output, kept to price it under the cap once the cap is known.
struct Long {
    usage: Usage,
    date: NaiveDate,
    tier: Option<String>,
    entry: std::sync::Arc<Entry>,
    cost: Decimal,
}

#[derive(Default)]
struct OutputGroup {
    outputs: Vec<u64>,
    long: Vec<Long>,
    narrow: Narrow,
    output_price: Option<Decimal>,
}

/// `uncapped_output`.
#[derive(Default)]
pub struct UncappedOutput {
    groups: FastMap<ModelKey, OutputGroup>,
}

/// The nearest-rank `pct` percentile of `v` (sorted in place); 0 when empty.
pub fn percentile(v: &mut [u64], pct: usize) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let rank = (pct * v.len()).div_ceil(100).max(1);
    v[rank - 1]
}

impl Rule for UncappedOutput {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        // Only calls whose start was seen say whether they set a cap.
        let (Some(_), None, Some(e), Some(cost)) = (
            &r.request.fingerprint,
            r.request.max_tokens,
            &c.entry,
            c.cost,
        ) else {
            return;
        };
        if !c.billed() {
            return;
        }
        let g = self.groups.entry(c.key()).or_default();
        g.outputs.push(r.usage.output);
        if r.usage.output > LONG_OUTPUT {
            g.narrow.add(r);
            g.output_price
                .get_or_insert(e.version_at(c.date).standard.base.output);
            g.long.push(Long {
                usage: r.usage,
                date: c.date,
                tier: r.service_tier.clone(),
                entry: std::sync::Arc::clone(e),
                cost,
            });
        }
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((model, provider), mut g) in self.groups.drain() {
            if g.long.is_empty() {
                continue;
            }
            let uncapped = g.outputs.len() as u64;
            let cap = percentile(&mut g.outputs, CAP_PERCENTILE).max(LONG_OUTPUT);
            let mut saving = Decimal::ZERO;
            let mut cut_calls = 0u64;
            let mut beyond = 0u64;
            for l in &g.long {
                if l.usage.output <= cap {
                    continue;
                }
                let capped = Usage {
                    output: cap,
                    reasoning: l.usage.reasoning.min(cap),
                    output_audio: l.usage.output_audio.min(cap),
                    ..l.usage
                };
                let Some(p) = l
                    .entry
                    .cost_total(&capped, l.date, tier_variant(l.tier.as_deref()))
                else {
                    continue;
                };
                saving += l.cost - p;
                cut_calls += 1;
                beyond += l.usage.output - cap;
            }
            if saving <= Decimal::ZERO {
                continue;
            }
            out.push(Finding {
                rule: "uncapped_output",
                title: format!(
                    "{cut_calls} calls to {model} set no output cap and wrote more than \
                     {cap} tokens (the {CAP_PERCENTILE}th percentile of its uncapped outputs): \
                     {} went on the tokens past it",
                    money::format_usd(saving)
                ),
                saving,
                monthly_saving: Decimal::ZERO,
                share_of_spend: Decimal::ZERO,
                calls: cut_calls,
                scope: g.narrow.scope(&model, provider.as_deref()),
                evidence: json!({
                    "uncapped_calls": uncapped,
                    "long_outputs": g.long.len(),
                    "calls_over_cap": cut_calls,
                    "suggested_max_tokens": cap,
                    "output_tokens_beyond_cap": beyond,
                    "output_price_per_1m": g.output_price.map(money::format),
                    "long_output_tokens_above": LONG_OUTPUT,
                }),
                action: format!(
                    "set max_tokens={cap} on the chat model (ChatOpenAI(max_tokens={cap}), \
                     ChatAnthropic(max_tokens={cap})), and ask for shorter answers in the prompt"
                ),
                caveat: "A cap cuts answers off mid-way: check that the longest answers \
                    still fit, or ask for brevity in the prompt instead."
                    .into(),
            });
        }
        out
    }
}

#[derive(Default)]
struct PromptGroup {
    calls: u64,
    input_tokens: u64,
    input_cost: Decimal,
    cost: Decimal,
    narrow: Narrow,
}

/// `long_prompt`.
#[derive(Default)]
pub struct LongPrompt {
    groups: FastMap<ModelKey, PromptGroup>,
    spend: Decimal,
}

impl Rule for LongPrompt {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        let Some(cost) = &r.cost else { return };
        self.spend += cost.total;
        if r.usage.input <= LONG_PROMPT || !c.billed() {
            return;
        }
        let g = self.groups.entry(c.key()).or_default();
        g.calls += 1;
        g.input_tokens += r.usage.input;
        g.input_cost += cost.input + cost.cache_read + cost.cache_write;
        g.cost += cost.total;
        g.narrow.add(r);
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.spend.is_zero() {
            return out;
        }
        for ((model, provider), g) in self.groups.drain() {
            let share = g.input_cost / self.spend;
            if share * Decimal::from(100) < Decimal::from(LONG_PROMPT_SHARE_PCT) {
                continue;
            }
            let pct = (share * Decimal::from(100)).round_dp(1).normalize();
            out.push(Finding {
                rule: "long_prompt",
                title: format!(
                    "prompts over {LONG_PROMPT} tokens to {model} are {pct}% of all spend ({})",
                    money::format_usd(g.input_cost)
                ),
                saving: Decimal::ZERO,
                monthly_saving: Decimal::ZERO,
                share_of_spend: Decimal::ZERO,
                calls: g.calls,
                scope: g.narrow.scope(&model, provider.as_deref()),
                evidence: json!({
                    "calls": g.calls,
                    "input_tokens": g.input_tokens,
                    "average_input_tokens": g.input_tokens / g.calls.max(1),
                    "input_cost_usd": usd(g.input_cost),
                    "calls_cost_usd": usd(g.cost),
                    "input_share_of_spend": money::format(share.round_dp(4)),
                }),
                action: "shorten these prompts: send fewer retrieved chunks or less history \
                    (trim or summarise old turns), and move stable instructions into a cached \
                    prefix"
                    .into(),
                caveat: "No saving is computed: how much can go depends on what the prompts \
                    hold. Every 10% shorter saves about 10% of the input cost shown."
                    .into(),
            });
        }
        out
    }
}
