//! The decisions: is a deployment at `t` allowed, for whom not, and when next.

use jiff::{SignedDuration, Timestamp};

use super::HORIZON_DAYS;
use super::place::{Opening, allowed_openings, merge};
use super::policy::{Blackout, Policy, Zone};

/// Whether a deployment at `at` is allowed, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The instant judged.
    pub at: Timestamp,
    /// Inside a window, outside any blackout, for every customer.
    pub allowed: bool,
    /// Per customer, in the policy's order.
    pub customers: Vec<CustomerDecision>,
    /// The time allowed for every customer that contains `at` (when allowed) or comes next;
    /// `None` when there is none within the horizon.
    pub next: Option<Opening>,
}

/// One customer's view of an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerDecision {
    /// The customer's name.
    pub name: String,
    /// The customer's zone.
    pub zone: Zone,
    /// Inside, on a blackout day, or outside every window.
    pub state: CustomerState,
    /// The customer's window containing the instant, if any.
    pub current: Option<Opening>,
    /// The customer's first window (blackouts applied) starting at or after the instant.
    pub next: Option<Opening>,
}

/// Where an instant falls for one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerState {
    /// Inside a window.
    Inside,
    /// On a blackout day (which may fall inside a window).
    Blackout(Blackout),
    /// Outside every window.
    Outside,
}

fn horizon(at: Timestamp) -> Timestamp {
    at.checked_add(SignedDuration::from_hours(24 * HORIZON_DAYS)).unwrap_or(Timestamp::MAX)
}

/// Judge a deployment at `at`.
pub fn decide(policy: &Policy, at: Timestamp) -> Decision {
    let until = horizon(at);
    let mut joint: Option<Vec<Opening>> = None;
    let mut customers = Vec::with_capacity(policy.customers.len());
    for customer in &policy.customers {
        let allowed = allowed_openings(customer, at, until);
        let current = allowed.iter().find(|o| o.start <= at && at < o.end).cloned();
        let next = allowed.iter().find(|o| o.start >= at).cloned();
        let state = if current.is_some() {
            CustomerState::Inside
        } else {
            let day = at.to_zoned(customer.zone.tz().clone()).date();
            match customer.blackouts.iter().find(|b| b.first <= day && day <= b.last) {
                Some(blackout) => CustomerState::Blackout(*blackout),
                None => CustomerState::Outside,
            }
        };
        customers.push(CustomerDecision {
            name: customer.name.clone(),
            zone: customer.zone.clone(),
            state,
            current,
            next,
        });
        joint = Some(match joint {
            None => allowed,
            Some(so_far) => intersect(&so_far, &allowed),
        });
    }
    let next = match joint {
        Some(joint) => joint.into_iter().find(|o| o.end > at),
        // No customer constrains anything.
        None => Some(Opening { start: at, end: until, notes: Vec::new() }),
    };
    let allowed = next.as_ref().is_some_and(|o| o.start <= at);
    Decision { at, allowed, customers, next }
}

/// Whether a deployment at `at` is allowed for every customer.
pub fn is_allowed(policy: &Policy, at: Timestamp) -> bool {
    decide(policy, at).allowed
}

/// The earliest instant at or after `at` allowed for every customer (`at` itself when allowed).
pub fn next_allowed(policy: &Policy, at: Timestamp) -> Option<Timestamp> {
    decide(policy, at).next.map(|o| o.start.max(at))
}

/// The instants in both sorted, merged lists.
fn intersect(a: &[Opening], b: &[Opening]) -> Vec<Opening> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            let mut notes = a[i].notes.clone();
            notes.extend(b[j].notes.iter().filter(|n| !a[i].notes.contains(n)).cloned());
            out.push(Opening { start, end, notes });
        }
        if a[i].end <= b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    merge(out)
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::calendar::place::openings;
    use crate::calendar::policy::{Customer, WeekTime, WeeklyWindow};
    use crate::calendar::text::local;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn window(from: &str, to: &str) -> WeeklyWindow {
        WeeklyWindow { from: WeekTime::parse(from).unwrap(), to: WeekTime::parse(to).unwrap() }
    }

    fn customer(name: &str, zone: &str, windows: &[(&str, &str)]) -> Customer {
        Customer {
            name: name.into(),
            zone: Zone::get(zone).unwrap(),
            windows: windows.iter().map(|(f, t)| window(f, t)).collect(),
            blackouts: Vec::new(),
        }
    }

    fn policy(customers: Vec<Customer>) -> Policy {
        Policy { customers, notice: None }
    }

    /// The opening of `customer`'s windows that overlaps `around`.
    fn opening_at(customer: &Customer, around: &str) -> Opening {
        let at = ts(around);
        let found = openings(customer, at, at.checked_add(SignedDuration::from_secs(1)).unwrap());
        assert_eq!(found.len(), 1, "{found:?}");
        found.into_iter().next().unwrap()
    }

    /// Daylight-saving edges: (zone, window, an instant inside it, expected start, expected end,
    /// expected note fragments).
    /// (zone, window, an instant inside it, expected start, expected end, note fragments).
    type DstCase = (
        &'static str,
        (&'static str, &'static str),
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    );

    const DST_TABLE: &[DstCase] = &[
        // Berlin springs forward 02:00 → 03:00 on 2026-03-29: a 02:30 start does not exist.
        (
            "Europe/Berlin",
            ("Sun 02:30", "Sun 05:00"),
            "2026-03-29T02:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T03:00:00Z",
            &["window start 02:30 does not exist on 2026-03-29 in Europe/Berlin (clocks jump \
                 from 02:00 to 03:00); it starts at Sun 2026-03-29 03:00 CEST"],
        ),
        // Berlin falls back 03:00 → 02:00 on 2026-10-25: a 02:30 start opens at the first one.
        (
            "Europe/Berlin",
            ("Sun 02:30", "Sun 04:00"),
            "2026-10-25T01:00:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T03:00:00Z",
            &["it starts at the first, Sun 2026-10-25 02:30 CEST"],
        ),
        // … and a 02:30 end closes at the second.
        (
            "Europe/Berlin",
            ("Sat 22:00", "Sun 02:30"),
            "2026-10-25T01:00:00Z",
            "2026-10-24T20:00:00Z",
            "2026-10-25T01:30:00Z",
            &["window end 02:30 occurs twice", "it ends at the second, Sun 2026-10-25 02:30 CET"],
        ),
        // A window end inside the gap closes when the clocks jump.
        (
            "Europe/Berlin",
            ("Sat 22:00", "Sun 02:30"),
            "2026-03-28T23:00:00Z",
            "2026-03-28T21:00:00Z",
            "2026-03-29T01:00:00Z",
            &["window end 02:30 does not exist", "it ends at Sun 2026-03-29 03:00 CEST"],
        ),
        // New York springs forward 02:00 → 03:00 on 2026-03-08.
        (
            "America/New_York",
            ("Sun 02:15", "Sun 04:00"),
            "2026-03-08T07:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T08:00:00Z",
            &["(clocks jump from 02:00 to 03:00); it starts at Sun 2026-03-08 03:00 EDT"],
        ),
        // New York falls back 02:00 → 01:00 on 2026-11-01: a 01:30 end closes at the second.
        (
            "America/New_York",
            ("Sat 23:00", "Sun 01:30"),
            "2026-11-01T05:00:00Z",
            "2026-11-01T03:00:00Z",
            "2026-11-01T06:30:00Z",
            &["it ends at the second, Sun 2026-11-01 01:30 EST"],
        ),
        // Sydney (southern hemisphere) falls back 03:00 → 02:00 on 2026-04-05 …
        (
            "Australia/Sydney",
            ("Sun 02:30", "Sun 05:00"),
            "2026-04-04T17:00:00Z",
            "2026-04-04T15:30:00Z",
            "2026-04-04T19:00:00Z",
            &["it starts at the first, Sun 2026-04-05 02:30 AEDT"],
        ),
        // … and springs forward 02:00 → 03:00 on 2026-10-04.
        (
            "Australia/Sydney",
            ("Sun 02:30", "Sun 05:00"),
            "2026-10-03T17:00:00Z",
            "2026-10-03T16:00:00Z",
            "2026-10-03T18:00:00Z",
            &["it starts at Sun 2026-10-04 03:00 AEDT"],
        ),
        // Kolkata has no daylight-saving time: nothing to note, all year.
        (
            "Asia/Kolkata",
            ("Sat 22:00", "Sun 06:00"),
            "2026-03-28T20:00:00Z",
            "2026-03-28T16:30:00Z",
            "2026-03-29T00:30:00Z",
            &[],
        ),
        // A window across the end of the week, in an ordinary week.
        (
            "Europe/Berlin",
            ("Sun 22:00", "Mon 04:00"),
            "2026-12-07T00:00:00Z",
            "2026-12-06T21:00:00Z",
            "2026-12-07T03:00:00Z",
            &[],
        ),
    ];

    #[test]
    fn daylight_saving_edges_are_placed_and_reported() {
        for (zone, (from, to), inside, start, end, notes) in DST_TABLE {
            let c = customer("c", zone, &[(from, to)]);
            let opening = opening_at(&c, inside);
            let case = format!("{zone} {from} – {to}");
            assert_eq!(opening.start, ts(start), "{case}: start, notes {:?}", opening.notes);
            assert_eq!(opening.end, ts(end), "{case}: end");
            if notes.is_empty() {
                assert!(opening.notes.is_empty(), "{case}: {:?}", opening.notes);
            }
            for fragment in *notes {
                assert!(
                    opening.notes.iter().any(|n| n.contains(fragment)),
                    "{case}: no note contains {fragment:?}: {:?}",
                    opening.notes
                );
            }
            let p = policy(vec![c]);
            assert!(is_allowed(&p, ts(inside)), "{case}");
            assert!(is_allowed(&p, ts(start)), "{case}: the start is inside");
            assert!(!is_allowed(&p, ts(end)), "{case}: the end is outside");
        }
    }

    fn berlin_and_new_york() -> Policy {
        policy(vec![
            customer("acme", "Europe/Berlin", &[("Sat 22:00", "Sun 06:00")]),
            customer("globex", "America/New_York", &[("Sat 14:00", "Sun 02:00")]),
        ])
    }

    #[test]
    fn every_customer_must_be_inside() {
        let p = berlin_and_new_york();
        // Sat 22:00 CET is Sat 16:00 EST: inside both.
        let d = decide(&p, ts("2026-12-05T21:00:00Z"));
        assert!(d.allowed);
        let next = d.next.unwrap();
        // Berlin closes at 06:00 CET (05:00Z), before New York's 02:00 EST (07:00Z).
        assert_eq!(
            (next.start, next.end),
            (ts("2026-12-05T21:00:00Z"), ts("2026-12-06T05:00:00Z"))
        );

        // Sat 21:00 CET: New York (15:00 EST) is open, Berlin is not.
        let d = decide(&p, ts("2026-12-05T20:00:00Z"));
        assert!(!d.allowed);
        assert_eq!(d.customers[0].state, CustomerState::Outside);
        assert_eq!(d.customers[1].state, CustomerState::Inside);
        assert_eq!(d.next.unwrap().start, ts("2026-12-05T21:00:00Z"));

        // A Tuesday: the next joint window is the coming Saturday at 22:00 CET.
        let tuesday = ts("2026-12-08T09:00:00Z");
        let d = decide(&p, tuesday);
        assert!(!d.allowed);
        assert_eq!(next_allowed(&p, tuesday), Some(ts("2026-12-12T21:00:00Z")));
        let acme = d.customers[0].next.as_ref().unwrap();
        assert_eq!(local(acme.start, &d.customers[0].zone), "Sat 2026-12-12 22:00 CET");
        let globex = d.customers[1].next.as_ref().unwrap();
        assert_eq!(local(globex.start, &d.customers[1].zone), "Sat 2026-12-12 14:00 EST");
    }

    #[test]
    fn the_same_local_window_in_two_zones_overlaps_for_two_hours() {
        let p = policy(vec![
            customer("acme", "Europe/Berlin", &[("Sat 22:00", "Sun 06:00")]),
            customer("globex", "America/New_York", &[("Sat 22:00", "Sun 06:00")]),
        ]);
        let d = decide(&p, ts("2026-12-08T09:00:00Z"));
        let next = d.next.unwrap();
        // New York opens at 22:00 EST = 04:00 CET; Berlin closes at 06:00 CET.
        assert_eq!(
            (next.start, next.end),
            (ts("2026-12-13T03:00:00Z"), ts("2026-12-13T05:00:00Z"))
        );
    }

    #[test]
    fn blackouts_close_windows_in_the_customers_zone() {
        let mut p = berlin_and_new_york();
        // New York's Saturday 2026-12-12 is blacked out; its window reopens at midnight EST,
        // when Berlin's has closed (06:00 CET = 00:00 EST): nothing that weekend.
        p.customers[1].blackouts.push(Blackout {
            first: jiff::civil::date(2026, 12, 12),
            last: jiff::civil::date(2026, 12, 12),
        });
        let at = ts("2026-12-12T22:00:00Z");
        let d = decide(&p, at);
        assert!(!d.allowed);
        assert!(matches!(d.customers[1].state, CustomerState::Blackout(_)));
        assert_eq!(next_allowed(&p, at), Some(ts("2026-12-19T21:00:00Z")));
        let globex_next = d.customers[1].next.as_ref().unwrap();
        assert_eq!(globex_next.start, ts("2026-12-13T05:00:00Z"));
        assert!(globex_next.notes.iter().any(|n| n.contains("blackout 2026-12-12")));
    }

    #[test]
    fn no_window_within_the_horizon() {
        let mut p = policy(vec![customer("acme", "Asia/Kolkata", &[("Sat 22:00", "Sun 06:00")])]);
        p.customers[0].blackouts.push(Blackout {
            first: jiff::civil::date(2026, 1, 1),
            last: jiff::civil::date(2030, 1, 1),
        });
        assert_eq!(next_allowed(&p, ts("2026-06-01T00:00:00Z")), None);
    }

    const ZONES: &[&str] =
        &["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"];
    const DAY_NAMES: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

    fn arb_week_time() -> impl Strategy<Value = WeekTime> {
        (0..7usize, 0..24i8, prop::sample::select(vec![0i8, 15, 30, 45])).prop_map(|(d, h, m)| {
            WeekTime::parse(&format!("{} {h:02}:{m:02}", DAY_NAMES[d])).unwrap()
        })
    }

    fn arb_customer() -> impl Strategy<Value = Customer> {
        (
            prop::sample::select(ZONES.to_vec()),
            prop::collection::vec((arb_week_time(), arb_week_time()), 1..3),
        )
            .prop_map(|(zone, windows)| Customer {
                name: zone.to_lowercase(),
                zone: Zone::get(zone).unwrap(),
                windows: windows.into_iter().map(|(from, to)| WeeklyWindow { from, to }).collect(),
                blackouts: Vec::new(),
            })
    }

    /// 2025-01-01 to 2028-01-01, to the second.
    fn arb_instant() -> impl Strategy<Value = Timestamp> {
        (1_735_689_600i64..1_830_297_600).prop_map(|s| Timestamp::from_second(s).unwrap())
    }

    /// Inside by local wall time alone: seconds into the local week against the window's.
    fn naive_inside(customer: &Customer, at: Timestamp) -> bool {
        let local = at.to_zoned(customer.zone.tz().clone());
        let week = 7 * 86_400;
        let of = |day: jiff::civil::Weekday, h: i8, m: i8, s: i8| {
            i64::from(day.to_monday_zero_offset()) * 86_400
                + i64::from(h) * 3600
                + i64::from(m) * 60
                + i64::from(s)
        };
        let now = of(local.weekday(), local.hour(), local.minute(), local.second());
        customer.windows.iter().any(|w| {
            let from = of(w.from.day, w.from.time.hour(), w.from.time.minute(), 0);
            let to = of(w.to.day, w.to.time.hour(), w.to.time.minute(), 0);
            let len = match (to - from).rem_euclid(week) {
                0 => week,
                len => len,
            };
            (now - from).rem_euclid(week) < len
        })
    }

    fn near_transition(tz: &TimeZone, at: Timestamp) -> bool {
        let four_hours = SignedDuration::from_hours(4);
        let before = tz.preceding(at).next().map(|t| t.timestamp());
        let after = tz.following(at).next().map(|t| t.timestamp());
        before.is_some_and(|t| at.duration_since(t) <= four_hours)
            || after.is_some_and(|t| t.duration_since(at) <= four_hours)
    }

    proptest! {
        #[test]
        fn inside_agrees_with_the_local_clock(c in arb_customer(), at in arb_instant()) {
            prop_assume!(!near_transition(c.zone.tz(), at));
            let p = policy(vec![c.clone()]);
            prop_assert_eq!(is_allowed(&p, at), naive_inside(&c, at), "{}", local(at, &c.zone));
        }

        #[test]
        fn the_next_allowed_time_is_the_first(
            customers in prop::collection::vec(arb_customer(), 1..3),
            at in arb_instant(),
            fractions in prop::collection::vec(0.0f64..1.0, 4),
        ) {
            let p = policy(customers);
            let Some(next) = next_allowed(&p, at) else { return Ok(()) };
            prop_assert!(next >= at);
            prop_assert!(is_allowed(&p, next));
            let gap = next.duration_since(at).as_secs_f64();
            for fraction in fractions {
                let s = at.checked_add(SignedDuration::from_secs_f64(gap * fraction)).unwrap();
                if s < next {
                    prop_assert!(!is_allowed(&p, s), "allowed at {s}, before {next}");
                }
            }
        }

        #[test]
        fn each_customers_next_window_start_is_the_first(c in arb_customer(), at in arb_instant()) {
            let p = policy(vec![c.clone()]);
            let d = decide(&p, at);
            let Some(next) = &d.customers[0].next else { return Ok(()) };
            prop_assert!(next.start >= at);
            prop_assert!(is_allowed(&p, next.start));
            let earlier = openings(&c, at.checked_sub(SignedDuration::from_hours(24 * 8)).unwrap(), next.start);
            // A window that starts between `at` and the reported start would have been reported
            // (it is not merged into a longer one that began before `at`, or `at` is inside).
            for o in earlier {
                let swallowed = d.customers[0].current.as_ref().is_some_and(|cur| cur.start <= o.start && o.start < cur.end);
                prop_assert!(!(o.start >= at && o.start < next.start) || swallowed, "{o:?} starts before {next:?}");
            }
        }
    }
}
