//! Blue-green upgrades: the switch, failures before and after it, and switching back.

use super::recreate::upgrade;
use super::support::*;
use crate::backend::fake::FakeService;
use crate::checks::CheckStatus;
use crate::journal::UpgradeStage as S;
use crate::report::RunStatus;

const BLUE_GREEN: &str = "      strategy: blue-green";

fn options(more: &str) -> String {
    format!("{BLUE_GREEN}\n{more}")
}

#[tokio::test]
async fn a_blue_green_upgrade_switches_without_losing_a_request() {
    let backend = backend();
    let mut scenario = upgrade(BLUE_GREEN, "upgrade-succeeds");
    let slo = with_stack(
        "traffic:
  orders:
    http: { service: api, port: 8080, path: /orders }
    rate: 100/s
    timeout: 100ms
steps:
  - name: upgrade api
    wait: 1ms
expect:
  - slo: { traffic: orders, availability: 100%, during: upgrade api }
",
    );
    scenario.expect.extend(slo.expect);
    // A request that a loaded 2-core machine delays is not a lost one.
    scenario.traffic["orders"].timeout = ms(300);
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?} {:?}", result.error, statuses(&result));
    assert_eq!(
        stages(&result, "upgrade api"),
        [(S::Started, true), (S::Healthy, true), (S::Switched, true), (S::Completed, true)]
    );
    assert_eq!(
        versions(&result, "upgrade api", "after-switch"),
        [(true, r#"{"version":"2.0"}"#.into())]
    );
    let ops = backend.operations();
    let order = [
        "start api.green api:2.0",
        "offer api api.green",
        "promote api api.green",
        "withdraw api.blue",
        "retire api.blue",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|op| {
            ops.iter().position(|o| o == op).unwrap_or_else(|| panic!("no `{op}` in {ops:?}"))
        })
        .collect();
    assert!(positions.is_sorted(), "{ops:?}");
    // The old version was never stopped before the switch.
    assert!(!ops.contains(&"stop api".to_owned()), "{ops:?}");
    assert_clean(&backend);
}

#[tokio::test]
async fn a_green_that_never_gets_healthy_is_removed_and_blue_keeps_serving() {
    let backend = backend().image("api:2.0", FakeService::never_healthy());
    let result = run(&upgrade(BLUE_GREEN, "upgrade-rolled-back"), &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert_eq!(
        stages(&result, "upgrade api"),
        [
            (S::Started, true),
            (S::Healthy, false),
            (S::Failed, false),
            (S::RollbackStarted, true),
            (S::RolledBack, true)
        ]
    );
    assert!(stage_detail(&result, "upgrade api", S::RolledBack).contains("kept serving"));
    let ops = backend.operations();
    assert!(ops.contains(&"retire api.green".to_owned()), "{ops:?}");
    assert!(!ops.iter().any(|op| op.starts_with("promote")), "{ops:?}");
    assert!(!ops.contains(&"stop api".to_owned()), "{ops:?}");
    assert_clean(&backend);
}

#[tokio::test]
async fn a_green_that_crashes_fails_fast_and_is_removed() {
    let backend = backend().image("api:2.0", FakeService::crash_on_start(70));
    let result = run(&upgrade(BLUE_GREEN, "upgrade-rolled-back"), &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert!(stage_detail(&result, "upgrade api", S::Healthy).contains("exited with code 70"));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_green_that_cannot_start_fails_at_the_switch() {
    let backend = backend().image("api:2.0", FakeService::start_fails("port already allocated"));
    let result = run(&upgrade(BLUE_GREEN, "upgrade-rolled-back"), &backend).await;
    assert_eq!(stages(&result, "upgrade api")[1], (S::Switched, false));
    assert!(stage_detail(&result, "upgrade api", S::Switched).contains("port already allocated"));
    assert_eq!(result.verdicts[0].status, CheckStatus::Passed);
    assert_clean(&backend);
}

#[tokio::test]
async fn a_green_that_fails_its_watch_is_switched_back() {
    let backend =
        backend().image("api:2.0", FakeService::healthy_after(ms(5)).status("/orders", 503));
    let scenario = upgrade(
        &options("      watch: { for: 60ms, traffic: orders, availability: 99% }"),
        "upgrade-rolled-back",
    );
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    let stages = stages(&result, "upgrade api");
    assert!(
        stages.contains(&(S::Switched, true)) && stages.contains(&(S::Watch, false)),
        "{stages:?}"
    );
    assert!(
        stage_detail(&result, "upgrade api", S::RolledBack).contains("switched back to api:1.0")
    );
    assert_eq!(
        versions(&result, "upgrade api", "after-rollback"),
        [(true, r#"{"version":"1.0"}"#.into())]
    );
    let ops = backend.operations();
    assert!(ops.contains(&"promote api api.blue".to_owned()), "{ops:?}");
    assert!(ops.contains(&"retire api.green".to_owned()), "{ops:?}");
    assert_clean(&backend);
}

#[tokio::test]
async fn a_blue_green_migration_failure_never_starts_green() {
    let backend =
        backend().image("api:2.0", FakeService::healthy_after(ms(5)).one_shot("migrate", 9, ms(0)));
    let scenario =
        upgrade(&options("      migrate: { command: [migrate] }"), "upgrade-rolled-back");
    let result = run(&scenario, &backend).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert!(stages(&result, "upgrade api").contains(&(S::Migration, false)));
    assert!(!backend.operations().iter().any(|op| op.starts_with("start api.green")));
    assert_clean(&backend);
}

#[tokio::test]
async fn a_blue_green_rollback_whose_restore_fails_is_reported_failed() {
    let backend = backend()
        .image("api:2.0", FakeService::never_healthy())
        .service("db", FakeService::healthy_after(ms(5)).exec("firedrill-restore", 1, "no backup"));
    let scenario = upgrade(&options("      backup: db"), "upgrade-rolled-back");
    let result = run(&scenario, &backend).await;
    assert_eq!(stages(&result, "upgrade api").last(), Some(&(S::RolledBack, false)));
    assert_eq!(result.verdicts[0].status, CheckStatus::Failed);
    assert_eq!(result.status, RunStatus::Deviated);
    assert_clean(&backend);
}
