"""`CostTracker`: the LangChain callback handler that prices every LLM call exactly.

The handler is a thin shim: every hook forwards to the Rust core (`llmledger._core.Tracker`),
which reads usage, prices it with the bundled catalog and records it. Nothing is computed here.
"""

from __future__ import annotations

import atexit
import datetime
import os
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from llmledger import _core, _fork

__all__ = ["CostTracker"]

PricesArg = Mapping[str, Any] | str | os.PathLike[str] | None
StoreArg = str | os.PathLike[str] | None
# "prometheus" / "otel", a PrometheusMetrics / OtelMetrics, or a list of them.
MetricsArg = Any

# Trackers with a durable ledger or an alert webhook, flushed and closed when the interpreter
# exits cleanly.
_to_close: weakref.WeakSet[CostTracker] = weakref.WeakSet()


# The LangChain hooks the tracker implements, each a function of the core (`_core.bind_hook`).
_HOOKS: tuple[str, ...] = _core.HOOK_NAMES


def _metric_adapters(metrics: MetricsArg) -> list[Any]:
    """The metrics adapters `metrics=` names (their libraries are imported only here)."""
    if metrics is None:
        return []
    items = [metrics] if isinstance(metrics, str) or not isinstance(metrics, Sequence) else metrics
    out = []
    for m in items:
        if m == "prometheus":
            from llmledger.prometheus import PrometheusMetrics

            m = PrometheusMetrics()
        elif m in ("otel", "opentelemetry"):
            from llmledger.otel import OtelMetrics

            m = OtelMetrics()
        elif isinstance(m, str) or not hasattr(m, "_attach"):
            raise ValueError(
                f"metrics={m!r}: use 'prometheus', 'otel', a llmledger.PrometheusMetrics or "
                "llmledger.OtelMetrics, or a list of these"
            )
        out.append(m)
    return out


@atexit.register
def _close_stores() -> None:
    for tracker in list(_to_close):
        tracker.close()


class _LangChainHooks(BaseCallbackHandler):
    """LangChain's callback hooks, as `CostTracker` implements them.

    A base class of its own so that `help(CostTracker)` lists the tracker's API (totals,
    summary, records, report, budgets, ...) first and these hooks after it.
    """

    _hooks: dict[str, Callable[..., None]]

    # An instance's hooks are the Rust core's functions (see `__init__`); these methods
    # document them and serve calls made through the class (`super().on_llm_end(...)` in a
    # subclass). None raises into the application: an internal error or panic is logged to
    # the `llmledger` logger and the LLM call goes on. The one exception: a budget refusing a
    # call (start hooks) or cutting a stream (`on_llm_new_token`) raises
    # `BudgetExceededError`, which LangChain passes on. A call refused at its start is
    # forgotten by every other budgeted tracker.

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._hooks["on_chat_model_start"](
            serialized,
            messages,
            run_id=run_id,
            parent_run_id=parent_run_id,
            tags=tags,
            metadata=metadata,
            **kwargs,
        )

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._hooks["on_llm_start"](
            serialized,
            prompts,
            run_id=run_id,
            parent_run_id=parent_run_id,
            tags=tags,
            metadata=metadata,
            **kwargs,
        )

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._hooks["on_llm_new_token"](token, run_id=run_id, **kwargs)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._hooks["on_llm_end"](response, run_id=run_id, **kwargs)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._hooks["on_llm_error"](error, run_id=run_id, **kwargs)

    # Runs above the LLM (chains, graph nodes, tools, retrievers) are remembered only to find
    # each call's root run.
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._hooks["on_chain_start"](
            serialized, inputs, run_id=run_id, parent_run_id=parent_run_id, **kwargs
        )

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._hooks["on_chain_end"](outputs, run_id=run_id, **kwargs)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._hooks["on_chain_error"](error, run_id=run_id, **kwargs)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._hooks["on_tool_start"](
            serialized, input_str, run_id=run_id, parent_run_id=parent_run_id, **kwargs
        )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._hooks["on_tool_end"](output, run_id=run_id, **kwargs)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._hooks["on_tool_error"](error, run_id=run_id, **kwargs)

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._hooks["on_retriever_start"](
            serialized, query, run_id=run_id, parent_run_id=parent_run_id, **kwargs
        )

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._hooks["on_retriever_end"](documents, run_id=run_id, **kwargs)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._hooks["on_retriever_error"](error, run_id=run_id, **kwargs)


class CostTracker(_LangChainHooks):
    """Tracks the exact cost of every LLM call it sees.

    A drop-in for `get_openai_callback()`'s handler (same attributes, `total_cost` is a
    `Decimal`), for every provider in the catalog, with attribution by metadata keys, tags
    and the root chain or graph run.

    Example:
        >>> from llmledger import CostTracker
        >>> tracker = CostTracker()
        >>> # llm.invoke("hi", config={"callbacks": [tracker], "metadata": {"user_id": "u1"}})
        >>> tracker.total_cost
        Decimal('0')

    Args:
        attribute: metadata keys to attribute calls by (default `user_id`, `session_id`).
        prices: extra or replacement prices: a dict (`{"my-model": {"input": "1.00",
            "output": "2.00"}}`, USD per 1M tokens, or the full catalog schema) or a path to a
            JSON or TOML file in the same schema.
        max_records: keep at most this many per-call records in memory (oldest dropped);
            totals always count every call. `None` keeps all.
        estimate: when a response reports no token usage (a stream without usage, a
            provider that omits it), count the prompt and the generated text with
            llmledger's tokenizer and price that, marking the record `usage_source =
            "estimated"`. The prompt is held in memory until the call ends, never stored.
            `False` records such calls as unpriced instead.
        fingerprints: record, per call, keyed hashes of its prompt's prefixes and of the whole
            request (model, prompt, sampling parameters), never the text, and its output cap:
            what `advise()` needs to find repeated prefixes, duplicate requests and uncapped
            outputs. The key is the ledger's (`<ledger>.key`, owner-only) or, without a
            ledger, the tracker's. `None` (the default): on with `store=` or `advise=True`
            (where something reads them), off otherwise (they cost a start + end pair about
            a third of its time); `True` / `False` force them.
        advise: log a hint on the `llmledger` logger the first time an advisor rule fires
            for a scope (once each), with its saving so far: the tracker looks at its latest
            calls after calls 5, 10, 20, 50 and every 100th. See `advise()`.
        store: a durable ledger file every call is also written to: `"costs.db"` (SQLite,
            the default for any other extension) or `"costs.jsonl"` (JSON lines). Several
            processes may share one. A `"postgresql://user@host/db"` URL writes to PostgreSQL,
            shared by hosts, spooling locally while the database is down, over TLS as its
            libpq `sslmode` says (`?sslmode=verify-full&sslrootcert=ca.pem`; docs/hosts.md).
            `None` keeps memory only.
        durability: `"batch"` (default: a writer thread commits in batches; a crash loses at
            most the last batch) or `"sync"` (each call is committed before `on_llm_end`
            returns). `flush()` waits for the writer; an exit hook flushes on a clean exit.
        budgets: `llmledger.Budget`s checked before every call: each call's worst-case cost
            (prompt counted, output bounded by `max_tokens` or the model's output limit) is
            reserved at its start, and a blocking budget that cannot take it raises
            `BudgetExceededError` there, before any request is sent. The reservation is
            settled to the real cost at the end. With `store=`, the current windows resume
            from the ledger.
        budget_store: `"redis://host:6379/0"` (or `rediss://`, with `user:password@`; a
            Redis Cluster as `"redis+cluster://host:port[,host:port...]"`) shares
            every budget window among all processes and hosts naming the same Redis, prefix
            and budgets (same names): one atomic script reserves each call in every budget it
            belongs to, settles it once by run id, and fires each threshold once per window
            for all hosts. Windows follow the Redis server's clock. With `store=`, a missing
            window (new, flushed or restarted Redis) is seeded once from the ledger. `None`
            (default): budgets live in this process. See docs/hosts.md.
        budget_prefix: the Redis keys' prefix and hash tag (`{llmledger}:...`, the default).
        budget_lease: seconds a reservation holds before Redis gives it back (a process that
            died mid-call blocks nothing longer; default 600, set it above your longest call).
        budget_timeout: seconds one Redis request may take (connect, read, write; default
            0.25). After a failure Redis is left alone for a second.
        budget_backend_error: what a call does when Redis cannot be asked: `"open"` (default:
            it goes on unchecked, logged and counted in `budget_store_info()`, and its cost is
            settled when Redis is back: availability over the limit) or `"closed"` (it is
            refused with `BudgetBackendError`, a `BudgetExceededError` subclass: the limit
            over availability).
        on_alert: called with a `BudgetAlert` when a budget threshold is reached or a call
            is refused (in the hook's thread; an exception in it is logged, never raised).
        log_alerts: also log each alert as a WARNING on the `llmledger` logger (default).
            `False` when `on_alert` or the webhook already reports them, so they do not
            print twice.
        alert_webhook: an http(s) URL every alert is POSTed to as JSON (Slack-compatible
            `text` plus structured fields), from a background thread with retries: it never
            slows a call. Logs name only its host.
        clock: a callable returning the time as a timezone-aware `datetime` (tests; default
            the system clock). Record times and budget windows follow it.
        on_record: called with each finished call's record (the same dict `records()`
            gives) right after the tracker's totals, budgets and ledger took it: in the hook's
            thread (the thread or asyncio task that made the call), with no llmledger lock
            held, so it may read `totals()`. An exception in it is logged on the `llmledger`
            logger with its traceback, never raised. Calls refused by a budget before they
            were sent have no record. `None` (the default) costs nothing.
        metrics: export to a monitoring system: `"prometheus"` (a collector on
            `prometheus_client`'s default registry; `llmledger[prometheus]`), `"otel"` (the
            OpenTelemetry API's global MeterProvider, GenAI semantic conventions;
            `llmledger[otel]`), a configured `llmledger.PrometheusMetrics(...)` /
            `llmledger.OtelMetrics(...)`, or a list of these. The core counts each call in
            its own aggregates, read when the backend collects; see docs/metrics.md. `None`
            (the default) imports nothing and costs nothing.
        local_endpoints: base URLs of your own OpenAI-compatible servers (vLLM, LM Studio,
            llama.cpp's server, ...), e.g. `["http://localhost:8000/v1"]`: a call whose
            client's base URL (`ChatOpenAI(base_url=...)`, AzureChatOpenAI's
            `azure_endpoint`, ChatAnthropic's `base_url`) lies under one is recorded as local,
            as Ollama's are: cost 0, `price_entry` `local:<endpoint>`, counted in
            `totals()["local_calls"]`, unless `prices=` prices its model. Matched by prefix
            on whole path segments after normalising (scheme and host lower-cased, default
            port and trailing slash dropped); `localhost` and `127.0.0.1` are different
            hosts. A loopback URL is never assumed local (a LiteLLM proxy on localhost
            forwards to paid APIs). A malformed entry raises `ValueError`.
    """

    # Only a deliberate budget stop may escape; the shim catches everything else itself.
    raise_error: bool = True
    # No thread hop per event in async runs: the core is thread-safe and fast.
    run_inline: bool = True

    def __init__(
        self,
        *,
        attribute: Iterable[str] = ("user_id", "session_id"),
        prices: PricesArg = None,
        max_records: int | None = None,
        estimate: bool = True,
        fingerprints: bool | None = None,
        advise: bool = False,
        store: StoreArg = None,
        durability: str = "batch",
        budgets: _core.Budget | Sequence[_core.Budget] | None = None,
        on_alert: Callable[[_core.BudgetAlert], object] | None = None,
        alert_webhook: str | None = None,
        clock: Callable[[], datetime.datetime] | None = None,
        log_alerts: bool = True,
        on_record: Callable[[dict[str, Any]], object] | None = None,
        budget_store: str | None = None,
        budget_prefix: str | None = None,
        budget_lease: float | None = None,
        budget_timeout: float | None = None,
        budget_backend_error: str | None = None,
        metrics: MetricsArg = None,
        local_endpoints: Iterable[str] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(attribute, str):
            attribute = (attribute,)
        adapters = _metric_adapters(metrics)
        core_metrics = [a._attach(self._budget_states) for a in adapters]
        try:
            self._core = _core.Tracker(
                attribute=list(attribute),
                prices=prices,
                max_records=max_records,
                estimate=estimate,
                fingerprints=fingerprints,
                advise=advise,
                store=store,
                durability=durability,
                budgets=budgets,
                on_alert=on_alert,
                alert_webhook=alert_webhook,
                clock=clock,
                log_alerts=log_alerts,
                on_record=on_record,
                budget_store=budget_store,
                budget_prefix=budget_prefix,
                budget_lease=budget_lease,
                budget_timeout=budget_timeout,
                budget_backend_error=budget_backend_error,
                metrics=core_metrics or None,
                local_endpoints=local_endpoints,
            )
        except BaseException:
            for a in adapters:
                if hasattr(a, "unregister"):
                    a.unregister()
            raise
        self._metric_adapters = adapters
        if store is not None or alert_webhook is not None:
            _to_close.add(self)
            _fork.close_in_multiprocessing_children(_close_stores)
        # LangChain calls a hook as `getattr(handler, name)(...)`: the instance's hooks are the
        # core's builtin functions, which take LangChain's arguments, so no Python frame runs
        # per event. A subclass's own override of a hook stays in charge of it.
        self._hooks = {name: _core.bind_hook(self._core, name) for name in _HOOKS}
        for name, hook in self._hooks.items():
            if getattr(type(self), name) is getattr(CostTracker, name):
                setattr(self, name, hook)

    # Frameworks deep-copy handlers (LangGraph, RunnableConfig merges): share one ledger.
    def __copy__(self) -> CostTracker:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> CostTracker:
        return self

    # ---- results ---------------------------------------------------------------------
    @property
    def total_tokens(self) -> int:
        """Input plus output tokens of every call (LLM-cache hits excluded)."""
        return self._core.total_tokens

    @property
    def prompt_tokens(self) -> int:
        """Input tokens, cached ones included."""
        return self._core.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        """Output tokens, reasoning included."""
        return self._core.completion_tokens

    @property
    def prompt_tokens_cached(self) -> int:
        """Input tokens read from a prompt cache."""
        return self._core.prompt_tokens_cached

    @property
    def cache_write_tokens(self) -> int:
        """Input tokens written to a prompt cache."""
        return self._core.cache_write_tokens

    @property
    def reasoning_tokens(self) -> int:
        """Reasoning (thinking) tokens, a part of the output tokens."""
        return self._core.reasoning_tokens

    @property
    def successful_requests(self) -> int:
        """Calls that ended without error."""
        return self._core.successful_requests

    @property
    def failed_requests(self) -> int:
        """Calls that ended with an error."""
        return self._core.failed_requests

    @property
    def unpriced_calls(self) -> int:
        """Calls whose cost is unknown (unknown model, no usage, missing price dimension)."""
        return self._core.unpriced_calls

    @property
    def llm_cache_hits(self) -> int:
        """Calls answered from LangChain's LLM cache (cost nothing)."""
        return self._core.llm_cache_hits

    @property
    def estimated_calls(self) -> int:
        """Calls whose usage was counted by llmledger, not reported by the provider."""
        return self._core.estimated_calls

    @property
    def total_cost(self) -> Decimal:
        """The exact sum of every known cost, in USD. Unpriced calls are not in it."""
        return self._core.total_cost

    @property
    def catalog_version(self) -> str:
        """The version of the price catalog this tracker prices with."""
        return self._core.catalog_version

    def totals(self) -> dict[str, Any]:
        """All running totals as a dict."""
        return self._core.totals()

    def summary(
        self,
        by: Sequence[str] | str = (),
        *,
        currency: str | None = None,
        rate: Decimal | int | str | None = None,
    ) -> list[dict[str, Any]]:
        """Group-by rows (most expensive first): `by` values, calls, tokens by kind, cost.

        Dimensions: model, requested_model, provider, root_run_name, root_run_id, tag,
        usage_source, service_tier, day, hour, error, price_entry, node, and every captured
        metadata key. With `currency` and `rate` (units per USD, exact: `"7.12"`), each row
        also has `currency`, `rate` and `converted_cost` (its `cost` times `rate`); `cost`
        stays USD.

        Example:
            >>> CostTracker().summary(by=["user_id"], currency="CNY", rate="7.12")
            []
        """
        return self._core.summary(
            [by] if isinstance(by, str) else list(by), currency=currency, rate=rate
        )

    def report(
        self,
        by: Sequence[str] | str = ("model",),
        *,
        currency: str | None = None,
        rate: Decimal | int | str | None = None,
    ) -> str:
        """A readable text table of `summary(by)` with a total line; with `currency` and
        `rate`, the cost column is in that currency and a last line names the rate."""
        return self._core.report(
            [by] if isinstance(by, str) else list(by), currency=currency, rate=rate
        )

    def advise(
        self,
        since: str | datetime.datetime | datetime.date | None = None,
        *,
        min_saving: str | Decimal = "0.01",
        batch_keywords: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """What to change, and how many dollars it is worth, from this tracker's own calls.

        Every dollar figure re-prices the recorded token counts with the catalog (exact
        decimals, as strings). With `store=`, the whole ledger (flushed first) is read; else
        the calls kept in memory. `since`: `"30d"`, a date or datetime. Findings saving less
        than `min_saving` USD are left out (findings about accuracy, with saving "0", stay).
        `batch_keywords` adds words that mark batch work in root run names, tags, metadata. Each
        finding: rule, title, saving_usd, monthly_saving_usd, share_of_spend, calls, scope,
        evidence, action, caveat (docs/advise.md).

        Example:
            >>> CostTracker().advise()
            []
        """
        return self._core.advise(
            since, min_saving=str(min_saving), batch_keywords=list(batch_keywords)
        )

    def records(self) -> list[dict[str, Any]]:
        """The per-call records kept in memory, oldest first, as dicts."""
        return self._core.records()

    def report_html(
        self,
        path: str | os.PathLike[str],
        by: Sequence[str] | str = ("model",),
        budgets: Sequence[str] = (),
        currency: str | None = None,
        rate: Decimal | int | str | None = None,
    ) -> None:
        """Writes the HTML report of this tracker's calls to `path`: one self-contained file
        (see `llmledger report --format html`). `budgets`: `["10/day"]` to show; `currency`
        and `rate` (`"CNY"`, `"7.12"` per USD) also show costs in that currency.

        Example:
            >>> CostTracker().report_html("report.html", by="node")  # doctest: +SKIP
        """
        from llmledger.report_html import tracker_html, write_html

        dims = [by] if isinstance(by, str) else list(by)
        page = tracker_html(self, by=dims, budgets=budgets, currency=currency, rate=rate)
        write_html(page, path)

    def _repr_html_(self) -> str:
        """Jupyter's view: a compact HTML summary."""
        from llmledger.report_html import summary_html

        return summary_html(self)

    def price(self, model: str, provider: str | None = None) -> dict[str, Any] | None:
        """The catalog entry this tracker prices `model` with (overrides included)."""
        return self._core.price(model, provider)

    def flush(self) -> None:
        """Waits until every call recorded so far is committed to the durable ledger, and
        queued webhook alerts are sent (at most 10 s)."""
        self._core.flush()

    def close(self) -> None:
        """Flushes and closes the durable ledger (later calls stay in memory only).

        Example:
            >>> t = CostTracker()  # CostTracker(store="costs.db") writes a ledger
            >>> t.close()          # no-op without a store
        """
        self._core.close()
        _to_close.discard(self)

    def store_info(self) -> dict[str, Any] | None:
        """The durable ledger's path (a URL without its password), format, durability and
        counters (`written`, `queued`, `dropped`, `failed`, `spooled`: records waiting in the
        local spool while a PostgreSQL ledger is unreachable; `rejected`: records a PostgreSQL
        server refused while up, moved to the dead-letter file), `backend_down` (that outage
        now) and, for PostgreSQL, `spool_dir`; or None without one."""
        return self._core.store_info()

    def budget_store_info(self) -> dict[str, Any] | None:
        """The shared budget store's `url` (never its password), `prefix`, settings and
        counters (`reachable`, `errors`, `admitted_unchecked`, `refused_unreachable`,
        `pending_settlements`, `replayed_settlements`, `seeded_windows`, ...), or None for
        in-process budgets."""
        return self._core.budget_store_info()

    @property
    def open_reservations(self) -> int:
        """Calls in flight holding a budget reservation in this tracker."""
        return self._core.open_reservations

    def reset(self) -> None:
        """Forgets every record and total (budgets keep their windows: see
        `reset_budget`)."""
        self._core.reset()

    # ---- budgets -----------------------------------------------------------------------
    def _budget_states(self) -> list[dict[str, Any]]:
        # What the metrics adapters read at collection time (a scrape may come while the
        # tracker is still being made).
        core = getattr(self, "_core", None)
        return [] if core is None else core.budgets()

    def budgets(self) -> list[dict[str, Any]]:
        """Each budget's state now, one dict per budget and scope value: `budget`, `scope`,
        `value`, `window`, `action`, `limit`, `spent`, `reserved` (calls in flight),
        `remaining`, `percent`, `window_start`, `resets_at`.

        Example:
            >>> from llmledger import Budget
            >>> [b["remaining"] for b in CostTracker(budgets=[Budget.daily(10)]).budgets()]
            [Decimal('10')]
        """
        return self._core.budgets()

    def reset_budget(self, name: str | None = None, value: str | None = None) -> int:
        """Clears what budget `name` (None: every budget) spent in its current window, for
        scope value `value` (None: all; `"(none)"`: calls lacking the key). Never needed for
        windows to roll over; for operators. Returns how many scope values were reset."""
        return self._core.reset_budget(name, value)

    @property
    def blocked_calls(self) -> int:
        """Calls a blocking budget refused before they were sent (a cut stream is a failed
        call in the records instead)."""
        return self._core.blocked_calls

    @property
    def internal_errors(self) -> int:
        """Hook calls that failed inside llmledger (bad arguments, an internal error or
        panic). Each was logged on the `llmledger` logger and the LLM call went on untracked;
        no hook raises but for a budget stop."""
        return self._core.internal_errors

    def alert_info(self) -> dict[str, Any] | None:
        """The alert webhook's host and counts (`sent`, `failed`, `dropped`), or None."""
        return self._core.alert_info()

    def __str__(self) -> str:
        return self._core.summary_text()

    def __repr__(self) -> str:
        return (
            f"<CostTracker calls={self.successful_requests + self.failed_requests} "
            f"total_cost={self.total_cost} unpriced={self.unpriced_calls}>"
        )
