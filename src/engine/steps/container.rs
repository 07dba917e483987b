//! Container actions (`kill`, `stop`, `start`, `restart`, `pause`, `unpause`), undone after
//! `for` when given (`kill`/`stop` → `start`, `pause` → `unpause`).
//!
//! Each action is one backend call recorded as `container-action`. With `for`, the step waits
//! (interruptibly) and undoes it, also after the first signal so a `--keep` stack is not left
//! paused; the second signal skips the undo. A `pause` with `for` is ledgered first, so a
//! `firedrill gc` after a crash thaws it.
//!
//! Example: `- kill: { service: db, signal: SIGTERM, for: 10s }`.

use std::sync::Arc;

use super::StepEnd;
use crate::backend::{BackendError, RunScope};
use crate::engine::faults::{ledger_pause, pause_reverted};
use crate::engine::run::Context;
use crate::journal::EventKind;
use crate::scenario::model::{ContainerAction, ContainerOp};

/// Carry out a container action step.
pub(super) async fn run_container_action(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    action: &ContainerAction,
) -> StepEnd {
    // A pause to be undone is ledgered first, so a `firedrill gc` after a crash thaws it.
    let ledgered = if action.op == ContainerOp::Pause && action.undo_after.is_some() {
        match ledger_pause(ctx, stack, &action.service).await {
            Ok(id) => id,
            Err(reason) => return StepEnd::Failed(reason),
        }
    } else {
        None
    };
    let applied = ctx.interruptible(apply(ctx, stack, &action.service, &action.op, false)).await;
    match applied {
        None => return StepEnd::Interrupted,
        Some(Err(reason)) => return StepEnd::Failed(reason),
        Some(Ok(())) => {}
    }
    let Some(undo_after) = action.undo_after else {
        return StepEnd::Done;
    };
    let waited = ctx.declared_wait(undo_after).await;
    // Undo even when interrupted, so a `--keep` stack is not left paused; a second signal skips it.
    if ctx.signals.kill_fast.is_cancelled() {
        return StepEnd::Interrupted;
    }
    let undo = action.op.undo().expect("validation allows `for` only where an action undoes it");
    let undone = tokio::select! {
        result = apply(ctx, stack, &action.service, &undo, true) => result,
        () = ctx.signals.kill_fast.cancelled() => return StepEnd::Interrupted,
    };
    if undone.is_ok() {
        pause_reverted(ctx, ledgered);
    }
    match (waited, undone) {
        (_, Err(reason)) => StepEnd::Failed(reason),
        (false, Ok(())) => StepEnd::Interrupted,
        (true, Ok(())) => StepEnd::Done,
    }
}

async fn apply(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    service: &str,
    op: &ContainerOp,
    undo: bool,
) -> Result<(), String> {
    let result: Result<(), BackendError> = ctx
        .backend_call(async {
            match op {
                ContainerOp::Kill { signal } => stack.kill(service, signal).await,
                ContainerOp::Stop { timeout } => stack.stop(service, *timeout).await,
                ContainerOp::Start => stack.start(service).await,
                ContainerOp::Restart => stack.restart(service).await,
                ContainerOp::Pause => stack.pause(service).await,
                ContainerOp::Unpause => stack.unpause(service).await,
            }
        })
        .await;
    let signal = match op {
        ContainerOp::Kill { signal } => Some(signal.clone()),
        _ => None,
    };
    let error = result.as_ref().err().map(|e| e.to_string());
    ctx.journal.record(EventKind::ContainerAction {
        service: service.to_string(),
        action: op.key().to_string(),
        signal,
        undo,
        ok: error.is_none(),
        error: error.clone(),
    });
    match error {
        None => Ok(()),
        Some(error) => Err(error),
    }
}
