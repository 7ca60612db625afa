//! Nearest-name suggestions for "did you mean ...?" messages: a mistyped metadata key
//! (`user` for `user_id`), dimension or model id (`gpt4o` for `gpt-4o`).
//!
//! Names are compared case-insensitively with `-`, `_`, `.`, `/`, `:` and spaces taken as one
//! separator, by optimal-string-alignment distance (insertions, deletions, substitutions and
//! swaps of two neighbours). A candidate is near when that distance is small for the names'
//! length, or when one name is the other plus a separated part (`user` / `user_id`).

/// At most this many suggestions are given.
pub const MAX_SUGGESTIONS: usize = 3;

/// The candidates near `name`, nearest first (ties in candidate order), at most `max`,
/// without duplicates and without `name` itself.
pub fn closest<'a, I>(name: &str, candidates: I, max: usize) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let wanted = folded(name);
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut near: Vec<(usize, usize, &'a str)> = Vec::new();
    for (i, c) in candidates.into_iter().enumerate() {
        if c == name || near.iter().any(|(_, _, n)| *n == c) {
            continue;
        }
        let cand = folded(c);
        if let Some(d) = nearness(&wanted, &cand) {
            near.push((d, i, c));
        }
    }
    near.sort_unstable();
    near.into_iter().take(max).map(|(_, _, c)| c).collect()
}

/// ` (did you mean 'a' or 'b'?)` for the candidates near `name`, or an empty string.
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    let near = closest(name, candidates, MAX_SUGGESTIONS);
    if near.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = near.iter().map(|n| format!("'{n}'")).collect();
    format!(" (did you mean {}?)", quoted.join(" or "))
}

/// The catalog ids and aliases near `model` (a name no entry has), nearest first; with a
/// provider, that provider's entries only (and entries for every provider).
pub fn models(
    catalog: &crate::catalog::Catalog,
    model: &str,
    provider: Option<&str>,
) -> Vec<String> {
    let provider = provider.map(crate::catalog::normalize_provider);
    let names = catalog
        .entries()
        .iter()
        .filter(|e| provider.is_none() || e.provider.is_none() || e.provider.as_deref() == provider)
        .flat_map(|e| std::iter::once(e.id.as_str()).chain(e.aliases.iter().map(String::as_str)));
    closest(model, names, MAX_SUGGESTIONS)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Lower case, every run of separators one `_`.
fn folded(s: &str) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.trim().chars() {
        if matches!(c, '-' | '_' | '.' | '/' | ':' | ' ') {
            if out.last() != Some(&'_') {
                out.push('_');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// How far `cand` is from `wanted` when it is near enough to suggest, else `None`.
fn nearness(wanted: &[char], cand: &[char]) -> Option<usize> {
    if wanted == cand {
        // Only case or separators differ (`GPT_4o`, `gpt-4o`): the nearest there is.
        return Some(0);
    }
    let (short, long) = if wanted.len() <= cand.len() {
        (wanted, cand)
    } else {
        (cand, wanted)
    };
    // `user` / `user_id`, `session` / `session_id`: one name plus a separated part.
    let extends = long.starts_with(short) && long.get(short.len()) == Some(&'_')
        || long.ends_with(short) && long.len() > short.len() && {
            let at = long.len() - short.len() - 1;
            long[at] == '_'
        };
    let d = osa_distance(wanted, cand);
    // One edit per four characters of the shorter name, at least one, at most three.
    let allowed = (short.len() / 4).clamp(1, 3);
    if d <= allowed || (extends && short.len() >= 3) {
        Some(d)
    } else {
        None
    }
}

/// The optimal-string-alignment distance (Levenshtein plus swaps of two neighbours).
fn osa_distance(a: &[char], b: &[char]) -> usize {
    let n = b.len();
    let mut before: Vec<usize> = vec![0; n + 1];
    let mut prev: Vec<usize> = (0..=n).collect();
    let mut cur: Vec<usize> = vec![0; n + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(a: &str, b: &str) -> usize {
        osa_distance(&folded(a), &folded(b))
    }

    #[test]
    fn distance_counts_edits_and_swaps() {
        assert_eq!(dist("kitten", "sitting"), 3);
        assert_eq!(dist("user_id", "usre_id"), 1);
        assert_eq!(dist("", "abc"), 3);
        assert_eq!(dist("gpt4o", "gpt-4o"), 1);
        assert_eq!(dist("GPT-4o", "gpt_4o"), 0);
    }

    #[test]
    fn keys_a_user_mistypes_find_the_real_one() {
        let keys = ["user_id", "session_id", "feature"];
        assert_eq!(closest("user", keys, 3), vec!["user_id"]);
        assert_eq!(closest("userid", keys, 3), vec!["user_id"]);
        assert_eq!(closest("session", keys, 3), vec!["session_id"]);
        assert_eq!(closest("featur", keys, 3), vec!["feature"]);
        assert_eq!(closest("team", keys, 3), Vec::<&str>::new());
        assert_eq!(closest("user_id", keys, 3), Vec::<&str>::new());
        // Unrelated keys LangChain and LangGraph put in metadata are not suggested.
        let md = [
            "ls_provider",
            "ls_model_name",
            "thread_id",
            "langgraph_node",
        ];
        assert_eq!(closest("user_id", md, 3), Vec::<&str>::new());
        assert_eq!(closest("session_id", md, 3), Vec::<&str>::new());
    }

    #[test]
    fn model_ids_nearest_first() {
        let ids = ["gpt-4o", "gpt-4o-mini", "gpt-4", "claude-3-opus", "o4-mini"];
        assert_eq!(closest("gpt4o", ids, 3), vec!["gpt-4o"]);
        assert_eq!(closest("gpt-4o-min", ids, 3), vec!["gpt-4o-mini", "gpt-4o"]);
        assert_eq!(closest("gpt-4", ids, 3), vec!["gpt-4o"]);
        assert_eq!(closest("claude-3-opsu", ids, 3), vec!["claude-3-opus"]);
        assert!(closest("zzzz", ids, 3).is_empty());
    }

    #[test]
    fn catalog_models_near_a_typo() {
        let catalog = crate::catalog::Catalog::bundled().unwrap();
        assert_eq!(models(&catalog, "gpt4o", None)[0], "gpt-4o");
        assert_eq!(
            models(&catalog, "claude-sonet-4-5", Some("anthropic"))[0],
            "claude-sonnet-4-5"
        );
    }

    #[test]
    fn message_names_the_suggestions() {
        assert_eq!(
            did_you_mean("user", ["user_id", "session_id"]),
            " (did you mean 'user_id'?)"
        );
        assert_eq!(
            did_you_mean("o4_mini", ["gpt-4", "o4-mini", "o3-mini"]),
            " (did you mean 'o4-mini' or 'o3-mini'?)"
        );
        assert_eq!(did_you_mean("team", ["user_id"]), "");
    }
}
