//! What an upgrade runs besides the service itself: the data service's `backup` hook before the
//! upgrade (and its `restore` hook in a rollback, `rollback.rs`), and `migrate`, a one-shot
//! container of the new image that must exit 0 within its deadline, before or after the switch.
//!
//! Example: `upgrade: { ..., backup: db, migrate: { command: [migrate, up], when: before } }`.

use std::time::Duration;

use super::{Attempt, Release, UpgradeCtx, fmt, since};
use crate::clock;
use crate::journal::UpgradeStage;
use crate::scenario::model::{MigrateWhen, Upgrade};

/// How long a data hook (`backup` / `restore`) may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// Run the `backup` hook of the data service `data`, recording the `backup` stage.
pub(super) async fn backup(cx: &UpgradeCtx<'_>, data: &str) -> Result<(), Attempt> {
    let hook = cx.scenario.stack.services[data].backup.clone().unwrap_or_default();
    match cx.ctx.interruptible(run_hook(cx, data, &hook)).await {
        None => Err(Attempt::Interrupted),
        Some(Ok(detail)) => {
            cx.record(UpgradeStage::Backup, true, Some(detail));
            Ok(())
        }
        Some(Err(reason)) => {
            cx.record(UpgradeStage::Backup, false, Some(reason.clone()));
            Err(Attempt::Failed(format!("backup of `{data}` failed: {reason}")))
        }
    }
}

/// Run the upgrade's migration if it runs `when`, recording the `migration` stage.
pub(super) async fn migrate(
    cx: &UpgradeCtx<'_>,
    spec: &Upgrade,
    release: &Release<'_>,
    when: MigrateWhen,
) -> Result<(), Attempt> {
    let Some(migration) = spec.migrate.as_ref().filter(|m| m.when == when) else {
        return Ok(());
    };
    let run = run_migration(cx, release, &migration.command, migration.deadline);
    match cx.ctx.interruptible(run).await {
        None => Err(Attempt::Interrupted),
        Some(Ok(detail)) => {
            cx.record(UpgradeStage::Migration, true, Some(detail));
            Ok(())
        }
        Some(Err(reason)) => {
            cx.record(UpgradeStage::Migration, false, Some(reason.clone()));
            Err(Attempt::Failed(format!("migration failed: {reason}")))
        }
    }
}

/// Run a one-shot container of the release's image with its env and `command`; Ok when it exits
/// 0 within `deadline`.
async fn run_migration(
    cx: &UpgradeCtx<'_>,
    release: &Release<'_>,
    command: &[String],
    deadline: Duration,
) -> Result<String, String> {
    let (ctx, stack, next) = (cx.ctx, cx.stack, release.def);
    let key = format!("{}.migrate", next.name);
    let mut oneshot = next.clone();
    oneshot.name = key.clone();
    oneshot.command = Some(command.to_vec());
    oneshot.ports = Vec::new();
    oneshot.health = None;
    let started = clock::instant_now();
    ctx.backend_call(async { stack.start_service(&oneshot, &release.env).await })
        .await
        .map_err(|error| format!("could not start the migration container: {error}"))?;
    let outcome = async {
        loop {
            let state = stack.state(&key).await;
            match state {
                Ok(state) if !state.running => return Ok(state.exit_code),
                Ok(_) => {}
                Err(error) => return Err(error.to_string()),
            }
            if since(started) >= deadline {
                return Err(format!("still running after its {} deadline", fmt(deadline)));
            }
            clock::sleep(Duration::from_millis(100)).await;
        }
    }
    .await;
    let logs = stack.logs_tail(&key, 5).await.unwrap_or_default();
    let _ = ctx.backend_call(async { stack.remove(&key).await }).await;
    let last = logs.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
    match outcome {
        Ok(Some(0)) => Ok(format!("exit 0 after {}", fmt(since(started)))),
        Ok(code) => {
            let code = code.map_or("no exit code".to_owned(), |c| format!("exit {c}"));
            Err(if last.is_empty() { code } else { format!("{code}: {last}") })
        }
        Err(reason) => Err(reason),
    }
}

/// Run a data hook inside `service`'s container; Ok with a short detail on exit 0.
pub(super) async fn run_hook(
    cx: &UpgradeCtx<'_>,
    service: &str,
    command: &[String],
) -> Result<String, String> {
    let started = clock::instant_now();
    let outcome = cx
        .ctx
        .backend_call(async { cx.stack.exec(service, command, HOOK_TIMEOUT).await })
        .await
        .map_err(|error| error.to_string())?;
    let last = outcome.output.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    match outcome.exit_code {
        Some(0) => Ok(format!("`{}` exit 0 in {}", command.join(" "), fmt(since(started)))),
        Some(code) => Err(format!("`{}` exit {code}: {last}", command.join(" "))),
        None => Err(format!("`{}` did not finish within {}", command.join(" "), fmt(HOOK_TIMEOUT))),
    }
}
