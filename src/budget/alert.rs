//! A budget threshold crossed: what the logger, the `on_alert` callable and the webhook get.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::money::{self, format_usd, Decimal};

use super::NONE_VALUE;

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Spend reached a threshold (`alert_at`): once per threshold, window and scope value.
    Threshold,
    /// A blocking budget refused a call: once per window and scope value (rolling windows:
    /// at most once per window length), so people hear that calls are being stopped even
    /// when spend stays just under the limit.
    Blocked,
}

impl AlertKind {
    /// `threshold` or `blocked`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Threshold => "threshold",
            AlertKind::Blocked => "blocked",
        }
    }
}

/// A budget reached a threshold, or refused a call, in a window for one scope value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Threshold reached, or call refused.
    pub kind: AlertKind,
    /// The budget's name.
    pub budget: String,
    /// `global` or the scope key (`user_id`, ...).
    pub scope: String,
    /// The scope value (`None`: global, or calls lacking the key).
    pub value: Option<String>,
    /// The fraction of the limit reached (`0.8`); `1` for a refused call.
    pub threshold: Decimal,
    /// Spent in the window when it fired.
    pub spent: Decimal,
    /// Reserved by calls in flight when it fired.
    pub reserved: Decimal,
    /// The limit.
    pub limit: Decimal,
    /// The window, as text (`day`, `rolling 15m`, ...).
    pub window: String,
    /// Whether the budget blocks calls (`block`) or only alerts (`alert`).
    pub action: &'static str,
    /// When the window resets (calendar windows only).
    pub resets_at: Option<DateTime<Utc>>,
    /// When the threshold was crossed.
    pub time: DateTime<Utc>,
}

impl Alert {
    /// The threshold as a whole percentage (`80`), exact (`12.5` stays `12.5`).
    pub fn percent(&self) -> Decimal {
        (self.threshold * Decimal::ONE_HUNDRED).normalize()
    }

    /// One line for people (the log message and Slack's `text`):
    /// `llmledger budget 'day per user_id' (user_id = 'alice') reached 80% of its $10.00 day
    /// limit: $8.03 spent (resets at 2026-11-24 00:00 UTC)`, or for a refused call
    /// `llmledger budget 'day' is blocking calls: $9.97 spent + $0.02 reserved of its $10.00
    /// day limit (resets at ...)`.
    pub fn text(&self) -> String {
        let who = if self.scope == "global" {
            String::new()
        } else {
            match &self.value {
                Some(v) => format!(" ({} = '{v}')", self.scope),
                None => format!(" ({} = {NONE_VALUE})", self.scope),
            }
        };
        let resets = self
            .resets_at
            .map(|t| format!(" (resets at {})", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        match self.kind {
            AlertKind::Threshold => format!(
                "llmledger budget '{}'{who} reached {}% of its {} {} limit: {} spent{resets}",
                self.budget,
                self.percent(),
                format_usd(self.limit),
                self.window,
                format_usd(self.spent),
            ),
            AlertKind::Blocked => format!(
                "llmledger budget '{}'{who} is blocking calls: {} spent + {} reserved of its {} \
                 {} limit{resets}",
                self.budget,
                format_usd(self.spent),
                format_usd(self.reserved),
                format_usd(self.limit),
                self.window,
            ),
        }
    }

    /// The webhook body: Slack-compatible (`text`) plus structured fields. Money and
    /// thresholds are exact decimal strings, times RFC 3339 UTC.
    pub fn to_json(&self) -> Value {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        json!({
            "text": self.text(),
            "event": self.kind.name(),
            "budget": self.budget,
            "scope": self.scope,
            "value": self.value,
            "threshold": money::format(self.threshold),
            "percent": money::format(self.percent()),
            "spent": money::format(self.spent),
            "reserved": money::format(self.reserved),
            "limit": money::format(self.limit),
            "window": self.window,
            "action": self.action,
            "resets_at": self.resets_at.map(time),
            "time": time(self.time),
        })
    }
}
