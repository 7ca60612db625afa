//! A usage's normalisation and its cost: any token counts (consistent or not) priced with any
//! non-negative prices, tiers, variants and versions never panic or overflow; a known cost is
//! never negative, is exactly the sum of its parts, and each part is exactly tokens x price /
//! 1M; `reconcile` leaves every part within its whole, never lowers a count and is
//! idempotent. A known cost is at most `MAX_CALL_COST`, so the tracker's totals of any
//! feasible number of calls cannot overflow.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Unstructured;
use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use llmledger::catalog::{PriceSet, PriceVersion, Tier, Tiered};
use llmledger::money::{Decimal, MAX_CALL_COST};
use llmledger::{Entry, Usage};

/// A non-negative decimal of any mantissa and scale.
fn price(u: &mut Unstructured) -> arbitrary::Result<Decimal> {
    let (lo, mid, hi): (u32, u32, u32) = u.arbitrary()?;
    let scale = u.int_in_range(0..=28)?;
    // Mostly realistic prices (a few dollars per 1M tokens), sometimes anything.
    Ok(if u.ratio(3, 4)? {
        Decimal::new(i64::from(lo % 100_000), u.int_in_range(0..=5)?)
    } else {
        Decimal::from_parts(lo, mid, hi, false, scale)
    })
}

fn opt_price(u: &mut Unstructured) -> arbitrary::Result<Option<Decimal>> {
    Ok(if u.arbitrary()? {
        Some(price(u)?)
    } else {
        None
    })
}

fn price_set(u: &mut Unstructured) -> arbitrary::Result<PriceSet> {
    Ok(PriceSet {
        input: price(u)?,
        output: price(u)?,
        cache_read: opt_price(u)?,
        cache_write: opt_price(u)?,
        cache_write_1h: opt_price(u)?,
        reasoning: opt_price(u)?,
        input_audio: opt_price(u)?,
        output_audio: opt_price(u)?,
    })
}

fn tiered(u: &mut Unstructured) -> arbitrary::Result<Tiered> {
    let base = price_set(u)?;
    let mut aboves: Vec<u64> = (0..u.int_in_range(0..=2)?)
        .map(|_| u.arbitrary())
        .collect::<arbitrary::Result<_>>()?;
    aboves.sort_unstable();
    aboves.dedup();
    let tiers = aboves
        .into_iter()
        .map(|above| {
            Ok(Tier {
                above,
                prices: price_set(u)?,
            })
        })
        .collect::<arbitrary::Result<_>>()?;
    Ok(Tiered { base, tiers })
}

/// Token counts: mostly realistic, sometimes anything up to `u64::MAX`.
fn count(u: &mut Unstructured) -> arbitrary::Result<u64> {
    Ok(match u.int_in_range(0..=3)? {
        0 => 0,
        1 => u.int_in_range(0..=2_000_000)?,
        2 => u64::MAX - u.int_in_range(0..=2)?,
        _ => u.arbitrary()?,
    })
}

fn usage(u: &mut Unstructured) -> arbitrary::Result<Usage> {
    Ok(Usage {
        input: count(u)?,
        cache_read: count(u)?,
        cache_write: count(u)?,
        cache_write_1h: count(u)?,
        output: count(u)?,
        reasoning: count(u)?,
        input_audio: count(u)?,
        output_audio: count(u)?,
    })
}

fn check_reconcile(raw: Usage) -> Usage {
    let mut u = raw;
    let warned = !u.reconcile().is_empty();
    assert_eq!(
        warned,
        u != raw,
        "a change without a warning, or the reverse"
    );
    for (after, before) in [
        (u.input, raw.input),
        (u.output, raw.output),
        (u.cache_write, raw.cache_write),
    ] {
        assert!(after >= before, "reconcile lowered a count");
    }
    assert!(u.cache_write_1h <= u.cache_write);
    let input_parts = u
        .cache_read
        .saturating_add(u.cache_write)
        .saturating_add(u.input_audio);
    assert!(input_parts <= u.input);
    assert!(u.reasoning.saturating_add(u.output_audio) <= u.output);
    let mut again = u;
    assert!(
        again.reconcile().is_empty() && again == u,
        "reconcile is not idempotent"
    );
    u
}

/// `part` is exactly `tokens` x `price` / 1M (checked where the product is representable).
fn exact(part: Decimal, tokens: u64, price: Decimal) {
    if let (Some(a), Some(b)) = (
        part.checked_mul(Decimal::from(1_000_000u32)),
        Decimal::from(tokens).checked_mul(price),
    ) {
        assert_eq!(a, b, "{tokens} tokens at {price}/1M cost {part}");
    }
}

fn check_cost(set: &PriceSet, u: &Usage) {
    let Ok(c) = set.cost(u) else {
        return;
    };
    let mut sum = Decimal::ZERO;
    for p in c.parts() {
        assert!(!p.is_sign_negative(), "negative part {p}");
        sum = sum
            .checked_add(p)
            .expect("parts of a known cost overflow their sum");
    }
    assert_eq!(sum, c.total);
    let text_input = u
        .input
        .saturating_sub(u.cache_read)
        .saturating_sub(u.cache_write)
        .saturating_sub(u.input_audio);
    exact(c.input, text_input, set.input);
    exact(
        c.cache_read,
        u.cache_read,
        set.cache_read.unwrap_or(set.input),
    );
    // At most the ceiling that lets the tracker's totals and a budget's window add up any
    // feasible number of calls without overflow.
    assert!(c.total <= MAX_CALL_COST, "a call costs {}", c.total);
}

fn run(u: &mut Unstructured) -> arbitrary::Result<()> {
    let raw = usage(u)?;
    let set = price_set(u)?;
    // Inconsistent counts as a provider may report them, then as the tracker prices them.
    check_cost(&set, &raw);
    let reconciled = check_reconcile(raw);
    check_cost(&set, &reconciled);

    let mut versions = Vec::new();
    for _ in 0..u.int_in_range(1..=3)? {
        let from = if u.arbitrary()? {
            NaiveDate::from_num_days_from_ce_opt(u.int_in_range(730_000..=740_000)?)
        } else {
            None
        };
        let mut variants = BTreeMap::new();
        if u.arbitrary()? {
            variants.insert("batch".to_string(), tiered(u)?);
        }
        versions.push(PriceVersion {
            from,
            standard: tiered(u)?,
            variants,
            windows: Vec::new(),
        });
    }
    versions.sort_by_key(|v| v.from);
    versions.dedup_by_key(|v| v.from);
    let entry = Entry::new(
        "m".into(),
        Some("p".into()),
        None,
        Vec::new(),
        None,
        None,
        None,
        None,
        None,
        versions,
        true,
    );
    let day = NaiveDate::from_num_days_from_ce_opt(u.int_in_range(729_000..=741_000)?).unwrap();
    for variant in [None, Some("batch"), Some("priority")] {
        if let Ok(p) = entry.cost(&reconciled, day, variant) {
            assert!(!p.cost.total.is_sign_negative());
            if let Some(above) = p.tier_above {
                assert!(
                    reconciled.input > above,
                    "tier above {above} for {}",
                    reconciled.input
                );
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
