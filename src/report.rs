//! Text reports: the `get_openai_callback`-style summary and group-by tables, drawn from
//! totals and rows computed elsewhere (the in-memory ledger, or `store::read` over a file).

use std::fmt::Write;

use crate::ledger::{SummaryRow, Totals, NONE_VALUE};
use crate::money::{format_usd, Currency};

/// `get_openai_callback`'s summary lines, plus cache-write, LLM-cache, estimated, failed and
/// unpriced lines when they are not zero. The cost line is a lower bound (`>= $x`) when some
/// calls are unpriced, and `unknown` when none is priced.
pub fn totals_text(t: &Totals) -> String {
    totals_text_in(t, None)
}

/// [`totals_text`] with the cost shown in `currency` (and a line naming the rate) when given.
pub fn totals_text_in(t: &Totals, currency: Option<&Currency>) -> String {
    let u = &t.usage;
    let mut s = String::new();
    let _ = writeln!(s, "Tokens Used: {}", u.total());
    let _ = writeln!(s, "\tPrompt Tokens: {}", u.input);
    let _ = writeln!(s, "\t\tPrompt Tokens Cached: {}", u.cache_read);
    let _ = writeln!(s, "\t\tCache Write Tokens: {}", u.cache_write);
    let _ = writeln!(s, "\tCompletion Tokens: {}", u.output);
    let _ = writeln!(s, "\t\tReasoning Tokens: {}", u.reasoning);
    let _ = writeln!(s, "Successful Requests: {}", t.successful_requests);
    if t.failed_requests > 0 {
        let _ = writeln!(s, "Failed Requests: {}", t.failed_requests);
    }
    if t.llm_cache_hits > 0 {
        let _ = writeln!(s, "LLM Cache Hits (cost nothing): {}", t.llm_cache_hits);
    }
    if t.estimated_calls > 0 {
        let _ = writeln!(s, "Estimated-Usage Requests: {}", t.estimated_calls);
    }
    if t.local_calls > 0 {
        let _ = writeln!(
            s,
            "Local-Model Requests (no API fee, $0): {}",
            t.local_calls
        );
    }
    if t.fallback_priced_calls > 0 {
        let _ = writeln!(
            s,
            "Requests Priced by a Fallback (see price_notes): {}",
            t.fallback_priced_calls
        );
    }
    if t.malformed_usage_calls > 0 {
        let _ = writeln!(
            s,
            "Malformed-Usage Requests (counts llmledger replaced or could not): {}",
            t.malformed_usage_calls
        );
    }
    // With unpriced calls the known sum is a lower bound (`>= $x`), or nothing is known.
    match currency {
        None => {
            let _ = write!(s, "Total Cost (USD): {}", cost_cell(t));
        }
        Some(c) => {
            let _ = writeln!(s, "Total Cost (USD): {}", cost_cell(t));
            let _ = writeln!(s, "Total Cost ({}): {}", c.code, cost_cell_in(t, Some(c)));
            let _ = write!(s, "{}", c.describe());
        }
    }
    if t.unpriced_calls > 0 {
        let _ = write!(
            s,
            "\nUnpriced Requests: {} (cost unknown, not included above)",
            t.unpriced_calls
        );
    }
    s
}

/// A cost for a table cell: "unknown" when nothing in the row could be priced, and ">= $x"
/// when some of it could not (never a bare $0 for an unknown cost).
fn cost_cell(t: &Totals) -> String {
    cost_cell_in(t, None)
}

/// [`cost_cell`] in `currency` (USD when `None`).
fn cost_cell_in(t: &Totals, currency: Option<&Currency>) -> String {
    let priced = (t.successful_requests + t.failed_requests).saturating_sub(t.unpriced_calls);
    let amount = |d| currency.map_or_else(|| format_usd(d), |c| c.format(d));
    match (t.unpriced_calls, priced) {
        (0, _) => amount(t.cost),
        (_, 0) => "unknown".to_string(),
        _ => format!(">= {}", amount(t.cost)),
    }
}

/// A readable table of summary rows: one column per dimension (a missing value shows as
/// [`NONE_VALUE`]), then calls, token counts and cost; a total line at the bottom.
pub fn table(dims: &[String], rows: &[SummaryRow], totals: &Totals) -> String {
    table_in(dims, rows, totals, None)
}

/// [`table`] with the cost column in `currency` (`cost_cny`) and a last line naming the rate,
/// when given.
pub fn table_in(
    dims: &[String],
    rows: &[SummaryRow],
    totals: &Totals,
    currency: Option<&Currency>,
) -> String {
    let mut header: Vec<String> = dims.to_vec();
    header.extend(
        [
            "calls",
            "input",
            "cached",
            "cache_write",
            "output",
            "reasoning",
            "cost_usd",
            "unpriced",
        ]
        .iter()
        .map(|s| (*s).to_string()),
    );
    if let Some(c) = currency {
        let i = header.len() - 2;
        header[i] = format!("cost_{}", c.code.to_ascii_lowercase());
    }
    let line = |key: Vec<String>, t: &Totals| -> Vec<String> {
        let mut v = key;
        v.push((t.successful_requests + t.failed_requests).to_string());
        v.push(t.usage.input.to_string());
        v.push(t.usage.cache_read.to_string());
        v.push(t.usage.cache_write.to_string());
        v.push(t.usage.output.to_string());
        v.push(t.usage.reasoning.to_string());
        v.push(cost_cell_in(t, currency));
        v.push(t.unpriced_calls.to_string());
        v
    };
    let mut body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            line(
                r.key
                    .iter()
                    .map(|k| k.clone().unwrap_or_else(|| NONE_VALUE.into()))
                    .collect(),
                &r.totals,
            )
        })
        .collect();
    let mut total_key = vec![String::new(); dims.len()];
    if let Some(first) = total_key.first_mut() {
        *first = "TOTAL".into();
    }
    let total_line = line(total_key, totals);
    let ncols = header.len();
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in body.iter().chain(std::iter::once(&total_line)) {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let fmt_row = |row: &[String]| -> String {
        row.iter()
            .enumerate()
            .map(|(i, c)| {
                // Dimension columns left-aligned, numbers right-aligned.
                if i < dims.len() {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let rule: String = widths
        .iter()
        .map(|w| "-".repeat(*w))
        .collect::<Vec<_>>()
        .join("  ");
    let mut out = String::new();
    let _ = writeln!(out, "{}", fmt_row(&header));
    let _ = writeln!(out, "{rule}");
    for row in body.drain(..) {
        let _ = writeln!(out, "{}", fmt_row(&row));
    }
    let _ = writeln!(out, "{rule}");
    let _ = write!(out, "{}", fmt_row(&total_line));
    if let Some(c) = currency {
        let _ = write!(out, "\n{}", c.describe());
    }
    debug_assert_eq!(ncols, widths.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Decimal;
    use crate::usage::Usage;

    #[test]
    fn totals_text_has_openai_callback_lines() {
        let t = Totals {
            successful_requests: 2,
            usage: Usage {
                input: 10,
                cache_read: 4,
                output: 5,
                reasoning: 1,
                ..Usage::default()
            },
            cost: Decimal::new(123, 5),
            unpriced_calls: 1,
            ..Totals::default()
        };
        let s = totals_text(&t);
        assert!(
            s.starts_with("Tokens Used: 15\n\tPrompt Tokens: 10\n\t\tPrompt Tokens Cached: 4\n")
        );
        assert!(s.contains("Successful Requests: 2\n"));
        // Two calls, one unpriced: the known cost is a lower bound.
        assert!(s.contains("Total Cost (USD): >= $0.00123\n"), "{s}");
        assert!(s.contains("Unpriced Requests: 1"));
        let priced = Totals {
            unpriced_calls: 0,
            ..t.clone()
        };
        assert!(totals_text(&priced).ends_with("Total Cost (USD): $0.00123"));
        let none_priced = Totals {
            successful_requests: 1,
            unpriced_calls: 1,
            ..Totals::default()
        };
        assert!(totals_text(&none_priced).contains("Total Cost (USD): unknown\n"));
    }

    #[test]
    fn table_aligns_and_totals() {
        let t = Totals {
            successful_requests: 1,
            cost: Decimal::new(5, 1),
            ..Totals::default()
        };
        let rows = vec![SummaryRow {
            key: vec![Some("alice".into())],
            totals: t.clone(),
        }];
        let s = table(&["user_id".into()], &rows, &t);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("user_id"));
        assert!(lines[2].starts_with("alice"));
        assert!(lines[4].starts_with("TOTAL"));
        assert!(
            lines[4].contains("$0.50") && lines[4].ends_with(" 0"),
            "{}",
            lines[4]
        );
    }

    #[test]
    fn unknown_costs_never_show_as_zero() {
        let unknown = Totals {
            successful_requests: 1,
            unpriced_calls: 1,
            ..Totals::default()
        };
        assert_eq!(cost_cell(&unknown), "unknown");
        let partly = Totals {
            successful_requests: 3,
            unpriced_calls: 1,
            cost: Decimal::new(5, 1),
            ..Totals::default()
        };
        assert_eq!(cost_cell(&partly), ">= $0.50");
    }
}
