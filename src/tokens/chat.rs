//! Chat prompts as OpenAI bills them: every message costs its text plus a fixed overhead for
//! the chat format, a name adds a token, every reply is primed with three tokens, and tool
//! definitions are rendered into the prompt (OpenAI cookbook, "How to count tokens with
//! tiktoken"; the tests hold the counts the API reported for its examples).

use serde_json::Value;

use super::memo::{self, MessageCount, MessageKey};
use super::{Counter, Encoding};

/// Tokens that prime every reply (`<|start|>assistant<|message|>`).
const REPLY_PRIMING: i64 = 3;
/// An image part without size information, at `detail: low` (OpenAI's flat rate).
pub const IMAGE_TOKENS_LOW: i64 = 85;
/// An image part without size information, at any other detail: a 1024x1024 image at high
/// detail (85 + 4 tiles x 170). An estimate: the real count depends on the image's size.
pub const IMAGE_TOKENS_DEFAULT: i64 = 765;
/// Formatting tokens around each tool call an assistant message carries (an estimate).
const TOOL_CALL_OVERHEAD: i64 = 3;

/// One part of a message's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentPart {
    /// Text.
    Text(String),
    /// An image; `low` when sent with `detail: low`.
    Image {
        /// Sent at low detail.
        low: bool,
    },
}

/// A tool call made by an assistant message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolCall {
    /// The function's name.
    pub name: String,
    /// Its arguments, as JSON text.
    pub arguments: String,
}

/// A chat message reduced to what is billed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, ...
    pub role: String,
    /// The participant's name, if any.
    pub name: Option<String>,
    /// Text and image parts.
    pub content: Vec<ContentPart>,
    /// Tool calls (assistant messages).
    pub tool_calls: Vec<ToolCall>,
}

/// What a reader of messages reports, field by field, in reading order: the same reader
/// builds a [`ChatMessage`] (to count) or a [`MessageKey`] (to look the count up in the memo,
/// without copying any text).
pub trait MessageSink {
    /// The message's role (reported first).
    fn role(&mut self, role: &str);
    /// Its name.
    fn name(&mut self, name: &str);
    /// A text part.
    fn text(&mut self, text: &str);
    /// An image part (`low`: sent at `detail: low`).
    fn image(&mut self, low: bool);
    /// A tool call, with its arguments as JSON text.
    fn tool_call(&mut self, name: &str, arguments: &str);
    /// Whether a tool call was reported (LangChain messages may carry their calls twice).
    fn has_tool_calls(&self) -> bool;
}

impl MessageSink for ChatMessage {
    fn role(&mut self, role: &str) {
        role.clone_into(&mut self.role);
    }
    fn name(&mut self, name: &str) {
        self.name = Some(name.to_string());
    }
    fn text(&mut self, text: &str) {
        self.content.push(ContentPart::Text(text.to_string()));
    }
    fn image(&mut self, low: bool) {
        self.content.push(ContentPart::Image { low });
    }
    fn tool_call(&mut self, name: &str, arguments: &str) {
        self.tool_calls.push(ToolCall {
            name: name.to_string(),
            arguments: arguments.to_string(),
        });
    }
    fn has_tool_calls(&self) -> bool {
        !self.tool_calls.is_empty()
    }
}

impl MessageSink for MessageKey {
    fn role(&mut self, role: &str) {
        MessageKey::role(self, role);
    }
    fn name(&mut self, name: &str) {
        MessageKey::name(self, name);
    }
    fn text(&mut self, text: &str) {
        MessageKey::text(self, text);
    }
    fn image(&mut self, low: bool) {
        MessageKey::image(self, low);
    }
    fn tool_call(&mut self, name: &str, arguments: &str) {
        MessageKey::tool_call(self, name, arguments);
    }
    fn has_tool_calls(&self) -> bool {
        MessageKey::has_tool_calls(self)
    }
}

impl ChatMessage {
    /// A message with text content.
    pub fn text(role: &str, text: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: vec![ContentPart::Text(text.into())],
            ..ChatMessage::default()
        }
    }

    /// Bytes of text the message holds (to decide whether counting is worth a thread hop).
    pub fn text_len(&self) -> usize {
        let parts: usize = self
            .content
            .iter()
            .map(|p| match p {
                ContentPart::Text(t) => t.len(),
                ContentPart::Image { .. } => 0,
            })
            .sum();
        let calls: usize = self
            .tool_calls
            .iter()
            .map(|c| c.name.len() + c.arguments.len())
            .sum();
        parts + calls + self.role.len() + self.name.as_ref().map_or(0, String::len)
    }

    /// Reports the message to `sink`, field by field, as a reader of Python messages does.
    pub fn report(&self, sink: &mut impl MessageSink) {
        sink.role(&self.role);
        if let Some(name) = &self.name {
            sink.name(name);
        }
        for part in &self.content {
            match part {
                ContentPart::Text(t) => sink.text(t),
                ContentPart::Image { low } => sink.image(*low),
            }
        }
        for call in &self.tool_calls {
            sink.tool_call(&call.name, &call.arguments);
        }
    }

    /// The message's key in the token memo, for `encoding`.
    pub fn key(&self, encoding: Encoding) -> u128 {
        let mut key = MessageKey::new(encoding);
        self.report(&mut key);
        key.finish()
    }

    /// The message's tokens with `encoding`, tokenized now (not through the memo): its text,
    /// images and tool calls, without the chat format's overhead.
    pub fn count_raw(&self, enc: Encoding) -> MessageCount {
        let mut n = raw(enc, &self.role);
        for part in &self.content {
            n += match part {
                ContentPart::Text(t) => raw(enc, t),
                ContentPart::Image { low: true } => IMAGE_TOKENS_LOW,
                ContentPart::Image { low: false } => IMAGE_TOKENS_DEFAULT,
            };
        }
        if let Some(name) = &self.name {
            n += raw(enc, name);
        }
        for call in &self.tool_calls {
            n += TOOL_CALL_OVERHEAD + raw(enc, &call.name) + raw(enc, &call.arguments);
        }
        MessageCount {
            raw: u64::try_from(n).unwrap_or(0),
            named: self.name.is_some(),
        }
    }

    /// The message's tokens with `encoding`, through the process's memo (tokenized only the
    /// first time it is seen).
    pub fn count_memo(&self, enc: Encoding) -> MessageCount {
        memo::get_or_count(self.key(enc), || self.count_raw(enc))
    }
}

fn raw(enc: Encoding, text: &str) -> i64 {
    i64::try_from(enc.count(text)).unwrap_or(i64::MAX)
}

/// Tokens of `messages` (and `tools`, OpenAI or Anthropic format) as a prompt to the model
/// `counter` counts for, reply priming included. Each message is counted through the
/// process's memo: a message seen before (in this conversation's earlier calls, or a repeated
/// system prompt) is not tokenized again.
pub fn count_messages(counter: &Counter, messages: &[ChatMessage], tools: &[Value]) -> u64 {
    let counts: Vec<MessageCount> = messages
        .iter()
        .map(|m| m.count_memo(counter.encoding))
        .collect();
    chat_total(counter, &counts, tools)
}

/// [`count_messages`] without the memo: every message tokenized now (the reference the
/// memo's tests compare with).
pub fn count_messages_uncached(
    counter: &Counter,
    messages: &[ChatMessage],
    tools: &[Value],
) -> u64 {
    let counts: Vec<MessageCount> = messages
        .iter()
        .map(|m| m.count_raw(counter.encoding))
        .collect();
    total_of(counter, &counts, tools_raw(counter.encoding, tools))
}

/// A chat prompt's tokens from its messages' counts: the chat format's overhead per message
/// and name, the reply priming, and `tools`, scaled for the model `counter` counts for.
pub fn chat_total(counter: &Counter, counts: &[MessageCount], tools: &[Value]) -> u64 {
    total_of(counter, counts, tools_memo(counter.encoding, tools))
}

/// A chat prompt's tokens from its messages' counts and its tools' tokens.
fn total_of(counter: &Counter, counts: &[MessageCount], tools: i64) -> u64 {
    let mut n: i64 = 0;
    for c in counts {
        n += counter.per_message + i64::try_from(c.raw).unwrap_or(i64::MAX / 4);
        if c.named {
            n += counter.per_name;
        }
    }
    if !counts.is_empty() {
        n += REPLY_PRIMING;
    }
    n += tools;
    counter.scale(u64::try_from(n).unwrap_or(0))
}

/// [`tools_raw`] through the process's memo: an agent sends the same tool definitions with
/// every call.
fn tools_memo(enc: Encoding, tools: &[Value]) -> i64 {
    if tools.is_empty() {
        return 0;
    }
    let json = serde_json::to_string(tools).unwrap_or_default();
    let c = memo::get_or_count(MessageKey::tools(enc, &json), || MessageCount {
        raw: u64::try_from(tools_raw(enc, tools)).unwrap_or(0),
        named: false,
    });
    i64::try_from(c.raw).unwrap_or(i64::MAX / 4)
}

/// Tokens that tool definitions add to a prompt, for the model `counter` counts for.
pub fn count_tools(counter: &Counter, tools: &[Value]) -> u64 {
    counter.scale(u64::try_from(tools_memo(counter.encoding, tools)).unwrap_or(0))
}

/// The cookbook's rendering of function definitions: per function a fixed opening, the
/// `name:description` line, and per property `key:type:description` plus enum items.
fn tools_raw(enc: Encoding, tools: &[Value]) -> i64 {
    if tools.is_empty() {
        return 0;
    }
    // o200k models spend 7 tokens opening each function, cl100k models 10.
    let func_init = if matches!(enc, Encoding::O200kBase | Encoding::O200kHarmony) {
        7
    } else {
        10
    };
    let (prop_init, prop_key, enum_init, enum_item, func_end) = (3, 3, -3, 3, 12);
    let mut n = 0;
    for tool in tools {
        // OpenAI `{"type": "function", "function": {...}}`, a bare function, or Anthropic's
        // `{"name", "description", "input_schema"}`.
        let f = tool.get("function").unwrap_or(tool);
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        let desc = f
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        n += func_init
            + raw(
                enc,
                &format!("{name}:{}", desc.strip_suffix('.').unwrap_or(desc)),
            );
        let props = f
            .get("parameters")
            .or_else(|| f.get("input_schema"))
            .and_then(|p| p.get("properties"))
            .and_then(Value::as_object);
        if let Some(props) = props.filter(|p| !p.is_empty()) {
            n += prop_init;
            for (key, prop) in props {
                n += prop_key;
                if let Some(items) = prop.get("enum").and_then(Value::as_array) {
                    n += enum_init;
                    for item in items {
                        n += enum_item;
                        n += match item {
                            Value::String(s) => raw(enc, s),
                            other => raw(enc, &other.to_string()),
                        };
                    }
                }
                let ty = match prop.get("type") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let pdesc = prop
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                n += raw(
                    enc,
                    &format!("{key}:{ty}:{}", pdesc.strip_suffix('.').unwrap_or(pdesc)),
                );
            }
        }
    }
    n + func_end
}

#[cfg(test)]
mod tests {
    use super::super::counter_for;
    use super::*;

    /// The OpenAI cookbook's example conversation.
    fn cookbook_messages() -> Vec<ChatMessage> {
        let named = |name: &str, text: &str| ChatMessage {
            name: Some(name.into()),
            ..ChatMessage::text("system", text)
        };
        vec![
            ChatMessage::text(
                "system",
                "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
            ),
            named("example_user", "New synergies will help drive top-line growth."),
            named(
                "example_assistant",
                "Things working well together will increase revenue.",
            ),
            named(
                "example_user",
                "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
            ),
            named(
                "example_assistant",
                "Let's talk later when we're less busy about how to do better.",
            ),
            ChatMessage::text(
                "user",
                "This late pivot means we don't have time to boil the ocean for the client deliverable.",
            ),
        ]
    }

    #[test]
    fn messages_count_as_the_api_reported() {
        // Prompt tokens the API reported for this request (cookbook).
        let msgs = cookbook_messages();
        for (model, api) in [
            ("gpt-3.5-turbo-0125", 129),
            ("gpt-4-0613", 129),
            ("gpt-4-1106-preview", 129),
            ("gpt-4o", 124),
            ("gpt-4o-mini", 124),
        ] {
            assert_eq!(
                count_messages(&counter_for(model), &msgs, &[]),
                api,
                "{model}"
            );
        }
    }

    #[test]
    fn tools_count_as_the_api_reported() {
        let tools: Vec<Value> = vec![serde_json::json!({
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "location": {
                            "type": "string",
                            "description": "The city and state, e.g. San Francisco, CA",
                        },
                        "unit": {
                            "type": "string",
                            "description": "The unit of temperature to return",
                            "enum": ["celsius", "fahrenheit"],
                        },
                    },
                    "required": ["location"],
                },
            }
        })];
        let msgs = vec![
            ChatMessage::text(
                "system",
                "You are a helpful assistant that can answer to questions about the weather.",
            ),
            ChatMessage::text("user", "What's the weather like in San Francisco?"),
        ];
        for (model, api) in [
            ("gpt-3.5-turbo", 105),
            ("gpt-4", 105),
            ("gpt-4o", 101),
            ("gpt-4o-mini", 101),
        ] {
            assert_eq!(
                count_messages(&counter_for(model), &msgs, &tools),
                api,
                "{model}"
            );
        }
        // Anthropic's format renders the same.
        let anthropic = serde_json::json!({
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "input_schema": tools[0]["function"]["parameters"].clone(),
        });
        let c = counter_for("gpt-4o");
        assert_eq!(count_tools(&c, &[anthropic]), count_tools(&c, &tools));
    }

    #[test]
    fn images_names_and_tool_calls_add_tokens() {
        let c = counter_for("gpt-4o");
        let base = count_messages(&c, &[ChatMessage::text("user", "hi")], &[]);
        let with_image = ChatMessage {
            content: vec![
                ContentPart::Text("hi".into()),
                ContentPart::Image { low: true },
            ],
            ..ChatMessage::text("user", "")
        };
        assert_eq!(count_messages(&c, &[with_image], &[]), base + 85);
        let call = ChatMessage {
            tool_calls: vec![ToolCall {
                name: "f".into(),
                arguments: "{}".into(),
            }],
            ..ChatMessage::text("assistant", "")
        };
        assert!(
            count_messages(&c, &[call], &[])
                > count_messages(&c, &[ChatMessage::text("assistant", "")], &[])
        );
        assert_eq!(count_messages(&c, &[], &[]), 0);
    }

    #[test]
    fn memo_counts_equal_uncached_counts() {
        let mut msgs = cookbook_messages();
        for i in 0..40 {
            msgs.push(ChatMessage {
                name: (i % 3 == 0).then(|| format!("n{i}")),
                content: vec![
                    ContentPart::Text(format!("turn {i}: {}", "東京 lorem 🚀 ".repeat(i))),
                    ContentPart::Image { low: i % 2 == 0 },
                ],
                tool_calls: (0..i % 3)
                    .map(|j| ToolCall {
                        name: format!("tool{j}"),
                        arguments: format!("{{\"x\": {i}}}"),
                    })
                    .collect(),
                ..ChatMessage::text(if i % 2 == 0 { "user" } else { "assistant" }, "")
            });
        }
        for model in ["gpt-4o", "gpt-4", "gpt-3.5-turbo-0301", "claude-sonnet-4-5"] {
            let c = counter_for(model);
            let tools = [serde_json::json!({"name": "f", "description": "d",
                "parameters": {"properties": {"x": {"type": "string", "enum": ["a", "b"]}}}})];
            let with_tools = count_messages_uncached(&c, &msgs, &tools);
            assert_eq!(count_messages(&c, &msgs, &tools), with_tools);
            assert_eq!(count_messages(&c, &msgs, &tools), with_tools);
            let want = count_messages_uncached(&c, &msgs, &[]);
            // First (tokenizing, remembering), then again (from the memo), then a growing
            // history as a chat app sends it.
            assert_eq!(count_messages(&c, &msgs, &[]), want, "{model}");
            assert_eq!(count_messages(&c, &msgs, &[]), want, "{model}");
            for n in 0..msgs.len() {
                assert_eq!(
                    count_messages(&c, &msgs[..n], &[]),
                    count_messages_uncached(&c, &msgs[..n], &[]),
                    "{model} {n}"
                );
            }
        }
        // The same text under two encodings is two entries.
        let m = [ChatMessage::text("user", "ünïcödé text")];
        for model in ["gpt-4o", "gpt-4", "davinci"] {
            let c = counter_for(model);
            assert_eq!(
                count_messages(&c, &m, &[]),
                count_messages_uncached(&c, &m, &[])
            );
        }
    }
}
