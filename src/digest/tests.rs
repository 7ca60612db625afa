//! Digest tests: exact totals, top lists, series, budgets and rates.

use std::str::FromStr;

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::catalog::CostBreakdown;
use crate::usage::UsageSource;

/// A priced call of `model` at 2026-11-01 12:00 plus `run` seconds.
pub(crate) fn record(run: u128, cost: &str) -> CallRecord {
    CallRecord {
        time: Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
            + Duration::seconds(i64::try_from(run).unwrap()),
        run_id: run,
        parent_run_id: Some(1000 + run % 3),
        root_run_id: 1000 + run % 3,
        root_run_name: Some("graph".into()),
        model: Some(
            if run.is_multiple_of(2) {
                "gpt-4o"
            } else {
                "gpt-4o-mini"
            }
            .into(),
        ),
        requested_model: None,
        provider: Some("openai".into()),
        attribution: vec![("user_id".into(), format!("u{}", run % 4))],
        tags: vec![],
        usage: Usage {
            input: 100,
            cache_read: 40,
            output: 20,
            ..Usage::default()
        },
        usage_source: UsageSource::Provider,
        estimated_by: None,
        service_tier: None,
        cost: Some(CostBreakdown {
            total: Decimal::from_str(cost).unwrap(),
            ..CostBreakdown::default()
        }),
        unpriced_reason: None,
        price_entry: None,
        catalog_version: Some("2026.11.1".into()),
        latency: None,
        chunks: 0,
        error: None,
        usage_notes: None,
        price_notes: None,
        request: crate::ledger::RequestFacts::default(),
    }
}

fn digest(by: &[&str], budgets: &[&str]) -> Digest {
    Digest::new(DigestConfig {
        by: by.iter().map(|s| (*s).to_string()).collect(),
        budgets: budgets
            .iter()
            .map(|b| BudgetSpec::parse(b).unwrap())
            .collect(),
        top: 3,
        ..DigestConfig::default()
    })
    .unwrap()
}

#[test]
fn totals_top_lists_and_shares_are_exact() {
    let mut d = digest(&["model", "user_id"], &[]);
    for i in 0..10u128 {
        d.add(record(i, if i == 7 { "1.000000001" } else { "0.1" }));
    }
    let v = d.view(Utc::now());
    assert_eq!(v.totals.calls, 10);
    assert_eq!(v.totals.cost.to_string(), "1.900000001");
    assert_eq!(v.by[0].name, "model");
    assert_eq!(v.by[0].rows[0].key.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(v.by[0].rows[0].totals.cost.to_string(), "1.400000001");
    assert_eq!(v.by[1].groups, 4);
    assert_eq!(v.by[1].rows.len(), 3, "top 3 of 4 users");
    assert_eq!(v.top_calls.len(), 3);
    assert_eq!(v.top_calls[0].run_id, crate::ledger::uuid_string(7));
    assert_eq!(v.latest[0].run_id, crate::ledger::uuid_string(9));
    assert_eq!(v.roots.len(), 3);
    let root_sum: Decimal = v.roots.iter().map(|r| r.totals.cost).sum();
    assert_eq!(root_sum, v.totals.cost);
    assert_eq!(v.catalog_versions.get("2026.11.1"), Some(&10));
}

#[test]
fn series_stacks_by_the_first_dimension_and_rolls_up_to_days() {
    let mut d = digest(&["model"], &[]);
    d.add(record(0, "0.5"));
    d.add(record(1, "0.25"));
    d.add(record(7200, "1"));
    let s = d.view(Utc::now()).series;
    assert_eq!(s.bucket, "hour");
    assert_eq!(s.t.len(), 3, "the empty hour between is a zero");
    assert_eq!(s.keys[0].as_deref(), Some("gpt-4o"));
    assert_eq!(s.cost[0][0].to_string(), "0.5");
    assert_eq!(s.cost[0][2].to_string(), "1");
    assert_eq!(s.cost[1][0].to_string(), "0.25");
    assert_eq!(s.cache_read, vec![80, 0, 40]);
    assert_eq!(s.unpriced, vec![0, 0, 0]);
    // An hour of only unpriced calls costs 0 in `cost`, and `unpriced` says it is not free.
    let mut unknown = record(3600, "0");
    unknown.cost = None;
    d.add(unknown);
    let s = d.view(Utc::now()).series;
    assert_eq!(s.cost[0][1].to_string(), "0");
    assert_eq!((s.calls[1], s.unpriced), (1, vec![0, 1, 0]));
    d.add(record(5 * 86_400, "2"));
    let s = d.view(Utc::now()).series;
    assert_eq!((s.bucket, s.t.len()), ("day", 6));
}

#[test]
fn budgets_fire_thresholds_once_and_forecast() {
    let mut d = digest(&[], &["1/day", "100"]);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
    d.add(record(0, "0.6"));
    let fired = d.advance(t0 + Duration::seconds(30));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].threshold.to_string(), "0.5");
    assert!(
        d.advance(t0 + Duration::seconds(31)).is_empty(),
        "fires once"
    );
    let v = d.view(t0 + Duration::seconds(60));
    assert_eq!(v.budgets[0].spent.to_string(), "0.6");
    assert_eq!(v.budgets[0].remaining.to_string(), "0.4");
    assert_eq!(v.budgets[0].used.to_string(), "0.6");
    // 0.6 over the last 5 minutes: 0.12/min, so 0.4 lasts 200 s.
    assert_eq!(v.rates.cost_per_minute.to_string(), "0.12");
    assert_eq!(
        v.budgets[0].exhausts_at.as_deref(),
        Some("2026-11-01T12:04:20Z")
    );
    assert_eq!(v.budgets[1].window, "lifetime");
    // The next day starts over.
    let next = t0 + Duration::days(1);
    assert!(d.advance(next).is_empty());
    assert_eq!(d.view(next).budgets[0].spent.to_string(), "0");
    assert!(BudgetSpec::parse("ten/day").is_err());
    assert!(BudgetSpec::parse("5/fortnight").is_err());
}
