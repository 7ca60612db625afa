//! Reports over a SQLite ledger: one streaming pass over the time index, summed in Rust
//! exactly (no SQL `GROUP BY`, whose sort of every row costs more than the scan).

use std::collections::HashMap;
use std::fmt::Write as _;

use rusqlite::types::ValueRef;

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::ledger::{latency_micros, Dimension, SummaryRow, Totals};
use crate::money::Decimal;
use crate::usage::Usage;

use super::record::parse_time;
use super::sqlite::{range_condition_from, SqliteLedger, PICO_SCALE};
use super::TimeRange;

impl SqliteLedger {
    /// Group-by rows and totals over exact integers, in one streaming pass over the time index
    /// (no sort): SQLite computes each row's group values, Rust sums pico-dollars and tokens
    /// in `i128`/`u64`. `None` when a cost in range has no exact pico-dollar value: the caller
    /// then sums the decimal strings.
    #[allow(clippy::too_many_lines)] // one SQL statement and its row mapping
    pub fn aggregate(
        &self,
        dims: &[Dimension],
        range: &TimeRange,
    ) -> Result<Option<(Vec<SummaryRow>, Totals)>> {
        let mut select = String::new();
        let mut args: Vec<String> = Vec::new();
        let mut join = "";
        for dim in dims {
            let expr = match dim {
                Dimension::Model => "c.model".to_string(),
                Dimension::RequestedModel => "c.requested_model".to_string(),
                Dimension::Provider => "c.provider".to_string(),
                Dimension::RootRunName => "c.root_run_name".to_string(),
                Dimension::RootRunId => "c.root_run_id".to_string(),
                Dimension::UsageSource => "c.usage_source".to_string(),
                Dimension::ServiceTier => "c.service_tier".to_string(),
                Dimension::Day => "substr(c.time, 1, 10)".to_string(),
                Dimension::Hour => "substr(c.time, 1, 13) || ':00'".to_string(),
                Dimension::Error => "CASE WHEN instr(c.error, ':') > 0 \
                    THEN substr(c.error, 1, instr(c.error, ':') - 1) ELSE c.error END"
                    .to_string(),
                Dimension::PriceEntry => "c.price_entry".to_string(),
                Dimension::Tag => {
                    join = " LEFT JOIN json_each(c.tags) t";
                    "t.value".to_string()
                }
                Dimension::Metadata(key) => {
                    if key.contains('"') {
                        return Ok(None);
                    }
                    args.push(format!("$.\"{key}\""));
                    format!("json_extract(c.attribution, ?{})", args.len())
                }
            };
            let _ = write!(select, "{expr}, ");
        }
        let (cond, range_args) = range_condition_from(range, args.len());
        args.extend(range_args);
        // Per call: its id (a call with several tags comes as consecutive rows), the flags
        // Totals::add looks at, its pico-dollar cost, its tokens, time and latency.
        let sql = format!(
            "SELECT {select}c.id, c.usage_source, c.error IS NOT NULL, c.cost IS NOT NULL, \
             c.cost_pico, c.input_tokens, c.cache_read_tokens, c.cache_write_tokens, \
             c.cache_write_1h_tokens, c.output_tokens, c.reasoning_tokens, \
             c.input_audio_tokens, c.output_audio_tokens, \
             c.usage_source = 'provider' AND c.estimated_by LIKE 'provider+%', c.time, c.latency_s, \
             c.price_entry LIKE 'local:%', c.price_notes IS NOT NULL \
             FROM calls c{join}{cond}"
        );
        let e = |m: rusqlite::Error| SqliteLedger::err(&self.path, m);
        let mut stmt = self.conn.prepare(&sql).map_err(e)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(e)?;
        let n = dims.len();
        let mut groups: HashMap<Vec<u8>, (Vec<Option<String>>, Acc)> = HashMap::new();
        let mut totals = Acc::default();
        let mut key: Vec<u8> = Vec::with_capacity(64);
        let mut last_id: Option<i64> = None;
        while let Some(row) = rows.next().map_err(e)? {
            let int = |i: usize| -> rusqlite::Result<i64> {
                Ok(row.get::<_, Option<i64>>(i)?.unwrap_or(0))
            };
            let source = match row.get_ref(n + 1).map_err(e)? {
                ValueRef::Text(t) => match t {
                    b"cache" => Source::Cache,
                    b"estimated" => Source::Estimated,
                    b"none" => Source::None,
                    _ => Source::Provider,
                },
                _ => Source::None,
            };
            let failed = int(n + 2).map_err(e)? != 0;
            let priced = int(n + 3).map_err(e)? != 0;
            let pico: Option<i64> = row.get(n + 4).map_err(e)?;
            if priced && pico.is_none() {
                return Ok(None);
            }
            let mut tokens = [0u64; 8];
            for (j, t) in tokens.iter_mut().enumerate() {
                *t = u64::try_from(int(n + 5 + j).map_err(e)?).unwrap_or(0);
            }
            let time = match row.get_ref(n + 14).map_err(e)? {
                ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or_default().to_string(),
                _ => String::new(),
            };
            let latency: Option<f64> = row.get(n + 15).map_err(e)?;
            let call = Call {
                source,
                failed,
                priced,
                pico: pico.unwrap_or(0),
                tokens,
                time,
                latency: latency.and_then(latency_micros),
                malformed: int(n + 13).map_err(e)? != 0,
                local: int(n + 16).map_err(e)? != 0,
                fallback_priced: int(n + 17).map_err(e)? != 0,
            };
            let id = int(n).map_err(e)?;
            if last_id != Some(id) {
                totals.add(&call);
                last_id = Some(id);
            }
            key.clear();
            for i in 0..n {
                match row.get_ref(i).map_err(e)? {
                    ValueRef::Null => key.push(0),
                    v => {
                        key.push(1);
                        key.extend_from_slice(value_text(v).unwrap_or_default().as_bytes());
                    }
                }
                // Never inside UTF-8 text: separates the values.
                key.push(0xFF);
            }
            if let Some((_, acc)) = groups.get_mut(key.as_slice()) {
                acc.add(&call);
            } else {
                let values = (0..n)
                    .map(|i| row.get_ref(i).map(value_text))
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(e)?;
                let mut acc = Acc::default();
                acc.add(&call);
                groups.insert(key.clone(), (values, acc));
            }
        }
        let rows = groups
            .into_values()
            .map(|(key, acc)| {
                Ok(SummaryRow {
                    key,
                    totals: acc.totals(&self.path)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some((rows, totals.totals(&self.path)?)))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Provider,
    Cache,
    Estimated,
    None,
}

/// What the aggregation needs of one call.
// The flags are one row's boolean columns, read as they come.
#[allow(clippy::struct_excessive_bools)]
struct Call {
    source: Source,
    failed: bool,
    priced: bool,
    pico: i64,
    tokens: [u64; 8],
    /// As stored: fixed-width RFC 3339, so text order is time order.
    time: String,
    latency: Option<u64>,
    /// The provider's usage had a malformed count (`CallRecord::usage_was_malformed`).
    malformed: bool,
    /// Served by a local runtime (`ledger::is_local_entry`).
    local: bool,
    /// Has `price_notes`.
    fallback_priced: bool,
}

/// Exact running sums of a group; the same rules as `Totals::add`.
#[derive(Default)]
struct Acc {
    ok: u64,
    failed: u64,
    tokens: [u64; 8],
    pico: i128,
    unpriced: u64,
    cache: u64,
    estimated: u64,
    reported: u64,
    no_usage: u64,
    first: Option<String>,
    last: Option<String>,
    latency_micros: u64,
    timed: u64,
    malformed: u64,
    local: u64,
    fallback_priced: u64,
}

impl Acc {
    fn add(&mut self, c: &Call) {
        if c.failed {
            self.failed += 1;
        } else {
            self.ok += 1;
        }
        match c.source {
            Source::Cache => self.cache += 1,
            Source::Estimated => self.estimated += 1,
            Source::Provider => {
                self.reported += 1;
                self.malformed += u64::from(c.malformed);
            }
            Source::None => self.no_usage += 1,
        }
        if self.first.as_ref().is_none_or(|f| c.time < *f) {
            self.first = Some(c.time.clone());
        }
        if self.last.as_ref().is_none_or(|l| c.time > *l) {
            self.last = Some(c.time.clone());
        }
        if let Some(us) = c.latency {
            self.latency_micros = self.latency_micros.saturating_add(us);
            self.timed += 1;
        }
        if c.source != Source::Cache {
            for (sum, t) in self.tokens.iter_mut().zip(c.tokens) {
                *sum = sum.saturating_add(t);
            }
        }
        self.pico += i128::from(c.pico);
        self.local += u64::from(c.local);
        self.fallback_priced += u64::from(c.fallback_priced);
        // A failed call that reported no usage billed nothing we know of: not "unpriced".
        let billed_nothing = c.failed && c.tokens.iter().all(|t| *t == 0);
        if !(c.priced || billed_nothing) {
            self.unpriced += 1;
        }
    }

    fn totals(&self, path: &Path) -> Result<Totals> {
        let time = |t: &Option<String>| -> Result<Option<DateTime<Utc>>> {
            t.as_deref()
                .map(|t| parse_time(t).map_err(|m| SqliteLedger::err(path, m)))
                .transpose()
        };
        let [input, cache_read, cache_write, cache_write_1h, output, reasoning, input_audio, output_audio] =
            self.tokens;
        Ok(Totals {
            successful_requests: self.ok,
            failed_requests: self.failed,
            usage: Usage {
                input,
                cache_read,
                cache_write,
                cache_write_1h,
                output,
                reasoning,
                input_audio,
                output_audio,
            },
            cost: Decimal::try_from_i128_with_scale(self.pico, PICO_SCALE)
                .unwrap_or_default()
                .normalize(),
            unpriced_calls: self.unpriced,
            llm_cache_hits: self.cache,
            estimated_calls: self.estimated,
            malformed_usage_calls: self.malformed,
            reported_calls: self.reported,
            no_usage_calls: self.no_usage,
            first_call: time(&self.first)?,
            last_call: time(&self.last)?,
            latency_micros: self.latency_micros,
            timed_calls: self.timed,
            local_calls: self.local,
            fallback_priced_calls: self.fallback_priced,
        })
    }
}

/// A grouping value as text (`None` for SQL NULL).
fn value_text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}
