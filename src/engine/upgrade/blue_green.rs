//! Strategy `blue-green`: start the new version beside the old one (key `SERVICE.green`, its own
//! ports) and wait until it is healthy, then move the service's name to it without losing a
//! request ([`take_over`]); the old one stays as `SERVICE.blue` until the upgrade is verified,
//! then it is stopped gracefully and removed. The rollback ([`switch_back`]) is the same
//! hand-over towards the old container.
//!
//! Example: `upgrade: { service: billing, image: billing:2, strategy: blue-green }`.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Attempt, Release, UpgradeCtx, UpgradeRecord, fmt, since};
use crate::backend::RunScope;
use crate::clock;
use crate::engine::health::{HealthState, spawn_monitor};
use crate::engine::run::wait_ready;
use crate::journal::UpgradeStage;
use crate::scenario::model::Scenario;

/// Start the release beside the old version as `SERVICE.green` and wait for its health with a
/// temporary monitor; then [`take_over`] moves the service's name to it without losing a
/// request, and the old one becomes `SERVICE.blue`.
pub(super) async fn switch_to_green(
    cx: &UpgradeCtx<'_>,
    release: &Release<'_>,
) -> Result<(), Attempt> {
    let (ctx, stack, service, next) = (cx.ctx, cx.stack, cx.service, release.def);
    let drain = drain_period(cx.scenario, service);
    let green_key = format!("{service}.green");
    let mut green = next.clone();
    green.name = green_key.clone();
    // Subscribed before the start, so a crash right after it is not missed.
    let exits = ctx.exits.subscribe();
    let start = ctx.backend_call(async { stack.start_service(&green, &release.env).await });
    let started = ctx.interruptible(start).await.ok_or(Attempt::Interrupted)?;
    let start_time = clock::instant_now();
    if let Err(error) = started {
        let reason =
            format!("could not start {} beside the old version: {error}", next.image.reference());
        cx.record(UpgradeStage::Switched, false, Some(reason.clone()));
        return Err(Attempt::Failed(reason));
    }
    let stop = CancellationToken::new();
    let _stop_on_drop = stop.clone().drop_guard();
    let (rx, _task) = spawn_monitor(
        green.clone(),
        stack.clone(),
        ctx.journal.clone(),
        ctx.http.clone(),
        stop.clone(),
    );
    let ready =
        wait_ready(exits, rx.clone(), stack.as_ref(), &green_key, release.deadline, start_time);
    let healthy = ctx.service_wait(ctx.interruptible(ready)).await;
    let detail = || format!("`{green_key}` healthy {} after its start", fmt(since(start_time)));
    super::judge_healthy(cx, release.deadline, healthy, detail)?;

    let handover =
        Handover { candidate: &green_key, rx, monitor: stop, timeout: release.deadline, drain };
    let switched = ctx.interruptible(take_over(cx, handover, |_| {
        cx.record(
            UpgradeStage::Switched,
            true,
            Some(format!(
                "`{service}` → {} (the old version is `{service}.blue`)",
                next.image.reference()
            )),
        );
    }));
    match switched.await {
        None => Err(Attempt::Interrupted),
        Some(Ok(_)) => Ok(()),
        Some(Err(TakeOverError::BeforeSwitch(reason))) => {
            let reason = format!("could not switch `{service}` to the new version: {reason}");
            cx.record(UpgradeStage::Switched, false, Some(reason.clone()));
            Err(Attempt::Failed(reason))
        }
        Some(Err(TakeOverError::AfterSwitch(reason))) => {
            Err(Attempt::Failed(format!("not healthy after the switch: {reason}")))
        }
    }
}

/// The upgrade is verified: stop the old version (`SERVICE.blue`) and remove it.
pub(super) async fn retire_blue(cx: &UpgradeCtx<'_>) -> Result<(), Attempt> {
    let blue = format!("{}.blue", cx.service);
    // Gracefully: the old version left the name a drain period ago, but a caller that
    // resolved it before may still be finishing a request.
    let removed =
        cx.ctx.backend_call(async { cx.stack.retire(&blue, cx.stop_grace()).await }).await;
    match removed {
        Err(error) => Err(Attempt::Failed(format!("could not remove the old version: {error}"))),
        Ok(_) => Ok(()),
    }
}

/// Blue-green rollback: the old container still exists (`SERVICE.blue` after the switch, `SERVICE`
/// before it). Switch back if needed (the same lossless [`take_over`], judged by a temporary
/// monitor of the old container), stop the new one gracefully and remove it, restore the data.
pub(super) async fn switch_back(
    cx: &UpgradeCtx<'_>,
    upgrade: &UpgradeRecord,
    switched: bool,
) -> Result<String, String> {
    let (ctx, stack, service) = (cx.ctx, cx.stack, cx.service);
    let blue = format!("{service}.blue");
    let green = format!("{service}.green");
    let previous = upgrade.previous.image.reference();
    let started = clock::instant_now();
    if switched {
        let mut old = upgrade.previous.clone();
        old.name = blue.clone();
        let stop = CancellationToken::new();
        let _stop_on_drop = stop.clone().drop_guard();
        let (rx, _task) =
            spawn_monitor(old, stack.clone(), ctx.journal.clone(), ctx.http.clone(), stop.clone());
        let handover = Handover {
            candidate: &blue,
            rx,
            monitor: stop,
            timeout: upgrade.previous.startup_timeout,
            drain: drain_period(cx.scenario, service),
        };
        take_over(cx, handover, |_| {}).await.map_err(|error| match error {
            TakeOverError::BeforeSwitch(reason) => {
                format!("could not switch back to the old version: {reason}")
            }
            TakeOverError::AfterSwitch(reason) => {
                format!("the previous version did not come back: {reason}")
            }
        })?;
    }
    // Stop the new version before touching the data it may be writing. Gracefully: before the
    // switch it never served; after it, the drain period has passed.
    ctx.backend_call(async { stack.retire(&green, cx.stop_grace()).await })
        .await
        .map_err(|error| format!("could not remove the new version: {error}"))?;
    super::rollback::restore_data(cx, upgrade).await?;
    if !switched {
        return Ok(format!("{previous} kept serving; the new version was removed"));
    }
    Ok(format!(
        "switched back to {previous}, healthy {} after the rollback began",
        fmt(since(started))
    ))
}

/// Whether `service`'s name has been moved away from its old container.
pub(super) fn switched_away(stack: &dyn RunScope, service: &str) -> bool {
    stack.instance_id(&format!("{service}.blue")).is_ok()
}

/// The longest a request sent to a service's old container before a blue-green switch can still
/// be in flight: the longest `timeout` of the traffic aimed at the service and of its health
/// check. The old container keeps its endpoint that long after the switch, like a load
/// balancer's deregistration delay, so no request the harness (or the old container's last
/// health check) sent before the switch is cut.
fn drain_period(scenario: &Scenario, service: &str) -> Duration {
    let traffic = scenario.traffic.values().filter(|t| t.request.service == service);
    let health = scenario.stack.services.get(service).and_then(|s| s.health.as_ref());
    traffic.map(|t| t.timeout).chain(health.map(|h| h.timeout)).max().unwrap_or_default()
}

/// One move of a service's name to another of its containers.
struct Handover<'a> {
    /// The key of the container that takes the name (`SERVICE.green`, or `SERVICE.blue` back).
    candidate: &'a str,
    /// The candidate's health, from its own (temporary) monitor...
    rx: watch::Receiver<HealthState>,
    /// ...stopped once it has judged the candidate (its key is gone after the switch).
    monitor: CancellationToken,
    /// How long the candidate, and then the service, may take to pass a health check.
    timeout: Duration,
    /// How long the displaced container keeps its endpoint after the switch.
    drain: Duration,
}

enum TakeOverError {
    /// The name did not move: the service still runs on its old container (the candidate may
    /// carry the name's alias beside it until it is removed).
    BeforeSwitch(String),
    /// The name moved, but the service is not healthy on its new container.
    AfterSwitch(String),
}

/// Move a service's name to `candidate` without losing a request:
/// 1. the candidate also takes the service's alias (it serves nothing yet, so its reconnect cuts
///    nothing) and must pass a health check begun after that reconnect (its outgoing connections
///    may have broken with it);
/// 2. [`RunScope::promote`]: the host side (traffic, probes, health monitor) moves at once and
///    the traffic's port caches look up again before their next request; `switched` is called
///    at that moment (to record it);
/// 3. the service's own monitor must pass on the new container;
/// 4. the displaced container keeps its endpoint until `drain` after the switch (requests sent
///    to it before finish), then leaves the name.
///
/// Returns the displaced key, which still runs (the caller keeps it or retires it).
async fn take_over(
    cx: &UpgradeCtx<'_>,
    handover: Handover<'_>,
    switched: impl FnOnce(&str),
) -> Result<String, TakeOverError> {
    let (ctx, stack, service) = (cx.ctx, cx.stack, cx.service);
    let Handover { candidate, rx, monitor, timeout, drain } = handover;
    let exits = ctx.exits.subscribe();
    let shared = ctx.backend_call(async { stack.offer(service, candidate).await });
    shared.await.map_err(|error| TakeOverError::BeforeSwitch(error.to_string()))?;
    let shared_at = clock::instant_now();
    let ready = wait_ready(exits, rx, stack.as_ref(), candidate, timeout, shared_at);
    let ready = ctx.service_wait(ready).await;
    monitor.cancel();
    ready.map_err(|reason| {
        TakeOverError::BeforeSwitch(format!(
            "`{candidate}` not healthy after taking the name: {reason}"
        ))
    })?;

    let exits = ctx.exits.subscribe();
    let switch = ctx.backend_call(async { stack.promote(service, candidate).await });
    let displaced = switch.await.map_err(|error| TakeOverError::BeforeSwitch(error.to_string()))?;
    let switch_time = clock::instant_now();
    switched(&displaced);

    // The service's own monitor follows the name: its first check after the switch must pass.
    let rx = cx.health(service);
    let ready = wait_ready(exits, rx, stack.as_ref(), service, timeout, switch_time);
    let ready = ctx.service_wait(ready).await;
    ready.map_err(TakeOverError::AfterSwitch)?;

    let remaining = drain.saturating_sub(since(switch_time));
    if !remaining.is_zero() {
        ctx.declared_wait(remaining).await;
    }
    let withdrawn = ctx.backend_call(async { stack.withdraw(&displaced).await });
    withdrawn.await.map_err(|error| {
        TakeOverError::AfterSwitch(format!("could not take the name from `{displaced}`: {error}"))
    })?;
    Ok(displaced)
}
