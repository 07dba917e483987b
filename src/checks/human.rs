//! `human-within: { step, within }` (gameday): a `human` step was done within `within` of its
//! prompt — acknowledged (`done: acknowledge`) or its effect observed (any other `done`).
//!
//! Over `human-prompted`, `human-acknowledged`, `human-decided` (a decision the prompt offered is
//! an answer, as an acknowledgement is), `human-effect`, `human-expired` and `step-ended`
//! only. The time of an effect is the one the engine stamped on `human-effect` (`observed-us`: a
//! notification's receive time, the health observation's event), not when the engine noticed it.
//! Lateness is measured whenever the journal can measure it: a step done after `within` is late by
//! the difference; a step never done is late by at least its deadline minus `within`.

use super::{CheckStatus, Evidence, Judged, format_duration_us};
use crate::journal::{Event, EventKind, Outcome};

/// The prompt of `step` and what became of it, as the journal has it.
struct Prompt<'e> {
    event: &'e Event,
    role: &'e str,
    by_acknowledgement: bool,
    done_text: &'e str,
}

pub(super) fn human_within(events: &[Event], step: &str, within_us: u64) -> Judged {
    let within = format_duration_us(within_us);
    let expected = format!("`{step}` is done within {within} of its prompt");
    let prompt = events.iter().find_map(|event| match &event.kind {
        EventKind::HumanPrompted { step: s, role, by_acknowledgement, done, .. } if s == step => {
            Some(Prompt { event, role, by_acknowledgement: *by_acknowledgement, done_text: done })
        }
        _ => None,
    });
    let Some(prompt) = prompt else {
        let summary = format!("`{step}` never prompted anyone");
        let observed = "the journal has no prompt for the step".to_owned();
        return Judged::new(CheckStatus::NotEvaluated, expected, summary, observed);
    };
    let role = prompt.role;
    let start = prompt.event.offset_us;
    let after = events.iter().filter(|e| e.seq > prompt.event.seq);
    // When it was done: the acknowledgement, or the effect's own time.
    let done = after.clone().find_map(|event| match &event.kind {
        EventKind::HumanAcknowledged { step: s, by, .. }
            if s == step && prompt.by_acknowledgement =>
        {
            Some((event, event.offset_us, format!("acknowledged ({by})")))
        }
        EventKind::HumanDecided { step: s, by, decision, service, .. }
            if s == step && prompt.by_acknowledgement =>
        {
            let decision = decision.replace('-', " ");
            Some((event, event.offset_us, format!("decided to {decision} {service} ({by})")))
        }
        EventKind::HumanEffect { step: s, effect, observed_us, .. }
            if s == step && !prompt.by_acknowledgement =>
        {
            Some((event, *observed_us, effect.clone()))
        }
        _ => None,
    });
    let mut evidence =
        vec![Evidence::at(prompt.event, format!("prompt to {role} (done: {})", prompt.done_text))];
    if let Some((event, at_us, what)) = done {
        let took = at_us.saturating_sub(start);
        let took_text = format_duration_us(took);
        evidence.push(Evidence::at(event, format!("{what} {took_text} after the prompt")));
        let observed = format!("{what} {took_text} after the prompt");
        return if took <= within_us {
            let margin = format_duration_us(within_us - took);
            let summary = format!("{role} did `{step}` in {took_text} ({margin} to spare)");
            Judged::new(CheckStatus::Passed, expected, summary, observed).with_evidence(evidence)
        } else {
            let late = format_duration_us(took - within_us);
            let summary = format!(
                "{role} was {late} late on `{step}`: done {took_text} after the prompt, \
                 within {within} expected"
            );
            Judged::new(CheckStatus::Failed, expected, summary, observed).with_evidence(evidence)
        };
    }
    // Not done: the deadline passed, or the step ended some other way.
    let end = after.clone().find_map(|event| match &event.kind {
        EventKind::HumanExpired { step: s, .. } if s == step => Some((event, None)),
        EventKind::StepEnded { step: s, outcome, .. } if s == step => Some((event, Some(*outcome))),
        _ => None,
    });
    let Some((end, outcome)) = end else {
        let summary = format!("`{step}` was still open when the journal ends");
        let observed = "prompted, neither done nor over".to_owned();
        return Judged::new(CheckStatus::NotEvaluated, expected, summary, observed)
            .with_evidence(evidence);
    };
    let waited = end.offset_us.saturating_sub(start);
    let waited_text = format_duration_us(waited);
    if waited < within_us {
        // Over before `within` (interrupted, or a deadline shorter than `within`): unknown.
        let reason = match outcome {
            Some(Outcome::Interrupted) => "the run was interrupted",
            _ => "the step stopped waiting",
        };
        let summary =
            format!("`{step}` was not done when {reason}, {waited_text} after the prompt");
        evidence.push(Evidence::at(end, format!("over after {waited_text}, not done")));
        let observed = format!("not done in the {waited_text} the step waited");
        return Judged::new(CheckStatus::NotEvaluated, expected, summary, observed)
            .with_evidence(evidence);
    }
    let late = format_duration_us(waited - within_us);
    evidence.push(Evidence::at(end, format!("deadline passed {waited_text} after the prompt")));
    let summary = format!(
        "{role} never did `{step}`: not done {waited_text} after the prompt, at least {late} \
         late (within {within} expected)"
    );
    let observed = format!("not done within the step's {waited_text}");
    Judged::new(CheckStatus::Failed, expected, summary, observed).with_evidence(evidence)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{CheckStatus, evaluate};
    use crate::journal::EventKind;
    use crate::scenario::model::ExpectationKind;

    fn prompted(step: &str, role: &str, by_acknowledgement: bool) -> EventKind {
        EventKind::HumanPrompted {
            step: step.into(),
            role: role.into(),
            prompt: "Acknowledge the page".into(),
            runbook: None,
            deadline_us: 30_000_000,
            done: if by_acknowledgement {
                "acknowledge".into()
            } else {
                "notification on status".into()
            },
            by_acknowledgement,
            roll_back: None,
        }
    }

    fn acked(step: &str) -> EventKind {
        EventKind::HumanAcknowledged {
            step: step.into(),
            role: "on-call".into(),
            by: "responder".into(),
        }
    }

    fn judge(within_ms: u64, timeline: &[(u64, EventKind)]) -> (CheckStatus, String) {
        let kind = ExpectationKind::HumanWithin {
            step: "page".into(),
            within: std::time::Duration::from_millis(within_ms),
        };
        let verdict = evaluate(&scenario(vec![kind]), &journal(timeline)).remove(0);
        assert_eq!(verdict.kind, "human-within");
        (verdict.status, verdict.summary)
    }

    #[test]
    fn an_acknowledgement_in_time_passes_with_its_margin() {
        let (status, summary) = judge(
            10_000,
            &[
                (1_000, started(0, "page")),
                (1_000, prompted("page", "on-call", true)),
                (5_000, acked("page")),
            ],
        );
        assert_eq!(status, CheckStatus::Passed, "{summary}");
        assert_eq!(summary, "on-call did `page` in 4s (6s to spare)");
    }

    #[test]
    fn a_late_acknowledgement_fails_naming_the_role_and_by_how_much() {
        let (status, summary) =
            judge(2_000, &[(1_000, prompted("page", "on-call", true)), (4_500, acked("page"))]);
        assert_eq!(status, CheckStatus::Failed);
        assert_eq!(
            summary,
            "on-call was 1.5s late on `page`: done 3.5s after the prompt, within 2s expected"
        );
    }

    #[test]
    fn an_effect_counts_at_its_own_time_and_an_acknowledgement_does_not_complete_it() {
        let effect = EventKind::HumanEffect {
            step: "page".into(),
            role: "support".into(),
            effect: "notification on status".into(),
            observed_us: 2_900_000,
            evidence_seq: None,
        };
        let timeline =
            [(1_000, prompted("page", "support", false)), (1_500, acked("page")), (3_000, effect)];
        let (status, summary) = judge(2_000, &timeline);
        assert_eq!(status, CheckStatus::Passed, "{summary}");
        assert!(summary.contains("in 1.9s"), "{summary}");
        let (status, summary) = judge(1_000, &timeline);
        assert_eq!(status, CheckStatus::Failed);
        assert!(summary.contains("900ms late"), "{summary}");
    }

    #[test]
    fn a_prompt_never_answered_fails_at_least_by_the_deadline_past_within() {
        let expired = EventKind::HumanExpired { step: "page".into(), role: "on-call".into() };
        let (status, summary) = judge(
            2_000,
            &[
                (1_000, prompted("page", "on-call", true)),
                (6_000, expired),
                (6_000, ended(0, "page")),
            ],
        );
        assert_eq!(status, CheckStatus::Failed);
        assert!(summary.starts_with("on-call never did `page`"), "{summary}");
        assert!(summary.contains("at least 3s late"), "{summary}");
    }

    #[test]
    fn no_prompt_or_an_interruption_before_within_is_not_evaluated() {
        assert_eq!(judge(2_000, &[(0, started(0, "page"))]).0, CheckStatus::NotEvaluated);
        let interrupted = EventKind::StepEnded {
            index: 0,
            step: "page".into(),
            outcome: crate::journal::Outcome::Interrupted,
            error: None,
        };
        let (status, summary) =
            judge(5_000, &[(1_000, prompted("page", "on-call", true)), (2_000, interrupted)]);
        assert_eq!(status, CheckStatus::NotEvaluated);
        assert!(summary.contains("interrupted"), "{summary}");
    }

    #[test]
    fn another_steps_acknowledgement_does_not_count() {
        let (status, _) =
            judge(5_000, &[(1_000, prompted("page", "on-call", true)), (2_000, acked("other"))]);
        assert_eq!(status, CheckStatus::NotEvaluated);
    }
}
