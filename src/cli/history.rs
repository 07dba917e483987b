//! The run history on the command line: recording each run as it ends (`run`) or from a report
//! folder (`report`), the regression gate (`run --baseline`), and the `history` and `trend`
//! subcommands. The database and everything computed from it live in [`crate::history`]; this
//! file decides where the file is, reads the git commit, prints, and picks exit codes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::errors::{ExitStatus, ExpectedError};

/// A line of the gate's verdict into `out` (stdout or stderr, by the run's `--format`).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}
use crate::history::{
    History, HistoryError, Origin, Recorded, RegressionPolicy, RunEntry, RunFilter, Trend,
    regressions, render_history_table, render_trend_html, render_trend_text,
};
use crate::report::{RunRecord, RunStatus};

/// `--history PATH`: which history file (`history`, `trend`, `run`, `report`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HistoryFile {
    /// The run history database (default: `STATE/history.sqlite`, beside the fault ledgers; see
    /// `FIREDRILL_STATE_DIR`).
    #[arg(long = "history", value_name = "PATH", env = "FIREDRILL_HISTORY")]
    pub path: Option<PathBuf>,
}

impl HistoryFile {
    /// The file to use: `--history`, else `STATE/history.sqlite`; `None` without a state folder.
    pub(super) fn resolve(&self, state_dir: Option<&Path>) -> Option<PathBuf> {
        self.path.clone().or_else(|| state_dir.map(|dir| dir.join("history.sqlite")))
    }
}

/// Recording options of `run` and `report`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RecordOptions {
    /// Where runs are recorded and baselines are looked up.
    #[command(flatten)]
    pub file: HistoryFile,
    /// Do not record the run(s) in the history (a `--baseline` is still read from it).
    #[arg(long)]
    pub no_history: bool,
}

/// `run --baseline`: the regression gate.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GateOptions {
    /// Fail (exit 1) when a key figure got worse than `--max-regression` against this run of the
    /// same scenario: `last-pass` (its latest passing run in the history) or a run id.
    #[arg(long, value_name = "last-pass|RUN_ID")]
    pub baseline: Option<String>,
    /// How much worse than the baseline a figure may get, in percent of the baseline's value.
    #[arg(long, value_name = "PERCENT", default_value = "20%", value_parser = parse_percent)]
    pub max_regression: f64,
    /// Time figures that moved by at most this much are noise and never regress (health checks
    /// observe at their interval).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_floor)]
    pub regression_floor: f64,
}

impl GateOptions {
    fn policy(&self) -> RegressionPolicy {
        RegressionPolicy { max_percent: self.max_regression, floor_ms: self.regression_floor }
    }
}

/// `firedrill history`.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// The history file.
    #[command(flatten)]
    pub file: HistoryFile,
    /// Only this scenario's runs (its `name`).
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// Only the latest N runs.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Print the runs as JSON (with their checks and figures) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `firedrill trend`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrendArgs {
    /// The history file.
    #[command(flatten)]
    pub file: HistoryFile,
    /// Only this scenario's runs (its `name`).
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// Only the latest N runs of each selection.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Also write a self-contained HTML page with one plot per key figure.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// A point is a regression when worse than its scenario's last passing run before it by
    /// more than this.
    #[arg(long, value_name = "PERCENT", default_value = "20%", value_parser = parse_percent)]
    pub max_regression: f64,
    /// Time figures that moved by at most this much are noise.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_floor)]
    pub regression_floor: f64,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().strip_suffix('%').unwrap_or(text.trim());
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!("expected a percentage such as `20%`, got `{text}`")),
    }
}

fn parse_floor(text: &str) -> Result<f64, String> {
    if text.trim() == "0" {
        return Ok(0.0);
    }
    crate::scenario::parse_duration(text).map(|d| d.as_secs_f64() * 1_000.0)
}

impl From<HistoryError> for ExpectedError {
    fn from(error: HistoryError) -> Self {
        ExpectedError::History(error)
    }
}

/// `git rev-parse HEAD` in `folder`, when it is in a git repository and git answers within 2 s.
async fn git_commit(folder: &Path) -> Option<String> {
    let folder = if folder.as_os_str().is_empty() { Path::new(".") } else { folder };
    let output = tokio::process::Command::new("git")
        .arg("-C")
        .arg(folder)
        .args(["rev-parse", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(2), output).await.ok()?.ok()?;
    let commit = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && commit.len() >= 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(commit)
}

/// What `firedrill run` does with the history: record each run as it ends, and gate it against
/// its baseline.
pub(super) struct Recorder {
    path: Option<PathBuf>,
    record: bool,
    gate: GateOptions,
    /// `run --format json`: stdout is one document, the gate's lines go to stderr.
    gate_to_stderr: bool,
}

impl Recorder {
    /// Print the gate's lines on stderr (stdout is kept for a machine-readable document).
    pub(super) fn gate_to_stderr(mut self, yes: bool) -> Self {
        self.gate_to_stderr = yes;
        self
    }

    /// Resolve the file; with `--baseline RUN_ID`, make sure that run is there before anything
    /// runs (exit 2 otherwise).
    pub(super) fn new(
        options: &RecordOptions,
        gate: &GateOptions,
        state_dir: Option<&Path>,
        scenario_names: &[String],
    ) -> Result<Recorder, ExpectedError> {
        let path = options.file.resolve(state_dir);
        if let Some(baseline) = gate.baseline.as_deref().filter(|b| *b != "last-pass") {
            let Some(path) = &path else {
                return Err(ExpectedError::NoHistory);
            };
            let history = History::open_existing(path)?;
            let run = match &history {
                Some(history) => history.run(baseline)?,
                None => None,
            };
            let Some(run) = run else {
                return Err(ExpectedError::NoBaseline {
                    run_id: baseline.to_owned(),
                    path: path.clone(),
                });
            };
            if let Some(other) = scenario_names.iter().find(|name| **name != run.scenario) {
                return Err(ExpectedError::BaselineScenario {
                    run_id: baseline.to_owned(),
                    baseline: run.scenario,
                    scenario: other.clone(),
                });
            }
        }
        if gate.baseline.is_some() && path.is_none() {
            return Err(ExpectedError::NoHistory);
        }
        Ok(Recorder {
            path,
            record: !options.no_history,
            gate: gate.clone(),
            gate_to_stderr: false,
        })
    }

    /// Record the run (a failure to record is a warning: the run's verdict stands) and apply
    /// the gate; returns what the gate adds to the exit status.
    pub(super) async fn after_run(&self, scenario_file: &Path, record: &RunRecord) -> ExitStatus {
        let commit = git_commit(scenario_file.parent().unwrap_or(Path::new("."))).await;
        let Some(entry) = RunEntry::from_record(record, Origin::Run, commit) else {
            return ExitStatus::Success;
        };
        if self.record {
            match &self.path {
                Some(path) => match History::open(path).and_then(|mut h| h.record(&entry)) {
                    Ok(_) => {
                        eprintln!("history: recorded {} in `{}`", entry.run_id, path.display())
                    }
                    Err(error) => {
                        eprintln!(
                            "warning: run {} was not recorded in the history: {}",
                            entry.run_id,
                            ExpectedError::from(error).render().trim_start_matches("error: ")
                        );
                    }
                },
                None => eprintln!(
                    "note: no state folder (set FIREDRILL_STATE_DIR or pass --history PATH): \
                     the run is not recorded in the history"
                ),
            }
        }
        let mut said = String::new();
        let gate = self.gate(&entry, &mut said);
        if self.gate_to_stderr {
            eprint!("{said}");
        } else {
            print!("{said}");
        }
        match gate {
            Ok(status) => status,
            Err(error) => {
                eprintln!("{}", error.render());
                ExitStatus::Error
            }
        }
    }

    fn gate(&self, run: &RunEntry, out: &mut String) -> Result<ExitStatus, ExpectedError> {
        let (Some(baseline), Some(path)) = (self.gate.baseline.as_deref(), &self.path) else {
            return Ok(ExitStatus::Success);
        };
        if matches!(run.status, RunStatus::Aborted | RunStatus::Interrupted) {
            say!(out, "  gate: skipped: run {} did not go through", run.run_id);
            return Ok(ExitStatus::Success);
        }
        let history = History::open_existing(path)?;
        let found = match (&history, baseline) {
            (None, _) => None,
            (Some(history), "last-pass") => history.last_pass(&run.scenario, &run.run_id)?,
            (Some(history), id) => history.run(id)?,
        };
        let Some(found) = found else {
            if baseline == "last-pass" {
                say!(
                    out,
                    "  gate: no earlier passing run of `{}` in `{}`: nothing to compare with",
                    run.scenario,
                    path.display()
                );
                return Ok(ExitStatus::Success);
            }
            return Err(ExpectedError::NoBaseline {
                run_id: baseline.to_owned(),
                path: path.clone(),
            });
        };
        let outcome = regressions(&found.figures, &run.figures, self.gate.policy());
        let max = self.gate.max_regression;
        if outcome.regressions.is_empty() {
            say!(
                out,
                "  gate: passed: {} figure(s) of {} compared with baseline {}, none worse than {max}%",
                outcome.compared,
                run.run_id,
                found.run_id
            );
        } else {
            say!(
                out,
                "  gate: FAILED: {} of {} figure(s) of {} got worse than {max}% against baseline {}",
                outcome.regressions.len(),
                outcome.compared,
                run.run_id,
                found.run_id
            );
            for regression in &outcome.regressions {
                say!(out, "    {}", regression.describe(&found.run_id, &run.run_id, max));
            }
        }
        if !outcome.missing.is_empty() {
            say!(
                out,
                "  gate: not compared (baseline {} has them, this run not): {}",
                found.run_id,
                outcome.missing.join(", ")
            );
        }
        Ok(if outcome.regressions.is_empty() {
            ExitStatus::Success
        } else {
            ExitStatus::CheckFailed
        })
    }
}

/// `firedrill report DIR`: import the replayed runs (a run already in the history is left as it
/// is). Imported runs carry no commit: the checkout may have moved since the run.
pub(super) fn import(options: &RecordOptions, state_dir: Option<&Path>, records: &[RunRecord]) {
    if options.no_history {
        return;
    }
    let Some(path) = options.file.resolve(state_dir) else { return };
    let mut history = match History::open(&path) {
        Ok(history) => history,
        Err(error) => {
            eprintln!("warning: runs were not imported into the history: {}", error_line(error));
            return;
        }
    };
    for record in records {
        let Some(entry) = RunEntry::from_record(record, Origin::Imported, None) else { continue };
        match history.record(&entry) {
            Ok(Recorded::Added) => eprintln!(
                "history: imported {} ({}) into `{}`",
                entry.run_id,
                status_word(entry.status),
                path.display()
            ),
            Ok(Recorded::AlreadyThere) => {
                eprintln!("history: {} is in `{}` already", entry.run_id, path.display())
            }
            Err(error) => eprintln!(
                "warning: run {} was not imported into the history: {}",
                entry.run_id,
                error_line(error)
            ),
        }
    }
}

fn error_line(error: HistoryError) -> String {
    ExpectedError::from(error).render().trim_start_matches("error: ").to_owned()
}

fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "completed",
        RunStatus::Deviated => "deviated",
        RunStatus::Aborted => "aborted",
        RunStatus::Interrupted => "interrupted",
    }
}

fn open_for_reading(
    file: &HistoryFile,
    state_dir: Option<&Path>,
) -> Result<Option<(PathBuf, History)>, ExpectedError> {
    let path = file.resolve(state_dir).ok_or(ExpectedError::NoHistory)?;
    Ok(History::open_existing(&path)?.map(|history| (path, history)))
}

/// `firedrill history`.
pub(super) fn history(
    args: &HistoryArgs,
    state_dir: Option<&Path>,
) -> Result<ExitStatus, ExpectedError> {
    let filter =
        RunFilter { scenario: args.scenario.clone(), last: args.last, ..RunFilter::default() };
    let runs = match open_for_reading(&args.file, state_dir)? {
        Some((_, history)) => history.runs(&filter)?,
        None => Vec::new(),
    };
    if args.json {
        /// `history --json`: versioned like `report.json`.
        #[derive(serde::Serialize)]
        #[serde(rename_all = "kebab-case")]
        struct Listing<'a> {
            format_version: u32,
            runs: &'a [RunEntry],
        }
        let listing = Listing { format_version: 1, runs: &runs };
        println!("{}", serde_json::to_string_pretty(&listing).unwrap_or_default());
    } else if runs.is_empty() {
        eprintln!("no runs recorded{}", for_scenario(args.scenario.as_deref()));
    } else {
        print!("{}", render_history_table(&runs));
    }
    Ok(ExitStatus::Success)
}

fn for_scenario(scenario: Option<&str>) -> String {
    scenario.map(|s| format!(" for `{s}`")).unwrap_or_default()
}

/// `firedrill trend`.
pub(super) fn trend(
    args: &TrendArgs,
    state_dir: Option<&Path>,
) -> Result<ExitStatus, ExpectedError> {
    let filter =
        RunFilter { scenario: args.scenario.clone(), last: args.last, without_checks: true };
    let runs = match open_for_reading(&args.file, state_dir)? {
        Some((_, history)) => history.runs(&filter)?,
        None => Vec::new(),
    };
    let policy =
        RegressionPolicy { max_percent: args.max_regression, floor_ms: args.regression_floor };
    let trend = Trend::build(&runs, policy);
    if runs.is_empty() {
        eprintln!("no runs recorded{}", for_scenario(args.scenario.as_deref()));
    } else {
        print!("{}", render_trend_text(&trend));
    }
    if let Some(file) = &args.html {
        fs_err::write(file, render_trend_html(&trend))
            .map_err(|source| ExpectedError::Write { path: file.clone(), source })?;
        eprintln!("trend: {}", file.display());
    }
    Ok(ExitStatus::Success)
}
