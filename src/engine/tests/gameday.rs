//! Gameday: `human` steps answered by scripted responders, a desk, or nobody.

use std::sync::Arc;

use super::support::*;
use crate::checks::CheckStatus;
use crate::engine::gameday::{Desk, Gameday};
use crate::engine::{RunOptions, RunResult, Signals};
use crate::journal::EventKind;
use crate::report::RunStatus;
use crate::scenario::gameday::{HttpTarget, ResponderAction, ResponderHttp, Responders, Response};

fn responders(role: &str, delay_ms: u64, action: ResponderAction) -> Gameday {
    let mut roles = indexmap::IndexMap::new();
    roles.insert(role.to_owned(), vec![Response { step: None, delay: ms(delay_ms), action }]);
    Gameday {
        responders: Some(Arc::new(Responders { roles, source: "responders.yaml".into() })),
        desk: None,
    }
}

async fn run_gameday(
    yaml: &str,
    gameday: Gameday,
) -> (RunResult, crate::backend::fake::FakeBackend) {
    let backend = backend();
    let scenario = with_stack(yaml);
    let options = RunOptions { seed: Some(7), gameday, ..RunOptions::default() };
    let signals = Signals::default();
    let run = crate::engine::run(&scenario, &backend, &options, &signals, None);
    let result =
        tokio::time::timeout(std::time::Duration::from_secs(10), run).await.expect("the run ends");
    (result, backend)
}

const PAGE: &str = "steps:
  - name: page the on-call
    human:
      role: on-call
      prompt: Billing is down. Acknowledge the page.
      runbook: https://runbooks.example/billing-down
      deadline: 600ms
  - name: after
    wait: 10ms
expect:
  - human-within: { step: page the on-call, within: 200ms }
";

fn human_events(result: &RunResult) -> Vec<(u64, &EventKind)> {
    result
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::HumanPrompted { .. }
                    | EventKind::HumanAcknowledged { .. }
                    | EventKind::HumanActed { .. }
                    | EventKind::HumanEffect { .. }
                    | EventKind::HumanExpired { .. }
            )
        })
        .map(|e| (e.offset_us, &e.kind))
        .collect()
}

#[tokio::test]
async fn a_responder_who_acknowledges_in_time_passes_the_check() {
    let (result, backend) =
        run_gameday(PAGE, responders("on-call", 50, ResponderAction::Acknowledge)).await;
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    let events = human_events(&result);
    let [
        (prompted, EventKind::HumanPrompted { role, .. }),
        (acked, EventKind::HumanAcknowledged { by, .. }),
    ] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!((role.as_str(), by.as_str()), ("on-call", "responder"));
    let took = acked - prompted;
    assert!((50_000..200_000).contains(&took), "acknowledged {took}µs after the prompt");
    // The step ended at the acknowledgement, not at its deadline.
    let verdict = &result.verdicts[0];
    assert_eq!(verdict.status, CheckStatus::Passed, "{}", verdict.summary);
    assert!(
        verdict.summary.starts_with("on-call did `page the on-call` in"),
        "{}",
        verdict.summary
    );
    assert_clean(&backend);
}

#[tokio::test]
async fn a_responder_too_slow_deviates_the_run_naming_the_step_the_role_and_the_lateness() {
    let (result, backend) =
        run_gameday(PAGE, responders("on-call", 350, ResponderAction::Acknowledge)).await;
    assert_eq!(result.status, RunStatus::Deviated, "{:?}", statuses(&result));
    let verdict = &result.verdicts[0];
    assert_eq!(verdict.status, CheckStatus::Failed);
    assert!(
        verdict.summary.starts_with("on-call was ")
            && verdict.summary.contains(" late on `page the on-call`"),
        "{}",
        verdict.summary
    );
    assert_clean(&backend);
}

#[tokio::test]
async fn nobody_answering_ends_the_step_at_its_deadline_and_fails_even_without_a_check() {
    let yaml = "steps:
  - name: page the on-call
    human: { role: on-call, prompt: Acknowledge, deadline: 80ms }
";
    let started = crate::clock::instant_now();
    let (result, backend) = run_gameday(yaml, Gameday::default()).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        human_events(&result)
            .iter()
            .any(|(_, k)| matches!(k, EventKind::HumanExpired { role, .. } if role == "on-call"))
    );
    assert_eq!(result.status, RunStatus::Deviated, "{:?}", statuses(&result));
    let implicit = result
        .verdicts
        .iter()
        .find(|v| v.kind == "unexpected-failure")
        .expect("an implicit failure");
    assert!(
        implicit.summary.contains("on-call did not do `page the on-call`"),
        "{}",
        implicit.summary
    );
    assert_clean(&backend);
}

#[tokio::test]
async fn a_responder_posting_to_a_sink_is_done_when_the_notification_arrives() {
    let yaml = "sinks: { status: statuspage }
steps:
  - name: post the incident
    human:
      role: support
      prompt: Post the status page incident.
      deadline: 2s
      done: { notification: { sink: status, contains: investigating } }
expect:
  - human-within: { step: post the incident, within: 1s }
";
    let post = ResponderAction::Http(ResponderHttp {
        target: HttpTarget::Sink("status".into()),
        method: "POST".into(),
        path: "/v1/pages/page1/incidents".into(),
        body: Some(r#"{"incident":{"name":"Billing outage","status":"investigating","body":"We are investigating billing errors."}}"#.into()),
        timeout: ms(2000),
    });
    let (result, backend) = run_gameday(yaml, responders("support", 40, post)).await;
    assert_eq!(
        result.status,
        RunStatus::Completed,
        "{:?} {:#?}",
        statuses(&result),
        human_events(&result)
    );
    let events = human_events(&result);
    assert!(
        events
            .iter()
            .any(|(_, k)| matches!(k, EventKind::HumanActed { ok: true, status: Some(201), .. })),
        "{events:?}"
    );
    assert!(events.iter().any(|(_, k)| matches!(k, EventKind::HumanEffect { effect, .. } if effect == "status-page notification on status")), "{events:?}");
    assert_clean(&backend);
}

#[tokio::test]
async fn a_desk_acknowledgement_completes_the_prompt_and_closes_it() {
    let desk = Desk::default();
    let gameday = Gameday { responders: None, desk: Some(desk.clone()) };
    let clicker = tokio::spawn(async move {
        loop {
            if desk.acknowledge_oldest(Some("on-call"), "console").is_some() {
                return desk;
            }
            crate::clock::sleep(ms(5)).await;
        }
    });
    let (result, backend) = run_gameday(PAGE, gameday).await;
    let desk = clicker.await.unwrap();
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert!(
        human_events(&result)
            .iter()
            .any(|(_, k)| matches!(k, EventKind::HumanAcknowledged { by, .. } if by == "console"))
    );
    assert!(desk.acknowledge_oldest(None, "console").is_none(), "the prompt is closed");
    assert_clean(&backend);
}
