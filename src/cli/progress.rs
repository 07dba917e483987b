//! Progress on stderr: one line per phase, image, service, step and observation worth seeing, with
//! the run's elapsed time, and a spinner while waiting on a service's health when stderr is a
//! terminal. Built as a journal listener: it shows the journal, nothing else.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::journal::{Event, EventKind, Outcome, Phase, ProbeContext};

/// Shows journal events as progress lines.
pub struct Progress {
    bar: ProgressBar,
    lines: Lines,
}

/// The one-line text of a journal event worth a line (progress, and the gameday console's
/// timeline): the run's elapsed time, then what happened.
#[derive(Debug)]
pub(super) struct Lines {
    /// ANSI colours for the marks.
    pub(super) color: bool,
    /// The scenario's step count, for "step 2/5".
    pub(super) steps: usize,
}

impl Progress {
    /// A progress display for a scenario with `steps` steps.
    pub fn new(color: bool, steps: usize) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, lines: Lines { color, steps } }
    }

    /// Show one event, if it is worth a line.
    pub fn show(&self, event: &Event) {
        match &event.kind {
            EventKind::ServiceStarted { service, .. } => {
                self.bar.set_message(format!("waiting for `{service}` to be healthy"));
                self.bar.enable_steady_tick(Duration::from_millis(120));
            }
            EventKind::ServiceReady { .. } => {
                self.bar.disable_steady_tick();
                self.bar.set_message("");
            }
            _ => {}
        }
        if let Some(line) = self.lines.line(event) {
            self.bar.suspend(|| eprintln!("{line}"));
        }
    }

    /// Clear the spinner.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Lines {
    /// The line of `event`, if it is worth one.
    pub(super) fn line(&self, event: &Event) -> Option<String> {
        let t = format!("{:>7.1}s", event.offset_us as f64 / 1e6);
        match &event.kind {
            EventKind::RunStarted { run_id, scenario, .. } => {
                Some(format!("{t}  run {run_id}: scenario `{scenario}`"))
            }
            EventKind::PhaseStarted { phase } => Some(format!("{t}  {}", phase_title(*phase))),
            EventKind::PhaseEnded { phase, outcome: Outcome::Failed, error } => Some(format!(
                "{t}  {} {} failed: {}",
                self.mark(false),
                phase_title(*phase),
                // The whole error (with log lines and hint) follows on stderr at the end.
                error.as_deref().and_then(|e| e.lines().next()).unwrap_or("unknown error")
            )),
            EventKind::StackReused { earlier_runs, restored } => Some(format!(
                "{t}    stack reused (clean after {earlier_runs} earlier run(s){})",
                if restored.is_empty() {
                    String::new()
                } else {
                    format!("; restored {}", restored.join(", "))
                }
            )),
            EventKind::StackRenewed { reason } => {
                Some(format!("{t}    kept stack not reused: {reason}; bringing a fresh one up"))
            }
            EventKind::StackKept => Some(format!("{t}  stack kept for the next run")),
            EventKind::Swept { containers, networks } => Some(format!(
                "{t}    swept {} container(s) and {} network(s) left by dead runs",
                containers.len(),
                networks.len()
            )),
            EventKind::ImageReady { image, built, build_us } => Some(if *built {
                format!("{t}    built image {image} in {:.1}s", *build_us as f64 / 1e6)
            } else {
                format!("{t}    image {image} present")
            }),
            EventKind::ImagePulled { image, digest, pull_us } => Some(format!(
                "{t}    pulled image {image} ({digest}) in {:.1}s",
                *pull_us as f64 / 1e6
            )),
            EventKind::ServiceStarted { service, .. } => {
                Some(format!("{t}    started `{service}`"))
            }
            EventKind::ServiceReady { service, startup_us } => {
                Some(format!("{t}    `{service}` healthy after {:.1}s", *startup_us as f64 / 1e6))
            }
            EventKind::HealthChanged { service, healthy, detail, .. } => Some(format!(
                "{t}    health of `{service}`: {} ({detail})",
                if *healthy { "healthy" } else { "UNHEALTHY" }
            )),
            EventKind::StepStarted { index, step, .. } => {
                Some(format!("{t}    step {}/{}: {step}", index + 1, self.steps))
            }
            EventKind::StepEnded { step, outcome: Outcome::Failed, error, .. } => Some(format!(
                "{t}    {} step `{step}` failed: {}",
                self.mark(false),
                error.as_deref().unwrap_or("unknown error")
            )),
            EventKind::StepEnded { step, outcome: Outcome::Skipped, error, .. } => {
                Some(format!("{t}    step `{step}` {}", error.as_deref().unwrap_or("skipped")))
            }
            EventKind::ContainerAction { service, action, signal, undo, ok, error } => {
                let what = match signal {
                    Some(signal) => format!("{action} {signal}"),
                    None => action.clone(),
                };
                let undo = if *undo { " (undo)" } else { "" };
                Some(match error {
                    None if *ok => format!("{t}      {what} `{service}`{undo}"),
                    _ => format!(
                        "{t}      {} {what} `{service}`{undo}: {}",
                        self.mark(false),
                        error.as_deref().unwrap_or("")
                    ),
                })
            }
            EventKind::LinkStarted { link, from, to, port, .. } => Some(format!(
                "{t}    link `{link}`: `{from}` → `{to}`:{port} through the fault proxy"
            )),
            EventKind::FaultApplied { kind, link: Some(link), ok, detail, .. } => Some(if *ok {
                format!("{t}      {kind} on link `{link}`: {detail}")
            } else {
                format!("{t}      {kind} on link `{link}` FAILED: {detail}")
            }),
            EventKind::FaultReverted { kind, link: Some(link), detail, .. } => {
                Some(format!("{t}      {kind} on link `{link}` removed: {detail}"))
            }
            EventKind::FaultApplied { kind, replica, ok, detail, .. } => Some(if *ok {
                format!("{t}      {kind} `{replica}`: {detail}")
            } else {
                format!("{t}      {kind} `{replica}` FAILED: {detail}")
            }),
            EventKind::FaultReverted { kind, replica, ok, detail, .. } => Some(if *ok {
                format!("{t}      {kind} `{replica}` reverted: {detail}")
            } else {
                format!("{t}      {kind} `{replica}` NOT reverted: {detail}")
            }),
            EventKind::FaultRecovered { run_id, kind, container, outcome, detail, .. } => {
                let detail = detail.as_deref().map_or(String::new(), |d| format!(": {d}"));
                Some(format!("{t}    {kind} left by {run_id} on {container}: {outcome}{detail}"))
            }
            EventKind::ContainerEvent { service, action, exit_code }
                if action == "die" || action == "oom" =>
            {
                let code = exit_code.map_or(String::new(), |c| format!(" with code {c}"));
                Some(format!("{t}      engine: `{service}` {action}{code}"))
            }
            EventKind::ProbeResult { probe, context, ok, error, latency_us, .. } => {
                let context = match context {
                    ProbeContext::SteadyState { .. } => "steady state",
                    ProbeContext::Step { .. } => "probe",
                };
                let detail = match error {
                    Some(error) => format!(": {error}"),
                    None => format!(" in {:.1}ms", *latency_us as f64 / 1e3),
                };
                Some(format!("{t}      {} {context} `{probe}`{detail}", self.mark(*ok)))
            }
            EventKind::Upgrade { service, stage, ok, detail, .. } => {
                let stage = serde_json::to_value(stage)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let detail = detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
                let mark = if *ok { "" } else { "FAIL " };
                Some(format!("{t}      {mark}upgrade `{service}` {stage}{detail}"))
            }
            EventKind::VersionObserved { service, moment, body, .. } => {
                Some(format!("{t}      version of `{service}` {moment}: {body}"))
            }
            EventKind::TrafficStarted { traffic, rate_per_second } => {
                Some(format!("{t}    traffic `{traffic}` started at {rate_per_second}/s"))
            }
            EventKind::TrafficStopped { traffic, due } => {
                Some(format!("{t}    traffic `{traffic}` stopped: {due} due"))
            }
            EventKind::TrafficDrained { traffic, sent, late, unsent, ok } => Some(format!(
                "{t}    traffic `{traffic}` drained: {ok} ok, {sent} sent ({late} late), {unsent} never sent"
            )),
            EventKind::WritesVerified { traffic, acknowledged, found, lost, unknown, .. } => {
                Some(format!(
                    "{t}    {} writes of `{traffic}`: {found}/{acknowledged} found, {} lost, {} unverifiable",
                    self.mark(lost.is_empty() && unknown.is_empty()),
                    lost.len(),
                    unknown.len()
                ))
            }
            EventKind::SinkStarted { sink, kind, addrs } => {
                Some(format!("{t}    sink `{sink}` ({kind}) listening on {}", addrs.join(", ")))
            }
            EventKind::NotificationReceived {
                channel,
                received_us,
                recipients,
                subject,
                body,
                ..
            } => Some(format!(
                "{:>7.1}s      {channel} to {}: {}",
                *received_us as f64 / 1e6,
                if recipients.is_empty() { "-".to_owned() } else { recipients.join(", ") },
                notification_text(subject.as_deref(), body)
            )),
            EventKind::SinkRejected { sink, reason, detail } => {
                Some(format!("{t}      sink `{sink}` rejected ({reason}): {detail}"))
            }
            EventKind::SinkChaos { sink, mode, probability, on } => Some(if *on {
                let share = if *probability >= 1.0 {
                    String::new()
                } else {
                    format!(" for {:.0}% of requests", probability * 100.0)
                };
                format!("{t}      sink `{sink}` outage on: {mode}{share}")
            } else {
                format!("{t}      sink `{sink}` outage over: {mode}")
            }),
            EventKind::HumanPrompted { step, role, prompt, runbook, deadline_us, done, .. } => {
                let runbook =
                    runbook.as_deref().map(|r| format!(" — runbook: {r}")).unwrap_or_default();
                Some(format!(
                    "{t}    ▶ PROMPT {role} (`{step}`, {done} within {:.0}s): {prompt}{runbook}",
                    *deadline_us as f64 / 1e6
                ))
            }
            EventKind::HumanAcknowledged { step, role, by } => {
                Some(format!("{t}      {} {role} acknowledged `{step}` ({by})", self.mark(true)))
            }
            EventKind::HumanDecided { step, role, by, decision, service } => Some(format!(
                "{t}      {} {role} decided to {} {service} (`{step}`, {by})",
                self.mark(true),
                decision.replace('-', " ")
            )),
            EventKind::HumanActed { role, request, ok, status, error, .. } => {
                let answer = match (status, error) {
                    (Some(status), None) => status.to_string(),
                    (Some(status), Some(error)) => format!("{status}: {error}"),
                    (None, error) => error.clone().unwrap_or_default(),
                };
                Some(format!("{t}      {} {role}: {request}: {answer}", self.mark(*ok)))
            }
            EventKind::HumanEffect { step, role, effect, .. } => {
                Some(format!("{t}      {} `{step}` ({role}): {effect}", self.mark(true)))
            }
            EventKind::HumanExpired { step, role } => Some(format!(
                "{t}      {} {role} did not do `{step}` by its deadline",
                self.mark(false)
            )),
            EventKind::CallResult { service, request, ok, status, latency_us, error, .. } => {
                let answer = match (status, error) {
                    (Some(status), None) => {
                        format!("{status} in {:.1}ms", *latency_us as f64 / 1e3)
                    }
                    (Some(status), Some(error)) => format!("{status}: {error}"),
                    (None, error) => error.clone().unwrap_or_default(),
                };
                Some(format!("{t}      {} call {request} `{service}`: {answer}", self.mark(*ok)))
            }
            EventKind::ProcessKilled { replica, name, signal, processes, ok, error, .. } => {
                let what = match error {
                    Some(error) => error.clone(),
                    None => format!("{signal} to {}", processes.join(", ")),
                };
                Some(format!(
                    "{t}      {} kill-process `{name}` in `{replica}`: {what}",
                    self.mark(*ok)
                ))
            }
            EventKind::Interrupted { second: false } => Some(format!(
                "{t}  interrupted: stopping the timeline and tearing down (Ctrl-C again to kill at once)"
            )),
            EventKind::Interrupted { second: true } => {
                Some(format!("{t}  interrupted again: removing everything at once"))
            }
            // Not worth a line of their own: the journal and the reports have them. Listed, not
            // `_`, so a new event kind is a decision here.
            EventKind::PhaseEnded { .. }
            | EventKind::StepEnded { .. }
            | EventKind::ContainerEvent { .. }
            | EventKind::NetworkCreated { .. }
            | EventKind::LinkActivity { .. }
            | EventKind::SinkStopped { .. }
            | EventKind::ServiceLogs { .. }
            | EventKind::TrafficRequest { .. }
            | EventKind::TimeAccounting { .. }
            | EventKind::RunEnded { .. }
            | EventKind::CalendarSet { .. }
            | EventKind::ScenarioLoaded { .. } => None,
            EventKind::PrometheusQuery { check, source, error, .. } => Some(match error {
                None => format!("{t}      {} prometheus {source} for `{check}`", self.mark(true)),
                Some(error) => format!(
                    "{t}      {} prometheus {source} for `{check}`: {error}",
                    self.mark(false)
                ),
            }),
            EventKind::AlertmanagerAlerts { source, alerts, error, last, .. } => {
                let listed: Vec<String> = alerts
                    .iter()
                    .map(|a| {
                        let name = a.labels.get("alertname").map_or("?", String::as_str);
                        format!("{name} {} → {}", a.state, a.receivers.join(", "))
                    })
                    .collect();
                match (error, last) {
                    (_, true) => None,
                    (Some(error), _) => Some(format!(
                        "{t}      {} alertmanager {source}: {error}",
                        self.mark(false)
                    )),
                    (None, _) if listed.is_empty() => {
                        Some(format!("{t}        alertmanager {source}: no alert"))
                    }
                    (None, _) => {
                        Some(format!("{t}        alertmanager {source}: {}", listed.join("; ")))
                    }
                }
            }
        }
    }

    fn mark(&self, ok: bool) -> &'static str {
        match (ok, self.color) {
            (true, true) => "\x1b[32mok\x1b[0m",
            (true, false) => "ok",
            (false, true) => "\x1b[31mFAIL\x1b[0m",
            (false, false) => "FAIL",
        }
    }
}

/// A notification on one line: the subject, else the body's first line, at most 100 characters.
pub(super) fn notification_text(subject: Option<&str>, body: &str) -> String {
    const LIMIT: usize = 100;
    let text = subject
        .filter(|subject| !subject.trim().is_empty())
        .or_else(|| body.lines().find(|line| !line.trim().is_empty()))
        .unwrap_or("(empty)")
        .trim();
    if text.chars().count() <= LIMIT {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(LIMIT - 1).collect();
    short.push('…');
    short
}

fn phase_title(phase: Phase) -> &'static str {
    match phase {
        Phase::Prepare => "prepare: sweep leftovers, images",
        Phase::BringUp => "bring-up",
        Phase::SteadyBefore => "steady state before",
        Phase::Steps => "steps",
        Phase::SteadyAfter => "steady state after",
        Phase::Teardown => "teardown",
        Phase::Reuse => "reuse the kept stack",
    }
}

#[cfg(test)]
mod tests {
    use super::notification_text;

    #[test]
    fn a_notification_line_is_its_subject_or_first_body_line_shortened() {
        assert_eq!(notification_text(Some("[FIRING] billing"), "x"), "[FIRING] billing");
        assert_eq!(notification_text(None, "\n  OUTAGE: billing\nmore"), "OUTAGE: billing");
        assert_eq!(notification_text(Some(" "), ""), "(empty)");
        let long = "a".repeat(150);
        let short = notification_text(None, &long);
        assert_eq!(short.chars().count(), 100);
        assert!(short.ends_with('…'));
    }
}
