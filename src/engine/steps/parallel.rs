//! `parallel` groups: every child at once, each after its own `delay`.
//!
//! Example: `- parallel: [ { kill: { service: a } }, { delay: 2s, memory: { service: b, ... } } ]`.

use std::sync::Arc;

use futures_util::future::join_all;

use super::{StepEnd, run_step};
use crate::backend::RunScope;
use crate::engine::run::Context;
use crate::engine::upgrade::ServiceState;
use crate::scenario::model::{Action, ParallelChild, Scenario};

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
            if !child.delay.is_zero() && !ctx.declared_wait(child.delay).await {
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
