//! The prompts of open runs, held by reference: a tracker without budgets keeps each run's
//! messages (a reference, no text copied) so that, if the response reports no usage, the
//! prompt can be counted at the end; nothing is counted or copied when usage is reported.
//!
//! The references live here, in the binding, not in the core's run map: a run's reference is
//! taken out under the lock and dropped after it is released (dropping a last reference can
//! run Python code). The tracker's `__traverse__` visits them and `__clear__` lets them go, so
//! a message that refers back to its tracker is no uncollectable cycle.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::{PyTraverseError, PyVisit};

use super::tokens::PromptRef;
use crate::ids::RunMap;

/// Prompts held at most; past this (ends never seen) the oldest half is let go, as the core
/// forgets runs whose ends never came.
const MAX_HELD: usize = 100_000;

/// One open run's prompt.
pub struct HeldPrompt {
    /// The messages (or prompts) and tool definitions.
    pub prompt: PromptRef,
    /// The model asked for at start (the end counts for the response's model, else this).
    pub model: Option<Arc<str>>,
    /// Order of arrival (the oldest are let go first).
    seq: u64,
}

#[derive(Default)]
struct Inner {
    runs: RunMap<HeldPrompt>,
    next: u64,
}

/// Open runs' prompts, by run id.
#[derive(Default)]
pub struct HeldPrompts {
    inner: Mutex<Inner>,
}

impl HeldPrompts {
    /// Holds `prompt` for `run_id` until [`HeldPrompts::take`]. Must be called with the GIL:
    /// what it lets go (a prompt held for the same id, the oldest past [`MAX_HELD`]) is dropped
    /// after the lock is released.
    pub fn hold(&self, run_id: u128, prompt: PromptRef, model: Option<Arc<str>>) {
        let mut let_go: Vec<HeldPrompt> = Vec::new();
        {
            let mut inner = self.inner.lock();
            let seq = inner.next;
            inner.next += 1;
            if inner.runs.len() >= MAX_HELD {
                let mut by_age: Vec<(u128, u64)> =
                    inner.runs.iter().map(|(k, v)| (*k, v.seq)).collect();
                by_age.sort_unstable_by_key(|(_, s)| *s);
                for (k, _) in by_age.iter().take(by_age.len() / 2) {
                    let_go.extend(inner.runs.remove(k));
                }
            }
            let_go.extend(inner.runs.insert(run_id, HeldPrompt { prompt, model, seq }));
        }
        drop(let_go);
    }

    /// Takes `run_id`'s prompt out (the caller drops it, with the GIL and no lock held).
    pub fn take(&self, run_id: u128) -> Option<HeldPrompt> {
        let mut inner = self.inner.lock();
        if inner.runs.is_empty() {
            return None;
        }
        inner.runs.remove(&run_id)
    }

    /// Prompts held now.
    pub fn len(&self) -> usize {
        self.inner.lock().runs.len()
    }

    /// Visits every held object, for the garbage collector (a busy lock only delays
    /// collecting a cycle: a collection never waits).
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(inner) = self.inner.try_lock() {
            for held in inner.runs.values() {
                held.prompt.traverse(visit)?;
            }
        }
        Ok(())
    }

    /// Lets every held prompt go (dropped after the lock is released).
    pub fn clear(&self) {
        let runs = std::mem::take(&mut self.inner.lock().runs);
        drop(runs);
    }
}
