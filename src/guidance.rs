//! Warnings that tell the user how to fix what they warn about, each given once per process
//! (per model or provider): a call that names no model, a stream whose usage had to be
//! estimated. The tracker returns them with a call's other warnings; the binding logs them
//! after every lock is released.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// Keys already warned about, process-wide, per kind of warning.
fn warned(kind: &str, key: &str) -> bool {
    static WARNED: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
    !WARNED
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .insert((kind.to_string(), key.to_string()))
}

/// The first time a call of `provider` (LangChain's `ls_provider`, often the class's name for
/// custom and fake models) names no model: how to name and price it.
pub fn unnamed_model(provider: Option<&str>) -> Option<String> {
    let p = provider.unwrap_or_default();
    if warned("unnamed", p) {
        return None;
    }
    let from = provider
        .map(|p| format!(" (provider '{p}')"))
        .unwrap_or_default();
    Some(format!(
        "a call{from} names no model (LangChain's fake chat models and some custom ones report \
         none): its calls are recorded with cost None. Name the model in the call's metadata, \
         config={{\"metadata\": {{\"ls_model_name\": \"my-model\"}}}} (or give the model a \
         `model` field), and price it with CostTracker(prices={{\"my-model\": {{\"input\": \
         \"<USD per 1M>\", \"output\": \"<USD per 1M>\"}}}})"
    ))
}

/// How to get a provider's own token counts in a stream, for the provider's LangChain client.
pub fn stream_usage_fix(provider: Option<&str>) -> String {
    match provider.map(crate::catalog::normalize_provider) {
        Some("openai") => "pass ChatOpenAI(..., stream_usage=True): it is on by default only for \
             OpenAI's own endpoint, and off with a custom base_url or client (the server must \
             support stream_options.include_usage)"
            .into(),
        Some("azure") => "pass AzureChatOpenAI(..., stream_usage=True)".into(),
        Some(p @ ("deepseek" | "xai")) => {
            format!(
            "pass stream_usage=True to the {} client (an OpenAI-compatible LangChain chat model)",
            if p == "xai" { "ChatXAI" } else { "ChatDeepSeek" }
        )
        }
        Some("anthropic") => "ChatAnthropic reports streamed usage by default: check that \
             stream_usage=False is not set and that any proxy passes Anthropic's message_start \
             and message_delta events through"
            .into(),
        _ => "turn on your chat model's option to report token usage in streams (often \
             stream_usage=True, or stream_options={\"include_usage\": True} for \
             OpenAI-compatible servers)"
            .into(),
    }
}

/// The first time a stream of `model` ends without reported usage (its cost was estimated
/// from llmledger's token count): how to get exact usage from the provider.
pub fn estimated_stream(model: &str, provider: Option<&str>) -> Option<String> {
    if warned("stream", model) {
        return None;
    }
    let at = provider
        .map(|p| format!(" (provider '{p}')"))
        .unwrap_or_default();
    Some(format!(
        "a stream of '{model}'{at} reported no token usage: its cost is estimated from \
         llmledger's own count (usage_source 'estimated'). For exact usage, {}",
        stream_usage_fix(provider)
    ))
}

/// Calls checked at most for a captured key's near miss: a typo shows in the first calls, and
/// past them the check costs one atomic load.
const KEY_CHECKS: u32 = 256;

/// Watches a tracker's first calls for a captured metadata key that a call lacks while it
/// carries a near one (`userId` for `user_id`): warned once per key.
#[derive(Debug)]
pub struct KeyWatch {
    /// The captured keys, each with whether it is settled (seen in a call, or warned about).
    keys: parking_lot::Mutex<Vec<(Arc<str>, bool)>>,
    checks_left: AtomicU32,
}

impl KeyWatch {
    /// A watch over `attribute`, the keys a tracker captures.
    pub fn new(attribute: &[Arc<str>]) -> Self {
        KeyWatch {
            keys: parking_lot::Mutex::new(attribute.iter().map(|k| (k.clone(), false)).collect()),
            checks_left: AtomicU32::new(if attribute.is_empty() { 0 } else { KEY_CHECKS }),
        }
    }

    /// Whether calls are still checked.
    pub fn active(&self) -> bool {
        self.checks_left.load(Ordering::Relaxed) > 0
    }

    /// Whether `captured` (a call's attribution) lacks one of the watched keys: only then is
    /// the call worth a [`KeyWatch::check`].
    pub fn lacks_some(&self, captured: &[(Arc<str>, String)]) -> bool {
        let keys = self.keys.lock();
        let present = captured
            .iter()
            .filter(|(k, _)| keys.iter().any(|(w, _)| w == k))
            .count();
        present < keys.len()
    }

    /// One call's check: `captured` are the pairs its metadata gave, `metadata_keys` every key
    /// of its metadata. Returns the warnings for keys it lacks next to a near key.
    pub fn check(&self, captured: &[(Arc<str>, String)], metadata_keys: &[String]) -> Vec<String> {
        if self.checks_left.fetch_sub(1, Ordering::Relaxed) <= 1 {
            self.checks_left.store(0, Ordering::Relaxed);
        }
        let mut keys = self.keys.lock();
        let mut out = Vec::new();
        let captured_names: Vec<&str> = keys.iter().map(|(k, _)| k.as_ref()).collect();
        let others: Vec<&str> = metadata_keys
            .iter()
            .map(String::as_str)
            .filter(|m| !captured_names.contains(m))
            .collect();
        for (key, settled) in keys.iter_mut().filter(|(_, s)| !*s) {
            if captured.iter().any(|(k, _)| k == key) {
                *settled = true;
                continue;
            }
            let near = crate::suggest::closest(key, others.iter().copied(), 1);
            if let Some(n) = near.first() {
                *settled = true;
                out.push(format!(
                    "a call's metadata has no '{key}' (a key this tracker captures) but has \
                     '{n}': calls without '{key}' are attributed and budgeted as '(none)'. Send \
                     '{key}' in the metadata, or capture '{n}' with CostTracker(attribute=[..., \
                     '{n}'])"
                ));
            }
        }
        if keys.iter().all(|(_, s)| *s) {
            self.checks_left.store(0, Ordering::Relaxed);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_miss_key_is_warned_once() {
        let w = KeyWatch::new(&[Arc::from("user_id"), Arc::from("session_id")]);
        let md = |keys: &[&str]| keys.iter().map(|k| (*k).to_string()).collect::<Vec<_>>();
        assert!(w.check(&[], &md(&["ls_provider", "team"])).is_empty());
        let got = w.check(&[], &md(&["ls_provider", "userId"]));
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("no 'user_id'"), "{}", got[0]);
        assert!(got[0].contains("has 'userId'"), "{}", got[0]);
        assert!(w.check(&[], &md(&["userId"])).is_empty(), "once");
        // session_id seen: nothing is left to watch.
        let seen = [(Arc::from("session_id"), "s".to_string())];
        assert!(w.check(&seen, &md(&["session_id"])).is_empty());
        assert!(!w.active());
    }

    #[test]
    fn only_a_call_without_a_watched_key_is_checked() {
        let w = KeyWatch::new(&[Arc::from("user_id"), Arc::from("session_id")]);
        let pair = |k: &str| (Arc::from(k), "v".to_string());
        assert!(w.lacks_some(&[]));
        assert!(w.lacks_some(&[pair("user_id")]));
        // A captured key the watch does not watch (LangGraph's node) counts for nothing.
        assert!(w.lacks_some(&[pair("user_id"), pair("node")]));
        assert!(!w.lacks_some(&[pair("user_id"), pair("session_id")]));
        assert!(!w.lacks_some(&[pair("session_id"), pair("node"), pair("user_id")]));
    }

    #[test]
    fn the_watch_stops_after_its_first_calls() {
        let w = KeyWatch::new(&[Arc::from("user_id")]);
        for _ in 0..KEY_CHECKS {
            assert!(w.active());
            w.check(&[], &[]);
        }
        assert!(!w.active());
        assert!(!KeyWatch::new(&[]).active());
    }

    #[test]
    fn each_warning_once_per_key() {
        let first = unnamed_model(Some("test-fake-provider-1")).unwrap();
        assert!(
            first.contains("ls_model_name") && first.contains("prices="),
            "{first}"
        );
        assert!(unnamed_model(Some("test-fake-provider-1")).is_none());
        assert!(unnamed_model(Some("test-fake-provider-2")).is_some());
        let s = estimated_stream("test-model-a", Some("openai-chat")).unwrap();
        assert!(s.contains("ChatOpenAI(..., stream_usage=True)"), "{s}");
        assert!(estimated_stream("test-model-a", Some("openai")).is_none());
        let a = estimated_stream("test-model-b", Some("anthropic")).unwrap();
        assert!(
            a.contains("ChatAnthropic reports streamed usage by default"),
            "{a}"
        );
        let other = estimated_stream("test-model-c", Some("somewhere")).unwrap();
        assert!(other.contains("stream_usage=True"), "{other}");
    }
}
