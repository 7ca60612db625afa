//! `cheaper_model` (short calls on an expensive model of a family with a cheaper member) and
//! `newer_model` (calls on a model whose same-tier successor is cheaper).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::data::data;
use super::{entry_id, model_key, price_text, usd, Call, FastMap, Finding, ModelKey, Narrow, Rule};
use crate::catalog::Entry;
use crate::money::{self, Decimal};

/// A call is a simple task when its prompt and its output are at most this long (tokens).
pub const SHORT_INPUT: u64 = 1000;
/// See [`SHORT_INPUT`].
pub const SHORT_OUTPUT: u64 = 300;

#[derive(Default)]
struct Switch {
    calls: u64,
    now: Decimal,
    then: Decimal,
    input_tokens: u64,
    output_tokens: u64,
    from_prices: (Option<Decimal>, Option<Decimal>),
    to_prices: (Option<Decimal>, Option<Decimal>),
    to_entry: Option<Arc<str>>,
    source: String,
    checked: String,
    narrow: Narrow,
}

impl Switch {
    fn add(&mut self, c: &Call<'_>, now: Decimal, then: Decimal, to: &crate::catalog::Entry) {
        let r = c.r;
        self.calls += 1;
        self.now += now;
        self.then += then;
        self.input_tokens += r.usage.input;
        self.output_tokens += r.usage.output;
        self.narrow.add(r);
        if self.to_entry.is_none() {
            let p = |e: &crate::catalog::Entry| {
                let b = &e.version_at(c.date).standard.base;
                (Some(b.input), Some(b.output))
            };
            self.from_prices = c.entry.as_deref().map_or((None, None), p);
            self.to_prices = p(to);
            self.to_entry = Some(to.key().clone());
        }
    }

    fn evidence(&self, to: &str) -> serde_json::Value {
        json!({
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "current_cost_usd": usd(self.now),
            "suggested_cost_usd": usd(self.then),
            "current_price_per_1m": {"input": price_text(self.from_prices.0), "output": price_text(self.from_prices.1)},
            "suggested_model": to,
            "suggested_price_entry": self.to_entry.as_deref(),
            "suggested_price_per_1m": {"input": price_text(self.to_prices.0), "output": price_text(self.to_prices.1)},
            "source": self.source,
            "checked": self.checked,
        })
    }
}

/// What a rule suggests for the calls of one entry and provider: the model, its entry, and
/// the data item's source and date.
type Suggestion = Option<(&'static str, Arc<Entry>, &'static str, &'static str)>;

/// `cheaper_model`.
#[derive(Default)]
pub struct CheaperModel {
    groups: FastMap<(ModelKey, &'static str), Switch>,
    /// The suggestion per entry, looked up once.
    suggested: FastMap<usize, Suggestion>,
}

impl Rule for CheaperModel {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        let (Some(e), Some(now), Some(provider)) = (&c.entry, c.cost, c.provider_key()) else {
            return;
        };
        if !c.billed() || r.usage.input > SHORT_INPUT || r.usage.output > SHORT_OUTPUT {
            return;
        }
        let suggestion = self.suggested.entry(entry_id(e)).or_insert_with(|| {
            let (to, family) = data().cheaper(provider, &e.id)?;
            let to_entry = c.resolve(to, provider)?;
            Some((
                to,
                to_entry,
                family.source.as_str(),
                family.checked.as_str(),
            ))
        });
        let Some((to, to_entry, source, checked)) = suggestion.clone() else {
            return;
        };
        let Some(then) = c.price_at(&to_entry) else {
            return;
        };
        let g = self.groups.entry((model_key(r), to)).or_default();
        if g.source.is_empty() {
            g.source = source.to_string();
            g.checked = checked.to_string();
        }
        g.add(c, now, then, &to_entry);
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (((model, provider), to), g) in self.groups.drain() {
            let saving = g.now - g.then;
            if saving <= Decimal::ZERO {
                continue;
            }
            out.push(Finding {
                rule: "cheaper_model",
                title: format!(
                    "{} short calls (prompts up to {SHORT_INPUT} tokens, outputs up to \
                     {SHORT_OUTPUT}) went to {model}; {to} of the same family would have cost {} \
                     instead of {}",
                    g.calls,
                    money::format_usd(g.then),
                    money::format_usd(g.now)
                ),
                saving,
                monthly_saving: Decimal::ZERO,
                share_of_spend: Decimal::ZERO,
                calls: g.calls,
                scope: g.narrow.scope(&model, provider.as_deref()),
                evidence: g.evidence(to),
                action: format!(
                    "send these calls to {to}: e.g. model=\"{to}\" on the chat model that makes \
                     them (a second, cheaper client for the simple tasks)"
                ),
                caveat: format!(
                    "{to} is a smaller model: check the answers' quality on a sample of these \
                     calls before switching"
                ),
            });
        }
        out
    }
}

/// `newer_model`.
#[derive(Default)]
pub struct NewerModel {
    groups: FastMap<(ModelKey, &'static str), Switch>,
    /// The successor per entry, looked up once.
    suggested: FastMap<usize, Suggestion>,
}

impl Rule for NewerModel {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        let (Some(e), Some(now), Some(provider)) = (&c.entry, c.cost, c.provider_key()) else {
            return;
        };
        if !c.billed() {
            return;
        }
        let suggestion = self.suggested.entry(entry_id(e)).or_insert_with(|| {
            let next = data().successor(provider, &e.id)?;
            let to_entry = c.resolve(&next.successor, provider)?;
            Some((
                next.successor.as_str(),
                to_entry,
                next.source.as_str(),
                next.checked.as_str(),
            ))
        });
        let Some((to, to_entry, source, checked)) = suggestion.clone() else {
            return;
        };
        let Some(then) = c.price_at(&to_entry) else {
            return;
        };
        let g = self.groups.entry((model_key(r), to)).or_default();
        if g.source.is_empty() {
            g.source = source.to_string();
            g.checked = checked.to_string();
        }
        g.add(c, now, then, &to_entry);
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (((model, provider), to), g) in self.groups.drain() {
            let saving = g.now - g.then;
            if saving <= Decimal::ZERO {
                continue;
            }
            out.push(Finding {
                rule: "newer_model",
                title: format!(
                    "{model} has a newer model of the same tier, {to}, that would have billed \
                     these {} calls {} instead of {}",
                    g.calls,
                    money::format_usd(g.then),
                    money::format_usd(g.now)
                ),
                saving,
                monthly_saving: Decimal::ZERO,
                share_of_spend: Decimal::ZERO,
                calls: g.calls,
                scope: g.narrow.scope(&model, provider.as_deref()),
                evidence: g.evidence(to),
                action: format!("change model=\"{model}\" to model=\"{to}\""),
                caveat: format!(
                    "{to} answers differently (and counts tokens with its own tokenizer, so the \
                     same text may be more or fewer tokens): re-run your evaluations first"
                ),
            });
        }
        out
    }
}
