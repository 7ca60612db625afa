"""A tracker given a bound method of the object that holds it (`on_alert=self.method`,
`clock=self.method`) forms a reference cycle through the Rust object: the garbage collector must
see it (`__traverse__`) and break it (`__clear__`)."""

from __future__ import annotations

import datetime
import gc
import weakref

import pytest
from llmledger import Budget, BudgetAlert, CostTracker


class App:
    def __init__(self, on_alert: bool, clock: bool) -> None:
        self.alerts: list[BudgetAlert] = []
        self.tracker = CostTracker(
            budgets=[Budget.daily(10)],
            on_alert=self.on_alert if on_alert else None,
            clock=self.now if clock else None,
        )

    def on_alert(self, alert: BudgetAlert) -> None:
        self.alerts.append(alert)

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc)


@pytest.mark.parametrize(("on_alert", "clock"), [(True, False), (False, True), (True, True)])
def test_a_tracker_holding_its_owners_bound_methods_is_collected(
    on_alert: bool, clock: bool
) -> None:
    app = App(on_alert, clock)
    assert app.tracker.budgets()[0]["remaining"] == 10  # the clock is called
    app_ref = weakref.ref(app)
    tracker_ref = weakref.ref(app.tracker)
    del app
    gc.collect()
    assert app_ref() is None
    assert tracker_ref() is None
