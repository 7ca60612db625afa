//! A start's request fingerprint (see `crate::fingerprint`), computed without copying the
//! prompt's text: the prompt is read once into a [`Tape`] that holds each text part's Python
//! `str` (a strong reference, through which its UTF-8, cached in the `str` by CPython, is
//! borrowed) rather than a copy of it, and the tape is hashed front to back. A long prompt is
//! hashed with the GIL released: the strings are immutable and the tape keeps them alive, so
//! another thread can neither free nor change them meanwhile.
//!
//! What is copied: roles that are not one of the usual ones, names, tool calls' names and
//! arguments (rendered as JSON text from Python values, a new string anyway) and tool
//! definitions (the same). What the tape reads, and in which order, is what
//! `chat_message` would copy into a `ChatMessage`, so the stored hashes are those of
//! `crate::fingerprint::of` on the copied prompt (pinned by `tests/test_fingerprint_pin.py`).

use std::ops::Range;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyList, PyString};

use super::read::{read_message, tools_of, tools_param, PySink};
use crate::fingerprint::{Fingerprint, Hashing, Key, Part};
use crate::py::extract::text_of;
use crate::tokens::MessageSink;

/// A prompt with at least this many text bytes is hashed with the GIL released (hashing runs
/// at several GB/s: below this it takes less time than releasing and re-taking the GIL).
pub const DETACH_HASH_MIN_BYTES: usize = 64 * 1024;

/// A text, borrowed from a Python `str` or (for what is computed) owned.
enum Text {
    Static(&'static str),
    Py(PyBackedStr),
    Owned(String),
}

impl Text {
    fn as_str(&self) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Py(s) => s,
            Text::Owned(s) => s,
        }
    }

    fn role(role: &str) -> Text {
        match role {
            "user" => Text::Static("user"),
            "assistant" => Text::Static("assistant"),
            "system" => Text::Static("system"),
            "tool" => Text::Static("tool"),
            "function" => Text::Static("function"),
            other => Text::Owned(other.to_string()),
        }
    }
}

enum TapePart {
    Text(Text),
    Image { low: bool },
}

/// One message of a tape: its role and name, and where its parts and tool calls are.
struct TapeMessage {
    role: Text,
    name: Option<String>,
    parts: Range<usize>,
    calls: Range<usize>,
}

/// A start's prompt as the fingerprint hashes it, its text held by reference.
#[derive(Default)]
struct Tape {
    tools: Vec<String>,
    messages: Vec<TapeMessage>,
    parts: Vec<TapePart>,
    calls: Vec<(String, String)>,
    /// Completion prompts (`on_llm_start`), instead of messages.
    texts: Vec<Text>,
    /// A completion model's prompts (`texts`), not chat messages.
    text_prompt: bool,
    bytes: usize,
}

/// The sink one message is read through, into its tape.
struct MessageTape<'t> {
    tape: &'t mut Tape,
    role: Text,
    name: Option<String>,
    calls_from: usize,
}

impl MessageSink for MessageTape<'_> {
    fn role(&mut self, role: &str) {
        self.role = Text::role(role);
    }
    fn name(&mut self, name: &str) {
        self.name = Some(name.to_string());
    }
    fn text(&mut self, text: &str) {
        self.tape.bytes += text.len();
        self.tape
            .parts
            .push(TapePart::Text(Text::Owned(text.to_string())));
    }
    fn image(&mut self, low: bool) {
        self.tape.parts.push(TapePart::Image { low });
    }
    fn tool_call(&mut self, name: &str, arguments: &str) {
        self.tape.bytes += name.len() + arguments.len();
        self.tape
            .calls
            .push((name.to_string(), arguments.to_string()));
    }
    fn has_tool_calls(&self) -> bool {
        self.tape.calls.len() > self.calls_from
    }
}

impl PySink for MessageTape<'_> {
    fn py_text(&mut self, s: &Bound<'_, PyString>, text: &str) {
        match PyBackedStr::try_from(s.clone()) {
            Ok(backed) => {
                self.tape.bytes += backed.len();
                self.tape.parts.push(TapePart::Text(Text::Py(backed)));
            }
            Err(_) => self.text(text),
        }
    }
}

impl Tape {
    /// Reads a start's prompt (`list[list[message]]` or `list[str]`) and its tool
    /// definitions: `None` when `inputs` is not a non-empty list or a message cannot be read
    /// (no fingerprint then).
    fn read(
        inputs: &Bound<'_, PyAny>,
        invocation_params: Option<&Bound<'_, PyAny>>,
    ) -> Option<Tape> {
        let lists = inputs.cast::<PyList>().ok()?;
        if lists.is_empty() {
            return None;
        }
        let mut tape = Tape::default();
        if lists.get_item(0).ok()?.cast::<PyString>().is_ok() {
            tape.text_prompt = true;
            for p in lists.iter() {
                let text = match p.cast_into::<PyString>() {
                    Ok(s) => PyBackedStr::try_from(s).ok().map(Text::Py),
                    Err(e) => text_of(&e.into_inner()).map(Text::Owned),
                };
                if let Some(t) = text {
                    tape.bytes += t.as_str().len();
                    tape.texts.push(t);
                }
            }
            return Some(tape);
        }
        for list in lists.iter() {
            for m in list.try_iter().ok()? {
                tape.message(&m.ok()?).ok()?;
            }
        }
        tape.tools = tools_of(tools_param(invocation_params).as_ref())
            .iter()
            .map(ToString::to_string)
            .collect();
        Some(tape)
    }

    fn message(&mut self, m: &Bound<'_, PyAny>) -> PyResult<()> {
        let parts_from = self.parts.len();
        let calls_from = self.calls.len();
        let mut sink = MessageTape {
            tape: self,
            role: Text::Static(""),
            name: None,
            calls_from,
        };
        read_message(m, &mut sink)?;
        let (role, name) = (sink.role, sink.name);
        self.messages.push(TapeMessage {
            role,
            name,
            parts: parts_from..self.parts.len(),
            calls: calls_from..self.calls.len(),
        });
        Ok(())
    }

    /// The fingerprints of the prompt for `model` with `params`.
    fn hash(&self, key: Key, model: Option<&str>, params: &[u8]) -> Fingerprint {
        let mut h = Hashing::new(key);
        if self.text_prompt {
            for t in &self.texts {
                h.text(t.as_str());
            }
            return h.finish(model, params);
        }
        h.tools(self.tools.iter().map(String::as_str));
        for m in &self.messages {
            h.message(
                m.role.as_str(),
                m.name.as_deref(),
                self.parts[m.parts.clone()].iter().map(|p| match p {
                    TapePart::Text(t) => Part::Text(t.as_str()),
                    TapePart::Image { low } => Part::Image { low: *low },
                }),
                self.calls[m.calls.clone()]
                    .iter()
                    .map(|(n, a)| (n.as_str(), a.as_str())),
            );
        }
        h.finish(model, params)
    }
}

/// The request fingerprint of a start (`inputs` and its `invocation_params`) for `model` with
/// `params`, under `key`; `None` when the prompt cannot be read. Long prompts are hashed with
/// the GIL released.
pub fn fingerprint(
    py: Python<'_>,
    key: Key,
    inputs: &Bound<'_, PyAny>,
    invocation_params: Option<&Bound<'_, PyAny>>,
    model: Option<&str>,
    params: &[u8],
) -> Option<Fingerprint> {
    let tape = Tape::read(inputs, invocation_params)?;
    let f = if tape.bytes >= DETACH_HASH_MIN_BYTES {
        py.detach(|| tape.hash(key, model, params))
    } else {
        tape.hash(key, model, params)
    };
    // The tape's references are let go here, with the GIL.
    drop(tape);
    Some(f)
}
