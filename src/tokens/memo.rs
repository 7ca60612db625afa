//! The token memo: each message's count, remembered by a hash of what is counted, so that a
//! conversation's history and a repeated system prompt are tokenized once per process and
//! only new messages are counted.
//!
//! A key is a seeded 128-bit XXH3 of the encoding and the message's role, name, text parts,
//! images and tool calls (each field tagged and hashed on its own, so no two different
//! messages share a key but by a hash collision, about 2^-64 for a million messages); the
//! seed is drawn per process, so keys chosen to collide cannot be precomputed. The memo holds
//! keys and counts only, never text.
//!
//! It is a fixed table of [`Memo::max_messages`] slots (24 bytes each), 4-way set associative:
//! a new message takes an empty way of its set or the one least recently used. The table is
//! allocated on the first count that uses it (never at import) and never grows: its memory is
//! `24 x max_messages` bytes whatever is counted ([`DEFAULT_MAX_MESSAGES`]: 1.5 MiB).
//!
//! It takes no lock on lookups and inserts: a slot is three atomic words, the key's high half,
//! the key's low half XORed with the value, and the value. A reader accepts a slot only when
//! both halves of the key match, so a slot torn by two writers racing (or a fork in the middle
//! of a write) reads as a miss, and the message is counted again; nothing ever waits. Only
//! resizing ([`configure`]) swaps the table, under a lock that lookups take for reading with
//! `try_read`: while it is held (or was held by another thread when the process forked), counts
//! go around the memo instead of waiting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use xxhash_rust::xxh3::xxh3_128_with_seed;

use super::Encoding;

/// Messages remembered by default (1.5 MiB): a chat app's open conversations, or a few
/// hundred conversations of 100 turns, each message counted once.
pub const DEFAULT_MAX_MESSAGES: usize = 65_536;
/// Bytes a slot takes.
pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();
/// Ways per set.
const WAYS: usize = 4;
/// Bits of a value holding the raw count (up to about 10^12 tokens).
const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// The flag bit: the message has a name (its model's per-name overhead applies).
const NAMED_BIT: u64 = 1 << COUNT_BITS;
/// Bits of a value holding the last-use stamp (wrapping).
const STAMP_SHIFT: u32 = COUNT_BITS + 1;
const STAMP_MASK: u64 = (1 << (64 - STAMP_SHIFT)) - 1;

/// A message's tokens as the memo keeps them: the raw count of its text (role, content, name,
/// tool calls, images), without the chat format's overhead, and whether it has a name (the
/// overheads depend on the model, the raw count only on the encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MessageCount {
    /// Tokens of the message's text and parts.
    pub raw: u64,
    /// Whether it has a `name`.
    pub named: bool,
}

impl MessageCount {
    fn pack(self, stamp: u64) -> u64 {
        let named = if self.named { NAMED_BIT } else { 0 };
        self.raw.min(COUNT_MASK) | named | (stamp & STAMP_MASK) << STAMP_SHIFT
    }

    fn unpack(v: u64) -> MessageCount {
        MessageCount {
            raw: v & COUNT_MASK,
            named: v & NAMED_BIT != 0,
        }
    }
}

/// One slot: the key's high half, the key's low half XOR the value, the value. All zero when
/// empty (no key has a zero high half).
#[derive(Default)]
struct Slot {
    hi: AtomicU64,
    check: AtomicU64,
    value: AtomicU64,
}

/// The key of a message (or of a text prompt): built field by field as the message is read,
/// without copying its text.
#[derive(Clone, Debug)]
pub struct MessageKey {
    encoding: Encoding,
    /// Tagged digests of the role, name, text and image parts, in order.
    parts: Vec<u8>,
    /// Tagged digests of the tool calls, in order (apart from the parts: readers meet calls
    /// among the content blocks or after them, and the key must not depend on which).
    calls: Vec<u8>,
}

/// Field tags: no two fields of different kinds hash alike.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Tag {
    Role = 1,
    Name = 2,
    Text = 3,
    ImageLow = 4,
    Image = 5,
    CallName = 6,
    CallArguments = 7,
    Prompt = 8,
    Tools = 9,
}

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x6c6c_6d6c_u64)
    })
}

impl MessageKey {
    /// An empty key for a message counted with `encoding`.
    pub fn new(encoding: Encoding) -> MessageKey {
        MessageKey {
            encoding,
            parts: Vec::with_capacity(4 * 17),
            calls: Vec::new(),
        }
    }

    fn push(buf: &mut Vec<u8>, tag: Tag, text: &str) {
        buf.push(tag as u8);
        buf.extend_from_slice(&xxh3_128_with_seed(text.as_bytes(), seed()).to_le_bytes());
    }

    /// The message's role.
    pub fn role(&mut self, role: &str) {
        Self::push(&mut self.parts, Tag::Role, role);
    }

    /// Its name.
    pub fn name(&mut self, name: &str) {
        Self::push(&mut self.parts, Tag::Name, name);
    }

    /// A text part.
    pub fn text(&mut self, text: &str) {
        Self::push(&mut self.parts, Tag::Text, text);
    }

    /// An image part.
    pub fn image(&mut self, low: bool) {
        self.parts
            .push(if low { Tag::ImageLow } else { Tag::Image } as u8);
    }

    /// A tool call.
    pub fn tool_call(&mut self, name: &str, arguments: &str) {
        Self::push(&mut self.calls, Tag::CallName, name);
        Self::push(&mut self.calls, Tag::CallArguments, arguments);
    }

    /// Whether a tool call was added.
    pub fn has_tool_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The key of a completion prompt (a text counted without chat overhead).
    pub fn prompt(encoding: Encoding, text: &str) -> u128 {
        let mut k = MessageKey::new(encoding);
        Self::push(&mut k.parts, Tag::Prompt, text);
        k.finish()
    }

    /// The key of a request's tool definitions (`json`: their JSON text).
    pub fn tools(encoding: Encoding, json: &str) -> u128 {
        let mut k = MessageKey::new(encoding);
        Self::push(&mut k.parts, Tag::Tools, json);
        k.finish()
    }

    /// The key.
    pub fn finish(mut self) -> u128 {
        self.parts.push(0xff);
        self.parts.push(self.encoding as u8);
        self.parts.extend_from_slice(&self.calls);
        let h = xxh3_128_with_seed(&self.parts, seed());
        // No key has a zero high half: an all-zero slot is empty.
        h | 1 << 127
    }
}

/// The table: `sets x WAYS` slots.
pub struct Memo {
    slots: Box<[Slot]>,
    sets: usize,
    tick: AtomicU64,
}

impl Memo {
    /// A memo of at least `max_messages` slots (rounded up to whole sets; 0: none).
    pub fn new(max_messages: usize) -> Memo {
        let sets = max_messages.div_ceil(WAYS);
        Memo {
            slots: (0..sets * WAYS).map(|_| Slot::default()).collect(),
            sets,
            tick: AtomicU64::new(0),
        }
    }

    /// Messages it can hold.
    pub fn max_messages(&self) -> usize {
        self.slots.len()
    }

    /// Bytes its table takes (fixed: `SLOT_BYTES x max_messages`).
    pub fn bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES
    }

    /// Messages it holds now (a scan: for statistics and tests).
    pub fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.hi.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set(&self, key: u128) -> &[Slot] {
        // The key is a hash: its low bits choose the set.
        #[allow(clippy::cast_possible_truncation)]
        let i = (key as u64 as usize) % self.sets.max(1);
        &self.slots[i * WAYS..(i + 1) * WAYS]
    }

    fn stamp(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::Relaxed)
    }

    /// The count remembered for `key`, if any (a hit makes it the most recently used).
    pub fn get(&self, key: u128) -> Option<MessageCount> {
        if self.sets == 0 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        let (hi, lo) = ((key >> 64) as u64, key as u64);
        for slot in self.set(key) {
            if slot.hi.load(Ordering::Acquire) != hi {
                continue;
            }
            let value = slot.value.load(Ordering::Acquire);
            if slot.check.load(Ordering::Acquire) ^ value != lo {
                continue;
            }
            let count = MessageCount::unpack(value);
            let fresh = count.pack(self.stamp());
            slot.value.store(fresh, Ordering::Release);
            slot.check.store(lo ^ fresh, Ordering::Release);
            return Some(count);
        }
        None
    }

    /// Remembers `count` for `key`, in an empty way of its set, else the least recently used.
    pub fn insert(&self, key: u128, count: MessageCount) {
        if self.sets == 0 {
            return;
        }
        #[allow(clippy::cast_possible_truncation)]
        let (hi, lo) = ((key >> 64) as u64, key as u64);
        let now = self.stamp();
        let set = self.set(key);
        let mut victim = &set[0];
        let mut oldest = 0;
        for slot in set {
            let slot_hi = slot.hi.load(Ordering::Relaxed);
            if slot_hi == 0 || slot_hi == hi {
                victim = slot;
                break;
            }
            let stamp = slot.value.load(Ordering::Relaxed) >> STAMP_SHIFT;
            let age = now.wrapping_sub(stamp) & STAMP_MASK;
            if age >= oldest {
                oldest = age;
                victim = slot;
            }
        }
        let value = count.pack(now);
        // Invalidate first: a reader between these stores sees a key that does not check.
        victim.hi.store(hi, Ordering::Release);
        victim.value.store(value, Ordering::Release);
        victim.check.store(lo ^ value, Ordering::Release);
    }
}

/// Lookups and inserts that found or did not find a count, process-wide.
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

/// The process's memo (`None` until first used, or when configured to 0) and its configured
/// size.
struct Global {
    table: RwLock<Option<Arc<Memo>>>,
    max_messages: std::sync::atomic::AtomicUsize,
}

fn global() -> &'static Global {
    static GLOBAL: OnceLock<Global> = OnceLock::new();
    GLOBAL.get_or_init(|| Global {
        table: RwLock::new(None),
        max_messages: std::sync::atomic::AtomicUsize::new(DEFAULT_MAX_MESSAGES),
    })
}

/// Runs `f` with the process's memo, allocating it on first use; `None` when the memo is off
/// or being resized (the caller counts without it).
fn with_memo<T>(f: impl FnOnce(&Memo) -> T) -> Option<T> {
    let g = global();
    {
        let table = g.table.try_read()?;
        if let Some(m) = table.as_ref() {
            return Some(f(m));
        }
    }
    let max = g.max_messages.load(Ordering::Relaxed);
    if max == 0 {
        return None;
    }
    let mut table = g.table.try_write()?;
    let memo = table
        .get_or_insert_with(|| Arc::new(Memo::new(max)))
        .clone();
    drop(table);
    Some(f(&memo))
}

/// Sets the process's memo to hold `max_messages` messages (0 turns it off); what it held is
/// forgotten when the size changes.
pub fn configure(max_messages: usize) {
    let g = global();
    let slots = max_messages.div_ceil(WAYS) * WAYS;
    let old = {
        let mut table = g.table.write();
        g.max_messages.store(max_messages, Ordering::Relaxed);
        match table.as_ref() {
            Some(m) if m.max_messages() == slots => None,
            _ => table.take(),
        }
    };
    drop(old);
}

/// What the process's memo holds, for `token_memo_info()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoStats {
    /// Messages it can hold (the configured bound, rounded up to whole sets).
    pub max_messages: usize,
    /// Messages it holds.
    pub messages: usize,
    /// Bytes its table takes (0 before first use).
    pub bytes: usize,
    /// The most bytes it can take: `SLOT_BYTES x max_messages`.
    pub max_bytes: usize,
    /// Counts found in it.
    pub hits: u64,
    /// Counts not found (tokenized, then remembered).
    pub misses: u64,
}

/// The process's memo now.
pub fn stats() -> MemoStats {
    let g = global();
    let configured = g.max_messages.load(Ordering::Relaxed).div_ceil(WAYS) * WAYS;
    // Never waits (see `with_memo`): a table being swapped reads as empty.
    let (messages, bytes) = g
        .table
        .try_read()
        .and_then(|t| t.as_ref().map(|m| (m.len(), m.bytes())))
        .unwrap_or((0, 0));
    MemoStats {
        max_messages: configured,
        messages,
        bytes,
        max_bytes: configured * SLOT_BYTES,
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
    }
}

/// The count remembered for `key` in the process's memo.
pub fn lookup(key: u128) -> Option<MessageCount> {
    let found = with_memo(|m| m.get(key)).flatten();
    if found.is_some() {
        HITS.fetch_add(1, Ordering::Relaxed);
    } else {
        MISSES.fetch_add(1, Ordering::Relaxed);
    }
    found
}

/// Remembers `count` for `key` in the process's memo.
pub fn remember(key: u128, count: MessageCount) {
    with_memo(|m| m.insert(key, count));
}

/// The count for `key`: remembered, else `count()`, then remembered.
pub fn get_or_count(key: u128, count: impl FnOnce() -> MessageCount) -> MessageCount {
    if let Some(c) = lookup(key) {
        return c;
    }
    let c = count();
    remember(key, c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> u128 {
        let mut k = MessageKey::new(Encoding::O200kBase);
        k.role("user");
        k.text(&format!("message {i}"));
        k.finish()
    }

    #[test]
    fn keys_tell_fields_apart() {
        let k = |f: &dyn Fn(&mut MessageKey)| {
            let mut k = MessageKey::new(Encoding::O200kBase);
            f(&mut k);
            k.finish()
        };
        let a = k(&|k| {
            k.role("user");
            k.text("ab");
        });
        assert_eq!(
            a,
            k(&|k| {
                k.role("user");
                k.text("ab");
            })
        );
        let others = [
            k(&|k| {
                k.role("user");
                k.text("a");
                k.text("b");
            }),
            k(&|k| {
                k.role("user");
                k.name("ab");
            }),
            k(&|k| {
                k.role("system");
                k.text("ab");
            }),
            k(&|k| {
                k.role("user");
                k.text("ab");
                k.image(true);
            }),
            k(&|k| {
                k.role("user");
                k.text("ab");
                k.tool_call("f", "{}");
            }),
            MessageKey::prompt(Encoding::O200kBase, "ab"),
        ];
        for o in others {
            assert_ne!(a, o);
        }
        let mut cl = MessageKey::new(Encoding::Cl100kBase);
        cl.role("user");
        cl.text("ab");
        assert_ne!(a, cl.finish(), "the encoding is part of the key");
        // Tool calls may come before or after the text parts: same key.
        let before = k(&|k| {
            k.role("assistant");
            k.tool_call("f", "{}");
            k.text("x");
        });
        let after = k(&|k| {
            k.role("assistant");
            k.text("x");
            k.tool_call("f", "{}");
        });
        assert_eq!(before, after);
    }

    #[test]
    fn remembers_and_forgets_the_least_recently_used() {
        let m = Memo::new(8);
        assert_eq!(m.max_messages(), 8);
        let c = |raw| MessageCount {
            raw,
            named: raw % 2 == 0,
        };
        for i in 0..8 {
            m.insert(key(i), c(i));
        }
        for i in 0..8 {
            if let Some(got) = m.get(key(i)) {
                assert_eq!(got, c(i));
            }
        }
        assert_eq!(m.get(key(1000)), None);
        // A full table keeps at most its size.
        for i in 0..1000 {
            m.insert(key(i), c(i));
        }
        assert!(m.len() <= 8);
        // The entry just used survives newer ones in its set.
        let hot = key(5000);
        m.insert(hot, c(7));
        for i in 6000..6100 {
            assert_eq!(m.get(hot), Some(c(7)));
            m.insert(key(i), c(1));
        }
        let off = Memo::new(0);
        off.insert(hot, c(1));
        assert_eq!(off.get(hot), None);
    }

    #[test]
    fn a_million_distinct_messages_stay_within_the_bound() {
        let m = Memo::new(DEFAULT_MAX_MESSAGES);
        let bytes = m.bytes();
        assert_eq!(bytes, DEFAULT_MAX_MESSAGES * SLOT_BYTES);
        assert_eq!(SLOT_BYTES, 24);
        for i in 0..1_000_000u64 {
            let k = key(i);
            m.insert(
                k,
                MessageCount {
                    raw: i,
                    named: false,
                },
            );
            assert_eq!(m.get(k).map(|c| c.raw), Some(i));
        }
        assert!(m.len() <= DEFAULT_MAX_MESSAGES);
        assert!(m.len() > DEFAULT_MAX_MESSAGES * 9 / 10, "{}", m.len());
        // The table never grew: no memory per message but its slot.
        assert_eq!(m.bytes(), bytes);
        // The most recent messages are remembered, with their own counts.
        let recent = (999_000..1_000_000u64)
            .filter(|&i| {
                m.get(key(i))
                    == Some(MessageCount {
                        raw: i,
                        named: false,
                    })
            })
            .count();
        assert!(recent > 990, "{recent}");
    }

    #[test]
    fn counts_survive_threads_racing_on_one_set() {
        let m = Arc::new(Memo::new(4));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let k = key(i % 16);
                        let want = MessageCount {
                            raw: i % 16,
                            named: false,
                        };
                        if let Some(got) = m.get(k) {
                            assert_eq!(got, want, "thread {t}");
                        }
                        m.insert(k, want);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
