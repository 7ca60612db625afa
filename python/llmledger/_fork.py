"""Trackers in forked children: every record of every process lands in the ledger.

The core notices a fork (``os.register_at_fork``) and starts a new writer thread (and alert
thread) in the child on its first record. What remains is the child's exit: a child that
exits normally runs the ``atexit`` hook that flushes and closes every tracker, but
``multiprocessing`` ends its children with ``os._exit``, which runs no ``atexit`` hook. It
does run its own finalizers first, so the hook is registered as one of those in each child
``multiprocessing`` forks.
"""

from __future__ import annotations

from collections.abc import Callable

_registered = False


class _Anchor:
    """What multiprocessing's after-fork registry holds on to (it keeps weak references)."""


_anchor = _Anchor()


def close_in_multiprocessing_children(close_all: Callable[[], None]) -> None:
    """Makes every child that ``multiprocessing`` forks from now on run ``close_all`` as it
    exits (once per process, however often it is called)."""
    global _registered
    if _registered:
        return
    _registered = True
    from multiprocessing import util

    def in_child(_: object) -> None:
        # The child's finalizer registry is cleared after the fork; this runs after that.
        util.Finalize(None, close_all, exitpriority=0)

    util.register_after_fork(_anchor, in_child)
