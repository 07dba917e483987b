//! `report.json` (the versioned, machine-readable report of one run) and the verdict summary the
//! CLI prints.
//!
//! A report is a pure function of the events, the verdicts and the run's status: it never reads
//! the clock (times come from the events' offsets and walls) and never judges anything itself
//! (the [`checks`](crate::checks) do). It must build from any prefix of a journal, so that an
//! interrupted or crashed run still gets a report: what never finished is reported as not
//! finished, never a panic.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checks::{ChannelTiming, CheckStatus, Evidence, Verdict, format_duration_us};
use crate::journal::{Event, EventKind, Outcome, Phase};

/// Version of the `report.json` schema. Bump it on any change a reader could trip on (a renamed,
/// removed or retyped field); adding a field keeps it.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// How a run ended overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RunStatus {
    /// The run went through and every check passed.
    Completed,
    /// The run went through and a check failed or could not be evaluated.
    Deviated,
    /// The harness could not run the scenario (an environment or Docker error).
    Aborted,
    /// Stopped by Ctrl-C or a signal.
    Interrupted,
}

/// `report.json`: one run, rendered from its journal and verdicts.
///
/// Keys are kebab-case and appear in this order. Times are UTC (RFC 3339); offsets and durations
/// are whole milliseconds from the run's start (monotonic clock). `null` means unknown or not
/// applicable; only `timing` is ever left out.
///
/// ```text
/// {
///   "format-version": 1,                  // REPORT_FORMAT_VERSION
///   "firedrill-version": "0.1.0",
///   "run-id": "fd-1a2b3c4d",              // null if the journal has no run-started
///   "seed": 42,                           // the run's seed (absent in older journals)
///   "scenario": { "name": "smoke", "file": "scenarios/smoke.yaml" },
///   "status": "completed",                // completed | deviated | aborted | interrupted
///   "started-at": "2026-12-05T21:00:00Z", // run-started's wall time (null: empty journal)
///   "ended-at": "2026-12-05T21:00:23.4Z", // run-ended's, or the last event's when it stopped early
///   "duration-ms": 23400,
///   "phases": [                           // in the order they started
///     { "phase": "bring-up",              // prepare | bring-up | steady-before | steps |
///                                         // steady-after | teardown
///       "started-offset-ms": 12,
///       "duration-ms": 5300,              // null when not finished
///       "outcome": "ok",                  // ok | failed | interrupted | not-finished
///       "error": null }
///   ],
///   "steps": [                            // in the order they started
///     { "index": 0, "name": "kill billing", "action": "kill",
///       "started-offset-ms": 6100, "duration-ms": 5002, "outcome": "ok", "error": null }
///   ],
///   "checks": [                           // one per `expect` entry, in order
///     { "name": "billing recovers", "kind": "healthy-within",
///       "status": "passed",               // passed | failed | not-evaluated
///       "summary": "healthy 3.2s after `kill billing` ended",
///       "expected": "...", "observed": "...",
///       "evidence": [ { "offset-us": 11102000, "seq": 41, "note": "`kill billing` ended" } ] }
///   ],
///   "counts": { "passed": 3, "failed": 1, "not-evaluated": 0 },
///   "timing": {                           // left out when the journal has no time-accounting
///     "total-ms": 23300, "docker-ms": 9100, "declared-wait-ms": 10000,
///     "service-wait-ms": 3000,
///     "waiting-ms": 22100,                // absent for journals written before intervals
///     "overhead-ms": 1200,                // total-ms − waiting-ms
///     "overhead-percent": 5.2,            // overhead-ms / total-ms, one decimal
///     "harness-cpu-ms": 410 },            // absent for journals written before
///   "error": null                         // the first failed phase's error
/// }
/// ```
///
/// `timing` counts wall time. Every wait of the run's main path (a Docker call, a declared wait, a
/// wait on a service) is an interval on the run's clock; `docker-ms`, `declared-wait-ms` and
/// `service-wait-ms` are how long at least one wait of that kind was in progress, so waits side
/// by side (a `parallel` group, bring-up, a fault beside an upgrade) count once, and the three may
/// overlap each other. `waiting-ms` is how long at least one wait of any kind was in progress, and
/// `overhead-ms` the rest of the run: the harness's own time. `harness-cpu-ms` is the CPU time
/// (user + system, all threads) the firedrill process used over the run, traffic generation,
/// sinks and proxies included; it is process-wide, so runs sharing one process at once (tests)
/// count together. For a journal written before intervals, the three figures are the sums of the
/// waits' durations, and `overhead-ms` is total − their sum, clamped at 0: once waits overlap,
/// that hides the harness's time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Report {
    /// [`REPORT_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The firedrill version that wrote the report.
    pub firedrill_version: String,
    /// The run's id, from `run-started`.
    pub run_id: Option<String>,
    /// The seed of the run's random choices, from `run-started` (`firedrill run --seed N` replays
    /// them); absent from journals written before seeds existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Which scenario ran.
    pub scenario: ScenarioRef,
    /// How the run ended overall.
    pub status: RunStatus,
    /// Wall time of the run's start.
    pub started_at: Option<jiff::Timestamp>,
    /// Wall time of the run's end, or of the last event when the journal stops early.
    pub ended_at: Option<jiff::Timestamp>,
    /// From the run's start to its end (or its last event), ms.
    pub duration_ms: u64,
    /// The run's phases, in the order they started.
    pub phases: Vec<PhaseReport>,
    /// The steps that started, in order.
    pub steps: Vec<StepReport>,
    /// One entry per `expect` entry, in the scenario's order.
    pub checks: Vec<CheckReport>,
    /// How many checks came out each way.
    pub counts: Counts,
    /// Where the time went, when the run got far enough to account for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// The first failed phase's error.
    pub error: Option<String>,
    /// Gameday: every `human` step that prompted someone, with its times and target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub humans: Vec<super::HumanReport>,
}

/// `scenario`: which scenario a report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScenarioRef {
    /// Scenario name.
    pub name: String,
    /// Scenario file, as given.
    pub file: String,
}

/// How a phase or step ended, in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// Did what it should.
    Ok,
    /// Failed; `error` says why.
    Failed,
    /// Stopped by Ctrl-C or a signal.
    Interrupted,
    /// Started, and the journal has no end for it (the run stopped or crashed first).
    NotFinished,
    /// A `parallel` child whose `at` moment never came: it did not run (`error` says why).
    Skipped,
}

impl From<Outcome> for Ending {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Ok => Ending::Ok,
            Outcome::Failed => Ending::Failed,
            Outcome::Interrupted => Ending::Interrupted,
            Outcome::Skipped => Ending::Skipped,
        }
    }
}

/// One entry of `phases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PhaseReport {
    /// Which phase.
    pub phase: Phase,
    /// When it started, ms from the run's start.
    pub started_offset_ms: u64,
    /// How long it took, ms; `None` when it never finished.
    pub duration_ms: Option<u64>,
    /// How it ended.
    pub outcome: Ending,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// One entry of `steps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StepReport {
    /// Position in the scenario's `steps`.
    pub index: usize,
    /// Step name.
    pub name: String,
    /// The step's action key (`wait`, `probe`, `kill`, ...).
    pub action: String,
    /// When it started, ms from the run's start.
    pub started_offset_ms: u64,
    /// How long it took, ms; `None` when it never finished.
    pub duration_ms: Option<u64>,
    /// How it ended.
    pub outcome: Ending,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// One entry of `checks`: a [`Verdict`] as the report keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct CheckReport {
    /// The expectation's name.
    pub name: String,
    /// The expectation's YAML key (`healthy-within`, ...).
    pub kind: String,
    /// How it came out.
    pub status: CheckStatus,
    /// One line: what settled it.
    pub summary: String,
    /// What had to hold.
    pub expected: String,
    /// What the journal shows.
    pub observed: String,
    /// The journal events it rests on.
    pub evidence: Vec<Evidence>,
    /// `notify` and `maintenance-notice` only: per channel (and listed recipient), the reference
    /// moment, the arrival and the margin or lateness.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelTiming>,
}

impl From<&Verdict> for CheckReport {
    fn from(verdict: &Verdict) -> Self {
        CheckReport {
            name: verdict.name.clone(),
            kind: verdict.kind.to_owned(),
            status: verdict.status,
            summary: verdict.summary.clone(),
            expected: verdict.expected.clone(),
            observed: verdict.observed.clone(),
            evidence: verdict.evidence.clone(),
            channels: verdict.channels.clone(),
        }
    }
}

/// `counts`: checks by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Counts {
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks the run never got to.
    pub not_evaluated: usize,
}

/// `timing`: where the run's time went, from the `time-accounting` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Timing {
    /// The run's time up to the accounting, ms.
    pub total_ms: u64,
    /// Awaiting Docker calls: wall time with at least one in progress, ms (older journals: the
    /// sum of their durations).
    pub docker_ms: u64,
    /// In declared waits (`wait` steps, `for` durations), as wall time, ms.
    pub declared_wait_ms: u64,
    /// Waiting on services (health polls, probes), as wall time, ms.
    pub service_wait_ms: u64,
    /// Wall time with at least one wait of any kind in progress, ms (absent for journals written
    /// before waits were intervals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_ms: Option<u64>,
    /// The rest: the harness's own time, ms (never below 0).
    pub overhead_ms: u64,
    /// `overhead-ms` as a percentage of `total-ms`, one decimal.
    pub overhead_percent: f64,
    /// CPU time (user + system, all threads) of the harness process over the run, ms
    /// (process-wide; absent for older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_cpu_ms: Option<u64>,
}

/// Errors writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report folder or file could not be written.
    #[error("failed to write `{}`", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A reporter panicked while rendering (a bug); the other reports are still written.
    #[error("failed to render {report}: {message}")]
    Render {
        /// Which report (`junit.xml`, ...).
        report: &'static str,
        /// The panic's message.
        message: String,
    },
}

/// Build the report of one run from its journal (complete or not) and verdicts.
///
/// `scenario_name` and `scenario_file` are taken as given (the journal's `run-started` may be
/// missing); `status` is the engine's judgement of the run.
pub fn build_report(
    scenario_name: &str,
    scenario_file: &str,
    events: &[Event],
    verdicts: &[Verdict],
    status: RunStatus,
) -> Report {
    let run_started = events.iter().find(|e| matches!(e.kind, EventKind::RunStarted { .. }));
    let run_ended = events.iter().find(|e| matches!(e.kind, EventKind::RunEnded { .. }));
    let first = run_started.or(events.first());
    let last = run_ended.or(events.last());
    let run_id = run_started.and_then(|e| match &e.kind {
        EventKind::RunStarted { run_id, .. } => Some(run_id.clone()),
        _ => None,
    });
    let seed = run_started.and_then(|e| match &e.kind {
        EventKind::RunStarted { seed, .. } => *seed,
        _ => None,
    });
    let duration_us = match (first, last) {
        (Some(first), Some(last)) => last.offset_us.saturating_sub(first.offset_us),
        _ => 0,
    };
    let phases = phase_reports(events);
    let error = phases.iter().find(|p| p.outcome == Ending::Failed).and_then(|p| p.error.clone());
    let checks: Vec<CheckReport> = verdicts.iter().map(CheckReport::from).collect();
    let mut counts = Counts::default();
    for check in &checks {
        match check.status {
            CheckStatus::Passed => counts.passed += 1,
            CheckStatus::Failed => counts.failed += 1,
            CheckStatus::NotEvaluated => counts.not_evaluated += 1,
        }
    }
    Report {
        format_version: REPORT_FORMAT_VERSION,
        firedrill_version: env!("CARGO_PKG_VERSION").to_owned(),
        run_id,
        seed,
        scenario: ScenarioRef { name: scenario_name.to_owned(), file: scenario_file.to_owned() },
        status,
        started_at: first.map(|e| e.wall),
        ended_at: last.map(|e| e.wall),
        duration_ms: duration_us / 1_000,
        phases,
        steps: step_reports(events),
        checks,
        counts,
        timing: timing(events),
        error,
        humans: super::human_reports(events),
    }
}

/// Pairs each `phase-started` with the next `phase-ended` of the same phase.
fn phase_reports(events: &[Event]) -> Vec<PhaseReport> {
    let mut phases = Vec::new();
    for (i, start) in events.iter().enumerate() {
        let EventKind::PhaseStarted { phase } = start.kind else { continue };
        let end = events[i + 1..].iter().find_map(|e| match &e.kind {
            EventKind::PhaseEnded { phase: p, outcome, error } if *p == phase => {
                Some((e, *outcome, error.clone()))
            }
            _ => None,
        });
        phases.push(PhaseReport {
            phase,
            started_offset_ms: start.offset_us / 1_000,
            duration_ms: end.as_ref().map(|(e, ..)| span_ms(start, e)),
            outcome: end.as_ref().map_or(Ending::NotFinished, |(_, outcome, _)| (*outcome).into()),
            error: end.and_then(|(.., error)| error),
        });
    }
    phases
}

/// Pairs each `step-started` with the next `step-ended` of the same index.
fn step_reports(events: &[Event]) -> Vec<StepReport> {
    let mut steps = Vec::new();
    for (i, start) in events.iter().enumerate() {
        let EventKind::StepStarted { index, step, action } = &start.kind else { continue };
        let end = events[i + 1..].iter().find_map(|e| match &e.kind {
            EventKind::StepEnded { index: j, outcome, error, .. } if j == index => {
                Some((e, *outcome, error.clone()))
            }
            _ => None,
        });
        steps.push(StepReport {
            index: *index,
            name: step.clone(),
            action: action.clone(),
            started_offset_ms: start.offset_us / 1_000,
            duration_ms: end.as_ref().map(|(e, ..)| span_ms(start, e)),
            outcome: end.as_ref().map_or(Ending::NotFinished, |(_, outcome, _)| (*outcome).into()),
            error: end.and_then(|(.., error)| error),
        });
    }
    steps
}

fn span_ms(start: &Event, end: &Event) -> u64 {
    end.offset_us.saturating_sub(start.offset_us) / 1_000
}

fn timing(events: &[Event]) -> Option<Timing> {
    events.iter().find_map(|event| match event.kind {
        EventKind::TimeAccounting {
            docker_us,
            declared_wait_us,
            service_wait_us,
            waited,
            harness_cpu_us,
        } => {
            let total_us = event.offset_us;
            let (parts, overhead_us) = match waited {
                Some(union) => (
                    [union.docker_us, union.declared_wait_us, union.service_wait_us],
                    total_us.saturating_sub(union.any_us),
                ),
                // Written before intervals: only the sums, which overlapping waits overcount.
                None => (
                    [docker_us, declared_wait_us, service_wait_us],
                    total_us
                        .saturating_sub(docker_us)
                        .saturating_sub(declared_wait_us)
                        .saturating_sub(service_wait_us),
                ),
            };
            let overhead_percent = if total_us == 0 {
                0.0
            } else {
                (overhead_us as f64 * 1_000.0 / total_us as f64).round() / 10.0
            };
            Some(Timing {
                total_ms: total_us / 1_000,
                docker_ms: parts[0] / 1_000,
                declared_wait_ms: parts[1] / 1_000,
                service_wait_ms: parts[2] / 1_000,
                waiting_ms: waited.map(|union| union.any_us / 1_000),
                overhead_ms: overhead_us / 1_000,
                overhead_percent,
                harness_cpu_ms: harness_cpu_us.map(|us| us / 1_000),
            })
        }
        _ => None,
    })
}

/// Write `DIR/report.json` (pretty, with a trailing newline), creating `DIR` if needed; returns
/// the file's path.
pub fn write_json(report: &Report, dir: &Path) -> Result<PathBuf, ReportError> {
    fs_err::create_dir_all(dir)
        .map_err(|source| ReportError::Write { path: dir.to_owned(), source })?;
    let path = dir.join("report.json");
    let mut text = serde_json::to_string_pretty(report).expect("reports always serialize");
    text.push('\n');
    fs_err::write(&path, text)
        .map_err(|source| ReportError::Write { path: path.clone(), source })?;
    Ok(path)
}

/// The verdict summary the CLI prints on stdout: a header line, then one line per check.
///
/// ```text
/// smoke: FAILED (3/4 checks passed) in 23.4s   run fd-1a2b3c4d
///   PASS steady state before
///   FAIL billing stays up — unhealthy 1.2s into `pause db`: status 503
/// ```
///
/// Markers are words (`PASS`, `FAIL`, `SKIP` for not evaluated), so the text reads the same
/// without colour; `color` only adds ANSI colours to them and to the run's status.
pub fn render_summary_text(report: &Report, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    };
    let (word, code) = match report.status {
        RunStatus::Completed => ("PASSED", "1;32"),
        RunStatus::Deviated => ("FAILED", "1;31"),
        RunStatus::Aborted => ("ABORTED", "1;31"),
        RunStatus::Interrupted => ("INTERRUPTED", "1;33"),
    };
    let counts = &report.counts;
    let mut tally = format!("{}/{} checks passed", counts.passed, report.checks.len());
    if counts.failed > 0 {
        let _ = write!(tally, ", {} failed", counts.failed);
    }
    if counts.not_evaluated > 0 {
        let _ = write!(tally, ", {} not evaluated", counts.not_evaluated);
    }
    let mut out = format!(
        "{}: {} ({tally}) in {}",
        report.scenario.name,
        paint(code, word),
        format_duration_us(report.duration_ms * 1_000)
    );
    if let Some(run_id) = &report.run_id {
        let _ = write!(out, "   run {run_id}");
    }
    out.push('\n');
    for check in &report.checks {
        let _ = match check.status {
            CheckStatus::Passed => writeln!(out, "  {} {}", paint("32", "PASS"), check.name),
            CheckStatus::Failed => {
                writeln!(out, "  {} {} — {}", paint("31", "FAIL"), check.name, check.summary)
            }
            CheckStatus::NotEvaluated => {
                writeln!(out, "  {} {} — {}", paint("33", "SKIP"), check.name, check.summary)
            }
        };
    }
    if let Some(error) = &report.error {
        // The first line only: the CLI prints the whole error, with logs and hint, on stderr.
        let first = error.lines().next().unwrap_or_default();
        let _ = writeln!(out, "  error: {first}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use indexmap::IndexMap;

    use super::*;
    use crate::checks::evaluate;
    use crate::clock::{Clock, ManualClock};
    use crate::journal::{JOURNAL_FORMAT_VERSION, Journal, ProbeContext, read_journal};
    use crate::scenario::model::{Expectation, ExpectationKind, Scenario, Stack, SteadyPhase};

    /// Records `timeline` (absolute times in ms) into `journal`.
    fn record(clock: &ManualClock, journal: &Journal, timeline: Vec<(u64, EventKind)>) {
        for (ms, kind) in timeline {
            clock.advance(Duration::from_millis(ms).saturating_sub(clock.offset()));
            journal.record(kind);
        }
    }

    fn scenario() -> Scenario {
        let expect = [
            ("steady state before", ExpectationKind::SteadyState(SteadyPhase::Before)),
            (
                "billing stays up while db pauses",
                ExpectationKind::HealthyThroughout {
                    service: "billing".into(),
                    step: "pause db".into(),
                },
            ),
            ("billing answers", ExpectationKind::ProbePassed { step: "probe billing".into() }),
            (
                "billing recovers",
                ExpectationKind::HealthyWithin {
                    service: "billing".into(),
                    after: "restart billing".into(),
                    within: Duration::from_secs(5),
                },
            ),
            ("steady state after", ExpectationKind::SteadyState(SteadyPhase::After)),
        ];
        Scenario {
            name: "smoke".into(),
            description: None,
            source: PathBuf::from("scenarios/smoke.yaml"),
            stack: Stack { services: IndexMap::new(), links: IndexMap::new(), compose: None },
            traffic: indexmap::IndexMap::new(),
            steady_state: Vec::new(),
            steps: Vec::new(),
            expect: expect
                .into_iter()
                .map(|(name, kind)| Expectation { name: name.into(), kind, at: None })
                .collect(),
            sinks: indexmap::IndexMap::new(),
            maintenance: None,
            calendar: None,
            backend: None,
        }
    }

    fn phase(phase: Phase) -> EventKind {
        EventKind::PhaseStarted { phase }
    }

    fn phase_ok(phase: Phase) -> EventKind {
        EventKind::PhaseEnded { phase, outcome: Outcome::Ok, error: None }
    }

    fn health(healthy: bool, detail: &str) -> EventKind {
        EventKind::HealthChanged {
            service: "billing".into(),
            healthy,
            detail: detail.into(),
            check_started_us: None,
        }
    }

    fn step(index: usize, name: &str, action: &str) -> EventKind {
        EventKind::StepStarted { index, step: name.into(), action: action.into() }
    }

    fn step_ok(index: usize, name: &str) -> EventKind {
        EventKind::StepEnded { index, step: name.into(), outcome: Outcome::Ok, error: None }
    }

    fn probe(context: ProbeContext, status: u16) -> EventKind {
        EventKind::ProbeResult {
            probe: "billing answers".into(),
            context,
            service: "billing".into(),
            ok: status == 200,
            status: Some(status),
            latency_us: 4_000,
            error: (status != 200).then(|| format!("status {status}, expected 200")),
        }
    }

    /// A run up to the middle of `restart billing` (an interrupted run's journal).
    fn first_half() -> Vec<(u64, EventKind)> {
        vec![
            (
                0,
                EventKind::RunStarted {
                    run_id: "fd-1a2b3c4d".into(),
                    scenario: "smoke".into(),
                    file: "scenarios/smoke.yaml".into(),
                    format_version: JOURNAL_FORMAT_VERSION,
                    firedrill_version: "0.1.0".into(),
                    seed: None,
                },
            ),
            (1, phase(Phase::Prepare)),
            (40, phase_ok(Phase::Prepare)),
            (40, phase(Phase::BringUp)),
            (900, health(true, "status 200")),
            (1_200, phase_ok(Phase::BringUp)),
            (1_200, phase(Phase::SteadyBefore)),
            (1_204, probe(ProbeContext::SteadyState { phase: SteadyPhase::Before }, 200)),
            (1_205, phase_ok(Phase::SteadyBefore)),
            (1_205, phase(Phase::Steps)),
            (1_205, step(0, "pause db", "pause")),
            (2_405, health(false, "status 503")),
            (4_000, health(true, "status 200")),
            (6_205, step_ok(0, "pause db")),
            (6_205, step(1, "probe billing", "probe")),
            (6_209, probe(ProbeContext::Step { step: "probe billing".into() }, 200)),
            (6_209, step_ok(1, "probe billing")),
            (6_209, step(2, "restart billing", "restart")),
            (6_500, health(false, "connection refused")),
        ]
    }

    fn second_half() -> Vec<(u64, EventKind)> {
        vec![
            (9_209, step_ok(2, "restart billing")),
            (9_209, phase_ok(Phase::Steps)),
            (9_209, phase(Phase::SteadyAfter)),
            (12_410, health(true, "status 200")),
            (12_500, probe(ProbeContext::SteadyState { phase: SteadyPhase::After }, 200)),
            (12_500, phase_ok(Phase::SteadyAfter)),
            // The engine observes until `billing recovers`' deadline (14.209 s) before teardown.
            (
                14_301,
                EventKind::TimeAccounting {
                    docker_us: 3_100_000,
                    declared_wait_us: 0,
                    service_wait_us: 8_400_000,
                    waited: None,
                    harness_cpu_us: None,
                },
            ),
            (14_301, phase(Phase::Teardown)),
            (14_800, health(false, "connection refused")),
            (15_200, phase_ok(Phase::Teardown)),
            (15_200, EventKind::RunEnded { outcome: Outcome::Ok }),
        ]
    }

    fn events(timeline: Vec<(u64, EventKind)>) -> Vec<Event> {
        let clock = Arc::new(ManualClock::new());
        let journal = Journal::in_memory(clock.clone());
        record(&clock, &journal, timeline);
        journal.snapshot()
    }

    fn complete_run() -> Vec<Event> {
        events(first_half().into_iter().chain(second_half()).collect())
    }

    fn report_of(events: &[Event], status: RunStatus) -> Report {
        let scenario = scenario();
        let verdicts = evaluate(&scenario, events);
        build_report("smoke", "scenarios/smoke.yaml", events, &verdicts, status)
    }

    fn json(report: &Report) -> String {
        serde_json::to_string_pretty(report).unwrap()
    }

    /// Snapshots `text` with the firedrill version masked, so releases do not churn snapshots.
    macro_rules! assert_versionless_snapshot {
        ($name:expr, $text:expr) => {
            insta::with_settings!({ filters => vec![
                (r#""firedrill-version": "[^"]+""#, r#""firedrill-version": "[version]""#),
            ]}, {
                insta::assert_snapshot!($name, $text);
            })
        };
    }

    #[test]
    fn report_json_of_a_complete_run() {
        let report = report_of(&complete_run(), RunStatus::Deviated);
        assert_versionless_snapshot!("complete_run_report_json", json(&report));
    }

    #[test]
    fn summary_text_of_a_complete_run() {
        let report = report_of(&complete_run(), RunStatus::Deviated);
        let text = render_summary_text(&report, false);
        assert!(!text.contains('\x1b'), "no ANSI codes without colour");
        insta::assert_snapshot!("complete_run_summary", text);
    }

    #[test]
    fn colour_only_adds_escape_codes() {
        let report = report_of(&complete_run(), RunStatus::Deviated);
        let coloured = render_summary_text(&report, true);
        assert!(coloured.contains("\x1b[1;31mFAILED\x1b[0m"));
        let stripped = coloured
            .split('\x1b')
            .enumerate()
            .map(|(i, part)| if i == 0 { part } else { part.split_once('m').unwrap().1 })
            .collect::<String>();
        assert_eq!(stripped, render_summary_text(&report, false));
    }

    #[test]
    fn report_of_an_interrupted_run() {
        let mut timeline = first_half();
        timeline.push((7_000, EventKind::Interrupted { second: false }));
        let report = report_of(&events(timeline), RunStatus::Interrupted);
        assert_eq!(report.steps[2].outcome, Ending::NotFinished);
        assert_eq!(report.steps[2].duration_ms, None);
        assert_eq!(report.phases.last().map(|p| p.outcome), Some(Ending::NotFinished));
        assert_eq!(report.timing, None);
        assert_eq!(report.duration_ms, 7_000);
        let text = json(&report);
        assert!(!text.contains("\"timing\""), "timing is left out, not null");
        assert_versionless_snapshot!("interrupted_run_report_json", text);
        insta::assert_snapshot!("interrupted_run_summary", render_summary_text(&report, false));
    }

    #[test]
    fn report_of_an_empty_journal() {
        let report = report_of(&[], RunStatus::Aborted);
        assert_eq!(report.run_id, None);
        assert_eq!(report.started_at, None);
        assert_eq!(report.duration_ms, 0);
        assert!(report.phases.is_empty() && report.steps.is_empty());
        assert_eq!(report.counts, Counts { passed: 0, failed: 0, not_evaluated: 5 });
        assert_eq!(
            render_summary_text(&report, false).lines().next(),
            Some("smoke: ABORTED (0/5 checks passed, 5 not evaluated) in 0ms")
        );
    }

    #[test]
    fn every_prefix_of_a_journal_builds_a_report() {
        let all = complete_run();
        for end in 0..=all.len() {
            let report = report_of(&all[..end], RunStatus::Interrupted);
            serde_json::to_string(&report).unwrap();
            render_summary_text(&report, false);
        }
    }

    #[test]
    fn the_error_is_the_first_failed_phase() {
        let report = report_of(
            &events(vec![
                (0, phase(Phase::Prepare)),
                (5, phase_ok(Phase::Prepare)),
                (5, phase(Phase::BringUp)),
                (
                    90,
                    EventKind::PhaseEnded {
                        phase: Phase::BringUp,
                        outcome: Outcome::Failed,
                        error: Some("image `firedrill-demo/billing:1.0` is missing".into()),
                    },
                ),
                (90, phase(Phase::Teardown)),
                (
                    95,
                    EventKind::PhaseEnded {
                        phase: Phase::Teardown,
                        outcome: Outcome::Failed,
                        error: Some("later".into()),
                    },
                ),
            ]),
            RunStatus::Aborted,
        );
        assert_eq!(report.error.as_deref(), Some("image `firedrill-demo/billing:1.0` is missing"));
        assert_eq!(report.phases[1].duration_ms, Some(85));
        assert!(
            render_summary_text(&report, false)
                .ends_with("  error: image `firedrill-demo/billing:1.0` is missing\n")
        );
    }

    #[test]
    fn overhead_never_goes_below_zero() {
        let report = report_of(
            &events(vec![(
                1_000,
                EventKind::TimeAccounting {
                    docker_us: 700_000,
                    declared_wait_us: 200_000,
                    service_wait_us: 300_000,
                    waited: None,
                    harness_cpu_us: None,
                },
            )]),
            RunStatus::Completed,
        );
        let timing = report.timing.unwrap();
        assert_eq!((timing.total_ms, timing.overhead_ms, timing.overhead_percent), (1_000, 0, 0.0));
        assert_eq!((timing.waiting_ms, timing.harness_cpu_ms), (None, None));
    }

    #[test]
    fn with_wall_times_the_overhead_is_the_time_outside_every_wait() {
        // The sums overcount (1.2 s of waits in a 1 s run); the union of the waits is 0.9 s.
        let waited = crate::journal::WaitUnion {
            docker_us: 500_000,
            declared_wait_us: 200_000,
            service_wait_us: 300_000,
            any_us: 900_000,
        };
        let report = report_of(
            &events(vec![(
                1_000,
                EventKind::TimeAccounting {
                    docker_us: 700_000,
                    declared_wait_us: 200_000,
                    service_wait_us: 300_000,
                    waited: Some(waited),
                    harness_cpu_us: Some(123_456),
                },
            )]),
            RunStatus::Completed,
        );
        let timing = report.timing.unwrap();
        assert_eq!(
            timing,
            Timing {
                total_ms: 1_000,
                docker_ms: 500,
                declared_wait_ms: 200,
                service_wait_ms: 300,
                waiting_ms: Some(900),
                overhead_ms: 100,
                overhead_percent: 10.0,
                harness_cpu_ms: Some(123),
            }
        );
        let text = serde_json::to_string(&timing).unwrap();
        assert!(text.contains(r#""waiting-ms":900"#) && text.contains(r#""harness-cpu-ms":123"#));
    }

    #[test]
    fn a_time_accounting_line_with_the_union_reads_back() {
        // The event's own `wall` (its wall-clock time) and the union's keys must not collide.
        let journal = Journal::in_memory(Arc::new(ManualClock::new()));
        let waited = crate::journal::WaitUnion {
            docker_us: 1,
            declared_wait_us: 2,
            service_wait_us: 3,
            any_us: 4,
        };
        let event = journal.record(EventKind::TimeAccounting {
            docker_us: 5,
            declared_wait_us: 6,
            service_wait_us: 7,
            waited: Some(waited),
            harness_cpu_us: Some(8),
        });
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(line.matches(r#""wall""#).count(), 1, "{line}");
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), event);
    }

    #[test]
    fn a_time_accounting_line_without_wall_times_still_reads() {
        let line = r#"{"seq":50,"offset-us":17717332,"wall":"2026-12-06T02:45:41.053446791Z","event":"time-accounting","docker-us":4367114,"declared-wait-us":3011100,"service-wait-us":1399573}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        let EventKind::TimeAccounting { waited, harness_cpu_us, docker_us, .. } = &event.kind
        else {
            panic!("{event:?}")
        };
        assert_eq!((*waited, *harness_cpu_us, *docker_us), (None, None, 4_367_114));
        // Written back, it is the same line: nothing new appears in it.
        assert_eq!(serde_json::to_string(&event).unwrap(), line);
        let timing = report_of(&[event], RunStatus::Completed).timing.unwrap();
        assert_eq!(timing.overhead_ms, 8_939); // 17.717 s − the three sums
    }

    #[test]
    fn a_journal_read_back_gives_the_same_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let clock = Arc::new(ManualClock::new());
        let journal = Journal::to_file(clock.clone(), &path).unwrap();
        record(&clock, &journal, first_half().into_iter().chain(second_half()).collect());
        let live = report_of(&journal.snapshot(), RunStatus::Deviated);
        let read_back = report_of(&read_journal(&path).unwrap(), RunStatus::Deviated);
        assert_eq!(live, read_back);
    }

    #[test]
    fn report_json_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let report = report_of(&complete_run(), RunStatus::Deviated);
        let path = write_json(&report, &dir.path().join("nested")).unwrap();
        assert_eq!(path, dir.path().join("nested").join("report.json"));
        let text = fs_err::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n"));
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn writing_into_a_file_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        fs_err::write(&file, "").unwrap();
        let error = write_json(&report_of(&[], RunStatus::Aborted), &file).unwrap_err();
        assert!(error.to_string().contains("not-a-folder"), "{error}");
    }
}
