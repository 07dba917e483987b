//! Upgrade and rollback steps: swap a service's image, judge the new version (progress deadline,
//! migration, watch-period SLO gate), and on failure restore the previous image and, with a
//! `backup` service, its data. Every stage is an `upgrade` event; checks judge them.
//!
//! Strategy `recreate`: stop the old container, start the new one under the same name (downtime is
//! expected and measured by the traffic). The rollback is a recreate with the previous image.
//!
//! Strategy `blue-green`: start the new version beside the old one (key `SERVICE.green`, its own
//! ports), wait until it is healthy, then switch without losing a request ([`take_over`]): the
//! service's name (network alias, and the key the traffic and the health monitor look up) moves
//! to the new container while the old one keeps its endpoint for a drain period; the old one
//! stays as `SERVICE.blue` until the upgrade is verified, then it is stopped gracefully and
//! removed. A failure before the switch removes the new container; the old one never stopped
//! serving. A failure after it switches back. The backup is taken while the old version still serves: writes it accepts between the
//! backup and a restore are lost, as with `recreate`'s restore. A `rollback` step after a
//! completed blue-green upgrade has no old container left and recreates the previous version.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::health::HealthState;
use super::run::{Context, wait_ready};
use super::steps::StepEnd;
use crate::backend::RunScope;
use crate::clock;
use crate::journal::{EventKind, UpgradeStage};
use crate::scenario::model::{
    MigrateWhen, OnFailure, Scenario, Service, Strategy, Upgrade, VersionEndpoint,
};

/// Grace period for stopping the old version.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a data hook (`backup` / `restore`) may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// What the steps phase knows about services beyond the scenario: the running definition of each
/// (its image changes with upgrades), health receivers, and the latest upgrade of each service.
pub struct ServiceState {
    /// Latest health observation per service.
    pub health: HashMap<String, watch::Receiver<HealthState>>,
    /// The definition each service currently runs.
    pub current: HashMap<String, Service>,
    /// The latest upgrade per service, for rollbacks.
    pub upgrades: HashMap<String, UpgradeRecord>,
    /// Run id, for templates.
    pub run_id: String,
    /// Where links and sinks listen, for templates.
    pub endpoints: super::Endpoints,
}

/// What a rollback needs to know about an upgrade.
#[derive(Debug, Clone)]
pub struct UpgradeRecord {
    /// The upgrade step's name.
    pub step: String,
    /// The definition before the upgrade.
    pub previous: Service,
    /// The data service with backup/restore hooks, if any.
    pub backup: Option<String>,
    /// Where the version is reported.
    pub version: Option<VersionEndpoint>,
    /// Whether it has been rolled back already.
    pub rolled_back: bool,
    /// How the upgrade replaced the containers.
    pub strategy: Strategy,
    /// Whether it completed (a blue-green upgrade then has no old container left).
    pub completed: bool,
}

/// Carry out an `upgrade` step.
pub async fn run_upgrade(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &mut ServiceState,
    step: &str,
    spec: &Upgrade,
) -> StepEnd {
    let service = spec.service.as_str();
    let previous = state.current.get(service).cloned().expect("validation checks the service");
    let mut next = previous.clone();
    next.image = spec.target.clone();
    record(
        ctx,
        step,
        service,
        UpgradeStage::Started,
        true,
        Some(format!("{} → {}", previous.image.reference(), next.image.reference())),
    );
    state.upgrades.insert(
        service.to_owned(),
        UpgradeRecord {
            step: step.to_owned(),
            previous: previous.clone(),
            backup: spec.backup.clone(),
            version: spec.version.clone(),
            rolled_back: false,
            strategy: spec.strategy,
            completed: false,
        },
    );
    if let Some(endpoint) = &spec.version {
        observe_version(ctx, stack, service, step, endpoint, "before").await;
    }

    let attempt = attempt_upgrade(ctx, stack, scenario, state, step, spec, &next).await;
    match attempt {
        Attempt::Completed => {
            state.current.insert(service.to_owned(), next);
            if let Some(record) = state.upgrades.get_mut(service) {
                record.completed = true;
            }
            record(ctx, step, service, UpgradeStage::Completed, true, None);
            StepEnd::Done
        }
        Attempt::Interrupted => StepEnd::Interrupted,
        Attempt::Failed(reason) => {
            // The new version may be (partly) running: from here on, `current` is what runs. A
            // blue-green upgrade that failed before its switch left the old version serving.
            if spec.strategy == Strategy::Recreate || switched_away(stack, service).await {
                state.current.insert(service.to_owned(), next);
            }
            record(ctx, step, service, UpgradeStage::Failed, false, Some(reason));
            match spec.on_failure {
                OnFailure::Rollback => match rollback(ctx, stack, scenario, state, service).await {
                    Some(_) => StepEnd::Done,
                    None => StepEnd::Interrupted,
                },
                OnFailure::Abort => StepEnd::Abort,
                OnFailure::Continue => StepEnd::Done,
            }
        }
    }
}

/// Carry out a `rollback` step: roll back the latest upgrade of `service`.
pub async fn run_rollback(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &mut ServiceState,
    service: &str,
) -> StepEnd {
    match state.upgrades.get(service) {
        None => StepEnd::Failed(format!("`{service}` has not been upgraded in this run")),
        Some(record) if record.rolled_back => {
            StepEnd::Failed(format!("the upgrade `{}` was rolled back already", record.step))
        }
        Some(_) => match rollback(ctx, stack, scenario, state, service).await {
            Some(_) => StepEnd::Done,
            None => StepEnd::Interrupted,
        },
    }
}

enum Attempt {
    Completed,
    Failed(String),
    Interrupted,
}

async fn attempt_upgrade(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &ServiceState,
    step: &str,
    spec: &Upgrade,
    next: &Service,
) -> Attempt {
    let service = spec.service.as_str();
    let blue_green = spec.strategy == Strategy::BlueGreen;
    // Recreate stops the old version first: the backup then holds every write it acknowledged,
    // and a restore after a failed upgrade loses nothing the old version accepted. Blue-green
    // and rolling keep it serving.
    if spec.strategy == Strategy::Recreate {
        let stopped = ctx
            .interruptible(ctx.backend_call(async { stack.stop(service, STOP_GRACE).await }))
            .await;
        match stopped {
            None => return Attempt::Interrupted,
            Some(Err(error)) => {
                return Attempt::Failed(format!("could not stop the old version: {error}"));
            }
            Some(Ok(())) => {}
        }
    }
    if let Some(data) = &spec.backup {
        let hook = scenario.stack.services[data].backup.clone().unwrap_or_default();
        match ctx.interruptible(run_hook(ctx, stack, data, &hook)).await {
            None => return Attempt::Interrupted,
            Some(Ok(detail)) => {
                record(ctx, step, service, UpgradeStage::Backup, true, Some(detail))
            }
            Some(Err(reason)) => {
                record(ctx, step, service, UpgradeStage::Backup, false, Some(reason.clone()));
                return Attempt::Failed(format!("backup of `{data}` failed: {reason}"));
            }
        }
    }
    let env = super::render_env(scenario, next, &state.run_id, &state.endpoints);
    let env_ref = &env;
    let migrate = |when: MigrateWhen| async move {
        let migration = spec.migrate.as_ref().filter(|m| m.when == when)?;
        let run = run_migration(ctx, stack, next, env_ref, &migration.command, migration.deadline);
        match ctx.interruptible(run).await {
            None => Some(Attempt::Interrupted),
            Some(Ok(detail)) => {
                record(ctx, step, service, UpgradeStage::Migration, true, Some(detail));
                None
            }
            Some(Err(reason)) => {
                record(ctx, step, service, UpgradeStage::Migration, false, Some(reason.clone()));
                Some(Attempt::Failed(format!("migration failed: {reason}")))
            }
        }
    };
    if let Some(stop) = migrate(MigrateWhen::Before).await {
        return stop;
    }

    let replaced = match spec.strategy {
        Strategy::BlueGreen => {
            let drain = drain_period(scenario, service);
            switch_to_green(ctx, stack, state, step, spec, next, &env, drain).await
        }
        Strategy::Recreate => recreate_and_wait(ctx, stack, state, step, spec, next, &env).await,
        Strategy::Rolling => roll(ctx, stack, state, step, spec, next, &env).await,
    };
    if let Err(stop) = replaced {
        return stop;
    }

    if let Some(stop) = migrate(MigrateWhen::After).await {
        return stop;
    }
    if let Some(endpoint) = &spec.version {
        observe_version(ctx, stack, service, step, endpoint, "after-switch").await;
    }

    if let Some(watch) = &spec.watch {
        let from_us = ctx.journal.offset().as_micros() as u64;
        if !ctx.declared_wait(watch.duration).await {
            return Attempt::Interrupted;
        }
        let to_us = ctx.journal.offset().as_micros() as u64;
        // The requests of the window still in flight are part of it: a slow or hanging one
        // settles by its deadline (due time + the traffic's timeout), and is counted then.
        let timeout = scenario.traffic.get(&watch.traffic).map_or(Duration::ZERO, |t| t.timeout);
        let settling =
            crate::traffic::await_window(&ctx.journal, &watch.traffic, from_us, to_us, timeout);
        if ctx.interruptible(settling).await.is_none() {
            return Attempt::Interrupted;
        }
        let (ok, total) = traffic_outcomes(ctx, &watch.traffic, from_us, to_us);
        let availability = if total == 0 { 100.0 } else { 100.0 * ok as f64 / total as f64 };
        let detail = format!(
            "`{}`: {ok}/{total} requests succeeded ({availability:.1}%), gate {}%",
            watch.traffic, watch.availability
        );
        if total == 0 || availability < watch.availability {
            let detail = if total == 0 {
                format!("`{}` sent no request during the watch period", watch.traffic)
            } else {
                detail
            };
            record(ctx, step, service, UpgradeStage::Watch, false, Some(detail.clone()));
            return Attempt::Failed(format!("SLO gate breached: {detail}"));
        }
        record(ctx, step, service, UpgradeStage::Watch, true, Some(detail));
    }
    if blue_green {
        // Verified: the old version is no longer needed.
        let blue = format!("{service}.blue");
        // Gracefully: the old version left the name a drain period ago, but a caller that
        // resolved it before may still be finishing a request.
        let removed = ctx.backend_call(async { stack.retire(&blue, STOP_GRACE).await }).await;
        if let Err(error) = removed {
            return Attempt::Failed(format!("could not remove the old version: {error}"));
        }
    }
    Attempt::Completed
}

/// Recreate: start `next` in place of the stopped old version and wait for its health.
async fn recreate_and_wait(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    state: &ServiceState,
    step: &str,
    spec: &Upgrade,
    next: &Service,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<(), Attempt> {
    let service = spec.service.as_str();
    // Subscribed before the start, so a crash right after it is not missed.
    let exits = ctx.exits.subscribe();
    let switched = ctx.interruptible(recreate(ctx, stack, service, next, env)).await;
    let switch_time = clock::instant_now();
    match switched {
        None => return Err(Attempt::Interrupted),
        Some(Err(reason)) => {
            record(ctx, step, service, UpgradeStage::Switched, false, Some(reason.clone()));
            return Err(Attempt::Failed(reason));
        }
        Some(Ok(())) => record(
            ctx,
            step,
            service,
            UpgradeStage::Switched,
            true,
            Some(next.image.reference().to_owned()),
        ),
    }

    let rx = state.health.get(service).cloned().expect("every service has a monitor");
    let healthy = ctx
        .interruptible(wait_ready(exits, rx, stack.as_ref(), service, spec.deadline, switch_time))
        .await;
    super::run::Accounting::add(&ctx.accounting.service_wait, since(switch_time));
    let detail = || format!("healthy {} after the switch", fmt(since(switch_time)));
    judge_healthy(ctx, step, spec, healthy, detail)
}

/// Rolling: replace the replicas `max-unavailable` at a time. Each batch leaves rotation (the
/// service's name and the harness's traffic stop reaching it), is stopped gracefully and replaced
/// by the new version, and rejoins rotation once every replica of the batch is healthy within the
/// deadline. The first batch that fails ends the attempt; the replicas already replaced keep
/// serving until the rollback replaces them back.
async fn roll(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    state: &ServiceState,
    step: &str,
    spec: &Upgrade,
    next: &Service,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<(), Attempt> {
    let service = spec.service.as_str();
    let keys = next.replica_keys();
    let batch = usize::try_from(spec.max_unavailable).unwrap_or(1).max(1);
    for chunk in keys.chunks(batch) {
        let replaced =
            replace_replicas(ctx, stack, state, next, env, chunk, spec.deadline, Some(step));
        match ctx.interruptible(replaced).await {
            None => return Err(Attempt::Interrupted),
            Some(Err((stage, reason))) => {
                record(ctx, step, service, stage, false, Some(reason.clone()));
                let reason = if stage == UpgradeStage::Healthy {
                    format!("not healthy within the {} deadline: {reason}", fmt(spec.deadline))
                } else {
                    reason
                };
                return Err(Attempt::Failed(reason));
            }
            Some(Ok(healthy)) => {
                record(ctx, step, service, UpgradeStage::Healthy, true, Some(healthy));
            }
        }
    }
    Ok(())
}

/// Take `keys` out of rotation, replace them with `next`, wait for their health within
/// `deadline`, put them back in rotation. With `step`, the `switched` stage is recorded the
/// moment the replicas run the new image (before their health is judged). `Ok` is the `healthy`
/// detail; `Err` names the stage that failed.
///
/// Only the stack's read lock is taken, one call at a time: the stack's own registry is locked
/// for moments, so port look-ups of the traffic and health checks never wait behind a graceful
/// stop or a container start.
#[expect(clippy::too_many_arguments, reason = "the rolling stages share one replacement routine")]
async fn replace_replicas(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    state: &ServiceState,
    next: &Service,
    env: &std::collections::BTreeMap<String, String>,
    keys: &[String],
    deadline: Duration,
    step: Option<&str>,
) -> Result<String, (UpgradeStage, String)> {
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
                let _ = stack.stop(key, STOP_GRACE).await;
                stack.start_replica(next, key, env, false).await?;
            }
            Ok::<_, crate::backend::BackendError>(())
        })
        .await;
    let switch_time = clock::instant_now();
    if let Err(error) = swapped {
        return Err((
            UpgradeStage::Switched,
            format!("could not replace {listed} with {}: {error}", next.image.reference()),
        ));
    }
    if let Some(step) = step {
        let detail = format!("{listed} → {}", next.image.reference());
        record(ctx, step, service, UpgradeStage::Switched, true, Some(detail));
    }
    for key in keys {
        let rx = state.health.get(key).cloned().expect("every replica has a monitor");
        let exits = exits.remove(0);
        let ready = wait_ready(exits, rx, stack.as_ref(), key, deadline, switch_time).await;
        super::run::Accounting::add(&ctx.accounting.service_wait, since(switch_time));
        ready.map_err(|reason| (UpgradeStage::Healthy, format!("`{key}`: {reason}")))?;
    }
    let healthy = format!("{listed} healthy {} after the replacement", fmt(since(switch_time)));
    ctx.backend_call(async {
        for key in keys {
            stack.admit(service, key).await?;
        }
        Ok::<_, crate::backend::BackendError>(())
    })
    .await
    .map_err(|error| (UpgradeStage::Switched, format!("could not put {listed} back: {error}")))?;
    Ok(healthy)
}

/// Record the `healthy` stage from a wait's outcome; `Err` ends the attempt.
fn judge_healthy(
    ctx: &Context,
    step: &str,
    spec: &Upgrade,
    waited: Option<Result<(), String>>,
    healthy_detail: impl FnOnce() -> String,
) -> Result<(), Attempt> {
    let service = spec.service.as_str();
    match waited {
        None => Err(Attempt::Interrupted),
        Some(Err(reason)) => {
            // No log fetch here: it costs ~100 ms, and the rollback must start at once. The
            // rollback captures the failed release's logs before it replaces the container.
            let reason =
                format!("not healthy within the {} deadline: {reason}", fmt(spec.deadline));
            record(ctx, step, service, UpgradeStage::Healthy, false, Some(reason.clone()));
            Err(Attempt::Failed(reason))
        }
        Some(Ok(())) => {
            record(ctx, step, service, UpgradeStage::Healthy, true, Some(healthy_detail()));
            Ok(())
        }
    }
}

/// Blue-green: start `next` beside the old version as `SERVICE.green` and wait for its health
/// with a temporary monitor; then [`take_over`] moves the service's name to it without losing a
/// request, and the old one becomes `SERVICE.blue`.
#[expect(clippy::too_many_arguments, reason = "one step's context, as the other strategies")]
async fn switch_to_green(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    state: &ServiceState,
    step: &str,
    spec: &Upgrade,
    next: &Service,
    env: &std::collections::BTreeMap<String, String>,
    drain: Duration,
) -> Result<(), Attempt> {
    let service = spec.service.as_str();
    let green_key = format!("{service}.green");
    let mut green = next.clone();
    green.name = green_key.clone();
    // Subscribed before the start, so a crash right after it is not missed.
    let exits = ctx.exits.subscribe();
    let start = ctx.backend_call(async { stack.start_service(&green, env).await });
    let started = ctx.interruptible(start).await.ok_or(Attempt::Interrupted)?;
    let start_time = clock::instant_now();
    if let Err(error) = started {
        let reason =
            format!("could not start {} beside the old version: {error}", next.image.reference());
        record(ctx, step, service, UpgradeStage::Switched, false, Some(reason.clone()));
        return Err(Attempt::Failed(reason));
    }
    let stop = CancellationToken::new();
    let _stop_on_drop = stop.clone().drop_guard();
    let (rx, _task) = super::health::spawn_monitor(
        green.clone(),
        stack.clone(),
        ctx.journal.clone(),
        ctx.http.clone(),
        stop.clone(),
    );
    let ready =
        wait_ready(exits, rx.clone(), stack.as_ref(), &green_key, spec.deadline, start_time);
    let healthy = ctx.interruptible(ready).await;
    super::run::Accounting::add(&ctx.accounting.service_wait, since(start_time));
    let detail = || format!("`{green_key}` healthy {} after its start", fmt(since(start_time)));
    judge_healthy(ctx, step, spec, healthy, detail)?;

    let handover = Handover {
        service,
        candidate: &green_key,
        rx,
        monitor: stop,
        timeout: spec.deadline,
        drain,
    };
    let switched = ctx.interruptible(take_over(ctx, stack, state, handover, |_| {
        record(
            ctx,
            step,
            service,
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
            record(ctx, step, service, UpgradeStage::Switched, false, Some(reason.clone()));
            Err(Attempt::Failed(reason))
        }
        Some(Err(TakeOverError::AfterSwitch(reason))) => {
            Err(Attempt::Failed(format!("not healthy after the switch: {reason}")))
        }
    }
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
    service: &'a str,
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
/// 2. [`StackHandle::switch`]: the host side (traffic, probes, health monitor) moves at once and
///    the traffic's port caches look up again before their next request; `switched` is called
///    at that moment (to record it);
/// 3. the service's own monitor must pass on the new container;
/// 4. the displaced container keeps its endpoint until `drain` after the switch (requests sent
///    to it before finish), then leaves the name.
///
/// Returns the displaced key, which still runs (the caller keeps it or retires it).
async fn take_over(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    state: &ServiceState,
    handover: Handover<'_>,
    switched: impl FnOnce(&str),
) -> Result<String, TakeOverError> {
    let Handover { service, candidate, rx, monitor, timeout, drain } = handover;
    let exits = ctx.exits.subscribe();
    let shared = ctx.backend_call(async { stack.offer(service, candidate).await });
    shared.await.map_err(|error| TakeOverError::BeforeSwitch(error.to_string()))?;
    let shared_at = clock::instant_now();
    let ready = wait_ready(exits, rx, stack.as_ref(), candidate, timeout, shared_at).await;
    monitor.cancel();
    super::run::Accounting::add(&ctx.accounting.service_wait, since(shared_at));
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
    let rx = state.health.get(service).cloned().expect("every service has a monitor");
    let ready = wait_ready(exits, rx, stack.as_ref(), service, timeout, switch_time).await;
    super::run::Accounting::add(&ctx.accounting.service_wait, since(switch_time));
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

/// Whether `service`'s name has been moved away from its old container (blue-green).
async fn switched_away(stack: &Arc<dyn RunScope>, service: &str) -> bool {
    stack.instance_id(&format!("{service}.blue")).is_ok()
}

/// Roll back the latest upgrade of `service`. `None` when interrupted; `Some(ok)` otherwise. A
/// failing rollback is recorded as such (`rolled-back` with `ok: false`), never hidden.
async fn rollback(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &mut ServiceState,
    service: &str,
) -> Option<bool> {
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
    let switched = blue_green && switched_away(stack, service).await;
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
    let result = if blue_green {
        let back = switch_back(ctx, stack, scenario, state, &upgrade, switched);
        ctx.interruptible(back).await?
    } else if upgrade.strategy == Strategy::Rolling {
        ctx.interruptible(roll_back(ctx, stack, scenario, state, &upgrade)).await?
    } else {
        ctx.interruptible(restore_previous(ctx, stack, scenario, state, &upgrade)).await?
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
                observe_version(ctx, stack, service, step, endpoint, "after-rollback").await;
            }
            Some(true)
        }
        Err(reason) => {
            record(ctx, step, service, UpgradeStage::RolledBack, false, Some(reason));
            Some(false)
        }
    }
}

async fn restore_previous(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &ServiceState,
    upgrade: &UpgradeRecord,
) -> Result<String, String> {
    let service = upgrade.previous.name.as_str();
    // Stop the new version before touching the data it may be writing.
    let stopped = ctx.backend_call(async { stack.stop(service, STOP_GRACE).await });
    if let Err(error) = stopped.await {
        return Err(format!("could not stop the new version: {error}"));
    }
    restore_data(ctx, stack, scenario, upgrade).await?;
    let env = super::render_env(scenario, &upgrade.previous, &state.run_id, &state.endpoints);
    let exits = ctx.exits.subscribe();
    recreate(ctx, stack, service, &upgrade.previous, &env).await?;
    let started = clock::instant_now();
    let rx = state.health.get(service).cloned().expect("every service has a monitor");
    let ready =
        wait_ready(exits, rx, stack.as_ref(), service, upgrade.previous.startup_timeout, started)
            .await;
    super::run::Accounting::add(&ctx.accounting.service_wait, since(started));
    ready.map_err(|reason| format!("the previous version did not come back: {reason}"))?;
    Ok(format!(
        "{} healthy {} after its start",
        upgrade.previous.image.reference(),
        fmt(since(started))
    ))
}

/// Rolling rollback: replace every replica that does not run the previous image, one replica at
/// a time, then restore the data. The replicas still on the previous version keep serving
/// throughout.
async fn roll_back(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &ServiceState,
    upgrade: &UpgradeRecord,
) -> Result<String, String> {
    let previous = &upgrade.previous;
    let wanted = previous.image.reference();
    let env = super::render_env(scenario, previous, &state.run_id, &state.endpoints);
    let started = clock::instant_now();
    let mut replaced = Vec::new();
    for key in previous.replica_keys() {
        let image = stack.image_of(&key).await;
        if image.as_deref().is_ok_and(|image| image == wanted) {
            continue;
        }
        let keys = [key.clone()];
        replace_replicas(ctx, stack, state, previous, &env, &keys, previous.startup_timeout, None)
            .await
            .map_err(|(_, reason)| format!("the previous version did not come back: {reason}"))?;
        replaced.push(format!("`{key}`"));
    }
    restore_data(ctx, stack, scenario, upgrade).await?;
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

/// Blue-green rollback: the old container still exists (`SERVICE.blue` after the switch, `SERVICE`
/// before it). Switch back if needed (the same lossless [`take_over`], judged by a temporary
/// monitor of the old container), stop the new one gracefully and remove it, restore the data.
async fn switch_back(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &ServiceState,
    upgrade: &UpgradeRecord,
    switched: bool,
) -> Result<String, String> {
    let service = upgrade.previous.name.as_str();
    let blue = format!("{service}.blue");
    let green = format!("{service}.green");
    let previous = upgrade.previous.image.reference();
    let started = clock::instant_now();
    if switched {
        let mut old = upgrade.previous.clone();
        old.name = blue.clone();
        let stop = CancellationToken::new();
        let _stop_on_drop = stop.clone().drop_guard();
        let (rx, _task) = super::health::spawn_monitor(
            old,
            stack.clone(),
            ctx.journal.clone(),
            ctx.http.clone(),
            stop.clone(),
        );
        let handover = Handover {
            service,
            candidate: &blue,
            rx,
            monitor: stop,
            timeout: upgrade.previous.startup_timeout,
            drain: drain_period(scenario, service),
        };
        take_over(ctx, stack, state, handover, |_| {}).await.map_err(|error| match error {
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
    ctx.backend_call(async { stack.retire(&green, STOP_GRACE).await })
        .await
        .map_err(|error| format!("could not remove the new version: {error}"))?;
    restore_data(ctx, stack, scenario, upgrade).await?;
    if !switched {
        return Ok(format!("{previous} kept serving; the new version was removed"));
    }
    Ok(format!(
        "switched back to {previous}, healthy {} after the rollback began",
        fmt(since(started))
    ))
}

/// Run the `restore` hook of the upgrade's data service, if it has one.
async fn restore_data(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    upgrade: &UpgradeRecord,
) -> Result<(), String> {
    let service = upgrade.previous.name.as_str();
    let step = upgrade.step.as_str();
    if let Some(data) = &upgrade.backup {
        let hook = scenario.stack.services[data].restore.clone().unwrap_or_default();
        match run_hook(ctx, stack, data, &hook).await {
            Ok(detail) => record(ctx, step, service, UpgradeStage::Restore, true, Some(detail)),
            Err(reason) => {
                record(ctx, step, service, UpgradeStage::Restore, false, Some(reason.clone()));
                return Err(format!("restore of `{data}` failed: {reason}"));
            }
        }
    }
    Ok(())
}

/// Stop the running container (graceful) and start `next` in its place.
async fn recreate(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    service: &str,
    next: &Service,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    ctx.backend_call(async {
        // A container that is gone or stopped already is fine: it is replaced either way.
        let _ = stack.stop(service, STOP_GRACE).await;
        stack.start_service(next, env).await
    })
    .await
    .map(|_| ())
    .map_err(|error| format!("could not start {}: {error}", next.image.reference()))
}

/// Run a one-shot container of `next`'s image with its env and `command`; Ok when it exits 0
/// within `deadline`.
async fn run_migration(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    next: &Service,
    env: &std::collections::BTreeMap<String, String>,
    command: &[String],
    deadline: Duration,
) -> Result<String, String> {
    let key = format!("{}.migrate", next.name);
    let mut oneshot = next.clone();
    oneshot.name = key.clone();
    oneshot.command = Some(command.to_vec());
    oneshot.ports = Vec::new();
    oneshot.health = None;
    let started = clock::instant_now();
    ctx.backend_call(async { stack.start_service(&oneshot, env).await })
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
async fn run_hook(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    service: &str,
    command: &[String],
) -> Result<String, String> {
    let started = clock::instant_now();
    let outcome = ctx
        .backend_call(async { stack.exec(service, command, HOOK_TIMEOUT).await })
        .await
        .map_err(|error| error.to_string())?;
    let last = outcome.output.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    match outcome.exit_code {
        Some(0) => Ok(format!("`{}` exit 0 in {}", command.join(" "), fmt(since(started)))),
        Some(code) => Err(format!("`{}` exit {code}: {last}", command.join(" "))),
        None => Err(format!("`{}` did not finish within {}", command.join(" "), fmt(HOOK_TIMEOUT))),
    }
}

/// Ask the service's version endpoint and record what it said.
async fn observe_version(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    service: &str,
    step: &str,
    endpoint: &VersionEndpoint,
    moment: &str,
) {
    let started = clock::instant_now();
    observe_version_once(ctx, stack, service, step, endpoint, moment).await;
    super::run::Accounting::add(&ctx.accounting.service_wait, since(started));
}

async fn observe_version_once(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    service: &str,
    step: &str,
    endpoint: &VersionEndpoint,
    moment: &str,
) {
    let replicas = stack.replicas(service);
    let (ok, body) = match replicas {
        None => ask_version(ctx, stack, service, endpoint).await,
        // Every replica must answer, and all the same: a half-rolled-back service is not back.
        Some(keys) => {
            let mut answers = Vec::new();
            for key in &keys {
                answers.push((key, ask_version(ctx, stack, key, endpoint).await));
            }
            let agreed = answers.iter().all(|(_, (ok, body))| *ok && *body == answers[0].1.1);
            if agreed {
                (true, answers[0].1.1.clone())
            } else {
                let listed: Vec<String> =
                    answers.iter().map(|(key, (_, body))| format!("{key}: {body}")).collect();
                (false, format!("replicas disagree: {}", listed.join("; ")))
            }
        }
    };
    ctx.journal.record(EventKind::VersionObserved {
        service: service.to_owned(),
        step: step.to_owned(),
        moment: moment.to_owned(),
        body,
        ok,
    });
}

/// One answer of a container's version endpoint: (success status, body or error).
async fn ask_version(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    service: &str,
    endpoint: &VersionEndpoint,
) -> (bool, String) {
    let port = stack.host_port(service, endpoint.port).await;
    let (ok, body) = match port {
        Err(error) => (false, error.to_string()),
        Ok(port) => {
            let url = format!("http://127.0.0.1:{port}{}", endpoint.path);
            let answer = async {
                let response = ctx.http.get(&url).send().await?;
                let status = response.status().as_u16();
                Ok::<_, reqwest::Error>((status, response.text().await?))
            };
            match tokio::time::timeout(Duration::from_secs(2), answer).await {
                Ok(Ok((status, text))) if (200..300).contains(&status) => {
                    (true, text.trim().chars().take(200).collect())
                }
                Ok(Ok((status, text))) => (
                    false,
                    format!(
                        "status {status}: {}",
                        text.trim().chars().take(160).collect::<String>()
                    ),
                ),
                Ok(Err(error)) => (false, error.to_string()),
                Err(_) => (false, "no answer within 2s".to_owned()),
            }
        }
    };
    (ok, body)
}

/// Successful and total requests of `traffic` scheduled in `[from_us, to_us)`.
fn traffic_outcomes(ctx: &Context, traffic: &str, from_us: u64, to_us: u64) -> (u64, u64) {
    let mut ok = 0;
    let mut total = 0;
    for event in ctx.journal.snapshot() {
        if let EventKind::TrafficRequest { traffic: name, scheduled_us, ok: success, .. } =
            &event.kind
            && name == traffic
            && (from_us..to_us).contains(scheduled_us)
        {
            total += 1;
            ok += u64::from(*success);
        }
    }
    (ok, total)
}

fn record(
    ctx: &Context,
    step: &str,
    service: &str,
    stage: UpgradeStage,
    ok: bool,
    detail: Option<String>,
) {
    ctx.journal.record(EventKind::Upgrade {
        step: step.to_owned(),
        service: service.to_owned(),
        stage,
        ok,
        detail,
    });
}

fn since(instant: tokio::time::Instant) -> Duration {
    clock::instant_now().saturating_duration_since(instant)
}

fn fmt(duration: Duration) -> String {
    crate::scenario::format_duration(Duration::from_millis(duration.as_millis() as u64))
}
