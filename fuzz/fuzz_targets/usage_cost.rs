//! A usage's normalisation and its cost: any token counts (consistent or not) priced with any
//! non-negative prices, tiers, variants and versions never panic or overflow; a known cost is
//! never negative, is exactly the sum of its parts, and each part is exactly tokens x price /
//! 1M; `reconcile` leaves every part within its whole, never lowers a count and is
//! idempotent. A known cost is at most `MAX_CALL_COST`, so the tracker's totals of any
//! feasible number of calls cannot overflow. Time-of-day windows (any daily UTC spans,
//! wrapping past midnight or not, overlapping or not): a call at any time of day is priced
//! by the last window containing its minute, else by the standard prices, exactly as the
//! same entry with those prices and no windows; the record names that window; variants and
//! `cost` (noon) follow the same rule.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Unstructured;
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use libfuzzer_sys::fuzz_target;
use llmledger::catalog::{PriceSet, PriceVersion, Tier, Tiered, TimeWindow};
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

/// Daily UTC windows: starts and ends on any minute (an end below the start wraps past
/// midnight; an end equal to it is empty), sometimes overlapping.
fn windows(u: &mut Unstructured) -> arbitrary::Result<Vec<TimeWindow>> {
    (0..u.int_in_range(0..=3)?)
        .map(|_| {
            Ok(TimeWindow {
                start: u.int_in_range(0..=1439)?,
                end: u.int_in_range(0..=1439)?,
                prices: tiered(u)?,
            })
        })
        .collect()
}

/// The entry's cost at `at` equals the cost, at the same time, of the same entry whose
/// standard prices are the ones in force then and which has no windows; the window named is
/// the last one containing the call's minute.
fn check_windows(entry: &Entry, versions: &[PriceVersion], usage: &Usage, at: DateTime<Utc>) {
    #[allow(clippy::cast_possible_truncation)] // below 1440
    let minute = (at.hour() * 60 + at.minute()) as u16;
    let version = entry.version_at(at.date_naive());
    let (in_force, window) = version.standard_at(minute);
    let last = version.windows.iter().rev().find(|w| w.contains(minute));
    assert_eq!(
        window, last,
        "not the last window containing minute {minute}"
    );
    if window.is_none() {
        assert_eq!(in_force, &version.standard);
    }
    let flat: Vec<PriceVersion> = versions
        .iter()
        .map(|v| PriceVersion {
            standard: v.standard_at(minute).0.clone(),
            windows: Vec::new(),
            ..v.clone()
        })
        .collect();
    let flat = entry_of(flat);
    match (
        entry.cost_at(usage, at, None),
        flat.cost_at(usage, at, None),
    ) {
        (Ok(p), Ok(q)) => {
            assert_eq!(p.cost, q.cost, "at {at}: not the prices in force");
            assert_eq!(p.tier_above, q.tier_above);
            assert_eq!(p.notes, q.notes);
            assert_eq!(p.window, window.map(TimeWindow::describe));
            assert!(!p.cost.total.is_sign_negative() && p.cost.total <= MAX_CALL_COST);
            assert!(q.window.is_none());
        }
        (Err(_), Err(_)) => {}
        (p, q) => panic!("at {at}: {p:?} but without windows {q:?}"),
    }
    // A billing mode (batch) is never priced by a window.
    if let Ok(p) = entry.cost_at(usage, at, Some("batch")) {
        assert!(p.window.is_none(), "batch priced by window {:?}", p.window);
    }
}

fn entry_of(versions: Vec<PriceVersion>) -> Entry {
    Entry::new(
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
    )
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
            windows: windows(u)?,
        });
    }
    versions.sort_by_key(|v| v.from);
    versions.dedup_by_key(|v| v.from);
    let entry = entry_of(versions.clone());
    let day = NaiveDate::from_num_days_from_ce_opt(u.int_in_range(729_000..=741_000)?).unwrap();
    for _ in 0..u.int_in_range(1..=3)? {
        let at = day
            .and_hms_opt(
                u.int_in_range(0..=23)?,
                u.int_in_range(0..=59)?,
                u.int_in_range(0..=59)?,
            )
            .unwrap()
            .and_utc();
        check_windows(&entry, &versions, &reconciled, at);
    }
    // `cost` (a day, no time) is the call at noon.
    assert_eq!(
        entry.cost(&reconciled, day, None).ok().map(|p| p.cost),
        entry
            .cost_at(
                &reconciled,
                day.and_hms_opt(12, 0, 0).unwrap().and_utc(),
                None
            )
            .ok()
            .map(|p| p.cost)
    );
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
