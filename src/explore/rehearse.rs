//! The runner `firedrill explore` uses: each schedule written into the scenario's text
//! (`DIR/cases/NNNN/scenario.yaml`), read back like any scenario file, and run as one real
//! [`Rehearsal`] on a shared backend, its journal and `report.json` kept beside it.
//!
//! The stack is brought up fresh for every case (no reuse between cases: a case's faults and
//! their aftermath must not leak into the next one's verdicts).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::schedule::Schedule;
use super::search::{CaseRecord, Phase, Runner, Verdict};
use crate::backend::Backend;
use crate::checks::CheckStatus;
use crate::engine::{RunOptions, Signals};
use crate::rehearsal::Rehearsal;
use crate::report::RunStatus;
use crate::scenario::space::{Space, render_schedule};

/// Runs each schedule as a rehearsal.
pub struct RehearsalRunner {
    /// The scenario's text, with its `explore:` section.
    pub source: String,
    /// The scenario file's folder (relative paths in it start there).
    pub folder: PathBuf,
    /// The space (for `at`).
    pub space: Space,
    /// Where each case's folder goes: `DIR/cases/NNNN/`.
    pub dir: PathBuf,
    /// The backend every case runs on.
    pub backend: Arc<dyn Backend>,
    /// Ctrl-C: the case running is interrupted and no other starts.
    pub signals: Signals,
    /// The seed of each run's own random choices (fault targets, toxicity).
    pub seed: u64,
    /// The fault ledger's folder.
    pub state_dir: Option<PathBuf>,
    /// Called with every case once it ran.
    pub on_record: Box<dyn FnMut(&CaseRecord) + Send>,
}

impl RehearsalRunner {
    /// `DIR/cases/NNNN`.
    pub fn case_dir(dir: &Path, case: usize) -> PathBuf {
        dir.join("cases").join(format!("{case:04}"))
    }

    /// The scenario text of `schedule`.
    pub fn text(&self, schedule: &Schedule) -> Result<String, String> {
        render_schedule(&self.source, &self.folder, &self.space, &schedule.faults)
            .map_err(|error| error.to_string())
    }
}

impl Runner for RehearsalRunner {
    async fn run(&mut self, case: usize, _phase: Phase, schedule: &Schedule) -> Verdict {
        if self.signals.interrupt.is_cancelled() {
            return Verdict::Interrupted;
        }
        let dir = Self::case_dir(&self.dir, case);
        let text = match self.text(schedule) {
            Ok(text) => text,
            Err(error) => return Verdict::Aborted { error },
        };
        let path = dir.join("scenario.yaml");
        if let Err(error) = fs_err::create_dir_all(&dir).and_then(|()| fs_err::write(&path, &text))
        {
            return Verdict::Aborted { error: error.to_string() };
        }
        let scenario = match crate::scenario::parse(&text, &path) {
            Ok(scenario) => scenario,
            Err(invalid) => {
                let rendered = crate::scenario::render(&invalid, false);
                return Verdict::Aborted {
                    error: format!("the case's scenario is invalid:\n{rendered}"),
                };
            }
        };
        let options = RunOptions {
            report_dir: Some(dir),
            keep: false,
            seed: Some(self.seed),
            state_dir: self.state_dir.clone(),
            pull: None,
            jobs: None,
        };
        let outcome = Rehearsal::from_scenario(scenario)
            .options(options)
            .backend(self.backend.clone())
            .signals(self.signals.clone())
            .only_run_files()
            .run()
            .await;
        match outcome {
            Err(error) => Verdict::Aborted { error: error.to_string() },
            Ok(outcome) => match outcome.status() {
                RunStatus::Interrupted => Verdict::Interrupted,
                RunStatus::Aborted => Verdict::Aborted {
                    error: outcome.error().map_or_else(|| "aborted".into(), ToString::to_string),
                },
                RunStatus::Completed | RunStatus::Deviated => {
                    let checks: Vec<String> = outcome
                        .verdicts()
                        .iter()
                        .filter(|v| v.status == CheckStatus::Failed)
                        .map(|v| v.name.clone())
                        .collect();
                    if checks.is_empty() { Verdict::Held } else { Verdict::Failed { checks } }
                }
            },
        }
    }

    fn record(&mut self, record: &CaseRecord) {
        (self.on_record)(record);
    }
}
