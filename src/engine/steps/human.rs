//! `human` steps (gameday): a prompt for a person in a role, done by an acknowledgement or by an
//! effect the journal shows (a notification at a sink, a service healthy), or over at the deadline.
//! Records `human-prompted`, then `human-acknowledged` / `human-acted` / `human-effect` as they
//! happen, and `human-expired` when the deadline passes first. Never fails the timeline: whether
//! the person was in time is `human-within`'s to judge.
//!
//! Who answers: a scripted responder of the role (`--responders FILE`, acting after its delay in
//! this step's own task), and anyone at the run's [`Desk`](crate::engine::gameday::Desk) (the
//! terminal, the console).
//!
//! A prompt with `roll-back: SERVICE` offers a decision besides acknowledging: "we decided to roll
//! back" (from the desk) records `human-decided` and rolls back the latest upgrade of the service
//! through the same path as a `rollback` step (its `upgrade` events follow under the upgrade's
//! step). Acknowledging is "go on"; a deadline that passes first changes nothing.
//!
//! Example: `- human: { role: on-call, prompt: "Acknowledge the page", deadline: 5m }`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::StepEnd;
use crate::backend::RunScope;
use crate::clock;
use crate::engine::gameday::{Answer, OpenPrompt};
use crate::engine::run::Context;
use crate::engine::upgrade::{ServiceState, run_rollback};
use crate::journal::{Event, EventKind};
use crate::scenario::gameday::{HttpTarget, Human, HumanDone, ResponderAction, ResponderHttp};
use crate::scenario::model::{Scenario, Step};

/// Carry out a `human` step; a decision to roll back (`roll-back: SERVICE`) rolls the service
/// back here, as a `rollback` step does.
pub(super) async fn run_human(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    (scenario, state): (&Scenario, &mut ServiceState),
    step: &Step,
    human: &Human,
) -> StepEnd {
    let service = match ask(ctx, stack, step, human).await {
        Err(end) => return end,
        Ok(None) => return StepEnd::Done,
        Ok(Some(service)) => service,
    };
    if let Some(desk) = &ctx.gameday.desk {
        desk.close(&step.name);
    }
    run_rollback(ctx, stack, scenario, state, &service).await
}

/// Prompt and wait: `Err` how the step ends, or `Ok(Some(service))` when the people decided to
/// roll it back, `Ok(None)` when it is over otherwise (done or expired).
async fn ask(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    step: &Step,
    human: &Human,
) -> Result<Option<String>, StepEnd> {
    let by_acknowledgement = human.done == HumanDone::Acknowledge;
    let mut moved = ctx.journal_moved.subscribe();
    let prompt = ctx.journal.record(EventKind::HumanPrompted {
        step: step.name.clone(),
        role: human.role.clone(),
        prompt: human.prompt.clone(),
        runbook: human.runbook.clone(),
        deadline_us: human.deadline.as_micros() as u64,
        done: human.done.describe(),
        by_acknowledgement,
        roll_back: human.roll_back.clone(),
    });
    let record_ack = |by: &str| {
        ctx.journal.record(EventKind::HumanAcknowledged {
            step: step.name.clone(),
            role: human.role.clone(),
            by: by.to_owned(),
        });
    };
    let mut acks = ctx.gameday.desk.as_ref().map(|desk| {
        desk.open(OpenPrompt {
            step: step.name.clone(),
            role: human.role.clone(),
            prompt: human.prompt.clone(),
            runbook: human.runbook.clone(),
            shown_us: prompt.offset_us,
            deadline_us: prompt.offset_us + human.deadline.as_micros() as u64,
            roll_back: human.roll_back.clone(),
        })
    });
    let _close = CloseOnDrop(ctx, &step.name);
    let response = ctx
        .gameday
        .responders
        .as_ref()
        .and_then(|responders| responders.response(&human.role, &step.name))
        .cloned();
    let acting_flag = std::sync::atomic::AtomicBool::new(false);
    let acting = &acting_flag;
    let mut responder: Pin<Box<dyn Future<Output = ()> + Send + '_>> = match response {
        Some(response) => Box::pin(async move {
            clock::sleep(response.delay).await;
            acting.store(true, std::sync::atomic::Ordering::Relaxed);
            if let ResponderAction::Http(http) = &response.action {
                act(ctx, stack, &step.name, &human.role, http).await;
            }
        }),
        None => Box::pin(std::future::pending()),
    };
    let mut responded = false;
    // A `healthy` effect may hold already: the service was healthy when the prompt came.
    let mut cursor = prompt.seq;
    if let Some(effect) = effect_before(ctx, human, &prompt) {
        effect_done(ctx, step, human, effect);
        return Ok(None);
    }
    let deadline = clock::sleep(human.deadline);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            biased;
            () = ctx.signals.interrupt.cancelled() => return Err(StepEnd::Interrupted),
            () = &mut deadline => {
                ctx.journal.record(EventKind::HumanExpired {
                    step: step.name.clone(),
                    role: human.role.clone(),
                });
                return Ok(None);
            }
            () = &mut responder, if !responded => {
                responded = true;
                record_ack("responder");
                if by_acknowledgement {
                    return Ok(None);
                }
            }
            Some((answer, by)) = async {
                match acks.as_mut() {
                    Some(acks) => acks.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                // The desk only passes a decision the prompt offers.
                if let (Answer::RollBack, Some(service)) = (answer, &human.roll_back) {
                    ctx.journal.record(EventKind::HumanDecided {
                        step: step.name.clone(),
                        role: human.role.clone(),
                        by,
                        decision: "roll-back".to_owned(),
                        service: service.clone(),
                    });
                    return Ok(Some(service.clone()));
                }
                record_ack(&by);
                if by_acknowledgement {
                    return Ok(None);
                }
            }
            changed = moved.changed(), if !by_acknowledgement => {
                changed.expect("the run's context holds the journal watch");
                let events = ctx.journal.events_since(cursor);
                if let Some(last) = events.last() {
                    cursor = last.seq;
                }
                if let Some(effect) = events.iter().find_map(|e| observed(human, &prompt, e)) {
                    effect_done(ctx, step, human, effect);
                    // The responder whose request caused it is still waiting for its answer:
                    // let it finish (bounded by its timeout), so what it did is on record.
                    if !responded && acting.load(std::sync::atomic::Ordering::Relaxed) {
                        if ctx.interruptible(&mut responder).await.is_none() {
                            return Err(StepEnd::Interrupted);
                        }
                        record_ack("responder");
                    }
                    return Ok(None);
                }
            }
        }
    }
}

/// Closes the step's prompt at the desk however the step ends.
struct CloseOnDrop<'a>(&'a Context, &'a str);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(desk) = &self.0.gameday.desk {
            desk.close(self.1);
        }
    }
}

/// An observed effect: what, when (µs), and the event that shows it.
struct Effect {
    what: String,
    at_us: u64,
    seq: u64,
}

fn effect_done(ctx: &Context, step: &Step, human: &Human, effect: Effect) {
    ctx.journal.record(EventKind::HumanEffect {
        step: step.name.clone(),
        role: human.role.clone(),
        effect: effect.what,
        observed_us: effect.at_us,
        evidence_seq: Some(effect.seq),
    });
}

/// `done: { healthy }` when the service's last health observation before the prompt was healthy.
fn effect_before(ctx: &Context, human: &Human, prompt: &Event) -> Option<Effect> {
    let HumanDone::Healthy { service } = &human.done else { return None };
    let events = ctx.journal.snapshot();
    let last = events[..prompt.seq as usize].iter().rev().find_map(|e| match &e.kind {
        EventKind::HealthChanged { service: s, healthy, .. } if s == service => Some((e, *healthy)),
        _ => None,
    });
    match last {
        Some((event, true)) => Some(Effect {
            what: format!("{service} already healthy at the prompt"),
            at_us: prompt.offset_us,
            seq: event.seq,
        }),
        _ => None,
    }
}

/// Whether `event` (recorded after the prompt) is the effect the step waits for.
fn observed(human: &Human, prompt: &Event, event: &Event) -> Option<Effect> {
    match (&human.done, &event.kind) {
        (HumanDone::Acknowledge, _) => None,
        (
            HumanDone::Notification { sink, contains },
            EventKind::NotificationReceived {
                sink: s, channel, received_us, subject, body, ..
            },
        ) if s == sink && *received_us >= prompt.offset_us => {
            if let Some(text) = contains {
                let text = text.to_lowercase();
                let subject = subject.as_deref().unwrap_or_default().to_lowercase();
                if !subject.contains(&text) && !body.to_lowercase().contains(&text) {
                    return None;
                }
            }
            Some(Effect {
                what: format!("{channel} notification on {sink}"),
                at_us: *received_us,
                seq: event.seq,
            })
        }
        (
            HumanDone::Healthy { service },
            EventKind::HealthChanged { service: s, healthy: true, .. },
        ) if s == service => Some(Effect {
            what: format!("{service} healthy"),
            at_us: event.offset_us,
            seq: event.seq,
        }),
        _ => None,
    }
}

/// A scripted responder's HTTP request, recorded as `human-acted`.
async fn act(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    step: &str,
    role: &str,
    http: &ResponderHttp,
) {
    let (target, port) = match &http.target {
        HttpTarget::Sink(sink) => (
            format!("sink {sink}"),
            ctx.sinks.local_addr(sink).map(|addr| addr.port()).ok_or_else(|| {
                format!("sink `{sink}` is not running (is it declared in the scenario's `sinks`?)")
            }),
        ),
        HttpTarget::Service { service, port } => (
            format!("{service}:{port}"),
            stack.host_port(service, *port).await.map_err(|error| error.to_string()),
        ),
    };
    let request = format!("{} {target} {}", http.method, http.path);
    let (status, error) = match port {
        Err(error) => (None, Some(error)),
        Ok(port) => send(&ctx.http, port, http).await,
    };
    let ok = error.is_none() && status.is_some_and(|s| (200..300).contains(&s));
    let error = error.or_else(|| (!ok).then(|| "expected a 2xx status".to_owned()));
    ctx.journal.record(EventKind::HumanActed {
        step: step.to_owned(),
        role: role.to_owned(),
        request,
        ok,
        status,
        error,
    });
}

async fn send(
    client: &reqwest::Client,
    port: u16,
    http: &ResponderHttp,
) -> (Option<u16>, Option<String>) {
    let url = format!("http://127.0.0.1:{port}{}", http.path);
    let method = reqwest::Method::from_bytes(http.method.as_bytes()).expect("validated method");
    let mut request = client.request(method, url).timeout(http.timeout);
    if let Some(body) = &http.body {
        request = request.header("content-type", "application/json").body(body.clone());
    }
    match request.send().await {
        Err(error) => (None, Some(error.to_string())),
        Ok(response) => (Some(response.status().as_u16()), None),
    }
}
