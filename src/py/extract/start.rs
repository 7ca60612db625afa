//! A start hook's arguments: the run's model, provider, name and request limits, and its
//! attribution (captured metadata values and tags), bounded.
//!
//! Attribution is copied into every record, every summary key and the durable ledger, so it
//! is bounded: a value (or tag) longer than [`MAX_VALUE_CHARS`] characters is cut there and
//! marked `…[+N chars]` (N: the characters cut); a run keeps at most [`MAX_TAGS`] tags (the
//! first ones); a string given as `tags` is one tag, not one per character; a value whose
//! `str()` raises is recorded as `<unprintable TYPE>`. The first cut of each kind is logged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::{as_dict, dict_get, name_of, text_of};
use crate::tracker::StartInfo;

/// Characters kept of an attribution value or a tag.
pub const MAX_VALUE_CHARS: usize = 256;
/// Tags kept per run.
pub const MAX_TAGS: usize = 64;

/// Whether a value was cut, and whether tags were dropped, was logged already (once per
/// process each: the same oversized input usually comes with every call).
static WARNED_CUT: AtomicBool = AtomicBool::new(false);
static WARNED_TAGS: AtomicBool = AtomicBool::new(false);

/// `text`, cut at [`MAX_VALUE_CHARS`] characters and marked; `None` when it fits.
fn cut(text: &str) -> Option<String> {
    // No more bytes than the limit has characters: nothing to cut (no walk over the chars).
    if text.len() <= MAX_VALUE_CHARS {
        return None;
    }
    let (at, _) = text.char_indices().nth(MAX_VALUE_CHARS)?;
    let rest = text[at..].chars().count();
    Some(format!("{}…[+{rest} chars]", &text[..at]))
}

/// A user's value as bounded text (`None` for `None`): a `str` as is, anything else through
/// `str()`, a placeholder naming its type when `str()` raises; cut as [`cut`] says.
/// `warnings` gets the first cut of the process, naming the value as `what()` says (called
/// only then: the name is formatted for a warning, not on every call).
pub fn bounded_text(
    v: &Bound<'_, PyAny>,
    what: impl FnOnce() -> String,
    warnings: &mut Vec<String>,
) -> Option<String> {
    if v.is_none() {
        return None;
    }
    let text = match v.cast::<PyString>() {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => match v.str() {
            Ok(s) => s.to_string_lossy().into_owned(),
            Err(_) => unprintable(v),
        },
    };
    match cut(&text) {
        None => Some(text),
        Some(short) => {
            if !WARNED_CUT.swap(true, Ordering::Relaxed) {
                warnings.push(format!(
                    "{} is {} characters long: recorded cut to {MAX_VALUE_CHARS} and marked \
                     '…[+N chars]' (further cuts are not logged)",
                    what(),
                    text.chars().count()
                ));
            }
            Some(short)
        }
    }
}

/// The placeholder for a value whose `str()` raised.
#[cold]
fn unprintable(v: &Bound<'_, PyAny>) -> String {
    let ty = v.get_type().name().map_or_else(
        |_| "object".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!("<unprintable {ty}>")
}

/// The captured metadata values of a start hook: for each of `keys` (their Python strings
/// in `py_keys`) that `metadata` holds and is not `None`, its bounded text.
pub fn attribution(
    metadata: &Bound<'_, PyDict>,
    keys: &[Arc<str>],
    py_keys: &[Py<PyString>],
    warnings: &mut Vec<String>,
) -> Vec<(Arc<str>, String)> {
    let py = metadata.py();
    let mut out = Vec::new();
    for (key, py_key) in keys.iter().zip(py_keys) {
        if let Some(v) = metadata.get_item(py_key.bind(py)).ok().flatten() {
            if let Some(text) = bounded_text(&v, || format!("metadata['{key}']"), warnings) {
                out.push((key.clone(), text));
            }
        }
    }
    out
}

/// Tags as bounded strings (non-strings through `str()`), at most [`MAX_TAGS`]: a list or
/// any iterable of tags, or one tag (a string, bytes, or a value that is not iterable).
/// Returns whether tags were dropped.
fn bounded_tags(tags: &Bound<'_, PyAny>, warnings: &mut Vec<String>) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut more = false;
    let mut push = |t: Bound<'_, PyAny>, out: &mut Vec<String>| {
        if out.len() == MAX_TAGS {
            more = true;
            return false;
        }
        if let Some(text) = bounded_text(&t, || "a tag".to_string(), warnings) {
            out.push(text);
        }
        true
    };
    if tags.is_none() {
    } else if tags.is_instance_of::<PyString>() || tags.is_instance_of::<PyBytes>() {
        push(tags.clone(), &mut out);
    } else if let Ok(l) = tags.cast::<PyList>() {
        for t in l.iter() {
            if !push(t, &mut out) {
                break;
            }
        }
    } else if let Ok(t) = tags.cast::<PyTuple>() {
        for t in t.iter() {
            if !push(t, &mut out) {
                break;
            }
        }
    } else if let Ok(it) = tags.try_iter() {
        // Iteration errors end the tags read so far.
        for t in it.map_while(Result::ok) {
            if !push(t, &mut out) {
                break;
            }
        }
    } else {
        push(tags.clone(), &mut out);
    }
    (out, more)
}

/// Tags as bounded strings (see [`bounded_tags`]), without warnings: an end hook's tags, read
/// only when its start was not seen.
pub fn tag_list(tags: &Bound<'_, PyAny>) -> Vec<String> {
    bounded_tags(tags, &mut Vec::new()).0
}

/// A start hook's tags (see [`bounded_tags`]); the first drop of the process is logged.
fn start_tags(tags: &Bound<'_, PyAny>, warnings: &mut Vec<String>) -> Vec<String> {
    let (tags, more) = bounded_tags(tags, warnings);
    if more && !WARNED_TAGS.swap(true, Ordering::Relaxed) {
        warnings.push(format!(
            "a run has more than {MAX_TAGS} tags: the first {MAX_TAGS} are recorded \
             (further drops are not logged)"
        ));
    }
    tags
}

/// Reads a start hook's arguments.
pub fn start_info(
    run_id: u128,
    parent_run_id: Option<u128>,
    serialized: Option<&Bound<'_, PyAny>>,
    tags: Option<&Bound<'_, PyAny>>,
    metadata: Option<&Bound<'_, PyAny>>,
    invocation_params: Option<&Bound<'_, PyAny>>,
    name: Option<&Bound<'_, PyAny>>,
) -> StartInfo {
    let mut info = StartInfo {
        run_id,
        parent_run_id,
        ..StartInfo::default()
    };
    if let Some(t) = tags {
        info.tags = start_tags(t, &mut info.warnings);
    }
    if let Some(ip) = invocation_params.and_then(|p| as_dict(p)) {
        let py = ip.py();
        info.model = dict_get(ip, intern!(py, "model"))
            .or_else(|| dict_get(ip, intern!(py, "model_name")))
            .or_else(|| dict_get(ip, intern!(py, "model_id")))
            .and_then(|m| name_of(&m));
        info.service_tier = dict_get(ip, intern!(py, "service_tier")).and_then(|t| text_of(&t));
        info.cumulative_chunks = dict_get(ip, intern!(py, "_type"))
            .is_some_and(|t| t.cast::<PyString>().is_ok_and(|t| t == CUMULATIVE_LLM_TYPE));
    }
    info.name = name.and_then(text_of);
    if info.name.is_none() {
        info.name = serialized.and_then(serialized_name);
    }
    if let Some(md) = metadata.and_then(|m| as_dict(m)) {
        let py = md.py();
        info.provider = dict_get(md, intern!(py, "ls_provider")).and_then(|p| name_of(&p));
        if info.model.is_none() {
            info.model = dict_get(md, intern!(py, "ls_model_name")).and_then(|m| name_of(&m));
        }
        if let Some(node) = graph_node(md) {
            info.attribution.push((Arc::from(NODE_KEY), node));
        }
    }
    let class = serialized.and_then(serialized_class);
    local_client(class.as_deref(), &mut info);
    info.cumulative_chunks |= cumulative_chunks(info.provider.as_deref(), class.as_deref());
    info
}

/// The `_llm_type` (invocation params' `_type`) of `QianfanChatEndpoint`, which its
/// subclasses inherit (their class name and `ls_provider` differ).
const CUMULATIVE_LLM_TYPE: &str = "baidu-qianfan-chat";

/// Whether an integration's stream chunks each carry the call's usage so far (a running
/// total), which LangChain then adds up: recognised by `ls_provider` or the client class
/// (or, in `start_info`, by the invocation params' `_type`, [`CUMULATIVE_LLM_TYPE`]).
/// Only langchain-community's `QianfanChatEndpoint` (`ls_provider` `qianfanchatendpoint`):
/// it gives every chunk the `usage` of Qianfan's streamed answer, the answer's running
/// total. Every other integration's chunks carry deltas (OpenAI's and Anthropic's usage
/// chunks), or usage only on the last chunk.
fn cumulative_chunks(provider: Option<&str>, class: Option<&str>) -> bool {
    let is =
        |name: Option<&str>| name.is_some_and(|n| n.eq_ignore_ascii_case("qianfanchatendpoint"));
    is(provider) || is(class)
}

/// A client class of a local runtime (`ChatOllama`, `ChatLlamaCpp`, `VLLM`, ...) makes the
/// run's provider that runtime, unless `ls_provider` already names one: its calls cost no API
/// fee (see `Tracker::end`'s `price`), whatever the model is called.
fn local_client(class: Option<&str>, info: &mut StartInfo) {
    if info
        .provider
        .as_deref()
        .and_then(crate::catalog::local_runtime)
        .is_some()
    {
        return;
    }
    if let Some(rt) = class.and_then(crate::catalog::local_runtime) {
        info.provider = Some(Arc::from(rt));
    }
}

/// The client's class from its `serialized` dict: the last part of `id`.
fn serialized_class(s: &Bound<'_, PyAny>) -> Option<String> {
    let py = s.py();
    let d = as_dict(s)?;
    dict_get(d, intern!(py, "id"))
        .and_then(|id| id.cast_into::<PyList>().ok())
        .and_then(|l| l.iter().last())
        .and_then(|n| text_of(&n))
}

/// Where a client's base URL is in its `serialized` dict's `kwargs` (set only when the user
/// gave it): `openai_api_base` (ChatOpenAI's and AzureChatOpenAI's `base_url`),
/// `azure_endpoint` (AzureChatOpenAI), `anthropic_api_url` (ChatAnthropic's `base_url`),
/// `base_url` and `api_base` (other clients).
const BASE_URL_KWARGS: [&str; 5] = [
    "openai_api_base",
    "base_url",
    "api_base",
    "azure_endpoint",
    "anthropic_api_url",
];

/// The client's base URL: from `serialized["kwargs"]` (see [`BASE_URL_KWARGS`]), else the
/// invocation params' `base_url` / `api_base`, else, for an OpenAI client class (`ChatOpenAI`,
/// `AzureChatOpenAI`, ...; none of these set), the `OPENAI_BASE_URL` environment variable the
/// openai SDK falls back to. Read only when the tracker has local endpoints.
pub fn base_url(
    serialized: Option<&Bound<'_, PyAny>>,
    invocation_params: Option<&Bound<'_, PyAny>>,
) -> Option<String> {
    let py = serialized.or(invocation_params)?.py();
    let kwargs = serialized
        .and_then(|s| as_dict(s))
        .and_then(|d| dict_get(d, intern!(py, "kwargs")));
    let first_text = |d: &Bound<'_, PyDict>, keys: &[&str]| {
        keys.iter().find_map(|k| {
            dict_get(d, &PyString::new(py, k))
                .and_then(|v| v.cast_into::<PyString>().ok())
                .map(|v| v.to_string_lossy().into_owned())
        })
    };
    kwargs
        .as_ref()
        .and_then(|k| as_dict(k))
        .and_then(|k| first_text(k, &BASE_URL_KWARGS))
        .or_else(|| {
            invocation_params
                .and_then(|p| as_dict(p))
                .and_then(|p| first_text(p, &["base_url", "api_base", "openai_api_base"]))
        })
        .or_else(|| {
            let class = serialized.and_then(serialized_class)?;
            if !class.ends_with("OpenAI") {
                return None;
            }
            std::env::var("OPENAI_BASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
        })
}

/// The attribution key of a LangGraph call's node path.
pub const NODE_KEY: &str = "node";

/// A LangGraph call's node path (`agent`; `review/critic` for node `critic` of the subgraph
/// run by node `review`), from `langgraph_node` and `langgraph_checkpoint_ns`
/// (`review:<task id>|critic:<task id>`), bounded like any attribution value. `None` outside
/// a graph, and when the user's metadata sets `node` itself (the user's value is captured
/// instead).
fn graph_node(md: &Bound<'_, PyDict>) -> Option<String> {
    let py = md.py();
    let node = dict_get(md, intern!(py, "langgraph_node")).and_then(|n| text_of(&n))?;
    if dict_get(md, intern!(py, "node")).is_some() {
        return None;
    }
    let ns = dict_get(md, intern!(py, "langgraph_checkpoint_ns")).and_then(|n| text_of(&n));
    let path = node_path(ns.as_deref().unwrap_or(""), node);
    Some(cut(&path).unwrap_or(path))
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
pub fn max_output(invocation_params: Option<&Bound<'_, PyAny>>) -> Option<u64> {
    let ip = as_dict(invocation_params?)?;
    let py = ip.py();
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
