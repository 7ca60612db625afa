//! Budgets and alerts in Python: `llmledger.Budget`, `llmledger.BudgetAlert`, the
//! `BudgetExceededError` a refused call raises, the alert sinks (logger, `on_alert`, webhook)
//! and the injectable clock.

use std::fmt::Write;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::errors::{BudgetBackendError, BudgetExceededError};
use crate::budget::{
    Action, Alert, BackendInfo, Budget, BudgetExceeded, BudgetState, Clock, OnBackendError,
    RedisSettings, Scope, Window, Zone,
};
use crate::money::Decimal;
use crate::webhook::Webhook;

/// How long `flush()` waits for queued webhook alerts.
const WEBHOOK_FLUSH: Duration = Duration::from_secs(10);
/// How long `close()` (and interpreter exit) lets queued webhook alerts go out.
const WEBHOOK_CLOSE: Duration = Duration::from_secs(5);

/// An amount of money or a fraction from Python: `Decimal`, `int`, `str` or `float` (read
/// through its shortest repr, so `0.1` is exactly 0.1). `bool`, NaN and infinities are refused.
pub fn decimal_arg(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Decimal> {
    let bad = |why: String| PyValueError::new_err(format!("{what} {why}"));
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number (Decimal, int, str or float), not a bool"
        )));
    }
    let text: String = if v.is_instance_of::<PyString>() {
        v.extract()?
    } else if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
        v.repr()?.extract()?
    } else if v.is_instance(&v.py().import("decimal")?.getattr("Decimal")?)? {
        v.str()?.extract()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number (Decimal, int, str or float), got {}",
            v.get_type().name()?
        )));
    };
    let t = text.trim();
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map_err(|_| bad(format!("must be a finite decimal amount, got '{t}'")))
}

/// A spending limit over a time window, for `CostTracker(budgets=[...])`.
#[pyclass(frozen, module = "llmledger._core", name = "Budget")]
pub struct PyBudget {
    pub inner: Budget,
}

#[allow(clippy::too_many_arguments)]
fn build(
    limit: &Bound<'_, PyAny>,
    window: &str,
    per: Option<&str>,
    scope: Option<&str>,
    tz: Option<&str>,
    alert_at: Option<&Bound<'_, PyAny>>,
    action: &str,
    cut_streams: bool,
    name: Option<String>,
) -> PyResult<PyBudget> {
    let per = match (per, scope) {
        (Some(p), Some(s)) if p != s => {
            return Err(PyValueError::new_err(format!(
                "per='{p}' and scope='{s}' disagree: give one of them (they are the same setting)"
            )))
        }
        (p, s) => p.or(s),
    };
    let limit = decimal_arg(limit, "budget limit")?;
    let window = Window::parse(window, tz)?;
    let mut b = Budget::new(limit, window)?
        .action(Action::parse(action)?)
        .cut_streams(cut_streams);
    if let Scope::Per(key) = Scope::parse_checked(per)? {
        b = b.per(key);
    }
    if let Some(a) = alert_at.filter(|a| !a.is_none()) {
        let items: Vec<Decimal> = if a.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "alert_at must be a sequence of fractions of the limit, such as (0.5, 0.8, 1.0)",
            ));
        } else if let Ok(items) = a.try_iter() {
            items
                .map(|x| decimal_arg(&x?, "alert_at threshold"))
                .collect::<PyResult<_>>()?
        } else {
            vec![decimal_arg(a, "alert_at threshold")?]
        };
        b = b.alert_at(items)?;
    }
    if cut_streams && !b.blocks() {
        return Err(PyValueError::new_err(
            "cut_streams=True needs action='block': an alert-only budget never stops a call",
        ));
    }
    if let Some(n) = name {
        b = b.named(n);
    }
    Ok(PyBudget { inner: b })
}

#[pymethods]
impl PyBudget {
    #[new]
    #[pyo3(signature = (limit, window="day", *, per=None, scope=None, tz=None, alert_at=None, action="block", cut_streams=false, name=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        limit: &Bound<'_, PyAny>,
        window: &str,
        per: Option<&str>,
        scope: Option<&str>,
        tz: Option<&str>,
        alert_at: Option<&Bound<'_, PyAny>>,
        action: &str,
        cut_streams: bool,
        name: Option<String>,
    ) -> PyResult<Self> {
        build(
            limit,
            window,
            per,
            scope,
            tz,
            alert_at,
            action,
            cut_streams,
            name,
        )
    }

    /// `limit` USD per calendar minute. Keywords as for `Budget(...)`.
    #[classmethod]
    #[pyo3(signature = (limit, **kwargs))]
    fn minutely<'py>(
        cls: &Bound<'py, PyType>,
        limit: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        cls.call((limit, "minute"), kwargs)
    }

    /// `limit` USD per calendar hour (UTC unless `tz`). Keywords as for `Budget(...)`.
    #[classmethod]
    #[pyo3(signature = (limit, **kwargs))]
    fn hourly<'py>(
        cls: &Bound<'py, PyType>,
        limit: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        cls.call((limit, "hour"), kwargs)
    }

    /// `limit` USD per calendar day (UTC unless `tz`). Keywords as for `Budget(...)`.
    #[classmethod]
    #[pyo3(signature = (limit, **kwargs))]
    fn daily<'py>(
        cls: &Bound<'py, PyType>,
        limit: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        cls.call((limit, "day"), kwargs)
    }

    /// `limit` USD per week, Monday 00:00 to Monday (UTC unless `tz`). Keywords as for `Budget(...)`.
    #[classmethod]
    #[pyo3(signature = (limit, **kwargs))]
    fn weekly<'py>(
        cls: &Bound<'py, PyType>,
        limit: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        cls.call((limit, "week"), kwargs)
    }

    /// `limit` USD per calendar month (UTC unless `tz`). Keywords as for `Budget(...)`.
    #[classmethod]
    #[pyo3(signature = (limit, **kwargs))]
    fn monthly<'py>(
        cls: &Bound<'py, PyType>,
        limit: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        cls.call((limit, "month"), kwargs)
    }

    /// `limit` USD over the tracker's lifetime. Keywords as for `Budget(...)`.
    #[classmethod]
    #[pyo3(signature = (limit, **kwargs))]
    fn lifetime<'py>(
        cls: &Bound<'py, PyType>,
        limit: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        cls.call((limit, "lifetime"), kwargs)
    }

    /// The most that may be spent per window (and per scope value), in USD.
    #[getter]
    fn limit(&self) -> Decimal {
        self.inner.limit.normalize()
    }
    /// The window: `day`, `hour (Europe/Berlin)`, `rolling 15m`, `lifetime`, ...
    #[getter]
    fn window(&self) -> String {
        self.inner.window.to_string()
    }
    /// The key the budget is split by (`user_id`, `model`, `tag`, ...), or None (global).
    #[getter]
    fn per(&self) -> Option<String> {
        match &self.inner.scope {
            Scope::Global => None,
            Scope::Per(k) => Some(k.name().to_string()),
        }
    }
    /// The alert thresholds, fractions of the limit, ascending.
    #[getter]
    fn alert_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.alert_at.iter().map(Decimal::normalize))
    }
    /// `block` (refuse calls that would exceed the limit) or `alert` (only alert).
    #[getter]
    fn action(&self) -> &'static str {
        self.inner.action.name()
    }
    /// Whether a stream that pushes the budget past its limit is cut.
    #[getter]
    fn cut_streams(&self) -> bool {
        self.inner.cut_streams
    }
    /// The name given, else the one a tracker gives it (`day`, `month per user_id`).
    #[getter]
    fn name(&self) -> String {
        if self.inner.name.is_empty() {
            self.inner.default_name()
        } else {
            self.inner.name.clone()
        }
    }

    fn __repr__(&self) -> String {
        let b = &self.inner;
        let window = match &b.window {
            Window::Calendar { unit, tz } if *tz != Zone::default() => {
                format!("'{}', tz='{tz}'", unit.name())
            }
            Window::Calendar { unit, .. } => format!("'{}'", unit.name()),
            // `rolling 15m` is written `rolling:15m`.
            w => format!("'{}'", w.to_string().replacen(' ', ":", 1)),
        };
        let mut s = format!("Budget({}, window={window}", b.limit.normalize());
        if let Scope::Per(k) = &b.scope {
            let _ = write!(s, ", per='{}'", k.name());
        }
        if !b.blocks() {
            s.push_str(", action='alert'");
        }
        if b.cut_streams {
            s.push_str(", cut_streams=True");
        }
        if !b.name.is_empty() {
            let _ = write!(s, ", name='{}'", b.name);
        }
        s.push(')');
        s
    }
}

/// A budget threshold reached, or a call refused: what `on_alert` receives.
#[pyclass(frozen, module = "llmledger._core", name = "BudgetAlert")]
pub struct PyBudgetAlert {
    inner: Alert,
}

#[pymethods]
impl PyBudgetAlert {
    /// `threshold` (spend reached a fraction of the limit) or `blocked` (a call was refused).
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.name()
    }
    /// The budget's name.
    #[getter]
    fn budget(&self) -> &str {
        &self.inner.budget
    }
    /// `global`, or the key the budget is split by.
    #[getter]
    fn scope(&self) -> &str {
        &self.inner.scope
    }
    /// The scope value (`alice`), or None (global, or calls lacking the key).
    #[getter]
    fn value(&self) -> Option<&str> {
        self.inner.value.as_deref()
    }
    /// The fraction of the limit reached (`0.8`); 1 for a refused call.
    #[getter]
    fn threshold(&self) -> Decimal {
        self.inner.threshold.normalize()
    }
    /// The threshold in percent (`80`).
    #[getter]
    fn percent(&self) -> Decimal {
        self.inner.percent()
    }
    /// Spent in the window when it fired (USD).
    #[getter]
    fn spent(&self) -> Decimal {
        self.inner.spent.normalize()
    }
    /// Reserved by calls in flight when it fired (USD).
    #[getter]
    fn reserved(&self) -> Decimal {
        self.inner.reserved.normalize()
    }
    /// The limit (USD).
    #[getter]
    fn limit(&self) -> Decimal {
        self.inner.limit.normalize()
    }
    /// The window (`day`, `rolling 15m`, ...).
    #[getter]
    fn window(&self) -> &str {
        &self.inner.window
    }
    /// `block` or `alert`.
    #[getter]
    fn action(&self) -> &'static str {
        self.inner.action
    }
    /// When the window resets (calendar windows), else None.
    #[getter]
    fn resets_at(&self) -> Option<DateTime<Utc>> {
        self.inner.resets_at
    }
    /// When it fired.
    #[getter]
    fn time(&self) -> DateTime<Utc> {
        self.inner.time
    }
    /// The one-line message (the log line, Slack's `text`).
    #[getter]
    fn text(&self) -> String {
        self.inner.text()
    }
    /// The webhook's JSON body: Slack-compatible `text` plus structured fields (money as
    /// exact decimal strings, times RFC 3339).
    fn to_json(&self) -> String {
        self.inner.to_json().to_string()
    }
    fn __str__(&self) -> String {
        self.inner.text()
    }
    fn __repr__(&self) -> String {
        format!(
            "<BudgetAlert {}: {}>",
            self.inner.kind.name(),
            self.inner.text()
        )
    }
}

/// The exception for a refused call: its message is the refusal's text, its attributes the
/// refusal's fields.
pub fn exceeded_error(py: Python<'_>, e: &BudgetExceeded) -> PyErr {
    if e.backend_error.is_some() {
        return BudgetBackendError::new_err(e.to_string());
    }
    let err = BudgetExceededError::new_err(e.to_string());
    let set = || -> PyResult<()> {
        let v = err.value(py);
        v.setattr("budget", &e.budget)?;
        v.setattr("scope", &e.scope)?;
        v.setattr("value", e.value.as_deref())?;
        v.setattr("limit", e.limit.normalize())?;
        v.setattr("spent", e.spent.normalize())?;
        v.setattr("reserved", e.reserved.normalize())?;
        v.setattr("requested", e.requested.normalize())?;
        v.setattr("window", &e.window)?;
        v.setattr("resets_at", e.resets_at)?;
        Ok(())
    };
    // Attributes are a convenience on top of the message; never lose the error over them.
    let _ = set();
    err
}

/// One budget's state as a dict.
pub fn state_dict<'py>(py: Python<'py>, s: &BudgetState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("budget", &s.budget)?;
    d.set_item("scope", &s.scope)?;
    d.set_item("value", s.value.as_deref())?;
    d.set_item("window", &s.window)?;
    d.set_item("action", s.action.name())?;
    d.set_item("limit", s.limit.normalize())?;
    d.set_item("spent", s.spent.normalize())?;
    d.set_item("reserved", s.reserved.normalize())?;
    d.set_item("remaining", s.remaining.normalize())?;
    d.set_item("percent", s.percent.normalize())?;
    d.set_item("window_start", s.window_start)?;
    d.set_item("resets_at", s.resets_at)?;
    Ok(d)
}

/// Where alerts go: the `llmledger` logger (unless `log_alerts=False`), then `on_alert`, then
/// the webhook.
pub struct AlertSinks {
    /// Behind a lock so the garbage collector can clear it (`on_alert=self.method` makes a
    /// cycle through the tracker); never called, nor let go of, with the lock held.
    on_alert: Mutex<Option<Py<PyAny>>>,
    webhook: Option<Webhook>,
    log: bool,
}

impl AlertSinks {
    /// Sinks for `on_alert` (a callable) and `alert_webhook` (an http(s) URL); `log`: also a
    /// WARNING on the `llmledger` logger.
    pub fn new(
        on_alert: Option<&Bound<'_, PyAny>>,
        webhook: Option<&str>,
        log: bool,
    ) -> PyResult<Self> {
        let on_alert = match on_alert.filter(|f| !f.is_none()) {
            Some(f) if !f.is_callable() => {
                return Err(PyTypeError::new_err(format!(
                    "on_alert must be a callable taking one BudgetAlert, got {}",
                    f.get_type().name()?
                )))
            }
            f => f.map(|f| f.clone().unbind()),
        };
        let webhook = webhook
            .map(|url| {
                // Failures are reported from the webhook's thread, straight to the logger
                // (never with the URL's secret parts); not at all once Python is shutting down.
                let report = Arc::new(|msg: String| {
                    let _ = Python::try_attach(|py| super::log::log_warnings(py, &[msg]));
                });
                Webhook::new(url, report)
            })
            .transpose()?;
        Ok(AlertSinks {
            on_alert: Mutex::new(on_alert),
            webhook,
            log,
        })
    }

    /// Sends each alert to every sink. Never raises: a failing `on_alert` is logged.
    pub fn dispatch(&self, py: Python<'_>, alerts: Vec<Alert>) {
        for alert in alerts {
            if self.log {
                super::log::log_warnings(py, &[alert.text()]);
            }
            if let Some(w) = &self.webhook {
                w.send(&alert);
            }
            let on_alert = self.on_alert.lock().as_ref().map(|f| f.clone_ref(py));
            if let Some(f) = on_alert {
                let obj = PyBudgetAlert { inner: alert };
                if let Err(e) = f.bind(py).call1((obj,)) {
                    super::log::log_error(py, &format!("on_alert raised {e}; the call goes on"));
                }
            }
        }
    }

    /// Shows the garbage collector the Python object held (`on_alert`).
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        // A collection must never wait: if the lock is busy the edge goes unseen this time,
        // which only delays collecting a cycle.
        if let Some(f) = self.on_alert.try_lock() {
            if let Some(f) = f.as_ref() {
                visit.call(f)?;
            }
        }
        Ok(())
    }

    /// Lets go of `on_alert` (the garbage collector breaking a cycle).
    pub fn clear(&self) {
        let f = self.on_alert.lock().take();
        drop(f);
    }

    /// Waits for queued webhook alerts (bounded).
    pub fn flush(&self, py: Python<'_>) {
        if let Some(w) = &self.webhook {
            py.detach(|| w.flush(WEBHOOK_FLUSH));
        }
    }

    /// Lets queued webhook alerts go out (bounded), then stops the webhook.
    pub fn close(&self, py: Python<'_>) {
        if let Some(w) = &self.webhook {
            py.detach(|| w.close(WEBHOOK_CLOSE));
        }
    }

    /// The webhook's host and delivery counts, or None without one.
    pub fn stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(w) = &self.webhook else {
            return Ok(None);
        };
        let s = w.stats();
        let d = PyDict::new(py);
        d.set_item("target", w.target())?;
        d.set_item("sent", s.sent)?;
        d.set_item("failed", s.failed)?;
        d.set_item("dropped", s.dropped)?;
        Ok(Some(d))
    }
}

/// A clock that asks a Python callable (returning a timezone-aware `datetime`) for the time:
/// `CostTracker(clock=...)`, so tests move time by hand. A callable that fails or returns
/// something else falls back to the system clock (the failure is logged once).
pub struct PyClock {
    /// Behind a lock so the garbage collector can clear it (a `clock=self.method` cycle);
    /// `None` once cleared (the system clock then).
    now: Mutex<Option<Py<PyAny>>>,
    warned: std::sync::atomic::AtomicBool,
}

impl PyClock {
    /// A clock reading `now()`.
    pub fn new(now: &Bound<'_, PyAny>) -> PyResult<Self> {
        if !now.is_callable() {
            return Err(PyTypeError::new_err(
                "clock must be a callable returning a timezone-aware datetime",
            ));
        }
        Ok(PyClock {
            now: Mutex::new(Some(now.clone().unbind())),
            warned: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl PyClock {
    /// Shows the garbage collector the callable held.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(f) = self.now.try_lock() {
            if let Some(f) = f.as_ref() {
                visit.call(f)?;
            }
        }
        Ok(())
    }

    /// Lets go of the callable (the garbage collector breaking a cycle).
    pub fn clear(&self) {
        let f = self.now.lock().take();
        drop(f);
    }
}

impl Clock for PyClock {
    fn now(&self) -> DateTime<Utc> {
        Python::attach(|py| {
            let Some(now) = self.now.lock().as_ref().map(|f| f.clone_ref(py)) else {
                return Utc::now();
            };
            let got = now
                .bind(py)
                .call0()
                .and_then(|t| t.extract::<DateTime<FixedOffset>>());
            match got {
                Ok(t) => t.with_timezone(&Utc),
                Err(e) => {
                    if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        super::log::log_error(
                            py,
                            &format!(
                                "clock() must return a timezone-aware datetime ({e}); using \
                                 the system clock"
                            ),
                        );
                    }
                    Utc::now()
                }
            }
        })
    }
}

/// Budgets from the `budgets=` list.
pub fn definitions(budgets: &Bound<'_, PyAny>) -> PyResult<Vec<Budget>> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(b) = budgets.cast::<PyBudget>() {
        vec![b.clone().into_any()]
    } else if let Ok(l) = budgets.cast::<PyList>() {
        l.iter().collect()
    } else {
        budgets
            .try_iter()
            .map_err(|_| PyTypeError::new_err("budgets must be a list of llmledger.Budget"))?
            .collect::<PyResult<_>>()?
    };
    items
        .iter()
        .map(|b| {
            b.cast::<PyBudget>()
                .map(|b| b.get().inner.clone())
                .map_err(|_| {
                    PyTypeError::new_err(format!(
                        "budgets must hold llmledger.Budget objects, got {}",
                        b.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ))
                })
        })
        .collect()
}

/// A duration in seconds from a keyword argument: positive and finite.
fn seconds(v: f64, what: &str) -> PyResult<Duration> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(PyValueError::new_err(format!(
            "{what} must be a positive number of seconds, got {v}"
        )))
    }
}

/// The shared budget store's settings from the tracker's keyword arguments (`None`: the
/// budgets are in-process).
pub fn shared_settings(
    store: Option<&str>,
    prefix: Option<&str>,
    lease: Option<f64>,
    timeout: Option<f64>,
    on_error: Option<&str>,
) -> PyResult<Option<RedisSettings>> {
    let Some(url) = store else {
        if prefix.is_some() || lease.is_some() || timeout.is_some() || on_error.is_some() {
            return Err(PyValueError::new_err(
                "budget_prefix, budget_lease, budget_timeout and budget_backend_error set up a \
                 shared budget store: pass budget_store='redis://host:6379/0' too",
            ));
        }
        return Ok(None);
    };
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(
        scheme.as_deref(),
        Some("redis" | "rediss" | "redis+cluster" | "rediss+cluster")
    ) {
        return Err(PyValueError::new_err(
            "budget_store must be a redis:// (or rediss://) URL such as \
             'redis://127.0.0.1:6379/0', or redis+cluster://host:port[,host:port…] for a Redis \
             Cluster",
        ));
    }
    let mut s = RedisSettings::new(url);
    if let Some(p) = prefix {
        s.prefix = p.to_string();
    }
    if let Some(l) = lease {
        s.lease = seconds(l, "budget_lease")?;
    }
    if let Some(t) = timeout {
        s.timeout = seconds(t, "budget_timeout")?;
    }
    if let Some(e) = on_error {
        s.on_error = OnBackendError::from_str(e)?;
    }
    Ok(Some(s))
}

/// A shared budget store's address and counters as a dict.
pub fn backend_info_dict<'py>(py: Python<'py>, i: &BackendInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("backend", i.backend)?;
    d.set_item("url", &i.url)?;
    d.set_item("prefix", &i.prefix)?;
    d.set_item("budget_backend_error", i.on_error)?;
    d.set_item("lease_seconds", i.lease_seconds)?;
    d.set_item("reachable", i.reachable)?;
    d.set_item("errors", i.errors)?;
    d.set_item("admitted_unchecked", i.admitted_unchecked)?;
    d.set_item("refused_unreachable", i.refused_unreachable)?;
    d.set_item("pending_settlements", i.pending_settlements)?;
    d.set_item("replayed_settlements", i.replayed_settlements)?;
    d.set_item("dropped_settlements", i.dropped_settlements)?;
    d.set_item("seeded_windows", i.seeded_windows)?;
    Ok(d)
}
