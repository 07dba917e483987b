//! Strategy `recreate`: stop the old container, start the new one under the same name, wait for
//! its health within the deadline. Downtime is expected and measured by the traffic. A rollback
//! of any strategy that has no old container left recreates the previous version the same way.
//!
//! Example: `upgrade: { service: billing, image: billing:2, strategy: recreate, deadline: 30s }`.

use super::{Attempt, Release, Trouble, UpgradeCtx, fmt, judge_healthy, since, stop_grace};
use crate::clock;
use crate::engine::run::wait_ready;
use crate::journal::UpgradeStage;

/// Stop the old version before anything else (so its backup holds every write it acknowledged).
pub(super) async fn stop_old(cx: &UpgradeCtx<'_>) -> Result<(), Attempt> {
    let stopped = cx
        .ctx
        .interruptible(
            cx.ctx.backend_call(async { cx.stack.stop(cx.service, cx.stop_grace()).await }),
        )
        .await;
    match stopped {
        None => Err(Attempt::Interrupted),
        Some(Err(error)) => {
            Err(Attempt::Failed(format!("could not stop the old version: {error}")))
        }
        Some(Ok(())) => Ok(()),
    }
}

/// Start the release in place of the stopped old version and wait for its health.
pub(super) async fn replace(cx: &UpgradeCtx<'_>, release: &Release<'_>) -> Result<(), Attempt> {
    let ctx = cx.ctx;
    // Subscribed before the start, so a crash right after it is not missed.
    let exits = ctx.exits.subscribe();
    let switched = ctx.interruptible(recreate(cx, release)).await;
    let switch_time = clock::instant_now();
    match switched {
        None => return Err(Attempt::Interrupted),
        Some(Err(Trouble::Backend(reason))) => return Err(Attempt::Broken(reason)),
        Some(Err(Trouble::Failed(reason))) => {
            cx.record(UpgradeStage::Switched, false, Some(reason.clone()));
            return Err(Attempt::Failed(reason));
        }
        Some(Ok(())) => {
            cx.record(UpgradeStage::Switched, true, Some(release.def.image.reference().to_owned()))
        }
    }

    let rx = cx.health(cx.service);
    let ready = wait_ready(exits, rx, cx.stack.as_ref(), cx.service, release.deadline, switch_time);
    let healthy = ctx.service_wait(ctx.interruptible(ready)).await;
    let detail = || format!("healthy {} after the switch", fmt(since(switch_time)));
    judge_healthy(cx, release.deadline, healthy, detail)
}

/// Stop the running container (graceful) and start the release in its place.
pub(super) async fn recreate(cx: &UpgradeCtx<'_>, release: &Release<'_>) -> Result<(), Trouble> {
    let (stack, next) = (cx.stack, release.def);
    cx.ctx
        .backend_call(async {
            // A container that is gone or stopped already is fine: it is replaced either way.
            let _ = stack.stop(&next.name, stop_grace(next)).await;
            stack.start_service(next, &release.env).await
        })
        .await
        .map(|_| ())
        .map_err(|error| {
            Trouble::from_backend(format!("could not start {}", next.image.reference()), &error)
        })
}
