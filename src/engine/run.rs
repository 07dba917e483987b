//! The run's phases, in order, each bracketed by `phase-started` / `phase-ended` events.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::accounting::{Accounting, Wait};
use super::health::HealthState;
use super::steps::{StepEnd, run_probe, run_step};
use super::upgrade::ServiceState;
use super::{EngineError, RunOptions, RunResult, Signals};
use crate::backend::{Backend, ImageStatus, Lifecycle, RunIdentity, RunScope, SweepScope};
use crate::clock::{self, SegmentClock};
use crate::journal::{
    EventKind, JOURNAL_FORMAT_VERSION, Journal, Listener, Outcome, Phase, ProbeContext, WaitUnion,
};
use crate::report::{self, RunStatus};
use crate::scenario::model::{Scenario, SteadyPhase};

/// How long the start-of-run sweep of dead runs' leftovers may take before the run goes on
/// without it.
const SWEEP_BUDGET: Duration = Duration::from_secs(30);

/// What every phase and step needs.
pub struct Context {
    /// The run's journal.
    pub journal: Journal,
    /// Ctrl-C escalation.
    pub signals: Signals,
    /// Client for HTTP probes and health checks.
    pub http: reqwest::Client,
    /// Time accounting: the main path's waits as intervals on the run's clock.
    pub accounting: Accounting,
    /// Instances the backend reported exited, as they happen: waits on health react to them at
    /// once instead of at their next poll.
    pub exits: tokio::sync::broadcast::Sender<Exit>,
    /// The seed of the run's random choices.
    pub seed: u64,
    /// The run's fault ledger (`None` without a state folder).
    pub ledger: Option<Arc<crate::faults::Ledger>>,
    /// Fault ids when there is no ledger (and of link faults, which are never ledgered).
    pub fault_ids: AtomicU64,
    /// The run's notification sinks (started at bring-up, stopped at teardown).
    pub sinks: super::sinks::RunSinks,
    /// The run's link proxies (started at bring-up, shut down at teardown).
    pub links: super::links::LinkProxies,
    /// Who answers `human` steps (gameday).
    pub gameday: super::gameday::Gameday,
    /// The `seq` of the journal's latest event, for waits on what the journal shows next.
    pub journal_moved: tokio::sync::watch::Sender<u64>,
}

impl Context {
    /// Run `future` unless the first signal arrives first.
    pub async fn interruptible<F: Future>(&self, future: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            () = self.signals.interrupt.cancelled() => None,
            output = future => Some(output),
        }
    }

    /// A declared wait; false when interrupted.
    pub async fn declared_wait(&self, duration: Duration) -> bool {
        let waiting = self.accounting.begin(Wait::Declared);
        let done = self.interruptible(clock::sleep(duration)).await.is_some();
        drop(waiting);
        done
    }

    /// Await a backend call, counting its time.
    pub async fn backend_call<F: Future>(&self, future: F) -> F::Output {
        self.accounting.time(Wait::Backend, future).await
    }

    /// Await a wait on services (readiness, health, probes, answers), counting its time.
    pub async fn service_wait<F: Future>(&self, future: F) -> F::Output {
        self.accounting.time(Wait::Service, future).await
    }
}

/// An instance's exit, as the backend reported it.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Service.
    pub service: String,
    /// Container id.
    pub container: String,
    /// Exit code.
    pub exit_code: Option<i64>,
}

/// Why a phase stopped early.
pub(super) enum Stop {
    Error(EngineError),
    Interrupted,
}

impl From<EngineError> for Stop {
    fn from(error: EngineError) -> Self {
        Stop::Error(error)
    }
}

/// Carry out `scenario` on `backend`. Never panics on backend trouble: every failure ends up in
/// the result (and the journal), and teardown always runs.
pub async fn run(
    scenario: &Scenario,
    backend: &dyn Backend,
    options: &RunOptions,
    signals: &Signals,
    listener: Option<Listener>,
) -> RunResult {
    run_keeping(scenario, backend, options, signals, listener, &mut None, false).await
}

/// [`run`], on the stack an earlier run left in `kept` when there is one (checked clean and
/// restored first, or replaced by a fresh one: see [`super::keep`]); with `keep`, a run that ends
/// cleanly leaves its stack up in `kept` for the next instead of tearing it down.
pub(super) async fn run_keeping(
    scenario: &Scenario,
    backend: &dyn Backend,
    options: &RunOptions,
    signals: &Signals,
    listener: Option<Listener>,
    kept: &mut Option<super::keep::Kept>,
    keep: bool,
) -> RunResult {
    let seed = options.seed.unwrap_or_else(random_seed);
    let previous = kept.take();
    let reused = previous.as_ref().map(|k| k.runs);
    let (ctx, mut up, run_id, mut current, runs, kept_stack) = match previous {
        Some(kept) => match kept.begin_run(options, signals, seed) {
            Ok(kept) => {
                (kept.ctx, kept.up, kept.run_id, Some(kept.current), kept.runs, Some(kept.stack))
            }
            Err(failed) => {
                let (kept, error) = *failed;
                // No journal for this run: the kept stack goes, and the run is aborted.
                super::keep::close(kept).await;
                return RunResult {
                    run_id: String::new(),
                    status: RunStatus::Aborted,
                    verdicts: Vec::new(),
                    events: Vec::new(),
                    error: Some(error),
                    report_path: None,
                };
            }
        },
        None => {
            let run_id = new_run_id();
            let clock = Arc::new(SegmentClock::start());
            let journal = match open_journal(clock, options) {
                Ok(journal) => journal,
                Err(error) => {
                    return RunResult {
                        run_id,
                        status: RunStatus::Aborted,
                        verdicts: Vec::new(),
                        events: Vec::new(),
                        error: Some(error),
                        report_path: None,
                    };
                }
            };
            let ledger = options.state_dir.as_ref().map(|state| {
                let dir = crate::faults::ledger_dir(state);
                Arc::new(crate::faults::Ledger::new(&dir, &run_id, crate::owner::current_owner()))
            });
            let ctx = new_context(journal, signals, seed, ledger, options);
            (ctx, Up::default(), run_id, None, 0, None)
        }
    };
    let journal = ctx.journal.clone();
    // After the context's own listener: a kept stack's next run keeps only that one.
    if let Some(listener) = listener {
        journal.subscribe(listener);
    }
    if let Some(desk) = options.gameday.desk.clone() {
        // The desk's watchers (the gameday console) see the run as it is journaled.
        journal.subscribe(Box::new(move |event| desk.publish(event)));
    }
    journal.record(EventKind::RunStarted {
        run_id: run_id.clone(),
        scenario: scenario.name.clone(),
        file: scenario.source.display().to_string(),
        format_version: JOURNAL_FORMAT_VERSION,
        firedrill_version: env!("CARGO_PKG_VERSION").to_string(),
        seed: Some(seed),
    });
    journal.record(EventKind::ScenarioLoaded {
        description: scenario.description.clone(),
        steady_state: serde_json::to_value(&scenario.steady_state).expect("the model serializes"),
        expect: serde_json::to_value(&scenario.expect).expect("the model serializes"),
    });
    if let Some(calendar) = &scenario.calendar {
        journal.record(EventKind::CalendarSet {
            calendar: calendar.clone(),
            maintenance: scenario.maintenance.clone(),
        });
    }
    let signal_journal = journal.clone();
    let signal_watch = signals.clone();
    let signal_recorder = tokio::spawn(async move {
        signal_watch.interrupt.cancelled().await;
        signal_journal.record(EventKind::Interrupted { second: false });
        signal_watch.kill_fast.cancelled().await;
        signal_journal.record(EventKind::Interrupted { second: true });
    });
    let identity =
        RunIdentity { run_id: run_id.clone(), scenario: scenario.name.clone(), keep: options.keep };

    let mut stop = None;
    let mut ctx = ctx;
    if let (Some(earlier_runs), Some(was), Some(kept_stack)) =
        (reused, current.as_mut(), kept_stack.as_ref())
    {
        let mut verdict = super::keep::Reuse::default();
        stop = phase(
            &ctx,
            Phase::Reuse,
            super::keep::reuse(&ctx, scenario, &up, kept_stack, was, &run_id, &mut verdict),
        )
        .await
        .err();
        match verdict.not_clean {
            None if stop.is_none() => {
                ctx.journal
                    .record(EventKind::StackReused { earlier_runs, restored: verdict.restored });
            }
            None => {}
            Some(reason) => {
                ctx.journal.record(EventKind::StackRenewed { reason });
                // Not a teardown phase: this run's health observation does not end here.
                let old = std::mem::take(&mut up);
                let _ = teardown(&ctx, old).await;
                ctx = super::keep::renewed(ctx, &run_id);
                current = None;
            }
        }
    }
    if stop.is_none() && reused.is_none() {
        stop = phase(&ctx, Phase::Prepare, prepare(&ctx, scenario, backend, options)).await.err();
    }
    if stop.is_none() && current.is_none() {
        stop = phase(
            &ctx,
            Phase::BringUp,
            bring_up(
                &ctx,
                scenario,
                backend,
                identity,
                options.jobs.unwrap_or_else(super::bring_up::default_jobs),
                &mut up,
            ),
        )
        .await
        .err();
    }
    if let (None, Some(stack)) = (&stop, &up.stack)
        && !scenario.steady_state.is_empty()
    {
        stop = phase(
            &ctx,
            Phase::SteadyBefore,
            steady_state(&ctx, scenario, stack, SteadyPhase::Before),
        )
        .await
        .err();
    }
    let mut alert_watch = None;
    let mut state = ServiceState {
        health: up.health.clone(),
        current: current.unwrap_or_else(|| {
            scenario.stack.services.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }),
        upgrades: HashMap::new(),
        run_id: run_id.clone(),
        endpoints: up.endpoints.clone(),
    };
    if let (None, Some(stack)) = (&stop, &up.stack)
        && !scenario.steps.is_empty()
    {
        let traffic = start_traffic(&ctx, scenario, stack).await;
        alert_watch = Some(super::metrics::AlertWatch::start(&ctx, scenario, stack));
        stop = phase(&ctx, Phase::Steps, steps(&ctx, scenario, stack, &mut state)).await.err();
        finish_traffic(&ctx, scenario, stack, traffic).await;
    }
    if let (None, Some(stack)) = (&stop, &up.stack)
        && !scenario.steady_state.is_empty()
    {
        stop = phase(
            &ctx,
            Phase::SteadyAfter,
            steady_state(&ctx, scenario, stack, SteadyPhase::After),
        )
        .await
        .err();
    }
    if let (None, Some(_)) = (&stop, &up.stack)
        && let Some(until_us) = crate::checks::observe_until_us(scenario, &ctx.journal.snapshot())
    {
        // `healthy-within` must see the service stay healthy to its deadline: keep observing. The
        // scenario declared that window, so it counts as a declared wait, not as the harness's.
        let left = Duration::from_micros(until_us).saturating_sub(ctx.journal.offset());
        if !left.is_zero() {
            let _ = ctx.declared_wait(left).await;
        }
    }
    if let Some(watch) = alert_watch {
        watch.stop().await;
    }
    // `prometheus` and `alert` checks: Prometheus goes with the stack, so ask it now.
    if let (None, Some(stack)) = (&stop, &up.stack)
        && !ctx.signals.interrupt.is_cancelled()
    {
        ctx.service_wait(super::metrics::ask_prometheus(&ctx, scenario, stack)).await;
    }
    if ctx.signals.interrupt.is_cancelled() && stop.is_none() {
        stop = Some(Stop::Interrupted);
    }
    // Kept only when nothing went wrong: a run that failed or was interrupted tears down as ever.
    let keeping = keep && stop.is_none() && up.stack.is_some();
    let mut teardown_error = None;
    if keeping {
        ctx.journal.record(EventKind::StackKept);
    } else {
        teardown_error =
            phase(&ctx, Phase::Teardown, teardown(&ctx, std::mem::take(&mut up))).await.err();
    }
    let mut error = match stop {
        Some(Stop::Error(error)) => Some(error),
        _ => None,
    };
    if let (None, Some(Stop::Error(teardown_error))) = (&error, teardown_error) {
        error = Some(teardown_error);
    }

    // The stack is gone or restored; a kept stack with faults still in force keeps its ledger for
    // the `firedrill gc` after this process ends.
    if let Some(ledger) = &ctx.ledger
        && !keeping
        && (!options.keep || ledger.outstanding() == 0)
        && let Err(error) = ledger.remove()
    {
        tracing::warn!(%error, "failed to remove the fault ledger");
    }
    signal_recorder.abort();
    let time = ctx.accounting.summary();
    journal.record(EventKind::TimeAccounting {
        docker_us: time.sums.backend_us,
        declared_wait_us: time.sums.declared_us,
        service_wait_us: time.sums.service_us,
        waited: Some(WaitUnion {
            docker_us: time.unions.backend_us,
            declared_wait_us: time.unions.declared_us,
            service_wait_us: time.unions.service_us,
            any_us: time.waiting_us,
        }),
        harness_cpu_us: time.cpu_us,
    });
    let interrupted = ctx.signals.interrupt.is_cancelled();
    journal.record(EventKind::RunEnded {
        outcome: if interrupted {
            Outcome::Interrupted
        } else if error.is_some() {
            Outcome::Failed
        } else {
            Outcome::Ok
        },
    });

    let events = journal.snapshot();
    let verdicts = crate::checks::evaluate(scenario, &events);
    let status = if interrupted {
        RunStatus::Interrupted
    } else if error.is_some() {
        RunStatus::Aborted
    } else if verdicts.iter().all(|v| v.status == crate::checks::CheckStatus::Passed) {
        RunStatus::Completed
    } else {
        RunStatus::Deviated
    };
    let mut report_path = None;
    if let Some(dir) = &options.report_dir {
        let source = scenario.source.display().to_string();
        let built = report::build_report(&scenario.name, &source, &events, &verdicts, status);
        match report::write_json(&built, dir) {
            Ok(path) => report_path = Some(path),
            Err(write_error) => tracing::warn!(error = %write_error, "failed to write report.json"),
        }
    }
    if keeping {
        *kept = Some(super::keep::Kept {
            ctx,
            up,
            run_id: run_id.clone(),
            stack: scenario.stack.clone(),
            current: state.current,
            runs: runs + 1,
        });
    }
    RunResult { run_id, status, verdicts, events, error, report_path }
}

/// A run's context around `journal` (whose first listener it adds: the `seq` watch).
pub(super) fn new_context(
    journal: Journal,
    signals: &Signals,
    seed: u64,
    ledger: Option<Arc<crate::faults::Ledger>>,
    options: &RunOptions,
) -> Context {
    let journal_moved = journal_watch(&journal);
    let accounting = Accounting::for_journal(&journal);
    Context {
        journal,
        signals: signals.clone(),
        http: crate::probe::http_client(),
        accounting,
        exits: tokio::sync::broadcast::channel(64).0,
        seed,
        ledger,
        fault_ids: AtomicU64::new(0),
        sinks: super::sinks::RunSinks::default(),
        links: super::links::LinkProxies::default(),
        gameday: options.gameday.clone(),
        journal_moved,
    }
}

/// A watch of the journal's latest `seq`, fed by a listener.
fn journal_watch(journal: &Journal) -> tokio::sync::watch::Sender<u64> {
    let (moved, _) = tokio::sync::watch::channel(0);
    let feed = moved.clone();
    journal.subscribe(Box::new(move |event| {
        feed.send_replace(event.seq);
    }));
    moved
}

fn open_journal(clock: Arc<SegmentClock>, options: &RunOptions) -> Result<Journal, EngineError> {
    let Some(dir) = &options.report_dir else {
        return Ok(Journal::in_memory(clock));
    };
    fs_err::create_dir_all(dir)
        .map_err(|source| EngineError::ReportDir { path: dir.clone(), source })?;
    let path = dir.join("journal.jsonl");
    Journal::to_file(clock, &path).map_err(|error| EngineError::ReportDir {
        path,
        source: match error {
            crate::journal::JournalError::Io(source) => source,
            other => std::io::Error::other(other.to_string()),
        },
    })
}

/// A seed from the process's random hasher keys, for runs without `--seed`.
fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish()
}

/// `fd-` and 8 hex digits from the process's random hasher keys.
fn new_run_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("fd-{:08x}", hasher.finish() as u32)
}

pub(super) async fn phase<F>(ctx: &Context, phase: Phase, body: F) -> Result<(), Stop>
where
    F: Future<Output = Result<(), Stop>>,
{
    ctx.journal.record(EventKind::PhaseStarted { phase });
    let result = body.await;
    let (outcome, error) = match &result {
        Ok(()) => (Outcome::Ok, None),
        Err(Stop::Interrupted) => (Outcome::Interrupted, None),
        Err(Stop::Error(error)) => (Outcome::Failed, Some(error.to_string())),
    };
    ctx.journal.record(EventKind::PhaseEnded { phase, outcome, error });
    result
}

async fn prepare(
    ctx: &Context,
    scenario: &Scenario,
    backend: &dyn Backend,
    options: &RunOptions,
) -> Result<(), Stop> {
    // Faults this host cannot apply are refused before anything starts (issue 17: NFQUEUE, root).
    let kinds: Vec<&crate::scenario::model::FaultKind> = scenario
        .all_steps()
        .into_iter()
        .filter_map(|step| match &step.action {
            crate::scenario::model::Action::Fault(fault) => Some(&fault.kind),
            _ => None,
        })
        .collect();
    backend.check_faults(&kinds).map_err(EngineError::from)?;
    // Before the sweep removes them: faults dead runs left in force are reverted (and reported).
    if let Some(state) = &options.state_dir {
        let dir = crate::faults::ledger_dir(state);
        ctx.interruptible(ctx.backend_call(super::faults::recover_dead_runs(ctx, backend, &dir)))
            .await
            .ok_or(Stop::Interrupted)?;
    }
    // Bounded: a leftover the backend cannot remove (a container wedged inside dockerd answers
    // nothing for minutes) must not hold today's rehearsal; the next start tries again.
    let swept = ctx
        .interruptible(ctx.backend_call(async {
            tokio::select! {
                swept = backend.sweep(SweepScope::Dead) => swept,
                () = clock::sleep(SWEEP_BUDGET) => Err(crate::backend::BackendError::new(
                    crate::backend::BackendErrorKind::Unavailable,
                    format!("gave up after {} s", SWEEP_BUDGET.as_secs()),
                )),
            }
        }))
        .await
        .ok_or(Stop::Interrupted)?;
    match swept {
        Ok(report) if !report.containers.is_empty() || !report.networks.is_empty() => {
            ctx.journal.record(EventKind::Swept {
                containers: report.containers,
                networks: report.networks,
            });
        }
        Ok(_) => {}
        // A failed sweep must not stop today's rehearsal; it is retried at the next start.
        Err(error) => tracing::warn!(%error, "failed to sweep leftovers of earlier runs"),
    }
    let mut seen = std::collections::HashSet::new();
    // Upgrade targets too: a release that cannot be built fails now, before anything starts.
    let sources = scenario.image_sources();
    for source in sources {
        let image = source.reference().to_string();
        if !seen.insert(image.clone()) {
            continue;
        }
        let started = clock::instant_now();
        let mut progress = |line: &str| tracing::debug!(target: "firedrill::build", "{line}");
        let policy = options.pull.unwrap_or_else(|| scenario.pull_policy(&image));
        let status = ctx
            .interruptible(ctx.backend_call(backend.ensure_image(source, policy, &mut progress)))
            .await
            .ok_or(Stop::Interrupted)?
            .map_err(EngineError::from)?;
        if let ImageStatus::Pulled { digest } = &status {
            ctx.journal.record(EventKind::ImagePulled {
                image: image.clone(),
                digest: digest.clone(),
                pull_us: clock::instant_now().saturating_duration_since(started).as_micros() as u64,
            });
        }
        let built = status == ImageStatus::Built;
        ctx.journal.record(EventKind::ImageReady {
            image,
            built,
            build_us: if built {
                clock::instant_now().saturating_duration_since(started).as_micros() as u64
            } else {
                0
            },
        });
    }
    // A skewed service whose image cannot take libfaketime is refused now, not after bring-up.
    for (name, service) in &scenario.stack.services {
        if !service.container.faketime {
            continue;
        }
        let upgrades = scenario.all_steps().into_iter().filter_map(|step| match &step.action {
            crate::scenario::model::Action::Upgrade(upgrade) if upgrade.service == *name => {
                Some(upgrade.target.reference())
            }
            _ => None,
        });
        for image in std::iter::once(service.image.reference()).chain(upgrades) {
            ctx.interruptible(ctx.backend_call(backend.check_clock_skew_image(name, image)))
                .await
                .ok_or(Stop::Interrupted)?
                .map_err(EngineError::from)?;
        }
    }
    Ok(())
}

/// What bring-up created, for the later phases and teardown.
#[derive(Default)]
pub(super) struct Up {
    pub(super) stack: Option<Arc<dyn RunScope>>,
    /// Where the harness's links and sinks listen for the containers.
    pub(super) endpoints: super::Endpoints,
    pub(super) health: HashMap<String, watch::Receiver<HealthState>>,
    monitors: Vec<tokio::task::JoinHandle<()>>,
    monitors_stop: CancellationToken,
    events_pump: Option<tokio::task::JoinHandle<()>>,
}

async fn bring_up(
    ctx: &Context,
    scenario: &Scenario,
    backend: &dyn Backend,
    identity: RunIdentity,
    jobs: usize,
    up: &mut Up,
) -> Result<(), Stop> {
    let run_id = identity.run_id.clone();
    let stack = ctx
        .interruptible(ctx.backend_call(backend.open_scope(identity)))
        .await
        .ok_or(Stop::Interrupted)?
        .map_err(EngineError::from)?;
    ctx.journal.record(EventKind::NetworkCreated { network: stack.name() });
    let mut events = stack.events();
    let journal = ctx.journal.clone();
    let exits = ctx.exits.clone();
    let pump_stop = up.monitors_stop.clone();
    up.events_pump = Some(tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                biased;
                () = pump_stop.cancelled() => return,
                next = events.next() => next,
            };
            match next {
                Some(Ok(event)) => {
                    let exit_code = match &event.what {
                        Lifecycle::Exited { code } => *code,
                        _ => None,
                    };
                    journal.record(EventKind::ContainerEvent {
                        service: event.service.clone(),
                        action: event.what.journal_action().to_owned(),
                        exit_code,
                    });
                    if let Lifecycle::Exited { code } = event.what {
                        // Nobody listening is fine: then nobody is waiting on that service.
                        let _ = exits.send(Exit {
                            service: event.service.clone(),
                            container: event.instance.clone(),
                            exit_code: code,
                        });
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "the backend's event stream failed");
                    return;
                }
                None => return,
            }
        }
    }));
    // Sinks listen before the first service starts, so its environment can name them.
    let gateway = stack.harness_address();
    up.endpoints.harness_host = stack.harness_host();
    up.stack = Some(stack.clone());
    up.endpoints.sinks = ctx.sinks.start(scenario, gateway, &ctx.journal, ctx.seed).await?;
    // Before the first service starts: their environment names the links' addresses.
    super::links::start_links(ctx, scenario, &stack, &mut up.endpoints).await?;

    let started = std::sync::Mutex::new(super::bring_up::Started::default());
    let result = super::bring_up::start_services(
        ctx,
        scenario,
        &stack,
        &run_id,
        &up.endpoints,
        jobs,
        &up.monitors_stop,
        &started,
    )
    .await;
    let started = started.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    up.monitors.extend(started.monitors);
    up.health.extend(started.health);
    result
}

/// Wait for the first healthy observation of a check that began at or after `since`, failing
/// early when the container is gone.
pub(super) async fn wait_ready(
    mut exits: tokio::sync::broadcast::Receiver<Exit>,
    mut rx: watch::Receiver<HealthState>,
    stack: &dyn RunScope,
    service: &str,
    timeout: Duration,
    since: tokio::time::Instant,
) -> Result<(), String> {
    const STATE_CHECK_EVERY: Duration = Duration::from_millis(100);
    let deadline = clock::instant_now() + timeout;
    let mut next_state_check = clock::instant_now() + STATE_CHECK_EVERY;
    let mut last_detail = String::from("no health observation yet");
    let mut exits_open = true;
    loop {
        if let Some(observation) = rx.borrow_and_update().clone()
            && observation.started >= since
        {
            if observation.healthy {
                return Ok(());
            }
            last_detail = observation.detail;
        }
        let now = clock::instant_now();
        // Health observations arrive every interval; the container's state is checked on its
        // own schedule so a container that exited fails bring-up (or an upgrade) within 100 ms.
        if now >= next_state_check {
            next_state_check = now + STATE_CHECK_EVERY;
            if let Ok(state) = stack.state(service).await
                && !state.running
            {
                let code = state.exit_code.map_or(String::new(), |c| format!(" with code {c}"));
                let oom = if state.oom_killed { " (out of memory)" } else { "" };
                return Err(format!("container exited{code}{oom} before becoming healthy"));
            }
        }
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(format!(
                "not healthy within {} (last check: {last_detail})",
                crate::scenario::format_duration(timeout)
            ));
        }
        let wake = remaining.min(next_state_check.saturating_duration_since(now));
        tokio::select! {
            changed = rx.changed() => if changed.is_err() {
                return Err(format!("health monitor stopped (last check: {last_detail})"));
            },
            exited = exits.recv(), if exits_open => match exited {
                // The backend's word is final, and comes before `state` stops saying "running".
                Ok(exit) if exit.service == service
                    && stack.instance_id(service).is_ok_and(|id| id == exit.container) =>
                {
                    let code = exit.exit_code.map_or(String::new(), |c| format!(" with code {c}"));
                    return Err(format!("container exited{code} before becoming healthy"));
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    next_state_check = clock::instant_now();
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => exits_open = false,
            },
            () = clock::sleep(wake) => {}
        }
    }
}

async fn steady_state(
    ctx: &Context,
    scenario: &Scenario,
    stack: &Arc<dyn RunScope>,
    phase: SteadyPhase,
) -> Result<(), Stop> {
    for probe in &scenario.steady_state {
        ctx.interruptible(run_probe(ctx, stack, probe, ProbeContext::SteadyState { phase }))
            .await
            .ok_or(Stop::Interrupted)?;
    }
    Ok(())
}

async fn steps(
    ctx: &Context,
    scenario: &Scenario,
    stack: &Arc<dyn RunScope>,
    state: &mut ServiceState,
) -> Result<(), Stop> {
    for step in &scenario.steps {
        match run_step(ctx, stack, scenario, state, step).await {
            StepEnd::Done => {}
            StepEnd::Abort => return Ok(()),
            StepEnd::Interrupted => return Err(Stop::Interrupted),
            StepEnd::Failed(reason) => {
                return Err(EngineError::Step { step: step.name.clone(), reason }.into());
            }
        }
    }
    Ok(())
}

/// Start every `traffic` entry; they run until the steps are over.
async fn start_traffic(
    ctx: &Context,
    scenario: &Scenario,
    stack: &Arc<dyn RunScope>,
) -> Vec<(String, crate::traffic::TrafficHandle, reqwest::Client)> {
    let mut started = Vec::new();
    for spec in scenario.traffic.values() {
        let http = crate::traffic::http_client();
        let resolve = port_resolver(stack, &spec.request.service, spec.request.port).await;
        let handle = crate::traffic::start(spec, resolve, ctx.journal.clone(), http.clone());
        started.push((spec.name.clone(), handle, http));
    }
    started
}

/// Stop the traffic (in-flight requests finish) and read acknowledged writes back.
async fn finish_traffic(
    ctx: &Context,
    scenario: &Scenario,
    stack: &Arc<dyn RunScope>,
    traffic: Vec<(String, crate::traffic::TrafficHandle, reqwest::Client)>,
) {
    // Every stream stops scheduling at once (`traffic-stopped`), then the requests due by then
    // settle: writes acknowledged by requests in flight at the stop count too.
    let (names, stops): (Vec<_>, Vec<_>) =
        traffic.into_iter().map(|(name, handle, http)| ((name, http), handle.stop())).unzip();
    // Waiting for the requests in flight to answer is time spent on the service.
    let stopped = ctx.service_wait(futures_util::future::join_all(stops)).await;
    for ((name, http), stats) in names.into_iter().zip(stopped) {
        let spec = &scenario.traffic[&name];
        if spec.verify_writes.is_none() || ctx.signals.interrupt.is_cancelled() {
            continue;
        }
        let waiting = ctx.accounting.begin(Wait::Service);
        let resolve = port_resolver(stack, &spec.request.service, spec.request.port).await;
        let verified = crate::traffic::verify_writes_against(
            spec,
            &stats.records,
            stats.unverifiable,
            resolve,
            &ctx.journal,
            &http,
        );
        let _ = ctx.interruptible(verified).await;
        drop(waiting);
    }
}

/// The current 127.0.0.1 port of a service's container port (it moves when the container is
/// replaced or restarted).
async fn port_resolver(
    stack: &Arc<dyn RunScope>,
    service: &str,
    port: u16,
) -> crate::traffic::PortResolver {
    // The counter is the stack's own and never changes identity: reading it once is enough.
    let changes = stack.rotation_changes();
    let stack = stack.clone();
    let service = service.to_owned();
    crate::traffic::PortResolver::many(
        move || {
            let stack = stack.clone();
            let service = service.clone();
            Box::pin(async move {
                stack.host_ports(&service, port).await.map_err(|error| error.to_string())
            })
        },
        changes,
    )
}

pub(super) async fn teardown(ctx: &Context, up: Up) -> Result<(), Stop> {
    // First, so nothing the stack sends while it is removed counts as a notification.
    ctx.sinks.shutdown(&ctx.journal).await;
    up.monitors_stop.cancel();
    for monitor in up.monitors {
        let _ = monitor.await;
    }
    // Once nobody observes health any more (a service losing its link is not news now), and
    // before the containers go: their open link connections end.
    ctx.links.shutdown().await;
    drop(up.health);
    let Some(stack) = up.stack else {
        return Ok(());
    };
    if Arc::strong_count(&stack) != 1 {
        // Monitors, links and traffic are done; a reference left elsewhere would delay the
        // scope's own safety net (its `Drop`) until it goes.
        tracing::warn!("the run scope is still shared at teardown");
    }
    let graceful = !ctx.signals.kill_fast.is_cancelled();
    // A second signal during a graceful shutdown drops it; dropping the scope (the last
    // reference) then force-removes what it created. After the second signal, the forced
    // shutdown itself runs to its end (racing it against the cancelled token dropped it half
    // the time, leaving the removal to the scope's best-effort `Drop`).
    let result = if graceful {
        tokio::select! {
            result = ctx.backend_call(stack.shutdown(true)) => result,
            () = ctx.signals.kill_fast.cancelled() => Ok(()),
        }
    } else {
        ctx.backend_call(stack.shutdown(false)).await
    };
    drop(stack);
    if let Some(pump) = up.events_pump {
        pump.abort();
        let _ = pump.await;
    }
    result.map_err(|error| Stop::Error(error.into()))
}
