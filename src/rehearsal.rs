//! The library API: [`Rehearsal`] runs one scenario from Rust (a `cargo test`, a program of your
//! own) the way `firedrill run` does, and hands back an [`Outcome`] with typed verdicts.
//!
//! It owns what a run needs around the engine — loading and validating the scenario, connecting
//! to Docker when no backend is given, writing the reports — and nothing the terminal needs: it
//! never prints, reads no environment variable and installs no signal handler (the CLI, a thin
//! layer over it, does those).
//!
//! ```no_run
//! # async fn rehearse() -> Result<(), firedrill::RehearsalError> {
//! let outcome = firedrill::Rehearsal::from_file("tests/scenarios/webcache/smoke.yaml")?
//!     .seed(7)
//!     .report_dir("target/firedrill/smoke")
//!     .run()
//!     .await?;
//! outcome.assert_held();
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::checks::{CheckStatus, Verdict};
use crate::engine::{self, EngineError, RunOptions, Signals};
use crate::journal::Event;
use crate::report::{self, Report, ReportError, RunRecord, RunStatus, WriteOptions};
use crate::scenario::model::PullPolicy;
use crate::scenario::{self, LoadError, Scenario};
use crate::stack::{DockerBackend, StackError};

/// One rehearsal of one scenario, configured with builder methods and carried out by
/// [`Rehearsal::run`].
///
/// Defaults are the CLI's: a random seed (in the outcome's report, to replay with
/// [`Rehearsal::seed`]), no report folder, the local Docker engine (connected when the run
/// starts; Swarm services on it when the scenario says `backend: swarm`), each service's own `pull:` policy, the stack removed after the run, and no fault
/// ledger (see [`Rehearsal::state_dir`]).
#[must_use = "a rehearsal does nothing until `.run().await`"]
pub struct Rehearsal {
    scenario: Scenario,
    options: RunOptions,
    backend: Option<Arc<dyn Backend>>,
    signals: Signals,
    listener: Option<crate::journal::Listener>,
    /// The stack kept between rehearsals, when they share one (`firedrill explore` with
    /// `reuse-stack: true`).
    keeper: Option<Arc<tokio::sync::Mutex<engine::StackKeeper>>>,
    /// Whether [`Rehearsal::run`] writes `junit.xml`, `summary.md` and `report.html` beside
    /// `report.json` (the CLI writes them itself, once for all the runs of an invocation).
    write_reports: bool,
}

impl fmt::Debug for Rehearsal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rehearsal")
            .field("scenario", &self.scenario.name)
            .field("options", &self.options)
            .field("backend", &self.backend.as_ref().map(|backend| backend.name()))
            .field("listener", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

impl Rehearsal {
    /// Load and validate the scenario at `path`. An invalid scenario is a
    /// [`RehearsalError::Scenario`] that renders every mistake with `file:line:col`, as
    /// `firedrill validate` prints them.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, RehearsalError> {
        let scenario = scenario::load(path.as_ref()).map_err(RehearsalError::Scenario)?;
        Ok(Self::from_scenario(scenario))
    }

    /// Rehearse a scenario loaded (or built) already.
    pub fn from_scenario(scenario: Scenario) -> Self {
        Rehearsal {
            scenario,
            options: RunOptions::default(),
            backend: None,
            signals: Signals::default(),
            listener: None,
            keeper: None,
            write_reports: true,
        }
    }

    /// The scenario this rehearsal runs.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The seed of the run's random choices (fault targets), for a replay of a run whose report
    /// shows it (`firedrill run --seed N`). Random when not set.
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = Some(seed);
        self
    }

    /// Write the run's files into `dir` (created if missing): `journal.jsonl` while the run goes,
    /// then `report.json`, `junit.xml`, `summary.md` and `report.html` (`firedrill run --report
    /// DIR`). Without it nothing is written; the outcome still holds the journal and the report.
    pub fn report_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.report_dir = Some(dir.into());
        self
    }

    /// Run the stack on `backend` instead of the local Docker engine. An `Arc` of a backend is a
    /// backend too, so one backend can serve many rehearsals.
    pub fn backend(mut self, backend: impl Backend + 'static) -> Self {
        self.backend = Some(Arc::new(backend));
        self
    }

    /// How many instances bring-up creates at once (`--jobs N`): services whose dependencies are
    /// ready start side by side, each gated on its own health. Default: 4 per core, 4 to 32.
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.options.jobs = Some(jobs.max(1));
        self
    }

    /// Leave the stack up after the run (`--keep`), labelled so that the sweep of dead runs skips
    /// it; `firedrill gc --run RUN_ID` removes it.
    pub fn keep(mut self, keep: bool) -> Self {
        self.options.keep = keep;
        self
    }

    /// The pull policy of every service, overriding their `pull:` keys (`--pull`).
    pub fn pull(mut self, policy: PullPolicy) -> Self {
        self.options.pull = Some(policy);
        self
    }

    /// Keep the fault ledger under `dir` (`DIR/ledger/RUN_ID.jsonl`), so that faults a killed
    /// process left in force are reverted by the next run or `firedrill gc` with the same folder.
    /// The CLI uses `$FIREDRILL_STATE_DIR`, `$XDG_STATE_HOME/firedrill` or
    /// `~/.local/state/firedrill`; without one, faults are not ledgered and only the label sweep
    /// cleans up after a SIGKILL.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.state_dir = Some(dir.into());
        self
    }

    /// Both escalation steps of cancellation: `interrupt` stops the timeline, undoes what it can
    /// and tears down gracefully (the first Ctrl-C); `kill_fast` skips the graceful steps (the
    /// second).
    pub fn signals(mut self, signals: Signals) -> Self {
        self.signals = signals;
        self
    }

    /// Interrupt the run when `token` is cancelled, as a first Ctrl-C does: the run stops, tears
    /// down gracefully and ends [`RunStatus::Interrupted`].
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.signals.interrupt = token;
        self
    }

    /// Call `listener` with every journal event as it is recorded (the CLI's progress display is
    /// one). It runs on the engine's tasks: keep it short and never block in it.
    pub fn on_event(mut self, listener: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Every option at once (the CLI's way in, so that a new engine option needs no new builder
    /// method before the CLI can pass it).
    pub(crate) fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// Run on the stack `keeper` kept from an earlier rehearsal (checked clean and restored, or
    /// renewed), and keep this one's stack there when it ends cleanly; the caller closes the
    /// keeper when done.
    pub(crate) fn keeper(mut self, keeper: Arc<tokio::sync::Mutex<engine::StackKeeper>>) -> Self {
        self.keeper = Some(keeper);
        self
    }

    /// Write only the run's own files (`journal.jsonl`, `report.json`), not the reports that cover
    /// a whole invocation (the CLI writes those once for all its runs).
    pub(crate) fn only_run_files(mut self) -> Self {
        self.write_reports = false;
        self
    }

    /// Carry out the rehearsal: bring the stack up, run the timeline, judge the journal, tear
    /// down (also on failure and cancellation), then write the reports when a folder is set.
    ///
    /// A run that happened is `Ok`, whatever it found: a failed check is
    /// [`RunStatus::Deviated`], a run the harness could not finish (a service that never became
    /// ready, an image that cannot be built) is [`RunStatus::Aborted`] with
    /// [`Outcome::error`]. `Err` means no run happened: the Docker engine could not be reached.
    pub async fn run(self) -> Result<Outcome, RehearsalError> {
        let backend: Arc<dyn Backend> = match self.backend {
            Some(backend) => backend,
            // The scenario's `backend:` when the caller gave none.
            None => match self.scenario.backend {
                Some(crate::scenario::model::BackendChoice::Swarm) => Arc::new(
                    crate::stack::swarm::SwarmBackend::connect()
                        .await
                        .map_err(RehearsalError::Connect)?,
                ),
                _ => Arc::new(DockerBackend::connect().await.map_err(RehearsalError::Connect)?),
            },
        };
        let Rehearsal { scenario, options, signals, listener, write_reports, keeper, .. } = self;
        let result = match keeper {
            Some(keeper) => {
                let mut keeper = keeper.lock().await;
                keeper.run(&scenario, backend.as_ref(), &options, &signals, listener).await
            }
            None => engine::run(&scenario, backend.as_ref(), &options, &signals, listener).await,
        };
        let record = RunRecord::new(
            options.report_dir.clone().unwrap_or_default(),
            &scenario.name,
            &scenario.source.display().to_string(),
            result.events,
            &result.verdicts,
            result.status,
        );
        let mut outcome = Outcome {
            run_id: result.run_id,
            status: result.status,
            verdicts: result.verdicts,
            error: result.error,
            report_dir: options.report_dir.clone(),
            report_files: result.report_path.into_iter().collect(),
            report_failures: Vec::new(),
            record,
        };
        if let (Some(dir), true) = (&options.report_dir, write_reports) {
            let written = report::write_all(
                dir,
                std::slice::from_ref(&outcome.record),
                &WriteOptions::default(),
            );
            for file in written.files {
                if !outcome.report_files.contains(&file) {
                    outcome.report_files.push(file);
                }
            }
            outcome.report_failures = written.failures;
        }
        Ok(outcome)
    }
}

/// What a rehearsal found: how the run ended, a verdict per `expect` entry, the journal, and
/// where the reports went.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome {
    run_id: String,
    status: RunStatus,
    verdicts: Vec<Verdict>,
    error: Option<EngineError>,
    report_dir: Option<PathBuf>,
    report_files: Vec<PathBuf>,
    report_failures: Vec<ReportError>,
    /// The journal and `report.json`'s content.
    record: RunRecord,
}

impl Outcome {
    /// The run id (`fd-` and 8 hex digits), the `firedrill.run` label of everything the run
    /// created.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// How the run ended.
    pub fn status(&self) -> RunStatus {
        self.status
    }

    /// Whether the rehearsal held: the run went through and every check passed. A scenario
    /// without `expect:` entries never holds: nothing was checked (the CLI's `--strict`).
    pub fn held(&self) -> bool {
        self.status == RunStatus::Completed && !self.verdicts.is_empty()
    }

    /// Panic unless the rehearsal [held](Outcome::held), with the summary `firedrill run` prints
    /// (a line per check, what settled each failure) and the run's error with its hint, if any.
    #[track_caller]
    pub fn assert_held(&self) {
        if !self.held() {
            panic!("the rehearsal did not hold:\n{}", self.summary());
        }
    }

    /// The summary `firedrill run` prints, without colour: the status, then a line per check
    /// (`PASS`, `FAIL` or `SKIP` and what settled it), then the run's error with its hint.
    pub fn summary(&self) -> String {
        let mut text = report::render_summary_text(&self.record.report, false);
        if self.verdicts.is_empty() {
            text.push_str("  nothing was checked: the scenario has no `expect:` entries\n");
        }
        if let Some(error) = &self.error {
            text.push_str(&format!("error: {error}\n"));
            if let Some(hint) = error.hint() {
                text.push_str(&format!("hint: {hint}\n"));
            }
        }
        text
    }

    /// One verdict per `expect` entry, in the scenario's order.
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// The verdict of the `expect` entry named `name`.
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|verdict| verdict.name == name)
    }

    /// The verdicts that did not pass (failed or not evaluated).
    pub fn unmet(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|verdict| verdict.status != CheckStatus::Passed)
    }

    /// The whole journal, in order.
    pub fn events(&self) -> &[Event] {
        &self.record.events
    }

    /// `report.json`'s content: phases, steps, checks, counts, timing, the seed.
    pub fn report(&self) -> &Report {
        &self.record.report
    }

    /// The seed of the run's random choices ([`Rehearsal::seed`] replays them).
    pub fn seed(&self) -> Option<u64> {
        self.record.report.seed
    }

    /// Why the harness could not finish the run ([`RunStatus::Aborted`]), when it could not.
    pub fn error(&self) -> Option<&EngineError> {
        self.error.as_ref()
    }

    /// The report folder, when one was set.
    pub fn report_dir(&self) -> Option<&Path> {
        self.report_dir.as_deref()
    }

    /// The report files written, in order (`report.json` first).
    pub fn report_files(&self) -> &[PathBuf] {
        &self.report_files
    }

    /// Reports that could not be written (each also logged); the others were written.
    pub fn report_failures(&self) -> &[ReportError] {
        &self.report_failures
    }

    /// The journal with its report, and the error (the CLI's records and messages).
    pub(crate) fn into_record_and_error(self) -> (RunRecord, Option<EngineError>) {
        (self.record, self.error)
    }
}

/// Why a rehearsal did not run.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RehearsalError {
    /// The scenario file could not be read, or has mistakes (each rendered with `file:line:col`,
    /// a label and a hint, as `firedrill validate` prints them).
    #[error("{}", render_load_error(.0))]
    Scenario(LoadError),
    /// The Docker engine could not be reached (no backend was given).
    #[error("failed to connect to Docker: {0}")]
    Connect(#[source] StackError),
}

impl RehearsalError {
    /// A one-line hint, when there is a likely fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            RehearsalError::Scenario(_) => None,
            RehearsalError::Connect(error) => error.hint(),
        }
    }
}

/// `Debug` shows what the CLI would print (the diagnostics, or the error and its hint): it is
/// what `?` in a test or `main` displays.
impl fmt::Debug for RehearsalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        if let Some(hint) = self.hint() {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

fn render_load_error(error: &LoadError) -> String {
    match error {
        LoadError::Invalid(invalid) => scenario::render(invalid, false).trim_end().to_owned(),
        LoadError::Read { source, .. } => format!("{error}: {source}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Evidence;

    fn verdict(name: &str, status: CheckStatus) -> Verdict {
        Verdict {
            name: name.into(),
            kind: "steady-state",
            status,
            summary: format!("{name} settled"),
            expected: String::new(),
            observed: String::new(),
            evidence: Vec::<Evidence>::new(),
            channels: Vec::new(),
        }
    }

    fn outcome(status: RunStatus, verdicts: Vec<Verdict>, error: Option<EngineError>) -> Outcome {
        let record =
            RunRecord::new(PathBuf::new(), "smoke", "smoke.yaml", Vec::new(), &verdicts, status);
        Outcome {
            run_id: "fd-00000000".into(),
            status,
            verdicts,
            error,
            report_dir: None,
            report_files: Vec::new(),
            report_failures: Vec::new(),
            record,
        }
    }

    #[test]
    fn a_completed_run_with_checks_holds() {
        let held = outcome(RunStatus::Completed, vec![verdict("up", CheckStatus::Passed)], None);
        assert!(held.held());
        held.assert_held();
    }

    #[test]
    fn a_failed_check_panics_with_the_cli_summary() {
        let failed = outcome(
            RunStatus::Deviated,
            vec![verdict("up", CheckStatus::Passed), verdict("answers", CheckStatus::Failed)],
            None,
        );
        assert!(!failed.held());
        assert_eq!(failed.unmet().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["answers"]);
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| failed.assert_held()))
            .expect_err("it panics");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(
            message.contains("smoke: FAILED (1/2 checks passed, 1 failed)"),
            "status line missing: {message}"
        );
        assert!(message.contains("  FAIL answers — answers settled"), "check line: {message}");
    }

    #[test]
    fn an_aborted_run_shows_its_error_and_hint() {
        let error = EngineError::Startup {
            service: "db".into(),
            reason: "health check failing".into(),
            logs: String::new(),
        };
        let aborted = outcome(RunStatus::Aborted, Vec::new(), Some(error));
        assert!(!aborted.held());
        let summary = aborted.summary();
        assert!(summary.contains("error: service `db` did not become ready"), "{summary}");
        assert!(summary.contains("hint: run with --keep"), "{summary}");
    }

    #[test]
    fn nothing_checked_is_not_held() {
        let unchecked = outcome(RunStatus::Completed, Vec::new(), None);
        assert!(!unchecked.held());
        assert!(unchecked.summary().contains("nothing was checked"));
    }

    #[test]
    fn an_invalid_scenario_renders_its_diagnostics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.yaml");
        fs_err::write(&path, "name: bad\nstack:\n  services: {}\nstepz: []\n").expect("write");
        let error = Rehearsal::from_file(&path).expect_err("invalid");
        let text = format!("{error:?}");
        assert!(text.contains("bad.yaml:4:1"), "no position in: {text}");
        assert_eq!(text, error.to_string(), "Debug renders like Display");
    }

    #[test]
    fn a_missing_file_says_which() {
        let error = Rehearsal::from_file("no/such/scenario.yaml").expect_err("missing");
        assert!(error.to_string().starts_with("failed to read scenario `no/such/scenario.yaml`"));
    }
}
