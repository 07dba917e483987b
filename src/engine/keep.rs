//! A stack kept between runs (`explore: { reuse-stack: true }`): a run that ends cleanly leaves
//! its stack up instead of tearing it down, and the next run starts with the [`Phase::Reuse`]
//! phase instead of prepare and bring-up. That phase checks the kept stack is clean and restores
//! what a run may change:
//! - the run's `stack` must be the one the stack was brought up from;
//! - no fault may be in force (the fault ledger is empty: every fault was reverted);
//! - every service runs its original definition: a service an earlier run upgraded (or rolled
//!   back to something else) is recreated at its original image first (`restore SERVICE`, an
//!   ordinary `recreate` upgrade in the journal; a replicated one a `rolling` upgrade of all its
//!   replicas at once);
//! - every service (every replica) is healthy by a check that began after the phase started,
//!   within its `startup-timeout`.
//!
//! When one of these fails, the run records `stack-renewed` with the reason, removes the kept
//! stack and brings a fresh one up (with the same run id, so one label sweep finds every stack of
//! the search). A run that was interrupted or could not be carried out is torn down as ever.
//!
//! What reuse cannot restore, and does not try to: data the services wrote (rows, files, a
//! migrated schema), connections and caches inside the services, notifications a sink received
//! late. A check that depends on an empty database sees the earlier runs' writes.
//!
//! Each run keeps its own journal: [`crate::journal::Journal::begin_segment`] moves the kept
//! journal (shared by the health monitors, sinks and link proxies of the stack) to the new run's
//! file and restarts its clock at 0; the phase then records every service's health as the run's
//! baseline, as bring-up would have.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::run::{Context, Stop, Up, phase, teardown, wait_ready};
use super::steps::StepEnd;
use super::upgrade::ServiceState;
use super::{EngineError, RunOptions, Signals};
use crate::clock;
use crate::journal::{EventKind, Phase};
use crate::scenario::model::{OnFailure, Scenario, Service, Stack, Strategy, Upgrade};

/// A stack a run left up for the next run, with everything that observes it.
pub(crate) struct Kept {
    /// The context of the runs on this stack (journal, sinks, link proxies, ledger).
    pub(super) ctx: Context,
    /// The stack, its health monitors and endpoints.
    pub(super) up: Up,
    /// The run id the stack is labelled with.
    pub(super) run_id: String,
    /// The definition it was brought up from.
    pub(super) stack: Stack,
    /// What each service runs now.
    pub(super) current: HashMap<String, Service>,
    /// How many runs used it so far.
    pub(super) runs: u32,
}

impl Kept {
    /// Ready the kept context for the next run: its journal file (from offset 0), its signals,
    /// seed and responders, time accounting from zero.
    pub(super) fn begin_run(
        mut self,
        options: &RunOptions,
        signals: &Signals,
        seed: u64,
    ) -> Result<Self, Box<(Self, EngineError)>> {
        let path = match &options.report_dir {
            None => None,
            Some(dir) => {
                if let Err(source) = fs_err::create_dir_all(dir) {
                    return Err(Box::new((
                        self,
                        EngineError::ReportDir { path: dir.clone(), source },
                    )));
                }
                Some(dir.join("journal.jsonl"))
            }
        };
        // The first listener is the context's own `seq` watch; a listener of the earlier run goes.
        if let Err(error) = self.ctx.journal.begin_segment(path.as_deref(), 1) {
            let path = path.unwrap_or_default();
            let source = match error {
                crate::journal::JournalError::Io(source) => source,
                other => std::io::Error::other(other.to_string()),
            };
            return Err(Box::new((self, EngineError::ReportDir { path, source })));
        }
        self.ctx.journal_moved.send_replace(0);
        self.ctx.signals = signals.clone();
        self.ctx.seed = seed;
        self.ctx.gameday = options.gameday.clone();
        self.ctx.accounting.restart(&self.ctx.journal);
        Ok(self)
    }
}

/// Tear a kept stack down, journaled as the `teardown` phase at the end of the last run's
/// journal (after that run's `report.json` was written), and remove its fault ledger.
pub(crate) async fn close(kept: Kept) {
    let Kept { ctx, up, .. } = kept;
    let _ = phase(&ctx, Phase::Teardown, teardown(&ctx, up)).await;
    if let Some(ledger) = &ctx.ledger
        && let Err(error) = ledger.remove()
    {
        tracing::warn!(%error, "failed to remove the fault ledger");
    }
}

/// What the reuse phase found.
#[derive(Debug, Default)]
pub(super) struct Reuse {
    /// Services recreated at their original image.
    pub restored: Vec<String>,
    /// Why the kept stack cannot be used (`None`: clean).
    pub not_clean: Option<String>,
}

/// The reuse phase: see the module's rules. `Err` only when interrupted; a stack that is not clean
/// is `verdict.not_clean`.
pub(super) async fn reuse(
    ctx: &Context,
    scenario: &Scenario,
    up: &Up,
    kept_stack: &Stack,
    current: &mut HashMap<String, Service>,
    run_id: &str,
    verdict: &mut Reuse,
) -> Result<(), Stop> {
    let Some(stack) = up.stack.clone() else {
        verdict.not_clean = Some("no stack was kept".into());
        return Ok(());
    };
    if scenario.stack != *kept_stack {
        verdict.not_clean = Some("this run's `stack` differs from the kept stack's".into());
        return Ok(());
    }
    if let Some(ledger) = &ctx.ledger
        && ledger.outstanding() > 0
    {
        verdict.not_clean = Some(format!(
            "{} fault(s) of an earlier run still in force (fault ledger `{}`)",
            ledger.outstanding(),
            ledger.path().display()
        ));
        return Ok(());
    }
    for original in scenario.stack.start_order() {
        let name = original.name.as_str();
        if current.get(name) == Some(original) {
            continue;
        }
        // A replicated service is rolled back to its original image all replicas at once: no
        // traffic runs yet, and the health wait below judges every replica.
        let strategy = if original.replicas > 1 { Strategy::Rolling } else { Strategy::Recreate };
        let spec = Upgrade {
            service: name.to_owned(),
            target: original.image.clone(),
            strategy,
            deadline: original.startup_timeout,
            migrate: None,
            watch: None,
            backup: None,
            on_failure: OnFailure::Abort,
            version: None,
            max_unavailable: original.replicas,
        };
        let mut state = ServiceState {
            health: up.health.clone(),
            current: current.clone(),
            upgrades: HashMap::new(),
            run_id: run_id.to_owned(),
            endpoints: up.endpoints.clone(),
        };
        let step = format!("restore {name}");
        match super::upgrade::run_upgrade(ctx, &stack, scenario, &mut state, &step, &spec).await {
            StepEnd::Interrupted => return Err(Stop::Interrupted),
            StepEnd::Done if state.current.get(name) == Some(original) => {
                *current = state.current;
                verdict.restored.push(name.to_owned());
            }
            _ => {
                verdict.not_clean = Some(format!(
                    "`{name}` could not be restored to `{}`",
                    original.image.reference()
                ));
                return Ok(());
            }
        }
    }
    // Healthy now: by a check that began after this point, as bring-up asks of a new container.
    let since = clock::instant_now();
    let waits = up.health.iter().map(|(key, rx)| {
        let timeout = scenario
            .stack
            .services
            .get(key.split('.').next().unwrap_or(key))
            .map_or(std::time::Duration::from_secs(30), |service| service.startup_timeout);
        let stack = stack.clone();
        let exits = ctx.exits.subscribe();
        let rx = rx.clone();
        async move {
            let result = wait_ready(exits, rx, stack.as_ref(), key, timeout, since).await;
            (key.clone(), result)
        }
    });
    let results = ctx
        .service_wait(ctx.interruptible(futures_util::future::join_all(waits)))
        .await
        .ok_or(Stop::Interrupted)?;
    let mut keys: Vec<String> = Vec::new();
    for (key, result) in results {
        if let Err(reason) = result {
            verdict.not_clean = Some(format!("`{key}` is not healthy: {reason}"));
            return Ok(());
        }
        keys.push(key);
    }
    // This run's baseline: the monitors record changes only, and the last ones went to the
    // earlier run's journal.
    keys.sort();
    let now_us = u64::try_from(ctx.journal.offset().as_micros()).unwrap_or(u64::MAX);
    for key in keys {
        ctx.journal.record(EventKind::HealthChanged {
            service: key,
            healthy: true,
            detail: "healthy on the kept stack".into(),
            check_started_us: Some(now_us),
        });
    }
    Ok(())
}

/// The context of a run whose kept stack was removed (`stack-renewed`): the same journal,
/// signals and time accounting, new sinks, link proxies and fault ledger for the fresh stack.
pub(super) fn renewed(ctx: Context, run_id: &str) -> Context {
    let ledger = ctx.ledger.as_ref().map(|old| {
        if let Err(error) = old.remove() {
            tracing::warn!(%error, "failed to remove the fault ledger");
        }
        let dir = old.path().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        Arc::new(crate::faults::Ledger::new(&dir, run_id, crate::owner::current_owner()))
    });
    let Context { journal, signals, http, accounting, exits, seed, gameday, journal_moved, .. } =
        ctx;
    Context {
        journal,
        signals,
        http,
        accounting,
        exits,
        seed,
        ledger,
        fault_ids: AtomicU64::new(0),
        sinks: super::sinks::RunSinks::default(),
        links: super::links::LinkProxies::default(),
        gameday,
        journal_moved,
    }
}
