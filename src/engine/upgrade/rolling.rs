//! Strategy `rolling`: replace the replicas of a replicated service `max-unavailable` at a time.
//! Each batch leaves rotation (the service's name and the harness's traffic stop reaching it), is
//! stopped gracefully and replaced by the new version, and rejoins rotation once every replica of
//! the batch is healthy within the deadline. The first batch that fails ends the attempt; the
//! replicas already replaced keep serving until the rollback replaces them back, one at a time.
//!
//! Example: `upgrade: { service: web, image: web:2, strategy: rolling, max-unavailable: 1 }`.

use super::{Attempt, Release, Trouble, UpgradeCtx, UpgradeRecord, fmt, since, stop_grace};
use crate::backend::BackendError;
use crate::clock;
use crate::engine::run::wait_ready;
use crate::journal::UpgradeStage;

/// Replace the replicas batch by batch.
pub(super) async fn roll(
    cx: &UpgradeCtx<'_>,
    release: &Release<'_>,
    max_unavailable: u32,
) -> Result<(), Attempt> {
    let keys = release.def.replica_keys();
    let batch = usize::try_from(max_unavailable).unwrap_or(1).max(1);
    for chunk in keys.chunks(batch) {
        let replaced = replace_replicas(cx, release, chunk, true);
        match cx.ctx.interruptible(replaced).await {
            None => return Err(Attempt::Interrupted),
            Some(Err(Replace::Backend(reason))) => return Err(Attempt::Broken(reason)),
            Some(Err(Replace::Stage(stage, reason))) => {
                cx.record(stage, false, Some(reason.clone()));
                let reason = if stage == UpgradeStage::Healthy {
                    format!("not healthy within the {} deadline: {reason}", fmt(release.deadline))
                } else {
                    reason
                };
                return Err(Attempt::Failed(reason));
            }
            Some(Ok(healthy)) => cx.record(UpgradeStage::Healthy, true, Some(healthy)),
        }
    }
    Ok(())
}

/// Rolling rollback: replace every replica that does not run the previous image, one replica at
/// a time, then restore the data. The replicas still on the previous version keep serving
/// throughout.
pub(super) async fn roll_back(
    cx: &UpgradeCtx<'_>,
    upgrade: &UpgradeRecord,
) -> Result<String, Trouble> {
    let previous = &upgrade.previous;
    let wanted = previous.image.reference();
    let release = cx.release(previous, previous.startup_timeout);
    let started = clock::instant_now();
    let mut replaced = Vec::new();
    for key in previous.replica_keys() {
        let image = cx.stack.image_of(&key).await;
        if image.as_deref().is_ok_and(|image| image == wanted) {
            continue;
        }
        let keys = [key.clone()];
        replace_replicas(cx, &release, &keys, false).await.map_err(|error| match error {
            Replace::Backend(reason) => Trouble::Backend(reason),
            Replace::Stage(_, reason) => {
                Trouble::Failed(format!("the previous version did not come back: {reason}"))
            }
        })?;
        replaced.push(format!("`{key}`"));
    }
    super::rollback::restore_data(cx, upgrade).await?;
    Ok(format!(
        "{} back to {wanted}, healthy {} after the rollback began",
        if replaced.is_empty() {
            "no replica needed to go".to_owned()
        } else {
            replaced.join(", ")
        },
        fmt(since(started))
    ))
}

/// Why replacing replicas stopped.
enum Replace {
    /// The stage that failed, and why: the release's result.
    Stage(UpgradeStage, String),
    /// The backend could not carry out the replacement (see [`Trouble::Backend`]).
    Backend(String),
}

/// Take `keys` out of rotation, replace them with the release, wait for their health within its
/// deadline, put them back in rotation. With `announce`, the `switched` stage is recorded the
/// moment the replicas run the new image (before their health is judged). `Ok` is the `healthy`
/// detail; `Err` names the stage that failed, or the backend's trouble.
///
/// The backend is called one operation at a time: the traffic's port look-ups and the health
/// checks never wait behind a graceful stop or a container start.
async fn replace_replicas(
    cx: &UpgradeCtx<'_>,
    release: &Release<'_>,
    keys: &[String],
    announce: bool,
) -> Result<String, Replace> {
    let (ctx, stack, next) = (cx.ctx, cx.stack, release.def);
    let service = next.name.as_str();
    let listed = keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    // Subscribed before the starts, so a crash right after one is not missed.
    let mut exits: Vec<_> = keys.iter().map(|_| ctx.exits.subscribe()).collect();
    let swapped = ctx
        .backend_call(async {
            for key in keys {
                stack.drain(service, key);
            }
            for key in keys {
                // Graceful: requests in flight on the old version finish. A container that is
                // gone already is replaced either way.
                let _ = stack.stop(key, stop_grace(next)).await;
                stack.start_replica(next, key, &release.env, false).await?;
            }
            Ok::<_, BackendError>(())
        })
        .await;
    let switch_time = clock::instant_now();
    if let Err(error) = swapped {
        let reason = format!("could not replace {listed} with {}: {error}", next.image.reference());
        return Err(if error.is_environment() {
            Replace::Backend(reason)
        } else {
            Replace::Stage(UpgradeStage::Switched, reason)
        });
    }
    if announce {
        let detail = format!("{listed} → {}", next.image.reference());
        cx.record(UpgradeStage::Switched, true, Some(detail));
    }
    for key in keys {
        let rx = cx.health(key);
        let exits = exits.remove(0);
        let ready = wait_ready(exits, rx, stack.as_ref(), key, release.deadline, switch_time);
        let ready = ctx.service_wait(ready).await;
        ready.map_err(|reason| {
            Replace::Stage(UpgradeStage::Healthy, format!("`{key}`: {reason}"))
        })?;
    }
    let healthy = format!("{listed} healthy {} after the replacement", fmt(since(switch_time)));
    ctx.backend_call(async {
        for key in keys {
            stack.admit(service, key).await?;
        }
        Ok::<_, BackendError>(())
    })
    .await
    .map_err(|error| {
        Replace::Stage(UpgradeStage::Switched, format!("could not put {listed} back: {error}"))
    })?;
    Ok(healthy)
}
