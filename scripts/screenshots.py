"""Makes the README's screenshots: docs/report.png (the HTML report of a synthetic ledger) and
docs/watch.png (one frame of `llmledger watch` on it, drawn by rich as SVG), both shot in
headless Chromium. Rerun after changing either view:

    .venv/bin/python scripts/screenshots.py            # needs chromium and playwright

The ledger is synthetic (scripts/synthetic_ledger.py, a fixed seed), so reruns differ only in
the dates.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

import synthetic_ledger  # noqa: E402
from browser import CHROMIUM_FLAGS  # noqa: E402
from llmledger import _core  # noqa: E402
from llmledger.report_html import ledger_html, write_html  # noqa: E402
from llmledger.watch import Dashboard  # noqa: E402


def shoot(url: str, out: Path, width: int, height: int, element: str | None, scheme: str) -> None:
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile,
            executable_path=exe,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": width, "height": height},
            color_scheme=scheme,  # type: ignore[arg-type]
        )
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_timeout(300)
        if element:
            page.locator(element).screenshot(path=str(out))
        else:
            page.screenshot(path=str(out), full_page=True)
        ctx.close()
    print(f"wrote {out}")


def main() -> None:
    docs = ROOT / "docs"
    with tempfile.TemporaryDirectory() as tmp:
        ledger = synthetic_ledger.write(Path(tmp) / "costs.jsonl", calls=5000, days=2)
        html = Path(tmp) / "report.html"
        write_html(ledger_html(ledger, by=["node"], budgets=["40/day"]), html)
        shoot(html.as_uri(), docs / "report.png", 1200, 900, None, scheme="light")
        follower = _core.LedgerFollower(
            str(ledger), by=["model", "node"], budgets=["40/day", "2/hour"]
        )
        follower.poll()
        console = Console(record=True, width=130, file=open("/dev/null", "w"))  # noqa: SIM115
        board = Dashboard("costs.jsonl", time.monotonic() - 754)
        console.print(board.render(json.loads(follower.view()), 130))
        svg = Path(tmp) / "watch.html"
        svg.write_text(
            '<!doctype html><body style="margin:0;background:#15171c">'
            + console.export_svg(title="llmledger watch costs.jsonl")
            + "</body>"
        )
        shoot(svg.as_uri(), docs / "watch.png", 1300, 1200, "svg", scheme="dark")


if __name__ == "__main__":
    main()
