//! Token counting, offline: OpenAI's BPE vocabularies (compiled in through tiktoken-rs) for
//! the models that publish them, and a documented estimate for the models that do not.
//!
//! Encoders load lazily, once per process, on the first count that needs them, and are shared
//! by every thread (tiktoken-rs keeps one regex per thread slot, so threads do not contend).
//! Importing the library loads nothing.
//!
//! Counting treats special-token text (`<|endoftext|>`) as ordinary text, as the chat APIs do
//! with user content: it is `encode_ordinary`, never `encode` with special tokens allowed.

mod chat;
pub mod memo;

use std::thread;

use tiktoken_rs::CoreBPE;

pub use chat::{
    chat_total, count_messages, count_messages_uncached, count_tools, ChatMessage, ContentPart,
    MessageSink, ToolCall,
};
pub use memo::{MessageCount, MessageKey};

/// A BPE vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-5, o-series.
    O200kBase,
    /// gpt-oss.
    O200kHarmony,
    /// GPT-4, GPT-3.5, text-embedding-3 / ada-002.
    Cl100kBase,
    /// Codex, text-davinci-002/003.
    P50kBase,
    /// The edit models.
    P50kEdit,
    /// GPT-3 (`gpt2`).
    R50kBase,
}

/// Every encoding, in the order `encoding_names()` lists them.
pub const ENCODINGS: [Encoding; 6] = [
    Encoding::O200kBase,
    Encoding::O200kHarmony,
    Encoding::Cl100kBase,
    Encoding::P50kBase,
    Encoding::P50kEdit,
    Encoding::R50kBase,
];

impl Encoding {
    /// tiktoken's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::O200kHarmony => "o200k_harmony",
            Encoding::Cl100kBase => "cl100k_base",
            Encoding::P50kBase => "p50k_base",
            Encoding::P50kEdit => "p50k_edit",
            Encoding::R50kBase => "r50k_base",
        }
    }

    /// The encoding tiktoken calls `name` (`gpt2` is `r50k_base`).
    pub fn from_name(name: &str) -> Option<Encoding> {
        if name == "gpt2" {
            return Some(Encoding::R50kBase);
        }
        ENCODINGS.into_iter().find(|e| e.name() == name)
    }

    /// The process-wide encoder, loaded on first use.
    pub fn bpe(self) -> &'static CoreBPE {
        match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::O200kHarmony => tiktoken_rs::o200k_harmony_singleton(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
            Encoding::P50kBase => tiktoken_rs::p50k_base_singleton(),
            Encoding::P50kEdit => tiktoken_rs::p50k_edit_singleton(),
            Encoding::R50kBase => tiktoken_rs::r50k_base_singleton(),
        }
    }

    /// Tokens in `text` (special-token text counted as ordinary text).
    pub fn count(self, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        self.bpe().encode_ordinary(text).len() as u64
    }

    /// The token ids of `text` (special-token text encoded as ordinary text).
    pub fn encode(self, text: &str) -> Vec<u32> {
        self.bpe().encode_ordinary(text)
    }
}

/// How a model's tokens are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// The vocabulary used.
    pub encoding: Encoding,
    /// The model family when the count is an estimate (`None`: the model's own tokenizer).
    pub estimate_for: Option<&'static str>,
    /// The estimate's scale, in thousandths (1000 for exact counts).
    pub factor_permille: u32,
    /// The chat format's overhead per message (3; 4 for gpt-3.5-turbo-0301).
    pub per_message: i64,
    /// Tokens a message's `name` adds beyond its text (1; -1 for gpt-3.5-turbo-0301).
    pub per_name: i64,
}

impl Counter {
    fn exact(encoding: Encoding) -> Counter {
        Counter {
            encoding,
            estimate_for: None,
            factor_permille: 1000,
            per_message: 3,
            per_name: 1,
        }
    }

    fn estimate(encoding: Encoding, family: &'static str, factor_permille: u32) -> Counter {
        Counter {
            estimate_for: Some(family),
            factor_permille,
            ..Counter::exact(encoding)
        }
    }

    /// True when the count is the model's own tokenizer's.
    pub fn is_exact(&self) -> bool {
        self.estimate_for.is_none()
    }

    /// Scales a raw count by the estimate's factor (rounding up; exact counts unchanged).
    pub fn scale(&self, raw: u64) -> u64 {
        if self.factor_permille == 1000 {
            raw
        } else {
            (raw * u64::from(self.factor_permille)).div_ceil(1000)
        }
    }

    /// Tokens in `text` for this model.
    pub fn count(&self, text: &str) -> u64 {
        self.scale(self.encoding.count(text))
    }

    /// A one-line description (`o200k_base`, or `estimate for Claude: o200k_base x 1.20`).
    pub fn describe(&self) -> String {
        match self.estimate_for {
            None => self.encoding.name().to_string(),
            Some(family) => format!(
                "estimate for {family}: {} x {}.{:02}",
                self.encoding.name(),
                self.factor_permille / 1000,
                (self.factor_permille % 1000) / 10
            ),
        }
    }
}

/// Estimates for the families without a public tokenizer: (name fragments, family, base
/// encoding, factor in thousandths). The factors are rough averages of published comparisons
/// on English prose and code; docs/tokens.md explains them. Checked in this order.
const ESTIMATES: &[(&[&str], &str, Encoding, u32)] = &[
    (&["claude"], "Claude", Encoding::O200kBase, 1200),
    (&["gemini", "gemma"], "Gemini", Encoding::O200kBase, 1000),
    (&["llama"], "Llama", Encoding::Cl100kBase, 1000),
    (&["qwen", "qwq"], "Qwen", Encoding::Cl100kBase, 1000),
    (&["deepseek"], "DeepSeek", Encoding::Cl100kBase, 1000),
    (
        &[
            "mistral",
            "mixtral",
            "codestral",
            "ministral",
            "magistral",
            "devstral",
            "pixtral",
        ],
        "Mistral",
        Encoding::O200kBase,
        1000,
    ),
    (&["grok"], "Grok", Encoding::O200kBase, 1000),
    (&["command", "cohere"], "Cohere", Encoding::O200kBase, 1000),
    (&["nova"], "Amazon Nova", Encoding::O200kBase, 1000),
];

/// Strips what hosts and LangChain put before a model id: `openai/`, `openai:`,
/// `models/`, Bedrock's `us.anthropic.`; lower-cases.
fn base_model(model: &str) -> String {
    let mut m = model.trim().to_ascii_lowercase();
    if let Some(i) = m.rfind('/') {
        m = m[i + 1..].to_string();
    }
    // `openai:gpt-4o` (init_chat_model), but not fine-tunes (`ft:gpt-4o:org::id`).
    if !m.starts_with("ft:") {
        if let Some((prefix, rest)) = m.split_once(':') {
            if !prefix.is_empty()
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                m = rest.to_string();
            }
        }
    }
    m
}

/// How `model`'s tokens are counted: its own vocabulary when tiktoken knows it (the same
/// model -> encoding map, dated snapshots, Azure names and fine-tunes included), else an
/// estimate by family, else an o200k_base estimate.
pub fn counter_for(model: &str) -> Counter {
    let m = base_model(model);
    let known = tiktoken_rs::tokenizer::get_tokenizer(&m).map(|t| {
        use tiktoken_rs::tokenizer::Tokenizer as T;
        match t {
            T::O200kHarmony => Encoding::O200kHarmony,
            T::O200kBase => Encoding::O200kBase,
            T::Cl100kBase => Encoding::Cl100kBase,
            T::P50kBase => Encoding::P50kBase,
            T::P50kEdit => Encoding::P50kEdit,
            T::R50kBase | T::Gpt2 => Encoding::R50kBase,
        }
    });
    if let Some(enc) = known {
        let mut c = Counter::exact(enc);
        if m == "gpt-3.5-turbo-0301" {
            // Every message is `<|start|>{role/name}\n{content}<|end|>\n`; a name replaces
            // the role.
            c.per_message = 4;
            c.per_name = -1;
        }
        return c;
    }
    for (fragments, family, enc, factor) in ESTIMATES {
        if fragments.iter().any(|f| m.contains(f)) {
            return Counter::estimate(*enc, family, *factor);
        }
    }
    Counter::estimate(Encoding::O200kBase, "an unknown model", 1000)
}

/// A prompt captured at a run's start, kept (in memory, never stored) until its end in case
/// the response reports no usage.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// A chat model's messages and the tool definitions sent with them.
    Chat {
        /// The conversation.
        messages: Vec<ChatMessage>,
        /// Tool definitions (OpenAI or Anthropic format).
        tools: Vec<serde_json::Value>,
    },
    /// A completion model's prompts.
    Text(Vec<String>),
}

impl Prompt {
    /// Tokens of the prompt for the model `counter` counts for.
    pub fn count(&self, counter: &Counter) -> u64 {
        match self {
            Prompt::Chat { messages, tools } => count_messages(counter, messages, tools),
            Prompt::Text(prompts) => prompts.iter().map(|p| count_prompt_text(counter, p)).sum(),
        }
    }

    /// Bytes of text the prompt holds.
    pub fn text_len(&self) -> usize {
        match self {
            Prompt::Chat { messages, .. } => messages.iter().map(ChatMessage::text_len).sum(),
            Prompt::Text(prompts) => prompts.iter().map(String::len).sum(),
        }
    }
}

/// Tokens of a completion prompt for the model `counter` counts for, through the process's
/// memo (a prompt sent again is not tokenized again).
pub fn count_prompt_text(counter: &Counter, text: &str) -> u64 {
    let enc = counter.encoding;
    let c = memo::get_or_count(MessageKey::prompt(enc, text), || MessageCount {
        raw: enc.count(text),
        named: false,
    });
    counter.scale(c.raw)
}

/// Texts at least this long in total are counted on several threads.
const PARALLEL_MIN_BYTES: usize = 64 * 1024;

/// Counts each of `texts` with `counter`, on up to `threads` threads (0: one per core).
pub fn count_batch(counter: &Counter, texts: &[&str], threads: usize) -> Vec<u64> {
    let total: usize = texts.iter().map(|t| t.len()).sum();
    let threads = if threads == 0 {
        thread::available_parallelism().map_or(1, std::num::NonZero::get)
    } else {
        threads
    }
    .min(texts.len())
    .max(1);
    if threads == 1 || total < PARALLEL_MIN_BYTES {
        return texts.iter().map(|t| counter.count(t)).collect();
    }
    // Contiguous slices of about equal byte size, one per thread.
    let target = total.div_ceil(threads);
    let mut bounds = vec![0];
    let mut acc = 0;
    for (i, t) in texts.iter().enumerate() {
        acc += t.len();
        if acc >= target * bounds.len() && bounds.len() < threads && i + 1 < texts.len() {
            bounds.push(i + 1);
        }
    }
    bounds.push(texts.len());
    let mut out = vec![0; texts.len()];
    thread::scope(|s| {
        let mut rest: &mut [u64] = &mut out;
        let mut start = 0;
        for w in bounds.windows(2) {
            let (chunk, tail) = rest.split_at_mut(w[1] - start);
            rest = tail;
            let slice = &texts[w[0]..w[1]];
            start = w[1];
            s.spawn(move || {
                for (o, t) in chunk.iter_mut().zip(slice) {
                    *o = counter.count(t);
                }
            });
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_counts() {
        // Fixed by OpenAI's vocabularies (checked against Python tiktoken).
        assert_eq!(Encoding::Cl100kBase.count("hello world"), 2);
        assert_eq!(Encoding::O200kBase.count("hello world"), 2);
        assert_eq!(Encoding::Cl100kBase.count("tiktoken is great!"), 6);
        assert_eq!(Encoding::O200kBase.count(""), 0);
        // Special-token text is ordinary text.
        assert!(Encoding::Cl100kBase.count("<|endoftext|>") > 1);
    }

    #[test]
    fn models_map_as_tiktoken_maps_them() {
        let enc = |m: &str| counter_for(m).encoding;
        assert_eq!(enc("gpt-4o"), Encoding::O200kBase);
        assert_eq!(enc("gpt-4o-mini-2024-07-18"), Encoding::O200kBase);
        assert_eq!(enc("openai/gpt-4.1-mini"), Encoding::O200kBase);
        assert_eq!(enc("openai:o3-mini"), Encoding::O200kBase);
        assert_eq!(enc("gpt-4-0613"), Encoding::Cl100kBase);
        assert_eq!(enc("gpt-35-turbo"), Encoding::Cl100kBase);
        assert_eq!(
            enc("ft:gpt-4o-mini-2024-07-18:org::abc"),
            Encoding::O200kBase
        );
        assert_eq!(enc("gpt-oss-120b"), Encoding::O200kHarmony);
        assert_eq!(enc("text-davinci-003"), Encoding::P50kBase);
        assert_eq!(enc("davinci"), Encoding::R50kBase);
        assert!(counter_for("GPT-5-mini").is_exact());
        let c = counter_for("gpt-3.5-turbo-0301");
        assert_eq!((c.per_message, c.per_name), (4, -1));
    }

    #[test]
    fn models_without_a_public_tokenizer_are_estimates() {
        let c = counter_for("us.anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert_eq!(c.estimate_for, Some("Claude"));
        assert!(!c.is_exact());
        assert_eq!(c.describe(), "estimate for Claude: o200k_base x 1.20");
        // 10 o200k tokens scale to 12.
        assert_eq!(c.scale(10), 12);
        assert_eq!(c.scale(1), 2, "estimates round up");
        assert_eq!(counter_for("gemini-2.5-flash").estimate_for, Some("Gemini"));
        assert_eq!(
            counter_for("meta-llama/Llama-3.3-70B-Instruct").estimate_for,
            Some("Llama")
        );
        assert_eq!(
            counter_for("my-own-model").estimate_for,
            Some("an unknown model")
        );
    }

    #[test]
    fn batch_equals_one_by_one_on_any_thread_count() {
        let texts: Vec<String> = (0..200)
            .map(|i| {
                format!("line {i}: {} 東京 🚀\n", "lorem ipsum ".repeat(i % 50 + 1)).repeat(20)
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let c = counter_for("gpt-4o");
        let one: Vec<u64> = refs.iter().map(|t| c.count(t)).collect();
        for threads in [0, 1, 2, 3, 7] {
            assert_eq!(count_batch(&c, &refs, threads), one, "threads={threads}");
        }
        assert!(count_batch(&c, &[], 2).is_empty());
    }
}
