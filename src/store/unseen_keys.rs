//! A report grouped by a metadata key no call in the ledger carries (`--by user` for a ledger
//! of `user_id`s) would show one `-` row: the report warns instead, naming the keys the
//! ledger does have and the nearest of them.

use std::sync::Arc;

use crate::error::Result;
use crate::ledger::{Dimension, SummaryRow};

use super::sqlite::{range_condition_from, SqliteLedger};
use super::TimeRange;

/// The metadata keys the calls of a ledger carry, collected while its records stream by.
#[derive(Debug, Default)]
pub(super) struct SeenKeys {
    keys: Vec<Arc<str>>,
}

impl SeenKeys {
    /// Notes the keys of one call (few per call, few per ledger: a scan of a short list).
    pub fn add(&mut self, attribution: &[(Arc<str>, String)]) {
        for (k, _) in attribution {
            if !self.keys.iter().any(|s| s == k) {
                self.keys.push(k.clone());
            }
        }
    }

    /// The keys seen, sorted.
    pub fn into_sorted(self) -> Vec<String> {
        let mut keys: Vec<String> = self.keys.iter().map(ToString::to_string).collect();
        keys.sort();
        keys
    }
}

impl SqliteLedger {
    /// The distinct metadata keys of the calls in `range`.
    pub(super) fn attribution_keys(&self, range: &TimeRange) -> Result<Vec<String>> {
        let (cond, args) = range_condition_from(range, 0);
        let sql = format!(
            "SELECT DISTINCT j.key FROM calls c, json_each(c.attribution) j{cond} ORDER BY 1"
        );
        let e = |m: rusqlite::Error| SqliteLedger::err(&self.path, m);
        let mut stmt = self.conn.prepare(&sql).map_err(e)?;
        let keys = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                r.get::<_, String>(0)
            })
            .map_err(e)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(e)?;
        Ok(keys)
    }
}

/// The metadata dimensions of `dims` whose column is empty in every row (no call carries the
/// key), by name. Nothing when there are no calls.
pub(super) fn unseen(dims: &[Dimension], rows: &[SummaryRow]) -> Vec<String> {
    if rows.is_empty() {
        return Vec::new();
    }
    dims.iter()
        .enumerate()
        .filter_map(|(i, d)| match d {
            Dimension::Metadata(key) if rows.iter().all(|r| r.key[i].is_none()) => {
                Some(key.clone())
            }
            _ => None,
        })
        .collect()
}

/// One warning per key in `unseen`, with the ledger's own keys (`present`) and the nearest.
pub(super) fn warnings(unseen: &[String], present: &[String]) -> Vec<String> {
    unseen
        .iter()
        .map(|key| {
            let near = crate::suggest::did_you_mean(key, present.iter().map(String::as_str));
            let listed = if present.is_empty() {
                "its calls carry no metadata keys".to_string()
            } else {
                format!("its calls carry {}", present.join(", "))
            };
            format!(
                "no call in the ledger has the metadata key '{key}'{near}, so its column is '-' \
                 in every row; {listed}"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Totals;

    #[test]
    fn an_unseen_key_is_named_with_the_nearest_present_one() {
        let dims = vec![Dimension::Metadata("user".into()), Dimension::Model];
        let rows = vec![SummaryRow {
            key: vec![None, Some("gpt-4o".into())],
            totals: Totals::default(),
        }];
        let unseen = unseen(&dims, &rows);
        assert_eq!(unseen, vec!["user".to_string()]);
        let w = warnings(&unseen, &["session_id".into(), "user_id".into()]);
        assert_eq!(
            w,
            vec![
                "no call in the ledger has the metadata key 'user' (did you mean 'user_id'?), so \
                 its column is '-' in every row; its calls carry session_id, user_id"
                    .to_string()
            ]
        );
        assert!(super::unseen(&dims, &[]).is_empty());
    }
}
