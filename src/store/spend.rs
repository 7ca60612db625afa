//! A tracker's durable ledger as the budgets read it: every priced record since a time,
//! through the ledger's one read path ([`super::read::for_each`]), for the in-process budgets'
//! preload at start and a shared budget store's seeding of a missing window.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::budget::{CallScope, LedgerSpend};
use crate::error::Result;
use crate::money::Decimal;

use super::{Location, Store, TimeRange};

/// The ledger a [`Store`] writes, read back.
pub struct StoreSpend(pub Arc<Store>);

impl StoreSpend {
    /// Where the ledger is (the one place its backend is chosen: [`Location`]).
    fn location(&self) -> &Location {
        self.0.location()
    }
}

impl LedgerSpend for StoreSpend {
    fn flush(&self) {
        self.0.flush();
    }

    fn for_each_since(
        &self,
        since: DateTime<Utc>,
        f: &mut dyn FnMut(&CallScope, DateTime<Utc>, Decimal),
    ) -> Result<Vec<String>> {
        let location = self.location();
        if location.check_exists().is_err() {
            return Ok(Vec::new());
        }
        let range = TimeRange {
            since: Some(since),
            until: None,
        };
        let mut warnings = Vec::new();
        super::read::for_each(location, &range, &mut warnings, &mut |_| {}, &mut |r| {
            if let Some(c) = &r.cost {
                f(&CallScope::from_record(&r), r.time, c.total);
            }
            true
        })?;
        Ok(warnings)
    }
}
