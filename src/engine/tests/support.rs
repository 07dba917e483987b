//! Building scenarios from YAML and reading the typed results of a run.

use std::path::Path;
use std::time::Duration;

use crate::backend::fake::FakeBackend;
use crate::checks::{CheckStatus, Verdict};
use crate::engine::{RunOptions, RunResult, Signals};
use crate::journal::{Event, EventKind, Listener, Outcome, UpgradeStage};
use crate::scenario::model::Scenario;

pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A scenario from YAML (validated as a file would be); panics with the diagnostics if invalid.
pub fn scenario(yaml: &str) -> Scenario {
    match crate::scenario::parse(yaml, Path::new("/fake/scenario.yaml")) {
        Ok(scenario) => scenario,
        Err(invalid) => {
            let messages: Vec<String> = invalid
                .diagnostics
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect();
            panic!("invalid test scenario: {messages:#?}\n{yaml}")
        }
    }
}

/// The stack most tests use: `db` (exec health, backup/restore hooks) and `api` (HTTP health on
/// 8080, depends on db), both checked every 10 ms. `extra` is appended at the top level
/// (`traffic`, `steps`, `expect`, ...).
pub fn with_stack(extra: &str) -> Scenario {
    scenario(&format!("{STACK}{extra}"))
}

pub const STACK: &str = "name: fake-test
stack:
  services:
    db:
      image: db:15
      ports: [5432]
      health: { exec: [pg_isready], interval: 10ms, timeout: 100ms }
      backup: [firedrill-backup]
      restore: [firedrill-restore]
      startup-timeout: 500ms
    api:
      image: api:1.0
      ports: [8080]
      health: { http: { port: 8080, path: /health }, interval: 10ms, timeout: 100ms }
      startup-timeout: 500ms
      depends-on: [db]
";

/// Every service ready 5 ms after its start.
pub fn backend() -> FakeBackend {
    FakeBackend::new().default_service(crate::backend::fake::FakeService::healthy_after(ms(5)))
}

pub async fn run(scenario: &Scenario, backend: &FakeBackend) -> RunResult {
    run_with(scenario, backend, &Signals::default(), None).await
}

pub async fn run_with(
    scenario: &Scenario,
    backend: &FakeBackend,
    signals: &Signals,
    listener: Option<Listener>,
) -> RunResult {
    let options = RunOptions { seed: Some(7), ..RunOptions::default() };
    let run = crate::engine::run(scenario, backend, &options, signals, listener);
    tokio::time::timeout(Duration::from_secs(10), run).await.expect("the run ends")
}

/// The stages recorded for upgrade step `step`, in order, with their `ok`.
pub fn stages(result: &RunResult, step: &str) -> Vec<(UpgradeStage, bool)> {
    result
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Upgrade { step: s, stage, ok, .. } if s == step => Some((*stage, *ok)),
            _ => None,
        })
        .collect()
}

/// The detail of the first `stage` of `step`.
pub fn stage_detail(result: &RunResult, step: &str, wanted: UpgradeStage) -> String {
    result
        .events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::Upgrade { step: s, stage, detail, .. } if s == step && *stage == wanted => {
                Some(detail.clone().unwrap_or_default())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no `{wanted:?}` stage for `{step}`"))
}

/// The bodies of the versions observed for `step` at `moment`.
pub fn versions(result: &RunResult, step: &str, moment: &str) -> Vec<(bool, String)> {
    result
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::VersionObserved { step: s, moment: m, body, ok, .. }
                if s == step && m == moment =>
            {
                Some((*ok, body.clone()))
            }
            _ => None,
        })
        .collect()
}

/// How step `step` ended.
pub fn step_end(result: &RunResult, step: &str) -> Option<(Outcome, Option<String>)> {
    result.events.iter().find_map(|event| match &event.kind {
        EventKind::StepEnded { step: s, outcome, error, .. } if s == step => {
            Some((*outcome, error.clone()))
        }
        _ => None,
    })
}

/// Whether step `step` started.
pub fn step_started(result: &RunResult, step: &str) -> bool {
    result
        .events
        .iter()
        .any(|event| matches!(&event.kind, EventKind::StepStarted { step: s, .. } if s == step))
}

/// Each verdict's name and status, with what it observed (for failure messages).
pub fn statuses(result: &RunResult) -> Vec<(String, CheckStatus, String)> {
    result
        .verdicts
        .iter()
        .map(|v| (v.name.clone(), v.status, format!("{} / {}", v.summary, v.observed)))
        .collect()
}

pub fn all_passed(verdicts: &[Verdict]) -> bool {
    !verdicts.is_empty() && verdicts.iter().all(|v| v.status == CheckStatus::Passed)
}

/// Events of one kind, through a filter.
pub fn count(result: &RunResult, wanted: impl Fn(&EventKind) -> bool) -> usize {
    result.events.iter().filter(|event| wanted(&event.kind)).count()
}

/// The run tore down once and left nothing behind.
#[track_caller]
pub fn assert_clean(backend: &FakeBackend) {
    let left = backend.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(backend.shutdowns().len(), 1, "shutdowns: {:?}", backend.shutdowns());
}

/// A listener that calls `action` once, at the first event `when` accepts.
pub fn on_first(
    when: impl Fn(&Event) -> bool + Send + Sync + 'static,
    action: impl Fn() + Send + Sync + 'static,
) -> Listener {
    let done = std::sync::atomic::AtomicBool::new(false);
    Box::new(move |event| {
        if when(event) && !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            action();
        }
    })
}
