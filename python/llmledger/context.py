"""`track_costs()`: track every LangChain run inside a `with` block, no callbacks to pass."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from llmledger.callback import CostTracker, PricesArg

__all__ = ["track_costs"]


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


for _name in (
    "on_chat_model_start",
    "on_llm_start",
    "on_llm_new_token",
    "on_llm_end",
    "on_llm_error",
    "on_chain_start",
    "on_chain_end",
    "on_chain_error",
    "on_tool_start",
    "on_tool_end",
    "on_tool_error",
    "on_retriever_start",
    "on_retriever_end",
    "on_retriever_error",
):
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
) -> Iterator[CostTracker]:
    """Tracks every LangChain LLM call made inside the block (threads of `batch`, asyncio
    tasks and LangGraph graphs included) and yields the `CostTracker`.

    Nested blocks each count what ran inside them; the outer block counts it too. Tracking
    stops at the block's end, also when the block raises.

    Example:
        >>> from llmledger import track_costs
        >>> with track_costs() as cost:
        ...     pass  # llm.invoke("hello")
        >>> cost.total_cost
        Decimal('0')
    """
    tracker = CostTracker(attribute=attribute, prices=prices, max_records=max_records)
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
