"""llmledger demo: real LangChain calls (chains, streaming, batch, a LangGraph graph) against a
fake chat model that reports usage like ChatOpenAI does; then the cost report.

Run: make demo   (or: python examples/demo.py once llmledger is installed)
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, StateGraph
from llmledger import (
    Budget,
    BudgetAlert,
    BudgetExceededError,
    CostTracker,
    cost,
    count_message_tokens,
    count_tokens,
    price,
    track_costs,
)
from llmledger.cli import main as llmledger_cli
from llmledger.testing import UsageFakeChatModel

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

# Two "models" answering like real providers: usage in AIMessage.usage_metadata, the dated
# model name in response_metadata, cached and reasoning tokens in the details.
fast = UsageFakeChatModel(model="gpt-4o-mini", responses=["Paris is the capital of France."])
smart = UsageFakeChatModel(
    model="claude-sonnet-4-5-20250929",
    provider="anthropic",
    usage={
        "input_tokens": 12_400,
        "output_tokens": 850,
        "total_tokens": 13_250,
        "input_token_details": {"cache_read": 10_000, "cache_creation": 2_000},
    },
)
mystery = UsageFakeChatModel(model="in-house-llm-7b", responses=["I am not in any catalog."])
# A model whose responses report no usage at all (like a stream without stream_usage=True):
# llmledger counts the prompt and the answer itself and marks the call estimated.
silent = GenericFakeChatModel(
    messages=iter([AIMessage("Tokens are counted locally when the provider is silent.")]),
    metadata={"ls_model_name": "gpt-4o-mini", "ls_provider": "openai"},
)

prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("user", "{question}")])
faq_chain = (prompt | fast).with_config(run_name="faq_chain")
research_chain = (prompt | smart).with_config(run_name="research_chain")


class State(TypedDict):
    question: str
    draft: str


def draft(state: State) -> dict[str, str]:
    return {"draft": str(fast.invoke(state["question"]).content)}


def review(state: State) -> dict[str, str]:
    return {"draft": str(smart.invoke(state["draft"]).content)}


graph_builder = StateGraph(State)
graph_builder.add_node("draft", draft)
graph_builder.add_node("review", review)
graph_builder.add_edge(START, "draft")
graph_builder.add_edge("draft", "review")
graph_builder.add_edge("review", END)
graph = graph_builder.compile().with_config(run_name="writer_graph")


def main() -> None:
    print("== Everything inside `with track_costs()` is tracked, no callbacks to pass ==\n")
    with track_costs(attribute=["user_id", "feature"]) as tracker:
        for user in ["alice", "bob", "alice"]:
            faq_chain.invoke(
                {"question": "What is the capital of France?"},
                config={"metadata": {"user_id": user, "feature": "faq"}},
            )
        research_chain.invoke(
            {"question": "Summarise this long document."},
            config={"metadata": {"user_id": "carol", "feature": "research"}},
        )
        # Streaming: counted from the usage the stream reports.
        for _ in fast.stream("Stream me a short answer", config={"metadata": {"user_id": "bob"}}):
            pass
        # A batch runs in threads: every call counted.
        faq_chain.batch(
            [{"question": f"Question {i}?"} for i in range(4)],
            config={"metadata": {"user_id": "dave", "feature": "faq"}},
        )
        # A LangGraph graph: its calls roll up to the graph's root run.
        graph.invoke(
            {"question": "Write a haiku", "draft": ""},
            config={"metadata": {"user_id": "erin", "feature": "writer"}},
        )
        # A model with no known price: tokens recorded, cost unknown (never $0), one warning.
        mystery.invoke("hello", config={"metadata": {"user_id": "alice", "feature": "labs"}})
        # A stream that reports no usage: counted by llmledger's tokenizer, marked estimated.
        for _ in silent.stream("Explain estimates", config={"metadata": {"user_id": "bob"}}):
            pass

    print(tracker)
    print("\n== By user ==")
    print(tracker.report(by=["user_id"]))
    print("\n== By feature and model ==")
    print(tracker.report(by=["feature", "model"]))
    print("\n== By root run (chain or graph) ==")
    print(tracker.report(by=["root_run_name"]))

    print("\n== Pricing without a tracker ==")
    entry = price("claude-sonnet-4-5-20250929")
    assert entry is not None
    print(
        f"{entry['key']}: {entry['prices']} (USD per 1M tokens, source {entry['source']}, checked {entry['checked']})"
    )
    print(
        "gpt-4o, 1M input of which 600k cached, 100k output:",
        cost("gpt-4o", input_tokens=1_000_000, cache_read_tokens=600_000, output_tokens=100_000),
    )

    print("\n== Your own prices ==")
    own = CostTracker(prices={"in-house-llm-7b": {"input": "0.05", "output": "0.10"}})
    mystery.invoke("hello", config={"callbacks": [own]})
    print(f"in-house-llm-7b with a price: {own.total_cost:f} USD for {own.total_tokens} tokens")

    print("\n== Counting tokens, offline ==")
    messages = [SystemMessage("Be brief."), HumanMessage("What is the capital of France?")]
    print("gpt-4o prompt tokens, as OpenAI bills them:", count_message_tokens(messages, "gpt-4o"))
    print("'hello world' in gpt-4o tokens:", count_tokens("hello world", model="gpt-4o"))

    print("\n== A durable ledger, read back by the CLI ==")
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "costs.db"
        durable = CostTracker(store=ledger)
        for user in ["alice", "bob"]:
            faq_chain.invoke(
                {"question": "Capital of France?"},
                config={"callbacks": [durable], "metadata": {"user_id": user}},
            )
        durable.close()  # flushes the writer thread (an exit hook would too)
        print(f"$ llmledger report {ledger.name} --by user_id")
        llmledger_cli(["report", str(ledger), "--by", "user_id"])

    advisor_demo()

    print("\n== Budgets: stopped before the money is spent ==")
    alerts: list[BudgetAlert] = []
    guarded = CostTracker(
        budgets=[Budget.daily("0.05", per="user_id", alert_at=(0.5, 0.9))],
        on_alert=alerts.append,
    )
    calls = 0
    try:
        for _ in range(10):  # each smart call costs about $0.0245
            # Each call reserves its prompt plus max_tokens of output before it is sent
            # (without max_tokens: the model's whole output limit, 64,000 tokens here).
            smart.invoke(
                "Summarise.",
                config={"callbacks": [guarded], "metadata": {"user_id": "carol"}},
                max_tokens=1000,
            )
            calls += 1
    except BudgetExceededError as e:
        print(f"call {calls + 1} refused before it was sent:\n  {e}")
    for a in alerts:
        print(f"  alert ({a.kind}): {a.text}")
    [state] = guarded.budgets()
    print(
        f"carol: spent ${state['spent']} of ${state['limit']}, remaining ${state['remaining']}, "
        f"resets at {state['resets_at']:%Y-%m-%d %H:%M} UTC"
    )


def advisor_demo() -> None:
    """A support bot, a nightly job and a classifier write a ledger; the advisor prices what
    to change. Every figure re-prices the recorded calls with the catalog."""
    print("\n== The advisor: what to change, and how many dollars it is worth ==")
    policy = SystemMessage("You are ACME's support assistant. Follow the refund policy. " * 300)
    support = UsageFakeChatModel(
        model="gpt-4o",
        responses=["Here is how to reset it."],
        usage={"input_tokens": 4_600, "output_tokens": 180, "total_tokens": 4_780},
    )
    nightly = UsageFakeChatModel(
        model="gpt-4o",
        responses=["Digest of the day."],
        usage={"input_tokens": 9_000, "output_tokens": 1_200, "total_tokens": 10_200},
    )
    classifier = UsageFakeChatModel(
        model="gpt-4o",
        responses=["billing"],
        usage={"input_tokens": 900, "output_tokens": 5, "total_tokens": 905},
    )
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "costs.db"
        t = CostTracker(store=ledger)
        for i in range(12):  # the same long policy before every question
            support.invoke(
                [policy, HumanMessage(f"Ticket {i}: how do I reset my password?")],
                config={"callbacks": [t], "metadata": {"user_id": f"u{i % 3}"}},
            )
        for i in range(8):  # a job no one waits on, call by call
            nightly.invoke(
                f"Summarise account {i}", config={"callbacks": [t], "run_name": "nightly-digest"}
            )
        for _ in range(20):  # one short question, asked again and again
            classifier.invoke(
                "Which team handles 'refund not received'?", config={"callbacks": [t]}
            )
        t.close()
        print(f"$ llmledger advise {ledger.name}")
        llmledger_cli(["advise", str(ledger)])


if __name__ == "__main__":
    main()
