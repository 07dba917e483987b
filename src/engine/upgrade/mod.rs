//! Upgrade and rollback steps: swap a service's image, judge the new version (progress deadline,
//! migration, watch-period SLO gate), and on failure restore the previous image and, with a
//! `backup` service, its data. Every stage is an `upgrade` event; checks judge them.
//!
//! One file per strategy, around [`UpgradeCtx`] (what every stage of one upgrade or rollback
//! reads) and [`Release`] (the version being started: definition, environment, deadline):
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`run_upgrade`], [`run_rollback`], the attempt's stage order |
//! | `recreate.rs` | stop the old container, start the new one under the same name |
//! | `blue_green.rs` | start `SERVICE.green` beside the old one, the lossless name hand-over, the switch back |
//! | `rolling.rs` | replace replicas `max-unavailable` at a time, and back |
//! | `rollback.rs` | rolling back the latest upgrade of a service, per strategy, and the restore hook |
//! | `hooks.rs` | `migrate` one-shot containers, `backup`/`restore` hooks |
//! | `version.rs` | asking the `version` endpoint (`version-observed`) |
//! | `watch.rs` | the `watch` SLO gate over the traffic's outcomes |
//!
//! Strategy `recreate`: stop the old container, start the new one under the same name (downtime is
//! expected and measured by the traffic). The rollback is a recreate with the previous image.
//!
//! Strategy `blue-green`: start the new version beside the old one (key `SERVICE.green`, its own
//! ports), wait until it is healthy, then switch without losing a request (`take_over`): the
//! service's name (network alias, and the key the traffic and the health monitor look up) moves
//! to the new container while the old one keeps its endpoint for a drain period; the old one
//! stays as `SERVICE.blue` until the upgrade is verified, then it is stopped gracefully and
//! removed. A failure before the switch removes the new container; the old one never stopped
//! serving. A failure after it switches back. The backup is taken while the old version still
//! serves: writes it accepts between the backup and a restore are lost, as with `recreate`'s
//! restore. A `rollback` step after a completed blue-green upgrade has no old container left and
//! recreates the previous version.

mod blue_green;
mod hooks;
mod recreate;
mod rollback;
mod rolling;
mod version;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch as channel;

use super::health::HealthState;
use super::run::Context;
use super::steps::StepEnd;
use crate::backend::RunScope;
use crate::clock;
use crate::journal::{EventKind, UpgradeStage};
use crate::scenario::model::{
    MigrateWhen, OnFailure, Scenario, Service, Strategy, Upgrade, VersionEndpoint,
};

/// Grace period for stopping a version when its service sets none (`stop_grace_period`).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long an upgrade gives a container of `service` between its stop signal and SIGKILL: the
/// service's own `stop_grace_period` (a compose file's), as Docker and a teardown give it, else
/// 10 s. A worker that needs 60 s to drain must not be killed by the harness after 10 s and its
/// lost work blamed on the release.
fn stop_grace(service: &Service) -> Duration {
    service.container.stop_grace_period.unwrap_or(STOP_GRACE)
}

/// A service's rendered environment.
type Env = BTreeMap<String, String>;

/// What the steps phase knows about services beyond the scenario: the running definition of each
/// (its image changes with upgrades), health receivers, and the latest upgrade of each service.
pub struct ServiceState {
    /// Latest health observation per service.
    pub health: HashMap<String, channel::Receiver<HealthState>>,
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

/// What every stage of one upgrade (or one rollback) reads: the run, the stack, the scenario, the
/// services' state, and the upgrade step and service its events are recorded under.
struct UpgradeCtx<'a> {
    ctx: &'a Context,
    stack: &'a Arc<dyn RunScope>,
    scenario: &'a Scenario,
    state: &'a ServiceState,
    /// The upgrade step's name (a rollback records under its upgrade's step).
    step: &'a str,
    /// The upgraded service.
    service: &'a str,
}

impl UpgradeCtx<'_> {
    /// Record one stage of the upgrade.
    fn record(&self, stage: UpgradeStage, ok: bool, detail: Option<String>) {
        record(self.ctx, self.step, self.service, stage, ok, detail);
    }

    /// The stop grace of the upgraded service (its definition before the upgrade: a release
    /// changes the image, never the container settings).
    fn stop_grace(&self) -> Duration {
        self.state.current.get(self.service).map_or(STOP_GRACE, stop_grace)
    }

    /// The health of `key` (a service or a replica).
    fn health(&self, key: &str) -> channel::Receiver<HealthState> {
        self.state.health.get(key).cloned().expect("every service and replica has a monitor")
    }

    /// `def` with its environment rendered and the time it may take to become healthy.
    fn release<'d>(&self, def: &'d Service, deadline: Duration) -> Release<'d> {
        let env = super::render_env(self.scenario, def, &self.state.run_id, &self.state.endpoints);
        Release { def, env, deadline }
    }
}

/// A version of the service as it is started: its definition (the image to run), its rendered
/// environment, and how long it may take to become healthy (the upgrade's `deadline`, or the
/// previous version's `startup-timeout` in a rollback).
struct Release<'a> {
    def: &'a Service,
    env: Env,
    deadline: Duration,
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
    let attempt = {
        let cx = UpgradeCtx { ctx, stack, scenario, state: &*state, step, service };
        if let Some(endpoint) = &spec.version {
            version::observe(&cx, endpoint, "before").await;
        }
        attempt(&cx, spec, &next).await
    };
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
        Attempt::Broken(reason) => StepEnd::Failed(reason),
        Attempt::Failed(reason) => {
            // The new version may be (partly) running: from here on, `current` is what runs. A
            // blue-green upgrade that failed before its switch left the old version serving.
            if spec.strategy == Strategy::Recreate
                || blue_green::switched_away(stack.as_ref(), service)
            {
                state.current.insert(service.to_owned(), next);
            }
            record(ctx, step, service, UpgradeStage::Failed, false, Some(reason));
            match spec.on_failure {
                OnFailure::Rollback => {
                    rollback::rollback(ctx, stack, scenario, state, service).await
                }
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
        Some(_) => rollback::rollback(ctx, stack, scenario, state, service).await,
    }
}

/// How an upgrade attempt (or one of its stages, as `Err`) ended.
enum Attempt {
    Completed,
    Failed(String),
    Interrupted,
    /// The backend could not carry out a stage (see [`Trouble::Backend`]).
    Broken(String),
}

/// Why starting a version (the release, or the previous one in a rollback) did not succeed.
enum Trouble {
    /// The version did not come up, or a stage around it failed: a result the checks judge.
    Failed(String),
    /// The backend could not carry out the request (unreachable, or its orchestrator stalled:
    /// Swarm created no task): nothing the version did. The step stops the run with an error
    /// (exit 2) and the version is not judged.
    Backend(String),
}

impl From<String> for Trouble {
    fn from(reason: String) -> Self {
        Trouble::Failed(reason)
    }
}

impl Trouble {
    /// `Failed` or `Backend` per the backend error's kind, with `what` in front of it.
    fn from_backend(what: String, error: &crate::backend::BackendError) -> Self {
        let reason = format!("{what}: {error}");
        if error.is_environment() { Trouble::Backend(reason) } else { Trouble::Failed(reason) }
    }
}

/// The stages of an upgrade, in order: stop the old version (recreate only), backup, migrate
/// before, replace (per strategy), migrate after, version, watch, retire the old version
/// (blue-green only). The first stage that fails ends the attempt.
async fn attempt(cx: &UpgradeCtx<'_>, spec: &Upgrade, next: &Service) -> Attempt {
    match stages(cx, spec, next).await {
        Ok(()) => Attempt::Completed,
        Err(stop) => stop,
    }
}

async fn stages(cx: &UpgradeCtx<'_>, spec: &Upgrade, next: &Service) -> Result<(), Attempt> {
    // Recreate stops the old version first: the backup then holds every write it acknowledged,
    // and a restore after a failed upgrade loses nothing the old version accepted. Blue-green
    // and rolling keep it serving.
    if spec.strategy == Strategy::Recreate {
        recreate::stop_old(cx).await?;
    }
    if let Some(data) = &spec.backup {
        hooks::backup(cx, data).await?;
    }
    let release = cx.release(next, spec.deadline);
    hooks::migrate(cx, spec, &release, MigrateWhen::Before).await?;
    match spec.strategy {
        Strategy::BlueGreen => blue_green::switch_to_green(cx, &release).await?,
        Strategy::Recreate => recreate::replace(cx, &release).await?,
        Strategy::Rolling => rolling::roll(cx, &release, spec.max_unavailable).await?,
    }
    hooks::migrate(cx, spec, &release, MigrateWhen::After).await?;
    if let Some(endpoint) = &spec.version {
        version::observe(cx, endpoint, "after-switch").await;
    }
    if let Some(gate) = &spec.watch {
        watch::gate(cx, gate).await?;
    }
    if spec.strategy == Strategy::BlueGreen {
        // Verified: the old version is no longer needed.
        blue_green::retire_blue(cx).await?;
    }
    Ok(())
}

/// Record the `healthy` stage from a wait's outcome; `Err` ends the attempt.
fn judge_healthy(
    cx: &UpgradeCtx<'_>,
    deadline: Duration,
    waited: Option<Result<(), String>>,
    healthy_detail: impl FnOnce() -> String,
) -> Result<(), Attempt> {
    match waited {
        None => Err(Attempt::Interrupted),
        Some(Err(reason)) => {
            // No log fetch here: it costs ~100 ms, and the rollback must start at once. The
            // rollback captures the failed release's logs before it replaces the container.
            let reason = format!("not healthy within the {} deadline: {reason}", fmt(deadline));
            cx.record(UpgradeStage::Healthy, false, Some(reason.clone()));
            Err(Attempt::Failed(reason))
        }
        Some(Ok(())) => {
            cx.record(UpgradeStage::Healthy, true, Some(healthy_detail()));
            Ok(())
        }
    }
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
