//! Rolling back the latest upgrade of a service, after a failed upgrade (`on-failure: rollback`)
//! or on purpose (a `rollback` step): capture the failed release's last log lines, bring the
//! previous version back the way its strategy allows (recreate, switch back, replace replicas),
//! run the data service's `restore` hook, observe the version. A failing rollback is recorded as
//! such (`rolled-back` with `ok: false`), never hidden behind the upgrade's failure.
//!
//! Example: `- rollback: { service: billing }`.

use std::sync::Arc;

use super::{
    ServiceState, Trouble, UpgradeCtx, UpgradeRecord, blue_green, fmt, record, rolling, since,
};
use crate::backend::RunScope;
use crate::clock;
use crate::engine::run::{Context, wait_ready};
use crate::engine::steps::StepEnd;
use crate::journal::{EventKind, UpgradeStage};
use crate::scenario::model::{Scenario, Strategy};

/// Roll back the latest upgrade of `service`. `Done` also when the rollback failed (recorded
/// as such, the checks judge it); `Failed` when the backend could not carry it out (the run
/// stops with an error: nothing is judged on a rollback that never ran).
pub(super) async fn rollback(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &mut ServiceState,
    service: &str,
) -> StepEnd {
    let upgrade = state.upgrades.get(service).cloned().expect("callers check there is one");
    let step = upgrade.step.as_str();
    let previous = upgrade.previous.clone();
    record(
        ctx,
        step,
        service,
        UpgradeStage::RollbackStarted,
        true,
        Some(format!("back to {}", previous.image.reference())),
    );
    // A blue-green upgrade that did not complete still has the old version's container.
    let blue_green = upgrade.strategy == Strategy::BlueGreen && !upgrade.completed;
    let switched = blue_green && blue_green::switched_away(stack.as_ref(), service);
    let green = format!("{service}.green");
    let mut failed_key = if blue_green && !switched { green.clone() } else { service.to_owned() };
    if upgrade.strategy == Strategy::Rolling {
        // The first replica that runs something else than the previous version.
        for key in previous.replica_keys() {
            let image = stack.image_of(&key).await;
            if image.is_ok_and(|image| image != previous.image.reference()) {
                failed_key = key;
                break;
            }
        }
    }
    let failed_key = failed_key.as_str();
    // The failed release's last words, before its container is replaced.
    if let Ok(lines) = stack.logs_tail(failed_key, 20).await
        && !lines.trim().is_empty()
    {
        ctx.journal.record(EventKind::ServiceLogs { service: service.to_owned(), lines });
    }
    let result = {
        let cx = UpgradeCtx { ctx, stack, scenario, state: &*state, step, service };
        let done = if blue_green {
            let switched_back = blue_green::switch_back(&cx, &upgrade, switched);
            ctx.interruptible(async { switched_back.await.map_err(Trouble::Failed) }).await
        } else if upgrade.strategy == Strategy::Rolling {
            ctx.interruptible(rolling::roll_back(&cx, &upgrade)).await
        } else {
            ctx.interruptible(restore_previous(&cx, &upgrade)).await
        };
        match done {
            Some(result) => result,
            None => return StepEnd::Interrupted,
        }
    };
    if let Some(record) = state.upgrades.get_mut(service) {
        record.rolled_back = true;
    }
    match result {
        Ok(detail) => {
            state.current.insert(service.to_owned(), previous);
            // Stamped when the rollback is done; the version check that follows is its own event.
            record(ctx, step, service, UpgradeStage::RolledBack, true, Some(detail));
            if let Some(endpoint) = &upgrade.version {
                let cx = UpgradeCtx { ctx, stack, scenario, state: &*state, step, service };
                super::version::observe(&cx, endpoint, "after-rollback").await;
            }
            StepEnd::Done
        }
        Err(Trouble::Failed(reason)) => {
            record(ctx, step, service, UpgradeStage::RolledBack, false, Some(reason));
            StepEnd::Done
        }
        Err(Trouble::Backend(reason)) => StepEnd::Failed(format!("rollback: {reason}")),
    }
}

/// Recreate-style rollback: stop the new version, restore the data, start the previous version
/// under the service's name and wait for its health within its startup timeout.
async fn restore_previous(cx: &UpgradeCtx<'_>, upgrade: &UpgradeRecord) -> Result<String, Trouble> {
    let (ctx, stack, service) = (cx.ctx, cx.stack, cx.service);
    // Stop the new version before touching the data it may be writing.
    let stopped = ctx.backend_call(async { stack.stop(service, cx.stop_grace()).await });
    if let Err(error) = stopped.await {
        return Err(Trouble::from_backend("could not stop the new version".to_owned(), &error));
    }
    restore_data(cx, upgrade).await?;
    let release = cx.release(&upgrade.previous, upgrade.previous.startup_timeout);
    let exits = ctx.exits.subscribe();
    super::recreate::recreate(cx, &release).await?;
    let started = clock::instant_now();
    let rx = cx.health(service);
    let ready = wait_ready(exits, rx, stack.as_ref(), service, release.deadline, started);
    let ready = ctx.service_wait(ready).await;
    ready.map_err(|reason| format!("the previous version did not come back: {reason}"))?;
    Ok(format!(
        "{} healthy {} after its start",
        upgrade.previous.image.reference(),
        fmt(since(started))
    ))
}

/// Run the `restore` hook of the upgrade's data service, if it has one.
pub(super) async fn restore_data(
    cx: &UpgradeCtx<'_>,
    upgrade: &UpgradeRecord,
) -> Result<(), String> {
    if let Some(data) = &upgrade.backup {
        let hook = cx.scenario.stack.services[data].restore.clone().unwrap_or_default();
        match super::hooks::run_hook(cx, data, &hook).await {
            Ok(detail) => cx.record(UpgradeStage::Restore, true, Some(detail)),
            Err(reason) => {
                cx.record(UpgradeStage::Restore, false, Some(reason.clone()));
                return Err(format!("restore of `{data}` failed: {reason}"));
            }
        }
    }
    Ok(())
}
