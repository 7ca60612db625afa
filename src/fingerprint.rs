//! Fingerprints of a call's request, taken at its start: keyed hashes of the prompt's prefixes
//! and of the whole request, never the text. What the advisor (`crate::advise`) needs to find
//! repeated prompt prefixes (a provider's prompt cache would have served them) and identical
//! requests (a response cache would have) from a ledger alone.
//!
//! The prompt is hashed once, front to back: tool definitions first (providers put them before the messages in the cached prefix), then each
//! message (role, name, text parts, tool calls, each length-prefixed so no two prompts hash
//! alike by shifting text between fields). After the tools and after each message the hash so
//! far is one [`PrefixMark`], with the prompt's bytes up to there: two calls whose marks agree
//! share that prefix. The request hash adds the model and the request's sampling parameters.
//!
//! The text streams through foldhash (seeded from the secret; several GB/s, so a long prompt
//! costs the start hook well under a microsecond), and each mark is that 64-bit state run
//! through SipHash-1-3 under the 128-bit secret: what is stored is a keyed PRF of the prefix.
//! Marks are comparable within one llmledger build (foldhash's output may change between its
//! versions; the rules look back an hour at most).
//!
//! The secret is per ledger (a sidecar key file, owner-only, see
//! `crate::store::fingerprint_key`), so a ledger handed around does not let anyone confirm a
//! guessed prompt by hashing it; readers compare hashes and never need the key.

use std::fmt::Write;
use std::hash::{BuildHasher, Hasher};

use foldhash::fast::{FixedState, FoldHasher};
use siphasher::sip::SipHasher13;

use crate::tokens::{ContentPart, Prompt};

/// Prefix marks kept per call at most: the first [`MARKS_HEAD`] (tools, system prompt, first
/// turns: what different conversations share) and the last ones (the previous turn of a
/// conversation: what its next turn repeats).
pub const MAX_MARKS: usize = 16;
const MARKS_HEAD: usize = 4;

/// A 128-bit fingerprint secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(pub [u64; 2]);

impl Key {
    /// A fresh random key.
    pub fn random() -> std::io::Result<Key> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Key::from_bytes(b))
    }

    /// The key of 16 bytes.
    pub fn from_bytes(b: [u8; 16]) -> Key {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&b[..8]);
        hi.copy_from_slice(&b[8..]);
        Key([u64::from_le_bytes(lo), u64::from_le_bytes(hi)])
    }

    /// As 32 hex digits (the key file's text).
    pub fn to_hex(self) -> String {
        format!("{:016x}{:016x}", self.0[0], self.0[1])
    }

    /// From 32 hex digits.
    pub fn from_hex(s: &str) -> Option<Key> {
        let s = s.trim();
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        Some(Key([
            u64::from_str_radix(&s[..16], 16).ok()?,
            u64::from_str_radix(&s[16..], 16).ok()?,
        ]))
    }
}

/// The prompt hashed up to a point: after the tools, or after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixMark {
    /// The keyed hash of the prompt so far.
    pub hash: u64,
    /// The prompt's text bytes so far (of `Fingerprint::prompt_bytes`).
    pub bytes: u64,
}

/// A call's request fingerprints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// The keyed hash of the whole request: model, prompt, sampling parameters.
    pub request: u64,
    /// The prompt's prefixes, shortest first (at most [`MAX_MARKS`]).
    pub prefixes: Vec<PrefixMark>,
    /// The prompt's text bytes in all (what a mark's `bytes` is a share of).
    pub prompt_bytes: u64,
}

impl Fingerprint {
    /// `hex:bytes` per mark, space-separated (how the SQLite ledger stores the marks).
    pub fn prefixes_text(&self) -> String {
        let mut s = String::with_capacity(self.prefixes.len() * 24);
        for (i, m) in self.prefixes.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let _ = write!(s, "{:016x}:{}", m.hash, m.bytes);
        }
        s
    }

    /// The marks of [`Fingerprint::prefixes_text`]; `None` when malformed.
    pub fn parse_prefixes(text: &str) -> Option<Vec<PrefixMark>> {
        parse_marks_as_written(text.as_bytes()).or_else(|| parse_marks(text))
    }
}

/// Each byte's value as a hex digit, 16 for bytes that are none: a table, not branches
/// (hashes' digits are random, so a branch per digit is mispredicted a third of the time).
// `From` is not const: the widening `as` casts are exact.
#[allow(clippy::cast_lossless)]
const HEX: [u8; 256] = {
    let mut t = [16u8; 256];
    let mut i = 0u8;
    while i < 10 {
        t[(b'0' + i) as usize] = i;
        i += 1;
    }
    let mut i = 0u8;
    while i < 6 {
        t[(b'a' + i) as usize] = 10 + i;
        t[(b'A' + i) as usize] = 10 + i;
        i += 1;
    }
    t
};

/// The value of an ASCII hex digit.
fn hex_digit(c: u8) -> Option<u64> {
    let d = HEX[usize::from(c)];
    (d < 16).then_some(u64::from(d))
}

/// [`Fingerprint::parse_prefixes`] of text exactly as [`Fingerprint::prefixes_text`] writes
/// it (`hex:bytes`, one space apart), in one pass; `None` for anything else, which
/// [`parse_marks`] then reads (or refuses).
fn parse_marks_as_written(text: &[u8]) -> Option<Vec<PrefixMark>> {
    // Marks are at least 4 bytes apart (`h:1 `): room for all of them, one allocation.
    let mut marks = Vec::with_capacity(text.len() / 20 + 1);
    let mut i = 0;
    loop {
        let (mut hash, from) = (0u64, i);
        while let Some(d) = text.get(i).copied().and_then(hex_digit) {
            hash = hash << 4 | d;
            i += 1;
        }
        if i == from || i - from > 16 || text.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        let (mut bytes, from) = (0u64, i);
        while let Some(&c) = text.get(i).filter(|c| c.is_ascii_digit()) {
            bytes = bytes.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            i += 1;
        }
        if i == from {
            return None;
        }
        marks.push(PrefixMark { hash, bytes });
        match text.get(i) {
            None => return Some(marks),
            Some(b' ') if i + 1 < text.len() => i += 1,
            Some(_) => return None,
        }
    }
}

/// [`Fingerprint::parse_prefixes`] of any text: marks split at ASCII whitespace.
fn parse_marks(text: &str) -> Option<Vec<PrefixMark>> {
    text.split_ascii_whitespace()
        .map(|m| {
            let (h, b) = m.split_once(':')?;
            Some(PrefixMark {
                hash: u64::from_str_radix(h, 16).ok()?,
                bytes: b.parse().ok()?,
            })
        })
        .collect()
}

impl Fingerprint {
    /// The request hash as 16 hex digits.
    pub fn request_text(&self) -> String {
        format!("{:016x}", self.request)
    }

    /// A request hash from 16 hex digits.
    pub fn parse_request(text: &str) -> Option<u64> {
        let b = text.as_bytes();
        if b.len() == 16 {
            // As written: no sign, no spaces. Digits or'd together: one test for them all.
            let (mut h, mut bad) = (0u64, 0u8);
            for c in b {
                let d = HEX[usize::from(*c)];
                bad |= d & 16;
                h = h << 4 | u64::from(d & 15);
            }
            if bad == 0 {
                return Some(h);
            }
        }
        u64::from_str_radix(text.trim(), 16).ok()
    }
}

/// The keyed hash of the text so far.
fn keyed(key: Key, h: &FoldHasher<'_>) -> u64 {
    let mut s = SipHasher13::new_with_keys(key.0[0], key.0[1]);
    s.write_u64(h.finish());
    s.finish()
}

/// Feeds one length-prefixed field.
fn field(h: &mut FoldHasher<'_>, bytes: &[u8]) {
    h.write_u64(bytes.len() as u64);
    h.write(bytes);
}

/// One part of a message's content, as [`Hashing::message`] takes it.
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    /// Text.
    Text(&'a str),
    /// An image (`low`: sent at `detail: low`).
    Image {
        /// Sent at low detail.
        low: bool,
    },
}

/// Keeps the first [`MARKS_HEAD`] marks and the last ones, [`MAX_MARKS`] in all.
fn push_mark(marks: &mut Vec<PrefixMark>, mark: PrefixMark) {
    if marks.len() == MAX_MARKS {
        marks.remove(MARKS_HEAD);
    }
    marks.push(mark);
}

/// A request's fingerprints being computed, front to back: the tools, then each message (or
/// completion prompt), then [`Hashing::finish`] with the model and parameters. It hashes
/// borrowed text: the binding feeds it the Python strings' own UTF-8, with no copy.
pub struct Hashing {
    key: Key,
    h: FoldHasher<'static>,
    marks: Vec<PrefixMark>,
    bytes: u64,
}

impl Hashing {
    /// A request's hashing under `key`.
    pub fn new(key: Key) -> Hashing {
        Hashing {
            key,
            h: FixedState::with_seed(key.0[0] ^ key.0[1].rotate_left(32)).build_hasher(),
            marks: Vec::new(),
            bytes: 0,
        }
    }

    fn mark(&mut self) {
        let mark = PrefixMark {
            hash: keyed(self.key, &self.h),
            bytes: self.bytes,
        };
        push_mark(&mut self.marks, mark);
    }

    /// The tool definitions, each as its JSON text (first: providers put them before the
    /// messages in the cached prefix). None: no mark.
    pub fn tools<'a>(&mut self, tools: impl IntoIterator<Item = &'a str>) {
        let mut any = false;
        for text in tools {
            field(&mut self.h, text.as_bytes());
            self.bytes += text.len() as u64;
            any = true;
        }
        if any {
            self.mark();
        }
    }

    /// One chat message: its role, name, content parts and tool calls (name, arguments).
    pub fn message<'a>(
        &mut self,
        role: &str,
        name: Option<&str>,
        parts: impl ExactSizeIterator<Item = Part<'a>>,
        tool_calls: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) {
        let h = &mut self.h;
        field(h, role.as_bytes());
        field(h, name.unwrap_or_default().as_bytes());
        h.write_u64(parts.len() as u64);
        for p in parts {
            match p {
                Part::Text(t) => {
                    h.write_u8(0);
                    field(h, t.as_bytes());
                    self.bytes += t.len() as u64;
                }
                Part::Image { low } => h.write_u8(if low { 1 } else { 2 }),
            }
        }
        h.write_u64(tool_calls.len() as u64);
        for (name, arguments) in tool_calls {
            field(h, name.as_bytes());
            field(h, arguments.as_bytes());
            self.bytes += (name.len() + arguments.len()) as u64;
        }
        self.mark();
    }

    /// One completion prompt.
    pub fn text(&mut self, prompt: &str) {
        field(&mut self.h, prompt.as_bytes());
        self.bytes += prompt.len() as u64;
        self.mark();
    }

    /// The fingerprints, with the request's `model` and `params` (its sampling parameters as
    /// the binding rendered them: any bytes that are equal for equal parameters).
    pub fn finish(mut self, model: Option<&str>, params: &[u8]) -> Fingerprint {
        self.h.write_u8(0xff);
        field(&mut self.h, model.unwrap_or_default().as_bytes());
        field(&mut self.h, params);
        Fingerprint {
            request: keyed(self.key, &self.h),
            prefixes: self.marks,
            prompt_bytes: self.bytes,
        }
    }
}

/// The fingerprints of a request: `prompt` for `model`, with `params` (see
/// [`Hashing::finish`]).
pub fn of(key: Key, prompt: &Prompt, model: Option<&str>, params: &[u8]) -> Fingerprint {
    let mut h = Hashing::new(key);
    match prompt {
        Prompt::Chat { messages, tools } => {
            let texts: Vec<String> = tools.iter().map(ToString::to_string).collect();
            h.tools(texts.iter().map(String::as_str));
            for m in messages {
                h.message(
                    &m.role,
                    m.name.as_deref(),
                    m.content.iter().map(|p| match p {
                        ContentPart::Text(t) => Part::Text(t),
                        ContentPart::Image { low } => Part::Image { low: *low },
                    }),
                    m.tool_calls
                        .iter()
                        .map(|c| (c.name.as_str(), c.arguments.as_str())),
                );
            }
        }
        Prompt::Text(prompts) => {
            for p in prompts {
                h.text(p);
            }
        }
    }
    h.finish(model, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::ChatMessage;

    const K: Key = Key([1, 2]);
    /// What [`pinned_prompts`] fingerprint to under the pinned key: `request bytes marks`.
    const PINNED: [&str; 4] = [
        "14ef86b379cc7224 7 5bcce1fffee5dea0:5 a2b45aa53173c98c:7",
        "7ef4351b09bc0843 75 a8e3c07a1b34a55d:48 8d5cbc7bd41ec1f2:49 0d635cff5856fe30:75",
        "5efbf3f014fcfb9a 230 3d6f2a3f69d9dbf5:11 66508045c1e055b1:22 5b26061183ac76b9:33 675b2a55d9668efa:44 daf9e787e6d8395c:99 91ca24c03038b7f4:110 b0d1715434c628df:122 eb605343a02f8401:134 06887c76d7a0f7b8:146 e7886ee74c1fc25d:158 2b7ff965da7a7b7c:170 a427f8961de9cac4:182 758e8e93b3f7119f:194 da5a9b94985e8d03:206 45e901e6dded8302:218 d1bdce7a2654404c:230",
        "c3dddbba6adeca14 3 9abab9de3f625089:1 43380fd871a3d059:3",
    ];

    #[test]
    fn marks_as_written_parse_as_any_marks_do() {
        // The one-pass reader answers as the general one wherever it answers at all, and
        // leaves the rest (other spacing, signs, long hex, overflow, junk) to it.
        for text in [
            "",
            "0000000000000007:10",
            "f2a74de452e6b438:6000 8A6A63EC24EDE6A4:6400",
            "7:1 8:2 9:3",
            "7:1  8:2",
            " 7:1",
            "7:1 ",
            "7:1\t8:2",
            "+7:1",
            "7:+1",
            "00000000000000007:1",
            "ffffffffffffffff:18446744073709551615",
            "ffffffffffffffff:18446744073709551616",
            "1ffffffffffffffff:1",
            "7:",
            ":1",
            "7",
            "7:1:2",
            "g:1",
            "7:1x",
            "é:1",
        ] {
            let general = parse_marks(text);
            if let Some(fast) = parse_marks_as_written(text.as_bytes()) {
                assert_eq!(Some(fast), general, "{text:?}");
            }
            assert_eq!(Fingerprint::parse_prefixes(text), general, "{text:?}");
        }
        for text in [
            "6b4cb2424a23d596",
            "6B4CB2424A23D596",
            "ffffffffffffffff",
            "+b4cb2424a23d596",
            " 6b4cb2424a23d5 ",
            "6b4cb2424a23d59g",
            "000000000000000000ff",
            "ff",
            "",
        ] {
            assert_eq!(
                Fingerprint::parse_request(text),
                u64::from_str_radix(text.trim(), 16).ok(),
                "{text:?}"
            );
        }
        for f in pinned_prompts_marks() {
            assert_eq!(parse_marks_as_written(f.as_bytes()), parse_marks(&f));
            assert!(parse_marks_as_written(f.as_bytes()).is_some(), "{f}");
        }
    }

    /// The marks of [`PINNED`], as the ledger stores them.
    fn pinned_prompts_marks() -> Vec<String> {
        PINNED
            .iter()
            .map(|p| p.splitn(3, ' ').nth(2).unwrap().to_string())
            .collect()
    }

    fn chat(msgs: &[(&str, &str)]) -> Prompt {
        Prompt::Chat {
            messages: msgs.iter().map(|(r, t)| ChatMessage::text(r, t)).collect(),
            tools: Vec::new(),
        }
    }

    #[test]
    fn shared_prefixes_share_marks_and_nothing_else() {
        let a = of(
            K,
            &chat(&[("system", "rules"), ("user", "q1")]),
            Some("m"),
            b"",
        );
        let b = of(
            K,
            &chat(&[("system", "rules"), ("user", "q2")]),
            Some("m"),
            b"",
        );
        assert_eq!(a.prefixes[0], b.prefixes[0]);
        assert_eq!(a.prefixes[0].bytes, 5);
        assert_ne!(a.prefixes[1].hash, b.prefixes[1].hash);
        assert_ne!(a.request, b.request);
        assert_eq!(a.prompt_bytes, 7);
        // Text moved between messages is another prompt.
        let c = of(
            K,
            &chat(&[("system", "rule"), ("user", "sq1")]),
            Some("m"),
            b"",
        );
        assert_ne!(c.prefixes[1].hash, a.prefixes[1].hash);
    }

    #[test]
    fn request_hash_covers_model_params_and_key() {
        let p = chat(&[("user", "q")]);
        let base = of(K, &p, Some("m"), b"t=0");
        assert_eq!(base, of(K, &p, Some("m"), b"t=0"));
        assert_ne!(base.request, of(K, &p, Some("n"), b"t=0").request);
        assert_ne!(base.request, of(K, &p, Some("m"), b"t=1").request);
        assert_ne!(base.request, of(Key([3, 4]), &p, Some("m"), b"t=0").request);
        // The prefix of the same prompt does not depend on the model.
        assert_eq!(base.prefixes, of(K, &p, Some("n"), b"t=0").prefixes);
    }

    #[test]
    fn long_conversations_keep_head_and_tail_marks() {
        let msgs: Vec<(String, String)> =
            (0..40).map(|i| ("user".into(), format!("m{i}"))).collect();
        let refs: Vec<(&str, &str)> = msgs.iter().map(|(r, t)| (r.as_str(), t.as_str())).collect();
        let f = of(K, &chat(&refs), None, b"");
        assert_eq!(f.prefixes.len(), MAX_MARKS);
        assert_eq!(f.prefixes[0].bytes, 2);
        assert_eq!(f.prefixes.last().unwrap().bytes, f.prompt_bytes);
    }

    /// Pinned values for a fixed key: what ledgers store must not change when how the
    /// fingerprint is computed does (the advisor compares hashes across calls and hosts).
    fn pinned_prompts() -> Vec<(Prompt, Option<&'static str>, &'static [u8])> {
        let mut tooled = ChatMessage::text("assistant", "calling");
        tooled.name = Some("bot".into());
        tooled.content.push(ContentPart::Image { low: true });
        tooled.content.push(ContentPart::Image { low: false });
        tooled.tool_calls.push(crate::tokens::ToolCall {
            name: "lookup".into(),
            arguments: "{\"q\":\"caf\u{e9}\"}".into(),
        });
        let long: Vec<ChatMessage> = (0..20)
            .map(|i| ChatMessage::text("user", &format!("turn {i} \u{1f600}")))
            .collect();
        vec![
            (
                chat(&[("system", "rules"), ("user", "q1")]),
                Some("gpt-4o"),
                b"t=0",
            ),
            (
                Prompt::Chat {
                    messages: vec![ChatMessage::text("system", "s"), tooled],
                    tools: vec![
                        serde_json::json!({"type": "function", "function": {"name": "lookup"}}),
                    ],
                },
                Some("claude"),
                b"",
            ),
            (
                Prompt::Chat {
                    messages: long,
                    tools: Vec::new(),
                },
                None,
                b"p",
            ),
            (
                Prompt::Text(vec!["a".into(), "bc".into()]),
                Some("davinci"),
                b"",
            ),
        ]
    }

    #[test]
    fn pinned_fingerprints_do_not_change() {
        let key = Key([0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210]);
        let got: Vec<String> = pinned_prompts()
            .iter()
            .map(|(p, m, params)| {
                let f = of(key, p, *m, params);
                format!(
                    "{} {} {}",
                    f.request_text(),
                    f.prompt_bytes,
                    f.prefixes_text()
                )
            })
            .collect();
        let want: [&str; 4] = PINNED;
        assert_eq!(got, want);
    }

    #[test]
    fn text_round_trips() {
        let f = of(K, &chat(&[("system", "s"), ("user", "q")]), None, b"");
        assert_eq!(
            Fingerprint::parse_prefixes(&f.prefixes_text()).unwrap(),
            f.prefixes
        );
        assert_eq!(
            Fingerprint::parse_request(&f.request_text()),
            Some(f.request)
        );
        let k = Key([0xdead, 0xbeef]);
        assert_eq!(Key::from_hex(&k.to_hex()), Some(k));
        assert_eq!(Key::from_hex("xyz"), None);
    }
}
