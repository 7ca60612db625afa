"""Type stubs of llmledger's compiled core (`llmledger._core`)."""

import datetime
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeAlias, final

__all__ = [
    "Budget",
    "BudgetAlert",
    "BudgetBackendError",
    "BudgetExceededError",
    "HOOK_NAMES",
    "LedgerError",
    "LedgerFollower",
    "LedgerReader",
    "LlmLedgerError",
    "Metrics",
    "PRICE_FIELDS",
    "PriceCatalogError",
    "SCHEMA_VERSION",
    "Tracker",
    "__version__",
    "bind_hook",
    "catalog_entries",
    "catalog_version",
    "cost",
    "cost_breakdown",
    "count_message_tokens",
    "count_tokens",
    "count_tokens_batch",
    "currency_view",
    "ledger_digest",
    "ledger_export",
    "ledger_import",
    "ledger_advise",
    "ledger_report",
    "ledger_spend",
    "ledger_summary",
    "price",
    "price_hosts",
    "read_ledger",
    "suggest_models",
    "token_memo",
    "tokenizer_for",
]

__version__: str
SCHEMA_VERSION: int
HOOK_NAMES: tuple[str, ...]
PRICE_FIELDS: tuple[str, ...]

class LlmLedgerError(Exception):
    """Base class of every exception llmledger raises."""

class PriceCatalogError(LlmLedgerError):
    """A price catalog (a `prices=` dict or file) is malformed."""

class LedgerError(LlmLedgerError):
    """A durable ledger cannot be opened or read (newer schema, not a ledger, unwritable)."""

class BudgetExceededError(LlmLedgerError):
    """A blocking budget refused a call before it was sent (or cut a stream)."""

    budget: str
    scope: str
    value: str | None
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    requested: Decimal
    window: str
    resets_at: datetime.datetime | None

class BudgetBackendError(BudgetExceededError):
    """The shared budget store could not be asked and the tracker refuses calls then
    (`budget_backend_error="closed"`)."""

_Prices: TypeAlias = Mapping[str, Any] | str | os.PathLike[str] | None
_Money: TypeAlias = Decimal | int | float | str
_Rate: TypeAlias = Decimal | int | str

@final
class Budget:
    """A spending limit over a time window, for `CostTracker(budgets=[...])`."""

    def __new__(
        cls,
        limit: _Money,
        window: str = "day",
        *,
        per: str | None = None,
        scope: str | None = None,
        tz: str | None = None,
        alert_at: Sequence[_Money] | None = None,
        action: str = "block",
        cut_streams: bool = False,
        name: str | None = None,
    ) -> Budget: ...
    @classmethod
    def minutely(cls, limit: _Money, **kwargs: Any) -> Budget: ...
    @classmethod
    def hourly(cls, limit: _Money, **kwargs: Any) -> Budget: ...
    @classmethod
    def daily(cls, limit: _Money, **kwargs: Any) -> Budget: ...
    @classmethod
    def weekly(cls, limit: _Money, **kwargs: Any) -> Budget: ...
    @classmethod
    def monthly(cls, limit: _Money, **kwargs: Any) -> Budget: ...
    @classmethod
    def lifetime(cls, limit: _Money, **kwargs: Any) -> Budget: ...
    @property
    def limit(self) -> Decimal: ...
    @property
    def window(self) -> str: ...
    @property
    def per(self) -> str | None: ...
    @property
    def alert_at(self) -> tuple[Decimal, ...]: ...
    @property
    def action(self) -> str: ...
    @property
    def cut_streams(self) -> bool: ...
    @property
    def name(self) -> str: ...

@final
class BudgetAlert:
    """A budget threshold reached, or a call refused: what `on_alert` receives."""

    @property
    def kind(self) -> str: ...
    @property
    def budget(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def value(self) -> str | None: ...
    @property
    def threshold(self) -> Decimal: ...
    @property
    def percent(self) -> Decimal: ...
    @property
    def spent(self) -> Decimal: ...
    @property
    def reserved(self) -> Decimal: ...
    @property
    def limit(self) -> Decimal: ...
    @property
    def window(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def resets_at(self) -> datetime.datetime | None: ...
    @property
    def time(self) -> datetime.datetime: ...
    @property
    def text(self) -> str: ...
    def to_json(self) -> str: ...

_Tokens = tuple[int, int, int, int, int]
_Series = tuple[
    tuple[str, ...],
    list[tuple[str, str, int]],
    _Tokens,
    Decimal,
    int,
    list[int],
    float,
    int,
]
_Observation = tuple[
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    _Tokens | None,
    Decimal | None,
    float | None,
]

@final
class Metrics:
    def __new__(
        cls,
        *,
        labels: list[str] | None = None,
        top_n: int = 20,
        series: bool = True,
        max_observations: int = 0,
        ledger: str | os.PathLike[str] | None = None,
        budgets: list[str] | None = None,
    ) -> Metrics: ...
    def poll(self) -> int: ...
    @property
    def labels(self) -> list[str]: ...
    @property
    def top_n(self) -> int: ...
    @property
    def metadata_keys(self) -> list[str]: ...
    @staticmethod
    def duration_buckets() -> list[float]: ...
    def series(self) -> list[_Series]: ...
    def take_observations(self) -> tuple[list[_Observation], int]: ...
    def budget_gauges(self) -> list[dict[str, Any]]: ...
    @property
    def ledger(self) -> str | None: ...

@final
class Tracker:
    def __new__(
        cls,
        *,
        attribute: list[str] | None = None,
        prices: _Prices = None,
        max_records: int | None = None,
        estimate: bool = True,
        fingerprints: bool | None = None,
        advise: bool = False,
        store: str | os.PathLike[str] | None = None,
        durability: str | None = None,
        budgets: Budget | Sequence[Budget] | None = None,
        on_alert: Callable[[BudgetAlert], object] | None = None,
        alert_webhook: str | None = None,
        clock: Callable[[], datetime.datetime] | None = None,
        log_alerts: bool = True,
        on_record: Callable[[dict[str, Any]], object] | None = None,
        budget_store: str | None = None,
        budget_prefix: str | None = None,
        budget_lease: float | None = None,
        budget_timeout: float | None = None,
        budget_backend_error: str | None = None,
        metrics: Sequence[Metrics] | None = None,
        local_endpoints: Iterable[str] | None = None,
    ) -> Tracker: ...
    def advise(
        self,
        since: str | datetime.datetime | datetime.date | None = None,
        *,
        min_saving: str | None = None,
        batch_keywords: list[str] | None = None,
    ) -> list[dict[str, Any]]: ...
    def totals(self) -> dict[str, Any]: ...
    @property
    def total_tokens(self) -> int: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def prompt_tokens_cached(self) -> int: ...
    @property
    def cache_write_tokens(self) -> int: ...
    @property
    def reasoning_tokens(self) -> int: ...
    @property
    def successful_requests(self) -> int: ...
    @property
    def failed_requests(self) -> int: ...
    @property
    def unpriced_calls(self) -> int: ...
    @property
    def llm_cache_hits(self) -> int: ...
    @property
    def estimated_calls(self) -> int: ...
    @property
    def total_cost(self) -> Decimal: ...
    @property
    def catalog_version(self) -> str: ...
    @property
    def open_runs(self) -> int: ...
    @property
    def held_prompts(self) -> int: ...
    @property
    def dropped_records(self) -> int: ...
    @property
    def internal_errors(self) -> int: ...
    @property
    def attribute(self) -> list[str]: ...
    def summary(
        self,
        by: list[str] | None = None,
        currency: str | None = None,
        rate: _Rate | None = None,
    ) -> list[dict[str, Any]]: ...
    def report(
        self,
        by: list[str] | None = None,
        currency: str | None = None,
        rate: _Rate | None = None,
    ) -> str: ...
    def records(self) -> list[dict[str, Any]]: ...
    def summary_text(self) -> str: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def store_info(self) -> dict[str, Any] | None: ...
    def budget_store_info(self) -> dict[str, Any] | None: ...
    @property
    def open_reservations(self) -> int: ...
    def reset(self) -> None: ...
    def price(self, model: str, provider: str | None = None) -> dict[str, Any] | None: ...
    def budgets(self) -> list[dict[str, Any]]: ...
    def reset_budget(self, name: str | None = None, value: str | None = None) -> int: ...
    @property
    def blocked_calls(self) -> int: ...
    def alert_info(self) -> dict[str, Any] | None: ...

def bind_hook(tracker: Tracker, name: str) -> Callable[..., None]: ...
def price(
    model: str, provider: str | None = None, *, prices: _Prices = None
) -> dict[str, Any] | None: ...
def price_hosts(model: str, *, prices: _Prices = None) -> list[dict[str, Any]]: ...
def cost(
    model: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    provider: str | None = None,
    *,
    cache_write_1h_tokens: int = 0,
    input_audio_tokens: int = 0,
    output_audio_tokens: int = 0,
    service_tier: str | None = None,
    date: datetime.date | None = None,
    prices: _Prices = None,
    at: datetime.datetime | None = None,
) -> Decimal | None: ...
def cost_breakdown(
    model: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    provider: str | None = None,
    *,
    cache_write_1h_tokens: int = 0,
    input_audio_tokens: int = 0,
    output_audio_tokens: int = 0,
    service_tier: str | None = None,
    date: datetime.date | None = None,
    prices: _Prices = None,
    at: datetime.datetime | None = None,
) -> dict[str, Any] | None: ...
def suggest_models(
    model: str, provider: str | None = None, *, prices: _Prices = None
) -> list[str]: ...
def catalog_version() -> str: ...
def currency_view(
    amounts: Sequence[str | Decimal | int | None], currency: str, rate: _Rate
) -> dict[str, Any]: ...
def catalog_entries(*, prices: _Prices = None) -> list[dict[str, Any]]: ...
def count_tokens(text: str, model: str = "gpt-4o", *, encoding: str | None = None) -> int: ...
def count_tokens_batch(
    texts: Sequence[str], model: str = "gpt-4o", *, encoding: str | None = None, threads: int = 0
) -> list[int]: ...
def count_message_tokens(messages: Any, model: str = "gpt-4o", tools: Any | None = None) -> int: ...
def tokenizer_for(model: str) -> dict[str, Any]: ...
def token_memo(*, max_messages: int | None = None) -> dict[str, int]: ...

_Path: TypeAlias = str | os.PathLike[str]
_Bound: TypeAlias = str | datetime.datetime | datetime.date | None

@final
class LedgerReader(Iterator[dict[str, Any]]):
    """The records of a durable ledger, streamed in batches: what `read_ledger` returns."""

    def __iter__(self) -> LedgerReader: ...
    def __next__(self) -> dict[str, Any]: ...
    def close(self) -> None: ...
    def __enter__(self) -> LedgerReader: ...
    def __exit__(self, *args: object) -> None: ...

def read_ledger(
    ledger: _Path,
    *,
    since: _Bound = None,
    until: _Bound = None,
    batch_size: int = 1024,
) -> LedgerReader: ...
def ledger_summary(
    ledger: _Path,
    by: Sequence[str] | str | None = None,
    *,
    since: _Bound = None,
    until: _Bound = None,
) -> dict[str, Any]: ...
def ledger_report(
    path: _Path,
    by: list[str] | None = None,
    since: _Bound = None,
    until: _Bound = None,
    progress: Callable[[int], object] | None = None,
    currency: str | None = None,
    rate: _Rate | None = None,
) -> dict[str, Any]: ...
def ledger_advise(
    ledger: _Path,
    *,
    since: _Bound = None,
    until: _Bound = None,
    min_saving: str | None = None,
    prices: _Prices = None,
    batch_keywords: list[str] | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]: ...
def ledger_export(
    path: _Path,
    format: str,
    write: Callable[[str], object],
    since: _Bound = None,
    until: _Bound = None,
    progress: Callable[[int], object] | None = None,
) -> int: ...
def ledger_import(
    source: _Path, into: _Path, progress: Callable[[int], object] | None = None
) -> dict[str, Any]: ...
def ledger_spend(
    path: _Path, since: str | datetime.datetime, by: str | None = None
) -> dict[str | None, Decimal]: ...

# ---- the dashboard's and the HTML report's aggregates (src/py/follow.rs) ---------------------

@final
class LedgerFollower:
    def __new__(
        cls,
        path: _Path,
        *,
        by: list[str] | None = None,
        stack_by: str | None = None,
        budgets: list[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        top: int = 10,
    ) -> LedgerFollower: ...
    @staticmethod
    def of_tracker(
        tracker: Tracker,
        *,
        by: list[str] | None = None,
        stack_by: str | None = None,
        budgets: list[str] | None = None,
        top: int = 10,
    ) -> LedgerFollower: ...
    def poll(self) -> int: ...
    def view(self) -> str: ...
    @property
    def calls(self) -> int: ...

def ledger_digest(
    path: _Path,
    *,
    by: list[str] | None = None,
    stack_by: str | None = None,
    budgets: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    top: int = 10,
) -> str: ...
