//! Reports over a PostgreSQL ledger, grouped in the database: one `GROUP BY` query for the
//! rows and one for the totals (a call with several tags is one call in the totals), each
//! returning exact sums (`numeric` money, as text) that become the same [`Totals`] the
//! SQLite scan and the in-memory ledger compute, by the same rules.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use postgres::types::ToSql;

use crate::error::Result;
use crate::ledger::{Dimension, SummaryRow, Totals};
use crate::money::Decimal;
use crate::usage::Usage;

use super::{describe, range_conds, PgLedger};
use crate::ledger::CallRecord;
use crate::store::TimeRange;

/// The sums of one group (or of all calls), in the order [`Sums::read`] reads them. The rules
/// are `Totals::add`'s: tokens of calls answered from the LLM cache are not added; a call is
/// unpriced unless it has a cost, or failed having reported no tokens at all.
const SUMS: &str = "count(*) FILTER (WHERE c.error IS NULL),
    count(*) FILTER (WHERE c.error IS NOT NULL),
    (sum(c.input_tokens) FILTER (WHERE c.usage_source <> 'cache'))::text,
    (sum(c.cache_read_tokens) FILTER (WHERE c.usage_source <> 'cache'))::text,
    (sum(c.cache_write_tokens) FILTER (WHERE c.usage_source <> 'cache'))::text,
    (sum(c.cache_write_1h_tokens) FILTER (WHERE c.usage_source <> 'cache'))::text,
    (sum(c.output_tokens) FILTER (WHERE c.usage_source <> 'cache'))::text,
    (sum(c.reasoning_tokens) FILTER (WHERE c.usage_source <> 'cache'))::text,
    (sum(c.input_audio_tokens) FILTER (WHERE c.usage_source <> 'cache'))::text,
    (sum(c.output_audio_tokens) FILTER (WHERE c.usage_source <> 'cache'))::text,
    (sum(c.cost))::text,
    count(*) FILTER (WHERE c.cost IS NULL AND NOT (c.error IS NOT NULL
        AND c.input_tokens = 0 AND c.cache_read_tokens = 0 AND c.cache_write_tokens = 0
        AND c.cache_write_1h_tokens = 0 AND c.output_tokens = 0 AND c.reasoning_tokens = 0
        AND c.input_audio_tokens = 0 AND c.output_audio_tokens = 0)),
    count(*) FILTER (WHERE c.usage_source = 'cache'),
    count(*) FILTER (WHERE c.usage_source = 'estimated'),
    count(*) FILTER (WHERE c.usage_source NOT IN ('cache', 'estimated', 'none')
        AND c.estimated_by LIKE 'provider+%'),
    count(*) FILTER (WHERE c.usage_source NOT IN ('cache', 'estimated', 'none')),
    count(*) FILTER (WHERE c.usage_source = 'none'),
    min(c.time), max(c.time),
    (sum(c.latency_us))::text,
    count(c.latency_us),
    count(*) FILTER (WHERE c.price_entry LIKE 'local:%'),
    count(*) FILTER (WHERE c.price_notes IS NOT NULL)";

/// Columns [`SUMS`] returns.
const SUM_COLUMNS: usize = 23;

fn int_text(row: &postgres::Row, i: usize) -> std::result::Result<u64, postgres::Error> {
    let t: Option<String> = row.try_get(i)?;
    // Sums of non-negative bigints: beyond u64 only in theory; saturate as the scans do.
    Ok(t.map_or(0, |t| t.parse::<u64>().unwrap_or(u64::MAX)))
}

fn count(row: &postgres::Row, i: usize) -> std::result::Result<u64, postgres::Error> {
    Ok(u64::try_from(row.try_get::<_, i64>(i)?).unwrap_or(0))
}

/// [`SUMS`] of a row, from column `at`, as totals.
fn totals(ledger: &PgLedger, row: &postgres::Row, at: usize) -> Result<Totals> {
    let e = |m: postgres::Error| ledger.url.err(describe(&m));
    let mut tokens = [0u64; 8];
    for (j, t) in tokens.iter_mut().enumerate() {
        *t = int_text(row, at + 2 + j).map_err(e)?;
    }
    let [input, cache_read, cache_write, cache_write_1h, output, reasoning, input_audio, output_audio] =
        tokens;
    let cost: Option<String> = row.try_get(at + 10).map_err(e)?;
    let cost = match cost {
        None => Decimal::ZERO,
        Some(t) => Decimal::from_str(&t).map_err(|_| {
            ledger
                .url
                .err(format!("the sum of costs '{t}' is out of range"))
        })?,
    };
    let first: Option<DateTime<Utc>> = row.try_get(at + 17).map_err(e)?;
    let last: Option<DateTime<Utc>> = row.try_get(at + 18).map_err(e)?;
    Ok(Totals {
        successful_requests: count(row, at).map_err(e)?,
        failed_requests: count(row, at + 1).map_err(e)?,
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
        cost: cost.normalize(),
        unpriced_calls: count(row, at + 11).map_err(e)?,
        llm_cache_hits: count(row, at + 12).map_err(e)?,
        estimated_calls: count(row, at + 13).map_err(e)?,
        malformed_usage_calls: count(row, at + 14).map_err(e)?,
        reported_calls: count(row, at + 15).map_err(e)?,
        no_usage_calls: count(row, at + 16).map_err(e)?,
        first_call: first,
        last_call: last,
        latency_micros: int_text(row, at + 19).map_err(e)?,
        timed_calls: count(row, at + 20).map_err(e)?,
        local_calls: count(row, at + 21).map_err(e)?,
        fallback_priced_calls: count(row, at + 22).map_err(e)?,
    })
}

/// A record as JSON with only the keys the advisor reads (`reader::Columns::Advise`): the
/// others are not sent, and `error` is `""` for a failed call.
const ADVISE_ROW_JSON: &str = "json_build_object(
    'time', c.time, 'run_id', c.run_id, 'parent_run_id', c.parent_run_id,
    'root_run_id', c.root_run_id, 'root_run_name', c.root_run_name, 'model', c.model,
    'provider', c.provider, 'attribution', c.attribution, 'tags', c.tags,
    'input_tokens', c.input_tokens, 'cache_read_tokens', c.cache_read_tokens,
    'cache_write_tokens', c.cache_write_tokens, 'cache_write_1h_tokens', c.cache_write_1h_tokens,
    'output_tokens', c.output_tokens, 'reasoning_tokens', c.reasoning_tokens,
    'input_audio_tokens', c.input_audio_tokens, 'output_audio_tokens', c.output_audio_tokens,
    'usage_source', c.usage_source, 'service_tier', c.service_tier, 'cost', c.cost::text,
    'cost_components', CASE WHEN c.cost IS NULL THEN NULL ELSE json_build_object(
        'input', c.cost_input::text, 'cache_read', c.cost_cache_read::text,
        'cache_write', c.cost_cache_write::text) END,
    'unpriced_reason', c.unpriced_reason, 'streamed_chunks', c.streamed_chunks,
    'error', CASE WHEN c.error IS NULL THEN NULL ELSE '' END,
    'max_tokens', c.max_tokens, 'request_hash', c.request_hash,
    'prompt_prefixes', c.prompt_prefixes, 'prompt_bytes', c.prompt_bytes)::text";

impl PgLedger {
    /// `for_each_page` reading only the advisor's columns ([`ADVISE_ROW_JSON`]): one page of
    /// records in `(time, id)` order after `after`, up to `last_id`, each handed to `f` with
    /// its time and id. Returns how many.
    pub fn for_each_page_advise(
        &mut self,
        range: &TimeRange,
        last_id: i64,
        after: Option<(DateTime<Utc>, i64)>,
        max: usize,
        f: &mut dyn FnMut(CallRecord, DateTime<Utc>, i64),
    ) -> Result<usize> {
        let mut conds = vec!["c.id <= $1".to_string()];
        let mut params: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(last_id)];
        range_conds(range, &mut conds, &mut params);
        if let Some((t, id)) = after {
            params.push(Box::new(t));
            params.push(Box::new(id));
            let n = params.len();
            conds.push(format!("(c.time, c.id) > (${}, ${n})", n - 1));
        }
        let sql = format!(
            "SELECT {ADVISE_ROW_JSON}, c.id, c.time FROM llmledger_calls c WHERE {} \
             ORDER BY c.time, c.id LIMIT {max}",
            conds.join(" AND ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let rows = self
            .client
            .query(&sql, &refs)
            .map_err(|m| self.url.err(describe(&m)))?;
        for row in &rows {
            let (rec, id, time) = self.row_record(row)?;
            f(rec, time, id);
        }
        Ok(rows.len())
    }

    /// Group-by rows and totals of the calls in `range`, grouped and summed by the database.
    pub fn aggregate(
        &mut self,
        dims: &[Dimension],
        range: &TimeRange,
    ) -> Result<(Vec<SummaryRow>, Totals)> {
        let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut conds = vec!["true".to_string()];
        // The time bounds first: the totals query takes just them.
        range_conds(range, &mut conds, &mut params);
        let cond = conds.join(" AND ");
        let range_params = params.len();
        let mut select = String::new();
        let mut join = "";
        for dim in dims {
            let expr = match dim {
                Dimension::Model => "c.model".to_string(),
                Dimension::RequestedModel => "c.requested_model".to_string(),
                Dimension::Provider => "c.provider".to_string(),
                Dimension::RootRunName => "c.root_run_name".to_string(),
                Dimension::RootRunId => "c.root_run_id::text".to_string(),
                Dimension::UsageSource => "c.usage_source".to_string(),
                Dimension::ServiceTier => "c.service_tier".to_string(),
                Dimension::Day => "to_char(c.time AT TIME ZONE 'UTC', 'YYYY-MM-DD')".to_string(),
                Dimension::Hour => {
                    "to_char(c.time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24\":00\"')".to_string()
                }
                Dimension::Error => "split_part(c.error, ':', 1)".to_string(),
                Dimension::PriceEntry => "c.price_entry".to_string(),
                Dimension::Tag => {
                    join =
                        " LEFT JOIN LATERAL jsonb_array_elements_text(c.tags) AS t(value) ON true";
                    "t.value".to_string()
                }
                Dimension::Metadata(key) => {
                    params.push(Box::new(key.clone()));
                    format!("(c.attribution ->> ${}::text)", params.len())
                }
            };
            let _ = write!(select, "{expr}, ");
        }
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let n = dims.len();
        let mut rows = Vec::new();
        if n > 0 {
            let groups: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
            let sql = format!(
                "SELECT {select}{SUMS} FROM llmledger_calls c{join} WHERE {cond} GROUP BY {}",
                groups.join(", ")
            );
            let found = self
                .client
                .query(&sql, &refs)
                .map_err(|m| self.url.err(describe(&m)))?;
            super::fetched(found.len());
            for row in &found {
                let key = (0..n)
                    .map(|i| row.try_get::<_, Option<String>>(i))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|m| self.url.err(describe(&m)))?;
                rows.push(SummaryRow {
                    key,
                    totals: totals(self, row, n)?,
                });
            }
        }
        let sql = format!("SELECT {SUMS} FROM llmledger_calls c WHERE {cond}");
        let row = self
            .client
            .query_one(&sql, &refs[..range_params])
            .map_err(|m| self.url.err(describe(&m)))?;
        super::fetched(1);
        debug_assert_eq!(row.len(), SUM_COLUMNS);
        let all = totals(self, &row, 0)?;
        if n == 0 && all.successful_requests + all.failed_requests > 0 {
            // No dimension: one group of every call, as the other backends give.
            rows.push(SummaryRow {
                key: Vec::new(),
                totals: all.clone(),
            });
        }
        Ok((rows, all))
    }

    /// The metadata keys of the calls in `range`, sorted (for the warning about a `--by` key
    /// no call has).
    pub fn attribution_keys(&mut self, range: &TimeRange) -> Result<Vec<String>> {
        let mut conds = vec!["true".to_string()];
        let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        range_conds(range, &mut conds, &mut params);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let sql = format!(
            "SELECT DISTINCT k FROM llmledger_calls c, jsonb_object_keys(c.attribution) AS k \
             WHERE {} ORDER BY k",
            conds.join(" AND ")
        );
        let found = self
            .client
            .query(&sql, &refs)
            .map_err(|m| self.url.err(describe(&m)))?;
        found
            .iter()
            .map(|r| r.try_get(0).map_err(|m| self.url.err(describe(&m))))
            .collect()
    }
}
