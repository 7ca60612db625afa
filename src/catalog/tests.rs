use std::str::FromStr;

use super::*;
use crate::money::Decimal;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

const TEST_CATALOG: &str = r#"{
  "version": "test-1",
  "currency": "USD",
  "models": [
    {"id": "gpt-4o", "provider": "openai", "aliases": ["gpt-4o-2024-08-06"],
     "source": "https://example.test/openai", "checked": "2026-11-01",
     "prices": [{"input": "2.50", "output": "10.00", "cache_read": "1.25",
                 "variants": {"batch": {"input": "1.25", "output": "5.00"},
                              "priority": {"input": "4.25", "output": "17.00", "cache_read": "2.125"}}}]},
    {"id": "gpt-4o-2024-05-13", "provider": "openai",
     "source": "https://example.test/openai", "checked": "2026-11-01",
     "prices": [{"input": "5", "output": "15"}]},
    {"id": "gpt-4o", "provider": "azure",
     "source": "https://example.test/azure", "checked": "2026-11-01",
     "prices": [{"input": "2.75", "output": "11"}]},
    {"id": "gpt-4o-mini", "provider": "openai",
     "source": "https://example.test/openai", "checked": "2026-11-01",
     "prices": [{"input": "0.15", "output": "0.60", "cache_read": "0.075"}]},
    {"id": "o3", "provider": "openai",
     "source": "https://example.test/openai", "checked": "2026-11-01",
     "prices": [{"input": "10", "output": "40"}, {"from": "2025-06-10", "input": "2", "output": "8"}]},
    {"id": "claude-3-5-sonnet-20241022", "provider": "anthropic", "aliases": ["claude-3-5-sonnet-latest"],
     "source": "https://example.test/anthropic", "checked": "2026-11-01",
     "prices": [{"input": "3", "output": "15", "cache_read": "0.30", "cache_write": "3.75", "cache_write_1h": "6"}]},
    {"id": "gemini-2.5-pro", "provider": "google",
     "source": "https://example.test/google", "checked": "2026-11-01",
     "prices": [{"input": "1.25", "output": "10", "tiers": [{"above": 200000, "input": "2.50", "output": "15"}]}]},
    {"id": "ft:gpt-4o-mini-2024-07-18", "provider": "openai",
     "source": "https://example.test/openai", "checked": "2026-11-01",
     "prices": [{"input": "0.30", "output": "1.20"}]}
  ]
}"#;

fn test_catalog() -> Catalog {
    Catalog::parse(TEST_CATALOG, "test", false, Strictness::Bundled).unwrap()
}

fn id_of(c: &Catalog, name: &str, provider: Option<&str>) -> Option<String> {
    c.resolve(name, provider).map(|r| r.entry.key().to_string())
}

#[test]
fn exact_and_alias_and_provider_preference() {
    let c = test_catalog();
    assert_eq!(id_of(&c, "gpt-4o", None).as_deref(), Some("openai/gpt-4o"));
    assert_eq!(id_of(&c, "GPT-4o", None).as_deref(), Some("openai/gpt-4o"));
    assert_eq!(
        id_of(&c, "gpt-4o", Some("azure")).as_deref(),
        Some("azure/gpt-4o")
    );
    assert_eq!(
        id_of(&c, "gpt-4o", Some("azure_openai")).as_deref(),
        Some("azure/gpt-4o")
    );
    // A provider without an entry of its own gets the model's first entry.
    assert_eq!(
        id_of(&c, "gpt-4o-mini", Some("azure")).as_deref(),
        Some("openai/gpt-4o-mini")
    );
    assert_eq!(
        id_of(&c, "claude-3-5-sonnet-latest", None).as_deref(),
        Some("anthropic/claude-3-5-sonnet-20241022")
    );
}

#[test]
fn dated_snapshot_with_own_price_wins_over_stripping() {
    let c = test_catalog();
    assert_eq!(
        id_of(&c, "gpt-4o-2024-05-13", None).as_deref(),
        Some("openai/gpt-4o-2024-05-13")
    );
    assert_eq!(
        id_of(&c, "gpt-4o-2030-01-01", None).as_deref(),
        Some("openai/gpt-4o")
    );
}

#[test]
fn prefixes_and_bedrock_ids() {
    let c = test_catalog();
    assert_eq!(
        id_of(&c, "openai/gpt-4o", None).as_deref(),
        Some("openai/gpt-4o")
    );
    assert_eq!(
        id_of(&c, "azure/gpt-4o", None).as_deref(),
        Some("azure/gpt-4o")
    );
    assert_eq!(
        id_of(&c, "anthropic:claude-3-5-sonnet-20241022", None).as_deref(),
        Some("anthropic/claude-3-5-sonnet-20241022")
    );
    assert_eq!(
        id_of(&c, "us.anthropic.claude-3-5-sonnet-20241022-v2:0", None).as_deref(),
        Some("anthropic/claude-3-5-sonnet-20241022")
    );
    assert_eq!(
        id_of(&c, "models/gemini-2.5-pro", None).as_deref(),
        Some("google/gemini-2.5-pro")
    );
}

#[test]
fn near_misses_resolve_to_nothing() {
    let c = test_catalog();
    for name in [
        "gpt-4o-minix",
        "gpt-4",
        "gpt4o",
        "gpt-4o-mini-x",
        "o3x",
        "claude-3-5",
        "",
        "ft:gpt-4o",
    ] {
        assert_eq!(id_of(&c, name, None), None, "{name}");
    }
}

#[test]
fn fine_tunes_priced_at_fine_tune_prices() {
    let c = test_catalog();
    assert_eq!(
        id_of(&c, "ft:gpt-4o-mini-2024-07-18:acme:bot:abc123", None).as_deref(),
        Some("openai/ft:gpt-4o-mini-2024-07-18")
    );
    // A fine-tune of a base without fine-tune prices is unknown, not the base's price.
    assert_eq!(id_of(&c, "ft:gpt-4o-2024-08-06:acme::x", None), None);
}

#[test]
fn date_effective_versions() {
    let c = test_catalog();
    let e = c.resolve("o3", None).unwrap().entry;
    let u = Usage {
        input: 1_000_000,
        output: 1_000_000,
        ..Usage::default()
    };
    assert_eq!(
        e.cost(&u, date("2025-06-09"), None).unwrap().cost.total,
        d("50")
    );
    let p = e.cost(&u, date("2025-06-10"), None).unwrap();
    assert_eq!(p.cost.total, d("10"));
    assert_eq!(p.effective_from, Some(date("2025-06-10")));
}

#[test]
fn variants_and_missing_variant() {
    let c = test_catalog();
    let e = c.resolve("gpt-4o", None).unwrap().entry;
    let u = Usage {
        input: 1_000_000,
        cache_read: 500_000,
        output: 1_000_000,
        ..Usage::default()
    };
    let now = date("2026-11-01");
    assert_eq!(e.cost(&u, now, None).unwrap().cost.total, d("11.875"));
    let p = e.cost(&u, now, Some("priority")).unwrap();
    assert_eq!(p.variant.as_deref(), Some("priority"));
    assert_eq!(p.cost.total, d("2.125") + d("1.0625") + d("17"));
    let p = e.cost(&u, now, Some("flex")).unwrap();
    assert_eq!(p.variant, None);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].contains("flex"));
}

#[test]
fn long_context_tier_reprices_whole_request() {
    let c = test_catalog();
    let e = c.resolve("gemini-2.5-pro", None).unwrap().entry;
    let now = date("2026-11-01");
    let small = Usage {
        input: 200_000,
        output: 1000,
        ..Usage::default()
    };
    let big = Usage {
        input: 200_001,
        output: 1000,
        ..Usage::default()
    };
    assert_eq!(
        e.cost(&small, now, None).unwrap().cost.total,
        d("0.25") + d("0.01")
    );
    let p = e.cost(&big, now, None).unwrap();
    assert_eq!(p.tier_above, Some(200_000));
    assert_eq!(p.cost.total, d("0.5000025") + d("0.015"));
}

#[test]
fn an_override_naming_a_provider_by_an_alias_is_found() {
    // A user entry at `azure_openai` (one of LangChain's names for Azure) was stored under
    // that name while hints are normalised to `azure`: no hint, not even `azure_openai`
    // itself, could find it, and its calls stayed unpriced. Found reviewing the
    // `price_file` fuzz target's invariant (every name of a file is found again).
    let base = test_catalog();
    let user = Catalog::parse(
        r#"{"my-deployment": {"provider": " Azure_OpenAI ", "input": "1", "output": "2"}}"#,
        "dict",
        false,
        Strictness::User,
    )
    .unwrap();
    assert_eq!(user.entries()[0].provider.as_deref(), Some("azure"));
    let c = base.with_overrides(&user);
    for hint in ["azure_openai", "azure", "azure-openai"] {
        assert_eq!(
            id_of(&c, "my-deployment", Some(hint)).as_deref(),
            Some("override:azure/my-deployment"),
            "{hint}"
        );
    }
}

#[test]
fn overrides_replace_entries_and_their_aliases() {
    let base = test_catalog();
    let user = Catalog::parse(
        r#"{"gpt-4o": {"input": 1, "output": "2"}, "my-model": {"input": "0.1", "output": "0.2", "aliases": ["mine"]}}"#,
        "dict",
        false,
        Strictness::User,
    )
    .unwrap();
    let c = base.with_overrides(&user);
    assert_eq!(
        id_of(&c, "gpt-4o", None).as_deref(),
        Some("override:*/gpt-4o")
    );
    assert_eq!(
        id_of(&c, "gpt-4o", Some("azure")).as_deref(),
        Some("override:*/gpt-4o")
    );
    // The replaced entry's aliases went with it: the snapshot now resolves by stripping.
    assert_eq!(
        id_of(&c, "gpt-4o-2024-08-06", None).as_deref(),
        Some("override:*/gpt-4o")
    );
    assert_eq!(
        id_of(&c, "mine", None).as_deref(),
        Some("override:*/my-model")
    );
    assert_eq!(
        id_of(&c, "gpt-4o-mini", None).as_deref(),
        Some("openai/gpt-4o-mini")
    );
    assert_eq!(c.version(), "test-1+overrides");
}

#[test]
fn toml_overrides() {
    let user = Catalog::parse(
        "[\"my-model\"]\ninput = \"1.5\"\noutput = 3\nprovider = \"openai\"\nchecked = 2026-11-01\n",
        "prices.toml",
        true,
        Strictness::User,
    )
    .unwrap();
    let e = user.resolve("my-model", None).unwrap().entry;
    assert_eq!(e.versions[0].standard.base.input, d("1.5"));
    assert_eq!(e.versions[0].standard.base.output, d("3"));
    assert_eq!(e.checked, Some(date("2026-11-01")));
}

#[test]
fn malformed_files_name_entry_and_field() {
    let cases = [
        (
            r#"{"m": {"input": "abc", "output": "1"}}"#,
            "'input' is not a decimal",
        ),
        (r#"{"m": {"input": "1"}}"#, "'output' price is required"),
        (r#"{"m": {"input": "-1", "output": "1"}}"#, "negative"),
        (
            r#"{"m": {"inptu": "1", "output": "1"}}"#,
            "unknown field 'inptu'",
        ),
        (
            r#"{"models": [{"id": "x", "prices": []}]}"#,
            "'prices' is empty",
        ),
        (r#"{"models": [{"prices": []}]}"#, "missing 'id'"),
        (
            r#"{"m": {"input": "1", "output": "1", "tiers": [{"above": 5, "input": "1", "output": "1"}, {"above": 2, "input": "1", "output": "1"}]}}"#,
            "ascending",
        ),
        ("[1, 2]", "top level"),
        ("{not json", "not valid JSON"),
    ];
    for (text, needle) in cases {
        let err = Catalog::parse(text, "my.json", false, Strictness::User)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{text}: {err}");
        assert!(err.contains("my.json"), "{err}");
    }
    let err = Catalog::parse(r#"{"m": {"input": 1, "output": "1", "provider": "x", "source": "s", "checked": "2026-01-01"}}"#, "b", false, Strictness::Bundled)
        .unwrap_err()
        .to_string();
    assert!(err.contains("decimal string"), "{err}");
    let err = Catalog::parse(
        r#"{"models": [{"id": "a", "provider": "p", "aliases": ["b"], "source": "s", "checked": "2026-01-01", "prices": [{"input": "1", "output": "1"}]},
                       {"id": "b", "provider": "p", "source": "s", "checked": "2026-01-01", "prices": [{"input": "1", "output": "1"}]}]}"#,
        "dup", false, Strictness::Bundled,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("'b' is given twice"), "{err}");
}

#[test]
fn bundled_catalog_loads_and_prices_flagship_models() {
    let c = Catalog::bundled().unwrap();
    assert!(c.entries().len() > 100, "{}", c.entries().len());
    let now = date("2026-11-23");
    let u = Usage {
        input: 1_000_000,
        output: 1_000_000,
        ..Usage::default()
    };
    for (model, total) in [
        ("gpt-4o", "12.5"),
        ("gpt-4o-mini", "0.75"),
        ("gpt-4o-2024-05-13", "20"),
        ("claude-3-5-haiku-20241022", "4.8"),
    ] {
        let e = c
            .resolve(model, None)
            .unwrap_or_else(|| panic!("{model} missing"))
            .entry;
        assert_eq!(
            e.cost(&u, now, None).unwrap().cost.total,
            d(total),
            "{model}"
        );
    }
}

#[test]
fn bundled_catalog_has_output_limits() {
    let c = Catalog::bundled().unwrap();
    let limit = |model: &str, provider: Option<&str>| {
        c.resolve(model, provider)
            .unwrap_or_else(|| panic!("{model} missing"))
            .entry
            .max_output_tokens
    };
    // Hand-checked.
    assert_eq!(limit("gpt-4o", None), Some(16_384));
    assert_eq!(limit("gpt-4o-2024-08-06", None), Some(16_384));
    assert_eq!(limit("gpt-4o-2024-05-13", None), Some(4_096));
    assert_eq!(limit("gpt-4.1", None), Some(32_768));
    assert_eq!(limit("o4-mini", None), Some(100_000));
    assert_eq!(limit("claude-sonnet-4-20250514", None), Some(64_000));
    assert_eq!(limit("claude-opus-4-20250514", None), Some(32_000));
    assert_eq!(limit("gemini-2.5-pro", Some("google")), Some(65_536));
    // Embeddings produce no output: no limit rather than a made-up one.
    assert_eq!(limit("text-embedding-3-small", None), None);
    // Every stated limit is valid and, unless the notes explain it, within the window.
    let mut with_limit = 0;
    for e in c.entries() {
        let Some(out) = e.max_output_tokens else {
            continue;
        };
        with_limit += 1;
        assert!((1..=schema::MAX_TOKEN_COUNT).contains(&out), "{}", e.key());
        if let Some(window) = e.context_window {
            assert!(
                out <= window
                    || e.notes
                        .as_deref()
                        .is_some_and(|n| n.contains("exceeds context_window")),
                "{}: {out} > {window}",
                e.key()
            );
        }
    }
    assert!(with_limit > 1000, "{with_limit}");
}

const HOSTS_CATALOG: &str = r#"{
  "version": "hosts-1",
  "models": [
    {"id": "claude-3-5-sonnet-20241022", "provider": "anthropic", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "3", "output": "15"}]},
    {"id": "llama-3.3-70b-versatile", "provider": "groq", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "0.59", "output": "0.79"}]},
    {"id": "meta-llama/llama-3.3-70b-instruct-turbo", "provider": "together", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "0.88", "output": "0.88"}]},
    {"id": "anthropic.claude-3-5-sonnet-20241022-v2:0", "provider": "bedrock", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "3", "output": "15"}]},
    {"id": "eu.anthropic.claude-3-5-sonnet-20241022-v2:0", "provider": "bedrock", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "3.3", "output": "16.5"}]},
    {"id": "claude-sonnet-4-5@20250929", "provider": "vertex", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "3.3", "output": "16.5"}]},
    {"id": "claude-opus-4-6", "provider": "vertex", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "5", "output": "25"}]},
    {"id": "llama-v3p1-8b-instruct", "provider": "fireworks", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "0.2", "output": "0.2"}]},
    {"id": "meta-llama/llama-3.1-8b-instruct", "provider": "openrouter", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "0.02", "output": "0.03"}]},
    {"id": "mistral-small", "provider": "mistral", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "0.1", "output": "0.3"}]},
    {"id": "mistral-small-2503", "provider": "azure", "source": "s", "checked": "2026-11-01",
     "prices": [{"input": "0.1", "output": "0.3"}]}
  ]
}"#;

#[test]
fn host_ids_resolve_at_their_host() {
    let c = Catalog::parse(HOSTS_CATALOG, "hosts", false, Strictness::Bundled).unwrap();
    for (name, hint, want) in [
        // Bedrock: regional / global prefixes, vendor prefixes, -vN:M suffixes.
        (
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            Some("amazon_bedrock"),
            Some("bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ),
        (
            "global.anthropic.claude-3-5-sonnet-20241022-v2:0",
            None,
            Some("bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ),
        (
            "eu.anthropic.claude-3-5-sonnet-20241022-v2:0",
            None,
            Some("bedrock/eu.anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ),
        (
            "bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0",
            None,
            Some("bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ),
        (
            "us.anthropic.claude-3-5-sonnet-20241022-v3:0",
            None,
            Some("anthropic/claude-3-5-sonnet-20241022"),
        ),
        // Vertex: @ snapshots, @default.
        (
            "claude-sonnet-4-5@20250929",
            Some("google_vertexai"),
            Some("vertex/claude-sonnet-4-5@20250929"),
        ),
        (
            "claude-opus-4-6@default",
            Some("google_vertexai"),
            Some("vertex/claude-opus-4-6"),
        ),
        (
            "vertex_ai/claude-opus-4-6",
            None,
            Some("vertex/claude-opus-4-6"),
        ),
        // Hosts of open models.
        (
            "llama-3.3-70b-versatile",
            Some("groq"),
            Some("groq/llama-3.3-70b-versatile"),
        ),
        (
            "groq/llama-3.3-70b-versatile",
            None,
            Some("groq/llama-3.3-70b-versatile"),
        ),
        (
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            Some("together"),
            Some("together/meta-llama/llama-3.3-70b-instruct-turbo"),
        ),
        (
            "accounts/fireworks/models/llama-v3p1-8b-instruct",
            None,
            Some("fireworks/llama-v3p1-8b-instruct"),
        ),
        (
            "openrouter/meta-llama/llama-3.1-8b-instruct",
            None,
            Some("openrouter/meta-llama/llama-3.1-8b-instruct"),
        ),
        // ChatOpenAI pointed at an OpenAI-compatible host reports ls_provider "openai".
        (
            "meta-llama/llama-3.1-8b-instruct",
            Some("openai"),
            Some("openrouter/meta-llama/llama-3.1-8b-instruct"),
        ),
        // A host without the model never borrows another host's price...
        ("meta-llama/llama-3.1-8b-instruct", Some("groq"), None),
        ("llama-3.3-70b-versatile", Some("together"), None),
        // ...but a maker's model is billed at the maker's list price by a host that lists none.
        (
            "claude-3-5-sonnet-20241022",
            Some("bedrock"),
            Some("anthropic/claude-3-5-sonnet-20241022"),
        ),
        // A maker's dated name is not taken from a host when the maker lists the base model.
        (
            "mistral-small-2503",
            Some("mistralai"),
            Some("mistral/mistral-small"),
        ),
        (
            "mistral-small-2503",
            Some("azure"),
            Some("azure/mistral-small-2503"),
        ),
        // Near misses.
        ("llama-3.3-70b-versatilex", Some("groq"), None),
        ("accounts/fireworks/models/llama-v3p1-8b", None, None),
        ("anthropic.claude-3-5-sonnetx-v2:0", None, None),
        ("claude-opus-4-6@defaultx", Some("vertex"), None),
    ] {
        assert_eq!(id_of(&c, name, hint).as_deref(), want, "{name} at {hint:?}");
    }
}

#[test]
fn hosts_of_lists_each_providers_own_entry_and_price_call_is_resolve_then_cost() {
    let c = Catalog::bundled().unwrap();
    let keys: Vec<String> = c
        .hosts_of("claude-3-opus")
        .iter()
        .map(|e| e.key().to_string())
        .collect();
    assert_eq!(keys, ["vertex/claude-3-opus", "openrouter/claude-3-opus"]);
    assert!(c.hosts_of("no-such-model-x").is_empty());
    let usage = Usage {
        input: 1000,
        output: 100,
        ..Usage::default()
    };
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    for provider in [None, Some("anthropic"), Some("openai"), Some("azure")] {
        for model in ["claude-3-opus", "gpt-4o", "gpt-4o-2024-08-06"] {
            let via_call = c.price_call(model, provider, &usage, super::noon(day), Some("scale"));
            let via_resolve = c.resolve(model, provider);
            assert_eq!(
                via_call.as_ref().map(|p| p.entry.key().clone()),
                via_resolve.as_ref().map(|r| r.entry.key().clone())
            );
            if let (Some(p), Some(r)) = (via_call, via_resolve) {
                let direct = r.entry.cost(&usage, day, None).unwrap();
                let p = p.priced.unwrap();
                assert_eq!(p.cost, direct.cost);
                assert!(p.warnings.is_empty(), "{:?}", p.warnings);
            }
        }
    }
    assert_eq!(tier_variant(Some("priority")), Some("priority"));
    assert_eq!(tier_variant(Some("scale")), None);
}

#[test]
fn a_host_without_entries_never_borrows_a_vendors_price() {
    let c = Catalog::bundled().unwrap();
    // Local runtimes and hosts the catalog does not know: no price of theirs, and none
    // borrowed from the model's maker.
    for host in ["ollama", "vllm", "lmstudio", "dashscope", "acme"] {
        for model in [
            "deepseek-r1",
            "deepseek-chat",
            "mistral-small",
            "codestral",
            "gpt-4o",
        ] {
            assert_eq!(id_of(&c, model, Some(host)), None, "{model} at {host}");
        }
    }
    // Hosts that bill a maker's model at its list price, and ChatOpenAI's `openai` for every
    // OpenAI-compatible endpoint, still find the maker.
    assert_eq!(
        id_of(&c, "deepseek-chat", Some("openai")).as_deref(),
        Some("deepseek/deepseek-chat")
    );
    let t = test_catalog();
    assert_eq!(
        id_of(&t, "gpt-4o-mini", Some("azure_openai")).as_deref(),
        Some("openai/gpt-4o-mini")
    );
    assert_eq!(id_of(&t, "gpt-4o-mini", Some("groq")), None);
    assert_eq!(
        id_of(&t, "gpt-4o-mini", None).as_deref(),
        Some("openai/gpt-4o-mini")
    );
}

#[test]
fn components_priced_by_a_fallback_are_named() {
    let c = test_catalog();
    let date = date("2026-11-23");
    let cached = Usage {
        input: 1_000_000,
        cache_read: 400_000,
        cache_write: 100_000,
        cache_write_1h: 50_000,
        output: 0,
        ..Usage::default()
    };
    // gpt-4o-mini has a cache_read price but no cache_write ones.
    let e = c.resolve("gpt-4o-mini", None).unwrap().entry;
    let p = e.cost(&cached, date, None).unwrap();
    assert_eq!(
        p.notes,
        vec![
            "cache_write_tokens at the input price: no cache_write price".to_string(),
            "cache_write_1h_tokens at the input price: no cache_write_1h price".to_string(),
        ]
    );
    // Claude has every cache price: nothing to say.
    let e = c.resolve("claude-3-5-sonnet-latest", None).unwrap().entry;
    assert!(e.cost(&cached, date, None).unwrap().notes.is_empty());
    // No cached tokens: no notes, whatever the entry lacks.
    let e = c.resolve("o3", None).unwrap().entry;
    let plain = Usage {
        input: 10,
        output: 10,
        ..Usage::default()
    };
    assert!(e.cost(&plain, date, None).unwrap().notes.is_empty());
}

#[test]
fn fireworks_cached_tokens_follow_its_documented_default() {
    let c = Catalog::bundled().unwrap();
    let e = c.resolve("deepseek-v3p1", Some("fireworks")).unwrap().entry;
    assert_eq!(e.key().as_ref(), "fireworks/deepseek-v3p1");
    let usage = Usage {
        input: 1_000_000,
        cache_read: 800_000,
        output: 1_000_000,
        ..Usage::default()
    };
    let p = e.cost(&usage, date("2026-11-23"), None).unwrap();
    // $0.56 / 1M input, $1.68 / 1M output; cached at 50% of input: $0.28 / 1M.
    assert_eq!(p.cost.input, d("0.112"));
    assert_eq!(p.cost.cache_read, d("0.224"));
    assert_eq!(p.cost.total, d("2.016"));
    assert_eq!(p.notes.len(), 1);
    assert!(
        p.notes[0].contains("Fireworks' documented default"),
        "{:?}",
        p.notes
    );
    // A Fireworks model with its own cached price keeps it.
    let e = c.resolve("gpt-oss-120b", Some("fireworks")).unwrap().entry;
    assert!(e
        .cost(&usage, date("2026-11-23"), None)
        .unwrap()
        .notes
        .is_empty());
}

#[test]
fn time_of_day_windows_price_each_call_by_its_utc_time() {
    let c = Catalog::bundled().unwrap();
    let e = c.resolve("deepseek-chat", Some("deepseek")).unwrap().entry;
    let u = Usage {
        input: 1_000_000,
        cache_read: 0,
        output: 1_000_000,
        ..Usage::default()
    };
    let at = |h: u32, m: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
            .and_utc()
    };
    // genai-prices 0.2.3: $0.27 / $1.10 from 00:30 to 16:30 UTC, $0.135 / $0.55 otherwise.
    for (h, m, total, window) in [
        (12, 0, "1.37", None),
        (0, 30, "1.37", None),
        (16, 29, "1.37", None),
        (16, 30, "0.685", Some("16:30-00:30 UTC")),
        (23, 59, "0.685", Some("16:30-00:30 UTC")),
        (0, 29, "0.685", Some("16:30-00:30 UTC")),
    ] {
        let p = e.cost_at(&u, at(h, m), None).unwrap();
        assert_eq!(p.cost.total, d(total), "{h}:{m}");
        assert_eq!(p.window.as_deref(), window, "{h}:{m}");
    }
    // A day-only price (cost(date)) is noon's.
    assert_eq!(
        e.cost(&u, date("2026-11-23"), None).unwrap().cost.total,
        d("1.37")
    );
}

#[test]
fn windows_in_a_user_file_are_checked() {
    let ok = r#"{"models": [{"id": "m", "source": "x", "checked": "2026-01-01", "prices": [
        {"input": "1", "output": "2", "windows": [{"start": "22:00", "end": "06:00", "input": "0.5", "output": "1"}]}]}]}"#;
    let c = Catalog::parse(ok, "user", false, Strictness::User).unwrap();
    let w = &c.entries()[0].versions[0].windows[0];
    assert!(w.contains(23 * 60) && w.contains(0) && w.contains(359) && !w.contains(360));
    for (bad, says) in [
        (
            r#""start": "25:00", "end": "06:00""#,
            "'start' must be a UTC time",
        ),
        (r#""start": "06:00", "end": "06:00""#, "the same time"),
        (r#""end": "06:00""#, "'start' is required"),
    ] {
        let text = ok.replace(r#""start": "22:00", "end": "06:00""#, bad);
        let err = Catalog::parse(&text, "user", false, Strictness::User)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn cache_counts_whose_sum_overflows_do_not_panic() {
    // Found by the usage_cost fuzz target: `cache_read + cache_write` overflowed u64 in the
    // check for cached tokens (a panic in the hook's guard) before pricing said "overflow".
    let c = Catalog::bundled().unwrap();
    let e = c.resolve("gpt-4o-mini", Some("openai")).unwrap().entry;
    let usage = Usage {
        input: u64::MAX,
        cache_read: u64::MAX,
        cache_write: 1,
        ..Usage::default()
    };
    // Priced (within the per-call ceiling) or refused with a reason: never a panic.
    if let Ok(p) = e.cost(&usage, date("2026-11-23"), None) {
        assert!(p.cost.total <= crate::money::MAX_CALL_COST);
    }
}

#[test]
fn cost_total_is_the_total_of_cost_for_every_entry_day_tier_and_usage() {
    // The advisor's lean pricing must bill exactly what `cost` bills: every bundled entry, on
    // each of its price versions' days and before the first, under every variant name a
    // record can carry (one no entry has), for usages that take each path (cache reads with
    // and without a price or a host rule, 5-minute and 1-hour writes, reasoning, audio, long
    // context, overflow).
    let c = Catalog::bundled().unwrap();
    let usages = [
        Usage {
            input: 1200,
            output: 300,
            ..Usage::default()
        },
        Usage {
            input: 9000,
            cache_read: 6000,
            output: 50,
            reasoning: 20,
            ..Usage::default()
        },
        Usage {
            input: 9000,
            cache_write: 4000,
            cache_write_1h: 1000,
            output: 700,
            ..Usage::default()
        },
        Usage {
            input: 300_000,
            cache_read: 100_000,
            cache_write: 50_000,
            output: 4000,
            reasoning: 3000,
            ..Usage::default()
        },
        Usage {
            input: 500,
            input_audio: 200,
            output: 100,
            output_audio: 40,
            ..Usage::default()
        },
        Usage {
            input: u64::MAX,
            output: u64::MAX,
            ..Usage::default()
        },
        Usage::default(),
    ];
    let variants = [
        None,
        Some("default"),
        Some("auto"),
        Some("batch"),
        Some("flex"),
        Some("priority"),
        Some("no-such-tier"),
    ];
    let mut priced = 0u32;
    for e in c.entries() {
        let mut days: Vec<NaiveDate> = e.versions.iter().filter_map(|v| v.from).collect();
        days.push(date("2020-01-01"));
        days.push(date("2026-11-23"));
        for day in days {
            for u in &usages {
                for v in variants {
                    let want = e.cost(u, day, v).ok().map(|p| p.cost.total);
                    assert_eq!(
                        e.cost_total(u, day, v),
                        want,
                        "{} {day} {v:?} {u:?}",
                        e.key()
                    );
                    priced += u32::from(want.is_some());
                }
            }
        }
    }
    assert!(priced > 10_000, "{priced}");
}
