//! `prompt_caching` (repeated prompt prefixes billed at the full input price) and
//! `cache_writes_unread` (cache writes no call read within their lifetime).

use std::collections::hash_map::Entry;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::data::{data, CacheRule};
use super::{entry_id, price_text, usd, Call, FastMap, Finding, ModelKey, Narrow, Rule};
use crate::money::Decimal;
use crate::usage::Usage;

/// Prefixes remembered at most per rule; past it, those unseen for a lifetime are dropped.
const MAX_PREFIXES: usize = 200_000;
/// Over calls in time order, the prefixes remembered before the first sweep (then twice as
/// many as the last sweep kept).
const MIN_SWEEP: usize = 1024;

/// A prefix of some model's prompts: when it was last sent, and the first call's premium.
struct Prefix {
    last: DateTime<Utc>,
    /// What writing it to the cache would have added to the first call of its run.
    premium: Premium,
    /// Whether a repeat already counted that premium.
    charged: bool,
}

/// The first call of a prefix's run, to price its cache-write premium when a repeat first
/// counts it: most prefixes (a prompt's own end) are never repeated, and pricing them all
/// would cost a pricing per call.
struct Premium {
    /// The call's usage with the prefix's tokens written to the cache.
    written: Usage,
    /// Its cost as recorded.
    full: Decimal,
    date: chrono::NaiveDate,
    tier: Option<&'static str>,
}

impl Premium {
    /// What `Call::price` of the written usage adds to the call's cost (zero if nothing,
    /// or if the catalog cannot price it), at `entry` (the call's, the prefix's key's).
    fn price(&self, entry: &crate::catalog::Entry) -> Decimal {
        entry
            .cost_total(&self.written, self.date, self.tier)
            .map_or(Decimal::ZERO, |w| (w - self.full).max(Decimal::ZERO))
    }
}

/// `catalog::tier_variant` of a record's service tier, as a name that lives on its own.
fn tier_name(tier: Option<&str>) -> Option<&'static str> {
    match crate::catalog::tier_variant(tier)? {
        "flex" => Some("flex"),
        "priority" => Some("priority"),
        _ => Some("batch"),
    }
}

#[derive(Default)]
struct CachingGroup {
    calls: u64,
    saving: Decimal,
    premium: Decimal,
    prefix_tokens: u64,
    rule: Option<CacheRule>,
    input_price: Option<Decimal>,
    cache_read_price: Option<Decimal>,
    cache_write_price: Option<Decimal>,
    narrow: Narrow,
}

/// `prompt_caching`.
pub struct PromptCaching {
    /// Sweep when more prefixes than this are remembered.
    limit: usize,
    /// Calls come in time order: a prefix unseen for longer than the longest lifetime is
    /// never a hit again, so sweeping often changes nothing but the memory the rule holds
    /// (and how much of it each call touches).
    ordered: bool,
    prefixes: FastMap<(usize, u64), Prefix>,
    groups: FastMap<ModelKey, CachingGroup>,
    /// The cache rule per entry, looked up once.
    rules: FastMap<usize, Option<&'static CacheRule>>,
    /// The current call's marks (hash, tokens): one buffer for every call.
    marks: Vec<(u64, u64)>,
}

/// The tokens of a prefix of `bytes` of a prompt of `total` bytes and `input` tokens: its
/// share of the prompt's tokens (rounded down).
pub fn prefix_tokens(input: u64, bytes: u64, total: u64) -> u64 {
    if total == 0 {
        return 0;
    }
    u64::try_from(u128::from(input) * u128::from(bytes) / u128::from(total)).unwrap_or(0)
}

impl PromptCaching {
    /// The rule; `ordered`: the calls will come in time order (see [`PromptCaching::ordered`]).
    pub fn new(ordered: bool) -> Self {
        PromptCaching {
            limit: if ordered { MIN_SWEEP } else { MAX_PREFIXES },
            ordered,
            prefixes: FastMap::default(),
            groups: FastMap::default(),
            rules: FastMap::default(),
            marks: Vec::new(),
        }
    }

    fn sweep(&mut self, now: DateTime<Utc>) {
        if self.prefixes.len() > self.limit {
            // Lifetimes are at most an hour: anything older is of no use.
            let horizon = if self.ordered {
                Duration::seconds(longest_lifetime_s().max(3600))
            } else {
                Duration::hours(1)
            };
            self.prefixes.retain(|_, p| now - p.last <= horizon);
            if self.ordered {
                self.limit = MIN_SWEEP.max(2 * self.prefixes.len());
            }
        }
    }
}

/// The longest cache lifetime of any rule in the advisor's data.
fn longest_lifetime_s() -> i64 {
    data()
        .prompt_cache
        .iter()
        .map(|r| r.lifetime_s)
        .max()
        .unwrap_or(0)
}

impl Rule for PromptCaching {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        let (Some(fp), Some(e), Some(full)) = (&r.request.fingerprint, &c.entry, c.cost) else {
            return;
        };
        if !c.billed() || r.usage.cache_read > 0 || r.usage.cache_write > 0 {
            return;
        }
        let prices = &e.version_at(c.date).standard.base;
        // No cache-read price below input: caching saves nothing the catalog can price.
        let Some(read_price) = prices.cache_read.filter(|p| *p < prices.input) else {
            return;
        };
        let rule = *self.rules.entry(entry_id(e)).or_insert_with(|| {
            c.provider_key()
                .and_then(|provider| data().cache_rule(provider, &e.id))
        });
        let Some(rule) = rule else {
            return;
        };
        let lifetime = Duration::seconds(rule.lifetime_s);
        let key = entry_id(e);
        let mut marks = std::mem::take(&mut self.marks);
        marks.clear();
        marks.extend(
            fp.prefixes
                .iter()
                .map(|m| {
                    (
                        m.hash,
                        prefix_tokens(r.usage.input, m.bytes, fp.prompt_bytes),
                    )
                })
                .filter(|(_, t)| *t >= rule.min_tokens),
        );
        // The longest prefix sent within its lifetime is what the cache would have served.
        let hit = marks.iter().rev().find(|(hash, _)| {
            self.prefixes
                .get(&(key, *hash))
                .is_some_and(|prefix| r.time - prefix.last <= lifetime)
        });
        if let Some(&(hash, tokens)) = hit {
            let cached = Usage {
                cache_read: tokens,
                ..r.usage
            };
            if let Some(saved) = c.price(&cached).map(|cached_cost| full - cached_cost) {
                let g = self.groups.entry(c.key()).or_default();
                let prefix = self.prefixes.get_mut(&(key, hash)).expect("found above");
                if !prefix.charged {
                    prefix.charged = true;
                    g.premium += prefix.premium.price(e);
                }
                g.calls += 1;
                g.saving += saved;
                g.prefix_tokens += tokens;
                g.narrow.add(r);
                if g.rule.is_none() {
                    g.rule = Some(rule.clone());
                    g.input_price = Some(prices.input);
                    g.cache_read_price = Some(read_price);
                    g.cache_write_price = prices.cache_write;
                }
            }
        }
        for &(hash, tokens) in &marks {
            let fresh = |p: &Prefix| r.time - p.last <= lifetime;
            match self.prefixes.entry((key, hash)) {
                Entry::Occupied(mut o) if fresh(o.get()) => o.get_mut().last = r.time,
                slot => {
                    let prefix = Prefix {
                        last: r.time,
                        premium: Premium {
                            written: Usage {
                                cache_write: tokens,
                                ..r.usage
                            },
                            full,
                            date: c.date,
                            tier: tier_name(r.service_tier.as_deref()),
                        },
                        charged: false,
                    };
                    match slot {
                        Entry::Occupied(mut o) => {
                            o.insert(prefix);
                        }
                        Entry::Vacant(v) => {
                            v.insert(prefix);
                        }
                    }
                }
            }
        }
        self.marks = marks;
        self.sweep(r.time);
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((model, provider), g) in self.groups.drain() {
            let saving = g.saving - g.premium;
            let Some(rule) = g.rule.filter(|_| saving > Decimal::ZERO) else {
                continue;
            };
            let action = match rule.provider.as_str() {
                "anthropic" => "mark the repeated prefix cacheable: put cache_control \
                    {\"type\": \"ephemeral\"} on the last block of the shared part (the system \
                    message, e.g. SystemMessage(content=[{\"type\": \"text\", \"text\": ..., \
                    \"cache_control\": {\"type\": \"ephemeral\"}}])) and keep that part \
                    byte-identical across calls"
                    .to_string(),
                "openai" => "OpenAI caches prompts of 1024+ tokens automatically, but these \
                    repeats were billed in full: keep the shared part first and byte-identical, \
                    and pass the same prompt_cache_key for calls sharing it \
                    (ChatOpenAI(model_kwargs={\"prompt_cache_key\": \"<prefix name>\"}) or \
                    .bind(prompt_cache_key=...)) so they are routed to the same cache"
                    .to_string(),
                p => format!("turn on {p}'s prompt caching for the repeated prefix"),
            };
            out.push(Finding {
                rule: "prompt_caching",
                title: format!(
                    "{} calls to {model} repeated a cached-length prompt prefix within {} \
                     minutes and paid the full input price for it",
                    g.calls,
                    rule.lifetime_s / 60
                ),
                saving,
                monthly_saving: Decimal::ZERO,
                share_of_spend: Decimal::ZERO,
                calls: g.calls,
                scope: g.narrow.scope(&model, provider.as_deref()),
                evidence: json!({
                    "repeated_calls": g.calls,
                    "repeated_prefix_tokens": g.prefix_tokens,
                    "prefix_tokens_are": "each prefix's share of the call's input tokens, by bytes of prompt text",
                    "input_price_per_1m": price_text(g.input_price),
                    "cache_read_price_per_1m": price_text(g.cache_read_price),
                    "cache_write_price_per_1m": price_text(g.cache_write_price),
                    "read_saving_usd": usd(g.saving),
                    "write_premium_usd": usd(g.premium),
                    "min_cacheable_tokens": rule.min_tokens,
                    "cache_lifetime_s": rule.lifetime_s,
                    "cache_facts_source": rule.source,
                    "cache_facts_checked": rule.checked,
                }),
                action,
                caveat: "Savings assume every repeat within the lifetime is served from the \
                    cache; the prefix must be byte-identical and placed first."
                    .into(),
            });
        }
        out
    }
}

/// A cache write not yet read.
struct Write {
    time: DateTime<Utc>,
    lifetime: Duration,
    premium: Decimal,
    group: ModelKey,
    tokens: u64,
    one_hour: bool,
}

#[derive(Default)]
struct UnreadGroup {
    calls: u64,
    premium: Decimal,
    tokens: u64,
    one_hour: u64,
}

/// `cache_writes_unread`.
#[derive(Default)]
pub struct UnreadWrites {
    /// Pending writes by (entry, first prefix hash: the cache they went to).
    pending: FastMap<(usize, u64), Vec<Write>>,
    groups: FastMap<ModelKey, UnreadGroup>,
    narrows: FastMap<ModelKey, Narrow>,
}

impl UnreadWrites {
    fn unread(&mut self, w: &Write) {
        let g = self.groups.entry(w.group.clone()).or_default();
        g.calls += 1;
        g.premium += w.premium;
        g.tokens += w.tokens;
        g.one_hour += u64::from(w.one_hour);
    }
}

impl Rule for UnreadWrites {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        let Some(e) = &c.entry else { return };
        if !c.billed() || (r.usage.cache_read == 0 && r.usage.cache_write == 0) {
            return;
        }
        let first = r
            .request
            .fingerprint
            .as_ref()
            .and_then(|f| f.prefixes.first())
            .map_or(0, |m| m.hash);
        let key = (entry_id(e), first);
        if r.usage.cache_read > 0 {
            if let Some(ws) = self.pending.remove(&key) {
                for w in ws.iter().filter(|w| r.time - w.time > w.lifetime) {
                    self.unread(w);
                }
            }
        }
        if r.usage.cache_write > 0 {
            let Some(full) = c.cost else { return };
            let plain = Usage {
                cache_write: 0,
                cache_write_1h: 0,
                ..r.usage
            };
            let Some(premium) = c
                .price(&plain)
                .map(|p| full - p)
                .filter(|p| *p > Decimal::ZERO)
            else {
                return;
            };
            let one_hour = r.usage.cache_write_1h > 0;
            let group = c.key();
            self.narrows.entry(group.clone()).or_default().add(r);
            self.pending.entry(key).or_default().push(Write {
                time: r.time,
                lifetime: Duration::seconds(if one_hour { 3600 } else { 300 }),
                premium,
                group,
                tokens: r.usage.cache_write,
                one_hour,
            });
        }
    }

    fn finish(&mut self, end: Option<DateTime<Utc>>) -> Vec<Finding> {
        let pending: Vec<Write> = self.pending.drain().flat_map(|(_, ws)| ws).collect();
        for w in &pending {
            // A write whose lifetime outlasts the window may yet be read: not counted.
            if end.is_some_and(|e| e - w.time > w.lifetime) {
                self.unread(w);
            }
        }
        let mut out = Vec::new();
        for ((model, provider), g) in self.groups.drain() {
            if g.premium <= Decimal::ZERO {
                continue;
            }
            let narrow = self
                .narrows
                .remove(&(model.clone(), provider.clone()))
                .unwrap_or_default();
            let ttl = if g.one_hour == g.calls {
                "1-hour"
            } else {
                "5-minute"
            };
            out.push(Finding {
                rule: "cache_writes_unread",
                title: format!(
                    "{} prompt-cache writes to {model} were never read within their {ttl} \
                     lifetime: the write premium bought nothing",
                    g.calls
                ),
                saving: g.premium,
                monthly_saving: Decimal::ZERO,
                share_of_spend: Decimal::ZERO,
                calls: g.calls,
                scope: narrow.scope(&model, provider.as_deref()),
                evidence: json!({
                    "unread_writes": g.calls,
                    "written_tokens": g.tokens,
                    "one_hour_writes": g.one_hour,
                    "write_premium_usd": usd(g.premium),
                }),
                action: if g.one_hour == g.calls {
                    "drop the cache_control breakpoint on these prompts (nothing reads them \
                     within the hour), or move it to a part that repeats"
                        .into()
                } else {
                    "drop the cache_control breakpoint on these prompts, or, if they are \
                     re-sent later than 5 minutes but within the hour, use the 1-hour cache: \
                     cache_control {\"type\": \"ephemeral\", \"ttl\": \"1h\"}"
                        .into()
                },
                caveat: "A write counts as unread when no call of the same model and prompt \
                    start read the cache within its lifetime in this window."
                    .into(),
            });
        }
        out
    }
}
