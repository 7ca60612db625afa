//! The advice over a varied ledger, pinned: every finding and dollar figure of 6,000 calls
//! that fire every rule (several models, providers, price versions, tiers and service tiers,
//! cache reads and 5-minute and 1-hour writes, repeats in and out of the cache lifetime,
//! bursts, errors, LLM-cache replays, estimated and unpriced calls), read from memory, from a
//! SQLite ledger and from a JSONL ledger, must equal `testdata/varied_advice.json`, written
//! by the advisor before its read was made faster. A change that moves a single figure fails
//! here.
//!
//! Regenerate (only for a deliberate change of the rules): `LLMLEDGER_BLESS=1 cargo test -q
//! --no-default-features --lib advise::golden`.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::fingerprint::{Fingerprint, PrefixMark};
use crate::ledger::RequestFacts;
use crate::store::{Format, Location, Sink, TimeRange};
use crate::usage::UsageSource;

const GOLDEN: &str = "src/advise/testdata/varied_advice.json";

/// A small deterministic generator (SplitMix64): the same ledger on every run and platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `pct` percent of the time.
    fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[usize::try_from(self.below(v.len() as u64)).unwrap()]
    }
}

/// (model, provider): OpenAI models with a cheaper sibling, a successor, price versions and
/// long-context tiers; Anthropic models with cache writes; a Fireworks model priced by the
/// host's cache rule; an unknown model, and calls naming none.
const MODELS: &[(Option<&str>, Option<&str>)] = &[
    (Some("gpt-4o"), Some("openai")),
    (Some("gpt-4o-mini"), Some("openai")),
    (Some("gpt-4o-2024-08-06"), Some("openai")),
    (Some("gpt-4.1"), Some("openai")),
    (Some("gpt-4.1-mini"), Some("openai")),
    (Some("gpt-4"), Some("openai")),
    (Some("gpt-3.5-turbo"), Some("openai")),
    (Some("gpt-5.6-luna"), Some("openai")),
    (Some("gpt-5.6-sol"), Some("openai")),
    (Some("o4-mini"), Some("openai")),
    (Some("claude-sonnet-4-6"), Some("anthropic")),
    (Some("claude-opus-4-1"), Some("anthropic")),
    (Some("claude-opus-4-5"), Some("anthropic")),
    (Some("claude-haiku-4-5"), Some("anthropic")),
    (Some("chronos-hermes-13b-v2"), Some("fireworks")),
    (Some("no-such-model-x"), Some("openai")),
    (Some("gpt-4o-mini"), None),
    (None, Some("openai")),
];

const ROOT_NAMES: &[Option<&str>] = &[
    Some("chat"),
    Some("chat"),
    Some("support"),
    Some("nightly-digest"),
    Some("BatchSummarize"),
    Some("evaluation"),
    Some("retrieval"),
    Some("acronym"),
    Some("Überprüfung-cron"),
    Some("ÜBERSICHT"),
    None,
];

const TAGS: &[&str] = &["prod", "beta", "cron-job", "ingestPipeline", "ç-tag"];

const TIERS: &[Option<&str>] = &[
    None,
    None,
    None,
    None,
    Some("default"),
    Some("flex"),
    Some("priority"),
    Some("batch"),
];

/// The time to the next call.
fn gap(rng: &mut Rng) -> Duration {
    // Mostly seconds to minutes apart (repeats inside a 5-minute cache lifetime), now and
    // then hours (outside it, and past the hour of duplicates).
    if rng.pct(3) {
        Duration::seconds(i64::try_from(3600 + rng.below(4 * 3600)).unwrap())
    } else if rng.pct(10) {
        Duration::seconds(i64::try_from(300 + rng.below(600)).unwrap())
    } else {
        Duration::milliseconds(i64::try_from(rng.below(90_000)).unwrap())
    }
}

/// The varied ledger's calls, in time order, priced by the bundled catalog as the tracker
/// prices them.
#[allow(clippy::too_many_lines)] // one generator, field by field
fn varied() -> Vec<CallRecord> {
    let catalog = Catalog::bundled().unwrap();
    let mut rng = Rng(12);
    let mut time = Utc.with_ymd_and_hms(2026, 7, 27, 9, 0, 0).unwrap();
    let systems: Vec<(u64, u64)> = (0..5)
        .map(|_| (rng.next(), 2000 + rng.below(30_000)))
        .collect();
    let roots: Vec<u128> = (0..40).map(|_| u128::from(rng.next()) << 1 | 1).collect();
    let mut last_request = 0u64;
    let mut out = Vec::new();
    for i in 0..6000u64 {
        time += gap(&mut rng);
        let (model, provider) = *rng.pick(MODELS);
        let anthropic = provider == Some("anthropic");
        // gpt-4's long prompts are most of the spend (`long_prompt`).
        let long = if model == Some("gpt-4") { 5 } else { 1 };
        let input = match rng.below(10) {
            0 => 50 + rng.below(900),
            n if n <= long => 280_000 + rng.below(20_000),
            _ => 1000 + rng.below(20_000),
        };
        let mut usage = Usage {
            input,
            output: match rng.below(4) {
                0 => 5 + rng.below(290),
                1 => 600 + rng.below(4000),
                _ => 100 + rng.below(900),
            },
            ..Usage::default()
        };
        if rng.pct(10) {
            usage.reasoning = usage.output / 2;
        }
        if anthropic || rng.pct(8) {
            match rng.below(6) {
                0 => usage.cache_read = input / 2,
                1 => usage.cache_write = input / 3,
                2 => {
                    usage.cache_write = input / 3;
                    usage.cache_write_1h = input / 4;
                }
                _ => {}
            }
        }
        let usage_source = match rng.below(40) {
            0 => UsageSource::Estimated,
            1 => UsageSource::Cache,
            2 => UsageSource::None,
            _ => UsageSource::Provider,
        };
        let error = rng.pct(3).then(|| "RateLimitError: slow down".to_string());
        if error.is_some() && rng.pct(50) {
            usage = Usage::default();
        }
        let service_tier = rng.pick(TIERS).map(String::from);
        let cost = model.and_then(|m| {
            catalog
                .price_call(m, provider, &usage, time, service_tier.as_deref())
                .and_then(|p| p.priced.ok())
                .map(|p| p.cost)
        });
        let unpriced_reason = cost
            .is_none()
            .then(|| format!("no price for model '{}'", model.unwrap_or("?")));
        let burst = rng.pct(30);
        let run_id = u128::from(i) + 1;
        let root_run_id = if burst { *rng.pick(&roots) } else { run_id };
        let fingerprint = rng.pct(85).then(|| {
            let (system, bytes) = *rng.pick(&systems);
            let request = if rng.pct(6) { last_request } else { rng.next() };
            last_request = request;
            let total = bytes + 200 + rng.below(8000);
            let mut prefixes = vec![PrefixMark {
                hash: system,
                bytes,
            }];
            if rng.pct(70) {
                prefixes.push(PrefixMark {
                    hash: rng.next(),
                    bytes: total,
                });
            }
            Arc::new(Fingerprint {
                request,
                prefixes,
                prompt_bytes: total,
            })
        });
        let mut attribution = vec![("user_id".into(), format!("user-{}", rng.below(20)))];
        if rng.pct(30) {
            attribution.push(("node".into(), rng.pick(&["plan", "answer"]).to_string()));
        }
        if rng.pct(10) {
            attribution.push(("job".into(), "etl-sync".to_string()));
        }
        let mut tags: Vec<String> = TAGS
            .iter()
            .filter(|_| rng.pct(30))
            .map(|t| (*t).to_string())
            .collect();
        let mut root_run_name = rng.pick(ROOT_NAMES).map(Arc::from);
        // One model only one job calls: its findings' scope narrows to that job.
        if model == Some("gpt-4.1-mini") {
            root_run_name = Some(Arc::from("nightly-digest"));
            attribution = vec![("user_id".into(), "user-1".into())];
            tags = vec!["prod".into()];
        }
        out.push(CallRecord {
            time,
            run_id,
            parent_run_id: burst.then_some(root_run_id),
            root_run_id,
            root_run_name,
            model: model.map(Arc::from),
            requested_model: model.map(Arc::from),
            provider: provider.map(Arc::from),
            attribution,
            tags,
            usage,
            usage_source,
            estimated_by: (usage_source == UsageSource::Estimated)
                .then(|| "o200k_base".to_string()),
            service_tier,
            cost,
            unpriced_reason,
            price_entry: None,
            catalog_version: None,
            latency: Some(0.25),
            chunks: if rng.pct(20) { 12 } else { 0 },
            error,
            usage_notes: None,
            price_notes: None,
            request: RequestFacts {
                max_tokens: (fingerprint.is_some() && rng.pct(50)).then_some(1024),
                fingerprint,
            },
        });
    }
    out
}

fn options() -> Options {
    Options {
        min_saving: Decimal::ZERO,
        ..Options::default()
    }
}

fn pretty(advice: &Advice) -> String {
    serde_json::to_string_pretty(&advice.to_json()).unwrap() + "\n"
}

#[test]
fn varied_ledger_advice_is_pinned_in_memory_sqlite_and_jsonl() {
    let records = varied();
    let got = pretty(&advise_records(
        &records,
        Catalog::bundled().unwrap(),
        options(),
    ));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("LLMLEDGER_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(got, want, "the advice over memory changed");
    let json: serde_json::Value = serde_json::from_str(&want).unwrap();
    let rules: std::collections::BTreeSet<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in [
        "prompt_caching",
        "cache_writes_unread",
        "cheaper_model",
        "newer_model",
        "batch_api",
        "uncapped_output",
        "duplicate_requests",
        "estimated_usage",
        "unpriced_models",
    ] {
        assert!(rules.contains(rule), "{rule} does not fire: {rules:?}");
    }
    let dir = std::env::temp_dir().join(format!("llmledger-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["v.db", "v.jsonl"] {
        let file = dir.join(name);
        let _ = std::fs::remove_file(&file);
        let mut sink = Sink::open(&file, Format::of(&file), false).unwrap();
        sink.write(&records).unwrap();
        drop(sink);
        let (advice, warnings) = advise_ledger(
            &Location::file(&file),
            &TimeRange::default(),
            Catalog::bundled().unwrap(),
            options(),
            &mut |_| {},
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(pretty(&advice), want, "the advice over {name} changed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sqlite_ledger_whose_times_do_not_sort_is_advised_as_read() {
    // Times stored with an offset sort as text, not as times: the ledger's order goes back
    // in time, and the advice must be the plain advisor's over the records as read.
    let records = varied();
    let dir = std::env::temp_dir().join(format!("llmledger-golden-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("o.db");
    let _ = std::fs::remove_file(&file);
    let mut sink = Sink::open(&file, Format::Sqlite, false).unwrap();
    sink.write(&records).unwrap();
    drop(sink);
    let conn = rusqlite::Connection::open(&file).unwrap();
    for id in (100..6000).step_by(97) {
        let time: String = conn
            .query_row("SELECT time FROM calls WHERE id = ?1", [id], |r| r.get(0))
            .unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(&time).unwrap();
        let shifted = t
            .with_timezone(&chrono::FixedOffset::east_opt(5 * 3600).unwrap())
            .to_rfc3339();
        conn.execute(
            "UPDATE calls SET time = ?1 WHERE id = ?2",
            rusqlite::params![shifted, id],
        )
        .unwrap();
    }
    drop(conn);
    let location = Location::file(&file);
    let mut reader = crate::store::reader::open_reader_columns(
        &location,
        TimeRange::default(),
        crate::store::reader::Columns::Advise,
    )
    .unwrap();
    let mut as_read = Vec::new();
    loop {
        let n = as_read.len();
        reader.next_batch(1000, &mut as_read).unwrap();
        if as_read.len() == n {
            break;
        }
    }
    assert_eq!(as_read.len(), records.len());
    assert!(
        as_read.windows(2).any(|w| w[1].time < w[0].time),
        "not out of order"
    );
    let mut ordered = Advisor::time_ordered(Catalog::bundled().unwrap(), options());
    for r in &as_read {
        ordered.add(r);
    }
    assert!(ordered.disordered());
    let want = pretty(&advise_records(
        &as_read,
        Catalog::bundled().unwrap(),
        options(),
    ));
    let (got, _) = advise_ledger(
        &location,
        &TimeRange::default(),
        Catalog::bundled().unwrap(),
        options(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(pretty(&got), want);
    let _ = std::fs::remove_dir_all(&dir);
}
