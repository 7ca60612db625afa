"""llmledger: the cost ledger for LLM applications.

Exact, attributed costs of every LangChain call, priced by a Rust core with a bundled,
date-aware price catalog.

Example:
    >>> from llmledger import CostTracker, cost
    >>> cost("gpt-4o", input_tokens=1000, output_tokens=100)
    Decimal('0.0035')
"""

from llmledger._core import (
    LedgerError,
    LlmLedgerError,
    PriceCatalogError,
    __version__,
    catalog_entries,
    catalog_version,
    cost,
    price,
)
from llmledger.callback import CostTracker
from llmledger.context import ledger_tracker, track_costs

__all__ = [
    "CostTracker",
    "LedgerError",
    "LlmLedgerError",
    "PriceCatalogError",
    "__version__",
    "catalog_entries",
    "catalog_version",
    "cost",
    "ledger_tracker",
    "price",
    "track_costs",
]
