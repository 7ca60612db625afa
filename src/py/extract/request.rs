//! A start hook's sampling parameters, rendered for the request fingerprint
//! (`crate::fingerprint`): the invocation params that change what a model answers, each as
//! `key=repr(value)`, sorted by key. Read only when fingerprints are on: one pass over the
//! invocation params (a handful of items), no lookup per known name.

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::as_dict;

/// `key=repr(value);` for each of these invocation params the request sets.
const PARAMS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "stop",
    "stop_sequences",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "response_format",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "reasoning_effort",
    "reasoning",
    "thinking",
    "tool_choice",
];

/// The request's sampling parameters as bytes: equal parameters give equal bytes.
pub fn request_params(invocation_params: Option<&Bound<'_, PyAny>>) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(ip) = invocation_params.and_then(|p| as_dict(p)) else {
        return out;
    };
    let mut found: Vec<(&'static str, Bound<'_, PyAny>)> = Vec::new();
    for (k, v) in ip.iter() {
        if v.is_none() {
            continue;
        }
        let Ok(k) = k.cast::<PyString>() else {
            continue;
        };
        let Ok(k) = k.to_str() else { continue };
        if let Some(name) = PARAMS.iter().find(|p| **p == k) {
            found.push((name, v));
        }
    }
    found.sort_unstable_by_key(|(k, _)| *k);
    for (name, v) in found {
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        match v.repr() {
            Ok(r) => out.extend_from_slice(r.to_string_lossy().as_bytes()),
            Err(_) => out.extend_from_slice(b"?"),
        }
        out.push(b';');
    }
    out
}
