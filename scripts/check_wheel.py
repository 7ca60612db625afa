"""What `pip install llmledger` gives a user: installs a built wheel into a fresh virtual
environment with nothing else (pip resolves only the wheel's declared dependencies), then runs
`llmledger --version`, `python -m llmledger --version`, `import llmledger` and one call of
langchain-core's fake chat model tracked by a CostTracker, from outside the source tree.

Run: python scripts/check_wheel.py dist/llmledger-*.whl   (`make dist dist-smoke`)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

# One tracked call, priced from the bundled catalog: gpt-4o-mini at $0.15 / $0.60 per 1M. The
# fake reports `ls_provider="openai"` as ChatOpenAI does (a provider the catalog does not know,
# such as LangChain's GenericFakeChatModel's, gets no vendor's price: its cost is unknown).
TRACKED_CALL = """
from decimal import Decimal
import llmledger
from llmledger import CostTracker
from llmledger.testing import UsageFakeChatModel

usage = {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}
llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["hi"], usage=usage)
tracker = CostTracker()
llm.invoke("Hello", config={"callbacks": [tracker], "metadata": {"user_id": "u1"}})
assert tracker.successful_requests == 1, tracker
assert tracker.total_cost == Decimal("0.00045"), tracker.total_cost
(record,) = tracker.records()
assert record["model"] == "gpt-4o-mini" and record["attribution"] == {"user_id": "u1"}, record
print("tracked call ok:", tracker.total_cost, "from", llmledger.__file__)
"""


def run(argv: list[str], cwd: Path, show: bool = True) -> str:
    print("$", " ".join(argv).splitlines()[0], flush=True)
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if show or out.returncode != 0:
        print(out.stdout + out.stderr, end="", flush=True)
    if out.returncode != 0:
        raise SystemExit(f"check_wheel: '{argv[-1]}' failed with exit code {out.returncode}")
    return out.stdout


def main() -> int:
    wheels = [Path(a).resolve() for a in sys.argv[1:]]
    if len(wheels) != 1 or not wheels[0].is_file() or wheels[0].suffix != ".whl":
        raise SystemExit("usage: check_wheel.py PATH.whl (exactly one built wheel)")
    wheel = wheels[0]
    if "abi3" not in wheel.name:
        raise SystemExit(f"check_wheel: {wheel.name} is not an abi3 wheel")
    with tempfile.TemporaryDirectory(prefix="llmledger-wheel-") as tmp:
        env_dir = Path(tmp) / "venv"
        venv.create(env_dir, with_pip=True, clear=True)
        bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
        py = str(bin_dir / "python")
        run([py, "-m", "pip", "install", "-q", str(wheel)], Path(tmp))
        version = run([str(bin_dir / "llmledger"), "--version"], Path(tmp)).strip()
        if run([py, "-m", "llmledger", "--version"], Path(tmp)).strip() != version:
            raise SystemExit("check_wheel: python -m llmledger --version differs")
        imported = run([py, "-c", "import llmledger; print(llmledger.__file__)"], Path(tmp))
        if not imported.strip().startswith(str(env_dir)):
            raise SystemExit(f"check_wheel: llmledger imported from {imported.strip()}")
        run([py, "-c", TRACKED_CALL], Path(tmp))
        installed = run([py, "-m", "pip", "list", "--format=freeze"], Path(tmp), show=False)
    print(f"check_wheel: {wheel.name} ok (llmledger {version}; {len(installed.split())} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
