//! Rolling upgrades over three replicas.

use super::support::*;
use crate::backend::fake::FakeService;
use crate::journal::UpgradeStage as S;
use crate::report::RunStatus;

fn rolling(options: &str, expect: &str) -> crate::scenario::model::Scenario {
    scenario(&format!(
        "name: rolling
stack:
  services:
    api:
      image: api:1.0
      ports: [8080]
      replicas: 3
      health: {{ http: {{ port: 8080, path: /health }}, interval: 10ms, timeout: 100ms }}
      startup-timeout: 500ms
traffic:
  orders:
    http: {{ service: api, port: 8080, path: /orders }}
    rate: 100/s
    timeout: 100ms
steps:
  - name: upgrade api
    upgrade:
      service: api
      image: api:2.0
      strategy: rolling
      deadline: 300ms
      version: {{ port: 8080, path: /version }}
{options}
expect:
  - {expect}: upgrade api
"
    ))
}

#[tokio::test]
async fn a_rolling_upgrade_replaces_one_replica_at_a_time() {
    let backend = backend();
    let mut scenario = rolling("      max-unavailable: 1", "upgrade-succeeds");
    let slo = rolling(
        "",
        "slo: { traffic: orders, availability: 100%, during: upgrade api }\n  - upgrade-succeeds",
    );
    scenario.expect = slo.expect;
    // A request that a loaded 2-core machine delays is not a lost one.
    scenario.traffic["orders"].timeout = ms(300);
    let result = run(&scenario, &backend).await;
    let failed: Vec<String> = result
        .events
        .iter()
        .filter(|e| matches!(&e.kind, crate::journal::EventKind::TrafficRequest { ok: false, .. }))
        .map(|e| format!("{:?}", e.kind))
        .collect();
    assert_eq!(
        result.status,
        RunStatus::Completed,
        "{:?} {:?} {failed:#?}",
        result.error,
        statuses(&result)
    );
    let stages = stages(&result, "upgrade api");
    assert_eq!(stages.iter().filter(|s| **s == (S::Switched, true)).count(), 3, "{stages:?}");
    assert_eq!(stages.iter().filter(|s| **s == (S::Healthy, true)).count(), 3, "{stages:?}");
    assert_eq!(
        versions(&result, "upgrade api", "after-switch"),
        [(true, r#"{"version":"2.0"}"#.into())]
    );
    // Each replica left rotation before it was replaced, and came back after.
    let ops = backend.operations();
    for key in ["api.1", "api.2", "api.3"] {
        let drain = ops.iter().position(|o| *o == format!("drain {key}")).expect("drained");
        let start = ops.iter().position(|o| *o == format!("start {key} api:2.0")).expect("started");
        let admit = ops.iter().position(|o| *o == format!("admit {key}")).expect("admitted");
        assert!(drain < start && start < admit, "{ops:?}");
    }
    assert_clean(&backend);
}

#[tokio::test]
async fn a_rolling_release_that_crashes_stops_after_its_first_replica() {
    let backend = backend().image("api:2.0", FakeService::crash_on_start(2));
    let result = run(&rolling("", "upgrade-rolled-back"), &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    let ops = backend.operations();
    assert!(ops.contains(&"start api.1 api:2.0".to_owned()));
    assert!(!ops.contains(&"start api.2 api:2.0".to_owned()), "{ops:?}");
    // Only the replaced replica came back.
    assert!(ops.contains(&"start api.1 api:1.0".to_owned()));
    assert_eq!(ops.iter().filter(|o| o.starts_with("start api.2")).count(), 1, "{ops:?}");
    assert_eq!(
        versions(&result, "upgrade api", "after-rollback"),
        [(true, r#"{"version":"1.0"}"#.into())]
    );
    assert_clean(&backend);
}

#[tokio::test]
async fn a_rolling_release_that_fails_its_watch_is_rolled_back_replica_by_replica() {
    let backend =
        backend().image("api:2.0", FakeService::healthy_after(ms(5)).status("/orders", 500));
    let scenario = rolling(
        "      max-unavailable: 2\n      watch: { for: 60ms, traffic: orders, availability: 99% }",
        "upgrade-rolled-back",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert!(stages(&result, "upgrade api").contains(&(S::Watch, false)));
    let ops = backend.operations();
    for key in ["api.1", "api.2", "api.3"] {
        assert!(ops.contains(&format!("start {key} api:1.0")), "{key}: {ops:?}");
    }
    assert_clean(&backend);
}

#[tokio::test]
async fn a_rolling_release_whose_replica_cannot_start_is_rolled_back() {
    let backend = backend().image("api:2.0", FakeService::start_fails("pull access denied"));
    let result = run(&rolling("", "upgrade-rolled-back"), &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert!(stage_detail(&result, "upgrade api", S::Switched).contains("pull access denied"));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_rolling_rollback_that_cannot_bring_the_old_version_back_fails() {
    // The old image refuses to start again after the upgrade replaced it.
    let backend = backend().image("api:2.0", FakeService::crash_on_start(1));
    let scenario = rolling("", "upgrade-rolled-back");
    let listener = {
        let backend = backend.clone();
        on_first(
            |event| {
                matches!(&event.kind, crate::journal::EventKind::Upgrade { stage: S::Failed, .. })
            },
            move || {
                // From now on, 1.0 fails too.
                let _ = backend.clone().image("api:1.0", FakeService::crash_on_start(5));
            },
        )
    };
    let result =
        run_with(&scenario, &backend, &crate::engine::Signals::default(), Some(listener)).await;
    assert_eq!(stages(&result, "upgrade api").last(), Some(&(S::RolledBack, false)));
    assert!(stage_detail(&result, "upgrade api", S::RolledBack).contains("did not come back"));
    assert_eq!(result.status, RunStatus::Deviated);
    assert_clean(&backend);
}

/// A replacement the backend takes but never carries out (Swarm created no task for the update)
/// says nothing about the release: the run stops with an error (exit 2), and no upgrade stage
/// is recorded as the release's failure, so no check judges it.
#[tokio::test]
async fn a_replacement_the_backend_never_carries_out_stops_the_run_without_judging_the_release() {
    let stalled = "Swarm created no task for the update";
    let backend = backend().image("api:2.0", FakeService::start_stalls(stalled));
    let result = run(&rolling("", "upgrade-rolled-back"), &backend).await;
    assert_eq!(result.status, RunStatus::Aborted, "{:?}", statuses(&result));
    let error = result.error.as_ref().expect("an error").to_string();
    assert!(error.contains("upgrade api") && error.contains(stalled), "{error}");
    let stages = stages(&result, "upgrade api");
    assert!(!stages.iter().any(|(_, ok)| !ok), "nothing failed in the release's name: {stages:?}");
    assert!(!stages.iter().any(|(stage, _)| *stage == S::RollbackStarted), "{stages:?}");
    assert_clean(&backend);
}

/// The same during a rollback: the previous version's start never carried out is not a failed
/// rollback (`restored` would blame the release), it stops the run with an error.
#[tokio::test]
async fn a_rollback_the_backend_never_carries_out_stops_the_run_instead_of_failing_the_rollback() {
    let backend = backend().image("api:2.0", FakeService::crash_on_start(1));
    let scenario = rolling("", "upgrade-rolled-back");
    let listener = {
        let backend = backend.clone();
        on_first(
            |event| {
                matches!(&event.kind, crate::journal::EventKind::Upgrade { stage: S::Failed, .. })
            },
            move || {
                // From now on, starting 1.0 stalls.
                let _ = backend.clone().image("api:1.0", FakeService::start_stalls("no task"));
            },
        )
    };
    let result =
        run_with(&scenario, &backend, &crate::engine::Signals::default(), Some(listener)).await;
    assert_eq!(result.status, RunStatus::Aborted, "{:?}", statuses(&result));
    let error = result.error.as_ref().expect("an error").to_string();
    assert!(error.contains("rollback") && error.contains("no task"), "{error}");
    let stages = stages(&result, "upgrade api");
    assert_eq!(stages.last(), Some(&(S::RollbackStarted, true)), "not judged: {stages:?}");
    assert_clean(&backend);
}

#[tokio::test]
async fn each_replica_is_stopped_with_the_services_own_grace_period() {
    let backend = backend();
    let mut scenario = rolling("", "upgrade-succeeds");
    let grace = std::time::Duration::from_secs(45);
    scenario.stack.services.get_mut("api").expect("api").container.stop_grace_period = Some(grace);
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    let graces = backend.stop_graces();
    let keys: Vec<&str> = graces.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, ["api.1", "api.2", "api.3"]);
    assert!(graces.iter().all(|(_, g)| *g == grace), "{graces:?}");
}
