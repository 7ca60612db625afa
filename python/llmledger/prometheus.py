"""Prometheus metrics: a `prometheus_client` collector over the core's own aggregates.

Nothing is updated from Python per call: the core counts each call (counters per label set,
duration bucket counters, exact decimal cost) in its end path, and this collector reads those
aggregates when Prometheus scrapes. Needs the `llmledger[prometheus]` extra.

Example:
    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> from llmledger import CostTracker, PrometheusMetrics
    >>> registry = CollectorRegistry()
    >>> tracker = CostTracker(metrics=PrometheusMetrics(registry=registry, labels=["feature"]))
    >>> b"llmledger_cost_usd_total" in generate_latest(registry)
    False
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from os import PathLike
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from llmledger import _core

__all__ = ["DEFAULT_TOP_N", "PrometheusMetrics"]

#: Distinct values each label keeps (model and provider included) before `other`.
DEFAULT_TOP_N = 20

_TOKEN_TYPES = ("input", "cached", "cache_write", "output", "reasoning")
_RESERVED = {"model", "provider", "type", "status", "usage_source", "le", "budget", "scope"}
_log = logging.getLogger("llmledger")
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")

BudgetSource = Callable[[], Sequence[dict[str, Any]]]


def _label_name(key: str) -> str:
    name = _LABEL_NAME.sub("_", key)
    if not name or name[0].isdigit() or name.startswith("__"):
        name = "attr_" + name.lstrip("_")
    if name in _RESERVED:
        raise ValueError(
            f"metrics label {key!r} would clash with llmledger's own label {name!r}; "
            "pick another metadata key"
        )
    return name


def _bounds() -> list[str]:
    return [repr(float(b)) for b in _core.Metrics.duration_buckets()] + ["+Inf"]


class PrometheusMetrics:
    """Exports a tracker's costs, tokens, calls, durations and budgets to Prometheus.

    Args:
        registry: the `prometheus_client` registry to register with (default: the global
            `REGISTRY`, which `start_http_server` and `make_wsgi_app` serve).
        labels: labels beyond `model` and `provider`: captured metadata keys (`feature`,
            `user_id`; captured automatically) or built-in dimensions (`root_run_name`,
            `service_tier`, `requested_model`).
        top_n: distinct values each label keeps (model and provider included); the values seen
            after the first `top_n` are counted under `other`, so a `user_id` label can never
            explode a Prometheus server. Budget gauges keep the `top_n` most spent scope values
            of each budget.

    Give it to one tracker: `CostTracker(metrics=PrometheusMetrics(...))`.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        labels: Iterable[str] = (),
        top_n: int = DEFAULT_TOP_N,
        _ledger: str | PathLike[str] | None = None,
        _ledger_budgets: Sequence[str] = (),
    ) -> None:
        if isinstance(labels, str):
            labels = (labels,)
        labels = list(labels)
        self._label_names = ["model", "provider", *(_label_name(k) for k in labels)]
        self._metrics = _core.Metrics(
            labels=labels, top_n=top_n, ledger=_ledger, budgets=list(_ledger_budgets)
        )
        self._registry = REGISTRY if registry is None else registry
        self._budgets: BudgetSource | None = self._ledger_budget_states if _ledger_budgets else None
        self._attached = False
        self._bounds = _bounds()

    @classmethod
    def of_ledger(
        cls,
        ledger: str | PathLike[str],
        *,
        registry: CollectorRegistry | None = None,
        labels: Iterable[str] = (),
        top_n: int = DEFAULT_TOP_N,
        budgets: Iterable[str] = (),
    ) -> PrometheusMetrics:
        """Metrics of a ledger other processes write: a SQLite or JSONL file, or a
        `postgresql://` URL. Each scrape reads only the rows added since the last one.
        `budgets` (`["10/day", "2.50/hour", "5/rolling:15m", "500"]`, USD, UTC windows) are
        served as the budget gauges, their spend computed from the ledger's exact costs.
        Registered at once."""
        if isinstance(budgets, str):
            budgets = (budgets,)
        m = cls(
            registry=registry,
            labels=labels,
            top_n=top_n,
            _ledger=ledger,
            _ledger_budgets=list(budgets),
        )
        m._register()
        return m

    def _ledger_budget_states(self) -> list[dict[str, Any]]:
        return [
            {
                "budget": g["budget"],
                "scope": "global",
                "value": None,
                "limit": g["limit"],
                "spent": g["spent"],
                "reserved": Decimal(0),  # a ledger holds finished calls only
                "remaining": g["remaining"],
                "resets_at": g["window_end"],
            }
            for g in self._metrics.budget_gauges()
        ]

    # ---- wiring (called by CostTracker) -------------------------------------------------
    def _attach(self, budgets: BudgetSource | None) -> _core.Metrics:
        if self._attached:
            raise ValueError("this PrometheusMetrics already exports another tracker")
        self._budgets = budgets
        self._register()
        return self._metrics

    def _register(self) -> None:
        try:
            self._registry.register(self)
        except ValueError as e:
            raise ValueError(
                f"{e}: another llmledger collector is registered in this registry already "
                "(one tracker per registry: pass registry=CollectorRegistry(), or "
                "unregister() the other)"
            ) from None
        self._attached = True

    def unregister(self) -> None:
        """Removes the collector from its registry."""
        if self._attached:
            self._registry.unregister(self)
            self._attached = False

    # ---- prometheus_client's collector protocol -----------------------------------------
    def describe(self) -> list[Metric]:
        """The metric names (no samples), so a registry refuses a second llmledger collector."""
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        """Reads the core's aggregates (a followed ledger first reads its new rows)."""
        try:
            self._metrics.poll()
        except _core.LlmLedgerError as e:
            # A ledger that cannot be read now (replaced by another file, a disk error): the
            # scrape still answers, with what was counted so far.
            _log.warning("llmledger metrics: %s (serving the figures read so far)", e)
        yield from self._families(self._metrics.series(), self._budget_states())

    def _budget_states(self) -> list[dict[str, Any]]:
        if self._budgets is None:
            return []
        return list(self._budgets())

    def _families(
        self,
        series: Sequence[Any] = (),
        budgets: Sequence[dict[str, Any]] = (),
    ) -> Iterator[Metric]:
        names = self._label_names
        cost = CounterMetricFamily(
            "llmledger_cost_usd", "Exact cost of the priced LLM calls, in USD.", labels=names
        )
        tokens = CounterMetricFamily(
            "llmledger_tokens",
            "Tokens by type: input (all input, cached included), cached (input read from a "
            "prompt cache), cache_write, output (reasoning included), reasoning. "
            "LLM-cache hits excluded.",
            labels=[*names, "type"],
        )
        calls = CounterMetricFamily(
            "llmledger_calls",
            "LLM calls by status (ok, error, refused by a budget) and usage source.",
            labels=[*names, "status", "usage_source"],
        )
        unpriced = CounterMetricFamily(
            "llmledger_unpriced_calls",
            "Calls whose cost is unknown (unknown model or price); not in the cost.",
            labels=names,
        )
        duration = HistogramMetricFamily(
            "llmledger_call_duration_seconds",
            "Seconds from an LLM call's start to its end (calls whose start was seen).",
            labels=names,
        )
        for labels, by_status, toks, usd, n_unpriced, buckets, dsum, _count in series:
            values = list(labels)
            cost.add_metric(values, float(usd))
            for kind, n in zip(_TOKEN_TYPES, toks, strict=True):
                tokens.add_metric([*values, kind], n)
            for status, source, n in by_status:
                calls.add_metric([*values, status, source], n)
            unpriced.add_metric(values, n_unpriced)
            duration.add_metric(values, list(zip(self._bounds, buckets, strict=True)), dsum)
        yield from (cost, tokens, calls, unpriced, duration)
        yield from self._budget_families(budgets)

    def _budget_families(self, budgets: Sequence[dict[str, Any]]) -> Iterator[Metric]:
        bl = ["budget", "scope", "value"]
        fams = {
            "limit": GaugeMetricFamily(
                "llmledger_budget_limit_usd", "A budget's limit, in USD.", labels=bl
            ),
            "spent": GaugeMetricFamily(
                "llmledger_budget_spent_usd",
                "Spent in the budget's current window, in USD.",
                labels=bl,
            ),
            "reserved": GaugeMetricFamily(
                "llmledger_budget_reserved_usd",
                "Reserved by calls in flight, in USD.",
                labels=bl,
            ),
            "remaining": GaugeMetricFamily(
                "llmledger_budget_remaining_usd",
                "limit - spent - reserved, never below zero, in USD.",
                labels=bl,
            ),
        }
        end = GaugeMetricFamily(
            "llmledger_budget_window_end_timestamp_seconds",
            "When the budget's current window resets (calendar) or its oldest spend leaves "
            "it (rolling), as a Unix time.",
            labels=bl,
        )
        for s in _top_budget_values(budgets, self._metrics.top_n):
            values = [s["budget"], s["scope"], s["value"] or ""]
            for key, fam in fams.items():
                fam.add_metric(values, float(s[key]))
            if s["resets_at"] is not None:
                end.add_metric(values, s["resets_at"].timestamp())
        yield from fams.values()
        yield end


def _top_budget_values(budgets: Sequence[dict[str, Any]], top_n: int) -> list[dict[str, Any]]:
    """Each budget's `top_n` most spent scope values (a per-user budget has one per user)."""
    by_budget: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in budgets:
        by_budget.setdefault((s["budget"], s["scope"]), []).append(s)
    out: list[dict[str, Any]] = []
    for states in by_budget.values():
        states.sort(key=lambda s: (-Decimal(s["spent"]), s["value"] or ""))
        out.extend(states[:top_n])
    return out
