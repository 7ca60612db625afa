//! A call record as text: the JSON object of one JSONL line (the same field names as
//! `CostTracker.records()`), CSV rows, and the way back from JSON.
//!
//! Money is always an exact decimal string (`"0.00018"`), never a JSON number, so no reader
//! turns it into a float. Reading is lenient where users' own logs differ (`prompt_tokens`,
//! `completion_tokens`, `total_cost`, `timestamp`, numbers for money) and strict where a record
//! would be wrong without it (time, run id).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::CostBreakdown;
use crate::fingerprint::Fingerprint;
use crate::ledger::{uuid_string, CallRecord, RequestFacts};
use crate::money::{self, Decimal};
use crate::usage::{Usage, UsageSource};

/// A record's time as stored: RFC 3339, UTC, microseconds, `Z` (fixed width, so text order is
/// time order).
pub fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An amount as stored: exact, normalised, never in exponent notation.
pub fn money_text(d: Decimal) -> String {
    money::format(d)
}

#[derive(Serialize)]
struct CostOut {
    input: String,
    cache_read: String,
    cache_write: String,
    output: String,
    reasoning: String,
    audio: String,
    total: String,
}

#[derive(Serialize)]
struct RecordOut<'a> {
    time: String,
    run_id: String,
    parent_run_id: Option<String>,
    root_run_id: String,
    root_run_name: Option<&'a str>,
    model: Option<&'a str>,
    requested_model: Option<&'a str>,
    provider: Option<&'a str>,
    attribution: BTreeMap<&'a str, &'a str>,
    tags: &'a [String],
    input_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    cache_write_1h_tokens: u64,
    output_tokens: u64,
    reasoning_tokens: u64,
    input_audio_tokens: u64,
    output_audio_tokens: u64,
    total_tokens: u64,
    usage_source: &'a str,
    estimated_by: Option<&'a str>,
    service_tier: Option<&'a str>,
    cost: Option<String>,
    cost_components: Option<CostOut>,
    unpriced_reason: Option<&'a str>,
    price_entry: Option<&'a str>,
    catalog_version: Option<&'a str>,
    latency_s: Option<f64>,
    streamed_chunks: u32,
    error: Option<&'a str>,
    usage_notes: Option<&'a str>,
    price_notes: Option<&'a str>,
    max_tokens: Option<u64>,
    request_hash: Option<String>,
    prompt_prefixes: Option<String>,
    prompt_bytes: Option<u64>,
}

/// A record's request facts as stored (JSONL fields, SQLite columns): `max_tokens`,
/// `request_hash` (16 hex digits), `prompt_prefixes` (`hash:bytes ...`), `prompt_bytes`.
pub struct RequestColumns {
    /// `max_tokens`
    pub max_tokens: Option<u64>,
    /// `request_hash`
    pub request_hash: Option<String>,
    /// `prompt_prefixes`
    pub prompt_prefixes: Option<String>,
    /// `prompt_bytes`
    pub prompt_bytes: Option<u64>,
}

impl RequestColumns {
    /// The stored form of `r`.
    pub fn of(r: &RequestFacts) -> RequestColumns {
        let f = r.fingerprint.as_deref();
        RequestColumns {
            max_tokens: r.max_tokens,
            request_hash: f.map(Fingerprint::request_text),
            prompt_prefixes: f.map(Fingerprint::prefixes_text),
            prompt_bytes: f.map(|f| f.prompt_bytes),
        }
    }

    /// The facts back; fingerprints that do not parse are dropped (they only inform advice).
    pub fn facts(self) -> RequestFacts {
        request_facts(
            self.max_tokens,
            self.request_hash.as_deref(),
            self.prompt_prefixes.as_deref(),
            self.prompt_bytes,
        )
    }
}

/// [`RequestColumns::facts`] of the stored values, read in place.
pub fn request_facts(
    max_tokens: Option<u64>,
    request_hash: Option<&str>,
    prompt_prefixes: Option<&str>,
    prompt_bytes: Option<u64>,
) -> RequestFacts {
    let fingerprint = match (request_hash, prompt_prefixes) {
        (Some(h), Some(p)) => Fingerprint::parse_request(h)
            .zip(Fingerprint::parse_prefixes(p))
            .map(|(request, prefixes)| {
                Arc::new(Fingerprint {
                    request,
                    prefixes,
                    prompt_bytes: prompt_bytes.unwrap_or(0),
                })
            }),
        _ => None,
    };
    RequestFacts {
        max_tokens,
        fingerprint,
    }
}

fn cost_out(c: &CostBreakdown) -> CostOut {
    CostOut {
        input: money_text(c.input),
        cache_read: money_text(c.cache_read),
        cache_write: money_text(c.cache_write),
        output: money_text(c.output),
        reasoning: money_text(c.reasoning),
        audio: money_text(c.audio),
        total: money_text(c.total),
    }
}

/// Appends one record as a JSON line (with its `\n`) to `out`.
pub fn write_json_line(r: &CallRecord, out: &mut Vec<u8>) {
    let req = RequestColumns::of(&r.request);
    let rec = RecordOut {
        time: time_text(&r.time),
        run_id: uuid_string(r.run_id),
        parent_run_id: r.parent_run_id.map(uuid_string),
        root_run_id: uuid_string(r.root_run_id),
        root_run_name: r.root_run_name.as_deref(),
        model: r.model.as_deref(),
        requested_model: r.requested_model.as_deref(),
        provider: r.provider.as_deref(),
        attribution: r
            .attribution
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect(),
        tags: &r.tags,
        input_tokens: r.usage.input,
        cache_read_tokens: r.usage.cache_read,
        cache_write_tokens: r.usage.cache_write,
        cache_write_1h_tokens: r.usage.cache_write_1h,
        output_tokens: r.usage.output,
        reasoning_tokens: r.usage.reasoning,
        input_audio_tokens: r.usage.input_audio,
        output_audio_tokens: r.usage.output_audio,
        total_tokens: r.usage.total(),
        usage_source: r.usage_source.as_str(),
        estimated_by: r.estimated_by.as_deref(),
        service_tier: r.service_tier.as_deref(),
        cost: r.cost.as_ref().map(|c| money_text(c.total)),
        cost_components: r.cost.as_ref().map(cost_out),
        unpriced_reason: r.unpriced_reason.as_deref(),
        price_entry: r.price_entry.as_deref(),
        catalog_version: r.catalog_version.as_deref(),
        latency_s: r.latency,
        streamed_chunks: r.chunks,
        error: r.error.as_deref(),
        usage_notes: r.usage_notes.as_deref(),
        price_notes: r.price_notes.as_deref(),
        max_tokens: req.max_tokens,
        request_hash: req.request_hash,
        prompt_prefixes: req.prompt_prefixes,
        prompt_bytes: req.prompt_bytes,
    };
    // Serialising plain strings, numbers and maps cannot fail.
    let _ = serde_json::to_writer(&mut *out, &rec);
    out.push(b'\n');
}

#[derive(Deserialize)]
struct RecordIn {
    #[serde(alias = "timestamp")]
    time: Option<String>,
    run_id: Option<String>,
    #[serde(default)]
    parent_run_id: Option<String>,
    #[serde(default)]
    root_run_id: Option<String>,
    #[serde(default)]
    root_run_name: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    requested_model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    attribution: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default, alias = "prompt_tokens")]
    input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
    #[serde(default)]
    cache_write_1h_tokens: Option<u64>,
    #[serde(default, alias = "completion_tokens")]
    output_tokens: Option<u64>,
    #[serde(default)]
    reasoning_tokens: Option<u64>,
    #[serde(default)]
    input_audio_tokens: Option<u64>,
    #[serde(default)]
    output_audio_tokens: Option<u64>,
    #[serde(default)]
    usage_source: Option<String>,
    #[serde(default)]
    estimated_by: Option<String>,
    #[serde(default)]
    usage_notes: Option<String>,
    #[serde(default)]
    price_notes: Option<String>,
    #[serde(default)]
    service_tier: Option<String>,
    #[serde(default, alias = "total_cost")]
    cost: Option<Value>,
    #[serde(default)]
    cost_components: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    unpriced_reason: Option<String>,
    #[serde(default)]
    price_entry: Option<String>,
    #[serde(default)]
    catalog_version: Option<String>,
    #[serde(default)]
    latency_s: Option<f64>,
    #[serde(default)]
    streamed_chunks: Option<u32>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    request_hash: Option<String>,
    #[serde(default)]
    prompt_prefixes: Option<String>,
    #[serde(default)]
    prompt_bytes: Option<u64>,
}

/// An amount of a record (`cost`, `cost_components.*`): a decimal string (or number) that can
/// be one call's cost, from zero to [`money::MAX_CALL_COST`]; anything else makes the line
/// bad, so no report or budget adds up a negative or absurd amount.
fn decimal_of(v: &Value, field: &str) -> Result<Option<Decimal>, String> {
    decimal_text_of(v, field)?
        .map(|d| money::call_cost(d).map_err(|why| format!("{field} {why}")))
        .transpose()
}

fn decimal_text_of(v: &Value, field: &str) -> Result<Option<Decimal>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Decimal::from_str(s)
            .or_else(|_| Decimal::from_scientific(s))
            .map(Some)
            .map_err(|_| format!("{field} '{s}' is not a decimal amount")),
        // A number is read through its text, so `0.1` stays exactly 0.1.
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s)
                .or_else(|_| Decimal::from_scientific(&s))
                .map(Some)
                .map_err(|_| format!("{field} {s} is not a decimal amount"))
        }
        _ => Err(format!("{field} must be a decimal string")),
    }
}

/// Parses a run id (a UUID in any usual form).
pub fn parse_uuid(s: &str, field: &str) -> Result<u128, String> {
    uuid::Uuid::parse_str(s)
        .map(|u| u.as_u128())
        .map_err(|_| format!("{field} '{s}' is not a UUID"))
}

/// Parses a stored time: RFC 3339 (any offset, converted to UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("time '{s}' is not an RFC 3339 time ({e})"))
}

/// Parses a usage source name.
pub fn parse_usage_source(s: &str) -> Result<UsageSource, String> {
    Ok(match s {
        "provider" => UsageSource::Provider,
        "estimated" => UsageSource::Estimated,
        "cache" => UsageSource::Cache,
        "none" => UsageSource::None,
        other => {
            return Err(format!(
                "usage_source '{other}' is not one of provider, estimated, cache, none"
            ))
        }
    })
}

/// A JSON record's run id, parent run id and root run id (its own when it names none).
fn run_ids_in(r: &RecordIn) -> Result<(u128, Option<u128>, u128), String> {
    let run_id = parse_uuid(r.run_id.as_deref().ok_or("no 'run_id' field")?, "run_id")?;
    let parent_run_id = r
        .parent_run_id
        .as_deref()
        .map(|s| parse_uuid(s, "parent_run_id"))
        .transpose()?;
    let root_run_id = match r.root_run_id.as_deref() {
        Some(s) => parse_uuid(s, "root_run_id")?,
        None => run_id,
    };
    Ok((run_id, parent_run_id, root_run_id))
}

/// Reads one JSON line back into a record. The error says what is wrong (the caller adds the
/// file and line number).
pub fn parse_json_line(line: &str) -> Result<CallRecord, String> {
    let r: RecordIn = serde_json::from_str(line).map_err(|e| format!("not a JSON record ({e})"))?;
    let time = parse_time(r.time.as_deref().ok_or("no 'time' field")?)?;
    let (run_id, parent_run_id, root_run_id) = run_ids_in(&r)?;
    let usage_source = match r.usage_source.as_deref() {
        Some(s) => parse_usage_source(s)?,
        None => UsageSource::Provider,
    };
    let usage = Usage {
        input: r.input_tokens.unwrap_or(0),
        cache_read: r.cache_read_tokens.unwrap_or(0),
        cache_write: r.cache_write_tokens.unwrap_or(0),
        cache_write_1h: r.cache_write_1h_tokens.unwrap_or(0),
        output: r.output_tokens.unwrap_or(0),
        reasoning: r.reasoning_tokens.unwrap_or(0),
        input_audio: r.input_audio_tokens.unwrap_or(0),
        output_audio: r.output_audio_tokens.unwrap_or(0),
    };
    let total = match &r.cost {
        Some(v) => decimal_of(v, "cost")?,
        None => None,
    };
    let cost = match total {
        None => None,
        Some(total) => {
            let mut c = CostBreakdown {
                total,
                ..CostBreakdown::default()
            };
            if let Some(parts) = &r.cost_components {
                let get = |k: &str| -> Result<Decimal, String> {
                    Ok(parts
                        .get(k)
                        .map(|v| decimal_of(v, &format!("cost_components.{k}")))
                        .transpose()?
                        .flatten()
                        .unwrap_or_default())
                };
                c.input = get("input")?;
                c.cache_read = get("cache_read")?;
                c.cache_write = get("cache_write")?;
                c.output = get("output")?;
                c.reasoning = get("reasoning")?;
                c.audio = get("audio")?;
            }
            Some(c)
        }
    };
    let attribution = r
        .attribution
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (Arc::from(k.as_str()), v)
        })
        .collect();
    Ok(CallRecord {
        time,
        run_id,
        parent_run_id,
        root_run_id,
        root_run_name: r.root_run_name.as_deref().map(Arc::from),
        model: r.model.as_deref().map(Arc::from),
        requested_model: r.requested_model.as_deref().map(Arc::from),
        provider: r.provider.as_deref().map(Arc::from),
        attribution,
        tags: r.tags.unwrap_or_default(),
        usage,
        usage_source,
        estimated_by: r.estimated_by,
        service_tier: r.service_tier,
        cost,
        unpriced_reason: r.unpriced_reason,
        price_entry: r.price_entry.as_deref().map(Arc::from),
        catalog_version: r.catalog_version.as_deref().map(Arc::from),
        latency: r.latency_s,
        chunks: r.streamed_chunks.unwrap_or(0),
        error: r.error,
        usage_notes: r.usage_notes,
        price_notes: r.price_notes,
        request: RequestColumns {
            max_tokens: r.max_tokens,
            request_hash: r.request_hash,
            prompt_prefixes: r.prompt_prefixes,
            prompt_bytes: r.prompt_bytes,
        }
        .facts(),
    })
}

/// The CSV export's columns.
pub const CSV_HEADER: &[&str] = &[
    "time",
    "run_id",
    "parent_run_id",
    "root_run_id",
    "root_run_name",
    "model",
    "requested_model",
    "provider",
    "attribution",
    "tags",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "total_tokens",
    "usage_source",
    "estimated_by",
    "service_tier",
    "cost",
    "cost_input",
    "cost_cache_read",
    "cost_cache_write",
    "cost_output",
    "cost_reasoning",
    "cost_audio",
    "unpriced_reason",
    "price_entry",
    "catalog_version",
    "latency_s",
    "streamed_chunks",
    "error",
    "usage_notes",
    "price_notes",
    "max_tokens",
    "request_hash",
    "prompt_prefixes",
    "prompt_bytes",
];

/// Appends `cell` to `out`, quoted when it needs to be (RFC 4180).
pub fn csv_cell(cell: &str, out: &mut Vec<u8>) {
    if cell.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(cell.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(cell.as_bytes());
    }
}

/// Appends cells as one CSV line (`\r\n`-free: `\n` ends it).
pub fn csv_line<S: AsRef<str>>(cells: &[S], out: &mut Vec<u8>) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_cell(c.as_ref(), out);
    }
    out.push(b'\n');
}

/// Appends one record as a CSV line (attribution and tags as JSON text in their cells).
pub fn write_csv_line(r: &CallRecord, out: &mut Vec<u8>) {
    let opt = |s: Option<&str>| s.unwrap_or("").to_string();
    let attribution: BTreeMap<&str, &str> = r
        .attribution
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_str()))
        .collect();
    let c = r.cost.as_ref();
    let m = |f: fn(&CostBreakdown) -> Decimal| c.map(|c| money_text(f(c))).unwrap_or_default();
    let req = RequestColumns::of(&r.request);
    let cells = [
        time_text(&r.time),
        uuid_string(r.run_id),
        r.parent_run_id.map(uuid_string).unwrap_or_default(),
        uuid_string(r.root_run_id),
        opt(r.root_run_name.as_deref()),
        opt(r.model.as_deref()),
        opt(r.requested_model.as_deref()),
        opt(r.provider.as_deref()),
        serde_json::to_string(&attribution).unwrap_or_default(),
        serde_json::to_string(&r.tags).unwrap_or_default(),
        r.usage.input.to_string(),
        r.usage.cache_read.to_string(),
        r.usage.cache_write.to_string(),
        r.usage.cache_write_1h.to_string(),
        r.usage.output.to_string(),
        r.usage.reasoning.to_string(),
        r.usage.input_audio.to_string(),
        r.usage.output_audio.to_string(),
        r.usage.total().to_string(),
        r.usage_source.as_str().to_string(),
        opt(r.estimated_by.as_deref()),
        opt(r.service_tier.as_deref()),
        m(|c| c.total),
        m(|c| c.input),
        m(|c| c.cache_read),
        m(|c| c.cache_write),
        m(|c| c.output),
        m(|c| c.reasoning),
        m(|c| c.audio),
        opt(r.unpriced_reason.as_deref()),
        opt(r.price_entry.as_deref()),
        opt(r.catalog_version.as_deref()),
        r.latency.map(|l| l.to_string()).unwrap_or_default(),
        r.chunks.to_string(),
        opt(r.error.as_deref()),
        opt(r.usage_notes.as_deref()),
        opt(r.price_notes.as_deref()),
        // The request facts as the JSONL ledger stores them (fingerprints, never text).
        req.max_tokens.map(|v| v.to_string()).unwrap_or_default(),
        req.request_hash.unwrap_or_default(),
        req.prompt_prefixes.unwrap_or_default(),
        req.prompt_bytes.map(|v| v.to_string()).unwrap_or_default(),
    ];
    csv_line(&cells, out);
}
