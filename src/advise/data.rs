//! The advisor's hand-checked data (`src/catalog/advice.json`, beside the price catalog):
//! prompt-cache limits per provider and model, model families, successor models. Each item
//! carries its source and the day it was checked; a model missing here gets no advice that
//! needs it.

use std::sync::OnceLock;

use serde::Deserialize;

const DATA: &str = include_str!("../catalog/advice.json");

/// A provider's prompt cache for some models.
#[derive(Clone, Debug, Deserialize)]
pub struct CacheRule {
    /// Catalog provider key.
    pub provider: String,
    /// Catalog model ids (a snapshot of one matches it), or `*` for every model.
    pub models: Vec<String>,
    /// The shortest prompt prefix the provider caches, in tokens.
    pub min_tokens: u64,
    /// How long a cached prefix lives after its last use, in seconds.
    pub lifetime_s: i64,
    /// Where it was read.
    pub source: String,
    /// What the source says and does not say.
    #[serde(default)]
    pub note: Option<String>,
    /// When.
    pub checked: String,
}

/// Models of one provider and family, most expensive first.
#[derive(Clone, Debug, Deserialize)]
pub struct Family {
    /// Catalog provider key.
    pub provider: String,
    /// Catalog model ids.
    pub models: Vec<String>,
    /// Where it was read.
    pub source: String,
    /// What the source says and does not say.
    #[serde(default)]
    pub note: Option<String>,
    /// When.
    pub checked: String,
}

/// A model's successor of the same tier.
#[derive(Clone, Debug, Deserialize)]
pub struct Successor {
    /// Catalog provider key.
    pub provider: String,
    /// The older model's catalog id.
    pub model: String,
    /// The newer one's.
    pub successor: String,
    /// Where it was read.
    pub source: String,
    /// What the source says and does not say.
    #[serde(default)]
    pub note: Option<String>,
    /// When.
    pub checked: String,
}

/// All of it.
#[derive(Debug, Deserialize)]
pub struct AdviceData {
    /// What the file is and how it was checked.
    #[serde(rename = "_about")]
    pub about: String,
    /// Prompt caches.
    pub prompt_cache: Vec<CacheRule>,
    /// Families.
    pub families: Vec<Family>,
    /// Successors.
    pub successors: Vec<Successor>,
}

/// The bundled data, parsed once.
///
/// # Panics
///
/// Never in a build whose tests passed: the file is compiled in, and a test parses it.
pub fn data() -> &'static AdviceData {
    static DATA_PARSED: OnceLock<AdviceData> = OnceLock::new();
    // The file is compiled in and checked by a test: it parses.
    DATA_PARSED.get_or_init(|| serde_json::from_str(DATA).expect("advice.json parses"))
}

/// How well catalog id `id` matches data name `name`: the name's length when `id` is `name`
/// or a snapshot of it (`name-2024-08-06`, `name-20250929`), else `None`.
pub fn matches(id: &str, name: &str) -> Option<usize> {
    if name == "*" {
        return Some(0);
    }
    let rest = id.strip_prefix(name)?;
    if rest.is_empty()
        || rest
            .strip_prefix('-')
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()) && r.len() >= 4)
    {
        Some(name.len())
    } else {
        None
    }
}

impl AdviceData {
    /// The cache rule of `provider`'s model `id` (the most specific match).
    pub fn cache_rule(&self, provider: &str, id: &str) -> Option<&CacheRule> {
        self.prompt_cache
            .iter()
            .filter(|r| r.provider == provider)
            .filter_map(|r| {
                r.models
                    .iter()
                    .filter_map(|m| matches(id, m))
                    .max()
                    .map(|n| (n, r))
            })
            .max_by_key(|(n, _)| *n)
            .map(|(_, r)| r)
    }

    /// The next cheaper model of `id`'s family at `provider`, and the family.
    pub fn cheaper(&self, provider: &str, id: &str) -> Option<(&str, &Family)> {
        self.families
            .iter()
            .filter(|f| f.provider == provider)
            .filter_map(|f| {
                let (i, n) = f
                    .models
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| matches(id, m).map(|n| (i, n)))
                    .max_by_key(|(_, n)| *n)?;
                f.models.get(i + 1).map(|next| (n, next.as_str(), f))
            })
            .max_by_key(|(n, _, _)| *n)
            .map(|(_, next, f)| (next, f))
    }

    /// The successor of `id` at `provider`.
    pub fn successor(&self, provider: &str, id: &str) -> Option<&Successor> {
        self.successors
            .iter()
            .filter(|s| s.provider == provider)
            .filter_map(|s| matches(id, &s.model).map(|n| (n, s)))
            .max_by_key(|(n, _)| *n)
            .map(|(_, s)| s)
    }
}
