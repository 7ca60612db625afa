//! The columns a batch writes: one table of (name, SQL type, value of a record), from which the
//! column list, the staging table, the text and binary `COPY` rows and the multi-row `INSERT`
//! are all made, so they cannot drift apart (the 36-parameter bug came from separate lists).
//!
//! Text: PostgreSQL's `text` and `jsonb` cannot hold U+0000 (NUL), which SQLite and JSONL
//! store; every NUL in a text or JSON value is written as U+FFFD (the replacement character)
//! instead, so such a record lands rather than being refused (docs/hosts.md, "Text with NUL").

use std::borrow::Cow;
use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Utc};
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use crate::catalog::CostBreakdown;
use crate::ledger::{latency_micros, CallRecord};
use crate::money::Decimal;
use crate::store::record::{money_text, time_text, RequestColumns};
use crate::store::sqlite::pico;

/// A column's SQL type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Timestamptz,
    Uuid,
    Text,
    Jsonb,
    Bigint,
    Numeric,
    Float8,
}

impl Ty {
    /// The type's name in SQL.
    pub fn sql(self) -> &'static str {
        match self {
            Ty::Timestamptz => "timestamptz",
            Ty::Uuid => "uuid",
            Ty::Text => "text",
            Ty::Jsonb => "jsonb",
            Ty::Bigint => "bigint",
            Ty::Numeric => "numeric",
            Ty::Float8 => "double precision",
        }
    }

    /// The type as the client names it (binary `COPY` needs each column's).
    pub fn pg(self) -> Type {
        match self {
            Ty::Timestamptz => Type::TIMESTAMPTZ,
            Ty::Uuid => Type::UUID,
            Ty::Text => Type::TEXT,
            Ty::Jsonb => Type::JSONB,
            Ty::Bigint => Type::INT8,
            Ty::Numeric => Type::NUMERIC,
            Ty::Float8 => Type::FLOAT8,
        }
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Time(DateTime<Utc>),
    Uuid(u128),
    Text(Cow<'a, str>),
    Json(String),
    Int(i64),
    Num(Decimal),
    Float(f64),
}

/// A record with what its columns compute once.
pub struct Row<'a> {
    r: &'a CallRecord,
    req: RequestColumns,
}

impl<'a> Row<'a> {
    /// The row of `r`.
    pub fn of(r: &'a CallRecord) -> Self {
        Row {
            r,
            req: RequestColumns::of(&r.request),
        }
    }

    /// Its cells, in the order of [`COLUMNS`].
    pub fn cells(&self) -> impl Iterator<Item = Cell<'_>> + '_ {
        COLUMNS.iter().map(move |c| (c.get)(self))
    }
}

/// One column: its name, its type, and its value in a row.
pub struct Column {
    pub name: &'static str,
    pub ty: Ty,
    pub get: for<'a> fn(&'a Row<'a>) -> Cell<'a>,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `s` without NUL characters (each becomes U+FFFD).
pub fn no_nul(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn text(v: Option<&str>) -> Cell<'_> {
    v.map_or(Cell::Null, |s| Cell::Text(no_nul(s)))
}

fn int(v: u64) -> Cell<'static> {
    Cell::Int(clamp(v))
}

fn money<'a>(row: &Row<'a>, f: fn(&CostBreakdown) -> Decimal) -> Cell<'a> {
    row.r
        .cost
        .as_ref()
        .map_or(Cell::Null, |c| Cell::Num(f(c).normalize()))
}

fn attribution(row: &Row<'_>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = row
        .r
        .attribution
        .iter()
        .map(|(k, v)| (no_nul(k).into_owned(), no_nul(v).into_owned().into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn tags(row: &Row<'_>) -> String {
    let tags: Vec<Cow<'_, str>> = row.r.tags.iter().map(|t| no_nul(t)).collect();
    serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into())
}

macro_rules! col {
    ($name:literal, $ty:ident, $get:expr) => {
        Column {
            name: $name,
            ty: Ty::$ty,
            get: $get,
        }
    };
}

/// Every column a batch writes, in order.
pub static COLUMNS: [Column; 42] = [
    col!("time", Timestamptz, |w| Cell::Time(w.r.time)),
    col!("run_id", Uuid, |w| Cell::Uuid(w.r.run_id)),
    col!("parent_run_id", Uuid, |w| w
        .r
        .parent_run_id
        .map_or(Cell::Null, Cell::Uuid)),
    col!("root_run_id", Uuid, |w| Cell::Uuid(w.r.root_run_id)),
    col!("root_run_name", Text, |w| text(
        w.r.root_run_name.as_deref()
    )),
    col!("model", Text, |w| text(w.r.model.as_deref())),
    col!("requested_model", Text, |w| text(
        w.r.requested_model.as_deref()
    )),
    col!("provider", Text, |w| text(w.r.provider.as_deref())),
    col!("attribution", Jsonb, |w| Cell::Json(attribution(w))),
    col!("tags", Jsonb, |w| Cell::Json(tags(w))),
    col!("input_tokens", Bigint, |w| int(w.r.usage.input)),
    col!("cache_read_tokens", Bigint, |w| int(w.r.usage.cache_read)),
    col!("cache_write_tokens", Bigint, |w| int(w.r.usage.cache_write)),
    col!("cache_write_1h_tokens", Bigint, |w| int(w
        .r
        .usage
        .cache_write_1h)),
    col!("output_tokens", Bigint, |w| int(w.r.usage.output)),
    col!("reasoning_tokens", Bigint, |w| int(w.r.usage.reasoning)),
    col!("input_audio_tokens", Bigint, |w| int(w.r.usage.input_audio)),
    col!("output_audio_tokens", Bigint, |w| int(w
        .r
        .usage
        .output_audio)),
    col!("usage_source", Text, |w| Cell::Text(Cow::Borrowed(
        w.r.usage_source.as_str()
    ))),
    col!("estimated_by", Text, |w| text(w.r.estimated_by.as_deref())),
    col!("service_tier", Text, |w| text(w.r.service_tier.as_deref())),
    col!("cost", Numeric, |w| money(w, |c| c.total)),
    col!("cost_input", Numeric, |w| money(w, |c| c.input)),
    col!("cost_cache_read", Numeric, |w| money(w, |c| c.cache_read)),
    col!("cost_cache_write", Numeric, |w| money(w, |c| c.cache_write)),
    col!("cost_output", Numeric, |w| money(w, |c| c.output)),
    col!("cost_reasoning", Numeric, |w| money(w, |c| c.reasoning)),
    col!("cost_audio", Numeric, |w| money(w, |c| c.audio)),
    col!("cost_pico", Bigint, |w| w
        .r
        .cost
        .as_ref()
        .and_then(|c| pico(c.total))
        .map_or(Cell::Null, Cell::Int)),
    col!("unpriced_reason", Text, |w| text(
        w.r.unpriced_reason.as_deref()
    )),
    col!("price_entry", Text, |w| text(w.r.price_entry.as_deref())),
    col!("catalog_version", Text, |w| text(
        w.r.catalog_version.as_deref()
    )),
    col!("latency_s", Float8, |w| w
        .r
        .latency
        .filter(|l| l.is_finite())
        .map_or(Cell::Null, Cell::Float)),
    col!("latency_us", Bigint, |w| w
        .r
        .latency
        .and_then(latency_micros)
        .map_or(Cell::Null, int)),
    col!("streamed_chunks", Bigint, |w| Cell::Int(i64::from(
        w.r.chunks
    ))),
    col!("error", Text, |w| text(w.r.error.as_deref())),
    col!("usage_notes", Text, |w| text(w.r.usage_notes.as_deref())),
    col!("price_notes", Text, |w| text(w.r.price_notes.as_deref())),
    col!("max_tokens", Bigint, |w| w
        .req
        .max_tokens
        .map_or(Cell::Null, int)),
    col!("request_hash", Text, |w| text(
        w.req.request_hash.as_deref()
    )),
    col!("prompt_prefixes", Text, |w| text(
        w.req.prompt_prefixes.as_deref()
    )),
    col!("prompt_bytes", Bigint, |w| w
        .req
        .prompt_bytes
        .map_or(Cell::Null, int)),
];

/// The column list, comma-separated.
pub fn names() -> String {
    COLUMNS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns' client types, in order.
pub fn types() -> Vec<Type> {
    COLUMNS.iter().map(|c| c.ty.pg()).collect()
}

impl Cell<'_> {
    /// The value's text form (`None`: SQL NULL), as the text `COPY` and `INSERT` write it.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            Cell::Null => return None,
            Cell::Time(t) => Cow::Owned(time_text(t)),
            Cell::Uuid(u) => Cow::Owned(crate::ledger::uuid_string(*u)),
            Cell::Text(s) => Cow::Borrowed(s.as_ref()),
            Cell::Json(s) => Cow::Borrowed(s.as_str()),
            Cell::Int(i) => Cow::Owned(i.to_string()),
            Cell::Num(d) => Cow::Owned(money_text(*d)),
            // `{:?}` of an f64 is its shortest exact text: read back as the same float.
            Cell::Float(f) => Cow::Owned(format!("{f:?}")),
        })
    }

    /// Appends the value to a text-format `COPY` line.
    pub fn copy_text(&self, out: &mut Vec<u8>) {
        let Some(cell) = self.text() else {
            out.extend_from_slice(b"\\N");
            return;
        };
        for b in cell.bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.push(b),
            }
        }
    }

    /// The value fits a column of type `ty`.
    pub fn fits(&self, ty: &Type) -> bool {
        match self {
            Cell::Null => true,
            Cell::Time(_) => *ty == Type::TIMESTAMPTZ,
            Cell::Uuid(_) => *ty == Type::UUID,
            Cell::Text(_) => *ty == Type::TEXT,
            Cell::Json(_) => *ty == Type::JSONB,
            Cell::Int(_) => *ty == Type::INT8,
            Cell::Num(_) => *ty == Type::NUMERIC,
            Cell::Float(_) => *ty == Type::FLOAT8,
        }
    }
}

/// The binary form of a value (binary `COPY`, and the parameters of `INSERT`s).
impl ToSql for Cell<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if !self.fits(ty) {
            return Err(format!("llmledger: a {self:?} value for a {ty} column").into());
        }
        match self {
            Cell::Null => return Ok(IsNull::Yes),
            Cell::Time(t) => return t.to_sql(ty, out),
            Cell::Num(d) => return d.to_sql(ty, out),
            Cell::Uuid(u) => out.put_slice(&u.to_be_bytes()),
            Cell::Text(s) => out.put_slice(s.as_bytes()),
            Cell::Json(s) => {
                out.put_u8(1); // jsonb's binary format version
                out.put_slice(s.as_bytes());
            }
            Cell::Int(i) => out.put_i64(*i),
            Cell::Float(f) => out.put_f64(*f),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        // Each value checks its column's type itself (`fits`).
        true
    }

    to_sql_checked!();
}
