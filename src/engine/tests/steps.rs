//! Container actions, `parallel` groups, and crashes the backend reports while steps run.

use super::support::*;
use crate::backend::fake::FakeService;
use crate::checks::CheckStatus;
use crate::engine::{EngineError, Signals};
use crate::journal::{EventKind, Outcome};
use crate::report::RunStatus;

#[tokio::test]
async fn a_kill_and_start_are_seen_as_down_then_healthy_again() {
    let backend = backend();
    let scenario = with_stack(
        "steps:
  - name: kill api
    kill: { service: api, signal: SIGKILL }
  - name: api down
    wait: 40ms
  - name: start api
    start: { service: api }
  - wait: 40ms
expect:
  - unhealthy-during: { service: api, step: api down }
  - healthy-within: { service: api, after: start api, within: 200ms }
",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ContainerEvent { service, action, exit_code: Some(137) } if service == "api" && action == "die")));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_kill_with_for_is_undone_by_a_start() {
    let backend = backend();
    let scenario = with_stack(
        "steps:
  - name: kill api
    kill: { service: api, signal: SIGTERM, for: 30ms }
  - wait: 40ms
expect:
  - healthy-within: { service: api, after: kill api, within: 300ms }
",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ContainerAction { action, undo: true, ok: true, .. } if action == "start")));
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ContainerEvent { action, exit_code: Some(143), .. } if action == "die")));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_refused_container_action_fails_the_step_and_the_run() {
    let backend = backend();
    let scenario = with_stack(
        "steps:
  - name: stop api
    stop: { service: api }
  - name: kill api
    kill: { service: api }
  - name: never
    wait: 10ms
",
    );
    let result = run(&scenario, &backend).await;
    match &result.error {
        Some(EngineError::Step { step, reason }) => {
            assert_eq!(step, "kill api");
            assert!(reason.contains("not running"), "{reason}");
        }
        other => panic!("expected a step error, got {other:?}"),
    }
    assert!(!step_started(&result, "never"));
    assert_eq!(result.status, RunStatus::Aborted);
    assert_clean(&backend);
}

#[tokio::test]
async fn a_parallel_group_with_a_failing_child_fails_after_every_child_ended() {
    let backend = backend().service("db", FakeService::healthy_after(ms(5)).fault_apply_fails());
    let scenario = with_stack(
        "steps:
  - name: together
    parallel:
      - name: squeeze db
        memory: { service: db, limit: 64MiB, for: 20ms }
      - name: meanwhile
        wait: 40ms
      - name: probe api
        delay: 10ms
        probe: { http: { service: api, port: 8080, path: /orders } }
  - name: never
    wait: 10ms
",
    );
    let result = run(&scenario, &backend).await;
    assert!(
        matches!(&result.error, Some(EngineError::Step { step, .. }) if step == "together"),
        "{:?}",
        result.error
    );
    assert_eq!(step_end(&result, "squeeze db").map(|e| e.0), Some(Outcome::Failed));
    assert_eq!(step_end(&result, "meanwhile").map(|e| e.0), Some(Outcome::Ok));
    assert_eq!(step_end(&result, "together").map(|e| e.0), Some(Outcome::Failed));
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ProbeResult { probe, ok: true, .. } if probe == "probe api")));
    assert!(!step_started(&result, "never"));
    assert_eq!(result.status, RunStatus::Aborted);
    assert_clean(&backend);
}

#[tokio::test]
async fn a_parallel_group_of_healthy_children_completes() {
    let backend = backend();
    let scenario = with_stack(
        "steps:
  - name: together
    parallel:
      - name: squeeze db
        cpu: { service: db, cores: 0.5, for: 20ms }
      - name: upgrade api
        upgrade: { service: api, image: api:2.0, deadline: 300ms }
expect:
  - upgrade-succeeds: upgrade api
",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?} {:?}", result.error, statuses(&result));
    assert_eq!(step_end(&result, "together").map(|e| e.0), Some(Outcome::Ok));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_crash_commanded_mid_run_is_journaled_and_judged() {
    let backend = backend();
    let scenario = with_stack(
        "steps:
  - name: watch api
    wait: 60ms
expect:
  - healthy-throughout: { service: api, step: watch api }
",
    );
    let listener = {
        let backend = backend.clone();
        on_first(
            |e| matches!(&e.kind, EventKind::StepStarted { step, .. } if step == "watch api"),
            move || assert!(backend.crash("api", 9)),
        )
    };
    let result = run_with(&scenario, &backend, &Signals::default(), Some(listener)).await;
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ContainerEvent { service, action, exit_code: Some(9) } if service == "api" && action == "die")));
    assert_eq!(result.verdicts[0].status, CheckStatus::Failed);
    assert_eq!(result.status, RunStatus::Deviated);
    assert_clean(&backend);
}

#[tokio::test]
async fn an_out_of_memory_kill_is_a_typed_event() {
    let backend = backend();
    let scenario = with_stack("steps:\n  - name: wait\n    wait: 60ms\n");
    let listener = {
        let backend = backend.clone();
        on_first(
            |e| matches!(&e.kind, EventKind::StepStarted { step, .. } if step == "wait"),
            move || assert!(backend.oom("api")),
        )
    };
    let result = run_with(&scenario, &backend, &Signals::default(), Some(listener)).await;
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ContainerEvent { service, action, .. } if service == "api" && action == "oom")));
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ContainerEvent { service, action, exit_code: Some(137) } if service == "api" && action == "die")));
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::HealthChanged { service, healthy: false, .. } if service == "api")));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_scripted_crash_after_start_reaches_the_journal() {
    // `crash_after` counts from each start: whether it lands in bring-up or in the step on a
    // loaded machine, its exit code reaches the journal and teardown cleans up.
    let backend =
        backend().service("api", FakeService::healthy_after(ms(5)).crash_after(ms(40), 12));
    let scenario = with_stack("steps:\n  - name: wait\n    wait: 80ms\n");
    let result = run(&scenario, &backend).await;
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ContainerEvent { service, action, exit_code: Some(12) } if service == "api" && action == "die")));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_call_records_the_answer_the_model_gives() {
    let backend =
        backend().service("api", FakeService::healthy_after(ms(5)).status("/refund", 409));
    let scenario = with_stack(
        "steps:
  - name: refund
    call: { service: api, port: 8080, method: POST, path: /refund, body: '{}' }
",
    );
    let result = run(&scenario, &backend).await;
    let call = result.events.iter().find_map(|e| match &e.kind {
        EventKind::CallResult { status, ok, .. } => Some((*status, *ok)),
        _ => None,
    });
    assert_eq!(call, Some((Some(409), false)));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_write_is_created_and_read_back() {
    let backend = backend();
    let scenario = with_stack(
        "traffic:
  writes:
    http: { service: api, port: 8080, method: POST, path: /orders, body: '{}', status: 201 }
    rate: 100/s
    timeout: 100ms
    verify-writes: true
steps:
  - wait: 50ms
expect:
  - slo: { traffic: writes, availability: 100% }
  - no-lost-writes: { traffic: writes }
",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert_clean(&backend);
}

/// The offset of `step`'s `step-started`, and of the upgrade `stage` (ok) of `upgrade`.
fn offsets(result: &crate::engine::RunResult, step: &str, upgrade: &str) -> (u64, u64) {
    let started = result
        .events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::StepStarted { step: s, .. } if s == step))
        .map(|e| e.offset_us)
        .expect("the child started");
    let healthy = result
        .events
        .iter()
        .find(|e| matches!(&e.kind,
            EventKind::Upgrade { step: s, stage: crate::journal::UpgradeStage::Healthy, ok: true, .. } if s == upgrade))
        .map(|e| e.offset_us)
        .expect("the release was healthy");
    (started, healthy)
}

const ANCHORED: &str = "traffic:
  orders:
    http: { service: api, port: 8080, path: /orders }
    rate: 100/s
    timeout: 100ms
steps:
  - parallel:
      - name: upgrade api
        upgrade:
          service: api
          image: api:2.0
          deadline: 2s
          watch: { for: 200ms, traffic: orders, availability: 50% }
      - name: freeze db
        at: { step: upgrade api, event: healthy }
        delay: 30ms
        pause: { service: db, for: 20ms }
";

#[tokio::test]
async fn an_anchored_child_starts_its_delay_after_the_siblings_moment_however_late_it_comes() {
    // The release takes 300 ms to turn healthy: a child counted from the group's start with a
    // 30 ms delay would run long before; anchored at `healthy`, it waits for it.
    let backend = backend().image("api:2.0", FakeService::healthy_after(ms(300)));
    let result = run(&with_stack(ANCHORED), &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    let (started, healthy) = offsets(&result, "freeze db", "upgrade api");
    assert!(started >= healthy + 30_000, "started {started} µs, healthy {healthy} µs");
    // Not late either: within the watch (200 ms) of the moment.
    assert!(started < healthy + 200_000, "started {started} µs, healthy {healthy} µs");
    assert_eq!(step_end(&result, "freeze db").map(|(o, _)| o), Some(Outcome::Ok));
    assert!(backend.operations().iter().any(|op| op == "pause db"), "{:?}", backend.operations());
    assert_clean(&backend);
}

#[tokio::test]
async fn an_anchored_child_whose_moment_never_comes_is_skipped_and_says_why() {
    let backend = backend().image("api:2.0", FakeService::crash_on_start(3));
    let result = run(&with_stack(ANCHORED), &backend).await;
    // The failed release deviates the run (nothing accepts it); the skip does not.
    assert_eq!(result.status, RunStatus::Deviated, "{:?}", result.error);
    assert!(result.error.is_none(), "{:?}", result.error);
    let failed: Vec<_> = statuses(&result)
        .into_iter()
        .filter(|(_, status, _)| *status == CheckStatus::Failed)
        .map(|(name, _, why)| format!("{name}: {why}"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("upgrade api"), "{failed:?}");
    let (outcome, error) = step_end(&result, "freeze db").expect("recorded");
    assert_eq!(outcome, Outcome::Skipped);
    let error = error.unwrap_or_default();
    assert!(error.contains("`upgrade api` healthy, which never came"), "{error}");
    assert!(error.contains("never became healthy"), "{error}");
    // Nothing was paused: the fault never ran.
    assert!(
        !backend.operations().iter().any(|op| op.starts_with("pause")),
        "{:?}",
        backend.operations()
    );
    assert_clean(&backend);
}
