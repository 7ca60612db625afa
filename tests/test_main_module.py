"""`python -m llmledger` is the `llmledger` command (as `python -m pip` is pip)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import llmledger
import pytest


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120)


def script() -> str:
    """The `llmledger` console script installed beside this interpreter."""
    found = shutil.which("llmledger", path=str(Path(sys.executable).parent))
    assert found, "the llmledger console script is not installed next to the interpreter"
    return found


def test_version() -> None:
    out = run(sys.executable, "-m", "llmledger", "--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == llmledger.__version__
    assert out.stdout == run(script(), "--version").stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["prices", "gpt-4o"],
        ["cost", "gpt-4o", "--input", "1000", "--output", "10"],
        ["cost", "no-such-model-zzz", "--input", "5"],  # exit 1: unknown model
        ["report", "no-such-ledger.db"],  # exit 2: an error message
        ["no-such-command"],  # exit 2: argparse's usage error
    ],
)
def test_same_as_the_console_script(argv: list[str], tmp_path: Path) -> None:
    as_module = run(sys.executable, "-m", "llmledger", *argv)
    as_script = run(script(), *argv)
    assert (as_module.returncode, as_module.stdout, as_module.stderr) == (
        as_script.returncode,
        as_script.stdout,
        as_script.stderr,
    )
    assert as_module.stdout or as_module.stderr
