//! Store tests: round trips through both formats, the writer thread, reports, schema checks.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::TimeZone;

use super::read::{for_each, ExportFormat};
use super::Location;
use super::*;
use crate::catalog::CostBreakdown;
use crate::ledger::{Ledger, Totals};
use crate::money::Decimal;
use crate::usage::{Usage, UsageSource};

fn tmp(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "llmledger-store-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn rec(i: u128, user: &str, model: &str, cost: Option<&str>, tags: &[&str]) -> CallRecord {
    CallRecord {
        time: Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
            + chrono::Duration::seconds(i64::try_from(i).unwrap()),
        run_id: 0x1000 + i,
        parent_run_id: Some(7),
        root_run_id: 7,
        root_run_name: Some("graph".into()),
        model: Some(model.into()),
        requested_model: Some(model.into()),
        provider: Some("openai".into()),
        attribution: vec![("user_id".into(), user.to_string())],
        tags: tags.iter().map(|s| (*s).to_string()).collect(),
        usage: Usage {
            input: 100,
            cache_read: 40,
            cache_write: 10,
            cache_write_1h: 5,
            output: 20,
            reasoning: 3,
            input_audio: 2,
            output_audio: 1,
        },
        usage_source: UsageSource::Provider,
        estimated_by: None,
        service_tier: Some("priority".into()),
        cost: cost.map(|c| CostBreakdown {
            total: d(c),
            input: d(c),
            ..CostBreakdown::default()
        }),
        unpriced_reason: cost.is_none().then(|| "no price".to_string()),
        price_entry: Some("openai/gpt-4o".into()),
        catalog_version: Some("2026.11.1".into()),
        latency: Some(0.25),
        chunks: 4,
        error: None,
        usage_notes: None,
        price_notes: None,
        request: crate::ledger::RequestFacts::default(),
    }
}

fn sample() -> Vec<CallRecord> {
    let mut v = vec![
        rec(1, "alice", "gpt-4o", Some("0.00018"), &["prod"]),
        rec(2, "alice", "gpt-4o", Some("0.000000075"), &["prod", "faq"]),
        rec(3, "bob", "gpt-4o-mini", Some("1.5"), &[]),
        rec(4, "bob", "mystery", None, &["faq"]),
    ];
    v[3].usage_source = UsageSource::Estimated;
    v[3].estimated_by = Some("estimate for Claude: o200k_base x 1.20".into());
    let mut failed = rec(5, "carol", "gpt-4o", None, &[]);
    failed.error = Some("RateLimitError: 429 too many".into());
    failed.usage = Usage::default();
    failed.unpriced_reason = None;
    v.push(failed);
    let mut cached = rec(6, "carol", "gpt-4o", Some("0"), &[]);
    cached.usage_source = UsageSource::Cache;
    v.push(cached);
    v[1].usage_notes = Some("cache_read_tokens from llm_output.token_usage".into());
    v[1].price_notes = Some("cache_read_tokens at the input price: no cache_read price".into());
    v
}

#[test]
fn local_calls_are_counted_by_every_backend() {
    let mut records = sample();
    let mut local = rec(7, "dave", "deepseek-r1", Some("0"), &[]);
    local.provider = Some("ollama".into());
    local.price_entry = Some("local:ollama".into());
    records.push(local);
    let (_, want) = expected(&records, &["model"]);
    assert_eq!(want.local_calls, 1);
    for name in ["local.db", "local.jsonl"] {
        let path = tmp(name);
        let mut sink = Sink::open(&path, Format::of(&path), false).unwrap();
        sink.write(&records).unwrap();
        drop(sink);
        let (back, _) = read_all(&path);
        assert_eq!(
            back.last().unwrap().price_entry.as_deref(),
            Some("local:ollama")
        );
        let loc = Location::file(&path);
        let rep = report(
            &loc,
            &["model".to_string()],
            &TimeRange::default(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(rep.totals.local_calls, 1, "{name}");
        assert_eq!(rep.totals.unpriced_calls, want.unpriced_calls, "{name}");
    }
}

fn read_all(path: &Path) -> (Vec<CallRecord>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for_each(
        &Location::file(path),
        &TimeRange::default(),
        &mut warnings,
        &mut |_| {},
        &mut |r| {
            out.push(r);
            true
        },
    )
    .unwrap();
    (out, warnings)
}

/// Ledger's summary over the same records: what every stored report must equal.
fn expected(records: &[CallRecord], by: &[&str]) -> (Vec<crate::ledger::SummaryRow>, Totals) {
    let mut l = Ledger::new(None);
    for r in records {
        l.push(r.clone());
    }
    let by: Vec<String> = by.iter().map(|s| (*s).to_string()).collect();
    let dims = read::parse_dims(&by).unwrap();
    let mut rows = l.summary(&dims);
    for r in &mut rows {
        r.totals.cost = r.totals.cost.normalize();
    }
    (rows, l.totals().clone())
}

fn normalized(mut rep: Report) -> Report {
    for r in &mut rep.rows {
        r.totals.cost = r.totals.cost.normalize();
    }
    rep.totals.cost = rep.totals.cost.normalize();
    rep
}

#[test]
fn every_field_round_trips_through_both_formats() {
    for name in ["a.db", "a.jsonl"] {
        let path = tmp(name);
        let mut sink = Sink::open(&path, Format::of(&path), false).unwrap();
        let records = sample();
        assert_eq!(sink.write(&records).unwrap(), records.len());
        drop(sink);
        let (back, warnings) = read_all(&path);
        assert!(warnings.is_empty(), "{warnings:?}");
        let normalize = |mut r: CallRecord| {
            if let Some(c) = &mut r.cost {
                c.total = c.total.normalize();
                c.input = c.input.normalize();
            }
            r
        };
        let want: Vec<CallRecord> = records.into_iter().map(normalize).collect();
        let got: Vec<CallRecord> = back.into_iter().map(normalize).collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn sqlite_skips_run_ids_it_has() {
    let path = tmp("dup.db");
    let mut sink = Sink::open(&path, Format::Sqlite, false).unwrap();
    assert_eq!(sink.write(&sample()).unwrap(), 6);
    assert_eq!(sink.write(&sample()).unwrap(), 0);
    assert_eq!(read_all(&path).0.len(), 6);
}

#[test]
fn reports_equal_the_in_memory_summary_on_both_formats() {
    let records = sample();
    for name in ["r.db", "r.jsonl"] {
        let path = tmp(name);
        Sink::open(&path, Format::of(&path), false)
            .unwrap()
            .write(&records)
            .unwrap();
        for by in [
            &[][..],
            &["model"][..],
            &["user_id", "model"][..],
            &["tag"][..],
            &["error", "usage_source"][..],
            &["day", "hour", "provider", "service_tier", "price_entry"][..],
            &["root_run_name", "root_run_id", "nobody_sets_this"][..],
        ] {
            let by_s: Vec<String> = by.iter().map(|s| (*s).to_string()).collect();
            let rep = normalized(
                report(
                    &Location::file(&path),
                    &by_s,
                    &TimeRange::default(),
                    &mut |_| {},
                )
                .unwrap(),
            );
            let (rows, totals) = expected(&records, by);
            assert_eq!(rep.totals, totals, "{name} {by:?}");
            if !by.is_empty() {
                assert_eq!(rep.rows, rows, "{name} {by:?}");
            }
        }
    }
}

#[test]
fn inexact_pico_costs_fall_back_to_exact_decimals() {
    // 13 decimals: not a whole number of pico-dollars.
    let mut records = sample();
    records[0].cost.as_mut().unwrap().total = d("0.0000000000001");
    let path = tmp("inexact.db");
    Sink::open(&path, Format::Sqlite, false)
        .unwrap()
        .write(&records)
        .unwrap();
    let by = vec!["model".to_string()];
    let rep = normalized(
        report(
            &Location::file(&path),
            &by,
            &TimeRange::default(),
            &mut |_| {},
        )
        .unwrap(),
    );
    let (rows, totals) = expected(&records, &["model"]);
    assert_eq!(rep.rows, rows);
    assert_eq!(rep.totals, totals);
    assert_eq!(rep.totals.cost, d("1.5000000750001"));
}

#[test]
fn pico_dollars_are_exact_or_none() {
    assert_eq!(sqlite::pico(d("0.000000075")), Some(75_000));
    assert_eq!(sqlite::pico(d("1.5")), Some(1_500_000_000_000));
    assert_eq!(sqlite::pico(d("0.0000000000001")), None);
    assert_eq!(sqlite::pico(d("100000000")), None); // 1e20 pico > i64::MAX
}

#[test]
fn spend_since_reads_window_spend_per_value() {
    let path = tmp("spend.db");
    Sink::open(&path, Format::Sqlite, false)
        .unwrap()
        .write(&sample())
        .unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
    let mut by_user = spend_since(&Location::file(&path), t0, Some("user_id")).unwrap();
    by_user.sort();
    assert_eq!(
        by_user,
        vec![
            (Some("alice".into()), d("0.000180075")),
            (Some("bob".into()), d("1.5")),
            (Some("carol".into()), d("0")),
        ]
    );
    // From the third call on: alice's two calls are out of the window.
    let later = t0 + chrono::Duration::seconds(3);
    let total = spend_since(&Location::file(&path), later, None).unwrap();
    assert_eq!(total, vec![(None, d("1.5"))]);
    let none = spend_since(&Location::file(&path), t0 + chrono::Duration::days(1), None).unwrap();
    assert_eq!(none, vec![(None, Decimal::ZERO)]);
}

#[test]
fn time_windows_filter_reports() {
    let path = tmp("window.jsonl");
    Sink::open(&path, Format::Jsonl, false)
        .unwrap()
        .write(&sample())
        .unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
    let range = TimeRange {
        since: Some(t0 + chrono::Duration::seconds(2)),
        until: Some(t0 + chrono::Duration::seconds(4)),
    };
    let rep = report(&Location::file(&path), &[], &range, &mut |_| {}).unwrap();
    assert_eq!(rep.totals.successful_requests, 2);
}

#[test]
fn newer_schema_is_refused_and_left_untouched() {
    let path = tmp("newer.db");
    Sink::open(&path, Format::Sqlite, false)
        .unwrap()
        .write(&sample())
        .unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path, Durability::Batch)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("newer llmledger") && err.contains("99"),
        "{err}"
    );
    assert!(err.contains(&path.display().to_string()), "{err}");
    let err = report(
        &Location::file(&path),
        &[],
        &TimeRange::default(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("schema version 99"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn foreign_files_are_refused() {
    let path = tmp("other.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE users (id INTEGER)").unwrap();
    }
    let err = Store::open(&path, Durability::Sync)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an llmledger ledger"), "{err}");
    let text = tmp("notes.db");
    std::fs::write(&text, "hello").unwrap();
    let err = Store::open(&text, Durability::Batch)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a SQLite database"), "{err}");
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "hello");
    // Not SQLite by header: read as JSONL, so a report names the bad line.
    let rep = report(
        &Location::file(&text),
        &[],
        &TimeRange::default(),
        &mut |_| {},
    )
    .unwrap();
    assert!(rep.warnings[0].contains(":1:"), "{:?}", rep.warnings);
}

#[test]
fn bad_jsonl_lines_are_reported_by_number_and_torn_lines_closed() {
    let path = tmp("bad.jsonl");
    let mut sink = Sink::open(&path, Format::Jsonl, false).unwrap();
    sink.write(&sample()[..2]).unwrap();
    drop(sink);
    // A garbage line, then a torn record (a crash mid-write), no newline at the end.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("this is not json\n{\"time\": \"2026-11-01T12:");
    std::fs::write(&path, &text).unwrap();
    let mut sink = Sink::open(&path, Format::Jsonl, false).unwrap();
    sink.write(&sample()[2..3]).unwrap();
    drop(sink);
    let (back, warnings) = read_all(&path);
    assert_eq!(back.len(), 3);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("bad.jsonl:3:"), "{warnings:?}");
    assert!(warnings[1].contains("bad.jsonl:4:"), "{warnings:?}");
    // Nothing stored was rewritten.
    assert!(std::fs::read_to_string(&path).unwrap().starts_with(&text));
}

#[test]
fn users_own_log_fields_are_read() {
    let path = tmp("theirs.jsonl");
    std::fs::write(
        &path,
        "{\"timestamp\": \"2026-11-01T10:00:00+01:00\", \"run_id\": \
         \"6f9619ff-8b86-d011-b42d-00cf4fc964ff\", \"model\": \"gpt-4o\", \"prompt_tokens\": 10, \
         \"completion_tokens\": 5, \"total_cost\": 0.1}\n",
    )
    .unwrap();
    let (back, warnings) = read_all(&path);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(back[0].usage.total(), 15);
    assert_eq!(back[0].cost.as_ref().unwrap().total, d("0.1"));
    assert_eq!(
        back[0].time,
        Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
    );
}

#[test]
fn batch_store_flushes_and_closes() {
    for name in ["b.db", "b.jsonl"] {
        let path = tmp(name);
        let store = Store::open(&path, Durability::Batch).unwrap();
        for i in 0..10_000 {
            store.append(&rec(i, "u", "gpt-4o", Some("0.001"), &[]));
        }
        store.flush();
        assert_eq!(read_all(&path).0.len(), 10_000, "{name}");
        store.append(&rec(20_000, "u", "gpt-4o", Some("0.001"), &[]));
        store.close();
        assert_eq!(read_all(&path).0.len(), 10_001, "{name}");
        assert_eq!(store.stats().written, 10_001);
        assert!(store.take_messages().is_empty());
        store.append(&rec(30_000, "u", "gpt-4o", Some("0.001"), &[]));
        let m = store.take_messages();
        assert!(m[0].contains("is closed"), "{m:?}");
    }
}

#[test]
fn sync_store_commits_before_append_returns() {
    for name in ["s.db", "s.jsonl"] {
        let path = tmp(name);
        let store = Store::open(&path, Durability::Sync).unwrap();
        for i in 0..20 {
            store.append(&rec(i, "u", "gpt-4o", Some("0.001"), &[]));
            assert_eq!(read_all(&path).0.len(), usize::try_from(i).unwrap() + 1);
        }
    }
}

#[test]
fn a_forked_child_writes_through_its_own_writer() {
    // A thread that simulates a fork sees the store as a forked child does: the parent's
    // writer is not its to use; it opens its own on its first record.
    for durability in [Durability::Batch, Durability::Sync] {
        for name in ["f.db", "f.jsonl"] {
            let path = tmp(name);
            let store = Store::open(&path, durability).unwrap();
            (0..5).for_each(|i| store.append(&rec(i, "parent", "m", Some("1"), &[])));
            std::thread::scope(|s| {
                s.spawn(|| {
                    crate::fork::tests::simulate_fork();
                    assert_eq!(store.stats(), StoreStats::default(), "nothing yet");
                    (100..107).for_each(|i| store.append(&rec(i, "child", "m", Some("1"), &[])));
                    store.close();
                    assert_eq!(store.stats().written, 7);
                    assert!(store.take_messages().is_empty());
                });
            });
            // The child's close left the parent's writer running.
            store.append(&rec(5, "parent", "m", Some("1"), &[]));
            store.close();
            assert_eq!(store.stats().written, 6, "{name} {durability:?}");
            let (records, warnings) = read_all(&path);
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(records.len(), 13, "{name} {durability:?}");
        }
    }
}

#[test]
fn two_stores_share_one_sqlite_ledger() {
    let path = tmp("shared.db");
    let a = Store::open(&path, Durability::Batch).unwrap();
    let b = Store::open(&path, Durability::Batch).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| (0..3_000).for_each(|i| a.append(&rec(i, "a", "m", Some("1"), &[]))));
        s.spawn(|| {
            (3_000..6_000).for_each(|i| b.append(&rec(i, "b", "m", Some("1"), &[])));
        });
    });
    a.close();
    b.close();
    let rep = report(
        &Location::file(&path),
        &["user_id".into()],
        &TimeRange::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(rep.totals.successful_requests, 6_000);
    assert_eq!(rep.totals.cost, Decimal::from(6_000));
}

#[test]
fn processes_creating_one_ledger_at_once_all_open_it() {
    // Regression: a second opener read `sqlite_master` twice outside a transaction, so the
    // creator's migration could commit in between (no 'meta' table, then tables) and the new
    // ledger was refused as "not an llmledger ledger" (seen in CI as two processes starting
    // on one new file).
    for _ in 0..60 {
        let path = tmp("created-at-once.db");
        let start = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            let opened: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        sqlite::SqliteLedger::open(&path, false).map(|_| ())
                    })
                })
                .collect();
            for o in opened {
                o.join().unwrap().unwrap();
            }
        });
        let ledger = sqlite::SqliteLedger::open_read(&path).unwrap();
        assert_eq!(ledger.schema_version().unwrap(), sqlite::SCHEMA_VERSION);
    }
}

#[test]
fn import_is_idempotent_and_export_round_trips() {
    let src = tmp("src.jsonl");
    Sink::open(&src, Format::Jsonl, false)
        .unwrap()
        .write(&sample())
        .unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{oops\n"))
        .unwrap();
    let db = tmp("into.db");
    let s1 = import_jsonl(&Location::file(&src), &Location::file(&db), &mut |_| {}).unwrap();
    assert_eq!((s1.read, s1.added, s1.already_present), (6, 6, 0));
    assert!(s1.warnings[0].contains(":7:"), "{:?}", s1.warnings);
    let s2 = import_jsonl(&Location::file(&src), &Location::file(&db), &mut |_| {}).unwrap();
    assert_eq!((s2.read, s2.added, s2.already_present), (6, 0, 6));
    let mut out = Vec::new();
    let (n, _) = export(
        &Location::file(&db),
        ExportFormat::Jsonl,
        &TimeRange::default(),
        &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(n, 6);
    let original: String = std::fs::read_to_string(&src)
        .unwrap()
        .lines()
        .take(6)
        .fold(String::new(), |acc, l| acc + l + "\n");
    assert_eq!(String::from_utf8(out).unwrap(), original);
    let mut csv = Vec::new();
    export(
        &Location::file(&db),
        ExportFormat::Csv,
        &TimeRange::default(),
        &mut |b| {
            csv.extend_from_slice(b);
            Ok(())
        },
        &mut |_| {},
    )
    .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count(), 7);
    assert!(csv.starts_with("time,run_id,"));
    assert!(csv.contains("\"{\"\"user_id\"\":\"\"alice\"\"}\""), "{csv}");
}

#[test]
fn time_bounds_parse() {
    let now = Utc.with_ymd_and_hms(2026, 11, 8, 12, 0, 0).unwrap();
    let p = |s: &str, end: bool| parse_time_bound(s, now, end).unwrap();
    assert_eq!(
        p("7d", false),
        Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
    );
    assert_eq!(
        p("24h", false),
        Utc.with_ymd_and_hms(2026, 11, 7, 12, 0, 0).unwrap()
    );
    assert_eq!(
        p("30m", false),
        Utc.with_ymd_and_hms(2026, 11, 8, 11, 30, 0).unwrap()
    );
    assert_eq!(
        p("2026-11-01", false),
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        p("2026-11-01", true),
        Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
    );
    assert_eq!(
        p("2026-11-01T09:30:00+02:00", false),
        Utc.with_ymd_and_hms(2026, 11, 1, 7, 30, 0).unwrap()
    );
    // Regression: a `Z` time ends in a letter, and was taken for a duration's unit.
    assert_eq!(
        p("2026-11-01T09:30:00Z", false),
        Utc.with_ymd_and_hms(2026, 11, 1, 9, 30, 0).unwrap()
    );
    assert_eq!(
        p("2026-11-01T09:30", false),
        Utc.with_ymd_and_hms(2026, 11, 1, 9, 30, 0).unwrap()
    );
    assert!(parse_time_bound("yesterday", now, false).is_err());
    assert!(parse_time_bound("7y", now, false).is_err());
}

#[test]
fn durability_names() {
    assert_eq!(Durability::parse("sync").unwrap(), Durability::Sync);
    assert!(Durability::parse("fast")
        .unwrap_err()
        .to_string()
        .contains("'batch' or 'sync'"));
}

#[test]
fn a_version_1_ledger_is_migrated_in_place_and_keeps_its_records() {
    let path = tmp("v1.db");
    {
        // A ledger as llmledger wrote it before `requested_model` existed.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(super::sqlite::MIGRATIONS[0]).unwrap();
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '1');
             INSERT INTO calls (time, run_id, root_run_id, model, input_tokens, output_tokens,
                 usage_source, cost)
             VALUES ('2026-11-01T12:00:00.000000Z', '00000000-0000-0000-0000-000000000001',
                 '00000000-0000-0000-0000-000000000001', 'gpt-4o-2024-08-06', 10, 5,
                 'provider', '0.0001');",
        )
        .unwrap();
    }
    let store = Store::open(&path, Durability::Sync).unwrap();
    store.append(&sample()[2]);
    store.close();
    let c = rusqlite::Connection::open(&path).unwrap();
    let version: String = c
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
    let rows: Vec<(String, Option<String>)> = c
        .prepare("SELECT model, requested_model FROM calls ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        rows,
        vec![
            ("gpt-4o-2024-08-06".to_string(), None),
            ("gpt-4o-mini".to_string(), Some("gpt-4o-mini".to_string())),
        ]
    );
    let rep = report(
        &Location::file(&path),
        &[],
        &TimeRange::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(rep.totals.successful_requests, 2);
}

/// Every record of a reader, pulled `max` at a time.
fn pull_all(location: &Location, range: TimeRange, max: usize) -> Vec<CallRecord> {
    let mut reader = open_reader(location, range).unwrap();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        reader.next_batch(max, &mut out).unwrap();
        assert!(out.len() - before <= max);
        if out.len() == before {
            return out;
        }
    }
}

#[test]
fn readers_page_in_batches_over_equal_times_and_a_range() {
    for name in ["r.db", "r.jsonl"] {
        let path = tmp(name);
        let mut sink = Sink::open(&path, Format::of(&path), false).unwrap();
        // Ten calls in the same microsecond, then ten one second apart: pages must neither
        // skip nor repeat a call of the same time.
        let mut records: Vec<CallRecord> =
            (0..20).map(|i| rec(i, "u", "m", Some("1"), &[])).collect();
        for r in &mut records[..10] {
            r.time = records_time();
        }
        sink.write(&records).unwrap();
        drop(sink);
        let location = Location::file(&path);
        for max in [1, 3, 7, 100] {
            let got = pull_all(&location, TimeRange::default(), max);
            assert_eq!(got, records, "{name} max={max}");
        }
        let range = TimeRange {
            since: Some(records[12].time),
            until: Some(records[15].time),
        };
        assert_eq!(
            pull_all(&location, range, 2),
            records[12..15].to_vec(),
            "{name}"
        );
    }
}

fn records_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap()
}

#[test]
fn a_reader_reads_what_the_ledger_held_when_it_opened() {
    for name in ["s.db", "s.jsonl"] {
        let path = tmp(name);
        let mut sink = Sink::open(&path, Format::of(&path), false).unwrap();
        sink.write(&[rec(1, "u", "m", Some("1"), &[])]).unwrap();
        let mut reader = open_reader(&Location::file(&path), TimeRange::default()).unwrap();
        // Written after the reader opened, with an earlier time.
        let mut late = rec(2, "u", "m", Some("1"), &[]);
        late.time = records_time();
        sink.write(&[late]).unwrap();
        let mut out = Vec::new();
        reader.next_batch(10, &mut out).unwrap();
        reader.next_batch(10, &mut out).unwrap();
        assert_eq!(out.len(), 1, "{name}");
        assert_eq!(out[0].run_id, 0x1001);
    }
    let missing = open_reader(&Location::file(&tmp("none.db")), TimeRange::default());
    assert!(missing.err().unwrap().to_string().contains("no such file"));
}

#[test]
fn a_latency_reads_back_as_the_float_written() {
    // Found by the `jsonl_ledger` fuzz target: serde_json's default float parser is one unit
    // in the last place off for some numbers, so a record's latency changed each time a
    // ledger line was read back and written again (export, import).
    let written = 0.000_416_166_184_467_440_77_f64;
    let mut r = rec(1, "u", "gpt-4o", Some("0.5"), &[]);
    r.latency = Some(written);
    let mut line = Vec::new();
    record::write_json_line(&r, &mut line);
    let back = record::parse_json_line(std::str::from_utf8(&line).unwrap().trim_end()).unwrap();
    assert_eq!(back.latency.map(f64::to_bits), Some(written.to_bits()));
    assert_eq!(back, r);
}

#[test]
fn negative_or_absurd_amounts_make_a_jsonl_line_bad() {
    // The `jsonl_ledger` fuzz target's invariants: a line with a negative cost was read and
    // taken off the totals, and two lines of 7e28 USD overflowed the report's sum (a panic in
    // `llmledger report`). Such lines are now reported and skipped like any bad line.
    let good = r#"{"time":"2026-11-01T12:00:00Z","run_id":"beee8a95-8657-4646-91b1-9c8ed7d44c6d","cost":"0.5"}"#;
    let lines = [
        good.to_string(),
        good.replace("\"0.5\"", "\"-0.0004002\"")
            .replace("beee", "0001"),
        good.replace("\"0.5\"", "\"7e28\"").replace("beee", "0002"),
        good.replace("\"0.5\"", "\"7e28\"").replace("beee", "0003"),
        good.replace(
            r#""cost":"0.5""#,
            r#""cost":"0.5","cost_components":{"input":"-1"}"#,
        )
        .replace("beee", "0004"),
    ];
    let mut totals = Totals::default();
    let mut reader = jsonl::JsonlReader::from_reader(
        Box::new(std::io::Cursor::new(lines.join("\n").into_bytes())),
        std::path::Path::new("l.jsonl"),
        TimeRange::default(),
    );
    while let Some(r) = reader.next_record().unwrap() {
        totals.add(&r);
    }
    let warnings = reader.take_warnings();
    assert_eq!(totals.successful_requests, 1);
    assert_eq!(totals.cost, d("0.5"));
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(
        warnings[0].starts_with("l.jsonl:2: cost -0.0004002 is negative"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("l.jsonl:3: cost 70000"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("more than one call can cost"),
        "{warnings:?}"
    );
    assert!(
        warnings[3].contains("cost_components.input -1 is negative"),
        "{warnings:?}"
    );
}
