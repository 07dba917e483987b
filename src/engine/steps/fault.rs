//! Fault steps on a service's containers (`memory`, `cpu`, `partition`).
//!
//! Pick targets with the step's seeded RNG → for each, read what restores it, write that to the
//! ledger (fsync'd), apply, record `fault-applied` → wait `for` (interruptible) → revert each
//! (also after the first Ctrl-C; not after the second: teardown force-removes), record
//! `fault-reverted`, mark the ledger. The ledger itself is `engine/faults.rs`.
//!
//! Example: `- memory: { service: billing, limit: 48MiB, for: 30s, target: one }`.

use std::sync::Arc;

use super::StepEnd;
use crate::backend::RunScope;
use crate::engine::faults::{ledger_applied, ledger_reverted};
use crate::engine::run::Context;
use crate::faults::{self, AppliedFault, SeededRng};
use crate::journal::EventKind;
use crate::scenario::model::{Fault, Step};

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
