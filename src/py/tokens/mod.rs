//! Token counting for Python: `count_tokens`, `count_message_tokens`, `count_tokens_batch`,
//! `token_memo`, `tokenizer_for`, and what the hooks need of a prompt or a response:
//!
//! - `read`: LangChain messages, OpenAI-style dicts and tool definitions into the core's
//!   `ChatMessage` (or any `MessageSink`, borrowing the Python strings' text);
//! - `fingerprint`: a start's request fingerprint, hashed from the Python strings' text;
//! - `count`: a prompt counted through the token memo, or held by reference to count later;
//! - `output`: a response's generated text (only when it reports no usage);
//! - `json`: Python values as the JSON text a provider is sent.

mod count;
mod fingerprint;
mod json;
mod output;
mod read;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

pub use count::{count_prompt, PromptRef};
pub use fingerprint::fingerprint;
pub use output::{chunk_text, output_texts};
pub use read::tools_param;

use crate::tokens::{self, memo, Counter, Encoding};
use count::{tally_messages, Tally};
use read::tools_of;

/// Text at least this long is counted with the GIL released (shorter counts take less time
/// than a release and re-acquire is worth).
pub const DETACH_MIN_BYTES: usize = 1024;

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
