//! Health monitors: one task per service that observes its health on the service's interval from
//! container start to teardown, recording every change in the journal and publishing the latest
//! state for bring-up to wait on.
//!
//! A service without a `health` check counts as healthy while its container runs unpaused.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backend::RunScope;
use crate::clock;
use crate::journal::{EventKind, Journal};
use crate::probe::{self, HttpExpectation};
use crate::scenario::model::{HealthKind, Service};

/// The latest observation of a service: `None` before the first check.
pub type HealthState = Option<Observation>;

/// One health observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Healthy or not.
    pub healthy: bool,
    /// What the check saw.
    pub detail: String,
    /// When the check began (an observation that began before a container swap says nothing
    /// about the new container).
    pub started: tokio::time::Instant,
    /// The same moment as the journal's offset, µs (what `health-changed` records).
    pub started_us: u64,
}

/// Interval of services without a health check.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

/// Start observing `service`; returns the receiver of its state and the task's handle.
pub fn spawn_monitor(
    service: Service,
    stack: Arc<dyn RunScope>,
    journal: Journal,
    http: reqwest::Client,
    stop: CancellationToken,
) -> (watch::Receiver<HealthState>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(None);
    let task = tokio::spawn(async move {
        let interval = service.health.as_ref().map_or(DEFAULT_INTERVAL, |h| h.interval);
        let mut log_seen = false;
        let mut last: Option<bool> = None;
        loop {
            let check_started = clock::instant_now();
            let check_started_us = micros(journal.offset());
            let check = observe(
                &service,
                stack.as_ref(),
                &http,
                &mut log_seen,
                check_started,
                check_started_us,
            );
            let observation = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                observation = check => observation,
            };
            if last != Some(observation.healthy) {
                last = Some(observation.healthy);
                journal.record(EventKind::HealthChanged {
                    service: service.name.clone(),
                    healthy: observation.healthy,
                    detail: observation.detail.clone(),
                    check_started_us: Some(observation.started_us),
                });
            }
            tx.send_replace(Some(observation));
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = clock::sleep(interval) => {}
            }
        }
    });
    (rx, task)
}

async fn observe(
    service: &Service,
    stack: &dyn RunScope,
    http: &reqwest::Client,
    log_seen: &mut bool,
    started: tokio::time::Instant,
    started_us: u64,
) -> Observation {
    let mut observation = observe_once(service, stack, http, log_seen).await;
    observation.started = started;
    observation.started_us = started_us;
    observation
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

async fn observe_once(
    service: &Service,
    stack: &dyn RunScope,
    http: &reqwest::Client,
    log_seen: &mut bool,
) -> Observation {
    let name = service.name.as_str();
    let Some(health) = &service.health else {
        return container_running(stack, name).await;
    };
    match &health.kind {
        HealthKind::Http { port, path, status } => match stack.host_port(name, *port).await {
            Err(error) => unhealthy(error.to_string()),
            Ok(host_port) => {
                let expect =
                    HttpExpectation { method: "GET", path, status: *status, body_contains: None };
                let outcome = probe::http(http, host_port, &expect, health.timeout).await;
                match (outcome.ok, outcome.status) {
                    (true, Some(code)) => healthy(format!("status {code}")),
                    (true, None) => healthy("answered".into()),
                    (false, _) => unhealthy(outcome.error.unwrap_or_default()),
                }
            }
        },
        HealthKind::Tcp { port, exchange } => match stack.host_port(name, *port).await {
            Err(error) => unhealthy(error.to_string()),
            Ok(host_port) => {
                let expect = probe::TcpExpectation {
                    send: exchange.send.as_deref(),
                    expect: exchange.expect.as_deref(),
                };
                let outcome = probe::tcp(host_port, &expect, health.timeout).await;
                if outcome.ok {
                    healthy(match &exchange.expect {
                        Some(wanted) => format!("port {port} answered `{wanted}`"),
                        None => format!("port {port} accepts connections"),
                    })
                } else {
                    unhealthy(outcome.error.unwrap_or_default())
                }
            }
        },
        HealthKind::Exec { command } => match stack.exec(name, command, health.timeout).await {
            Err(error) => unhealthy(format!("exec failed: {error}")),
            Ok(outcome) if outcome.exit_code == Some(0) => healthy("exit 0".into()),
            Ok(outcome) => {
                let code =
                    outcome.exit_code.map_or("no exit code".to_string(), |c| format!("exit {c}"));
                let output = outcome.output.trim();
                let tail: String =
                    output.lines().last().unwrap_or_default().chars().take(160).collect();
                unhealthy(if tail.is_empty() { code } else { format!("{code}: {tail}") })
            }
        },
        HealthKind::Log { contains } => {
            if !*log_seen {
                match stack.logs_contain(name, contains).await {
                    Ok(true) => *log_seen = true,
                    Ok(false) => {
                        return unhealthy(format!("no log line contains `{contains}` yet"));
                    }
                    Err(error) => return unhealthy(format!("reading logs failed: {error}")),
                }
            }
            container_running(stack, name).await
        }
    }
}

async fn container_running(stack: &dyn RunScope, name: &str) -> Observation {
    match stack.state(name).await {
        Err(error) => unhealthy(format!("inspect failed: {error}")),
        Ok(state) if state.paused => unhealthy("container paused".into()),
        Ok(state) if state.running => healthy("container running".into()),
        Ok(state) => unhealthy(match state.exit_code {
            Some(code) if state.oom_killed => {
                format!("container exited with code {code} (out of memory)")
            }
            Some(code) => format!("container exited with code {code}"),
            None => "container not running".into(),
        }),
    }
}

fn healthy(detail: String) -> Observation {
    Observation { healthy: true, detail, started: clock::instant_now(), started_us: 0 }
}

fn unhealthy(detail: String) -> Observation {
    Observation { healthy: false, detail, started: clock::instant_now(), started_us: 0 }
}

/// The health of a replicated service from its replicas' monitors: healthy while at least one
/// replica is (the service answers), recorded under the service's name on every change, with how
/// many replicas are healthy. Each replica's own changes are recorded by its monitor as
/// `SERVICE.N`.
pub fn spawn_aggregate(
    service: String,
    mut replicas: Vec<watch::Receiver<HealthState>>,
    journal: Journal,
    stop: CancellationToken,
) -> (watch::Receiver<HealthState>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(None);
    let task = tokio::spawn(async move {
        let mut last: Option<bool> = None;
        loop {
            let seen: Vec<Observation> =
                replicas.iter_mut().filter_map(|rx| rx.borrow_and_update().clone()).collect();
            // Only once every replica was observed: before that the count would mislead.
            if seen.len() == replicas.len() {
                let up = seen.iter().filter(|o| o.healthy).count();
                let healthy = up > 0;
                let detail = format!("{up}/{} replicas healthy", replicas.len());
                let started = seen.iter().map(|o| o.started).max().expect("at least one replica");
                let started_us = seen.iter().map(|o| o.started_us).max().unwrap_or_default();
                if last != Some(healthy) {
                    last = Some(healthy);
                    journal.record(EventKind::HealthChanged {
                        service: service.clone(),
                        healthy,
                        detail: detail.clone(),
                        check_started_us: Some(started_us),
                    });
                }
                tx.send_replace(Some(Observation { healthy, detail, started, started_us }));
            }
            let changed = futures_util::future::select_all(
                replicas.iter_mut().map(|rx| Box::pin(rx.changed())),
            );
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                (result, _, _) = changed => if result.is_err() {
                    return;
                },
            }
        }
    });
    (rx, task)
}
