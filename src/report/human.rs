//! Gameday in the reports: one entry per `human` step (`report.json`'s `humans`), and the
//! timeline's human lanes (one per role: the prompt as a bar to when it was done or its deadline
//! passed, the `human-within` target as a marker). Built from the journal alone: the targets come
//! from the expectations `scenario-loaded` carries.

use serde::{Deserialize, Serialize};

use crate::journal::{Event, EventKind};

/// One `human` step in `report.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct HumanReport {
    /// The step.
    pub step: String,
    /// Who was asked.
    pub role: String,
    /// What they were asked.
    pub prompt: String,
    /// The runbook, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// What counts as done, in words.
    pub done: String,
    /// When the prompt was shown, ms from the run's start.
    pub prompted_ms: u64,
    /// The step's deadline from the prompt, ms.
    pub deadline_ms: u64,
    /// The `human-within` target from the prompt, ms (the tightest, when several judge it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ms: Option<u64>,
    /// The first acknowledgement, ms after the prompt, and who gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_after_ms: Option<u64>,
    /// `responder`, `terminal`, `console`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// The decision taken instead of acknowledging (`roll-back billing`), and who took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<String>,
    /// `terminal`, `console`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The observed effect (a notification's channel and sink, a service healthy), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// The notification channel of the effect (`status-page`, …), when the effect was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// When it was done (acknowledged or its effect observed), ms after the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_after_ms: Option<u64>,
    /// `done`, `expired` (the deadline passed first) or `open` (the journal ends before either).
    pub outcome: String,
    /// Against the target: positive ms to spare, negative ms late (at least, for an expired one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_ms: Option<i64>,
}

/// The `human-within` targets the scenario set, step → µs (from `scenario-loaded`).
pub(super) fn targets(events: &[Event]) -> Vec<(String, u64)> {
    let Some(expect) = events.iter().find_map(|e| match &e.kind {
        EventKind::ScenarioLoaded { expect, .. } => Some(expect),
        _ => None,
    }) else {
        return Vec::new();
    };
    let items = expect.as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            let within = item.get("kind")?.get("human-within")?;
            let step = within.get("step")?.as_str()?.to_owned();
            let within = crate::scenario::parse_duration(within.get("within")?.as_str()?).ok()?;
            Some((step, within.as_micros() as u64))
        })
        .collect()
}

/// Every `human` step that prompted someone, in prompt order.
pub fn human_reports(events: &[Event]) -> Vec<HumanReport> {
    let targets = targets(events);
    let mut out: Vec<HumanReport> = Vec::new();
    let mut prompted_us: Vec<u64> = Vec::new();
    let mut by_ack: Vec<bool> = Vec::new();
    for event in events {
        let at = |step: &str, out: &[HumanReport]| out.iter().position(|h| h.step == step);
        match &event.kind {
            EventKind::HumanPrompted {
                step,
                role,
                prompt,
                runbook,
                deadline_us,
                done,
                by_acknowledgement,
                ..
            } => {
                let target_us = targets.iter().filter(|(s, _)| s == step).map(|(_, t)| *t).min();
                out.push(HumanReport {
                    step: step.clone(),
                    role: role.clone(),
                    prompt: prompt.clone(),
                    runbook: runbook.clone(),
                    done: done.clone(),
                    prompted_ms: event.offset_us / 1_000,
                    deadline_ms: deadline_us / 1_000,
                    target_ms: target_us.map(|t| t / 1_000),
                    acknowledged_after_ms: None,
                    acknowledged_by: None,
                    decided: None,
                    decided_by: None,
                    effect: None,
                    channel: None,
                    done_after_ms: None,
                    outcome: "open".to_owned(),
                    margin_ms: None,
                });
                prompted_us.push(event.offset_us);
                by_ack.push(*by_acknowledgement);
            }
            EventKind::HumanAcknowledged { step, by, .. } => {
                let Some(i) = at(step, &out) else { continue };
                let after = event.offset_us.saturating_sub(prompted_us[i]);
                let human = &mut out[i];
                if human.acknowledged_after_ms.is_none() {
                    human.acknowledged_after_ms = Some(after / 1_000);
                    human.acknowledged_by = Some(by.clone());
                    if by_ack[i] {
                        finish(human, after);
                    }
                }
            }
            EventKind::HumanDecided { step, by, decision, service, .. } => {
                let Some(i) = at(step, &out) else { continue };
                let after = event.offset_us.saturating_sub(prompted_us[i]);
                let human = &mut out[i];
                if human.decided.is_none() && human.done_after_ms.is_none() {
                    human.decided = Some(format!("{decision} {service}"));
                    human.decided_by = Some(by.clone());
                    finish(human, after);
                }
            }
            EventKind::HumanEffect { step, effect, observed_us, evidence_seq, .. } => {
                let Some(i) = at(step, &out) else { continue };
                let after = observed_us.saturating_sub(prompted_us[i]);
                let channel = evidence_seq
                    .and_then(|seq| events.iter().find(|e| e.seq == seq))
                    .and_then(|e| match &e.kind {
                        EventKind::NotificationReceived { channel, .. } => Some(channel.clone()),
                        _ => None,
                    });
                let human = &mut out[i];
                if human.effect.is_none() {
                    human.effect = Some(effect.clone());
                    human.channel = channel;
                    finish(human, after);
                }
            }
            EventKind::HumanExpired { step, .. } => {
                let Some(i) = at(step, &out) else { continue };
                let waited = event.offset_us.saturating_sub(prompted_us[i]);
                let human = &mut out[i];
                human.outcome = "expired".to_owned();
                human.margin_ms = human.target_ms.map(|t| t as i64 - (waited / 1_000) as i64);
            }
            _ => {}
        }
    }
    out
}

fn finish(human: &mut HumanReport, after_us: u64) {
    human.done_after_ms = Some(after_us / 1_000);
    human.outcome = "done".to_owned();
    human.margin_ms = human.target_ms.map(|t| t as i64 - (after_us / 1_000) as i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::journal::Journal;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_report_entry_per_prompt_with_its_target_time_and_margin() {
        let clock = Arc::new(ManualClock::new());
        let journal = Journal::in_memory(clock.clone());
        journal.record(EventKind::ScenarioLoaded {
            description: None,
            steady_state: serde_json::json!([]),
            expect: serde_json::json!([
                { "name": "x", "kind": { "human-within": { "step": "page", "within": "2s" } } },
                { "name": "y", "kind": { "human-within": { "step": "post", "within": "1s" } } }
            ]),
        });
        clock.advance(Duration::from_secs(1));
        for (step, by_acknowledgement) in [("page", true), ("post", false)] {
            journal.record(EventKind::HumanPrompted {
                step: step.into(),
                role: "on-call".into(),
                prompt: "Acknowledge".into(),
                runbook: None,
                deadline_us: 5_000_000,
                done: "acknowledge".into(),
                by_acknowledgement,
                roll_back: None,
            });
        }
        clock.advance(Duration::from_millis(1_500));
        journal.record(EventKind::HumanAcknowledged {
            step: "page".into(),
            role: "on-call".into(),
            by: "responder".into(),
        });
        journal.record(EventKind::HumanAcknowledged {
            step: "post".into(),
            role: "on-call".into(),
            by: "responder".into(),
        });
        clock.advance(Duration::from_millis(3_500));
        journal.record(EventKind::HumanExpired { step: "post".into(), role: "on-call".into() });
        let reports = human_reports(&journal.snapshot());
        assert_eq!(reports.len(), 2);
        let page = &reports[0];
        assert_eq!(
            (page.prompted_ms, page.target_ms, page.done_after_ms),
            (1_000, Some(2_000), Some(1_500))
        );
        assert_eq!((page.outcome.as_str(), page.margin_ms), ("done", Some(500)));
        // An acknowledgement does not complete a step that waits for an effect.
        let post = &reports[1];
        assert_eq!(post.acknowledged_after_ms, Some(1_500));
        assert_eq!(
            (post.outcome.as_str(), post.done_after_ms, post.margin_ms),
            ("expired", None, Some(-4_000))
        );

        // The timeline: one lane for the role, a bar per prompt (the expired one failed), the
        // acknowledgements and both targets drawn.
        let timeline = super::super::timeline::build(&journal.snapshot());
        assert_eq!(timeline.humans.len(), 1);
        let row = &timeline.humans[0];
        assert_eq!(row.role, "on-call");
        let endings: Vec<_> = row.prompts.iter().map(|b| (b.label.as_str(), b.ending)).collect();
        assert_eq!(
            endings,
            [
                ("page: done in 1.5s", super::super::Ending::Ok),
                ("post: not done", super::super::Ending::Failed)
            ]
        );
        let svg = super::super::timeline::render_svg(&timeline);
        assert!(svg.contains(">human on-call<"), "{svg}");
        assert_eq!(svg.matches("class=\"human-target\"").count(), 2);
        assert_eq!(svg.matches("class=\"human-ack\"").count(), 2);
    }
}
