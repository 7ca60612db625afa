//! `duplicate_requests`: identical requests (model, prompt, parameters: one request hash)
//! repeated within [`WINDOW_S`]: what a response cache would have saved.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{usd, Call, FastMap, Finding, ModelKey, Narrow, Rule};
use crate::money::{self, Decimal};

/// Repeats within this many seconds of the last identical request count.
pub const WINDOW_S: i64 = 3600;
/// Request hashes remembered at most before those older than the window are dropped.
const MAX_REQUESTS: usize = 500_000;
/// Over calls in time order, the hashes remembered before the first prune (then twice as
/// many as the last prune kept).
const MIN_PRUNE: usize = 1024;

#[derive(Default)]
struct DupGroup {
    repeats: u64,
    distinct: u64,
    saving: Decimal,
    narrow: Narrow,
}

/// `duplicate_requests`.
pub struct Duplicates {
    /// Prune when more hashes than this are remembered.
    limit: usize,
    /// Calls come in time order: a hash last seen longer than the window ago is never a
    /// repeat's again, so pruning often changes nothing but the memory the rule holds.
    ordered: bool,
    /// Request hash -> (last time, whether it was repeated yet).
    seen: FastMap<u64, (DateTime<Utc>, bool)>,
    groups: FastMap<ModelKey, DupGroup>,
}

impl Duplicates {
    /// The rule; `ordered`: the calls will come in time order.
    pub fn new(ordered: bool) -> Self {
        Duplicates {
            limit: if ordered { MIN_PRUNE } else { MAX_REQUESTS },
            ordered,
            seen: FastMap::default(),
            groups: FastMap::default(),
        }
    }
}

impl Rule for Duplicates {
    fn add(&mut self, c: &Call<'_>) {
        let r = c.r;
        let (Some(f), Some(cost)) = (&r.request.fingerprint, c.cost) else {
            return;
        };
        if !c.billed() {
            return;
        }
        let window = Duration::seconds(WINDOW_S);
        match self.seen.get_mut(&f.request) {
            Some((last, repeated)) if r.time - *last <= window => {
                let g = self.groups.entry(c.key()).or_default();
                g.repeats += 1;
                if !*repeated {
                    g.distinct += 1;
                    *repeated = true;
                }
                g.saving += cost;
                g.narrow.add(r);
                *last = r.time;
            }
            _ => {
                self.seen.insert(f.request, (r.time, false));
            }
        }
        if self.seen.len() > self.limit {
            self.seen.retain(|_, (t, _)| r.time - *t <= window);
            if self.ordered {
                self.limit = MIN_PRUNE.max(2 * self.seen.len());
            }
        }
    }

    fn finish(&mut self, _end: Option<DateTime<Utc>>) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((model, provider), g) in self.groups.drain() {
            if g.saving <= Decimal::ZERO {
                continue;
            }
            out.push(Finding {
                rule: "duplicate_requests",
                title: format!(
                    "{} calls to {model} repeated an identical request (same prompt and \
                     parameters) within an hour: a response cache would have saved {}",
                    g.repeats,
                    money::format_usd(g.saving)
                ),
                saving: g.saving,
                monthly_saving: Decimal::ZERO,
                share_of_spend: Decimal::ZERO,
                calls: g.repeats,
                scope: g.narrow.scope(&model, provider.as_deref()),
                evidence: json!({
                    "repeated_calls": g.repeats,
                    "distinct_requests_repeated": g.distinct,
                    "repeats_within_s": WINDOW_S,
                    "repeats_cost_usd": usd(g.saving),
                }),
                action: "cache responses: langchain_core.globals.set_llm_cache(InMemoryCache()) \
                    (or SQLiteCache / RedisCache to share it), or memoise the function that \
                    makes these calls"
                    .into(),
                caveat: "Only for requests whose answer may be reused: not when a fresh \
                    (sampled) answer is wanted each time."
                    .into(),
            });
        }
        out
    }
}
