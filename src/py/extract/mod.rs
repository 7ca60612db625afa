//! Reading LangChain's objects (`LLMResult`, `AIMessage.usage_metadata`, `llm_output`,
//! start-hook kwargs) into the core's owned types.
//!
//! Everything here is tolerant: a malformed or missing field becomes a warning that names it,
//! and the call is still recorded with what was valid.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyType};

use crate::py::attrs::Attrs;
use crate::shared_names::shared_name;
use crate::tracker::EndInfo;
use crate::usage::{Field, Fields, Usage};

mod count;
mod request;
mod start;
mod usage;

use count::Reader;
pub use request::request_params;
pub use start::{
    attribution, base_url, max_output, serialized_name, start_info, tag_list, NODE_KEY,
};
use usage::{read_raw_usage, read_usage_metadata, Read};

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
    found: &mut Found,
    r: &mut Reader<'_>,
) {
    let py = response.py();
    // llm_output only matters for what the generations did not say (raw usage, model, tier).
    let llm_output = response.getattr(intern!(py, "llm_output")).ok();
    let mut saw_empty_token_usage = false;
    if let Some(lo) = llm_output.as_ref().and_then(|l| as_dict(l)) {
        if found.usage.is_none() {
            for key in ["token_usage", "usage"] {
                let Some(raw) = dict_get(lo, &PyString::new(py, key)) else {
                    continue;
                };
                match raw.cast::<PyDict>() {
                    Ok(d) if d.is_empty() => saw_empty_token_usage = key == "token_usage",
                    Ok(d) => {
                        if let Some(read) = read_raw_usage(d, &format!("llm_output.{key}"), r) {
                            found.usage = Some(read.usage);
                            if read.tier.is_some() {
                                found.tier = read.tier.map(Tier::Owned);
                            }
                            break;
                        }
                    }
                    Err(_) => r.warn(&format!(
                        "malformed usage: 'llm_output.{key}' is not a dict; ignored"
                    )),
                }
            }
        }
        if found.model.is_none() {
            found.model = model_in(lo);
        }
        if found.tier.is_none() {
            found.tier = dict_get(lo, intern!(py, "service_tier")).and_then(|t| tier_of(&t));
        }
    }
    if found.usage.is_none() {
        found.usage = generation_info_usage(generations, r);
    }
    if found.usage.is_none() && saw_empty_token_usage {
        // A plain LLM's batch: LangChain reports the whole batch's usage on the first
        // prompt's run and an empty `token_usage` on the others.
        found.usage = Some(Usage::default());
    }
}

/// Last resort: usage inside a generation's `generation_info`.
fn generation_info_usage(
    generations: Option<&Bound<'_, PyAny>>,
    r: &mut Reader<'_>,
) -> Option<Usage> {
    let gens = generations?.cast::<PyList>().ok()?;
    let py = gens.py();
    for gen_list in gens.iter() {
        let Ok(gen_list) = gen_list.cast_into::<PyList>() else {
            continue;
        };
        for gen in gen_list.iter() {
            let Ok(gi) = gen.getattr(intern!(py, "generation_info")) else {
                continue;
            };
            let Some(gi) = as_dict(&gi) else { continue };
            for key in ["token_usage", "usage"] {
                let raw = dict_get(gi, &PyString::new(py, key));
                if let Some(d) = raw.as_ref().and_then(|raw| raw.cast::<PyDict>().ok()) {
                    if let Some(read) = read_raw_usage(d, &format!("generation_info.{key}"), r) {
                        return Some(read.usage);
                    }
                }
            }
        }
    }
    None
}

/// What a response said, as it is read.
#[derive(Default)]
struct Found {
    usage: Option<Usage>,
    tier: Option<Tier>,
    cache_hit: bool,
    model: Option<Arc<str>>,
    /// The one prompt's `usage_metadata` lacked input / output details.
    lacks: (bool, bool),
    /// Prompts whose `usage_metadata` was read.
    prompts: u32,
}

/// The messages of one prompt's generations: usage (with n > 1 every generation carries a
/// full copy of the call's usage, so it is read once, from the first that has it), model and
/// tier.
fn read_prompt(gen_list: &Bound<'_, PyList>, found: &mut Found, r: &mut Reader<'_>) {
    let py = gen_list.py();
    let mut prompt_usage: Option<Read> = None;
    for gen in gen_list.iter() {
        if !is_chat_generation(&gen) {
            continue;
        }
        let Ok(Some(msg)) = Attrs::of(&gen).get(intern!(py, "message")) else {
            continue;
        };
        let fields = Attrs::of(&msg);
        if prompt_usage.is_none() {
            if let Ok(Some(um)) = fields.get(intern!(py, "usage_metadata")) {
                if let Some(um) = as_dict(&um) {
                    prompt_usage = Some(read_usage_metadata(um, r));
                } else if !um.is_none() {
                    r.warn("malformed usage: 'usage_metadata' is not a dict; ignored");
                }
            }
        }
        if found.model.is_none() || found.tier.is_none() {
            if let Ok(Some(rm)) = fields.get(intern!(py, "response_metadata")) {
                if let Some(rm) = as_dict(&rm) {
                    if found.model.is_none() {
                        found.model = model_in(rm);
                    }
                    if found.tier.is_none() {
                        found.tier =
                            dict_get(rm, intern!(py, "service_tier")).and_then(|t| tier_of(&t));
                    }
                }
            }
        }
    }
    if let Some(read) = prompt_usage {
        found
            .usage
            .get_or_insert_with(Usage::default)
            .add(&read.usage);
        if read.tier.is_some() {
            found.tier = read.tier.map(Tier::Owned);
        }
        found.cache_hit |= read.cache_hit;
        found.lacks = (read.lacks_input_details, read.lacks_output_details);
        found.prompts += 1;
    }
}

/// Where a provider's raw usage may be: `llm_output`'s, then the first message's
/// `response_metadata`'s.
const RAW_USAGE_PLACES: [(&str, &str); 4] = [
    ("llm_output", "token_usage"),
    ("llm_output", "usage"),
    ("response_metadata", "token_usage"),
    ("response_metadata", "usage"),
];

/// The first raw usage dict of the response (see [`RAW_USAGE_PLACES`]), with its place.
fn raw_usage_dict<'py>(
    response: &Bound<'py, PyAny>,
    generations: Option<&Bound<'py, PyAny>>,
) -> Option<(Bound<'py, PyDict>, String)> {
    let py = response.py();
    let llm_output = response
        .getattr(intern!(py, "llm_output"))
        .ok()
        .filter(|l| as_dict(l).is_some());
    let metadata = generations
        .and_then(|g| g.cast::<PyList>().ok()?.get_item(0).ok())
        .and_then(|l| l.cast_into::<PyList>().ok()?.get_item(0).ok())
        .and_then(|g| g.getattr(intern!(py, "message")).ok())
        .and_then(|m| m.getattr(intern!(py, "response_metadata")).ok())
        .filter(|m| as_dict(m).is_some());
    for (holder, key) in RAW_USAGE_PLACES {
        let d = if holder == "llm_output" {
            llm_output.as_ref()
        } else {
            metadata.as_ref()
        };
        let Some(d) = d.and_then(|d| as_dict(d)) else {
            continue;
        };
        if let Some(raw) = dict_get(d, &PyString::new(py, key))
            .and_then(|v| v.cast_into::<PyDict>().ok())
            .filter(|v| !v.is_empty())
        {
            return Some((raw, format!("{holder}.{key}")));
        }
    }
    None
}

/// Takes the usage details LangChain's `usage_metadata` lacks (an integration that drops
/// them: langchain-mistralai's cached tokens) from the provider's raw usage in `llm_output`
/// or `response_metadata`, per field, only where `usage_metadata` says 0 and the raw usage
/// counts the same input and output (the same call, the same convention): each token is
/// counted once. Returns what was taken, and from where, for the record's `usage_notes`.
#[cold]
#[inline(never)]
fn fill_details(
    response: &Bound<'_, PyAny>,
    generations: Option<&Bound<'_, PyAny>>,
    lacks: (bool, bool),
    u: &mut Usage,
) -> Option<String> {
    let (raw, place) = raw_usage_dict(response, generations)?;
    // A malformed raw field makes the raw usage untrusted, not the call's usage malformed.
    let mut scratch = Vec::new();
    let mut r = Reader {
        warnings: &mut scratch,
        bad: Fields::default(),
    };
    let read = read_raw_usage(&raw, &place, &mut r)?;
    let raw = read.usage;
    if !r.bad.is_empty() || raw.input != u.input || raw.output != u.output {
        return None;
    }
    let mut taken: Vec<&str> = Vec::new();
    let mut take = |ours: &mut u64, theirs: u64, field: Field| {
        if *ours == 0 && theirs > 0 {
            *ours = theirs;
            taken.push(field.record_name());
        }
    };
    if lacks.0 {
        take(&mut u.cache_read, raw.cache_read, Field::CacheRead);
        take(&mut u.cache_write, raw.cache_write, Field::CacheWrite);
        take(
            &mut u.cache_write_1h,
            raw.cache_write_1h,
            Field::CacheWrite1h,
        );
        take(&mut u.input_audio, raw.input_audio, Field::InputAudio);
    }
    if lacks.1 {
        take(&mut u.reasoning, raw.reasoning, Field::Reasoning);
        take(&mut u.output_audio, raw.output_audio, Field::OutputAudio);
    }
    (!taken.is_empty()).then(|| format!("{} from {place}", taken.join(",")))
}

/// The usage a stream chunk (`on_llm_new_token`'s `chunk`, a `ChatGenerationChunk`) carries
/// in its message's `usage_metadata`, when it is there and well-formed (a malformed one is
/// left to the end, which reports it). Read only for runs whose chunks carry running totals
/// ([`crate::tracker::StartInfo::cumulative_chunks`]).
pub fn chunk_usage(chunk: &Bound<'_, PyAny>) -> Option<Usage> {
    let py = chunk.py();
    let msg = chunk.getattr_opt(intern!(py, "message")).ok()??;
    let um = msg.getattr_opt(intern!(py, "usage_metadata")).ok()??;
    let um = as_dict(&um)?;
    let mut warnings = Vec::new();
    let mut r = Reader {
        warnings: &mut warnings,
        bad: Fields::default(),
    };
    let read = read_usage_metadata(um, &mut r);
    (r.bad.is_empty() && !read.cache_hit).then_some(read.usage)
}

/// Reads an `LLMResult` (`on_llm_end`, or the partial `response` of `on_llm_error`): its
/// usage, model and service tier, and which usage fields it got wrong (`info.malformed`).
pub fn end_info(response: &Bound<'_, PyAny>, info: &mut EndInfo) {
    let py = response.py();
    let mut r = Reader {
        warnings: &mut info.warnings,
        bad: Fields::default(),
    };
    let mut found = Found::default();
    let generations = Attrs::of(response)
        .get(intern!(py, "generations"))
        .ok()
        .flatten();
    if let Some(gens) = generations.as_ref().and_then(|g| g.cast::<PyList>().ok()) {
        for gen_list in gens.iter() {
            if let Ok(gen_list) = gen_list.cast_into::<PyList>() {
                read_prompt(&gen_list, &mut found, &mut r);
            }
        }
    }
    if found.prompts == 1 && !found.cache_hit && (found.lacks.0 || found.lacks.1) {
        if let Some(u) = found.usage.as_mut() {
            info.usage_notes = fill_details(response, generations.as_ref(), found.lacks, u);
        }
    }
    // llm_output and generation_info only matter for what the messages did not say.
    if found.usage.is_none() || found.model.is_none() || found.tier.is_none() {
        read_fallbacks(response, generations.as_ref(), &mut found, &mut r);
    }
    info.malformed = r.bad;
    info.usage = found.usage;
    info.llm_cache_hit = found.cache_hit;
    if found.model.is_some() {
        info.model = found.model;
    }
    if found
        .tier
        .as_deref()
        .is_some_and(|t| !STANDARD_TIERS.contains(&t))
    {
        info.service_tier = found.tier.map(Tier::into_owned);
    }
}
