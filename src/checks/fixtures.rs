//! Hand-built journals and scenarios for the checks' table tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use super::{CheckStatus, evaluate};
use crate::clock::{Clock, ManualClock};
use crate::journal::{Event, EventKind, Journal, Outcome, Phase, ProbeContext, UpgradeStage};
use crate::scenario::model::{
    Expectation, ExpectationKind, Probe, ProbeKind, Scenario, Stack, SteadyPhase,
};

/// Records `timeline` (absolute times in ms) through a real journal on a manual clock.
pub(super) fn journal(timeline: &[(u64, EventKind)]) -> Vec<Event> {
    let in_us: Vec<(u64, EventKind)> =
        timeline.iter().map(|(ms, kind)| (ms * 1_000, kind.clone())).collect();
    journal_us(&in_us)
}

/// Records `timeline` (absolute times in µs) through a real journal on a manual clock.
pub(super) fn journal_us(timeline: &[(u64, EventKind)]) -> Vec<Event> {
    let clock = Arc::new(ManualClock::new());
    let journal = Journal::in_memory(clock.clone());
    for (us, kind) in timeline {
        clock.advance(Duration::from_micros(*us).saturating_sub(clock.offset()));
        journal.record(kind.clone());
    }
    journal.snapshot()
}

fn http_probe(name: &str, service: &str) -> Probe {
    Probe {
        name: name.into(),
        kind: ProbeKind::Http {
            service: service.into(),
            port: 8080,
            method: "GET".into(),
            path: "/health".into(),
            status: 200,
            body_contains: None,
        },
        timeout: Duration::from_secs(2),
    }
}

pub(super) fn scenario(expect: Vec<ExpectationKind>) -> Scenario {
    Scenario {
        name: "smoke".into(),
        description: None,
        source: PathBuf::from("/scenarios/smoke.yaml"),
        stack: Stack { services: IndexMap::new(), links: IndexMap::new(), compose: None },
        traffic: IndexMap::new(),
        steady_state: vec![
            http_probe("billing answers", "billing"),
            http_probe("db answers", "db"),
        ],
        steps: Vec::new(),
        expect: expect
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Expectation { name: format!("check {i}"), kind, at: None })
            .collect(),
        sinks: IndexMap::new(),
        maintenance: None,
        calendar: None,
        backend: None,
    }
}

pub(super) fn started(index: usize, step: &str) -> EventKind {
    EventKind::StepStarted { index, step: step.into(), action: "pause".into() }
}

pub(super) fn ended(index: usize, step: &str) -> EventKind {
    EventKind::StepEnded { index, step: step.into(), outcome: Outcome::Ok, error: None }
}

pub(super) fn ended_with(
    index: usize,
    step: &str,
    outcome: Outcome,
    error: Option<&str>,
) -> EventKind {
    EventKind::StepEnded { index, step: step.into(), outcome, error: error.map(Into::into) }
}

pub(super) fn health(service: &str, healthy: bool, detail: &str) -> EventKind {
    EventKind::HealthChanged {
        service: service.into(),
        healthy,
        detail: detail.into(),
        check_started_us: None,
    }
}

pub(super) fn up(service: &str) -> EventKind {
    health(service, true, "status 200")
}

pub(super) fn down(service: &str) -> EventKind {
    health(service, false, "status 503")
}

pub(super) fn teardown() -> EventKind {
    EventKind::PhaseStarted { phase: Phase::Teardown }
}

/// An event that only moves the journal's end forward.
pub(super) fn later() -> EventKind {
    EventKind::PhaseStarted { phase: Phase::SteadyAfter }
}

pub(super) fn probe_result(probe: &str, context: ProbeContext, status: u16) -> EventKind {
    let ok = status == 200;
    EventKind::ProbeResult {
        probe: probe.into(),
        context,
        service: "billing".into(),
        ok,
        status: Some(status),
        latency_us: 12_000,
        error: (!ok).then(|| format!("status {status}, expected 200")),
    }
}

pub(super) fn steady(phase: SteadyPhase) -> ProbeContext {
    ProbeContext::SteadyState { phase }
}

pub(super) fn in_step(step: &str) -> ProbeContext {
    ProbeContext::Step { step: step.into() }
}

/// An `upgrade` stage of `billing` recorded by `step`.
pub(super) fn stage(step: &str, stage: UpgradeStage, ok: bool, detail: &str) -> EventKind {
    EventKind::Upgrade {
        step: step.into(),
        service: "billing".into(),
        stage,
        ok,
        detail: (!detail.is_empty()).then(|| detail.into()),
    }
}

/// What `billing`'s version endpoint answered.
pub(super) fn version(step: &str, moment: &str, body: &str, ok: bool) -> EventKind {
    EventKind::VersionObserved {
        service: "billing".into(),
        step: step.into(),
        moment: moment.into(),
        body: body.into(),
        ok,
    }
}

/// One request of traffic `traffic`, scheduled at `scheduled_ms`.
pub(super) fn request(traffic: &str, scheduled_ms: u64, ok: bool, latency_ms: u64) -> EventKind {
    EventKind::TrafficRequest {
        traffic: traffic.into(),
        scheduled_us: scheduled_ms * 1_000,
        lateness_us: 0,
        ok,
        status: Some(if ok { 200 } else { 503 }),
        latency_us: latency_ms * 1_000,
        harness_lag_us: 0,
        sent: true,
        unidentified: false,
        write_id: None,
        error: None,
    }
}

/// Requests of `traffic` every `every_ms` from `from_ms` (inclusive) to `to_ms` (exclusive), each
/// recorded at its scheduled time; `ok(i)` and `latency(i)` decide the i-th one.
pub(super) fn requests(
    traffic: &str,
    from_ms: u64,
    to_ms: u64,
    every_ms: u64,
    ok: impl Fn(u64) -> bool,
    latency_ms: impl Fn(u64) -> u64,
) -> Vec<(u64, EventKind)> {
    (from_ms..to_ms)
        .step_by(every_ms as usize)
        .enumerate()
        .map(|(i, at)| (at, request(traffic, at, ok(i as u64), latency_ms(i as u64))))
        .collect()
}

pub(super) fn traffic_started(traffic: &str) -> EventKind {
    EventKind::TrafficStarted { traffic: traffic.into(), rate_per_second: 10.0 }
}

pub(super) fn traffic_stopped(traffic: &str) -> EventKind {
    EventKind::TrafficStopped { traffic: traffic.into(), due: 0 }
}

/// Orders `timeline` by time, keeping the given order for equal times.
pub(super) fn sorted(mut timeline: Vec<(u64, EventKind)>) -> Vec<(u64, EventKind)> {
    timeline.sort_by_key(|(ms, _)| *ms);
    timeline
}

pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) timeline: Vec<(u64, EventKind)>,
    pub(super) status: CheckStatus,
    pub(super) summary: &'static str,
    pub(super) observed: Option<&'static str>,
}

impl Case {
    /// Also compare the verdict's `observed` text.
    pub(super) fn observed(mut self, observed: &'static str) -> Self {
        self.observed = Some(observed);
        self
    }
}

pub(super) fn case(
    name: &'static str,
    status: CheckStatus,
    summary: &'static str,
    timeline: Vec<(u64, EventKind)>,
) -> Case {
    Case { name, timeline, status, summary, observed: None }
}

/// Evaluates `kind` over each case's journal and compares status and summary (and `observed`
/// when the case gives it).
pub(super) fn check_cases(kind: ExpectationKind, cases: Vec<Case>) {
    let scenario = scenario(vec![kind]);
    let mut mismatches = Vec::new();
    for case in cases {
        let verdict = evaluate(&scenario, &journal(&case.timeline)).remove(0);
        if (verdict.status, verdict.summary.as_str()) != (case.status, case.summary) {
            mismatches.push(format!(
                "case `{}`: expected {:?} \"{}\", got {:?} \"{}\"",
                case.name, case.status, case.summary, verdict.status, verdict.summary
            ));
        }
        if let Some(observed) = case.observed
            && verdict.observed != observed
        {
            mismatches.push(format!(
                "case `{}`: expected observed \"{}\", got \"{}\"",
                case.name, observed, verdict.observed
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
