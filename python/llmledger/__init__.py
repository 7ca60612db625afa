"""llmledger: the cost ledger for LLM applications.

Exact, attributed costs of every LangChain call, priced by a Rust core with a bundled,
date-aware price catalog, and token counts from OpenAI's own vocabularies, offline.

Reading a durable ledger back: `read_ledger(path, since=...)` streams its records,
`ledger_summary(path, by=[...])` gives the rows and totals of `llmledger report`,
`ledger_advise(path, since=...)` the findings of `llmledger advise`.

Importing llmledger is cheap: the LangChain parts (`CostTracker`, `track_costs`) load on
first use, and no tokenizer vocabulary loads before the first count that needs it.

Example:
    >>> from llmledger import cost, count_tokens
    >>> cost("gpt-4o", input_tokens=1000, output_tokens=100)
    Decimal('0.0035')
    >>> count_tokens("hello world", model="gpt-4o")
    2
"""

import os
from typing import TYPE_CHECKING, Any

from llmledger._core import (
    Budget,
    BudgetAlert,
    BudgetBackendError,
    BudgetExceededError,
    LedgerError,
    LedgerReader,
    LlmLedgerError,
    PriceCatalogError,
    __version__,
    catalog_entries,
    catalog_version,
    cost,
    count_message_tokens,
    count_tokens,
    count_tokens_batch,
    ledger_advise,
    ledger_summary,
    price,
    read_ledger,
    token_memo,
    tokenizer_for,
)

if TYPE_CHECKING:
    from llmledger.callback import CostTracker
    from llmledger.context import ledger_tracker, track_costs
    from llmledger.otel import OtelMetrics
    from llmledger.prometheus import PrometheusMetrics
    from llmledger.watch import live

__all__ = [
    "Budget",
    "BudgetAlert",
    "BudgetBackendError",
    "BudgetExceededError",
    "CostTracker",
    "LedgerError",
    "LedgerReader",
    "LlmLedgerError",
    "OtelMetrics",
    "PriceCatalogError",
    "PrometheusMetrics",
    "__version__",
    "catalog_entries",
    "catalog_version",
    "cost",
    "count_message_tokens",
    "count_tokens",
    "count_tokens_batch",
    "ledger_advise",
    "ledger_summary",
    "ledger_tracker",
    "live",
    "price",
    "read_ledger",
    "token_memo",
    "tokenizer_for",
    "track_costs",
]

# The LangChain-facing parts load langchain-core (~0.5 s): imported on first use, so the
# `llmledger` command starts fast. With LLMLEDGER_LEDGER set they load now, which turns
# tracking on for every run in the process.
_LAZY = {
    "CostTracker": "llmledger.callback",
    "track_costs": "llmledger.context",
    "ledger_tracker": "llmledger.context",
    # The terminal dashboard loads rich (the `llmledger[watch]` extra) only when used.
    "live": "llmledger.watch",
    # Metrics adapters load prometheus_client / opentelemetry-api (extras) only when used.
    "PrometheusMetrics": "llmledger.prometheus",
    "OtelMetrics": "llmledger.otel",
}

if os.environ.get("LLMLEDGER_LEDGER", "").strip():
    import llmledger.context  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmledger' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
