//! Reading LangChain's objects (`LLMResult`, `AIMessage.usage_metadata`, `llm_output`,
//! start-hook kwargs) into the core's owned types.
//!
//! Everything here is tolerant: a malformed or missing field becomes a warning that names it,
//! and the call is still recorded with what was valid.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyType};

use crate::shared_names::shared_name;
use crate::tracker::{EndInfo, StartInfo};
use crate::usage::Usage;

/// Counts above this are rejected as implausible (a trillion tokens in one call).
const MAX_COUNT: u64 = 1_000_000_000_000;
#[allow(clippy::cast_possible_wrap)]
const MAX_COUNT_I64: i64 = MAX_COUNT as i64;

/// `ChatGeneration` and `ChatGenerationChunk` (each `None` if it cannot be imported), imported
/// once.
fn chat_generation_types(py: Python<'_>) -> &[Option<Py<PyType>>; 2] {
    static TYPES: PyOnceLock<[Option<Py<PyType>>; 2]> = PyOnceLock::new();
    TYPES.get_or_init(py, || {
        let outputs = py.import("langchain_core.outputs").ok();
        let ty = |name: &str| {
            outputs
                .as_ref()?
                .getattr(name)
                .ok()?
                .cast_into::<PyType>()
                .ok()
                .map(Bound::unbind)
        };
        [ty("ChatGeneration"), ty("ChatGenerationChunk")]
    })
}

/// Whether `gen` is a `ChatGeneration`. The exact types are compared first: pydantic's
/// metaclass makes `isinstance` a Python-level call, too slow for every event.
fn is_chat_generation(gen: &Bound<'_, PyAny>) -> bool {
    let py = gen.py();
    let [chat, chunk] = chat_generation_types(py);
    let ty = gen.get_type();
    if chat.as_ref().is_some_and(|t| ty.is(t)) || chunk.as_ref().is_some_and(|t| ty.is(t)) {
        return true;
    }
    chat.as_ref()
        .is_some_and(|t| gen.is_instance(t.bind(py)).unwrap_or(false))
}

/// A value as text: `str` as is, anything else through `str()`.
pub fn text_of(v: &Bound<'_, PyAny>) -> Option<String> {
    if v.is_none() {
        return None;
    }
    if let Ok(s) = v.cast::<PyString>() {
        return s.to_str().ok().map(str::to_string);
    }
    v.str()
        .ok()
        .and_then(|s| s.to_str().ok().map(str::to_string))
}

/// A model or provider name as a shared string (see [`shared_name`]): no copy of a name the
/// thread has seen lately.
fn name_of(v: &Bound<'_, PyAny>) -> Option<Arc<str>> {
    match v.cast::<PyString>() {
        Ok(s) => s.to_str().ok().map(shared_name),
        Err(_) => text_of(v).map(|t| shared_name(&t)),
    }
}

fn dict_get<'py>(d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> Option<Bound<'py, PyAny>> {
    d.get_item(key).ok().flatten().filter(|v| !v.is_none())
}

fn as_dict<'a, 'py>(v: &'a Bound<'py, PyAny>) -> Option<&'a Bound<'py, PyDict>> {
    v.cast::<PyDict>().ok()
}

/// Reads a token count; `None` when absent. Malformed values are reported in `warnings`.
#[inline]
fn count(
    v: Option<Bound<'_, PyAny>>,
    field: impl Field,
    warnings: &mut Vec<String>,
) -> Option<u64> {
    let v = v?;
    if v.is_exact_instance_of::<PyInt>() {
        // The usual case: a plain int that fits (anything else is reported below).
        if let Ok(n @ 0..=MAX_COUNT_I64) = v.extract::<i64>() {
            return Some(n.unsigned_abs());
        }
    }
    if v.is_none() {
        return None;
    }
    count_other(&v, &field, warnings)
}

/// [`count`] of anything but a plain int in range: kept out of line, it is rare and long.
#[cold]
#[inline(never)]
fn count_other(v: &Bound<'_, PyAny>, field: &dyn Field, warnings: &mut Vec<String>) -> Option<u64> {
    // The field's name is only built when there is something to report.
    let bad = |what: String, warnings: &mut Vec<String>| {
        warnings.push(format!(
            "malformed usage: field '{}' {what}; ignored",
            field.name()
        ));
        None
    };
    if v.is_instance_of::<PyBool>() {
        return bad("is a bool".into(), warnings);
    }
    if v.is_instance_of::<PyInt>() {
        return match v.extract::<i64>() {
            Ok(n) if n < 0 => bad(format!("is negative ({n})"), warnings),
            Ok(n) if n.unsigned_abs() > MAX_COUNT => {
                bad(format!("is implausibly large ({n})"), warnings)
            }
            Ok(n) => Some(n.unsigned_abs()),
            Err(_) => bad("is too large for a token count".into(), warnings),
        };
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        let x = f.value();
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= MAX_COUNT as f64 {
            return Some(x as u64);
        }
        return bad(
            format!("is not a whole non-negative number ({x})"),
            warnings,
        );
    }
    let shown = v.repr().map(|r| r.to_string()).unwrap_or_default();
    let tyname = v
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    bad(format!("is a {tyname} ({shown}), not an integer"), warnings)
}

/// A usage field's dotted name, built lazily (only warnings need it).
trait Field {
    fn name(&self) -> String;
}

impl Field for str {
    fn name(&self) -> String {
        self.to_string()
    }
}

/// `prefix.key`, joined only when a warning needs it.
struct Joined<'a>(&'a str, &'a str);

impl Field for Joined<'_> {
    fn name(&self) -> String {
        format!("{}.{}", self.0, self.1)
    }
}

impl<T: Field + ?Sized> Field for &T {
    fn name(&self) -> String {
        (*self).name()
    }
}

/// What the usage of one source said, before it becomes a [`Usage`].
struct Read {
    usage: Usage,
    tier: Option<String>,
    cache_hit: bool,
}

/// The counts under `keys` (0 when absent) when `d` holds nothing else and each is a plain
/// int in range: the usual details dict, read with look-ups instead of a pass over its items.
/// `None` sends the caller to the general reading (other keys, odd values, warnings).
fn plain_counts<const N: usize>(
    d: &Bound<'_, PyDict>,
    keys: [&Bound<'_, PyString>; N],
) -> Option<[u64; N]> {
    let mut counts = [0u64; N];
    let mut found = 0;
    for (count, key) in counts.iter_mut().zip(keys) {
        if let Some(v) = d.get_item(key).ok().flatten() {
            if !v.is_exact_instance_of::<PyInt>() {
                return None;
            }
            match v.extract::<i64>() {
                Ok(n @ 0..=MAX_COUNT_I64) => *count = n.unsigned_abs(),
                _ => return None,
            }
            found += 1;
        }
    }
    (d.len() == found).then_some(counts)
}

/// Cache-write counts of `input_token_details`, by the forms providers give them in.
#[derive(Default)]
struct CacheWrites {
    creation: u64,
    e5m: u64,
    e1h: u64,
}

/// An `input_token_details` key other than `audio` and `cache_read`: cache writes, and the
/// service-tier forms (langchain-openai): `priority_cache_read`, `flex_cache_creation`, and
/// the bare tier key holding uncached input. Out of line: most responses have none.
#[cold]
#[inline(never)]
fn input_detail_other(
    key: &str,
    v: Bound<'_, PyAny>,
    field: &Joined<'_>,
    warnings: &mut Vec<String>,
    tier: &mut Option<String>,
    cache_read: &mut u64,
    writes: &mut CacheWrites,
) {
    match key {
        "cache_creation" => writes.creation += count(Some(v), field, warnings).unwrap_or(0),
        "ephemeral_5m_input_tokens" => writes.e5m = count(Some(v), field, warnings).unwrap_or(0),
        "ephemeral_1h_input_tokens" => writes.e1h = count(Some(v), field, warnings).unwrap_or(0),
        other => {
            if let Some(t) = other.strip_suffix("_cache_read") {
                tier.get_or_insert_with(|| t.to_string());
                *cache_read += count(Some(v), field, warnings).unwrap_or(0);
            } else if let Some(t) = other.strip_suffix("_cache_creation") {
                tier.get_or_insert_with(|| t.to_string());
                writes.creation += count(Some(v), field, warnings).unwrap_or(0);
            } else if other == "priority" || other == "flex" {
                tier.get_or_insert_with(|| other.to_string());
            }
        }
    }
}

/// An `output_token_details` key other than `audio` and `reasoning`: the service-tier forms.
#[cold]
#[inline(never)]
fn output_detail_other(
    key: &str,
    v: Bound<'_, PyAny>,
    field: &Joined<'_>,
    warnings: &mut Vec<String>,
    tier: &mut Option<String>,
    reasoning: &mut u64,
) {
    if let Some(t) = key.strip_suffix("_reasoning") {
        tier.get_or_insert_with(|| t.to_string());
        *reasoning += count(Some(v), field, warnings).unwrap_or(0);
    } else if key == "priority" || key == "flex" {
        tier.get_or_insert_with(|| key.to_string());
    }
}

/// Adds a warning (out of line: malformed input is rare).
#[cold]
#[inline(never)]
fn malformed(warnings: &mut Vec<String>, message: &str) {
    warnings.push(message.to_string());
}

/// `AIMessage.usage_metadata` (LangChain's normalised usage, inclusive convention).
fn read_usage_metadata(um: &Bound<'_, PyDict>, warnings: &mut Vec<String>) -> Read {
    let py = um.py();
    let mut u = Usage {
        input: count(
            dict_get(um, intern!(py, "input_tokens")),
            "usage_metadata.input_tokens",
            warnings,
        )
        .unwrap_or(0),
        output: count(
            dict_get(um, intern!(py, "output_tokens")),
            "usage_metadata.output_tokens",
            warnings,
        )
        .unwrap_or(0),
        ..Usage::default()
    };
    let mut tier = None;
    let cache_hit = dict_get(um, intern!(py, "total_cost"))
        .is_some_and(|c| c.extract::<f64>().is_ok_and(|x| x == 0.0));
    if let Some(itd) = dict_get(um, intern!(py, "input_token_details")) {
        if let Some([audio, cache_read]) = as_dict(&itd)
            .and_then(|d| plain_counts(d, [intern!(py, "audio"), intern!(py, "cache_read")]))
        {
            u.input_audio = audio;
            u.cache_read = cache_read;
        } else if let Some(itd) = as_dict(&itd) {
            let mut writes = CacheWrites::default();
            for (k, v) in itd.iter() {
                let Ok(k) = k.cast_into::<PyString>() else {
                    continue;
                };
                let Ok(k) = k.to_str() else { continue };
                let field = Joined("usage_metadata.input_token_details", k);
                match k {
                    "audio" => u.input_audio = count(Some(v), &field, warnings).unwrap_or(0),
                    "cache_read" => u.cache_read += count(Some(v), &field, warnings).unwrap_or(0),
                    other => input_detail_other(
                        other,
                        v,
                        &field,
                        warnings,
                        &mut tier,
                        &mut u.cache_read,
                        &mut writes,
                    ),
                }
            }
            // langchain-anthropic zeroes `cache_creation` when it gives the 5m/1h split; be
            // robust to versions that do not.
            if writes.e5m + writes.e1h > 0 {
                u.cache_write = writes.e5m + writes.e1h;
                u.cache_write_1h = writes.e1h;
            } else {
                u.cache_write = writes.creation;
            }
        } else {
            malformed(
                warnings,
                "malformed usage: field 'usage_metadata.input_token_details' is not a dict; ignored",
            );
        }
    }
    if let Some(otd) = dict_get(um, intern!(py, "output_token_details")) {
        if let Some([audio, reasoning]) = as_dict(&otd)
            .and_then(|d| plain_counts(d, [intern!(py, "audio"), intern!(py, "reasoning")]))
        {
            u.output_audio = audio;
            u.reasoning = reasoning;
        } else if let Some(otd) = as_dict(&otd) {
            for (k, v) in otd.iter() {
                let Ok(k) = k.cast_into::<PyString>() else {
                    continue;
                };
                let Ok(k) = k.to_str() else { continue };
                let field = Joined("usage_metadata.output_token_details", k);
                match k {
                    "audio" => u.output_audio = count(Some(v), &field, warnings).unwrap_or(0),
                    "reasoning" => u.reasoning += count(Some(v), &field, warnings).unwrap_or(0),
                    other => {
                        output_detail_other(
                            other,
                            v,
                            &field,
                            warnings,
                            &mut tier,
                            &mut u.reasoning,
                        );
                    }
                }
            }
        } else {
            malformed(
                warnings,
                "malformed usage: field 'usage_metadata.output_token_details' is not a dict; ignored",
            );
        }
    }
    Read {
        usage: u,
        tier,
        cache_hit,
    }
}

/// A provider's raw usage dict (`llm_output["token_usage"]` or `["usage"]`), in OpenAI chat
/// completions, OpenAI Responses or Anthropic form. Returns `None` when it holds no counts.
#[allow(clippy::too_many_lines)]
#[inline(never)]
fn read_raw_usage(d: &Bound<'_, PyDict>, at: &str, warnings: &mut Vec<String>) -> Option<Read> {
    let py = d.py();
    let get = |k: &str| dict_get(d, &PyString::new(py, k));
    let sub = |k: &str| get(k).and_then(|v| v.cast_into::<PyDict>().ok());
    let mut u = Usage::default();
    let mut tier = None;
    if get("prompt_tokens").is_some() || get("completion_tokens").is_some() {
        // OpenAI chat completions: inclusive.
        u.input = count(get("prompt_tokens"), Joined(at, "prompt_tokens"), warnings).unwrap_or(0);
        u.output = count(
            get("completion_tokens"),
            Joined(at, "completion_tokens"),
            warnings,
        )
        .unwrap_or(0);
        if let Some(p) = sub("prompt_tokens_details") {
            let g = |k: &str| dict_get(&p, &PyString::new(py, k));
            u.cache_read = count(
                g("cached_tokens"),
                Joined(at, "prompt_tokens_details.cached_tokens"),
                warnings,
            )
            .unwrap_or(0);
            u.cache_write = count(
                g("cache_write_tokens"),
                Joined(at, "prompt_tokens_details.cache_write_tokens"),
                warnings,
            )
            .unwrap_or(0);
            u.input_audio = count(
                g("audio_tokens"),
                Joined(at, "prompt_tokens_details.audio_tokens"),
                warnings,
            )
            .unwrap_or(0);
        }
        if let Some(c) = sub("completion_tokens_details") {
            let g = |k: &str| dict_get(&c, &PyString::new(py, k));
            u.reasoning = count(
                g("reasoning_tokens"),
                Joined(at, "completion_tokens_details.reasoning_tokens"),
                warnings,
            )
            .unwrap_or(0);
            u.output_audio = count(
                g("audio_tokens"),
                Joined(at, "completion_tokens_details.audio_tokens"),
                warnings,
            )
            .unwrap_or(0);
        }
    } else if get("input_tokens").is_some() || get("output_tokens").is_some() {
        let input = count(get("input_tokens"), Joined(at, "input_tokens"), warnings).unwrap_or(0);
        u.output = count(get("output_tokens"), Joined(at, "output_tokens"), warnings).unwrap_or(0);
        let read = count(
            get("cache_read_input_tokens"),
            Joined(at, "cache_read_input_tokens"),
            warnings,
        );
        let write = count(
            get("cache_creation_input_tokens"),
            Joined(at, "cache_creation_input_tokens"),
            warnings,
        );
        if read.is_some() || write.is_some() || get("cache_creation").is_some() {
            // Anthropic: input_tokens excludes cache reads and writes.
            u.cache_read = read.unwrap_or(0);
            u.cache_write = write.unwrap_or(0);
            if let Some(cc) = sub("cache_creation") {
                let g = |k: &str| dict_get(&cc, &PyString::new(py, k));
                let e5m = count(
                    g("ephemeral_5m_input_tokens"),
                    Joined(at, "cache_creation.ephemeral_5m_input_tokens"),
                    warnings,
                )
                .unwrap_or(0);
                let e1h = count(
                    g("ephemeral_1h_input_tokens"),
                    Joined(at, "cache_creation.ephemeral_1h_input_tokens"),
                    warnings,
                )
                .unwrap_or(0);
                if e5m + e1h > 0 {
                    u.cache_write = e5m + e1h;
                    u.cache_write_1h = e1h;
                }
            }
            u.input = input + u.cache_read + u.cache_write;
            if let Some(t) = get("service_tier").and_then(|t| text_of(&t)) {
                if t != "standard" {
                    tier = Some(t);
                }
            }
        } else {
            // OpenAI Responses (inclusive), or a plain input/output pair.
            u.input = input;
            if let Some(p) = sub("input_tokens_details") {
                u.cache_read = count(
                    dict_get(&p, intern!(py, "cached_tokens")),
                    Joined(at, "input_tokens_details.cached_tokens"),
                    warnings,
                )
                .unwrap_or(0);
            }
            if let Some(o) = sub("output_tokens_details") {
                u.reasoning = count(
                    dict_get(&o, intern!(py, "reasoning_tokens")),
                    Joined(at, "output_tokens_details.reasoning_tokens"),
                    warnings,
                )
                .unwrap_or(0);
            }
        }
    } else {
        return None;
    }
    Some(Read {
        usage: u,
        tier,
        cache_hit: false,
    })
}

/// The service-tier names that mean standard prices (never recorded as a tier).
const STANDARD_TIERS: [&str; 3] = ["default", "standard", "auto"];

/// A service tier as read; the standard names are borrowed, not copied (most responses say
/// `default`, and it is never recorded).
type Tier = std::borrow::Cow<'static, str>;

/// A service-tier value as text (as [`text_of`]).
fn tier_of(v: &Bound<'_, PyAny>) -> Option<Tier> {
    if let Ok(s) = v.cast::<PyString>() {
        let text = s.to_str().ok()?;
        return Some(match STANDARD_TIERS.iter().find(|t| **t == text) {
            Some(t) => Tier::Borrowed(t),
            None => Tier::Owned(text.to_string()),
        });
    }
    text_of(v).map(Tier::Owned)
}

fn model_in(d: &Bound<'_, PyDict>) -> Option<Arc<str>> {
    let py = d.py();
    dict_get(d, intern!(py, "model_name"))
        .or_else(|| dict_get(d, intern!(py, "model")))
        .and_then(|m| name_of(&m))
        .filter(|m| !m.is_empty())
}

/// What a response says outside its messages: `llm_output` (raw usage, model, tier) and a
/// generation's `generation_info` (raw usage). Kept out of line: chat models answer from the
/// message.
#[inline(never)]
fn read_fallbacks(
    response: &Bound<'_, PyAny>,
    generations: Option<&Bound<'_, PyAny>>,
    usage: &mut Option<Usage>,
    model: &mut Option<Arc<str>>,
    tier: &mut Option<Tier>,
    warnings: &mut Vec<String>,
) {
    let py = response.py();
    // llm_output only matters for what the generations did not say (raw usage, model, tier).
    let llm_output = response.getattr(intern!(py, "llm_output")).ok();
    let mut saw_empty_token_usage = false;
    if let Some(lo) = llm_output.as_ref().and_then(|l| as_dict(l)) {
        if usage.is_none() {
            for key in ["token_usage", "usage"] {
                if let Some(raw) = dict_get(lo, &PyString::new(py, key)) {
                    match raw.cast::<PyDict>() {
                        Ok(d) if d.is_empty() => saw_empty_token_usage = key == "token_usage",
                        Ok(d) => {
                            if let Some(r) =
                                read_raw_usage(d, &format!("llm_output.{key}"), warnings)
                            {
                                *usage = Some(r.usage);
                                if r.tier.is_some() {
                                    *tier = r.tier.map(Tier::Owned);
                                }
                                break;
                            }
                        }
                        Err(_) => warnings.push(format!(
                            "malformed usage: 'llm_output.{key}' is not a dict; ignored"
                        )),
                    }
                }
            }
        }
        if model.is_none() {
            *model = model_in(lo);
        }
        if tier.is_none() {
            *tier = dict_get(lo, intern!(py, "service_tier")).and_then(|t| tier_of(&t));
        }
    }

    // Last resort: usage inside a generation's generation_info.
    if usage.is_none() {
        if let Some(gens) = generations.and_then(|g| g.cast::<PyList>().ok()) {
            'outer: for gen_list in gens.iter() {
                let Ok(gen_list) = gen_list.cast_into::<PyList>() else {
                    continue;
                };
                for gen in gen_list.iter() {
                    let Ok(gi) = gen.getattr(intern!(py, "generation_info")) else {
                        continue;
                    };
                    let Some(gi) = as_dict(&gi) else { continue };
                    for key in ["token_usage", "usage"] {
                        if let Some(raw) = dict_get(gi, &PyString::new(py, key)) {
                            if let Ok(d) = raw.cast::<PyDict>() {
                                if let Some(r) =
                                    read_raw_usage(d, &format!("generation_info.{key}"), warnings)
                                {
                                    *usage = Some(r.usage);
                                    break 'outer;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if usage.is_none() && saw_empty_token_usage {
        // A plain LLM's batch: LangChain reports the whole batch's usage on the first
        // prompt's run and an empty `token_usage` on the others.
        *usage = Some(Usage::default());
    }
}

/// Reads an `LLMResult` (`on_llm_end`, or the partial `response` of `on_llm_error`).
#[allow(clippy::too_many_lines)]
pub fn end_info(response: &Bound<'_, PyAny>, info: &mut EndInfo) {
    let py = response.py();
    let warnings = &mut info.warnings;
    let mut usage: Option<Usage> = None;
    let mut tier: Option<Tier> = None;
    let mut cache_hit = false;
    let mut model: Option<Arc<str>> = None;

    let generations = response.getattr(intern!(py, "generations")).ok();
    if let Some(gens) = generations.as_ref().and_then(|g| g.cast::<PyList>().ok()) {
        for gen_list in gens.iter() {
            let Ok(gen_list) = gen_list.cast_into::<PyList>() else {
                continue;
            };
            // One prompt's generations: with n > 1 every generation carries a full copy of
            // the call's usage, so the prompt's usage is read once, from the first that has it.
            let mut prompt_usage: Option<Read> = None;
            for gen in gen_list.iter() {
                if !is_chat_generation(&gen) {
                    continue;
                }
                let Ok(msg) = gen.getattr(intern!(py, "message")) else {
                    continue;
                };
                if prompt_usage.is_none() {
                    if let Ok(Some(um)) = msg.getattr_opt(intern!(py, "usage_metadata")) {
                        if let Some(um) = as_dict(&um) {
                            prompt_usage = Some(read_usage_metadata(um, warnings));
                        } else if !um.is_none() {
                            malformed(
                                warnings,
                                "malformed usage: 'usage_metadata' is not a dict; ignored",
                            );
                        }
                    }
                }
                if model.is_none() || tier.is_none() {
                    if let Ok(rm) = msg.getattr(intern!(py, "response_metadata")) {
                        if let Some(rm) = as_dict(&rm) {
                            if model.is_none() {
                                model = model_in(rm);
                            }
                            if tier.is_none() {
                                tier = dict_get(rm, intern!(py, "service_tier"))
                                    .and_then(|t| tier_of(&t));
                            }
                        }
                    }
                }
            }
            if let Some(r) = prompt_usage {
                usage.get_or_insert_with(Usage::default).add(&r.usage);
                if r.tier.is_some() {
                    tier = r.tier.map(Tier::Owned);
                }
                cache_hit |= r.cache_hit;
            }
        }
    }

    // llm_output and generation_info only matter for what the messages did not say.
    if usage.is_none() || model.is_none() || tier.is_none() {
        read_fallbacks(
            response,
            generations.as_ref(),
            &mut usage,
            &mut model,
            &mut tier,
            warnings,
        );
    }
    info.usage = usage;
    info.llm_cache_hit = cache_hit;
    if model.is_some() {
        info.model = model;
    }
    if tier
        .as_deref()
        .is_some_and(|t| !STANDARD_TIERS.contains(&t))
    {
        info.service_tier = tier.map(Tier::into_owned);
    }
}

/// Reads a start hook's arguments.
#[allow(clippy::too_many_arguments)]
pub fn start_info(
    run_id: u128,
    parent_run_id: Option<u128>,
    serialized: Option<&Bound<'_, PyAny>>,
    tags: Option<&Bound<'_, PyAny>>,
    metadata: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> StartInfo {
    let mut info = StartInfo {
        run_id,
        parent_run_id,
        ..StartInfo::default()
    };
    let py = match (serialized, kwargs) {
        (Some(s), _) => s.py(),
        (_, Some(k)) => k.py(),
        _ => match metadata {
            Some(m) => m.py(),
            None => return info,
        },
    };
    if let Some(kw) = kwargs {
        if let Some(ip) = dict_get(kw, intern!(py, "invocation_params")) {
            if let Some(ip) = as_dict(&ip) {
                info.model = dict_get(ip, intern!(py, "model"))
                    .or_else(|| dict_get(ip, intern!(py, "model_name")))
                    .or_else(|| dict_get(ip, intern!(py, "model_id")))
                    .and_then(|m| name_of(&m));
                info.service_tier =
                    dict_get(ip, intern!(py, "service_tier")).and_then(|t| text_of(&t));
            }
        }
        info.name = dict_get(kw, intern!(py, "name")).and_then(|n| text_of(&n));
    }
    if info.name.is_none() {
        info.name = serialized.and_then(serialized_name);
    }
    if let Some(md) = metadata.and_then(|m| as_dict(m)) {
        info.provider = dict_get(md, intern!(py, "ls_provider")).and_then(|p| name_of(&p));
        if info.model.is_none() {
            info.model = dict_get(md, intern!(py, "ls_model_name")).and_then(|m| name_of(&m));
        }
        if let Some(node) = graph_node(md) {
            info.attribution.push((Arc::from(NODE_KEY), node));
        }
    }
    info.tags = tags.map(tag_list).unwrap_or_default();
    info
}

/// The attribution key of a LangGraph call's node path.
pub const NODE_KEY: &str = "node";

/// A LangGraph call's node path (`agent`; `review/critic` for node `critic` of the subgraph
/// run by node `review`), from `langgraph_node` and `langgraph_checkpoint_ns`
/// (`review:<task id>|critic:<task id>`). `None` outside a graph, and when the user's
/// metadata sets `node` itself (the user's value is captured instead).
fn graph_node(md: &Bound<'_, PyDict>) -> Option<String> {
    let py = md.py();
    let node = dict_get(md, intern!(py, "langgraph_node")).and_then(|n| text_of(&n))?;
    if dict_get(md, intern!(py, "node")).is_some() {
        return None;
    }
    let ns = dict_get(md, intern!(py, "langgraph_checkpoint_ns")).and_then(|n| text_of(&n));
    Some(node_path(ns.as_deref().unwrap_or(""), node))
}

/// The node names of a checkpoint namespace, outermost first, ending with `node`.
fn node_path(ns: &str, node: String) -> String {
    let mut names: Vec<&str> = ns
        .split('|')
        .map(|seg| seg.split(':').next().unwrap_or(seg))
        .filter(|n| !n.is_empty())
        .collect();
    if names.last() != Some(&node.as_str()) {
        names.push(&node);
    }
    if names.len() == 1 {
        return node;
    }
    names.join("/")
}

/// The most output tokens a request allows, from its invocation params: `max_tokens`
/// (OpenAI chat, Anthropic, most clients), `max_completion_tokens` (OpenAI reasoning models),
/// `max_output_tokens` (Google, OpenAI Responses), `max_new_tokens` (Hugging Face),
/// `num_predict` (Ollama); times `n` when several completions are asked for. Read only when
/// a budget needs it.
pub fn max_output(kwargs: Option<&Bound<'_, PyDict>>) -> Option<u64> {
    let kw = kwargs?;
    let py = kw.py();
    let ip = dict_get(kw, intern!(py, "invocation_params"))?;
    let ip = as_dict(&ip)?;
    let positive =
        |v: Bound<'_, PyAny>| v.extract::<i64>().ok().and_then(|n| u64::try_from(n).ok());
    let limit = [
        intern!(py, "max_completion_tokens"),
        intern!(py, "max_tokens"),
        intern!(py, "max_output_tokens"),
        intern!(py, "max_new_tokens"),
        intern!(py, "num_predict"),
    ]
    .into_iter()
    .find_map(|k| dict_get(ip, k).and_then(positive))
    .filter(|n| *n > 0)?;
    let n = dict_get(ip, intern!(py, "n"))
        .and_then(positive)
        .filter(|n| *n > 1)
        .unwrap_or(1);
    Some(limit.saturating_mul(n))
}

/// A run's name from its `serialized` dict (`name`, else the last part of `id`).
pub fn serialized_name(s: &Bound<'_, PyAny>) -> Option<String> {
    let py = s.py();
    let d = as_dict(s)?;
    dict_get(d, intern!(py, "name"))
        .and_then(|n| text_of(&n))
        .or_else(|| {
            dict_get(d, intern!(py, "id"))
                .and_then(|id| id.cast_into::<PyList>().ok())
                .and_then(|l| l.iter().last())
                .and_then(|n| text_of(&n))
        })
}

/// Tags as strings (non-strings are converted with `str()`).
pub fn tag_list(tags: &Bound<'_, PyAny>) -> Vec<String> {
    match tags.cast::<PyList>() {
        Ok(l) => l.iter().filter_map(|t| text_of(&t)).collect(),
        Err(_) => tags
            .try_iter()
            .map(|it| {
                it.filter_map(Result::ok)
                    .filter_map(|t| text_of(&t))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
