//! Findings about accuracy, with no money attached: `estimated_usage` (calls priced from
//! llmledger's own token count) and `unpriced_models` (calls whose cost is unknown).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{usd, Call, Finding, ModelKey, Narrow, Rule};
use crate::money::Decimal;
use crate::usage::{Usage, UsageSource};

#[derive(Default)]
struct Group {
    calls: u64,
    streamed: u64,
    cost: Decimal,
    usage: Usage,
    narrow: Narrow,
    reason: Option<String>,
}

/// `estimated_usage`.
#[derive(Default)]
pub struct Estimated {
    groups: BTreeMap<ModelKey, Group>,
}

impl Rule for Estimated {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        if r.usage_source != UsageSource::Estimated || r.error.is_some() {
            return;
        }
        let g = self.groups.entry(c.key()).or_default();
        g.calls += 1;
        g.streamed += u64::from(r.chunks > 0);
        g.cost += r.cost.as_ref().map_or(Decimal::ZERO, |c| c.total);
        g.usage.add(&r.usage);
        g.narrow.add(r);
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        let groups = std::mem::take(&mut self.groups);
        groups
            .into_iter()
            .map(|((model, provider), g)| {
                let fix = if g.streamed > 0 {
                    format!(
                        "for exact usage in streams, {}",
                        crate::guidance::stream_usage_fix(provider.as_deref())
                    )
                } else {
                    "make the chat model return its provider's usage (usage_metadata on the \
                     AIMessage, or llm_output[\"token_usage\"]): a custom or wrapped model \
                     that drops it is priced from llmledger's own count"
                        .to_string()
                };
                Finding {
                    rule: "estimated_usage",
                    title: format!(
                        "{} calls to {model} reported no token usage: their cost ({}) is \
                         llmledger's estimate, not the provider's bill",
                        g.calls,
                        crate::money::format_usd(g.cost)
                    ),
                    saving: Decimal::ZERO,
                    monthly_saving: Decimal::ZERO,
                    share_of_spend: Decimal::ZERO,
                    calls: g.calls,
                    scope: g.narrow.scope(&model, provider.as_deref()),
                    evidence: json!({
                        "estimated_calls": g.calls,
                        "streamed_calls": g.streamed,
                        "estimated_input_tokens": g.usage.input,
                        "estimated_output_tokens": g.usage.output,
                        "estimated_cost_usd": usd(g.cost),
                    }),
                    action: fix,
                    caveat: "Estimates miss what only the provider counts (cached, reasoning \
                        and tool tokens), so every other finding about these calls is \
                        approximate too."
                        .into(),
                }
            })
            .collect()
    }
}

/// `unpriced_models`.
#[derive(Default)]
pub struct Unpriced {
    groups: BTreeMap<ModelKey, Group>,
}

impl Rule for Unpriced {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        if r.cost.is_some() || r.error.is_some() || r.usage.is_empty() {
            return;
        }
        let g = self.groups.entry(c.key()).or_default();
        g.calls += 1;
        g.usage.add(&r.usage);
        g.narrow.add(r);
        if g.reason.is_none() {
            g.reason.clone_from(&r.unpriced_reason);
        }
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        let groups = std::mem::take(&mut self.groups);
        groups
            .into_iter()
            .map(|((model, provider), g)| {
                let mut fields = vec![
                    "\"input\": \"<USD per 1M input tokens>\"".to_string(),
                    "\"output\": \"<USD per 1M output tokens>\"".to_string(),
                ];
                if g.usage.cache_read > 0 {
                    fields.push("\"cache_read\": \"<USD per 1M>\"".into());
                }
                if g.usage.cache_write > 0 {
                    fields.push("\"cache_write\": \"<USD per 1M>\"".into());
                }
                if g.usage.input_audio > 0 || g.usage.output_audio > 0 {
                    fields.push("\"input_audio\": \"<USD per 1M>\", \"output_audio\": \"<USD per 1M>\"".into());
                }
                let action = if &*model == "?" {
                    "name the model: config={\"metadata\": {\"ls_model_name\": \"my-model\"}}, \
                     then price it with CostTracker(prices={\"my-model\": {\"input\": \"<USD \
                     per 1M>\", \"output\": \"<USD per 1M>\"}})"
                        .to_string()
                } else {
                    format!(
                        "add its prices: CostTracker(prices={{\"{model}\": {{{}}}}}) (or a \
                         prices file, docs/catalog.md): calls recorded from then on are priced",
                        fields.join(", ")
                    )
                };
                Finding {
                    rule: "unpriced_models",
                    title: format!(
                        "{} calls to {model} have no known cost: the ledger's totals leave them out",
                        g.calls
                    ),
                    saving: Decimal::ZERO,
                    monthly_saving: Decimal::ZERO,
                    share_of_spend: Decimal::ZERO,
                    calls: g.calls,
                    scope: g.narrow.scope(&model, provider.as_deref()),
                    evidence: json!({
                        "unpriced_calls": g.calls,
                        "input_tokens": g.usage.input,
                        "output_tokens": g.usage.output,
                        "cache_read_tokens": g.usage.cache_read,
                        "cache_write_tokens": g.usage.cache_write,
                        "reason": g.reason,
                    }),
                    action,
                    caveat: "Until priced, budgets and reports undercount these calls' spend."
                        .into(),
                }
            })
            .collect()
    }
}
