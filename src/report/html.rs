//! `report.html`: one self-contained page for people — no external assets, no JavaScript, inline
//! CSS and SVG, readable offline and printable.
//!
//! Per run: a verdict card, the error when the harness could not finish, the timeline (a lane per
//! service, step, fault and phase bars, probe and action markers), the key figures, every check
//! with its evidence, the steps, and service logs captured on failure. Times are offsets from the
//! run's start. Every string from the journal is escaped: it holds user text.

use std::fmt::Write as _;

use super::figures::{KeyFigures, key_figures};
use super::json::{CheckReport, Ending, REPORT_FORMAT_VERSION, Report, RunStatus};
use super::record::RunRecord;
use super::text::{self, duration, html, offset};
use super::timeline::{self, State};
use crate::checks::CheckStatus;
use crate::journal::EventKind;

pub(crate) const STYLE: &str = r#"
:root { --ink: #1f2328; --muted: #59606b; --line: #d8dce1; --soft: #f6f7f9;
  --pass: #2e8b57; --fail: #c93c3c; --warn: #b26b00; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1240px; padding: 24px; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 22px; margin: 0; }
h3 { font-size: 16px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--soft); border-radius: 4px; padding: 0 3px; }
pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft);
  border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; white-space: pre-wrap;
  overflow-wrap: anywhere; margin: 8px 0; }
.muted { color: var(--muted); }
header.page { display: flex; justify-content: space-between; align-items: baseline;
  border-bottom: 2px solid var(--ink); padding-bottom: 8px; margin-bottom: 20px; }
.verdict { display: flex; gap: 20px; align-items: stretch; border: 1px solid var(--line);
  border-left: 10px solid var(--muted); border-radius: 8px; padding: 16px 20px; margin-bottom: 16px; }
.verdict.completed { border-left-color: var(--pass); }
.verdict.deviated, .verdict.aborted { border-left-color: var(--fail); }
.verdict.interrupted { border-left-color: var(--warn); }
.verdict .word { font-size: 30px; font-weight: 800; letter-spacing: .02em; min-width: 190px; }
.completed .word { color: var(--pass); } .deviated .word, .aborted .word { color: var(--fail); }
.interrupted .word { color: var(--warn); }
.verdict > div:last-child { flex: 1; }
.verdict p { margin: 4px 0; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 6px 18px;
  margin: 10px 0 0; }
.facts div { margin: 0; } .facts dt { color: var(--muted); font-size: 12px; } .facts dd { margin: 0; }
.error { border: 1px solid var(--fail); border-radius: 8px; padding: 10px 14px; background: #fdf3f3; }
.error h3 { margin-top: 0; border: 0; color: var(--fail); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; font-size: 11px; font-weight: 700; text-transform: uppercase;
  letter-spacing: .04em; border-radius: 10px; padding: 1px 8px; color: #fff; background: var(--muted); }
.badge.passed, .badge.ok, .badge.completed { background: var(--pass); }
.badge.failed, .badge.deviated, .badge.aborted { background: var(--fail); }
.badge.not-evaluated, .badge.interrupted, .badge.not-finished { background: var(--warn); }
.check { border: 1px solid var(--line); border-left: 6px solid var(--muted); border-radius: 6px;
  padding: 10px 14px; margin: 10px 0; }
.check.passed { border-left-color: var(--pass); } .check.failed { border-left-color: var(--fail); }
.check.not-evaluated { border-left-color: var(--warn); }
.check h4 { display: inline; font-size: 15px; margin: 0 6px; }
.check .summary { margin: 6px 0; font-weight: 500; }
.check dl { display: grid; grid-template-columns: 90px 1fr; gap: 2px 10px; margin: 6px 0; }
.check dt { color: var(--muted); } .check dd { margin: 0; }
.channels { border-collapse: collapse; margin: 6px 0; font-size: 13px; }
.channels th, .channels td { text-align: left; padding: 2px 10px 2px 0; border-bottom: 1px solid var(--line); }
.channels tr.ok td:last-child { color: var(--pass); } .channels tr.failed td:last-child { color: var(--fail); font-weight: 600; }
.channels tr.not-finished td:last-child { color: var(--warn); }
.evidence { list-style: none; padding: 0; margin: 6px 0 0; }
.evidence li { padding: 2px 0; border-top: 1px dashed var(--line); }
.evidence time { display: inline-block; min-width: 80px; font-variant-numeric: tabular-nums;
  color: var(--muted); }
.evidence .seq { display: inline-block; min-width: 44px; color: var(--muted); font-size: 12px; }
.timeline { display: block; max-width: 100%; height: auto; border: 1px solid var(--line);
  border-radius: 6px; background: #fff; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 8px 0 0; padding: 0;
  list-style: none; font-size: 12.5px; color: var(--muted); }
.legend .swatch { display: inline-block; width: 14px; height: 12px; border-radius: 2px;
  vertical-align: -1px; margin-right: 5px; border: 1px solid rgba(0,0,0,.15); }
.legend .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
  border: 1.5px solid var(--ink); vertical-align: -1px; margin-right: 5px; }
.legend .diamond { display: inline-block; width: 9px; height: 9px; background: #8e5bb5;
  transform: rotate(45deg); margin-right: 6px; }
.legend .tri { display: inline-block; width: 0; height: 0; border-left: 5px solid transparent;
  border-right: 5px solid transparent; border-top: 8px solid var(--ink); margin-right: 5px; }
section.run + section.run { margin-top: 48px; border-top: 2px solid var(--ink); padding-top: 16px; }
footer { margin-top: 40px; font-size: 12px; color: var(--muted); }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .check, .verdict, table, .timeline, pre { break-inside: avoid; }
  h3 { break-after: avoid; }
  section.run + section.run { break-before: page; border-top: 0; margin-top: 0; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// Render `report.html` for one or several runs.
pub fn render_html(runs: &[RunRecord]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = match runs {
        [run] => {
            format!("firedrill: {} {}", run.report.scenario.name, text::run_word(run.report.status))
        }
        _ => format!("firedrill: {} scenarios", runs.len()),
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        html(&title)
    );
    let _ = writeln!(
        out,
        "<header class=\"page\"><h1>firedrill rehearsal report</h1>\
         <span class=\"muted\">{}</span></header>",
        html(&text::count(runs.len(), "scenario"))
    );
    if runs.len() > 1 {
        overview(&mut out, runs);
    }
    for (i, run) in runs.iter().enumerate() {
        render_run(&mut out, run, i + 1);
    }
    let version = runs.first().map_or(env!("CARGO_PKG_VERSION"), |r| &r.report.firedrill_version);
    let _ = write!(
        out,
        "<footer>Rendered from <code>journal.jsonl</code> by firedrill {} (report format {}). \
         Times are offsets from each run's start.</footer>\n</body>\n</html>\n",
        html(version),
        REPORT_FORMAT_VERSION
    );
    out
}

fn overview(out: &mut String, runs: &[RunRecord]) {
    out.push_str(
        "<table class=\"overview\"><thead><tr><th>verdict</th><th>scenario</th>\
         <th>checks passed</th><th>took</th></tr></thead><tbody>\n",
    );
    for (i, run) in runs.iter().enumerate() {
        let report = &run.report;
        let _ = writeln!(
            out,
            "<tr><td><span class=\"badge {}\">{}</span></td><td><a href=\"#run-{}\">{}</a></td>\
             <td class=\"num\">{}/{}</td><td class=\"num\">{}</td></tr>",
            status_class(report.status),
            text::run_word(report.status),
            i + 1,
            html(&report.scenario.name),
            report.counts.passed,
            report.checks.len(),
            duration(report.duration_ms * 1_000)
        );
    }
    out.push_str("</tbody></table>\n");
}

fn render_run(out: &mut String, run: &RunRecord, number: usize) {
    let report = &run.report;
    let _ = writeln!(out, "<section class=\"run\" id=\"run-{number}\">");
    verdict_card(out, run);
    if let Some(error) = &report.error {
        let _ = writeln!(
            out,
            "<div class=\"error\"><h3>The harness could not finish the run</h3><pre>{}</pre></div>",
            html(error)
        );
    }
    out.push_str("<h3>Timeline</h3>\n");
    let timeline = timeline::build(&run.events);
    if timeline.lanes.is_empty() && timeline.phases.is_empty() {
        out.push_str("<p class=\"muted\">The journal has nothing to draw.</p>\n");
    } else {
        out.push_str(&timeline::render_svg(&timeline));
        out.push('\n');
        legend(out, &timeline);
    }
    figures(out, report, &key_figures(&run.events));
    let _ = writeln!(out, "<h3>Checks ({})</h3>", report.checks.len());
    if report.checks.is_empty() {
        out.push_str("<p class=\"muted\">The scenario has no <code>expect</code> entries.</p>\n");
    }
    for check in &report.checks {
        check_card(out, check);
    }
    steps(out, report);
    logs(out, run);
    out.push_str("</section>\n");
}

fn verdict_card(out: &mut String, run: &RunRecord) {
    let report = &run.report;
    let _ = write!(
        out,
        "<div class=\"verdict {}\"><div class=\"word\">{}</div><div>\
         <h2>{}</h2>",
        status_class(report.status),
        text::run_word(report.status),
        html(&report.scenario.name)
    );
    if let Some(description) = run.description() {
        let _ = write!(out, "<p>{}</p>", html(description.trim()));
    }
    let meaning = match report.status {
        RunStatus::Completed if report.checks.is_empty() => {
            "Nothing was checked: the scenario has no `expect:` entries."
        }
        RunStatus::Completed => "Every check held.",
        RunStatus::Deviated => "The rehearsal ran and a check did not hold.",
        RunStatus::Aborted => "The harness could not run the scenario to its end.",
        RunStatus::Interrupted => {
            "The run was interrupted before its end; checks it did not get to are not evaluated."
        }
    };
    let _ = write!(out, "<p class=\"muted\">{meaning}</p><dl class=\"facts\">");
    let counts = &report.counts;
    let mut checks = format!("{}/{} passed", counts.passed, report.checks.len());
    if counts.failed > 0 {
        let _ = write!(checks, ", {} failed", counts.failed);
    }
    if counts.not_evaluated > 0 {
        let _ = write!(checks, ", {} not evaluated", counts.not_evaluated);
    }
    let mut facts = vec![("checks", html(&checks)), ("took", duration(report.duration_ms * 1_000))];
    if let Some(run_id) = &report.run_id {
        facts.push(("run", format!("<code>{}</code>", html(run_id))));
    }
    facts.push(("scenario file", format!("<code>{}</code>", html(&report.scenario.file))));
    if let Some(started) = report.started_at {
        facts.push(("started (UTC)", html(&started.strftime("%Y-%m-%d %H:%M:%S").to_string())));
    }
    if let Some(timing) = &report.timing {
        facts.push((
            "harness overhead",
            format!("{} ({}%)", duration(timing.overhead_ms * 1_000), timing.overhead_percent),
        ));
    }
    for (name, value) in facts {
        let _ = write!(out, "<div><dt>{name}</dt><dd>{value}</dd></div>");
    }
    out.push_str("</dl></div></div>\n");
}

fn legend(out: &mut String, timeline: &timeline::Timeline) {
    out.push_str("<ul class=\"legend\">");
    for state in State::ALL {
        let _ = write!(
            out,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            timeline::state_color(state),
            state.word()
        );
    }
    out.push_str(
        "<li><span class=\"dot\" style=\"background:#fff\"></span>probe ok</li>\
         <li><span class=\"dot\" style=\"background:#d64545\"></span>probe failed</li>\
         <li><span class=\"tri\"></span>container action by the harness</li>\
         <li><span class=\"swatch\" style=\"background:repeating-linear-gradient(45deg,#f1f2f4 0 3px,#c9ced6 3px 5px)\"></span>teardown / not finished</li>",
    );
    if timeline.lanes.iter().any(|lane| {
        lane.markers.iter().any(|m| matches!(m.kind, timeline::MarkerKind::Upgrade { .. }))
    }) {
        out.push_str("<li><span class=\"diamond\"></span>upgrade stage (red: failed)</li>");
    }
    if !timeline.traffic.is_empty() {
        out.push_str(
            "<li>traffic: <span class=\"swatch\" style=\"background:#2e8b57\"></span>all ok \
             <span class=\"swatch\" style=\"background:#d98e04\"></span>some failed \
             <span class=\"swatch\" style=\"background:#c93c3c\"></span>most failed; \
             the line is the median latency</li>",
        );
    }
    out.push_str("</ul>\n");
}

fn figures(out: &mut String, report: &Report, figures: &KeyFigures) {
    out.push_str("<h3>Key figures</h3>\n");
    if !figures.faults.is_empty() {
        out.push_str(
            "<table><thead><tr><th>fault</th><th>service</th><th>detected after</th>\
             <th>unhealthy for</th><th>healthy after the fault was cleared</th></tr></thead><tbody>\n",
        );
        for fault in &figures.faults {
            let what = format!(
                "<code>{}</code> <span class=\"muted\">at {}</span>",
                html(&fault.step),
                offset(fault.started_us)
            );
            if fault.outages.is_empty() {
                let _ = writeln!(
                    out,
                    "<tr><td>{what}</td><td colspan=\"4\" class=\"muted\">no service \
                     became unhealthy</td></tr>"
                );
            }
            for (i, outage) in fault.outages.iter().enumerate() {
                let cleared = match (fault.cleared_us, outage.healthy_after_clear_us) {
                    (None, _) => "fault not cleared".to_owned(),
                    (Some(_), None) => "—".to_owned(),
                    (Some(_), Some(us)) => duration(us),
                };
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    if i == 0 { what.as_str() } else { "" },
                    html(&outage.service),
                    duration(outage.detected_after_us),
                    outage.unhealthy_for_us.map_or("never healthy again".into(), duration),
                    cleared
                );
            }
        }
        out.push_str("</tbody></table>\n");
    }
    if !figures.upgrades.is_empty() {
        out.push_str(
            "<table><thead><tr><th>upgrade</th><th>service</th><th>outcome</th>\
             <th>time to detect</th><th>time to roll back</th><th>time to restore</th>\
             <th>error budget used</th></tr></thead><tbody>\n",
        );
        for upgrade in &figures.upgrades {
            let budget: Vec<String> = text::error_budget(upgrade)
                .into_iter()
                .map(|(traffic, used)| format!("<code>{}</code> {}", html(&traffic), html(&used)))
                .collect();
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code> <span class=\"muted\">at {}</span></td>\
                 <td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                html(&upgrade.step),
                offset(upgrade.started_us),
                html(&upgrade.service),
                text::upgrade_word(upgrade.outcome),
                text::maybe_duration(upgrade.time_to_detect_us),
                text::maybe_duration(upgrade.time_to_roll_back_us),
                text::maybe_duration(upgrade.time_to_restore_us),
                if budget.is_empty() { "—".to_owned() } else { budget.join("<br>") }
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if !figures.traffic.is_empty() {
        out.push_str(
            "<table><thead><tr><th>traffic</th><th>requests</th><th>failed</th>\
             <th>availability</th><th>p50</th><th>p95</th><th>lost writes</th></tr></thead>\
             <tbody>\n",
        );
        for traffic in &figures.traffic {
            let writes = traffic.writes.as_ref().map_or("not verified".to_owned(), |w| {
                format!("{} of {} acknowledged", w.lost, w.acknowledged)
            });
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}%</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td>{writes}</td></tr>",
                html(&traffic.traffic),
                traffic.requests,
                traffic.failed,
                traffic.availability_percent,
                text::maybe_duration(traffic.p50_latency_us),
                text::maybe_duration(traffic.p95_latency_us),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if !report.phases.is_empty() {
        out.push_str(
            "<table><thead><tr><th>phase</th><th>started</th><th>took</th><th>outcome</th>\
             </tr></thead><tbody>\n",
        );
        for phase in &report.phases {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                text::phase_key(phase.phase),
                offset(phase.started_offset_ms * 1_000),
                phase.duration_ms.map_or("—".into(), |ms| duration(ms * 1_000)),
                ending_badge(phase.outcome)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    match &report.timing {
        Some(timing) => {
            let _ = writeln!(
                out,
                "<p>Harness overhead: <strong>{}</strong> of {} ({}%). {}</p>",
                duration(timing.overhead_ms * 1_000),
                duration(timing.total_ms * 1_000),
                timing.overhead_percent,
                html(&super::markdown::timing_rest(timing))
            );
        }
        None => out.push_str(
            "<p class=\"muted\">Harness overhead: not measured (the run did not reach its end).</p>\n",
        ),
    }
}

fn check_card(out: &mut String, check: &CheckReport) {
    let class = check_class(check.status);
    let _ = write!(
        out,
        "<article class=\"check {class}\"><div><span class=\"badge {class}\">{}</span>\
         <h4>{}</h4><code>{}</code></div><p class=\"summary\">{}</p><dl><dt>expected</dt>\
         <dd>{}</dd><dt>observed</dt><dd>{}</dd></dl>",
        text::check_word(check.status),
        html(&check.name),
        html(&check.kind),
        rich(&check.summary),
        rich(&check.expected),
        rich(&check.observed)
    );
    if !check.channels.is_empty() {
        out.push_str("<table class=\"channels\"><thead><tr>");
        for heading in text::TIMING_HEADINGS {
            let _ = write!(out, "<th>{heading}</th>");
        }
        out.push_str("</tr></thead><tbody>");
        for timing in &check.channels {
            let class = match timing.outcome.as_str() {
                "on-time" => "ok",
                "not-settled" => "not-finished",
                _ => "failed",
            };
            let _ = write!(out, "<tr class=\"{class}\">");
            for cell in text::timing_cells(timing) {
                let _ = write!(out, "<td>{}</td>", rich(&cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
    if check.evidence.is_empty() {
        out.push_str("<p class=\"muted\">No journal event to point at.</p>");
    } else {
        out.push_str("<ol class=\"evidence\">");
        for evidence in &check.evidence {
            let _ = write!(
                out,
                "<li><time>{}</time><span class=\"seq\">#{}</span>{}</li>",
                offset(evidence.offset_us),
                evidence.seq,
                rich(&evidence.note)
            );
        }
        out.push_str("</ol>");
    }
    out.push_str("</article>\n");
}

fn steps(out: &mut String, report: &Report) {
    if report.steps.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Steps</h3>\n<table><thead><tr><th>#</th><th>step</th><th>action</th><th>started</th>\
         <th>took</th><th>outcome</th></tr></thead><tbody>\n",
    );
    for step in &report.steps {
        let mut outcome = ending_badge(step.outcome);
        if let Some(error) = &step.error {
            let _ = write!(outcome, " {}", html(error));
        }
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{outcome}</td></tr>",
            step.index + 1,
            html(&step.name),
            html(&step.action),
            offset(step.started_offset_ms * 1_000),
            step.duration_ms.map_or("—".into(), |ms| duration(ms * 1_000)),
        );
    }
    out.push_str("</tbody></table>\n");
}

fn logs(out: &mut String, run: &RunRecord) {
    let logs: Vec<(u64, &str, &str)> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ServiceLogs { service, lines } => {
                Some((e.offset_us, service.as_str(), lines.as_str()))
            }
            _ => None,
        })
        .collect();
    if logs.is_empty() {
        return;
    }
    out.push_str("<h3>Service logs captured on failure</h3>\n");
    for (at, service, lines) in logs {
        let _ = writeln!(
            out,
            "<p><code>{}</code> <span class=\"muted\">at {}</span></p><pre>{}</pre>",
            html(service),
            offset(at),
            html(lines)
        );
    }
}

/// Escaped text whose backtick-quoted parts (step and service names) become `<code>`.
fn rich(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len() % 2 == 0 {
        return html(text);
    }
    parts
        .iter()
        .enumerate()
        .map(
            |(i, part)| {
                if i % 2 == 1 { format!("<code>{}</code>", html(part)) } else { html(part) }
            },
        )
        .collect()
}

fn ending_badge(ending: Ending) -> String {
    let (class, word) = match ending {
        Ending::Ok => ("ok", "ok"),
        Ending::Failed => ("failed", "failed"),
        Ending::Interrupted => ("interrupted", "interrupted"),
        Ending::NotFinished => ("not-finished", "not finished"),
        Ending::Skipped => ("not-finished", "skipped"),
    };
    format!("<span class=\"badge {class}\">{word}</span>")
}

fn status_class(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "completed",
        RunStatus::Deviated => "deviated",
        RunStatus::Aborted => "aborted",
        RunStatus::Interrupted => "interrupted",
    }
}

fn check_class(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
        CheckStatus::NotEvaluated => "not-evaluated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    fn assert_versionless(name: &str, text: &str) {
        insta::with_settings!({ filters => vec![
            (r"firedrill \d+\.\d+\.\d+\S*", "firedrill [version]"),
        ]}, {
            insta::assert_snapshot!(name, text);
        });
    }

    #[test]
    fn html_of_a_completed_run() {
        assert_versionless("html_completed", &render_html(&[fixtures::completed()]));
    }

    #[test]
    fn html_of_a_deviated_run_has_the_timeline_and_every_check() {
        let run = fixtures::deviated();
        let page = render_html(std::slice::from_ref(&run));
        assert_eq!(page.matches("<svg class=\"timeline\"").count(), 1);
        for lane in ["db", "billing"] {
            assert!(page.contains(&format!(">{lane}</text>")), "a lane for {lane}");
        }
        assert_eq!(page.matches("<article class=\"check").count(), run.report.checks.len());
        for check in &run.report.checks {
            assert!(page.contains(&format!("<h4>{}</h4>", html(&check.name))), "{}", check.name);
        }
        assert_versionless("html_deviated", &page);
    }

    #[test]
    fn html_escapes_every_user_string() {
        let page = render_html(&[fixtures::deviated(), fixtures::aborted()]);
        assert!(!page.contains("<billing>"), "the description is escaped");
        assert!(page.contains("&lt;billing&gt; &amp; &quot;friends&quot;"));
        assert!(!page.contains("<fast>") && !page.contains("<src/main.rs>"));
        assert!(!page.contains("<timeout>"), "health details are escaped in the SVG");
        assert!(!page.contains("<script") && !page.contains("src=\"http"), "no scripts or assets");
    }

    #[test]
    fn html_of_an_aborted_run() {
        assert_versionless("html_aborted", &render_html(&[fixtures::aborted()]));
    }

    #[test]
    fn html_of_an_interrupted_and_a_crashed_run() {
        let page = render_html(&[fixtures::interrupted(), fixtures::crashed()]);
        assert_eq!(page.matches("<svg class=\"timeline\"").count(), 2);
        assert!(page.contains("href=\"#run-2\""));
        assert_versionless("html_interrupted_and_crashed", &page);
    }

    #[test]
    fn html_of_an_upgrade_under_traffic() {
        let page = render_html(&[fixtures::upgraded()]);
        assert!(page.contains(">traffic checkout</text>"), "a traffic row");
        assert!(page.contains("<td>rolled back</td>"), "the upgrade's figures");
        assert_versionless("html_upgrade", &page);
    }

    #[test]
    fn html_shows_notifications_per_channel() {
        let page = render_html(&[fixtures::notified()]);
        assert!(page.contains("<table class=\"channels\">"), "a per-channel table");
        assert!(
            page.contains("<tr class=\"failed\"><td>sms</td><td><code>kill billing</code> started at +20s</td><td>+1m54.2s (1m34.2s after)</td><td>deadline 1m30s</td><td>4.2s late</td></tr>"),
            "the late channel's row"
        );
        assert!(
            page.contains("<td>1.5s (14.5s before)</td>") || page.contains("(14.5s before)"),
            "the notice's lead"
        );
    }

    #[test]
    fn every_prefix_renders() {
        let run = fixtures::deviated();
        let scenario = fixtures::scenario(fixtures::CHECKOUT, "scenarios/checkout.yaml");
        for end in 0..=run.events.len() {
            render_html(&[fixtures::record(&scenario, run.events[..end].to_vec())]);
        }
    }
}
