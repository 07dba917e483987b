//! `summary.md`: the verdict for people reading a CI page (GitHub's job summary, a merge request):
//! the verdict, a table of checks, and the key figures that exist today (time to detect each
//! fault's outage, how long it lasted, recovery once the fault was cleared, phase durations and
//! the harness's overhead).
//!
//! Every user string is escaped for GitHub-flavoured Markdown: outside code spans `<`, `>`, `&`,
//! `|` and emphasis characters are neutralised; inside code spans only `|` (which would split a
//! table cell) is.

use std::fmt::Write as _;

use super::figures::{KeyFigures, key_figures};
use super::json::{Ending, Report, RunStatus};
use super::record::RunRecord;
use super::text::{self, duration, offset};
use crate::checks::CheckStatus;

/// Render `summary.md` for one or several runs.
pub fn render_markdown(runs: &[RunRecord]) -> String {
    let mut out = String::new();
    if runs.len() > 1 {
        let held = runs.iter().filter(|r| r.report.status == RunStatus::Completed).count();
        let worst = runs.iter().map(|r| r.report.status).max_by_key(|s| severity(*s));
        let word = worst.map_or("PASSED", text::run_word);
        let _ = writeln!(out, "# firedrill: {word} ({held} of {} scenarios passed)\n", runs.len());
        out.push_str("| verdict | scenario | checks passed | took |\n|---|---|---|---|\n");
        for run in runs {
            let report = &run.report;
            let _ = writeln!(
                out,
                "| {} {} | {} | {}/{} | {} |",
                run_icon(report.status),
                text::run_word(report.status),
                code(&report.scenario.name),
                report.counts.passed,
                report.checks.len(),
                duration(report.duration_ms * 1_000)
            );
        }
        out.push('\n');
    }
    for run in runs {
        render_run(&mut out, run);
    }
    out
}

fn render_run(out: &mut String, run: &RunRecord) {
    let report = &run.report;
    let _ = writeln!(
        out,
        "## {} firedrill {}: {}\n",
        run_icon(report.status),
        code(&report.scenario.name),
        text::run_word(report.status)
    );
    let mut facts = vec![tally(report), duration(report.duration_ms * 1_000)];
    if let Some(run_id) = &report.run_id {
        facts.push(format!("run {}", code(run_id)));
    }
    facts.push(code(&report.scenario.file));
    if let Some(started) = report.started_at {
        facts.push(format!("started {}", started.strftime("%Y-%m-%d %H:%M:%S UTC")));
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    if let Some(description) = run.description() {
        let _ = writeln!(out, "> {}\n", inline(description.trim()));
    }
    if let Some(error) = &report.error {
        let _ = writeln!(out, "**Error:**\n\n{}\n", fenced(error));
    }
    match report.status {
        RunStatus::Interrupted => {
            let _ = writeln!(
                out,
                "The run was interrupted before its end: checks it did not get to are not \
                 evaluated.\n"
            );
        }
        RunStatus::Aborted => {
            let _ = writeln!(out, "The harness could not run the scenario to its end.\n");
        }
        RunStatus::Completed | RunStatus::Deviated => {}
    }
    if !report.checks.is_empty() {
        out.push_str("| status | check | expected | observed |\n|---|---|---|---|\n");
        for check in &report.checks {
            let _ = writeln!(
                out,
                "| {} {} | {} | {} | {} |",
                check_icon(check.status),
                text::check_word(check.status),
                inline(&check.name),
                inline(&check.expected),
                inline(&check.observed)
            );
        }
        out.push('\n');
        for check in report.checks.iter().filter(|c| !c.channels.is_empty()) {
            let per = if check.kind == "alert" { "per hop" } else { "per channel" };
            let _ = writeln!(out, "{} {per}:\n", inline(&format!("`{}`", check.name)));
            let _ = writeln!(
                out,
                "| {} |\n|{}",
                text::TIMING_HEADINGS.join(" | "),
                "---|".repeat(text::TIMING_HEADINGS.len())
            );
            for timing in &check.channels {
                let cells = text::timing_cells(timing).map(|cell| inline(&cell));
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            out.push('\n');
        }
    }
    render_humans(out, report);
    render_figures(out, report, &key_figures(&run.events));
}

/// Gameday: the people's times against their targets, and per channel the first message of
/// the people and of the automation, from the same moment (the first `notify` check's trigger).
fn render_humans(out: &mut String, report: &Report) {
    if report.humans.is_empty() {
        return;
    }
    out.push_str("### Gameday: people\n\n| role | step | done | after the prompt | target | margin |\n|---|---|---|---|---|---|\n");
    for human in &report.humans {
        let ms = |v: u64| duration(v * 1_000);
        let margin = human.margin_ms.map_or_else(String::new, |m| {
            if m >= 0 {
                format!("{} to spare", ms(m as u64))
            } else {
                format!("**{} late**", ms(m.unsigned_abs()))
            }
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            inline(&human.role),
            inline(&human.step),
            inline(
                human
                    .effect
                    .as_deref()
                    .or(human.acknowledged_by.as_deref().map(|_| "acknowledged"))
                    .filter(|_| human.outcome == "done")
                    .unwrap_or(&human.outcome)
            ),
            human.done_after_ms.map(ms).unwrap_or_default(),
            human.target_ms.map(ms).unwrap_or_default(),
            margin
        );
    }
    out.push('\n');
    let Some(reference) =
        report.checks.iter().flat_map(|c| &c.channels).find(|t| t.part == "alert")
    else {
        return;
    };
    let mut rows: Vec<(u64, String, String)> = Vec::new();
    for timing in report.checks.iter().flat_map(|c| &c.channels) {
        if timing.part == "alert"
            && timing.reference_us == reference.reference_us
            && timing.recipient.is_none()
            && let Some(arrival) = timing.arrival_us
        {
            rows.push((arrival, timing.channel.clone(), "automated".to_owned()));
        }
    }
    for human in &report.humans {
        if let (Some(channel), Some(after)) = (&human.channel, human.done_after_ms) {
            let at = (human.prompted_ms + after) * 1_000;
            rows.push((at, channel.clone(), format!("{} (`{}`)", human.role, human.step)));
        }
    }
    if rows.is_empty() {
        return;
    }
    rows.sort();
    let _ = writeln!(
        out,
        "Per channel, from {}:\n\n| channel | by | after |\n|---|---|---|",
        inline(&reference.reference)
    );
    for (at, channel, by) in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            inline(&channel),
            inline(&by),
            duration(at.saturating_sub(reference.reference_us))
        );
    }
    out.push('\n');
}

fn render_figures(out: &mut String, report: &Report, figures: &KeyFigures) {
    out.push_str("### Key figures\n\n");
    if !figures.faults.is_empty() {
        out.push_str(
            "| fault | service | detected after | unhealthy for | healthy after the fault was \
             cleared |\n|---|---|---|---|---|\n",
        );
        for fault in &figures.faults {
            let what = format!("{} at {}", code(&fault.step), offset(fault.started_us));
            if fault.outages.is_empty() {
                let _ = writeln!(out, "| {what} | — | no service became unhealthy | — | — |");
            }
            for (i, outage) in fault.outages.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    if i == 0 { what.as_str() } else { "" },
                    code(&outage.service),
                    duration(outage.detected_after_us),
                    outage.unhealthy_for_us.map_or("never healthy again".into(), duration),
                    match (fault.cleared_us, outage.healthy_after_clear_us) {
                        (None, _) => "fault not cleared".to_owned(),
                        (Some(_), None) => "—".to_owned(),
                        (Some(_), Some(us)) => duration(us),
                    }
                );
            }
        }
        out.push('\n');
    }
    if !figures.upgrades.is_empty() {
        out.push_str(
            "| upgrade | service | outcome | time to detect | time to roll back | time to restore \
             | error budget used |\n|---|---|---|---|---|---|---|\n",
        );
        for upgrade in &figures.upgrades {
            let budget: Vec<String> = text::error_budget(upgrade)
                .into_iter()
                .map(|(traffic, used)| format!("{} {}", code(&traffic), used))
                .collect();
            let _ = writeln!(
                out,
                "| {} at {} | {} | {} | {} | {} | {} | {} |",
                code(&upgrade.step),
                offset(upgrade.started_us),
                code(&upgrade.service),
                text::upgrade_word(upgrade.outcome),
                text::maybe_duration(upgrade.time_to_detect_us),
                text::maybe_duration(upgrade.time_to_roll_back_us),
                text::maybe_duration(upgrade.time_to_restore_us),
                if budget.is_empty() { "—".to_owned() } else { budget.join("; ") }
            );
        }
        out.push('\n');
    }
    if !figures.traffic.is_empty() {
        out.push_str(
            "| traffic | requests | failed | availability | p50 | p95 | lost writes |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for traffic in &figures.traffic {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {}% | {} | {} | {} |",
                code(&traffic.traffic),
                traffic.requests,
                traffic.failed,
                traffic.availability_percent,
                text::maybe_duration(traffic.p50_latency_us),
                text::maybe_duration(traffic.p95_latency_us),
                traffic.writes.as_ref().map_or("not verified".to_owned(), |w| format!(
                    "{} of {} acknowledged",
                    w.lost, w.acknowledged
                ))
            );
        }
        out.push('\n');
    }
    if !report.phases.is_empty() {
        out.push_str("| phase | took | outcome |\n|---|---|---|\n");
        for phase in &report.phases {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                text::phase_key(phase.phase),
                phase.duration_ms.map_or("—".into(), |ms| duration(ms * 1_000)),
                ending_word(phase.outcome)
            );
        }
        out.push('\n');
    }
    match &report.timing {
        Some(timing) => {
            let _ = writeln!(
                out,
                "Harness overhead: {} of {} ({}%). {}\n",
                duration(timing.overhead_ms * 1_000),
                duration(timing.total_ms * 1_000),
                timing.overhead_percent,
                timing_rest(timing)
            );
        }
        None => out.push_str("Harness overhead: not measured (the run did not reach its end).\n\n"),
    }
}

fn tally(report: &Report) -> String {
    let counts = &report.counts;
    let mut tally = format!("{}/{} checks passed", counts.passed, report.checks.len());
    if counts.failed > 0 {
        let _ = write!(tally, ", {} failed", counts.failed);
    }
    if counts.not_evaluated > 0 {
        let _ = write!(tally, ", {} not evaluated", counts.not_evaluated);
    }
    tally
}

fn severity(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => 0,
        RunStatus::Deviated => 1,
        RunStatus::Aborted => 2,
        RunStatus::Interrupted => 3,
    }
}

fn run_icon(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "✅",
        RunStatus::Deviated => "❌",
        RunStatus::Aborted | RunStatus::Interrupted => "⚠️",
    }
}

fn check_icon(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "✅",
        CheckStatus::Failed => "❌",
        CheckStatus::NotEvaluated => "⚠️",
    }
}

fn ending_word(ending: Ending) -> &'static str {
    match ending {
        Ending::Ok => "ok",
        Ending::Failed => "failed",
        Ending::Interrupted => "interrupted",
        Ending::NotFinished => "not finished",
        Ending::Skipped => "skipped",
    }
}

/// Where the rest of a run's time went, in one sentence: the waits overlap (a `parallel` group, traffic
/// beside an upgrade), so each is wall time with at least one such wait in progress and they need
/// not add up; older journals carry sums instead.
pub(super) fn timing_rest(timing: &super::json::Timing) -> String {
    let parts = format!(
        "Docker {}, declared waits {}, waiting on services {}",
        duration(timing.docker_ms * 1_000),
        duration(timing.declared_wait_ms * 1_000),
        duration(timing.service_wait_ms * 1_000)
    );
    let mut text = match timing.waiting_ms {
        Some(waiting) => format!(
            "The rest is waiting: {} with at least one wait in progress ({parts}; these overlap, so they need not add up).",
            duration(waiting * 1_000)
        ),
        None => format!("The rest went to waits ({parts})."),
    };
    if let Some(cpu) = timing.harness_cpu_ms {
        text.push_str(&format!(
            " The harness process used {} of CPU over the run.",
            duration(cpu * 1_000)
        ));
    }
    text
}

/// A user string as a code span (`billing`), with a fence longer than any backtick run inside.
fn code(text: &str) -> String {
    let text = one_line(text).replace('|', "\\|");
    let longest = longest_run(&text, '`');
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// A user string as inline Markdown on one line: its backtick code spans are kept (they are how
/// summaries quote step and service names), everything else is escaped.
fn inline(text: &str) -> String {
    let text = one_line(text);
    let parts: Vec<&str> = text.split('`').collect();
    // With an odd number of backticks the last one is unpaired: it and what follows are plain.
    let paired = if parts.len() % 2 == 0 { parts.len() - 1 } else { parts.len() };
    let mut out = String::with_capacity(text.len());
    for (i, part) in parts.iter().enumerate() {
        if i >= paired {
            out.push_str("\\`");
            out.push_str(&plain(part));
        } else if i % 2 == 1 {
            out.push('`');
            out.push_str(&part.replace('|', "\\|"));
            out.push('`');
        } else {
            out.push_str(&plain(part));
        }
    }
    out
}

fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' | '\\' | '*' | '_' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A fenced code block holding `text` verbatim.
fn fenced(text: &str) -> String {
    let fence = "`".repeat(longest_run(text, '`').max(2) + 1);
    format!("{fence}text\n{}\n{fence}", text.trim_end())
}

fn longest_run(text: &str, c: char) -> usize {
    let mut longest = 0;
    let mut current = 0;
    for ch in text.chars() {
        current = if ch == c { current + 1 } else { 0 };
        longest = longest.max(current);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn markdown_of_a_completed_run() {
        insta::assert_snapshot!("markdown_completed", render_markdown(&[fixtures::completed()]));
    }

    #[test]
    fn markdown_of_a_deviated_run() {
        insta::assert_snapshot!("markdown_deviated", render_markdown(&[fixtures::deviated()]));
    }

    #[test]
    fn markdown_of_an_aborted_run() {
        insta::assert_snapshot!("markdown_aborted", render_markdown(&[fixtures::aborted()]));
    }

    #[test]
    fn markdown_of_late_notifications_has_a_table_per_check() {
        let text = render_markdown(&[fixtures::notified()]);
        assert!(text.contains("| sms | `kill billing` started at +20s | +1m54.2s (1m34.2s after) | deadline 1m30s | 4.2s late |"), "{text}");
        insta::assert_snapshot!("markdown_notify", text);
    }

    #[test]
    fn markdown_of_an_upgrade_under_traffic() {
        insta::assert_snapshot!("markdown_upgrade", render_markdown(&[fixtures::upgraded()]));
    }

    #[test]
    fn markdown_of_several_runs_including_a_crashed_one() {
        let runs = [fixtures::completed(), fixtures::interrupted(), fixtures::crashed()];
        let text = render_markdown(&runs);
        assert!(text.starts_with("# firedrill: INTERRUPTED (1 of 3 scenarios passed)\n"));
        insta::assert_snapshot!("markdown_several", text);
    }

    #[test]
    fn user_strings_cannot_break_the_table_or_inject_markup() {
        assert_eq!(
            inline("a | b <img src=x> *c* `x|y` `d"),
            r"a \| b &lt;img src=x&gt; \*c\* `x\|y` \`d"
        );
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(fenced("x ``` y"), "````text\nx ``` y\n````");
    }
}
