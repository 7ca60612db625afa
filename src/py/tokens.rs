//! Token counting for Python: `count_tokens`, `count_message_tokens`, `count_tokens_batch`,
//! `tokenizer_for`, and the readers that turn LangChain messages, OpenAI-style dicts and
//! `LLMResult` generations into the core's `ChatMessage` / text.

use std::borrow::Cow;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

use super::extract::text_of;
use crate::tokens::{self, ChatMessage, ContentPart, Counter, Encoding, Prompt, ToolCall};

/// Text at least this long is counted with the GIL released (shorter counts take less time
/// than a release and re-acquire is worth).
pub const DETACH_MIN_BYTES: usize = 1024;
/// Nesting deeper than this in a tool schema or arguments is cut (malformed or hostile input).
const MAX_JSON_DEPTH: usize = 64;

/// A Python value as JSON (dicts, lists, tuples, str, int, float, bool, None; anything else
/// through `str()`).
pub fn json_of(v: &Bound<'_, PyAny>) -> Value {
    json_at(v, 0)
}

fn json_at(v: &Bound<'_, PyAny>, depth: usize) -> Value {
    if v.is_none() || depth > MAX_JSON_DEPTH {
        return Value::Null;
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Value::String(s.to_str().map(str::to_string).unwrap_or_default());
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Value::Bool(b.is_true());
    }
    if v.cast::<PyInt>().is_ok() {
        if let Ok(i) = v.extract::<i64>() {
            return Value::from(i);
        }
        return Value::String(text_of(v).unwrap_or_default());
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return serde_json::Number::from_f64(f.value()).map_or(Value::Null, Value::Number);
    }
    if let Ok(d) = v.cast::<PyDict>() {
        return Value::Object(
            d.iter()
                .map(|(k, v)| (text_of(&k).unwrap_or_default(), json_at(&v, depth + 1)))
                .collect(),
        );
    }
    if let Ok(l) = v.cast::<PyList>() {
        return Value::Array(l.iter().map(|x| json_at(&x, depth + 1)).collect());
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return Value::Array(t.iter().map(|x| json_at(&x, depth + 1)).collect());
    }
    Value::String(text_of(v).unwrap_or_default())
}

fn get<'py>(d: &Bound<'py, PyDict>, key: &str) -> Option<Bound<'py, PyAny>> {
    d.get_item(key).ok().flatten().filter(|v| !v.is_none())
}

fn str_in(d: &Bound<'_, PyDict>, key: &str) -> Option<String> {
    get(d, key).and_then(|v| text_of(&v))
}

/// Reads message content (a string or a list of blocks) into parts; `tool_use` blocks
/// (Anthropic) become tool calls.
fn read_content(
    content: &Bound<'_, PyAny>,
    parts: &mut Vec<ContentPart>,
    calls: &mut Vec<ToolCall>,
) {
    if let Ok(s) = content.cast::<PyString>() {
        if let Ok(s) = s.to_str() {
            if !s.is_empty() {
                parts.push(ContentPart::Text(s.to_string()));
            }
        }
        return;
    }
    let Ok(items) = content.try_iter() else {
        return;
    };
    for item in items.flatten() {
        if item.cast::<PyString>().is_ok() {
            read_content(&item, parts, calls);
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
                parts.push(ContentPart::Image {
                    low: detail.as_deref() == Some("low"),
                });
            }
            "tool_use" | "server_tool_use" => calls.push(ToolCall {
                name: str_in(block, "name").unwrap_or_default(),
                arguments: get(block, "input")
                    .map(|i| json_of(&i).to_string())
                    .unwrap_or_default(),
            }),
            "tool_result" => {
                if let Some(c) = get(block, "content") {
                    read_content(&c, parts, calls);
                }
            }
            // Earlier turns' reasoning is not sent back as billed input.
            "thinking" | "redacted_thinking" | "reasoning" => {}
            _ => {
                if let Some(t) = str_in(block, "text") {
                    parts.push(ContentPart::Text(t));
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
fn langchain_tool_calls(msg: &Bound<'_, PyAny>, calls: &mut Vec<ToolCall>) {
    let py = msg.py();
    let Ok(Some(tcs)) = msg.getattr_opt(intern!(py, "tool_calls")) else {
        return;
    };
    let Ok(tcs) = tcs.try_iter() else { return };
    for tc in tcs.flatten() {
        if let Ok(tc) = tc.cast::<PyDict>() {
            calls.push(ToolCall {
                name: str_in(tc, "name").unwrap_or_default(),
                arguments: get(tc, "args")
                    .map(|a| json_of(&a).to_string())
                    .unwrap_or_default(),
            });
        }
    }
}

/// One message: a LangChain message, an OpenAI-style dict, a `(role, content)` tuple or a
/// string (a user message), as LangChain accepts them.
pub fn chat_message(m: &Bound<'_, PyAny>) -> PyResult<ChatMessage> {
    let py = m.py();
    let mut msg = ChatMessage::default();
    if let Ok(s) = m.cast::<PyString>() {
        return Ok(ChatMessage::text("user", s.to_str()?));
    }
    if let Ok(d) = m.cast::<PyDict>() {
        msg.role = str_in(d, "role").unwrap_or_else(|| "user".into());
        msg.name = str_in(d, "name");
        if let Some(c) = get(d, "content") {
            read_content(&c, &mut msg.content, &mut msg.tool_calls);
        }
        if let Some(tcs) = get(d, "tool_calls") {
            for tc in tcs.try_iter()?.flatten() {
                let Ok(tc) = tc.cast_into::<PyDict>() else {
                    continue;
                };
                let f = get(&tc, "function").and_then(|f| f.cast_into::<PyDict>().ok());
                let f = f.as_ref().unwrap_or(&tc);
                msg.tool_calls.push(ToolCall {
                    name: str_in(f, "name").unwrap_or_default(),
                    arguments: match get(f, "arguments") {
                        Some(a) if a.cast::<PyString>().is_ok() => text_of(&a).unwrap_or_default(),
                        Some(a) => json_of(&a).to_string(),
                        None => String::new(),
                    },
                });
            }
        }
        return Ok(msg);
    }
    if let Ok(t) = m.cast::<PyTuple>() {
        if t.len() == 2 {
            msg.role = role_for(&text_of(&t.get_item(0)?).unwrap_or_default()).to_string();
            read_content(&t.get_item(1)?, &mut msg.content, &mut msg.tool_calls);
            return Ok(msg);
        }
    }
    let ty = m
        .getattr_opt(intern!(py, "type"))?
        .and_then(|t| text_of(&t))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "cannot count a message of type {}: expected a LangChain message, a dict with \
                 'role' and 'content', a (role, content) tuple or a string",
                m.get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?;
    msg.role = if ty == "chat" || ty == "ChatMessageChunk" {
        m.getattr(intern!(py, "role"))
            .ok()
            .and_then(|r| text_of(&r))
            .unwrap_or_else(|| "user".into())
    } else {
        role_for(&ty).to_string()
    };
    msg.name = m
        .getattr_opt(intern!(py, "name"))?
        .and_then(|n| text_of(&n))
        .filter(|n| !n.is_empty());
    if let Some(c) = m.getattr_opt(intern!(py, "content"))? {
        read_content(&c, &mut msg.content, &mut msg.tool_calls);
    }
    // Anthropic messages carry their calls both as tool_use blocks and as tool_calls. Only
    // assistant messages have `tool_calls` (a missing attribute costs an exception).
    if msg.tool_calls.is_empty() && msg.role == "assistant" {
        langchain_tool_calls(m, &mut msg.tool_calls);
    }
    Ok(msg)
}

fn messages_of(messages: &Bound<'_, PyAny>) -> PyResult<Vec<ChatMessage>> {
    if messages.cast::<PyString>().is_ok() {
        return Ok(vec![chat_message(messages)?]);
    }
    messages
        .try_iter()?
        .map(|m| chat_message(&m?))
        .collect::<PyResult<Vec<_>>>()
}

fn tools_of(tools: Option<&Bound<'_, PyAny>>) -> Vec<Value> {
    match tools.map(json_of) {
        Some(Value::Array(items)) => items,
        Some(Value::Object(o)) => vec![Value::Object(o)],
        _ => Vec::new(),
    }
}

/// The prompt of a start hook: the chat messages (`list[list[BaseMessage]]`) or the prompts
/// (`list[str]`), with the tool definitions from the invocation params.
pub fn prompt_of(inputs: &Bound<'_, PyAny>, kwargs: Option<&Bound<'_, PyDict>>) -> Option<Prompt> {
    let py = inputs.py();
    let lists = inputs.cast::<PyList>().ok()?;
    if lists.is_empty() {
        return None;
    }
    if lists.get_item(0).ok()?.cast::<PyString>().is_ok() {
        return Some(Prompt::Text(
            lists.iter().filter_map(|p| text_of(&p)).collect(),
        ));
    }
    let mut messages = Vec::new();
    for list in lists.iter() {
        messages.extend(messages_of(&list).ok()?);
    }
    let params = kwargs
        .and_then(|k| k.get_item(intern!(py, "invocation_params")).ok().flatten())
        .and_then(|p| p.cast_into::<PyDict>().ok());
    let tools = params
        .as_ref()
        .and_then(|p| get(p, "tools").or_else(|| get(p, "functions")))
        .map(|t| tools_of(Some(&t)))
        .unwrap_or_default();
    Some(Prompt::Chat { messages, tools })
}

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

fn counter_of(model: &str, encoding: Option<&str>) -> PyResult<Counter> {
    let mut counter = tokens::counter_for(model);
    if let Some(name) = encoding {
        let enc = Encoding::from_name(name).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown encoding '{name}': expected one of {}",
                tokens::ENCODINGS.map(Encoding::name).join(", ")
            ))
        })?;
        counter.encoding = enc;
        counter.estimate_for = None;
        counter.factor_permille = 1000;
    }
    Ok(counter)
}

/// Tokens in `text` for `model` (or with the named `encoding`). Exact for OpenAI models
/// (their own vocabulary, compiled in, no download); an estimate for models without a public
/// tokenizer (see `tokenizer_for`).
#[pyfunction]
#[pyo3(signature = (text, model="gpt-4o", *, encoding=None))]
pub fn count_tokens(
    py: Python<'_>,
    text: &Bound<'_, PyString>,
    model: &str,
    encoding: Option<&str>,
) -> PyResult<u64> {
    let counter = counter_of(model, encoding)?;
    let text = text.to_str()?;
    Ok(if text.len() >= DETACH_MIN_BYTES {
        py.detach(|| counter.count(text))
    } else {
        counter.count(text)
    })
}

/// Tokens of `texts`, counted in parallel on every core, in order.
#[pyfunction]
#[pyo3(signature = (texts, model="gpt-4o", *, encoding=None, threads=0))]
#[allow(clippy::needless_pass_by_value)] // PyO3 extracts the list into an owned Vec
pub fn count_tokens_batch(
    py: Python<'_>,
    texts: Vec<Bound<'_, PyString>>,
    model: &str,
    encoding: Option<&str>,
    threads: usize,
) -> PyResult<Vec<u64>> {
    let counter = counter_of(model, encoding)?;
    let strs = texts
        .iter()
        .map(|t| t.to_str())
        .collect::<PyResult<Vec<&str>>>()?;
    Ok(py.detach(|| tokens::count_batch(&counter, &strs, threads)))
}

/// Prompt tokens of a chat request as OpenAI bills it: the messages (LangChain messages,
/// OpenAI-style dicts, `(role, content)` tuples or strings) with the chat format's overhead
/// and reply priming, plus `tools` definitions (OpenAI or Anthropic format).
#[pyfunction]
#[pyo3(signature = (messages, model="gpt-4o", tools=None))]
pub fn count_message_tokens(
    py: Python<'_>,
    messages: &Bound<'_, PyAny>,
    model: &str,
    tools: Option<&Bound<'_, PyAny>>,
) -> PyResult<u64> {
    let counter = tokens::counter_for(model);
    let prompt = Prompt::Chat {
        messages: messages_of(messages)?,
        tools: tools_of(tools),
    };
    Ok(if prompt.text_len() >= DETACH_MIN_BYTES {
        py.detach(|| prompt.count(&counter))
    } else {
        prompt.count(&counter)
    })
}

/// How `model`'s tokens are counted: `{"model", "encoding", "exact", "method"}`. `exact` is
/// False for models without a public tokenizer (Claude, Gemini, Llama, ...), whose counts are
/// a documented estimate (`method` says which).
#[pyfunction]
pub fn tokenizer_for<'py>(py: Python<'py>, model: &str) -> PyResult<Bound<'py, PyDict>> {
    let c = tokens::counter_for(model);
    let d = PyDict::new(py);
    d.set_item("model", model)?;
    d.set_item("encoding", c.encoding.name())?;
    d.set_item("exact", c.is_exact())?;
    d.set_item("method", c.describe())?;
    Ok(d)
}
