//! Budgets: reservations, windows rolling over, scopes, alerts, races, preload.

// Tests read best with short names: t (time), b (budgets), c (call), r (reservation).
#![allow(clippy::many_single_char_names)]

use std::str::FromStr;
use std::sync::Arc;
use std::thread;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::money::Decimal;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A call's scope data, owned, so tests can borrow a `CallScope` from it.
#[derive(Default)]
struct Call {
    model: Option<String>,
    attribution: Vec<(Arc<str>, String)>,
    tags: Vec<String>,
}

impl Call {
    fn user(u: &str) -> Call {
        Call {
            model: Some("gpt-4o".into()),
            attribution: vec![(Arc::from("user_id"), u.to_string())],
            ..Call::default()
        }
    }

    fn scope(&self) -> CallScope<'_> {
        CallScope {
            model: self.model.as_deref(),
            provider: Some("openai"),
            attribution: &self.attribution,
            tags: &self.tags,
            root_run_id: Some(7),
            root_run_name: None,
        }
    }
}

fn budgets(list: Vec<Budget>) -> Budgets {
    Budgets::new(list).unwrap()
}

#[test]
fn reserve_settle_release_arithmetic() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![Budget::daily(d("10")).unwrap()]);
    let c = Call::user("alice");
    let r1 = b.reserve(&c.scope(), d("3"), t).unwrap();
    let r2 = b.reserve(&c.scope(), d("4"), t).unwrap();
    let s = &b.state(t)[0];
    assert_eq!((s.spent, s.reserved, s.remaining), (d("0"), d("7"), d("3")));
    // 7 reserved + 3.01 > 10.
    assert!(b.reserve(&c.scope(), d("3.01"), t).is_err());
    // Settle below the estimate: the difference is free again.
    assert!(b.settle(r1, Some(d("1.25")), t).is_empty());
    let s = &b.state(t)[0];
    assert_eq!(
        (s.spent, s.reserved, s.remaining),
        (d("1.25"), d("4"), d("4.75"))
    );
    assert!(b.release(r2));
    assert!(!b.release(r2));
    let s = &b.state(t)[0];
    assert_eq!(
        (s.spent, s.reserved, s.remaining),
        (d("1.25"), d("0"), d("8.75"))
    );
    assert_eq!(s.percent, d("12.5"));
    // Unknown cost: the reservation is released, nothing charged.
    let r3 = b.reserve(&c.scope(), d("2"), t).unwrap();
    assert!(b.settle(r3, None, t).is_empty());
    assert_eq!(b.state(t)[0].spent, d("1.25"));
    assert_eq!(b.state(t)[0].reserved, d("0"));
    assert_eq!(b.open_reservations(), 0);
    // Settling twice does nothing the second time.
    assert!(b.settle(r3, Some(d("5")), t).is_empty());
    assert_eq!(b.state(t)[0].spent, d("1.25"));
}

#[test]
fn a_call_up_to_the_limit_is_admitted_and_one_past_it_refused() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![Budget::daily(d("1")).unwrap()]);
    let c = Call::default();
    let r = b.reserve(&c.scope(), d("1"), t).unwrap();
    b.settle(r, Some(d("1")), t);
    // Exactly at the limit: a free call still passes, anything more does not.
    assert!(b.reserve(&c.scope(), d("0"), t).is_ok());
    assert!(b.reserve(&c.scope(), d("0.000001"), t).is_err());
    // An overrun (the estimate was low) blocks even zero-estimate calls.
    b.charge(&c.scope(), d("0.5"), t);
    assert!(b.reserve(&c.scope(), d("0"), t).is_err());
    assert!(b.reserve(&c.scope(), d("-1"), t).is_err());
}

#[test]
fn the_error_names_everything_users_need() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![Budget::daily(d("10"))
        .unwrap()
        .named("daily")
        .per(ScopeKey::parse("user_id"))]);
    let c = Call::user("alice");
    let r = b.reserve(&c.scope(), d("9.98"), t).unwrap();
    b.settle(r, Some(d("9.98")), t);
    b.reserve(&c.scope(), d("0.01"), t).unwrap();
    let e = b.reserve(&c.scope(), d("0.03"), t).unwrap_err();
    assert_eq!(
        e.to_string(),
        "budget 'daily' (per user_id = 'alice'): $9.98 spent + $0.01 reserved + $0.03 for this \
         call would exceed the $10.00 limit of the day window (resets at 2026-11-24 00:00 UTC)"
    );
    assert_eq!(e.budget, "daily");
    assert_eq!(e.scope, "user_id");
    assert_eq!(e.value.as_deref(), Some("alice"));
    assert_eq!(
        (e.limit, e.spent, e.reserved, e.requested),
        (d("10"), d("9.98"), d("0.01"), d("0.03"))
    );
    assert_eq!(e.resets_at, Some(utc("2026-11-24T00:00:00Z")));
    // Other users are not affected.
    assert!(b.reserve(&Call::user("bob").scope(), d("5"), t).is_ok());

    let g = budgets(vec![Budget::new(
        d("2"),
        Window::parse("rolling:15m", None).unwrap(),
    )
    .unwrap()]);
    g.charge(&c.scope(), d("2"), t);
    let e = g
        .reserve(&c.scope(), d("0.5"), t + Duration::minutes(1))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "budget 'rolling 15m' (global): $2.00 spent + $0.00 reserved + $0.50 for this call would \
         exceed the $2.00 limit of the rolling 15m window (the oldest spend in it expires at \
         2026-11-23 10:15:00 UTC)"
    );
    let l = budgets(vec![Budget::lifetime(d("1")).unwrap().per(ScopeKey::Tag)]);
    let e = l.reserve(&Call::default().scope(), d("2"), t).unwrap_err();
    assert!(e
        .to_string()
        .starts_with("budget 'lifetime per tag' (per tag = (none)): $0.00 spent"));
    assert!(e.to_string().ends_with("limit of the lifetime window"));
}

#[test]
fn calendar_windows_roll_over_by_themselves() {
    let clock = ManualClock::new(utc("2026-11-23T23:59:00Z"));
    let b = budgets(vec![Budget::daily(d("1")).unwrap()]);
    let c = Call::default();
    let r = b.reserve(&c.scope(), d("1"), clock.now()).unwrap();
    b.settle(r, Some(d("1")), clock.now());
    assert!(b.reserve(&c.scope(), d("0.01"), clock.now()).is_err());
    clock.advance(Duration::seconds(59));
    assert!(b.reserve(&c.scope(), d("0.01"), clock.now()).is_err());
    clock.advance(Duration::seconds(1));
    let r = b.reserve(&c.scope(), d("0.01"), clock.now()).unwrap();
    let s = &b.state(clock.now())[0];
    assert_eq!(s.spent, d("0"));
    assert_eq!(s.reserved, d("0.01"));
    assert_eq!(s.window_start, Some(utc("2026-11-24T00:00:00Z")));
    assert_eq!(s.resets_at, Some(utc("2026-11-25T00:00:00Z")));
    // A clock going back does not bring yesterday's spend back, nor clear today's.
    b.settle(r, Some(d("0.5")), clock.now());
    clock.set(utc("2026-11-23T23:00:00Z"));
    assert_eq!(b.state(clock.now())[0].spent, d("0.5"));
}

#[test]
fn a_reservation_spanning_a_roll_over_is_charged_to_the_new_window() {
    let t = utc("2026-11-23T23:59:59Z");
    let b = budgets(vec![Budget::daily(d("1")).unwrap()]);
    let c = Call::default();
    let r = b.reserve(&c.scope(), d("0.6"), t).unwrap();
    let later = t + Duration::seconds(2);
    // The reservation still holds in the new window (the call is in flight).
    assert!(b.reserve(&c.scope(), d("0.5"), later).is_err());
    b.settle(r, Some(d("0.4")), later);
    let s = &b.state(later)[0];
    assert_eq!((s.spent, s.reserved), (d("0.4"), d("0")));
}

#[test]
fn monthly_in_a_time_zone() {
    let w = Window::parse("month", Some("America/New_York")).unwrap();
    let b = budgets(vec![Budget::new(d("5"), w).unwrap()]);
    let c = Call::default();
    // 2027-01-01 03:00 UTC is still December 31 in New York.
    let t = utc("2027-01-01T03:00:00Z");
    b.charge(&c.scope(), d("5"), t);
    assert!(b.reserve(&c.scope(), d("1"), t).is_err());
    let s = &b.state(t)[0];
    assert_eq!(s.window_start, Some(utc("2026-12-01T05:00:00Z")));
    assert_eq!(s.resets_at, Some(utc("2027-01-01T05:00:00Z")));
    assert!(b
        .reserve(&c.scope(), d("1"), utc("2027-01-01T05:00:00Z"))
        .is_ok());
}

#[test]
fn rolling_windows_let_old_spend_go() {
    let t0 = utc("2026-11-23T10:00:00Z");
    let w = Window::parse("rolling:15m", None).unwrap();
    let b = budgets(vec![Budget::new(d("2"), w).unwrap()]);
    let c = Call::default();
    b.charge(&c.scope(), d("1"), t0);
    b.charge(&c.scope(), d("1"), t0 + Duration::minutes(5));
    assert!(b
        .reserve(&c.scope(), d("0.1"), t0 + Duration::minutes(10))
        .is_err());
    // At 10:15 the first dollar leaves the window.
    assert!(b
        .reserve(
            &c.scope(),
            d("0.1"),
            t0 + Duration::minutes(15) - Duration::seconds(1)
        )
        .is_err());
    let t = t0 + Duration::minutes(15);
    let s = &b.state(t)[0];
    assert_eq!(s.spent, d("1"));
    assert_eq!(s.resets_at, Some(t0 + Duration::minutes(20)));
    assert_eq!(s.window_start, Some(t0));
    assert!(b.reserve(&c.scope(), d("1"), t).is_ok());
    assert_eq!(b.state(t0 + Duration::hours(1))[0].spent, d("0"));
}

#[test]
fn rolling_memory_is_bounded() {
    let t0 = utc("2026-11-23T10:00:00Z");
    let w = Window::parse("rolling:1h", None).unwrap();
    let b = budgets(vec![Budget::new(d("1000000"), w)
        .unwrap()
        .alert_at([])
        .unwrap()]);
    let c = Call::default();
    // A call every second for two hours: at most ~256 slots are ever kept.
    for s in 0..7200 {
        b.charge(&c.scope(), d("0.001"), t0 + Duration::seconds(s));
    }
    assert!(b.none_slots(0) <= 257, "{}", b.none_slots(0));
    // The window holds the last hour, give or take one slot (14 s), never less.
    let spent = b.state(t0 + Duration::seconds(7199))[0].spent;
    assert!(spent >= d("3.6") && spent <= d("3.615"), "{spent}");
}

#[test]
fn scopes_per_user_tag_and_missing_key() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![
        Budget::daily(d("1"))
            .unwrap()
            .per(ScopeKey::parse("user_id")),
        Budget::daily(d("5")).unwrap().per(ScopeKey::Tag),
    ]);
    let alice = Call::user("alice");
    let anon = Call::default();
    let tagged = Call {
        tags: vec!["x".into(), "y".into()],
        ..Call::user("carol")
    };
    b.charge(&alice.scope(), d("1"), t);
    assert!(b.reserve(&alice.scope(), d("0.5"), t).is_err());
    assert!(b.reserve(&Call::user("bob").scope(), d("0.5"), t).is_ok());
    // Calls without a user_id share one capped bucket.
    b.charge(&anon.scope(), d("1"), t);
    let e = b.reserve(&anon.scope(), d("0.5"), t).unwrap_err();
    assert_eq!(e.value, None);
    assert!(e.to_string().contains("(per user_id = (none))"));
    // A call with tags counts toward each tag.
    b.charge(&tagged.scope(), d("0.25"), t);
    let rows = b.state(t);
    let tag_rows: Vec<_> = rows.iter().filter(|r| r.scope == "tag").collect();
    let by_value = |v: Option<&str>| {
        tag_rows
            .iter()
            .find(|r| r.value.as_deref() == v)
            .map(|r| r.spent)
    };
    assert_eq!(by_value(Some("x")), Some(d("0.25")));
    assert_eq!(by_value(Some("y")), Some(d("0.25")));
    assert_eq!(by_value(None), Some(d("2")));
    let users: Vec<_> = rows
        .iter()
        .filter(|r| r.scope == "user_id")
        .map(|r| (r.value.clone(), r.spent, r.reserved))
        .collect();
    assert_eq!(
        users,
        vec![
            (None, d("1"), d("0")),
            (Some("alice".into()), d("1"), d("0")),
            (Some("bob".into()), d("0"), d("0.5")),
            (Some("carol".into()), d("0.25"), d("0")),
        ]
    );
    assert_eq!(b.metadata_keys(), vec![Arc::<str>::from("user_id")]);
}

#[test]
fn a_refused_reservation_takes_nothing_anywhere() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![
        Budget::daily(d("100")).unwrap(),
        Budget::daily(d("1")).unwrap().per(ScopeKey::Model),
        Budget::daily(d("0.5")).unwrap().action(Action::Alert),
    ]);
    let c = Call::user("a");
    let e = b.reserve(&c.scope(), d("2"), t).unwrap_err();
    assert_eq!(e.budget, "day per model");
    assert!(b.state(t).iter().all(|s| s.reserved.is_zero()));
    // The alert-only budget never refuses, but counts the reservation.
    let r = b.reserve(&c.scope(), d("0.9"), t).unwrap();
    let rows = b.state(t);
    assert_eq!(rows[2].budget, "day #2");
    assert_eq!(rows[2].reserved, d("0.9"));
    assert_eq!(rows[2].remaining, d("0"));
    let alerts = b.settle(r, Some(d("0.9")), t);
    // The per-model budget reached 80 %; the alert budget passed 100 % (one alert, for the
    // highest threshold reached).
    assert_eq!(alerts.len(), 2);
    assert_eq!(
        (alerts[0].budget.as_str(), alerts[0].threshold),
        ("day per model", d("0.8"))
    );
    assert_eq!(
        (alerts[1].budget.as_str(), alerts[1].threshold),
        ("day #2", d("1"))
    );
    assert_eq!(alerts[1].action, "alert");
    assert!(b.reserve(&c.scope(), d("0.05"), t).is_ok());
}

#[test]
fn thresholds_fire_once_per_window_and_value_and_again_after_roll_over() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![Budget::daily(d("10"))
        .unwrap()
        .per(ScopeKey::parse("user_id"))
        .action(Action::Alert)]);
    let a = Call::user("alice");
    let bob = Call::user("bob");
    let fired = |alerts: Vec<Alert>| -> Vec<String> {
        alerts
            .iter()
            .map(|a| format!("{}:{}", a.value.as_deref().unwrap_or("-"), a.percent()))
            .collect()
    };
    assert!(fired(b.charge(&a.scope(), d("4.99"), t)).is_empty());
    assert_eq!(fired(b.charge(&a.scope(), d("0.01"), t)), vec!["alice:50"]);
    assert!(fired(b.charge(&a.scope(), d("1"), t)).is_empty());
    assert_eq!(fired(b.charge(&bob.scope(), d("6"), t)), vec!["bob:50"]);
    assert_eq!(fired(b.charge(&a.scope(), d("2"), t)), vec!["alice:80"]);
    assert_eq!(fired(b.charge(&a.scope(), d("2"), t)), vec!["alice:100"]);
    assert!(fired(b.charge(&a.scope(), d("20"), t)).is_empty());
    // Far past its limit, an alert-only budget still admits every call.
    assert!(b.reserve(&a.scope(), d("100"), t).is_ok());
    let next_day = t + Duration::days(1);
    assert_eq!(
        fired(b.charge(&a.scope(), d("9"), next_day)),
        vec!["alice:80"]
    );
    let alert = b.charge(&bob.scope(), d("10"), next_day).remove(0);
    assert_eq!(alert.spent, d("10"));
    assert_eq!(alert.resets_at, Some(utc("2026-11-25T00:00:00Z")));
    assert_eq!(
        alert.text(),
        "llmledger budget 'day per user_id' (user_id = 'bob') reached 100% of its $10.00 day \
         limit: $10.00 spent (resets at 2026-11-25 00:00 UTC)"
    );
    let json = alert.to_json();
    assert_eq!(json["threshold"], "1");
    assert_eq!(json["percent"], "100");
    assert_eq!(json["value"], "bob");
    assert_eq!(json["resets_at"], "2026-11-25T00:00:00Z");
    assert_eq!(json["action"], "alert");
}

#[test]
fn refusals_alert_once_per_window_and_value() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![Budget::daily(d("1"))
        .unwrap()
        .per(ScopeKey::parse("user_id"))
        .alert_at([])
        .unwrap()]);
    let (a, bob) = (Call::user("alice"), Call::user("bob"));
    b.charge(&a.scope(), d("0.97"), t);
    b.reserve(&a.scope(), d("0.02"), t).unwrap();
    let alert = b
        .reserve(&a.scope(), d("0.5"), t)
        .unwrap_err()
        .alert
        .unwrap();
    assert_eq!(alert.kind, AlertKind::Blocked);
    assert_eq!(
        (alert.spent, alert.reserved, alert.limit),
        (d("0.97"), d("0.02"), d("1"))
    );
    assert_eq!(
        alert.text(),
        "llmledger budget 'day per user_id' (user_id = 'alice') is blocking calls: $0.97 spent \
         + $0.02 reserved of its $1.00 day limit (resets at 2026-11-24 00:00 UTC)"
    );
    assert_eq!(alert.to_json()["event"], "blocked");
    // The next refusals in the same day stay quiet; another user's first one alerts.
    assert!(b
        .reserve(&a.scope(), d("0.5"), t)
        .unwrap_err()
        .alert
        .is_none());
    b.charge(&bob.scope(), d("1"), t);
    assert!(b
        .reserve(&bob.scope(), d("0.5"), t)
        .unwrap_err()
        .alert
        .is_some());
    // A new day, a new alert.
    let tomorrow = t + Duration::days(1);
    b.charge(&a.scope(), d("1"), tomorrow);
    assert!(b
        .reserve(&a.scope(), d("0.5"), tomorrow)
        .unwrap_err()
        .alert
        .is_some());
    // An operator reset re-arms it.
    b.reset(None, None).unwrap();
    b.charge(&a.scope(), d("1"), tomorrow);
    assert!(b
        .reserve(&a.scope(), d("0.5"), tomorrow)
        .unwrap_err()
        .alert
        .is_some());
}

#[test]
fn rolling_thresholds_re_arm_when_spend_falls() {
    let t0 = utc("2026-11-23T10:00:00Z");
    let w = Window::parse("rolling:1h", None).unwrap();
    let b = budgets(vec![Budget::new(d("1"), w)
        .unwrap()
        .alert_at([d("0.5")])
        .unwrap()]);
    let c = Call::default();
    assert_eq!(b.charge(&c.scope(), d("0.6"), t0).len(), 1);
    assert!(b
        .charge(&c.scope(), d("0.1"), t0 + Duration::minutes(30))
        .is_empty());
    // At 11:00 the 0.6 leaves: 0.1 spent, the threshold re-arms.
    assert_eq!(
        b.charge(&c.scope(), d("0.45"), t0 + Duration::minutes(61))
            .len(),
        1
    );
}

#[test]
fn streams_grow_their_reservation_and_are_cut_by_cut_streams_budgets() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![
        Budget::daily(d("1")).unwrap().cut_streams(true),
        Budget::daily(d("0.5")).unwrap().per(ScopeKey::Model),
    ]);
    assert!(b.cuts_streams());
    let c = Call::user("a");
    let r = b.reserve(&c.scope(), d("0.2"), t).unwrap();
    // Past the per-model limit, which does not cut streams: allowed, still counted.
    b.add_to_reservation(r, d("0.4"), t).unwrap();
    assert_eq!(b.reserved_for(r), Some(d("0.6")));
    b.reserve_at_least(r, d("0.5"), t).unwrap();
    assert_eq!(b.reserved_for(r), Some(d("0.6")));
    b.reserve_at_least(r, d("0.9"), t).unwrap();
    let e = b.reserve_at_least(r, d("1.2"), t).unwrap_err();
    assert_eq!(e.budget, "day");
    assert_eq!(e.alert.as_ref().map(|a| a.kind), Some(AlertKind::Blocked));
    assert_eq!(e.requested, d("0.3"));
    assert_eq!(e.reserved, d("0.9"));
    assert_eq!(b.reserved_for(r), Some(d("1.2")));
    // The cut stream is charged what it generated.
    b.settle(r, Some(d("1.2")), t);
    let s = &b.state(t)[0];
    assert_eq!((s.spent, s.reserved), (d("1.2"), d("0")));
    assert!(b.add_to_reservation(r, d("1"), t).is_ok());
}

#[test]
fn racing_threads_never_overrun_a_nearly_exhausted_budget() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = Arc::new(budgets(vec![Budget::daily(d("10")).unwrap()]));
    b.charge(&Call::default().scope(), d("9.9"), t);
    let estimate = d("0.007");
    // floor(0.1 / 0.007) = 14 calls fit.
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let b = b.clone();
            thread::spawn(move || {
                let c = Call::user("x");
                let mut admitted = 0u32;
                for _ in 0..50 {
                    if let Ok(r) = b.reserve(&c.scope(), estimate, t) {
                        admitted += 1;
                        thread::yield_now();
                        b.settle(r, Some(estimate), t);
                    }
                }
                admitted
            })
        })
        .collect();
    let admitted: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(admitted, 14);
    let s = &b.state(t)[0];
    assert_eq!(s.spent, d("9.998"));
    assert!(s.spent <= d("10"));
    assert_eq!(s.reserved, d("0"));
}

#[test]
fn racing_threads_holding_their_reservations_are_admitted_all_or_nothing() {
    // Calls stay in flight until every thread has tried: reservations, not spend, are what
    // stops the overrun. A per-user budget shares the race: a refusal by either budget
    // must leave nothing reserved in the other.
    let t = utc("2026-11-23T10:00:00Z");
    let b = Arc::new(budgets(vec![
        Budget::daily(d("1")).unwrap(),
        Budget::daily(d("0.05"))
            .unwrap()
            .per(ScopeKey::parse("user_id")),
    ]));
    b.charge(&Call::default().scope(), d("0.9"), t);
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (b, barrier) = (b.clone(), barrier.clone());
            thread::spawn(move || {
                // Four users, four threads each.
                let c = Call::user(&format!("u{}", i % 4));
                barrier.wait();
                let held: Vec<_> = (0..20)
                    .filter_map(|_| b.reserve(&c.scope(), d("0.01"), t).ok())
                    .collect();
                barrier.wait();
                held.len()
            })
        })
        .collect();
    let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    // Global: floor(0.1 / 0.01) = 10; per user: 5 each, 20 in all: the global cap binds.
    assert_eq!(admitted, 10);
    let rows = b.state(t);
    assert_eq!(rows[0].reserved, d("0.1"));
    let per_user: Decimal = rows[1..].iter().map(|r| r.reserved).sum();
    assert_eq!(per_user, d("0.1"));
    assert!(rows[1..].iter().all(|r| r.reserved <= d("0.05")));
    assert_eq!(b.open_reservations(), 10);
}

#[test]
fn preload_resumes_the_current_windows() {
    let now = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![
        Budget::daily(d("10"))
            .unwrap()
            .per(ScopeKey::parse("user_id")),
        Budget::new(d("1"), Window::parse("rolling:1h", None).unwrap()).unwrap(),
        Budget::lifetime(d("100")).unwrap(),
    ]);
    assert_eq!(b.preload_since(now), Some(utc("2026-11-23T00:00:00Z")));
    let a = Call::user("alice");
    // Yesterday: counts nowhere. 08:00: the day only. 09:30: both.
    b.preload(&a.scope(), utc("2026-11-22T23:00:00Z"), d("5"), now);
    b.preload(&a.scope(), utc("2026-11-23T08:00:00Z"), d("7"), now);
    b.preload(&a.scope(), utc("2026-11-23T09:30:00Z"), d("0.9"), now);
    let rows = b.state(now);
    assert_eq!(rows[0].value.as_deref(), Some("alice"));
    assert_eq!(rows[0].spent, d("7.9"));
    assert_eq!(rows[1].spent, d("0.9"));
    assert_eq!(rows[1].resets_at, Some(utc("2026-11-23T10:30:00Z")));
    assert_eq!(rows[2].spent, d("0"));
    // Thresholds already passed before the restart do not fire again; the next one does.
    let alerts = b.charge(&a.scope(), d("0.05"), now);
    assert!(alerts.is_empty(), "{alerts:?}");
    let alerts: Vec<(String, Decimal)> = b
        .charge(&a.scope(), d("0.1"), now)
        .into_iter()
        .map(|a| (a.budget, a.threshold))
        .collect();
    assert_eq!(
        alerts,
        vec![
            ("day per user_id".to_string(), d("0.8")),
            ("rolling 1h".to_string(), d("1"))
        ]
    );
}

#[test]
fn operators_reset_budgets() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![
        Budget::daily(d("1"))
            .unwrap()
            .per(ScopeKey::parse("user_id")),
        Budget::monthly(d("100")).unwrap().named("month"),
    ]);
    let a = Call::user("alice");
    let r = b.reserve(&a.scope(), d("0.3"), t).unwrap();
    b.charge(&a.scope(), d("0.7"), t);
    b.charge(&Call::user("bob").scope(), d("1"), t);
    assert!(b.reserve(&a.scope(), d("0.1"), t).is_err());
    assert_eq!(b.reset(Some("day per user_id"), Some("alice")).unwrap(), 1);
    // In-flight reservations stay.
    let rows = b.state(t);
    let alice = rows
        .iter()
        .find(|r| r.value.as_deref() == Some("alice"))
        .unwrap();
    assert_eq!((alice.spent, alice.reserved), (d("0"), d("0.3")));
    assert!(b.reserve(&Call::user("bob").scope(), d("0.1"), t).is_err());
    assert_eq!(b.reset(None, None).unwrap(), 3 + 1);
    assert!(b.reserve(&Call::user("bob").scope(), d("0.1"), t).is_ok());
    b.settle(r, Some(d("0.3")), t);
    let e = b.reset(Some("weekly"), None).unwrap_err().to_string();
    assert!(
        e.contains("no budget named 'weekly'") && e.contains("'month'"),
        "{e}"
    );
}

#[test]
fn idle_scope_values_are_swept() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![Budget::daily(d("1"))
        .unwrap()
        .per(ScopeKey::parse("user_id"))])
    .with_max_values(10);
    b.charge(&Call::user("spender").scope(), d("0.5"), t);
    let next_day = t + Duration::days(1);
    // Yesterday's spender is idle today; reservations keep a value alive.
    let held = b
        .reserve(&Call::user("holder").scope(), d("0.1"), next_day)
        .unwrap();
    for i in 0..200 {
        let c = Call::user(&format!("u{i}"));
        let r = b.reserve(&c.scope(), d("0.1"), next_day).unwrap();
        b.release(r);
    }
    let kept = b.kept_values(0);
    assert!(kept.len() <= 20, "{}", kept.len());
    assert!(kept.iter().any(|k| &**k == "holder"));
    b.settle(held, Some(d("0.1")), next_day);
    assert_eq!(b.open_reservations(), 0);
}

#[test]
fn budget_validation_and_names() {
    assert!(Budget::daily(d("0"))
        .unwrap_err()
        .to_string()
        .contains("positive"));
    assert!(Budget::daily(d("1"))
        .unwrap()
        .alert_at([d("0")])
        .unwrap_err()
        .to_string()
        .contains("alert threshold 0 is out of range"));
    assert!(Budget::daily(d("1")).unwrap().alert_at([d("11")]).is_err());
    let b = Budget::daily(d("1"))
        .unwrap()
        .alert_at([d("1.0"), d("0.5"), d("0.50")])
        .unwrap();
    assert_eq!(b.alert_at, vec![d("0.5"), d("1")]);
    assert_eq!(Action::parse("alert").unwrap(), Action::Alert);
    assert!(Action::parse("warn")
        .unwrap_err()
        .to_string()
        .contains("'warn'"));
    let mut unsorted = Budget::daily(d("1")).unwrap();
    unsorted.alert_at = vec![d("1"), d("0.5"), d("0.5")];
    let b = budgets(vec![unsorted]);
    assert_eq!(b.definitions()[0].alert_at, vec![d("0.5"), d("1")]);
    let mut bad = Budget::daily(d("1")).unwrap();
    bad.limit = d("-1");
    assert!(Budgets::new(vec![bad]).is_err());
    let all = budgets(vec![
        Budget::daily(d("1")).unwrap(),
        Budget::daily(d("2")).unwrap(),
        Budget::hourly(d("1")).unwrap().per(ScopeKey::Model),
        Budget::new(d("1"), Window::parse("rolling:15m", None).unwrap())
            .unwrap()
            .named("  "),
    ]);
    let names: Vec<&str> = all.definitions().iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["day", "day #2", "hour per model", "rolling 15m"]
    );
}

#[test]
fn call_scope_from_a_record() {
    use crate::ledger::CallRecord;
    use crate::usage::{Usage, UsageSource};
    let r = CallRecord {
        time: utc("2026-11-23T10:00:00Z"),
        run_id: 1,
        parent_run_id: None,
        root_run_id: 1,
        root_run_name: None,
        model: Some("gpt-4o-2024-08-06".into()),
        requested_model: Some("gpt-4o".into()),
        provider: Some("openai".into()),
        attribution: vec![("user_id".into(), "alice".into())],
        tags: vec!["t".into()],
        usage: Usage::default(),
        usage_source: UsageSource::Provider,
        estimated_by: None,
        service_tier: None,
        cost: None,
        unpriced_reason: None,
        price_entry: None,
        catalog_version: None,
        latency: None,
        chunks: 0,
        error: None,
        usage_notes: None,
        price_notes: None,
        request: crate::ledger::RequestFacts::default(),
    };
    let b = budgets(vec![Budget::daily(d("1"))
        .unwrap()
        .per(ScopeKey::parse("user_id"))]);
    b.charge(&CallScope::from(&r), d("1"), r.time);
    assert!(b
        .reserve(&Call::user("alice").scope(), d("0.1"), r.time)
        .is_err());
    // Per-model budgets count a record by the model its request asked for, the form a
    // reservation at start uses, not the snapshot the response named.
    assert_eq!(CallScope::from(&r).model, Some("gpt-4o"));
    let no_start = CallRecord {
        requested_model: None,
        ..r.clone()
    };
    assert_eq!(CallScope::from(&no_start).model, Some("gpt-4o-2024-08-06"));
}

#[test]
fn a_per_key_near_a_captured_one_is_a_typo() {
    let attribute: Vec<Arc<str>> = vec!["user_id".into(), "session_id".into()];
    let per = |key: &str| {
        budgets(vec![Budget::daily(d("1"))
            .unwrap()
            .per(ScopeKey::parse(key))])
    };
    let err = per("user").check_keys(&attribute).unwrap_err().to_string();
    assert!(
        err.contains("per='user'") && err.contains("did you mean 'user_id'"),
        "{err}"
    );
    assert!(
        err.contains("CostTracker(attribute=[..., 'user'])"),
        "{err}"
    );
    assert!(per("models").check_keys(&attribute).is_err());
    // Captured keys, built-in scopes and keys near nothing (captured as asked) pass.
    for ok in ["user_id", "session_id", "model", "tag", "team"] {
        assert!(per(ok).check_keys(&attribute).is_ok(), "{ok}");
    }
    // A key the user lists in attribute= is taken as meant.
    assert!(per("user")
        .check_keys(&[Arc::from("user"), Arc::from("user_id")])
        .is_ok());
}

/// Every budget's (spent, reserved) per row.
fn figures(b: &Budgets, t: DateTime<Utc>) -> Vec<(Decimal, Decimal)> {
    b.state(t).iter().map(|s| (s.spent, s.reserved)).collect()
}

#[test]
fn a_failure_halfway_through_a_settlement_changes_nothing() {
    // parking_lot locks do not poison: a panic caught halfway through must not leave some
    // budgets charged and the others still holding the reservation.
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![
        Budget::daily(d("10")).unwrap(),
        Budget::monthly(d("10"))
            .unwrap()
            .per(ScopeKey::Metadata("user_id".into())),
        Budget::new(d("10"), Window::parse("rolling:15m", None).unwrap())
            .unwrap()
            .per(ScopeKey::Model),
    ]);
    let c = Call::user("alice");
    let r = b.reserve(&c.scope(), d("2"), t).unwrap();
    let before = figures(&b, t);
    assert_eq!(before, vec![(d("0"), d("2")); 3]);
    for part in 0..3 {
        state::faults::fail_at(Some(part));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b.settle(r, Some(d("6")), t)
        }));
        assert!(caught.is_err(), "part {part}");
        assert_eq!(figures(&b, t), before, "a failure at part {part}");
        assert_eq!(b.open_reservations(), 1);
    }
    // The reservation is intact: settling again (or releasing) works as if nothing happened.
    let alerts = b.settle(r, Some(d("6")), t);
    assert_eq!(figures(&b, t), vec![(d("6"), d("0")); 3]);
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert!(alerts
        .iter()
        .all(|a| a.threshold == d("0.5") && a.reserved.is_zero()));
    // The same for a charge (a call whose start was never seen).
    state::faults::fail_at(Some(1));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.charge(&c.scope(), d("1"), t)
    }));
    assert!(caught.is_err());
    assert_eq!(figures(&b, t), vec![(d("6"), d("0")); 3]);
    assert_eq!(b.charge(&c.scope(), d("1"), t).len(), 0);
    assert_eq!(figures(&b, t), vec![(d("7"), d("0")); 3]);
}

#[test]
fn a_failure_halfway_through_growing_a_reservation_changes_nothing() {
    let t = utc("2026-11-23T10:00:00Z");
    let b = budgets(vec![
        Budget::daily(d("10")).unwrap().cut_streams(true),
        Budget::monthly(d("10"))
            .unwrap()
            .per(ScopeKey::Metadata("user_id".into())),
    ]);
    let c = Call::user("alice");
    let r = b.reserve(&c.scope(), d("2"), t).unwrap();
    state::faults::fail_at(Some(1));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.add_to_reservation(r, d("1"), t)
    }));
    assert!(caught.is_err());
    assert_eq!(figures(&b, t), vec![(d("0"), d("2")); 2]);
    assert_eq!(b.reserved_for(r), Some(d("2")));
    assert!(b.add_to_reservation(r, d("1"), t).is_ok());
    assert_eq!(figures(&b, t), vec![(d("0"), d("3")); 2]);
    assert_eq!(b.reserved_for(r), Some(d("3")));
}
