//! Rebuilding runs from a report folder (`firedrill report DIR`): read each `journal.jsonl`
//! (a torn last line is fine), take the expectations the journal carries in `scenario-loaded`,
//! judge again, and derive the run's status from the journal.
//!
//! A journal written before `scenario-loaded` existed names its scenario file in `run-started`;
//! the expectations are then re-read from that file, and the result says so, because the file
//! may have changed since the run.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::json::RunStatus;
use super::record::RunRecord;
use crate::checks::{CheckStatus, Verdict, evaluate};
use crate::journal::{Event, EventKind, JournalError, Outcome, read_journal};
use crate::scenario::model::{Expectation, Probe, Stack};
use crate::scenario::{self, Scenario};

/// A run rebuilt from its folder.
#[derive(Debug, Clone)]
pub struct ReplayedRun {
    /// The run, ready for the reporters.
    pub record: RunRecord,
    /// Things the reader should know about how it was rebuilt (one line each).
    pub notes: Vec<String>,
}

/// Why a report folder could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Neither `DIR/journal.jsonl` nor `DIR/*/journal.jsonl` exists.
    #[error("no `journal.jsonl` in `{}` or its subfolders", dir.display())]
    NoJournal {
        /// The folder.
        dir: PathBuf,
    },
    /// A journal could not be read or has a bad line before its last.
    #[error("failed to read `{}`", path.display())]
    Journal {
        /// The journal.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: JournalError,
    },
    /// The journal has no `run-started` (the run died before its first event).
    #[error("`{}` is empty: the run stopped before it started", path.display())]
    Empty {
        /// The journal.
        path: PathBuf,
    },
    /// The journal predates `scenario-loaded` and the scenario file it names cannot be used.
    #[error(
        "`{}` does not carry its expectations, and its scenario file `{file}` cannot be loaded",
        journal.display()
    )]
    Scenario {
        /// The journal.
        journal: PathBuf,
        /// The scenario file named in `run-started`.
        file: String,
        /// Why it could not be loaded.
        #[source]
        source: scenario::LoadError,
    },
    /// The journal predates `scenario-loaded` and the file it names is another scenario now.
    #[error(
        "`{}` is a run of `{expected}`, but its scenario file `{file}` now holds `{found}`",
        journal.display()
    )]
    ScenarioChanged {
        /// The journal.
        journal: PathBuf,
        /// The scenario file named in `run-started`.
        file: String,
        /// The scenario name the journal records.
        expected: String,
        /// The name in the file today.
        found: String,
    },
    /// `scenario-loaded` holds something this firedrill cannot read (written by a newer one).
    #[error("`{}` has expectations this firedrill cannot read back: {message}", journal.display())]
    Expectations {
        /// The journal.
        journal: PathBuf,
        /// serde's message.
        message: String,
    },
}

impl ReplayError {
    /// A one-line hint, when there is a likely fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            ReplayError::NoJournal { .. } => {
                Some("pass the folder given to `firedrill run --report DIR`".into())
            }
            ReplayError::Scenario { .. } | ReplayError::ScenarioChanged { .. } => Some(
                "run `firedrill report` from the folder the run was started in, with the scenario \
                 file as it was"
                    .into(),
            ),
            ReplayError::Expectations { .. } => {
                Some("render it with the firedrill version that wrote the journal".into())
            }
            ReplayError::Journal { .. } | ReplayError::Empty { .. } => None,
        }
    }
}

/// The run's status as the journal shows it, the same way the engine decides it: interrupted
/// (a signal, or a journal that stops before `run-ended`: the process died) beats aborted (a
/// phase failed), which beats the verdicts.
pub fn status_from_journal(events: &[Event], verdicts: &[Verdict]) -> RunStatus {
    let ended = events.iter().find_map(|e| match e.kind {
        EventKind::RunEnded { outcome } => Some(outcome),
        _ => None,
    });
    let signalled = events.iter().any(|e| matches!(e.kind, EventKind::Interrupted { .. }));
    let failed = events
        .iter()
        .any(|e| matches!(e.kind, EventKind::PhaseEnded { outcome: Outcome::Failed, .. }));
    if signalled || ended == Some(Outcome::Interrupted) {
        RunStatus::Interrupted
    } else if failed || ended == Some(Outcome::Failed) {
        RunStatus::Aborted
    } else if ended.is_none() {
        RunStatus::Interrupted
    } else if verdicts.iter().all(|v| v.status == CheckStatus::Passed) {
        RunStatus::Completed
    } else {
        RunStatus::Deviated
    }
}

/// Rebuild every run of a report folder: `DIR/journal.jsonl` (one scenario), or else each
/// `DIR/*/journal.jsonl` (several scenarios run together), in the order they started.
pub fn replay_dir(dir: &Path) -> Result<Vec<ReplayedRun>, ReplayError> {
    if dir.join("journal.jsonl").is_file() {
        return Ok(vec![replay_run(dir)?]);
    }
    let mut folders: Vec<PathBuf> = fs_err::read_dir(dir)
        .map_err(|_| ReplayError::NoJournal { dir: dir.to_owned() })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("journal.jsonl").is_file())
        .collect();
    folders.sort();
    if folders.is_empty() {
        return Err(ReplayError::NoJournal { dir: dir.to_owned() });
    }
    let mut runs = folders.iter().map(|f| replay_run(f)).collect::<Result<Vec<_>, _>>()?;
    runs.sort_by_key(|run| run.record.report.started_at);
    Ok(runs)
}

/// Rebuild the run whose `journal.jsonl` is in `dir`.
pub fn replay_run(dir: &Path) -> Result<ReplayedRun, ReplayError> {
    let path = dir.join("journal.jsonl");
    let events = read_journal(&path)
        .map_err(|source| ReplayError::Journal { path: path.clone(), source })?;
    let Some((name, file)) = events.iter().find_map(|e| match &e.kind {
        EventKind::RunStarted { scenario, file, .. } => Some((scenario.clone(), file.clone())),
        _ => None,
    }) else {
        return Err(ReplayError::Empty { path });
    };
    let mut notes = Vec::new();
    let scenario = match scenario_from_journal(&events, &name, &file) {
        Some(parsed) => parsed
            .map_err(|message| ReplayError::Expectations { journal: path.clone(), message })?,
        None => {
            let loaded = scenario::load(Path::new(&file)).map_err(|source| {
                ReplayError::Scenario { journal: path.clone(), file: file.clone(), source }
            })?;
            if loaded.name != name {
                return Err(ReplayError::ScenarioChanged {
                    journal: path,
                    file,
                    expected: name,
                    found: loaded.name,
                });
            }
            notes.push(format!(
                "`{}` predates `scenario-loaded`: expectations re-read from `{file}` as it is \
                 now; if it changed since the run, the checks judge the new expectations",
                path.display()
            ));
            loaded
        }
    };
    if !events.iter().any(|e| matches!(e.kind, EventKind::RunEnded { .. })) {
        notes.push(format!(
            "`{}` stops before `run-ended` (the run was cut short): reported as interrupted",
            path.display()
        ));
    }
    let verdicts = evaluate(&scenario, &events);
    let status = status_from_journal(&events, &verdicts);
    let record = RunRecord::new(dir.to_owned(), &name, &file, events, &verdicts, status);
    Ok(ReplayedRun { record, notes })
}

/// The scenario as far as judging needs it, from `scenario-loaded`; `None` when the journal has
/// no such event.
fn scenario_from_journal(
    events: &[Event],
    name: &str,
    file: &str,
) -> Option<Result<Scenario, String>> {
    let (description, steady_state, expect) = events.iter().find_map(|e| match &e.kind {
        EventKind::ScenarioLoaded { description, steady_state, expect } => {
            Some((description, steady_state, expect))
        }
        _ => None,
    })?;
    let parse = || -> Result<Scenario, String> {
        let steady_state: Vec<Probe> =
            serde_json::from_value(steady_state.clone()).map_err(|e| e.to_string())?;
        let expect: Vec<Expectation> =
            serde_json::from_value(expect.clone()).map_err(|e| e.to_string())?;
        Ok(Scenario {
            name: name.to_owned(),
            description: description.clone(),
            source: PathBuf::from(file),
            stack: Stack { services: IndexMap::new(), links: IndexMap::new(), compose: None },
            traffic: IndexMap::new(),
            steady_state,
            steps: Vec::new(),
            expect,
            sinks: IndexMap::new(),
            // The run-time window check reads them from the journal's `calendar` event.
            maintenance: None,
            calendar: None,
            backend: None,
        })
    };
    Some(parse())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn the_journal_carries_what_judging_needs() {
        let scenario = fixtures::scenario(fixtures::CHECKOUT, "scenarios/checkout.yaml");
        let events = fixtures::deviated().events;
        let back = scenario_from_journal(&events, "checkout", "scenarios/checkout.yaml");
        let back = back.unwrap().unwrap();
        assert_eq!(back.expect, scenario.expect);
        assert_eq!(back.steady_state, scenario.steady_state);
        assert_eq!(back.description, scenario.description);
        assert_eq!(evaluate(&back, &events), evaluate(&scenario, &events));
    }

    #[test]
    fn every_expectation_and_probe_kind_reads_back() {
        let yaml = r#"
name: kinds
stack:
  services:
    db: { image: "x:1", ports: [5432], health: { tcp: { port: 5432, connect-is-enough: true } } }
    billing: { image: "x:1", ports: [8080], health: { log: ready } }
steady-state:
  - http: { service: billing, port: 8080, path: /health, status: 204, method: HEAD, body-contains: ok }
    timeout: 1500ms
  - tcp: { service: db, port: 5432, connect-is-enough: true }
steps:
  - pause: { service: db, for: 1m30s }
  - probe: { tcp: { service: db, port: 5432, connect-is-enough: true } }
expect:
  - steady-state: before
  - steady-state: after
  - healthy-within: { service: billing, after: pause db, within: 2500ms }
  - healthy-throughout: { service: billing, step: pause db }
  - unhealthy-during: { service: db, step: pause db }
  - probe-passed: probe tcp db:5432
"#;
        let scenario = fixtures::scenario(yaml, "kinds.yaml");
        let steady_state = serde_json::to_value(&scenario.steady_state).unwrap();
        let expect = serde_json::to_value(&scenario.expect).unwrap();
        let events = fixtures::events(vec![(
            0,
            EventKind::ScenarioLoaded { description: None, steady_state, expect },
        )]);
        let back = scenario_from_journal(&events, "kinds", "kinds.yaml").unwrap().unwrap();
        assert_eq!(back.steady_state, scenario.steady_state);
        assert_eq!(back.expect, scenario.expect);
    }

    /// Every scenario of the valid corpus reads back: a new expectation kind without its mirror
    /// here fails this test.
    #[test]
    fn the_valid_corpus_reads_back() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/valid");
        let mut seen = 0;
        for entry in fs_err::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|ext| ext != "yaml") {
                continue;
            }
            let scenario = scenario::load(&path).unwrap();
            let steady_state = serde_json::to_value(&scenario.steady_state).unwrap();
            let expect = serde_json::to_value(&scenario.expect).unwrap();
            let events = fixtures::events(vec![(
                0,
                EventKind::ScenarioLoaded { description: None, steady_state, expect },
            )]);
            let back = scenario_from_journal(&events, &scenario.name, "x.yaml").unwrap();
            let back = back.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(back.steady_state, scenario.steady_state, "{}", path.display());
            assert_eq!(back.expect, scenario.expect, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 2, "the corpus has scenarios");
    }

    #[test]
    fn an_unknown_kind_is_a_clear_error() {
        let events = fixtures::events(vec![(
            0,
            EventKind::ScenarioLoaded {
                description: None,
                steady_state: serde_json::json!([]),
                expect: serde_json::json!([{ "name": "x", "kind": { "escalate": { "channel": "sms" } } }]),
            },
        )]);
        let error = scenario_from_journal(&events, "x", "x.yaml").unwrap().unwrap_err();
        assert!(error.contains("escalate"), "{error}");
    }

    #[test]
    fn statuses_follow_the_engine() {
        assert_eq!(fixtures::completed().report.status, RunStatus::Completed);
        assert_eq!(fixtures::deviated().report.status, RunStatus::Deviated);
        assert_eq!(fixtures::aborted().report.status, RunStatus::Aborted);
        assert_eq!(fixtures::interrupted().report.status, RunStatus::Interrupted);
        assert_eq!(fixtures::crashed().report.status, RunStatus::Interrupted);
        assert_eq!(status_from_journal(&[], &[]), RunStatus::Interrupted);
    }
}
