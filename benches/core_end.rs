//! Times the core's start + end of one call (no Python): the part of `on_llm_end` that is
//! pure Rust. Run: `cargo bench --no-default-features --bench core_end`.
#![allow(clippy::cast_precision_loss)]

use std::hint::black_box;
use std::time::Instant;

use llmledger::{Catalog, EndInfo, StartInfo, Tracker, TrackerConfig, Usage};

fn main() {
    let tracker = Tracker::new(TrackerConfig {
        attribute: vec!["user_id".into(), "session_id".into()],
        catalog: Catalog::bundled().expect("bundled catalog"),
        max_records: None,
        estimate: true,
    });
    let n: u128 = 50_000;
    let usage = Usage {
        input: 1532,
        cache_read: 1024,
        output: 412,
        reasoning: 128,
        ..Usage::default()
    };
    let mut start_ns = 0.0;
    let mut end_ns = 0.0;
    for round in 0..3 {
        tracker.reset();
        let t0 = Instant::now();
        for i in 0..n {
            if i % 64 == 0 && i > 0 {
                // Keep 64 runs open, as an app with 64 concurrent calls does.
                for j in i - 64..i {
                    black_box(tracker.end(
                        EndInfo {
                            run_id: j,
                            usage: Some(usage),
                            model: Some("gpt-4o-mini-2024-07-18".into()),
                            ..EndInfo::default()
                        },
                        Vec::new,
                    ));
                }
            }
            tracker
                .start(StartInfo {
                    run_id: i,
                    model: Some("gpt-4o-mini".into()),
                    provider: Some("openai".into()),
                    attribution: vec![
                        ("user_id".into(), "u-42".into()),
                        ("session_id".into(), "s-7".into()),
                    ],
                    tags: vec!["prod".into()],
                    ..StartInfo::default()
                })
                .expect("no budgets: never refused");
        }
        let t1 = Instant::now();
        for i in n - 64..n {
            black_box(tracker.end(
                EndInfo {
                    run_id: i,
                    usage: Some(usage),
                    model: Some("gpt-4o-mini-2024-07-18".into()),
                    service_tier: None,
                    ..EndInfo::default()
                },
                Vec::new,
            ));
        }
        let t2 = Instant::now();
        #[allow(clippy::cast_precision_loss)]
        if round > 0 {
            start_ns = (t1 - t0).as_nanos() as f64 / n as f64;
            end_ns = (t2 - t1).as_nanos() as f64 / 64.0;
        }
    }
    let catalog = Catalog::bundled().unwrap();
    let t0 = Instant::now();
    for _ in 0..n {
        black_box(catalog.resolve(black_box("gpt-4o-mini-2024-07-18"), Some("openai")));
    }
    let resolve_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    let entry = catalog.resolve("gpt-4o-mini", None).unwrap().entry;
    let today = chrono::Utc::now().date_naive();
    let t0 = Instant::now();
    for _ in 0..n {
        black_box(entry.cost(black_box(&usage), today, None).unwrap());
    }
    let cost_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    let t0 = Instant::now();
    for _ in 0..n {
        black_box(entry.key());
    }
    let key_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    println!("resolve: {resolve_ns:.0} ns, cost: {cost_ns:.0} ns, key: {key_ns:.0} ns");
    println!(
        "core start+end pair: {start_ns:.0} ns/call (last 64 ends alone: {end_ns:.0} ns/call)"
    );
}
