//! Bring-up, steady state and teardown of a stack that starts (or does not).

use super::support::*;
use crate::backend::BackendErrorKind;
use crate::backend::fake::{FakeBackend, FakeService};
use crate::checks::CheckStatus;
use crate::engine::EngineError;
use crate::journal::{EventKind, Outcome, Phase};
use crate::report::RunStatus;

const STEADY: &str = "steady-state:
  - name: api answers
    http: { service: api, port: 8080, path: /orders, status: 200 }
  - name: api reports 1.0
    http: { service: api, port: 8080, path: /version, body-contains: '\"version\":\"1.0\"' }
  - name: db accepts connections
    tcp: { service: db, port: 5432, connect-is-enough: true }
expect:
  - steady-state: before
  - steady-state: after
";

#[tokio::test]
async fn a_healthy_stack_completes_and_tears_down() {
    let backend = backend();
    let result = run(&with_stack(STEADY), &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    assert!(result.error.is_none());
    assert!(all_passed(&result.verdicts), "{:?}", statuses(&result));
    assert_eq!(
        count(&result, |k| matches!(k, EventKind::ServiceReady { .. })),
        2,
        "both services became ready"
    );
    assert_clean(&backend);
    assert!(backend.shutdowns()[0].graceful);
}

#[tokio::test]
async fn a_wrong_version_fails_the_steady_state_check() {
    let backend = backend().service("api", FakeService::healthy_after(ms(5)).version("0.9"));
    let result = run(&with_stack(STEADY), &backend).await;
    assert_eq!(result.status, RunStatus::Deviated);
    assert!(result.verdicts.iter().all(|v| v.status == CheckStatus::Failed));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_service_that_never_becomes_healthy_fails_bring_up() {
    let backend = backend().service("api", FakeService::never_healthy());
    let result = run(&with_stack(STEADY), &backend).await;
    assert_eq!(result.status, RunStatus::Aborted);
    match &result.error {
        Some(EngineError::Startup { service, reason, .. }) => {
            assert_eq!(service, "api");
            assert!(reason.contains("not healthy within 500ms"), "{reason}");
        }
        other => panic!("expected a startup error, got {other:?}"),
    }
    // Nothing after bring-up ran.
    assert_eq!(count(&result, |k| matches!(k, EventKind::ProbeResult { .. })), 0);
    assert!(result.verdicts.iter().all(|v| v.status == CheckStatus::NotEvaluated));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_service_that_dies_during_bring_up_carries_its_logs() {
    let backend =
        backend().service("api", FakeService::crash_on_start(3).log("panic: no config file"));
    let result = run(&with_stack(STEADY), &backend).await;
    match &result.error {
        Some(EngineError::Startup { service, reason, logs }) => {
            assert_eq!(service, "api");
            assert!(reason.contains("exited with code 3"), "{reason}");
            assert!(logs.contains("crashed on start"), "{logs}");
        }
        other => panic!("expected a startup error, got {other:?}"),
    }
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ServiceLogs { service, lines } if service == "api" && lines.contains("exited with code 3"))));
    assert_eq!(result.status, RunStatus::Aborted);
    assert_clean(&backend);
}

#[tokio::test]
async fn a_crash_before_ready_is_an_exit_not_a_timeout() {
    let backend =
        backend().service("api", FakeService::healthy_after(ms(2_000)).crash_after(ms(20), 1));
    let result = run(&with_stack(STEADY), &backend).await;
    match &result.error {
        Some(EngineError::Startup { reason, .. }) => {
            assert!(reason.contains("exited with code 1"), "{reason}");
        }
        other => panic!("expected a startup error, got {other:?}"),
    }
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ContainerEvent { service, action, exit_code: Some(1) } if service == "api" && action == "die")));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_refused_start_is_a_backend_error_and_later_services_never_start() {
    let backend = backend().service("db", FakeService::start_fails("no space left on device"));
    let result = run(&with_stack(STEADY), &backend).await;
    match &result.error {
        Some(EngineError::Backend(error)) => {
            assert!(error.message.contains("no space left on device"), "{}", error.message);
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(!backend.operations().iter().any(|op| op.starts_with("start api")));
    assert_eq!(result.status, RunStatus::Aborted);
    assert_clean(&backend);
}

#[tokio::test]
async fn a_dependency_that_never_gets_ready_keeps_its_dependents_down() {
    let backend = backend().service("db", FakeService::never_healthy());
    let result = run(&with_stack(STEADY), &backend).await;
    assert!(matches!(&result.error, Some(EngineError::Startup { service, .. }) if service == "db"));
    assert!(backend.operations().iter().any(|op| op.starts_with("start db")));
    assert!(!backend.operations().iter().any(|op| op.starts_with("start api")));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_missing_image_stops_the_run_before_anything_starts() {
    let backend = backend().missing_image("api:1.0");
    let result = run(&with_stack(STEADY), &backend).await;
    match &result.error {
        Some(EngineError::Backend(error)) => assert_eq!(error.kind, BackendErrorKind::ImageMissing),
        other => panic!("expected a missing image, got {other:?}"),
    }
    assert!(backend.operations().is_empty(), "{:?}", backend.operations());
    // No scope was opened: nothing to shut down, nothing left.
    assert!(backend.shutdowns().is_empty());
    assert!(backend.leftovers().is_empty());
    let prepare_failed = result.events.iter().any(|e| {
        matches!(
            &e.kind,
            EventKind::PhaseEnded { phase: Phase::Prepare, outcome: Outcome::Failed, .. }
        )
    });
    assert!(prepare_failed);
}

#[tokio::test]
async fn a_missing_upgrade_target_fails_before_the_stack_starts() {
    let backend = backend().missing_image("api:2.0");
    let scenario = with_stack(
        "steps:
  - name: upgrade api
    upgrade: { service: api, image: api:2.0 }
",
    );
    let result = run(&scenario, &backend).await;
    assert!(
        matches!(&result.error, Some(EngineError::Backend(e)) if e.kind == BackendErrorKind::ImageMissing)
    );
    assert_eq!(backend.images_ensured(), ["db:15", "api:1.0", "api:2.0"]);
    assert!(backend.operations().is_empty());
}

#[tokio::test]
async fn replicas_tcp_and_log_health_checks_all_come_up() {
    let scenario = scenario(
        "name: shapes
stack:
  services:
    cache:
      image: cache:7
      ports: [6379]
      health: { tcp: { port: 6379, send: \"PING\\r\\n\", expect: \"+PONG\" }, interval: 10ms }
    worker:
      image: worker:1
      health: { log: 'listening on queue', interval: 10ms }
    web:
      image: web:1.0
      ports: [80]
      replicas: 3
      health: { http: { port: 80, path: /health }, interval: 10ms }
steady-state:
  - name: cache answers
    tcp: { service: cache, port: 6379, send: \"PING\\r\\n\", expect: \"+PONG\" }
  - name: web answers
    http: { service: web, port: 80, path: / }
expect:
  - steady-state: before
",
    );
    let backend =
        backend().service("worker", FakeService::healthy_after(ms(5)).log("listening on queue"));
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    for key in ["web.1", "web.2", "web.3"] {
        assert!(backend.operations().contains(&format!("start {key} web:1.0")), "{key}");
    }
    assert_clean(&backend);
}

#[tokio::test]
async fn a_failing_shutdown_is_the_run_error() {
    let backend = backend().shutdown_fails();
    let result = run(&with_stack(STEADY), &backend).await;
    assert!(all_passed(&result.verdicts));
    assert!(matches!(&result.error, Some(EngineError::Backend(_))), "{:?}", result.error);
    assert_eq!(result.status, RunStatus::Aborted);
    let teardown_failed = result.events.iter().any(|e| {
        matches!(
            &e.kind,
            EventKind::PhaseEnded { phase: Phase::Teardown, outcome: Outcome::Failed, .. }
        )
    });
    assert!(teardown_failed);
    assert!(!backend.shutdowns()[0].ok);
}

#[tokio::test]
async fn the_default_fake_model_runs_a_plain_scenario() {
    // What `--backend fake` runs: every service ready after 50 ms, 200 everywhere, its tag as
    // version.
    let backend = FakeBackend::new();
    let result = run(&with_stack(STEADY), &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    assert_clean(&backend);
}

#[tokio::test]
async fn a_dependency_ready_before_its_dependent_asks_still_lets_it_start() {
    // `web` waits for `slow` first; `quick` is ready long before `web` asks about it. A readiness
    // published before anyone listened must still count (it once did not: `web` waited forever).
    let scenario = scenario(
        "name: late-subscriber
stack:
  services:
    slow:
      image: slow:1
      ports: [1]
      health: { tcp: { port: 1, connect-is-enough: true }, interval: 10ms, timeout: 100ms }
      startup-timeout: 2s
    quick:
      image: quick:1
      ports: [2]
      health: { tcp: { port: 2, connect-is-enough: true }, interval: 10ms, timeout: 100ms }
      startup-timeout: 2s
    web:
      image: web:1
      ports: [3]
      health: { tcp: { port: 3, connect-is-enough: true }, interval: 10ms, timeout: 100ms }
      startup-timeout: 2s
      depends-on: [slow, quick]
",
    );
    let backend = backend().service("slow", FakeService::healthy_after(ms(200)));
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    let ready: Vec<&str> = result
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ServiceReady { service, .. } => Some(service.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ready, ["quick", "slow", "web"]);
    assert_clean(&backend);
}
