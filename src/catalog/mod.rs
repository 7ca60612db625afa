//! The price catalog: the bundled data file, user overrides, model-name matching, and the
//! cost of a usage.
//!
//! The bundled catalog (`prices.json`, schema in `docs/catalog.md`) is compiled into the
//! library and parsed once, on first use. Name resolution is exact and anchored (see
//! [`Catalog::resolve`]): an unknown name is unknown, never a neighbour's price.

mod names;
mod price;
pub mod schema;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use parking_lot::RwLock;

pub use names::{bills_maker_prices, is_model_vendor, local_runtime, normalize_provider};
pub use price::{CostBreakdown, PriceSet, PriceVersion, Priced, Tier, Tiered, TimeWindow};

/// Noon (UTC) of `date`: the time a call known only by its day is priced at.
pub fn noon(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc()
}
use schema::Strictness;

use crate::error::{Error, Result};
use crate::usage::Usage;

/// The bundled catalog's text.
const BUNDLED: &str = include_str!("prices.json");

/// Resolutions cached per catalog, beyond which new names are resolved but not cached.
const RESOLVE_CACHE_CAP: usize = 4096;

/// One model's prices at one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Canonical model name, lower case.
    pub id: String,
    /// Provider key (`openai`, `anthropic`, `google`, ...); `None` in a user entry that
    /// applies whatever the provider.
    pub provider: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Other exact names at the same prices.
    pub aliases: Vec<String>,
    /// Where the prices were read.
    pub source: Option<String>,
    /// When they were last checked.
    pub checked: Option<NaiveDate>,
    /// Free-text notes.
    pub notes: Option<String>,
    /// The most input tokens one request may have, where the source says.
    pub context_window: Option<u64>,
    /// The most output tokens one response may have, where the source says: a budget's bound
    /// on a call's output when the request sets no `max_tokens`.
    pub max_output_tokens: Option<u64>,
    /// Date-effective versions, ascending by `from`.
    pub versions: Vec<PriceVersion>,
    /// True for an entry from the user's `prices=`.
    pub is_override: bool,
    /// `provider/id` (or `override:provider/id`), see [`Entry::key`].
    key: Arc<str>,
}

impl Entry {
    /// An entry; `key` is derived from the others.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        provider: Option<String>,
        name: Option<String>,
        aliases: Vec<String>,
        source: Option<String>,
        checked: Option<NaiveDate>,
        notes: Option<String>,
        context_window: Option<u64>,
        max_output_tokens: Option<u64>,
        versions: Vec<PriceVersion>,
        is_override: bool,
    ) -> Entry {
        let p = provider.as_deref().unwrap_or("*");
        let key: Arc<str> = if is_override {
            format!("override:{p}/{id}").into()
        } else {
            format!("{p}/{id}").into()
        };
        Entry {
            id,
            provider,
            name,
            aliases,
            source,
            checked,
            notes,
            context_window,
            max_output_tokens,
            versions,
            is_override,
            key,
        }
    }

    /// `provider/id` (or `override:provider/id`): the name call records use for the entry.
    pub fn key(&self) -> &Arc<str> {
        &self.key
    }

    /// The price version in force on `date`.
    pub fn version_at(&self, date: NaiveDate) -> &PriceVersion {
        self.versions
            .iter()
            .rev()
            .find(|v| v.from.is_none_or(|f| f <= date))
            // Every version starts after `date`: the earliest is the best we know.
            .unwrap_or(&self.versions[0])
    }

    /// The prices of billing mode `v` (`batch`, `flex`, ...) in `version`, and the name used; the
    /// standard prices with a warning when the entry has none for `v`.
    #[inline(never)]
    fn variant_prices<'a>(
        &self,
        version: &'a PriceVersion,
        v: &str,
        warnings: &mut Vec<String>,
    ) -> (&'a Tiered, Option<String>) {
        if let Some(t) = version.variants.get(v) {
            (t, Some(v.to_string()))
        } else {
            warnings.push(format!(
                "{} has no '{v}' prices in the catalog; priced at standard prices",
                self.key()
            ));
            (&version.standard, None)
        }
    }

    #[cold]
    fn cost_error(&self, e: &str) -> String {
        format!("{}: {e}", self.key())
    }

    /// Prices `usage` on `date`, under `variant` (`batch`, `flex`, `priority`) if given.
    ///
    /// A variant the entry lacks falls back to standard prices with a warning. Errors say why
    /// the cost is unknown (audio without an audio price, overflow).
    pub fn cost(
        &self,
        usage: &Usage,
        date: NaiveDate,
        variant: Option<&str>,
    ) -> std::result::Result<Priced, String> {
        self.cost_at(usage, noon(date), variant)
    }

    /// The total of [`Entry::cost`] (`None` where it errs), without what a record keeps of
    /// how it was priced (variant name, window, warnings, fallback notes): the advisor prices
    /// every call several times and needs only the amount.
    pub fn cost_total(
        &self,
        usage: &Usage,
        date: NaiveDate,
        variant: Option<&str>,
    ) -> Option<crate::money::Decimal> {
        let at = noon(date);
        let version = self.version_at(date);
        let tiered = match variant {
            None | Some("default" | "standard" | "auto") => standard_prices(version, at).0,
            // A variant the entry lacks: standard prices, as `cost_at` (with its warning).
            Some(v) => version.variants.get(v).unwrap_or(&version.standard),
        };
        let (set, _) = tiered.select(usage.input);
        if usage.cache_read > 0 && set.cache_read.is_none() {
            if let Some((share, _)) = price::host_cache_read_rule(self.provider.as_deref(), usage) {
                let mut ruled = set.clone();
                ruled.cache_read = Some(set.input * share);
                return ruled.cost(usage).ok().map(|c| c.total);
            }
        }
        set.cost(usage).ok().map(|c| c.total)
    }

    /// Prices `usage` of a call made at `at` (UTC), under `variant` if given: the price
    /// version of its day and, for standard prices, the time-of-day window it falls in.
    pub fn cost_at(
        &self,
        usage: &Usage,
        at: DateTime<Utc>,
        variant: Option<&str>,
    ) -> std::result::Result<Priced, String> {
        let version = self.version_at(at.date_naive());
        let mut warnings = Vec::new();
        let mut window = None;
        let (tiered, used_variant) = match variant {
            None | Some("default" | "standard" | "auto") => {
                let (t, w) = standard_prices(version, at);
                window = w.map(TimeWindow::describe);
                (t, None)
            }
            Some(v) => self.variant_prices(version, v, &mut warnings),
        };
        let (set, tier_above) = tiered.select(usage.input);
        let (cost, notes) = if usage.cache_read == 0 && usage.cache_write == 0 {
            (set.cost(usage), Vec::new())
        } else {
            self.cost_with_fallbacks(set, usage)
        };
        let cost = cost.map_err(|e| self.cost_error(&e))?;
        Ok(Priced {
            cost,
            variant: used_variant,
            tier_above,
            effective_from: version.from,
            window,
            warnings,
            notes,
        })
    }

    /// The cost of a usage with cached tokens: a host's documented cached-token rule where
    /// the entry has no cache-read price, and the components priced by a fallback.
    #[inline(never)]
    fn cost_with_fallbacks(
        &self,
        set: &PriceSet,
        usage: &Usage,
    ) -> (std::result::Result<CostBreakdown, String>, Vec<String>) {
        if set.cache_read.is_none() && usage.cache_read > 0 {
            if let Some((share, note)) =
                price::host_cache_read_rule(self.provider.as_deref(), usage)
            {
                let mut ruled = set.clone();
                ruled.cache_read = Some(set.input * share);
                let mut notes = ruled.fallbacks(usage);
                notes.insert(0, note.to_string());
                return (ruled.cost(usage), notes);
            }
        }
        (set.cost(usage), set.fallbacks(usage))
    }
}

/// The standard prices of `version` in force at `at`: its time-of-day window's, if it has
/// windows and `at` falls in one, and that window.
fn standard_prices(version: &PriceVersion, at: DateTime<Utc>) -> (&Tiered, Option<&TimeWindow>) {
    if version.windows.is_empty() {
        (&version.standard, None)
    } else {
        #[allow(clippy::cast_possible_truncation)] // below 1440
        let minute = (at.hour() * 60 + at.minute()) as u16;
        version.standard_at(minute)
    }
}

/// The catalog variant a response's service tier is priced at: `flex`, `priority` and
/// `batch` are variants; anything else (`default`, `auto`, `scale`, none) is standard prices.
/// The tracker and `llmledger.cost()` both price tiers through it.
pub fn tier_variant(tier: Option<&str>) -> Option<&str> {
    tier.filter(|t| matches!(*t, "flex" | "priority" | "batch"))
}

/// A call priced by [`Catalog::price_call`]: the entry, and its cost or why it is unknown.
#[derive(Clone, Debug)]
pub struct CallPrice {
    /// The entry the name resolved to.
    pub entry: Arc<Entry>,
    /// The cost, or why it is unknown (audio without an audio price, overflow).
    pub priced: std::result::Result<Priced, String>,
}

/// How a name matched an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    /// The id or an alias, as given.
    Exact,
    /// After removing a provider prefix or a snapshot suffix, or rewriting a fine-tune name.
    Normalized,
}

/// The entry a name resolved to.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The entry.
    pub entry: Arc<Entry>,
    /// How the name matched.
    pub kind: MatchKind,
}

/// Cached resolutions: model name -> (provider hint, result).
type ResolveCache = HashMap<String, Vec<(Option<String>, Option<Resolved>)>>;

/// The last resolution each thread looked up, by catalog id: an application mostly calls one
/// model, and this answers it without the shared cache's lock and string hash.
struct LastResolved {
    catalog: u64,
    model: Box<str>,
    provider: Option<Box<str>>,
    resolved: Option<Resolved>,
}

thread_local! {
    static LAST_RESOLVED: std::cell::RefCell<Option<LastResolved>> =
        const { std::cell::RefCell::new(None) };
}

/// The calling thread's last resolution of (`model`, `provider`) in catalog `catalog`, if it
/// is the last one the thread looked up: `Err(())` otherwise.
fn last_resolved(
    catalog: u64,
    model: &str,
    provider: Option<&str>,
) -> std::result::Result<Option<Resolved>, ()> {
    LAST_RESOLVED
        .try_with(|last| match &*last.borrow() {
            Some(l)
                if l.catalog == catalog
                    && *l.model == *model
                    && l.provider.as_deref() == provider =>
            {
                Ok(l.resolved.clone())
            }
            _ => Err(()),
        })
        .unwrap_or(Err(()))
}

/// Makes (`model`, `provider`) -> `resolved` the calling thread's last resolution.
fn remember_resolved(
    catalog: u64,
    model: &str,
    provider: Option<&str>,
    resolved: Option<&Resolved>,
) {
    let _ = LAST_RESOLVED.try_with(|last| {
        *last.borrow_mut() = Some(LastResolved {
            catalog,
            model: model.into(),
            provider: provider.map(Into::into),
            resolved: resolved.cloned(),
        });
    });
}

/// Distinguishes catalogs in the per-thread cache (an address could be reused by a new one).
static NEXT_CATALOG_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A price catalog: entries and an index of their names.
pub struct Catalog {
    version: String,
    entries: Vec<Arc<Entry>>,
    index: HashMap<String, Vec<usize>>,
    /// The providers with entries.
    providers: HashSet<String>,
    /// Resolutions by model name, then provider hint: looked up by `&str`, no allocation.
    cache: RwLock<ResolveCache>,
    cached: std::sync::atomic::AtomicUsize,
    /// Unique per catalog built in this process: the per-thread cache's key.
    id: u64,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("version", &self.version)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Catalog {
    fn new(version: String, entries: Vec<Arc<Entry>>) -> Self {
        let mut index: HashMap<String, Vec<usize>> = HashMap::with_capacity(entries.len() * 3);
        for (i, e) in entries.iter().enumerate() {
            for name in std::iter::once(&e.id).chain(&e.aliases) {
                let slot = index.entry(name.clone()).or_default();
                if !slot.contains(&i) {
                    slot.push(i);
                }
            }
        }
        let providers = entries
            .iter()
            .filter_map(|e| e.provider.as_deref())
            .map(str::to_string)
            .collect();
        Catalog {
            version,
            entries,
            index,
            providers,
            cache: RwLock::new(HashMap::new()),
            cached: std::sync::atomic::AtomicUsize::new(0),
            id: NEXT_CATALOG_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The bundled catalog, parsed once per process.
    pub fn bundled() -> Result<Arc<Catalog>> {
        static BUNDLED_CATALOG: OnceLock<std::result::Result<Arc<Catalog>, String>> =
            OnceLock::new();
        BUNDLED_CATALOG
            .get_or_init(|| {
                Catalog::parse(BUNDLED, "bundled", false, Strictness::Bundled)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|message| Error::Catalog {
                origin: "bundled".into(),
                message,
            })
    }

    /// Parses a catalog document (JSON, or TOML when `is_toml`).
    pub fn parse(text: &str, origin: &str, is_toml: bool, strict: Strictness) -> Result<Catalog> {
        let doc = schema::parse_text(text, origin, is_toml, strict)?;
        let mut seen: HashMap<(Option<&str>, &str), &str> = HashMap::new();
        for e in &doc.entries {
            for name in std::iter::once(&e.id).chain(&e.aliases) {
                if let Some(prev) = seen.insert((e.provider.as_deref(), name.as_str()), &e.id) {
                    return Err(Error::Catalog {
                        origin: origin.into(),
                        message: format!(
                            "the name '{name}' is given twice for provider '{}' (entries '{prev}' and '{}')",
                            e.provider.as_deref().unwrap_or("*"),
                            e.id
                        ),
                    });
                }
            }
        }
        Ok(Catalog::new(
            doc.version.unwrap_or_else(|| origin.to_string()),
            doc.entries.into_iter().map(Arc::new).collect(),
        ))
    }

    /// A catalog of `overrides` on top of `self`: each override replaces the entries of the
    /// same id (at the same provider, or at every provider if the override names none), and
    /// wins every name it shares with an entry below it.
    #[must_use]
    pub fn with_overrides(&self, overrides: &Catalog) -> Catalog {
        let replaced = |e: &Entry| {
            overrides
                .entries
                .iter()
                .any(|o| o.id == e.id && (o.provider.is_none() || o.provider == e.provider))
        };
        let entries = overrides
            .entries
            .iter()
            .cloned()
            .chain(self.entries.iter().filter(|e| !replaced(e)).cloned())
            .collect();
        Catalog::new(format!("{}+overrides", self.version), entries)
    }

    /// The catalog's version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// All entries, in catalog order.
    pub fn entries(&self) -> &[Arc<Entry>] {
        &self.entries
    }

    /// The entry named exactly `name`. With a provider hint: that provider's entry (or an
    /// entry that applies at every provider); else, for a host that bills a maker's model at
    /// its list price (Azure, Bedrock, Vertex: [`bills_maker_prices`]), the maker's entry;
    /// else nothing: another host's price is not this provider's, and a provider the catalog
    /// does not know (a local runtime such as Ollama, a host without entries) borrows none.
    /// `openai` is the exception: LangChain's ChatOpenAI reports it for every
    /// OpenAI-compatible host (OpenRouter, Together, DeepSeek, ...), whose own names
    /// (`meta-llama/...`, `deepseek-chat`) then find that host's entry. Without a hint: the
    /// first entry (makers come first).
    fn exact(&self, name: &str, provider: Option<&str>) -> Option<Arc<Entry>> {
        let slot = self.index.get(name)?;
        let entry = |i: &usize| &self.entries[*i];
        let pick = match provider {
            None => slot.first(),
            Some(p) => slot
                .iter()
                .find(|&i| entry(i).provider.as_deref().is_none_or(|ep| ep == p))
                .or_else(|| {
                    if !bills_maker_prices(p) {
                        return None;
                    }
                    slot.iter()
                        .find(|&i| entry(i).provider.as_deref().is_some_and(is_model_vendor))
                })
                .or_else(|| (p == "openai").then(|| slot.first()).flatten()),
        }?;
        Some(self.entries[*pick].clone())
    }

    /// The entry for `model` (a name as LangChain or a provider reports it), preferring the
    /// entry of `provider` (a LangChain `ls_provider` value or a catalog provider key).
    ///
    /// Order: exact name; fine-tune rewrite; provider prefix removed; one or two snapshot
    /// suffixes removed. Nothing fuzzy. Results are cached per catalog.
    pub fn resolve(&self, model: &str, provider: Option<&str>) -> Option<Resolved> {
        use std::sync::atomic::Ordering;
        if let Ok(hit) = last_resolved(self.id, model, provider) {
            return hit;
        }
        let cached = self.cache.read().get(model).and_then(|slot| {
            slot.iter()
                .find(|(p, _)| p.as_deref() == provider)
                .map(|(_, hit)| hit.clone())
        });
        let resolved = cached.unwrap_or_else(|| {
            let resolved = self.resolve_uncached(model, provider);
            if self.cached.load(Ordering::Relaxed) < RESOLVE_CACHE_CAP {
                self.cached.fetch_add(1, Ordering::Relaxed);
                self.cache
                    .write()
                    .entry(model.to_string())
                    .or_default()
                    .push((provider.map(str::to_string), resolved.clone()));
            }
            resolved
        });
        remember_resolved(self.id, model, provider, resolved.as_ref());
        resolved
    }

    /// Prices `usage` of `model` made at `at` (UTC) exactly as the tracker prices a call
    /// with `provider` (LangChain's `ls_provider`; `None`: a call without one) and
    /// `service_tier`: [`Catalog::resolve`], then the entry's cost under [`tier_variant`] at
    /// that day's version and time-of-day window. `None`: no entry.
    pub fn price_call(
        &self,
        model: &str,
        provider: Option<&str>,
        usage: &Usage,
        at: DateTime<Utc>,
        service_tier: Option<&str>,
    ) -> Option<CallPrice> {
        let r = self.resolve(model, provider)?;
        let priced = r.entry.cost_at(usage, at, tier_variant(service_tier));
        Some(CallPrice {
            entry: r.entry,
            priced,
        })
    }

    /// The entries `model` resolves to at each provider that lists it under that name (its
    /// own entry, not a maker's list price it falls back to), in catalog order; with the
    /// entry a call without a provider gets first. What `llmledger prices MODEL` shows as
    /// the same model at other hosts.
    pub fn hosts_of(&self, model: &str) -> Vec<Arc<Entry>> {
        let mut out: Vec<Arc<Entry>> = self
            .resolve_uncached(model, None)
            .map(|r| vec![r.entry])
            .unwrap_or_default();
        let mut providers: Vec<&String> = self.providers.iter().collect();
        providers.sort();
        for p in providers {
            if let Some(r) = self.resolve_uncached(model, Some(p)) {
                let own = r.entry.provider.as_deref() == Some(p.as_str());
                if own && !out.iter().any(|e| e.key() == r.entry.key()) {
                    out.push(r.entry);
                }
            }
        }
        out
    }

    fn resolve_uncached(&self, model: &str, provider: Option<&str>) -> Option<Resolved> {
        let provider = provider.map(normalize_provider);
        let lowered = model.trim().to_ascii_lowercase();
        if let Some(e) = self.exact(&lowered, provider) {
            return Some(Resolved {
                entry: e,
                kind: MatchKind::Exact,
            });
        }
        let candidates = names::candidates(&lowered, provider);
        candidates.iter().find_map(|(name, p)| {
            self.exact(name, p.as_deref().or(provider))
                .map(|entry| Resolved {
                    entry,
                    kind: MatchKind::Normalized,
                })
        })
    }
}

#[cfg(test)]
mod tests;
