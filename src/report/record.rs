//! [`RunRecord`]: one run as every reporter sees it.

use std::path::PathBuf;

use super::json::{Report, RunStatus, build_report};
use crate::checks::Verdict;
use crate::journal::{Event, EventKind};

/// One run as every reporter sees it: its journal, the report built from it, and the folder that
/// holds its own files (`journal.jsonl`, `report.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The run's folder: `DIR` for one scenario, `DIR/<scenario>` when several ran together.
    pub dir: PathBuf,
    /// The journal, complete or not.
    pub events: Vec<Event>,
    /// `report.json`'s content, with the verdicts.
    pub report: Report,
}

impl RunRecord {
    /// Build the record of a run from its journal and verdicts (see [`build_report`]).
    pub fn new(
        dir: PathBuf,
        scenario_name: &str,
        scenario_file: &str,
        events: Vec<Event>,
        verdicts: &[Verdict],
        status: RunStatus,
    ) -> Self {
        let report = build_report(scenario_name, scenario_file, &events, verdicts, status);
        RunRecord { dir, events, report }
    }

    /// The scenario's `description`, when the journal carries it.
    pub fn description(&self) -> Option<&str> {
        self.events.iter().find_map(|event| match &event.kind {
            EventKind::ScenarioLoaded { description, .. } => description.as_deref(),
            _ => None,
        })
    }
}
