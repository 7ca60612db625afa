//! Per-value aggregates looked up by borrowed values: a value already seen costs a hash and no
//! copy (a ledger of a million calls has a handful of models, not a million strings).

use std::collections::HashMap;

use crate::ledger::{CallRecord, Dimension};

/// Hands each value `r` has for `dim` to `f`: borrowed from the record where it holds them,
/// computed (as `CallRecord::dimension` does) for the rest.
pub(super) fn each_value(r: &CallRecord, dim: &Dimension, f: &mut dyn FnMut(Option<&str>)) {
    match dim {
        Dimension::Model => f(r.model.as_deref()),
        Dimension::Provider => f(r.provider.as_deref()),
        Dimension::RootRunName => f(r.root_run_name.as_deref()),
        Dimension::UsageSource => f(Some(r.usage_source.as_str())),
        Dimension::ServiceTier => f(r.service_tier.as_deref()),
        Dimension::PriceEntry => f(r.price_entry.as_deref()),
        Dimension::Metadata(key) => f(r
            .attribution
            .iter()
            .find(|(k, _)| k.as_ref() == key.as_str())
            .map(|(_, v)| v.as_str())),
        Dimension::Tag if !r.tags.is_empty() => {
            for t in &r.tags {
                f(Some(t));
            }
        }
        _ => {
            for v in r.dimension(dim) {
                f(v.as_deref());
            }
        }
    }
}

/// Aggregates per value of a dimension (`None`: the value is not set).
#[derive(Clone, Debug)]
pub(super) struct Groups<T> {
    some: HashMap<String, T>,
    none: Option<T>,
}

impl<T> Default for Groups<T> {
    fn default() -> Self {
        Groups {
            some: HashMap::new(),
            none: None,
        }
    }
}

impl<T: Default> Groups<T> {
    /// The aggregate of `key`, created empty on first use.
    pub(super) fn get(&mut self, key: Option<&str>) -> &mut T {
        match key {
            None => self.none.get_or_insert_with(T::default),
            Some(k) => {
                if !self.some.contains_key(k) {
                    self.some.insert(k.to_owned(), T::default());
                }
                self.some.get_mut(k).expect("inserted above")
            }
        }
    }

    /// Distinct values seen.
    pub(super) fn len(&self) -> usize {
        self.some.len() + usize::from(self.none.is_some())
    }

    /// Every value with its aggregate.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Option<&str>, &T)> {
        self.some
            .iter()
            .map(|(k, v)| (Some(k.as_str()), v))
            .chain(self.none.iter().map(|v| (None, v)))
    }
}
