//! What a response generated, read only when it reports no usage: the texts of an
//! `LLMResult`, and a streamed chunk's text.

use std::borrow::Cow;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::read::{chat_message, str_in};
use crate::py::extract::text_of;
use crate::tokens::ContentPart;

/// The generated text of an `LLMResult`: each generation's message content and tool calls
/// (chat models) or text (LLMs). Read only when the response reports no usage.
pub fn output_texts(response: &Bound<'_, PyAny>) -> Vec<String> {
    let py = response.py();
    let mut out = Vec::new();
    let Ok(gens) = response.getattr(intern!(py, "generations")) else {
        return out;
    };
    let Ok(lists) = gens.try_iter() else {
        return out;
    };
    for list in lists.flatten() {
        let Ok(items) = list.try_iter() else { continue };
        for gen in items.flatten() {
            if let Ok(Some(msg)) = gen.getattr_opt(intern!(py, "message")) {
                if let Ok(m) = chat_message(&msg) {
                    for p in m.content {
                        if let ContentPart::Text(t) = p {
                            out.push(t);
                        }
                    }
                    for c in m.tool_calls {
                        out.push(c.name);
                        out.push(c.arguments);
                    }
                    continue;
                }
            }
            if let Some(t) = gen
                .getattr(intern!(py, "text"))
                .ok()
                .and_then(|t| text_of(&t))
            {
                out.push(t);
            }
        }
    }
    out
}

/// The text of a streamed chunk: `token` (borrowed, not copied: this runs per chunk), or for
/// tool-call chunks (empty token) the call's name and argument pieces.
pub fn chunk_text<'a>(
    token: &'a Bound<'_, PyAny>,
    chunk: Option<&Bound<'_, PyAny>>,
) -> Cow<'a, str> {
    let text = token
        .cast::<PyString>()
        .ok()
        .and_then(|s| s.to_str().ok())
        .unwrap_or_default();
    if !text.is_empty() {
        return Cow::Borrowed(text);
    }
    let Some(chunk) = chunk.filter(|c| !c.is_none()) else {
        return Cow::Borrowed("");
    };
    let py = chunk.py();
    let mut out = String::new();
    if let Ok(Some(msg)) = chunk.getattr_opt(intern!(py, "message")) {
        if let Ok(Some(tccs)) = msg.getattr_opt(intern!(py, "tool_call_chunks")) {
            if let Ok(items) = tccs.try_iter() {
                for tc in items.flatten() {
                    if let Ok(tc) = tc.cast::<PyDict>() {
                        for key in ["name", "args"] {
                            if let Some(v) = str_in(tc, key) {
                                out.push_str(&v);
                            }
                        }
                    }
                }
            }
        }
    }
    Cow::Owned(out)
}
