//! A start hook's arguments: the run's model, provider, name, tags and request limits.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::{as_dict, dict_get, name_of, text_of};
use crate::tracker::StartInfo;

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
    }
    info.tags = tags.map(tag_list).unwrap_or_default();
    info
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
