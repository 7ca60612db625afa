//! Reading a catalog document (the bundled JSON, a user's JSON or TOML file, or a Python dict
//! converted to JSON) into validated entries. Every error names the entry and the field.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::price::{PriceSet, PriceVersion, Tier, Tiered, TimeWindow};
use super::Entry;
use crate::error::{Error, Result};
use crate::money::Decimal;

const ENTRY_KEYS: &[&str] = &[
    "id",
    "provider",
    "name",
    "aliases",
    "source",
    "checked",
    "notes",
    "context_window",
    "max_output_tokens",
    "prices",
];
/// The price fields of a price set (USD per 1M tokens of each kind), in display order.
pub const PRICE_FIELDS: [&str; 8] = [
    "input",
    "output",
    "cache_read",
    "cache_write",
    "cache_write_1h",
    "reasoning",
    "input_audio",
    "output_audio",
];

/// How strictly a document is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// The bundled catalog: prices must be decimal strings; provider, source and checked are
    /// required.
    Bundled,
    /// A user's overrides: numbers are accepted (read from their shortest decimal form) and
    /// provenance is optional.
    User,
}

/// A parsed document: its version string (if any) and its entries.
pub struct Document {
    /// The document's `version`.
    pub version: Option<String>,
    /// The entries, in document order.
    pub entries: Vec<Entry>,
}

struct Ctx<'a> {
    origin: &'a str,
    strict: Strictness,
}

impl Ctx<'_> {
    fn err(&self, msg: impl Into<String>) -> Error {
        Error::Catalog {
            origin: self.origin.to_string(),
            message: msg.into(),
        }
    }
}

/// Reads a JSON or TOML text. `origin` names it in errors (a path, `bundled`, `dict`).
pub fn parse_text(text: &str, origin: &str, is_toml: bool, strict: Strictness) -> Result<Document> {
    let ctx = Ctx { origin, strict };
    let value: Value = if is_toml {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ctx.err(format!("not valid TOML: {e}")))?;
        toml_to_json(toml::Value::Table(table))
    } else {
        serde_json::from_str(text).map_err(|e| ctx.err(format!("not valid JSON: {e}")))?
    };
    parse_value(&value, &ctx)
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        // JSON has no NaN or infinity: they stay text, which no field accepts (as null they
        // read as an absent price, billed at another one).
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        // An unquoted TOML date (checked = 2026-11-01) reads as its text.
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

fn parse_value(value: &Value, ctx: &Ctx) -> Result<Document> {
    let Value::Object(top) = value else {
        return Err(ctx.err("the top level must be an object (a table)"));
    };
    // Full form: {"version": ..., "models": [entry, ...]}.
    if let Some(models) = top.get("models") {
        for k in top.keys() {
            if !["version", "currency", "models", "notes"].contains(&k.as_str()) {
                return Err(ctx.err(format!(
                    "unknown top-level field '{k}' (expected version, currency, models)"
                )));
            }
        }
        if let Some(c) = top.get("currency") {
            if c.as_str() != Some("USD") {
                return Err(ctx.err(format!("currency must be \"USD\", got {c}")));
            }
        }
        let version = match top.get("version") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(ctx.err(format!("version must be a string, got {other}"))),
        };
        let Value::Array(list) = models else {
            return Err(ctx.err("'models' must be a list of entries"));
        };
        let entries = list
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let Value::Object(obj) = e else {
                    return Err(ctx.err(format!("models[{i}] must be an object")));
                };
                let id = obj.get("id").and_then(Value::as_str).ok_or_else(|| {
                    ctx.err(format!("models[{i}]: missing 'id' (the model name)"))
                })?;
                parse_entry(id, obj, &format!("models[{i}] ('{id}')"), ctx)
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Document { version, entries });
    }
    // Short form: {"model-name": {"input": "1.00", "output": "2.00", ...}, ...}.
    let entries = top
        .iter()
        .map(|(id, e)| {
            let Value::Object(obj) = e else {
                return Err(ctx.err(format!(
                    "'{id}': expected an object of prices like {{\"input\": \"1.00\", \"output\": \"2.00\"}}"
                )));
            };
            parse_entry(id, obj, &format!("'{id}'"), ctx)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Document {
        version: None,
        entries,
    })
}

fn opt_str(obj: &Map<String, Value>, key: &str, at: &str, ctx: &Ctx) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ctx.err(format!("{at}: '{key}' must be a string, got {other}"))),
    }
}

/// The largest token count a limit may state: 2^53 - 1, exact as a JSON number in every reader
/// (JavaScript, Python floats) and far enough below `u64::MAX` that a prompt plus a limit
/// cannot overflow.
pub const MAX_TOKEN_COUNT: u64 = (1 << 53) - 1;

/// A token limit (`context_window`, `max_output_tokens`): absent, or an integer from 1 to
/// [`MAX_TOKEN_COUNT`]. A string, a fraction, zero or a negative number is an error naming
/// the entry and the field.
fn opt_token_count(
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
    ctx: &Ctx,
) -> Result<Option<u64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_TOKEN_COUNT).contains(&n) => Ok(Some(n)),
            _ => Err(ctx.err(format!(
                "{at}: '{key}' must be a positive whole number of tokens \
                 (1 to {MAX_TOKEN_COUNT}), got {v}"
            ))),
        },
    }
}

fn parse_date(s: &str, at: &str, key: &str, ctx: &Ctx) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ctx.err(format!(
            "{at}: '{key}' must be an ISO date like 2026-11-01, got \"{s}\""
        ))
    })
}

fn parse_entry(id: &str, obj: &Map<String, Value>, at: &str, ctx: &Ctx) -> Result<Entry> {
    let has_prices = obj.contains_key("prices");
    for k in obj.keys() {
        let known = ENTRY_KEYS.contains(&k.as_str())
            || (!has_prices
                && (PRICE_FIELDS.contains(&k.as_str())
                    || ["tiers", "variants", "from"].contains(&k.as_str())));
        if !known {
            return Err(ctx.err(format!(
                "{at}: unknown field '{k}' (entry fields: {}; price fields: {})",
                ENTRY_KEYS.join(", "),
                PRICE_FIELDS.join(", ")
            )));
        }
    }
    let id = id.trim().to_ascii_lowercase();
    if id.is_empty() {
        return Err(ctx.err(format!("{at}: 'id' is empty")));
    }
    // The catalog's own key for the provider (`azure_openai` is `azure`), as hints are
    // normalised when a name is resolved: else no hint could ever find the entry.
    let provider = opt_str(obj, "provider", at, ctx)?
        .map(|p| super::normalize_provider(&p.trim().to_ascii_lowercase()).to_string());
    let source = opt_str(obj, "source", at, ctx)?;
    let checked = opt_str(obj, "checked", at, ctx)?
        .map(|s| parse_date(&s, at, "checked", ctx))
        .transpose()?;
    if ctx.strict == Strictness::Bundled {
        if provider.is_none() {
            return Err(ctx.err(format!("{at}: 'provider' is required")));
        }
        if source.is_none() || checked.is_none() {
            return Err(ctx.err(format!("{at}: 'source' and 'checked' are required")));
        }
    }
    let aliases = match obj.get("aliases") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| s.trim().to_ascii_lowercase())
                    .ok_or_else(|| ctx.err(format!("{at}: 'aliases' must be a list of strings")))
            })
            .collect::<Result<Vec<_>>>()?,
        Some(_) => return Err(ctx.err(format!("{at}: 'aliases' must be a list of strings"))),
    };
    let mut versions = if has_prices {
        let Some(Value::Array(list)) = obj.get("prices") else {
            return Err(ctx.err(format!("{at}: 'prices' must be a list of price versions")));
        };
        if list.is_empty() {
            return Err(ctx.err(format!("{at}: 'prices' is empty")));
        }
        list.iter()
            .enumerate()
            .map(|(i, v)| {
                let Value::Object(o) = v else {
                    return Err(ctx.err(format!("{at}: prices[{i}] must be an object")));
                };
                parse_version(o, &format!("{at}: prices[{i}]"), ctx)
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        let mut prices = obj.clone();
        for k in ENTRY_KEYS {
            prices.remove(*k);
        }
        vec![parse_version(&prices, at, ctx)?]
    };
    versions.sort_by_key(|v| v.from);
    for w in versions.windows(2) {
        if w[0].from == w[1].from {
            return Err(ctx.err(format!("{at}: two price versions have the same 'from'")));
        }
    }
    let context_window = opt_token_count(obj, "context_window", at, ctx)?;
    let max_output_tokens = opt_token_count(obj, "max_output_tokens", at, ctx)?;
    Ok(Entry::new(
        id,
        provider,
        opt_str(obj, "name", at, ctx)?,
        aliases,
        source,
        checked,
        opt_str(obj, "notes", at, ctx)?,
        context_window,
        max_output_tokens,
        versions,
        ctx.strict == Strictness::User,
    ))
}

fn parse_version(obj: &Map<String, Value>, at: &str, ctx: &Ctx) -> Result<PriceVersion> {
    for k in obj.keys() {
        if !(PRICE_FIELDS.contains(&k.as_str())
            || ["tiers", "variants", "from", "windows"].contains(&k.as_str()))
        {
            return Err(ctx.err(format!(
                "{at}: unknown price field '{k}' (expected from, tiers, variants, windows, {})",
                PRICE_FIELDS.join(", ")
            )));
        }
    }
    let from = opt_str(obj, "from", at, ctx)?
        .map(|s| parse_date(&s, at, "from", ctx))
        .transpose()?;
    let standard = parse_tiered(obj, at, ctx)?;
    let mut variants = BTreeMap::new();
    match obj.get("variants") {
        None | Some(Value::Null) => {}
        Some(Value::Object(vs)) => {
            for (name, v) in vs {
                let Value::Object(o) = v else {
                    return Err(ctx.err(format!("{at}: variants.{name} must be an object")));
                };
                let vat = format!("{at}: variants.{name}");
                for k in o.keys() {
                    if !(PRICE_FIELDS.contains(&k.as_str()) || k == "tiers") {
                        return Err(ctx.err(format!("{vat}: unknown price field '{k}'")));
                    }
                }
                variants.insert(name.to_ascii_lowercase(), parse_tiered(o, &vat, ctx)?);
            }
        }
        Some(_) => return Err(ctx.err(format!("{at}: 'variants' must be an object"))),
    }
    let windows = parse_windows(obj, at, ctx)?;
    Ok(PriceVersion {
        from,
        standard,
        variants,
        windows,
    })
}

/// `windows`: `[{"start": "16:30", "end": "00:30", "input": ..., "output": ..., ...}]`.
fn parse_windows(obj: &Map<String, Value>, at: &str, ctx: &Ctx) -> Result<Vec<TimeWindow>> {
    let list = match obj.get("windows") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ctx.err(format!("{at}: 'windows' must be a list"))),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, w) in list.iter().enumerate() {
        let wat = format!("{at}: windows[{i}]");
        let Value::Object(o) = w else {
            return Err(ctx.err(format!("{wat} must be an object")));
        };
        for k in o.keys() {
            if !(PRICE_FIELDS.contains(&k.as_str())
                || ["tiers", "start", "end"].contains(&k.as_str()))
            {
                return Err(ctx.err(format!("{wat}: unknown field '{k}'")));
            }
        }
        let minute = |key: &str| -> Result<u16> {
            let s = opt_str(o, key, &wat, ctx)?
                .ok_or_else(|| ctx.err(format!("{wat}: '{key}' is required (\"HH:MM\", UTC)")))?;
            parse_minute(&s).ok_or_else(|| {
                ctx.err(format!(
                    "{wat}: '{key}' must be a UTC time \"HH:MM\", not '{s}'"
                ))
            })
        };
        let (start, end) = (minute("start")?, minute("end")?);
        if start == end {
            return Err(ctx.err(format!("{wat}: 'start' and 'end' are the same time")));
        }
        out.push(TimeWindow {
            start,
            end,
            prices: parse_tiered(o, &wat, ctx)?,
        });
    }
    Ok(out)
}

/// `HH:MM` (00:00 to 23:59) as a minute of the day.
fn parse_minute(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn parse_tiered(obj: &Map<String, Value>, at: &str, ctx: &Ctx) -> Result<Tiered> {
    let base = parse_set(obj, at, ctx)?;
    let mut tiers = Vec::new();
    match obj.get("tiers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, t) in list.iter().enumerate() {
                let tat = format!("{at}: tiers[{i}]");
                let Value::Object(o) = t else {
                    return Err(ctx.err(format!("{tat} must be an object")));
                };
                for k in o.keys() {
                    if !(PRICE_FIELDS.contains(&k.as_str()) || k == "above") {
                        return Err(ctx.err(format!("{tat}: unknown field '{k}'")));
                    }
                }
                let above = o.get("above").and_then(Value::as_u64).ok_or_else(|| {
                    ctx.err(format!("{tat}: 'above' (a token count) is required"))
                })?;
                if let Some(prev) = tiers.last().map(|t: &Tier| t.above) {
                    if above <= prev {
                        return Err(
                            ctx.err(format!("{tat}: tiers must be in ascending 'above' order"))
                        );
                    }
                }
                tiers.push(Tier {
                    above,
                    prices: parse_set(o, &tat, ctx)?,
                });
            }
        }
        Some(_) => return Err(ctx.err(format!("{at}: 'tiers' must be a list"))),
    }
    Ok(Tiered { base, tiers })
}

fn parse_set(obj: &Map<String, Value>, at: &str, ctx: &Ctx) -> Result<PriceSet> {
    let get = |key: &str| parse_price(obj.get(key), at, key, ctx);
    let input = get("input")?.ok_or_else(|| ctx.err(format!("{at}: 'input' price is required")))?;
    let output =
        get("output")?.ok_or_else(|| ctx.err(format!("{at}: 'output' price is required")))?;
    Ok(PriceSet {
        input,
        output,
        cache_read: get("cache_read")?,
        cache_write: get("cache_write")?,
        cache_write_1h: get("cache_write_1h")?,
        reasoning: get("reasoning")?,
        input_audio: get("input_audio")?,
        output_audio: get("output_audio")?,
    })
}

fn parse_price(v: Option<&Value>, at: &str, key: &str, ctx: &Ctx) -> Result<Option<Decimal>> {
    let text = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        // A whole number is exact; a fraction arrives as a binary float (JSON, TOML, a Python
        // float in `prices=`), whose text may not be the price the user meant: refused.
        Some(Value::Number(n)) if ctx.strict == Strictness::User && !n.is_f64() => n.to_string(),
        Some(Value::Number(n)) if ctx.strict == Strictness::User => {
            return Err(ctx.err(format!(
                "{at}: '{key}' is the number {n}, a float: prices must be exact, so write it \
                 as a decimal string (\"{n}\") or a Decimal; whole numbers (2) are fine"
            )))
        }
        Some(other) => {
            return Err(ctx.err(format!(
                "{at}: '{key}' must be a decimal string of USD per 1M tokens like \"2.50\", got {other}"
            )))
        }
    };
    let d = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| ctx.err(format!("{at}: '{key}' is not a decimal number: \"{text}\"")))?;
    if d.is_sign_negative() {
        return Err(ctx.err(format!("{at}: '{key}' is negative: {text}")));
    }
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(entry_fields: &str, strict: Strictness) -> Result<Entry> {
        let text = format!(
            r#"{{"models": [{{"id": "m", "provider": "p", "source": "s", "checked": "2026-01-01",
                 {entry_fields} "prices": [{{"input": "1", "output": "2"}}]}}]}}"#
        );
        parse_text(&text, "limits.json", false, strict).map(|mut d| d.entries.remove(0))
    }

    #[test]
    fn user_prices_refuse_floats_and_take_whole_numbers() {
        let parse = |prices: &str, toml: bool| {
            let text = if toml {
                format!("[m]\n{prices}\n")
            } else {
                format!("{{\"m\": {{{prices}}}}}")
            };
            parse_text(&text, "my-prices", toml, Strictness::User)
        };
        let e = parse(r#""input": 2.5, "output": "1""#, false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("my-prices")
                && e.contains("'m'")
                && e.contains("'input' is the number 2.5, a float"),
            "{e}"
        );
        assert!(e.contains(r#"("2.5")"#), "{e}");
        let e = parse("input = \"1\"\noutput = 0.1", true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("'output' is the number 0.1, a float"), "{e}");
        let doc = parse(r#""input": 2, "output": "0.10""#, false).unwrap();
        let p = &doc.entries[0].versions[0].standard.base;
        assert_eq!((p.input, p.output), (Decimal::from(2), Decimal::new(10, 2)));
    }

    #[test]
    fn max_output_tokens_is_read_next_to_context_window() {
        for strict in [Strictness::Bundled, Strictness::User] {
            let e = one(
                r#""context_window": 128000, "max_output_tokens": 16384,"#,
                strict,
            )
            .unwrap();
            assert_eq!(e.context_window, Some(128_000));
            assert_eq!(e.max_output_tokens, Some(16_384));
            let e = one(r#""max_output_tokens": null,"#, strict).unwrap();
            assert_eq!(e.max_output_tokens, None);
            let e = one("", strict).unwrap();
            assert_eq!(e.max_output_tokens, None);
        }
        let e = one(
            &format!(r#""max_output_tokens": {MAX_TOKEN_COUNT},"#),
            Strictness::User,
        )
        .unwrap();
        assert_eq!(e.max_output_tokens, Some(MAX_TOKEN_COUNT));
    }

    #[test]
    fn bad_max_output_tokens_name_the_entry_and_field() {
        for bad in [
            "0",
            "-1",
            "-16384",
            "\"16384\"",
            "16384.5",
            "1e5",
            "true",
            "[16384]",
            "9007199254740992",     // MAX_TOKEN_COUNT + 1
            "18446744073709551615", // u64::MAX
            "100000000000000000000000",
        ] {
            for strict in [Strictness::Bundled, Strictness::User] {
                let err = one(&format!(r#""max_output_tokens": {bad},"#), strict)
                    .err()
                    .unwrap_or_else(|| panic!("{bad} was accepted"))
                    .to_string();
                assert!(err.contains("limits.json"), "{err}");
                assert!(err.contains("models[0] ('m')"), "{err}");
                assert!(
                    err.contains("'max_output_tokens' must be a positive whole number of tokens"),
                    "{err}"
                );
            }
        }
        // The short form names the entry by its key; context_window follows the same rule.
        let err = parse_text(
            r#"{"my-model": {"input": "1", "output": "2", "context_window": 0}}"#,
            "dict",
            false,
            Strictness::User,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("'my-model': 'context_window' must be a positive whole number"),
            "{err}"
        );
    }

    #[test]
    fn a_toml_nan_or_infinite_price_is_an_error_not_an_absent_price() {
        // `cache_read = nan` read as null: no cache price, so cache reads billed at the input
        // price without a word; `input = inf` said "'input' price is required".
        for (field, value) in [("cache_read", "nan"), ("input", "inf"), ("output", "-inf")] {
            let mut prices = vec![("input", "\"1\""), ("output", "\"2\"")];
            prices.retain(|(k, _)| *k != field);
            prices.push((field, value));
            let body = prices
                .iter()
                .fold(String::new(), |b, (k, v)| b + k + " = " + v + "\n");
            let err = parse_text(&format!("[m]\n{body}"), "p.toml", true, Strictness::User)
                .err()
                .unwrap_or_else(|| panic!("{field} = {value} accepted"))
                .to_string();
            assert!(
                err.contains(&format!("'{field}' is not a decimal number")),
                "{err}"
            );
        }
    }

    #[test]
    fn max_output_tokens_in_toml_short_form() {
        let doc = parse_text(
            "[\"in-house-7b\"]\ninput = \"0.1\"\noutput = \"0.2\"\nmax_output_tokens = 4096\n",
            "p.toml",
            true,
            Strictness::User,
        )
        .unwrap();
        let e = &doc.entries[0];
        assert_eq!(e.id, "in-house-7b");
        assert_eq!(e.max_output_tokens, Some(4096));
        let err = parse_text(
            "[m]\ninput = \"1\"\noutput = \"1\"\nmax_output_tokens = \"4096\"\n",
            "p.toml",
            true,
            Strictness::User,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("'m': 'max_output_tokens' must be a positive"),
            "{err}"
        );
    }
}
