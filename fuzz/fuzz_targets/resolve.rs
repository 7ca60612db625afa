//! Model-name resolution (`Catalog::resolve`) over the bundled catalog, with any model name
//! and provider hint: never a panic; deterministic (a fresh catalog, with cold caches, gives
//! the same entry as the cached one); blind to ASCII case, surrounding spaces and provider
//! aliases; and anchored: the entry found has a name that is the request itself, or a
//! part of it left when a prefix or a suffix is cut off (nothing fuzzy).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use llmledger::catalog::schema::Strictness;
use llmledger::catalog::{MatchKind, Resolved};
use llmledger::Catalog;

/// The model name, and after a newline the provider hint (none without a newline).
#[derive(Debug)]
struct Input<'a> {
    model: &'a str,
    provider: Option<&'a str>,
}

impl<'a> Input<'a> {
    fn of(data: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(data).ok()?;
        Some(match text.split_once('\n') {
            Some((model, provider)) => Input {
                model,
                provider: Some(provider),
            },
            None => Input {
                model: text,
                provider: None,
            },
        })
    }
}

/// A second copy of the bundled catalog: same entries, its own (cold) resolution caches.
fn fresh() -> &'static Catalog {
    static FRESH: OnceLock<Catalog> = OnceLock::new();
    FRESH.get_or_init(|| {
        let none = Catalog::parse("{}", "none", false, Strictness::User).unwrap();
        Catalog::bundled().unwrap().with_overrides(&none)
    })
}

fn key(r: Option<&Resolved>) -> Option<(Arc<str>, MatchKind)> {
    r.map(|r| (r.entry.key().clone(), r.kind))
}

/// True when `name` is `model` or a part of it a prefix and suffix cut leaves (`ft:BASE`
/// names: BASE is).
fn anchored(model: &str, name: &str) -> bool {
    model.contains(name) || name.strip_prefix("ft:").is_some_and(|b| model.contains(b))
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::of(data) else {
        return;
    };
    let bundled = Catalog::bundled().unwrap();
    let got = bundled.resolve(input.model, input.provider);
    // The same question again (answered from the caches) and on a cold copy: the same answer.
    assert_eq!(
        key(got.as_ref()),
        key(bundled.resolve(input.model, input.provider).as_ref())
    );
    assert_eq!(
        key(got.as_ref()),
        key(fresh().resolve(input.model, input.provider).as_ref())
    );
    // Case, surrounding spaces and LangChain's provider aliases do not matter.
    let upper = format!("  {}\t", input.model.to_ascii_uppercase());
    let normalized = input.provider.map(llmledger::catalog::normalize_provider);
    assert_eq!(
        key(got.as_ref()),
        key(bundled.resolve(&upper, normalized).as_ref()),
        "{:?} vs {upper:?} / {normalized:?}",
        input
    );
    let Some(r) = got else {
        return;
    };
    let model = input.model.trim().to_ascii_lowercase();
    let mut names = std::iter::once(&r.entry.id).chain(&r.entry.aliases);
    match r.kind {
        MatchKind::Exact => assert!(
            names.any(|n| *n == model),
            "exact match of {model:?} is {}",
            r.entry.key()
        ),
        MatchKind::Normalized => assert!(
            names.any(|n| anchored(&model, n)),
            "{model:?} resolved to {} by no part of its name",
            r.entry.key()
        ),
    }
});
