//! Recreate upgrades that succeed, and that fail at each stage with their rollback.

use super::support::*;
use crate::backend::fake::FakeService;
use crate::checks::CheckStatus;
use crate::engine::EngineError;
use crate::journal::{EventKind, Outcome, UpgradeStage as S};
use crate::report::RunStatus;

/// One upgrade of `api` to 2.0 with `options` (extra keys of the `upgrade:` mapping), then a
/// 20 ms wait; `upgrade-succeeds` or `upgrade-rolled-back` expected.
pub fn upgrade(options: &str, expect: &str) -> crate::scenario::model::Scenario {
    with_stack(&format!(
        "traffic:
  orders:
    http: {{ service: api, port: 8080, path: /orders }}
    rate: 100/s
    timeout: 100ms
steps:
  - name: upgrade api
    upgrade:
      service: api
      image: api:2.0
      deadline: 300ms
      version: {{ port: 8080, path: /version }}
{options}
  - name: after
    wait: 20ms
expect:
  - {expect}: upgrade api
"
    ))
}

#[tokio::test]
async fn a_recreate_upgrade_succeeds() {
    let backend = backend();
    let result = run(&upgrade("", "upgrade-succeeds"), &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    assert_eq!(
        stages(&result, "upgrade api"),
        [(S::Started, true), (S::Switched, true), (S::Healthy, true), (S::Completed, true)]
    );
    assert_eq!(versions(&result, "upgrade api", "before"), [(true, r#"{"version":"1.0"}"#.into())]);
    assert_eq!(
        versions(&result, "upgrade api", "after-switch"),
        [(true, r#"{"version":"2.0"}"#.into())]
    );
    // The old version was stopped before the new one started.
    let ops = backend.operations();
    let stop = ops.iter().position(|op| op == "stop api").expect("stopped");
    let start = ops.iter().position(|op| op == "start api api:2.0").expect("started");
    assert!(stop < start, "{ops:?}");
    assert_clean(&backend);
}

async fn rolled_back(
    backend: &crate::backend::fake::FakeBackend,
    options: &str,
) -> crate::engine::RunResult {
    let result = run(&upgrade(options, "upgrade-rolled-back"), backend).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    // Back on 1.0, said by the service itself.
    assert_eq!(
        versions(&result, "upgrade api", "after-rollback"),
        [(true, r#"{"version":"1.0"}"#.into())]
    );
    assert_eq!(step_end(&result, "upgrade api").map(|e| e.0), Some(Outcome::Ok));
    assert!(step_started(&result, "after"));
    assert_clean(backend);
    result
}

#[tokio::test]
async fn a_start_that_fails_is_rolled_back() {
    let backend = backend().image("api:2.0", FakeService::start_fails("exec format error"));
    let result = rolled_back(&backend, "").await;
    assert_eq!(
        stages(&result, "upgrade api"),
        [
            (S::Started, true),
            (S::Switched, false),
            (S::Failed, false),
            (S::RollbackStarted, true),
            (S::RolledBack, true)
        ]
    );
    assert!(stage_detail(&result, "upgrade api", S::Failed).contains("exec format error"));
}

#[tokio::test]
async fn a_release_that_crashes_on_start_is_rolled_back() {
    let backend = backend().image("api:2.0", FakeService::crash_on_start(3));
    let result = rolled_back(&backend, "").await;
    assert_eq!(
        stages(&result, "upgrade api"),
        [
            (S::Started, true),
            (S::Switched, true),
            (S::Healthy, false),
            (S::Failed, false),
            (S::RollbackStarted, true),
            (S::RolledBack, true)
        ]
    );
    assert!(stage_detail(&result, "upgrade api", S::Healthy).contains("exited with code 3"));
    // The failed release's last words were kept before it was replaced.
    assert!(result.events.iter().any(|e| matches!(&e.kind,
        EventKind::ServiceLogs { lines, .. } if lines.contains("crashed on start"))));
}

#[tokio::test]
async fn a_release_that_misses_its_health_deadline_is_rolled_back() {
    let backend = backend().image("api:2.0", FakeService::never_healthy());
    let result = rolled_back(&backend, "").await;
    let healthy = stage_detail(&result, "upgrade api", S::Healthy);
    assert!(healthy.contains("not healthy within the 300ms deadline"), "{healthy}");
}

#[tokio::test]
async fn a_failed_migration_before_the_switch_is_rolled_back_with_a_restore() {
    let backend =
        backend().image("api:2.0", FakeService::healthy_after(ms(5)).one_shot("migrate", 2, ms(0)));
    let result = rolled_back(
        &backend,
        "      backup: db\n      migrate: { command: [migrate, up], when: before, deadline: 10s }",
    )
    .await;
    assert_eq!(
        stages(&result, "upgrade api"),
        [
            (S::Started, true),
            (S::Backup, true),
            (S::Migration, false),
            (S::Failed, false),
            (S::RollbackStarted, true),
            (S::Restore, true),
            (S::RolledBack, true)
        ]
    );
    assert!(stage_detail(&result, "upgrade api", S::Migration).contains("exit 2"));
    let ops = backend.operations();
    assert!(ops.contains(&"exec db firedrill-backup".to_owned()), "{ops:?}");
    assert!(ops.contains(&"exec db firedrill-restore".to_owned()), "{ops:?}");
    assert!(ops.contains(&"remove api.migrate".to_owned()), "{ops:?}");
}

#[tokio::test]
async fn a_failed_migration_after_the_switch_is_rolled_back() {
    let backend =
        backend().image("api:2.0", FakeService::healthy_after(ms(5)).one_shot("migrate", 1, ms(5)));
    let result =
        rolled_back(&backend, "      migrate: { command: [migrate], when: after, deadline: 10s }")
            .await;
    assert_eq!(
        stages(&result, "upgrade api")[..5],
        [
            (S::Started, true),
            (S::Switched, true),
            (S::Healthy, true),
            (S::Migration, false),
            (S::Failed, false)
        ]
    );
}

#[tokio::test]
async fn a_migration_past_its_deadline_fails_the_upgrade() {
    let backend = backend()
        .image("api:2.0", FakeService::healthy_after(ms(5)).one_shot("migrate", 0, ms(5_000)));
    let result =
        rolled_back(&backend, "      migrate: { command: [migrate], deadline: 50ms }").await;
    let detail = stage_detail(&result, "upgrade api", S::Migration);
    assert!(detail.contains("still running after its 50ms deadline"), "{detail}");
}

#[tokio::test]
async fn a_release_that_fails_its_watch_gate_is_rolled_back() {
    let backend =
        backend().image("api:2.0", FakeService::healthy_after(ms(5)).status("/orders", 500));
    let result =
        rolled_back(&backend, "      watch: { for: 60ms, traffic: orders, availability: 99% }")
            .await;
    assert_eq!(
        stages(&result, "upgrade api")[..6],
        [
            (S::Started, true),
            (S::Switched, true),
            (S::Healthy, true),
            (S::Watch, false),
            (S::Failed, false),
            (S::RollbackStarted, true),
        ]
    );
    assert!(stage_detail(&result, "upgrade api", S::Failed).contains("SLO gate breached"));
}

#[tokio::test]
async fn a_healthy_release_passes_its_watch_gate() {
    let backend = backend();
    let result = run(
        &upgrade(
            "      watch: { for: 60ms, traffic: orders, availability: 99% }",
            "upgrade-succeeds",
        ),
        &backend,
    )
    .await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    let watch = stage_detail(&result, "upgrade api", S::Watch);
    assert!(watch.contains("(100.0%)"), "{watch}");
    assert_clean(&backend);
}

#[tokio::test]
async fn a_rollback_whose_restore_fails_is_reported_failed() {
    let backend = backend().image("api:2.0", FakeService::crash_on_start(1)).service(
        "db",
        FakeService::healthy_after(ms(5)).exec("firedrill-restore", 4, "restore: disk full"),
    );
    let result = run(&upgrade("      backup: db", "upgrade-rolled-back"), &backend).await;
    let stages = stages(&result, "upgrade api");
    assert!(stages.contains(&(S::Restore, false)), "{stages:?}");
    assert_eq!(stages.last(), Some(&(S::RolledBack, false)));
    assert!(stage_detail(&result, "upgrade api", S::RolledBack).contains("disk full"));
    assert_eq!(result.verdicts[0].status, CheckStatus::Failed);
    assert_eq!(result.status, RunStatus::Deviated);
    assert_clean(&backend);
}

#[tokio::test]
async fn a_rollback_to_a_version_that_lies_fails_restored() {
    // The previous image comes back, but reports another version: `restored` catches it.
    let backend = backend()
        .image("api:2.0", FakeService::crash_on_start(1))
        .service("api", FakeService::healthy_after(ms(5)).version("1.0-rc"));
    let scenario = with_stack(
        "steps:
  - name: upgrade api
    upgrade: { service: api, image: api:2.0, deadline: 300ms, version: { port: 8080, path: /version } }
expect:
  - restored: { service: api, after: upgrade api, within: 1s, version: '\"version\":\"1.0\"' }
",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.verdicts.len(), 1);
    assert_eq!(result.verdicts[0].status, CheckStatus::Failed, "{:?}", result.verdicts[0]);
    assert_eq!(
        versions(&result, "upgrade api", "after-rollback"),
        [(true, r#"{"version":"1.0-rc"}"#.into())]
    );
    assert_clean(&backend);
}

#[tokio::test]
async fn on_failure_abort_stops_the_timeline() {
    let backend = backend().image("api:2.0", FakeService::crash_on_start(1));
    let result = run(&upgrade("      on-failure: abort", "upgrade-succeeds"), &backend).await;
    let (outcome, error) = step_end(&result, "upgrade api").expect("ended");
    assert_eq!(outcome, Outcome::Failed);
    assert!(error.unwrap_or_default().contains("`on-failure` is `abort`"));
    assert!(!step_started(&result, "after"));
    assert!(!stages(&result, "upgrade api").contains(&(S::RollbackStarted, true)));
    assert!(result.error.is_none(), "an abort is a verdict, not a harness error");
    assert_eq!(result.status, RunStatus::Deviated);
    assert_clean(&backend);
}

#[tokio::test]
async fn on_failure_continue_goes_on_without_a_rollback() {
    let backend = backend().image("api:2.0", FakeService::crash_on_start(1));
    let result = run(&upgrade("      on-failure: continue", "upgrade-succeeds"), &backend).await;
    assert_eq!(step_end(&result, "upgrade api").map(|e| e.0), Some(Outcome::Ok));
    assert!(step_started(&result, "after"));
    assert_eq!(stages(&result, "upgrade api").last(), Some(&(S::Failed, false)));
    assert_eq!(result.verdicts[0].status, CheckStatus::Failed);
    assert_clean(&backend);
}

#[tokio::test]
async fn a_rollback_step_restores_a_completed_upgrade() {
    let backend = backend();
    let scenario = with_stack(
        "steps:
  - name: upgrade api
    upgrade: { service: api, image: api:2.0, deadline: 300ms, version: { port: 8080, path: /version } }
  - name: back
    rollback: { service: api }
",
    );
    let result = run(&scenario, &backend).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    let stages = stages(&result, "upgrade api");
    assert_eq!(stages[stages.len() - 2..], [(S::RollbackStarted, true), (S::RolledBack, true)]);
    assert_eq!(
        versions(&result, "upgrade api", "after-rollback"),
        [(true, r#"{"version":"1.0"}"#.into())]
    );
    assert_clean(&backend);
}

#[tokio::test]
async fn a_second_rollback_of_the_same_upgrade_is_a_step_error() {
    let backend = backend();
    let scenario = with_stack(
        "steps:
  - name: upgrade api
    upgrade: { service: api, image: api:2.0, deadline: 300ms }
  - name: back
    rollback: { service: api }
  - name: back again
    rollback: { service: api }
",
    );
    let result = run(&scenario, &backend).await;
    match &result.error {
        Some(EngineError::Step { step, reason }) => {
            assert_eq!(step, "back again");
            assert!(reason.contains("rolled back already"), "{reason}");
        }
        other => panic!("expected a step error, got {other:?}"),
    }
    assert_eq!(result.status, RunStatus::Aborted);
    assert_clean(&backend);
}

#[tokio::test]
async fn a_migration_and_a_backup_that_work_are_stages_of_a_successful_upgrade() {
    // Unscripted: the migration one-shot exits 0, the hooks exit 0.
    let backend = backend();
    let scenario = upgrade(
        "      backup: db\n      migrate: { command: [migrate], when: after, deadline: 10s }",
        "upgrade-succeeds",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert_eq!(
        stages(&result, "upgrade api"),
        [
            (S::Started, true),
            (S::Backup, true),
            (S::Switched, true),
            (S::Healthy, true),
            (S::Migration, true),
            (S::Completed, true)
        ]
    );
    assert!(backend.operations().contains(&"start api.migrate api:2.0".to_owned()));
    assert_clean(&backend);
}

/// `scenario` with `api`'s `stop_grace_period` (what a compose file sets) at 45 s.
fn with_grace(mut scenario: crate::scenario::model::Scenario) -> crate::scenario::model::Scenario {
    let api = scenario.stack.services.get_mut("api").expect("api");
    api.container.stop_grace_period = Some(std::time::Duration::from_secs(45));
    scenario
}

#[tokio::test]
async fn every_upgrade_stop_gives_the_services_own_grace_period() {
    let grace = std::time::Duration::from_secs(45);
    // Recreate: the old version's stop, and the failed release's stop in the rollback.
    let broken = backend().image("api:2.0", FakeService::never_healthy());
    let result = run(&with_grace(upgrade("", "upgrade-rolled-back")), &broken).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    let graces = broken.stop_graces();
    assert!(graces.len() >= 2, "{graces:?}");
    assert!(graces.iter().all(|(_, g)| *g == grace), "{graces:?}");
    // Blue-green: the old version retired after the watch.
    let green = backend();
    let blue_green = upgrade("      strategy: blue-green", "upgrade-succeeds");
    let result = run(&with_grace(blue_green), &green).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    let graces = green.stop_graces();
    assert!(graces.iter().any(|(key, g)| key == "api.blue" && *g == grace), "{graces:?}");
    // Without a grace period of its own, 10 s as before.
    let plain = backend();
    let result = run(&upgrade("", "upgrade-succeeds"), &plain).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.error);
    let graces = plain.stop_graces();
    assert!(!graces.is_empty());
    assert!(graces.iter().all(|(key, g)| key == "api" && g.as_secs() == 10), "{graces:?}");
}
