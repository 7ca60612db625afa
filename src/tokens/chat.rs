//! Chat prompts as OpenAI bills them: every message costs its text plus a fixed overhead for
//! the chat format, a name adds a token, every reply is primed with three tokens, and tool
//! definitions are rendered into the prompt (OpenAI cookbook, "How to count tokens with
//! tiktoken"; the tests hold the counts the API reported for its examples).

use serde_json::Value;

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
}

fn raw(enc: Encoding, text: &str) -> i64 {
    i64::try_from(enc.count(text)).unwrap_or(i64::MAX)
}

/// Tokens of `messages` (and `tools`, OpenAI or Anthropic format) as a prompt to the model
/// `counter` counts for, reply priming included.
pub fn count_messages(counter: &Counter, messages: &[ChatMessage], tools: &[Value]) -> u64 {
    let enc = counter.encoding;
    let mut n: i64 = 0;
    for m in messages {
        n += counter.per_message + raw(enc, &m.role);
        for part in &m.content {
            n += match part {
                ContentPart::Text(t) => raw(enc, t),
                ContentPart::Image { low: true } => IMAGE_TOKENS_LOW,
                ContentPart::Image { low: false } => IMAGE_TOKENS_DEFAULT,
            };
        }
        if let Some(name) = &m.name {
            n += raw(enc, name) + counter.per_name;
        }
        for call in &m.tool_calls {
            n += TOOL_CALL_OVERHEAD + raw(enc, &call.name) + raw(enc, &call.arguments);
        }
    }
    if !messages.is_empty() {
        n += REPLY_PRIMING;
    }
    n += tools_raw(enc, tools);
    counter.scale(u64::try_from(n).unwrap_or(0))
}

/// Tokens that tool definitions add to a prompt, for the model `counter` counts for.
pub fn count_tools(counter: &Counter, tools: &[Value]) -> u64 {
    counter.scale(u64::try_from(tools_raw(counter.encoding, tools)).unwrap_or(0))
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
}
