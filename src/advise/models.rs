//! `cheaper_model` (short calls on an expensive model of a family with a cheaper member) and
//! `newer_model` (calls on a model whose same-tier successor is cheaper).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::data::data;
use super::{entry_id, price_text, usd, Call, FastMap, Finding, ModelKey, Narrow, Rule};
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
            self.from_prices = c.entry.map_or((None, None), |e| p(e));
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

/// The texts of one finding: title, action, caveat.
struct Texts {
    title: String,
    action: String,
    caveat: String,
}

/// What both rules keep: the calls grouped by model, provider and suggested model, and the
/// suggestion per catalog entry, looked up once.
#[derive(Default)]
struct Switches {
    groups: FastMap<(ModelKey, &'static str), Switch>,
    suggested: FastMap<usize, Suggestion>,
}

impl Switches {
    /// Adds a billed, priced call when `suggest` (the data's model, source and date for the
    /// call's provider and entry id) names a model the catalog prices.
    fn add(
        &mut self,
        c: &Call<'_>,
        suggest: impl FnOnce(&str, &str) -> Option<(&'static str, &'static str, &'static str)>,
    ) {
        let (Some(e), Some(now), Some(provider)) = (&c.entry, c.cost, c.provider_key()) else {
            return;
        };
        if !c.billed() {
            return;
        }
        let suggestion = self.suggested.entry(entry_id(e)).or_insert_with(|| {
            let (to, source, checked) = suggest(provider, &e.id)?;
            Some((to, c.resolve(to, provider)?, source, checked))
        });
        let Some((to, to_entry, source, checked)) = suggestion.clone() else {
            return;
        };
        let Some(then) = c.price_at(&to_entry) else {
            return;
        };
        let g = self.groups.entry((c.key(), to)).or_default();
        if g.source.is_empty() {
            g.source = source.to_string();
            g.checked = checked.to_string();
        }
        g.add(c, now, then, &to_entry);
    }

    /// The findings of the groups that would have saved money, their texts from `texts`
    /// (model, suggested model, group).
    fn finish(
        &mut self,
        rule: &'static str,
        texts: impl Fn(&str, &str, &Switch) -> Texts,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for (((model, provider), to), g) in self.groups.drain() {
            let saving = g.now - g.then;
            if saving <= Decimal::ZERO {
                continue;
            }
            let t = texts(&model, to, &g);
            out.push(Finding {
                rule,
                title: t.title,
                saving,
                monthly_saving: Decimal::ZERO,
                share_of_spend: Decimal::ZERO,
                calls: g.calls,
                scope: g.narrow.scope(&model, provider.as_deref()),
                evidence: g.evidence(to),
                action: t.action,
                caveat: t.caveat,
            });
        }
        out
    }
}

/// `cheaper_model`.
#[derive(Default)]
pub struct CheaperModel(Switches);

impl Rule for CheaperModel {
    fn add(&mut self, c: &Call<'_>) {
        if c.r.usage.input > SHORT_INPUT || c.r.usage.output > SHORT_OUTPUT {
            return;
        }
        self.0.add(c, |provider, id| {
            let (to, family) = data().cheaper(provider, id)?;
            Some((to, family.source.as_str(), family.checked.as_str()))
        });
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        self.0.finish("cheaper_model", |model, to, g| Texts {
            title: format!(
                "{} short calls (prompts up to {SHORT_INPUT} tokens, outputs up to \
                 {SHORT_OUTPUT}) went to {model}; {to} of the same family would have cost {} \
                 instead of {}",
                g.calls,
                money::format_usd(g.then),
                money::format_usd(g.now)
            ),
            action: format!(
                "send these calls to {to}: e.g. model=\"{to}\" on the chat model that makes \
                 them (a second, cheaper client for the simple tasks)"
            ),
            caveat: format!(
                "{to} is a smaller model: check the answers' quality on a sample of these \
                 calls before switching"
            ),
        })
    }
}

/// `newer_model`.
#[derive(Default)]
pub struct NewerModel(Switches);

impl Rule for NewerModel {
    fn add(&mut self, c: &Call<'_>) {
        self.0.add(c, |provider, id| {
            let next = data().successor(provider, id)?;
            Some((
                next.successor.as_str(),
                next.source.as_str(),
                next.checked.as_str(),
            ))
        });
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        self.0.finish("newer_model", |model, to, g| Texts {
            title: format!(
                "{model} has a newer model of the same tier, {to}, that would have billed \
                 these {} calls {} instead of {}",
                g.calls,
                money::format_usd(g.then),
                money::format_usd(g.now)
            ),
            action: format!("change model=\"{model}\" to model=\"{to}\""),
            caveat: format!(
                "{to} answers differently (and counts tokens with its own tokenizer, so the \
                 same text may be more or fewer tokens): re-run your evaluations first"
            ),
        })
    }
}
