//! Failures nobody named: a failed probe (steady-state or `probe:` step), a failed upgrade (its
//! `on-failure` went on with `continue` or stopped the timeline with `abort`, or rolled back) and a
//! failed rollback each make the run deviate, unless an `expect:` entry accepts it. Implicit: one
//! `unexpected-failure` verdict per failure not accepted, like `maintenance-window`.
//!
//! What accepts a failure: an expectation that names the thing that failed, so its author judged
//! it on purpose —
//! - a failed steady-state probe: `steady-state: before` / `after` of that phase;
//! - a failed `probe:` step: any entry naming the step (`probe-passed: STEP`, `unhealthy-during` or
//!   `healthy-throughout` over it, `healthy-within` after it, a `notify` trigger on it);
//! - a failed upgrade: any entry naming the upgrade step (`upgrade-succeeds`,
//!   `upgrade-rolled-back`, `restored`, a `notify` on `{ step: STEP, event: failed }`, ...);
//! - a failed rollback: nothing but `upgrade-rolled-back: STEP`, which itself fails on it.

use super::{CheckStatus, Evidence, Verdict};
use crate::journal::{Event, EventKind, Phase, ProbeContext, UpgradeStage};
use crate::scenario::model::{ExpectationKind, Scenario, SteadyPhase, Trigger};

/// One verdict per failure the scenario's expectations do not accept, in journal order.
pub(super) fn unexpected_failures(scenario: &Scenario, events: &[Event]) -> Vec<Verdict> {
    let mut verdicts: Vec<Verdict> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    // The `reuse` phase's restores are the harness's own: one that fails renews the stack
    // (`stack-renewed`), it is not the scenario's failure.
    let mut in_reuse = false;
    for event in events {
        match &event.kind {
            EventKind::PhaseStarted { phase: Phase::Reuse } => in_reuse = true,
            EventKind::PhaseEnded { phase: Phase::Reuse, .. } => in_reuse = false,
            _ => {}
        }
        if in_reuse {
            continue;
        }
        let Some((name, note, accepted)) = failure(scenario, event) else { continue };
        if accepted || seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        verdicts.push(Verdict {
            name: format!("unexpected-failure {name}"),
            kind: "unexpected-failure",
            status: CheckStatus::Failed,
            summary: note.clone(),
            expected: format!("{name} does not fail, or an `expect:` entry names it"),
            observed: note.clone(),
            evidence: vec![Evidence::at(event, note)],
            channels: Vec::new(),
        });
    }
    verdicts
}

/// The failure `event` records, if any: (what failed, the note, whether an expectation accepts it).
fn failure(scenario: &Scenario, event: &Event) -> Option<(String, String, bool)> {
    match &event.kind {
        EventKind::ProbeResult { probe, context, ok: false, error, .. } => {
            let what = error.clone().unwrap_or_else(|| "failed".to_owned());
            match context {
                ProbeContext::SteadyState { phase } => {
                    let when = match phase {
                        SteadyPhase::Before => "before",
                        SteadyPhase::After => "after",
                    };
                    let accepted = scenario
                        .expect
                        .iter()
                        .any(|e| matches!(&e.kind, ExpectationKind::SteadyState(p) if p == phase));
                    Some((
                        format!("steady-state {when} `{probe}`"),
                        format!("steady-state probe `{probe}` failed {when} the steps: {what}"),
                        accepted,
                    ))
                }
                ProbeContext::Step { step } => Some((
                    format!("\"{step}\""),
                    format!("probe step `{step}` failed: {what}"),
                    names_step(scenario, step),
                )),
            }
        }
        EventKind::Upgrade { step, stage: UpgradeStage::Failed, detail, .. } => Some((
            format!("\"{step}\""),
            format!("upgrade `{step}` failed: {}", detail.as_deref().unwrap_or("no detail")),
            names_step(scenario, step),
        )),
        EventKind::Upgrade { step, stage: UpgradeStage::RolledBack, ok: false, detail, .. } => {
            let accepted = scenario.expect.iter().any(
                |e| matches!(&e.kind, ExpectationKind::UpgradeRolledBack { step: s } if s == step),
            );
            Some((
                format!("rollback of \"{step}\""),
                format!(
                    "the rollback of `{step}` failed: {}",
                    detail.as_deref().unwrap_or("no detail")
                ),
                accepted,
            ))
        }
        EventKind::HumanExpired { step, role } => Some((
            format!("human step `{step}`"),
            format!("{role} did not do `{step}` by the step's deadline"),
            names_step(scenario, step),
        )),
        _ => None,
    }
}

/// Whether some expectation names `step`.
fn names_step(scenario: &Scenario, step: &str) -> bool {
    let trigger = |t: &Trigger| matches!(t, Trigger::Step { step: s, .. } | Trigger::Marker(s) | Trigger::Fault(s) if s == step);
    scenario.expect.iter().any(|e| match &e.kind {
        ExpectationKind::HealthyWithin { after, .. } => after == step,
        ExpectationKind::HealthyThroughout { step: s, .. }
        | ExpectationKind::UnhealthyDuring { step: s, .. }
        | ExpectationKind::ProbePassed { step: s }
        | ExpectationKind::ProbeFailed { step: s }
        | ExpectationKind::UpgradeSucceeds { step: s }
        | ExpectationKind::UpgradeRolledBack { step: s } => s == step,
        ExpectationKind::Restored { after, .. } => after == step,
        ExpectationKind::Slo { during, .. } => during.as_deref() == Some(step),
        ExpectationKind::Notify(spec) => {
            trigger(&spec.on) || spec.resolved.as_ref().is_some_and(|r| trigger(&r.after))
        }
        ExpectationKind::MaintenanceNotice(spec) => spec.before == step,
        ExpectationKind::HumanWithin { step: s, .. } => s == step,
        ExpectationKind::Prometheus(check) => match &check.when {
            crate::scenario::model::QueryWhen::At { at, .. } => trigger(at),
            crate::scenario::model::QueryWhen::Throughout { step: s, .. } => s == step,
        },
        ExpectationKind::Alert(check) => {
            trigger(&check.fires.on) || check.resolves.as_ref().is_some_and(|r| trigger(&r.on))
        }
        ExpectationKind::SteadyState(_) | ExpectationKind::NoLostWrites { .. } => false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{CheckStatus, evaluate};
    use crate::journal::{EventKind, UpgradeStage};
    use crate::scenario::model::{ExpectationKind, SteadyPhase};

    /// (kind, name, status) of every verdict.
    fn verdicts(
        expect: Vec<ExpectationKind>,
        timeline: &[(u64, EventKind)],
    ) -> Vec<(String, String)> {
        evaluate(&scenario(expect), &journal(timeline))
            .into_iter()
            .map(|v| (v.kind.to_owned(), format!("{} {:?}: {}", v.name, v.status, v.summary)))
            .collect()
    }

    fn unexpected(expect: Vec<ExpectationKind>, timeline: &[(u64, EventKind)]) -> Vec<String> {
        verdicts(expect, timeline)
            .into_iter()
            .filter(|(kind, _)| kind == "unexpected-failure")
            .map(|(_, line)| line)
            .collect()
    }

    #[test]
    fn a_failed_probe_nobody_named_fails_the_run() {
        let step = "probe billing";
        let timeline = [
            (1_000, started(1, step)),
            (1_012, probe_result("billing health", in_step(step), 503)),
            (1_013, ended(1, step)),
        ];
        assert_eq!(
            unexpected(vec![], &timeline),
            vec![
                "unexpected-failure \"probe billing\" Failed: probe step `probe billing` failed: \
                 status 503, expected 200"
            ]
        );
        // Named: `probe-failed` accepts it (and passes), `probe-passed` judges it itself.
        let failed = ExpectationKind::ProbeFailed { step: step.into() };
        assert_eq!(unexpected(vec![failed.clone()], &timeline), Vec::<String>::new());
        let verdict = evaluate(&scenario(vec![failed]), &journal(&timeline)).remove(0);
        assert_eq!(verdict.status, CheckStatus::Passed);
        let passed = ExpectationKind::ProbePassed { step: step.into() };
        assert_eq!(unexpected(vec![passed], &timeline), Vec::<String>::new());
    }

    #[test]
    fn a_failed_steady_state_probe_needs_its_phase_checked() {
        let timeline = [(100, probe_result("db answers", steady(SteadyPhase::After), 503))];
        assert_eq!(
            unexpected(vec![ExpectationKind::SteadyState(SteadyPhase::Before)], &timeline),
            vec![
                "unexpected-failure steady-state after `db answers` Failed: steady-state probe \
                 `db answers` failed after the steps: status 503, expected 200"
            ]
        );
        assert!(
            unexpected(vec![ExpectationKind::SteadyState(SteadyPhase::After)], &timeline)
                .is_empty()
        );
    }

    #[test]
    fn a_failed_upgrade_and_a_failed_rollback() {
        let step = "upgrade billing";
        let timeline = [
            (1_000, started(1, step)),
            (2_000, stage(step, UpgradeStage::Started, true, "")),
            (3_000, stage(step, UpgradeStage::Failed, false, "not healthy within 4s")),
            (4_000, stage(step, UpgradeStage::RollbackStarted, true, "")),
            (5_000, stage(step, UpgradeStage::RolledBack, false, "restore hook exited 1")),
            (5_100, ended(1, step)),
        ];
        assert_eq!(
            unexpected(vec![], &timeline),
            vec![
                "unexpected-failure \"upgrade billing\" Failed: upgrade `upgrade billing` failed: \
                 not healthy within 4s",
                "unexpected-failure rollback of \"upgrade billing\" Failed: the rollback of \
                 `upgrade billing` failed: restore hook exited 1",
            ]
        );
        // Naming the upgrade accepts its failure (continue/abort rehearsed on purpose), never a
        // failed rollback: only `upgrade-rolled-back` names that, and it fails on it.
        let healthy = ExpectationKind::HealthyWithin {
            service: "billing".into(),
            after: step.into(),
            within: std::time::Duration::from_secs(5),
        };
        assert_eq!(
            unexpected(vec![healthy], &timeline),
            vec![
                "unexpected-failure rollback of \"upgrade billing\" Failed: the rollback of \
                 `upgrade billing` failed: restore hook exited 1"
            ]
        );
        let rolled_back = ExpectationKind::UpgradeRolledBack { step: step.into() };
        assert!(unexpected(vec![rolled_back], &timeline).is_empty());
    }
}
