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
        system_now()
    }
}

/// The current time, exactly as `Utc::now()` gives it.
///
/// `Utc::now()` turns the seconds since the epoch into a calendar date on every call (about as
/// long as reading the clock); a call ends on the same day as the previous one nearly always,
/// so each thread keeps the last day it converted.
fn system_now() -> DateTime<Utc> {
    use chrono::{NaiveDate, NaiveTime};
    use std::cell::Cell;
    thread_local! {
        static DAY: Cell<Option<(u64, NaiveDate)>> = const { Cell::new(None) };
    }
    let Ok(since_epoch) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
        return Utc::now();
    };
    let secs = since_epoch.as_secs();
    let (day, second) = (secs / 86_400, secs % 86_400);
    let date = DAY.with(|d| match d.get() {
        Some((cached, date)) if cached == day => Some(date),
        _ => {
            let date = DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)?.date_naive();
            d.set(Some((day, date)));
            Some(date)
        }
    });
    #[allow(clippy::cast_possible_truncation)]
    let time =
        NaiveTime::from_num_seconds_from_midnight_opt(second as u32, since_epoch.subsec_nanos());
    match (date, time) {
        (Some(date), Some(time)) => date.and_time(time).and_utc(),
        _ => Utc::now(),
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
    fn system_clock_is_utc_now() {
        for _ in 0..1000 {
            let before = Utc::now();
            let t = SystemClock.now();
            let after = Utc::now();
            assert!(before <= t && t <= after, "{before} {t} {after}");
        }
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
