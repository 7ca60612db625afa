//! A response's usage dicts: LangChain's `usage_metadata` and the providers' raw usage
//! (OpenAI chat completions, OpenAI Responses, Anthropic), read into a [`Usage`].

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString};

use super::count::{Joined, Reader, MAX_COUNT_I64};
use super::{as_dict, dict_get, text_of};
use crate::usage::{Field, Usage};

/// What the usage of one source said, before it becomes a [`Usage`].
pub(super) struct Read {
    pub usage: Usage,
    pub tier: Option<String>,
    pub cache_hit: bool,
    /// `usage_metadata` had no `input_token_details` (cache, audio input): the provider's
    /// raw usage may say what the integration dropped.
    pub lacks_input_details: bool,
    /// `usage_metadata` had no `output_token_details` (reasoning, audio output).
    pub lacks_output_details: bool,
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
    r: &mut Reader<'_>,
    tier: &mut Option<String>,
    u: &mut Usage,
    writes: &mut CacheWrites,
) {
    match key {
        "cache_creation" => writes.creation += r.count(Some(v), field, Field::CacheWrite),
        "ephemeral_5m_input_tokens" => writes.e5m = r.count(Some(v), field, Field::CacheWrite),
        "ephemeral_1h_input_tokens" => {
            writes.e1h = r.count(Some(v), field, Field::CacheWrite1h);
        }
        other => {
            if let Some(t) = other.strip_suffix("_cache_read") {
                tier.get_or_insert_with(|| t.to_string());
                u.cache_read += r.count(Some(v), field, Field::CacheRead);
            } else if let Some(t) = other.strip_suffix("_cache_creation") {
                tier.get_or_insert_with(|| t.to_string());
                writes.creation += r.count(Some(v), field, Field::CacheWrite);
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
    r: &mut Reader<'_>,
    tier: &mut Option<String>,
    reasoning: &mut u64,
) {
    if let Some(t) = key.strip_suffix("_reasoning") {
        tier.get_or_insert_with(|| t.to_string());
        *reasoning += r.count(Some(v), field, Field::Reasoning);
    } else if key == "priority" || key == "flex" {
        tier.get_or_insert_with(|| key.to_string());
    }
}

/// `usage_metadata.input_token_details` into `u` (a value that is not a dict is reported and
/// read as no details).
fn input_details(
    itd: &Bound<'_, PyAny>,
    r: &mut Reader<'_>,
    tier: &mut Option<String>,
    u: &mut Usage,
) {
    let py = itd.py();
    let Some(itd) = as_dict(itd) else {
        r.warn(
            "malformed usage: field 'usage_metadata.input_token_details' is not a dict; ignored",
        );
        return;
    };
    if let Some([audio, cache_read]) =
        plain_counts(itd, [intern!(py, "audio"), intern!(py, "cache_read")])
    {
        u.input_audio = audio;
        u.cache_read = cache_read;
        return;
    }
    let mut writes = CacheWrites::default();
    for (k, v) in itd.iter() {
        let Ok(k) = k.cast_into::<PyString>() else {
            continue;
        };
        let Ok(k) = k.to_str() else { continue };
        let field = Joined("usage_metadata.input_token_details", k);
        match k {
            "audio" => u.input_audio = r.count(Some(v), &field, Field::InputAudio),
            "cache_read" => u.cache_read += r.count(Some(v), &field, Field::CacheRead),
            other => input_detail_other(other, v, &field, r, tier, u, &mut writes),
        }
    }
    // langchain-anthropic zeroes `cache_creation` when it gives the 5m/1h split; be robust
    // to versions that do not.
    if writes.e5m + writes.e1h > 0 {
        u.cache_write = writes.e5m + writes.e1h;
        u.cache_write_1h = writes.e1h;
    } else {
        u.cache_write = writes.creation;
    }
}

/// `usage_metadata.output_token_details` into `u`.
fn output_details(
    otd: &Bound<'_, PyAny>,
    r: &mut Reader<'_>,
    tier: &mut Option<String>,
    u: &mut Usage,
) {
    let py = otd.py();
    let Some(otd) = as_dict(otd) else {
        r.warn(
            "malformed usage: field 'usage_metadata.output_token_details' is not a dict; ignored",
        );
        return;
    };
    if let Some([audio, reasoning]) =
        plain_counts(otd, [intern!(py, "audio"), intern!(py, "reasoning")])
    {
        u.output_audio = audio;
        u.reasoning = reasoning;
        return;
    }
    for (k, v) in otd.iter() {
        let Ok(k) = k.cast_into::<PyString>() else {
            continue;
        };
        let Ok(k) = k.to_str() else { continue };
        let field = Joined("usage_metadata.output_token_details", k);
        match k {
            "audio" => u.output_audio = r.count(Some(v), &field, Field::OutputAudio),
            "reasoning" => u.reasoning += r.count(Some(v), &field, Field::Reasoning),
            other => output_detail_other(other, v, &field, r, tier, &mut u.reasoning),
        }
    }
}

/// `AIMessage.usage_metadata` (LangChain's normalised usage, inclusive convention). Its
/// `input_tokens` and `output_tokens` are required (LangChain's `UsageMetadata`), except in
/// an LLM-cache replay's bare `{"total_cost": 0}`.
pub(super) fn read_usage_metadata(um: &Bound<'_, PyDict>, r: &mut Reader<'_>) -> Read {
    let py = um.py();
    let cache_hit = dict_get(um, intern!(py, "total_cost"))
        .is_some_and(|c| c.extract::<f64>().is_ok_and(|x| x == 0.0));
    let input = dict_get(um, intern!(py, "input_tokens"));
    let output = dict_get(um, intern!(py, "output_tokens"));
    let mut u = if cache_hit {
        Usage {
            input: r.count(input, "usage_metadata.input_tokens", Field::Input),
            output: r.count(output, "usage_metadata.output_tokens", Field::Output),
            ..Usage::default()
        }
    } else {
        Usage {
            input: r.required(input, "usage_metadata.input_tokens", Field::Input),
            output: r.required(output, "usage_metadata.output_tokens", Field::Output),
            ..Usage::default()
        }
    };
    let mut tier = None;
    let itd = dict_get(um, intern!(py, "input_token_details"));
    if let Some(itd) = &itd {
        input_details(itd, r, &mut tier, &mut u);
    }
    let otd = dict_get(um, intern!(py, "output_token_details"));
    if let Some(otd) = &otd {
        output_details(otd, r, &mut tier, &mut u);
    }
    Read {
        usage: u,
        tier,
        cache_hit,
        lacks_input_details: itd.is_none(),
        lacks_output_details: otd.is_none(),
    }
}

/// A provider's raw usage dict (`llm_output["token_usage"]` or `["usage"]`), in OpenAI chat
/// completions, OpenAI Responses or Anthropic form. Returns `None` when it holds no counts.
#[inline(never)]
pub(super) fn read_raw_usage(d: &Bound<'_, PyDict>, at: &str, r: &mut Reader<'_>) -> Option<Read> {
    let has = |k: &str| dict_get(d, &PyString::new(d.py(), k)).is_some();
    let (usage, tier) = if has("prompt_tokens") || has("completion_tokens") {
        (openai_chat_usage(d, at, r), None)
    } else if has("input_tokens") || has("output_tokens") {
        if has("cache_read_input_tokens")
            || has("cache_creation_input_tokens")
            || has("cache_creation")
        {
            anthropic_usage(d, at, r)
        } else {
            (responses_usage(d, at, r), None)
        }
    } else {
        return None;
    };
    Some(Read {
        usage,
        tier,
        cache_hit: false,
        lacks_input_details: false,
        lacks_output_details: false,
    })
}

/// OpenAI chat completions' raw usage (inclusive).
fn openai_chat_usage(d: &Bound<'_, PyDict>, at: &str, r: &mut Reader<'_>) -> Usage {
    let py = d.py();
    let get = |k: &str| dict_get(d, &PyString::new(py, k));
    let sub = |k: &str| get(k).and_then(|v| v.cast_into::<PyDict>().ok());
    let mut u = Usage {
        input: r.required(
            get("prompt_tokens"),
            Joined(at, "prompt_tokens"),
            Field::Input,
        ),
        output: r.required(
            get("completion_tokens"),
            Joined(at, "completion_tokens"),
            Field::Output,
        ),
        ..Usage::default()
    };
    if let Some(p) = sub("prompt_tokens_details") {
        let mut g = |k: &str, which: Field| {
            let name = format!("prompt_tokens_details.{k}");
            r.count(
                dict_get(&p, &PyString::new(py, k)),
                Joined(at, &name),
                which,
            )
        };
        u.cache_read = g("cached_tokens", Field::CacheRead);
        u.cache_write = g("cache_write_tokens", Field::CacheWrite);
        u.input_audio = g("audio_tokens", Field::InputAudio);
    }
    if u.cache_read == 0 {
        // DeepSeek's `prompt_cache_hit_tokens` (with `prompt_cache_miss_tokens`, both parts
        // of `prompt_tokens`); Moonshot's top-level `cached_tokens`.
        for k in ["prompt_cache_hit_tokens", "cached_tokens"] {
            let n = r.count(get(k), Joined(at, k), Field::CacheRead);
            if n > 0 {
                u.cache_read = n;
                break;
            }
        }
    }
    if let Some(c) = sub("completion_tokens_details") {
        let mut g = |k: &str, which: Field| {
            let name = format!("completion_tokens_details.{k}");
            r.count(
                dict_get(&c, &PyString::new(py, k)),
                Joined(at, &name),
                which,
            )
        };
        u.reasoning = g("reasoning_tokens", Field::Reasoning);
        u.output_audio = g("audio_tokens", Field::OutputAudio);
    }
    u
}

/// Anthropic's raw usage: `input_tokens` excludes cache reads and writes, which are added to
/// it here (LangChain's inclusive convention). Also returns the service tier it names.
fn anthropic_usage(d: &Bound<'_, PyDict>, at: &str, r: &mut Reader<'_>) -> (Usage, Option<String>) {
    let py = d.py();
    let get = |k: &str| dict_get(d, &PyString::new(py, k));
    let uncached = r.required(
        get("input_tokens"),
        Joined(at, "input_tokens"),
        Field::Input,
    );
    let mut u = Usage {
        output: r.required(
            get("output_tokens"),
            Joined(at, "output_tokens"),
            Field::Output,
        ),
        cache_read: r.count(
            get("cache_read_input_tokens"),
            Joined(at, "cache_read_input_tokens"),
            Field::CacheRead,
        ),
        cache_write: r.count(
            get("cache_creation_input_tokens"),
            Joined(at, "cache_creation_input_tokens"),
            Field::CacheWrite,
        ),
        ..Usage::default()
    };
    if let Some(cc) = get("cache_creation").and_then(|v| v.cast_into::<PyDict>().ok()) {
        let mut g = |k: &str, which: Field| {
            let name = format!("cache_creation.{k}");
            r.count(
                dict_get(&cc, &PyString::new(py, k)),
                Joined(at, &name),
                which,
            )
        };
        let e5m = g("ephemeral_5m_input_tokens", Field::CacheWrite);
        let e1h = g("ephemeral_1h_input_tokens", Field::CacheWrite1h);
        if e5m + e1h > 0 {
            u.cache_write = e5m + e1h;
            u.cache_write_1h = e1h;
        }
    }
    u.input = uncached + u.cache_read + u.cache_write;
    let tier = get("service_tier")
        .and_then(|t| text_of(&t))
        .filter(|t| t != "standard");
    (u, tier)
}

/// OpenAI Responses' raw usage (inclusive), or a plain input/output pair (DashScope's native
/// usage too, whose cache hits are `prompt_tokens_details.cached_tokens`).
fn responses_usage(d: &Bound<'_, PyDict>, at: &str, r: &mut Reader<'_>) -> Usage {
    let py = d.py();
    let get = |k: &str| dict_get(d, &PyString::new(py, k));
    let sub = |k: &str| get(k).and_then(|v| v.cast_into::<PyDict>().ok());
    let mut u = Usage {
        input: r.required(
            get("input_tokens"),
            Joined(at, "input_tokens"),
            Field::Input,
        ),
        output: r.required(
            get("output_tokens"),
            Joined(at, "output_tokens"),
            Field::Output,
        ),
        ..Usage::default()
    };
    if let Some(p) = sub("input_tokens_details") {
        u.cache_read = r.count(
            dict_get(&p, intern!(py, "cached_tokens")),
            Joined(at, "input_tokens_details.cached_tokens"),
            Field::CacheRead,
        );
    } else if let Some(p) = sub("prompt_tokens_details") {
        u.cache_read = r.count(
            dict_get(&p, intern!(py, "cached_tokens")),
            Joined(at, "prompt_tokens_details.cached_tokens"),
            Field::CacheRead,
        );
    }
    if let Some(o) = sub("output_tokens_details") {
        u.reasoning = r.count(
            dict_get(&o, intern!(py, "reasoning_tokens")),
            Joined(at, "output_tokens_details.reasoning_tokens"),
            Field::Reasoning,
        );
    }
    u
}
