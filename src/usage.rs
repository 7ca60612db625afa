//! The normalised token counts of one call, and where they came from.
//!
//! Convention (LangChain's): `input` counts **all** input tokens, including those read from or
//! written to a prompt cache and audio tokens; `output` counts all output tokens, including
//! reasoning and audio. The detail fields say how many of those were of each kind. Providers
//! whose raw usage keeps cached tokens apart (Anthropic) are converted to this convention when
//! they are read, so no token is ever billed twice.

use serde::Serialize;

/// Token counts of one call, in LangChain's inclusive convention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// All input (prompt) tokens, cached and audio ones included.
    pub input: u64,
    /// Input tokens read from a prompt cache (a part of `input`).
    pub cache_read: u64,
    /// Input tokens written to a prompt cache, any lifetime (a part of `input`).
    pub cache_write: u64,
    /// The part of `cache_write` written for one hour (Anthropic's 1h cache).
    pub cache_write_1h: u64,
    /// All output (completion) tokens, reasoning and audio included.
    pub output: u64,
    /// Reasoning / thinking tokens (a part of `output`).
    pub reasoning: u64,
    /// Audio input tokens (a part of `input`).
    pub input_audio: u64,
    /// Audio output tokens (a part of `output`).
    pub output_audio: u64,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// Adds another call's usage to this one (saturating).
    pub fn add(&mut self, other: &Usage) {
        self.input = self.input.saturating_add(other.input);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
        self.cache_write_1h = self.cache_write_1h.saturating_add(other.cache_write_1h);
        self.output = self.output.saturating_add(other.output);
        self.reasoning = self.reasoning.saturating_add(other.reasoning);
        self.input_audio = self.input_audio.saturating_add(other.input_audio);
        self.output_audio = self.output_audio.saturating_add(other.output_audio);
    }

    /// True when no token of any kind was counted.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }

    /// Makes the parts consistent with the wholes and says what was inconsistent.
    ///
    /// A part larger than its whole (cached tokens above input tokens, say) means the source
    /// used another convention or is malformed: the whole is raised to the sum of its parts,
    /// which never bills a token twice, and a warning names the fields.
    pub fn reconcile(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.cache_write_1h > self.cache_write {
            warnings.push(format!(
                "cache_write_1h ({}) exceeds cache_write ({}); using cache_write = {}",
                self.cache_write_1h, self.cache_write, self.cache_write_1h
            ));
            self.cache_write = self.cache_write_1h;
        }
        let input_parts = self
            .cache_read
            .saturating_add(self.cache_write)
            .saturating_add(self.input_audio);
        if input_parts > self.input {
            warnings.push(format!(
                "input_tokens ({}) is less than cache_read + cache_write + audio ({input_parts}); \
                 using input_tokens = {input_parts}",
                self.input
            ));
            self.input = input_parts;
        }
        let output_parts = self.reasoning.saturating_add(self.output_audio);
        if output_parts > self.output {
            warnings.push(format!(
                "output_tokens ({}) is less than reasoning + audio ({output_parts}); \
                 using output_tokens = {output_parts}",
                self.output
            ));
            self.output = output_parts;
        }
        warnings
    }
}

/// One token count of a [`Usage`], named as in records (`input_tokens`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `input_tokens`
    Input,
    /// `cache_read_tokens`
    CacheRead,
    /// `cache_write_tokens`
    CacheWrite,
    /// `cache_write_1h_tokens`
    CacheWrite1h,
    /// `output_tokens`
    Output,
    /// `reasoning_tokens`
    Reasoning,
    /// `input_audio_tokens`
    InputAudio,
    /// `output_audio_tokens`
    OutputAudio,
}

impl Field {
    /// Every field, in record order.
    pub const ALL: [Field; 8] = [
        Field::Input,
        Field::CacheRead,
        Field::CacheWrite,
        Field::CacheWrite1h,
        Field::Output,
        Field::Reasoning,
        Field::InputAudio,
        Field::OutputAudio,
    ];

    /// The field's name in records and the ledger.
    pub fn record_name(self) -> &'static str {
        match self {
            Field::Input => "input_tokens",
            Field::CacheRead => "cache_read_tokens",
            Field::CacheWrite => "cache_write_tokens",
            Field::CacheWrite1h => "cache_write_1h_tokens",
            Field::Output => "output_tokens",
            Field::Reasoning => "reasoning_tokens",
            Field::InputAudio => "input_audio_tokens",
            Field::OutputAudio => "output_audio_tokens",
        }
    }

    /// Whether the field can be counted from text: the wholes (input and output) can, their
    /// parts (cached, reasoning, audio tokens) cannot.
    pub fn countable(self) -> bool {
        matches!(self, Field::Input | Field::Output)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`Field`]s: the counts a provider's usage got wrong (malformed or missing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fields(u8);

impl Fields {
    /// Adds `f`.
    pub fn insert(&mut self, f: Field) {
        self.0 |= f.bit();
    }

    /// Whether `f` is in the set.
    pub fn contains(self, f: Field) -> bool {
        self.0 & f.bit() != 0
    }

    /// True for the empty set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the set holds a field that can be counted from text (input or output).
    pub fn has_countable(self) -> bool {
        self.0 & (Field::Input.bit() | Field::Output.bit()) != 0
    }

    /// Both sets' fields.
    #[must_use]
    pub fn union(self, other: Fields) -> Fields {
        Fields(self.0 | other.0)
    }

    /// The fields for which `keep` holds.
    #[must_use]
    pub fn filter(self, keep: impl Fn(Field) -> bool) -> Fields {
        let mut out = Fields::default();
        for f in self.iter().filter(|f| keep(*f)) {
            out.insert(f);
        }
        out
    }

    /// The fields, in record order.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    /// The record names, comma-separated (`input_tokens,output_tokens`).
    pub fn names(self) -> String {
        self.iter()
            .map(Field::record_name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Usage {
    /// The count of field `f`.
    pub fn get(&self, f: Field) -> u64 {
        match f {
            Field::Input => self.input,
            Field::CacheRead => self.cache_read,
            Field::CacheWrite => self.cache_write,
            Field::CacheWrite1h => self.cache_write_1h,
            Field::Output => self.output,
            Field::Reasoning => self.reasoning,
            Field::InputAudio => self.input_audio,
            Field::OutputAudio => self.output_audio,
        }
    }
}

/// What `estimated_by` starts with when the provider reported usage but some of its counts
/// were malformed or missing: `provider+estimated:<fields> (<counter>)` for counts llmledger
/// counted itself, then `+unknown:<fields>` for counts it could not (see
/// [`partial_description`]).
pub const PARTIAL_PREFIX: &str = "provider+";

/// The `estimated_by` of a provider's usage with bad counts: `estimated` were counted by
/// `counter` (its description), `unknown` could not be. `None` when neither has a field.
///
/// `provider+estimated:output_tokens (o200k_base)`,
/// `provider+unknown:input_tokens`,
/// `provider+estimated:output_tokens (o200k_base)+unknown:cache_read_tokens`.
pub fn partial_description(
    estimated: Fields,
    counter: Option<&str>,
    unknown: Fields,
) -> Option<String> {
    let mut parts = Vec::new();
    if !estimated.is_empty() {
        let by = counter.unwrap_or("tokenizer");
        parts.push(format!("estimated:{} ({by})", estimated.names()));
    }
    if !unknown.is_empty() {
        parts.push(format!("unknown:{}", unknown.names()));
    }
    (!parts.is_empty()).then(|| format!("provider+{}", parts.join("+")))
}

/// How a call's usage was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// Reported by the provider (the truth).
    Provider,
    /// Counted by llmledger's tokenizer because the provider reported nothing.
    Estimated,
    /// Replayed from LangChain's LLM cache: no request was made, it cost nothing.
    Cache,
    /// Nothing was reported and nothing could be counted.
    None,
}

impl UsageSource {
    /// The name used in records and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Provider => "provider",
            UsageSource::Estimated => "estimated",
            UsageSource::Cache => "cache",
            UsageSource::None => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_raises_wholes_to_their_parts() {
        let mut u = Usage {
            input: 10,
            cache_read: 50,
            output: 5,
            reasoning: 8,
            ..Usage::default()
        };
        let w = u.reconcile();
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("input_tokens"));
        assert_eq!(u.input, 50);
        assert_eq!(u.output, 8);
    }

    #[test]
    fn partial_descriptions_name_the_fields() {
        let mut est = Fields::default();
        est.insert(Field::Output);
        est.insert(Field::Input);
        let mut unknown = Fields::default();
        unknown.insert(Field::CacheRead);
        assert_eq!(est.names(), "input_tokens,output_tokens");
        assert_eq!(
            partial_description(est, Some("o200k_base"), Fields::default()).as_deref(),
            Some("provider+estimated:input_tokens,output_tokens (o200k_base)")
        );
        assert_eq!(
            partial_description(Fields::default(), None, unknown).as_deref(),
            Some("provider+unknown:cache_read_tokens")
        );
        let both = partial_description(est, Some("cl100k_base"), unknown).unwrap();
        assert!(both.starts_with(PARTIAL_PREFIX));
        assert!(
            both.ends_with("(cl100k_base)+unknown:cache_read_tokens"),
            "{both}"
        );
        assert_eq!(
            partial_description(Fields::default(), None, Fields::default()),
            None
        );
        assert_eq!(est.filter(|f| f == Field::Input).names(), "input_tokens");
    }

    #[test]
    fn consistent_usage_is_untouched() {
        let mut u = Usage {
            input: 100,
            cache_read: 40,
            cache_write: 10,
            cache_write_1h: 4,
            output: 20,
            reasoning: 5,
            ..Usage::default()
        };
        let before = u;
        assert!(u.reconcile().is_empty());
        assert_eq!(u, before);
        assert_eq!(u.total(), 120);
    }
}
