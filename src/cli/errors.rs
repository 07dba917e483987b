//! User and environment failures, and the exit codes the README documents.

use std::process::ExitCode;

use crate::engine::EngineError;
use crate::history::HistoryError;
use crate::rehearsal::RehearsalError;
use crate::report::ReplayError;
use crate::scenario::LoadError;
use crate::stack::StackError;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// 0: everything held (or the command succeeded).
    Success,
    /// 1: the rehearsal ran and a check failed.
    CheckFailed,
    /// 2: invalid input or an environment error; the harness could not do its job.
    Error,
    /// 130: interrupted by Ctrl-C or SIGTERM.
    Interrupted,
}

impl ExitStatus {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::CheckFailed => 1,
            ExitStatus::Error => 2,
            ExitStatus::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

/// Failures the user can act on. Each maps to exit code 2 and renders as `error: ...` with an
/// optional `hint: ...` line.
#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    /// A scenario could not be read or is invalid (diagnostics already printed).
    #[error(transparent)]
    Scenario(#[from] LoadError),
    /// Docker trouble.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The engine could not carry out a run.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A rehearsal could not start.
    #[error(transparent)]
    Rehearsal(#[from] RehearsalError),
    /// A file or folder could not be written (`explore --out`).
    #[error("{0}")]
    Io(String),
    /// `images` found nothing to do with.
    #[error("no scenario files given and no `scenarios/*.yaml` here")]
    NoScenarios,
    /// `report` could not read a report folder back.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The run history could not be read or written.
    #[error(transparent)]
    History(HistoryError),
    /// No history file: no `--history` and no state folder.
    #[error("no history file: no `--history PATH` and no state folder")]
    NoHistory,
    /// `--baseline RUN_ID` names a run the history does not have.
    #[error("baseline run `{run_id}` is not in the history `{}`", path.display())]
    NoBaseline {
        /// The run id given.
        run_id: String,
        /// The history file.
        path: std::path::PathBuf,
    },
    /// `--baseline RUN_ID` is a run of another scenario.
    #[error("baseline run `{run_id}` is a run of `{baseline}`, not of `{scenario}`")]
    BaselineScenario {
        /// The run id given.
        run_id: String,
        /// Its scenario.
        baseline: String,
        /// The scenario being run.
        scenario: String,
    },
    /// An output file could not be written.
    #[error("failed to write `{}`", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ExpectedError {
    /// A one-line hint, when there is a likely fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            ExpectedError::Scenario(_) => None,
            ExpectedError::Stack(error) => error.hint(),
            ExpectedError::Engine(error) => error.hint(),
            ExpectedError::Rehearsal(error) => error.hint(),
            ExpectedError::NoScenarios => {
                Some("pass scenario files: `firedrill images FILE...`".into())
            }
            ExpectedError::Replay(error) => error.hint(),
            ExpectedError::History(error) => error.hint(),
            ExpectedError::NoHistory => {
                Some("set FIREDRILL_STATE_DIR (or HOME), or pass `--history PATH`".into())
            }
            ExpectedError::NoBaseline { .. } => Some(
                "list the recorded runs with `firedrill history`, or use `--baseline last-pass`"
                    .into(),
            ),
            ExpectedError::BaselineScenario { .. } => {
                Some("run one scenario at a time with a run id baseline".into())
            }
            ExpectedError::Write { .. } | ExpectedError::Io(_) => None,
        }
    }

    /// Render as `error: ...` (with causes) and `hint: ...` lines.
    pub fn render(&self) -> String {
        let mut message = format!("error: {self}");
        let mut source = std::error::Error::source(self);
        // `transparent` wrappers repeat their inner message as the first source; skip repeats.
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        if let Some(hint) = self.hint() {
            message.push_str("\nhint: ");
            message.push_str(&hint);
        }
        message
    }
}
