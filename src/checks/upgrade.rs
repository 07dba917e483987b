//! Upgrade checks — `upgrade-succeeds`, `upgrade-rolled-back`, `restored` — and the per-upgrade
//! figures of the report ([`upgrade_figures`]).
//!
//! They judge the `upgrade` events recorded for a step. The engine names every stage after the
//! upgrade step, including the stages of a rollback that a later, explicit `rollback` step carries
//! out, so "the rollback of upgrade step X" is the first `rollback-started` recorded with step X;
//! `restored` also accepts the name of the `rollback` step itself (the first `rollback-started`
//! recorded while that step ran). An upgrade's **failure** is its `failed` stage; the stage that
//! **failed** is the last stage before it with `ok: false` (`backup`, `migration`, `switched`,
//! `healthy`, `watch`), and the reason is the `failed` stage's detail. A **rollback** failed when
//! its `rolled-back` stage has `ok: false` or its `restore` hook failed.

use serde::Serialize;

use super::traffic::{Rate, RequestView, format_percent};
use super::{CheckStatus, Evidence, HealthView, Judged, StepEnd, Timeline, format_duration_us};
use crate::journal::{Event, EventKind, Outcome, UpgradeStage};

/// One `upgrade` event.
#[derive(Clone, Copy)]
struct StageView<'a> {
    event: &'a Event,
    step: &'a str,
    service: &'a str,
    stage: UpgradeStage,
    ok: bool,
    detail: Option<&'a str>,
}

impl StageView<'_> {
    fn offset_us(&self) -> u64 {
        self.event.offset_us
    }

    fn why(&self) -> &str {
        self.detail.unwrap_or("no reason recorded")
    }

    /// `+3.2s `healthy` failed: not healthy within 30s`, times relative to `origin_us`.
    fn note(&self, origin_us: u64) -> String {
        let at = format!("+{}", format_duration_us(self.offset_us().saturating_sub(origin_us)));
        let failed = if self.ok || self.stage == UpgradeStage::Failed { "" } else { " failed" };
        let name = stage_name(self.stage);
        match self.detail {
            Some(detail) => format!("{at} `{name}`{failed}: {detail}"),
            None => format!("{at} `{name}`{failed}"),
        }
    }
}

/// The stage's name as the journal writes it.
fn stage_name(stage: UpgradeStage) -> &'static str {
    match stage {
        UpgradeStage::Started => "started",
        UpgradeStage::Backup => "backup",
        UpgradeStage::Migration => "migration",
        UpgradeStage::Switched => "switched",
        UpgradeStage::Healthy => "healthy",
        UpgradeStage::Watch => "watch",
        UpgradeStage::Failed => "failed",
        UpgradeStage::Completed => "completed",
        UpgradeStage::RollbackStarted => "rollback-started",
        UpgradeStage::Restore => "restore",
        UpgradeStage::RolledBack => "rolled-back",
    }
}

/// Everything one upgrade step recorded, its rollback included.
struct UpgradeRun<'a> {
    step: &'a str,
    service: &'a str,
    stages: Vec<StageView<'a>>,
    started: Option<StageView<'a>>,
    failed: Option<StageView<'a>>,
    completed: Option<StageView<'a>>,
    rollback: Option<RollbackRun<'a>>,
}

/// The first rollback of an upgrade.
#[derive(Clone, Copy)]
struct RollbackRun<'a> {
    started: StageView<'a>,
    restore_failed: Option<StageView<'a>>,
    done: Option<StageView<'a>>,
}

/// How a rollback came out.
enum RollbackResult<'a> {
    /// `rolled-back` with `ok: true`.
    Done(StageView<'a>),
    /// `rolled-back` with `ok: false`, or a failed `restore` hook.
    Failed { at: StageView<'a>, why: String },
    /// Neither (yet): interrupted, or the journal ends first.
    Unfinished,
}

impl<'a> RollbackRun<'a> {
    fn result(&self) -> RollbackResult<'a> {
        match (self.done, self.restore_failed) {
            (Some(done), _) if !done.ok => {
                RollbackResult::Failed { at: done, why: done.why().to_owned() }
            }
            (_, Some(restore)) => RollbackResult::Failed {
                at: restore,
                why: format!("the restore hook failed: {}", restore.why()),
            },
            (Some(done), None) => RollbackResult::Done(done),
            (None, None) => RollbackResult::Unfinished,
        }
    }

    fn since(&self, stage: StageView<'_>) -> String {
        format_duration_us(stage.offset_us().saturating_sub(self.started.offset_us()))
    }

    /// `rolled back in 3.2s`, `the rollback failed after 2s: ...`, `its rollback never finished`.
    fn describe(&self) -> String {
        match self.result() {
            RollbackResult::Done(done) => format!("rolled back in {}", self.since(done)),
            RollbackResult::Failed { at, why } => {
                format!("the rollback failed after {}: {why}", self.since(at))
            }
            RollbackResult::Unfinished => "its rollback started but never finished".to_owned(),
        }
    }
}

impl<'a> UpgradeRun<'a> {
    /// Where relative times start: the `started` stage, else the first stage recorded.
    fn origin_us(&self) -> u64 {
        self.started.or(self.stages.first().copied()).map_or(0, |s| s.offset_us())
    }

    fn since(&self, us: u64) -> String {
        format_duration_us(us.saturating_sub(self.origin_us()))
    }

    /// `failed at `healthy` after 30s: not healthy within 30s`, when it failed.
    fn failure(&self) -> Option<String> {
        let failed = self.failed?;
        let culprit = self
            .stages
            .iter()
            .take_while(|s| s.event.seq < failed.event.seq)
            .filter(|s| !s.ok && s.stage != UpgradeStage::Started)
            .last();
        let why = failed.detail.or(culprit.and_then(|c| c.detail)).unwrap_or("no reason recorded");
        let after = self.since(failed.offset_us());
        Some(match culprit {
            Some(culprit) => {
                format!("failed at `{}` after {after}: {why}", stage_name(culprit.stage))
            }
            None => format!("failed after {after}: {why}"),
        })
    }

    /// What became of a failed upgrade: `rolled back in 3s`, `not rolled back`, ...
    fn after_failure(&self) -> String {
        match &self.rollback {
            Some(rollback) => rollback.describe(),
            None => "not rolled back".to_owned(),
        }
    }

    /// The last stage before any rollback: how far the upgrade got.
    fn last_stage(&self) -> Option<StageView<'a>> {
        self.stages
            .iter()
            .take_while(|s| self.rollback.is_none_or(|r| s.event.seq < r.started.event.seq))
            .last()
            .copied()
    }

    fn evidence(&self) -> Vec<Evidence> {
        let origin = self.origin_us();
        self.stages.iter().map(|s| Evidence::at(s.event, s.note(origin))).collect()
    }
}

impl<'a> Timeline<'a> {
    fn stages(&self) -> impl Iterator<Item = StageView<'a>> {
        self.events.iter().filter_map(|event| match &event.kind {
            EventKind::Upgrade { step, service, stage, ok, detail } => Some(StageView {
                event,
                step,
                service,
                stage: *stage,
                ok: *ok,
                detail: detail.as_deref(),
            }),
            _ => None,
        })
    }

    /// The stages recorded for `step`, or `None` when there is none.
    fn upgrade(&self, step: &str) -> Option<UpgradeRun<'a>> {
        let stages: Vec<StageView<'a>> = self.stages().filter(|s| s.step == step).collect();
        let first = |stage: UpgradeStage| stages.iter().find(|s| s.stage == stage).copied();
        let rollback = first(UpgradeStage::RollbackStarted).map(|started| {
            let after = |stage: UpgradeStage| {
                stages.iter().find(|s| s.stage == stage && s.event.seq > started.event.seq).copied()
            };
            let done = after(UpgradeStage::RolledBack);
            let restore_failed = stages
                .iter()
                .find(|s| {
                    s.stage == UpgradeStage::Restore
                        && !s.ok
                        && s.event.seq > started.event.seq
                        && done.is_none_or(|d| s.event.seq < d.event.seq)
                })
                .copied();
            RollbackRun { started, restore_failed, done }
        });
        let run = UpgradeRun {
            step: stages.first()?.step,
            service: stages.first()?.service,
            started: first(UpgradeStage::Started),
            failed: first(UpgradeStage::Failed),
            completed: first(UpgradeStage::Completed),
            rollback,
            stages,
        };
        Some(run)
    }

    /// Why `step` has no upgrade to judge.
    fn no_upgrade(&self, step: &str) -> (String, Vec<Evidence>) {
        match self.step_end(step) {
            StepEnd::NeverStarted => (format!("`{step}` never ran"), Vec::new()),
            StepEnd::Started(start) => (
                format!("`{step}` started but recorded no upgrade stage"),
                vec![Evidence::at(start, format!("`{step}` started"))],
            ),
            StepEnd::Ended(end) => (
                format!("`{step}` recorded no upgrade stage"),
                vec![Evidence::at(end.event, format!("`{step}` ended"))],
            ),
        }
    }

    /// Why an upgrade that neither completed nor failed is still open.
    fn unfinished(&self, run: &UpgradeRun<'_>) -> String {
        let step = run.step;
        let last = run.last_stage().map_or(String::new(), |s| {
            format!(" (last stage `{}` at +{})", stage_name(s.stage), run.since(s.offset_us()))
        });
        let how = match self.step_end(step) {
            StepEnd::Ended(end) => match end.outcome {
                Outcome::Interrupted => format!("; `{step}` was interrupted"),
                Outcome::Skipped => format!("; `{step}` was skipped"),
                Outcome::Failed => match end.error {
                    Some(error) => format!("; `{step}` failed: {error}"),
                    None => format!("; `{step}` failed"),
                },
                Outcome::Ok => String::new(),
            },
            _ => format!("; `{step}` never ended"),
        };
        format!("the upgrade never finished{last}{how}")
    }

    /// Whether `step` ended other than by an interruption (so nothing more will happen in it).
    fn ended_for_good(&self, step: &str) -> bool {
        matches!(self.step_end(step), StepEnd::Ended(end) if end.outcome != Outcome::Interrupted)
    }
}

/// `upgrade-succeeds: STEP`.
///
/// Passed when the step recorded an `upgrade` stage `completed` and no `failed`. A rollback the
/// scenario asks for later, on purpose (a `rollback` step), does not make the upgrade itself
/// unsuccessful; it is mentioned. Failed when the upgrade `failed`: the verdict says at which stage
/// and why, and what followed (rolled back, the rollback failed, not rolled back). Not evaluated
/// when the step never ran, recorded no upgrade stage, or stopped before the upgrade completed or
/// failed (interrupted). Evidence: every stage, with its time from the upgrade's start.
pub(super) fn upgrade_succeeds(journal: &Timeline<'_>, step: &str) -> Judged {
    let expected = format!("the upgrade `{step}` completes");
    let Some(run) = journal.upgrade(step) else {
        let (summary, evidence) = journal.no_upgrade(step);
        return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
            .with_evidence(evidence);
    };
    let evidence = run.evidence();
    if let Some(failure) = run.failure() {
        let summary = format!("the upgrade {failure}");
        let observed = format!("{summary}; {}", run.after_failure());
        return Judged::new(CheckStatus::Failed, expected, summary, observed)
            .with_evidence(evidence);
    }
    if let Some(completed) = run.completed {
        let summary = format!("completed in {}", run.since(completed.offset_us()));
        let stages: Vec<&str> = run
            .stages
            .iter()
            .take_while(|s| s.event.seq <= completed.event.seq)
            .map(|s| stage_name(s.stage))
            .collect();
        let mut observed = format!("{summary} (stages: {})", stages.join(", "));
        if let Some(rollback) = &run.rollback {
            observed.push_str(&format!("; rolled back on purpose later: {}", rollback.describe()));
        }
        return Judged::new(CheckStatus::Passed, expected, summary, observed)
            .with_evidence(evidence);
    }
    let summary = journal.unfinished(&run);
    Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
        .with_evidence(evidence)
}

/// `upgrade-rolled-back: STEP`.
///
/// Passed when the upgrade `failed` and its rollback then completed (`rolled-back` with
/// `ok: true`, and no failed `restore` hook) — the rehearsal of a broken release passes when the
/// release is rejected and the rollback works. Failed when:
/// - the upgrade `completed`: the release was not rejected, the broken version stayed;
/// - the **rollback** failed (`rolled-back` with `ok: false`, or its `restore` hook failed): the
///   summary says so first, and only then how the upgrade had failed;
/// - the upgrade failed and its step ended (not interrupted) without a rollback (`on-failure:
///   abort` or `continue`, and no `rollback` step rolled it back).
///
/// Not evaluated when the step never ran, recorded no upgrade stage, or stopped (interrupted)
/// before the upgrade or its rollback finished.
pub(super) fn upgrade_rolled_back(journal: &Timeline<'_>, step: &str) -> Judged {
    let expected = format!("the upgrade `{step}` fails and is rolled back");
    let Some(run) = journal.upgrade(step) else {
        let (summary, evidence) = journal.no_upgrade(step);
        return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
            .with_evidence(evidence);
    };
    let evidence = run.evidence();
    let judged = |status, summary: String, observed: String| {
        Judged::new(status, expected.clone(), summary, observed).with_evidence(evidence.clone())
    };
    let Some(failure) = run.failure() else {
        if let Some(completed) = run.completed {
            let summary = "the release was not rejected: the broken version stayed".to_owned();
            let observed =
                format!("the upgrade completed in {}: {summary}", run.since(completed.offset_us()));
            return judged(CheckStatus::Failed, summary, observed);
        }
        let summary = journal.unfinished(&run);
        return judged(CheckStatus::NotEvaluated, summary.clone(), summary);
    };
    let Some(rollback) = &run.rollback else {
        if journal.ended_for_good(step) {
            let summary = format!("the upgrade {failure}, but was not rolled back");
            return judged(CheckStatus::Failed, summary.clone(), summary);
        }
        let summary = format!("the upgrade {failure}; `{step}` stopped before any rollback");
        return judged(CheckStatus::NotEvaluated, summary.clone(), summary);
    };
    match rollback.result() {
        RollbackResult::Done(_) => {
            let summary = format!("the upgrade {failure}; {}", rollback.describe());
            judged(CheckStatus::Passed, summary.clone(), summary)
        }
        RollbackResult::Failed { at, why } => {
            let summary = format!("the rollback failed: {why}");
            let observed = format!(
                "the rollback failed after {}: {why} (the upgrade had {failure})",
                rollback.since(at)
            );
            judged(CheckStatus::Failed, summary, observed)
        }
        RollbackResult::Unfinished => {
            let summary = format!("the upgrade {failure}; {}", rollback.describe());
            judged(CheckStatus::NotEvaluated, summary.clone(), summary)
        }
    }
}

/// How long after the restore a traffic's success rate is measured, for `restored`.
pub(super) const RESTORED_WINDOW_US: u64 = 5_000_000;

/// How far below its pre-upgrade success rate a restored traffic may be, in percentage points,
/// for `restored`: absorbs the odd failure of a short window (1 request in 100).
pub(super) const RESTORED_TOLERANCE_POINTS: f64 = 1.0;

/// A `restored` entry, durations in µs.
pub(super) struct RestoredSpec<'s> {
    pub(super) service: &'s str,
    pub(super) after: &'s str,
    pub(super) within_us: u64,
    pub(super) version: Option<&'s str>,
    pub(super) traffic: Option<&'s str>,
}

/// One condition of `restored`.
enum Part {
    /// Held; `at_us` is when (µs from the run's start), for conditions that have a moment.
    Met {
        at_us: Option<u64>,
        text: String,
    },
    Failed(String),
    /// The journal cannot settle it.
    Unsettled(String),
}

impl Part {
    /// The latest moment among the conditions met, and `from_us`.
    fn latest(parts: &[Part], from_us: u64) -> u64 {
        parts
            .iter()
            .filter_map(|p| match p {
                Part::Met { at_us, .. } => *at_us,
                _ => None,
            })
            .fold(from_us, u64::max)
    }

    fn text(&self) -> &str {
        match self {
            Part::Met { text, .. } | Part::Failed(text) | Part::Unsettled(text) => text,
        }
    }
}

/// `restored: { service, after, within, version, traffic }`.
///
/// The clock starts at the `rollback-started` of upgrade step `after` — automatic, or carried out
/// by a later `rollback` step (the engine records it under the upgrade's step name; `after` may
/// also name the `rollback` step). Let D be that moment plus `within`. Conditions:
/// - **(a) rolled back**: the rollback's `rolled-back` is `ok` at or before D (a failed rollback
///   or restore hook fails the check, whatever its timing);
/// - **(b) healthy**: the service's health state at D (or at the end of observation, when the
///   journal ends earlier, as `healthy-within` does) is healthy; it counts from the start of that
///   healthy period — the rollback's start when it was already healthy then and no unhealthy
///   change came since. Health changes from teardown on are ignored;
/// - **(c) version** (with `version`): the first `version-observed` of moment `after-rollback`
///   for the upgrade is an answer whose body contains the text, observed at or before D;
/// - **(d) traffic** (with `traffic`): the traffic's success rate is back to its pre-upgrade
///   level. Pre-upgrade rate: the upper median of the success rates of the 5 s windows before the
///   upgrade step started (see [`pre_upgrade_rate`]), so an earlier outage does not lower it.
///   Then windows of
///   5 s ([`RESTORED_WINDOW_US`]) are tried, each starting at the scheduled time of a request at
///   or after the moment (a) and (b) are met (the rollback's start if they are not); the first
///   whose success rate is at least the pre-upgrade rate minus 1 percentage point
///   ([`RESTORED_TOLERANCE_POINTS`]) counts from its start, which must be at or before D. Only
///   whole windows count (ending before the traffic stopped), except when the traffic stopped
///   less than 5 s after that moment: then the one window up to its stop is judged.
///
/// Passed when all hold; the time to restore is the latest of their moments minus the rollback's
/// start. Failed when any does not hold (the summary names the first; `observed` lists every
/// condition). Not evaluated when no rollback of `after` was recorded (never ran, completed, or
/// failed with `on-failure: abort | continue`), or when a condition cannot be settled: the
/// journal ends before D with it unmet, no version was observed, or the traffic has no request
/// before the upgrade (no baseline) or after the restore.
pub(super) fn restored(journal: &Timeline<'_>, spec: &RestoredSpec<'_>) -> Judged {
    let RestoredSpec { service, after, within_us, version, traffic } = *spec;
    let within = format_duration_us(within_us);
    let mut expected =
        format!("within {within} of the rollback of `{after}`: rolled back, `{service}` healthy");
    if let Some(text) = version {
        expected.push_str(&format!(", its version contains `{text}`"));
    }
    if let Some(traffic) = traffic {
        expected.push_str(&format!(
            ", `{traffic}` succeeding at its pre-upgrade rate again (at most {} point below)",
            RESTORED_TOLERANCE_POINTS
        ));
    }
    let (run, rollback) = match find_rollback(journal, after) {
        Ok(found) => found,
        Err((summary, evidence)) => {
            return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
                .with_evidence(evidence);
        }
    };
    let start = rollback.started;
    let t0 = start.offset_us();
    let deadline = t0.saturating_add(within_us);
    let since = |us: u64| format_duration_us(us.saturating_sub(t0));
    let observed_until = journal.observed_until_us();
    let mut evidence = vec![Evidence::at(
        start.event,
        match start.detail {
            Some(detail) => format!("rollback of `{}` started: {detail}", run.step),
            None => format!("rollback of `{}` started", run.step),
        },
    )];

    // (a) The rollback itself.
    let rolled_back = match rollback.result() {
        RollbackResult::Done(done) => {
            evidence.push(Evidence::at(done.event, done.note(t0)));
            if done.offset_us() <= deadline {
                let text = format!("rolled back after {}", since(done.offset_us()));
                Part::Met { at_us: Some(done.offset_us()), text }
            } else {
                Part::Failed(format!("rolled back only after {}", since(done.offset_us())))
            }
        }
        RollbackResult::Failed { at, why } => {
            evidence.push(Evidence::at(at.event, at.note(t0)));
            Part::Failed(format!("the rollback failed after {}: {why}", since(at.offset_us())))
        }
        RollbackResult::Unfinished if observed_until >= deadline => {
            Part::Failed(format!("the rollback had not finished {within} after it started"))
        }
        RollbackResult::Unfinished => Part::Unsettled(format!(
            "the rollback had not finished when observation stopped {} after it started",
            since(observed_until)
        )),
    };

    // (b) The service's health, until the deadline or until the timeline deliberately changes
    // the service again (a later upgrade, or a container action on it), whichever comes first:
    // an outage the next step causes on purpose says nothing about this rollback.
    let next_change = journal
        .events
        .iter()
        .filter(|e| e.seq > start.event.seq)
        .find(|e| match &e.kind {
            EventKind::Upgrade { service: s, stage: UpgradeStage::Started, .. }
            | EventKind::ContainerAction { service: s, undo: false, .. } => s == service,
            _ => false,
        })
        .map(|e| e.offset_us);
    let health_until = next_change.map_or(deadline, |at| at.min(deadline));
    let at_start = journal.health_before(service, start.event.seq);
    let changes: Vec<HealthView<'_>> = journal
        .health_after(service, start.event.seq)
        .take_while(|c| c.event.offset_us <= health_until)
        .collect();
    let healthy = match healthy_since(at_start, &changes, t0) {
        Some((at, change)) => {
            let text = match change {
                None => format!("`{service}` healthy all along"),
                Some(change) => {
                    evidence.push(Evidence::at(change.event, change.note()));
                    format!("`{service}` healthy after {}", since(at))
                }
            };
            Part::Met { at_us: Some(at), text }
        }
        None => {
            let last = changes.last().copied().or(at_start);
            if let Some(last) = last {
                evidence.push(Evidence::at(last.event, last.note()));
            }
            let recovery = journal
                .health_after(service, start.event.seq)
                .find(|c| c.healthy && c.event.offset_us > deadline);
            if observed_until >= deadline || recovery.is_some() {
                let then = match (recovery, last) {
                    (Some(recovery), _) => {
                        evidence.push(Evidence::at(recovery.event, recovery.note()));
                        format!("healthy only after {}", since(recovery.event.offset_us))
                    }
                    (None, Some(_)) => "never healthy again".to_owned(),
                    (None, None) => "no health observation at all".to_owned(),
                };
                Part::Failed(format!(
                    "`{service}` not healthy {within} after the rollback started; {then}"
                ))
            } else {
                Part::Unsettled(format!(
                    "observation stopped {} after the rollback started; `{service}` not healthy \
                     until then",
                    since(observed_until)
                ))
            }
        }
    };

    let mut parts = vec![rolled_back, healthy];
    // Traffic is judged from when the rollback is done and the service healthy.
    let anchor = Part::latest(&parts, t0);

    // (c) The version.
    if let Some(text) = version {
        let observed =
            journal.events.iter().filter(|e| e.seq > start.event.seq).find_map(|e| match &e.kind {
                EventKind::VersionObserved { step, moment, body, ok, .. }
                    if step == run.step && moment == "after-rollback" =>
                {
                    Some((e, body.as_str(), *ok))
                }
                _ => None,
            });
        let before = journal.events.iter().find_map(|e| match &e.kind {
            EventKind::VersionObserved { step, moment, body, ok: true, .. }
                if step == run.step && moment == "before" =>
            {
                Some((e, body.as_str()))
            }
            _ => None,
        });
        if let Some((event, body)) = before {
            evidence.push(Evidence::at(event, format!("version before the upgrade: `{body}`")));
        }
        parts.push(match observed {
            None => Part::Unsettled(
                "no version was observed after the rollback (does the upgrade declare \
                 `version`?)"
                    .to_owned(),
            ),
            Some((event, body, ok)) => {
                let at = event.offset_us;
                let note = if ok {
                    format!("version after the rollback: `{body}`")
                } else {
                    format!("version endpoint failed: {body}")
                };
                evidence.push(Evidence::at(event, note));
                if !ok {
                    Part::Failed(format!("the version endpoint failed after the rollback: {body}"))
                } else if !body.contains(text) {
                    Part::Failed(format!(
                        "the version after the rollback is `{body}`, which does not contain \
                         `{text}`"
                    ))
                } else if at > deadline {
                    Part::Failed(format!("version `{body}` observed only after {}", since(at)))
                } else {
                    let text = format!("version `{body}` contains `{text}`");
                    Part::Met { at_us: Some(at), text }
                }
            }
        });
    }

    // (d) The traffic, measured from when (a) and (b) are met.
    if let Some(traffic) = traffic {
        let upgrade_start = journal
            .step_start(run.step)
            .map(|e| e.offset_us)
            .or(run.started.map(|s| s.offset_us()))
            .unwrap_or(t0);
        let (part, mut notes) =
            traffic_restored(journal, traffic, run.step, upgrade_start, anchor, t0, deadline);
        evidence.append(&mut notes);
        parts.push(part);
    }

    let texts: Vec<&str> = parts.iter().map(Part::text).collect();
    let first = |want: fn(&Part) -> bool| parts.iter().find(|p| want(p)).map(Part::text);
    let judged = if let Some(failed) = first(|p| matches!(p, Part::Failed(_))) {
        Judged::new(CheckStatus::Failed, expected, failed.to_owned(), texts.join("; "))
    } else if let Some(unsettled) = first(|p| matches!(p, Part::Unsettled(_))) {
        Judged::new(CheckStatus::NotEvaluated, expected, unsettled.to_owned(), texts.join("; "))
    } else {
        let restored_at = Part::latest(&parts, t0);
        let summary = format!("restored {} after the rollback started", since(restored_at));
        let observed = format!("{summary}: {}", texts.join("; "));
        Judged::new(CheckStatus::Passed, expected, summary, observed)
    };
    judged.with_evidence(evidence)
}

/// The upgrade and rollback `restored` judges: the rollback recorded for step `after`, else the
/// first one recorded while step `after` ran (a `rollback` step named in its own right).
fn find_rollback<'a>(
    journal: &Timeline<'a>,
    after: &str,
) -> Result<(UpgradeRun<'a>, RollbackRun<'a>), (String, Vec<Evidence>)> {
    let run = journal.upgrade(after);
    if let Some(run) = run
        && let Some(rollback) = run.rollback
    {
        return Ok((run, rollback));
    }
    if let Ok(span) = journal.step_span(after) {
        let end = span.end.as_ref().map(|e| e.event.seq);
        let during = journal.stages().find(|s| {
            s.stage == UpgradeStage::RollbackStarted
                && s.event.seq > span.start.seq
                && end.is_none_or(|end| s.event.seq < end)
        });
        if let Some(started) = during
            && let Some(run) = journal.upgrade(started.step)
            && let Some(rollback) = run.rollback
        {
            return Ok((run, rollback));
        }
    }
    let Some(run) = journal.upgrade(after) else {
        return Err(journal.no_upgrade(after));
    };
    let summary = match (run.failure(), run.completed) {
        (Some(failure), _) => format!("the upgrade {failure}, and was not rolled back"),
        (None, Some(_)) => format!("`{after}` completed and was not rolled back"),
        (None, None) => journal.unfinished(&run),
    };
    Err((summary, run.evidence()))
}

/// When a service, healthy at the end of `changes`, became so for good: the start of its last
/// healthy period, or `from_us` when it was healthy before (`at_start`) and never unhealthy since.
/// `None` when its last known state is unhealthy or unknown.
fn healthy_since<'a>(
    at_start: Option<HealthView<'a>>,
    changes: &[HealthView<'a>],
    from_us: u64,
) -> Option<(u64, Option<HealthView<'a>>)> {
    let last = changes.last().copied().or(at_start)?;
    if !last.healthy {
        return None;
    }
    let unhealthy_since_start = changes.iter().any(|c| !c.healthy);
    if !unhealthy_since_start && at_start.is_some_and(|s| s.healthy) {
        return Some((from_us, None));
    }
    let first_healthy = changes.iter().rev().take_while(|c| c.healthy).last().copied()?;
    Some((first_healthy.event.offset_us.max(from_us), Some(first_healthy)))
}

/// The pre-upgrade success rate of `before` (the requests scheduled before the upgrade step
/// started, in schedule order), and how many windows it was taken from.
///
/// The time before the upgrade is cut into windows of [`RESTORED_WINDOW_US`] back from its start
/// (the last one before the upgrade first); the baseline is the **upper median** of their rates
/// (windows without a request skipped): an earlier outage that fills fewer than half of the
/// windows does not lower the bar the restored traffic must reach. A partial window at the
/// traffic's start counts only when there is no whole one.
fn pre_upgrade_rate(before: &[RequestView<'_>], upgrade_start_us: u64) -> (Rate, usize) {
    let Some(first) = before.first() else { return (Rate::of(before), 0) };
    let mut rates: Vec<Rate> = Vec::new();
    let mut end = upgrade_start_us;
    while let Some(start) = end.checked_sub(RESTORED_WINDOW_US)
        && start >= first.scheduled_us
    {
        let window: Vec<RequestView<'_>> =
            before.iter().filter(|r| (start..end).contains(&r.scheduled_us)).copied().collect();
        if !window.is_empty() {
            rates.push(Rate::of(&window));
        }
        end = start;
    }
    if rates.is_empty() {
        return (Rate::of(before), 1);
    }
    rates.sort_by(|a, b| a.percent().total_cmp(&b.percent()));
    (rates[rates.len() / 2], rates.len())
}

/// Condition (d) of `restored`.
fn traffic_restored<'a>(
    journal: &Timeline<'a>,
    traffic: &str,
    upgrade_step: &str,
    upgrade_start_us: u64,
    anchor_us: u64,
    t0: u64,
    deadline_us: u64,
) -> (Part, Vec<Evidence>) {
    let since = |us: u64| format_duration_us(us.saturating_sub(t0));
    let requests = journal.requests(traffic);
    let before: Vec<RequestView<'a>> =
        requests.iter().filter(|r| r.scheduled_us < upgrade_start_us).copied().collect();
    if before.is_empty() {
        let text = format!(
            "no request of `{traffic}` was scheduled before `{upgrade_step}` started: no \
             pre-upgrade success rate to compare with (let the traffic run first, e.g. with a \
             `wait` step before the upgrade)"
        );
        return (Part::Unsettled(text), Vec::new());
    }
    let (pre, windows) = pre_upgrade_rate(&before, upgrade_start_us);
    let needed = (pre.percent() - RESTORED_TOLERANCE_POINTS).max(0.0);
    let median = if windows > 1 {
        format!(" (the median of {windows} windows of {})", format_duration_us(RESTORED_WINDOW_US))
    } else {
        String::new()
    };
    let baseline = format!(
        "before the upgrade {}{median}, needed ≥ {}",
        pre.describe(),
        format_percent(needed)
    );
    let after: Vec<RequestView<'a>> =
        requests.iter().filter(|r| r.scheduled_us >= anchor_us).copied().collect();
    let stopped = journal.traffic_stopped(traffic);
    let traffic_end = stopped.map_or(journal.observed_until_us(), |e| e.offset_us);
    let Some(first) = after.first() else {
        let text = format!(
            "no request of `{traffic}` was scheduled after the restore ({} after the rollback \
             started)",
            since(anchor_us)
        );
        return (Part::Unsettled(text), Vec::new());
    };
    let window = format_duration_us(RESTORED_WINDOW_US);

    // The first whole window that is back to the pre-upgrade level.
    let mut first_window: Option<Rate> = None;
    let mut found: Option<(RequestView<'a>, Rate, String)> = None;
    let mut end = 0;
    for (i, request) in after.iter().enumerate() {
        let until = request.scheduled_us.saturating_add(RESTORED_WINDOW_US);
        if until > traffic_end {
            break;
        }
        while end < after.len() && after[end].scheduled_us < until {
            end += 1;
        }
        let rate = Rate::of(&after[i..end]);
        first_window.get_or_insert(rate);
        if rate.at_least(needed) {
            found = Some((*request, rate, format!("over the {window} from")));
            break;
        }
    }
    let whole_windows = first_window.is_some();
    if !whole_windows {
        // The traffic stopped less than a window after the restore: judge what there is.
        let rate = Rate::of(&after);
        first_window = Some(rate);
        if stopped.is_some() && rate.at_least(needed) {
            let span = format_duration_us(traffic_end.saturating_sub(first.scheduled_us));
            found = Some((*first, rate, format!("over the {span} until it stopped, from")));
        }
    }
    match found {
        Some((request, rate, over)) => {
            let at = request.scheduled_us;
            let note = format!("`{traffic}` back to {} {over} here", rate.describe());
            let evidence = vec![Evidence::at(request.event, note)];
            let text = format!(
                "`{traffic}` back to {} {over} {} ({baseline})",
                rate.describe(),
                since(at)
            );
            if at <= deadline_us {
                (Part::Met { at_us: Some(at), text }, evidence)
            } else {
                (Part::Failed(format!("{text}, later than {}", since(deadline_us))), evidence)
            }
        }
        None if !whole_windows && stopped.is_none() => {
            let text = format!(
                "`{traffic}` not yet back ({} after the restore) when observation stopped \
                 ({baseline})",
                first_window.map_or_else(String::new, Rate::describe)
            );
            (Part::Unsettled(text), Vec::new())
        }
        None => {
            let rate = first_window.map_or_else(String::new, Rate::describe);
            let note = format!("`{traffic}` at {rate} from here");
            let evidence = vec![Evidence::at(first.event, note)];
            let text = format!(
                "`{traffic}` never back to its pre-upgrade rate: {rate} over the {window} \
                 from {} ({baseline})",
                since(first.scheduled_us)
            );
            (Part::Failed(text), evidence)
        }
    }
}

/// Key figures of one upgrade step, for the report. Times are µs; `None` where the journal does
/// not show the moments they are measured between.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpgradeFigures {
    /// The upgrade step.
    pub step: String,
    /// The upgraded service.
    pub service: String,
    /// How the upgrade ended.
    pub outcome: UpgradeOutcome,
    /// When the upgrade started (its `started` stage), µs from the run's start.
    pub started_us: u64,
    /// Time to detect: from `started` to `failed`. `None` unless the upgrade failed.
    pub time_to_detect_us: Option<u64>,
    /// Time to roll back: from `rollback-started` to a successful `rolled-back`. `None` without a
    /// rollback that completed.
    pub time_to_roll_back_us: Option<u64>,
    /// Time to restore: from `failed` to the moment the service is back — its successful
    /// `rolled-back`, or later, the first healthy observation after it when the health check
    /// still saw it unhealthy then. `None` unless the upgrade failed and was rolled back (and,
    /// when the health check saw it unhealthy at that point, seen healthy again before teardown).
    pub time_to_restore_us: Option<u64>,
    /// Per traffic (in the order the journal first mentions them), the share of the run's
    /// requests that failed while the upgrade step ran.
    pub error_budget: Vec<ErrorBudget>,
}

/// How an upgrade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeOutcome {
    /// It completed (a deliberate rollback later does not change that).
    Completed,
    /// It failed and its rollback completed.
    RolledBack,
    /// It failed and its rollback failed too.
    RollbackFailed,
    /// It failed and was not rolled back (`on-failure: abort | continue`).
    Failed,
    /// The journal shows neither outcome (interrupted, or a rollback that never finished).
    Unfinished,
}

/// The error budget one upgrade used of one traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ErrorBudget {
    /// The traffic entry.
    pub traffic: String,
    /// Its requests scheduled while the upgrade step ran (from its `step-started`, inclusive, to
    /// its `step-ended`, exclusive; to the end of the journal when it never ended).
    pub requests_during: u64,
    /// Of those, the failed ones.
    pub failed_during: u64,
    /// All its requests in the run.
    pub requests_in_run: u64,
    /// `failed-during` / `requests-in-run`, in percent (0 without requests).
    pub used_percent: f64,
}

/// Key figures of every upgrade step of a run, in the order they started. An upgrade step is one
/// that recorded an `upgrade` stage `started`; its rollback is the one recorded under its name
/// (automatic, or by a later `rollback` step). See [`UpgradeFigures`] for each figure.
pub fn upgrade_figures(events: &[Event]) -> Vec<UpgradeFigures> {
    let journal = Timeline::new(events);
    let traffic = journal.traffic_names();
    let requests: Vec<Vec<RequestView<'_>>> =
        traffic.iter().map(|name| journal.requests(name)).collect();
    let mut figures = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for started in journal.stages().filter(|s| s.stage == UpgradeStage::Started) {
        if seen.contains(&started.step) {
            continue;
        }
        seen.push(started.step);
        let Some(run) = journal.upgrade(started.step) else { continue };
        let rollback = run.rollback.as_ref().map(|r| (r, r.result()));
        let outcome = match (run.failed, run.completed, &rollback) {
            (None, Some(_), _) => UpgradeOutcome::Completed,
            (Some(_), _, Some((_, RollbackResult::Done(_)))) => UpgradeOutcome::RolledBack,
            (_, _, Some((_, RollbackResult::Failed { .. }))) => UpgradeOutcome::RollbackFailed,
            (Some(_), _, None) if journal.ended_for_good(run.step) => UpgradeOutcome::Failed,
            _ => UpgradeOutcome::Unfinished,
        };
        let started_us = started.offset_us();
        let time_to_detect_us = run.failed.map(|f| f.offset_us().saturating_sub(started_us));
        let done = match &rollback {
            Some((r, RollbackResult::Done(done))) => Some((*r, *done)),
            _ => None,
        };
        let time_to_roll_back_us =
            done.map(|(r, done)| done.offset_us().saturating_sub(r.started.offset_us()));
        let time_to_restore_us = match (run.failed, done) {
            (Some(failed), Some((_, done))) => restored_at(&journal, run.service, done)
                .map(|at| at.saturating_sub(failed.offset_us())),
            _ => None,
        };
        let from = journal.step_start(run.step).map_or(started_us, |e| e.offset_us);
        let to = match journal.step_end(run.step) {
            StepEnd::Ended(end) => end.event.offset_us,
            _ => u64::MAX,
        };
        let error_budget = traffic
            .iter()
            .zip(&requests)
            .map(|(name, requests)| {
                let during: Vec<&RequestView<'_>> =
                    requests.iter().filter(|r| (from..to).contains(&r.scheduled_us)).collect();
                let failed_during = during.iter().filter(|r| !r.ok).count() as u64;
                let requests_in_run = requests.len() as u64;
                let used_percent = if requests_in_run == 0 {
                    0.0
                } else {
                    failed_during as f64 * 100.0 / requests_in_run as f64
                };
                ErrorBudget {
                    traffic: (*name).to_owned(),
                    requests_during: during.len() as u64,
                    failed_during,
                    requests_in_run,
                    used_percent,
                }
            })
            .collect();
        figures.push(UpgradeFigures {
            step: run.step.to_owned(),
            service: run.service.to_owned(),
            outcome,
            started_us,
            time_to_detect_us,
            time_to_roll_back_us,
            time_to_restore_us,
            error_budget,
        });
    }
    figures
}

/// When `service` is back after a successful rollback `done`: `done` itself when the health
/// check saw it healthy at that point (or never observed it at all), else its first healthy
/// observation after (before teardown).
fn restored_at(journal: &Timeline<'_>, service: &str, done: StageView<'_>) -> Option<u64> {
    match journal.health_before(service, done.event.seq) {
        None => Some(done.offset_us()),
        Some(state) if state.healthy => Some(done.offset_us()),
        Some(_) => journal
            .health_after(service, done.event.seq)
            .find(|c| c.healthy)
            .map(|c| c.event.offset_us),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fixtures::*;
    use super::*;
    use crate::checks::CheckStatus::{Failed, NotEvaluated, Passed};
    use crate::checks::evaluate;
    use crate::scenario::model::ExpectationKind;
    use UpgradeStage::{
        Backup, Completed, Failed as FailedStage, Healthy, Migration, Restore, RollbackStarted,
        RolledBack, Started, Switched, Watch,
    };

    const STEP: &str = "upgrade billing";
    const ROLLBACK_STEP: &str = "roll back billing";

    /// A good upgrade: started at 2 s, switched at 4 s, healthy and completed at 5 s.
    fn good_upgrade() -> Vec<(u64, EventKind)> {
        vec![
            (500, up("billing")),
            (2_000, started(1, STEP)),
            (2_000, stage(STEP, Started, true, "billing:1.0 → billing:2.0")),
            (2_500, stage(STEP, Backup, true, "`pg_dump` exit 0 in 400ms")),
            (3_000, stage(STEP, Migration, true, "exit 0")),
            (4_000, stage(STEP, Switched, true, "billing:2.0")),
            (5_000, stage(STEP, Healthy, true, "healthy 1s after its start")),
            (5_000, stage(STEP, Completed, true, "")),
            (5_000, ended(1, STEP)),
        ]
    }

    /// A broken release: started at 2 s, switched at 4 s, unhealthy from 5 s, failed and rollback
    /// started at 12 s.
    fn failed_upgrade() -> Vec<(u64, EventKind)> {
        vec![
            (500, up("billing")),
            (2_000, started(1, STEP)),
            (2_000, stage(STEP, Started, true, "billing:1.0 → billing:2.0-broken")),
            (2_000, version(STEP, "before", "billing 1.0.3", true)),
            (4_000, stage(STEP, Switched, true, "billing:2.0-broken")),
            (5_000, down("billing")),
            (12_000, stage(STEP, Healthy, false, "not healthy within 8s")),
            (12_000, stage(STEP, FailedStage, false, "not healthy within 8s")),
            (12_000, stage(STEP, RollbackStarted, true, "back to billing:1.0")),
        ]
    }

    /// The rollback completes at `ms`, with the version answered just before.
    fn rolled_back_at(ms: u64, body: &str) -> Vec<(u64, EventKind)> {
        vec![
            (ms, version(STEP, "after-rollback", body, true)),
            (ms, stage(STEP, RolledBack, true, "billing:1.0 healthy 1.5s after its start")),
            (ms, ended(1, STEP)),
        ]
    }

    fn rollback_failed_at(ms: u64) -> Vec<(u64, EventKind)> {
        vec![
            (ms, stage(STEP, RolledBack, false, "the previous version did not come back: exit 1")),
            (ms, ended(1, STEP)),
        ]
    }

    /// `orders`: one request every 100 ms from 0 to `until_ms` (then stopped), ok when `ok(ms)`.
    fn orders(until_ms: u64, ok: impl Fn(u64) -> bool) -> Vec<(u64, EventKind)> {
        let mut timeline = vec![(0, traffic_started("orders"))];
        timeline
            .extend((0..until_ms).step_by(100).map(|ms| (ms, request("orders", ms, ok(ms), 10))));
        timeline.push((until_ms, traffic_stopped("orders")));
        timeline
    }

    fn all(parts: Vec<Vec<(u64, EventKind)>>) -> Vec<(u64, EventKind)> {
        sorted(parts.into_iter().flatten().collect())
    }

    #[test]
    fn upgrade_succeeds() {
        check_cases(
            ExpectationKind::UpgradeSucceeds { step: STEP.into() },
            vec![
                case("completed", Passed, "completed in 3s", good_upgrade()).observed(
                    "completed in 3s (stages: started, backup, migration, switched, healthy, \
                     completed)",
                ),
                case(
                    "failed and rolled back",
                    Failed,
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s",
                    all(vec![failed_upgrade(), rolled_back_at(14_000, "billing 1.0.3")]),
                )
                .observed(
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s; rolled \
                     back in 2s",
                ),
                case(
                    "failed, and the rollback failed too",
                    Failed,
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s",
                    all(vec![failed_upgrade(), rollback_failed_at(15_000)]),
                )
                .observed(
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s; the \
                     rollback failed after 3s: the previous version did not come back: exit 1",
                ),
                case(
                    "the migration failed and the upgrade was aborted",
                    Failed,
                    "the upgrade failed at `migration` after 1s: `migrate` exit 3: column exists",
                    vec![
                        (2_000, started(1, STEP)),
                        (2_000, stage(STEP, Started, true, "")),
                        (3_000, stage(STEP, Migration, false, "`migrate` exit 3: column exists")),
                        (3_000, stage(STEP, FailedStage, false, "`migrate` exit 3: column exists")),
                        (3_000, ended_with(1, STEP, Outcome::Failed, Some("aborted"))),
                    ],
                )
                .observed(
                    "the upgrade failed at `migration` after 1s: `migrate` exit 3: column \
                     exists; not rolled back",
                ),
                case(
                    "the watch gate failed",
                    Failed,
                    "the upgrade failed at `watch` after 9s: availability 80% < 99%",
                    vec![
                        (2_000, started(1, STEP)),
                        (2_000, stage(STEP, Started, true, "")),
                        (4_000, stage(STEP, Switched, true, "")),
                        (5_000, stage(STEP, Healthy, true, "")),
                        (11_000, stage(STEP, Watch, false, "availability 80% < 99%")),
                        (11_000, stage(STEP, FailedStage, false, "availability 80% < 99%")),
                    ],
                ),
                case(
                    "a failure without a failing stage",
                    Failed,
                    "the upgrade failed after 1s: the new image is missing",
                    vec![
                        (2_000, stage(STEP, Started, true, "")),
                        (3_000, stage(STEP, FailedStage, false, "the new image is missing")),
                    ],
                ),
                case(
                    "completed, then rolled back on purpose by a later step",
                    Passed,
                    "completed in 3s",
                    all(vec![
                        good_upgrade(),
                        vec![
                            (8_000, started(2, ROLLBACK_STEP)),
                            (8_000, stage(STEP, RollbackStarted, true, "")),
                            (9_500, stage(STEP, RolledBack, true, "")),
                            (9_500, ended(2, ROLLBACK_STEP)),
                        ],
                    ]),
                )
                .observed(
                    "completed in 3s (stages: started, backup, migration, switched, healthy, \
                     completed); rolled back on purpose later: rolled back in 1.5s",
                ),
                case(
                    "interrupted mid-upgrade",
                    NotEvaluated,
                    "the upgrade never finished (last stage `switched` at +2s); `upgrade billing` \
                     was interrupted",
                    vec![
                        (2_000, started(1, STEP)),
                        (2_000, stage(STEP, Started, true, "")),
                        (4_000, stage(STEP, Switched, true, "")),
                        (4_500, ended_with(1, STEP, Outcome::Interrupted, None)),
                    ],
                ),
                case(
                    "the journal ends mid-upgrade",
                    NotEvaluated,
                    "the upgrade never finished (last stage `started` at +0ms); `upgrade billing` \
                     never ended",
                    vec![(2_000, started(1, STEP)), (2_000, stage(STEP, Started, true, ""))],
                ),
                case("the step never ran", NotEvaluated, "`upgrade billing` never ran", vec![]),
                case(
                    "not an upgrade step",
                    NotEvaluated,
                    "`upgrade billing` recorded no upgrade stage",
                    vec![(2_000, started(1, STEP)), (3_000, ended(1, STEP))],
                ),
                case(
                    "another step's upgrade does not count",
                    NotEvaluated,
                    "`upgrade billing` never ran",
                    vec![(2_000, stage("upgrade db", Completed, true, ""))],
                ),
            ],
        );
    }

    #[test]
    fn upgrade_succeeds_evidence_lists_the_stages_with_times() {
        let events = journal(&failed_upgrade());
        let kind = ExpectationKind::UpgradeSucceeds { step: STEP.into() };
        let verdict = evaluate(&scenario(vec![kind]), &events).remove(0);
        let notes: Vec<&str> = verdict.evidence.iter().map(|e| e.note.as_str()).collect();
        assert_eq!(
            notes,
            vec![
                "+0ms `started`: billing:1.0 → billing:2.0-broken",
                "+2s `switched`: billing:2.0-broken",
                "+10s `healthy` failed: not healthy within 8s",
                "+10s `failed`: not healthy within 8s",
                "+10s `rollback-started`: back to billing:1.0",
            ]
        );
    }

    #[test]
    fn upgrade_rolled_back() {
        check_cases(
            ExpectationKind::UpgradeRolledBack { step: STEP.into() },
            vec![
                case(
                    "failed and rolled back",
                    Passed,
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s; rolled \
                     back in 2s",
                    all(vec![failed_upgrade(), rolled_back_at(14_000, "billing 1.0.3")]),
                ),
                case(
                    "completed: the broken release was not rejected",
                    Failed,
                    "the release was not rejected: the broken version stayed",
                    good_upgrade(),
                )
                .observed(
                    "the upgrade completed in 3s: the release was not rejected: the broken \
                     version stayed",
                ),
                case(
                    "the rollback failed: said first, not hidden behind the upgrade's failure",
                    Failed,
                    "the rollback failed: the previous version did not come back: exit 1",
                    all(vec![failed_upgrade(), rollback_failed_at(15_000)]),
                )
                .observed(
                    "the rollback failed after 3s: the previous version did not come back: exit 1 \
                     (the upgrade had failed at `healthy` after 10s: not healthy within 8s)",
                ),
                case(
                    "the restore hook failed",
                    Failed,
                    "the rollback failed: the restore hook failed: `pg_restore` exit 1",
                    all(vec![
                        failed_upgrade(),
                        vec![
                            (13_000, stage(STEP, Restore, false, "`pg_restore` exit 1")),
                            (14_000, stage(STEP, RolledBack, true, "")),
                        ],
                    ]),
                ),
                case(
                    "a failed restore recorded as a failed rollback",
                    Failed,
                    "the rollback failed: restore of `db` failed: `pg_restore` exit 1",
                    all(vec![
                        failed_upgrade(),
                        vec![
                            (13_000, stage(STEP, Restore, false, "`pg_restore` exit 1")),
                            (
                                13_000,
                                stage(
                                    STEP,
                                    RolledBack,
                                    false,
                                    "restore of `db` failed: `pg_restore` exit 1",
                                ),
                            ),
                        ],
                    ]),
                ),
                case(
                    "failed, not rolled back (on-failure: continue)",
                    Failed,
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s, but was \
                     not rolled back",
                    {
                        let mut timeline = failed_upgrade();
                        timeline.pop();
                        timeline.push((12_000, ended(1, STEP)));
                        timeline
                    },
                ),
                case(
                    "failed, then rolled back by a later rollback step",
                    Passed,
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s; rolled \
                     back in 1s",
                    {
                        let mut timeline = failed_upgrade();
                        timeline.pop();
                        timeline.extend([
                            (12_000, ended(1, STEP)),
                            (13_000, started(2, ROLLBACK_STEP)),
                            (13_000, stage(STEP, RollbackStarted, true, "")),
                            (14_000, stage(STEP, RolledBack, true, "")),
                            (14_000, ended(2, ROLLBACK_STEP)),
                        ]);
                        timeline
                    },
                ),
                case(
                    "interrupted during the rollback",
                    NotEvaluated,
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s; its \
                     rollback started but never finished",
                    all(vec![
                        failed_upgrade(),
                        vec![(13_000, ended_with(1, STEP, Outcome::Interrupted, None))],
                    ]),
                ),
                case(
                    "interrupted right after the failure",
                    NotEvaluated,
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s; `upgrade \
                     billing` stopped before any rollback",
                    {
                        let mut timeline = failed_upgrade();
                        timeline.pop();
                        timeline.push((12_000, ended_with(1, STEP, Outcome::Interrupted, None)));
                        timeline
                    },
                ),
                case(
                    "interrupted before the upgrade finished",
                    NotEvaluated,
                    "the upgrade never finished (last stage `switched` at +2s); `upgrade billing` \
                     was interrupted",
                    vec![
                        (2_000, started(1, STEP)),
                        (2_000, stage(STEP, Started, true, "")),
                        (4_000, stage(STEP, Switched, true, "")),
                        (4_500, ended_with(1, STEP, Outcome::Interrupted, None)),
                    ],
                ),
                case("the step never ran", NotEvaluated, "`upgrade billing` never ran", vec![]),
            ],
        );
    }

    fn restored_kind(version: Option<&str>, traffic: Option<&str>) -> ExpectationKind {
        restored_after(STEP, version, traffic)
    }

    fn restored_after(
        after: &str,
        version: Option<&str>,
        traffic: Option<&str>,
    ) -> ExpectationKind {
        ExpectationKind::Restored {
            service: "billing".into(),
            after: after.into(),
            within: Duration::from_secs(10),
            version: version.map(Into::into),
            traffic: traffic.map(Into::into),
        }
    }

    /// Requests fail from 3 s (the broken version) until `back_ms`.
    fn orders_back_at(back_ms: u64, until_ms: u64) -> Vec<(u64, EventKind)> {
        orders(until_ms, move |ms| ms < 3_000 || ms >= back_ms)
    }

    /// The whole drill: broken upgrade, rollback done at 14 s, healthy at 14.5 s, traffic back
    /// at 14 s; the rollback started at 12 s, so the deadline is 22 s.
    fn drill() -> Vec<Vec<(u64, EventKind)>> {
        vec![
            failed_upgrade(),
            rolled_back_at(14_000, "billing 1.0.3"),
            vec![(14_500, up("billing"))],
            orders_back_at(14_000, 25_000),
        ]
    }

    #[test]
    fn restored() {
        let with = |extra: Vec<(u64, EventKind)>| {
            let mut parts = drill();
            parts.push(extra);
            all(parts)
        };
        let without_health = |extra: Vec<(u64, EventKind)>| {
            let mut parts = drill();
            parts.remove(2);
            parts.push(extra);
            all(parts)
        };
        check_cases(
            restored_kind(Some("1.0"), Some("orders")),
            vec![
                case(
                    "everything back in time",
                    Passed,
                    "restored 2.5s after the rollback started",
                    all(drill()),
                )
                .observed(
                    "restored 2.5s after the rollback started: rolled back after 2s; `billing` \
                     healthy after 2.5s; version `billing 1.0.3` contains `1.0`; `orders` back to \
                     100% (50/50) over the 5s from 2.5s (before the upgrade 100% (20/20), needed ≥ \
                     99%)",
                ),
                case(
                    "the rollback failed",
                    Failed,
                    "the rollback failed after 3s: the previous version did not come back: exit 1",
                    all(vec![
                        failed_upgrade(),
                        rollback_failed_at(15_000),
                        orders_back_at(u64::MAX, 25_000),
                    ]),
                )
                .observed(
                    "the rollback failed after 3s: the previous version did not come back: exit \
                     1; `billing` not healthy 10s after the rollback started; never healthy \
                     again; no version was observed after the rollback (does the upgrade declare \
                     `version`?); `orders` never back to its pre-upgrade rate: 0% (0/50) over the \
                     5s from 0ms (before the upgrade 100% (20/20), needed ≥ 99%)",
                ),
                case(
                    "the rollback finished too late",
                    Failed,
                    "rolled back only after 11s",
                    all(vec![
                        failed_upgrade(),
                        rolled_back_at(23_000, "billing 1.0.3"),
                        vec![(23_000, up("billing"))],
                        orders_back_at(23_000, 30_000),
                    ]),
                ),
                case(
                    "healthy exactly at the deadline",
                    Passed,
                    "restored 10s after the rollback started",
                    without_health(vec![(22_000, up("billing"))]),
                ),
                case(
                    "a later upgrade takes it down again before the deadline",
                    Passed,
                    "restored 2.5s after the rollback started",
                    with(vec![
                        (
                            16_000,
                            stage("upgrade again", Started, true, "billing:1.0 → billing:3.0"),
                        ),
                        (16_500, down("billing")),
                    ]),
                ),
                case(
                    "healthy just after the deadline",
                    Failed,
                    "`billing` not healthy 10s after the rollback started; healthy only after \
                     10.001s",
                    without_health(vec![(22_001, up("billing"))]),
                ),
                case(
                    "never healthy again",
                    Failed,
                    "`billing` not healthy 10s after the rollback started; never healthy again",
                    without_health(vec![]),
                ),
                case(
                    "healthy all along (the health check never saw the switch)",
                    Passed,
                    "restored 2s after the rollback started",
                    all(vec![
                        failed_upgrade().into_iter().filter(|(ms, _)| *ms != 5_000).collect(),
                        rolled_back_at(14_000, "billing 1.0.3"),
                        orders_back_at(14_000, 25_000),
                    ]),
                ),
                case(
                    "a flap after the first recovery counts from the last one",
                    Passed,
                    "restored 5s after the rollback started",
                    with(vec![(16_000, down("billing")), (17_000, up("billing"))]),
                ),
                case(
                    "the previous version is not back",
                    Failed,
                    "the version after the rollback is `billing 2.0.0`, which does not contain \
                     `1.0`",
                    all(vec![
                        failed_upgrade(),
                        rolled_back_at(14_000, "billing 2.0.0"),
                        vec![(14_500, up("billing"))],
                        orders_back_at(14_000, 25_000),
                    ]),
                ),
                case(
                    "the version endpoint failed",
                    Failed,
                    "the version endpoint failed after the rollback: status 500: oops",
                    all(vec![
                        failed_upgrade(),
                        vec![
                            (14_000, version(STEP, "after-rollback", "status 500: oops", false)),
                            (14_000, stage(STEP, RolledBack, true, "")),
                        ],
                        vec![(14_500, up("billing"))],
                        orders_back_at(14_000, 25_000),
                    ]),
                ),
                case(
                    "no version observed",
                    NotEvaluated,
                    "no version was observed after the rollback (does the upgrade declare \
                     `version`?)",
                    all(vec![
                        failed_upgrade(),
                        vec![(14_000, stage(STEP, RolledBack, true, ""))],
                        vec![(14_500, up("billing"))],
                        orders_back_at(14_000, 25_000),
                    ]),
                ),
                case(
                    "traffic back a second after the service",
                    Passed,
                    "restored 3.5s after the rollback started",
                    all(vec![
                        failed_upgrade(),
                        rolled_back_at(14_000, "billing 1.0.3"),
                        vec![(14_500, up("billing"))],
                        orders_back_at(15_500, 25_000),
                    ]),
                ),
                case(
                    "traffic back too late",
                    Failed,
                    "`orders` back to 100% (50/50) over the 5s from 11s (before the upgrade 100% \
                     (20/20), needed ≥ 99%), later than 10s",
                    all(vec![
                        failed_upgrade(),
                        rolled_back_at(14_000, "billing 1.0.3"),
                        vec![(14_500, up("billing"))],
                        orders_back_at(23_000, 30_000),
                    ]),
                ),
                case(
                    "traffic never back",
                    Failed,
                    "`orders` never back to its pre-upgrade rate: 0% (0/50) over the 5s from 2.5s \
                     (before the upgrade 100% (20/20), needed ≥ 99%)",
                    all(vec![
                        failed_upgrade(),
                        rolled_back_at(14_000, "billing 1.0.3"),
                        vec![(14_500, up("billing"))],
                        orders_back_at(u64::MAX, 25_000),
                    ]),
                ),
                case(
                    "traffic stopped less than a window after the restore",
                    Passed,
                    "restored 2.5s after the rollback started",
                    all(vec![
                        failed_upgrade(),
                        rolled_back_at(14_000, "billing 1.0.3"),
                        vec![(14_500, up("billing"))],
                        orders_back_at(14_000, 17_000),
                    ]),
                )
                .observed(
                    "restored 2.5s after the rollback started: rolled back after 2s; `billing` \
                     healthy after 2.5s; version `billing 1.0.3` contains `1.0`; `orders` back to \
                     100% (25/25) over the 2.5s until it stopped, from 2.5s (before the upgrade \
                     100% (20/20), needed ≥ 99%)",
                ),
                case(
                    "no traffic before the upgrade: no baseline",
                    NotEvaluated,
                    "no request of `orders` was scheduled before `upgrade billing` started: no \
                     pre-upgrade success rate to compare with (let the traffic run first, e.g. \
                     with a `wait` step before the upgrade)",
                    all(vec![
                        failed_upgrade(),
                        rolled_back_at(14_000, "billing 1.0.3"),
                        vec![(14_500, up("billing"))],
                        orders(25_000, |ms| ms >= 14_000)
                            .into_iter()
                            .filter(|(ms, _)| *ms >= 2_000)
                            .collect(),
                    ]),
                ),
                case(
                    "the journal ends before the rollback finished and the deadline",
                    NotEvaluated,
                    "the rollback had not finished when observation stopped 3s after it started",
                    all(vec![failed_upgrade(), vec![(15_000, later())]]),
                ),
                case(
                    "the upgrade completed: nothing was rolled back",
                    NotEvaluated,
                    "`upgrade billing` completed and was not rolled back",
                    good_upgrade(),
                ),
                case(
                    "failed without a rollback",
                    NotEvaluated,
                    "the upgrade failed at `healthy` after 10s: not healthy within 8s, and was not \
                     rolled back",
                    {
                        let mut timeline = failed_upgrade();
                        timeline.pop();
                        timeline
                    },
                ),
                case("the step never ran", NotEvaluated, "`upgrade billing` never ran", vec![]),
            ],
        );
    }

    #[test]
    fn restored_baseline_leaves_out_an_earlier_outage() {
        // Traffic from 0 s; a 2 s outage at 5-7 s (an earlier fault), the upgrade at 17 s, the
        // rollback at 27 s (deadline 37 s), after which 1 request in 10 fails (90%). Over all the
        // requests before the upgrade the rate is 88.23% (needed ≥ 87.23%, which 90% passes);
        // the windows before it are 12-17 s 100%, 7-12 s 100%, 2-7 s 60%: the baseline is 100%.
        let shift = |events: Vec<(u64, EventKind)>| -> Vec<(u64, EventKind)> {
            events.into_iter().map(|(ms, kind)| (ms + 15_000, kind)).collect()
        };
        let traffic = orders(45_000, |ms| match ms {
            5_000..7_000 => false,
            19_000..29_000 => false,
            29_000.. => ms % 1_000 != 500,
            _ => true,
        });
        let events = all(vec![
            shift(failed_upgrade()),
            shift(rolled_back_at(14_000, "billing 1.0.3")),
            vec![(29_500, up("billing"))],
            traffic,
        ]);
        let verdict =
            evaluate(&scenario(vec![restored_kind(None, Some("orders"))]), &journal(&events))
                .remove(0);
        assert_eq!(verdict.status, Failed, "{verdict:?}");
        assert!(
            verdict.observed.contains(
                "(before the upgrade 100% (50/50) (the median of 3 windows of 5s), needed ≥ 99%)"
            ),
            "{}",
            verdict.observed
        );
    }

    #[test]
    fn restored_tolerates_one_point_below_the_pre_upgrade_rate() {
        // Before the upgrade 19 of 20 succeed (95%): 94% is needed afterwards.
        let traffic = |bad: fn(u64) -> bool| {
            orders(25_000, move |ms| (ms < 3_000 && ms != 1_000) || (ms >= 14_000 && !bad(ms)))
        };
        let drill = |bad: fn(u64) -> bool| {
            all(vec![
                failed_upgrade(),
                rolled_back_at(14_000, "billing 1.0.3"),
                vec![(14_500, up("billing"))],
                traffic(bad),
            ])
        };
        check_cases(
            restored_kind(None, Some("orders")),
            vec![
                case(
                    "3 failures in 50 (94%) is within the tolerance",
                    Passed,
                    "restored 2.5s after the rollback started",
                    drill(|ms| (14_600..14_900).contains(&ms)),
                )
                .observed(
                    "restored 2.5s after the rollback started: rolled back after 2s; `billing` \
                     healthy after 2.5s; `orders` back to 94% (47/50) over the 5s from 2.5s \
                     (before the upgrade 95% (19/20), needed ≥ 94%)",
                ),
                case(
                    "4 failures in 50 (92%) are not: the window slides past the first",
                    Passed,
                    "restored 2.7s after the rollback started",
                    drill(|ms| (14_600..15_000).contains(&ms)),
                ),
            ],
        );
    }

    #[test]
    fn restored_after_an_explicit_rollback_step() {
        let explicit = |named: &str| {
            all(vec![
                good_upgrade(),
                vec![
                    (8_000, started(2, ROLLBACK_STEP)),
                    (8_000, stage(named, RollbackStarted, true, "back to billing:1.0")),
                    (8_000, down("billing")),
                    (9_500, stage(named, RolledBack, true, "")),
                    (9_800, up("billing")),
                    (9_800, ended(2, ROLLBACK_STEP)),
                    (20_000, later()),
                ],
            ])
        };
        for (after, named) in [(STEP, STEP), (ROLLBACK_STEP, STEP), (ROLLBACK_STEP, ROLLBACK_STEP)]
        {
            let events = journal(&explicit(named));
            let verdict =
                evaluate(&scenario(vec![restored_after(after, None, None)]), &events).remove(0);
            assert_eq!(
                (verdict.status, verdict.summary.as_str()),
                (Passed, "restored 1.8s after the rollback started"),
                "after `{after}`, stages named `{named}`"
            );
        }
    }

    #[test]
    fn restored_evidence() {
        let events = journal(&all(drill()));
        let verdict =
            evaluate(&scenario(vec![restored_kind(Some("1.0"), Some("orders"))]), &events)
                .remove(0);
        let notes: Vec<&str> = verdict.evidence.iter().map(|e| e.note.as_str()).collect();
        assert_eq!(
            notes,
            vec![
                "version before the upgrade: `billing 1.0.3`",
                "rollback of `upgrade billing` started: back to billing:1.0",
                "version after the rollback: `billing 1.0.3`",
                "+2s `rolled-back`: billing:1.0 healthy 1.5s after its start",
                "healthy: status 200",
                "`orders` back to 100% (50/50) over the 5s from here",
            ]
        );
        assert_eq!(
            verdict.expected,
            "within 10s of the rollback of `upgrade billing`: rolled back, `billing` healthy, its \
             version contains `1.0`, `orders` succeeding at its pre-upgrade rate again (at most 1 \
             point below)"
        );
    }

    #[test]
    fn figures_of_each_upgrade() {
        let events = journal(&all(drill()));
        let figures = upgrade_figures(&events);
        assert_eq!(
            figures,
            vec![UpgradeFigures {
                step: STEP.into(),
                service: "billing".into(),
                outcome: UpgradeOutcome::RolledBack,
                started_us: 2_000_000,
                time_to_detect_us: Some(10_000_000),
                time_to_roll_back_us: Some(2_000_000),
                time_to_restore_us: Some(2_500_000),
                error_budget: vec![ErrorBudget {
                    traffic: "orders".into(),
                    requests_during: 120,
                    failed_during: 110,
                    requests_in_run: 250,
                    used_percent: 44.0,
                }],
            }]
        );
        assert_eq!(
            serde_json::to_value(&figures[0]).unwrap(),
            serde_json::json!({
                "step": "upgrade billing",
                "service": "billing",
                "outcome": "rolled-back",
                "started-us": 2_000_000,
                "time-to-detect-us": 10_000_000,
                "time-to-roll-back-us": 2_000_000,
                "time-to-restore-us": 2_500_000,
                "error-budget": [{
                    "traffic": "orders",
                    "requests-during": 120,
                    "failed-during": 110,
                    "requests-in-run": 250,
                    "used-percent": 44.0,
                }],
            })
        );
    }

    #[test]
    fn figures_by_outcome() {
        let outcome = |timeline: Vec<(u64, EventKind)>| {
            let figures = upgrade_figures(&journal(&timeline));
            figures
                .iter()
                .map(|f| {
                    (f.outcome, f.time_to_detect_us, f.time_to_roll_back_us, f.time_to_restore_us)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(outcome(good_upgrade()), vec![(UpgradeOutcome::Completed, None, None, None)]);
        assert_eq!(
            outcome(all(vec![failed_upgrade(), rollback_failed_at(15_000)])),
            vec![(UpgradeOutcome::RollbackFailed, Some(10_000_000), None, None)]
        );
        let mut aborted = failed_upgrade();
        aborted.pop();
        aborted.push((12_000, ended_with(1, STEP, Outcome::Failed, Some("aborted"))));
        assert_eq!(outcome(aborted), vec![(UpgradeOutcome::Failed, Some(10_000_000), None, None)]);
        assert_eq!(
            outcome(failed_upgrade()),
            vec![(UpgradeOutcome::Unfinished, Some(10_000_000), None, None)]
        );
        // Healthy (for the health check) when the rollback completes: restored then.
        assert_eq!(
            outcome(all(vec![
                failed_upgrade(),
                vec![(13_000, up("billing"))],
                rolled_back_at(14_000, "billing 1.0.3"),
            ])),
            vec![(UpgradeOutcome::RolledBack, Some(10_000_000), Some(2_000_000), Some(2_000_000))]
        );
        assert!(upgrade_figures(&[]).is_empty());
    }

    #[test]
    fn every_new_kind_is_not_evaluated_on_an_empty_journal() {
        let kinds = vec![
            restored_kind(Some("1.0"), Some("orders")),
            ExpectationKind::Slo {
                traffic: "orders".into(),
                availability: Some(99.0),
                p50: None,
                p95: None,
                p99: None,
                max_outage: None,
                during: None,
                expect_breach: false,
            },
            ExpectationKind::NoLostWrites { traffic: "orders".into() },
            ExpectationKind::UpgradeSucceeds { step: STEP.into() },
            ExpectationKind::UpgradeRolledBack { step: STEP.into() },
        ];
        let verdicts = evaluate(&scenario(kinds), &[]);
        let heads: Vec<(&str, CheckStatus)> = verdicts.iter().map(|v| (v.kind, v.status)).collect();
        assert_eq!(
            heads,
            vec![
                ("restored", NotEvaluated),
                ("slo", NotEvaluated),
                ("no-lost-writes", NotEvaluated),
                ("upgrade-succeeds", NotEvaluated),
                ("upgrade-rolled-back", NotEvaluated),
            ]
        );
    }
}
