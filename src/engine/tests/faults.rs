//! Resource and network faults: applied, reverted, and what happens when either fails.

use super::support::*;
use crate::backend::fake::FakeService;
use crate::engine::{EngineError, Signals};
use crate::journal::{Event, EventKind};
use crate::report::RunStatus;

fn faults(result: &crate::engine::RunResult) -> (Vec<bool>, Vec<bool>) {
    let applied = result
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FaultApplied { ok, .. } => Some(*ok),
            _ => None,
        })
        .collect();
    let reverted = result
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FaultReverted { ok, .. } => Some(*ok),
            _ => None,
        })
        .collect();
    (applied, reverted)
}

const MEMORY: &str = "steps:
  - name: squeeze api
    memory: { service: api, limit: 64MiB, for: 20ms }
  - name: after
    wait: 10ms
";

#[tokio::test]
async fn a_fault_is_applied_then_reverted() {
    let backend = backend();
    let result = run(&with_stack(MEMORY), &backend).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(faults(&result), (vec![true], vec![true]));
    let ops = backend.operations();
    assert!(ops.contains(&"apply-fault api memory".to_owned()));
    assert!(ops.contains(&"revert-fault api memory".to_owned()));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_fault_that_fails_to_apply_is_not_reverted_and_fails_the_step() {
    let backend = backend().service("api", FakeService::healthy_after(ms(5)).fault_apply_fails());
    let result = run(&with_stack(MEMORY), &backend).await;
    assert_eq!(faults(&result), (vec![false], vec![]));
    assert!(matches!(&result.error, Some(EngineError::Step { step, .. }) if step == "squeeze api"));
    assert!(!step_started(&result, "after"));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_fault_that_fails_to_revert_fails_the_step_and_teardown_still_cleans_up() {
    let backend = backend().service("api", FakeService::healthy_after(ms(5)).fault_revert_fails());
    let result = run(&with_stack(MEMORY), &backend).await;
    assert_eq!(faults(&result), (vec![true], vec![false]));
    match &result.error {
        Some(EngineError::Step { step, reason }) => {
            assert_eq!(step, "squeeze api");
            assert!(reason.contains("reverting `memory`"), "{reason}");
        }
        other => panic!("expected a step error, got {other:?}"),
    }
    assert_eq!(result.status, RunStatus::Aborted);
    // The instance that carried the fault is gone with the scope.
    assert_clean(&backend);
}

#[tokio::test]
async fn a_partition_cuts_the_service_off_until_it_is_reverted() {
    let backend = backend();
    let scenario = with_stack(
        "steps:
  - name: cut
    parallel:
      - name: cut api off
        partition: { service: api, for: 60ms }
      - name: probe during
        delay: 20ms
        probe: { http: { service: api, port: 8080, path: /orders }, timeout: 30ms }
  - name: probe after
    probe: { http: { service: api, port: 8080, path: /orders } }
",
    );
    let result = run(&scenario, &backend).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    let probe = |name: &str| {
        result.events.iter().find_map(|e| match &e.kind {
            EventKind::ProbeResult { probe, ok, .. } if probe == name => Some(*ok),
            _ => None,
        })
    };
    assert_eq!(probe("probe during"), Some(false));
    assert_eq!(probe("probe after"), Some(true));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_fault_on_every_replica_is_reverted_on_every_replica() {
    let backend = backend();
    let scenario = scenario(
        "name: replicas
stack:
  services:
    api:
      image: api:1.0
      ports: [8080]
      replicas: 3
      health: { http: { port: 8080, path: /health }, interval: 10ms }
steps:
  - name: squeeze all
    cpu: { service: api, cores: 0.1, target: all, for: 20ms }
",
    );
    let result = run(&scenario, &backend).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(faults(&result), (vec![true; 3], vec![true; 3]));
    assert_clean(&backend);
}

fn fault_applied(event: &Event) -> bool {
    matches!(&event.kind, EventKind::FaultApplied { ok: true, .. })
}

#[tokio::test]
async fn the_first_interrupt_still_reverts_a_fault() {
    let backend = backend();
    let signals = Signals::default();
    let interrupt = signals.interrupt.clone();
    let scenario = with_stack(
        "steps:\n  - name: squeeze api\n    memory: { service: api, limit: 64MiB, for: 5s }\n",
    );
    let result = run_with(
        &scenario,
        &backend,
        &signals,
        Some(on_first(fault_applied, move || interrupt.cancel())),
    )
    .await;
    assert_eq!(result.status, RunStatus::Interrupted);
    assert_eq!(faults(&result), (vec![true], vec![true]));
    assert_clean(&backend);
}

#[tokio::test]
async fn the_second_interrupt_leaves_the_fault_to_teardown() {
    let backend = backend();
    let signals = Signals::default();
    let both = signals.clone();
    let scenario = with_stack(
        "steps:\n  - name: squeeze api\n    memory: { service: api, limit: 64MiB, for: 5s }\n",
    );
    let listener = on_first(fault_applied, move || {
        both.interrupt.cancel();
        both.kill_fast.cancel();
    });
    let result = run_with(&scenario, &backend, &signals, Some(listener)).await;
    assert_eq!(result.status, RunStatus::Interrupted);
    assert_eq!(faults(&result), (vec![true], vec![]));
    // Forced teardown removed the faulted instance, and the fault with it.
    assert_clean(&backend);
}
