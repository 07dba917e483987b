//! Starting the services: each starts as soon as every service it depends on is ready, at most
//! `jobs` instances being created at once, and each is gated on its own health (its startup
//! timeout, an exit seen at once). `depends-on` means what it always meant: a service starts
//! once its dependencies answered their health check.
//!
//! The first failure (an instance that cannot be started, exits or stays unhealthy) stops the
//! rest: services not started yet are not started, readiness waits end at once, and instances
//! being created finish being created (a creation cut in half could leave an instance the scope
//! does not know about), so teardown removes everything. The failing service's last log lines go
//! to the journal.
//!
//! Time accounting: the waits overlap, so each creation and each readiness wait is an interval
//! in the run's accounting (`super::accounting`), which counts the wall time they cover once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::accounting::Wait;
use super::health::{HealthState, spawn_aggregate, spawn_monitor};
use super::run::{Context, Stop, wait_ready};
use super::{Endpoints, EngineError, render_env};
use crate::backend::RunScope;
use crate::clock;
use crate::journal::EventKind;
use crate::scenario::model::{Scenario, Service};

/// How many instances are created at once when the run does not say (`--jobs`): creating and
/// starting is the engine's work, not the harness's, so a few per core keep it busy without
/// queueing every start of a 50-service stack behind each other.
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    (cores * 4).clamp(4, 32)
}

/// What bring-up started, whatever happened after: teardown needs every monitor.
#[derive(Default)]
pub(super) struct Started {
    pub monitors: Vec<tokio::task::JoinHandle<()>>,
    pub health: HashMap<String, watch::Receiver<HealthState>>,
}

/// Where a service stands in bring-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Pending,
    Ready,
}

/// Start every service of `scenario` in dependency order, independent ones side by side.
#[allow(clippy::too_many_arguments)]
pub(super) async fn start_services(
    ctx: &Context,
    scenario: &Scenario,
    stack: &Arc<dyn RunScope>,
    run_id: &str,
    endpoints: &Endpoints,
    jobs: usize,
    monitors_stop: &CancellationToken,
    started: &Mutex<Started>,
) -> Result<(), Stop> {
    let order = scenario.stack.start_order();
    let ready: HashMap<&str, watch::Sender<Readiness>> =
        order.iter().map(|s| (s.name.as_str(), watch::channel(Readiness::Pending).0)).collect();
    let shared = Shared {
        ctx,
        scenario,
        stack,
        run_id,
        endpoints,
        monitors_stop,
        started,
        ready: &ready,
        permits: Semaphore::new(jobs.max(1)),
        failed: CancellationToken::new(),
        first_failure: Mutex::new(None),
    };
    let runs = order.iter().map(|service| shared.bring_up_one(service));
    futures_util::future::join_all(runs).await;
    if ctx.signals.interrupt.is_cancelled() {
        return Err(Stop::Interrupted);
    }
    match lock(&shared.first_failure).take() {
        Some(stop) => Err(stop),
        None => Ok(()),
    }
}

struct Shared<'a> {
    ctx: &'a Context,
    scenario: &'a Scenario,
    stack: &'a Arc<dyn RunScope>,
    run_id: &'a str,
    endpoints: &'a Endpoints,
    monitors_stop: &'a CancellationToken,
    started: &'a Mutex<Started>,
    ready: &'a HashMap<&'a str, watch::Sender<Readiness>>,
    permits: Semaphore,
    /// Cancelled by the first failure: the rest give up.
    failed: CancellationToken,
    first_failure: Mutex<Option<Stop>>,
}

/// Why one service's bring-up ended without it being ready.
enum GaveUp {
    /// Another service failed first, or the run was interrupted: not this service's news.
    Elsewhere,
    /// This service failed.
    Failed(Stop),
}

impl Shared<'_> {
    async fn bring_up_one(&self, service: &Service) {
        match self.try_bring_up(service).await {
            Ok(()) => {
                self.ready[service.name.as_str()].send_replace(Readiness::Ready);
            }
            Err(GaveUp::Elsewhere) => {}
            Err(GaveUp::Failed(stop)) => {
                let mut first = lock(&self.first_failure);
                if first.is_none() {
                    *first = Some(stop);
                }
                drop(first);
                self.failed.cancel();
            }
        }
    }

    /// Wait for `future` unless another service failed or the run was interrupted first.
    async fn unless_stopped<F: Future>(&self, future: F) -> Result<F::Output, GaveUp> {
        tokio::select! {
            biased;
            () = self.ctx.signals.interrupt.cancelled() => Err(GaveUp::Elsewhere),
            () = self.failed.cancelled() => Err(GaveUp::Elsewhere),
            output = future => Ok(output),
        }
    }

    async fn try_bring_up(&self, service: &Service) -> Result<(), GaveUp> {
        let ctx = self.ctx;
        for dependency in &service.depends_on {
            let Some(sender) = self.ready.get(dependency.as_str()) else { continue };
            let mut rx = sender.subscribe();
            self.unless_stopped(rx.wait_for(|r| *r == Readiness::Ready))
                .await?
                .map_err(|_| GaveUp::Elsewhere)?;
        }
        let permit = self.unless_stopped(self.permits.acquire()).await?;
        let env = render_env(self.scenario, service, self.run_id, self.endpoints);
        let started = clock::instant_now();
        let replicated = service.replicas > 1;
        let mut replica_health = Vec::new();
        for key in service.replica_keys() {
            // Not cut short by another service's failure: a creation cut in half could leave an
            // instance behind that the scope does not know about. Only an interrupt stops it.
            let creating = ctx.accounting.begin(Wait::Backend);
            let container = ctx
                .interruptible(async {
                    if replicated {
                        self.stack.start_replica(service, &key, &env, true).await
                    } else {
                        self.stack.start_service(service, &env).await
                    }
                })
                .await
                .ok_or(GaveUp::Elsewhere)?
                .map_err(|error| GaveUp::Failed(EngineError::from(error).into()))?;
            drop(creating);
            ctx.journal.record(EventKind::ServiceStarted {
                service: key.clone(),
                container,
                image: service.image.reference().to_string(),
            });
            let mut definition = service.clone();
            definition.name = key.clone();
            let (rx, task) = spawn_monitor(
                definition,
                self.stack.clone(),
                ctx.journal.clone(),
                ctx.http.clone(),
                self.monitors_stop.clone(),
            );
            let mut collected = lock(self.started);
            collected.monitors.push(task);
            collected.health.insert(key.clone(), rx.clone());
            drop(collected);
            replica_health.push(rx);
        }
        drop(permit);
        if replicated {
            let (rx, task) = spawn_aggregate(
                service.name.clone(),
                replica_health,
                ctx.journal.clone(),
                self.monitors_stop.clone(),
            );
            let mut collected = lock(self.started);
            collected.monitors.push(task);
            collected.health.insert(service.name.clone(), rx);
        }
        for key in service.replica_keys() {
            let rx = lock(self.started).health[&key].clone();
            let waiting = ctx.accounting.begin(Wait::Service);
            let waited = self
                .unless_stopped(wait_ready(
                    ctx.exits.subscribe(),
                    rx,
                    self.stack.as_ref(),
                    &key,
                    service.startup_timeout,
                    started,
                ))
                .await?;
            drop(waiting);
            if let Err(reason) = waited {
                let reading = ctx.accounting.begin(Wait::Backend);
                let logs = self.stack.logs_tail(&key, 20).await.unwrap_or_default();
                drop(reading);
                ctx.journal
                    .record(EventKind::ServiceLogs { service: key.clone(), lines: logs.clone() });
                return Err(GaveUp::Failed(
                    EngineError::Startup { service: key, reason, logs }.into(),
                ));
            }
        }
        ctx.journal.record(EventKind::ServiceReady {
            service: service.name.clone(),
            startup_us: clock::instant_now().saturating_duration_since(started).as_micros() as u64,
        });
        Ok(())
    }
}

/// Lock a mutex that is never held across an `.await`.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_jobs_stay_within_bounds() {
        let jobs = default_jobs();
        assert!((4..=32).contains(&jobs), "{jobs}");
    }
}
