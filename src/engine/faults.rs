//! The fault ledger around faults, and recovering what dead runs left applied.
//!
//! A fault is written to the ledger (fsync'd) before it is applied and marked reverted after;
//! the prepare phase reverts what dead runs' ledgers still hold (`fault-recovered`). The fault
//! steps themselves are `engine/steps/fault.rs`; a `pause` with `for` (`steps/container.rs`) is
//! ledgered here the same way.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::run::Context;
use crate::backend::{Backend, RunScope};
use crate::faults::{RecoveryOutcome, Undo};
use crate::journal::EventKind;

/// Write a fault to the ledger before it is applied; its id. Without a state folder there is no
/// ledger and ids are counted in memory. A ledger that cannot be written refuses the fault: one
/// that a crash could leave behind unrecorded is not applied.
pub(super) fn ledger_applied(
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

pub(super) fn ledger_reverted(ctx: &Context, fault: u64) {
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
