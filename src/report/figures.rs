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
//!
//! Upgrades' figures (time to detect a failed upgrade, to roll back, to restore, the error budget
//! used) come from [`checks::upgrade_figures`](crate::checks::upgrade_figures); traffic's from its
//! `traffic-request` and `writes-verified` events.

use serde::Serialize;

use crate::checks::{UpgradeFigures, upgrade_figures};
use crate::journal::{Event, EventKind, Phase};
use crate::scenario::model::ActionKind;

/// Key figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyFigures {
    /// One entry per fault step that started, in order.
    pub faults: Vec<FaultFigures>,
    /// One entry per upgrade step that started, in order.
    pub upgrades: Vec<UpgradeFigures>,
    /// One entry per traffic entry, in the order the journal first mentions them.
    pub traffic: Vec<TrafficFigures>,
}

/// How one traffic entry fared over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrafficFigures {
    /// The traffic entry.
    pub traffic: String,
    /// Requests sent.
    pub requests: u64,
    /// Of those, the ones that did not get the expected answer.
    pub failed: u64,
    /// Successful requests in percent, one decimal (100 without requests).
    pub availability_percent: f64,
    /// Median latency of successful requests, µs.
    pub p50_latency_us: Option<u64>,
    /// 95th percentile latency of successful requests, µs.
    pub p95_latency_us: Option<u64>,
    /// 99th percentile latency of successful requests, µs.
    pub p99_latency_us: Option<u64>,
    /// Acknowledged writes and how many were lost, when they were read back.
    pub writes: Option<WritesFigures>,
}

/// `verify-writes`: what was read back at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct WritesFigures {
    /// Writes the service acknowledged.
    pub acknowledged: u64,
    /// Of those, not found again.
    pub lost: u64,
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

/// Whether a step's or container action's key is a kind that `test` holds for.
fn is(action: &str, test: fn(ActionKind) -> bool) -> bool {
    ActionKind::from_key(action).is_some_and(test)
}

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
                if is(action, ActionKind::takes_down))
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
        let cleared_us =
            applied.and_then(|service| {
                if action == "restart" {
                    return observed[at + 1..step_end].iter().find_map(|e| match &e.kind {
                        EventKind::ContainerAction {
                            service: s, undo: false, ok: true, ..
                        } if s == service => Some(e.offset_us),
                        _ => None,
                    });
                }
                observed[at + 1..].iter().find_map(|e| match &e.kind {
                    EventKind::ContainerAction {
                        service: s, action: a, undo, ok: true, ..
                    } if s == service && (*undo || is(a, ActionKind::brings_back)) => {
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
    KeyFigures { faults, upgrades: upgrade_figures(events), traffic: traffic_figures(events) }
}

fn traffic_figures(events: &[Event]) -> Vec<TrafficFigures> {
    let mut figures: Vec<(TrafficFigures, Vec<u64>)> = Vec::new();
    fn entry(figures: &mut Vec<(TrafficFigures, Vec<u64>)>, name: &str) -> usize {
        if let Some(i) = figures.iter().position(|(f, _)| f.traffic == name) {
            return i;
        }
        let figure = TrafficFigures {
            traffic: name.to_owned(),
            requests: 0,
            failed: 0,
            availability_percent: 100.0,
            p50_latency_us: None,
            p95_latency_us: None,
            p99_latency_us: None,
            writes: None,
        };
        figures.push((figure, Vec::new()));
        figures.len() - 1
    }
    for event in events {
        match &event.kind {
            EventKind::TrafficRequest { traffic, ok, latency_us, harness_lag_us, .. } => {
                let i = entry(&mut figures, traffic);
                let (figure, latencies) = &mut figures[i];
                figure.requests += 1;
                if *ok {
                    // As the checks judge it: the harness's own lag is not the service's latency.
                    latencies.push(latency_us.saturating_sub(*harness_lag_us));
                } else {
                    figure.failed += 1;
                }
            }
            EventKind::WritesVerified { traffic, acknowledged, lost, .. } => {
                let i = entry(&mut figures, traffic);
                let (figure, _) = &mut figures[i];
                figure.writes =
                    Some(WritesFigures { acknowledged: *acknowledged, lost: lost.len() as u64 });
            }
            _ => {}
        }
    }
    figures
        .into_iter()
        .map(|(mut figure, mut latencies)| {
            latencies.sort_unstable();
            let rank = |p: u64| -> Option<u64> {
                let n = latencies.len() as u64;
                (n > 0).then(|| latencies[((n * p).div_ceil(100)).clamp(1, n) as usize - 1])
            };
            figure.p50_latency_us = rank(50);
            figure.p95_latency_us = rank(95);
            figure.p99_latency_us = rank(99);
            if figure.requests > 0 {
                let ok = (figure.requests - figure.failed) as f64;
                figure.availability_percent =
                    (ok * 1_000.0 / figure.requests as f64).round() / 10.0;
            }
            figure
        })
        .collect()
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
    fn traffic_gives_availability_latency_and_lost_writes() {
        let request = |ok: bool, latency_ms: u64| EventKind::TrafficRequest {
            traffic: "checkout".into(),
            scheduled_us: 0,
            lateness_us: 0,
            ok,
            status: Some(if ok { 201 } else { 503 }),
            latency_us: latency_ms * 1_000,
            harness_lag_us: 0,
            sent: true,
            unidentified: false,
            write_id: None,
            error: None,
        };
        let mut timeline: Vec<(u64, EventKind)> =
            (1..=19).map(|ms| (ms, request(true, ms))).collect();
        timeline.push((20, request(false, 1)));
        timeline.push((
            30,
            EventKind::WritesVerified {
                traffic: "checkout".into(),
                acknowledged: 19,
                found: 18,
                lost: vec!["inv-7".into()],
                unknown: Vec::new(),
                unverifiable: 0,
            },
        ));
        let figures = key_figures(&fixtures::events(timeline));
        assert_eq!(
            figures.traffic,
            vec![TrafficFigures {
                traffic: "checkout".into(),
                requests: 20,
                failed: 1,
                availability_percent: 95.0,
                p50_latency_us: Some(10_000),
                p95_latency_us: Some(19_000),
                p99_latency_us: Some(19_000),
                writes: Some(WritesFigures { acknowledged: 19, lost: 1 }),
            }]
        );
    }

    #[test]
    fn every_prefix_computes() {
        let events = fixtures::deviated().events;
        for end in 0..=events.len() {
            key_figures(&events[..end]);
        }
    }
}
