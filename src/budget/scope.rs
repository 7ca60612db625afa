//! Budget scopes: which calls share one budget, and the values a call belongs to.

use std::fmt;
use std::sync::Arc;

use crate::ledger::{uuid_string, CallRecord};

/// The text shown for the bucket of calls that lack the scope's key (no `user_id`, no tags).
pub const NONE_VALUE: &str = "(none)";

/// The names `per=` takes besides metadata keys (`tags` and `root_run_id` are read too).
pub const SCOPE_NAMES: &[&str] = &["model", "provider", "tag", "root_run", "root_run_name"];

/// What splits a budget into one budget per value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScopeKey {
    /// `model`: the model [`CallScope::model`] carries (the caller keeps it one form at start,
    /// end and preload: see `docs/budgets.md`).
    Model,
    /// `provider`: LangChain's `ls_provider`, normalised as the catalog does (`openai-chat`
    /// is `openai`).
    Provider,
    /// `tag`: a call counts toward each of its tags' budgets.
    Tag,
    /// `root_run`: the outermost chain, agent or graph run (its id): caps one invocation.
    RootRun,
    /// `root_run_name`: the outermost run's name (one budget per chain or graph).
    RootRunName,
    /// A metadata key (`user_id`, `session_id`, `team`, ...). The tracker must capture it.
    Metadata(Arc<str>),
}

impl ScopeKey {
    /// Parses `model`, `provider`, `tag` (`tags`), `root_run` (`root_run_id`),
    /// `root_run_name`; anything else is a metadata key.
    pub fn parse(s: &str) -> ScopeKey {
        match s.trim() {
            "model" => ScopeKey::Model,
            "provider" => ScopeKey::Provider,
            "tag" | "tags" => ScopeKey::Tag,
            "root_run" | "root_run_id" => ScopeKey::RootRun,
            "root_run_name" => ScopeKey::RootRunName,
            key => ScopeKey::Metadata(Arc::from(key)),
        }
    }

    /// Parses a `per=` name as [`ScopeKey::parse`] does, refusing a report dimension that is
    /// no budget scope (`day`, `usage_source`, ...): read as a metadata key it would match no
    /// call, and every call would share one `(none)` budget.
    pub fn parse_checked(s: &str) -> crate::Result<ScopeKey> {
        let key = ScopeKey::parse(s);
        if let ScopeKey::Metadata(k) = &key {
            if crate::ledger::BUILTIN_DIMENSIONS.contains(&k.as_ref()) {
                let hint = if matches!(k.as_ref(), "day" | "hour") {
                    " (a budget's time window is its window=, as in Budget.daily(...))"
                } else {
                    ""
                };
                return Err(crate::Error::InvalidArgument(format!(
                    "per='{k}' is a report dimension, not a budget scope{hint}: per= takes {} or \
                     a metadata key such as user_id",
                    SCOPE_NAMES.join(", ")
                )));
            }
        }
        Ok(key)
    }

    /// Its name, as `parse` reads it.
    pub fn name(&self) -> &str {
        match self {
            ScopeKey::Model => "model",
            ScopeKey::Provider => "provider",
            ScopeKey::Tag => "tag",
            ScopeKey::RootRun => "root_run",
            ScopeKey::RootRunName => "root_run_name",
            ScopeKey::Metadata(k) => k,
        }
    }
}

/// Whether a budget is one for everything or one per value of a key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One budget for every call.
    #[default]
    Global,
    /// One budget per value of the key (`per="user_id"`: each user has their own).
    Per(ScopeKey),
}

impl Scope {
    /// `None`, `""` or `global` -> `Global`; anything else -> `Per(ScopeKey::parse(..))`.
    pub fn parse(per: Option<&str>) -> Scope {
        match per.map(str::trim) {
            None | Some("" | "global") => Scope::Global,
            Some(k) => Scope::Per(ScopeKey::parse(k)),
        }
    }

    /// [`Scope::parse`], refusing what [`ScopeKey::parse_checked`] refuses.
    pub fn parse_checked(per: Option<&str>) -> crate::Result<Scope> {
        match per.map(str::trim) {
            None | Some("" | "global") => Ok(Scope::Global),
            Some(k) => ScopeKey::parse_checked(k).map(Scope::Per),
        }
    }

    /// `global` or the key's name.
    pub fn name(&self) -> &str {
        match self {
            Scope::Global => "global",
            Scope::Per(k) => k.name(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a call carries that budgets look at: built from the tracker's run context at start
/// (borrowed, nothing copied), or from a finished [`CallRecord`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CallScope<'a> {
    /// The model the request names.
    pub model: Option<&'a str>,
    /// `ls_provider`.
    pub provider: Option<&'a str>,
    /// Captured metadata pairs.
    pub attribution: &'a [(Arc<str>, String)],
    /// The run's tags.
    pub tags: &'a [String],
    /// The outermost run's id.
    pub root_run_id: Option<u128>,
    /// The outermost run's name.
    pub root_run_name: Option<&'a str>,
}

impl<'a> CallScope<'a> {
    /// The scope of a recorded call.
    pub fn from_record(r: &'a CallRecord) -> CallScope<'a> {
        CallScope {
            model: r.requested_model.as_deref().or(r.model.as_deref()),
            provider: r.provider.as_deref(),
            attribution: &r.attribution,
            tags: &r.tags,
            root_run_id: Some(r.root_run_id),
            root_run_name: r.root_run_name.as_deref(),
        }
    }

    /// The values of `scope` this call belongs to, pushed onto `out`: exactly one (`None`
    /// when the call lacks the key) except for tags, where each distinct tag is a value.
    pub(crate) fn values(&self, scope: &Scope, out: &mut Vec<Option<Arc<str>>>) {
        let one = |v: Option<&str>| v.map(Arc::from);
        match scope {
            Scope::Global => out.push(None),
            Scope::Per(ScopeKey::Model) => out.push(one(self.model)),
            // `openai-chat` and `openai` are one provider to the catalog, and to budgets.
            Scope::Per(ScopeKey::Provider) => {
                out.push(one(self.provider.map(crate::catalog::normalize_provider)));
            }
            Scope::Per(ScopeKey::RootRunName) => out.push(one(self.root_run_name)),
            Scope::Per(ScopeKey::RootRun) => {
                out.push(self.root_run_id.map(|id| Arc::from(uuid_string(id))));
            }
            Scope::Per(ScopeKey::Metadata(key)) => out.push(one(self
                .attribution
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()))),
            Scope::Per(ScopeKey::Tag) => {
                let start = out.len();
                for t in self.tags {
                    // A tag listed twice counts once.
                    if !out[start..]
                        .iter()
                        .any(|v| v.as_deref() == Some(t.as_str()))
                    {
                        out.push(Some(Arc::from(t.as_str())));
                    }
                }
                if out.len() == start {
                    out.push(None);
                }
            }
        }
    }
}

impl<'a> From<&'a CallRecord> for CallScope<'a> {
    fn from(r: &'a CallRecord) -> Self {
        CallScope::from_record(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(c: &CallScope, per: Option<&str>) -> Vec<Option<String>> {
        let mut out = Vec::new();
        c.values(&Scope::parse(per), &mut out);
        out.into_iter().map(|v| v.map(|s| s.to_string())).collect()
    }

    #[test]
    fn values_per_key() {
        let attribution = vec![(Arc::from("user_id"), "alice".to_string())];
        let chat = CallScope {
            provider: Some("openai-chat"),
            ..CallScope::default()
        };
        assert_eq!(values(&chat, Some("provider")), vec![Some("openai".into())]);
        let tags = vec!["a".to_string(), "b".to_string(), "a".to_string()];
        let c = CallScope {
            model: Some("gpt-4o"),
            provider: Some("openai"),
            attribution: &attribution,
            tags: &tags,
            root_run_id: Some(1),
            root_run_name: Some("graph"),
        };
        assert_eq!(values(&c, None), vec![None]);
        assert_eq!(values(&c, Some("user_id")), vec![Some("alice".into())]);
        assert_eq!(values(&c, Some("team")), vec![None]);
        assert_eq!(values(&c, Some("model")), vec![Some("gpt-4o".into())]);
        assert_eq!(values(&c, Some("provider")), vec![Some("openai".into())]);
        assert_eq!(
            values(&c, Some("tags")),
            vec![Some("a".into()), Some("b".into())]
        );
        assert_eq!(
            values(&c, Some("root_run")),
            vec![Some("00000000-0000-0000-0000-000000000001".into())]
        );
        assert_eq!(
            values(&c, Some("root_run_name")),
            vec![Some("graph".into())]
        );
        assert_eq!(values(&CallScope::default(), Some("tag")), vec![None]);
        assert_eq!(Scope::parse(Some("global")), Scope::Global);
        assert_eq!(Scope::parse(Some("tags")).name(), "tag");
    }

    #[test]
    fn report_dimensions_are_no_scopes() {
        let err = Scope::parse_checked(Some("day")).unwrap_err().to_string();
        assert!(err.contains("per='day' is a report dimension") && err.contains("window="));
        assert!(Scope::parse_checked(Some("usage_source")).is_err());
        for ok in ["model", "tags", "root_run_id", "user_id", "team", "global"] {
            assert!(Scope::parse_checked(Some(ok)).is_ok(), "{ok}");
        }
    }
}
