//! Price sets and the cost of a usage under one of them.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::money::{self, cost_of, Decimal};
use crate::usage::Usage;

/// The prices of one model under one billing mode, in USD per 1M tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceSet {
    /// Uncached text input.
    pub input: Decimal,
    /// Text output (and reasoning, unless `reasoning` is set).
    pub output: Decimal,
    /// Input read from a prompt cache; `None`: billed at `input`.
    pub cache_read: Option<Decimal>,
    /// Input written to a cache (5-minute); `None`: billed at `input`.
    pub cache_write: Option<Decimal>,
    /// Input written to a 1-hour cache; `None`: billed at `cache_write`.
    pub cache_write_1h: Option<Decimal>,
    /// Reasoning tokens when priced apart from output; `None`: billed at `output`.
    pub reasoning: Option<Decimal>,
    /// Audio input; `None`: audio input has no known price.
    pub input_audio: Option<Decimal>,
    /// Audio output; `None`: audio output has no known price.
    pub output_audio: Option<Decimal>,
}

/// A long-context tier: above `above` input tokens the whole request uses `prices`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    /// The threshold: strictly more input tokens than this selects the tier.
    pub above: u64,
    /// The prices of the whole request in this tier.
    pub prices: PriceSet,
}

/// Base prices plus long-context tiers (ascending by `above`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tiered {
    /// The prices below every tier's threshold.
    pub base: PriceSet,
    /// Long-context tiers, ascending.
    pub tiers: Vec<Tier>,
}

impl Tiered {
    /// The price set for a request with `input_tokens` input tokens, and the tier's threshold.
    pub fn select(&self, input_tokens: u64) -> (&PriceSet, Option<u64>) {
        self.tiers
            .iter()
            .rev()
            .find(|t| input_tokens > t.above)
            .map_or((&self.base, None), |t| (&t.prices, Some(t.above)))
    }
}

/// One date-effective version of an entry's prices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceVersion {
    /// First day (UTC) these prices apply; `None`: since forever.
    pub from: Option<NaiveDate>,
    /// Standard prices.
    pub standard: Tiered,
    /// Other billing modes: `batch`, `flex`, `priority`, ...
    pub variants: BTreeMap<String, Tiered>,
    /// Time-of-day prices (DeepSeek's off-peak and peak hours): standard prices in force
    /// during a daily UTC window. The last window containing the call's time wins.
    pub windows: Vec<TimeWindow>,
}

/// A daily UTC window and the standard prices in force during it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    /// First minute of the day (UTC) the window covers, 0..1440.
    pub start: u16,
    /// First minute after it, 0..1440; below `start`, the window wraps past midnight.
    pub end: u16,
    /// The prices during the window.
    pub prices: Tiered,
}

impl TimeWindow {
    /// Whether minute `m` of the day (UTC) is in the window.
    pub fn contains(&self, m: u16) -> bool {
        if self.start <= self.end {
            self.start <= m && m < self.end
        } else {
            m >= self.start || m < self.end
        }
    }

    /// `HH:MM-HH:MM UTC`.
    pub fn describe(&self) -> String {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        format!("{}-{} UTC", hm(self.start), hm(self.end))
    }
}

impl PriceVersion {
    /// The standard prices in force at minute `m` of the day (UTC), and the window used.
    pub fn standard_at(&self, m: u16) -> (&Tiered, Option<&TimeWindow>) {
        match self.windows.iter().rev().find(|w| w.contains(m)) {
            Some(w) => (&w.prices, Some(w)),
            None => (&self.standard, None),
        }
    }
}

/// A call's cost, split by what was billed. All amounts are exact USD.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CostBreakdown {
    /// Uncached text input.
    pub input: Decimal,
    /// Cache reads.
    pub cache_read: Decimal,
    /// Cache writes (5-minute and 1-hour).
    pub cache_write: Decimal,
    /// Text output (reasoning included unless priced apart).
    pub output: Decimal,
    /// Reasoning priced apart (zero when it is billed as output).
    pub reasoning: Decimal,
    /// Audio input and output.
    pub audio: Decimal,
    /// The sum of the above.
    pub total: Decimal,
}

impl CostBreakdown {
    /// The parts that make up `total`, in the ledger's column order (input, cache read, cache
    /// write, output, reasoning, audio): the one list of a cost's components.
    pub fn parts(&self) -> [Decimal; 6] {
        [
            self.input,
            self.cache_read,
            self.cache_write,
            self.output,
            self.reasoning,
            self.audio,
        ]
    }

    /// Adds another breakdown to this one.
    pub fn add(&mut self, other: &CostBreakdown) {
        self.input += other.input;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
        self.output += other.output;
        self.reasoning += other.reasoning;
        self.audio += other.audio;
        self.total += other.total;
    }
}

/// How a call was priced: the breakdown and which prices were used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced {
    /// The cost.
    pub cost: CostBreakdown,
    /// The variant used (`None`: standard prices).
    pub variant: Option<String>,
    /// The long-context tier used, by its threshold.
    pub tier_above: Option<u64>,
    /// The first day of the price version used.
    pub effective_from: Option<NaiveDate>,
    /// The time-of-day window whose prices were used (`16:30-00:30 UTC`), if any.
    pub window: Option<String>,
    /// Anything the caller should be told (a variant the entry lacks, say).
    pub warnings: Vec<String>,
    /// The components priced by a fallback rather than a price of their own (see
    /// [`PriceSet::fallbacks`]), for the record's `price_notes`.
    pub notes: Vec<String>,
}

/// Fireworks' documented rule for a serverless model whose cached-token price the catalog
/// lacks: "cached prompt tokens are discounted compared to regular prompt tokens. The
/// default discount is 50%, but the exact discount varies by model"
/// (<https://docs.fireworks.ai/guides/prompt-caching>, checked 2026-12-02).
pub const FIREWORKS_CACHE_READ_SHARE: &str = "0.5";

/// Alibaba Cloud Model Studio's (DashScope's) documented prices for cached input tokens, as
/// shares of the model's (tier's) standard input price: "The portion of the input served from
/// the cache is billed at 20% of the standard input token price" (implicit cache), explicit
/// cache hits "10% of that price"; the two modes are "mutually exclusive" per request
/// (<https://www.alibabacloud.com/help/en/model-studio/context-cache>, checked 2026-12-03).
pub const DASHSCOPE_IMPLICIT_CACHE_READ_SHARE: &str = "0.2";
/// See [`DASHSCOPE_IMPLICIT_CACHE_READ_SHARE`].
pub const DASHSCOPE_EXPLICIT_CACHE_READ_SHARE: &str = "0.1";

/// The share of the input price a host documents for cached input tokens when the
/// model's own price is not listed: `(share, note)`. DashScope's depends on the request's
/// cache mode: a request that also creates cache (`cache_write`) used the explicit cache,
/// whose hits cost less; any other is taken as implicit (its usage does not say which
/// mode a hit came from, and the note says the share assumed).
pub fn host_cache_read_rule(
    provider: Option<&str>,
    usage: &Usage,
) -> Option<(Decimal, &'static str)> {
    match provider {
        Some("fireworks") => Some((
            FIREWORKS_CACHE_READ_SHARE.parse().ok()?,
            "cache_read_tokens at 50% of the input price: Fireworks' documented default \
             discount for cached tokens, not this model's own price",
        )),
        Some("dashscope") if usage.cache_write > 0 => Some((
            DASHSCOPE_EXPLICIT_CACHE_READ_SHARE.parse().ok()?,
            "cache_read_tokens at 10% of the input price: Model Studio's documented \
             explicit-cache hit price (the request created cache, so it used the explicit \
             cache), not this model's own price",
        )),
        Some("dashscope") => Some((
            DASHSCOPE_IMPLICIT_CACHE_READ_SHARE.parse().ok()?,
            "cache_read_tokens at 20% of the input price: Model Studio's documented \
             implicit-cache hit price (an explicit-cache hit without cache creation in the \
             same request is billed 10%), not this model's own price",
        )),
        _ => None,
    }
}

#[inline]
fn amount(tokens: u64, price: Decimal, what: &str) -> Result<Decimal, String> {
    cost_of(tokens, price).ok_or_else(|| overflow(tokens, price, what))
}

#[cold]
fn overflow(tokens: u64, price: Decimal, what: &str) -> String {
    format!("{tokens} {what} tokens at {price}/1M overflow")
}

#[cold]
fn too_costly() -> String {
    "the cost is over 10^15 USD, more than one call can cost (malformed counts or prices)"
        .to_string()
}

impl PriceSet {
    /// The components of `usage` these prices bill by a fallback rather than a price of
    /// their own: cache reads at the input price (no `cache_read`), cache writes at the
    /// input price (no `cache_write`), 1-hour writes at the 5-minute price (no
    /// `cache_write_1h`). Reasoning billed as output is the rule, not a fallback.
    pub fn fallbacks(&self, usage: &Usage) -> Vec<String> {
        let mut out = Vec::new();
        if usage.cache_read > 0 && self.cache_read.is_none() {
            out.push("cache_read_tokens at the input price: no cache_read price".to_string());
        }
        if usage.cache_write > usage.cache_write_1h && self.cache_write.is_none() {
            out.push("cache_write_tokens at the input price: no cache_write price".to_string());
        }
        if usage.cache_write_1h > 0 && self.cache_write_1h.is_none() {
            let base = if self.cache_write.is_some() {
                "the cache_write price"
            } else {
                "the input price"
            };
            out.push(format!(
                "cache_write_1h_tokens at {base}: no cache_write_1h price"
            ));
        }
        out
    }

    /// The audio part of [`PriceSet::cost`] (rare: kept out of the usual path).
    #[cold]
    #[inline(never)]
    fn audio_cost(&self, usage: &Usage) -> Result<Decimal, String> {
        let mut audio = Decimal::ZERO;
        if usage.input_audio > 0 {
            let p = self.input_audio.ok_or_else(|| {
                format!(
                    "{} audio input tokens but no input_audio price",
                    usage.input_audio
                )
            })?;
            audio += amount(usage.input_audio, p, "audio input")?;
        }
        if usage.output_audio > 0 {
            let p = self.output_audio.ok_or_else(|| {
                format!(
                    "{} audio output tokens but no output_audio price",
                    usage.output_audio
                )
            })?;
            audio += amount(usage.output_audio, p, "audio output")?;
        }
        Ok(audio)
    }

    /// The cost of `usage` under these prices.
    ///
    /// Errors name what could not be priced (audio tokens without an audio price, overflow);
    /// the caller records the cost as unknown, never as zero.
    pub fn cost(&self, usage: &Usage) -> Result<CostBreakdown, String> {
        let text_input = usage
            .input
            .saturating_sub(usage.cache_read)
            .saturating_sub(usage.cache_write)
            .saturating_sub(usage.input_audio);
        let mut c = CostBreakdown {
            input: amount(text_input, self.input, "input")?,
            cache_read: amount(
                usage.cache_read,
                self.cache_read.unwrap_or(self.input),
                "cache read",
            )?,
            ..CostBreakdown::default()
        };
        let five_minute_price = self.cache_write.unwrap_or(self.input);
        let one_hour_price = self.cache_write_1h.unwrap_or(five_minute_price);
        let five_minute = amount(
            usage.cache_write.saturating_sub(usage.cache_write_1h),
            five_minute_price,
            "cache write",
        )?;
        c.cache_write = if usage.cache_write_1h == 0 {
            // `+ 0` is the same Decimal.
            five_minute
        } else {
            five_minute + amount(usage.cache_write_1h, one_hour_price, "1h cache write")?
        };
        let mut text_output = usage.output.saturating_sub(usage.output_audio);
        if let Some(r) = self.reasoning {
            text_output = text_output.saturating_sub(usage.reasoning);
            c.reasoning = amount(usage.reasoning, r, "reasoning")?;
        }
        c.output = amount(text_output, self.output, "output")?;
        if usage.input_audio > 0 || usage.output_audio > 0 {
            c.audio = self.audio_cost(usage)?;
        }
        c.total = money::sum(&c.parts())
            .filter(money::within_call_cost)
            .ok_or_else(too_costly)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn set(input: &str, output: &str) -> PriceSet {
        PriceSet {
            input: d(input),
            output: d(output),
            cache_read: None,
            cache_write: None,
            cache_write_1h: None,
            reasoning: None,
            input_audio: None,
            output_audio: None,
        }
    }

    #[test]
    fn cached_tokens_are_not_billed_twice() {
        let mut p = set("2.50", "10");
        p.cache_read = Some(d("1.25"));
        let u = Usage {
            input: 1000,
            cache_read: 400,
            output: 100,
            ..Usage::default()
        };
        let c = p.cost(&u).unwrap();
        assert_eq!(c.input, d("0.0015")); // 600 uncached
        assert_eq!(c.cache_read, d("0.0005"));
        assert_eq!(c.output, d("0.001"));
        assert_eq!(c.total, d("0.003"));
    }

    #[test]
    fn anthropic_cache_writes_5m_and_1h() {
        let mut p = set("3", "15");
        p.cache_read = Some(d("0.30"));
        p.cache_write = Some(d("3.75"));
        p.cache_write_1h = Some(d("6"));
        let u = Usage {
            input: 1_000_000 + 1_000_000 + 1_000_000 + 1_000_000,
            cache_read: 1_000_000,
            cache_write: 2_000_000,
            cache_write_1h: 1_000_000,
            output: 0,
            ..Usage::default()
        };
        let c = p.cost(&u).unwrap();
        assert_eq!(c.input, d("3"));
        assert_eq!(c.cache_read, d("0.30"));
        assert_eq!(c.cache_write, d("9.75"));
        assert_eq!(c.total, d("13.05"));
    }

    #[test]
    fn reasoning_priced_apart_only_when_set() {
        let u = Usage {
            input: 0,
            output: 1_000_000,
            reasoning: 400_000,
            ..Usage::default()
        };
        let p = set("1", "10");
        assert_eq!(p.cost(&u).unwrap().total, d("10"));
        let mut p2 = p.clone();
        p2.reasoning = Some(d("20"));
        let c = p2.cost(&u).unwrap();
        assert_eq!(c.output, d("6"));
        assert_eq!(c.reasoning, d("8"));
        assert_eq!(c.total, d("14"));
    }

    #[test]
    fn audio_without_price_is_unknown_not_text_price() {
        let u = Usage {
            input: 100,
            input_audio: 50,
            ..Usage::default()
        };
        let err = set("1", "2").cost(&u).unwrap_err();
        assert!(err.contains("input_audio"), "{err}");
    }

    #[test]
    fn a_cost_past_the_ceiling_is_unknown() {
        // The most a part can cost (~7.9e22 USD) six times over is still a sum, but calls of
        // such costs overflowed the tracker's totals (a panic) after some 170,000 of them:
        // a call cannot cost more than `MAX_CALL_COST` (found writing the `usage_cost` fuzz
        // target's invariant that many calls' costs add up).
        let huge = Usage {
            input: u64::MAX,
            output: u64::MAX,
            ..Usage::default()
        };
        let err = set("4000000", "4000000").cost(&huge).unwrap_err();
        assert!(err.contains("more than one call can cost"), "{err}");
        let at_ceiling = Usage {
            input: 1_000_000,
            ..Usage::default()
        };
        let c = set("1000000000000000", "0").cost(&at_ceiling).unwrap();
        assert_eq!(c.total, money::MAX_CALL_COST);
    }

    #[test]
    fn tier_is_a_cliff() {
        let t = Tiered {
            base: set("1.25", "10"),
            tiers: vec![Tier {
                above: 200_000,
                prices: set("2.50", "15"),
            }],
        };
        assert_eq!(t.select(200_000).1, None);
        let (p, above) = t.select(200_001);
        assert_eq!(above, Some(200_000));
        assert_eq!(p.input, d("2.50"));
    }
}
