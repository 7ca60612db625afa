//! Budget time windows: calendar-aligned units in a time zone, rolling windows, the lifetime.
//!
//! Calendar windows are computed from the wall clock of their time zone, so a day in
//! Europe/Berlin is 23 or 25 hours long on the DST switch days and a month is 28 to 31 days.
//! Every instant is a `DateTime<Utc>`; local time is only used to find the boundaries.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime,
    Offset, TimeZone as _, Timelike, Utc,
};

use crate::error::{Error, Result};

/// The longest rolling window accepted (ten years): longer is a lifetime budget.
const MAX_ROLLING_SECONDS: i64 = 10 * 366 * 86_400;

/// A calendar unit a window is aligned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CalendarUnit {
    /// A wall-clock minute.
    Minute,
    /// A wall-clock hour (in Asia/Kolkata it starts at :30 UTC).
    Hour,
    /// A day, from local midnight.
    Day,
    /// A week, from Monday 00:00 local time (ISO 8601 weeks).
    Week,
    /// A calendar month, from the 1st at 00:00 local time.
    Month,
}

impl CalendarUnit {
    /// Its name: `minute`, `hour`, `day`, `week`, `month`.
    pub fn name(self) -> &'static str {
        match self {
            CalendarUnit::Minute => "minute",
            CalendarUnit::Hour => "hour",
            CalendarUnit::Day => "day",
            CalendarUnit::Week => "week",
            CalendarUnit::Month => "month",
        }
    }

    /// The local start of the unit containing `t`.
    fn truncate(self, t: NaiveDateTime) -> NaiveDateTime {
        let date = t.date();
        match self {
            CalendarUnit::Minute => date
                .and_hms_opt(t.hour(), t.minute(), 0)
                .expect("a valid time"),
            CalendarUnit::Hour => date.and_hms_opt(t.hour(), 0, 0).expect("a valid time"),
            CalendarUnit::Day => date.and_time(NaiveTime::MIN),
            CalendarUnit::Week => {
                let back = i64::from(date.weekday().num_days_from_monday());
                (date - Duration::days(back)).and_time(NaiveTime::MIN)
            }
            CalendarUnit::Month => date.with_day(1).expect("day 1").and_time(NaiveTime::MIN),
        }
    }

    /// The local start of the next unit after the one starting at `start`.
    fn next(self, start: NaiveDateTime) -> NaiveDateTime {
        match self {
            CalendarUnit::Minute => start + Duration::minutes(1),
            CalendarUnit::Hour => start + Duration::hours(1),
            CalendarUnit::Day => start + Duration::days(1),
            CalendarUnit::Week => start + Duration::weeks(1),
            CalendarUnit::Month => {
                let d = start.date();
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1)
                    .expect("the 1st of a month")
                    .and_time(NaiveTime::MIN)
            }
        }
    }
}

/// The time zone a calendar window follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// An IANA zone (`UTC`, `Europe/Berlin`, `America/New_York`): follows its DST rules.
    Iana(chrono_tz::Tz),
    /// A fixed offset from UTC (`+05:30`, `-08:00`): no DST.
    Fixed(FixedOffset),
}

impl Default for Zone {
    fn default() -> Self {
        Zone::Iana(chrono_tz::UTC)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Iana(tz) => f.write_str(tz.name()),
            Zone::Fixed(o) => write!(f, "UTC{o}"),
        }
    }
}

impl FromStr for Zone {
    type Err = Error;

    /// An IANA name (case as in the tz database: `Europe/Berlin`) or a fixed offset
    /// (`+05:30`, `-0800`, `+09`, `UTC+05:30`).
    fn from_str(s: &str) -> Result<Zone> {
        let t = s.trim();
        if let Ok(tz) = t.parse::<chrono_tz::Tz>() {
            return Ok(Zone::Iana(tz));
        }
        let offset = t
            .strip_prefix("UTC")
            .or_else(|| t.strip_prefix("GMT"))
            .unwrap_or(t);
        if let Some(o) = parse_offset(offset) {
            return Ok(Zone::Fixed(o));
        }
        Err(Error::InvalidArgument(format!(
            "unknown time zone '{s}': use an IANA name such as 'UTC', 'Europe/Berlin' or \
             'America/New_York', or a fixed offset such as '+05:30'"
        )))
    }
}

/// `+05:30`, `-0800`, `+09` as an offset.
fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(rest.len() == 2 || rest.len() >= 4) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

impl Zone {
    /// The wall-clock time at `t`.
    fn local(self, t: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Iana(tz) => t.with_timezone(&tz).naive_local(),
            Zone::Fixed(o) => t.with_timezone(&o).naive_local(),
        }
    }

    /// Every instant whose wall-clock time is `local`: one, two (a DST fall-back repeats an
    /// hour), or none (a spring-forward gap: then the instant the gap ends, when the clock
    /// jumps past `local`).
    fn instants(self, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
        let r = match self {
            Zone::Iana(tz) => map_utc(tz.from_local_datetime(&local)),
            Zone::Fixed(o) => map_utc(o.from_local_datetime(&local)),
        };
        if r.is_empty() {
            vec![self.gap_end(local)]
        } else {
            r
        }
    }

    /// The first instant whose wall-clock time is at or after `local`, which lies in a gap.
    fn gap_end(self, local: NaiveDateTime) -> DateTime<Utc> {
        // Offsets lie within -12h..+14h, so the jump is within this range; a zone has no
        // two transitions a day apart, so "local time >= `local`" flips once in it.
        // Transitions fall on whole seconds: search those.
        let at = |s: i64| DateTime::from_timestamp(s, 0).expect("in range");
        let base = local.and_utc().timestamp();
        let (mut lo, mut hi) = (base - 15 * 3600, base + 13 * 3600);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.local(at(mid)) >= local {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        at(hi)
    }

    /// The zone's current offset at `t`, in seconds east of UTC.
    pub fn offset_seconds(self, t: DateTime<Utc>) -> i32 {
        match self {
            Zone::Iana(tz) => tz.offset_from_utc_datetime(&t.naive_utc()).fix(),
            Zone::Fixed(o) => o,
        }
        .local_minus_utc()
    }
}

fn map_utc<Tz: chrono::TimeZone>(r: LocalResult<DateTime<Tz>>) -> Vec<DateTime<Utc>> {
    match r {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        LocalResult::None => Vec::new(),
    }
}

/// A budget's time window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Calendar-aligned in a time zone; rolls over at each boundary by itself.
    Calendar {
        /// The unit.
        unit: CalendarUnit,
        /// The time zone whose wall clock sets the boundaries (default UTC).
        tz: Zone,
    },
    /// The last `Duration` before now, sliding.
    Rolling(Duration),
    /// Since the tracker started (or the operator last reset the budget).
    Lifetime,
}

impl Window {
    /// A calendar window in UTC.
    pub fn calendar(unit: CalendarUnit) -> Window {
        Window::Calendar {
            unit,
            tz: Zone::default(),
        }
    }

    /// Parses `minute`, `hour`, `day`, `week`, `month` (also `hourly`, `daily`, ...),
    /// `rolling:90s`, `rolling:15m`, `rolling:2h`, `rolling:7d`, `rolling:2w` or `lifetime`.
    /// `tz` (an IANA name or fixed offset) applies to calendar windows only.
    pub fn parse(s: &str, tz: Option<&str>) -> Result<Window> {
        let t = s.trim().to_ascii_lowercase();
        let unit = match t.as_str() {
            "minute" | "minutely" => Some(CalendarUnit::Minute),
            "hour" | "hourly" => Some(CalendarUnit::Hour),
            "day" | "daily" => Some(CalendarUnit::Day),
            "week" | "weekly" => Some(CalendarUnit::Week),
            "month" | "monthly" => Some(CalendarUnit::Month),
            _ => None,
        };
        if let Some(unit) = unit {
            let tz = tz.map(str::parse).transpose()?.unwrap_or_default();
            return Ok(Window::Calendar { unit, tz });
        }
        let w = if t == "lifetime" {
            Window::Lifetime
        } else if let Some(d) = t.strip_prefix("rolling:") {
            Window::Rolling(parse_duration(d).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "invalid rolling window '{s}': use 'rolling:' and a whole positive number \
                     with a unit s, m, h, d or w, such as 'rolling:15m' or 'rolling:7d'"
                ))
            })?)
        } else {
            return Err(Error::InvalidArgument(format!(
                "unknown budget window '{s}': use 'minute', 'hour', 'day', 'week', 'month', \
                 'rolling:<n><s|m|h|d|w>' (such as 'rolling:15m') or 'lifetime'"
            )));
        };
        if let Some(tz) = tz {
            return Err(Error::InvalidArgument(format!(
                "time zone '{tz}' given for the {w} window: time zones apply to calendar \
                 windows (minute, hour, day, week, month) only"
            )));
        }
        Ok(w)
    }

    /// The start of the window containing `now` (`None` for a lifetime window; for a
    /// rolling window, `now` minus its length).
    pub fn window_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match *self {
            Window::Calendar { unit, tz } => {
                let start = unit.truncate(tz.local(now));
                let candidates = tz.instants(start);
                // In a repeated hour, the later occurrence that has begun is ours.
                Some(
                    candidates
                        .iter()
                        .copied()
                        .filter(|t| *t <= now)
                        .max()
                        .unwrap_or(candidates[0]),
                )
            }
            Window::Rolling(d) => Some(now - d),
            Window::Lifetime => None,
        }
    }

    /// When the calendar window containing `now` ends and the next begins (`None` for
    /// rolling and lifetime windows, which never reset as a whole).
    pub fn resets_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Window::Calendar { unit, tz } = *self else {
            return None;
        };
        let start = unit.truncate(tz.local(now));
        // The next boundary is the next unit's start, or the second occurrence of this
        // unit's start when the clock falls back into it (an hour window in the repeated
        // hour of a DST fall-back is then one real hour long, not two).
        let mut candidates = tz.instants(start);
        candidates.extend(tz.instants(unit.next(start)));
        candidates.into_iter().filter(|t| *t > now).min()
    }

    /// Whether this is a calendar window.
    pub fn is_calendar(&self) -> bool {
        matches!(self, Window::Calendar { .. })
    }
}

impl fmt::Display for Window {
    /// `day`, `day (Europe/Berlin)`, `rolling 15m`, `lifetime`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Calendar { unit, tz } => {
                f.write_str(unit.name())?;
                if *tz != Zone::default() {
                    write!(f, " ({tz})")?;
                }
                Ok(())
            }
            Window::Rolling(d) => write!(f, "rolling {}", format_duration(*d)),
            Window::Lifetime => f.write_str("lifetime"),
        }
    }
}

/// `90s`, `15m`, `2h`, `7d`, `2w` as a duration.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        "w" => n.checked_mul(7 * 86_400)?,
        _ => return None,
    };
    (secs > 0 && secs <= MAX_ROLLING_SECONDS).then(|| Duration::seconds(secs))
}

/// A duration in its largest whole unit: `15m`, `2h`, `90s`.
fn format_duration(d: Duration) -> String {
    let s = d.num_seconds();
    for (unit, len) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s % len == 0 {
            return format!("{}{unit}", s / len);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn win(s: &str, tz: Option<&str>) -> Window {
        Window::parse(s, tz).unwrap()
    }

    fn bounds(w: &Window, now: &str) -> (DateTime<Utc>, DateTime<Utc>) {
        let now = utc(now);
        (w.window_start(now).unwrap(), w.resets_at(now).unwrap())
    }

    #[test]
    fn parses_windows_and_zones() {
        assert_eq!(win("day", None), Window::calendar(CalendarUnit::Day));
        assert_eq!(win("Hourly", None), Window::calendar(CalendarUnit::Hour));
        assert_eq!(
            win("rolling:15m", None),
            Window::Rolling(Duration::minutes(15))
        );
        assert_eq!(
            win("rolling:90s", None),
            Window::Rolling(Duration::seconds(90))
        );
        assert_eq!(win("rolling:2h", None), Window::Rolling(Duration::hours(2)));
        assert_eq!(win("rolling:7d", None), Window::Rolling(Duration::days(7)));
        assert_eq!(win("lifetime", None), Window::Lifetime);
        assert_eq!(win("rolling:90s", None).to_string(), "rolling 90s");
        assert_eq!(win("rolling:120m", None).to_string(), "rolling 2h");
        assert_eq!(
            win("day", Some("Europe/Berlin")).to_string(),
            "day (Europe/Berlin)"
        );
        assert_eq!(
            win("month", Some("+05:30")).to_string(),
            "month (UTC+05:30)"
        );
        assert_eq!(win("week", Some("UTC")).to_string(), "week");
        assert!(matches!(
            "-0800".parse::<Zone>().unwrap(),
            Zone::Fixed(o) if o.local_minus_utc() == -8 * 3600
        ));
        assert!(matches!("UTC+09".parse::<Zone>().unwrap(), Zone::Fixed(_)));
    }

    #[test]
    fn invalid_strings_name_the_bad_value() {
        for (s, tz, needle) in [
            ("fortnight", None, "unknown budget window 'fortnight'"),
            ("rolling:15x", None, "invalid rolling window 'rolling:15x'"),
            ("rolling:0m", None, "invalid rolling window 'rolling:0m'"),
            ("rolling:-5m", None, "invalid rolling window"),
            (
                "day",
                Some("Mars/Olympus"),
                "unknown time zone 'Mars/Olympus'",
            ),
            ("day", Some("+25:00"), "unknown time zone '+25:00'"),
            (
                "rolling:1h",
                Some("Europe/Berlin"),
                "time zone 'Europe/Berlin'",
            ),
        ] {
            let e = Window::parse(s, tz).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn calendar_boundaries_in_utc() {
        let day = win("day", None);
        assert_eq!(
            bounds(&day, "2026-11-23T15:04:05Z"),
            (utc("2026-11-23T00:00:00Z"), utc("2026-11-24T00:00:00Z"))
        );
        // Exactly on a boundary: the new window has begun.
        assert_eq!(
            bounds(&day, "2026-11-24T00:00:00Z").0,
            utc("2026-11-24T00:00:00Z")
        );
        let month = win("month", None);
        assert_eq!(
            bounds(&month, "2026-12-31T23:59:59Z"),
            (utc("2026-12-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            bounds(&month, "2028-02-29T12:00:00Z"),
            (utc("2028-02-01T00:00:00Z"), utc("2028-03-01T00:00:00Z"))
        );
        let week = win("week", None);
        // 2026-11-26 is a Thursday; weeks start on Monday.
        assert_eq!(
            bounds(&week, "2026-11-26T08:00:00Z"),
            (utc("2026-11-23T00:00:00Z"), utc("2026-11-30T00:00:00Z"))
        );
        // A week across the new year.
        assert_eq!(
            bounds(&week, "2027-01-01T08:00:00Z"),
            (utc("2026-12-28T00:00:00Z"), utc("2027-01-04T00:00:00Z"))
        );
        let minute = win("minute", None);
        assert_eq!(
            bounds(&minute, "2026-12-31T23:59:30.5Z"),
            (utc("2026-12-31T23:59:00Z"), utc("2027-01-01T00:00:00Z"))
        );
        let day_leap = win("day", None);
        assert_eq!(
            bounds(&day_leap, "2028-02-28T23:00:00Z").1,
            utc("2028-02-29T00:00:00Z")
        );
    }

    #[test]
    fn day_across_dst_in_berlin_and_new_york() {
        let berlin = win("day", Some("Europe/Berlin"));
        // Spring forward (2026-03-29, 02:00 CET -> 03:00 CEST): a 23-hour day.
        let (s, e) = bounds(&berlin, "2026-03-29T12:00:00Z");
        assert_eq!(s, utc("2026-03-28T23:00:00Z"));
        assert_eq!(e, utc("2026-03-29T22:00:00Z"));
        assert_eq!(e - s, Duration::hours(23));
        // Fall back (2026-10-25, 03:00 CEST -> 02:00 CET): a 25-hour day.
        let (s, e) = bounds(&berlin, "2026-10-25T12:00:00Z");
        assert_eq!(s, utc("2026-10-24T22:00:00Z"));
        assert_eq!(e - s, Duration::hours(25));
        let ny = win("day", Some("America/New_York"));
        // 2026-03-08: 02:00 EST -> 03:00 EDT.
        let (s, e) = bounds(&ny, "2026-03-08T15:00:00Z");
        assert_eq!(s, utc("2026-03-08T05:00:00Z"));
        assert_eq!(e, utc("2026-03-09T04:00:00Z"));
    }

    #[test]
    fn hour_in_the_repeated_and_skipped_hours() {
        let berlin = win("hour", Some("Europe/Berlin"));
        // 2026-10-25: local 02:00-03:00 happens twice (00:00Z-01:00Z CEST, 01:00Z-02:00Z CET).
        assert_eq!(
            bounds(&berlin, "2026-10-25T00:30:00Z"),
            (utc("2026-10-25T00:00:00Z"), utc("2026-10-25T01:00:00Z"))
        );
        assert_eq!(
            bounds(&berlin, "2026-10-25T01:30:00Z"),
            (utc("2026-10-25T01:00:00Z"), utc("2026-10-25T02:00:00Z"))
        );
        // 2026-03-29: local 02:00-03:00 does not exist; 01:xx CET is followed by 03:00 CEST.
        assert_eq!(
            bounds(&berlin, "2026-03-29T00:30:00Z"),
            (utc("2026-03-29T00:00:00Z"), utc("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            bounds(&berlin, "2026-03-29T01:30:00Z"),
            (utc("2026-03-29T01:00:00Z"), utc("2026-03-29T02:00:00Z"))
        );
    }

    #[test]
    fn midnight_in_a_gap_starts_the_day_when_the_clock_jumps() {
        // America/Santiago springs forward at 24:00 -> 01:00 (2026-09-06): local midnight
        // of that day never happens, the day starts at the jump.
        let santiago = win("day", Some("America/Santiago"));
        let (s, e) = bounds(&santiago, "2026-09-06T12:00:00Z");
        assert_eq!(s, utc("2026-09-06T04:00:00Z"));
        assert_eq!(e, utc("2026-09-07T03:00:00Z"));
        assert_eq!(e - s, Duration::hours(23));
    }

    #[test]
    fn half_hour_offsets() {
        let kolkata = win("hour", Some("Asia/Kolkata"));
        assert_eq!(
            bounds(&kolkata, "2026-11-23T10:10:00Z"),
            (utc("2026-11-23T09:30:00Z"), utc("2026-11-23T10:30:00Z"))
        );
        let day = win("day", Some("Asia/Kolkata"));
        assert_eq!(
            bounds(&day, "2026-11-23T20:00:00Z"),
            (utc("2026-11-23T18:30:00Z"), utc("2026-11-24T18:30:00Z"))
        );
        let fixed = win("day", Some("+05:30"));
        assert_eq!(
            bounds(&fixed, "2026-11-23T20:00:00Z"),
            bounds(&day, "2026-11-23T20:00:00Z")
        );
    }

    #[test]
    fn rolling_and_lifetime() {
        let now = utc("2026-11-23T10:00:00Z");
        let r = win("rolling:15m", None);
        assert_eq!(r.window_start(now), Some(utc("2026-11-23T09:45:00Z")));
        assert_eq!(r.resets_at(now), None);
        assert_eq!(Window::Lifetime.window_start(now), None);
        assert_eq!(Window::Lifetime.resets_at(now), None);
    }

    #[test]
    fn consecutive_windows_tile_time() {
        // Walking from each window's end to the next never skips or overlaps, in zones with
        // DST, half-hour offsets and across year ends.
        for (unit, tz) in [
            ("hour", "Europe/Berlin"),
            ("hour", "America/New_York"),
            ("day", "America/Santiago"),
            ("day", "Australia/Lord_Howe"),
            ("week", "Asia/Kolkata"),
            ("month", "Pacific/Chatham"),
        ] {
            let w = win(unit, Some(tz));
            let mut t = utc("2026-01-01T00:00:00Z");
            let end = utc("2027-02-01T00:00:00Z");
            let mut prev_end = w.window_start(t).unwrap();
            while t < end {
                let s = w.window_start(t).unwrap();
                let e = w.resets_at(t).unwrap();
                assert_eq!(s, prev_end, "{unit} {tz} at {t}");
                assert!(s <= t && t < e, "{unit} {tz} at {t}: {s}..{e}");
                prev_end = e;
                t = e;
            }
        }
    }
}
