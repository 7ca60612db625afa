//! Readers that turn a start's prompt (LangChain messages, OpenAI-style dicts, `(role,
//! content)` tuples, strings, and the tool definitions of the invocation params) into what a
//! [`MessageSink`] takes: text borrowed from the Python strings, or the core's `ChatMessage`.

use std::borrow::Cow;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use serde_json::Value;

use super::json::json_of;
use crate::py::attrs::Attrs;
use crate::py::extract::text_of;
use crate::tokens::{ChatMessage, MessageKey, MessageSink};

pub(super) fn get<'py>(d: &Bound<'py, PyDict>, key: &str) -> Option<Bound<'py, PyAny>> {
    d.get_item(key).ok().flatten().filter(|v| !v.is_none())
}

pub(super) fn get_interned<'py>(
    d: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> Option<Bound<'py, PyAny>> {
    d.get_item(key).ok().flatten().filter(|v| !v.is_none())
}

pub(super) fn str_in(d: &Bound<'_, PyDict>, key: &str) -> Option<String> {
    get(d, key).and_then(|v| text_of(&v))
}

/// Calls `f` with `v`'s text: borrowed from a `str` (no copy), else `str(v)`; `None` for
/// `None` or a `str()` that raises.
pub(super) fn with_text<R>(v: &Bound<'_, PyAny>, f: impl FnOnce(&str) -> R) -> Option<R> {
    if let Ok(s) = v.cast::<PyString>() {
        return s.to_str().ok().map(f);
    }
    text_of(v).map(|t| f(&t))
}

/// Calls `f` with the text of `d[key]` (see [`with_text`]).
fn with_text_in<R>(
    d: &Bound<'_, PyDict>,
    key: &Bound<'_, PyString>,
    f: impl FnOnce(&str) -> R,
) -> Option<R> {
    get_interned(d, key).and_then(|v| with_text(&v, f))
}

/// A [`MessageSink`] that may keep a text part's Python `str` instead of its text: what the
/// readers below feed every text part that is a `str` (its UTF-8, cached in the `str` by
/// CPython, is `text`). Sinks that only look at the text once (a memo key, a copy) take it.
pub trait PySink: MessageSink {
    /// A text part that is the Python string `s`, whose text is `text`.
    fn py_text(&mut self, s: &Bound<'_, PyString>, text: &str) {
        let _ = s;
        self.text(text);
    }
}

impl PySink for ChatMessage {}
impl PySink for MessageKey {}

/// Feeds `sink` the text part `v`: a `str` as it is, else `str(v)`; nothing for `None`, a
/// `str` that is not valid UTF-8 or a `str()` that raises.
fn text_part(v: &Bound<'_, PyAny>, sink: &mut impl PySink) {
    if let Ok(s) = v.cast::<PyString>() {
        if let Ok(t) = s.to_str() {
            sink.py_text(s, t);
        }
    } else if let Some(t) = text_of(v) {
        sink.text(&t);
    }
}

/// Reads message content (a string or a list of blocks) into `sink`; `tool_use` blocks
/// (Anthropic) become tool calls.
fn read_content(content: &Bound<'_, PyAny>, sink: &mut impl PySink) {
    if let Ok(s) = content.cast::<PyString>() {
        if let Ok(t) = s.to_str() {
            if !t.is_empty() {
                sink.py_text(s, t);
            }
        }
        return;
    }
    let Ok(items) = content.try_iter() else {
        return;
    };
    let py = content.py();
    for item in items.flatten() {
        if item.cast::<PyString>().is_ok() {
            read_content(&item, sink);
            continue;
        }
        let Ok(block) = item.cast::<PyDict>() else {
            continue;
        };
        let kind = str_in(block, "type").unwrap_or_default();
        match kind.as_str() {
            "image_url" | "image" | "input_image" => {
                let detail = get(block, "image_url")
                    .and_then(|u| u.cast_into::<PyDict>().ok())
                    .and_then(|u| str_in(&u, "detail"))
                    .or_else(|| str_in(block, "detail"));
                sink.image(detail.as_deref() == Some("low"));
            }
            "tool_use" | "server_tool_use" => {
                let name = str_in(block, "name").unwrap_or_default();
                let args = get(block, "input")
                    .map(|i| json_of(&i).to_string())
                    .unwrap_or_default();
                sink.tool_call(&name, &args);
            }
            "tool_result" => {
                if let Some(c) = get(block, "content") {
                    read_content(&c, sink);
                }
            }
            // Earlier turns' reasoning is not sent back as billed input.
            "thinking" | "redacted_thinking" | "reasoning" => {}
            _ => {
                if let Some(t) = get_interned(block, intern!(py, "text")) {
                    text_part(&t, sink);
                }
            }
        }
    }
}

/// OpenAI's role for a LangChain message type (`human` -> `user`, ...).
fn role_for(ty: &str) -> &str {
    match ty.strip_suffix("MessageChunk").unwrap_or(ty) {
        "human" | "Human" => "user",
        "ai" | "AI" => "assistant",
        "system" | "System" => "system",
        "tool" | "Tool" => "tool",
        "function" | "Function" => "function",
        other => other,
    }
}

/// Tool calls of a LangChain `AIMessage` (`tool_calls`: name and args dict).
fn langchain_tool_calls(msg: &Attrs<'_, '_>, py: Python<'_>, sink: &mut impl PySink) {
    let Ok(Some(tcs)) = msg.get(intern!(py, "tool_calls")) else {
        return;
    };
    let Ok(tcs) = tcs.try_iter() else { return };
    for tc in tcs.flatten() {
        if let Ok(tc) = tc.cast::<PyDict>() {
            let name = str_in(tc, "name").unwrap_or_default();
            let args = get(tc, "args")
                .map(|a| json_of(&a).to_string())
                .unwrap_or_default();
            sink.tool_call(&name, &args);
        }
    }
}

/// An OpenAI-style dict message (`role`, `name`, `content`, `tool_calls`).
fn read_dict_message(d: &Bound<'_, PyDict>, sink: &mut impl PySink) -> PyResult<()> {
    let py = d.py();
    if with_text_in(d, intern!(py, "role"), |r| sink.role(r)).is_none() {
        sink.role("user");
    }
    with_text_in(d, intern!(py, "name"), |n| sink.name(n));
    if let Some(c) = get_interned(d, intern!(py, "content")) {
        read_content(&c, sink);
    }
    if let Some(tcs) = get_interned(d, intern!(py, "tool_calls")) {
        for tc in tcs.try_iter()?.flatten() {
            let Ok(tc) = tc.cast_into::<PyDict>() else {
                continue;
            };
            let f = get(&tc, "function").and_then(|f| f.cast_into::<PyDict>().ok());
            let f = f.as_ref().unwrap_or(&tc);
            let name = str_in(f, "name").unwrap_or_default();
            let args = match get(f, "arguments") {
                Some(a) if a.cast::<PyString>().is_ok() => text_of(&a).unwrap_or_default(),
                Some(a) => json_of(&a).to_string(),
                None => String::new(),
            };
            sink.tool_call(&name, &args);
        }
    }
    Ok(())
}

/// Reads one message into `sink`: a LangChain message, an OpenAI-style dict, a `(role,
/// content)` tuple or a string (a user message), as LangChain accepts them. Text is borrowed
/// from the Python strings, not copied (a [`MessageKey`] only hashes it).
pub fn read_message(m: &Bound<'_, PyAny>, sink: &mut impl PySink) -> PyResult<()> {
    let py = m.py();
    if let Ok(s) = m.cast::<PyString>() {
        sink.role("user");
        let t = s.to_str()?;
        sink.py_text(s, t);
        return Ok(());
    }
    if let Ok(d) = m.cast::<PyDict>() {
        return read_dict_message(d, sink);
    }
    if let Ok(t) = m.cast::<PyTuple>() {
        if t.len() == 2 {
            sink.role(role_for(&text_of(&t.get_item(0)?).unwrap_or_default()));
            read_content(&t.get_item(1)?, sink);
            return Ok(());
        }
    }
    // The type is borrowed, not copied (this runs for every message of a fingerprinted or
    // budgeted start), and the fields are read from the instance `__dict__` where they can be.
    let fields = Attrs::of(m);
    let ty_value = fields.get(intern!(py, "type"))?;
    let ty: Option<Cow<'_, str>> = match &ty_value {
        Some(t) => match t.cast::<PyString>() {
            Ok(s) => s.to_str().ok().map(Cow::Borrowed),
            Err(_) => text_of(t).map(Cow::Owned),
        },
        None => None,
    };
    let ty = ty.ok_or_else(|| {
        PyValueError::new_err(format!(
            "cannot count a message of type {}: expected a LangChain message, a dict with \
                 'role' and 'content', a (role, content) tuple or a string",
            m.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })?;
    let role = if ty == "chat" || ty == "ChatMessageChunk" {
        fields
            .get(intern!(py, "role"))
            .ok()
            .flatten()
            .and_then(|r| text_of(&r))
            .map_or(Cow::Borrowed("user"), Cow::Owned)
    } else {
        Cow::Borrowed(role_for(&ty))
    };
    sink.role(&role);
    if let Some(n) = fields.get(intern!(py, "name"))? {
        with_text(&n, |n| {
            if !n.is_empty() {
                sink.name(n);
            }
        });
    }
    if let Some(c) = fields.get(intern!(py, "content"))? {
        read_content(&c, sink);
    }
    // Anthropic messages carry their calls both as tool_use blocks and as tool_calls. Only
    // assistant messages have `tool_calls` (a missing attribute costs an exception).
    if !sink.has_tool_calls() && role == "assistant" {
        langchain_tool_calls(&fields, py, sink);
    }
    Ok(())
}

/// One message, copied into the core's `ChatMessage` (see [`read_message`]).
pub fn chat_message(m: &Bound<'_, PyAny>) -> PyResult<ChatMessage> {
    let mut msg = ChatMessage::default();
    read_message(m, &mut msg)?;
    Ok(msg)
}

/// The tool definitions (`tools_param`) as JSON values, one per tool.
pub(super) fn tools_of(tools: Option<&Bound<'_, PyAny>>) -> Vec<Value> {
    match tools.map(json_of) {
        Some(Value::Array(items)) => items,
        Some(Value::Object(o)) => vec![Value::Object(o)],
        _ => Vec::new(),
    }
}

/// The tool definitions of a start's invocation params (`tools`, else `functions`).
pub fn tools_param<'py>(
    invocation_params: Option<&Bound<'py, PyAny>>,
) -> Option<Bound<'py, PyAny>> {
    let params = invocation_params?.cast::<PyDict>().ok()?;
    let py = params.py();
    get_interned(params, intern!(py, "tools"))
        .or_else(|| get_interned(params, intern!(py, "functions")))
}
