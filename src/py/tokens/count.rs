//! Counting a start's prompt through the process's token memo: a prompt held by reference
//! until the end ([`PromptRef`]), and the tally that looks each message up and tokenizes only
//! what the memo lacks, without the GIL when long.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use super::read::{chat_message, read_message, tools_of, tools_param, with_text};
use super::DETACH_MIN_BYTES;
use crate::tokens::{self, memo, ChatMessage, Counter, Encoding, MessageCount, MessageKey};

/// A start hook's prompt, held by reference (no text copied) until it is counted: the chat
/// messages (`list[list[BaseMessage]]`) or the prompts (`list[str]`), and the invocation
/// params, whose tool definitions are looked up only if the prompt is counted.
pub struct PromptRef {
    inputs: Py<PyAny>,
    invocation_params: Option<Py<PyAny>>,
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
            invocation_params: invocation_params.map(|p| p.clone().unbind()),
        })
    }

    /// Its tokens for the model `counter` counts for (see [`count_prompt`]).
    pub fn count(&self, py: Python<'_>, counter: &Counter) -> Option<u64> {
        let params = self.invocation_params.as_ref().map(|p| p.bind(py));
        let tools = tools_param(params);
        count_prompt(py, self.inputs.bind(py), tools.as_ref(), counter)
    }

    /// The Python objects it holds, for the garbage collector.
    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.inputs)?;
        if let Some(p) = &self.invocation_params {
            visit.call(p)?;
        }
        Ok(())
    }
}

/// A prompt being counted: each message's count, from the memo or (for the messages not in
/// it) from a copy of the message tokenized afterwards, without the GIL when long.
pub(super) struct Tally {
    encoding: Encoding,
    pub(super) counts: Vec<MessageCount>,
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
    pub(super) fn new(encoding: Encoding) -> Tally {
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
    pub(super) fn count_misses(&mut self, py: Python<'_>) {
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
            // The memo's lock is taken without the GIL: a fork waits (see `crate::fork`).
            py.detach(|| {
                let _fork = crate::fork::hook_work();
                count()
            })
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
pub(super) fn tally_messages(tally: &mut Tally, messages: &Bound<'_, PyAny>) -> PyResult<()> {
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
