//! Budgets shared through Redis: every process and host that names the same Redis, prefix
//! and budgets shares each budget window.
//!
//! One Lua script (`budgets.lua`) does every change atomically in Redis: a call's
//! reservation in every budget and scope it belongs to (all or nothing), its settlement or
//! release (idempotent by run id), the reclaiming of expired leases, thresholds that fire
//! once per window and scope for all hosts, and the seeding of a missing window from the
//! ledger. Money is integer pico-dollars. The clock is the Redis server's (`TIME`): this side
//! computes a window from its estimate of that clock, and the script sends it back when the
//! estimate put a call in the wrong calendar window. See `docs/hosts.md`.

mod conn;
mod keys;
mod pending;
mod settler;
mod spool;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use rust_decimal::prelude::ToPrimitive;

use crate::error::{Error, Result};
use crate::money::Decimal;

use super::backend::{parts, BackendInfo, Refusal, SharedLedger};
use super::state::state_row;
use super::{
    assign_names, Alert, AlertKind, Budget, BudgetExceeded, BudgetState, CallScope, ReservationId,
    Window,
};
use conn::{Client, Conn};
use keys::{redact, KeyValue, Keys, WindowSpec};
use pending::{Pending, PendingQueue};
use settler::Outbox;
pub use settler::RedisBudgets;
use spool::SettlementSpool;

/// The script, loaded by its SHA (and sent again after a Redis restart forgot it).
const LUA: &str = include_str!("budgets.lua");
/// How long a failed Redis is left alone before it is tried again: calls in the meantime
/// take the `open`/`closed` path at once instead of each waiting for a timeout.
const RETRY_AFTER: StdDuration = StdDuration::from_secs(1);
/// A seed counts the ledger's records up to this long before the seeding time: what other
/// processes' writer threads (50 ms batches) may not have committed yet is left to their
/// settlements.
const SEED_SLACK_MS: i64 = 1000;
/// How long a key outlives its window (beyond the lease), so a late settlement finds it.
const GRACE_MS: i64 = 3_600_000;

/// What a tracker does with a call when Redis cannot be asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnBackendError {
    /// Let it through unchecked (logged, counted); its cost is settled when Redis is back.
    #[default]
    Open,
    /// Refuse it (`BudgetBackendError`).
    Closed,
}

impl FromStr for OnBackendError {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "open" => Ok(OnBackendError::Open),
            "closed" => Ok(OnBackendError::Closed),
            other => Err(Error::InvalidArgument(format!(
                "budget_backend_error='{other}': use 'open' (calls go on unchecked while the \
                 budget store is unreachable) or 'closed' (they are refused)"
            ))),
        }
    }
}

impl OnBackendError {
    fn name(self) -> &'static str {
        match self {
            OnBackendError::Open => "open",
            OnBackendError::Closed => "closed",
        }
    }
}

/// How to reach Redis and what to do when it cannot be reached.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port/db` (or `rediss://`).
    pub url: String,
    /// Every key starts with `{prefix}:`.
    pub prefix: String,
    /// How long a reservation holds before Redis gives it back (a call's timeout).
    pub lease: StdDuration,
    /// Connect, read and write timeout of one request.
    pub timeout: StdDuration,
    /// Open or closed when Redis is unreachable.
    pub on_error: OnBackendError,
}

impl RedisSettings {
    /// Settings for `url` with the defaults: prefix `llmledger`, a 10-minute lease, a
    /// 250 ms timeout, open on errors.
    pub fn new(url: &str) -> RedisSettings {
        RedisSettings {
            url: url.to_string(),
            prefix: "llmledger".into(),
            lease: StdDuration::from_secs(600),
            timeout: StdDuration::from_millis(250),
            on_error: OnBackendError::Open,
        }
    }
}

/// A reservation this process holds.
struct Held {
    run: String,
    amount: i128,
    parts: Vec<(usize, Option<Arc<str>>)>,
    /// The counters it is reserved in (empty: admitted unchecked, Redis unreachable).
    keys: Vec<String>,
    /// The windows it was reserved in, per part.
    windows: Vec<WindowSpec>,
}

/// When an operation happens: `at` the time its windows are taken at (`None`: Redis's now,
/// checked by the script), `record` the call's end (a settlement older than a window's seed
/// is already in it).
#[derive(Clone, Copy)]
struct Times {
    at: Option<DateTime<Utc>>,
    record: DateTime<Utc>,
}

/// What went wrong asking Redis.
enum Failure {
    /// Redis could not be asked (or is being left alone after a failure).
    Unreachable(String),
}

/// The state shared by a tracker's calls and its settler thread.
struct Inner {
    defs: Vec<Budget>,
    settings: RedisSettings,
    shown_url: String,
    client: Client,
    /// Idle connections, and the process they were opened by (a forked child opens its own).
    pool: Mutex<(u32, Vec<Conn>)>,
    script: redis::Script,
    keys: Keys,
    ledger: Option<SharedLedger>,
    held: Mutex<HashMap<u64, Held>>,
    next_id: AtomicU64,
    /// Redis's clock minus this host's, in ms.
    offset_ms: AtomicI64,
    /// Until when Redis is left alone after a failure.
    down_until: Mutex<Option<Instant>>,
    reachable: AtomicBool,
    pending: PendingQueue,
    messages: Mutex<Vec<String>>,
    has_messages: AtomicBool,
    errors: AtomicU64,
    admitted_unchecked: AtomicU64,
    refused_unreachable: AtomicU64,
    seeded: AtomicU64,
    /// Settlements of ended calls not yet sent (see `settler.rs`).
    outbox: Outbox,
    /// The outage queue's copy on the disk (see `spool.rs`).
    spool: SettlementSpool,
}

/// A script's reply: its words.
type Reply = Vec<String>;

/// `d` in whole pico-dollars, rounded up (a user's price may have more decimals).
fn pico(d: Decimal) -> i128 {
    let scaled = d
        .max(Decimal::ZERO)
        .checked_mul(Decimal::from(1_000_000_000_000_i64))
        .unwrap_or(Decimal::MAX);
    scaled.ceil().to_i128().unwrap_or(i128::MAX / 4)
}

fn usd(p: &str) -> Decimal {
    let v: i128 = p.parse().unwrap_or(0);
    Decimal::try_from_i128_with_scale(v, 12)
        .unwrap_or(Decimal::MAX)
        .normalize()
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Inner {
    /// Budgets from their definitions, shared through the Redis `settings` name. Nothing is
    /// sent until the first call; a bad URL is an error now. `ledger`: where a missing
    /// window's spend is read from.
    pub fn new(
        mut budgets: Vec<Budget>,
        settings: RedisSettings,
        ledger: Option<SharedLedger>,
    ) -> Result<Inner> {
        for b in &mut budgets {
            b.alert_at = Budget::new(b.limit, b.window)?
                .alert_at(b.alert_at.iter().copied())?
                .alert_at;
        }
        assign_names(&mut budgets);
        let shown_url = redact(&settings.url);
        let client = Client::open(&settings.url, &shown_url, settings.timeout)?;
        if settings.prefix.is_empty() || settings.prefix.contains(['{', '}']) {
            return Err(Error::InvalidArgument(format!(
                "budget_prefix='{}' must be non-empty text without '{{' or '}}'",
                settings.prefix
            )));
        }
        let inner = Inner {
            spool: SettlementSpool::new(&shown_url, &settings.prefix),
            defs: budgets,
            keys: Keys::new(&settings.prefix),
            shown_url,
            settings,
            client,
            pool: Mutex::new((std::process::id(), Vec::new())),
            script: redis::Script::new(LUA),
            ledger,
            held: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            offset_ms: AtomicI64::new(0),
            down_until: Mutex::new(None),
            reachable: AtomicBool::new(true),
            pending: PendingQueue::default(),
            messages: Mutex::new(Vec::new()),
            has_messages: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            admitted_unchecked: AtomicU64::new(0),
            refused_unreachable: AtomicU64::new(0),
            seeded: AtomicU64::new(0),
            outbox: Outbox::default(),
        };
        inner.adopt_orphans();
        Ok(inner)
    }

    /// Takes over the spooled settlements of trackers of this Redis and prefix that died
    /// during an outage: spooled again as this tracker's, applied when Redis answers.
    fn adopt_orphans(&self) {
        for (path, found, unusable) in self.spool.orphans(&self.defs) {
            let n = found.len();
            for p in found {
                self.for_outage(p);
            }
            let _ = std::fs::remove_file(&path);
            if n + unusable > 0 {
                self.say(format!(
                    "budget store {}: {n} settlement(s) spooled by a process that is gone \
                     ({}) are applied when it answers{}",
                    self.shown_url,
                    path.display(),
                    if unusable > 0 {
                        format!(
                            "; {unusable} line(s) were unreadable or name budgets this \
                             tracker does not define, and are dropped"
                        )
                    } else {
                        String::new()
                    }
                ));
            }
        }
    }

    /// Queues a settlement until Redis answers, in memory and in the spool file.
    fn for_outage(&self, p: Pending) {
        // In memory first: the spool is emptied only when the memory queue is.
        let copy = Pending {
            run: p.run.clone(),
            parts: p.parts.clone(),
            actual: p.actual,
            at: p.at,
        };
        self.pending.push(p);
        if let Err(e) = self.spool.append(&self.defs, &copy) {
            self.say(format!(
                "budget store {}: a settlement could not be spooled to the disk ({e}); it is \
                 kept in memory only",
                self.shown_url
            ));
        }
    }

    /// The time by Redis's clock, as this host estimates it.
    fn redis_now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    fn learn_clock(&self, redis_ms: &str) {
        if let Ok(t) = redis_ms.parse::<i64>() {
            self.offset_ms
                .store(t - Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
    }

    fn say(&self, m: String) {
        self.messages.lock().push(m);
        self.has_messages.store(true, Ordering::Release);
    }

    fn connection(&self) -> redis::RedisResult<Conn> {
        {
            let mut pool = self.pool.lock();
            let pid = std::process::id();
            if pool.0 != pid {
                // Forked: the parent's connections are its own (their replies would be read
                // by two processes).
                *pool = (pid, Vec::new());
            }
            if let Some(c) = pool.1.pop() {
                return Ok(c);
            }
        }
        self.client.connect(self.settings.timeout)
    }

    /// Gives a connection that worked back to the pool (unless opened before a fork).
    fn give_back(&self, c: Conn) {
        let mut pool = self.pool.lock();
        if pool.0 == std::process::id() {
            pool.1.push(c);
        }
    }

    /// Runs the script with `keys` and `args`, or says why it could not.
    fn run(&self, keys: &[String], args: &[String]) -> std::result::Result<Reply, Failure> {
        self.exec(|c| c.invoke(&self.invocation(keys, args)))
    }

    /// The script's invocation with `keys` and `args`.
    fn invocation(&self, keys: &[String], args: &[String]) -> redis::ScriptInvocation<'_> {
        let mut inv = self.script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in args {
            inv.arg(a);
        }
        inv
    }

    /// One script run of the operations `ops` (each the keys and arguments it would be run
    /// with alone; all of this tracker, so sharing the prefix, lease, grace, seed flag and done
    /// ttl): the script's `batch`, replying with each operation's reply in order.
    fn batch_invocation(&self, ops: &[(&[String], &[String])]) -> redis::ScriptInvocation<'_> {
        let mut inv = self.script.prepare_invoke();
        let Some((keys, head)) = ops.first() else {
            return inv;
        };
        inv.key(&keys[0]);
        inv.arg("batch");
        for i in [1, 4, 5, 6, 10] {
            inv.arg(&head[i]);
        }
        inv.arg(ops.len());
        for (keys, args) in ops {
            for k in &keys[1..] {
                inv.key(k);
            }
            inv.arg(&args[0]);
            for a in &args[2..4] {
                inv.arg(a);
            }
            for a in &args[7..10] {
                inv.arg(a);
            }
            for a in &args[11..] {
                inv.arg(a);
            }
        }
        inv
    }

    /// Runs `f` on a pooled connection (given back when it succeeded), or says why it could
    /// not; keeps the reachable / unreachable state and its messages.
    fn exec<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> redis::RedisResult<T>,
    ) -> std::result::Result<T, Failure> {
        if let Some(until) = *self.down_until.lock() {
            if Instant::now() < until {
                return Err(Failure::Unreachable(
                    "unreachable (retrying shortly)".into(),
                ));
            }
        }
        let result = self.connection().and_then(|mut c| {
            let r = f(&mut c);
            if r.is_ok() {
                self.give_back(c);
            }
            r
        });
        match result {
            Ok(reply) => {
                *self.down_until.lock() = None;
                if !self.reachable.swap(true, Ordering::AcqRel) {
                    self.say(format!(
                        "budget store {} is reachable again; {} settlement(s) of calls made \
                         meanwhile are being applied",
                        self.shown_url,
                        self.pending.len()
                    ));
                }
                Ok(reply)
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                *self.down_until.lock() = Some(Instant::now() + RETRY_AFTER);
                let what = format!("{e}{}", conn::hint(&e));
                if self.reachable.swap(false, Ordering::AcqRel) {
                    let then = match self.settings.on_error {
                        OnBackendError::Open => "calls go on unchecked (budget_backend_error='open') and are settled when it is back",
                        OnBackendError::Closed => "calls are refused (budget_backend_error='closed')",
                    };
                    self.say(format!(
                        "budget store {} is unreachable ({what}): {then}",
                        self.shown_url
                    ));
                }
                Err(Failure::Unreachable(what))
            }
        }
    }

    /// The fixed head of every script's arguments.
    fn head(&self, op: &str, run: &str, amount: &str, n: usize) -> Vec<String> {
        let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX / 4);
        vec![
            op.into(),
            self.keys.tag.clone(),
            run.into(),
            amount.into(),
            lease.to_string(),
            (lease + GRACE_MS).to_string(),
            if self.ledger.is_some() { "1" } else { "0" }.into(),
            n.to_string(),
            String::new(),
            "0".into(),
            (2 * lease + GRACE_MS).to_string(),
        ]
    }

    /// Appends the keys and arguments of `parts` in their windows at `t`.
    fn add_parts(
        &self,
        parts: &[(usize, Option<Arc<str>>)],
        t: DateTime<Utc>,
        keys: &mut Vec<String>,
        args: &mut Vec<String>,
    ) -> Vec<WindowSpec> {
        let mut windows = Vec::with_capacity(parts.len());
        for (i, v) in parts {
            let def = &self.defs[*i];
            let w = WindowSpec::of(def, t);
            keys.push(self.keys.counter(&def.name, &w, v.as_deref()));
            keys.push(self.keys.marker(&def.name, &w));
            keys.push(self.keys.values(&def.name, &w));
            args.extend(Self::spec_args(def, &w));
            windows.push(w);
        }
        windows
    }

    fn spec_args(def: &Budget, w: &WindowSpec) -> [String; 6] {
        let blocks = match (def.blocks(), def.cut_streams) {
            (false, _) => "0",
            (true, false) => "1",
            (true, true) => "2",
        };
        let thresholds: Vec<String> = def
            .alert_at
            .iter()
            .map(|t| pico(t.saturating_mul(def.limit)).to_string())
            .collect();
        [
            w.kind.into(),
            w.a.to_string(),
            w.b.to_string(),
            pico(def.limit).to_string(),
            blocks.into(),
            thresholds.join(","),
        ]
    }

    fn base_keys(&self, run: &str) -> Vec<String> {
        vec![self.keys.leases(), self.keys.reservation(run)]
    }

    /// When the window of part `k` resets or its oldest spend leaves it.
    fn resets_at(def: &Budget, w: &WindowSpec, lo: &str) -> Option<DateTime<Utc>> {
        match def.window {
            Window::Calendar { .. } => DateTime::from_timestamp_millis(w.b),
            Window::Rolling(_) => lo
                .parse::<i64>()
                .ok()
                .and_then(|lo| DateTime::from_timestamp_millis((lo + 1) * w.b + w.a)),
            Window::Lifetime => None,
        }
    }

    /// A refusal (`refused` or `over` reply: part, spent, reserved, alert due, lo, now).
    fn refusal(
        &self,
        parts: &[(usize, Option<Arc<str>>)],
        windows: &[WindowSpec],
        reply: &Reply,
        requested: Decimal,
    ) -> Refusal {
        let k: usize = reply[1].parse().unwrap_or(0);
        let (i, v) = &parts[k];
        let def = &self.defs[*i];
        let now = reply[6]
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or_else(Utc::now);
        let spent = usd(&reply[2]);
        let reserved = usd(&reply[3]);
        let resets_at = Self::resets_at(def, &windows[k], &reply[5]);
        let alert = (reply[4] == "1").then(|| Alert {
            kind: AlertKind::Blocked,
            budget: def.name.clone(),
            scope: def.scope.name().to_string(),
            value: v.as_deref().map(ToString::to_string),
            threshold: Decimal::ONE,
            spent,
            reserved,
            limit: def.limit,
            window: def.window.to_string(),
            action: def.action.name(),
            resets_at: matches!(def.window, Window::Calendar { .. })
                .then_some(resets_at)
                .flatten(),
            time: now,
        });
        Box::new(BudgetExceeded {
            budget: def.name.clone(),
            scope: def.scope.name().to_string(),
            value: v.as_deref().map(ToString::to_string),
            limit: def.limit,
            spent,
            reserved,
            requested,
            window: def.window.to_string(),
            resets_at,
            rolling: matches!(def.window, Window::Rolling(_)),
            alert,
            backend_error: None,
        })
    }

    /// Seeds budget `i`'s window at `t` from the ledger: the spend of every scope value in
    /// it, once (a second host seeding at the same time finds the first one's marker).
    fn seed(&self, i: usize, t: DateTime<Utc>) -> std::result::Result<(), Failure> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let def = &self.defs[i];
        let w = WindowSpec::of(def, t);
        let Some(since) = w.start(t) else {
            return Ok(());
        };
        let cutoff = ms(t) - SEED_SLACK_MS;
        ledger.flush();
        // Per scope value: the total (calendar) or the total per slot (rolling).
        let mut sums: BTreeMap<Option<String>, BTreeMap<i64, i128>> = BTreeMap::new();
        let mut vals = Vec::new();
        let read = ledger.for_each_since(since, &mut |call, time, cost| {
            let at = ms(time);
            if at >= cutoff {
                return;
            }
            let slot = if w.kind == "r" { at / w.b } else { 0 };
            call.values(&def.scope, &mut vals);
            for v in vals.drain(..) {
                *sums
                    .entry(v.map(|s| s.to_string()))
                    .or_default()
                    .entry(slot)
                    .or_default() += pico(cost);
            }
        });
        match read {
            Ok(warnings) => {
                for m in warnings {
                    self.say(m);
                }
            }
            Err(e) => {
                // Never seed from a ledger that could not be read: the window would start
                // short of what was spent. Seeding is retried by the next call.
                self.say(format!(
                    "budget '{}': its window could not be seeded from the ledger ({e}); \
                     calls in it are checked without the ledger's spend",
                    def.name
                ));
                return Err(Failure::Unreachable(e.to_string()));
            }
        }
        let mut keys = vec![
            self.keys.leases(),
            self.keys.marker(&def.name, &w),
            self.keys.marker(&def.name, &w),
            self.keys.values(&def.name, &w),
        ];
        let mut args = self.head("seed", "-", "", 0);
        let spec = Self::spec_args(def, &w);
        args.extend([
            w.kind.to_string(),
            w.a.to_string(),
            w.b.to_string(),
            spec[5].clone(),
            cutoff.to_string(),
        ]);
        for (v, slots) in &sums {
            keys.push(self.keys.counter(&def.name, &w, v.as_deref()));
            args.push(if w.kind == "r" {
                let s: Vec<String> = slots.iter().map(|(s, a)| format!("{s}:{a}")).collect();
                s.join(",")
            } else {
                slots.values().sum::<i128>().to_string()
            });
        }
        let reply = self.run(&keys, &args)?;
        if reply.get(1).is_some_and(|s| s == "1") {
            self.seeded.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Runs an operation whose windows are computed at Redis's time, following the script's
    /// corrections (a clock estimate off across a window boundary, a window to seed first).
    fn with_windows(
        &self,
        op: &str,
        run: &str,
        amount: &str,
        parts: &[(usize, Option<Arc<str>>)],
        times: Times,
        mut carry: Vec<Pending>,
    ) -> std::result::Result<(Reply, Vec<String>, Vec<WindowSpec>), Failure> {
        let Times { at, record } = times;
        for _ in 0..4 {
            let t = at.unwrap_or_else(|| self.redis_now());
            let mut keys = self.base_keys(run);
            let mut args = self.head(op, run, amount, parts.len());
            if let Some(at) = at {
                args[8] = ms(at).to_string();
            }
            args[9] = ms(record).to_string();
            let windows = self.add_parts(parts, t, &mut keys, &mut args);
            // Settlements of this process's ended calls ride along in the same round trip.
            let reply = if carry.is_empty() {
                self.run(&keys, &args)?
            } else {
                self.send_batch(std::mem::take(&mut carry), Some((&keys, &args)))?
            };
            match reply.first().map(String::as_str) {
                Some("clock") => self.learn_clock(&reply[1]),
                Some("seed") => {
                    self.learn_clock(&reply[2]);
                    let k: usize = reply[1].parse().unwrap_or(0);
                    let when = at.unwrap_or_else(|| self.redis_now());
                    self.seed(parts[k].0, when)?;
                }
                _ => {
                    let counters = keys.iter().skip(2).step_by(3).cloned().collect();
                    return Ok((reply, counters, windows));
                }
            }
        }
        Err(Failure::Unreachable(
            "the Redis clock and this host's disagree about the budget window".into(),
        ))
    }

    fn alerts(
        &self,
        parts: &[(usize, Option<Arc<str>>)],
        windows: &[WindowSpec],
        reply: &Reply,
    ) -> Vec<Alert> {
        let now = self.redis_now();
        reply[1..]
            .chunks(4)
            .filter(|c| c.len() == 4)
            .filter_map(|c| {
                let k: usize = c[0].parse().ok()?;
                let n: usize = c[1].parse().ok()?;
                let (i, v) = parts.get(k)?;
                let def = &self.defs[*i];
                Some(Alert {
                    kind: AlertKind::Threshold,
                    budget: def.name.clone(),
                    scope: def.scope.name().to_string(),
                    value: v.as_deref().map(ToString::to_string),
                    threshold: *def.alert_at.get(n.checked_sub(1)?)?,
                    spent: usd(&c[2]),
                    reserved: usd(&c[3]),
                    limit: def.limit,
                    window: def.window.to_string(),
                    action: def.action.name(),
                    resets_at: match def.window {
                        Window::Calendar { .. } => DateTime::from_timestamp_millis(windows[k].b),
                        _ => None,
                    },
                    time: now,
                })
            })
            .collect()
    }

    /// Settles `run` now (`actual`: the cost in pico-dollars; `None`: release only), or
    /// queues the settlement when Redis cannot be asked. Returns the alerts.
    fn settle_run(
        &self,
        run: String,
        parts: Vec<(usize, Option<Arc<str>>)>,
        actual: Option<i128>,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        self.replay();
        let amount = actual.map(|a| a.to_string()).unwrap_or_default();
        let times = Times {
            at: None,
            record: now,
        };
        match self.with_windows("settle", &run, &amount, &parts, times, Vec::new()) {
            Ok((reply, _, windows)) => self.alerts(&parts, &windows, &reply),
            Err(Failure::Unreachable(_)) => {
                if actual.is_some() {
                    self.for_outage(Pending {
                        run,
                        parts,
                        actual,
                        at: now,
                    });
                }
                // A release that could not be sent: the lease gives the amount back.
                Vec::new()
            }
        }
    }

    /// Applies settlements queued while Redis was unreachable, once each (the script's
    /// done mark makes a settlement sent twice count once).
    fn replay(&self) {
        if self.pending.is_empty() || !self.reachable.load(Ordering::Acquire) {
            return;
        }
        let Some(batch) = self.pending.take_batch() else {
            return;
        };
        let mut left = Vec::new();
        for p in batch {
            let amount = p.actual.map(|a| a.to_string()).unwrap_or_default();
            match self.with_windows(
                "settle",
                &p.run,
                &amount,
                &p.parts,
                Times {
                    at: Some(p.at),
                    record: p.at,
                },
                Vec::new(),
            ) {
                Ok(_) => self.pending.replayed(),
                Err(_) => left.push(p),
            }
        }
        self.pending.put_back(left);
        if self.pending.is_empty() {
            self.spool.clear();
        }
    }

    fn unreachable(&self, e: &str) -> Refusal {
        Box::new(BudgetExceeded::unreachable(format!(
            "{}: {e}",
            self.shown_url
        )))
    }

    fn state_of(
        &self,
        i: usize,
        now: DateTime<Utc>,
    ) -> std::result::Result<Vec<BudgetState>, Failure> {
        let def = &self.defs[i];
        let w = WindowSpec::of(def, now);
        let keys = vec![
            self.keys.leases(),
            self.keys.values(&def.name, &w),
            self.keys.values(&def.name, &w),
        ];
        let mut args = self.head("state", "-", "", 0);
        args.extend([w.kind.to_string(), w.a.to_string(), w.b.to_string()]);
        let reply = self.run(&keys, &args)?;
        let mut rows: Vec<(Option<String>, BudgetState)> = Vec::new();
        for c in reply[1..].chunks(4).filter(|c| c.len() == 4) {
            let Some(KeyValue(value)) = self.keys.value_of(&def.name, &w, &c[0]) else {
                continue;
            };
            let st = state_row(
                def,
                value.as_deref(),
                usd(&c[1]),
                usd(&c[2]),
                w.start(now),
                Self::resets_at(def, &w, &c[3]).or_else(|| def.window.resets_at(now)),
            );
            rows.push((value, st));
        }
        if def.scope == super::Scope::Global && rows.is_empty() {
            let resets = Self::resets_at(def, &w, "");
            rows.push((
                None,
                state_row(
                    def,
                    None,
                    Decimal::ZERO,
                    Decimal::ZERO,
                    w.start(now),
                    resets,
                ),
            ));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rows.into_iter().map(|(_, s)| s).collect())
    }
}

/// A run id as the keys name it.
fn run_key(run_id: u128) -> String {
    format!("{run_id:032x}")
}

impl Inner {
    fn definitions(&self) -> &[Budget] {
        &self.defs
    }

    fn reserve(
        &self,
        run_id: u128,
        call: &CallScope,
        amount: Decimal,
        _now: DateTime<Utc>,
    ) -> std::result::Result<ReservationId, Refusal> {
        self.replay();
        let carry = self.outbox.take_in_order(self.settings.timeout);
        let parts = parts(&self.defs, call);
        let amount = amount.max(Decimal::ZERO);
        let run = run_key(run_id);
        let p = pico(amount);
        let (keys, windows) = match self.with_windows(
            "reserve",
            &run,
            &p.to_string(),
            &parts,
            Times {
                at: None,
                record: Utc::now(),
            },
            carry,
        ) {
            Ok((reply, counters, windows)) => {
                if reply[0] == "refused" {
                    return Err(self.refusal(&parts, &windows, &reply, amount));
                }
                (counters, windows)
            }
            Err(Failure::Unreachable(e)) => match self.settings.on_error {
                OnBackendError::Closed => {
                    self.refused_unreachable.fetch_add(1, Ordering::Relaxed);
                    return Err(self.unreachable(&e));
                }
                OnBackendError::Open => {
                    self.admitted_unchecked.fetch_add(1, Ordering::Relaxed);
                    (Vec::new(), Vec::new())
                }
            },
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.held.lock().insert(
            id,
            Held {
                run,
                amount: p,
                parts,
                keys,
                windows,
            },
        );
        Ok(ReservationId(id))
    }

    fn reserve_at_least(
        &self,
        id: ReservationId,
        total: Decimal,
        _now: DateTime<Utc>,
    ) -> std::result::Result<(), Refusal> {
        let want = pico(total);
        let (run, delta, parts, keys, windows) = {
            let mut held = self.held.lock();
            let Some(h) = held.get_mut(&id.0) else {
                return Ok(());
            };
            if want <= h.amount || h.keys.is_empty() {
                h.amount = h.amount.max(want);
                return Ok(());
            }
            let delta = want - h.amount;
            h.amount = want;
            (
                h.run.clone(),
                delta,
                h.parts.clone(),
                h.keys.clone(),
                h.windows.clone(),
            )
        };
        let mut ks = self.base_keys(&run);
        let mut args = self.head("grow", &run, &delta.to_string(), parts.len());
        for (k, ((i, _), w)) in keys.iter().zip(parts.iter().zip(&windows)) {
            let def = &self.defs[*i];
            ks.push(k.clone());
            ks.push(self.keys.marker(&def.name, w));
            ks.push(self.keys.values(&def.name, w));
            args.extend(Self::spec_args(def, w));
        }
        match self.run(&ks, &args) {
            Ok(reply) if reply[0] == "over" => Err(self.refusal(
                &parts,
                &windows,
                &reply,
                Decimal::try_from_i128_with_scale(delta, 12).unwrap_or_default(),
            )),
            // Unreachable: the stream goes on; its cost is settled at its end.
            _ => Ok(()),
        }
    }

    fn settle(&self, id: ReservationId, actual: Option<Decimal>, now: DateTime<Utc>) -> Vec<Alert> {
        let Some(h) = self.held.lock().remove(&id.0) else {
            return self.outbox.take_alerts();
        };
        self.defer(h.run, h.parts, actual.map(pico), now)
    }

    fn release(&self, id: ReservationId) -> bool {
        let Some(h) = self.held.lock().remove(&id.0) else {
            return false;
        };
        if !h.keys.is_empty() {
            self.outbox.push(Pending {
                run: h.run,
                parts: h.parts,
                actual: None,
                at: Utc::now(),
            });
        }
        true
    }

    fn charge(
        &self,
        run_id: u128,
        call: &CallScope,
        amount: Decimal,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        self.defer(
            run_key(run_id),
            parts(&self.defs, call),
            Some(pico(amount)),
            now,
        )
    }

    fn state(&self, _now: DateTime<Utc>) -> Vec<BudgetState> {
        self.drain();
        let now = self.redis_now();
        let mut rows = Vec::new();
        for i in 0..self.defs.len() {
            match self.state_of(i, now) {
                Ok(r) => rows.extend(r),
                Err(Failure::Unreachable(_)) => return Vec::new(),
            }
        }
        rows
    }

    fn reset(&self, budget: Option<&str>, value: Option<&str>) -> Result<usize> {
        self.drain();
        let targets: Vec<usize> = match budget {
            None => (0..self.defs.len()).collect(),
            Some(name) => vec![self
                .defs
                .iter()
                .position(|b| b.name == name)
                .ok_or_else(|| Error::InvalidArgument(format!("no budget named '{name}'")))?],
        };
        let now = self.redis_now();
        let failed =
            |_| Error::InvalidArgument(format!("budget store {} is unreachable", self.shown_url));
        let mut keys = vec![self.keys.leases(), self.keys.leases()];
        for i in targets {
            let def = &self.defs[i];
            let w = WindowSpec::of(def, now);
            let mut args = self.head("state", "-", "", 0);
            args.extend([w.kind.to_string(), w.a.to_string(), w.b.to_string()]);
            let vk = self.keys.values(&def.name, &w);
            let reply = self
                .run(&[self.keys.leases(), vk.clone(), vk], &args)
                .map_err(failed)?;
            for c in reply[1..].chunks(4).filter(|c| c.len() == 4) {
                let v = self.keys.value_of(&def.name, &w, &c[0]);
                let matches = match (value, &v) {
                    (_, None) => false,
                    (None, _) => true,
                    (Some(want), Some(KeyValue(None))) => want == super::NONE_VALUE,
                    (Some(want), Some(KeyValue(Some(have)))) => want == have,
                };
                if matches {
                    keys.push(c[0].clone());
                }
            }
        }
        let n = keys.len() - 2;
        if n > 0 {
            let args = self.head("reset", "-", "", 0);
            self.run(&keys, &args).map_err(failed)?;
        }
        Ok(n)
    }

    fn open_reservations(&self) -> usize {
        self.held.lock().len()
    }

    fn take_messages(&self) -> Vec<String> {
        if !self.has_messages.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.messages.lock())
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            backend: "redis",
            url: self.shown_url.clone(),
            prefix: self.settings.prefix.clone(),
            on_error: self.settings.on_error.name(),
            lease_seconds: self.settings.lease.as_secs_f64(),
            reachable: self.reachable.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            admitted_unchecked: self.admitted_unchecked.load(Ordering::Relaxed),
            refused_unreachable: self.refused_unreachable.load(Ordering::Relaxed),
            pending_settlements: self.pending.len(),
            replayed_settlements: self.pending.replayed_count(),
            dropped_settlements: self.pending.dropped_count(),
            seeded_windows: self.seeded.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::BudgetBackend;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn money_is_whole_pico_dollars_rounded_up() {
        assert_eq!(pico(d("0.000000075")), 75_000);
        assert_eq!(pico(d("1.5")), 1_500_000_000_000);
        // A user's price with more decimals: rounded up, never down (a budget never lets
        // a call through on a rounding).
        assert_eq!(pico(d("0.0000000000001")), 1);
        assert_eq!(pico(d("-1")), 0);
        // Amounts past what a Lua double holds exactly (2^53 pico is about $9,007) stay exact.
        assert_eq!(pico(d("123456.000000000001")), 123_456_000_000_000_001);
        assert_eq!(usd("123456000000000001"), d("123456.000000000001"));
        assert_eq!(usd("75000"), d("0.000000075"));
    }

    #[test]
    fn settings_are_checked_without_contacting_redis() {
        let b = vec![Budget::daily(Decimal::ONE).unwrap()];
        let mut s = RedisSettings::new("redis://:pw@127.0.0.1:1/0");
        let r = RedisBudgets::new(b.clone(), s.clone(), None).unwrap();
        assert_eq!(r.definitions()[0].name, "day");
        assert_eq!(r.info().unwrap().url, "redis://***@127.0.0.1:1/0");
        s.prefix = "a{b}".into();
        assert!(RedisBudgets::new(b.clone(), s, None).is_err());
        let err = RedisBudgets::new(b, RedisSettings::new("redis://:pw@[bad"), None)
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("pw"), "{err}");
        assert_eq!(
            OnBackendError::from_str("closed").unwrap(),
            OnBackendError::Closed
        );
        assert!(OnBackendError::from_str("shut").is_err());
    }
}
