//! The advisor: what to change, and how many dollars it is worth, from a ledger's own calls.
//!
//! Records stream through an [`Advisor`] (in time order, as every ledger reader gives them);
//! each rule keeps what it needs and, at the end, turns it into [`Finding`]s. Every dollar
//! figure re-prices the recorded token counts with the catalog, exactly as the tracker priced
//! the call (`Catalog::price_call` semantics: the record's model, provider, day and service
//! tier), once as recorded and once as the rule's change would have billed them; the saving is
//! the difference, an exact decimal. A rule whose change the catalog cannot price (no batch
//! prices, no cache-read price, an unpriced suggested model) stays silent for those calls.
//!
//! The rules and their ids are documented in `docs/advise.md`; their hand-checked data (cache
//! limits, model families, successors) is `src/catalog/advice.json`.

mod batch;
mod caching;
pub mod data;
mod duplicates;
mod ledger;
pub mod live;
mod models;
mod output;
mod usage;

pub use ledger::advise_ledger;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::catalog::{tier_variant, Catalog, Entry};
use crate::ledger::CallRecord;
use crate::money::{self, Decimal};
use crate::usage::Usage;

/// Seconds in the 30 days a monthly saving is scaled to.
const MONTH_S: i64 = 30 * 86_400;
/// The shortest span a rate is taken over: a ledger of a few minutes counts as one day.
const MIN_SPAN_S: i64 = 86_400;

/// What the advisor is asked.
#[derive(Clone, Debug)]
pub struct Options {
    /// Money findings saving less than this (USD) are left out.
    pub min_saving: Decimal,
    /// Root run names, tags or captured metadata values with a word starting with one of
    /// these (case-insensitive) mark calls that are not latency-sensitive (the `batch_api`
    /// rule).
    pub batch_keywords: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            min_saving: Decimal::new(1, 2),
            batch_keywords: [
                "batch",
                "background",
                "nightly",
                "offline",
                "cron",
                "backfill",
                "scheduled",
                "eval",
                "etl",
                "ingest",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// One piece of advice.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The rule's stable id (`prompt_caching`, ...).
    pub rule: &'static str,
    /// One plain sentence.
    pub title: String,
    /// What the window's own calls would have saved (zero for findings about accuracy or
    /// missing prices).
    pub saving: Decimal,
    /// That saving at the observed rate over 30 days (filled in by [`Advisor::finish`]).
    pub monthly_saving: Decimal,
    /// The saving's share of the window's spend (filled in by [`Advisor::finish`]).
    pub share_of_spend: Decimal,
    /// Calls the finding covers.
    pub calls: u64,
    /// The dimension values it is about.
    pub scope: BTreeMap<String, String>,
    /// The figures behind it.
    pub evidence: Value,
    /// What to change.
    pub action: String,
    /// What to check before changing it.
    pub caveat: String,
}

impl Finding {
    /// As JSON, money as exact decimal strings.
    pub fn to_json(&self) -> Value {
        json!({
            "rule": self.rule,
            "title": self.title,
            "saving_usd": money::format(self.saving),
            "monthly_saving_usd": money::format(self.monthly_saving),
            "share_of_spend": money::format(self.share_of_spend),
            "calls": self.calls,
            "scope": self.scope,
            "evidence": self.evidence,
            "action": self.action,
            "caveat": self.caveat,
        })
    }
}

/// The advisor's answer over a window.
#[derive(Clone, Debug, Default)]
pub struct Advice {
    /// Findings, largest saving first.
    pub findings: Vec<Finding>,
    /// Calls read.
    pub calls: u64,
    /// Their recorded spend (priced calls).
    pub spend: Decimal,
    /// The first and last call's times.
    pub first: Option<DateTime<Utc>>,
    /// The last call's time.
    pub last: Option<DateTime<Utc>>,
    /// Days the monthly figures scale from (the observed span, at least one).
    pub days_observed: Decimal,
}

impl Advice {
    /// As JSON: `{"window": {...}, "findings": [...]}`.
    pub fn to_json(&self) -> Value {
        let t = |t: &Option<DateTime<Utc>>| t.as_ref().map(crate::store::record::time_text);
        json!({
            "window": {
                "calls": self.calls,
                "spend_usd": money::format(self.spend),
                "first_call": t(&self.first),
                "last_call": t(&self.last),
                "days_observed": money::format(self.days_observed),
            },
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A record with what every rule needs of it: its catalog entry and its cost re-priced.
pub struct Call<'a> {
    /// The record.
    pub r: &'a CallRecord,
    /// The entry its model resolves to.
    pub entry: Option<&'a Arc<Entry>>,
    /// Its day (price versions are by day).
    pub date: NaiveDate,
    /// Its usage priced as the tracker prices it; `None`: unknown.
    pub cost: Option<Decimal>,
    /// Its group key ([`model_key`]), in the advisor's own names.
    key: &'a ModelKey,
    catalog: &'a Catalog,
}

impl Call<'_> {
    /// The group key of the call: [`model_key`] of its record.
    pub fn key(&self) -> ModelKey {
        self.key.clone()
    }

    /// `usage` priced as this call was (same entry, day, service tier).
    pub fn price(&self, usage: &Usage) -> Option<Decimal> {
        let e = self.entry?;
        e.cost_total(
            usage,
            self.date,
            tier_variant(self.r.service_tier.as_deref()),
        )
    }

    /// `usage` priced at billing mode `variant` (`batch`, `flex`) of this call's entry, when
    /// the entry has that mode's prices.
    pub fn price_variant(&self, usage: &Usage, variant: &str) -> Option<Decimal> {
        let e = self.entry?;
        if !e.version_at(self.date).variants.contains_key(variant) {
            return None;
        }
        e.cost_total(usage, self.date, Some(variant))
    }

    /// The entry `model` resolves to at `provider` (a catalog provider key: this call's
    /// entry's, so a suggestion is priced at the same host).
    pub fn resolve(&self, model: &str, provider: &str) -> Option<Arc<Entry>> {
        self.catalog.resolve(model, Some(provider)).map(|r| r.entry)
    }

    /// This call's usage priced at `entry` (same day and tier): what `Catalog::price_call`
    /// gives for the model `entry` was resolved from.
    pub fn price_at(&self, entry: &Entry) -> Option<Decimal> {
        entry.cost_total(
            &self.r.usage,
            self.date,
            tier_variant(self.r.service_tier.as_deref()),
        )
    }

    /// The entry's provider key (`openai`, ...).
    pub fn provider_key(&self) -> Option<&str> {
        self.entry?.provider.as_deref()
    }

    /// Whether the call succeeded and was billed (not an error, not a replay from
    /// LangChain's cache).
    pub fn billed(&self) -> bool {
        self.r.error.is_none() && self.r.usage_source != crate::usage::UsageSource::Cache
    }
}

/// The dimension values every call of a group shares: what narrows a finding down.
#[derive(Clone, Debug, Default)]
pub struct Narrow {
    started: bool,
    root: Option<Arc<str>>,
    attrs: Vec<(Arc<str>, String)>,
    tags: Vec<String>,
}

impl Narrow {
    /// Adds a call.
    pub fn add(&mut self, r: &CallRecord) {
        if !self.started {
            self.started = true;
            self.root.clone_from(&r.root_run_name);
            self.attrs.clone_from(&r.attribution);
            self.tags.clone_from(&r.tags);
            return;
        }
        if self.root.is_some() && self.root != r.root_run_name {
            self.root = None;
        }
        if !self.attrs.is_empty() {
            self.attrs.retain(|a| r.attribution.contains(a));
        }
        if !self.tags.is_empty() {
            self.tags.retain(|t| r.tags.contains(t));
        }
    }

    /// Adds another group's calls.
    pub fn merge(&mut self, other: &Narrow) {
        if !other.started {
            return;
        }
        if !self.started {
            *self = other.clone();
            return;
        }
        if self.root != other.root {
            self.root = None;
        }
        self.attrs.retain(|a| other.attrs.contains(a));
        self.tags.retain(|t| other.tags.contains(t));
    }

    /// The scope: `model` and `provider`, then what every call shared.
    pub fn scope(&self, model: &str, provider: Option<&str>) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        s.insert("model".into(), model.to_string());
        if let Some(p) = provider {
            s.insert("provider".into(), p.to_string());
        }
        if let Some(r) = &self.root {
            s.insert("root_run_name".into(), r.to_string());
        }
        for (k, v) in &self.attrs {
            s.insert(k.to_string(), v.clone());
        }
        if !self.tags.is_empty() {
            s.insert("tag".into(), self.tags.join(","));
        }
        s
    }
}

/// The rules' maps: hashed with foldhash (keys are the advisor's own, not an attacker's).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// An entry's identity within one catalog (entries live as long as the catalog).
pub fn entry_id(e: &Arc<Entry>) -> usize {
    Arc::as_ptr(e) as usize
}

/// A group of calls by model and provider, the key most rules group by.
pub type ModelKey = (Arc<str>, Option<Arc<str>>);

/// The group key of a record: its model (`?` when it names none) and provider.
pub fn model_key(r: &CallRecord) -> ModelKey {
    (
        r.model.clone().unwrap_or_else(|| Arc::from("?")),
        r.provider.clone(),
    )
}

/// A model and provider the advisor met: its group key and its catalog entry.
struct Known {
    /// As the records name them.
    model: Option<Arc<str>>,
    provider: Option<Arc<str>>,
    /// [`model_key`] of its records.
    key: ModelKey,
    /// What the model resolves to at the provider.
    entry: Option<Arc<Entry>>,
}

/// The models and providers met so far, each resolved once. Every record would otherwise
/// resolve its model in the catalog and share the entry (an atomic count each time), and its
/// group key would share the names of the thread that read the record, their counts passed
/// back and forth between the two threads' caches.
#[derive(Default)]
struct Models {
    known: Vec<Known>,
    /// Places in `known` by model (`None`: records naming none).
    by_model: FastMap<Arc<str>, Vec<usize>>,
    no_model: Vec<usize>,
    /// The last record's place: records often repeat the one before's.
    last: usize,
}

impl Models {
    /// The place in `known` of `r`'s model and provider.
    fn place(&mut self, r: &CallRecord, catalog: &Catalog) -> usize {
        let (model, provider) = (r.model.as_deref(), r.provider.as_deref());
        let is = |k: &Known| k.model.as_deref() == model && k.provider.as_deref() == provider;
        if self.known.get(self.last).is_some_and(is) {
            return self.last;
        }
        let places = match model {
            Some(m) => self.by_model.get(m),
            None => Some(&self.no_model),
        };
        let found = places.and_then(|p| p.iter().copied().find(|&i| is(&self.known[i])));
        let i = found.unwrap_or_else(|| {
            let name = |s: &str| -> Arc<str> { Arc::from(s) };
            let model = model.map(name);
            let provider = provider.map(name);
            let entry = model
                .as_deref()
                .and_then(|m| catalog.resolve(m, provider.as_deref()))
                .map(|res| res.entry);
            let key = (
                model.clone().unwrap_or_else(|| Arc::from("?")),
                provider.clone(),
            );
            let i = self.known.len();
            match &model {
                Some(m) => self.by_model.entry(m.clone()).or_default().push(i),
                None => self.no_model.push(i),
            }
            self.known.push(Known {
                model,
                provider,
                key,
                entry,
            });
            i
        });
        self.last = i;
        i
    }
}

/// A price per 1M tokens as evidence text (`None`: not in the catalog).
pub fn price_text(p: Option<Decimal>) -> Value {
    p.map_or(Value::Null, |p| Value::String(money::format(p)))
}

/// An amount as evidence text.
pub fn usd(d: Decimal) -> Value {
    Value::String(money::format(d))
}

/// One rule: sees every call, then says what it found.
trait Rule {
    fn add(&mut self, c: &Call<'_>);
    /// `end`: the last call's time (a rule that waits for a lifetime to pass knows the
    /// window ends there).
    fn finish(&mut self, end: Option<DateTime<Utc>>) -> Vec<Finding>;
}

/// Streams records through every rule.
pub struct Advisor {
    catalog: Arc<Catalog>,
    models: Models,
    options: Options,
    rules: Vec<Box<dyn Rule + Send>>,
    calls: u64,
    spend: Decimal,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    /// A call came before one added earlier (see [`Advisor::time_ordered`]).
    disordered: bool,
    ordered: bool,
}

impl Advisor {
    /// An advisor pricing with `catalog`.
    pub fn new(catalog: Arc<Catalog>, options: Options) -> Self {
        Self::with_order(catalog, options, false)
    }

    /// An advisor for calls that come in time order (as SQLite and PostgreSQL ledgers are
    /// read): the rules that remember recent calls forget the ones too old to matter as soon
    /// as they like, where [`Advisor::new`] waits until it holds hundreds of thousands (a
    /// ledger read in file order may go back in time). The advice is the same as
    /// [`Advisor::new`]'s as long as the calls are in order; [`Advisor::disordered`] says
    /// whether one was not, and then only [`Advisor::new`]'s advice is the one to give.
    pub fn time_ordered(catalog: Arc<Catalog>, options: Options) -> Self {
        Self::with_order(catalog, options, true)
    }

    /// Whether a call came before one added earlier.
    pub fn disordered(&self) -> bool {
        self.disordered
    }

    /// Whether it was made by [`Advisor::time_ordered`].
    pub fn is_time_ordered(&self) -> bool {
        self.ordered
    }

    fn with_order(catalog: Arc<Catalog>, options: Options, ordered: bool) -> Self {
        let rules: Vec<Box<dyn Rule + Send>> = vec![
            Box::new(caching::PromptCaching::new(ordered)),
            Box::new(caching::UnreadWrites::default()),
            Box::new(models::CheaperModel::default()),
            Box::new(models::NewerModel::default()),
            Box::new(batch::BatchApi::new(&options.batch_keywords)),
            Box::new(output::UncappedOutput::default()),
            Box::new(output::LongPrompt::default()),
            Box::new(duplicates::Duplicates::new(ordered)),
            Box::new(usage::Estimated::default()),
            Box::new(usage::Unpriced::default()),
        ];
        Advisor {
            catalog,
            models: Models::default(),
            options,
            rules,
            calls: 0,
            spend: Decimal::ZERO,
            first: None,
            last: None,
            disordered: false,
            ordered,
        }
    }

    /// Adds one record.
    pub fn add(&mut self, r: &CallRecord) {
        self.calls += 1;
        if let Some(c) = &r.cost {
            self.spend += c.total;
        }
        if self.first.is_none_or(|f| r.time < f) {
            self.first = Some(r.time);
        }
        match self.last {
            Some(l) if r.time < l => self.disordered = true,
            Some(l) if r.time == l => {}
            _ => self.last = Some(r.time),
        }
        let place = self.models.place(r, &self.catalog);
        let known = &self.models.known[place];
        let mut call = Call {
            r,
            entry: known.entry.as_ref(),
            date: r.time.date_naive(),
            cost: None,
            key: &known.key,
            catalog: &self.catalog,
        };
        call.cost = call.price(&r.usage);
        for rule in &mut self.rules {
            rule.add(&call);
        }
    }

    /// The findings, ranked: largest saving first, then most calls, then by rule id.
    pub fn finish(mut self) -> Advice {
        let span = match (self.first, self.last) {
            (Some(f), Some(l)) => (l - f).num_seconds().max(MIN_SPAN_S),
            _ => MIN_SPAN_S,
        };
        let mut findings: Vec<Finding> = Vec::new();
        for rule in &mut self.rules {
            findings.extend(rule.finish(self.last));
        }
        findings.retain(|f| f.saving.is_zero() || f.saving >= self.options.min_saving);
        for f in &mut findings {
            f.monthly_saving = (f.saving * Decimal::from(MONTH_S) / Decimal::from(span))
                .round_dp(6)
                .normalize();
            f.share_of_spend = if self.spend.is_zero() {
                Decimal::ZERO
            } else {
                (f.saving / self.spend).round_dp(4).normalize()
            };
        }
        findings.sort_by(|a, b| {
            b.saving
                .cmp(&a.saving)
                .then(b.calls.cmp(&a.calls))
                .then(a.rule.cmp(b.rule))
                .then_with(|| a.scope.cmp(&b.scope))
        });
        Advice {
            findings,
            calls: self.calls,
            spend: self.spend,
            first: self.first,
            last: self.last,
            days_observed: (Decimal::from(span) / Decimal::from(86_400))
                .round_dp(4)
                .normalize(),
        }
    }
}

/// The advice over `records` (a tracker's in-memory calls).
pub fn advise_records<'a>(
    records: impl IntoIterator<Item = &'a CallRecord>,
    catalog: Arc<Catalog>,
    options: Options,
) -> Advice {
    let mut advisor = Advisor::new(catalog, options);
    for r in records {
        advisor.add(r);
    }
    advisor.finish()
}

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;
