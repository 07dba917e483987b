//! `parallel` groups: every child at once, each after its own `delay`, counted from the group's
//! start or, with `at`, from a moment of a sibling (the upgrade's `healthy`: its watch begins).
//!
//! Example: `- parallel: [ { kill: { service: a } }, { delay: 2s, memory: { service: b, ... } } ]`.
//!
//! An anchored child follows the journal (the spine: the moment is found there exactly as the
//! checks find it) and starts `delay` after the moment's offset; when the sibling ends without
//! the moment, the child is recorded as skipped (`step-ended`, outcome `skipped`, and why).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::{StepEnd, run_step};
use crate::backend::RunScope;
use crate::checks;
use crate::engine::run::Context;
use crate::engine::upgrade::ServiceState;
use crate::journal::{Event, EventKind, Journal, Outcome};
use crate::scenario::model::{Action, Anchor, ParallelChild, Scenario};

/// Run a `parallel` group: every child at once, each after its own `delay`; the group ends when
/// all have ended. Its end is the most severe of theirs (failed, interrupted, aborted, done).
pub(super) async fn run_parallel(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &mut ServiceState,
    children: &[ParallelChild],
) -> StepEnd {
    // Validation allows one upgrade or rollback per group: it gets the real service state, the
    // others (which never touch it) a copy.
    let stateful = children.iter().position(|child| needs_state(&child.step.action));
    let mut copies: Vec<ServiceState> =
        (0..children.len()).filter(|i| Some(*i) != stateful).map(|_| copy(state)).collect();
    let mut copies = copies.iter_mut();
    let mut real = Some(state);
    let runs = children.iter().enumerate().map(|(i, child)| {
        let state: &mut ServiceState = if Some(i) == stateful {
            real.take().expect("one stateful child")
        } else {
            copies.next().expect("a copy per other child")
        };
        async move {
            let delay = match &child.at {
                None => child.delay,
                Some(anchor) => match moment(ctx, anchor).await {
                    Moment::At(at) => (at + child.delay).saturating_sub(ctx.journal.offset()),
                    Moment::Never(why) => return skip(ctx, child, why),
                    Moment::Interrupted => return StepEnd::Interrupted,
                },
            };
            if !delay.is_zero() && !ctx.declared_wait(delay).await {
                return StepEnd::Interrupted;
            }
            Box::pin(run_step(ctx, stack, scenario, state, &child.step)).await
        }
    });
    let ends = join_all(runs.collect::<Vec<_>>()).await;
    let mut worst = StepEnd::Done;
    for end in ends {
        worst = match (worst, end) {
            (StepEnd::Failed(reason), _) | (_, StepEnd::Failed(reason)) => StepEnd::Failed(reason),
            (StepEnd::Interrupted, _) | (_, StepEnd::Interrupted) => StepEnd::Interrupted,
            (StepEnd::Abort, _) | (_, StepEnd::Abort) => StepEnd::Abort,
            (StepEnd::Done, StepEnd::Done) => StepEnd::Done,
        };
    }
    worst
}

/// What became of the moment an anchored child waits for.
enum Moment {
    /// It happened at this offset of the run.
    At(Duration),
    /// The sibling ended without it (why).
    Never(String),
    Interrupted,
}

/// Follow the journal until `anchor`'s moment is in it, or its step ended without it.
async fn moment(ctx: &Context, anchor: &Anchor) -> Moment {
    let trigger = anchor.trigger();
    let mut moved = ctx.journal_moved.subscribe();
    let mut events: Vec<Event> = Vec::new();
    loop {
        let first = events.is_empty();
        if follow(&ctx.journal, &mut events) || first {
            match checks::trigger_moment(&events, &trigger) {
                Ok(at_us) => return Moment::At(Duration::from_micros(at_us)),
                Err(why) if ended(&events, &anchor.step) => return Moment::Never(why),
                Err(_) => {}
            }
        }
        tokio::select! {
            biased;
            () = ctx.signals.interrupt.cancelled() => return Moment::Interrupted,
            changed = moved.changed() => {
                if changed.is_err() {
                    // The journal's watch is gone: the run is over.
                    return Moment::Interrupted;
                }
            }
        }
    }
}

/// Append the journal's events after the last of `events` (all of them when it is empty); whether
/// one of them can place a moment.
fn follow(journal: &Journal, events: &mut Vec<Event>) -> bool {
    let new = match events.last() {
        None => journal.snapshot(),
        Some(last) => journal.events_since(last.seq),
    };
    let relevant = new.iter().any(|e| may_place(&e.kind));
    events.extend(new);
    relevant
}

/// Whether an event can place a step's moment (the rest, requests and health polls, never does).
fn may_place(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::StepStarted { .. }
            | EventKind::StepEnded { .. }
            | EventKind::Upgrade { .. }
            | EventKind::FaultApplied { .. }
            | EventKind::FaultReverted { .. }
            | EventKind::ContainerAction { .. }
            | EventKind::SinkChaos { .. }
    )
}

fn ended(events: &[Event], step: &str) -> bool {
    events.iter().any(|e| matches!(&e.kind, EventKind::StepEnded { step: s, .. } if s == step))
}

/// Record a child whose moment never came as started and ended at once, outcome `skipped`.
fn skip(ctx: &Context, child: &ParallelChild, why: String) -> StepEnd {
    let step = &child.step;
    ctx.journal.record(EventKind::StepStarted {
        index: step.index,
        step: step.name.clone(),
        action: step.action.key().to_owned(),
    });
    let at =
        child.at.as_ref().map(|a| format!("`{}` {}", a.step, a.event.name())).unwrap_or_default();
    ctx.journal.record(EventKind::StepEnded {
        index: step.index,
        step: step.name.clone(),
        outcome: Outcome::Skipped,
        error: Some(format!("skipped: it starts at {at}, which never came ({why})")),
    });
    StepEnd::Done
}

fn needs_state(action: &Action) -> bool {
    match action {
        Action::Parallel(children) => children.iter().any(|child| needs_state(&child.step.action)),
        action => action.kind().stateful(),
    }
}

fn copy(state: &ServiceState) -> ServiceState {
    ServiceState {
        health: state.health.clone(),
        current: state.current.clone(),
        upgrades: state.upgrades.clone(),
        run_id: state.run_id.clone(),
        endpoints: state.endpoints.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    fn started(step: &str) -> EventKind {
        EventKind::StepStarted { index: 0, step: step.into(), action: "wait".into() }
    }

    #[test]
    fn following_the_journal_misses_no_event_and_wakes_only_for_moments() {
        let journal = Journal::in_memory(Arc::new(ManualClock::new()));
        let mut events = Vec::new();
        assert!(!follow(&journal, &mut events), "nothing yet");
        journal.record(started("a"));
        assert!(follow(&journal, &mut events));
        journal.record(EventKind::PhaseStarted { phase: crate::journal::Phase::Steps });
        assert!(!follow(&journal, &mut events), "a phase places no moment of a step");
        journal.record(started("b"));
        journal.record(started("c"));
        assert!(follow(&journal, &mut events));
        assert!(!follow(&journal, &mut events), "nothing new");
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3], "every event once, in order");
    }
}
