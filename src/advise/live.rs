//! Live hints (`CostTracker(advise=True)`): now and then the advisor looks at a tracker's
//! latest calls, and each finding is told once per rule and scope, with its saving so far.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::Advice;
use crate::money;

/// The latest calls a live check looks at.
pub const LIVE_WINDOW: usize = 5000;

/// Which findings a tracker has told, and when to look again.
#[derive(Debug, Default)]
pub struct Live {
    told: Mutex<HashSet<(String, String)>>,
    calls: AtomicU64,
}

impl Live {
    /// Counts a finished call; true when it is time to look (after calls 5, 10, 20, 50, then
    /// every 100th: early enough for a short script, rarely enough to cost nothing).
    pub fn due(&self) -> bool {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        matches!(n, 5 | 10 | 20 | 50) || n.is_multiple_of(100)
    }

    /// The messages of the findings in `advice` not told yet (each rule and scope once).
    pub fn untold(&self, advice: &Advice) -> Vec<String> {
        let mut told = self.told.lock();
        let mut out = Vec::new();
        for f in &advice.findings {
            let scope = serde_json::to_string(&f.scope).unwrap_or_default();
            if !told.insert((f.rule.to_string(), scope)) {
                continue;
            }
            let money = if f.saving.is_zero() {
                String::new()
            } else {
                format!(" (saving so far {})", money::format_usd(f.saving))
            };
            out.push(format!(
                "advice [{}]: {}{money}. {}",
                f.rule, f.title, f.action
            ));
        }
        out
    }
}
