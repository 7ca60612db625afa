"""`track_costs()`: track every LangChain run inside a `with` block, no callbacks to pass.

Also zero-code adoption: when the environment has `LLMLEDGER_LEDGER=costs.db` (or a `.jsonl`
path) as llmledger is imported, every LangChain run in the process is tracked into that ledger
(`LLMLEDGER_DURABILITY=sync` for per-call commits; `LLMLEDGER_LOCAL_ENDPOINTS` lists
`local_endpoints`, separated by commas or spaces). `ledger_tracker()` returns that tracker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from llmledger import _core
from llmledger.callback import _HOOKS, CostTracker, PricesArg

__all__ = ["ledger_tracker", "track_costs"]

LEDGER_ENV = "LLMLEDGER_LEDGER"
DURABILITY_ENV = "LLMLEDGER_DURABILITY"
LOCAL_ENDPOINTS_ENV = "LLMLEDGER_LOCAL_ENDPOINTS"


class _Fanout(BaseCallbackHandler):
    """Forwards every event to the trackers of nested `track_costs()` blocks."""

    raise_error = True
    run_inline = True

    def __init__(self, trackers: tuple[CostTracker, ...]) -> None:
        super().__init__()
        self.trackers = trackers

    def __copy__(self) -> _Fanout:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Fanout:
        return self


def _forward(name: str) -> Any:
    def hook(self: _Fanout, *args: Any, **kwargs: Any) -> None:
        for t in self.trackers:
            getattr(t, name)(*args, **kwargs)

    hook.__name__ = name
    return hook


for _name in _HOOKS:
    setattr(_Fanout, _name, _forward(_name))

# One context variable and one configure hook for the whole process (get_usage_metadata_callback
# registers a new hook on every call).
_active: ContextVar[BaseCallbackHandler | None] = ContextVar("llmledger_track_costs", default=None)
register_configure_hook(_active, inheritable=True)


@contextmanager
def track_costs(
    *,
    attribute: tuple[str, ...] | list[str] = ("user_id", "session_id"),
    prices: PricesArg = None,
    max_records: int | None = None,
    budgets: _core.Budget | Sequence[_core.Budget] | None = None,
    on_alert: Callable[[_core.BudgetAlert], object] | None = None,
    alert_webhook: str | None = None,
    log_alerts: bool = True,
    on_record: Callable[[dict[str, Any]], object] | None = None,
    local_endpoints: Iterable[str] | None = None,
) -> Iterator[CostTracker]:
    """Tracks every LangChain LLM call made inside the block (threads of `batch`, asyncio
    tasks and LangGraph graphs included) and yields the `CostTracker`.

    Nested blocks each count what ran inside them; the outer block counts it too. Tracking
    stops at the block's end, also when the block raises. `budgets`, `on_alert`,
    `alert_webhook`, `log_alerts`, `on_record` and `local_endpoints` are as for `CostTracker`:
    a call a budget refuses raises `BudgetExceededError` inside the block.

    Example:
        >>> from llmledger import track_costs
        >>> with track_costs() as cost:
        ...     pass  # llm.invoke("hello")
        >>> cost.total_cost
        Decimal('0')
    """
    tracker = CostTracker(
        attribute=attribute,
        prices=prices,
        max_records=max_records,
        budgets=budgets,
        on_alert=on_alert,
        alert_webhook=alert_webhook,
        log_alerts=log_alerts,
        on_record=on_record,
        local_endpoints=local_endpoints,
    )
    outer = _active.get()
    if outer is None:
        handler: BaseCallbackHandler = tracker
    elif isinstance(outer, _Fanout):
        handler = _Fanout((*outer.trackers, tracker))
    else:
        handler = _Fanout((outer, tracker))  # type: ignore[arg-type]
    token = _active.set(handler)
    try:
        yield tracker
    finally:
        _active.reset(token)


def _ledger_from_env() -> CostTracker | None:
    path = os.environ.get(LEDGER_ENV, "").strip()
    if not path:
        return None
    try:
        # max_records=0: a long-running process keeps totals in memory, records only on disk.
        return CostTracker(
            store=path,
            durability=os.environ.get(DURABILITY_ENV, "").strip() or "batch",
            max_records=0,
            local_endpoints=os.environ.get(LOCAL_ENDPOINTS_ENV, "").replace(",", " ").split(),
        )
    except Exception as e:  # never break the application over its ledger
        # The value is not repeated: a postgresql:// URL may hold a password (the core's
        # error names the ledger without it).
        logging.getLogger("llmledger").error(
            "llmledger: %s is set but the ledger cannot be opened (calls are not tracked): %s",
            LEDGER_ENV,
            e,
        )
        return None


# A context variable whose default is the process-wide tracker: every callback manager
# LangChain configures, in any thread or task, picks it up through the configure hook.
_env_tracker = _ledger_from_env()
if _env_tracker is not None:
    _ledger_var: ContextVar[CostTracker | None] = ContextVar(
        "llmledger_ledger", default=_env_tracker
    )
    register_configure_hook(_ledger_var, inheritable=True)


def ledger_tracker() -> CostTracker | None:
    """The process-wide tracker that `LLMLEDGER_LEDGER` turned on, or None.

    Example:
        >>> from llmledger import ledger_tracker
        >>> ledger_tracker() is None  # unless LLMLEDGER_LEDGER was set at import
        True
    """
    return _env_tracker
