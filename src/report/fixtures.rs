//! Hand-built journals the reporters' tests share: a run that completed, one that deviated, one
//! that aborted at bring-up, one interrupted by Ctrl-C, and one cut short by a crash.
//!
//! Scenarios are parsed from YAML by the real parser and journals recorded through a real
//! [`Journal`] on a manual clock, so offsets, walls and `scenario-loaded` are what a run writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::record::RunRecord;
use super::replay::status_from_journal;
use crate::checks::evaluate;
use crate::clock::{Clock, ManualClock};
use crate::journal::{
    Event, EventKind, JOURNAL_FORMAT_VERSION, Journal, Outcome, Phase, ProbeContext,
};
use crate::scenario::Scenario;
use crate::scenario::model::SteadyPhase;

/// A scenario with two services, a `for` fault, a probe step, a kill and a start. Its check names
/// carry markup, as user strings may.
pub(super) const CHECKOUT: &str = r#"
name: checkout
description: Freeze the database, then kill billing. <billing> & "friends" must recover.
stack:
  services:
    db:
      image: firedrill-demo/postgres:15
      ports: [5432]
      health: { exec: [pg_isready] }
    billing:
      image: firedrill-demo/billing:1.0
      ports: [8080]
      health: { http: { port: 8080, path: /health } }
      depends-on: [db]
steady-state:
  - name: billing is healthy
    http: { service: billing, port: 8080, path: /health }
steps:
  - name: pause db
    pause: { service: db, for: 5s }
  - name: probe billing
    probe: { http: { service: billing, port: 8080, path: /health } }
  - name: kill billing
    kill: { service: billing }
  - name: start billing
    start: { service: billing }
expect:
  - steady-state: before
  - name: billing notices the frozen db
    unhealthy-during: { service: billing, step: pause db }
  - name: billing recovers <fast> & "soon"
    healthy-within: { service: billing, after: pause db, within: 1s }
  - probe-passed: probe billing
  - healthy-within: { service: billing, after: start billing, within: 10s }
  - steady-state: after
"#;

/// Freeze the database for 5 s; billing must notice and recover (every check passes).
pub(super) const DB_PAUSE: &str = r#"
name: db-pause
stack:
  services:
    db:
      image: firedrill-demo/postgres:15
      ports: [5432]
      health: { exec: [pg_isready] }
    billing:
      image: firedrill-demo/billing:1.0
      ports: [8080]
      health: { http: { port: 8080, path: /health } }
      depends-on: [db]
steady-state:
  - name: billing is healthy
    http: { service: billing, port: 8080, path: /health }
steps:
  - name: pause db
    pause: { service: db, for: 5s }
  - wait: 1s
expect:
  - steady-state: before
  - unhealthy-during: { service: billing, step: pause db }
  - healthy-within: { service: billing, after: pause db, within: 5s }
  - steady-state: after
"#;

pub(super) fn scenario(yaml: &str, file: &str) -> Scenario {
    crate::scenario::parse(yaml, Path::new(file)).expect("fixture scenarios are valid")
}

/// Records `timeline` (absolute times in ms) through a journal on a manual clock.
pub(super) fn events(timeline: Vec<(u64, EventKind)>) -> Vec<Event> {
    let clock = Arc::new(ManualClock::new());
    let journal = Journal::in_memory(clock.clone());
    for (ms, kind) in timeline {
        clock.advance(Duration::from_millis(ms).saturating_sub(clock.offset()));
        journal.record(kind);
    }
    journal.snapshot()
}

/// The record of `events` judged against `scenario`, with the status the journal implies.
pub(super) fn record(scenario: &Scenario, events: Vec<Event>) -> RunRecord {
    let verdicts = evaluate(scenario, &events);
    let status = status_from_journal(&events, &verdicts);
    let file = scenario.source.display().to_string();
    RunRecord::new(PathBuf::from("out"), &scenario.name, &file, events, &verdicts, status)
}

fn start(scenario: &Scenario, run_id: &str) -> Vec<(u64, EventKind)> {
    vec![
        (
            0,
            EventKind::RunStarted {
                run_id: run_id.into(),
                scenario: scenario.name.clone(),
                file: scenario.source.display().to_string(),
                format_version: JOURNAL_FORMAT_VERSION,
                firedrill_version: "0.1.0".into(),
                seed: None,
            },
        ),
        (
            0,
            EventKind::ScenarioLoaded {
                description: scenario.description.clone(),
                steady_state: serde_json::to_value(&scenario.steady_state).unwrap(),
                expect: serde_json::to_value(&scenario.expect).unwrap(),
            },
        ),
    ]
}

fn phase(phase: Phase) -> EventKind {
    EventKind::PhaseStarted { phase }
}

fn phase_ended(phase: Phase, outcome: Outcome, error: Option<&str>) -> EventKind {
    EventKind::PhaseEnded { phase, outcome, error: error.map(str::to_owned) }
}

fn phase_ok(phase: Phase) -> EventKind {
    phase_ended(phase, Outcome::Ok, None)
}

fn health(service: &str, healthy: bool, detail: &str) -> EventKind {
    EventKind::HealthChanged {
        service: service.into(),
        healthy,
        detail: detail.into(),
        check_started_us: None,
    }
}

fn step(index: usize, name: &str, action: &str) -> EventKind {
    EventKind::StepStarted { index, step: name.into(), action: action.into() }
}

fn step_ended(index: usize, name: &str, outcome: Outcome) -> EventKind {
    EventKind::StepEnded { index, step: name.into(), outcome, error: None }
}

fn action(service: &str, action: &str, undo: bool) -> EventKind {
    let signal = (action == "kill").then(|| "SIGKILL".to_owned());
    EventKind::ContainerAction {
        service: service.into(),
        action: action.into(),
        signal,
        undo,
        ok: true,
        error: None,
    }
}

fn docker(service: &str, action: &str, exit_code: Option<i64>) -> EventKind {
    EventKind::ContainerEvent { service: service.into(), action: action.into(), exit_code }
}

fn probe(name: &str, context: ProbeContext, status: u16, latency_ms: u64) -> EventKind {
    EventKind::ProbeResult {
        probe: name.into(),
        context,
        service: "billing".into(),
        ok: status == 200,
        status: Some(status),
        latency_us: latency_ms * 1_000,
        error: (status != 200)
            .then(|| format!("status {status}, expected 200: database unavailable")),
    }
}

fn steady(phase: SteadyPhase) -> ProbeContext {
    ProbeContext::SteadyState { phase }
}

/// Prepare and bring-up of `db` and `billing`, both healthy by 1.49 s.
fn bring_up() -> Vec<(u64, EventKind)> {
    let started = |service: &str, image: &str| EventKind::ServiceStarted {
        service: service.into(),
        container: format!("{service}0123456789abcdef"),
        image: image.into(),
    };
    let ready =
        |service: &str, startup_us| EventKind::ServiceReady { service: service.into(), startup_us };
    vec![
        (1, phase(Phase::Prepare)),
        (
            6,
            EventKind::ImageReady {
                image: "firedrill-demo/postgres:15".into(),
                built: false,
                build_us: 0,
            },
        ),
        (
            7,
            EventKind::ImageReady {
                image: "firedrill-demo/billing:1.0".into(),
                built: false,
                build_us: 0,
            },
        ),
        (8, phase_ok(Phase::Prepare)),
        (8, phase(Phase::BringUp)),
        (93, EventKind::NetworkCreated { network: "firedrill-fd-0000c0de".into() }),
        (425, docker("db", "start", None)),
        (426, started("db", "firedrill-demo/postgres:15")),
        (534, health("db", false, "exit 2: 127.0.0.1:5432 - no response")),
        (895, health("db", true, "exit 0")),
        (896, ready("db", 470_000)),
        (1_228, docker("billing", "start", None)),
        (1_229, started("billing", "firedrill-demo/billing:1.0")),
        (1_233, health("billing", false, "request: connection refused")),
        (1_489, health("billing", true, "status 200")),
        (1_489, ready("billing", 260_000)),
        (1_490, phase_ok(Phase::BringUp)),
        (1_490, phase(Phase::SteadyBefore)),
        (1_493, probe("billing is healthy", steady(SteadyPhase::Before), 200, 2)),
        (1_493, phase_ok(Phase::SteadyBefore)),
        (1_493, phase(Phase::Steps)),
    ]
}

/// `pause db` for 5 s, up to (not including) its undo.
fn pause_db() -> Vec<(u64, EventKind)> {
    vec![
        (1_493, step(0, "pause db", "pause")),
        (1_505, docker("db", "pause", None)),
        (1_507, action("db", "pause", false)),
        (1_580, health("db", false, "exec failed: container is paused")),
        (
            2_750,
            health("billing", false, "status 503, expected 200: database unavailable <timeout>"),
        ),
    ]
}

fn unpause_db() -> Vec<(u64, EventKind)> {
    vec![
        (6_525, docker("db", "unpause", None)),
        (6_528, action("db", "unpause", true)),
        (6_528, step_ended(0, "pause db", Outcome::Ok)),
    ]
}

fn end(at: u64, outcome: Outcome) -> Vec<(u64, EventKind)> {
    vec![
        (at, phase(Phase::Teardown)),
        (at + 300, health("billing", false, "request: connection refused")),
        (at + 500, phase_ok(Phase::Teardown)),
        (
            at + 500,
            EventKind::TimeAccounting {
                docker_us: 1_300_000,
                declared_wait_us: 5_000_000,
                service_wait_us: 900_000,
                waited: None,
                harness_cpu_us: None,
            },
        ),
        (at + 500, EventKind::RunEnded { outcome }),
    ]
}

/// `checkout`: billing notices the frozen database but recovers too slowly, and the probe in
/// between fails; everything else holds.
pub(super) fn deviated() -> RunRecord {
    let scenario = scenario(CHECKOUT, "scenarios/checkout.yaml");
    let mut timeline = start(&scenario, "fd-0000c0de");
    timeline.extend(bring_up());
    timeline.extend(pause_db());
    timeline.extend(unpause_db());
    timeline.extend([
        (6_528, step(1, "probe billing", "probe")),
        (
            6_600,
            probe("probe billing", ProbeContext::Step { step: "probe billing".into() }, 503, 72),
        ),
        (6_600, step_ended(1, "probe billing", Outcome::Ok)),
        (6_600, step(2, "kill billing", "kill")),
        (6_650, docker("billing", "die", Some(137))),
        (6_700, action("billing", "kill", false)),
        (6_700, step_ended(2, "kill billing", Outcome::Ok)),
        (6_700, step(3, "start billing", "start")),
        (6_732, health("db", true, "exit 0")),
        (6_990, docker("billing", "start", None)),
        (7_000, action("billing", "start", false)),
        (7_000, step_ended(3, "start billing", Outcome::Ok)),
        (7_000, phase_ok(Phase::Steps)),
        (7_000, phase(Phase::SteadyAfter)),
        (7_776, health("billing", true, "status 200")),
        (7_800, probe("billing is healthy", steady(SteadyPhase::After), 200, 3)),
        (7_800, phase_ok(Phase::SteadyAfter)),
    ]);
    // The engine observes until the last `healthy-within` deadline before teardown.
    timeline.extend(end(17_100, Outcome::Ok));
    record(&scenario, events(timeline))
}

/// `db-pause`: every check holds.
pub(super) fn completed() -> RunRecord {
    let scenario = scenario(DB_PAUSE, "scenarios/db-pause.yaml");
    let mut timeline = start(&scenario, "fd-cfe23aaf");
    timeline.extend(bring_up());
    timeline.extend(pause_db());
    timeline.extend(unpause_db());
    timeline.extend([
        (6_528, step(1, "wait 1s", "wait")),
        (6_732, health("db", true, "exit 0")),
        (6_776, health("billing", true, "status 200")),
        (7_529, step_ended(1, "wait 1s", Outcome::Ok)),
        (7_529, phase_ok(Phase::Steps)),
        (7_529, phase(Phase::SteadyAfter)),
        (7_536, probe("billing is healthy", steady(SteadyPhase::After), 200, 3)),
        (7_536, phase_ok(Phase::SteadyAfter)),
    ]);
    // The engine observes until the `healthy-within` deadline before teardown.
    timeline.extend(end(11_600, Outcome::Ok));
    record(&scenario, events(timeline))
}

/// `checkout`: billing's container exits during bring-up; the run is aborted.
pub(super) fn aborted() -> RunRecord {
    let scenario = scenario(CHECKOUT, "scenarios/checkout.yaml");
    let mut timeline = start(&scenario, "fd-0000dead");
    let error = "service `billing` did not become ready: container exited with code 101 before \
                 becoming healthy\nlast log lines:\n  | thread 'main' panicked at <src/main.rs>: \
                 \"boom\" & more";
    timeline.extend(bring_up().into_iter().take(14));
    timeline.extend([
        (1_600, docker("billing", "die", Some(101))),
        (
            2_240,
            EventKind::ServiceLogs {
                service: "billing".into(),
                lines:
                    "listening on :8080\nthread 'main' panicked at <src/main.rs>: \"boom\" & more"
                        .into(),
            },
        ),
        (2_240, phase_ended(Phase::BringUp, Outcome::Failed, Some(error))),
        (2_240, phase(Phase::Teardown)),
        (2_700, phase_ok(Phase::Teardown)),
        (
            2_700,
            EventKind::TimeAccounting {
                docker_us: 1_500_000,
                declared_wait_us: 0,
                service_wait_us: 900_000,
                waited: None,
                harness_cpu_us: None,
            },
        ),
        (2_700, EventKind::RunEnded { outcome: Outcome::Failed }),
    ]);
    record(&scenario, events(timeline))
}

/// `checkout`: Ctrl-C 3 s into `pause db`; the pause is undone and the stack torn down.
pub(super) fn interrupted() -> RunRecord {
    let scenario = scenario(CHECKOUT, "scenarios/checkout.yaml");
    let mut timeline = start(&scenario, "fd-0000beef");
    timeline.extend(bring_up());
    timeline.extend(pause_db());
    timeline.extend([
        (4_500, EventKind::Interrupted { second: false }),
        (4_520, docker("db", "unpause", None)),
        (4_522, action("db", "unpause", true)),
        (4_522, step_ended(0, "pause db", Outcome::Interrupted)),
        (4_522, phase_ended(Phase::Steps, Outcome::Interrupted, None)),
    ]);
    timeline.extend(end(4_523, Outcome::Interrupted));
    record(&scenario, events(timeline))
}

/// `checkout`'s journal as a crash (SIGKILL of firedrill itself) leaves it: cut in the middle of
/// `pause db`, with no end.
pub(super) fn crashed() -> RunRecord {
    let scenario = scenario(CHECKOUT, "scenarios/checkout.yaml");
    let mut timeline = start(&scenario, "fd-0000f00d");
    timeline.extend(bring_up());
    timeline.extend(pause_db());
    record(&scenario, events(timeline))
}

/// A rehearsal of a broken release of billing under live traffic: the upgrade fails its health
/// deadline, is rolled back, and one acknowledged write is lost.
pub(super) const UPGRADE: &str = r#"
name: weekend-upgrade
stack:
  services:
    db:
      image: firedrill-demo/postgres:15
      ports: [5432]
      health: { exec: [pg_isready] }
    billing:
      image: firedrill-demo/billing:1.0
      ports: [8080]
      health: { http: { port: 8080, path: /health } }
      depends-on: [db]
steady-state:
  - name: billing is healthy
    http: { service: billing, port: 8080, path: /health }
steps:
  - name: baseline
    wait: 2s
  - name: upgrade billing
    wait: 5s
  - name: settle
    wait: 1s
expect:
  - steady-state: before
  - unhealthy-during: { service: billing, step: upgrade billing }
  - healthy-within: { service: billing, after: upgrade billing, within: 2s }
  - steady-state: after
"#;

/// `weekend-upgrade`: billing 2.0 never gets healthy and is rolled back, under 10 requests/s.
pub(super) fn upgraded() -> RunRecord {
    use crate::journal::UpgradeStage;
    let scenario = scenario(UPGRADE, "scenarios/weekend-upgrade.yaml");
    let upgrade = |stage, ok, detail: Option<&str>| EventKind::Upgrade {
        step: "upgrade billing".into(),
        service: "billing".into(),
        stage,
        ok,
        detail: detail.map(str::to_owned),
    };
    let mut timeline = start(&scenario, "fd-00000b1e");
    timeline.extend(bring_up());
    timeline.extend([
        (1_493, EventKind::TrafficStarted { traffic: "checkout".into(), rate_per_second: 10.0 }),
        (1_493, step(0, "baseline", "wait")),
        (3_493, step_ended(0, "baseline", Outcome::Ok)),
        (3_493, step(1, "upgrade billing", "upgrade")),
        (
            3_500,
            upgrade(
                UpgradeStage::Started,
                true,
                Some("firedrill-demo/billing:1.0 → firedrill-demo/billing:2.0-unhealthy"),
            ),
        ),
        (3_550, upgrade(UpgradeStage::Backup, true, None)),
        (3_700, docker("billing", "die", Some(0))),
        (3_900, docker("billing", "start", None)),
        (3_910, upgrade(UpgradeStage::Switched, true, None)),
        (3_950, health("billing", false, "status 500, expected 200")),
        (8_000, upgrade(UpgradeStage::Healthy, false, Some("not healthy within 4s"))),
        (8_000, upgrade(UpgradeStage::Failed, false, Some("not healthy within 4s: status 500"))),
        (8_010, upgrade(UpgradeStage::RollbackStarted, true, None)),
        (8_100, docker("billing", "die", Some(0))),
        (8_300, docker("billing", "start", None)),
        (8_600, upgrade(UpgradeStage::Restore, true, None)),
        (8_900, health("billing", true, "status 200")),
        (8_950, upgrade(UpgradeStage::RolledBack, true, Some("firedrill-demo/billing:1.0"))),
        (9_000, step_ended(1, "upgrade billing", Outcome::Ok)),
        (9_000, step(2, "settle", "wait")),
        (10_000, step_ended(2, "settle", Outcome::Ok)),
        (10_000, phase_ok(Phase::Steps)),
    ]);
    // Requests every 100 ms: refused while billing is down, 500 while 2.0 answers.
    for n in 0..85u64 {
        let due = 1_500 + n * 100;
        let (ok, status, latency_ms) = match due {
            3_700..3_900 | 8_100..8_300 => (false, None, 1),
            3_900..8_100 => (false, Some(500), 30),
            _ => (true, Some(201), 3 + n % 4),
        };
        timeline.push((
            due + latency_ms,
            EventKind::TrafficRequest {
                traffic: "checkout".into(),
                scheduled_us: due * 1_000,
                lateness_us: 0,
                ok,
                status,
                latency_us: latency_ms * 1_000,
                harness_lag_us: 0,
                sent: true,
                unidentified: false,
                write_id: ok.then(|| format!("inv-{n}")),
                error: (!ok).then(|| "status 500, expected 201".to_owned()),
            },
        ));
    }
    timeline.sort_by_key(|(ms, _)| *ms);
    timeline.extend([
        (10_000, EventKind::TrafficStopped { traffic: "checkout".into(), due: 85 }),
        (10_000, phase(Phase::SteadyAfter)),
        (10_004, probe("billing is healthy", steady(SteadyPhase::After), 200, 3)),
        (10_004, phase_ok(Phase::SteadyAfter)),
        (
            10_050,
            EventKind::WritesVerified {
                traffic: "checkout".into(),
                acknowledged: 39,
                found: 38,
                lost: vec!["inv-12".into()],
                unknown: Vec::new(),
                unverifiable: 0,
            },
        ),
    ]);
    // The engine observes until the `healthy-within` deadline before teardown.
    timeline.extend(end(11_100, Outcome::Ok));
    record(&scenario, events(timeline))
}

/// `notify-too-slow`: billing killed; email and the status page in time, SMS 4.2 s late, and a
/// maintenance notice on chat that came too close to the upgrade.
pub(super) const NOTIFY: &str = r#"
name: notify-too-slow
sinks: { email: smtp, sms: twilio, status: statuspage, chat: slack }
stack:
  services:
    billing:
      image: firedrill-demo/billing:1.0
      ports: [8080]
      health: { http: { port: 8080, path: /health } }
steps:
  - name: upgrade billing
    upgrade: { service: billing, image: firedrill-demo/billing:2.0 }
  - name: kill billing
    kill: { service: billing }
expect:
  - notify:
      on: { step: kill billing }
      channels: [email, sms, status-page]
      within: 90s
      recipients: { sms: ["+15550001"] }
  - maintenance-notice: { before: upgrade billing, channels: [chat], lead-time: 20s }
"#;

/// The run of [`NOTIFY`].
pub(super) fn notified() -> RunRecord {
    let scenario = scenario(NOTIFY, "scenarios/notify-too-slow.yaml");
    let message = |at_ms: u64, channel: &str, to: &str, subject: Option<&str>, body: &str| {
        (
            at_ms,
            EventKind::NotificationReceived {
                sink: channel.into(),
                channel: channel.into(),
                received_us: at_ms * 1_000,
                from: None,
                recipients: vec![to.into()],
                subject: subject.map(Into::into),
                body: body.into(),
                detail: serde_json::json!({}),
            },
        )
    };
    let mut timeline = start(&scenario, "fd-0000a1e7");
    timeline.extend(bring_up());
    timeline.extend([
        message(1_500, "chat", "chat", None, "Billing maintenance in 15 seconds"),
        (16_000, step(0, "upgrade billing", "upgrade")),
        (20_000, step_ended(0, "upgrade billing", Outcome::Ok)),
        (20_000, step(1, "kill billing", "kill")),
        (20_010, step_ended(1, "kill billing", Outcome::Ok)),
        message(
            32_300,
            "email",
            "ops@acme.test",
            Some("[FIRING:1] billing outage"),
            "billing is down",
        ),
        message(74_100, "status-page", "page", Some("Billing outage"), "Investigating"),
        message(114_200, "sms", "+15550001", None, "billing outage"),
        (115_000, phase_ok(Phase::Steps)),
    ]);
    timeline.sort_by_key(|(ms, _)| *ms);
    timeline.extend(end(115_100, Outcome::Ok));
    record(&scenario, events(timeline))
}
