"""Python objects dropped inside a hook are freed at once, not deferred to PyO3's global release
pool: in the zero-code `LLMLEDGER_LEDGER` mode the tracker may see nothing but hook calls for
the whole life of the process, and nothing would ever empty that pool."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CODE = """
import uuid, weakref
import llmledger

t = llmledger.ledger_tracker()
assert t is not None
end = t.on_chain_end  # the core's hook, as LangChain calls it
# Each run id object is remembered per thread (512 slots, by address) and let go when its slot
# is taken: a million fresh ids, one in a hundred watched.
watched = []
for i in range(1_000_000):
    u = uuid.uuid4()
    end(None, run_id=u)
    if i % 100 == 0:
        watched.append(weakref.ref(u))
    del u
alive = sum(w() is not None for w in watched)
print(alive, t.internal_errors)
"""


def test_a_million_hook_calls_leave_nothing_behind(tmp_path: Path) -> None:
    env = {**os.environ, "LLMLEDGER_LEDGER": str(tmp_path / "zero.db")}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CODE)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    alive, errors = map(int, out.stdout.split())
    assert errors == 0
    # At most the ones still in the cache's 512 slots; deferred to the pool, all 10,000 would
    # still be alive.
    assert alive <= 512, alive
