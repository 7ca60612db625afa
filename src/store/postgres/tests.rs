//! Against a real PostgreSQL server (`LLMLEDGER_PG_ADMIN_URL`, default
//! `postgresql://postgres@127.0.0.1:5432/postgres`), each test in a database of its own. Without
//! a server they pass with a note on stderr, unless `LLMLEDGER_REQUIRE_SERVICES=1`.

use std::time::Instant;

use postgres::{Client, NoTls};

use super::*;
use crate::digest::tests::record;

fn admin_url() -> String {
    std::env::var("LLMLEDGER_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, dropped when the guard goes.
struct TestDb {
    admin: String,
    name: String,
    url: PgUrl,
}

impl TestDb {
    fn new() -> Option<TestDb> {
        let admin = admin_url();
        let mut c = match Client::connect(&admin, NoTls) {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var("LLMLEDGER_REQUIRE_SERVICES").as_deref() != Ok("1"),
                    "PostgreSQL required (LLMLEDGER_REQUIRE_SERVICES=1) but {admin}: {e}"
                );
                eprintln!("PostgreSQL test skipped: no server at {admin} ({e})");
                return None;
            }
        };
        let name = format!("llmledger_rs_{:016x}", rand_u64());
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = PgUrl::parse(&format!("{}/{name}", admin.rsplit_once('/').unwrap().0)).unwrap();
        Some(TestDb { admin, name, url })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.admin, NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The test database's URL, as text.
fn url_text(t: &TestDb) -> String {
    format!("{}/{}", t.admin.rsplit_once('/').unwrap().0, t.name)
}

fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    #[allow(clippy::cast_possible_truncation)]
    let v = (t as u64) ^ (u64::from(std::process::id()) << 32);
    v.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn records(from: u128, n: u128) -> Vec<CallRecord> {
    (from..from + n)
        .map(|i| {
            let mut r = record(i, "0.000123456789");
            r.tags = vec!["a\tb".into(), "c\\d\ne".into()];
            r.error = (i % 7 == 0).then(|| "Boom: with\ttabs and \"quotes\"".into());
            r.latency = Some(0.25 + f64::from(u32::try_from(i % 10).unwrap()) / 3.0);
            r
        })
        .collect()
}

fn read_all(url: &PgUrl) -> Vec<CallRecord> {
    let mut db = PgLedger::open_read(url).unwrap();
    let last = db.last_id().unwrap();
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let mut page_last = None;
        let n = db
            .for_each_page(&TimeRange::default(), last, after, 50, &mut |r, t, id| {
                out.push(r);
                page_last = Some((t, id));
            })
            .unwrap();
        if n == 0 {
            return out;
        }
        after = page_last;
    }
}

#[test]
fn copy_and_values_are_idempotent_and_read_back_equal() {
    let Some(t) = TestDb::new() else { return };
    let mut db = PgLedger::open(&t.url).unwrap();
    let batch = records(1, 300);
    assert_eq!(db.insert(&batch).unwrap(), 300);
    // A retried batch (COPY, multi-row INSERT, one INSERT) adds nothing.
    assert_eq!(db.insert(&batch).unwrap(), 0);
    assert_eq!(db.insert_values(&batch).unwrap(), 0);
    assert_eq!(db.insert(&batch[..1]).unwrap(), 0);
    // A batch half old, half new adds the new half.
    let more = records(151, 300);
    assert_eq!(db.insert_values(&more).unwrap(), 150);
    assert_eq!(db.count(&TimeRange::default()).unwrap(), 450);
    let back = read_all(&t.url);
    let mut want = batch;
    want.extend(more.into_iter().skip(150));
    want.sort_by_key(|r| (r.time, r.run_id));
    assert_eq!(back, want);
}

#[test]
fn concurrent_first_opens_migrate_once() {
    let Some(t) = TestDb::new() else { return };
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = t.url.clone();
            std::thread::spawn(move || {
                PgLedger::open(&url)
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}"))
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap().unwrap();
    }
    let mut db = PgLedger::open_read(&t.url).unwrap();
    assert_eq!(db.schema_version().unwrap(), PG_SCHEMA_VERSION);
    let rows: i64 = db
        .client
        .query_one("SELECT count(*) FROM llmledger_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, i64::from(PG_SCHEMA_VERSION));
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let Some(t) = TestDb::new() else { return };
    let mut db = PgLedger::open(&t.url).unwrap();
    db.client
        .batch_execute("INSERT INTO llmledger_schema (version, applied_by) VALUES (99, 'future')")
        .unwrap();
    let e = match PgLedger::open(&t.url) {
        Err(OpenError::Other(e)) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(e.contains("newer llmledger") && e.contains("99"), "{e}");
    let e = PgLedger::open_read(&t.url).unwrap_err().to_string();
    assert!(e.contains("newer llmledger"), "{e}");
}

/// Binary COPY, text COPY and multi-row INSERTs of the same batches, in one run:
/// `cargo test --release --no-default-features --lib -- --ignored insert_speed --nocapture`
/// prints the three.
#[test]
#[ignore = "a measurement, run by hand"]
fn insert_speed() {
    let Some(t) = TestDb::new() else { return };
    let mut db = PgLedger::open(&t.url).unwrap();
    let n = 100_000u128;
    let all = records(1, n);
    let t0 = Instant::now();
    let bytes = copy_text(&all).len();
    eprintln!(
        "text encoding alone: {:.2} s ({bytes} bytes)",
        t0.elapsed().as_secs_f64()
    );
    for (i, (label, how)) in [
        ("binary COPY", Some(Copy::Binary)),
        ("text COPY", Some(Copy::Text)),
        ("multi-row INSERT (1,000 rows each)", None),
        ("binary COPY again", Some(Copy::Binary)),
    ]
    .into_iter()
    .enumerate()
    {
        let base = 1 + n * i as u128;
        let all = records(base, n);
        let t0 = Instant::now();
        for chunk in all.chunks(4096) {
            let added = match how {
                Some(f) => db.insert_copy(chunk, f).unwrap(),
                None => db.insert_values(chunk).unwrap(),
            };
            assert_eq!(added, chunk.len());
        }
        let secs = t0.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = n as f64 / secs;
        eprintln!("{label}: {n} records in {secs:.2} s = {rate:.0} records/s");
    }
}

/// Every column's value fits its declared type, for records with and without each optional
/// part (the three ways of writing a row are made from this one table).
#[test]
fn every_cell_fits_its_column() {
    let mut full = record(7, "0.5");
    full.parent_run_id = Some(3);
    full.latency = Some(0.25);
    full.error = Some("boom".into());
    let mut bare = record(8, "0.5");
    bare.cost = None;
    bare.latency = None;
    for r in [&full, &bare] {
        let row = columns::Row::of(r);
        let cells: Vec<_> = row.cells().collect();
        assert_eq!(cells.len(), COLUMNS.len());
        for (c, col) in cells.iter().zip(COLUMNS.iter()) {
            assert!(c.fits(&col.ty.pg()), "{}: {c:?}", col.name);
        }
    }
    assert!(!columns::Cell::Int(1).fits(&postgres::types::Type::TEXT));
}

/// The three ways of writing store the same values: a record read back after binary COPY,
/// text COPY and INSERT is the record written (to the microsecond of its time).
#[test]
fn binary_text_and_insert_store_the_same() {
    let Some(t) = TestDb::new() else { return };
    let mut db = PgLedger::open(&t.url).unwrap();
    let mk = |base: u128| {
        let mut v = records(base, 3);
        v[0].latency = Some(0.123_456_789);
        v[1].cost = None;
        v[1].unpriced_reason = Some("no price".into());
        v[2].attribution
            .push(("zone".into(), "tab\there\nnew\\line".into()));
        v
    };
    let (a, b, c) = (mk(100), mk(200), mk(300));
    assert_eq!(db.insert_copy(&a, Copy::Binary).unwrap(), 3);
    assert_eq!(db.insert_copy(&b, Copy::Text).unwrap(), 3);
    assert_eq!(db.insert_values(&c).unwrap(), 3);
    let mut got = Vec::new();
    db.after_id(0, 100, &mut |r, _| got.push(r)).unwrap();
    assert_eq!(got.len(), 9);
    for (i, r) in got.iter().enumerate() {
        let want = &[&a, &b, &c][i / 3][i % 3];
        assert_eq!(r.run_id, want.run_id);
        assert_eq!(r.cost, want.cost, "{i}");
        assert_eq!(r.attribution, want.attribution, "{i}");
        assert_eq!(r.latency, want.latency, "{i}");
        assert_eq!(r.usage, want.usage, "{i}");
        assert_eq!(r.tags, want.tags, "{i}");
        assert_eq!(r.model, want.model, "{i}");
    }
}

#[test]
fn follower_sees_rows_committed_late_once() {
    use crate::store::follow::Follower;
    use crate::store::Location;
    let Some(t) = TestDb::new() else { return };
    let mut a = PgLedger::open(&t.url).unwrap();
    let mut b = PgLedger::open(&t.url).unwrap();
    let mut fo = Follower::at(&Location::Postgres(t.url.clone()));
    let mut seen = Vec::new();
    // A takes id 1 and has not committed when B's row (id 2) is read.
    let mut tx = a.client.transaction().unwrap();
    tx.batch_execute(
        "INSERT INTO llmledger_calls (time, run_id, root_run_id, usage_source) VALUES \
         (now(), '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', \
         'provider')",
    )
    .unwrap();
    b.insert(&records(10, 1)).unwrap();
    assert_eq!(fo.poll(&mut |r| seen.push(r.run_id)).unwrap().records, 1);
    tx.commit().unwrap();
    assert_eq!(fo.poll(&mut |r| seen.push(r.run_id)).unwrap().records, 1);
    assert_eq!(fo.poll(&mut |r| seen.push(r.run_id)).unwrap().records, 0);
    b.insert(&records(11, 2)).unwrap();
    assert_eq!(fo.poll(&mut |r| seen.push(r.run_id)).unwrap().records, 2);
    assert_eq!(seen, vec![10, 1, 11, 12]);
}

#[test]
fn follower_waits_for_the_tables() {
    use crate::store::follow::Follower;
    use crate::store::Location;
    let Some(t) = TestDb::new() else { return };
    let mut fo = Follower::at(&Location::Postgres(t.url.clone()));
    assert_eq!(fo.poll(&mut |_| panic!("no rows yet")).unwrap().records, 0);
    PgLedger::open(&t.url)
        .unwrap()
        .insert(&records(1, 3))
        .unwrap();
    assert_eq!(fo.poll(&mut |_| {}).unwrap().records, 3);
}

/// A record the server refuses while it is up (a time before 4713 BC: SQLSTATE 22008) does not
/// hold back its batch: the batch is split until the record is alone, the others land, the
/// record goes to the owner-only dead-letter file and is counted; nothing is spooled.
#[test]
fn refused_record_goes_to_the_dead_letter_file_and_the_rest_lands() {
    use crate::store::{Location, Shared};
    let Some(t) = TestDb::new() else { return };
    let dir = std::env::temp_dir().join(format!("llmledger-dead-{:016x}", rand_u64()));
    let shared = Shared::new(&Location::Postgres(t.url.clone()));
    let mut sink = PgSink::open_in(&t.url, &shared, dir.clone()).unwrap();
    let mut batch = records(1, 100);
    let ancient = chrono::NaiveDate::from_ymd_opt(-10_000, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    batch[37].time = ancient;
    batch[80].time = ancient;
    assert_eq!(sink.write(&batch, &shared).unwrap(), 100);
    assert!(!sink.pending(), "nothing spooled");
    let stored = read_all(&t.url);
    assert_eq!(stored.len(), 98);
    assert!(stored.iter().all(|r| r.run_id != 38 && r.run_id != 81));
    assert_eq!(
        shared.rejected.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let path = sink.dead_letter_path();
    let text = std::fs::read_to_string(&path).unwrap();
    // (Read as JSON: the JSONL reader refuses a year before 0, the reason the server did.)
    let dead: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["run_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        dead,
        vec![
            crate::ledger::uuid_string(38),
            crate::ledger::uuid_string(81)
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let msgs = shared.messages.lock().join("\n");
    assert!(msgs.contains("SQLSTATE 22008"), "{msgs}");
    // A later batch goes straight in.
    assert_eq!(sink.write(&records(200, 10), &shared).unwrap(), 10);
    assert_eq!(read_all(&t.url).len(), 108);
    drop(sink);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Text with NUL characters (which SQLite stores and PostgreSQL's text and jsonb refuse)
/// lands, each NUL stored as U+FFFD, by binary COPY, text COPY and INSERT.
#[test]
fn nul_in_text_lands_as_the_replacement_character() {
    let Some(t) = TestDb::new() else { return };
    let mut db = PgLedger::open(&t.url).unwrap();
    let nul = |base: u128| {
        let mut v = records(base, 2);
        for r in &mut v {
            r.model = Some("gpt\u{0}4o".into());
            r.tags = vec!["a\u{0}b".into()];
            r.attribution = vec![("user\u{0}id".into(), "u\u{0}1".into())];
        }
        v
    };
    assert_eq!(db.insert_copy(&nul(1), Copy::Binary).unwrap(), 2);
    assert_eq!(db.insert_copy(&nul(10), Copy::Text).unwrap(), 2);
    assert_eq!(db.insert_values(&nul(20)[..1]).unwrap(), 1);
    let got = read_all(&t.url);
    assert_eq!(got.len(), 5);
    for r in got {
        assert_eq!(r.model.as_deref(), Some("gpt\u{fffd}4o"));
        assert_eq!(r.tags, vec!["a\u{fffd}b".to_string()]);
        assert_eq!(&*r.attribution[0].0, "user\u{fffd}id");
        assert_eq!(r.attribution[0].1, "u\u{fffd}1");
    }
}

/// The report groups in the database: over 3,000 calls it fetches one row per group and the
/// totals' row, not 3,000 (the same count of rows read by `read_all` shows what the counter
/// counts).
#[test]
fn report_fetches_one_row_per_group() {
    use crate::store::{read, Location};
    let Some(t) = TestDb::new() else { return };
    let mut all = records(1, 3000);
    for (i, r) in all.iter_mut().enumerate() {
        r.model = Some(format!("model-{}", i % 5).into());
        r.attribution = vec![("user_id".into(), format!("u{}", i % 7))];
    }
    let mut db = PgLedger::open(&t.url).unwrap();
    for chunk in all.chunks(1000) {
        db.insert(chunk).unwrap();
    }
    let at = Location::Postgres(t.url.clone());
    for (by, groups) in [(vec!["model"], 5u64), (vec!["model", "user_id"], 35)] {
        let by: Vec<String> = by.into_iter().map(String::from).collect();
        let before = rows_fetched_on_this_thread();
        let rep = read::report(&at, &by, &TimeRange::default(), &mut |_| {}).unwrap();
        let fetched = rows_fetched_on_this_thread() - before;
        assert_eq!(rep.rows.len() as u64, groups);
        assert_eq!(
            rep.totals.successful_requests + rep.totals.failed_requests,
            3000
        );
        assert_eq!(fetched, groups + 1, "{by:?}");
    }
    let before = rows_fetched_on_this_thread();
    assert_eq!(read_all(&t.url).len(), 3000);
    assert_eq!(rows_fetched_on_this_thread() - before, 3000);
}

#[test]
fn sslmode_decides_whether_the_session_is_encrypted() {
    let Some(t) = TestDb::new() else { return };
    let url = |mode: &str| {
        // The test database has no password: its shown URL is the URL.
        PgUrl::parse(&format!("{}?sslmode={mode}", t.url.redacted())).unwrap()
    };
    let ssl_of = |u: &PgUrl| -> bool {
        let mut c = u.connect().unwrap();
        c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let server_ssl: String = Client::connect(&t.admin, NoTls)
        .unwrap()
        .query_one("SHOW ssl", &[])
        .unwrap()
        .get(0);
    assert!(!ssl_of(&url("disable")));
    if server_ssl == "on" {
        for mode in ["allow", "prefer", "require"] {
            // allow: plain first, and the server takes it.
            assert_eq!(ssl_of(&url(mode)), mode != "allow", "sslmode={mode}");
        }
        assert!(
            ssl_of(&t.url),
            "the default (prefer) uses TLS when the server offers it"
        );
    } else {
        assert!(!ssl_of(&url("prefer")));
        let e = url("require").connect().err().unwrap();
        assert!(
            e.refused() && e.to_string().contains("does not support TLS"),
            "{e}"
        );
    }
}

/// Writes records 10-12 while the server holds them up: the write returns after `bound` (and
/// well before three times it), its batch spooled, the logger saying `says`.
fn held_up_write(
    sink: &mut PgSink,
    shared: &crate::store::Shared,
    bound: std::time::Duration,
    says: &str,
) {
    let started = Instant::now();
    assert_eq!(sink.write(&records(10, 3), shared).unwrap(), 3);
    let waited = started.elapsed();
    assert!(waited >= bound && waited < bound * 3, "waited {waited:?}");
    assert!(sink.pending(), "the held-up batch is spooled");
    let msgs = shared.messages.lock().join("\n");
    assert!(msgs.contains(says), "{msgs}");
}

/// A batch held up by a lock on the ledger's table (a migration, `LOCK TABLE`) fails after
/// the writer's lock timeout and is spooled, instead of waiting as long as the lock is held
/// (with `durability="sync"` the calls would wait too); the spool lands once the lock is gone.
/// The server's own bound set in the URL's `options` is kept.
#[test]
fn a_batch_held_up_by_a_lock_is_spooled_in_bounded_time() {
    use crate::store::{Location, Shared};
    let Some(t) = TestDb::new() else { return };
    let dir = std::env::temp_dir().join(format!("llmledger-lock-{:016x}", rand_u64()));
    let shared = Shared::new(&Location::Postgres(t.url.clone()));
    let mut sink = PgSink::open_in(&t.url, &shared, dir.clone()).unwrap();
    assert_eq!(sink.write(&records(1, 5), &shared).unwrap(), 5);
    // The lock is held by another session until released, for 15 s at most (so that without
    // the bound the write below takes that long and the test fails instead of hanging).
    let (held_tx, held) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let text = url_text(&t);
    let locker = std::thread::spawn(move || {
        let mut c = Client::connect(&text, NoTls).unwrap();
        let mut tx = c.transaction().unwrap();
        tx.batch_execute("LOCK TABLE llmledger_calls IN ACCESS EXCLUSIVE MODE")
            .unwrap();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(std::time::Duration::from_secs(15));
        tx.rollback().unwrap();
    });
    held.recv().unwrap();
    held_up_write(&mut sink, &shared, WRITER_LOCK_TIMEOUT, "lock timeout");
    release.send(()).unwrap();
    locker.join().unwrap();
    sink.finish(&shared);
    assert!(!sink.pending(), "the spool landed");
    let ids: Vec<u128> = read_all(&t.url).iter().map(|r| r.run_id).collect();
    assert_eq!(ids.len(), 8, "{ids:?}");
    drop(sink);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_writer_keeps_a_bound_the_url_sets() {
    let Some(t) = TestDb::new() else { return };
    let url = PgUrl::parse(&format!(
        "{}?options=-c%20statement_timeout%3D1234",
        url_text(&t)
    ))
    .unwrap();
    let mut db = PgLedger::open_writer(&url).unwrap();
    let get = |db: &mut PgLedger, name: &str| -> String {
        db.client
            .query_one(&format!("SHOW {name}"), &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(get(&mut db, "statement_timeout"), "1234ms");
    assert_eq!(get(&mut db, "lock_timeout"), "3s");
    let mut plain = PgLedger::open_writer(&t.url).unwrap();
    assert_eq!(get(&mut plain, "statement_timeout"), "10s");
    // A reader is not bounded (reports run long queries).
    let mut reader = PgLedger::open_read(&t.url).unwrap();
    assert_eq!(get(&mut reader, "statement_timeout"), "0");
}

/// A TCP proxy in front of the test server that stops forwarding, both ways, while `stall`
/// is set: a server whose host still acknowledges TCP but which never answers (a stopped
/// process, a proxy that hangs), where neither the server's timeouts nor TCP's fire.
struct StallProxy {
    port: u16,
    stall: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn stall_proxy(upstream: String) -> StallProxy {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stall = Arc::new(AtomicBool::new(false));
    let flag = stall.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let pairs = [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ];
            for (mut from, mut to) in pairs {
                let flag = flag.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        while flag.load(Ordering::Relaxed) {
                            std::thread::sleep(std::time::Duration::from_millis(10));
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    StallProxy { port, stall }
}

/// A server that stops answering (behind a proxy that stops forwarding): the batch waiting
/// for it is given up after the deadline and spooled, later batches are spooled at once,
/// and once the server answers again everything lands exactly once (the given-up batch may
/// have been committed by the abandoned connection: its run ids are skipped).
#[test]
fn a_server_that_stops_answering_holds_up_no_write() {
    use crate::store::{Location, Shared};
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    let Some(t) = TestDb::new() else { return };
    let text = url_text(&t);
    let (scheme_user, rest) = text.split_once('@').unwrap();
    let (upstream, db) = rest.split_once('/').unwrap();
    let proxy = stall_proxy(upstream.to_string());
    let url = PgUrl::parse(&format!("{scheme_user}@127.0.0.1:{}/{db}", proxy.port)).unwrap();
    let dir = std::env::temp_dir().join(format!("llmledger-stall-{:016x}", rand_u64()));
    let shared = Shared::new(&Location::Postgres(url.clone()));
    let deadline = Duration::from_secs(2);
    let mut sink = PgSink::open_with(&url, &shared, dir.clone(), deadline).unwrap();
    assert_eq!(sink.write(&records(1, 5), &shared).unwrap(), 5);
    assert!(!sink.pending());

    proxy.stall.store(true, Ordering::Relaxed);
    // Without the deadline the write below would wait for ever: the stall ends by itself
    // after 20 s, so that the test then fails instead of hanging.
    let flag = proxy.stall.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        flag.store(false, Ordering::Relaxed);
    });
    held_up_write(&mut sink, &shared, deadline, "no answer within 2 s");
    // While the given-up connection waits, later batches go to the spool at once.
    let started = Instant::now();
    assert_eq!(sink.write(&records(20, 2), &shared).unwrap(), 2);
    sink.retry(&shared);
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());

    proxy.stall.store(false, Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(20);
    while sink.pending() && Instant::now() < until {
        sink.finish(&shared);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!sink.pending(), "the spool landed once the server answered");
    let mut ids: Vec<u128> = read_all(&t.url).iter().map(|r| r.run_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 10, 11, 12, 20, 21]);
    drop(sink);
    let _ = std::fs::remove_dir_all(&dir);
}
