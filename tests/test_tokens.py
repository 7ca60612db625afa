"""Token counting: parity with Python tiktoken, chat overhead as OpenAI bills it, estimates."""

from __future__ import annotations

import random
import subprocess
import sys
import threading

import llmledger
import pytest
import tiktoken
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from llmledger import count_message_tokens, count_tokens, count_tokens_batch, tokenizer_for
from tiktoken_local import local_encoding

ENCODINGS = ["o200k_base", "o200k_harmony", "cl100k_base", "p50k_base", "p50k_edit", "r50k_base"]

CORPUS = {
    "english": (
        "The quick brown fox jumps over the lazy dog. It's 3:45pm; we'll meet at the café "
        "on 5th Avenue — don't be late! Prices rose 12.5% year-over-year, to $1,234.56."
    ),
    "python": (
        "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + "
        "fib(n - 2)\n\n\nprint([fib(i) for i in range(10)])  # 0 1 1 2 3 5 8\n\t\tx = {'a': [1, 2]}\n"
    ),
    "rust": (
        "impl<T: Clone + Send> Iterator for Foo<'_, T> {\n    type Item = Vec<T>;\n    fn next("
        "&mut self) -> Option<Self::Item> { self.0.get(..).map(|s| s.to_vec()) }\n}\n"
    ),
    "chinese": "我们的成本账本记录每一次调用的费用。机器学习模型的价格经常变化，所以需要精确计算。",
    "japanese": "東京都の天気は晴れです。カタカナとひらがな、そして漢字を混ぜた文章をトークン化します。",
    "korean": "안녕하세요, 세계! 토큰 수를 정확하게 세는 것은 비용 계산에 중요합니다.",
    "arabic_hindi": "مرحبا بالعالم. नमस्ते दुनिया, यह एक परीक्षण है।",
    "emoji": "🚀🔥 family: 👨‍👩‍👧‍👦, flags: 🇯🇵🇺🇸, skin: 👍🏽, keycap: 1️⃣, text 😀😃😄 end",
    "whitespace": "  leading\n\n\n   \t trailing   \r\n  \u00a0nbsp   \n",
    "numbers": "3.14159265358979 1234567890 0x1F 1e-10 −42 ١٢٣ 12,345,678.90",
    "special_text": "<|endoftext|> <|fim_prefix|><|endofprompt|> <|im_start|>user",
    "json": '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "n": 2}',
    "long_repeat": "a" * 5000 + " " + "ab" * 3000 + "\n" * 200,
    "url": "https://example.com/path?query=value&x=1#frag mailto:someone@example.org",
}


def _random_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x4E00, 0x4FFF)]
    ranges += [(0x3040, 0x30FF), (0xAC00, 0xAD00), (0x1F300, 0x1F64F), (0x9, 0xD)]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(0, 200)):
            lo, hi = rng.choice(ranges)
            chars.append(chr(rng.randint(lo, hi)))
        out.append("".join(chars))
    return out


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_counts_equal_python_tiktoken(encoding: str) -> None:
    enc = local_encoding(encoding)
    texts = [*CORPUS.values(), *_random_texts(150)]
    for text in texts:
        assert count_tokens(text, encoding=encoding) == len(enc.encode_ordinary(text)), text[:60]
    # The batch API agrees, in order.
    assert count_tokens_batch(texts, encoding=encoding) == [
        len(enc.encode_ordinary(t)) for t in texts
    ]


MODELS = [
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini",
    "chatgpt-4o-latest",
    "gpt-4.1-mini",
    "gpt-4.5-preview",
    "gpt-5",
    "gpt-5-mini",
    "o1",
    "o3-mini",
    "o4-mini-2025-04-16",
    "gpt-4",
    "gpt-4-0613",
    "gpt-4-turbo",
    "gpt-3.5-turbo",
    "gpt-3.5-turbo-0125",
    "gpt-35-turbo",
    "gpt-oss-120b",
    "text-embedding-3-small",
    "text-embedding-ada-002",
    "davinci-002",
    "text-davinci-003",
    "code-davinci-002",
    "text-davinci-edit-001",
    "davinci",
    "ft:gpt-4o-mini-2024-07-18:acme::abc123",
]


@pytest.mark.parametrize("model", MODELS)
def test_model_to_encoding_as_tiktoken_maps_it(model: str) -> None:
    expected = tiktoken.encoding_name_for_model(model)
    info = tokenizer_for(model)
    assert info["encoding"] == {"gpt2": "r50k_base"}.get(expected, expected)
    assert info["exact"] is True
    text = CORPUS["english"] + CORPUS["python"]
    assert count_tokens(text, model=model) == len(
        local_encoding(info["encoding"]).encode_ordinary(text)
    )


def test_provider_prefixes_and_case() -> None:
    for m in ["openai/gpt-4o", "openai:gpt-4o", "azure/gpt-4o", "GPT-4o"]:
        assert tokenizer_for(m)["encoding"] == "o200k_base", m
        assert tokenizer_for(m)["exact"] is True


def test_models_without_public_tokenizer_are_flagged_estimates() -> None:
    text = CORPUS["english"] * 3
    base = count_tokens(text, encoding="o200k_base")
    claude = tokenizer_for("claude-sonnet-4-5")
    assert claude == {
        "model": "claude-sonnet-4-5",
        "encoding": "o200k_base",
        "exact": False,
        "method": "estimate for Claude: o200k_base x 1.20",
    }
    assert count_tokens(text, model="claude-sonnet-4-5") == -(-base * 12 // 10)
    for model, family in [
        ("gemini-2.5-pro", "Gemini"),
        ("us.meta.llama3-3-70b-instruct-v1:0", "Llama"),
        ("mistral-large-latest", "Mistral"),
        ("deepseek-chat", "DeepSeek"),
        ("grok-4", "Grok"),
        ("some-private-model", "an unknown model"),
    ]:
        info = tokenizer_for(model)
        assert info["exact"] is False and family in info["method"], info


# ---- chat prompts, as the API billed them (OpenAI cookbook's examples) --------------------

COOKBOOK = [
    SystemMessage(
        "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English."
    ),
    SystemMessage("New synergies will help drive top-line growth.", name="example_user"),
    SystemMessage("Things working well together will increase revenue.", name="example_assistant"),
    SystemMessage(
        "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
        name="example_user",
    ),
    SystemMessage(
        "Let's talk later when we're less busy about how to do better.", name="example_assistant"
    ),
    HumanMessage(
        "This late pivot means we don't have time to boil the ocean for the client deliverable."
    ),
]

WEATHER_TOOL = {
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
    },
}


@pytest.mark.parametrize(
    ("model", "api_prompt_tokens"),
    [
        ("gpt-3.5-turbo-0125", 129),
        ("gpt-4-0613", 129),
        ("gpt-4-1106-preview", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
    ],
)
def test_messages_as_the_api_billed_them(model: str, api_prompt_tokens: int) -> None:
    assert count_message_tokens(COOKBOOK, model=model) == api_prompt_tokens
    # The same conversation as OpenAI dicts counts the same.
    as_dicts = [
        {"role": "system" if isinstance(m, SystemMessage) else "user", "content": m.content}
        | ({"name": m.name} if m.name else {})
        for m in COOKBOOK
    ]
    assert count_message_tokens(as_dicts, model=model) == api_prompt_tokens


@pytest.mark.parametrize(
    ("model", "api_prompt_tokens"),
    [("gpt-3.5-turbo", 105), ("gpt-4", 105), ("gpt-4o", 101), ("gpt-4o-mini", 101)],
)
def test_tools_as_the_api_billed_them(model: str, api_prompt_tokens: int) -> None:
    messages = [
        SystemMessage(
            "You are a helpful assistant that can answer to questions about the weather."
        ),
        HumanMessage("What's the weather like in San Francisco?"),
    ]
    assert count_message_tokens(messages, model=model, tools=[WEATHER_TOOL]) == api_prompt_tokens


def test_message_forms_and_parts() -> None:
    one = count_message_tokens([HumanMessage("hello there")])
    assert one == count_message_tokens([{"role": "user", "content": "hello there"}])
    assert one == count_message_tokens([("human", "hello there")])
    assert one == count_message_tokens(["hello there"])
    assert one == count_message_tokens("hello there")
    # 3 per message + role + text + 3 reply priming.
    assert one == 3 + count_tokens("user") + count_tokens("hello there") + 3
    # Content blocks: text parts add up; an image adds OpenAI's flat low-detail rate.
    blocks = HumanMessage(
        content=[
            {"type": "text", "text": "hello there"},
            {"type": "image_url", "image_url": {"url": "data:,", "detail": "low"}},
        ]
    )
    assert count_message_tokens([blocks]) == one + 85
    # Tool calls and results count.
    call = AIMessage("", tool_calls=[{"name": "search", "args": {"q": "weather"}, "id": "c1"}])
    assert count_message_tokens([call]) > count_message_tokens([AIMessage("")])
    result = ToolMessage("sunny, 21C", tool_call_id="c1")
    assert (
        count_message_tokens([result]) == 3 + count_tokens("tool") + count_tokens("sunny, 21C") + 3
    )


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="cannot count a message of type object"):
        count_message_tokens([object()])
    with pytest.raises(ValueError, match="unknown encoding 'o300k'"):
        count_tokens("x", encoding="o300k")
    with pytest.raises(TypeError):
        count_tokens(b"bytes")  # type: ignore[arg-type]


def test_threads_share_encoders_and_agree() -> None:
    text = CORPUS["japanese"] * 50 + CORPUS["python"] * 50
    expected = len(local_encoding("o200k_base").encode_ordinary(text))
    results: list[int] = []

    def work() -> None:
        for _ in range(20):
            results.append(count_tokens(text))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 160


def test_import_loads_no_vocabulary_and_no_langchain() -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter(); import llmledger; dt = time.perf_counter() - t\n"
        "assert 'langchain_core' not in sys.modules, 'langchain imported eagerly'\n"
        "assert llmledger.count_tokens('hi') == 1\n"
        "from llmledger import CostTracker, track_costs\n"
        "assert 'langchain_core' in sys.modules\n"
        "print(dt)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert float(out.stdout) < 1.0  # generous: the benchmark reports the real figure
    assert llmledger.CostTracker.__name__ == "CostTracker"
    with pytest.raises(AttributeError):
        llmledger.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
