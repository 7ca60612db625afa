//! Where budgets get the time from: the system clock, or a clock tests set by hand.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

/// A source of the current time. The tracker holds one and passes `now` to [`super::Budgets`].
pub trait Clock: Send + Sync {
    /// The current time (UTC).
    fn now(&self) -> DateTime<Utc>;

    /// The time at `at`, a monotonic instant the caller just read (a call's end, whose
    /// latency it also gives). The system clock derives it from `at` instead of reading the
    /// wall clock again; other clocks just tell the time.
    fn now_at(&self, at: Instant) -> DateTime<Utc> {
        let _ = at;
        self.now()
    }
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        system_now_at(Instant::now())
    }

    fn now_at(&self, at: Instant) -> DateTime<Utc> {
        system_now_at(at)
    }
}

/// How long a thread's anchor (a wall-clock reading and the monotonic instant of it) is used.
const ANCHOR_LIFETIME: std::time::Duration = std::time::Duration::from_secs(1);

/// The wall-clock time at monotonic instant `at`.
///
/// Each thread reads the wall clock at most once a second and adds the monotonic time elapsed
/// since that reading: a call's end reads one clock instead of two (the latency needs the
/// monotonic one), and the calendar conversion happens once a second, not per call. A step of
/// the wall clock (someone setting the time) shows within a second; while NTP slews the clock,
/// times may differ from `Utc::now()` by its rate (at most 0.5 ms a second).
fn system_now_at(at: Instant) -> DateTime<Utc> {
    thread_local! {
        static ANCHOR: Cell<Option<(Instant, DateTime<Utc>)>> = const { Cell::new(None) };
    }
    ANCHOR
        .try_with(|anchor| {
            if let Some((then, wall)) = anchor.get() {
                if let Some(since) = at.checked_duration_since(then) {
                    if since < ANCHOR_LIFETIME {
                        if let Ok(since) = Duration::from_std(since) {
                            return wall + since;
                        }
                    }
                }
            }
            let wall = Utc::now();
            anchor.set(Some((at, wall)));
            wall
        })
        .unwrap_or_else(|_| Utc::now())
}

/// A clock that moves only when told to; clones share the same time, so a test keeps one
/// and hands another to the tracker.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(t)))
    }

    /// Sets the time (backwards too).
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock() = t;
    }

    /// Moves the time by `d`.
    pub fn advance(&self, d: Duration) {
        *self.0.lock() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_utc_now() {
        let tolerance = Duration::milliseconds(5);
        for _ in 0..1000 {
            let before = Utc::now();
            let t = SystemClock.now();
            let after = Utc::now();
            assert!(
                before - tolerance <= t && t <= after + tolerance,
                "{before} {t} {after}"
            );
        }
        // An instant read earlier gives the earlier time.
        let at = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let late = SystemClock.now();
        let early = SystemClock.now_at(at);
        assert!(late - early >= Duration::milliseconds(19), "{early} {late}");
    }

    #[test]
    fn manual_clock_is_shared() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let a = ManualClock::new(t);
        let b: Arc<dyn Clock> = Arc::new(a.clone());
        a.advance(Duration::hours(1));
        assert_eq!(b.now(), t + Duration::hours(1));
        a.set(t);
        assert_eq!(b.now(), t);
        assert!(SystemClock.now() > t - Duration::days(365 * 10));
    }
}
