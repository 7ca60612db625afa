"""A real headless Chromium (Debian's `chromium`) driven by Playwright, for the HTML report
tests. Without the browser or Playwright the tests are skipped with a message, except where
LLMLEDGER_REQUIRE_BROWSER=1 (CI sets it): there they fail."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The browser's path, or a skip (a failure under LLMLEDGER_REQUIRE_BROWSER=1)."""
    path = os.environ.get("LLMLEDGER_CHROMIUM") or shutil.which("chromium")
    missing = None
    if not path:
        missing = "no chromium on PATH (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install playwright; no browser download)"
    if missing:
        if os.environ.get("LLMLEDGER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required (LLMLEDGER_REQUIRE_BROWSER=1) but {missing}")
        pytest.skip(f"browser test skipped: {missing}")
    assert path
    return path


@contextmanager
def browser_page(profile: Path) -> Iterator[Any]:
    """A page of a fresh Chromium profile in `profile`."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=exe,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield ctx.new_page()
        finally:
            ctx.close()
