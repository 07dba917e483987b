//! Notification checks — `notify` and `maintenance-notice` — over the `notification-received`
//! events of the journal.
//!
//! Times: a trigger happens at its event's offset; a message arrives at its `received-us` (the
//! sink's receive time), both on the run's clock. Which messages count, precisely:
//! - a message is an **all-clear** when the provider says so (Statuspage `status: resolved`,
//!   PagerDuty `event_action: resolve`, a webhook JSON whose top-level `status` is `resolved`),
//!   or, for the other channels, when its subject (its body when it has no subject) contains the
//!   word `resolved`, `recovered`, `all clear` or `all-clear` (case-insensitive, whole words).
//!   A Statuspage scheduled maintenance (`scheduled`, `in_progress`, `verifying`, `completed`)
//!   and a PagerDuty `acknowledge` are neither alert nor all-clear; everything else is an
//!   **alert**;
//! - per channel, the **counted** message is the first alert received at or after the trigger;
//!   per listed recipient, the first such alert whose recipients include them. Content rules
//!   (`contains`, `matches`) apply to every counted message: the first words a customer reads
//!   must be the right ones, a later better message does not make up for them;
//! - a channel without a counted message is **missing**: failed when the journal goes on past the
//!   deadline, not evaluated when it ends before (the run was cut short);
//! - `at-most` counts every message (alerts and all-clears) per channel and recipient from the
//!   trigger to the end of the journal.
//!
//! Reads the journal only; no clock, no Docker.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{CheckStatus, Evidence, Judged, StepEnd, Timeline, format_duration_us};
use crate::journal::{Event, EventKind, Outcome, Phase, UpgradeStage};
use crate::scenario::model::{Channel, MaintenanceNotice, Notify, StepMoment, Trigger};

/// How one channel (or one recipient on it) did against its deadline or lead time: the
/// per-channel figures reports show beside the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChannelTiming {
    /// `alert`, `all-clear` or `notice`.
    pub part: String,
    /// The channel (`sms`, `status-page`, ...).
    pub channel: String,
    /// The recipient, for a row about one listed recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// What the clock runs from: "`kill billing` started".
    pub reference: String,
    /// When that happened, µs from the run's start.
    pub reference_us: u64,
    /// When the counted message arrived (the sink's receive time), µs from the run's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_us: Option<u64>,
    /// The deadline after the reference (`alert`, `all-clear`) or the lead time before it
    /// (`notice`), µs.
    pub limit_us: u64,
    /// Time to spare (positive) or late / short by (negative), µs; absent when nothing arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_us: Option<i64>,
    /// `on-time`, `late`, `missing` (the journal went past the deadline) or `not-settled` (it
    /// ended before).
    pub outcome: String,
}

/// What kind of message a notification is, for these checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Alert,
    AllClear,
    /// A Statuspage scheduled maintenance.
    Maintenance,
    /// Neither (a PagerDuty acknowledge).
    Other,
    /// A text message about planned work (`maintenance`, `planned`, `scheduled`, `upgrade`): for
    /// `notify` an alert like any other, for `maintenance-notice` the only kind that counts.
    Notice,
}

/// The all-clear words.
static ALL_CLEAR_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:resolved|recovered|all[ -]clear)\b").expect("a valid pattern")
});

/// Words that make a clause a promise or a denial rather than news: "we will tell you when it is
/// resolved", "not resolved yet", "all clear follows".
static NOT_YET_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:when|once|until|till|if|will|would|not|yet|soon|follows?|later)\b")
        .expect("a valid pattern")
});

/// Words that make a text message a maintenance notice rather than an incident alert.
static NOTICE_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:maintenance|planned|scheduled|upgrades?|upgrading)\b")
        .expect("a valid pattern")
});

/// Whether `text` announces an all-clear: some clause (text between `.`, `;`, `:`, `!`, `?` and
/// line breaks) holds an all-clear word and none of the not-yet words.
fn says_all_clear(text: &str) -> bool {
    text.split(['.', ';', ':', '!', '?', '\n'])
        .any(|clause| ALL_CLEAR_WORDS.is_match(clause) && !NOT_YET_WORDS.is_match(clause))
}

/// Whether a message is an alert, an all-clear or neither; see the module's documentation.
fn classify(channel: &str, subject: Option<&str>, body: &str, detail: &serde_json::Value) -> Class {
    let field = |value: &serde_json::Value| value.as_str().map(str::to_ascii_lowercase);
    let provider = match channel {
        "status-page" => field(&detail["status"]).map(|status| match status.as_str() {
            "resolved" => Class::AllClear,
            "scheduled" | "in_progress" | "verifying" | "completed" => Class::Maintenance,
            _ => Class::Alert,
        }),
        "page" => field(&detail["event_action"]).map(|action| match action.as_str() {
            "resolve" => Class::AllClear,
            "acknowledge" => Class::Other,
            _ => Class::Alert,
        }),
        "webhook" => field(&detail["json"]["status"]).and_then(|status| match status.as_str() {
            "resolved" => Some(Class::AllClear),
            "firing" => Some(Class::Alert),
            _ => None,
        }),
        _ => None,
    };
    provider.unwrap_or_else(|| {
        // The whole message: subject and body.
        let text = match subject {
            Some(subject) => format!("{subject}\n{body}"),
            None => body.to_owned(),
        };
        if says_all_clear(&text) {
            Class::AllClear
        } else if NOTICE_WORDS.is_match(&text) {
            Class::Notice
        } else {
            Class::Alert
        }
    })
}

/// One `notification-received` event.
#[derive(Clone, Copy)]
pub(super) struct Message<'a> {
    pub(super) event: &'a Event,
    pub(super) channel: &'a str,
    pub(super) received_us: u64,
    recipients: &'a [String],
    subject: Option<&'a str>,
    body: &'a str,
    detail: &'a serde_json::Value,
    pub(super) class: Class,
}

impl Message<'_> {
    fn to(&self, recipient: &str) -> bool {
        let wanted = normalise_recipient(recipient);
        self.recipients.iter().any(|r| normalise_recipient(r) == wanted)
    }

    /// Subject and body, as the content rules read them.
    fn text(&self) -> String {
        match self.subject {
            Some(subject) => format!("{subject}\n{}", self.body),
            None => self.body.to_owned(),
        }
    }
}

/// Recipients compare without case, angle brackets, or the spaces and punctuation people put in
/// phone numbers (`+1 555-0001` is `+15550001`).
fn normalise_recipient(recipient: &str) -> String {
    let trimmed = recipient.trim().trim_start_matches('<').trim_end_matches('>');
    let phone = trimmed.starts_with('+') || trimmed.starts_with(|c: char| c.is_ascii_digit());
    trimmed
        .chars()
        .filter(|c| !(phone && matches!(c, ' ' | '-' | '(' | ')' | '.')))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A resolved trigger: the event that starts a clock.
pub(super) struct Moment<'a> {
    pub(super) event: &'a Event,
    pub(super) at_us: u64,
    /// "`kill billing` started".
    pub(super) what: String,
}

impl<'a> Timeline<'a> {
    /// Every notification, ordered by receive time (journal order for equal times).
    pub(super) fn messages(&self) -> Vec<Message<'a>> {
        let mut messages: Vec<Message<'a>> = self
            .events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::NotificationReceived {
                    channel,
                    received_us,
                    recipients,
                    subject,
                    body,
                    detail,
                    ..
                } => Some(Message {
                    event,
                    channel,
                    received_us: *received_us,
                    recipients,
                    subject: subject.as_deref(),
                    body,
                    detail,
                    class: classify(channel, subject.as_deref(), body, detail),
                }),
                _ => None,
            })
            .collect();
        messages.sort_by_key(|m| (m.received_us, m.event.seq));
        messages
    }

    /// Until when notifications were observed: the first `sink-stopped` (teardown stops the sinks
    /// before the stack; nothing arrives after), or, in a journal without one (a crashed or older
    /// run), its last event.
    pub(super) fn notifications_until_us(&self) -> u64 {
        self.events
            .iter()
            .find(|e| matches!(e.kind, EventKind::SinkStopped { .. }))
            .or(self.events.last())
            .map_or(0, |e| e.offset_us)
    }

    /// The event a trigger names, or why there is none (yet).
    pub(super) fn moment(&self, trigger: &Trigger) -> Result<Moment<'a>, String> {
        let found = |event: &'a Event, what: String| Moment { event, at_us: event.offset_us, what };
        match trigger {
            Trigger::Step { step, event: StepMoment::Started } | Trigger::Marker(step) => {
                let what = match trigger {
                    Trigger::Marker(_) => format!("marker `{step}`"),
                    _ => format!("`{step}` started"),
                };
                self.step_start(step).map(|e| found(e, what)).ok_or(format!("`{step}` never ran"))
            }
            Trigger::Step { step, event: StepMoment::Ended } => match self.step_end(step) {
                StepEnd::Ended(end) => Ok(found(end.event, format!("`{step}` ended"))),
                other => Err(other.why_not_ended(step).0),
            },
            Trigger::Step { step, event: StepMoment::Failed } => {
                let failed = self.events.iter().find(|e| match &e.kind {
                    EventKind::Upgrade { step: s, stage: UpgradeStage::Failed, .. } => s == step,
                    EventKind::StepEnded { step: s, outcome: Outcome::Failed, .. } => s == step,
                    _ => false,
                });
                match (failed, self.step_end(step)) {
                    (Some(event), _) => Ok(found(event, format!("`{step}` failed"))),
                    (None, StepEnd::Ended(_)) => Err(format!("`{step}` did not fail")),
                    (None, other) => Err(other.why_not_ended(step).0),
                }
            }
            Trigger::Step { step, event: StepMoment::RolledBack } => self
                .events
                .iter()
                .find(|e| {
                    matches!(&e.kind, EventKind::Upgrade { step: s, stage: UpgradeStage::RolledBack, ok: true, .. } if s == step)
                })
                .map(|e| found(e, format!("`{step}` rolled back")))
                .ok_or_else(|| match self.step_start(step) {
                    None => format!("`{step}` never ran"),
                    Some(_) => format!("`{step}` was never rolled back"),
                }),
            Trigger::Step { step, event: event @ (StepMoment::Switched | StepMoment::Healthy) } => {
                let (stage, what) = match event {
                    StepMoment::Switched => (UpgradeStage::Switched, "switched"),
                    _ => (UpgradeStage::Healthy, "healthy"),
                };
                self.events
                    .iter()
                    .find(|e| {
                        matches!(&e.kind, EventKind::Upgrade { step: s, stage: st, ok: true, .. } if s == step && *st == stage)
                    })
                    .map(|e| found(e, format!("`{step}` {what}")))
                    .ok_or_else(|| match (self.step_start(step), event) {
                        (None, _) => format!("`{step}` never ran"),
                        (Some(_), StepMoment::Switched) => {
                            format!("`{step}` never switched to the new version")
                        }
                        (Some(_), _) => format!("`{step}`'s new version never became healthy"),
                    })
            }
            Trigger::Step { step, event: StepMoment::Restored } => {
                let (start, end) = match self.step_end(step) {
                    StepEnd::Ended(end) => {
                        (self.step_start(step).map_or(0, |s| s.seq), end.event.seq)
                    }
                    other => return Err(other.why_not_ended(step).0),
                };
                self.events
                    .iter()
                    .rev()
                    .filter(|e| e.seq >= start && e.seq <= end)
                    .find(|e| match &e.kind {
                        EventKind::FaultReverted { step: s, ok: true, .. } => s == step,
                        EventKind::ContainerAction { undo: true, ok: true, .. } => true,
                        EventKind::SinkChaos { on: false, .. } => true,
                        EventKind::Upgrade {
                            step: s, stage: UpgradeStage::RolledBack, ok: true, ..
                        } => s == step,
                        _ => false,
                    })
                    .map(|e| found(e, format!("`{step}` restored")))
                    .ok_or(format!("`{step}` undid nothing (no revert, undo or rollback)"))
            }
            Trigger::Fault(step) => self
                .events
                .iter()
                .find(|e| {
                    matches!(&e.kind, EventKind::FaultApplied { step: s, ok: true, .. } if s == step)
                })
                .map(|e| found(e, format!("the fault of `{step}` applied")))
                .ok_or_else(|| match self.step_start(step) {
                    None => format!("`{step}` never ran"),
                    Some(_) => format!("`{step}` applied no fault"),
                }),
            Trigger::Unhealthy(service) => {
                let Some(timeline) = self.events.iter().find(|e| {
                    matches!(e.kind, EventKind::PhaseStarted { phase: Phase::Steps })
                }) else {
                    return Err("the timeline never started".to_owned());
                };
                if let Some(state) = self.health_before(service, timeline.seq)
                    && !state.healthy
                {
                    let what = format!("`{service}` already unhealthy when the timeline started");
                    return Ok(found(timeline, what));
                }
                self.health_after(service, timeline.seq)
                    .find(|h| !h.healthy)
                    .map(|h| found(h.event, format!("`{service}` unhealthy")))
                    .ok_or(format!("`{service}` never became unhealthy"))
            }
        }
    }
}

/// What a trigger means in an `expected` sentence.
pub(super) fn trigger_words(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Step { step, event } => match event {
            StepMoment::Started => format!("`{step}` starts"),
            StepMoment::Ended => format!("`{step}` ends"),
            StepMoment::Failed => format!("`{step}` fails"),
            StepMoment::RolledBack => format!("`{step}` is rolled back"),
            StepMoment::Restored => format!("`{step}` is restored"),
            StepMoment::Switched => format!("`{step}` switches to the new version"),
            StepMoment::Healthy => format!("`{step}`'s new version is healthy"),
        },
        Trigger::Unhealthy(service) => format!("`{service}` turns unhealthy"),
        Trigger::Fault(step) => format!("the fault of `{step}` is applied"),
        Trigger::Marker(name) => format!("marker `{name}`"),
    }
}

/// Failures, unsettled points, observations and evidence, gathered channel by channel.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    unsettled: Vec<String>,
    lines: Vec<String>,
    evidence: Vec<Evidence>,
    timings: Vec<ChannelTiming>,
}

impl Findings {
    fn fail(&mut self, event: &Event, note: String) {
        self.evidence.push(Evidence::at(event, note.clone()));
        self.lines.push(note.clone());
        self.failures.push(note);
    }

    fn judged(self, expected: String, passed: String) -> Judged {
        let (status, summary) = if !self.failures.is_empty() {
            (CheckStatus::Failed, shorten(&self.failures))
        } else if !self.unsettled.is_empty() {
            (CheckStatus::NotEvaluated, shorten(&self.unsettled))
        } else {
            (CheckStatus::Passed, passed)
        };
        let mut judged = Judged::new(status, expected, summary, self.lines.join("; "))
            .with_evidence(self.evidence);
        judged.channels = self.timings;
        judged
    }
}

/// Every point, or the first four and how many more.
fn shorten(points: &[String]) -> String {
    const SHOWN: usize = 4;
    if points.len() <= SHOWN {
        return points.join("; ");
    }
    format!("{}; and {} more", points[..SHOWN].join("; "), points.len() - SHOWN)
}

fn plus(us: u64) -> String {
    format!("+{}", format_duration_us(us))
}

fn signed(us: u64) -> i64 {
    i64::try_from(us).unwrap_or(i64::MAX)
}

/// One arrival to judge against a deadline.
struct Arrival<'m, 'a> {
    /// `sms`, `sms to +15550001`, `all-clear on sms`.
    label: String,
    part: &'static str,
    channel: Channel,
    recipient: Option<&'m str>,
    /// "the trigger", "`start billing` started": what "N after" refers to.
    since: &'m str,
    first: Option<&'m Message<'a>>,
    limit_us: u64,
}

/// Judge `arrival` against its deadline from `reference`; records lines, evidence and a timing.
fn judge_arrival(
    findings: &mut Findings,
    reference: &Moment<'_>,
    arrival: &Arrival<'_, '_>,
    end_us: u64,
) {
    let limit = format_duration_us(arrival.limit_us);
    let deadline_us = reference.at_us.saturating_add(arrival.limit_us);
    let mut timing = ChannelTiming {
        part: arrival.part.to_owned(),
        channel: arrival.channel.name().to_owned(),
        recipient: arrival.recipient.map(str::to_owned),
        reference: reference.what.clone(),
        reference_us: reference.at_us,
        arrival_us: None,
        limit_us: arrival.limit_us,
        margin_us: None,
        outcome: String::new(),
    };
    let label = &arrival.label;
    match arrival.first {
        Some(message) => {
            let delay = message.received_us.saturating_sub(reference.at_us);
            timing.arrival_us = Some(message.received_us);
            timing.margin_us = Some(signed(arrival.limit_us) - signed(delay));
            if message.received_us <= deadline_us {
                let spare = format_duration_us(arrival.limit_us - delay);
                let note = format!("{label}: {}, {spare} to spare (deadline {limit})", plus(delay));
                findings.evidence.push(Evidence::at(message.event, note.clone()));
                findings.lines.push(note);
                timing.outcome = "on-time".into();
            } else {
                let late = format_duration_us(delay - arrival.limit_us);
                findings.fail(
                    message.event,
                    format!("{label}: {}, {late} late (deadline {limit})", plus(delay)),
                );
                timing.outcome = "late".into();
            }
        }
        None => {
            let waited = format_duration_us(end_us.saturating_sub(reference.at_us));
            let since = arrival.since;
            if end_us >= deadline_us {
                let note = format!(
                    "{label}: missing — not received within the run, {waited} after {since} \
                     (deadline {limit})"
                );
                findings.fail(reference.event, note);
                timing.outcome = "missing".into();
            } else {
                let note = format!(
                    "{label}: missing — not received within the run, {waited} after {since}, \
                     before its {limit} deadline"
                );
                findings.lines.push(note.clone());
                findings.unsettled.push(note);
                timing.outcome = "not-settled".into();
            }
        }
    }
    findings.timings.push(timing);
}

/// The first message of `messages` (in receive order) that `keep` accepts.
fn first<'m, 'a>(
    messages: &'m [Message<'a>],
    keep: impl Fn(&Message<'a>) -> bool,
) -> Option<&'m Message<'a>> {
    messages.iter().find(|m| keep(m))
}

/// Content rules over one counted message: what it lacks, if anything.
fn content_problems(
    message: &Message<'_>,
    contains: &[String],
    pattern: Option<&Regex>,
) -> Vec<String> {
    let text = message.text();
    let lower = text.to_lowercase();
    let mut problems: Vec<String> = contains
        .iter()
        .filter(|word| !lower.contains(&word.to_lowercase()))
        .map(|word| format!("does not contain `{word}`"))
        .collect();
    if let Some(pattern) = pattern
        && !pattern.is_match(&text)
    {
        problems.push(format!("does not match `{}`", pattern.as_str()));
    }
    problems
}

/// `notify`; the rules are in the module's documentation and the README.
pub(super) fn notify(journal: &Timeline<'_>, spec: &Notify) -> Judged {
    let expected = notify_expected(spec);
    let pattern = match spec.matches.as_deref().map(Regex::new).transpose() {
        Ok(pattern) => pattern,
        Err(error) => {
            let summary = format!("`matches` is not a valid regular expression: {error}");
            return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary);
        }
    };
    let trigger = match journal.moment(&spec.on) {
        Ok(trigger) => trigger,
        Err(why) => {
            let summary = format!("the trigger never happened: {why}");
            return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary);
        }
    };
    let end_us = journal.notifications_until_us();
    let messages = journal.messages();
    let mut findings = Findings::default();
    findings.evidence.push(Evidence::at(
        trigger.event,
        format!("trigger: {} at {}", trigger.what, plus(trigger.at_us)),
    ));
    let after_trigger: Vec<Message<'_>> =
        messages.iter().copied().filter(|m| m.received_us >= trigger.at_us).collect();
    let alert = |channel: Channel| {
        move |m: &Message<'_>| {
            m.channel == channel.name() && matches!(m.class, Class::Alert | Class::Notice)
        }
    };

    // Deadlines and content, per channel and per listed recipient.
    let mut arrivals: Vec<(Channel, &Message<'_>)> = Vec::new();
    let mut judged_content: Vec<u64> = Vec::new();
    for &channel in &spec.channels {
        let limit_us = micros(spec.deadline(channel));
        let counted = first(&after_trigger, alert(channel));
        if let Some(message) = counted {
            arrivals.push((channel, message));
        }
        judge_arrival(
            &mut findings,
            &trigger,
            &Arrival {
                label: channel.name().to_owned(),
                part: "alert",
                channel,
                recipient: None,
                since: "the trigger",
                first: counted,
                limit_us,
            },
            end_us,
        );
        let mut counted_messages: Vec<&Message<'_>> = counted.into_iter().collect();
        for recipient in spec.recipients.get(&channel).into_iter().flatten() {
            let to_them = first(&after_trigger, |m| alert(channel)(m) && m.to(recipient));
            counted_messages.extend(to_them);
            judge_arrival(
                &mut findings,
                &trigger,
                &Arrival {
                    label: format!("{} to {recipient}", channel.name()),
                    part: "alert",
                    channel,
                    recipient: Some(recipient),
                    since: "the trigger",
                    first: to_them,
                    limit_us,
                },
                end_us,
            );
        }
        for message in counted_messages {
            if judged_content.contains(&message.event.seq) {
                continue;
            }
            judged_content.push(message.event.seq);
            let problems = content_problems(message, &spec.contains, pattern.as_ref());
            if !problems.is_empty() {
                let at = plus(message.received_us.saturating_sub(trigger.at_us));
                let to = message.recipients.join(", ");
                findings.fail(
                    message.event,
                    format!("{} to {to} ({at}): {}", channel.name(), problems.join(", ")),
                );
            }
        }
    }

    let mut passed = passed_summary(&arrivals, &trigger);
    if let Some(limit) = spec.spread {
        if let Some(spread) =
            judge_spread(&mut findings, spec, &arrivals, &trigger, micros(Some(limit)), end_us)
        {
            passed.push_str(&format!("; spread {}", format_duration_us(spread)));
        }
    }
    if let Some(at_most) = spec.at_most {
        judge_floods(&mut findings, spec, &after_trigger, &trigger, at_most);
    }
    if let Some(resolved) = &spec.resolved {
        match journal.moment(&resolved.after) {
            Err(why) => {
                let note = format!("all-clear: not judged, {why}");
                findings.lines.push(note.clone());
                findings.unsettled.push(note);
            }
            Ok(after) => {
                let slowest = judge_all_clear(
                    &mut findings,
                    spec,
                    &after_trigger,
                    &trigger,
                    &after,
                    micros(Some(resolved.within)),
                    end_us,
                );
                if let Some(slowest) = slowest {
                    passed.push_str(&format!("; all-clear within {}", format_duration_us(slowest)));
                }
            }
        }
    }
    findings.judged(expected, passed)
}

fn micros(duration: Option<std::time::Duration>) -> u64 {
    duration.map_or(0, super::micros)
}

/// "told on every channel in time; slowest `sms` +54.1s".
fn passed_summary(arrivals: &[(Channel, &Message<'_>)], trigger: &Moment<'_>) -> String {
    match arrivals.iter().max_by_key(|(_, m)| m.received_us) {
        Some((channel, message)) => format!(
            "told on every channel in time; slowest `{}` {}",
            channel.name(),
            plus(message.received_us.saturating_sub(trigger.at_us))
        ),
        None => "told on every channel in time".to_owned(),
    }
}

/// `spread`: the last channel's first arrival at most `limit_us` after the first channel's.
/// Returns the measured spread when every channel arrived.
fn judge_spread(
    findings: &mut Findings,
    spec: &Notify,
    arrivals: &[(Channel, &Message<'_>)],
    trigger: &Moment<'_>,
    limit_us: u64,
    end_us: u64,
) -> Option<u64> {
    let limit = format_duration_us(limit_us);
    let (first_channel, first) = *arrivals.iter().min_by_key(|(_, m)| m.received_us)?;
    let at = |m: &Message<'_>| plus(m.received_us.saturating_sub(trigger.at_us));
    if arrivals.len() == spec.channels.len() {
        let (last_channel, last) = *arrivals.iter().max_by_key(|(_, m)| m.received_us)?;
        let spread = last.received_us - first.received_us;
        let note = format!(
            "spread {}: `{}` first at {}, `{}` last at {} (at most {limit})",
            format_duration_us(spread),
            first_channel.name(),
            at(first),
            last_channel.name(),
            at(last)
        );
        if spread > limit_us {
            findings.fail(last.event, note);
        } else {
            findings.evidence.push(Evidence::at(last.event, note.clone()));
            findings.lines.push(note);
        }
        return Some(spread);
    }
    let window_end = first.received_us.saturating_add(limit_us);
    for &channel in &spec.channels {
        if arrivals.iter().any(|(c, _)| *c == channel) {
            continue;
        }
        if end_us >= window_end {
            let note = format!(
                "spread more than {limit}: `{}` not received {limit} after `{}` ({})",
                channel.name(),
                first_channel.name(),
                at(first)
            );
            findings.fail(first.event, note);
        } else {
            let note = format!(
                "spread not settled: `{}` not received yet when the run ended",
                channel.name()
            );
            findings.lines.push(note.clone());
            findings.unsettled.push(note);
        }
    }
    None
}

/// `at-most`: no channel and recipient got more than `at_most` messages from the trigger on.
fn judge_floods(
    findings: &mut Findings,
    spec: &Notify,
    after_trigger: &[Message<'_>],
    trigger: &Moment<'_>,
    at_most: u32,
) {
    let mut worst: Option<(usize, String)> = None;
    for &channel in &spec.channels {
        let on_channel: Vec<&Message<'_>> =
            after_trigger.iter().filter(|m| m.channel == channel.name()).collect();
        let mut recipients: Vec<(String, &str)> = Vec::new();
        for message in &on_channel {
            for recipient in message.recipients {
                let key = normalise_recipient(recipient);
                if !recipients.iter().any(|(k, _)| *k == key) {
                    recipients.push((key, recipient));
                }
            }
        }
        for (key, recipient) in recipients {
            let theirs: Vec<&&Message<'_>> = on_channel
                .iter()
                .filter(|m| m.recipients.iter().any(|r| normalise_recipient(r) == key))
                .collect();
            if theirs.len() > at_most as usize {
                let over = theirs[at_most as usize];
                let note = format!(
                    "flood on {}: {recipient} got {} messages from the trigger on (at most {at_most}; \
                     message {} at {})",
                    channel.name(),
                    theirs.len(),
                    at_most + 1,
                    plus(over.received_us.saturating_sub(trigger.at_us))
                );
                findings.fail(over.event, note);
            } else if worst.as_ref().is_none_or(|(n, _)| theirs.len() > *n) {
                worst = Some((theirs.len(), format!("{} to {recipient}", channel.name())));
            }
        }
    }
    if let Some((count, who)) = worst {
        findings.lines.push(format!("at most {count} per recipient ({who}; limit {at_most})"));
    }
}

/// `resolved`: no all-clear before `after`, and one per channel (and listed recipient) within
/// `limit_us` of it. Returns the slowest all-clear's delay when every one arrived in time.
fn judge_all_clear(
    findings: &mut Findings,
    spec: &Notify,
    after_trigger: &[Message<'_>],
    trigger: &Moment<'_>,
    after: &Moment<'_>,
    limit_us: u64,
    end_us: u64,
) -> Option<u64> {
    let all_clear = |channel: Channel| {
        move |m: &Message<'_>| m.channel == channel.name() && m.class == Class::AllClear
    };
    for message in after_trigger.iter().filter(|m| m.received_us < after.at_us) {
        let Some(channel) = spec.channels.iter().find(|c| all_clear(**c)(message)) else {
            continue;
        };
        let note = format!(
            "premature all-clear on {} at {}, {} before {}",
            channel.name(),
            plus(message.received_us.saturating_sub(trigger.at_us)),
            format_duration_us(after.at_us - message.received_us),
            after.what
        );
        findings.fail(message.event, note);
    }
    let from_after: Vec<Message<'_>> =
        after_trigger.iter().copied().filter(|m| m.received_us >= after.at_us).collect();
    let before = findings.failures.len() + findings.unsettled.len();
    let mut slowest = 0;
    for &channel in &spec.channels {
        let counted = first(&from_after, all_clear(channel));
        if let Some(message) = counted {
            slowest = slowest.max(message.received_us - after.at_us);
        }
        let since = after.what.clone();
        judge_arrival(
            findings,
            after,
            &Arrival {
                label: format!("all-clear on {}", channel.name()),
                part: "all-clear",
                channel,
                recipient: None,
                since: &since,
                first: counted,
                limit_us,
            },
            end_us,
        );
        for recipient in spec.recipients.get(&channel).into_iter().flatten() {
            let to_them = first(&from_after, |m| all_clear(channel)(m) && m.to(recipient));
            judge_arrival(
                findings,
                after,
                &Arrival {
                    label: format!("all-clear on {} to {recipient}", channel.name()),
                    part: "all-clear",
                    channel,
                    recipient: Some(recipient),
                    since: &since,
                    first: to_them,
                    limit_us,
                },
                end_us,
            );
        }
    }
    (findings.failures.len() + findings.unsettled.len() == before).then_some(slowest)
}

fn notify_expected(spec: &Notify) -> String {
    let channels: Vec<&str> = spec.channels.iter().map(|c| c.name()).collect();
    let deadlines: Vec<std::time::Duration> = spec.within.iter().map(|d| d.within).collect();
    let within = if deadlines.windows(2).all(|w| w[0] == w[1]) {
        format!("within {}", format_duration_us(micros(deadlines.first().copied())))
    } else {
        let each: Vec<String> = spec
            .within
            .iter()
            .map(|d| format!("{} {}", d.channel.name(), format_duration_us(micros(Some(d.within)))))
            .collect();
        format!("within {}", each.join(", "))
    };
    let mut expected =
        format!("told on {} {within} after {}", channels.join(", "), trigger_words(&spec.on));
    if let Some(spread) = spec.spread {
        expected.push_str(&format!(", at most {} apart", format_duration_us(micros(Some(spread)))));
    }
    if !spec.recipients.is_empty() {
        let count: usize = spec.recipients.values().map(Vec::len).sum();
        expected.push_str(&format!(", each of {} too", super::count(count, "listed recipient")));
    }
    if !spec.contains.is_empty() {
        let words: Vec<String> = spec.contains.iter().map(|w| format!("`{w}`")).collect();
        expected.push_str(&format!(", saying {}", words.join(", ")));
    }
    if let Some(pattern) = &spec.matches {
        expected.push_str(&format!(", matching `{pattern}`"));
    }
    if let Some(at_most) = spec.at_most {
        expected.push_str(&format!(", at most {at_most} per channel and recipient"));
    }
    if let Some(resolved) = &spec.resolved {
        expected.push_str(&format!(
            "; an all-clear within {} after {} and none before",
            format_duration_us(micros(Some(resolved.within))),
            trigger_words(&resolved.after)
        ));
    }
    expected
}

/// `maintenance-notice`: per channel (and per listed recipient), the earliest notice received at
/// or before the step's start must have arrived at least `lead-time` before it. A notice is, on
/// `status-page`, a scheduled maintenance (status `scheduled`); on the other channels a message
/// about planned work — it names `maintenance`, `planned`, `scheduled` or an upgrade and is not an
/// all-clear — so an incident alert sent earlier is not a notice. `contains` applies to every
/// counted notice.
pub(super) fn maintenance_notice(journal: &Timeline<'_>, spec: &MaintenanceNotice) -> Judged {
    let step = &spec.before;
    let lead_us = micros(Some(spec.lead_time));
    let lead = format_duration_us(lead_us);
    let channels: Vec<&str> = spec.channels.iter().map(|c| c.name()).collect();
    let expected =
        format!("a notice on {} at least {lead} before `{step}` starts", channels.join(", "));
    let Some(start) = journal.step_start(step) else {
        let summary = format!("`{step}` never ran");
        return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary);
    };
    let start_us = start.offset_us;
    let messages = journal.messages();
    let mut findings = Findings::default();
    findings.evidence.push(Evidence::at(start, format!("`{step}` started at {}", plus(start_us))));
    let mut shortest: Option<u64> = None;
    let mut judged_content: Vec<u64> = Vec::new();
    for &channel in &spec.channels {
        let notices: Vec<&Message<'_>> = messages
            .iter()
            .filter(|m| m.channel == channel.name() && m.received_us <= start_us)
            .filter(|m| match channel {
                Channel::StatusPage => {
                    m.class == Class::Maintenance
                        && m.detail["status"].as_str() == Some("scheduled")
                }
                _ => m.class == Class::Notice,
            })
            .collect();
        let mut counted: Vec<&Message<'_>> = Vec::new();
        let first = notices.first().copied();
        counted.extend(first);
        let notice =
            NoticeArrival { channel, recipient: None, message: first, start, step, lead_us };
        judge_notice(&mut findings, &notice, &mut shortest);
        for recipient in spec.recipients.get(&channel).into_iter().flatten() {
            let to_them = notices.iter().copied().find(|m| m.to(recipient));
            counted.extend(to_them);
            let notice = NoticeArrival { recipient: Some(recipient), message: to_them, ..notice };
            judge_notice(&mut findings, &notice, &mut shortest);
        }
        for message in counted {
            if judged_content.contains(&message.event.seq) {
                continue;
            }
            judged_content.push(message.event.seq);
            let problems = content_problems(message, &spec.contains, None);
            if !problems.is_empty() {
                let to = message.recipients.join(", ");
                findings.fail(
                    message.event,
                    format!(
                        "{} to {to} (notice at {}): {}",
                        channel.name(),
                        plus(message.received_us),
                        problems.join(", ")
                    ),
                );
            }
        }
    }
    let passed = match shortest {
        Some(shortest) => format!(
            "every channel told at least {} ahead (lead time {lead})",
            format_duration_us(shortest)
        ),
        None => "every channel told in time".to_owned(),
    };
    findings.judged(expected, passed)
}

/// One channel's (or listed recipient's) earliest notice before an upgrade step.
#[derive(Clone, Copy)]
struct NoticeArrival<'m, 'a> {
    channel: Channel,
    recipient: Option<&'m str>,
    message: Option<&'m Message<'a>>,
    start: &'a Event,
    step: &'m str,
    lead_us: u64,
}

/// Judge one notice against the lead time; records lines, evidence and a timing, and keeps the
/// shortest lead seen in `shortest`.
fn judge_notice(
    findings: &mut Findings,
    notice: &NoticeArrival<'_, '_>,
    shortest: &mut Option<u64>,
) {
    let NoticeArrival { channel, recipient, message, start, step, lead_us } = *notice;
    let start_us = start.offset_us;
    let lead = format_duration_us(lead_us);
    let label = match recipient {
        Some(recipient) => format!("{} to {recipient}", channel.name()),
        None => channel.name().to_owned(),
    };
    let mut timing = ChannelTiming {
        part: "notice".into(),
        channel: channel.name().into(),
        recipient: recipient.map(str::to_owned),
        reference: format!("`{step}` started"),
        reference_us: start_us,
        arrival_us: None,
        limit_us: lead_us,
        margin_us: None,
        outcome: "missing".into(),
    };
    let what = if channel == Channel::StatusPage { "scheduled maintenance" } else { "notice" };
    match message {
        Some(message) => {
            let ahead = start_us - message.received_us;
            timing.arrival_us = Some(message.received_us);
            timing.margin_us = Some(signed(ahead) - signed(lead_us));
            if ahead >= lead_us {
                *shortest = Some(shortest.map_or(ahead, |s: u64| s.min(ahead)));
                let note = format!(
                    "{label}: {what} at {}, {} before `{step}` ({} to spare; lead time {lead})",
                    plus(message.received_us),
                    format_duration_us(ahead),
                    format_duration_us(ahead - lead_us)
                );
                findings.evidence.push(Evidence::at(message.event, note.clone()));
                findings.lines.push(note);
                timing.outcome = "on-time".into();
            } else {
                let note = format!(
                    "{label}: {what} at {}, only {} before `{step}` ({} short; lead time {lead})",
                    plus(message.received_us),
                    format_duration_us(ahead),
                    format_duration_us(lead_us - ahead)
                );
                findings.fail(message.event, note);
                timing.outcome = "late".into();
            }
        }
        None => {
            let note = format!("{label}: no {what} before `{step}` started at {}", plus(start_us));
            findings.fail(start, note);
        }
    }
    findings.timings.push(timing);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use indexmap::IndexMap;
    use serde_json::json;

    use super::super::fixtures::*;
    use super::*;
    use crate::checks::evaluate;
    use crate::journal::EventKind;
    use crate::scenario::model::{ChannelDeadline, ExpectationKind, Resolved};

    use CheckStatus::{Failed, NotEvaluated, Passed};

    const EMAIL: Channel = Channel::Email;
    const SMS: Channel = Channel::Sms;
    const STATUS: Channel = Channel::StatusPage;

    /// A notification on `channel` to `to`, received at the event's own time (the journal helper
    /// records it at that time too).
    fn message(
        at_ms: u64,
        channel: Channel,
        to: &[&str],
        subject: Option<&str>,
        body: &str,
        detail: serde_json::Value,
    ) -> (u64, EventKind) {
        (
            at_ms,
            EventKind::NotificationReceived {
                sink: "sink".into(),
                channel: channel.name().into(),
                received_us: at_ms * 1_000,
                from: None,
                recipients: to.iter().map(|t| (*t).to_owned()).collect(),
                subject: subject.map(Into::into),
                body: body.into(),
                detail,
            },
        )
    }

    fn alert(at_ms: u64, channel: Channel, to: &[&str]) -> (u64, EventKind) {
        match channel {
            Channel::StatusPage => message(
                at_ms,
                channel,
                to,
                Some("Billing outage"),
                "Billing is down",
                json!({"status": "investigating"}),
            ),
            Channel::Email => message(
                at_ms,
                channel,
                to,
                Some("[FIRING:1] billing outage"),
                "billing is down",
                json!(null),
            ),
            _ => message(
                at_ms,
                channel,
                to,
                None,
                "ALERT: billing outage, billing is down",
                json!(null),
            ),
        }
    }

    fn all_clear(at_ms: u64, channel: Channel, to: &[&str]) -> (u64, EventKind) {
        match channel {
            Channel::StatusPage => message(
                at_ms,
                channel,
                to,
                Some("Billing outage"),
                "Billing is back",
                json!({"status": "resolved"}),
            ),
            Channel::Email => message(
                at_ms,
                channel,
                to,
                Some("[RESOLVED] billing outage"),
                "billing is back",
                json!(null),
            ),
            _ => message(at_ms, channel, to, None, "RESOLVED: billing is back", json!(null)),
        }
    }

    fn kill(at_ms: u64) -> (u64, EventKind) {
        (at_ms, started(0, "kill billing"))
    }

    fn spec(channels: &[Channel], within_s: u64) -> Notify {
        Notify {
            on: Trigger::Step { step: "kill billing".into(), event: StepMoment::Started },
            channels: channels.to_vec(),
            within: channels
                .iter()
                .map(|&channel| ChannelDeadline { channel, within: Duration::from_secs(within_s) })
                .collect(),
            spread: None,
            recipients: IndexMap::new(),
            contains: Vec::new(),
            matches: None,
            at_most: None,
            resolved: None,
        }
    }

    fn notify_kind(spec: Notify) -> ExpectationKind {
        ExpectationKind::Notify(Box::new(spec))
    }

    fn three() -> Notify {
        spec(&[EMAIL, SMS, STATUS], 90)
    }

    #[test]
    fn deadlines_per_channel() {
        check_cases(
            notify_kind(three()),
            vec![
                case(
                    "all in time",
                    Passed,
                    "told on every channel in time; slowest `status-page` +54.1s",
                    vec![
                        kill(10_000),
                        alert(22_300, EMAIL, &["ops@acme.test"]),
                        alert(40_000, SMS, &["+15550001"]),
                        alert(64_100, STATUS, &["page"]),
                    ],
                ),
                case(
                    "one late, by how much",
                    Failed,
                    "sms: +1m34.2s, 4.2s late (deadline 1m30s)",
                    vec![
                        kill(10_000),
                        alert(22_300, EMAIL, &["ops@acme.test"]),
                        alert(64_100, STATUS, &["page"]),
                        alert(104_200, SMS, &["+15550001"]),
                    ],
                ),
                case(
                    "two late",
                    Failed,
                    "email: +1m40s, 10s late (deadline 1m30s); sms: +1m34.2s, 4.2s late (deadline 1m30s)",
                    vec![
                        kill(10_000),
                        alert(64_100, STATUS, &["page"]),
                        alert(104_200, SMS, &["+15550001"]),
                        alert(110_000, EMAIL, &["ops@acme.test"]),
                    ],
                ),
                case(
                    "missing past the deadline",
                    Failed,
                    "status-page: missing — not received within the run, 2m0s after the trigger (deadline 1m30s)",
                    vec![
                        kill(10_000),
                        alert(22_300, EMAIL, &["ops@acme.test"]),
                        alert(40_000, SMS, &["+15550001"]),
                        (130_000, teardown()),
                    ],
                ),
                case(
                    "missing, run cut short",
                    NotEvaluated,
                    "status-page: missing — not received within the run, 50s after the trigger, before its 1m30s deadline",
                    vec![
                        kill(10_000),
                        alert(22_300, EMAIL, &["ops@acme.test"]),
                        alert(40_000, SMS, &["+15550001"]),
                        (60_000, teardown()),
                    ],
                ),
                case(
                    "before the trigger and all-clears do not count",
                    Failed,
                    "sms: missing — not received within the run, 1m50s after the trigger (deadline 1m30s)",
                    vec![
                        alert(5_000, SMS, &["+15550001"]),
                        kill(10_000),
                        alert(22_300, EMAIL, &["ops@acme.test"]),
                        all_clear(30_000, SMS, &["+15550001"]),
                        alert(64_100, STATUS, &["page"]),
                        (120_000, later()),
                    ],
                ),
                case(
                    "trigger never happened",
                    NotEvaluated,
                    "the trigger never happened: `kill billing` never ran",
                    vec![alert(22_300, EMAIL, &["ops@acme.test"])],
                ),
            ],
        );
        let mut different = spec(&[EMAIL, SMS], 90);
        different.within[1].within = Duration::from_secs(20);
        check_cases(
            notify_kind(different),
            vec![case(
                "sms has its own deadline",
                Failed,
                "sms: +30s, 10s late (deadline 20s)",
                vec![
                    kill(10_000),
                    alert(22_300, EMAIL, &["ops@acme.test"]),
                    alert(40_000, SMS, &["+15550001"]),
                ],
            )],
        );
    }

    #[test]
    fn an_all_clear_worded_after_the_outage_is_not_the_alert() {
        // "billing outage resolved": the first status word is `outage`, but it is an all-clear.
        check_cases(
            notify_kind(spec(&[SMS], 90)),
            vec![case(
                "only the all-clear arrived",
                Failed,
                "sms: missing — not received within the run, 1m50s after the trigger (deadline 1m30s)",
                vec![
                    kill(10_000),
                    message(30_000, SMS, &["+1"], None, "billing outage resolved", json!(null)),
                    (120_000, later()),
                ],
            )],
        );
    }

    #[test]
    fn missing_is_judged_when_the_sinks_stopped() {
        let stopped = || EventKind::SinkStopped { sink: "sms".into() };
        check_cases(
            notify_kind(spec(&[SMS], 90)),
            vec![
                case(
                    "the sinks stopped before the deadline: not settled",
                    NotEvaluated,
                    "sms: missing — not received within the run, 50s after the trigger, before its \
                     1m30s deadline",
                    vec![kill(10_000), (60_000, stopped()), (120_000, later())],
                ),
                case(
                    "the sinks stopped after the deadline: missing",
                    Failed,
                    "sms: missing — not received within the run, 1m40s after the trigger (deadline \
                     1m30s)",
                    vec![kill(10_000), (110_000, stopped()), (120_000, later())],
                ),
            ],
        );
    }

    #[test]
    fn evidence_and_figures_per_channel() {
        let scenario = scenario(vec![notify_kind(three())]);
        let events = journal(&[
            kill(10_000),
            alert(22_300, EMAIL, &["ops@acme.test"]),
            alert(64_100, STATUS, &["page"]),
            alert(104_200, SMS, &["+15550001"]),
        ]);
        let verdict = evaluate(&scenario, &events).remove(0);
        let notes: Vec<&str> = verdict.evidence.iter().map(|e| e.note.as_str()).collect();
        assert_eq!(
            notes,
            [
                "trigger: `kill billing` started at +10s",
                "email: +12.3s, 1m17.7s to spare (deadline 1m30s)",
                "status-page: +54.1s, 35.9s to spare (deadline 1m30s)",
                "sms: +1m34.2s, 4.2s late (deadline 1m30s)",
            ]
        );
        assert_eq!(verdict.kind, "notify");
        assert_eq!(
            verdict.observed,
            "email: +12.3s, 1m17.7s to spare (deadline 1m30s); sms: +1m34.2s, 4.2s late (deadline 1m30s); status-page: +54.1s, 35.9s to spare (deadline 1m30s)"
        );
        let sms = &verdict.channels[1];
        assert_eq!((sms.channel.as_str(), sms.outcome.as_str()), ("sms", "late"));
        assert_eq!(
            (sms.reference_us, sms.arrival_us, sms.limit_us, sms.margin_us),
            (10_000_000, Some(104_200_000), 90_000_000, Some(-4_200_000))
        );
        assert_eq!(verdict.channels[0].margin_us, Some(77_700_000));
    }

    #[test]
    fn spread() {
        let mut with_spread = three();
        with_spread.spread = Some(Duration::from_secs(30));
        check_cases(
            notify_kind(with_spread),
            vec![
                case(
                    "close together",
                    Passed,
                    "told on every channel in time; slowest `status-page` +30s; spread 18s",
                    vec![
                        kill(10_000),
                        alert(22_000, EMAIL, &["a"]),
                        alert(30_000, SMS, &["b"]),
                        alert(40_000, STATUS, &["c"]),
                    ],
                ),
                case(
                    "too far apart",
                    Failed,
                    "spread 42.1s: `email` first at +12s, `status-page` last at +54.1s (at most 30s)",
                    vec![
                        kill(10_000),
                        alert(22_000, EMAIL, &["a"]),
                        alert(30_000, SMS, &["b"]),
                        alert(64_100, STATUS, &["c"]),
                    ],
                ),
                case(
                    "a channel missing long after the first",
                    Failed,
                    "status-page: missing — not received within the run, 1m40s after the trigger (deadline 1m30s); spread more than 30s: `status-page` not received 30s after `email` (+12s)",
                    vec![
                        kill(10_000),
                        alert(22_000, EMAIL, &["a"]),
                        alert(30_000, SMS, &["b"]),
                        (110_000, later()),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn recipients_content_and_floods() {
        let mut listed = spec(&[EMAIL, SMS], 90);
        listed.recipients.insert(SMS, vec!["+15550001".into(), "+1 555-0002".into()]);
        check_cases(
            notify_kind(listed.clone()),
            vec![
                case(
                    "everyone told",
                    Passed,
                    "told on every channel in time; slowest `sms` +20s",
                    vec![
                        kill(10_000),
                        alert(20_000, EMAIL, &["ops@acme.test"]),
                        alert(30_000, SMS, &["+15550001"]),
                        alert(35_000, SMS, &["+15550002"]),
                    ],
                ),
                case(
                    "one recipient never told",
                    Failed,
                    "sms to +1 555-0002: missing — not received within the run, 1m50s after the trigger (deadline 1m30s)",
                    vec![
                        kill(10_000),
                        alert(20_000, EMAIL, &["ops@acme.test"]),
                        alert(30_000, SMS, &["+15550001"]),
                        (120_000, later()),
                    ],
                ),
            ],
        );
        let mut worded = spec(&[EMAIL, SMS], 90);
        worded.contains = vec!["Billing".into(), "outage".into()];
        worded.matches = Some("(?i)billing.*(down|outage)".into());
        check_cases(
            notify_kind(worded),
            vec![
                case(
                    "says what and that it is an outage",
                    Passed,
                    "told on every channel in time; slowest `sms` +20s",
                    vec![
                        kill(10_000),
                        alert(20_000, EMAIL, &["ops@acme.test"]),
                        alert(30_000, SMS, &["+15550001"]),
                    ],
                ),
                case(
                    "vague wording",
                    Failed,
                    "sms to +15550001 (+20s): does not contain `Billing`, does not contain `outage`, does not match `(?i)billing.*(down|outage)`",
                    vec![
                        kill(10_000),
                        alert(20_000, EMAIL, &["ops@acme.test"]),
                        message(
                            30_000,
                            SMS,
                            &["+15550001"],
                            None,
                            "We are seeing some issues",
                            json!(null),
                        ),
                        alert(31_000, SMS, &["+15550001"]),
                    ],
                ),
            ],
        );
        let mut limited = spec(&[SMS], 90);
        limited.at_most = Some(2);
        check_cases(
            notify_kind(limited),
            vec![
                case(
                    "an alert and its all-clear",
                    Passed,
                    "told on every channel in time; slowest `sms` +10s",
                    vec![
                        kill(10_000),
                        alert(20_000, SMS, &["+15550001", "+15550002"]),
                        all_clear(80_000, SMS, &["+15550001"]),
                    ],
                ),
                case(
                    "a flood",
                    Failed,
                    "flood on sms: +15550001 got 3 messages from the trigger on (at most 2; message 3 at +30s)",
                    vec![
                        kill(10_000),
                        alert(20_000, SMS, &["+15550001"]),
                        alert(30_000, SMS, &["+15550002"]),
                        alert(35_000, SMS, &["+15550001"]),
                        alert(40_000, SMS, &["+15550001"]),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn all_clear_after_restore() {
        let mut resolving = spec(&[EMAIL, SMS, STATUS], 90);
        resolving.resolved = Some(Resolved {
            after: Trigger::Step { step: "start billing".into(), event: StepMoment::Started },
            within: Duration::from_secs(60),
        });
        let outage = || {
            vec![
                kill(10_000),
                alert(20_000, EMAIL, &["ops@acme.test"]),
                alert(21_000, SMS, &["+15550001"]),
                alert(22_000, STATUS, &["page"]),
                (70_000, started(1, "start billing")),
            ]
        };
        let with = |mut timeline: Vec<(u64, EventKind)>, extra: Vec<(u64, EventKind)>| {
            timeline.extend(extra);
            sorted(timeline)
        };
        check_cases(
            notify_kind(resolving),
            vec![
                case(
                    "all-clear in time",
                    Passed,
                    "told on every channel in time; slowest `status-page` +12s; all-clear within 30s",
                    with(
                        outage(),
                        vec![
                            all_clear(80_000, EMAIL, &["ops@acme.test"]),
                            all_clear(90_000, SMS, &["+15550001"]),
                            all_clear(100_000, STATUS, &["page"]),
                        ],
                    ),
                ),
                case(
                    "premature all-clear",
                    Failed,
                    "premature all-clear on sms at +40s, 20s before `start billing` started",
                    with(
                        outage(),
                        vec![
                            all_clear(50_000, SMS, &["+15550001"]),
                            all_clear(80_000, EMAIL, &["ops@acme.test"]),
                            all_clear(90_000, SMS, &["+15550001"]),
                            all_clear(100_000, STATUS, &["page"]),
                        ],
                    ),
                ),
                case(
                    "late and missing all-clears",
                    Failed,
                    "all-clear on sms: +1m10s, 10s late (deadline 1m0s); all-clear on status-page: missing — not received within the run, 1m20s after `start billing` started (deadline 1m0s)",
                    with(
                        outage(),
                        vec![
                            all_clear(80_000, EMAIL, &["ops@acme.test"]),
                            all_clear(140_000, SMS, &["+15550001"]),
                            (150_000, later()),
                        ],
                    ),
                ),
                case(
                    "restore never happened",
                    NotEvaluated,
                    "all-clear: not judged, `start billing` never ran",
                    vec![
                        kill(10_000),
                        alert(20_000, EMAIL, &["ops@acme.test"]),
                        alert(21_000, SMS, &["+15550001"]),
                        alert(22_000, STATUS, &["page"]),
                    ],
                ),
            ],
        );
    }

    fn on(trigger: Trigger) -> ExpectationKind {
        let mut notify = spec(&[SMS], 30);
        notify.on = trigger;
        notify_kind(notify)
    }

    #[test]
    fn triggers() {
        let step = |event| Trigger::Step { step: "upgrade billing".into(), event };
        let upgrade = || {
            vec![
                (1_000, EventKind::PhaseStarted { phase: Phase::Steps }),
                (2_000, started(0, "upgrade billing")),
                (
                    10_000,
                    stage("upgrade billing", UpgradeStage::Failed, false, "not healthy within 5s"),
                ),
                (15_000, stage("upgrade billing", UpgradeStage::RolledBack, true, "")),
                (16_000, ended(0, "upgrade billing")),
            ]
        };
        let sms_at = |ms| {
            let mut timeline = upgrade();
            timeline.push(alert(ms, SMS, &["+1"]));
            sorted(timeline)
        };
        check_cases(
            on(step(StepMoment::Failed)),
            vec![case(
                "failed: from the failed stage",
                Passed,
                "told on every channel in time; slowest `sms` +20s",
                sms_at(30_000),
            )],
        );
        check_cases(
            on(step(StepMoment::RolledBack)),
            vec![case("rolled back", Failed, "sms: +35s, 5s late (deadline 30s)", sms_at(50_000))],
        );
        check_cases(
            on(step(StepMoment::Ended)),
            vec![case(
                "ended",
                Passed,
                "told on every channel in time; slowest `sms` +14s",
                sms_at(30_000),
            )],
        );
        check_cases(
            on(step(StepMoment::Restored)),
            vec![case(
                "restored: the rollback",
                Passed,
                "told on every channel in time; slowest `sms` +15s",
                sms_at(30_000),
            )],
        );
        let kill_for = || {
            vec![
                (1_000, EventKind::PhaseStarted { phase: Phase::Steps }),
                (
                    2_000,
                    EventKind::StepStarted {
                        index: 0,
                        step: "kill billing".into(),
                        action: "kill".into(),
                    },
                ),
                (
                    2_000,
                    EventKind::ContainerAction {
                        service: "billing".into(),
                        action: "kill".into(),
                        signal: Some("SIGKILL".into()),
                        undo: false,
                        ok: true,
                        error: None,
                    },
                ),
                (4_000, down("billing")),
                (
                    62_000,
                    EventKind::ContainerAction {
                        service: "billing".into(),
                        action: "start".into(),
                        signal: None,
                        undo: true,
                        ok: true,
                        error: None,
                    },
                ),
                (62_500, ended(0, "kill billing")),
                alert(70_000, SMS, &["+1"]),
            ]
        };
        check_cases(
            on(Trigger::Step { step: "kill billing".into(), event: StepMoment::Restored }),
            vec![
                case(
                    "restored: the undo",
                    Passed,
                    "told on every channel in time; slowest `sms` +8s",
                    kill_for(),
                ),
                case(
                    "nothing undone",
                    NotEvaluated,
                    "the trigger never happened: `kill billing` undid nothing (no revert, undo or rollback)",
                    vec![(2_000, started(0, "kill billing")), (3_000, ended(0, "kill billing"))],
                ),
            ],
        );
        check_cases(
            on(Trigger::Unhealthy("billing".into())),
            vec![
                case(
                    "first failed health check",
                    Failed,
                    "sms: +1m6s, 36s late (deadline 30s)",
                    kill_for(),
                ),
                case(
                    "unhealthy before the timeline does not count, but unhealthy at its start does",
                    Passed,
                    "told on every channel in time; slowest `sms` +9s",
                    vec![
                        (500, down("billing")),
                        (1_000, EventKind::PhaseStarted { phase: Phase::Steps }),
                        alert(10_000, SMS, &["+1"]),
                    ],
                ),
                case(
                    "never unhealthy",
                    NotEvaluated,
                    "the trigger never happened: `billing` never became unhealthy",
                    vec![
                        (500, up("billing")),
                        (1_000, EventKind::PhaseStarted { phase: Phase::Steps }),
                    ],
                ),
            ],
        );
        let fault = |ok| EventKind::FaultApplied {
            step: "partition db".into(),
            fault: 1,
            kind: "partition".into(),
            service: "db".into(),
            replica: "db".into(),
            ok,
            detail: String::new(),
            previous: json!(null),
            link: None,
        };
        check_cases(
            on(Trigger::Fault("partition db".into())),
            vec![case(
                "fault applied",
                Passed,
                "told on every channel in time; slowest `sms` +5s",
                vec![
                    (2_000, started(0, "partition db")),
                    (3_000, fault(false)),
                    (5_000, fault(true)),
                    alert(10_000, SMS, &["+1"]),
                ],
            )],
        );
        check_cases(
            on(Trigger::Marker("alert fired".into())),
            vec![case(
                "marker",
                Passed,
                "told on every channel in time; slowest `sms` +1s",
                vec![
                    (
                        2_000,
                        EventKind::StepStarted {
                            index: 3,
                            step: "alert fired".into(),
                            action: "mark".into(),
                        },
                    ),
                    alert(3_000, SMS, &["+1"]),
                ],
            )],
        );
    }

    #[test]
    fn what_counts_as_an_all_clear() {
        let cases = [
            ("status-page", None, "", json!({"status": "resolved"}), Class::AllClear),
            ("status-page", None, "resolved soon", json!({"status": "identified"}), Class::Alert),
            ("status-page", None, "", json!({"status": "scheduled"}), Class::Maintenance),
            ("page", None, "", json!({"event_action": "resolve"}), Class::AllClear),
            ("page", None, "", json!({"event_action": "acknowledge"}), Class::Other),
            ("page", None, "resolved", json!({"event_action": "trigger"}), Class::Alert),
            ("webhook", None, "{}", json!({"json": {"status": "resolved"}}), Class::AllClear),
            ("webhook", None, "resolved", json!({"json": {"status": "firing"}}), Class::Alert),
            ("email", Some("[RESOLVED] BillingDown"), "", json!(null), Class::AllClear),
            (
                "email",
                Some("[FIRING:1] BillingDown"),
                "we will tell you when resolved",
                json!(null),
                Class::Alert,
            ),
            ("sms", None, "All clear: billing is back", json!(null), Class::AllClear),
            ("sms", None, "billing recovered", json!(null), Class::AllClear),
            ("sms", None, "billing unresolved outage", json!(null), Class::Alert),
            (
                "sms",
                None,
                "OUTAGE: billing is down. We will tell you when it is resolved.",
                json!(null),
                Class::Alert,
            ),
            ("sms", None, "RESOLVED: the billing outage is over", json!(null), Class::AllClear),
            ("voice", None, "Billing is down; all clear follows.", json!(null), Class::Alert),
            // The whole message decides, not its first status word.
            ("sms", None, "billing outage resolved", json!(null), Class::AllClear),
            ("sms", None, "Billing down since 10:02, now recovered", json!(null), Class::AllClear),
            (
                "email",
                Some("billing outage"),
                "The outage is resolved.",
                json!(null),
                Class::AllClear,
            ),
            ("sms", None, "billing outage: not resolved yet", json!(null), Class::Alert),
            (
                "email",
                Some("[FIRING] billing outage: BillingDown"),
                "OUTAGE: billing is down\nWe will tell you as soon as it is resolved.",
                json!(null),
                Class::Alert,
            ),
            // Planned work is a notice: an alert for `notify`, the only kind `maintenance-notice`
            // counts.
            (
                "sms",
                None,
                "Planned maintenance of billing on Sat 22:00",
                json!(null),
                Class::Notice,
            ),
            (
                "email",
                Some("Billing upgrade"),
                "Billing is upgraded on Sat.",
                json!(null),
                Class::Notice,
            ),
        ];
        for (channel, subject, body, detail, class) in cases {
            assert_eq!(
                classify(channel, subject, body, &detail),
                class,
                "{channel} {subject:?} {body}"
            );
        }
        assert_eq!(normalise_recipient(" +1 (555) 000-1 "), "+15550001");
        assert_eq!(normalise_recipient("<Ops@Acme.test>"), "ops@acme.test");
    }

    #[test]
    fn maintenance_notices() {
        let kind = ExpectationKind::MaintenanceNotice(MaintenanceNotice {
            before: "upgrade billing".into(),
            channels: vec![SMS, Channel::Chat, STATUS],
            lead_time: Duration::from_secs(20),
            recipients: IndexMap::new(),
            contains: Vec::new(),
        });
        let scheduled = |ms| {
            message(
                ms,
                STATUS,
                &["page"],
                Some("Billing upgrade"),
                "Planned",
                json!({"status": "scheduled"}),
            )
        };
        let notice =
            |ms, channel| message(ms, channel, &["x"], None, "Maintenance at 12:00", json!(null));
        let upgrade = (40_000, started(2, "upgrade billing"));
        check_cases(
            kind,
            vec![
                case(
                    "every channel ahead",
                    Passed,
                    "every channel told at least 25s ahead (lead time 20s)",
                    vec![
                        notice(5_000, SMS),
                        notice(10_000, Channel::Chat),
                        scheduled(15_000),
                        upgrade.clone(),
                    ],
                ),
                case(
                    "one too late",
                    Failed,
                    "chat: notice at +30s, only 10s before `upgrade billing` (10s short; lead time 20s)",
                    vec![
                        notice(5_000, SMS),
                        scheduled(15_000),
                        notice(30_000, Channel::Chat),
                        upgrade.clone(),
                    ],
                ),
                case(
                    "an incident is not a scheduled maintenance",
                    Failed,
                    "status-page: no scheduled maintenance before `upgrade billing` started at +40s",
                    vec![
                        notice(5_000, SMS),
                        notice(10_000, Channel::Chat),
                        alert(15_000, STATUS, &["page"]),
                        upgrade.clone(),
                        scheduled(45_000),
                    ],
                ),
                case(
                    "an earlier incident alert is not a notice",
                    Failed,
                    "sms: notice at +30s, only 10s before `upgrade billing` (10s short; lead time 20s)",
                    vec![
                        alert(5_000, SMS, &["x"]),
                        notice(10_000, Channel::Chat),
                        scheduled(15_000),
                        notice(30_000, SMS),
                        upgrade.clone(),
                    ],
                ),
                case(
                    "never upgraded",
                    NotEvaluated,
                    "`upgrade billing` never ran",
                    vec![notice(5_000, SMS)],
                ),
            ],
        );
    }

    #[test]
    fn maintenance_notices_per_recipient_and_content() {
        let kind = ExpectationKind::MaintenanceNotice(MaintenanceNotice {
            before: "upgrade billing".into(),
            channels: vec![SMS],
            lead_time: Duration::from_secs(20),
            recipients: IndexMap::from([(SMS, vec!["+1 555 0001".into(), "+15550002".into()])]),
            contains: vec!["billing".into()],
        });
        let notice = |ms, to: &str, body: &str| message(ms, SMS, &[to], None, body, json!(null));
        let upgrade = (40_000, started(2, "upgrade billing"));
        check_cases(
            kind,
            vec![
                case(
                    "everyone told in time, with the words",
                    Passed,
                    "every channel told at least 30s ahead (lead time 20s)",
                    vec![
                        notice(5_000, "+15550001", "Planned maintenance of billing at 22:00"),
                        notice(10_000, "+15550002", "Planned maintenance of billing at 22:00"),
                        upgrade.clone(),
                    ],
                ),
                case(
                    "one recipient told too late",
                    Failed,
                    "sms to +15550002: notice at +30s, only 10s before `upgrade billing` (10s \
                     short; lead time 20s)",
                    vec![
                        notice(5_000, "+15550001", "Planned maintenance of billing at 22:00"),
                        notice(30_000, "+15550002", "Planned maintenance of billing at 22:00"),
                        upgrade.clone(),
                    ],
                ),
                case(
                    "one recipient never told",
                    Failed,
                    "sms to +15550002: no notice before `upgrade billing` started at +40s",
                    vec![
                        notice(5_000, "+15550001", "Planned maintenance of billing at 22:00"),
                        upgrade.clone(),
                    ],
                ),
                case(
                    "a notice without the words",
                    Failed,
                    "sms to +15550002 (notice at +10s): does not contain `billing`",
                    vec![
                        notice(5_000, "+15550001", "Planned maintenance of billing at 22:00"),
                        notice(10_000, "+15550002", "Planned maintenance at 22:00"),
                        upgrade.clone(),
                    ],
                ),
            ],
        );
    }
}
