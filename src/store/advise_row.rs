//! A SQLite row of `reader::Columns::Advise` as a record, decoded without copies: text is
//! read in place (no `String` per column), the columns the advisor does not read are not
//! touched, and model, provider and root run names are shared `Arc`s from a small interner
//! (a ledger names few of them) instead of one allocation each per row.
//!
//! The record is exactly the one [`read_row`] makes of the same row; whenever a value is not
//! what the fast path expects (a type SQLite's affinity did not give the column, text that
//! is not UTF-8, JSON with escapes, a time not in the stored form), the row goes through
//! [`read_row`] itself, so errors and odd rows come out the same too.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::ValueRef;

use crate::catalog::CostBreakdown;
use crate::ledger::CallRecord;
use crate::money::Decimal;
use crate::usage::{Usage, UsageSource};

use super::record::request_facts;
use super::sqlite::read_row;

/// Distinct names the interner keeps; past it, it starts over (a ledger whose root run names
/// are all different gains nothing from it and must not grow it without bound).
const MAX_INTERNED: usize = 4096;

/// Decodes advisor rows (see the module doc); one per reader, keeping its interned names.
#[derive(Default)]
pub struct AdviseRows {
    names: HashSet<Arc<str>, foldhash::fast::RandomState>,
    /// The last root run name, model and provider: most rows repeat the row before's.
    last: [Option<Arc<str>>; 3],
    /// The last row's metadata keys, in order: rows mostly capture the same ones.
    last_keys: Vec<Arc<str>>,
}

/// [`AdviseRows::last`]'s places.
const ROOT_NAME: usize = 0;
const MODEL: usize = 1;
const PROVIDER: usize = 2;

/// Why the fast path gave up on a row: [`read_row`] decodes it instead.
struct Slow;

type Fast<T> = std::result::Result<T, Slow>;

/// A text column's bytes (not checked to be UTF-8: for values parsed as ASCII, which text
/// that is not UTF-8 never is).
fn bytes<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Fast<Option<&'r [u8]>> {
    match row.get_ref(i).map_err(|_| Slow)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => Ok(Some(t)),
        _ => Err(Slow),
    }
}

fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Fast<Option<&'r str>> {
    bytes(row, i)?
        .map(|t| std::str::from_utf8(t).map_err(|_| Slow))
        .transpose()
}

/// A run id as `parse_uuid` reads it (the same parser, on the bytes).
fn uuid(b: &[u8]) -> Fast<u128> {
    uuid::Uuid::try_parse_ascii(b)
        .map(|u| u.as_u128())
        .map_err(|_| Slow)
}

fn int(row: &rusqlite::Row<'_>, i: usize) -> Fast<Option<i64>> {
    match row.get_ref(i).map_err(|_| Slow)? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(v) => Ok(Some(v)),
        _ => Err(Slow),
    }
}

/// A token count as `read_row` reads it: NULL and negative numbers are 0.
fn count(row: &rusqlite::Row<'_>, i: usize) -> Fast<u64> {
    Ok(int(row, i)?.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

fn money(row: &rusqlite::Row<'_>, i: usize) -> Fast<Option<Decimal>> {
    text(row, i)?
        .map(|t| {
            crate::money::parse_stored(t)
                .or_else(|| Decimal::from_str(t).ok())
                .and_then(|d| crate::money::call_cost(d).ok())
                .ok_or(Slow)
        })
        .transpose()
}

/// A time stored as `time_text` writes it (`2026-11-30T12:00:00.123456Z`); anything else
/// (other offsets, precisions, leap seconds) is left to the RFC 3339 parser.
fn stored_time(b: &[u8]) -> Fast<DateTime<Utc>> {
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return Err(Slow);
    }
    let num = |from: usize, to: usize| -> Fast<u32> {
        b[from..to].iter().try_fold(0u32, |n, c| {
            if c.is_ascii_digit() {
                Ok(n * 10 + u32::from(c - b'0'))
            } else {
                Err(Slow)
            }
        })
    };
    let (sec, micro) = (num(17, 19)?, num(20, 26)?);
    if sec > 59 {
        return Err(Slow);
    }
    let year = i32::try_from(num(0, 4)?).map_err(|_| Slow)?;
    NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)
        .and_then(|d| d.and_hms_micro_opt(num(11, 13).ok()?, num(14, 16).ok()?, sec, micro))
        .map(|t| t.and_utc())
        .ok_or(Slow)
}

/// A small reader of the JSON the ledger writes for attribution and tags: flat objects and
/// arrays of strings without escapes. Anything else (`None`) is left to serde_json.
struct Json<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Json<'a> {
    fn new(text: &'a str) -> Self {
        Json { text, at: 0 }
    }

    fn peek(&mut self) -> Option<u8> {
        while let Some(c) = self.text.as_bytes().get(self.at) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(*c);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.at += 1)
    }

    /// A string with no escapes or control characters (both serde_json's business).
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let from = self.at;
        let len = self.text.as_bytes()[from..]
            .iter()
            .position(|c| *c == b'"' || *c == b'\\' || *c < 0x20)?;
        if self.text.as_bytes()[from + len] != b'"' {
            return None;
        }
        self.at = from + len + 1;
        // Both ends are next to a `"`, never inside a character.
        Some(&self.text[from..from + len])
    }

    /// The end: only whitespace after the value.
    fn end(&mut self) -> Option<()> {
        self.peek().is_none().then_some(())
    }

    /// `{"key": "value", ...}`, in text order.
    fn object(mut self) -> Option<Vec<(&'a str, &'a str)>> {
        let mut out = Vec::new();
        self.eat(b'{')?;
        if self.eat(b'}').is_none() {
            loop {
                let k = self.string()?;
                self.eat(b':')?;
                out.push((k, self.string()?));
                if self.eat(b',').is_none() {
                    self.eat(b'}')?;
                    break;
                }
            }
        }
        self.end().map(|()| out)
    }

    /// `["tag", ...]`.
    fn strings(mut self) -> Option<Vec<String>> {
        let mut out = Vec::new();
        self.eat(b'[')?;
        if self.eat(b']').is_none() {
            loop {
                out.push(self.string()?.to_string());
                if self.eat(b',').is_none() {
                    self.eat(b']')?;
                    break;
                }
            }
        }
        self.end().map(|()| out)
    }
}

impl AdviseRows {
    /// The record of an advisor row (`SELECT_ADVISE`'s columns, in `SELECT`'s positions).
    pub fn read(&mut self, row: &rusqlite::Row<'_>) -> std::result::Result<CallRecord, String> {
        match self.fast(row) {
            Ok(r) => Ok(r),
            Err(Slow) => read_row(row),
        }
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.names.get(s) {
            return a.clone();
        }
        if self.names.len() >= MAX_INTERNED {
            self.names.clear();
        }
        let a: Arc<str> = Arc::from(s);
        self.names.insert(a.clone());
        a
    }

    /// The shared name `s` of column `col` (one of [`AdviseRows::last`]'s places).
    fn name(&mut self, col: usize, s: Option<&str>) -> Option<Arc<str>> {
        let s = s?;
        if let Some(last) = self.last[col].as_ref().filter(|l| &***l == s) {
            return Some(last.clone());
        }
        let a = self.intern(s);
        self.last[col] = Some(a.clone());
        Some(a)
    }

    /// Captured metadata as `read_row` makes it: keys in order, the last of a repeated key,
    /// values that are not strings as their JSON text.
    fn attribution(&mut self, json: Option<&str>) -> Fast<Vec<(Arc<str>, String)>> {
        let json = json.unwrap_or("{}");
        if json == "{}" {
            return Ok(Vec::new());
        }
        if let Some(mut pairs) = Json::new(json).object() {
            // serde_json's map: sorted by key, the last of a repeated key.
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let mut out: Vec<(Arc<str>, String)> = Vec::with_capacity(pairs.len());
            for (i, (k, v)) in pairs.iter().enumerate() {
                if pairs.get(i + 1).is_none_or(|next| next.0 != *k) {
                    let n = out.len();
                    let key = match self.last_keys.get(n) {
                        Some(last) if &**last == *k => last.clone(),
                        _ => {
                            let key = self.intern(k);
                            self.last_keys.truncate(n);
                            self.last_keys.push(key.clone());
                            key
                        }
                    };
                    out.push((key, (*v).to_string()));
                }
            }
            return Ok(out);
        }
        let map: BTreeMap<&str, serde_json::Value> =
            serde_json::from_str(json).map_err(|_| Slow)?;
        Ok(map
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (self.intern(k), v)
            })
            .collect())
    }

    fn fast(&mut self, row: &rusqlite::Row<'_>) -> Fast<CallRecord> {
        let run_id = uuid(bytes(row, 1)?.unwrap_or_default())?;
        let cost = match money(row, 19)? {
            None => None,
            Some(total) => Some(CostBreakdown {
                total,
                input: money(row, 20)?.unwrap_or_default(),
                cache_read: money(row, 21)?.unwrap_or_default(),
                cache_write: money(row, 22)?.unwrap_or_default(),
                ..CostBreakdown::default()
            }),
        };
        let tags = match text(row, 8)?.unwrap_or("[]") {
            "[]" => Vec::new(),
            json => match Json::new(json).strings() {
                Some(tags) => tags,
                None => serde_json::from_str(json).map_err(|_| Slow)?,
            },
        };
        let usage_source = match text(row, 17)?.unwrap_or("none") {
            "provider" => UsageSource::Provider,
            "estimated" => UsageSource::Estimated,
            "cache" => UsageSource::Cache,
            "none" => UsageSource::None,
            _ => return Err(Slow),
        };
        let positive = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
        Ok(CallRecord {
            time: stored_time(bytes(row, 0)?.unwrap_or_default())?,
            run_id,
            parent_run_id: bytes(row, 2)?.map(uuid).transpose()?,
            root_run_id: match bytes(row, 3)? {
                Some(r) => uuid(r)?,
                None => run_id,
            },
            root_run_name: self.name(ROOT_NAME, text(row, 4)?),
            model: self.name(MODEL, text(row, 5)?),
            requested_model: None,
            provider: self.name(PROVIDER, text(row, 6)?),
            attribution: self.attribution(text(row, 7)?)?,
            tags,
            usage: Usage {
                input: count(row, 9)?,
                cache_read: count(row, 10)?,
                cache_write: count(row, 11)?,
                cache_write_1h: count(row, 12)?,
                output: count(row, 13)?,
                reasoning: count(row, 14)?,
                input_audio: count(row, 15)?,
                output_audio: count(row, 16)?,
            },
            usage_source,
            estimated_by: None,
            service_tier: text(row, 18)?.map(String::from),
            cost,
            unpriced_reason: text(row, 26)?.map(String::from),
            price_entry: None,
            catalog_version: None,
            latency: None,
            chunks: u32::try_from(count(row, 30)?).unwrap_or(u32::MAX),
            error: text(row, 31)?.map(String::from),
            usage_notes: None,
            price_notes: None,
            request: request_facts(
                positive(int(row, 36)?),
                text(row, 37)?,
                text(row, 38)?,
                positive(int(row, 39)?),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reader::SELECT_ADVISE;
    use crate::store::SqliteLedger;

    /// Every row of `path` through the fast decoder and through `read_row`: the same record
    /// (same decimals' scales too: compared by their debug text), or the same error.
    fn same_as_read_row(path: &std::path::Path) -> usize {
        let db = SqliteLedger::open_read(path).unwrap();
        let mut stmt = db
            .conn
            .prepare(&format!("{SELECT_ADVISE} ORDER BY c.id"))
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut decoder = AdviseRows::default();
        let mut n = 0;
        while let Some(row) = rows.next().unwrap() {
            let fast = decoder.read(row);
            let slow = read_row(row);
            assert_eq!(fast, slow, "row {n}");
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "row {n}");
            n += 1;
        }
        n
    }

    /// A row to store: the columns the cases vary.
    struct Odd {
        time: &'static str,
        attribution: &'static str,
        tags: &'static str,
        source: &'static str,
        cost: Option<&'static str>,
        input: i64,
        hash: Option<&'static str>,
        prefixes: Option<&'static str>,
    }

    const PLAIN: Odd = Odd {
        time: "2026-11-30T12:00:00.123456Z",
        attribution: r#"{"user_id": "u1"}"#,
        tags: r#"["prod"]"#,
        source: "provider",
        cost: Some("0.0012"),
        input: 100,
        hash: Some("00000000000000ff"),
        prefixes: Some("0000000000000007:10 00000000000000aa:20"),
    };

    const ODD: [Odd; 9] = [
        PLAIN,
        // Keys out of order, repeated, escaped; values that are not strings.
        Odd {
            time: "2026-11-30T12:00:01.000000Z",
            attribution: r#"{"b": 1, "a": "x", "b": "two", "n": null, "o": {"k": [1, 2.5]}}"#,
            tags: r#"["a", "b\u0041"]"#,
            source: "estimated",
            cost: Some("1.50"),
            input: 5,
            hash: None,
            prefixes: None,
        },
        Odd {
            time: "2026-11-30T12:00:02.000000Z",
            attribution: r#"{"us\u0065r": "u2"}"#,
            tags: "[]",
            source: "cache",
            cost: None,
            input: -3,
            hash: Some("zz"),
            prefixes: Some("1:2"),
        },
        // Other time forms: an offset, no fraction, a leap second.
        Odd {
            time: "2026-11-30T14:00:03+02:00",
            attribution: "{}",
            source: "none",
            cost: Some("0"),
            hash: Some("1"),
            prefixes: Some("bad"),
            ..PLAIN
        },
        Odd {
            time: "2026-11-30T12:00:04Z",
            cost: Some("0.10000"),
            ..PLAIN
        },
        Odd {
            time: "2026-06-30T23:59:60.500000Z",
            cost: None,
            ..PLAIN
        },
        // JSON as people write it: spacing, repeated string keys, escapes in values.
        Odd {
            time: "2026-11-30T12:00:05.000000Z",
            attribution: " { \"b\" : \"1\" ,\"a\":\"2\",\n\"b\":\"3\" } ",
            tags: " [ \"x\" ,\"y\" ] ",
            ..PLAIN
        },
        Odd {
            time: "2026-11-30T12:00:06.000000Z",
            attribution: r#"{"a": "line\nbreak", "é": "ü"}"#,
            tags: r#"["é", ""]"#,
            ..PLAIN
        },
        Odd {
            time: "2026-11-30T12:00:07.000000Z",
            attribution: r#"{"": ""}"#,
            tags: "[]",
            ..PLAIN
        },
    ];

    fn uuid(i: usize) -> String {
        format!("00000000-0000-4000-8000-{i:012}")
    }

    /// A ledger of `rows` in a fresh folder named for `name`.
    fn ledger(name: &str, rows: &[Odd]) -> (std::path::PathBuf, rusqlite::Connection) {
        let dir = std::env::temp_dir().join(format!("llmledger-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("odd.db");
        let _ = std::fs::remove_file(&path);
        drop(SqliteLedger::open(&path, false).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (i, o) in rows.iter().enumerate() {
            insert(&conn, i, o);
        }
        (path, conn)
    }

    /// Row `i` (its id is `i + 1`): `o`, and columns that vary with `i`.
    fn insert(conn: &rusqlite::Connection, i: usize, o: &Odd) {
        conn.execute(
            "INSERT INTO calls (id, time, run_id, parent_run_id, root_run_id, root_run_name, \
                 model, provider, attribution, tags, input_tokens, usage_source, cost, \
                 cost_input, service_tier, unpriced_reason, error, max_tokens, request_hash, \
                 prompt_prefixes, prompt_bytes) VALUES (?16, ?1, ?2, ?3, ?4, 'nightly', \
                 'gpt-4o', 'openai', ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 30)",
            rusqlite::params![
                o.time,
                uuid(i),
                (i % 2 == 1).then(|| uuid(100)),
                if i.is_multiple_of(3) {
                    uuid(i)
                } else {
                    uuid(100)
                },
                o.attribution,
                o.tags,
                o.input,
                o.source,
                o.cost,
                (i == 1).then_some("flex"),
                o.cost.is_none().then_some("no price"),
                (i == 2).then_some("RateLimitError: slow"),
                i.is_multiple_of(2).then(|| i64::try_from(i).unwrap() - 1),
                o.hash,
                o.prefixes,
                i64::try_from(i + 1).unwrap(),
            ],
        )
        .unwrap();
    }

    #[test]
    fn rows_decode_as_read_row_decodes_them_odd_ones_too() {
        let (path, _) = ledger("advise-row", &ODD);
        assert_eq!(same_as_read_row(&path), ODD.len());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn rows_read_row_refuses_are_refused() {
        // A bad UUID, a bad amount, an unknown usage source, text in a count, a time that is
        // no time, JSON that is not the JSON of a record.
        let (path, conn) = ledger("advise-row-bad", &[PLAIN]);
        for (column, value) in [
            ("run_id", "'not-a-uuid'"),
            ("cost", "'1.2.3'"),
            ("cost", "'-1'"),
            ("usage_source", "'guessed'"),
            ("input_tokens", "'many'"),
            ("time", "'yesterday'"),
            ("time", "'2026-02-30T12:00:00.000000Z'"),
            ("attribution", "'[1]'"),
            ("attribution", "'{\"a\": \"1\",}'"),
            ("attribution", "'{\"a\": \"1\"} x'"),
            ("attribution", "'{\"a\": \"tab\there\"}'"),
            ("tags", "'[\"x\",]'"),
            ("tags", "'[\"x\"] ]'"),
            ("tags", "'[1]'"),
        ] {
            conn.execute(
                &format!("UPDATE calls SET {column} = {value} WHERE id = 1"),
                [],
            )
            .unwrap();
            same_as_read_row(&path);
            let db = SqliteLedger::open_read(&path).unwrap();
            let mut stmt = db.conn.prepare(SELECT_ADVISE).unwrap();
            let mut rows = stmt.query([]).unwrap();
            let row = rows.next().unwrap().unwrap();
            assert!(
                AdviseRows::default().read(row).is_err(),
                "{column} = {value}"
            );
            drop(rows);
            conn.execute("DELETE FROM calls", []).unwrap();
            insert(&conn, 0, &PLAIN);
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
