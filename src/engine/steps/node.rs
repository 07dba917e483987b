//! `node-availability`: a node-level fault. Find the node and its availability → ledger what
//! restores it (fsync'd, so `firedrill gc` gives the node its availability back after a SIGKILL)
//! → set the new one, record `fault-applied` → wait `for` (interruptible) → restore it (also
//! after the first Ctrl-C; not after the second) → `fault-reverted`, mark the ledger.
//!
//! Example: `- node-availability: { availability: drain, for: 10s }`.

use std::sync::Arc;

use super::StepEnd;
use crate::backend::RunScope;
use crate::engine::faults::{ledger_applied, ledger_reverted};
use crate::engine::run::Context;
use crate::faults::Undo;
use crate::journal::EventKind;
use crate::scenario::model::{NodeAvailability, Step};

const KIND: &str = "node-availability";

/// Carry out a `node-availability` step.
pub(super) async fn run_node_availability(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    step: &Step,
    fault: &NodeAvailability,
) -> StepEnd {
    let target = match ctx.backend_call(stack.node(fault.node.as_deref())).await {
        Ok(target) => target,
        Err(error) => return StepEnd::Failed(error.to_string()),
    };
    // The journal's `service` of a node fault names the node.
    let service = format!("node {}", target.name);
    let undo = Undo::NodeAvailability { availability: target.availability.clone() };
    let id = match ledger_applied(ctx, &target.name, &service, &target.id, &undo) {
        Ok(id) => id,
        Err(reason) => return StepEnd::Failed(reason),
    };
    let wanted = fault.availability.key();
    let result = ctx.backend_call(stack.set_node_availability(&target.id, wanted)).await;
    let (ok, detail) = match &result {
        Ok(detail) => (true, detail.clone()),
        Err(error) => (false, error.to_string()),
    };
    ctx.journal.record(EventKind::FaultApplied {
        step: step.name.clone(),
        fault: id,
        kind: KIND.to_owned(),
        service: service.clone(),
        replica: wanted.to_owned(),
        ok,
        detail: detail.clone(),
        previous: serde_json::to_value(&undo).expect("undo records serialize"),
        link: None,
    });
    // Even a refused change is restored: Swarm may have applied it before an error came back.
    let waited = ok && ctx.declared_wait(fault.duration).await;
    if ctx.signals.kill_fast.is_cancelled() {
        return StepEnd::Interrupted;
    }
    let restore = stack.set_node_availability(&target.id, &target.availability);
    let restored = tokio::select! {
        restored = ctx.backend_call(restore) => restored,
        () = ctx.signals.kill_fast.cancelled() => return StepEnd::Interrupted,
    };
    let (back, back_detail) = match &restored {
        Ok(detail) => (true, detail.clone()),
        Err(error) => (false, error.to_string()),
    };
    ctx.journal.record(EventKind::FaultReverted {
        step: step.name.clone(),
        fault: id,
        kind: KIND.to_owned(),
        service,
        replica: target.availability.clone(),
        ok: back,
        detail: back_detail.clone(),
        link: None,
    });
    if back {
        ledger_reverted(ctx, id);
    }
    match (ok, back) {
        (false, _) => StepEnd::Failed(detail),
        (true, false) => StepEnd::Failed(back_detail),
        (true, true) if waited => StepEnd::Done,
        (true, true) => StepEnd::Interrupted,
    }
}
