//! The PostgreSQL ledger: the SQLite ledger's records in a shared database, for applications
//! on many hosts. One `llmledger_calls` row per call (unique by run id, so a retried batch
//! never duplicates a call), exact money as `numeric` plus the integer pico-dollar column,
//! a `llmledger_schema` table with one row per applied migration. Migrations only add, and
//! run under a PostgreSQL advisory lock so two hosts starting at once do not race.
//!
//! Client: the `postgres` crate (sync, maintained with `tokio-postgres` by the rust-postgres
//! project): the writer thread is a plain thread, so a blocking client fits it, and it speaks
//! `COPY`, which batches use. A batch is one `COPY ... FROM STDIN (FORMAT binary)` straight into
//! the ledger; when one of its run ids is already stored (a retry), that COPY fails whole and
//! the batch goes through a temporary staging table and `INSERT ... SELECT ... ON CONFLICT DO
//! NOTHING` instead. One record (`durability="sync"`) is a plain `INSERT ... ON CONFLICT DO
//! NOTHING`. Multi-row `INSERT`s were measured too ([`PgLedger::insert_values`]): several
//! times slower than COPY (docs/hosts.md, "Speed").
//!
//! Reading ([`PgLedger::for_each_page`]): rows come back as the JSONL ledger's JSON objects,
//! built by the database (`json_build_object`, money as text), and are parsed by the JSONL
//! reader's own parser, so both backends read a record the same way. Reports group in the
//! database ([`scan`]).

mod columns;
mod describe;
mod passfile;
mod scan;
pub mod sink;
pub mod tls;
pub mod url;

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use postgres::Client;

use crate::error::Result;
use crate::ledger::CallRecord;

use super::record::parse_json_line;
use super::TimeRange;
use columns::{Row, COLUMNS};

pub use describe::describe;
pub use sink::PgSink;
pub use tls::{ConnectError, SslMode};
pub use url::PgUrl;

/// Schema steps, in order: step `i` brings a database from version `i` to `i + 1`. Steps only
/// add (tables, columns, indexes): nothing stored is ever rewritten.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema (the SQLite ledger's version 2 columns, plus latency_us).
    "CREATE TABLE llmledger_calls (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        time timestamptz NOT NULL,
        run_id uuid NOT NULL UNIQUE,
        parent_run_id uuid,
        root_run_id uuid NOT NULL,
        root_run_name text,
        model text,
        requested_model text,
        provider text,
        attribution jsonb NOT NULL DEFAULT '{}',
        tags jsonb NOT NULL DEFAULT '[]',
        input_tokens bigint NOT NULL DEFAULT 0,
        cache_read_tokens bigint NOT NULL DEFAULT 0,
        cache_write_tokens bigint NOT NULL DEFAULT 0,
        cache_write_1h_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        reasoning_tokens bigint NOT NULL DEFAULT 0,
        input_audio_tokens bigint NOT NULL DEFAULT 0,
        output_audio_tokens bigint NOT NULL DEFAULT 0,
        usage_source text NOT NULL,
        estimated_by text,
        service_tier text,
        cost numeric,
        cost_input numeric,
        cost_cache_read numeric,
        cost_cache_write numeric,
        cost_output numeric,
        cost_reasoning numeric,
        cost_audio numeric,
        cost_pico bigint,
        unpriced_reason text,
        price_entry text,
        catalog_version text,
        latency_s double precision,
        latency_us bigint,
        streamed_chunks bigint NOT NULL DEFAULT 0,
        error text
    );
    CREATE INDEX llmledger_calls_time ON llmledger_calls (time, id);
    CREATE INDEX llmledger_calls_model_time ON llmledger_calls (model, time);
    CREATE INDEX llmledger_calls_root_run ON llmledger_calls (root_run_id);",
    // 2: where usage details came from, and components priced by a fallback (SQLite's 3).
    "ALTER TABLE llmledger_calls ADD COLUMN usage_notes text;
    ALTER TABLE llmledger_calls ADD COLUMN price_notes text;",
    // 3: what the advisor reads of a request (SQLite's 4), and the ledger's fingerprint
    // secret, shared by every host that writes it.
    "ALTER TABLE llmledger_calls ADD COLUMN max_tokens bigint;
    ALTER TABLE llmledger_calls ADD COLUMN request_hash text;
    ALTER TABLE llmledger_calls ADD COLUMN prompt_prefixes text;
    ALTER TABLE llmledger_calls ADD COLUMN prompt_bytes bigint;
    CREATE TABLE llmledger_secret (name text PRIMARY KEY, value text NOT NULL);",
];

/// The schema version of the PostgreSQL ledger this llmledger writes and reads.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)] // a handful of steps
pub const PG_SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

thread_local! {
    static FETCHED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Rows that queries of the ledger's records and reports fetched from the server on this
/// thread so far: what shows that a report's grouping runs in the database (it fetches one row
/// per group plus the totals' row, not one per call).
pub fn rows_fetched_on_this_thread() -> u64 {
    FETCHED.with(std::cell::Cell::get)
}

fn fetched(n: usize) {
    FETCHED.with(|c| c.set(c.get() + n as u64));
}

/// The advisory lock migrations hold (one number for every llmledger: "llmledgr").
const MIGRATION_LOCK: i64 = 0x6c6c_6d6c_6564_6772;

/// A row as the JSONL ledger's JSON object (what [`parse_json_line`] reads), as text.
const ROW_JSON: &str = "json_build_object(
    'time', c.time, 'run_id', c.run_id, 'parent_run_id', c.parent_run_id,
    'root_run_id', c.root_run_id, 'root_run_name', c.root_run_name, 'model', c.model,
    'requested_model', c.requested_model, 'provider', c.provider,
    'attribution', c.attribution, 'tags', c.tags,
    'input_tokens', c.input_tokens, 'cache_read_tokens', c.cache_read_tokens,
    'cache_write_tokens', c.cache_write_tokens, 'cache_write_1h_tokens', c.cache_write_1h_tokens,
    'output_tokens', c.output_tokens, 'reasoning_tokens', c.reasoning_tokens,
    'input_audio_tokens', c.input_audio_tokens, 'output_audio_tokens', c.output_audio_tokens,
    'usage_source', c.usage_source, 'estimated_by', c.estimated_by,
    'service_tier', c.service_tier, 'cost', c.cost::text,
    'cost_components', CASE WHEN c.cost IS NULL THEN NULL ELSE json_build_object(
        'input', c.cost_input::text, 'cache_read', c.cost_cache_read::text,
        'cache_write', c.cost_cache_write::text, 'output', c.cost_output::text,
        'reasoning', c.cost_reasoning::text, 'audio', c.cost_audio::text) END,
    'unpriced_reason', c.unpriced_reason, 'price_entry', c.price_entry,
    'catalog_version', c.catalog_version, 'latency_s', c.latency_s,
    'streamed_chunks', c.streamed_chunks, 'error', c.error,
    'usage_notes', c.usage_notes, 'price_notes', c.price_notes,
    'max_tokens', c.max_tokens, 'request_hash', c.request_hash,
    'prompt_prefixes', c.prompt_prefixes, 'prompt_bytes', c.prompt_bytes)::text";

/// One connection to a PostgreSQL ledger.
pub struct PgLedger {
    client: Client,
    url: PgUrl,
    /// The staging table of batches exists in this session.
    staging: bool,
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLedger")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The schema version stored (0: no llmledger tables yet).
fn stored_version(client: &mut Client) -> std::result::Result<i32, postgres::Error> {
    let has: bool = client
        .query_one("SELECT to_regclass('llmledger_schema') IS NOT NULL", &[])?
        .get(0);
    if !has {
        return Ok(0);
    }
    Ok(client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM llmledger_schema",
            &[],
        )?
        .get(0))
}

/// How long a writer's statement waits for a lock on the ledger's tables before it fails and
/// its batch is spooled (see [`PgLedger::open_writer`]).
pub const WRITER_LOCK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a writer's statement may run (a batch of 4,096 records takes well under a second).
pub const WRITER_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

impl PgLedger {
    /// Connects, creating or migrating the tables. A connection failure keeps its
    /// [`ConnectError`] (the sink tells an unreachable server from a refusal).
    pub fn open(url: &PgUrl) -> std::result::Result<Self, OpenError> {
        let client = url.connect().map_err(OpenError::Connect)?;
        let mut ledger = PgLedger {
            client,
            url: url.clone(),
            staging: false,
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    /// [`PgLedger::open`] for the writer: its session then bounds how long a statement may
    /// wait for a lock ([`WRITER_LOCK_TIMEOUT`]) or run ([`WRITER_STATEMENT_TIMEOUT`]), unless
    /// the URL's `options` set them. A batch held up by a lock on the ledger's tables (a
    /// migration, `LOCK TABLE`, `VACUUM FULL`) or by a stuck server process then fails in
    /// bounded time and is spooled, instead of holding up the writer (and, with
    /// `durability="sync"`, the calls) for as long as the wait lasts. Migrations (which wait
    /// for each other on an advisory lock) run before the bound is set.
    pub fn open_writer(url: &PgUrl) -> std::result::Result<Self, OpenError> {
        let mut ledger = PgLedger::open(url)?;
        let bound = |name: &str, d: Duration| {
            format!(
                "SELECT set_config('{name}', '{}ms', false) WHERE current_setting('{name}') = '0';",
                d.as_millis()
            )
        };
        let sql = bound("lock_timeout", WRITER_LOCK_TIMEOUT)
            + &bound("statement_timeout", WRITER_STATEMENT_TIMEOUT);
        // A session that cannot run this is broken: the first batch finds out and is spooled.
        let _ = ledger.client.batch_execute(&sql);
        Ok(ledger)
    }

    /// Connects to an existing ledger for reading (migrating an older one first).
    pub fn open_read(url: &PgUrl) -> Result<Self> {
        let mut client = url.connect().map_err(|e| url.err(e))?;
        let version = stored_version(&mut client).map_err(|e| url.err(describe(&e)))?;
        if version == 0 {
            return Err(url.err(
                "has no llmledger ledger (no llmledger_schema table): write to it with \
                 CostTracker(store=...) or `llmledger import --into` first",
            ));
        }
        let mut ledger = PgLedger {
            client,
            url: url.clone(),
            staging: false,
        };
        if version != PG_SCHEMA_VERSION {
            ledger.migrate()?;
        }
        Ok(ledger)
    }

    /// The URL (without its password, when shown).
    pub fn url(&self) -> &PgUrl {
        &self.url
    }

    fn refuse_newer(&self, version: i32) -> Result<()> {
        if version > PG_SCHEMA_VERSION {
            return Err(self.url.err(format!(
                "was written by a newer llmledger (PostgreSQL ledger schema version {version}; \
                 this llmledger {} reads versions up to {PG_SCHEMA_VERSION}). Upgrade \
                 llmledger to use it; the database was not modified",
                env!("CARGO_PKG_VERSION")
            )));
        }
        Ok(())
    }

    /// Applies the missing schema steps, holding the advisory lock so hosts migrate one at a
    /// time (the version is read again inside the lock).
    fn migrate(&mut self) -> Result<()> {
        let e = |url: &PgUrl, m: &postgres::Error| url.err(describe(m));
        let version = stored_version(&mut self.client).map_err(|m| e(&self.url, &m))?;
        self.refuse_newer(version)?;
        if version == PG_SCHEMA_VERSION {
            return Ok(());
        }
        self.client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .map_err(|m| e(&self.url, &m))?;
        let done = self.migrate_locked();
        let unlocked = self
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
        done?;
        unlocked.map_err(|m| e(&self.url, &m))?;
        Ok(())
    }

    fn migrate_locked(&mut self) -> Result<()> {
        let url = self.url.clone();
        let e = |m: postgres::Error| url.err(describe(&m));
        self.client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS llmledger_schema (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    applied_by text NOT NULL)",
            )
            .map_err(e)?;
        let version = stored_version(&mut self.client).map_err(e)?;
        self.refuse_newer(version)?;
        let by = concat!("llmledger ", env!("CARGO_PKG_VERSION"));
        for (i, step) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let mut tx = self.client.transaction().map_err(e)?;
            tx.batch_execute(step).map_err(e)?;
            let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO llmledger_schema (version, applied_by) VALUES ($1, $2)",
                &[&v, &by],
            )
            .map_err(e)?;
            tx.commit().map_err(e)?;
        }
        Ok(())
    }

    /// The schema version of the open ledger.
    pub fn schema_version(&mut self) -> Result<i32> {
        stored_version(&mut self.client).map_err(|m| self.url.err(describe(&m)))
    }

    /// Appends records in one transaction; run ids already stored are skipped. Returns how
    /// many were added. One record is a plain `INSERT`, more go through `COPY` (binary, see
    /// [`Copy`]).
    pub fn insert(
        &mut self,
        records: &[CallRecord],
    ) -> std::result::Result<usize, postgres::Error> {
        match records.len() {
            0 => Ok(0),
            1 => insert_values(&mut self.client, records),
            _ => self.insert_copy(records, Copy::Binary),
        }
    }

    /// A batch through `COPY` in `format` straight into the ledger, or, when one of its run
    /// ids is stored already, into the session's staging table and from there into the
    /// ledger, skipping the run ids it has.
    pub fn insert_copy(
        &mut self,
        records: &[CallRecord],
        format: Copy,
    ) -> std::result::Result<usize, postgres::Error> {
        if !self.staging {
            let cols: Vec<String> = COLUMNS
                .iter()
                .map(|c| format!("{} {}", c.name, c.ty.sql()))
                .collect();
            self.client.batch_execute(&format!(
                "CREATE TEMPORARY TABLE IF NOT EXISTS llmledger_staging ({}) \
                 ON COMMIT DELETE ROWS",
                cols.join(", ")
            ))?;
            self.staging = true;
        }
        insert_copy(&mut self.client, records, format)
    }

    /// Multi-row `INSERT`s of at most 1,000 rows each, in one transaction (the alternative to
    /// `COPY` the benchmark measures).
    pub fn insert_values(
        &mut self,
        records: &[CallRecord],
    ) -> std::result::Result<usize, postgres::Error> {
        insert_values(&mut self.client, records)
    }

    /// Pages of records in `(time, id)` order: those in `range`, with `id <= last_id`, after
    /// `after` (a time and id already read), at most `max`. Each is handed to `f` with its
    /// id. Returns how many were read.
    pub fn for_each_page(
        &mut self,
        range: &TimeRange,
        last_id: i64,
        after: Option<(chrono::DateTime<chrono::Utc>, i64)>,
        max: usize,
        f: &mut dyn FnMut(CallRecord, chrono::DateTime<chrono::Utc>, i64),
    ) -> Result<usize> {
        let mut conds = vec!["c.id <= $1".to_string()];
        let mut params: Vec<Box<dyn postgres::types::ToSql + Sync>> = vec![Box::new(last_id)];
        range_conds(range, &mut conds, &mut params);
        if let Some((t, id)) = after {
            params.push(Box::new(t));
            params.push(Box::new(id));
            conds.push(format!(
                "(c.time, c.id) > (${}, ${})",
                params.len() - 1,
                params.len()
            ));
        }
        let sql = format!(
            "SELECT {ROW_JSON}, c.id, c.time FROM llmledger_calls c WHERE {} \
             ORDER BY c.time, c.id LIMIT {max}",
            conds.join(" AND ")
        );
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p.as_ref() as _).collect();
        let rows = self
            .client
            .query(&sql, &refs)
            .map_err(|m| self.url.err(describe(&m)))?;
        let n = rows.len();
        fetched(n);
        for row in rows {
            let (rec, id, time) = self.row_record(&row)?;
            f(rec, time, id);
        }
        Ok(n)
    }

    fn row_record(
        &self,
        row: &postgres::Row,
    ) -> Result<(CallRecord, i64, chrono::DateTime<chrono::Utc>)> {
        let json: String = row.try_get(0).map_err(|m| self.url.err(describe(&m)))?;
        let id: i64 = row.try_get(1).map_err(|m| self.url.err(describe(&m)))?;
        let time = row.try_get(2).map_err(|m| self.url.err(describe(&m)))?;
        let rec = parse_json_line(&json).map_err(|m| self.url.err(format!("row {id}: {m}")))?;
        Ok((rec, id, time))
    }

    /// The largest row id (0: none).
    pub fn last_id(&mut self) -> Result<i64> {
        let v: Option<i64> = self
            .client
            .query_one("SELECT max(id) FROM llmledger_calls", &[])
            .map_err(|m| self.url.err(describe(&m)))?
            .get(0);
        Ok(v.unwrap_or(0))
    }

    /// Records with an id above `after`, in id order, at most `max`, each handed to `f` with
    /// its id (what a follower polls).
    pub fn after_id(
        &mut self,
        after: i64,
        max: i64,
        f: &mut dyn FnMut(CallRecord, i64),
    ) -> Result<usize> {
        let sql = format!(
            "SELECT {ROW_JSON}, c.id, c.time FROM llmledger_calls c WHERE c.id > $1 \
             ORDER BY c.id LIMIT $2"
        );
        let rows = self
            .client
            .query(&sql, &[&after, &max])
            .map_err(|m| self.url.err(describe(&m)))?;
        let n = rows.len();
        fetched(n);
        for row in rows {
            let (rec, id, _) = self.row_record(&row)?;
            f(rec, id);
        }
        Ok(n)
    }

    /// Records with ids in `(after, up_to]`, each handed to `f` with its id.
    pub fn ids_between(
        &mut self,
        after: i64,
        up_to: i64,
        f: &mut dyn FnMut(CallRecord, i64),
    ) -> Result<usize> {
        let sql = format!(
            "SELECT {ROW_JSON}, c.id, c.time FROM llmledger_calls c WHERE c.id > $1 \
             AND c.id <= $2 ORDER BY c.id"
        );
        let rows = self
            .client
            .query(&sql, &[&after, &up_to])
            .map_err(|m| self.url.err(describe(&m)))?;
        let n = rows.len();
        fetched(n);
        for row in rows {
            let (rec, id, _) = self.row_record(&row)?;
            f(rec, id);
        }
        Ok(n)
    }

    /// Calls stored in `range`.
    pub fn count(&mut self, range: &TimeRange) -> Result<u64> {
        let mut conds = vec!["true".to_string()];
        let mut params: Vec<Box<dyn postgres::types::ToSql + Sync>> = Vec::new();
        range_conds(range, &mut conds, &mut params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p.as_ref() as _).collect();
        let n: i64 = self
            .client
            .query_one(
                &format!(
                    "SELECT count(*) FROM llmledger_calls c WHERE {}",
                    conds.join(" AND ")
                ),
                &refs,
            )
            .map_err(|m| self.url.err(describe(&m)))?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Why a ledger could not be opened: connecting failed (the server could not be reached, the
/// connection broke, or the server or the TLS check refused), or something else (a newer
/// schema, a failed migration).
#[derive(Debug)]
pub enum OpenError {
    /// Connecting failed.
    Connect(ConnectError),
    /// Anything else.
    Other(crate::Error),
}

impl From<crate::Error> for OpenError {
    fn from(e: crate::Error) -> Self {
        OpenError::Other(e)
    }
}

/// Time bounds as conditions on `c.time`, their parameters appended to `params`.
fn range_conds(
    range: &TimeRange,
    conds: &mut Vec<String>,
    params: &mut Vec<Box<dyn postgres::types::ToSql + Sync>>,
) {
    if let Some(s) = range.since {
        params.push(Box::new(s));
        conds.push(format!("c.time >= ${}", params.len()));
    }
    if let Some(u) = range.until {
        params.push(Box::new(u));
        conds.push(format!("c.time < ${}", params.len()));
    }
}

/// The format of a batch's `COPY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copy {
    /// `FORMAT text`: every value as text, parsed by the server.
    Text,
    /// `FORMAT binary`: values in the server's own binary forms (the default: fastest,
    /// docs/hosts.md "Speed").
    Binary,
}

fn insert_copy(
    client: &mut Client,
    records: &[CallRecord],
    format: Copy,
) -> std::result::Result<usize, postgres::Error> {
    // Almost every batch is new: COPY it straight into the ledger. A run id already stored
    // (a batch retried after its commit was lost, a spool sent again) fails the COPY whole;
    // then the batch goes through the staging table, skipping what is there.
    match copy_rows(client, "llmledger_calls", records, format) {
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
            copy_rows(client, "llmledger_staging", records, format)
        }
        other => other,
    }
}

/// The text `COPY` lines of `records`.
fn copy_text(records: &[CallRecord]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(records.len() * 600);
    for r in records {
        for (i, cell) in Row::of(r).cells().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            cell.copy_text(&mut buf);
        }
        buf.push(b'\n');
    }
    buf
}

/// One transaction: `COPY` of `records` into `table`, then, from the staging table, the
/// `INSERT ... ON CONFLICT DO NOTHING` into the ledger. Returns the rows added.
fn copy_rows(
    client: &mut Client,
    table: &str,
    records: &[CallRecord],
    format: Copy,
) -> std::result::Result<usize, postgres::Error> {
    let names = columns::names();
    let mut tx = client.transaction()?;
    let copied = match format {
        Copy::Text => {
            let rows = copy_text(records);
            let mut w = tx.copy_in(&format!("COPY {table} ({names}) FROM STDIN"))?;
            // A write error is the connection's: `finish` reports it.
            let _ = w.write_all(&rows);
            w.finish()?
        }
        Copy::Binary => {
            let w = tx.copy_in(&format!(
                "COPY {table} ({names}) FROM STDIN (FORMAT binary)"
            ))?;
            let types = columns::types();
            let mut w = postgres::binary_copy::BinaryCopyInWriter::new(w, &types);
            for r in records {
                let row = Row::of(r);
                let cells: Vec<columns::Cell<'_>> = row.cells().collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    cells.iter().map(|c| c as _).collect();
                w.write(&refs)?;
            }
            w.finish()?
        }
    };
    let added = if table == "llmledger_staging" {
        tx.execute(
            &format!(
                "INSERT INTO llmledger_calls ({names}) SELECT {names} FROM \
                 llmledger_staging ON CONFLICT DO NOTHING"
            ),
            &[],
        )?
    } else {
        copied
    };
    tx.commit()?;
    Ok(usize::try_from(added).unwrap_or(usize::MAX))
}

fn insert_values(
    client: &mut Client,
    records: &[CallRecord],
) -> std::result::Result<usize, postgres::Error> {
    const ROWS: usize = 1000;
    let names = columns::names();
    let mut tx = client.transaction()?;
    let mut added = 0u64;
    for chunk in records.chunks(ROWS) {
        let mut sql = format!("INSERT INTO llmledger_calls ({names}) VALUES ");
        let rows: Vec<Row<'_>> = chunk.iter().map(Row::of).collect();
        let mut values: Vec<columns::Cell<'_>> = Vec::with_capacity(chunk.len() * COLUMNS.len());
        for (i, row) in rows.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for (j, col) in COLUMNS.iter().enumerate() {
                let _ = write!(
                    sql,
                    "{}${}::{}",
                    if j == 0 { "" } else { ", " },
                    i * COLUMNS.len() + j + 1,
                    col.ty.sql()
                );
            }
            sql.push(')');
            values.extend(row.cells());
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v as _).collect();
        added += tx.execute(&sql, &refs)?;
    }
    tx.commit()?;
    Ok(usize::try_from(added).unwrap_or(usize::MAX))
}

/// The ledger's fingerprint secret (`llmledger_secret`), created by the first host that asks:
/// every host of one ledger hashes with the same key, so the advisor matches their calls.
pub fn fingerprint_key(url: &PgUrl) -> Result<crate::fingerprint::Key> {
    use crate::fingerprint::Key;
    let e = |m: postgres::Error| url.err(describe(&m));
    // Opening migrates the schema (the secret's table is step 3).
    let mut ledger = PgLedger::open(url).map_err(|o| match o {
        OpenError::Connect(m) => url.err(m),
        OpenError::Other(m) => m,
    })?;
    let fresh = Key::random().map_err(|m| url.err(format!("a fingerprint key: {m}")))?;
    ledger
        .client
        .execute(
            "INSERT INTO llmledger_secret (name, value) VALUES ('fingerprint_key', $1) \
             ON CONFLICT (name) DO NOTHING",
            &[&fresh.to_hex()],
        )
        .map_err(e)?;
    let row = ledger
        .client
        .query_one(
            "SELECT value FROM llmledger_secret WHERE name = 'fingerprint_key'",
            &[],
        )
        .map_err(e)?;
    let text: String = row.try_get(0).map_err(e)?;
    Key::from_hex(&text)
        .ok_or_else(|| url.err("llmledger_secret's fingerprint_key is not 32 hex digits"))
}

#[cfg(test)]
mod tests;
