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
use crate::tokens::{
    self, memo, ChatMessage, ContentPart, Counter, Encoding, MessageCount, MessageKey, MessageSink,
    Prompt,
};

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

fn get_interned<'py>(
    d: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> Option<Bound<'py, PyAny>> {
    d.get_item(key).ok().flatten().filter(|v| !v.is_none())
}

fn str_in(d: &Bound<'_, PyDict>, key: &str) -> Option<String> {
    get(d, key).and_then(|v| text_of(&v))
}

/// Calls `f` with `v`'s text: borrowed from a `str` (no copy), else `str(v)`; `None` for
/// `None` or a `str()` that raises.
fn with_text<R>(v: &Bound<'_, PyAny>, f: impl FnOnce(&str) -> R) -> Option<R> {
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

/// Reads message content (a string or a list of blocks) into `sink`; `tool_use` blocks
/// (Anthropic) become tool calls.
fn read_content(content: &Bound<'_, PyAny>, sink: &mut impl MessageSink) {
    if let Ok(s) = content.cast::<PyString>() {
        if let Ok(s) = s.to_str() {
            if !s.is_empty() {
                sink.text(s);
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
                with_text_in(block, intern!(py, "text"), |t| sink.text(t));
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
fn langchain_tool_calls(msg: &Bound<'_, PyAny>, sink: &mut impl MessageSink) {
    let py = msg.py();
    let Ok(Some(tcs)) = msg.getattr_opt(intern!(py, "tool_calls")) else {
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
fn read_dict_message(d: &Bound<'_, PyDict>, sink: &mut impl MessageSink) -> PyResult<()> {
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
pub fn read_message(m: &Bound<'_, PyAny>, sink: &mut impl MessageSink) -> PyResult<()> {
    let py = m.py();
    if let Ok(s) = m.cast::<PyString>() {
        sink.role("user");
        sink.text(s.to_str()?);
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
    let role = if ty == "chat" || ty == "ChatMessageChunk" {
        m.getattr(intern!(py, "role"))
            .ok()
            .and_then(|r| text_of(&r))
            .map_or(Cow::Borrowed("user"), Cow::Owned)
    } else {
        Cow::Borrowed(role_for(&ty))
    };
    sink.role(&role);
    if let Some(n) = m.getattr_opt(intern!(py, "name"))? {
        with_text(&n, |n| {
            if !n.is_empty() {
                sink.name(n);
            }
        });
    }
    if let Some(c) = m.getattr_opt(intern!(py, "content"))? {
        read_content(&c, sink);
    }
    // Anthropic messages carry their calls both as tool_use blocks and as tool_calls. Only
    // assistant messages have `tool_calls` (a missing attribute costs an exception).
    if !sink.has_tool_calls() && role == "assistant" {
        langchain_tool_calls(m, sink);
    }
    Ok(())
}

/// One message, copied into the core's `ChatMessage` (see [`read_message`]).
pub fn chat_message(m: &Bound<'_, PyAny>) -> PyResult<ChatMessage> {
    let mut msg = ChatMessage::default();
    read_message(m, &mut msg)?;
    Ok(msg)
}

/// A start's prompt copied into the core's form (the messages' text, the tool definitions),
/// for the request fingerprint: `None` when `inputs` is not a non-empty list or a message
/// cannot be read.
pub fn prompt_of(
    inputs: &Bound<'_, PyAny>,
    invocation_params: Option<&Bound<'_, PyAny>>,
) -> Option<Prompt> {
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
        for m in list.try_iter().ok()? {
            messages.push(chat_message(&m.ok()?).ok()?);
        }
    }
    let tools = tools_of(tools_param(invocation_params).as_ref());
    Some(Prompt::Chat { messages, tools })
}

fn tools_of(tools: Option<&Bound<'_, PyAny>>) -> Vec<Value> {
    match tools.map(json_of) {
        Some(Value::Array(items)) => items,
        Some(Value::Object(o)) => vec![Value::Object(o)],
        _ => Vec::new(),
    }
}

/// A start hook's prompt, held by reference (no text copied) until it is counted: the chat
/// messages (`list[list[BaseMessage]]`) or the prompts (`list[str]`), and the tool
/// definitions from the invocation params.
pub struct PromptRef {
    inputs: Py<PyAny>,
    tools: Option<Py<PyAny>>,
}

impl PromptRef {
    /// The start's prompt: `None` when `inputs` is not a non-empty list.
    pub fn of(
        inputs: &Bound<'_, PyAny>,
        invocation_params: Option<&Bound<'_, PyAny>>,
    ) -> Option<PromptRef> {
        let lists = inputs.cast::<PyList>().ok()?;
        if lists.is_empty() {
            return None;
        }
        Some(PromptRef {
            inputs: inputs.clone().unbind(),
            tools: tools_param(invocation_params).map(Bound::unbind),
        })
    }

    /// Its tokens for the model `counter` counts for (see [`count_prompt`]).
    pub fn count(&self, py: Python<'_>, counter: &Counter) -> Option<u64> {
        count_prompt(
            py,
            self.inputs.bind(py),
            self.tools.as_ref().map(|t| t.bind(py)),
            counter,
        )
    }

    /// The Python objects it holds, for the garbage collector.
    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.inputs)?;
        if let Some(t) = &self.tools {
            visit.call(t)?;
        }
        Ok(())
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

/// A prompt being counted: each message's count, from the memo or (for the messages not in
/// it) from a copy of the message tokenized afterwards, without the GIL when long.
struct Tally {
    encoding: Encoding,
    counts: Vec<MessageCount>,
    /// Messages (or prompt texts) the memo did not have: where their count goes, their key,
    /// and their copy.
    misses: Vec<(usize, u128, Miss)>,
    miss_bytes: usize,
}

enum Miss {
    Message(ChatMessage),
    Text(String),
}

impl Tally {
    fn new(encoding: Encoding) -> Tally {
        Tally {
            encoding,
            counts: Vec::new(),
            misses: Vec::new(),
            miss_bytes: 0,
        }
    }

    /// Adds a message: its count if the memo has it, else a copy to count.
    fn message(&mut self, m: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut key = MessageKey::new(self.encoding);
        read_message(m, &mut key)?;
        if let Some(c) = memo::lookup(key.finish()) {
            self.counts.push(c);
            return Ok(());
        }
        let msg = chat_message(m)?;
        self.miss_bytes += msg.text_len();
        self.misses.push((
            self.counts.len(),
            msg.key(self.encoding),
            Miss::Message(msg),
        ));
        self.counts.push(MessageCount::default());
        Ok(())
    }

    /// Adds a completion prompt.
    fn text(&mut self, t: &Bound<'_, PyAny>) {
        let found = with_text(t, |t| {
            let key = MessageKey::prompt(self.encoding, t);
            (key, memo::lookup(key).ok_or_else(|| t.to_string()))
        });
        match found {
            Some((_, Ok(c))) => self.counts.push(c),
            Some((key, Err(copy))) => {
                self.miss_bytes += copy.len();
                self.misses.push((self.counts.len(), key, Miss::Text(copy)));
                self.counts.push(MessageCount::default());
            }
            None => {}
        }
    }

    /// Tokenizes what the memo did not have (without the GIL when it is long) and remembers
    /// it.
    fn count_misses(&mut self, py: Python<'_>) {
        if self.misses.is_empty() {
            return;
        }
        let enc = self.encoding;
        let misses = std::mem::take(&mut self.misses);
        let count = move || -> Vec<(usize, MessageCount)> {
            misses
                .into_iter()
                .map(|(i, key, miss)| {
                    let c = match &miss {
                        Miss::Message(m) => m.count_raw(enc),
                        Miss::Text(t) => MessageCount {
                            raw: enc.count(t),
                            named: false,
                        },
                    };
                    memo::remember(key, c);
                    (i, c)
                })
                .collect()
        };
        let counted = if self.miss_bytes >= DETACH_MIN_BYTES {
            py.detach(count)
        } else {
            count()
        };
        for (i, c) in counted {
            self.counts[i] = c;
        }
    }
}

/// Tokens of a start hook's prompt for the model `counter` counts for: chat messages
/// (`list[list[message]]`, with the chat overhead and `tools`) or completion prompts
/// (`list[str]`). Each message is looked up in the process's memo by its key (hashed from
/// the Python strings, no copy); only the messages it lacks are copied and tokenized, with
/// the GIL released when they are long. `None` when the prompt cannot be read (not a
/// non-empty list, or a message of an unknown kind).
pub fn count_prompt(
    py: Python<'_>,
    inputs: &Bound<'_, PyAny>,
    tools: Option<&Bound<'_, PyAny>>,
    counter: &Counter,
) -> Option<u64> {
    let lists = inputs.cast::<PyList>().ok()?;
    if lists.is_empty() {
        return None;
    }
    let mut tally = Tally::new(counter.encoding);
    if lists.get_item(0).ok()?.cast::<PyString>().is_ok() {
        for p in lists.iter() {
            tally.text(&p);
        }
        tally.count_misses(py);
        return Some(tally.counts.iter().map(|c| counter.scale(c.raw)).sum());
    }
    for list in lists.iter() {
        tally_messages(&mut tally, &list).ok()?;
    }
    tally.count_misses(py);
    Some(tokens::chat_total(counter, &tally.counts, &tools_of(tools)))
}

/// Adds `messages` (an iterable of messages, or one string) to `tally`.
fn tally_messages(tally: &mut Tally, messages: &Bound<'_, PyAny>) -> PyResult<()> {
    if messages.cast::<PyString>().is_ok() {
        return tally.message(messages);
    }
    if let Ok(l) = messages.cast::<PyList>() {
        for m in l.iter() {
            tally.message(&m)?;
        }
        return Ok(());
    }
    for m in messages.try_iter()? {
        tally.message(&m?)?;
    }
    Ok(())
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
    let mut tally = Tally::new(counter.encoding);
    tally_messages(&mut tally, messages)?;
    tally.count_misses(py);
    Ok(tokens::chat_total(
        &counter,
        &tally.counts,
        &tools_of(tools),
    ))
}

/// What the process's token memo holds: `{"max_messages", "messages", "bytes", "max_bytes",
/// "hits", "misses"}`. With `max_messages=N` it is first resized to hold N messages (0 turns
/// it off; resizing forgets what it held).
#[pyfunction]
#[pyo3(signature = (*, max_messages=None))]
pub fn token_memo(py: Python<'_>, max_messages: Option<usize>) -> PyResult<Bound<'_, PyDict>> {
    if let Some(n) = max_messages {
        memo::configure(n);
    }
    let s = memo::stats();
    let d = PyDict::new(py);
    d.set_item("max_messages", s.max_messages)?;
    d.set_item("messages", s.messages)?;
    d.set_item("bytes", s.bytes)?;
    d.set_item("max_bytes", s.max_bytes)?;
    d.set_item("hits", s.hits)?;
    d.set_item("misses", s.misses)?;
    Ok(d)
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
