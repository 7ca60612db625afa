"""OpenTelemetry metrics in the GenAI semantic conventions' names, over the core's records.

The conventions' instruments are histograms, and the OpenTelemetry API records a histogram one
value at a time; llmledger does not call it per LLM call. The core keeps each finished call's
observation in a bounded buffer in its end path (tens of nanoseconds), and this adapter hands
the buffer to the histograms when the meter provider collects (an observable instrument's
callback runs first at every collection). Needs only `opentelemetry-api` (the
`llmledger[otel]` extra); the application brings the SDK and its exporter.

Conventions followed: OpenTelemetry GenAI semantic conventions v1.37.0 (the first with
`gen_ai.provider.name`), status Development. Cost follows the open proposal for GenAI cost
(`gen_ai.client.operation.cost`, USD), not yet part of the conventions.

Example:
    >>> from opentelemetry.sdk.metrics import MeterProvider
    >>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    >>> from llmledger import CostTracker, OtelMetrics
    >>> reader = InMemoryMetricReader()
    >>> tracker = CostTracker(metrics=OtelMetrics(meter_provider=MeterProvider([reader])))
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from llmledger import _core

__all__ = ["SEMCONV_SCHEMA_URL", "SEMCONV_VERSION", "OtelMetrics"]

#: The GenAI semantic conventions version followed.
SEMCONV_VERSION = "1.37.0"
SEMCONV_SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

#: Observations buffered at most between two collections (past it they are dropped, logged).
DEFAULT_MAX_OBSERVATIONS = 100_000

# The conventions' advised bucket boundaries.
_TOKEN_BUCKETS = [4.0**i for i in range(14)]
_DURATION_BUCKETS = [float(b) for b in _core.Metrics.duration_buckets()]
_COST_BUCKETS = [1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 100.0]

# LangChain's `ls_provider` -> the conventions' `gen_ai.provider.name` well-known values.
_PROVIDERS = {
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "google_genai": "gcp.gen_ai",
    "google_vertexai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "mistralai": "mistral_ai",
    "xai": "x_ai",
    "ibm": "ibm.watsonx.ai",
}

_log = logging.getLogger("llmledger")

BudgetSource = Callable[[], Sequence[dict[str, Any]]]


def provider_name(ls_provider: str | None) -> str:
    """The `gen_ai.provider.name` of a LangChain provider name (unknown: as it is)."""
    if not ls_provider:
        return "_OTHER"
    return _PROVIDERS.get(ls_provider, ls_provider)


class _Meter:
    """The instruments of one MeterProvider, shared by every OtelMetrics on it (an SDK hands
    back the first instrument of a name, callbacks and all, to a second creation)."""

    _all: ClassVar[weakref.WeakKeyDictionary[MeterProvider, _Meter]] = weakref.WeakKeyDictionary()
    _lock = threading.Lock()

    @classmethod
    def of(cls, provider: MeterProvider) -> _Meter:
        with cls._lock:
            meter = cls._all.get(provider)
            if meter is None:
                meter = cls._all[provider] = cls(provider)
            return meter

    def __init__(self, provider: MeterProvider) -> None:
        # Held strongly until their tracker is gone and their last calls were recorded: a
        # short-lived tracker's calls are not lost to the garbage collector.
        self.adapters: list[OtelMetrics] = []
        self._adapters_lock = threading.Lock()
        meter = provider.get_meter("llmledger", _core.__version__, schema_url=SEMCONV_SCHEMA_URL)
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.cost = meter.create_histogram(
            "gen_ai.client.operation.cost",
            unit="USD",
            description="Exact cost of the GenAI operation (priced calls only).",
            explicit_bucket_boundaries_advisory=_COST_BUCKETS,
        )
        # Runs first at every collection: hands each tracker's buffered calls to the
        # histograms, then reports the budgets.
        meter.create_observable_gauge(
            "llmledger.budget.remaining",
            callbacks=[self._collect],
            unit="USD",
            description="A budget's limit - spent - reserved in its current window.",
        )

    def add(self, adapter: OtelMetrics) -> None:
        with self._adapters_lock:
            self.adapters.append(adapter)

    def _collect(self, options: CallbackOptions) -> Iterable[Observation]:
        out: list[Observation] = []
        with self._adapters_lock:
            adapters = list(self.adapters)
        gone = []
        for adapter in adapters:
            adapter.flush()
            budgets = adapter._budget_source()
            if budgets is None:
                gone.append(adapter)
            else:
                out.extend(adapter._budget_observations(budgets))
        if gone:
            with self._adapters_lock:
                self.adapters = [a for a in self.adapters if a not in gone]
        return out


class OtelMetrics:
    """Emits `gen_ai.client.token.usage`, `gen_ai.client.operation.duration` and
    `gen_ai.client.operation.cost` for every call a tracker records, and budget gauges.

    Args:
        meter_provider: the MeterProvider to use (default: the API's global one, as
            `opentelemetry.metrics.set_meter_provider` set it).
        max_observations: calls buffered at most between two collections.

    Give it to one tracker: `CostTracker(metrics=OtelMetrics(...))`.
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        max_observations: int = DEFAULT_MAX_OBSERVATIONS,
    ) -> None:
        provider = meter_provider or otel_metrics.get_meter_provider()
        self._metrics = _core.Metrics(series=False, max_observations=max_observations)
        # A weak reference to the tracker's method: the meter keeps this adapter, not the
        # tracker.
        self._budgets: weakref.WeakMethod[BudgetSource] | None = None
        self._attached = False
        self._meter = _Meter.of(provider)

    def _attach(self, budgets: BudgetSource | None) -> _core.Metrics:
        if self._attached:
            raise ValueError("this OtelMetrics already exports another tracker")
        self._attached = True
        if budgets is not None:
            self._budgets = weakref.WeakMethod(budgets)
        self._meter.add(self)
        return self._metrics

    def _budget_source(self) -> BudgetSource | None:
        """The tracker's budget states, or None once the tracker is gone."""
        return None if self._budgets is None else self._budgets()

    def _budget_observations(self, budgets: BudgetSource) -> list[Observation]:
        out = []
        for st in budgets():
            attrs = {"llmledger.budget.name": st["budget"], "llmledger.budget.scope": st["scope"]}
            if st["value"] is not None:
                attrs["llmledger.budget.value"] = st["value"]
            out.append(Observation(float(st["remaining"]), attrs))
        return out

    def flush(self) -> int:
        """Records the calls buffered since the last collection; returns how many."""
        observations, dropped = self._metrics.take_observations()
        if dropped:
            _log.warning(
                "llmledger: %d calls were not recorded in OpenTelemetry metrics: more than "
                "max_observations calls between two collections (collect more often, or "
                "raise OtelMetrics(max_observations=...))",
                dropped,
            )
        m = self._meter
        tokens, duration, cost = m.tokens, m.duration, m.cost
        for operation, provider, req_model, resp_model, error_type, toks, usd, secs in observations:
            attrs: dict[str, str] = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": provider_name(provider),
            }
            if req_model:
                attrs["gen_ai.request.model"] = req_model
            if resp_model:
                attrs["gen_ai.response.model"] = resp_model
            if secs is not None:
                d_attrs = attrs if error_type is None else {**attrs, "error.type": error_type}
                duration.record(secs, d_attrs)
            if toks is not None:
                n_in, n_cached, n_write, n_out, n_reasoning = toks
                tokens.record(n_in, {**attrs, "gen_ai.token.type": "input"})
                tokens.record(n_out, {**attrs, "gen_ai.token.type": "output"})
                # Parts of input and output, as the gen_ai.usage.* attributes name them.
                for kind, n in (
                    ("cache_read", n_cached),
                    ("cache_creation", n_write),
                    ("reasoning", n_reasoning),
                ):
                    if n:
                        tokens.record(n, {**attrs, "gen_ai.token.type": kind})
            if usd is not None:
                cost.record(float(usd), attrs)
        return len(observations)
