//! Verdict stability over repetitions (`firedrill run --repeat N`): per scenario and check, in how
//! many of the runs it passed, and which runs came out otherwise and why.
//!
//! A pure function of the runs' [`Report`]s (so of their journals and verdicts): it judges
//! nothing itself, and reads neither the clock nor Docker. A check is *held* when it passed in
//! every run, *flaky* when it passed in some, *not held* when it passed in none; a scenario is
//! stable when every check was held in every run.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::json::{Report, RunStatus};
use crate::checks::CheckStatus;

/// Version of `stability.json`'s schema (same rule as `report.json`'s: bump it on any change a
/// reader could trip on).
pub const STABILITY_FORMAT_VERSION: u32 = 1;

/// `stability.json`: every repeated scenario.
///
/// ```text
/// {
///   "format-version": 1,
///   "scenarios": [
///     { "scenario": "smoke", "runs": 5, "stable": false,
///       "run-ids": ["fd-…", …],             // in the order the runs went
///       "statuses": ["completed", "deviated", …],
///       "checks": [
///         { "name": "billing recovers", "kind": "healthy-within",
///           "passed": 4, "runs": 5, "verdict": "flaky",   // held | flaky | not-held
///           "differed": [ { "run": 3, "run-id": "fd-…", "status": "failed",
///                           "summary": "still unhealthy 10s after `kill billing` ended" } ] }
///       ] }
///   ]
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Stability {
    /// [`STABILITY_FORMAT_VERSION`].
    pub format_version: u32,
    /// One entry per scenario, in the order they first ran.
    pub scenarios: Vec<ScenarioStability>,
}

/// One scenario over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScenarioStability {
    /// The scenario's name.
    pub scenario: String,
    /// How many runs there were (fewer than asked when interrupted).
    pub runs: usize,
    /// Every check held in every run.
    pub stable: bool,
    /// Each run's id, in order (`null` when its journal has none).
    pub run_ids: Vec<Option<String>>,
    /// Each run's overall status, in order.
    pub statuses: Vec<RunStatus>,
    /// One entry per check, in the scenario's order.
    pub checks: Vec<CheckStability>,
}

/// One check over the repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckStability {
    /// The expectation's name.
    pub name: String,
    /// Its YAML key.
    pub kind: String,
    /// In how many runs it passed.
    pub passed: usize,
    /// Out of how many.
    pub runs: usize,
    /// Held, flaky or not held.
    pub verdict: StabilityVerdict,
    /// The runs in which it did not pass, with what settled it there.
    pub differed: Vec<RunDifference>,
}

/// How a check behaved over the repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StabilityVerdict {
    /// Passed in every run.
    Held,
    /// Passed in some runs, not in others.
    Flaky,
    /// Passed in none.
    NotHeld,
}

/// A run in which a check did not pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunDifference {
    /// The repetition, from 1.
    pub run: usize,
    /// Its run id.
    pub run_id: Option<String>,
    /// `failed` or `not-evaluated`; `missing` when the run's report has no such check.
    pub status: String,
    /// What settled the verdict in that run.
    pub summary: String,
}

impl Stability {
    /// Whether every check of every scenario held in every run.
    pub fn stable(&self) -> bool {
        self.scenarios.iter().all(|s| s.stable)
    }
}

/// Aggregate the reports of repeated runs: runs of one scenario (by name) are its repetitions,
/// numbered from 1 in the order given.
pub fn stability(reports: &[&Report]) -> Stability {
    let mut names: Vec<&str> = Vec::new();
    for report in reports {
        if !names.contains(&report.scenario.name.as_str()) {
            names.push(&report.scenario.name);
        }
    }
    let scenarios = names
        .into_iter()
        .map(|name| {
            let runs: Vec<&Report> =
                reports.iter().copied().filter(|r| r.scenario.name == name).collect();
            scenario_stability(name, &runs)
        })
        .collect();
    Stability { format_version: STABILITY_FORMAT_VERSION, scenarios }
}

fn scenario_stability(name: &str, runs: &[&Report]) -> ScenarioStability {
    // Checks in the scenario's order; a check only some reports carry comes after.
    let mut checks: Vec<(&str, &str)> = Vec::new();
    for report in runs {
        for check in &report.checks {
            if !checks.iter().any(|(n, _)| *n == check.name) {
                checks.push((&check.name, &check.kind));
            }
        }
    }
    let checks: Vec<CheckStability> = checks
        .into_iter()
        .map(|(check, kind)| {
            let mut passed = 0;
            let mut differed = Vec::new();
            for (i, report) in runs.iter().enumerate() {
                let found = report.checks.iter().find(|c| c.name == check);
                let (status, summary) = match found {
                    Some(c) if c.status == CheckStatus::Passed => {
                        passed += 1;
                        continue;
                    }
                    Some(c) => (status_word(c.status), c.summary.clone()),
                    None => ("missing", "the run's report has no such check".to_owned()),
                };
                differed.push(RunDifference {
                    run: i + 1,
                    run_id: report.run_id.clone(),
                    status: status.to_owned(),
                    summary,
                });
            }
            let verdict = match passed {
                0 => StabilityVerdict::NotHeld,
                n if n == runs.len() => StabilityVerdict::Held,
                _ => StabilityVerdict::Flaky,
            };
            CheckStability {
                name: check.to_owned(),
                kind: kind.to_owned(),
                passed,
                runs: runs.len(),
                verdict,
                differed,
            }
        })
        .collect();
    ScenarioStability {
        scenario: name.to_owned(),
        runs: runs.len(),
        stable: !runs.is_empty() && checks.iter().all(|c| c.verdict == StabilityVerdict::Held),
        run_ids: runs.iter().map(|r| r.run_id.clone()).collect(),
        statuses: runs.iter().map(|r| r.status).collect(),
        checks,
    }
}

fn status_word(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
        CheckStatus::NotEvaluated => "not-evaluated",
    }
}

fn verdict_word(verdict: StabilityVerdict) -> &'static str {
    match verdict {
        StabilityVerdict::Held => "held",
        StabilityVerdict::Flaky => "FLAKY",
        StabilityVerdict::NotHeld => "NOT HELD",
    }
}

/// The headline of one scenario: `smoke: STABLE over 5 runs (4 of 4 checks held 5/5)`.
fn headline(scenario: &ScenarioStability) -> String {
    let held = scenario.checks.iter().filter(|c| c.verdict == StabilityVerdict::Held).count();
    format!(
        "{}: {} over {} run{} ({held} of {} checks held {n}/{n})",
        scenario.scenario,
        if scenario.stable { "STABLE" } else { "NOT STABLE" },
        scenario.runs,
        if scenario.runs == 1 { "" } else { "s" },
        scenario.checks.len(),
        n = scenario.runs,
    )
}

/// The stability summary for the terminal (stdout): per scenario a headline, then per check
/// `k/N` and, for a check that did not always pass, the runs that differed.
pub fn render_stability_text(stability: &Stability) -> String {
    let mut out = String::new();
    for scenario in &stability.scenarios {
        let _ = writeln!(out, "stability of {}", headline(scenario));
        for check in &scenario.checks {
            let _ = writeln!(
                out,
                "  {:>5}  {:<8}  {}",
                format!("{}/{}", check.passed, check.runs),
                verdict_word(check.verdict),
                check.name
            );
            for run in &check.differed {
                let _ = writeln!(
                    out,
                    "                   run {} ({}): {} — {}",
                    run.run,
                    run.run_id.as_deref().unwrap_or("no run id"),
                    run.status,
                    run.summary
                );
            }
        }
    }
    out
}

/// The stability section of `summary.md`: a table per scenario, the differing runs below it.
pub fn render_stability_markdown(stability: &Stability) -> String {
    let mut out = String::new();
    for scenario in &stability.scenarios {
        let icon = if scenario.stable { "✅" } else { "❌" };
        let _ = writeln!(out, "## {icon} Stability of {}\n", md_headline(scenario));
        out.push_str("| passed | verdict | check | runs that differed |\n|---|---|---|---|\n");
        for check in &scenario.checks {
            let differed: Vec<String> = check
                .differed
                .iter()
                .map(|r| format!("run {} {}: {}", r.run, r.status, cell(&r.summary)))
                .collect();
            let _ = writeln!(
                out,
                "| {}/{} | {} | {} | {} |",
                check.passed,
                check.runs,
                verdict_word(check.verdict).to_lowercase(),
                cell(&check.name),
                if differed.is_empty() { "—".to_owned() } else { differed.join("<br>") }
            );
        }
        out.push('\n');
    }
    out
}

fn md_headline(scenario: &ScenarioStability) -> String {
    let (name, rest) = headline(scenario).split_once(": ").map_or_else(
        || (scenario.scenario.clone(), String::new()),
        |(n, r)| (n.to_owned(), r.to_owned()),
    );
    format!("`{name}`: {rest}")
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    /// A report of `name` whose checks came out as given.
    fn report(name: &str, run_id: &str, checks: &[(&str, CheckStatus)]) -> Report {
        let mut report = fixtures::completed().report;
        report.scenario.name = name.to_owned();
        report.run_id = Some(run_id.to_owned());
        let template = report.checks[0].clone();
        report.checks = checks
            .iter()
            .map(|(check, status)| {
                let mut c = template.clone();
                c.name = (*check).to_owned();
                c.status = *status;
                c.summary = format!("{check} in {run_id}");
                c
            })
            .collect();
        report.status = if checks.iter().all(|(_, s)| *s == CheckStatus::Passed) {
            RunStatus::Completed
        } else {
            RunStatus::Deviated
        };
        report
    }

    use CheckStatus::{Failed, NotEvaluated, Passed};

    #[test]
    fn every_check_passing_in_every_run_is_stable() {
        let runs: Vec<Report> = (1..=3)
            .map(|i| report("smoke", &format!("fd-{i}"), &[("up", Passed), ("back", Passed)]))
            .collect();
        let stability = stability(&runs.iter().collect::<Vec<_>>());
        assert!(stability.stable());
        let smoke = &stability.scenarios[0];
        assert_eq!((smoke.runs, smoke.stable), (3, true));
        let tally: Vec<_> = smoke.checks.iter().map(|c| (c.passed, c.runs, c.verdict)).collect();
        assert_eq!(tally, [(3, 3, StabilityVerdict::Held), (3, 3, StabilityVerdict::Held)]);
        assert!(smoke.checks.iter().all(|c| c.differed.is_empty()));
    }

    #[test]
    fn a_check_that_failed_once_is_flaky_and_names_the_run() {
        let runs = [
            report("smoke", "fd-1", &[("up", Passed), ("back", Passed)]),
            report("smoke", "fd-2", &[("up", Passed), ("back", Failed)]),
            report("smoke", "fd-3", &[("up", Passed), ("back", NotEvaluated)]),
            report("smoke", "fd-4", &[("up", Passed), ("back", Passed)]),
        ];
        let stability = stability(&runs.iter().collect::<Vec<_>>());
        assert!(!stability.stable());
        let back = &stability.scenarios[0].checks[1];
        assert_eq!((back.passed, back.runs, back.verdict), (2, 4, StabilityVerdict::Flaky));
        let differed: Vec<_> =
            back.differed.iter().map(|r| (r.run, r.status.as_str(), r.summary.as_str())).collect();
        assert_eq!(differed, [(2, "failed", "back in fd-2"), (3, "not-evaluated", "back in fd-3")]);
        assert_eq!(back.differed[0].run_id.as_deref(), Some("fd-2"));
        let text = render_stability_text(&stability);
        assert!(
            text.starts_with(
                "stability of smoke: NOT STABLE over 4 runs (1 of 2 checks held 4/4)\n"
            ),
            "{text}"
        );
        assert!(text.contains("    2/4  FLAKY     back\n"), "{text}");
        assert!(text.contains("run 2 (fd-2): failed — back in fd-2\n"), "{text}");
    }

    #[test]
    fn a_check_that_never_passed_is_not_held_and_not_stable() {
        let runs = [
            report("smoke", "fd-1", &[("up", Failed)]),
            report("smoke", "fd-2", &[("up", Failed)]),
        ];
        let stability = stability(&runs.iter().collect::<Vec<_>>());
        let up = &stability.scenarios[0].checks[0];
        assert_eq!((up.passed, up.verdict, up.differed.len()), (0, StabilityVerdict::NotHeld, 2));
        assert!(!stability.stable(), "consistently failing is stable but not held: exit 1");
    }

    #[test]
    fn scenarios_are_grouped_by_name_and_missing_checks_count_against() {
        let runs = [
            report("smoke", "fd-1", &[("up", Passed)]),
            report("db-pause", "fd-2", &[("paused", Passed)]),
            report("smoke", "fd-3", &[]),
            report("db-pause", "fd-4", &[("paused", Passed)]),
        ];
        let stability = stability(&runs.iter().collect::<Vec<_>>());
        let names: Vec<_> = stability.scenarios.iter().map(|s| s.scenario.as_str()).collect();
        assert_eq!(names, ["smoke", "db-pause"]);
        let smoke = &stability.scenarios[0];
        assert_eq!(smoke.run_ids, [Some("fd-1".to_owned()), Some("fd-3".to_owned())]);
        assert_eq!(smoke.checks[0].differed[0].status, "missing");
        assert_eq!(smoke.checks[0].differed[0].run, 2, "runs are numbered per scenario");
        assert!(!smoke.stable);
        assert!(stability.scenarios[1].stable);
    }

    #[test]
    fn markdown_lists_every_check_and_escapes_cells() {
        let runs = [
            report("smoke", "fd-1", &[("a | b", Passed)]),
            report("smoke", "fd-2", &[("a | b", Failed)]),
        ];
        let markdown = render_stability_markdown(&stability(&runs.iter().collect::<Vec<_>>()));
        assert!(
            markdown.starts_with(
                "## ❌ Stability of `smoke`: NOT STABLE over 2 runs (0 of 1 checks held 2/2)\n"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains("| 1/2 | flaky | a \\| b | run 2 failed: a \\| b in fd-2 |"),
            "{markdown}"
        );
    }

    #[test]
    fn json_is_kebab_case_and_versioned() {
        let runs = [report("smoke", "fd-1", &[("up", Passed)])];
        let json = serde_json::to_value(stability(&runs.iter().collect::<Vec<_>>())).unwrap();
        assert_eq!(json["format-version"], 1);
        assert_eq!(json["scenarios"][0]["run-ids"][0], "fd-1");
        assert_eq!(json["scenarios"][0]["checks"][0]["verdict"], "held");
    }
}
