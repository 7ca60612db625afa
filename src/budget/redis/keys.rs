//! The Redis keys of shared budgets, and the windows they are keyed by.
//!
//! Every key starts with the hash tag `{prefix}:` so that all keys one script touches live in
//! one Cluster slot. A budget's counters are keyed by the budget's name, its window's id (a
//! calendar window's start, never reset in place) and the scope value:
//! `{llmledger}:w:day per user_id:c1764633600:=alice`. `:` and `%` in names and values are
//! escaped (`%3A`, `%25`) so no two budgets or values share a key.

use chrono::{DateTime, Duration, Utc};

use crate::budget::{Budget, Window};

/// A rolling window's spend is kept in slots of 1/256 of it (at least a second).
const ROLLING_SLOTS: i64 = 256;

/// One budget's window at a time, as the script reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct WindowSpec {
    /// `c` calendar, `r` rolling, `l` lifetime.
    pub kind: &'static str,
    /// Calendar: start (ms since the epoch); rolling: length (ms).
    pub a: i64,
    /// Calendar: end (ms); rolling: slot length (ms).
    pub b: i64,
    /// The window's id in keys.
    pub id: String,
}

impl WindowSpec {
    /// `def`'s window containing `t`.
    pub fn of(def: &Budget, t: DateTime<Utc>) -> WindowSpec {
        match def.window {
            Window::Calendar { .. } => {
                let start = def.window.window_start(t).unwrap_or(t);
                let end = def.window.resets_at(t).unwrap_or(t);
                WindowSpec {
                    kind: "c",
                    a: start.timestamp_millis(),
                    b: end.timestamp_millis(),
                    id: format!("c{}", start.timestamp()),
                }
            }
            Window::Rolling(d) => {
                let len = d.num_milliseconds().max(1);
                WindowSpec {
                    kind: "r",
                    a: len,
                    b: (len / ROLLING_SLOTS).max(1000),
                    id: "r".into(),
                }
            }
            Window::Lifetime => WindowSpec {
                kind: "l",
                a: 0,
                b: 0,
                id: "l".into(),
            },
        }
    }

    /// Where this window starts at `t` (rolling: `t` minus its length).
    pub fn start(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.kind {
            "c" => DateTime::from_timestamp_millis(self.a),
            "r" => Some(t - Duration::milliseconds(self.a)),
            _ => None,
        }
    }
}

/// `:` and `%` escaped.
fn escape(s: &str) -> String {
    s.replace('%', "%25").replace(':', "%3A")
}

fn unescape(s: &str) -> String {
    s.replace("%3A", ":").replace("%25", "%")
}

/// A counter's scope value (`None`: global, or calls lacking the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct KeyValue(pub Option<String>);

/// The key names of one tracker's budgets.
#[derive(Clone, Debug)]
pub(super) struct Keys {
    /// `{prefix}:`
    pub tag: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            tag: format!("{{{prefix}}}:"),
        }
    }

    pub fn leases(&self) -> String {
        format!("{}leases", self.tag)
    }

    pub fn reservation(&self, run: &str) -> String {
        format!("{}r:{run}", self.tag)
    }

    /// The start of every counter key of `budget`'s window `w`.
    fn base(&self, budget: &str, w: &WindowSpec) -> String {
        format!("{}w:{}:{}:", self.tag, escape(budget), w.id)
    }

    /// The counter of `budget`'s window `w` for scope value `value` (`None`: global, or
    /// calls lacking the key).
    pub fn counter(&self, budget: &str, w: &WindowSpec, value: Option<&str>) -> String {
        let mut k = self.base(budget, w);
        match value {
            None => k.push('-'),
            Some(v) => {
                k.push('=');
                k.push_str(&escape(v));
            }
        }
        k
    }

    /// The scope value of a counter key of `budget`'s window `w` (`None`: not such a key).
    pub fn value_of(&self, budget: &str, w: &WindowSpec, key: &str) -> Option<KeyValue> {
        let rest = key.strip_prefix(&self.base(budget, w))?;
        match rest.strip_prefix('=') {
            Some(v) => Some(KeyValue(Some(unescape(v)))),
            None => (rest == "-").then_some(KeyValue(None)),
        }
    }

    /// The window was seeded from the ledger (holds the time it was seeded at).
    pub fn marker(&self, budget: &str, w: &WindowSpec) -> String {
        format!("{}m:{}:{}", self.tag, escape(budget), w.id)
    }

    /// The set of the window's counter keys.
    pub fn values(&self, budget: &str, w: &WindowSpec) -> String {
        format!("{}v:{}:{}", self.tag, escape(budget), w.id)
    }
}

/// A URL with its password (and user name) replaced: what messages may show.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a Redis URL)".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let auth = if authority.contains('@') { "***@" } else { "" };
    // A query may carry a password too (`?password=`): only the database is shown.
    let path = tail.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}://{auth}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{CalendarUnit, ScopeKey};
    use crate::money::Decimal;

    #[test]
    fn keys_share_a_hash_tag_and_escape_names() {
        let keys = Keys::new("app");
        let daily = Budget::daily(Decimal::ONE)
            .unwrap()
            .per(ScopeKey::parse("user_id"));
        let at = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let win = WindowSpec::of(&daily, at);
        assert_eq!(win.kind, "c");
        assert_eq!(win.b - win.a, 86_400_000);
        let counter = keys.counter("day: users", &win, Some("org:al%ice"));
        assert!(counter.starts_with("{app}:w:day%3A users:c"), "{counter}");
        assert!(counter.ends_with(":=org%3Aal%25ice"), "{counter}");
        assert_eq!(
            keys.value_of("day: users", &win, &counter),
            Some(KeyValue(Some("org:al%ice".into())))
        );
        let none = keys.counter("day: users", &win, None);
        assert_eq!(
            keys.value_of("day: users", &win, &none),
            Some(KeyValue(None))
        );
        assert_eq!(keys.value_of("other", &win, &counter), None);
        for key in [
            keys.leases(),
            keys.reservation("x"),
            keys.marker("d", &win),
            keys.values("d", &win),
        ] {
            assert!(key.starts_with("{app}:"), "{key}");
        }
        let rolling = Budget::new(Decimal::ONE, Window::Rolling(Duration::minutes(15))).unwrap();
        let win = WindowSpec::of(&rolling, at);
        assert_eq!((win.kind, win.a, win.b), ("r", 900_000, 3515));
        let hourly = Budget::new(Decimal::ONE, Window::calendar(CalendarUnit::Hour)).unwrap();
        assert_eq!(
            WindowSpec::of(&hourly, at).id,
            format!("c{}", at.timestamp())
        );
    }

    #[test]
    fn redacted_urls_show_no_password() {
        assert_eq!(
            redact("redis://user:s3cret@cache:6379/2?password=x"),
            "redis://***@cache:6379/2"
        );
        assert_eq!(
            redact("rediss://:s3cret@cache:6380"),
            "rediss://***@cache:6380"
        );
        assert_eq!(
            redact("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert!(!redact("nonsense s3cret").contains("s3cret"));
        // A query right after the host (no database) is not taken for the host.
        assert_eq!(
            redact("redis://cache:6379?password=s3cret"),
            "redis://cache:6379"
        );
        assert_eq!(
            redact("redis+cluster://:s3cret@a:7000,b:7001/?protocol=resp3"),
            "redis+cluster://***@a:7000,b:7001/"
        );
    }
}
