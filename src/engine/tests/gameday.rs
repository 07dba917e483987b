//! Gameday: `human` steps answered by scripted responders, a desk, or nobody.

use std::sync::Arc;

use super::support::*;
use crate::checks::CheckStatus;
use crate::engine::gameday::{Answer, AnswerError, Desk, Gameday};
use crate::engine::{RunOptions, RunResult, Signals};
use crate::journal::EventKind;
use crate::journal::{Outcome, UpgradeStage as S};
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

const GO_OR_NO_GO: &str = "steps:
  - name: upgrade api
    upgrade: { service: api, image: api:2.0, deadline: 300ms, version: { port: 8080, path: /version } }
  - name: go or no-go
    human:
      role: lead
      prompt: api 2.0 is live. Go on, or roll back?
      deadline: 600ms
      roll-back: api
  - name: after
    wait: 10ms
expect:
  - human-within: { step: go or no-go, within: 300ms }
";

/// Answer the open prompt of `step` at `desk` as soon as it is open.
fn answer_when_open(desk: Desk, step: &'static str, answer: Answer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while desk.answer(step, answer, "console").is_err() {
            crate::clock::sleep(ms(5)).await;
        }
    })
}

#[tokio::test]
async fn a_decision_to_roll_back_rolls_the_upgrade_back_and_counts_as_the_answer() {
    let desk = Desk::default();
    let gameday = Gameday { responders: None, desk: Some(desk.clone()) };
    let clicker = answer_when_open(desk.clone(), "go or no-go", Answer::RollBack);
    let (result, backend) = run_gameday(GO_OR_NO_GO, gameday).await;
    clicker.await.unwrap();
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    let decided = result
        .events
        .iter()
        .find(|e| {
            matches!(&e.kind, EventKind::HumanDecided { by, decision, service, .. }
            if by == "console" && decision == "roll-back" && service == "api")
        })
        .expect("the decision is journaled");
    let prompted = result
        .events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::HumanPrompted { roll_back: Some(s), .. } if s == "api"))
        .expect("the prompt offers the decision");
    assert!(prompted.seq < decided.seq);
    // The rollback follows the decision, under the upgrade's step, as a `rollback` step's would.
    let stages = stages(&result, "upgrade api");
    assert_eq!(stages[stages.len() - 2..], [(S::RollbackStarted, true), (S::RolledBack, true)]);
    let rollback_started = result
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::Upgrade { stage: S::RollbackStarted, .. }))
        .unwrap();
    assert!(rollback_started.seq > decided.seq, "rolled back after the decision, not before");
    assert_eq!(
        versions(&result, "upgrade api", "after-rollback"),
        [(true, r#"{"version":"1.0"}"#.into())]
    );
    assert_eq!(step_end(&result, "go or no-go"), Some((Outcome::Ok, None)));
    // The decision is the prompt's answer: `human-within` measures it.
    let check = result.verdicts.iter().find(|v| v.name.contains("go or no-go")).unwrap();
    assert_eq!(check.status, CheckStatus::Passed, "{check:?}");
    assert!(check.summary.contains("lead did `go or no-go`"), "{}", check.summary);
    assert_eq!(
        desk.answer("go or no-go", Answer::Acknowledge, "console"),
        Err(AnswerError::NotOpen("go or no-go".into())),
        "the prompt closed"
    );
    assert_clean(&backend);
}

#[tokio::test]
async fn going_on_leaves_the_upgrade_and_a_decision_not_offered_is_refused() {
    let desk = Desk::default();
    let gameday = Gameday { responders: None, desk: Some(desk.clone()) };
    // `PAGE` offers no decision: the desk refuses one while its prompt is open; then the same
    // person acknowledges (one task, so the acknowledgement cannot close the prompt before the
    // refused decision was tried: two polling tasks raced, and the refuser then polled forever).
    let refuser = {
        let desk = desk.clone();
        tokio::spawn(async move {
            let refused = loop {
                match desk.answer("page the on-call", Answer::RollBack, "console") {
                    Err(AnswerError::NotOffered(step)) => break step,
                    Err(AnswerError::NotOpen(_)) => crate::clock::sleep(ms(1)).await,
                    Ok(()) => panic!("a decision the prompt does not offer was taken"),
                }
            };
            desk.answer("page the on-call", Answer::Acknowledge, "console")
                .expect("the prompt is still open");
            refused
        })
    };
    let (result, _) = run_gameday(PAGE, gameday).await;
    assert_eq!(refuser.await.unwrap(), "page the on-call");
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    assert_eq!(count(&result, |k| matches!(k, EventKind::HumanDecided { .. })), 0);

    let desk = Desk::default();
    let gameday = Gameday { responders: None, desk: Some(desk.clone()) };
    let clicker = answer_when_open(desk.clone(), "go or no-go", Answer::Acknowledge);
    let (result, backend) = run_gameday(GO_OR_NO_GO, gameday).await;
    clicker.await.unwrap();
    assert_eq!(result.status, RunStatus::Completed, "{:?}", statuses(&result));
    let stages = stages(&result, "upgrade api");
    assert_eq!(stages.last(), Some(&(S::Completed, true)), "no rollback: {stages:?}");
    assert_eq!(count(&result, |k| matches!(k, EventKind::HumanDecided { .. })), 0);
    assert_clean(&backend);
}

#[tokio::test]
async fn the_desk_passes_every_journal_event_to_its_watchers() {
    let desk = Desk::default();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    desk.watch(Arc::new(move |event| sink.lock().unwrap().push(event.seq)));
    let clicker = answer_when_open(desk.clone(), "page the on-call", Answer::Acknowledge);
    let (result, _) = run_gameday(PAGE, Gameday { responders: None, desk: Some(desk) }).await;
    clicker.await.unwrap();
    let seqs: Vec<u64> = result.events.iter().map(|e| e.seq).collect();
    assert_eq!(*seen.lock().unwrap(), seqs);
}
