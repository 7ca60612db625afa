//! The price-file parser (a user's JSON or TOML overrides, or the bundled schema): any text
//! either parses into valid entries or is an error naming the problem, never a panic; what
//! parses is consistent (every price non-negative, versions ascending, tiers ascending, names
//! lower case) and is found again by name on top of the bundled catalog.
#![no_main]

use std::sync::Arc;

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use llmledger::catalog::schema::Strictness;
use llmledger::catalog::Tiered;
use llmledger::{Catalog, Usage};

fn check_tiered(t: &Tiered) {
    let sets = std::iter::once(&t.base).chain(t.tiers.iter().map(|t| &t.prices));
    for s in sets {
        let prices = [s.input, s.output]
            .into_iter()
            .chain(s.cache_read)
            .chain(s.cache_write)
            .chain(s.cache_write_1h)
            .chain(s.reasoning)
            .chain(s.input_audio)
            .chain(s.output_audio);
        for p in prices {
            assert!(!p.is_sign_negative(), "negative price {p} accepted");
        }
    }
    assert!(
        t.tiers.windows(2).all(|w| w[0].above < w[1].above),
        "tiers out of order"
    );
}

fn check(catalog: &Catalog) {
    let bundled = Catalog::bundled().expect("the bundled catalog parses");
    let merged = bundled.with_overrides(catalog);
    let usage = Usage {
        input: 1_000,
        cache_read: 100,
        cache_write: 50,
        output: 300,
        reasoning: 20,
        ..Usage::default()
    };
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    for e in catalog.entries() {
        assert!(!e.id.is_empty() && e.id == e.id.trim().to_ascii_lowercase());
        assert!(!e.versions.is_empty(), "{}: no price version", e.id);
        assert!(e.versions.windows(2).all(|w| w[0].from < w[1].from));
        for v in &e.versions {
            check_tiered(&v.standard);
            v.variants.values().for_each(check_tiered);
        }
        // Every name of the file is found exactly, on top of the bundled catalog, as an entry
        // of the file that has that name (another may share it at no provider).
        for name in std::iter::once(&e.id).chain(&e.aliases) {
            let r = merged
                .resolve(name, e.provider.as_deref())
                .unwrap_or_else(|| panic!("override '{name}' not found"));
            assert!(
                catalog.entries().iter().any(|o| Arc::ptr_eq(o, &r.entry)),
                "'{name}' resolved to {}, not to an entry of the file",
                r.entry.key()
            );
            assert!(r.entry.id == *name || r.entry.aliases.contains(name));
        }
        // Pricing a usage with what parsed never panics, and a known cost is never negative.
        for variant in [None, Some("batch"), Some("flex")] {
            if let Ok(p) = e.cost(&usage, day, variant) {
                assert!(!p.cost.total.is_sign_negative());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let is_toml = mode & 1 == 1;
    let strict = if mode & 2 == 2 {
        Strictness::Bundled
    } else {
        Strictness::User
    };
    let first = Catalog::parse(text, "fuzz", is_toml, strict);
    // Deterministic: the same text gives the same entries (or the same error).
    let again = Catalog::parse(text, "fuzz", is_toml, strict);
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a.entries(), b.entries()),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("parsing the same text twice disagreed"),
    }
    match first {
        Ok(catalog) => check(&catalog),
        Err(e) => assert!(
            e.to_string().contains("fuzz"),
            "error without its origin: {e}"
        ),
    }
});
