use std::str::FromStr;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use super::caching::prefix_tokens;
use super::data::{data, matches};
use super::output::percentile;
use super::*;
use crate::fingerprint::{Fingerprint, PrefixMark};
use crate::ledger::RequestFacts;
use crate::usage::UsageSource;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A call priced by the bundled catalog, as the tracker would record it.
fn call(i: u64, model: &str, input: u64, output: u64) -> CallRecord {
    let catalog = Catalog::bundled().unwrap();
    let usage = Usage {
        input,
        output,
        ..Usage::default()
    };
    let time = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
        + Duration::seconds(i64::try_from(i).unwrap());
    let cost = catalog
        .price_call(model, Some("openai"), &usage, time, None)
        .and_then(|p| p.priced.ok())
        .map(|p| p.cost);
    CallRecord {
        time,
        usage_notes: None,
        price_notes: None,
        run_id: u128::from(i) + 1,
        parent_run_id: None,
        root_run_id: u128::from(i) + 1,
        root_run_name: Some("app".into()),
        model: Some(model.into()),
        requested_model: Some(model.into()),
        provider: Some("openai".into()),
        attribution: vec![("user_id".into(), format!("u{}", i % 2))],
        tags: vec!["prod".into()],
        usage,
        usage_source: UsageSource::Provider,
        estimated_by: None,
        service_tier: None,
        cost,
        unpriced_reason: None,
        price_entry: None,
        catalog_version: None,
        latency: Some(0.5),
        chunks: 0,
        error: None,
        request: RequestFacts::default(),
    }
}

/// A 10,000-byte prompt whose first 9000 bytes are one shared prefix (hash 7), then its own
/// (`own`); `request` is the whole request's hash.
fn shared_prefix(request: u64, own: u64) -> Arc<Fingerprint> {
    Arc::new(Fingerprint {
        request,
        prefixes: vec![
            PrefixMark {
                hash: 7,
                bytes: 9000,
            },
            PrefixMark {
                hash: own,
                bytes: 10_000,
            },
        ],
        prompt_bytes: 10_000,
    })
}

fn advise(records: &[CallRecord], min_saving: &str) -> Advice {
    let options = Options {
        min_saving: d(min_saving),
        ..Options::default()
    };
    advise_records(records, Catalog::bundled().unwrap(), options)
}

#[test]
fn data_parses_and_matches_snapshots_not_neighbours() {
    assert!(!data().families.is_empty());
    assert_eq!(matches("gpt-4o", "gpt-4o"), Some(6));
    assert_eq!(matches("gpt-4o-2024-08-06", "gpt-4o"), Some(6));
    assert_eq!(matches("gpt-4o-mini", "gpt-4o"), None);
    assert_eq!(matches("claude-opus-4-5", "claude-opus-4"), None);
    assert_eq!(matches("claude-opus-4-20250514", "claude-opus-4"), Some(13));
    let r = data().cache_rule("anthropic", "claude-opus-4-5").unwrap();
    assert_eq!(r.min_tokens, 4096);
    assert_eq!(
        data()
            .cache_rule("anthropic", "claude-sonnet-4-6")
            .unwrap()
            .min_tokens,
        1024
    );
    assert!(data().cache_rule("google", "gemini-2.5-pro").is_none());
}

#[test]
fn every_advice_fact_names_its_source_and_the_day_it_was_checked() {
    let d = data();
    let mut items: Vec<(&str, &str, &str)> = Vec::new();
    for r in &d.prompt_cache {
        items.push((&r.provider, &r.source, &r.checked));
        assert!(r.min_tokens > 0 && r.lifetime_s > 0, "{r:?}");
        assert!(
            !r.models.iter().any(|m| m == "*"),
            "a wildcard guesses: {r:?}"
        );
    }
    for f in &d.families {
        items.push((&f.provider, &f.source, &f.checked));
        assert!(f.models.len() >= 2, "{f:?}");
    }
    for s in &d.successors {
        items.push((&s.provider, &s.source, &s.checked));
    }
    assert!(items.len() > 10);
    for (provider, source, checked) in items {
        assert!(source.starts_with("https://"), "{provider}: {source}");
        assert!(
            chrono::NaiveDate::parse_from_str(checked, "%Y-%m-%d").is_ok(),
            "{provider}: {checked}"
        );
    }
    assert!(d.about.contains("2026-12-03"));
    // Removed for want of an official figure: the rule stays silent for them.
    assert!(d.cache_rule("anthropic", "claude-opus-4-7").is_none());
    assert!(d.cache_rule("openai", "gpt-3.5-turbo").is_none());
    assert!(d.successor("anthropic", "claude-3-opus").is_none());
}

#[test]
fn helpers() {
    assert_eq!(prefix_tokens(3000, 100, 300), 1000);
    assert_eq!(prefix_tokens(10, 1, 3), 3);
    assert_eq!(prefix_tokens(10, 1, 0), 0);
    let mut v = vec![5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    assert_eq!(percentile(&mut v, 90), 9);
    assert_eq!(percentile(&mut [], 90), 0);
    assert_eq!(percentile(&mut [7], 90), 7);
}

#[test]
fn cheaper_model_saving_is_the_repriced_difference() {
    let records: Vec<CallRecord> = (0..4).map(|i| call(i, "gpt-4o", 300, 100)).collect();
    let a = advise(&records, "0");
    let f = a
        .findings
        .iter()
        .find(|f| f.rule == "cheaper_model")
        .unwrap();
    // gpt-4o 2.50/10, gpt-4o-mini 0.15/0.60 per 1M.
    assert_eq!(
        f.saving,
        d("4") * (d("300") * d("2.35") + d("100") * d("9.4")) / d("1000000")
    );
    assert_eq!(f.scope["root_run_name"], "app");
    assert_eq!(f.scope["tag"], "prod");
    // Two users: user_id is not in the scope.
    assert!(!f.scope.contains_key("user_id"));
    // Below one day of calls: 30 days of it is 30 times it.
    assert_eq!(
        f.monthly_saving,
        (f.saving * d("30")).round_dp(6).normalize()
    );
    assert_eq!(
        a.spend,
        records.iter().map(|r| r.cost.as_ref().unwrap().total).sum()
    );
}

#[test]
fn min_saving_drops_small_money_findings_only() {
    let mut records: Vec<CallRecord> = (0..2).map(|i| call(i, "gpt-4o", 300, 100)).collect();
    let mut unpriced = call(9, "acme-7b", 10, 10);
    unpriced.cost = None;
    records.push(unpriced);
    let a = advise(&records, "1");
    assert_eq!(
        a.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        vec!["unpriced_models"]
    );
}

#[test]
fn silent_without_the_prices_it_needs() {
    // gpt-3.5-turbo-0613 has no batch prices in the catalog: no batch_api finding.
    let mut records: Vec<CallRecord> = (0..3)
        .map(|i| call(i, "gpt-3.5-turbo-0613", 3000, 500))
        .collect();
    for r in &mut records {
        r.root_run_name = Some("nightly".into());
    }
    let a = advise(&records, "0");
    assert!(
        a.findings.iter().all(|f| f.rule != "batch_api"),
        "{:?}",
        a.findings
    );
    // gpt-4o has them.
    let mut records: Vec<CallRecord> = (0..3).map(|i| call(i, "gpt-4o", 3000, 500)).collect();
    for r in &mut records {
        r.root_run_name = Some("nightly".into());
    }
    let f = advise(&records, "0")
        .findings
        .into_iter()
        .find(|f| f.rule == "batch_api")
        .unwrap();
    assert_eq!(
        f.saving,
        d("3") * (d("3000") * d("1.25") + d("500") * d("5")) / d("1000000")
    );
}

#[test]
fn repeats_outside_the_cache_lifetime_are_not_cached() {
    let fp = |i: u64| shared_prefix(i, 100 + i);
    let mut records: Vec<CallRecord> = (0..3).map(|i| call(i, "gpt-4o", 5000, 10)).collect();
    for (i, r) in records.iter_mut().enumerate() {
        r.time += Duration::minutes(10 * i64::try_from(i).unwrap());
        r.request.fingerprint = Some(fp(i as u64));
    }
    assert!(advise(&records, "0")
        .findings
        .iter()
        .all(|f| f.rule != "prompt_caching"));
    for (i, r) in records.iter_mut().enumerate() {
        r.time -= Duration::minutes(10 * i64::try_from(i).unwrap());
    }
    let f = advise(&records, "0")
        .findings
        .into_iter()
        .find(|f| f.rule == "prompt_caching")
        .unwrap();
    // 4500 prefix tokens (90% of the bytes) twice at 1.25 instead of 2.50; OpenAI charges no
    // write premium.
    assert_eq!(f.saving, d("2") * d("4500") * d("1.25") / d("1000000"));
    assert_eq!(f.calls, 2);
}

#[test]
fn json_has_the_issue_fields_and_exact_strings() {
    let records: Vec<CallRecord> = (0..4).map(|i| call(i, "gpt-4o", 300, 100)).collect();
    let j = advise(&records, "0").to_json();
    let f = &j["findings"][0];
    for k in [
        "rule",
        "title",
        "saving_usd",
        "monthly_saving_usd",
        "share_of_spend",
        "calls",
        "scope",
        "evidence",
        "action",
        "caveat",
    ] {
        assert!(f.get(k).is_some(), "{k}");
    }
    assert!(f["saving_usd"].is_string());
    assert_eq!(j["window"]["calls"], 4);
}

#[test]
fn the_column_skipping_read_gives_the_advice_of_full_records() {
    use crate::store::reader::Columns;
    use crate::store::{Format, Location, Sink, TimeRange};
    // Calls that fire most rules: repeated prefixes and requests, short calls on a model with
    // a cheaper sibling, an uncapped long output, a failed call, an estimated and an unpriced
    // one, nightly work.
    let mut records: Vec<CallRecord> = (0..12)
        .map(|i| {
            call(
                i,
                if i % 3 == 0 { "gpt-4o" } else { "gpt-4o-mini" },
                5000,
                900,
            )
        })
        .collect();
    for (i, r) in records.iter_mut().enumerate() {
        let i = i as u64;
        r.request.fingerprint = Some(shared_prefix(i % 4, 100 + i));
        r.request.max_tokens = i.is_multiple_of(2).then_some(1000);
        r.root_run_name = Some(if i < 4 { "nightly-digest" } else { "chat" }.into());
    }
    records.push(call(20, "gpt-4o", 200, 50));
    records.push(call(21, "gpt-4o", 200, 50));
    let mut failed = call(22, "gpt-4o", 100, 0);
    failed.error = Some("RateLimitError: slow down".into());
    records.push(failed);
    let mut estimated = call(23, "gpt-4o", 3000, 100);
    estimated.usage_source = UsageSource::Estimated;
    estimated.estimated_by = Some("o200k_base".into());
    records.push(estimated);
    let mut unpriced = call(24, "no-such-model-x", 3000, 100);
    unpriced.cost = None;
    unpriced.unpriced_reason = Some("no price for model 'no-such-model-x'".into());
    records.push(unpriced);

    let want = advise(&records, "0").to_json();
    assert!(want["findings"].as_array().unwrap().len() >= 5, "{want}");
    let dir = std::env::temp_dir().join(format!("llmledger-advise-cols-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["a.db", "a.jsonl"] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let mut sink = Sink::open(&path, Format::of(&path), false).unwrap();
        sink.write(&records).unwrap();
        drop(sink);
        let loc = Location::file(&path);
        let range = TimeRange::default();
        let options = Options {
            min_saving: d("0"),
            ..Options::default()
        };
        let (got, warnings) = advise_ledger(
            &loc,
            &range,
            Catalog::bundled().unwrap(),
            options,
            &mut |_| {},
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(got.to_json(), want, "{name}");
        // What the projection leaves out is empty; what it keeps is there.
        let mut back = Vec::new();
        crate::store::read::for_each_columns(
            &loc,
            &range,
            Columns::Advise,
            &mut Vec::new(),
            &mut |_| {},
            &mut |r| {
                back.push(r);
                true
            },
        )
        .unwrap();
        assert_eq!(back.len(), records.len());
        let failed = back.iter().find(|r| r.error.is_some()).unwrap();
        assert_eq!(failed.usage.input, 100);
        if name == "a.db" {
            assert_eq!(failed.error.as_deref(), Some(""));
            assert!(back
                .iter()
                .all(|r| r.requested_model.is_none() && r.latency.is_none()));
        }
        assert_eq!(back[0].request, records[0].request);
        assert_eq!(back[0].attribution, records[0].attribution);
        assert_eq!(
            back[0].cost.as_ref().map(|c| (c.total, c.input)),
            records[0].cost.as_ref().map(|c| (c.total, c.input))
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn batch_work_is_named_by_a_word_start_in_names_tags_and_metadata() {
    use super::batch::names_keyword;
    let k = Options::default().batch_keywords;
    for yes in [
        "nightly-digest",
        "BatchSummarize",
        "weeklyBackfill",
        "evaluation run",
        "etl_orders",
        "cron:hourly",
        "Ingestion",
    ] {
        assert!(names_keyword(yes, &k), "{yes}");
    }
    for no in ["retrieval_chain", "acronym-helper", "chat", "rebatched", ""] {
        assert!(!names_keyword(no, &k), "{no}");
    }
    // A captured metadata value marks the calls too, as a root run name or tag does.
    let mut records: Vec<CallRecord> = (0..3).map(|i| call(i, "gpt-4o", 3000, 500)).collect();
    for r in &mut records {
        r.tags.clear();
        r.root_run_name = Some("retrieval_chain".into());
    }
    assert!(advise(&records, "0")
        .findings
        .iter()
        .all(|f| f.rule != "batch_api"));
    for r in &mut records {
        r.attribution.push(("job".into(), "nightly-sync".into()));
    }
    let f = advise(&records, "0")
        .findings
        .into_iter()
        .find(|f| f.rule == "batch_api")
        .unwrap();
    assert_eq!(f.calls, 3);
    assert_eq!(f.evidence["named_as_batch_work"], 3);
}
