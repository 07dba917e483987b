//! Time accounting when waits overlap: each kind of wait counts as wall time, and the harness's
//! overhead is the run's time outside every wait, not the total minus the sums.

use super::support::*;
use crate::backend::fake::FakeService;
use crate::journal::{EventKind, Outcome, WaitUnion};
use crate::report::RunStatus;

/// The `offset-us` of the first event `wanted` accepts.
fn offset_of(result: &crate::engine::RunResult, wanted: impl Fn(&EventKind) -> bool) -> u64 {
    result.events.iter().find(|e| wanted(&e.kind)).map(|e| e.offset_us).expect("the event")
}

#[tokio::test]
async fn waits_side_by_side_count_once_and_the_harness_keeps_its_share() {
    // `api` takes 80 ms to answer its health check: at bring-up, and again after the upgrade,
    // whose health wait runs beside the two declared waits.
    let backend = backend().service("api", FakeService::healthy_after(ms(80)));
    let scenario = with_stack(
        "steps:
  - name: together
    parallel:
      - name: first
        wait: 300ms
      - name: second
        wait: 300ms
      - name: upgrade api
        upgrade: { service: api, image: api:2.0, deadline: 400ms }
expect:
  - upgrade-succeeds: upgrade api
",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?} {:?}", result.error, statuses(&result));
    assert_eq!(step_end(&result, "together").map(|e| e.0), Some(Outcome::Ok));

    let accounting = result
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::TimeAccounting { .. }))
        .expect("a time-accounting event");
    let EventKind::TimeAccounting {
        docker_us,
        declared_wait_us,
        service_wait_us,
        waited: Some(waited),
        harness_cpu_us,
    } = accounting.kind.clone()
    else {
        panic!("no union of the waits: {:?}", accounting.kind)
    };
    let WaitUnion { declared_wait_us: declared, service_wait_us: service, any_us: any, .. } =
        waited;
    let total = accounting.offset_us;
    let group = offset_of(
        &result,
        |k| matches!(k, EventKind::StepEnded { step, .. } if step == "together"),
    ) - offset_of(
        &result,
        |k| matches!(k, EventKind::StepStarted { step, .. } if step == "together"),
    );

    // The declared waits, side by side: the group's wall time, not twice it.
    assert!(declared_wait_us >= 600_000, "sum {declared_wait_us} µs");
    assert!(declared >= 300_000 && declared <= group, "declared {declared} µs, group {group} µs");
    assert!(group - declared < 50_000, "declared {declared} µs, group {group} µs");
    // Two health waits of 80 ms or more, one at bring-up and one beside the declared waits.
    assert!(service >= 160_000 && service <= service_wait_us, "{service} of {service_wait_us} µs");
    // The union of everything holds the group and the bring-up health wait, which precedes it.
    assert!(any >= declared + 80_000, "any {any} µs, declared {declared} µs");
    assert!(any >= waited.docker_us && waited.docker_us <= docker_us);
    // The sums add up to more than the run: the old overhead would have been clamped to 0.
    assert!(docker_us + declared_wait_us + service_wait_us > total, "{total} µs");
    // The union does not: what is left is the harness's own time, and the report says so.
    assert!(any < total, "any {any} µs of {total} µs");
    let report = crate::report::build_report(
        "fake-test",
        "/fake/scenario.yaml",
        &result.events,
        &result.verdicts,
        result.status,
    );
    let timing = report.timing.expect("timing");
    assert_eq!(timing.overhead_ms, (total - any) / 1_000);
    assert_eq!(timing.waiting_ms, Some(any / 1_000));
    assert_eq!(timing.declared_wait_ms, declared / 1_000);
    assert!(harness_cpu_us.is_some());
    assert_clean(&backend);
}

#[tokio::test]
async fn observing_until_a_checks_deadline_is_a_declared_wait() {
    // No wait step: the only declared wait is the run staying up until `healthy-within`'s
    // deadline, 300 ms after `start api` ended.
    let backend = backend();
    let scenario = with_stack(
        "steps:
  - name: kill api
    kill: { service: api, signal: SIGKILL }
  - name: start api
    start: { service: api }
expect:
  - healthy-within: { service: api, after: start api, within: 300ms }
",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?} {:?}", result.error, statuses(&result));
    let started = offset_of(
        &result,
        |k| matches!(k, EventKind::StepEnded { step, .. } if step == "start api"),
    );
    let teardown = offset_of(&result, |k| {
        matches!(k, EventKind::PhaseStarted { phase: crate::journal::Phase::Teardown })
    });
    assert!(teardown >= started + 300_000, "teardown at {teardown} µs, start api at {started} µs");
    let Some(EventKind::TimeAccounting { declared_wait_us, waited: Some(waited), .. }) = result
        .events
        .iter()
        .map(|e| &e.kind)
        .find(|k| matches!(k, EventKind::TimeAccounting { .. }))
        .cloned()
    else {
        panic!("no time-accounting with the union")
    };
    // Most of the 300 ms window is left when the steps end; none of it is the harness's.
    assert!(declared_wait_us >= 200_000, "declared {declared_wait_us} µs");
    assert_eq!(waited.declared_wait_us, declared_wait_us);
    assert_clean(&backend);
}
