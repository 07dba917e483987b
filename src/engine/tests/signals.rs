//! Ctrl-C: the first signal undoes what is undone quickly (a `for`), the second skips it.

use super::support::*;
use crate::backend::fake::FakeService;
use crate::engine::Signals;
use crate::journal::{Event, EventKind};
use crate::report::RunStatus;

fn paused_for_long() -> crate::scenario::model::Scenario {
    with_stack(
        "steps:
  - name: freeze api
    pause: { service: api, for: 5s }
  - name: after
    wait: 10ms
",
    )
}

fn pause_applied(event: &Event) -> bool {
    matches!(&event.kind, EventKind::ContainerAction { action, undo: false, ok: true, .. } if action == "pause")
}

fn undo_actions(result: &crate::engine::RunResult) -> Vec<(String, bool)> {
    result
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ContainerAction { action, undo: true, ok, .. } => {
                Some((action.clone(), *ok))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_first_interrupt_undoes_a_pause_and_tears_down_gracefully() {
    let backend = backend();
    let signals = Signals::default();
    let interrupt = signals.interrupt.clone();
    let listener = on_first(pause_applied, move || interrupt.cancel());
    let result = run_with(&paused_for_long(), &backend, &signals, Some(listener)).await;
    assert_eq!(result.status, RunStatus::Interrupted);
    assert_eq!(undo_actions(&result), [("unpause".to_owned(), true)]);
    assert!(!step_started(&result, "after"));
    assert!(result.error.is_none(), "{:?}", result.error);
    assert!(backend.operations().contains(&"unpause api".to_owned()));
    assert_clean(&backend);
    assert!(backend.shutdowns()[0].graceful);
}

#[tokio::test]
async fn the_second_interrupt_skips_the_undo_and_forces_teardown() {
    let backend = backend();
    let signals = Signals::default();
    let both = signals.clone();
    let listener = on_first(pause_applied, move || {
        both.interrupt.cancel();
        both.kill_fast.cancel();
    });
    let result = run_with(&paused_for_long(), &backend, &signals, Some(listener)).await;
    assert_eq!(result.status, RunStatus::Interrupted);
    assert!(undo_actions(&result).is_empty(), "{:?}", undo_actions(&result));
    assert!(!backend.operations().contains(&"unpause api".to_owned()));
    assert_eq!(count(&result, |k| matches!(k, EventKind::Interrupted { second: true })), 1);
    // Forced, and still nothing left.
    assert_clean(&backend);
    assert!(!backend.shutdowns()[0].graceful);
}

#[tokio::test]
async fn an_interrupt_during_bring_up_stops_waiting_and_tears_down() {
    let backend = backend().service("api", FakeService::healthy_after(ms(5_000)));
    let signals = Signals::default();
    let interrupt = signals.interrupt.clone();
    let listener = on_first(
        |e| matches!(&e.kind, EventKind::ServiceStarted { service, .. } if service == "api"),
        move || interrupt.cancel(),
    );
    let result = run_with(&paused_for_long(), &backend, &signals, Some(listener)).await;
    assert_eq!(result.status, RunStatus::Interrupted);
    assert!(result.error.is_none());
    assert!(!step_started(&result, "freeze api"));
    assert_clean(&backend);
}

#[tokio::test]
async fn an_interrupt_during_an_upgrade_leaves_nothing_behind() {
    let backend = backend().image("api:2.0", FakeService::healthy_after(ms(5_000)));
    let signals = Signals::default();
    let interrupt = signals.interrupt.clone();
    let listener = on_first(
        |e| {
            matches!(
                &e.kind,
                EventKind::Upgrade { stage: crate::journal::UpgradeStage::Started, .. }
            )
        },
        move || interrupt.cancel(),
    );
    let scenario = with_stack(
        "steps:
  - name: upgrade api
    upgrade: { service: api, image: api:2.0, strategy: blue-green, deadline: 5s }
",
    );
    let result = run_with(&scenario, &backend, &signals, Some(listener)).await;
    assert_eq!(result.status, RunStatus::Interrupted);
    assert_clean(&backend);
}
