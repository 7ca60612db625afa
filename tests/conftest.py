"""Shared fixtures. Tests use no network: LangChain fakes, and real provider clients against a
local HTTP server (`fake_provider.py`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

# The local fake OpenAI / Anthropic server (function-scoped: one server per test).
from fake_provider import fake_provider  # noqa: F401
from llmledger.testing import UsageFakeChatModel
from pg_service import cluster, postgres_url  # noqa: F401
from redis_service import _redis_server, own_cluster, own_redis, redis_prefix, redis_url  # noqa: F401


@pytest.fixture
def llm() -> UsageFakeChatModel:
    return UsageFakeChatModel(model="gpt-4o-mini", responses=["Hello there, friend!"])


@pytest.fixture
def ledger_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Captures the `llmledger` logger's records."""
    caplog.set_level(logging.DEBUG, logger="llmledger")
    yield caplog
