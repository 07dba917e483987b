//! Small text helpers the reporters share: escaping and the words for statuses.

use super::json::RunStatus;
use crate::checks::{
    ChannelTiming, CheckStatus, UpgradeFigures, UpgradeOutcome, format_duration_us,
};
use crate::journal::Phase;

/// Escape text for HTML element content and attribute values (the journal holds user strings).
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An offset from the run's start, for people: `+1.493s`.
pub(super) fn offset(us: u64) -> String {
    format!("+{}", format_duration_us(us))
}

/// A duration for people: `1.493s`.
pub(super) fn duration(us: u64) -> String {
    format_duration_us(us)
}

/// The run's verdict in one word, as the terminal summary writes it.
pub(super) fn run_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "PASSED",
        RunStatus::Deviated => "FAILED",
        RunStatus::Aborted => "ABORTED",
        RunStatus::Interrupted => "INTERRUPTED",
    }
}

/// A check's status in words.
pub(super) fn check_word(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
        CheckStatus::NotEvaluated => "not evaluated",
    }
}

/// A phase's key, as the journal and `report.json` write it.
pub(super) fn phase_key(phase: Phase) -> &'static str {
    match phase {
        Phase::Prepare => "prepare",
        Phase::BringUp => "bring-up",
        Phase::SteadyBefore => "steady-before",
        Phase::Steps => "steps",
        Phase::SteadyAfter => "steady-after",
        Phase::Teardown => "teardown",
        Phase::Reuse => "reuse",
    }
}

/// How an upgrade ended, in words.
pub(super) fn upgrade_word(outcome: UpgradeOutcome) -> &'static str {
    match outcome {
        UpgradeOutcome::Completed => "completed",
        UpgradeOutcome::RolledBack => "rolled back",
        UpgradeOutcome::RollbackFailed => "rollback failed",
        UpgradeOutcome::Failed => "failed",
        UpgradeOutcome::Unfinished => "unfinished",
    }
}

/// A duration that may not exist: `—` then.
pub(super) fn maybe_duration(us: Option<u64>) -> String {
    us.map_or_else(|| "—".to_owned(), duration)
}

/// An upgrade's error budget use, per traffic: `checkout 2.1% (12 failed during it)`.
pub(super) fn error_budget(figures: &UpgradeFigures) -> Vec<(String, String)> {
    figures
        .error_budget
        .iter()
        .map(|budget| {
            let used = format!(
                "{:.1}% ({} of {} requests failed during it)",
                budget.used_percent, budget.failed_during, budget.requests_during
            );
            (budget.traffic.clone(), used)
        })
        .collect()
}

/// `1 check`, `2 checks`.
pub(super) fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Headings of the per-channel table of `notify` and `maintenance-notice` checks.
pub(super) const TIMING_HEADINGS: [&str; 5] =
    ["channel", "clock starts", "arrived", "limit", "result"];

/// One row of that table: channel (and recipient), reference moment, arrival, limit, result.
/// Arrivals of alerts and all-clears are written after the reference (`+12.3s`); notices before
/// it (`24.9s before`), since a notice's lead time counts back from the step's start.
pub(super) fn timing_cells(timing: &ChannelTiming) -> [String; 5] {
    let mut channel = match timing.part.as_str() {
        "alert" | "notice" | "hop" => timing.channel.clone(),
        part => format!("{part} on {}", timing.channel),
    };
    if let Some(recipient) = &timing.recipient {
        channel.push_str(&format!(" to {recipient}"));
    }
    let notice = timing.part == "notice";
    let reference = format!("{} at {}", timing.reference, offset(timing.reference_us));
    let arrived = match timing.arrival_us {
        None => "—".to_owned(),
        Some(at) if notice => {
            format!("{} ({} before)", offset(at), duration(timing.reference_us.saturating_sub(at)))
        }
        Some(at) => {
            format!("{} ({} after)", offset(at), duration(at.saturating_sub(timing.reference_us)))
        }
    };
    let limit = if notice {
        format!("lead time {}", duration(timing.limit_us))
    } else {
        format!("deadline {}", duration(timing.limit_us))
    };
    let result = match (timing.outcome.as_str(), timing.margin_us) {
        ("not-settled", _) => "not received before the run ended".to_owned(),
        ("misrouted", _) => "routed to another receiver".to_owned(),
        (_, None) => "missing".to_owned(),
        (_, Some(margin)) if margin >= 0 => format!("{} to spare", duration(margin.unsigned_abs())),
        (_, Some(margin)) if notice => format!("{} short", duration(margin.unsigned_abs())),
        (_, Some(margin)) => format!("{} late", duration(margin.unsigned_abs())),
    };
    [channel, reference, arrived, limit, result]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html(r#"<script>alert("x & 'y'")</script>"#),
            "&lt;script&gt;alert(&quot;x &amp; &#39;y&#39;&quot;)&lt;/script&gt;"
        );
    }
}
