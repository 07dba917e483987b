//! The engine: turns a validated scenario into a run — prepare, bring-up, steady state, steps,
//! steady state again, teardown — recording everything in the journal, then judges the journal.
//!
//! It owns cancellation (first signal: stop the timeline, undo what is undone quickly, tear down;
//! second: force-remove at once) and the time accounting behind the overhead figure. It reaches
//! the stack only through the backend boundary (`crate::backend::{Backend, RunScope}`), never
//! Docker, and never prints: progress is a journal listener the CLI installs.
//! See `ARCHITECTURE.md` for the phase diagram and the checklist for adding a step kind.

mod accounting;
mod bring_up;
mod faults;
pub mod gameday;
mod health;
mod keep;
mod links;
mod metrics;
mod run;
mod sinks;
mod steps;
mod template;
#[cfg(test)]
mod tests;
mod upgrade;

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

pub use run::run;

/// A stack kept up between runs, for runs of one stack one after another
/// (`explore: { reuse-stack: true }`): each run after the first checks the stack is clean and
/// restores what it can (see the `keep` module) instead of bringing it up, and keeps its own
/// journal. [`StackKeeper::close`] tears the last stack down; dropping a keeper without it leaves
/// the removal to the scope's best-effort `Drop` and the label sweep.
#[derive(Default)]
pub struct StackKeeper {
    kept: Option<keep::Kept>,
}

impl std::fmt::Debug for StackKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackKeeper").field("keeping", &self.kept.is_some()).finish()
    }
}

impl StackKeeper {
    /// [`run`], on the kept stack when there is one, keeping the stack afterwards when the run
    /// ended cleanly.
    pub async fn run(
        &mut self,
        scenario: &crate::scenario::Scenario,
        backend: &dyn crate::backend::Backend,
        options: &RunOptions,
        signals: &Signals,
        listener: Option<crate::journal::Listener>,
    ) -> RunResult {
        run::run_keeping(scenario, backend, options, signals, listener, &mut self.kept, true).await
    }

    /// Whether a stack is kept now.
    pub fn is_keeping(&self) -> bool {
        self.kept.is_some()
    }

    /// Tear the kept stack down, if any (journaled at the end of the last run's journal).
    pub async fn close(&mut self) {
        if let Some(kept) = self.kept.take() {
            keep::close(kept).await;
        }
    }
}
pub(crate) use template::{Endpoints, render_env};

use crate::backend::BackendError;
use crate::checks::Verdict;
use crate::journal::Event;
use crate::report::RunStatus;

/// How a run is carried out.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--report DIR`: stream `journal.jsonl` there and write `report.json` at the end.
    pub report_dir: Option<PathBuf>,
    /// `--keep`: leave the stack up (labelled as kept) for debugging.
    pub keep: bool,
    /// `--seed N`: the seed of the run's random choices (fault targets); random when `None`.
    pub seed: Option<u64>,
    /// Where firedrill keeps state across runs (the fault ledger, `STATE/ledger/RUNID.jsonl`);
    /// without one, faults are not ledgered and a SIGKILL leaves them to the label sweep only.
    pub state_dir: Option<PathBuf>,
    /// `--pull`: the pull policy of every service, overriding their `pull:` keys.
    pub pull: Option<crate::scenario::model::PullPolicy>,
    /// `--jobs N`: how many instances bring-up creates at once (services whose dependencies are
    /// ready start side by side); `None`: [`bring_up::default_jobs`].
    pub jobs: Option<usize>,
    /// Gameday: who answers the `human` steps' prompts (scripted responders, a desk).
    pub gameday: gameday::Gameday,
}

/// The two escalation steps of Ctrl-C, owned by the CLI.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// First signal: stop the timeline, tear down gracefully.
    pub interrupt: CancellationToken,
    /// Second signal: skip graceful steps, force-remove at once.
    pub kill_fast: CancellationToken,
}

/// What a run produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunResult {
    /// Run id (`firedrill.run` label).
    pub run_id: String,
    /// How it ended overall.
    pub status: RunStatus,
    /// One verdict per `expect` entry.
    pub verdicts: Vec<Verdict>,
    /// The whole journal.
    pub events: Vec<Event>,
    /// Why the harness could not finish the run, when it could not.
    pub error: Option<EngineError>,
    /// `report.json`, when written.
    pub report_path: Option<PathBuf>,
}

/// Why a run could not be carried out (as opposed to a check failing).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A backend operation failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A service did not become ready.
    #[error("service `{service}` did not become ready: {reason}{}", indent_logs(logs))]
    Startup {
        /// Service.
        service: String,
        /// What was last seen.
        reason: String,
        /// The container's last log lines (empty if they could not be read).
        logs: String,
    },
    /// A step could not be carried out.
    #[error("step `{step}` could not be carried out: {reason}")]
    Step {
        /// Step name.
        step: String,
        /// The backend's error.
        reason: String,
    },
    /// A notification sink could not be started.
    #[error("notification sink `{sink}` could not be started: {reason}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// Why.
        reason: String,
    },
    /// A link's fault proxy could not listen.
    #[error("could not start the fault proxy of link `{link}`: {source}")]
    Link {
        /// The link.
        link: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The report folder could not be written.
    #[error("failed to write to report folder `{}`: {source}", path.display())]
    ReportDir {
        /// The folder or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// A one-line hint for the user, when there is a likely fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::Backend(error) => error.hint.clone(),
EngineError::Startup { .. } => Some(
                "run with --keep to inspect the container, or raise `startup-timeout` if it is just slow"
                    .into(),
            ),
            EngineError::Step { .. } => None,
            EngineError::Sink { .. } => Some(
                "sinks listen on 127.0.0.1 and on the run network's gateway; check that no \
                 firewall or address policy forbids binding there"
                    .into(),
            ),
            EngineError::Link { .. } => Some(
                "the proxy listens on the run network's gateway address; check that no firewall rule forbids it"
                    .into(),
            ),
            EngineError::ReportDir { .. } => Some("check the path and its permissions".into()),
        }
    }
}

/// Log lines under an error message, indented and marked, or nothing.
fn indent_logs(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().filter(|line| !line.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let mut text = String::from("\nlast log lines:");
    for line in lines {
        text.push_str("\n  | ");
        text.push_str(line);
    }
    text
}
