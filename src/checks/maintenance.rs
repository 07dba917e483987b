//! `maintenance-window`: every upgrade's actual start, placed on the rehearsal calendar, lies in
//! the policy's windows. Implicit: one verdict per started upgrade whenever the journal carries a
//! `calendar-set` event with a policy. Shows both clocks (rehearsal offset and calendar time).

use std::time::Duration;

use super::{CheckStatus, Evidence, Verdict};
use crate::calendar::{self, CustomerState, Zone};
use crate::journal::{Event, EventKind, Phase, UpgradeStage};

/// One verdict per upgrade that started, when the journal has a calendar and a policy.
pub(super) fn upgrades_in_windows(events: &[Event]) -> Vec<Verdict> {
    let Some((calendar, policy)) = events.iter().find_map(|e| match &e.kind {
        EventKind::CalendarSet { calendar, maintenance: Some(policy) } => Some((calendar, policy)),
        _ => None,
    }) else {
        return Vec::new();
    };
    let Some(steps_start) = events.iter().find_map(|e| match &e.kind {
        EventKind::PhaseStarted { phase: Phase::Steps } => Some(e.offset_us),
        _ => None,
    }) else {
        return Vec::new();
    };
    let zone = Zone::from_tz(calendar.start.time_zone().clone());
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Upgrade { step, stage: UpgradeStage::Started, .. } => Some((event, step)),
            _ => None,
        })
        .map(|(event, step)| {
            let offset = Duration::from_micros(event.offset_us.saturating_sub(steps_start));
            let at = calendar.at(offset).timestamp();
            let decision = calendar::decide(policy, at);
            let clocks = format!(
                "+{:.3}s into the timeline = {}",
                offset.as_secs_f64(),
                calendar::local_with_zone(at, &zone)
            );
            let per_customer: Vec<String> = decision
                .customers
                .iter()
                .map(|c| {
                    let local = calendar::local(at, &c.zone);
                    match (&c.state, &c.next) {
                        (CustomerState::Inside, _) => format!("{}: {local}, inside", c.name),
                        (CustomerState::Blackout(b), _) => {
                            format!("{}: {local}, on blackout {b}", c.name)
                        }
                        (CustomerState::Outside, Some(next)) => format!(
                            "{}: {local}, outside; next window {}",
                            c.name,
                            calendar::local(next.start, &c.zone)
                        ),
                        (CustomerState::Outside, None) => format!("{}: {local}, outside", c.name),
                    }
                })
                .collect();
            let status = if decision.allowed { CheckStatus::Passed } else { CheckStatus::Failed };
            let summary = if decision.allowed {
                format!("upgrade `{step}` started {clocks}, inside every customer's window")
            } else {
                format!("upgrade `{step}` started {clocks}, outside the maintenance windows")
            };
            Verdict {
                name: format!("maintenance-window \"{step}\""),
                kind: "maintenance-window",
                status,
                summary,
                expected: "the upgrade starts inside a window of every customer, off blackout days"
                    .into(),
                observed: per_customer.join("; "),
                evidence: vec![Evidence::at(event, format!("upgrade `{step}` started {clocks}"))],
                channels: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Calendar, Customer, Policy, Scale, WeekTime, WeeklyWindow};

    fn event(seq: u64, offset_us: u64, kind: EventKind) -> Event {
        Event { seq, offset_us, wall: "2026-01-01T00:00:00Z".parse().unwrap(), kind }
    }

    fn journal(upgrade_at_us: u64) -> Vec<Event> {
        let policy = Policy {
            customers: vec![Customer {
                name: "acme".into(),
                zone: Zone::get("Europe/Berlin").unwrap(),
                windows: vec![WeeklyWindow {
                    from: WeekTime::parse("Sat 22:00").unwrap(),
                    to: WeekTime::parse("Sun 06:00").unwrap(),
                }],
                blackouts: Vec::new(),
            }],
            notice: None,
        };
        let calendar = Calendar {
            start: "2026-12-05T21:50[Europe/Berlin]".parse().unwrap(),
            scale: Scale { rehearsal: Duration::from_secs(1), calendar: Duration::from_secs(600) },
        };
        vec![
            event(0, 0, EventKind::CalendarSet { calendar, maintenance: Some(policy) }),
            // Bring-up took 40 s: the calendar starts with the steps, not the run.
            event(1, 40_000_000, EventKind::PhaseStarted { phase: Phase::Steps }),
            event(
                2,
                40_000_000 + upgrade_at_us,
                EventKind::Upgrade {
                    step: "upgrade billing".into(),
                    service: "billing".into(),
                    stage: UpgradeStage::Started,
                    ok: true,
                    detail: None,
                },
            ),
        ]
    }

    #[test]
    fn an_upgrade_inside_the_window_passes_and_shows_both_clocks() {
        // 3.5 s after the steps began = 35 calendar minutes after 21:50.
        let verdicts = upgrades_in_windows(&journal(3_500_000));
        assert_eq!(verdicts.len(), 1);
        assert_eq!(verdicts[0].status, CheckStatus::Passed);
        assert_eq!(
            verdicts[0].summary,
            "upgrade `upgrade billing` started +3.500s into the timeline = Sat 2026-12-05 22:25 \
             CET (Europe/Berlin), inside every customer's window"
        );
    }

    #[test]
    fn an_upgrade_that_ran_early_fails_with_the_next_window() {
        // 0.5 s in = 21:55, before the window opens at 22:00.
        let verdicts = upgrades_in_windows(&journal(500_000));
        assert_eq!(verdicts[0].status, CheckStatus::Failed);
        assert_eq!(
            verdicts[0].observed,
            "acme: Sat 2026-12-05 21:55 CET, outside; next window Sat 2026-12-05 22:00 CET"
        );
    }

    #[test]
    fn no_calendar_no_verdict() {
        let mut events = journal(0);
        events.remove(0);
        assert!(upgrades_in_windows(&events).is_empty());
    }

    #[test]
    fn the_event_round_trips_through_json() {
        let events = journal(0);
        let line = serde_json::to_string(&events[0]).unwrap();
        assert!(line.contains("\"event\":\"calendar-set\""), "{line}");
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, events[0]);
    }
}
