"""ns per `on_llm_end` with metrics off, with Prometheus, with OpenTelemetry, and with an
OpenLIT-style per-call recording in Python, side by side as ratios to the tracker without
metrics; then what a collection costs (a Prometheus scrape, an OpenTelemetry collect that
records the buffered calls), which runs at the backend's pace, not on the call's path.

The per-call figures use `bench_on_llm_end.py`'s harness (same LLMResult, starts untimed,
batches of 64 runs open at once). OpenLIT-style: an `on_record` hook that records the token,
duration and cost histograms through the OpenTelemetry SDK on every call, as OpenLIT and
OpenLLMetry do in their wrappers.

Run: python benchmarks/bench_metrics.py [--events N] [--repeat R]
Build the extension with `maturin develop --release` first.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest

sys.path.insert(0, str(Path(__file__).parent))
from bench_on_llm_end import START_KW, bench, realistic_result  # noqa: E402
from llmledger import CostTracker, OtelMetrics, PrometheusMetrics  # noqa: E402


def prometheus() -> CostTracker:
    return CostTracker(metrics=PrometheusMetrics(registry=CollectorRegistry(), labels=["user_id"]))


def otel(events: int) -> Any:
    def make() -> CostTracker:
        provider = MeterProvider([InMemoryMetricReader()])
        return CostTracker(metrics=OtelMetrics(meter_provider=provider, max_observations=events))

    return make


def openlit_style() -> CostTracker:
    """Per-call recording in Python: what instrumentation libraries do in their wrappers."""
    meter = MeterProvider([InMemoryMetricReader()]).get_meter("openlit-style")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    cost = meter.create_histogram("gen_ai.usage.cost", unit="USD")

    def on_record(r: dict[str, Any]) -> None:
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": r["provider"] or "_OTHER",
            "gen_ai.request.model": r["requested_model"] or "",
            "gen_ai.response.model": r["model"] or "",
        }
        tokens.record(r["input_tokens"], {**attrs, "gen_ai.token.type": "input"})
        tokens.record(r["output_tokens"], {**attrs, "gen_ai.token.type": "output"})
        if r["latency_s"] is not None:
            duration.record(r["latency_s"], attrs)
        cost.record(float(r["cost"] or 0), attrs)  # OpenLIT prices unknown models at $0

    return CostTracker(on_record=on_record)


def collect_costs(events: int) -> tuple[float, float, int]:
    """(ms per Prometheus scrape, ns per call of an OpenTelemetry collect, series)."""
    result = realistic_result()
    registry = CollectorRegistry()
    t = CostTracker(metrics=PrometheusMetrics(registry=registry, labels=["user_id"]))
    reader = InMemoryMetricReader()
    o = CostTracker(metrics=OtelMetrics(meter_provider=MeterProvider([reader])))
    for i in range(events):
        for tracker in (t, o):
            rid = uuid.uuid4()
            kw = {**START_KW, "metadata": {**START_KW["metadata"], "user_id": f"u{i % 50}"}}
            tracker.on_chat_model_start({}, [[]], run_id=rid, **kw)  # type: ignore[arg-type]
            tracker.on_llm_end(result, run_id=rid)
    t0 = time.perf_counter()
    scrapes = 20
    for _ in range(scrapes):
        text = generate_latest(registry)
    scrape_ms = (time.perf_counter() - t0) / scrapes * 1e3
    series = text.count(b"\nllmledger_cost_usd_total{")
    t0 = time.perf_counter()
    reader.get_metrics_data()
    collect_ns = (time.perf_counter() - t0) / events * 1e9
    return scrape_ms, collect_ns, series


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    result = realistic_result()
    handlers = {
        "CostTracker, no metrics": CostTracker,
        "metrics='prometheus'": prometheus,
        "metrics='otel'": otel(args.events),
        "OpenLIT-style on_record": openlit_style,
    }
    best = {name: float("inf") for name in handlers}
    for _ in range(args.repeat):
        for name, make in handlers.items():
            best[name] = min(best[name], bench(make, result, args.events, 1, 1))
    ref = best["CostTracker, no metrics"]
    print(f"on_llm_end, {args.events} events, one thread, best of {args.repeat}")
    print(f"{'handler':<28} {'ns/call':>9} {'ratio':>7} {'added ns':>9}")
    for name, ns in best.items():
        print(f"{name:<28} {ns:>9.0f} {ns / ref:>7.2f} {ns - ref:>9.0f}")
    scrape_ms, collect_ns, series = collect_costs(min(args.events, 20_000))
    print(
        f"\nAt collection time (not on the call's path): a Prometheus scrape of {series} series "
        f"takes {scrape_ms:.2f} ms; an OpenTelemetry collect records the buffered calls at "
        f"{collect_ns:.0f} ns per call."
    )


if __name__ == "__main__":
    main()
