//! The SQLite ledger: one `calls` row per call, a `meta` table with the schema version, WAL so
//! several processes can write one file, busy timeouts and retries for the moments they meet.
//!
//! Money is stored twice: as exact decimal strings (`cost`, `cost_input`, ... — the truth) and
//! as `cost_pico`, the total in integer pico-dollars (1e-12 USD), for fast exact `SUM`s. Every
//! bundled price has at most 5 decimals per 1M tokens, so a call's cost has at most 11
//! decimals and is a whole number of pico-dollars. A cost that is not (a user's price with more
//! decimals) or does not fit an `i64` gets `cost_pico = NULL`, and reports over it are summed
//! from the decimal strings instead: never rounded.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::catalog::CostBreakdown;
use crate::error::{Error, Result};
use crate::ledger::{uuid_string, CallRecord};
use crate::money::Decimal;
use crate::usage::Usage;

use super::record::{
    money_text, parse_time, parse_usage_source, parse_uuid, time_text, RequestColumns,
};
use super::TimeRange;

/// Schema steps, in order: step `i` brings a ledger from version `i` to version `i + 1`.
/// Steps only add (tables, columns, indexes): nothing stored is ever rewritten.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        run_id TEXT NOT NULL UNIQUE,
        parent_run_id TEXT,
        root_run_id TEXT NOT NULL,
        root_run_name TEXT,
        model TEXT,
        provider TEXT,
        attribution TEXT NOT NULL DEFAULT '{}',
        tags TEXT NOT NULL DEFAULT '[]',
        input_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens INTEGER NOT NULL DEFAULT 0,
        input_audio_tokens INTEGER NOT NULL DEFAULT 0,
        output_audio_tokens INTEGER NOT NULL DEFAULT 0,
        usage_source TEXT NOT NULL,
        estimated_by TEXT,
        service_tier TEXT,
        cost TEXT,
        cost_input TEXT,
        cost_cache_read TEXT,
        cost_cache_write TEXT,
        cost_output TEXT,
        cost_reasoning TEXT,
        cost_audio TEXT,
        cost_pico INTEGER,
        unpriced_reason TEXT,
        price_entry TEXT,
        catalog_version TEXT,
        latency_s REAL,
        streamed_chunks INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX calls_time ON calls(time);",
    // 2: the model the request asked for (per-model budgets count by it).
    "ALTER TABLE calls ADD COLUMN requested_model TEXT;",
    // 3: where usage details came from, and components priced by a fallback.
    "ALTER TABLE calls ADD COLUMN usage_notes TEXT;
    ALTER TABLE calls ADD COLUMN price_notes TEXT;",
    // 4: what the advisor reads of a request: its output cap and its fingerprints (keyed
    // hashes, never text; see docs/ledger.md).
    "ALTER TABLE calls ADD COLUMN max_tokens INTEGER;
    ALTER TABLE calls ADD COLUMN request_hash TEXT;
    ALTER TABLE calls ADD COLUMN prompt_prefixes TEXT;
    ALTER TABLE calls ADD COLUMN prompt_bytes INTEGER;",
];

/// The schema version this llmledger writes and reads.
#[allow(clippy::cast_possible_truncation)] // a handful of steps
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long one statement waits for another process's lock before `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Tries of a write transaction that met `SQLITE_BUSY` despite the timeout.
const BUSY_TRIES: u32 = 4;

/// The money unit of `cost_pico`: 10^-12 USD.
pub const PICO_SCALE: u32 = 12;

const INSERT: &str = "INSERT OR IGNORE INTO calls (time, run_id, parent_run_id, root_run_id, \
    root_run_name, model, provider, attribution, tags, input_tokens, cache_read_tokens, \
    cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, \
    input_audio_tokens, output_audio_tokens, usage_source, service_tier, cost, cost_input, \
    cost_cache_read, cost_cache_write, cost_output, cost_reasoning, cost_audio, cost_pico, \
    unpriced_reason, price_entry, catalog_version, latency_s, streamed_chunks, error, \
    estimated_by, requested_model, usage_notes, price_notes, max_tokens, request_hash, \
    prompt_prefixes, prompt_bytes) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
    ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38, \
    ?39, ?40, ?41)";

/// Every column `read_row` reads, then the row id (a reader's cursor).
pub(super) const SELECT: &str =
    "SELECT time, run_id, parent_run_id, root_run_id, root_run_name, model, \
    provider, attribution, tags, input_tokens, cache_read_tokens, cache_write_tokens, \
    cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens, \
    output_audio_tokens, usage_source, service_tier, cost, cost_input, cost_cache_read, \
    cost_cache_write, cost_output, cost_reasoning, cost_audio, unpriced_reason, price_entry, \
    catalog_version, latency_s, streamed_chunks, error, estimated_by, requested_model, \
    usage_notes, price_notes, max_tokens, request_hash, prompt_prefixes, prompt_bytes, c.id \
    FROM calls c";

/// The index of `c.id` in [`SELECT`]'s columns.
pub(super) const SELECT_ID: usize = 40;

/// True when `path` starts with SQLite's file header.
pub fn has_sqlite_header(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

/// A cost in whole pico-dollars, when it is one and fits.
pub fn pico(d: Decimal) -> Option<i64> {
    let n = d.normalize();
    let scale = n.scale();
    if scale > PICO_SCALE {
        return None;
    }
    let factor = 10i128.checked_pow(PICO_SCALE - scale)?;
    i64::try_from(n.mantissa().checked_mul(factor)?).ok()
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Runs `f` again (with a growing pause) while it fails with `SQLITE_BUSY`.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut pause = Duration::from_millis(20);
    let mut tries = 1;
    loop {
        match f() {
            Err(e) if is_busy(&e) && tries < BUSY_TRIES => {
                std::thread::sleep(pause);
                pause *= 4;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// One connection to a SQLite ledger.
pub struct SqliteLedger {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteLedger {
    pub(super) fn err(path: &Path, message: impl std::fmt::Display) -> Error {
        Error::Ledger {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }

    /// The schema version stored in the file (0: a new, empty database), refusing files that
    /// are not llmledger ledgers or that a newer llmledger wrote.
    fn stored_version(conn: &Connection, path: &Path) -> Result<u32> {
        let e = |m: rusqlite::Error| Self::err(path, m);
        // One statement, so one snapshot: read as two, another process's migration could
        // commit in between (no 'meta' table, then its tables) and a new ledger be refused.
        let (has_meta, tables): (i64, i64) = conn
            .query_row(
                "SELECT count(CASE WHEN name = 'meta' THEN 1 END), count(*) \
                 FROM sqlite_master WHERE type = 'table'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(e)?;
        if has_meta == 0 {
            if tables > 0 {
                return Err(Self::err(
                    path,
                    "is a SQLite database but not an llmledger ledger (no 'meta' table); \
                     refusing to write into it",
                ));
            }
            return Ok(0);
        }
        let v: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        let v = v.unwrap_or_else(|| "0".into());
        let version: u32 = v
            .parse()
            .map_err(|_| Self::err(path, format!("schema_version '{v}' is not a number")))?;
        if version > SCHEMA_VERSION {
            return Err(Self::err(
                path,
                format!(
                    "was written by a newer llmledger (ledger schema version {version}; this \
                     llmledger {} reads versions up to {SCHEMA_VERSION}). Upgrade llmledger to \
                     use it; the file was not modified",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
        Ok(version)
    }

    fn connect(path: &Path, flags: OpenFlags) -> Result<Connection> {
        if path.metadata().is_ok_and(|m| m.len() > 0) && !has_sqlite_header(path) {
            return Err(Self::err(path, "is not a SQLite database"));
        }
        let conn = Connection::open_with_flags(path, flags).map_err(|e| Self::err(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| Self::err(path, e))?;
        Ok(conn)
    }

    /// Opens (creating or migrating) a ledger for writing. `sync`: every commit is flushed to
    /// the disk (`synchronous = FULL`); otherwise WAL's `NORMAL` (a commit survives a crash of
    /// the process, not of the machine).
    pub fn open(path: &Path, sync: bool) -> Result<Self> {
        // A new ledger is created readable by its owner only (it names users and what they
        // spent); SQLite gives its -wal and -shm files the database file's mode.
        if !path.exists() {
            drop(super::private::open_private(path).map_err(|e| Self::err(path, e))?);
        }
        let conn = Self::connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let e = |m: rusqlite::Error| Self::err(path, m);
        // Refuse a newer or foreign file before changing anything in it (WAL is persistent).
        Self::stored_version(&conn, path)?;
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL")).map_err(e)?;
        conn.pragma_update(None, "synchronous", if sync { "FULL" } else { "NORMAL" })
            .map_err(e)?;
        conn.pragma_update(None, "cache_size", -32_768).map_err(e)?;
        let mut ledger = SqliteLedger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    /// Opens an existing ledger for reading (migrating an older one first).
    pub fn open_read(path: &Path) -> Result<Self> {
        Self::open_read_when_ready(path)?
            .ok_or_else(|| Self::err(path, "is an empty database, not an llmledger ledger"))
    }

    /// [`Self::open_read`], or `None` while the file is still a new, empty database: its
    /// creator (another process) has not written the schema yet, and a follower waits.
    pub fn open_read_when_ready(path: &Path) -> Result<Option<Self>> {
        if !path.exists() {
            return Err(Self::err(path, "no such file"));
        }
        let conn = Self::connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let version = Self::stored_version(&conn, path)?;
        if version == 0 {
            return Ok(None);
        }
        if version < SCHEMA_VERSION {
            drop(conn);
            return Self::open(path, false).map(Some);
        }
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(|m| Self::err(path, m))?;
        Ok(Some(SqliteLedger {
            conn,
            path: path.to_path_buf(),
        }))
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        retry_busy(|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Another process may have migrated meanwhile: read the version inside the lock.
            let has_meta: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get(0),
            )?;
            let version: u32 = if has_meta > 0 {
                tx.query_row(
                    "SELECT value FROM meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
            } else {
                0
            };
            if version >= SCHEMA_VERSION {
                // Up to date, or a newer llmledger got here first (refused below).
                return Ok(());
            }
            if has_meta == 0 {
                tx.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")?;
                tx.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('created_by', ?1)",
                    [concat!("llmledger ", env!("CARGO_PKG_VERSION"))],
                )?;
            }
            for step in &MIGRATIONS[version as usize..] {
                tx.execute_batch(step)?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION.to_string()],
            )?;
            tx.commit()
        })
        .map_err(|e| Self::err(&path, e))?;
        Self::stored_version(&self.conn, &path).map(|_| ())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open ledger.
    pub fn schema_version(&self) -> Result<u32> {
        Self::stored_version(&self.conn, &self.path)
    }

    /// Appends records in one transaction (retried while another process holds the lock).
    /// Records whose run id is already stored are skipped. Returns how many were added.
    pub fn insert(&mut self, records: &[CallRecord]) -> Result<usize> {
        let path = self.path.clone();
        retry_busy(|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut added = 0;
            {
                let mut stmt = tx.prepare_cached(INSERT)?;
                for r in records {
                    added += insert_one(&mut stmt, r)?;
                }
            }
            tx.commit()?;
            Ok(added)
        })
        .map_err(|e| Self::err(&path, e))
    }

    /// Records in `range`, in time order, each handed to `f` (which returns false to stop).
    pub fn for_each(&self, range: &TimeRange, f: &mut dyn FnMut(CallRecord) -> bool) -> Result<()> {
        let e = |m: rusqlite::Error| Self::err(&self.path, m);
        let (cond, args) = range_condition(range);
        let sql = format!("{SELECT}{cond} ORDER BY c.time, c.id");
        let mut stmt = self.conn.prepare(&sql).map_err(e)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(e)?;
        while let Some(row) = rows.next().map_err(e)? {
            let rec = read_row(row).map_err(|m| Self::err(&self.path, m))?;
            if !f(rec) {
                break;
            }
        }
        Ok(())
    }

    /// Calls stored.
    pub fn count(&self, range: &TimeRange) -> Result<u64> {
        let (cond, args) = range_condition(range);
        let n: i64 = self
            .conn
            .query_row(
                &format!("SELECT count(*) FROM calls c{cond}"),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )
            .map_err(|m| Self::err(&self.path, m))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

pub(super) fn range_condition(range: &TimeRange) -> (String, Vec<String>) {
    range_condition_from(range, 0)
}

/// A `WHERE` clause over the time index, its parameters numbered after `first` others.
pub(super) fn range_condition_from(range: &TimeRange, first: usize) -> (String, Vec<String>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    if let Some(s) = range.since {
        args.push(time_text(&s));
        conds.push(format!("c.time >= ?{}", first + args.len()));
    }
    if let Some(u) = range.until {
        args.push(time_text(&u));
        conds.push(format!("c.time < ?{}", first + args.len()));
    }
    if conds.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", conds.join(" AND ")), args)
    }
}

fn insert_one(stmt: &mut rusqlite::CachedStatement<'_>, r: &CallRecord) -> rusqlite::Result<usize> {
    let attribution: serde_json::Map<String, serde_json::Value> = r
        .attribution
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect();
    let c = r.cost.as_ref();
    let m = |f: fn(&CostBreakdown) -> Decimal| c.map(|c| money_text(f(c)));
    let u = &r.usage;
    let req = RequestColumns::of(&r.request);
    stmt.execute(params![
        time_text(&r.time),
        uuid_string(r.run_id),
        r.parent_run_id.map(uuid_string),
        uuid_string(r.root_run_id),
        r.root_run_name.as_deref(),
        r.model.as_deref(),
        r.provider.as_deref(),
        serde_json::Value::Object(attribution).to_string(),
        serde_json::to_string(&r.tags).unwrap_or_else(|_| "[]".into()),
        clamp(u.input),
        clamp(u.cache_read),
        clamp(u.cache_write),
        clamp(u.cache_write_1h),
        clamp(u.output),
        clamp(u.reasoning),
        clamp(u.input_audio),
        clamp(u.output_audio),
        r.usage_source.as_str(),
        r.service_tier.as_deref(),
        m(|c| c.total),
        m(|c| c.input),
        m(|c| c.cache_read),
        m(|c| c.cache_write),
        m(|c| c.output),
        m(|c| c.reasoning),
        m(|c| c.audio),
        c.and_then(|c| pico(c.total)),
        r.unpriced_reason.as_deref(),
        r.price_entry.as_deref(),
        r.catalog_version.as_deref(),
        r.latency,
        r.chunks,
        r.error.as_deref(),
        r.estimated_by.as_deref(),
        r.requested_model.as_deref(),
        r.usage_notes.as_deref(),
        r.price_notes.as_deref(),
        req.max_tokens.map(clamp),
        req.request_hash,
        req.prompt_prefixes,
        req.prompt_bytes.map(clamp),
    ])
}

/// A `SELECT` row as a record.
pub(super) fn read_row(row: &rusqlite::Row<'_>) -> std::result::Result<CallRecord, String> {
    let s = |i: usize| -> std::result::Result<Option<String>, String> {
        row.get::<_, Option<String>>(i).map_err(|e| e.to_string())
    };
    let n = |i: usize| -> std::result::Result<u64, String> {
        row.get::<_, Option<i64>>(i)
            .map(|v| u64::try_from(v.unwrap_or(0)).unwrap_or(0))
            .map_err(|e| e.to_string())
    };
    let d = |i: usize| -> std::result::Result<Option<Decimal>, String> {
        s(i)?
            .map(|t| {
                Decimal::from_str(&t)
                    .map_err(|_| format!("'{t}' is not a decimal amount"))
                    .and_then(crate::money::call_cost)
            })
            .transpose()
    };
    let arc = |i: usize| -> std::result::Result<Option<Arc<str>>, String> {
        Ok(s(i)?.map(|t| Arc::from(t.as_str())))
    };
    let run_id = parse_uuid(&s(1)?.unwrap_or_default(), "run_id")?;
    let attribution: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&s(7)?.unwrap_or_else(|| "{}".into())).map_err(|e| e.to_string())?;
    let cost = match d(19)? {
        None => None,
        Some(total) => Some(CostBreakdown {
            total,
            input: d(20)?.unwrap_or_default(),
            cache_read: d(21)?.unwrap_or_default(),
            cache_write: d(22)?.unwrap_or_default(),
            output: d(23)?.unwrap_or_default(),
            reasoning: d(24)?.unwrap_or_default(),
            audio: d(25)?.unwrap_or_default(),
        }),
    };
    Ok(CallRecord {
        time: parse_time(&s(0)?.unwrap_or_default())?,
        run_id,
        parent_run_id: s(2)?.map(|p| parse_uuid(&p, "parent_run_id")).transpose()?,
        root_run_id: match s(3)? {
            Some(r) => parse_uuid(&r, "root_run_id")?,
            None => run_id,
        },
        root_run_name: arc(4)?,
        model: arc(5)?,
        requested_model: arc(33)?,
        provider: arc(6)?,
        attribution: attribution
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (Arc::from(k.as_str()), v)
            })
            .collect(),
        tags: serde_json::from_str(&s(8)?.unwrap_or_else(|| "[]".into()))
            .map_err(|e| e.to_string())?,
        usage: Usage {
            input: n(9)?,
            cache_read: n(10)?,
            cache_write: n(11)?,
            cache_write_1h: n(12)?,
            output: n(13)?,
            reasoning: n(14)?,
            input_audio: n(15)?,
            output_audio: n(16)?,
        },
        usage_source: parse_usage_source(&s(17)?.unwrap_or_else(|| "none".into()))?,
        estimated_by: s(32)?,
        service_tier: s(18)?,
        cost,
        unpriced_reason: s(26)?,
        price_entry: arc(27)?,
        catalog_version: arc(28)?,
        latency: row.get::<_, Option<f64>>(29).map_err(|e| e.to_string())?,
        chunks: u32::try_from(n(30)?).unwrap_or(u32::MAX),
        error: s(31)?,
        usage_notes: s(34)?,
        price_notes: s(35)?,
        request: RequestColumns {
            max_tokens: row
                .get::<_, Option<i64>>(36)
                .map_err(|e| e.to_string())?
                .and_then(|v| u64::try_from(v).ok()),
            request_hash: s(37)?,
            prompt_prefixes: s(38)?,
            prompt_bytes: row
                .get::<_, Option<i64>>(39)
                .map_err(|e| e.to_string())?
                .and_then(|v| u64::try_from(v).ok()),
        }
        .facts(),
    })
}
