//! Model-name normalisation: provider prefixes, fine-tune names and snapshot suffixes.
//! Every rule is anchored (a whole prefix or suffix of a known shape); nothing is fuzzy.

/// Maps a LangChain `ls_provider` value (or a prefix such as `vertex_ai`) to the catalog's
/// provider key; unknown providers are returned as given.
pub fn normalize_provider(p: &str) -> &str {
    match p {
        "openai" | "openai-chat" | "openai_chat" => "openai",
        "azure" | "azure_openai" | "azure-openai" | "azureopenai" | "azure_ai" => "azure",
        "anthropic" | "anthropic-chat" | "claude" => "anthropic",
        "google" | "google_genai" | "google-genai" | "gemini" | "google_ai" => "google",
        "vertex"
        | "vertex_ai"
        | "vertexai"
        | "google_vertexai"
        | "google_anthropic_vertex"
        | "vertex_ai_beta" => "vertex",
        "bedrock" | "amazon_bedrock" | "bedrock_converse" | "aws" | "aws_bedrock" => "bedrock",
        "mistral" | "mistralai" | "mistral_ai" => "mistral",
        "together" | "together_ai" | "togetherai" => "together",
        "fireworks" | "fireworks_ai" | "fireworksai" => "fireworks",
        "xai" | "x-ai" | "x_ai" | "grok" => "xai",
        "deepseek" | "deepseek_ai" => "deepseek",
        "cohere" | "cohere_chat" => "cohere",
        "groq" | "groq_ai" => "groq",
        "openrouter" | "open_router" => "openrouter",
        // Chinese platforms, by the ls_provider their LangChain integrations report
        // (langchain-community's ChatTongyi, ChatZhipuAI, MoonshotChat, QianfanChatEndpoint,
        // MiniMaxChat, VolcEngineMaasChat; langchain-qwq's ChatQwen / ChatQwQ).
        "dashscope" | "tongyi" | "qwen" | "qwq" | "alibaba" | "aliyun" | "bailian" => "dashscope",
        "zhipuai" | "zhipu" | "bigmodel" => "zhipuai",
        "zai" | "z.ai" | "z-ai" => "zai",
        "moonshot" | "moonshotai" | "kimi" => "moonshot",
        "qianfan" | "qianfanchatendpoint" | "baidu" | "baidu_qianfan" | "ernie" => "qianfan",
        "minimax" => "minimax",
        "volcengine" | "volcenginemaas" | "volcengine_maas" | "ark" | "doubao" => "volcengine",
        other => other,
    }
}

/// True for a provider that makes the models it sells (its price is the list price hosts of
/// its models start from); false for a host of other makers' models (Bedrock, Vertex, Azure,
/// Groq, Together, Fireworks, OpenRouter, ...).
pub fn is_model_vendor(provider: &str) -> bool {
    matches!(
        provider,
        "openai"
            | "anthropic"
            | "google"
            | "mistral"
            | "deepseek"
            | "xai"
            | "cohere"
            | "dashscope"
            | "moonshot"
            | "zhipuai"
            | "zai"
            | "minimax"
            | "qianfan"
            | "volcengine"
    )
}

/// True for a host that bills another maker's model at the maker's list price unless it lists
/// its own (Azure, Bedrock, Vertex), and for `openai`, which LangChain's ChatOpenAI reports
/// for every OpenAI-compatible endpoint (DeepSeek's, xAI's, ...). Any other provider hint
/// finds only its own entries: a price is never borrowed from another host.
pub fn bills_maker_prices(provider: &str) -> bool {
    matches!(provider, "azure" | "bedrock" | "vertex" | "openai")
}

/// The local runtime a provider hint or a client class names (`ollama`, `llamacpp`, `vllm`,
/// `lmstudio`, ...): a model it serves runs on the user's own hardware and costs no API fee.
/// Matched case-insensitively on the whole name, never on a part of it.
pub fn local_runtime(name: &str) -> Option<&'static str> {
    let mut buf = [0u8; 32];
    let n = name.len();
    if n == 0 || n > buf.len() {
        return None;
    }
    for (b, c) in buf.iter_mut().zip(name.bytes()) {
        *b = c.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..n]).ok()?;
    let rt = match lower {
        // ls_provider values, then the client classes that report them (or none).
        "ollama" | "chatollama" | "ollamallm" | "ollamafunctions" | "ollamaembeddings" => "ollama",
        "llamacpp" | "llama_cpp" | "llama-cpp" | "llama.cpp" | "chatllamacpp" => "llamacpp",
        "llamafile" | "chatllamafile" => "llamafile",
        "vllm" | "vllmopenai" | "chatvllm" => "vllm",
        "lmstudio" | "lm_studio" | "lm-studio" | "chatlmstudio" => "lmstudio",
        "gpt4all" => "gpt4all",
        "mlx" | "chatmlx" | "mlxpipeline" => "mlx",
        "huggingfacepipeline" | "huggingface_pipeline" | "chathuggingfacepipeline" => {
            "huggingface_pipeline"
        }
        "ctransformers" => "ctransformers",
        "exllamav2" => "exllamav2",
        "localai" | "local_ai" | "chatlocalai" => "localai",
        "textgen" | "text-generation-webui" => "textgen",
        "koboldapi" | "kobold" | "koboldcpp" => "koboldcpp",
        "mlc" | "mlc_llm" | "chatmlc" => "mlc",
        _ => return None,
    };
    Some(rt)
}

/// Prefixes `PREFIX/model` or `PREFIX:model` that name a provider (or, for `models/`, nothing):
/// `None` for an unknown prefix, `Some(None)` for a known one that names no provider.
#[allow(clippy::option_option)]
fn provider_prefix(prefix: &str) -> Option<Option<&'static str>> {
    let p = match prefix {
        "models" | "publishers" => return Some(None),
        "openai" => "openai",
        "azure" | "azure_openai" | "azure_ai" => "azure",
        "anthropic" => "anthropic",
        "google" | "google_genai" | "gemini" => "google",
        "vertex_ai" | "vertex" | "google_vertexai" | "vertex_ai_beta" => "vertex",
        "bedrock" | "bedrock_converse" | "amazon_bedrock" => "bedrock",
        "mistral" | "mistralai" => "mistral",
        "groq" => "groq",
        "together" | "together_ai" => "together",
        "fireworks" | "fireworks_ai" => "fireworks",
        "openrouter" => "openrouter",
        "deepseek" => "deepseek",
        "xai" | "x-ai" => "xai",
        "cohere" => "cohere",
        "ollama" => "ollama",
        "dashscope" => "dashscope",
        "moonshot" => "moonshot",
        "zai" => "zai",
        "zhipuai" => "zhipuai",
        "volcengine" => "volcengine",
        _ => return None,
    };
    Some(Some(p))
}

/// Bedrock cross-region inference prefixes (`us.anthropic.claude-...`).
const BEDROCK_REGIONS: &[&str] = &["us", "eu", "apac", "global", "us-gov", "ca", "jp", "au"];
/// Bedrock model-vendor prefixes (`anthropic.claude-...`).
const BEDROCK_VENDORS: &[&str] = &[
    "anthropic",
    "amazon",
    "meta",
    "mistral",
    "cohere",
    "ai21",
    "deepseek",
    "openai",
    "qwen",
    "writer",
    "stability",
    "moonshot",
    "moonshotai",
    "minimax",
    "nvidia",
    "google",
    "twelvelabs",
    "xai",
    "zai",
];

/// Removes provider prefixes one at a time: every intermediate name, with the outermost
/// provider named so far (`us.anthropic.claude-x` -> `anthropic.claude-x`, `claude-x`).
fn prefix_stages(name: &str) -> Vec<(&str, Option<&'static str>)> {
    let mut stages = Vec::new();
    let mut rest = name;
    let mut provider = None;
    for _ in 0..4 {
        // Fireworks' model paths: accounts/ACCOUNT/models/NAME.
        if let Some(tail) = rest.strip_prefix("accounts/") {
            if let Some(i) = tail.find("/models/") {
                provider = provider.or(Some("fireworks"));
                rest = &tail[i + "/models/".len()..];
                stages.push((rest, provider));
                continue;
            }
        }
        let sep = rest.find(['/', ':']);
        if let Some(i) = sep {
            if let Some(p) = provider_prefix(&rest[..i]) {
                provider = provider.or(p);
                rest = &rest[i + 1..];
                stages.push((rest, provider));
                continue;
            }
        }
        if let Some(i) = rest.find('.') {
            let head = &rest[..i];
            if BEDROCK_REGIONS.contains(&head) || BEDROCK_VENDORS.contains(&head) {
                provider = provider.or(Some("bedrock"));
                rest = &rest[i + 1..];
                stages.push((rest, provider));
                continue;
            }
        }
        break;
    }
    stages
}

/// Removes provider prefixes; returns the bare name and the outermost provider named.
#[cfg(test)]
fn strip_prefixes(name: &str) -> (&str, Option<&'static str>) {
    prefix_stages(name).last().copied().unwrap_or((name, None))
}

fn all_digits(s: &[u8], n: usize) -> bool {
    s.len() == n && s.iter().all(u8::is_ascii_digit)
}

/// Removes one snapshot suffix: `-YYYY-MM-DD`, `-YYYYMMDD`, `@YYYYMMDD`, `@latest`,
/// `@default`, `-MMDD`,
/// `-NNN`, `-latest`, `-vN` / `-vN:M`.
pub fn strip_snapshot(name: &str) -> Option<&str> {
    let b = name.as_bytes();
    let n = b.len();
    // -YYYY-MM-DD, compared as bytes: the name may have any characters before it, and the
    // 11th byte from the end need not start one.
    if n > 11 {
        let tb = &b[n - 11..];
        if tb[0] == b'-'
            && all_digits(&tb[1..5], 4)
            && tb[5] == b'-'
            && all_digits(&tb[6..8], 2)
            && tb[8] == b'-'
            && all_digits(&tb[9..11], 2)
        {
            // The cut is at the ASCII '-': a character boundary.
            return Some(&name[..n - 11]);
        }
    }
    if let Some(i) = name.rfind('@') {
        let tail = &name[i + 1..];
        if i > 0
            && (tail == "latest"
                || tail == "default"
                || tail.bytes().all(|c| c.is_ascii_digit()) && !tail.is_empty())
        {
            return Some(&name[..i]);
        }
        return None;
    }
    let i = name.rfind('-')?;
    if i == 0 {
        return None;
    }
    let tail = &name[i + 1..];
    let digits = |n| all_digits(tail.as_bytes(), n);
    if digits(8) || digits(4) || digits(3) || tail == "latest" {
        return Some(&name[..i]);
    }
    // Bedrock versions: -v1, -v2:0
    if let Some(v) = tail.strip_prefix('v') {
        let (major, minor) = v.split_once(':').unwrap_or((v, "0"));
        if !major.is_empty()
            && major.bytes().all(|c| c.is_ascii_digit())
            && !minor.is_empty()
            && minor.bytes().all(|c| c.is_ascii_digit())
        {
            return Some(&name[..i]);
        }
    }
    None
}

/// Rewrites fine-tuned model names to the catalog's `ft:BASE` ids, with the provider they
/// imply: `ft:BASE:org:name:id` (OpenAI), `BASE.ft-xxxx` (Azure), `BASE:ft-org-date` (legacy).
fn fine_tune(name: &str) -> Option<(String, Option<&'static str>)> {
    if let Some(rest) = name.strip_prefix("ft:") {
        let base = rest.split(':').next().unwrap_or(rest);
        return Some((format!("ft:{base}"), None));
    }
    if let Some(i) = name.find(".ft-") {
        return Some((format!("ft:{}", &name[..i]), Some("azure")));
    }
    if let Some(i) = name.find(":ft-") {
        return Some((format!("ft:{}", &name[..i]), Some("openai")));
    }
    None
}

/// The names to try, in order, after an exact match of `name` failed; each with the provider
/// it implies (which overrides the caller's hint).
pub fn candidates(name: &str, _hint: Option<&str>) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let stages = prefix_stages(name);
    let (bare, prefix_provider) = stages.last().copied().unwrap_or((name, None));
    if let Some((ft, p)) = fine_tune(bare) {
        let p = p.or(prefix_provider).map(str::to_string);
        out.push((ft.clone(), p.clone()));
        if let Some(base) = ft.strip_prefix("ft:").and_then(strip_snapshot) {
            out.push((format!("ft:{base}"), p));
        }
        return out;
    }
    for (stage, p) in &stages {
        out.push(((*stage).to_string(), p.map(str::to_string)));
    }
    let p = prefix_provider.map(str::to_string);
    let mut cur = bare;
    for _ in 0..2 {
        match strip_snapshot(cur) {
            Some(s) => {
                out.push((s.to_string(), p.clone()));
                cur = s;
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots() {
        assert_eq!(strip_snapshot("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(
            strip_snapshot("claude-3-5-sonnet-20241022"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(
            strip_snapshot("claude-3-5-sonnet-v2@20241022"),
            Some("claude-3-5-sonnet-v2")
        );
        assert_eq!(strip_snapshot("gpt-4-0613"), Some("gpt-4"));
        assert_eq!(strip_snapshot("gemini-1.5-pro-002"), Some("gemini-1.5-pro"));
        assert_eq!(
            strip_snapshot("claude-3-haiku-20240307-v1:0"),
            Some("claude-3-haiku-20240307")
        );
        assert_eq!(
            strip_snapshot("claude-3-5-sonnet-latest"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(strip_snapshot("gpt-4o-minix"), None);
        assert_eq!(strip_snapshot("gpt-4o"), None);
        assert_eq!(strip_snapshot("o3"), None);
        assert_eq!(strip_snapshot("-1234"), None);
    }

    #[test]
    fn snapshot_of_non_ascii_names_does_not_panic() {
        // Found by the `resolve` fuzz target: the 11th byte from the end inside a character
        // ('é' is two bytes) made the date check slice a `str` off a character boundary.
        assert_eq!(strip_snapshot("ééééééé"), None);
        assert_eq!(
            strip_snapshot("f,:gpt-4o-miniːҐ-2024-07&vvvvːҐ8:at-4o-mi"),
            None
        );
        assert_eq!(strip_snapshot("modèle-2024-08-06"), Some("modèle"));
        assert_eq!(strip_snapshot("ééé-20240806"), Some("ééé"));
    }

    #[test]
    fn prefixes() {
        assert_eq!(strip_prefixes("openai/gpt-4o"), ("gpt-4o", Some("openai")));
        assert_eq!(
            strip_prefixes("anthropic:claude-x"),
            ("claude-x", Some("anthropic"))
        );
        assert_eq!(
            strip_prefixes("models/gemini-2.5-pro"),
            ("gemini-2.5-pro", None)
        );
        assert_eq!(
            strip_prefixes("us.anthropic.claude-3-haiku-20240307-v1:0"),
            ("claude-3-haiku-20240307-v1:0", Some("bedrock"))
        );
        assert_eq!(
            strip_prefixes("openrouter/openai/gpt-4o"),
            ("gpt-4o", Some("openrouter"))
        );
        assert_eq!(strip_prefixes("gpt-3.5-turbo"), ("gpt-3.5-turbo", None));
        assert_eq!(
            strip_prefixes("unknownhost/gpt-4o"),
            ("unknownhost/gpt-4o", None)
        );
    }

    #[test]
    fn fine_tunes() {
        assert_eq!(
            candidates("ft:gpt-4o-mini-2024-07-18:acme::abc123", None)[0],
            ("ft:gpt-4o-mini-2024-07-18".to_string(), None)
        );
        assert_eq!(
            candidates("gpt-35-turbo-0613.ft-0123456789abcdef", None)[0],
            (
                "ft:gpt-35-turbo-0613".to_string(),
                Some("azure".to_string())
            )
        );
        assert_eq!(
            candidates("curie:ft-acme-2023-01-01-00-00-00", None)[0],
            ("ft:curie".to_string(), Some("openai".to_string()))
        );
    }

    #[test]
    fn prefix_stages_keep_every_step() {
        assert_eq!(
            prefix_stages("us.anthropic.claude-3-5-sonnet-20241022-v2:0"),
            vec![
                ("anthropic.claude-3-5-sonnet-20241022-v2:0", Some("bedrock")),
                ("claude-3-5-sonnet-20241022-v2:0", Some("bedrock")),
            ]
        );
        assert_eq!(
            prefix_stages("bedrock/global.amazon.nova-pro-v1:0")[1],
            ("amazon.nova-pro-v1:0", Some("bedrock"))
        );
        assert_eq!(
            strip_prefixes("accounts/fireworks/models/llama-v3p1-8b-instruct"),
            ("llama-v3p1-8b-instruct", Some("fireworks"))
        );
        assert_eq!(
            strip_prefixes("fireworks_ai/accounts/fireworks/models/gpt-oss-120b"),
            ("gpt-oss-120b", Some("fireworks"))
        );
        assert_eq!(
            strip_prefixes("groq/llama-3.3-70b-versatile"),
            ("llama-3.3-70b-versatile", Some("groq"))
        );
        assert_eq!(
            strip_prefixes("vertex_ai/claude-opus-4-6@default"),
            ("claude-opus-4-6@default", Some("vertex"))
        );
        // Not a prefix of a known shape: left alone.
        assert!(prefix_stages("meta-llama/llama-3.1-8b-instruct").is_empty());
        assert!(prefix_stages("accounts/x").is_empty());
        assert!(prefix_stages("gpt-4.1-mini").is_empty());
    }

    #[test]
    fn vertex_snapshots() {
        assert_eq!(
            strip_snapshot("claude-opus-4-6@default"),
            Some("claude-opus-4-6")
        );
        assert_eq!(
            strip_snapshot("claude-sonnet-4-5@20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(strip_snapshot("claude-opus-4-6@defaults"), None);
        assert_eq!(strip_snapshot("@default"), None);
    }

    #[test]
    fn langchain_ls_provider_values() {
        for (ls, ours) in [
            ("openai", "openai"),
            ("azure", "azure"),
            ("azure_ai", "azure"),
            ("anthropic", "anthropic"),
            ("google_genai", "google"),
            ("google_vertexai", "vertex"),
            ("google_anthropic_vertex", "vertex"),
            ("amazon_bedrock", "bedrock"),
            ("bedrock", "bedrock"),
            ("bedrock_converse", "bedrock"),
            ("groq", "groq"),
            ("together", "together"),
            ("fireworks", "fireworks"),
            ("mistralai", "mistral"),
            ("deepseek", "deepseek"),
            ("xai", "xai"),
            ("cohere", "cohere"),
            ("openrouter", "openrouter"),
            ("ollama", "ollama"),
            ("tongyi", "dashscope"),
            ("qwen", "dashscope"),
            ("zhipuai", "zhipuai"),
            ("moonshot", "moonshot"),
            ("qianfanchatendpoint", "qianfan"),
            ("minimax", "minimax"),
            ("volcenginemaas", "volcengine"),
        ] {
            assert_eq!(normalize_provider(ls), ours, "{ls}");
        }
        for (name, rt) in [
            ("ollama", "ollama"),
            ("ChatOllama", "ollama"),
            ("OllamaLLM", "ollama"),
            ("llamacpp", "llamacpp"),
            ("ChatLlamaCpp", "llamacpp"),
            ("VLLM", "vllm"),
            ("VLLMOpenAI", "vllm"),
            ("lmstudio", "lmstudio"),
            ("HuggingFacePipeline", "huggingface_pipeline"),
            ("GPT4All", "gpt4all"),
        ] {
            assert_eq!(local_runtime(name), Some(rt), "{name}");
        }
        for hosted in [
            "openai",
            "deepseek",
            "mistralai",
            "huggingface",
            "ollamax",
            "",
            "o",
        ] {
            assert_eq!(local_runtime(hosted), None, "{hosted}");
        }
        assert!(bills_maker_prices("bedrock") && !bills_maker_prices("ollama"));
        assert!(is_model_vendor("anthropic") && !is_model_vendor("bedrock"));
    }
}
