//! Checks: judge a scenario's `expect` entries over a run's journal, one [`Verdict`] each.
//!
//! Every check is a pure function of the scenario and the journal's events: no I/O, no clock, no
//! Docker. Times come only from the events' offsets, so a journal read back from `journal.jsonl`
//! gives the same verdicts as the live run did. A journal may be partial (an interrupted or crashed
//! run): a check the run never got to is [`CheckStatus::NotEvaluated`], never a panic, and a check
//! is only passed or failed when the recorded history settles it.
//!
//! Ordering between events uses `seq` (journal order), not offsets: two events may share an
//! offset, and the one recorded first happened first. Traffic requests are the exception: they are
//! placed by their scheduled time (see `traffic`).
//!
//! This file holds the steady-state, health and probe checks and the views over the journal they
//! share; `upgrade` holds `upgrade-succeeds`, `upgrade-rolled-back`, `restored` and the report's
//! [`upgrade_figures`]; `traffic` holds `slo` and `no-lost-writes`.

use serde::{Deserialize, Serialize};

use crate::journal::{Event, EventKind, Outcome, Phase, ProbeContext};
use crate::scenario::model::{ExpectationKind, Scenario, SteadyPhase, Trigger};

#[cfg(test)]
mod fixtures;
mod human;
mod maintenance;
mod metrics;
mod notify;
mod traffic;
mod unnamed;
mod upgrade;

pub use metrics::{
    PlannedQuery, QueryRange, alertmanager_watches, alerts_selector, planned_queries,
};
pub use notify::ChannelTiming;
pub use upgrade::{ErrorBudget, UpgradeFigures, UpgradeOutcome, upgrade_figures};

/// The judgement of one `expect` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Verdict {
    /// The expectation's name.
    pub name: String,
    /// The expectation's YAML key: `steady-state`, `healthy-within`, `healthy-throughout`,
    /// `unhealthy-during`, `probe-passed`, `restored`, `slo`, `no-lost-writes`,
    /// `upgrade-succeeds`, `upgrade-rolled-back`, `notify`, `maintenance-notice`.
    pub kind: &'static str,
    /// Passed, failed, or not evaluated.
    pub status: CheckStatus,
    /// One line for the terminal: what settled the verdict.
    pub summary: String,
    /// What had to hold, in words.
    pub expected: String,
    /// What the journal shows, in words.
    pub observed: String,
    /// The journal events the verdict rests on, in journal order.
    pub evidence: Vec<Evidence>,
    /// `notify` and `maintenance-notice`: per channel (and listed recipient), the reference
    /// moment, the arrival and the margin or lateness. Empty for the other checks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelTiming>,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CheckStatus {
    /// The journal shows the expectation held.
    Passed,
    /// The journal shows the expectation did not hold.
    Failed,
    /// The journal cannot settle it: the run never got there (interrupted or aborted before the
    /// step ran, or ended before a deadline), or nothing relevant was observed.
    NotEvaluated,
}

/// A pointer at one journal event, with what it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Evidence {
    /// The event's offset from the run's start, µs.
    pub offset_us: u64,
    /// The event's position in the journal.
    pub seq: u64,
    /// What the event shows, e.g. "probe `billing answers`: status 503, expected 200".
    pub note: String,
}

impl Evidence {
    fn at(event: &Event, note: impl Into<String>) -> Self {
        Evidence { offset_us: event.offset_us, seq: event.seq, note: note.into() }
    }
}

/// Evaluate every `expect` entry of `scenario` over `events`, in the scenario's order.
///
/// `events` is a run's journal (or its beginning, for a run that stopped early), in journal order.
pub fn evaluate(scenario: &Scenario, events: &[Event]) -> Vec<Verdict> {
    let journal = Timeline::new(events);
    scenario
        .expect
        .iter()
        .map(|expectation| {
            let judged = match &expectation.kind {
                ExpectationKind::SteadyState(phase) => steady_state(scenario, &journal, *phase),
                ExpectationKind::HealthyWithin { service, after, within } => {
                    healthy_within(&journal, service, after, micros(*within))
                }
                ExpectationKind::HealthyThroughout { service, step } => {
                    healthy_throughout(&journal, service, step)
                }
                ExpectationKind::UnhealthyDuring { service, step, starts_during } => {
                    unhealthy_during(&journal, service, step, *starts_during)
                }
                ExpectationKind::ProbePassed { step } => probe_passed(&journal, step),
                ExpectationKind::ProbeFailed { step } => probe_failed(&journal, step),
                ExpectationKind::Restored { service, after, within, version, traffic } => {
                    upgrade::restored(
                        &journal,
                        &upgrade::RestoredSpec {
                            service,
                            after,
                            within_us: micros(*within),
                            version: version.as_deref(),
                            traffic: traffic.as_deref(),
                        },
                    )
                }
                ExpectationKind::Slo {
                    traffic,
                    availability,
                    p50,
                    p95,
                    p99,
                    max_outage,
                    during,
                    expect_breach,
                } => {
                    let spec = traffic::SloSpec {
                        traffic,
                        availability: *availability,
                        p50_us: p50.map(micros),
                        p95_us: p95.map(micros),
                        p99_us: p99.map(micros),
                        max_outage_us: max_outage.map(micros),
                        during: during.as_deref(),
                    };
                    if *expect_breach {
                        traffic::slo_breached(&journal, &spec)
                    } else {
                        traffic::slo(&journal, &spec)
                    }
                }
                ExpectationKind::NoLostWrites { traffic } => {
                    traffic::no_lost_writes(&journal, traffic)
                }
                ExpectationKind::UpgradeSucceeds { step } => {
                    upgrade::upgrade_succeeds(&journal, step)
                }
                ExpectationKind::UpgradeRolledBack { step } => {
                    upgrade::upgrade_rolled_back(&journal, step)
                }
                ExpectationKind::Notify(spec) => notify::notify(&journal, spec),
                ExpectationKind::MaintenanceNotice(spec) => {
                    notify::maintenance_notice(&journal, spec)
                }
                ExpectationKind::HumanWithin { step, within } => {
                    human::human_within(events, step, micros(*within))
                }
                ExpectationKind::Prometheus(check) => {
                    metrics::prometheus(&journal, &expectation.name, check)
                }
                ExpectationKind::Alert(check) => metrics::alert(&journal, &expectation.name, check),
            };
            Verdict {
                name: expectation.name.clone(),
                kind: kind_key(&expectation.kind),
                status: judged.status,
                summary: judged.summary,
                expected: judged.expected,
                observed: judged.observed,
                evidence: judged.evidence,
                channels: judged.channels,
            }
        })
        .chain(maintenance::upgrades_in_windows(events))
        .chain(unnamed::unexpected_failures(scenario, events))
        .collect()
}

/// When `trigger`'s moment happened in `events` (microseconds from the run's start), or why it
/// has not (yet): the engine waits on it for a `parallel` child's `at`, the checks judge by it.
pub fn trigger_moment(events: &[Event], trigger: &Trigger) -> Result<u64, String> {
    Timeline::new(events).moment(trigger).map(|moment| moment.at_us)
}

/// The latest `healthy-within` deadline the journal so far places (`step-ended` of `after` +
/// `within`), µs from the run's start: the engine keeps observing until then before teardown, so
/// the check can see the service stay healthy to its deadline. `None` when there is none (no such
/// check, or none of their steps ended).
pub fn observe_until_us(scenario: &Scenario, events: &[Event]) -> Option<u64> {
    let journal = Timeline::new(events);
    scenario
        .expect
        .iter()
        .filter_map(|expectation| match &expectation.kind {
            ExpectationKind::HealthyWithin { after, within, .. } => match journal.step_end(after) {
                StepEnd::Ended(end) if end.outcome != Outcome::Interrupted => {
                    Some(end.event.offset_us.saturating_add(micros(*within)))
                }
                _ => None,
            },
            _ => None,
        })
        .max()
        .max(metrics::observe_until_us(scenario, events))
}

/// A duration in µs, saturating.
fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn kind_key(kind: &ExpectationKind) -> &'static str {
    match kind {
        ExpectationKind::SteadyState(_) => "steady-state",
        ExpectationKind::HealthyWithin { .. } => "healthy-within",
        ExpectationKind::HealthyThroughout { .. } => "healthy-throughout",
        ExpectationKind::UnhealthyDuring { .. } => "unhealthy-during",
        ExpectationKind::ProbePassed { .. } => "probe-passed",
        ExpectationKind::ProbeFailed { .. } => "probe-failed",
        ExpectationKind::Restored { .. } => "restored",
        ExpectationKind::Slo { .. } => "slo",
        ExpectationKind::NoLostWrites { .. } => "no-lost-writes",
        ExpectationKind::UpgradeSucceeds { .. } => "upgrade-succeeds",
        ExpectationKind::UpgradeRolledBack { .. } => "upgrade-rolled-back",
        ExpectationKind::Notify(_) => "notify",
        ExpectationKind::MaintenanceNotice(_) => "maintenance-notice",
        ExpectationKind::HumanWithin { .. } => "human-within",
        ExpectationKind::Prometheus(_) => "prometheus",
        ExpectationKind::Alert(_) => "alert",
    }
}

/// A verdict without its name and kind, which `evaluate` adds.
struct Judged {
    status: CheckStatus,
    summary: String,
    expected: String,
    observed: String,
    evidence: Vec<Evidence>,
    channels: Vec<ChannelTiming>,
}

impl Judged {
    fn new(status: CheckStatus, expected: String, summary: String, observed: String) -> Self {
        Judged { status, summary, expected, observed, evidence: Vec::new(), channels: Vec::new() }
    }

    /// The summary without a leading `breached: `.
    fn summary_tail(&self) -> &str {
        self.summary.strip_prefix("breached: ").unwrap_or(&self.summary)
    }

    fn with_evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.evidence = evidence;
        self.evidence.sort_by_key(|e| e.seq);
        self.evidence.dedup();
        self
    }
}

/// `steady-state: before | after`.
///
/// Passed when every `probe-result` recorded for that steady-state phase is ok, there is at
/// least one, and every probe declared under `steady-state` has a result. Each failed result is
/// evidence ("probe `billing answers`: status 503, expected 200"), and one failure is enough to
/// fail. Not evaluated when no result was recorded (the run stopped earlier), or when some
/// declared probe never ran and none failed (the run stopped mid-phase).
fn steady_state(scenario: &Scenario, journal: &Timeline<'_>, phase: SteadyPhase) -> Judged {
    let when = match phase {
        SteadyPhase::Before => "before the steps",
        SteadyPhase::After => "after the steps",
    };
    let expected = format!("every steady-state probe passes {when}");
    let results: Vec<ProbeView<'_>> = journal
        .probe_results()
        .filter(|p| matches!(p.context, ProbeContext::SteadyState { phase: ph } if *ph == phase))
        .collect();
    if results.is_empty() {
        let summary = format!("no steady-state probe ran {when}");
        let observed = format!("the journal has no steady-state probe result {when}");
        return Judged::new(CheckStatus::NotEvaluated, expected, summary, observed);
    }
    let failed: Vec<&ProbeView<'_>> = results.iter().filter(|p| !p.ok).collect();
    if let Some(first) = failed.first() {
        let summary = if failed.len() == 1 {
            first.failure_note()
        } else {
            format!(
                "{} failed; first {}",
                count(failed.len(), "probe result"),
                first.failure_note()
            )
        };
        let observed =
            format!("{} of {} failed", failed.len(), count(results.len(), "probe result"));
        let evidence = failed.iter().map(|p| Evidence::at(p.event, p.failure_note())).collect();
        return Judged::new(CheckStatus::Failed, expected, summary, observed)
            .with_evidence(evidence);
    }
    let missing: Vec<&str> = scenario
        .steady_state
        .iter()
        .map(|probe| probe.name.as_str())
        .filter(|name| !results.iter().any(|p| p.probe == *name))
        .collect();
    if !missing.is_empty() {
        let names = missing.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>();
        let summary = format!("probe {} never ran", names.join(", "));
        let observed = format!(
            "{} ok; {} of {} declared probes never ran",
            count(results.len(), "probe result"),
            missing.len(),
            scenario.steady_state.len()
        );
        return Judged::new(CheckStatus::NotEvaluated, expected, summary, observed);
    }
    let counted = count(results.len(), "probe result");
    let summary = format!("{counted} ok");
    let observed = format!("{counted} {when}, all ok");
    let evidence =
        results.iter().map(|p| Evidence::at(p.event, format!("probe `{}`: ok", p.probe)));
    Judged::new(CheckStatus::Passed, expected, summary, observed).with_evidence(evidence.collect())
}

/// `1 probe result`, `2 probe results`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `healthy-within: { service, after, within }`.
///
/// From the `step-ended` of step `after`, the service must be healthy at the deadline (end +
/// `within`) and have been so without a break since a moment at or before it: its state at the
/// deadline — the last `health-changed` at or before it, however early — is healthy. The moment it
/// counts as healthy is the start of that last healthy stretch: the step's end itself when the
/// stretch began before it ("already healthy"), otherwise the `health-changed` to healthy that began
/// it (a change exactly at the deadline passes). A service that was healthy early but unhealthy
/// again at the deadline fails: it did not stay healthy.
///
/// Health changes from teardown on are ignored (removing the stack is not an outage). Not
/// evaluated when the step never ended or was interrupted, or when observation (the journal up to
/// teardown) stops before the deadline, whatever was seen until then: a healthy state recorded
/// before a restart that the health check would only have contradicted later proves nothing.
fn healthy_within(journal: &Timeline<'_>, service: &str, after: &str, within_us: u64) -> Judged {
    let expected = format!(
        "`{service}` healthy within {} after `{after}` ends",
        format_duration_us(within_us)
    );
    let end = match journal.step_end(after) {
        StepEnd::Ended(end) => end,
        other => {
            let (summary, evidence) = other.why_not_ended(after);
            let observed = summary.clone();
            return Judged::new(CheckStatus::NotEvaluated, expected, summary, observed)
                .with_evidence(evidence);
        }
    };
    if end.outcome == Outcome::Interrupted {
        let summary = format!("`{after}` was interrupted");
        let evidence = vec![Evidence::at(end.event, format!("`{after}` interrupted"))];
        return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
            .with_evidence(evidence);
    }
    let end_us = end.event.offset_us;
    let deadline_us = end_us.saturating_add(within_us);
    let since = |us: u64| format_duration_us(us.saturating_sub(end_us));
    let mut evidence = vec![Evidence::at(end.event, format!("`{after}` ended"))];
    let at_end = journal.health_before(service, end.event.seq);
    if let Some(state) = at_end {
        evidence.push(Evidence::at(state.event, state.note()));
    }
    // Every change after the end up to the deadline, and the state at the deadline.
    let changes: Vec<HealthView<'_>> = journal
        .health_after(service, end.event.seq)
        .take_while(|c| c.event.offset_us <= deadline_us)
        .collect();
    evidence.extend(changes.iter().map(|c| Evidence::at(c.event, c.note())));
    let observed_until = journal.observed_until_us();
    if observed_until < deadline_us {
        let last = changes.last().copied().or(at_end);
        let until_then = match last {
            Some(state) if state.healthy => "healthy until then",
            Some(_) if at_end.is_some() => "still unhealthy until then",
            _ => "not healthy until then",
        };
        let summary = format!(
            "observation stopped {} after `{after}` ended, before the {} deadline; {until_then}",
            since(observed_until),
            format_duration_us(within_us)
        );
        return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
            .with_evidence(evidence);
    }
    let at_deadline = changes.last().copied().or(at_end);
    if let Some(state) = at_deadline.filter(|state| state.healthy) {
        let summary = if state.event.seq < end.event.seq {
            format!("already healthy when `{after}` ended")
        } else {
            format!("healthy {} after `{after}` ended", since(state.event.offset_us))
        };
        return Judged::new(CheckStatus::Passed, expected, summary.clone(), summary)
            .with_evidence(evidence);
    }
    // Unhealthy (or never observed) at the deadline.
    let not_healthy = if at_end.is_some() { "still unhealthy" } else { "not healthy" };
    // A recovery after the end that did not last (a healthy state at the end may be stale).
    let healthy_before = changes.iter().find(|c| c.healthy).map(|c| c.event.offset_us);
    let summary = if let Some(was_healthy_us) = healthy_before {
        let dip = at_deadline.expect("a healthy state before an unhealthy one at the deadline");
        format!(
            "healthy {} after `{after}` ended but unhealthy again after {}; {not_healthy} at the \
             {} deadline",
            since(was_healthy_us),
            since(dip.event.offset_us),
            format_duration_us(within_us)
        )
    } else {
        match journal.health_after(service, end.event.seq).find(|c| c.healthy) {
            Some(healthy) => {
                evidence.push(Evidence::at(healthy.event, healthy.note()));
                format!(
                    "{not_healthy} {} after `{after}` ended; first healthy after {}",
                    format_duration_us(within_us),
                    since(healthy.event.offset_us)
                )
            }
            None => format!(
                "{not_healthy} {} after `{after}` ended; {}",
                format_duration_us(within_us),
                if at_end.is_some() { "never healthy again" } else { "never healthy" }
            ),
        }
    };
    Judged::new(CheckStatus::Failed, expected, summary.clone(), summary).with_evidence(evidence)
}

/// `healthy-throughout: { service, step }`.
///
/// Between the step's `step-started` and `step-ended`, the service's health state is never
/// unhealthy: neither the state at the start (the last `health-changed` before it, however long
/// before) nor any change during the step. Evidence is the first unhealthy state. A step that
/// never ran is not evaluated; a step that never finished (or was interrupted) fails if an
/// unhealthy state was already seen and is not evaluated otherwise. Without any health
/// observation of the service up to the step's end, it is not evaluated.
fn healthy_throughout(journal: &Timeline<'_>, service: &str, step: &str) -> Judged {
    let expected = format!("`{service}` never unhealthy while `{step}` runs");
    let judge = SpanJudge {
        if_unhealthy: CheckStatus::Failed,
        if_healthy: CheckStatus::Passed,
        starts_during: false,
    };
    health_during_step(journal, service, step, expected, &judge)
}

/// `unhealthy-during: { service, step [, starts-during] }`.
///
/// At least one unhealthy state within the step's span: the state at its start (the last
/// `health-changed` before it) counts, as does any change during it. Evidence is the first
/// unhealthy state; one that began before the step says so ("unhealthy since 500ms before `pause
/// db` started"). With `starts-during: true` the state at the start does not count: the
/// unhealthiness must begin inside the step (a change to unhealthy recorded after its
/// `step-started`). A step that never ran is not evaluated; a step that never finished (or was
/// interrupted) passes if an unhealthy state was already seen and is not evaluated otherwise.
/// Without any health observation of the service up to the step's end, it is not evaluated.
fn unhealthy_during(
    journal: &Timeline<'_>,
    service: &str,
    step: &str,
    starts_during: bool,
) -> Judged {
    let expected = if starts_during {
        format!("`{service}` becomes unhealthy at least once while `{step}` runs")
    } else {
        format!("`{service}` unhealthy at least once while `{step}` runs")
    };
    let judge = SpanJudge {
        if_unhealthy: CheckStatus::Passed,
        if_healthy: CheckStatus::Failed,
        starts_during,
    };
    health_during_step(journal, service, step, expected, &judge)
}

/// How [`health_during_step`] judges: `if_unhealthy` when an unhealthy state was seen in the span
/// and `if_healthy` when the whole span was observed healthy (the two checks differ only in which
/// of those is a pass); with `starts_during`, the state at the step's start does not count.
struct SpanJudge {
    if_unhealthy: CheckStatus,
    if_healthy: CheckStatus,
    starts_during: bool,
}

/// The health of `service` over `step`'s span, judged as `judge` says.
fn health_during_step(
    journal: &Timeline<'_>,
    service: &str,
    step: &str,
    expected: String,
    judge: &SpanJudge,
) -> Judged {
    let SpanJudge { if_unhealthy, if_healthy, starts_during } = *judge;
    let span = match journal.step_span(step) {
        Ok(span) => span,
        Err((summary, evidence)) => {
            return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
                .with_evidence(evidence);
        }
    };
    let mut states = journal.health_in_span(service, &span);
    let mut evidence = span.evidence(step);
    let mut already = None;
    if starts_during && let Some(at_start) = states.at_start.filter(|state| !state.healthy) {
        // Unhealthy already: what counts is a change to unhealthy after a recovery in the step.
        let since = span.start.offset_us.saturating_sub(at_start.event.offset_us);
        evidence.push(Evidence::at(
            at_start.event,
            format!(
                "unhealthy since {} before `{step}` started (does not count): {}",
                format_duration_us(since),
                at_start.detail
            ),
        ));
        states.during.retain(|state| state.event.seq > at_start.event.seq);
        let first_recovery = states.during.iter().position(|state| state.healthy);
        states.during.drain(..first_recovery.unwrap_or(states.during.len()));
        states.at_start = None;
        already = Some(format_duration_us(since));
    }
    if let Some(unhealthy) = states.first_unhealthy() {
        evidence.push(Evidence::at(unhealthy.event, span.evidence_note(unhealthy, step)));
        let summary = format!("{}: {}", span.describe_moment(unhealthy, step), unhealthy.detail);
        let observed = format!("{}{}", summary, span.step_failure_suffix());
        return Judged::new(if_unhealthy, expected, summary, observed).with_evidence(evidence);
    }
    if let Some(since) = already {
        let summary = format!(
            "unhealthy since {since} before `{step}` started; no unhealthiness began inside it"
        );
        if !span.complete() {
            let how = if span.end.is_some() { "was interrupted" } else { "never ended" };
            let summary = format!("`{step}` {how}; {summary} so far");
            return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
                .with_evidence(evidence);
        }
        let observed = format!("{summary}{}", span.step_failure_suffix());
        return Judged::new(if_healthy, expected, summary, observed).with_evidence(evidence);
    }
    if let Some((summary, observed)) = states.unsettled(service, step, &span) {
        return Judged::new(CheckStatus::NotEvaluated, expected, summary, observed)
            .with_evidence(evidence);
    }
    let summary = format!("healthy throughout `{step}` ({})", span.length());
    let observed = format!("{summary}{}", span.step_failure_suffix());
    Judged::new(if_healthy, expected, summary, observed).with_evidence(evidence)
}

/// `probe-passed: STEP`.
///
/// The `probe-result` recorded for the probe step (`context: step`) is ok; should the journal
/// hold several, all must be. Not evaluated when there is none (the step never ran, or stopped
/// before its probe answered).
fn probe_passed(journal: &Timeline<'_>, step: &str) -> Judged {
    let expected = format!("the probe of `{step}` meets its expectation");
    let results: Vec<ProbeView<'_>> = journal
        .probe_results()
        .filter(|p| matches!(p.context, ProbeContext::Step { step: s } if s == step))
        .collect();
    if results.is_empty() {
        let (summary, evidence) = match journal.step_end(step) {
            StepEnd::Ended(end) => (
                format!("`{step}` recorded no probe result"),
                vec![Evidence::at(end.event, format!("`{step}` ended"))],
            ),
            other => other.why_not_ended(step),
        };
        return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
            .with_evidence(evidence);
    }
    if let Some(failed) = results.iter().find(|p| !p.ok) {
        let evidence = results
            .iter()
            .filter(|p| !p.ok)
            .map(|p| Evidence::at(p.event, p.failure_note()))
            .collect();
        let summary = failed.failure_note();
        return Judged::new(CheckStatus::Failed, expected, summary.clone(), summary)
            .with_evidence(evidence);
    }
    let first = &results[0];
    let summary = match first.status {
        Some(status) => format!(
            "probe `{}`: status {status} in {}",
            first.probe,
            format_duration_us(first.latency_us)
        ),
        None => format!("probe `{}`: ok in {}", first.probe, format_duration_us(first.latency_us)),
    };
    let evidence =
        results.iter().map(|p| Evidence::at(p.event, format!("probe `{}`: ok", p.probe))).collect();
    Judged::new(CheckStatus::Passed, expected, summary.clone(), summary).with_evidence(evidence)
}

/// `probe-failed: STEP`: `probe-passed` turned around — passed when a probe result of the step
/// failed, failed when every one met its expectation, not evaluated as `probe-passed` is.
fn probe_failed(journal: &Timeline<'_>, step: &str) -> Judged {
    let mut judged = probe_passed(journal, step);
    judged.expected = format!("the probe of `{step}` fails its expectation");
    judged.status = match judged.status {
        CheckStatus::Passed => CheckStatus::Failed,
        CheckStatus::Failed => CheckStatus::Passed,
        CheckStatus::NotEvaluated => CheckStatus::NotEvaluated,
    };
    judged
}

/// Read-only views over a journal that the checks share.
struct Timeline<'a> {
    events: &'a [Event],
    /// `seq` of `phase-started: teardown`, from which health observations no longer count.
    teardown_seq: Option<u64>,
}

struct ProbeView<'a> {
    event: &'a Event,
    probe: &'a str,
    context: &'a ProbeContext,
    ok: bool,
    status: Option<u16>,
    latency_us: u64,
    error: Option<&'a str>,
}

impl ProbeView<'_> {
    fn failure_note(&self) -> String {
        let what = match (self.error, self.status) {
            (Some(error), _) => error.to_owned(),
            (None, Some(status)) => format!("status {status}"),
            (None, None) => "failed".to_owned(),
        };
        format!("probe `{}`: {what}", self.probe)
    }
}

#[derive(Clone, Copy)]
struct HealthView<'a> {
    event: &'a Event,
    healthy: bool,
    detail: &'a str,
}

impl HealthView<'_> {
    fn note(&self) -> String {
        let state = if self.healthy { "healthy" } else { "unhealthy" };
        if self.detail.is_empty() { state.to_owned() } else { format!("{state}: {}", self.detail) }
    }
}

struct EndView<'a> {
    event: &'a Event,
    outcome: Outcome,
    error: Option<&'a str>,
}

/// Where a step got to.
enum StepEnd<'a> {
    NeverStarted,
    Started(&'a Event),
    Ended(EndView<'a>),
}

impl StepEnd<'_> {
    /// Why a check that needs the step's end cannot be evaluated.
    fn why_not_ended(&self, step: &str) -> (String, Vec<Evidence>) {
        match self {
            StepEnd::NeverStarted => (format!("`{step}` never ran"), Vec::new()),
            StepEnd::Started(start) => (
                format!("`{step}` started but never ended"),
                vec![Evidence::at(start, format!("`{step}` started"))],
            ),
            StepEnd::Ended(end) => (
                format!("`{step}` ended"),
                vec![Evidence::at(end.event, format!("`{step}` ended"))],
            ),
        }
    }
}

/// A step's span in the journal; `end` is `None` when it never finished.
struct Span<'a> {
    start: &'a Event,
    end: Option<EndView<'a>>,
}

impl Span<'_> {
    /// Whether the span covers the whole step (ended, not interrupted).
    fn complete(&self) -> bool {
        matches!(&self.end, Some(end) if end.outcome != Outcome::Interrupted)
    }

    fn evidence(&self, step: &str) -> Vec<Evidence> {
        let mut evidence = vec![Evidence::at(self.start, format!("`{step}` started"))];
        if let Some(end) = &self.end {
            let note = match end.outcome {
                Outcome::Ok => format!("`{step}` ended"),
                Outcome::Failed => format!("`{step}` failed"),
                Outcome::Interrupted => format!("`{step}` interrupted"),
                Outcome::Skipped => match end.error {
                    Some(why) => format!("`{step}` {why}"),
                    None => format!("`{step}` skipped"),
                },
            };
            evidence.push(Evidence::at(end.event, note));
        }
        evidence
    }

    fn describe_moment(&self, state: &HealthView<'_>, step: &str) -> String {
        if state.event.seq < self.start.seq {
            let before = self.start.offset_us.saturating_sub(state.event.offset_us);
            format!("unhealthy when `{step}` started (since {} before)", format_duration_us(before))
        } else {
            let into = state.event.offset_us.saturating_sub(self.start.offset_us);
            format!("unhealthy {} into `{step}`", format_duration_us(into))
        }
    }

    /// The evidence note of an unhealthy state: one from before the step says since when.
    fn evidence_note(&self, state: &HealthView<'_>, step: &str) -> String {
        if state.event.seq < self.start.seq {
            let before = self.start.offset_us.saturating_sub(state.event.offset_us);
            format!(
                "unhealthy since {} before `{step}` started: {}",
                format_duration_us(before),
                state.detail
            )
        } else {
            state.note()
        }
    }

    fn length(&self) -> String {
        match &self.end {
            Some(end) => {
                format_duration_us(end.event.offset_us.saturating_sub(self.start.offset_us))
            }
            None => "not finished".to_owned(),
        }
    }

    /// " (the step failed: ...)" when it did: a failed fault explains a surprising verdict.
    fn step_failure_suffix(&self) -> String {
        match &self.end {
            Some(EndView { outcome: Outcome::Failed, error: Some(error), .. }) => {
                format!(" (the step failed: {error})")
            }
            Some(EndView { outcome: Outcome::Failed, error: None, .. }) => {
                " (the step failed)".to_owned()
            }
            _ => String::new(),
        }
    }
}

/// A service's health over a step's span: the state at its start and the changes during it.
#[derive(Clone)]
struct SpanHealth<'a> {
    at_start: Option<HealthView<'a>>,
    during: Vec<HealthView<'a>>,
}

impl SpanHealth<'_> {
    fn first_unhealthy(&self) -> Option<&HealthView<'_>> {
        self.at_start.iter().chain(self.during.iter()).find(|state| !state.healthy)
    }

    /// When no unhealthy state was seen, why the journal still cannot settle the check, if it
    /// cannot: as (summary, observed).
    fn unsettled(&self, service: &str, step: &str, span: &Span<'_>) -> Option<(String, String)> {
        if self.at_start.is_none() && self.during.is_empty() {
            let summary = format!("no health observation of `{service}` up to the end of `{step}`");
            return Some((summary.clone(), summary));
        }
        if !span.complete() {
            let how = if span.end.is_some() { "was interrupted" } else { "never ended" };
            let summary = format!("`{step}` {how}");
            let observed = format!("`{step}` {how}; `{service}` healthy until then");
            return Some((summary, observed));
        }
        None
    }
}

impl<'a> Timeline<'a> {
    fn new(events: &'a [Event]) -> Self {
        let teardown_seq = events
            .iter()
            .find(|e| matches!(e.kind, EventKind::PhaseStarted { phase: Phase::Teardown }))
            .map(|e| e.seq);
        Timeline { events, teardown_seq }
    }

    /// The offset up to which health was observed: teardown's start, or the last event.
    fn observed_until_us(&self) -> u64 {
        let last = self
            .events
            .iter()
            .take_while(|e| self.teardown_seq.is_none_or(|seq| e.seq <= seq))
            .last();
        last.map_or(0, |e| e.offset_us)
    }

    fn probe_results(&self) -> impl Iterator<Item = ProbeView<'a>> {
        self.events.iter().filter_map(|event| match &event.kind {
            EventKind::ProbeResult { probe, context, ok, status, latency_us, error, .. } => {
                Some(ProbeView {
                    event,
                    probe,
                    context,
                    ok: *ok,
                    status: *status,
                    latency_us: *latency_us,
                    error: error.as_deref(),
                })
            }
            _ => None,
        })
    }

    /// Health changes of `service` before teardown, in journal order.
    fn health(&self, service: &str) -> impl Iterator<Item = HealthView<'a>> {
        self.events
            .iter()
            .take_while(|e| self.teardown_seq.is_none_or(|seq| e.seq < seq))
            .filter_map(move |event| match &event.kind {
                EventKind::HealthChanged { service: s, healthy, detail, .. } if s == service => {
                    Some(HealthView { event, healthy: *healthy, detail })
                }
                _ => None,
            })
    }

    /// The service's state just before event `seq`: its last change recorded earlier.
    fn health_before(&self, service: &str, seq: u64) -> Option<HealthView<'a>> {
        self.health(service).take_while(|h| h.event.seq < seq).last()
    }

    /// The service's changes recorded after event `seq`.
    fn health_after(&self, service: &str, seq: u64) -> impl Iterator<Item = HealthView<'a>> {
        self.health(service).filter(move |h| h.event.seq > seq)
    }

    fn health_in_span(&self, service: &str, span: &Span<'a>) -> SpanHealth<'a> {
        let start = span.start.seq;
        let end = span.end.as_ref().map(|end| end.event.seq);
        SpanHealth {
            at_start: self.health_before(service, start),
            during: self
                .health_after(service, start)
                .take_while(|h| end.is_none_or(|end| h.event.seq < end))
                .collect(),
        }
    }

    fn step_start(&self, name: &str) -> Option<&'a Event> {
        self.events
            .iter()
            .find(|e| matches!(&e.kind, EventKind::StepStarted { step, .. } if step == name))
    }

    fn step_end(&self, name: &str) -> StepEnd<'a> {
        let ended = self.events.iter().find_map(|event| match &event.kind {
            EventKind::StepEnded { step, outcome, error, .. } if step == name => {
                Some(EndView { event, outcome: *outcome, error: error.as_deref() })
            }
            _ => None,
        });
        match (ended, self.step_start(name)) {
            (Some(end), _) => StepEnd::Ended(end),
            (None, Some(start)) => StepEnd::Started(start),
            (None, None) => StepEnd::NeverStarted,
        }
    }

    fn step_span(&self, name: &str) -> Result<Span<'a>, (String, Vec<Evidence>)> {
        let Some(start) = self.step_start(name) else {
            return Err((format!("`{name}` never ran"), Vec::new()));
        };
        let end = match self.step_end(name) {
            StepEnd::Ended(end) => Some(end),
            _ => None,
        };
        Ok(Span { start, end })
    }
}

/// A duration for people: `450ms`, `3.2s`, `10.001s`, `1m30s`, `2m3.5s` (millisecond precision).
///
/// Verdicts and reports format offsets and durations here rather than through the scenario's
/// `format_duration`, which writes what a scenario file can read back.
pub(crate) fn format_duration_us(us: u64) -> String {
    let millis = us.saturating_add(500) / 1_000;
    if millis < 1_000 {
        return format!("{millis}ms");
    }
    let (minutes, millis) = (millis / 60_000, millis % 60_000);
    let (seconds, fraction) = (millis / 1_000, millis % 1_000);
    let seconds = if fraction == 0 {
        format!("{seconds}s")
    } else {
        let digits = format!("{fraction:03}");
        format!("{seconds}.{}s", digits.trim_end_matches('0'))
    };
    if minutes == 0 { seconds } else { format!("{minutes}m{seconds}") }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::fixtures::*;
    use super::*;

    use CheckStatus::{Failed, NotEvaluated, Passed};

    #[test]
    fn steady_state() {
        let before = steady(SteadyPhase::Before);
        let after = steady(SteadyPhase::After);
        check_cases(
            ExpectationKind::SteadyState(SteadyPhase::Before),
            vec![
                case(
                    "every probe ok",
                    Passed,
                    "2 probe results ok",
                    vec![
                        (100, probe_result("billing answers", before.clone(), 200)),
                        (110, probe_result("db answers", before.clone(), 200)),
                    ],
                ),
                case(
                    "one failure fails",
                    Failed,
                    "probe `db answers`: status 503, expected 200",
                    vec![
                        (100, probe_result("billing answers", before.clone(), 200)),
                        (110, probe_result("db answers", before.clone(), 503)),
                    ],
                ),
                case(
                    "several failures",
                    Failed,
                    "2 probe results failed; first probe `billing answers`: status 500, expected 200",
                    vec![
                        (100, probe_result("billing answers", before.clone(), 500)),
                        (110, probe_result("db answers", before.clone(), 503)),
                    ],
                ),
                case(
                    "results of the other phase do not count",
                    NotEvaluated,
                    "no steady-state probe ran before the steps",
                    vec![(100, probe_result("billing answers", after.clone(), 200))],
                ),
                case(
                    "step probes do not count",
                    NotEvaluated,
                    "no steady-state probe ran before the steps",
                    vec![(100, probe_result("billing answers", in_step("probe"), 503))],
                ),
                case(
                    "nothing recorded",
                    NotEvaluated,
                    "no steady-state probe ran before the steps",
                    vec![],
                ),
                case(
                    "stopped mid-phase",
                    NotEvaluated,
                    "probe `db answers` never ran",
                    vec![(100, probe_result("billing answers", before.clone(), 200))],
                ),
            ],
        );
    }

    #[test]
    fn steady_state_points_at_each_failed_result() {
        let before = steady(SteadyPhase::Before);
        let events = journal(&[
            (100, probe_result("billing answers", before.clone(), 503)),
            (110, probe_result("db answers", before.clone(), 200)),
            (120, probe_result("billing answers", before, 502)),
        ]);
        let verdict =
            evaluate(&scenario(vec![ExpectationKind::SteadyState(SteadyPhase::Before)]), &events)
                .remove(0);
        assert_eq!(
            verdict.evidence,
            vec![
                Evidence {
                    offset_us: 100_000,
                    seq: 0,
                    note: "probe `billing answers`: status 503, expected 200".into()
                },
                Evidence {
                    offset_us: 120_000,
                    seq: 2,
                    note: "probe `billing answers`: status 502, expected 200".into()
                },
            ]
        );
        assert_eq!(verdict.observed, "2 of 3 probe results failed");
    }

    #[test]
    fn healthy_within() {
        let step = "start billing";
        let run_from = |initial: EventKind, extra: Vec<(u64, EventKind)>| {
            let mut timeline =
                vec![(500, initial), (1_000, started(1, step)), (2_000, ended(1, step))];
            timeline.extend(extra);
            timeline
        };
        let run = |extra| run_from(down("billing"), extra);
        let run_healthy = |extra| run_from(up("billing"), extra);
        check_cases(
            ExpectationKind::HealthyWithin {
                service: "billing".into(),
                after: step.into(),
                within: Duration::from_secs(10),
            },
            vec![
                case(
                    "recovers in time",
                    Passed,
                    "healthy 3.2s after `start billing` ended",
                    run(vec![(5_200, up("billing")), (20_000, later())]),
                ),
                case(
                    "a change exactly at the deadline passes",
                    Passed,
                    "healthy 10s after `start billing` ended",
                    run(vec![(12_000, up("billing"))]),
                ),
                case(
                    "a change just after the deadline fails",
                    Failed,
                    "still unhealthy 10s after `start billing` ended; first healthy after 10.001s",
                    run(vec![(12_001, up("billing"))]),
                ),
                case(
                    "late recovery",
                    Failed,
                    "still unhealthy 10s after `start billing` ended; first healthy after 12.1s",
                    run(vec![(14_100, up("billing"))]),
                ),
                case(
                    "never healthy again",
                    Failed,
                    "still unhealthy 10s after `start billing` ended; never healthy again",
                    run(vec![(13_000, later())]),
                ),
                case(
                    "the journal ends before the deadline",
                    NotEvaluated,
                    "observation stopped 2s after `start billing` ended, before the 10s deadline; \
                     still unhealthy until then",
                    run(vec![(4_000, later())]),
                ),
                case(
                    "teardown ends observation",
                    NotEvaluated,
                    "observation stopped 1s after `start billing` ended, before the 10s deadline; \
                     still unhealthy until then",
                    run(vec![(3_000, teardown()), (4_000, up("billing")), (13_000, later())]),
                ),
                case(
                    "healthy at the end and stays so",
                    Passed,
                    "already healthy when `start billing` ended",
                    run_healthy(vec![(13_000, later())]),
                ),
                case(
                    "a change at the end's offset recorded before it counts",
                    Passed,
                    "already healthy when `start billing` ended",
                    vec![
                        (500, down("billing")),
                        (1_000, started(1, step)),
                        (2_000, up("billing")),
                        (2_000, ended(1, step)),
                        (13_000, later()),
                    ],
                ),
                case(
                    "teardown's unhealthy changes are ignored",
                    Passed,
                    "already healthy when `start billing` ended",
                    run_healthy(vec![(13_000, teardown()), (13_100, down("billing"))]),
                ),
                case(
                    "healthy at the end, but teardown comes before the deadline",
                    NotEvaluated,
                    "observation stopped 1s after `start billing` ended, before the 10s deadline; \
                     healthy until then",
                    run_healthy(vec![(3_000, teardown()), (3_100, down("billing"))]),
                ),
                case(
                    "a healthy state from before a restart, observation ended early",
                    NotEvaluated,
                    "observation stopped 500ms after `start billing` ended, before the 10s \
                     deadline; healthy until then",
                    run_healthy(vec![(2_500, later())]),
                ),
                case(
                    "recovered, then the journal ends before the deadline",
                    NotEvaluated,
                    "observation stopped 3s after `start billing` ended, before the 10s deadline; \
                     healthy until then",
                    run(vec![(3_000, up("billing")), (5_000, later())]),
                ),
                case(
                    "healthy early but unhealthy again at the deadline",
                    Failed,
                    "healthy 1s after `start billing` ended but unhealthy again after 4s; \
                     still unhealthy at the 10s deadline",
                    run(vec![(3_000, up("billing")), (6_000, down("billing")), (13_000, later())]),
                ),
                case(
                    "flapping, then healthy for good before the deadline",
                    Passed,
                    "healthy 5s after `start billing` ended",
                    run(vec![
                        (3_000, up("billing")),
                        (4_000, down("billing")),
                        (7_000, up("billing")),
                        (13_000, later()),
                    ]),
                ),
                case(
                    "a stale healthy state that dips then recovers",
                    Passed,
                    "healthy 2s after `start billing` ended",
                    run_healthy(vec![
                        (2_300, down("billing")),
                        (4_000, up("billing")),
                        (13_000, later()),
                    ]),
                ),
                case(
                    "a stale healthy state that never recovers",
                    Failed,
                    "still unhealthy 10s after `start billing` ended; never healthy again",
                    run_healthy(vec![(2_300, down("billing")), (13_000, later())]),
                ),
                case(
                    "a dip after the deadline does not matter",
                    Passed,
                    "already healthy when `start billing` ended",
                    run_healthy(vec![(12_001, down("billing"))]),
                ),
                case(
                    "other services do not count",
                    Failed,
                    "still unhealthy 10s after `start billing` ended; never healthy again",
                    run(vec![(3_000, up("db")), (13_000, later())]),
                ),
                case(
                    "no observation at all",
                    Failed,
                    "not healthy 10s after `start billing` ended; never healthy",
                    vec![(1_000, started(1, step)), (2_000, ended(1, step)), (13_000, later())],
                ),
                case(
                    "the step never ended",
                    NotEvaluated,
                    "`start billing` started but never ended",
                    vec![(500, down("billing")), (1_000, started(1, step)), (9_000, up("billing"))],
                ),
                case(
                    "the step never ran",
                    NotEvaluated,
                    "`start billing` never ran",
                    vec![(500, up("billing"))],
                ),
                case(
                    "the step was interrupted",
                    NotEvaluated,
                    "`start billing` was interrupted",
                    vec![
                        (1_000, started(1, step)),
                        (2_000, ended_with(1, step, Outcome::Interrupted, None)),
                        (3_000, up("billing")),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn observation_goes_on_to_the_latest_healthy_within_deadline() {
        let within = |after: &str, secs| ExpectationKind::HealthyWithin {
            service: "billing".into(),
            after: after.into(),
            within: Duration::from_secs(secs),
        };
        let scenario = scenario(vec![
            within("start billing", 10),
            within("pause db", 5),
            within("never ran", 60),
            ExpectationKind::ProbePassed { step: "probe".into() },
        ]);
        let events = journal(&[
            (1_000, started(1, "pause db")),
            (9_000, ended(1, "pause db")),
            (10_000, started(2, "start billing")),
            (11_000, ended(2, "start billing")),
        ]);
        assert_eq!(observe_until_us(&scenario, &events), Some(21_000_000));
        assert_eq!(observe_until_us(&scenario, &events[..2]), Some(14_000_000));
        assert_eq!(observe_until_us(&scenario, &[]), None);
    }

    #[test]
    fn healthy_within_evidence_points_at_the_end_and_the_recovery() {
        let step = "start billing";
        let events = journal(&[
            (500, down("billing")),
            (1_000, started(1, step)),
            (2_000, ended(1, step)),
            (5_200, up("billing")),
        ]);
        let kind = ExpectationKind::HealthyWithin {
            service: "billing".into(),
            after: step.into(),
            within: Duration::from_secs(10),
        };
        let verdict = evaluate(&scenario(vec![kind]), &events).remove(0);
        let seqs: Vec<(u64, &str)> =
            verdict.evidence.iter().map(|e| (e.seq, e.note.as_str())).collect();
        assert_eq!(
            seqs,
            vec![
                (0, "unhealthy: status 503"),
                (2, "`start billing` ended"),
                (3, "healthy: status 200")
            ]
        );
        assert_eq!(verdict.expected, "`billing` healthy within 10s after `start billing` ends");
    }

    #[test]
    fn healthy_throughout() {
        let step = "pause db";
        let span = |before: Vec<(u64, EventKind)>, during: Vec<(u64, EventKind)>| {
            let mut timeline = before;
            timeline.push((1_000, started(2, step)));
            timeline.extend(during);
            timeline.push((5_000, ended(2, step)));
            timeline
        };
        check_cases(
            ExpectationKind::HealthyThroughout { service: "billing".into(), step: step.into() },
            vec![
                case(
                    "healthy all along",
                    Passed,
                    "healthy throughout `pause db` (4s)",
                    span(vec![(500, up("billing"))], vec![]),
                ),
                case(
                    "unhealthy during the step",
                    Failed,
                    "unhealthy 1.2s into `pause db`: status 503",
                    span(
                        vec![(500, up("billing"))],
                        vec![(2_200, down("billing")), (3_000, up("billing"))],
                    ),
                ),
                case(
                    "a change before the step counts as the state at its start",
                    Failed,
                    "unhealthy when `pause db` started (since 500ms before): status 503",
                    span(vec![(500, down("billing"))], vec![(3_000, up("billing"))]),
                ),
                case(
                    "recovered before the step started",
                    Passed,
                    "healthy throughout `pause db` (4s)",
                    span(vec![(200, down("billing")), (800, up("billing"))], vec![]),
                ),
                case(
                    "a change at the start's offset, recorded after it, is during the step",
                    Failed,
                    "unhealthy 0ms into `pause db`: status 503",
                    span(vec![(500, up("billing"))], vec![(1_000, down("billing"))]),
                ),
                case(
                    "unhealthy only after the step",
                    Passed,
                    "healthy throughout `pause db` (4s)",
                    {
                        let mut timeline = span(vec![(500, up("billing"))], vec![]);
                        timeline.push((5_000, down("billing")));
                        timeline
                    },
                ),
                case(
                    "other services do not count",
                    Passed,
                    "healthy throughout `pause db` (4s)",
                    span(vec![(500, up("billing"))], vec![(2_000, down("db"))]),
                ),
                case(
                    "no health observation",
                    NotEvaluated,
                    "no health observation of `billing` up to the end of `pause db`",
                    span(vec![], vec![]),
                ),
                case(
                    "the step never ran",
                    NotEvaluated,
                    "`pause db` never ran",
                    vec![(500, up("billing"))],
                ),
                case(
                    "the step never ended, healthy so far",
                    NotEvaluated,
                    "`pause db` never ended",
                    vec![(500, up("billing")), (1_000, started(2, step)), (3_000, later())],
                ),
                case(
                    "the step never ended, unhealthy already",
                    Failed,
                    "unhealthy 1s into `pause db`: status 503",
                    vec![(500, up("billing")), (1_000, started(2, step)), (2_000, down("billing"))],
                ),
                case(
                    "the step was interrupted",
                    NotEvaluated,
                    "`pause db` was interrupted",
                    vec![
                        (500, up("billing")),
                        (1_000, started(2, step)),
                        (2_000, ended_with(2, step, Outcome::Interrupted, None)),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn unhealthy_during() {
        let step = "pause db";
        let span = |before: Vec<(u64, EventKind)>, during: Vec<(u64, EventKind)>| {
            let mut timeline = before;
            timeline.push((1_000, started(2, step)));
            timeline.extend(during);
            timeline.push((5_000, ended(2, step)));
            timeline
        };
        check_cases(
            ExpectationKind::UnhealthyDuring {
                service: "billing".into(),
                step: step.into(),
                starts_during: false,
            },
            vec![
                case(
                    "unhealthy during the step",
                    Passed,
                    "unhealthy 1.2s into `pause db`: status 503",
                    span(
                        vec![(500, up("billing"))],
                        vec![(2_200, down("billing")), (3_000, up("billing"))],
                    ),
                ),
                case(
                    "the state at the start counts",
                    Passed,
                    "unhealthy when `pause db` started (since 500ms before): status 503",
                    span(vec![(500, down("billing"))], vec![(3_000, up("billing"))]),
                ),
                case(
                    "healthy throughout",
                    Failed,
                    "healthy throughout `pause db` (4s)",
                    span(vec![(500, up("billing"))], vec![]),
                ),
                case(
                    "unhealthy before the step but recovered before it started",
                    Failed,
                    "healthy throughout `pause db` (4s)",
                    span(vec![(200, down("billing")), (800, up("billing"))], vec![]),
                ),
                case(
                    "unhealthy only after the step",
                    Failed,
                    "healthy throughout `pause db` (4s)",
                    {
                        let mut timeline = span(vec![(500, up("billing"))], vec![]);
                        timeline.push((6_000, down("billing")));
                        timeline
                    },
                ),
                case(
                    "no health observation",
                    NotEvaluated,
                    "no health observation of `billing` up to the end of `pause db`",
                    span(vec![], vec![(2_000, down("db"))]),
                ),
                case("the step never ran", NotEvaluated, "`pause db` never ran", vec![]),
                case(
                    "the step never ended, unhealthy already",
                    Passed,
                    "unhealthy 1s into `pause db`: status 503",
                    vec![(500, up("billing")), (1_000, started(2, step)), (2_000, down("billing"))],
                ),
                case(
                    "the step never ended, healthy so far",
                    NotEvaluated,
                    "`pause db` never ended",
                    vec![(500, up("billing")), (1_000, started(2, step))],
                ),
            ],
        );
    }

    #[test]
    fn unhealthy_during_says_when_the_unhealthiness_began() {
        let step = "pause db";
        let kind = |starts_during| ExpectationKind::UnhealthyDuring {
            service: "billing".into(),
            step: step.into(),
            starts_during,
        };
        let before_the_step = journal(&[
            (500, down("billing")),
            (1_000, started(2, step)),
            (3_000, up("billing")),
            (5_000, ended(2, step)),
        ]);
        let verdict = evaluate(&scenario(vec![kind(false)]), &before_the_step).remove(0);
        assert_eq!(verdict.status, Passed);
        let notes: Vec<&str> = verdict.evidence.iter().map(|e| e.note.as_str()).collect();
        assert_eq!(
            notes,
            vec![
                "unhealthy since 500ms before `pause db` started: status 503",
                "`pause db` started",
                "`pause db` ended"
            ]
        );
        let span = |before: Vec<(u64, EventKind)>, during: Vec<(u64, EventKind)>| {
            let mut timeline = before;
            timeline.push((1_000, started(2, step)));
            timeline.extend(during);
            timeline.push((5_000, ended(2, step)));
            timeline
        };
        check_cases(
            kind(true),
            vec![
                case(
                    "unhealthy before the step only does not count",
                    Failed,
                    "unhealthy since 500ms before `pause db` started; no unhealthiness began \
                     inside it",
                    span(vec![(500, down("billing"))], vec![(3_000, up("billing"))]),
                ),
                case(
                    "unhealthy before and still unhealthy does not count",
                    Failed,
                    "unhealthy since 500ms before `pause db` started; no unhealthiness began \
                     inside it",
                    span(vec![(500, down("billing"))], vec![]),
                ),
                case(
                    "recovered in the step, then unhealthy again",
                    Passed,
                    "unhealthy 3s into `pause db`: status 503",
                    span(
                        vec![(500, down("billing"))],
                        vec![(2_000, up("billing")), (4_000, down("billing"))],
                    ),
                ),
                case(
                    "healthy at the start, unhealthy inside",
                    Passed,
                    "unhealthy 1.2s into `pause db`: status 503",
                    span(vec![(500, up("billing"))], vec![(2_200, down("billing"))]),
                ),
                case(
                    "healthy throughout",
                    Failed,
                    "healthy throughout `pause db` (4s)",
                    span(vec![(500, up("billing"))], vec![]),
                ),
                case(
                    "unhealthy before, the step never ended",
                    NotEvaluated,
                    "`pause db` never ended; unhealthy since 500ms before `pause db` started; no \
                     unhealthiness began inside it so far",
                    vec![(500, down("billing")), (1_000, started(2, step))],
                ),
            ],
        );
    }

    #[test]
    fn a_failed_step_is_mentioned_in_what_was_observed() {
        let step = "pause db";
        let events = journal(&[
            (500, up("billing")),
            (1_000, started(2, step)),
            (1_100, ended_with(2, step, Outcome::Failed, Some("no such container"))),
        ]);
        let kind = ExpectationKind::UnhealthyDuring {
            service: "billing".into(),
            step: step.into(),
            starts_during: false,
        };
        let verdict = evaluate(&scenario(vec![kind]), &events).remove(0);
        assert_eq!(verdict.status, Failed);
        assert_eq!(
            verdict.observed,
            "healthy throughout `pause db` (100ms) (the step failed: no such container)"
        );
        let notes: Vec<&str> = verdict.evidence.iter().map(|e| e.note.as_str()).collect();
        assert_eq!(notes, vec!["`pause db` started", "`pause db` failed"]);
    }

    #[test]
    fn probe_passed() {
        let step = "probe billing";
        let tcp_ok = EventKind::ProbeResult {
            probe: "db port".into(),
            context: in_step(step),
            service: "db".into(),
            ok: true,
            status: None,
            latency_us: 3_000,
            error: None,
        };
        check_cases(
            ExpectationKind::ProbePassed { step: step.into() },
            vec![
                case(
                    "ok",
                    Passed,
                    "probe `billing health`: status 200 in 12ms",
                    vec![
                        (1_000, started(3, step)),
                        (1_012, probe_result("billing health", in_step(step), 200)),
                        (1_013, ended(3, step)),
                    ],
                ),
                case(
                    "a tcp probe has no status",
                    Passed,
                    "probe `db port`: ok in 3ms",
                    vec![(1_000, started(3, step)), (1_003, tcp_ok), (1_004, ended(3, step))],
                ),
                case(
                    "failed",
                    Failed,
                    "probe `billing health`: status 503, expected 200",
                    vec![
                        (1_000, started(3, step)),
                        (1_012, probe_result("billing health", in_step(step), 503)),
                        (1_013, ended(3, step)),
                    ],
                ),
                case(
                    "another step's probe does not count",
                    NotEvaluated,
                    "`probe billing` never ran",
                    vec![(1_012, probe_result("billing health", in_step("probe db"), 503))],
                ),
                case(
                    "steady-state probes do not count",
                    NotEvaluated,
                    "`probe billing` never ran",
                    vec![(1_012, probe_result("billing health", steady(SteadyPhase::Before), 200))],
                ),
                case(
                    "ended without a result",
                    NotEvaluated,
                    "`probe billing` recorded no probe result",
                    vec![(1_000, started(3, step)), (1_013, ended(3, step))],
                ),
                case(
                    "interrupted before the answer",
                    NotEvaluated,
                    "`probe billing` started but never ended",
                    vec![(1_000, started(3, step))],
                ),
            ],
        );
    }

    #[test]
    fn one_verdict_per_expectation_in_order() {
        let scenario = scenario(vec![
            ExpectationKind::ProbePassed { step: "probe".into() },
            ExpectationKind::SteadyState(SteadyPhase::After),
            ExpectationKind::HealthyThroughout { service: "billing".into(), step: "pause".into() },
        ]);
        let verdicts = evaluate(&scenario, &[]);
        let heads: Vec<(&str, &str, CheckStatus)> =
            verdicts.iter().map(|v| (v.name.as_str(), v.kind, v.status)).collect();
        assert_eq!(
            heads,
            vec![
                ("check 0", "probe-passed", NotEvaluated),
                ("check 1", "steady-state", NotEvaluated),
                ("check 2", "healthy-throughout", NotEvaluated),
            ]
        );
    }

    #[test]
    fn verdicts_serialize_in_kebab_case() {
        let verdict = Verdict {
            name: "n".into(),
            kind: "probe-passed",
            status: NotEvaluated,
            summary: "s".into(),
            expected: "e".into(),
            observed: "o".into(),
            evidence: vec![Evidence { offset_us: 1, seq: 2, note: "x".into() }],
            channels: Vec::new(),
        };
        assert_eq!(
            serde_json::to_string(&verdict).unwrap(),
            r#"{"name":"n","kind":"probe-passed","status":"not-evaluated","summary":"s","expected":"e","observed":"o","evidence":[{"offset-us":1,"seq":2,"note":"x"}]}"#
        );
    }

    #[test]
    fn durations_read_well() {
        let cases = [
            (0, "0ms"),
            (499, "0ms"),
            (450_000, "450ms"),
            (999_400, "999ms"),
            (1_000_000, "1s"),
            (3_200_000, "3.2s"),
            (10_001_000, "10.001s"),
            (1_250_000, "1.25s"),
            (90_000_000, "1m30s"),
            (123_500_000, "2m3.5s"),
        ];
        for (us, text) in cases {
            assert_eq!(format_duration_us(us), text, "{us}µs");
        }
    }
}
