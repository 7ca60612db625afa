"""`local_endpoints=`: the user's own OpenAI-compatible servers (vLLM, LM Studio, llama.cpp's
server, ...), reached through `ChatOpenAI(base_url=...)`, are recorded as local (cost 0,
`price_entry` `local:<endpoint>`, counted in `local_calls`) as Ollama's calls are, unless
`prices=` prices the model. A loopback base URL alone is not local: the fake provider of
these tests is on 127.0.0.1, and its calls are priced at the API's prices without the
option.

The real ChatOpenAI and ChatAnthropic talk to `fake_provider.py` on 127.0.0.1. Where the
base URL is (observed with langchain-openai 1.7.3, langchain-anthropic 1.7.7): the start
hook's `serialized["kwargs"]` holds `openai_api_base` (ChatOpenAI's and AzureChatOpenAI's
`base_url`), `azure_endpoint` (AzureChatOpenAI) and `anthropic_api_url` (ChatAnthropic's
`base_url`, always set); invocation params and metadata (`ls_provider` `openai`) say
nothing of the host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fake_provider import FakeProvider, anthropic_usage, openai_usage
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from llmledger import Budget, CostTracker, cost, track_costs


def chat_openai(fp: FakeProvider, **kw: Any) -> ChatOpenAI:
    kw.setdefault("model", "gpt-4o")
    kw.setdefault("base_url", fp.openai_base_url)
    return ChatOpenAI(api_key="test", max_retries=0, timeout=10, **kw)  # type: ignore[arg-type]


def assert_local(rec: dict[str, Any], endpoint: str) -> None:
    assert rec["cost"] == Decimal(0)
    assert rec["price_entry"] == f"local:{endpoint}"
    assert rec["unpriced_reason"] is None
    assert rec["usage_source"] == "provider"


def test_a_listed_endpoint_is_local(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(model="deepseek-chat", usage=openai_usage(1_000, 200))
    t = CostTracker(local_endpoints=[fake_provider.openai_base_url])
    chat_openai(fake_provider, model="deepseek-chat").invoke("hi", config={"callbacks": [t]})
    (rec,) = t.records()
    # A model name DeepSeek sells, served by the user's own server: not DeepSeek's price.
    assert_local(rec, fake_provider.openai_base_url)
    assert rec["provider"] == "openai"
    assert (rec["input_tokens"], rec["output_tokens"]) == (1_000, 200)
    totals = t.totals()
    assert (totals["local_calls"], totals["unpriced_calls"]) == (1, 0)
    assert t.total_cost == Decimal(0)
    assert "Local-Model Requests (no API fee, $0): 1" in str(t)


def test_a_loopback_url_is_not_local_by_default(fake_provider: FakeProvider) -> None:
    # The fake provider is on 127.0.0.1, as a LiteLLM proxy forwarding to OpenAI would be.
    fake_provider.set_openai(usage=openai_usage(1_000, 200))
    t = CostTracker()
    chat_openai(fake_provider).invoke("hi", config={"callbacks": [t]})
    (rec,) = t.records()
    assert rec["cost"] == cost("gpt-4o", input_tokens=1_000, output_tokens=200)
    assert not rec["price_entry"].startswith("local:")
    assert t.totals()["local_calls"] == 0


def test_entries_are_normalised_and_matched_on_path_segments(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.set_openai(usage=openai_usage(100, 20))
    port = fake_provider.port
    root = f"http://127.0.0.1:{port}"
    # Scheme and host case, a trailing slash; the root lists every path under it.
    t = CostTracker(local_endpoints=[f"HTTP://127.0.0.1:{port}/"])
    chat_openai(fake_provider).invoke("hi", config={"callbacks": [t]})
    assert_local(t.records()[0], root)
    # The call's own base URL with a trailing slash still lies under `/v1`.
    t = CostTracker(local_endpoints=[f"{root}/v1/"])
    chat_openai(fake_provider, base_url=f"{root}/v1/").invoke("hi", config={"callbacks": [t]})
    assert_local(t.records()[0], f"{root}/v1")
    # Another port, another path, another host name for the same address: not local.
    for other in (
        f"http://127.0.0.1:{port + 1}/v1",
        f"{root}/v2",
        f"{root}/v",
        "http://localhost:1",
    ):
        t = CostTracker(local_endpoints=[other])
        chat_openai(fake_provider).invoke("hi", config={"callbacks": [t]})
        assert t.records()[0]["cost"] == cost("gpt-4o", input_tokens=100, output_tokens=20), other


def test_a_user_price_prices_a_local_endpoints_model(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(model="qwen3-32b", usage=openai_usage(1_000_000, 1_000_000))
    t = CostTracker(
        local_endpoints=[fake_provider.openai_base_url],
        prices={"qwen3-32b": {"input": "0.05", "output": "0.10"}},
    )
    chat_openai(fake_provider, model="qwen3-32b").invoke("hi", config={"callbacks": [t]})
    (rec,) = t.records()
    assert rec["cost"] == Decimal("0.15")
    assert not rec["price_entry"].startswith("local:")
    assert t.totals()["local_calls"] == 0


def test_a_local_endpoints_stream_is_local(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(content="a few words", usage=openai_usage(300, 3))
    t = CostTracker(local_endpoints=[fake_provider.openai_base_url])
    llm = chat_openai(fake_provider, stream_usage=True)
    assert "".join(str(c.content) for c in llm.stream("hi", config={"callbacks": [t]}))
    (rec,) = t.records()
    assert_local(rec, fake_provider.openai_base_url)
    assert rec["input_tokens"] == 300


def test_chat_anthropic_at_a_local_endpoint(fake_provider: FakeProvider) -> None:
    fake_provider.set_anthropic(usage=anthropic_usage(500, 50))
    t = CostTracker(local_endpoints=[fake_provider.anthropic_base_url])
    llm = ChatAnthropic(  # type: ignore[call-arg]
        model="claude-sonnet-4-6",
        base_url=fake_provider.anthropic_base_url,
        api_key="test",
        max_retries=0,
    )
    llm.invoke("hi", config={"callbacks": [t]})
    (rec,) = t.records()
    assert_local(rec, fake_provider.anthropic_base_url)
    assert rec["provider"] == "anthropic"


def test_azure_endpoint_is_read_from_the_serialized_kwargs() -> None:
    # AzureChatOpenAI's start hook arguments as langchain-openai 1.7.3 sends them (its
    # deployment path is not one the fake provider serves): the `azure_endpoint` kwarg.
    t = CostTracker(local_endpoints=["https://gpu-box.lan"])
    run_id = uuid.uuid4()
    serialized = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "chat_models", "azure_openai", "AzureChatOpenAI"],
        "kwargs": {"azure_endpoint": "https://GPU-box.lan:443/", "deployment_name": "gpt-4o"},
    }
    t.on_chat_model_start(
        serialized,
        [[]],
        run_id=run_id,
        invocation_params={"model": "gpt-4o", "_type": "azure-openai-chat"},
        metadata={"ls_provider": "azure", "ls_model_name": "gpt-4o"},
    )
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    msg = AIMessage(
        content="ok", usage_metadata={"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    )
    t.on_llm_end(LLMResult(generations=[[ChatGeneration(message=msg)]]), run_id=run_id)
    (rec,) = t.records()
    assert_local(rec, "https://gpu-box.lan")


def test_a_budget_reserves_nothing_for_a_local_endpoint(fake_provider: FakeProvider) -> None:
    # A blocking budget far below gpt-4o's price of the call: the local call is let through
    # (its reservation is 0) and charged 0.
    fake_provider.set_openai(usage=openai_usage(10_000, 200))
    t = CostTracker(
        local_endpoints=[fake_provider.openai_base_url], budgets=[Budget("0.000001", "day")]
    )
    chat_openai(fake_provider, max_tokens=200).invoke("hi " * 2_000, config={"callbacks": [t]})
    (rec,) = t.records()
    assert_local(rec, fake_provider.openai_base_url)
    assert t.blocked_calls == 0


def test_track_costs_forwards_local_endpoints(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(100, 20))
    with track_costs(local_endpoints=[fake_provider.openai_base_url]) as t:
        chat_openai(fake_provider).invoke("hi")
    assert_local(t.records()[0], fake_provider.openai_base_url)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("localhost:8000/v1", "no scheme"),
        ("ftp://localhost/v1", "http or https"),
        ("http://localhost:99999/v1", "port"),
        ("http://localhost:8000/v1?key=x", "query"),
        ("http://user:secret@localhost:8000", "password"),
        ("http://", "no host"),
    ],
)
def test_a_malformed_entry_is_refused_by_name(entry: str, why: str) -> None:
    with pytest.raises(ValueError, match="local_endpoints") as e:
        CostTracker(local_endpoints=["http://localhost:8000/v1", entry])
    shown = entry.replace("user:secret@", "***@")
    assert repr(shown).replace("'", '"') in str(e.value)
    assert why in str(e.value)
    assert "secret" not in str(e.value)


def test_local_endpoints_must_be_strings() -> None:
    with pytest.raises(TypeError, match="local_endpoints"):
        CostTracker(local_endpoints=[8000])  # type: ignore[list-item]
    # One URL given as a string is one entry, not one per character.
    CostTracker(local_endpoints="http://localhost:8000/v1")  # type: ignore[arg-type]


def test_the_openai_sdks_environment_base_url_is_seen(
    fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ChatOpenAI without base_url: the openai SDK takes OPENAI_BASE_URL, which LangChain's
    # serialized kwargs do not show (OPENAI_API_BASE, read by langchain-openai, they do).
    fake_provider.set_openai(usage=openai_usage(100, 20))
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_provider.openai_base_url)
    t = CostTracker(local_endpoints=[fake_provider.openai_base_url])
    ChatOpenAI(model="gpt-4o", api_key="test", max_retries=0).invoke(  # type: ignore[arg-type]
        "hi", config={"callbacks": [t]}
    )
    assert_local(t.records()[0], fake_provider.openai_base_url)
    monkeypatch.setenv("OPENAI_API_BASE", fake_provider.openai_base_url)
    monkeypatch.delenv("OPENAI_BASE_URL")
    t = CostTracker(local_endpoints=[fake_provider.openai_base_url])
    ChatOpenAI(model="gpt-4o", api_key="test", max_retries=0).invoke(  # type: ignore[arg-type]
        "hi", config={"callbacks": [t]}
    )
    assert_local(t.records()[0], fake_provider.openai_base_url)


def test_the_zero_code_tracker_takes_local_endpoints_from_the_environment(
    fake_provider: FakeProvider, tmp_path: Path
) -> None:
    ledger = tmp_path / "zero-code.jsonl"
    code = f"""
import llmledger
from langchain_openai import ChatOpenAI
llm = ChatOpenAI(model="gpt-4o", base_url={fake_provider.openai_base_url!r}, api_key="t",
                 max_retries=0)
llm.invoke("no callbacks passed")
print(llmledger.ledger_tracker().totals()["local_calls"])
"""
    fake_provider.set_openai(usage=openai_usage(100, 20))
    env = {
        **os.environ,
        "LLMLEDGER_LEDGER": str(ledger),
        "LLMLEDGER_DURABILITY": "sync",
        "LLMLEDGER_LOCAL_ENDPOINTS": f"http://gpu-box.lan:1234, {fake_provider.openai_base_url}",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1"]
    (rec,) = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert rec["price_entry"] == f"local:{fake_provider.openai_base_url}"
