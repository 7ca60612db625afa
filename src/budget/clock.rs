//! Where budgets get the time from: the system clock, or a clock tests set by hand.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

/// A source of the current time. The tracker holds one and passes `now` to [`super::Budgets`].
pub trait Clock: Send + Sync {
    /// The current time (UTC).
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
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
