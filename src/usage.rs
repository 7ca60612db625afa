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
