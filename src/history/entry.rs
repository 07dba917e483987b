//! What one run contributes to the history: [`RunEntry`], and its key figures flattened into
//! named numbers ([`figures_of`]) so that runs of a scenario compare figure by figure.
//!
//! Every number is one the report already states (the report's [`key_figures`], `report.json`'s
//! `timing`, the `notify` checks' per-channel timings); nothing is measured differently here.
//! A figure's name is `METRIC (SUBJECT)`, for example `healthy-after-clear (kill web: web)` or
//! `p95-latency (checkout)`: stable across runs of the same scenario, readable in a message.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::checks::CheckStatus;
use crate::journal::{Event, EventKind};
use crate::report::{Counts, Report, RunRecord, RunStatus, key_figures};

/// What a figure counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// Percent.
    Percent,
    /// A count (lost writes).
    Count,
}

impl Unit {
    /// The unit's key, as the database and `--json` write it.
    pub fn key(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Percent => "percent",
            Unit::Count => "count",
        }
    }

    /// The unit from its key.
    pub fn from_key(key: &str) -> Option<Unit> {
        match key {
            "ms" => Some(Unit::Ms),
            "percent" => Some(Unit::Percent),
            "count" => Some(Unit::Count),
            _ => None,
        }
    }

    /// A value in this unit, for people: `1.234s`, `99.5%`, `3`.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Ms if value >= 1_000.0 => format!("{:.3}s", value / 1_000.0),
            Unit::Ms => format!("{value:.0}ms"),
            Unit::Percent => format!("{value:.1}%"),
            Unit::Count => format!("{value:.0}"),
        }
    }
}

/// Which direction of a figure is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Better {
    /// Smaller is better (times, lost writes, error budget used).
    Lower,
    /// Larger is better (availability).
    Higher,
}

impl Better {
    /// The direction's key, as the database and `--json` write it.
    pub fn key(self) -> &'static str {
        match self {
            Better::Lower => "lower",
            Better::Higher => "higher",
        }
    }

    /// The direction from its key.
    pub fn from_key(key: &str) -> Option<Better> {
        match key {
            "lower" => Some(Better::Lower),
            "higher" => Some(Better::Higher),
            _ => None,
        }
    }
}

/// One key figure of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Figure {
    /// `METRIC (SUBJECT)`, unique within a run.
    pub name: String,
    /// The value, in `unit`.
    pub value: f64,
    /// What the value counts in.
    pub unit: Unit,
    /// Which direction is an improvement.
    pub better: Better,
}

/// How a run got into the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Recorded by `firedrill run` as it ended.
    Run,
    /// Imported from a report folder by `firedrill report DIR` (a crashed or killed run, or one
    /// recorded with `--no-history`).
    Imported,
}

impl Origin {
    /// The origin's key, as the database and `--json` write it.
    pub fn key(self) -> &'static str {
        match self {
            Origin::Run => "run",
            Origin::Imported => "imported",
        }
    }
}

/// One check's outcome, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct VerdictEntry {
    /// The expectation's name.
    pub name: String,
    /// Its YAML key (`healthy-within`, ...).
    pub kind: String,
    /// How it came out.
    pub status: CheckStatus,
    /// One line: what settled it.
    pub summary: String,
}

/// One run in the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunEntry {
    /// The run's id (`fd-…`), unique in a history.
    pub run_id: String,
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file, as given.
    pub scenario_file: String,
    /// Wall time of the run's start.
    pub started_at: Option<jiff::Timestamp>,
    /// From the run's start to its end (or its last event), ms.
    pub duration_ms: u64,
    /// How the run ended.
    pub status: RunStatus,
    /// How it got into the history.
    pub origin: Origin,
    /// `git rev-parse HEAD` of the scenario's folder when the run ended, when it is in a git
    /// repository.
    pub git_commit: Option<String>,
    /// Per service, the version its version endpoint answered (the one an upgrade went to, else
    /// the last one seen).
    pub versions: BTreeMap<String, String>,
    /// Checks by status.
    pub counts: Counts,
    /// The checks, in the scenario's order.
    pub verdicts: Vec<VerdictEntry>,
    /// The key figures.
    pub figures: Vec<Figure>,
    /// The folder the run's reports went to, when it had one.
    pub report_dir: Option<String>,
    /// The run's seed.
    pub seed: Option<u64>,
    /// The firedrill version that ran it.
    pub firedrill_version: String,
}

impl RunEntry {
    /// The entry of a run from its record; `None` when the journal has no `run-started` (no run
    /// id to key it by).
    pub fn from_record(
        record: &RunRecord,
        origin: Origin,
        git_commit: Option<String>,
    ) -> Option<Self> {
        let report = &record.report;
        let run_id = report.run_id.clone()?;
        Some(RunEntry {
            run_id,
            scenario: report.scenario.name.clone(),
            scenario_file: report.scenario.file.clone(),
            started_at: report.started_at,
            duration_ms: report.duration_ms,
            status: report.status,
            origin,
            git_commit,
            versions: versions_of(&record.events),
            counts: report.counts,
            verdicts: report
                .checks
                .iter()
                .map(|check| VerdictEntry {
                    name: check.name.clone(),
                    kind: check.kind.clone(),
                    status: check.status,
                    summary: check.summary.clone(),
                })
                .collect(),
            figures: figures_of(&record.events, report),
            report_dir: (!record.dir.as_os_str().is_empty())
                .then(|| record.dir.display().to_string()),
            seed: report.seed,
            firedrill_version: report.firedrill_version.clone(),
        })
    }

    /// The figure named `name`.
    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// The versions in one short label (`api 2.0, web 1.4`), empty without any.
    pub fn version_label(&self) -> String {
        self.versions
            .iter()
            .map(|(service, version)| format!("{service} {version}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The run's key figures as named numbers, in the report's order: faults, upgrades, traffic,
/// notifications, the harness's overhead (wall time outside every wait) and CPU time. A name seen
/// twice keeps its first value.
pub fn figures_of(events: &[Event], report: &Report) -> Vec<Figure> {
    let mut figures: Vec<Figure> = Vec::new();
    let mut push = |name: String, value: f64, unit: Unit, better: Better| {
        if !figures.iter().any(|f| f.name == name) {
            figures.push(Figure { name, value, unit, better });
        }
    };
    let ms = |us: u64| us as f64 / 1_000.0;
    let key = key_figures(events);
    for fault in &key.faults {
        for outage in &fault.outages {
            let subject = format!("{}: {}", fault.step, outage.service);
            push(
                format!("detected-after ({subject})"),
                ms(outage.detected_after_us),
                Unit::Ms,
                Better::Lower,
            );
            if let Some(us) = outage.unhealthy_for_us {
                push(format!("unhealthy-for ({subject})"), ms(us), Unit::Ms, Better::Lower);
            }
            if let Some(us) = outage.healthy_after_clear_us {
                push(format!("healthy-after-clear ({subject})"), ms(us), Unit::Ms, Better::Lower);
            }
        }
    }
    for upgrade in &key.upgrades {
        let step = &upgrade.step;
        for (metric, value) in [
            ("time-to-detect", upgrade.time_to_detect_us),
            ("time-to-roll-back", upgrade.time_to_roll_back_us),
            ("time-to-restore", upgrade.time_to_restore_us),
        ] {
            if let Some(us) = value {
                push(format!("{metric} ({step})"), ms(us), Unit::Ms, Better::Lower);
            }
        }
        for budget in &upgrade.error_budget {
            push(
                format!("error-budget-used ({step}: {})", budget.traffic),
                budget.used_percent,
                Unit::Percent,
                Better::Lower,
            );
        }
    }
    for traffic in &key.traffic {
        let name = &traffic.traffic;
        if traffic.requests > 0 {
            push(
                format!("availability ({name})"),
                traffic.availability_percent,
                Unit::Percent,
                Better::Higher,
            );
        }
        for (metric, value) in [
            ("p50-latency", traffic.p50_latency_us),
            ("p95-latency", traffic.p95_latency_us),
            ("p99-latency", traffic.p99_latency_us),
        ] {
            if let Some(us) = value {
                push(format!("{metric} ({name})"), ms(us), Unit::Ms, Better::Lower);
            }
        }
        if let Some(writes) = &traffic.writes {
            push(format!("lost-writes ({name})"), writes.lost as f64, Unit::Count, Better::Lower);
        }
    }
    for check in &report.checks {
        for channel in &check.channels {
            if channel.part == "notice" {
                continue;
            }
            let Some(arrival) = channel.arrival_us else { continue };
            let to = match &channel.recipient {
                Some(recipient) => format!("{} {recipient}", channel.channel),
                None => channel.channel.clone(),
            };
            push(
                format!("notify-{} ({}: {to})", channel.part, check.name),
                ms(arrival.saturating_sub(channel.reference_us)),
                Unit::Ms,
                Better::Lower,
            );
        }
    }
    if let Some(timing) = &report.timing {
        push("harness-overhead".to_owned(), timing.overhead_ms as f64, Unit::Ms, Better::Lower);
        if let Some(cpu_ms) = timing.harness_cpu_ms {
            push("harness-cpu".to_owned(), cpu_ms as f64, Unit::Ms, Better::Lower);
        }
    }
    figures
}

/// Per service, the version its version endpoint answered: the one an upgrade switched to
/// (`after-switch`) when there is one, else the last one seen. A JSON body's `version` field is
/// taken when it has one; other bodies are kept whole (at most 40 characters).
pub fn versions_of(events: &[Event]) -> BTreeMap<String, String> {
    let mut versions: BTreeMap<String, (bool, String)> = BTreeMap::new();
    for event in events {
        let EventKind::VersionObserved { service, moment, body, ok: true, .. } = &event.kind else {
            continue;
        };
        let switched = moment == "after-switch";
        let label = version_label(body);
        match versions.get(service) {
            Some((true, _)) if !switched => {}
            _ => {
                versions.insert(service.clone(), (switched, label));
            }
        }
    }
    versions.into_iter().map(|(service, (_, label))| (service, label)).collect()
}

fn version_label(body: &str) -> String {
    let parsed = serde_json::from_str::<serde_json::Value>(body).ok();
    let field = parsed.as_ref().and_then(|v| v.get("version")).and_then(|v| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let label = field.unwrap_or_else(|| body.trim().to_owned());
    label.chars().take(40).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn event(seq: u64, kind: EventKind) -> Event {
        Event { seq, offset_us: seq * 1_000, wall: jiff::Timestamp::UNIX_EPOCH, kind }
    }

    fn observed(seq: u64, service: &str, moment: &str, body: &str, ok: bool) -> Event {
        event(
            seq,
            EventKind::VersionObserved {
                service: service.into(),
                step: "upgrade".into(),
                moment: moment.into(),
                body: body.into(),
                ok,
            },
        )
    }

    #[test]
    fn the_version_an_upgrade_switched_to_wins_over_a_rollback() {
        let events = vec![
            observed(1, "billing", "before", r#"{"version":"1.0"}"#, true),
            observed(2, "billing", "after-switch", r#"{"version":"2.0"}"#, true),
            observed(3, "billing", "after-rollback", r#"{"version":"1.0"}"#, true),
            observed(4, "web", "before", "nginx 1.4 \n", true),
            observed(5, "web", "after-switch", "connection refused", false),
        ];
        let versions = versions_of(&events);
        assert_eq!(versions["billing"], "2.0");
        assert_eq!(versions["web"], "nginx 1.4", "a failed observation is no version");
    }

    /// A fixture journal replayed as `firedrill report` does.
    pub(crate) fn replayed(journal: &str) -> RunRecord {
        let dir = tempfile::tempdir().unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/journals")
            .join(journal);
        fs_err::copy(source, dir.path().join("journal.jsonl")).unwrap();
        let mut runs = crate::report::replay_dir(dir.path()).unwrap();
        runs.remove(0).record
    }

    #[test]
    fn figures_come_from_the_reports_own_numbers() {
        let record = replayed("db-pause.jsonl");
        let figures = figures_of(&record.events, &record.report);
        let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names[..3],
            [
                "detected-after (pause db: db)",
                "unhealthy-for (pause db: db)",
                "healthy-after-clear (pause db: db)"
            ]
        );
        let key = key_figures(&record.events);
        let outage = &key.faults[0].outages[0];
        assert_eq!(figures[0].value, outage.detected_after_us as f64 / 1_000.0);
        assert_eq!(figures[1].value, outage.unhealthy_for_us.unwrap() as f64 / 1_000.0);
        let overhead = figures.iter().find(|f| f.name == "harness-overhead").unwrap();
        assert_eq!(overhead.value, record.report.timing.as_ref().unwrap().overhead_ms as f64);
        let entry = RunEntry::from_record(&record, Origin::Imported, None).unwrap();
        assert_eq!(entry.scenario, "db-pause");
        assert_eq!(entry.verdicts.len(), record.report.checks.len());
    }

    #[test]
    fn the_harness_figures_follow_the_reports_timing() {
        let record = replayed("db-pause.jsonl");
        // A journal written before wall times: the overhead as it computed it, no CPU figure.
        let figures = figures_of(&record.events, &record.report);
        assert!(!figures.iter().any(|f| f.name == "harness-cpu"));
        let mut report = record.report.clone();
        let timing = report.timing.as_mut().unwrap();
        (timing.waiting_ms, timing.overhead_ms, timing.harness_cpu_ms) =
            (Some(14_900), 291, Some(812));
        let figures = figures_of(&record.events, &report);
        let value = |name: &str| figures.iter().find(|f| f.name == name).map(|f| (f.value, f.unit));
        assert_eq!(value("harness-overhead"), Some((291.0, Unit::Ms)));
        assert_eq!(value("harness-cpu"), Some((812.0, Unit::Ms)));
    }

    #[test]
    fn units_format_for_people() {
        assert_eq!(Unit::Ms.format(204.0), "204ms");
        assert_eq!(Unit::Ms.format(5_152.0), "5.152s");
        assert_eq!(Unit::Percent.format(99.5), "99.5%");
        assert_eq!(Unit::Count.format(3.0), "3");
    }
}
