//! Fault steps (`memory`, `cpu`, `partition`), `parallel` groups, the ledger around faults, and
//! recovering what dead runs left applied.
//!
//! A fault step: pick targets with the step's seeded RNG → for each, read what restores it, write
//! that to the ledger (fsync'd), apply, record `fault-applied` → wait `for` (interruptible) →
//! revert each (also after the first Ctrl-C; not after the second: teardown force-removes), record
//! `fault-reverted`, mark the ledger.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::future::join_all;

use super::run::Context;
use super::steps::{StepEnd, run_step};
use super::upgrade::ServiceState;
use crate::backend::{Backend, RunScope};
use crate::faults::{self, AppliedFault, RecoveryOutcome, SeededRng, Undo};
use crate::journal::EventKind;
use crate::scenario::model::{Action, Fault, KillProcess, ParallelChild, Scenario, Step};

/// Carry out a fault step.
pub(super) async fn run_fault(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    step: &Step,
    fault: &Fault,
) -> StepEnd {
    let replicas = stack.targets(&fault.service).unwrap_or_default();
    let keys: Vec<String> = replicas.iter().map(|(key, _)| key.clone()).collect();
    let mut rng = SeededRng::for_step(ctx.seed, step.index);
    let chosen = faults::select_targets(&keys, fault.target, &mut rng);
    if chosen.is_empty() {
        return StepEnd::Failed(format!("`{}` has no container to fault", fault.service));
    }
    let mut applied: Vec<AppliedFault> = Vec::new();
    let mut failure = None;
    for replica in chosen {
        if ctx.signals.interrupt.is_cancelled() {
            break;
        }
        let container = replicas
            .iter()
            .find(|(key, _)| *key == replica)
            .map(|(_, id)| id.clone())
            .expect("targets are chosen among the replicas");
        match apply_one(ctx, stack.as_ref(), step, fault, replica, container).await {
            Ok(one) => applied.push(one),
            Err(reason) => {
                failure = Some(reason);
                break;
            }
        }
    }
    let waited = failure.is_none() && ctx.declared_wait(fault.duration).await;
    if ctx.signals.kill_fast.is_cancelled() {
        return StepEnd::Interrupted;
    }
    // Newest first, in case two faults ever touch one container.
    for one in applied.iter().rev() {
        let reverted = tokio::select! {
            reverted = revert_one(ctx, stack.as_ref(), &step.name, one) => reverted,
            () = ctx.signals.kill_fast.cancelled() => return StepEnd::Interrupted,
        };
        if let Err(reason) = reverted {
            failure.get_or_insert(reason);
        }
    }
    match failure {
        Some(reason) => StepEnd::Failed(reason),
        None if waited => StepEnd::Done,
        None => StepEnd::Interrupted,
    }
}

/// Carry out a `kill-process` step: the signal to the named processes in every container of the
/// service, one `process-killed` per container. Nothing to undo: whether the service recovers is
/// what the rehearsal is about. Fails when a container has no such process.
pub(super) async fn run_kill_process(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    step: &Step,
    kill: &KillProcess,
) -> StepEnd {
    let targets = stack.targets(&kill.service).unwrap_or_default();
    if targets.is_empty() {
        return StepEnd::Failed(format!("`{}` has no running container", kill.service));
    }
    let mut failure = None;
    for (replica, instance) in targets {
        let result = stack.kill_processes(&instance, &kill.name, &kill.signal).await;
        let (processes, error) = match result {
            Ok(processes) => (processes, None),
            Err(error) => (Vec::new(), Some(error.to_string())),
        };
        if let Some(error) = &error {
            failure.get_or_insert_with(|| error.clone());
        }
        ctx.journal.record(EventKind::ProcessKilled {
            step: step.name.clone(),
            service: kill.service.clone(),
            replica,
            name: kill.name.clone(),
            signal: kill.signal.clone(),
            ok: error.is_none(),
            processes,
            error,
        });
    }
    match failure {
        Some(reason) => StepEnd::Failed(reason),
        None => StepEnd::Done,
    }
}

async fn apply_one(
    ctx: &Context,
    stack: &dyn RunScope,
    step: &Step,
    fault: &Fault,
    replica: String,
    container: String,
) -> Result<AppliedFault, String> {
    let captured = ctx.backend_call(stack.capture_fault(&fault.kind, &container)).await;
    let undo = captured.map_err(|error| error.to_string())?;
    let id = ledger_applied(
        ctx,
        &stack.instance_name(&fault.service),
        &fault.service,
        &container,
        &undo,
    )?;
    let result = ctx.backend_call(stack.apply_fault(&fault.kind, &container)).await;
    let (ok, detail) = match &result {
        Ok(detail) => (true, detail.clone()),
        Err(error) => (false, error.to_string()),
    };
    ctx.journal.record(EventKind::FaultApplied {
        step: step.name.clone(),
        fault: id,
        kind: fault.kind.key().to_owned(),
        service: fault.service.clone(),
        replica: replica.clone(),
        ok,
        detail: detail.clone(),
        previous: serde_json::to_value(&undo).expect("undo records serialize"),
        link: None,
    });
    if !ok {
        // A backend applies a fault whole or not at all: nothing is in force.
        ledger_reverted(ctx, id);
        return Err(detail);
    }
    Ok(AppliedFault { fault: id, service: fault.service.clone(), replica, container, undo })
}

async fn revert_one(
    ctx: &Context,
    stack: &dyn RunScope,
    step: &str,
    one: &AppliedFault,
) -> Result<(), String> {
    let result = ctx.backend_call(stack.revert_fault(&one.container, &one.undo)).await;
    let (ok, detail) = match &result {
        Ok(detail) => (true, detail.clone()),
        Err(error) => (false, error.to_string()),
    };
    ctx.journal.record(EventKind::FaultReverted {
        step: step.to_owned(),
        fault: one.fault,
        kind: one.undo.fault_kind().to_owned(),
        service: one.service.clone(),
        replica: one.replica.clone(),
        ok,
        detail: detail.clone(),
        link: None,
    });
    if ok {
        ledger_reverted(ctx, one.fault);
        Ok(())
    } else {
        Err(detail)
    }
}

/// Write a fault to the ledger before it is applied; its id. Without a state folder there is no
/// ledger and ids are counted in memory. A ledger that cannot be written refuses the fault: one
/// that a crash could leave behind unrecorded is not applied.
fn ledger_applied(
    ctx: &Context,
    name: &str,
    service: &str,
    container: &str,
    undo: &Undo,
) -> Result<u64, String> {
    let Some(ledger) = &ctx.ledger else {
        return Ok(ctx.fault_ids.fetch_add(1, Ordering::Relaxed) + 1);
    };
    ledger.applied(service, container, name, undo.clone()).map_err(|error| {
        format!("could not write the fault ledger `{}`: {error}", ledger.path().display())
    })
}

fn ledger_reverted(ctx: &Context, fault: u64) {
    if let Some(ledger) = &ctx.ledger
        && let Err(error) = ledger.reverted(fault)
    {
        // The fault is undone; a stale ledger line only makes a later gc check it again.
        tracing::warn!(%error, "failed to mark a fault reverted in the ledger");
    }
}

/// Ledger a `pause` with `for` before it is applied: `Some(id)` to mark reverted after the
/// unpause, `Ok(None)` without a ledger.
pub(super) async fn ledger_pause(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    service: &str,
) -> Result<Option<u64>, String> {
    if ctx.ledger.is_none() {
        return Ok(None);
    }
    let container = stack.instance_id(service).map_err(|e| e.to_string())?.to_owned();
    ledger_applied(ctx, &stack.instance_name(service), service, &container, &Undo::Unpause)
        .map(Some)
}

/// Mark a ledgered pause reverted.
pub(super) fn pause_reverted(ctx: &Context, id: Option<u64>) {
    if let Some(id) = id {
        ledger_reverted(ctx, id);
    }
}

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
        Action::Upgrade(_) | Action::Rollback { .. } => true,
        Action::Parallel(children) => children.iter().any(|child| needs_state(&child.step.action)),
        _ => false,
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

/// Revert what dead runs' ledgers say is still applied, recording each as `fault-recovered`.
pub(super) async fn recover_dead_runs(
    ctx: &Context,
    backend: &dyn Backend,
    ledger_dir: &std::path::Path,
) {
    for recovered in backend.recover_faults(ledger_dir).await {
        let (outcome, detail) = match recovered.outcome {
            RecoveryOutcome::Reverted(what) => ("reverted", Some(what)),
            RecoveryOutcome::Gone => ("gone", None),
            RecoveryOutcome::Failed(why) => ("failed", Some(why)),
        };
        ctx.journal.record(EventKind::FaultRecovered {
            run_id: recovered.run_id,
            kind: recovered.fault.to_owned(),
            service: recovered.service,
            container: recovered.name,
            outcome: outcome.to_owned(),
            detail,
        });
    }
}
