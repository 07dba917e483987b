//! Key figures of a run, computed from its journal: how fast each fault was seen, how long the
//! outage lasted and how fast services recovered once the fault was cleared.
//!
//! Definitions (all from event offsets; health changes from teardown on are ignored, as the checks
//! ignore them):
//! - a **fault step** is a `kill`, `stop`, `pause` or `restart` step;
//! - **detected after**: from the fault step's start to a service's first `health-changed` to
//!   unhealthy after it, before the next fault step starts;
//! - **unhealthy for**: from that observation to the service's next healthy one;
//! - **cleared**: the fault's undo (`for`), else the next `start` / `unpause` / `restart` of the
//!   faulted service, else (for `restart`) the restart itself;
//! - **healthy after clear**: from the clearing action to the service's next healthy observation
//!   (0 when it was healthy again before the fault was cleared).

use serde::Serialize;

use crate::journal::{Event, EventKind, Phase};

/// Key figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyFigures {
    /// One entry per fault step that started, in order.
    pub faults: Vec<FaultFigures>,
}

/// What one fault step did to the stack's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FaultFigures {
    /// The step's name.
    pub step: String,
    /// Its action (`kill`, `stop`, `pause`, `restart`).
    pub action: String,
    /// The service the action targeted, once the harness recorded doing it.
    pub service: Option<String>,
    /// When the step started, µs from the run's start.
    pub started_us: u64,
    /// When the fault was cleared, µs from the run's start; `None` when the journal never shows it.
    pub cleared_us: Option<u64>,
    /// Every service seen unhealthy because of it, in the order they were seen.
    pub outages: Vec<OutageFigures>,
}

/// One service's outage after a fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct OutageFigures {
    /// The service.
    pub service: String,
    /// From the fault step's start to the first unhealthy observation, µs.
    pub detected_after_us: u64,
    /// From the first unhealthy observation to the next healthy one, µs; `None` when the journal
    /// (up to teardown) has no healthy one.
    pub unhealthy_for_us: Option<u64>,
    /// From the fault's clearing to the next healthy observation, µs; `None` when either is
    /// missing.
    pub healthy_after_clear_us: Option<u64>,
}

const FAULT_ACTIONS: [&str; 4] = ["kill", "stop", "pause", "restart"];

/// Compute the key figures of a journal (complete or not).
pub fn key_figures(events: &[Event]) -> KeyFigures {
    let teardown_seq = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::PhaseStarted { phase: Phase::Teardown }))
        .map_or(u64::MAX, |e| e.seq);
    let observed = &events[..events.iter().take_while(|e| e.seq < teardown_seq).count()];
    let fault_starts: Vec<(usize, &Event)> = observed
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            matches!(&e.kind, EventKind::StepStarted { action, .. }
                if FAULT_ACTIONS.contains(&action.as_str()))
        })
        .collect();
    let mut faults = Vec::new();
    for (n, (at, start)) in fault_starts.iter().enumerate() {
        let EventKind::StepStarted { index, step, action } = &start.kind else { continue };
        let window_end = fault_starts.get(n + 1).map_or(observed.len(), |(next, _)| *next);
        let step_end = observed[at + 1..]
            .iter()
            .position(|e| matches!(&e.kind, EventKind::StepEnded { index: i, .. } if i == index))
            .map_or(observed.len(), |p| at + 1 + p);
        let applied = observed[at + 1..step_end].iter().find_map(|e| match &e.kind {
            EventKind::ContainerAction { service, undo: false, ok: true, .. } => Some(service),
            _ => None,
        });
        let cleared_us = applied.and_then(|service| {
            if action == "restart" {
                return observed[at + 1..step_end].iter().find_map(|e| match &e.kind {
                    EventKind::ContainerAction { service: s, undo: false, ok: true, .. }
                        if s == service =>
                    {
                        Some(e.offset_us)
                    }
                    _ => None,
                });
            }
            observed[at + 1..].iter().find_map(|e| match &e.kind {
                EventKind::ContainerAction { service: s, action: a, undo, ok: true, .. }
                    if s == service
                        && (*undo || ["start", "unpause", "restart"].contains(&a.as_str())) =>
                {
                    Some(e.offset_us)
                }
                _ => None,
            })
        });
        let mut outages: Vec<OutageFigures> = Vec::new();
        for (i, event) in observed.iter().enumerate().take(window_end).skip(at + 1) {
            let EventKind::HealthChanged { service, healthy: false, .. } = &event.kind else {
                continue;
            };
            if outages.iter().any(|o| &o.service == service) {
                continue;
            }
            let healthy_again = observed[i + 1..].iter().find_map(|e| match &e.kind {
                EventKind::HealthChanged { service: s, healthy: true, .. } if s == service => {
                    Some(e.offset_us)
                }
                _ => None,
            });
            outages.push(OutageFigures {
                service: service.clone(),
                detected_after_us: event.offset_us.saturating_sub(start.offset_us),
                unhealthy_for_us: healthy_again.map(|h| h.saturating_sub(event.offset_us)),
                healthy_after_clear_us: healthy_again
                    .zip(cleared_us)
                    .map(|(healthy, cleared)| healthy.saturating_sub(cleared)),
            });
        }
        faults.push(FaultFigures {
            step: step.clone(),
            action: action.clone(),
            service: applied.cloned(),
            started_us: start.offset_us,
            cleared_us,
            outages,
        });
    }
    KeyFigures { faults }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn a_paused_database_is_seen_by_both_services() {
        let figures = key_figures(&fixtures::deviated().events);
        let pause = &figures.faults[0];
        assert_eq!((pause.step.as_str(), pause.service.as_deref()), ("pause db", Some("db")));
        assert_eq!(pause.started_us, 1_493_000);
        assert_eq!(pause.cleared_us, Some(6_528_000));
        let seen: Vec<(&str, u64, Option<u64>, Option<u64>)> = pause
            .outages
            .iter()
            .map(|o| {
                (
                    o.service.as_str(),
                    o.detected_after_us,
                    o.unhealthy_for_us,
                    o.healthy_after_clear_us,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("db", 87_000, Some(5_152_000), Some(204_000)),
                ("billing", 1_257_000, Some(5_026_000), Some(1_248_000)),
            ]
        );
    }

    #[test]
    fn a_kill_of_an_already_unhealthy_service_detects_nothing_new() {
        let figures = key_figures(&fixtures::deviated().events);
        let kill = &figures.faults[1];
        assert_eq!(kill.step, "kill billing");
        assert_eq!(kill.cleared_us, Some(7_000_000), "cleared by `start billing`");
        assert!(kill.outages.is_empty());
    }

    #[test]
    fn every_prefix_computes() {
        let events = fixtures::deviated().events;
        for end in 0..=events.len() {
            key_figures(&events[..end]);
        }
    }
}
