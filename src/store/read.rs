//! Reading ledgers back: group-by reports (the `llmledger report` command), window spend (what
//! budgets load at start), exports and imports, over SQLite and JSONL alike.
//!
//! On SQLite a report is one streaming pass over the time index that sums exact integers
//! (pico-dollars) in Rust (`sqlite_scan`: no SQL `GROUP BY`, whose sort costs more than the
//! scan); whenever that cannot be exact it falls back to summing the decimal strings in Rust,
//! the same way a JSONL ledger is always read.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::error::{Error, Result};
use crate::ledger::{sort_rows, CallRecord, Dimension, SummaryRow, Totals};
use crate::money::Decimal;

use super::location::Location;
use super::postgres::PgLedger;
use super::record::{csv_line, write_csv_line, write_json_line, CSV_HEADER};
use super::{reader, unseen_keys, Format, SqliteLedger, TimeRange};

fn invalid(m: String) -> Error {
    Error::InvalidArgument(m)
}

/// Parses a time bound: a duration back from `now` (`30m`, `24h`, `7d`, `2w`), a date
/// (`2026-11-01`, midnight UTC — or the end of that day when `end_of_day`, for `--until`), or
/// an RFC 3339 / `YYYY-MM-DDTHH:MM[:SS]` time (UTC when it has no offset).
pub fn parse_time_bound(s: &str, now: DateTime<Utc>, end_of_day: bool) -> Result<DateTime<Utc>> {
    let t = s.trim();
    let bad = || {
        invalid(format!(
            "'{s}' is not a time: use a duration back from now (30m, 24h, 7d, 2w), a date \
             (2026-11-01) or a time (2026-11-01T09:30:00Z)"
        ))
    };
    // A duration is a number then a unit (`7d`); `...T09:30:00Z` ends in a letter too.
    let duration = t
        .chars()
        .last()
        .filter(char::is_ascii_alphabetic)
        .and_then(|unit| Some((unit, t[..t.len() - 1].trim().parse::<i64>().ok()?)));
    if let Some((unit, n)) = duration {
        let d = match unit {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            _ => None,
        }
        .ok_or_else(bad)?;
        return now.checked_sub_signed(d).ok_or_else(bad);
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let day = if end_of_day {
            d.succ_opt().ok_or_else(bad)?
        } else {
            d
        };
        return Ok(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).ok_or_else(bad)?));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(Utc.from_utc_datetime(&n));
        }
    }
    Err(bad())
}

/// Parses `--by` names: the built-in dimensions, and any other name as a metadata key.
pub fn parse_dims(by: &[String]) -> Result<Vec<Dimension>> {
    by.iter()
        .map(|name| {
            let name = name.trim();
            if name.is_empty() {
                return Err(invalid("an empty dimension name".into()));
            }
            Dimension::parse(name, &[Arc::from(name)])
        })
        .collect()
}

/// A streaming group-by: records in, exact totals per group out, nothing kept per record.
struct Aggregator {
    dims: Vec<Dimension>,
    groups: HashMap<Vec<Option<String>>, Totals>,
    totals: Totals,
}

impl Aggregator {
    fn new(dims: Vec<Dimension>) -> Self {
        Aggregator {
            dims,
            groups: HashMap::new(),
            totals: Totals::default(),
        }
    }

    fn add(&mut self, r: &CallRecord) {
        self.totals.add(r);
        for k in r.group_keys(&self.dims) {
            self.groups.entry(k).or_default().add(r);
        }
    }

    fn finish(self) -> (Vec<SummaryRow>, Totals) {
        let mut rows: Vec<SummaryRow> = self
            .groups
            .into_iter()
            .map(|(key, totals)| SummaryRow { key, totals })
            .collect();
        sort_rows(&mut rows);
        (rows, self.totals)
    }
}

/// A group-by report of a ledger.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The dimensions grouped by.
    pub by: Vec<String>,
    /// One row per group, most expensive first.
    pub rows: Vec<SummaryRow>,
    /// Totals over every call in the window.
    pub totals: Totals,
    /// Problems met while reading (bad JSONL lines, with their numbers).
    pub warnings: Vec<String>,
    /// The ledger's file format (`None`: a database server's).
    pub format: Option<Format>,
}

/// Every record of `location` in `range`, in file order (JSONL) or time order (SQLite),
/// handed to `f` (which returns false to stop). Bad JSONL lines are skipped and reported in
/// `warnings`. `progress` gets records (SQLite) or bytes (JSONL) read so far, now and then.
pub fn for_each(
    location: &Location,
    range: &TimeRange,
    warnings: &mut Vec<String>,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(CallRecord) -> bool,
) -> Result<()> {
    for_each_columns(location, range, reader::Columns::All, warnings, progress, f)
}

/// [`for_each`], filling only `columns` of each record (the rest skipped in the database).
pub fn for_each_columns(
    location: &Location,
    range: &TimeRange,
    columns: reader::Columns,
    warnings: &mut Vec<String>,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(CallRecord) -> bool,
) -> Result<()> {
    warnings.extend(reader::for_each_batched(
        location, *range, columns, progress, f,
    )?);
    Ok(())
}

/// Totals and group-by rows of the calls in `range`. `by` names built-in dimensions or
/// metadata keys. `progress` gets records (SQLite) or bytes (JSONL) read so far, now and then.
pub fn report(
    location: &Location,
    by: &[String],
    range: &TimeRange,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    location.check_exists()?;
    let dims = parse_dims(by)?;
    let (path, format) = match location {
        Location::File { path, format } => (path, format),
        Location::Postgres(url) => {
            // Grouped and summed by the database.
            let mut db = PgLedger::open_read(url)?;
            let (mut rows, totals) = db.aggregate(&dims, range)?;
            sort_rows(&mut rows);
            let unseen = unseen_keys::unseen(&dims, &rows);
            let warnings = if unseen.is_empty() {
                Vec::new()
            } else {
                unseen_keys::warnings(&unseen, &db.attribution_keys(range)?)
            };
            return Ok(Report {
                by: by.to_vec(),
                rows,
                totals,
                warnings,
                format: None,
            });
        }
    };
    if *format == Format::Sqlite {
        // Exact integer sums in one pass over the time index, when every cost has them.
        let db = SqliteLedger::open_read(path)?;
        if let Some((mut rows, totals)) = db.aggregate(&dims, range)? {
            sort_rows(&mut rows);
            let unseen = unseen_keys::unseen(&dims, &rows);
            let warnings = if unseen.is_empty() {
                Vec::new()
            } else {
                unseen_keys::warnings(&unseen, &db.attribution_keys(range)?)
            };
            return Ok(Report {
                by: by.to_vec(),
                rows,
                totals,
                warnings,
                format: Some(*format),
            });
        }
    }
    let has_metadata = dims.iter().any(|d| matches!(d, Dimension::Metadata(_)));
    let mut agg = Aggregator::new(dims);
    let mut seen = unseen_keys::SeenKeys::default();
    let mut warnings = Vec::new();
    for_each(location, range, &mut warnings, progress, &mut |r| {
        if has_metadata {
            seen.add(&r.attribution);
        }
        agg.add(&r);
        true
    })?;
    let dims = agg.dims.clone();
    let (rows, totals) = agg.finish();
    let unseen = unseen_keys::unseen(&dims, &rows);
    warnings.extend(unseen_keys::warnings(&unseen, &seen.into_sorted()));
    Ok(Report {
        by: by.to_vec(),
        rows,
        totals,
        warnings,
        format: Some(*format),
    })
}

/// The exact spend (priced calls) since `since`, per value of `by` (a dimension or metadata
/// key; `None`: one total with key `None`). What a budget loads when its tracker starts, so a
/// restart resumes its window and processes sharing a ledger share their budgets.
pub fn spend_since(
    location: &Location,
    since: DateTime<Utc>,
    by: Option<&str>,
) -> Result<Vec<(Option<String>, Decimal)>> {
    let by: Vec<String> = by.map(|b| vec![b.to_string()]).unwrap_or_default();
    let range = TimeRange {
        since: Some(since),
        until: None,
    };
    let r = report(location, &by, &range, &mut |_| {})?;
    if by.is_empty() {
        return Ok(vec![(None, r.totals.cost)]);
    }
    Ok(r.rows
        .into_iter()
        .map(|row| (row.key.into_iter().next().flatten(), row.totals.cost))
        .collect())
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line (the JSONL ledger's own format).
    Jsonl,
    /// CSV with a header line (attribution and tags as JSON text).
    Csv,
}

impl FromStr for ExportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "jsonl" | "json" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(invalid(format!(
                "export format must be csv or jsonl, not '{other}'"
            ))),
        }
    }
}

/// Writes every record in `range` to `out` in chunks of about 1 MiB. Returns the records
/// written and the problems met while reading.
pub fn export(
    location: &Location,
    format: ExportFormat,
    range: &TimeRange,
    out: &mut dyn FnMut(&[u8]) -> Result<()>,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, Vec<String>)> {
    location.check_exists()?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    if format == ExportFormat::Csv {
        csv_line(CSV_HEADER, &mut buf);
    }
    let mut n = 0u64;
    let mut warnings = Vec::new();
    let mut failure: Option<Error> = None;
    for_each(location, range, &mut warnings, progress, &mut |r| {
        match format {
            ExportFormat::Jsonl => write_json_line(&r, &mut buf),
            ExportFormat::Csv => write_csv_line(&r, &mut buf),
        }
        n += 1;
        if buf.len() >= 1 << 20 {
            if let Err(e) = out(&buf) {
                failure = Some(e);
                return false;
            }
            buf.clear();
        }
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    if !buf.is_empty() {
        out(&buf)?;
    }
    Ok((n, warnings))
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Records read from the source.
    pub read: u64,
    /// Records added to the database.
    pub added: u64,
    /// Records the database already had (same run id).
    pub already_present: u64,
    /// Problems met while reading (bad lines).
    pub warnings: Vec<String>,
}

/// Where an import writes: a SQLite file or a PostgreSQL database.
enum ImportTarget {
    Sqlite(SqliteLedger),
    Postgres(Box<PgLedger>),
}

impl ImportTarget {
    fn open(into: &Location) -> Result<Self> {
        match into {
            Location::Postgres(url) => match PgLedger::open(url) {
                Ok(db) => Ok(ImportTarget::Postgres(Box::new(db))),
                Err(super::postgres::OpenError::Connect(e)) => Err(url.err(e)),
                Err(super::postgres::OpenError::Other(e)) => Err(e),
            },
            Location::File { path, .. } => {
                if path.metadata().is_ok_and(|m| m.len() > 0) && Format::of(path) != Format::Sqlite
                {
                    return Err(Error::Ledger {
                        path: path.display().to_string(),
                        message: "import writes into a SQLite ledger or a PostgreSQL database; \
                                  this file is not one"
                            .into(),
                    });
                }
                Ok(ImportTarget::Sqlite(SqliteLedger::open(path, false)?))
            }
        }
    }

    fn insert(&mut self, records: &[CallRecord]) -> Result<usize> {
        match self {
            ImportTarget::Sqlite(db) => db.insert(records),
            ImportTarget::Postgres(db) => db
                .insert(records)
                .map_err(|e| db.url().err(super::postgres::describe(&e))),
        }
    }
}

/// Copies every record of `source` (JSONL, SQLite or PostgreSQL) into the SQLite ledger or
/// PostgreSQL database `into` (created if missing). Idempotent: a run id already stored is
/// skipped, so importing twice adds nothing.
pub fn import_jsonl(
    source: &Location,
    into: &Location,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportStats> {
    source.check_exists()?;
    let mut db = ImportTarget::open(into)?;
    let mut stats = ImportStats::default();
    let mut batch: Vec<CallRecord> = Vec::with_capacity(10_000);
    let mut failure: Option<Error> = None;
    let mut warnings = Vec::new();
    let mut flush = |batch: &mut Vec<CallRecord>, stats: &mut ImportStats| -> Result<()> {
        let added = db.insert(batch)? as u64;
        stats.added += added;
        stats.already_present += batch.len() as u64 - added;
        batch.clear();
        Ok(())
    };
    for_each(
        source,
        &TimeRange::default(),
        &mut warnings,
        progress,
        &mut |r| {
            stats.read += 1;
            batch.push(r);
            if batch.len() >= 10_000 {
                if let Err(e) = flush(&mut batch, &mut stats) {
                    failure = Some(e);
                    return false;
                }
            }
            true
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    flush(&mut batch, &mut stats)?;
    stats.warnings = warnings;
    Ok(stats)
}
