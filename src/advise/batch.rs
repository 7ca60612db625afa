//! `batch_api`: calls that are not latency-sensitive, priced at the model's batch (or flex)
//! prices.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{usd, Call, FastMap, Finding, ModelKey, Narrow, Rule};
use crate::money::{self, Decimal};

/// Calls of one root run (a chain or graph invocation) from which on they are a burst that
/// `.batch()` or a loop made: work no user waits on call by call.
pub const BURST_CALLS: u64 = 10;
/// Root runs followed at most for bursts.
const MAX_ROOTS: usize = 100_000;
/// Root run names and tags whose answer is remembered at most.
const MEMO: usize = 4096;

#[derive(Default)]
struct Priced {
    calls: u64,
    now: Decimal,
    then: Decimal,
}

#[derive(Default)]
struct BatchGroup {
    calls: u64,
    now: Decimal,
    then: Decimal,
    variant: &'static str,
    why_named: u64,
    why_burst: u64,
    narrow: Narrow,
}

/// `batch_api`.
pub struct BatchApi {
    keywords: Vec<String>,
    /// [`first_bytes`] of `keywords`.
    first: [bool; 256],
    /// The answer for root run names and tags already asked (a ledger has few of them), at
    /// most [`MEMO`].
    memo: FastMap<Box<str>, bool>,
    groups: FastMap<(ModelKey, &'static str), BatchGroup>,
    /// Calls of each root run with a parent-child burst shape, not named as batch work:
    /// counted in when the root reaches [`BURST_CALLS`].
    roots: FastMap<u128, (ModelKey, &'static str, Priced, Narrow)>,
}

impl BatchApi {
    /// The rule, with the words that mark batch work.
    pub fn new(keywords: &[String]) -> Self {
        let keywords: Vec<String> = keywords.iter().map(|k| k.to_ascii_lowercase()).collect();
        BatchApi {
            first: first_bytes(&keywords),
            keywords,
            memo: FastMap::default(),
            groups: FastMap::default(),
            roots: FastMap::default(),
        }
    }

    /// Whether the root run's name, a tag or a captured metadata value names batch work: a
    /// keyword starting one of its words (`nightly-digest`, `BatchSummarize`, `evaluation`;
    /// not `retrieval` for `eval`, nor `acronym` for `cron`).
    fn named_batch(&mut self, c: &Call<'_>) -> bool {
        let r = c.r;
        r.root_run_name.as_deref().is_some_and(|n| self.names(n))
            || r.tags.iter().any(|t| self.names(t))
            || r.attribution
                .iter()
                .any(|(_, v)| names_keyword_with(v, &self.keywords, &self.first))
    }

    /// [`names_keyword`] of a root run name or tag, remembered.
    fn names(&mut self, text: &str) -> bool {
        if let Some(&hit) = self.memo.get(text) {
            return hit;
        }
        let hit = names_keyword_with(text, &self.keywords, &self.first);
        if self.memo.len() >= MEMO {
            self.memo.clear();
        }
        self.memo.insert(text.into(), hit);
        hit
    }
}

/// Whether a word of `text` starts with one of `keywords` (lower-case). Words are split at
/// every character that is not a letter or digit, and before an upper-case letter that
/// follows a lower-case one (`nightlyDigest`).
#[cfg(test)]
pub fn names_keyword(text: &str, keywords: &[String]) -> bool {
    names_keyword_with(text, keywords, &first_bytes(keywords))
}

/// [`names_keyword`], with `first`: [`first_bytes`] of `keywords`, worked out once.
fn names_keyword_with(text: &str, keywords: &[String], first: &[bool; 256]) -> bool {
    if text.is_ascii() {
        names_keyword_ascii(text.as_bytes(), keywords, first)
    } else {
        names_keyword_unicode(text, keywords)
    }
}

/// The bytes a word must start with to start with one of `keywords`: every byte when one
/// is empty (it starts every word).
fn first_bytes(keywords: &[String]) -> [bool; 256] {
    let mut first = [false; 256];
    for k in keywords {
        match k.as_bytes().first() {
            Some(b) => first[usize::from(*b)] = true,
            None => first = [true; 256],
        }
    }
    first
}

/// [`names_keyword`] of ASCII text, on its bytes: the same words (ASCII letters and digits
/// are the alphanumerics, ASCII case the case), compared in place instead of collected;
/// `first` is [`first_bytes`] of `keywords`.
fn names_keyword_ascii(text: &[u8], keywords: &[String], first: &[bool; 256]) -> bool {
    let starts = |word: &[u8]| {
        word.first()
            .is_some_and(|c| first[usize::from(c.to_ascii_lowercase())])
            && keywords.iter().any(|k| {
                k.len() <= word.len()
                    && word
                        .iter()
                        .zip(k.as_bytes())
                        .all(|(c, k)| c.to_ascii_lowercase() == *k)
            })
    };
    let mut start = 0;
    let mut prev_lower = false;
    for (i, &c) in text.iter().enumerate() {
        let alnum = c.is_ascii_alphanumeric();
        if !alnum || (c.is_ascii_uppercase() && prev_lower) {
            if starts(&text[start..i]) {
                return true;
            }
            start = if alnum { i } else { i + 1 };
        }
        prev_lower = c.is_ascii_lowercase();
    }
    starts(&text[start..])
}

/// [`names_keyword`] of any text.
fn names_keyword_unicode(text: &str, keywords: &[String]) -> bool {
    let mut word = String::new();
    let mut prev_lower = false;
    let check = |word: &mut String| {
        let hit = !word.is_empty() && keywords.iter().any(|k| word.starts_with(k.as_str()));
        word.clear();
        hit
    };
    for ch in text.chars() {
        let boundary = !ch.is_alphanumeric() || (ch.is_uppercase() && prev_lower);
        if boundary && check(&mut word) {
            return true;
        }
        if ch.is_alphanumeric() {
            word.extend(ch.to_lowercase());
        }
        prev_lower = ch.is_lowercase();
    }
    check(&mut word)
}

impl Rule for BatchApi {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        let Some(now) = c.cost else { return };
        if !c.billed()
            || r.chunks > 0
            || crate::catalog::tier_variant(r.service_tier.as_deref()).is_some()
        {
            return;
        }
        // Which calls could count is cheaper to ask than what they would cost: priced last.
        let Some(e) = &c.entry else { return };
        let variants = &e.version_at(c.date).variants;
        if !variants.contains_key("batch") && !variants.contains_key("flex") {
            return;
        }
        let named = self.named_batch(c);
        if !named
            && (r.parent_run_id.is_none()
                || (!self.roots.contains_key(&r.root_run_id) && self.roots.len() >= MAX_ROOTS))
        {
            return;
        }
        let (then, variant) = match c.price_variant(&r.usage, "batch") {
            Some(p) => (p, "batch"),
            None => match c.price_variant(&r.usage, "flex") {
                Some(p) => (p, "flex"),
                None => return,
            },
        };
        if named {
            let g = self.groups.entry((c.key(), variant)).or_default();
            g.calls += 1;
            g.now += now;
            g.then += then;
            g.variant = variant;
            g.why_named += 1;
            g.narrow.add(r);
            return;
        }
        let e = self
            .roots
            .entry(r.root_run_id)
            .or_insert_with(|| (c.key(), variant, Priced::default(), Narrow::default()));
        e.2.calls += 1;
        e.2.now += now;
        e.2.then += then;
        e.3.add(r);
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        for (_, (key, variant, p, narrow)) in self.roots.drain() {
            if p.calls < BURST_CALLS {
                continue;
            }
            let g = self.groups.entry((key, variant)).or_default();
            g.calls += p.calls;
            g.now += p.now;
            g.then += p.then;
            g.variant = variant;
            g.why_burst += p.calls;
            g.narrow.merge(&narrow);
        }
        let mut out = Vec::new();
        for (((model, provider), variant), g) in self.groups.drain() {
            let saving = g.now - g.then;
            if saving <= Decimal::ZERO {
                continue;
            }
            let action = if variant == "batch" {
                "submit these calls through the provider's Batch API (results within 24 hours): \
                 OpenAI's /v1/batches, Anthropic's Message Batches (client.messages.batches); \
                 LangChain's .batch() alone does not use it"
                    .to_string()
            } else {
                "send these calls with service_tier=\"flex\" (slower, cheaper processing): \
                 ChatOpenAI(model=..., service_tier=\"flex\")"
                    .to_string()
            };
            out.push(Finding {
                rule: "batch_api",
                title: format!(
                    "{} non-streaming background calls to {model} at standard prices would have \
                     cost {} at {variant} prices instead of {}",
                    g.calls,
                    money::format_usd(g.then),
                    money::format_usd(g.now)
                ),
                saving,
                monthly_saving: Decimal::ZERO,
                share_of_spend: Decimal::ZERO,
                calls: g.calls,
                scope: g.narrow.scope(&model, provider.as_deref()),
                evidence: json!({
                    "calls": g.calls,
                    "named_as_batch_work": g.why_named,
                    "in_bursts_of_one_root_run": g.why_burst,
                    "burst_calls_at_least": BURST_CALLS,
                    "current_cost_usd": usd(g.now),
                    "variant": variant,
                    "variant_cost_usd": usd(g.then),
                }),
                action,
                caveat: "Only for work no one waits on: batch results can take up to 24 hours, \
                    flex requests may be slower or refused at busy times."
                    .into(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_words_are_the_unicode_words() {
        // Random ASCII names against keyword lists that include odd ones (empty, upper-case,
        // with a separator, non-ASCII): the byte scan answers as the char scan does.
        let alphabet = b"abtchBATCHnightlyNIGHTLYevalEVAL09_- ./:";
        let lists: Vec<Vec<String>> = [
            &["batch", "nightly", "eval"][..],
            &[""],
            &["Batch", "EVAL"],
            &["b-a", "h1"],
            &["über", "cron"],
            &[],
        ]
        .iter()
        .map(|l| l.iter().map(|k| (*k).to_string()).collect())
        .collect();
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            usize::try_from(state >> 33).unwrap()
        };
        for _ in 0..20_000 {
            let len = next() % 24;
            let text: String = (0..len)
                .map(|_| char::from(alphabet[next() % alphabet.len()]))
                .collect();
            for k in &lists {
                assert_eq!(
                    names_keyword_ascii(text.as_bytes(), k, &first_bytes(k)),
                    names_keyword_unicode(&text, k),
                    "{text:?} {k:?}"
                );
            }
        }
    }
}
