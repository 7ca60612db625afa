"""The README's Python examples run, against LangChain fakes, as a reader would run them.

Harness: every ```python block of README.md runs on its own (imports included: a block must
work when pasted alone), in a temporary working directory (examples write `costs.db`), with
these names already defined, standing for the reader's own app:

- `llm`: a chat model (`llmledger.testing.UsageFakeChatModel`, gpt-4o-mini, reports usage)
- `chain`: a prompt piped into `llm`, taking `{"question": ...}`
- `inputs`: an input for `chain`
- `graph`: a compiled one-node LangGraph graph calling `llm`, taking `{"messages": [...]}`
- `texts`: a few strings; `weather_tool`: a LangChain tool
- `prices.toml`: a price file in the working directory

A block runs with top-level `await` allowed. A block that needs a network or a real API key
says so on a line `# readme-test: skip (<why>)`, and is not run.

The OpenTelemetry block exports over OTLP/HTTP: the test points `OTEL_EXPORTER_OTLP_ENDPOINT`
at a receiver it starts on 127.0.0.1 (a port the system picks), which decodes each request
with `opentelemetry-proto`, and checks the GenAI metrics that arrive.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from llmledger.testing import UsageFakeChatModel

README = Path(__file__).resolve().parent.parent / "README.md"
SKIP = "# readme-test: skip"
PRICES_TOML = """
[[models]]
id = "my-finetune"
prices = [{ input = "0.50", output = "1.50" }]
"""


def python_blocks() -> list[tuple[int, str]]:
    """(line number, code) of every ```python block, indented ones (in lists) dedented."""
    blocks = []
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```python\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, start, body = len(m.group(1)), i + 1, []
        i += 1
        while not lines[i].strip().startswith("```"):
            body.append(lines[i][indent:])
            i += 1
        blocks.append((start + 1, "\n".join(body) + "\n"))
        i += 1
    return blocks


BLOCKS = python_blocks()


def _graph(llm: UsageFakeChatModel) -> Any:
    from langgraph.graph import END, START, MessagesState, StateGraph

    def call(state: MessagesState) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("model", call)
    g.add_edge(START, "model")
    g.add_edge("model", END)
    return g.compile()


@tool
def weather_tool(city: str) -> str:
    """Get the weather for a city."""
    return "sunny"


def _namespace() -> dict[str, Any]:
    llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["Hello there, friend!"])
    chain = ChatPromptTemplate.from_messages([("user", "{question}")]) | llm
    return {
        "__name__": "readme_example",
        "llm": llm,
        "chain": chain,
        "inputs": {"question": "What does the ledger hold?"},
        "graph": _graph(llm),
        "texts": ["hello world", "the ledger counts tokens", "exact money"],
        "weather_tool": weather_tool,
    }


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, list[Any]]]:
    """An OTLP/HTTP metrics receiver on 127.0.0.1: `(endpoint, requests)`, each request an
    `ExportMetricsServiceRequest` decoded from the protobuf body."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
    )

    received: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = self.path == "/v1/metrics"
            if ok:
                req = ExportMetricsServiceRequest()
                req.ParseFromString(body)
                received.append(req)
            out = ExportMetricsServiceResponse().SerializeToString()
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def fresh_global_meter_provider() -> Iterator[None]:
    """Lets a block set OpenTelemetry's global MeterProvider (settable once per process),
    then puts the process back as it was, so later tests see no global provider."""
    from opentelemetry.metrics import _internal as otel_internal
    from opentelemetry.util._once import Once

    saved = (otel_internal._METER_PROVIDER, otel_internal._METER_PROVIDER_SET_ONCE)
    otel_internal._METER_PROVIDER = None
    otel_internal._METER_PROVIDER_SET_ONCE = Once()
    try:
        yield
    finally:
        provider = otel_internal._METER_PROVIDER
        (otel_internal._METER_PROVIDER, otel_internal._METER_PROVIDER_SET_ONCE) = saved
        shutdown = getattr(provider, "shutdown", None)
        if callable(shutdown):
            shutdown()


def check_otlp_export(received: list[Any]) -> None:
    """The call the block made arrived as the GenAI conventions' metrics (cumulative: each
    export repeats the totals so far, so the last one of each metric is read)."""
    points: dict[str, list[Any]] = {}
    units: dict[str, str] = {}
    for req in received:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    units[m.name] = m.unit
                    points[m.name] = list(m.histogram.data_points)
    assert received, "nothing was exported to the receiver"
    assert units.get("gen_ai.client.token.usage") == "{token}", units
    assert units.get("gen_ai.client.operation.duration") == "s"
    assert units.get("gen_ai.client.operation.cost") == "USD"

    def attrs(p: Any) -> dict[str, str]:
        return {a.key: a.value.string_value for a in p.attributes}

    tokens = {attrs(p)["gen_ai.token.type"]: p for p in points["gen_ai.client.token.usage"]}
    assert {"input", "output"} <= set(tokens)
    a = attrs(tokens["input"])
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.operation.name"] == "chat"
    assert tokens["input"].count == 1 and tokens["input"].sum > 0
    assert tokens["output"].count == 1 and tokens["output"].sum > 0
    (cost,) = points["gen_ai.client.operation.cost"]
    assert cost.count == 1 and cost.sum > 0


def _run(code: str, ns: dict[str, Any]) -> None:
    compiled = compile(code, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, ns)  # noqa: S307 - the README's own examples
    if inspect.iscoroutine(result):
        asyncio.run(result)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 8
    # Indented blocks (inside a list item) are found too.
    assert any("DropBudgetStops" in code for _, code in BLOCKS)
    # A skipped block says why (a network, a real key); every block runs today.
    for _, code in BLOCKS:
        if SKIP in code:
            assert re.search(re.escape(SKIP) + r" \(.+\)", code), code


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_example_runs(
    line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if SKIP in code:
        pytest.skip(code.split(SKIP, 1)[1].splitlines()[0].strip(" ()"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prices.toml").write_text(PRICES_TOML, encoding="utf-8")
    manager_log = logging.getLogger("langchain_core.callbacks.manager")
    filters = list(manager_log.filters)
    ns = _namespace()
    otlp = "OTLPMetricExporter" in code
    try:
        if otlp:
            with otlp_receiver() as (endpoint, received), fresh_global_meter_provider():
                monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                _run(code, ns)
                ns["reader"].force_flush()
            check_otlp_export(received)
        else:
            _run(code, ns)
    finally:
        manager_log.filters[:] = filters  # the README's logging filter, if the block adds it
        for value in ns.values():
            close = getattr(value, "close", None)
            if type(value).__name__ == "CostTracker" and callable(close):
                close()
