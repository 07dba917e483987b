//! `firedrill run --repeat N`: which runs to make in which order, where each one's files go, and
//! what the repetitions' stability means for the exit code. The runs themselves and the
//! aggregation ([`report::stability`]) live elsewhere.

use std::path::{Path, PathBuf};

use super::errors::ExitStatus;
use crate::report::Stability;

/// One run of a `firedrill run` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlannedRun {
    /// Index into the scenarios given.
    pub(super) scenario: usize,
    /// The repetition, from 1.
    pub(super) repetition: u32,
    /// Where its journal and `report.json` go, with `--report DIR`.
    pub(super) dir: Option<PathBuf>,
}

/// Every run, in order: each scenario `repeat` times in a row (a fresh stack each time), before
/// the next scenario.
///
/// Folders under `--report DIR`: one scenario once → `DIR`; several scenarios → `DIR/<name>`;
/// repeated → `DIR/run-K` (one scenario) or `DIR/<name>/run-K` (several).
pub(super) fn plan(names: &[&str], repeat: u32, report_dir: Option<&Path>) -> Vec<PlannedRun> {
    let mut runs = Vec::new();
    for (scenario, name) in names.iter().enumerate() {
        for repetition in 1..=repeat {
            let dir = report_dir.map(|dir| {
                let dir = if names.len() > 1 { dir.join(name) } else { dir.to_owned() };
                if repeat > 1 { dir.join(format!("run-{repetition}")) } else { dir }
            });
            runs.push(PlannedRun { scenario, repetition, dir });
        }
    }
    runs
}

/// The exit status the repetitions call for: 1 unless every check held in every run.
pub(super) fn stability_status(stability: &Stability) -> ExitStatus {
    if stability.stable() { ExitStatus::Success } else { ExitStatus::CheckFailed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(runs: &[PlannedRun]) -> Vec<(usize, u32, Option<String>)> {
        runs.iter()
            .map(|r| (r.scenario, r.repetition, r.dir.as_ref().map(|d| d.display().to_string())))
            .collect()
    }

    #[test]
    fn without_repeat_the_folders_stay_as_they_were() {
        let out = Path::new("out");
        assert_eq!(dirs(&plan(&["smoke"], 1, Some(out))), [(0, 1, Some("out".into()))]);
        assert_eq!(
            dirs(&plan(&["smoke", "db-pause"], 1, Some(out))),
            [(0, 1, Some("out/smoke".into())), (1, 1, Some("out/db-pause".into()))]
        );
        assert_eq!(dirs(&plan(&["smoke"], 1, None)), [(0, 1, None)]);
    }

    #[test]
    fn repetitions_get_one_folder_each_and_run_back_to_back() {
        let out = Path::new("out");
        assert_eq!(
            dirs(&plan(&["smoke"], 3, Some(out))),
            [
                (0, 1, Some("out/run-1".into())),
                (0, 2, Some("out/run-2".into())),
                (0, 3, Some("out/run-3".into())),
            ]
        );
        assert_eq!(
            dirs(&plan(&["smoke", "db-pause"], 2, Some(out))),
            [
                (0, 1, Some("out/smoke/run-1".into())),
                (0, 2, Some("out/smoke/run-2".into())),
                (1, 1, Some("out/db-pause/run-1".into())),
                (1, 2, Some("out/db-pause/run-2".into())),
            ]
        );
    }
}
