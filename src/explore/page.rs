//! `DIR/index.html` of `firedrill explore`: one self-contained page (the run report's style, an
//! inline SVG) showing the outcome, the minimal schedule on a timeline, the shrinking steps and
//! every case tried.

use std::fmt::Write as _;
use std::time::Duration;

use super::schedule::Schedule;
use super::search::{Exploration, Phase, Verdict};
use crate::scenario::model::StepMoment;
use crate::scenario::space::Space;

/// The page for `exploration` of `space` in scenario `name`.
pub fn render(name: &str, space: &Space, exploration: &Exploration, seed: u64) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>explore {}</title>\
         <style>{}</style></head><body>\n",
        escape(name),
        crate::report::HTML_STYLE
    );
    let _ = writeln!(
        out,
        "<header class=\"page\"><h1>firedrill explore: <code>{}</code></h1><span class=\"muted\">seed {seed}</span></header>",
        escape(name)
    );
    let (class, word) = match (&exploration.found, &exploration.stop) {
        (Some(_), _) => ("deviated", "FAILING SCHEDULE"),
        (None, super::Stop::Interrupted) => ("interrupted", "INTERRUPTED"),
        (None, super::Stop::Aborted(_)) => ("aborted", "ABORTED"),
        (None, _) => ("completed", "NOTHING FAILED"),
    };
    let coverage = &exploration.coverage;
    let _ = write!(
        out,
        "<div class=\"verdict {class}\"><div class=\"word\">{word}</div><div>\
         <dl class=\"facts\"><div><dt>cases run</dt><dd>{}</dd></div>\
         <div><dt>kinds touched</dt><dd>{} of {}</dd></div>\
         <div><dt>(kind, target) pairs touched</dt><dd>{} of {}</dd></div>\
         <div><dt>stopped</dt><dd>{}</dd></div>\
         <div><dt>fault starts (@) from</dt><dd>{}</dd></div></dl>",
        coverage.cases,
        coverage.kinds_touched,
        coverage.kinds_total,
        coverage.pairs_touched,
        coverage.pairs_total,
        escape(&format!("{:?}", exploration.stop).to_lowercase()),
        escape(&match &space.at {
            None => "the group after the last step".to_owned(),
            Some((step, _)) if space.from == StepMoment::Started => format!("`{step}` started"),
            Some((step, _)) => format!("`{step}` {}", space.from.name()),
        }),
    );
    if let Some(found) = &exploration.found {
        let _ = write!(
            out,
            "<p>fails check <code>{}</code>; found as <code>{}</code>, shrunk in {} steps ({} candidates{}) to <code>{}</code> — <code>minimal.yaml</code></p>",
            escape(&found.check),
            escape(&found.first.label()),
            found.shrink_steps,
            found.candidates,
            if found.complete { "" } else { ", stopped before the end" },
            escape(&found.minimal.label()),
        );
        if !found.flaky.is_empty() {
            let _ = write!(
                out,
                "<p>{} flaky candidate(s): failed the check only sometimes</p>",
                found.flaky.len()
            );
        }
    }
    out.push_str("</div></div>\n");

    if let Some(found) = &exploration.found {
        out.push_str("<h3>Minimal schedule</h3>\n");
        out.push_str(&timeline(space, &found.minimal));
        out.push_str("<h3>Schedule first found</h3>\n");
        out.push_str(&timeline(space, &found.first));
        out.push_str("<h3>Shrinking steps</h3>\n<table><tr><th>case</th><th>schedule (smaller and still failing)</th></tr>\n");
        for case in exploration.cases.iter().filter(|c| c.accepted) {
            let _ = writeln!(
                out,
                "<tr><td class=\"num\">{}</td><td>{}</td></tr>",
                case.case,
                escape(&case.schedule.label())
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h3>Cases</h3>\n<table><tr><th>case</th><th>phase</th><th>schedule</th><th>verdict</th><th>duration</th><th></th></tr>\n");
    for case in &exploration.cases {
        let (badge, text) = match &case.verdict {
            Verdict::Held => ("passed", "held".to_owned()),
            Verdict::Failed { checks } => ("failed", format!("failed: {}", checks.join(", "))),
            Verdict::Aborted { error } => {
                ("aborted", format!("aborted: {}", error.lines().next().unwrap_or_default()))
            }
            Verdict::Interrupted => ("interrupted", "interrupted".to_owned()),
        };
        let phase = match case.phase {
            Phase::Search => "search",
            Phase::Shrink => "shrink",
        };
        let mut notes = Vec::new();
        if case.attempt > 0 {
            notes.push(format!("re-run {}", case.attempt));
        }
        if case.flaky {
            notes.push("flaky".to_owned());
        }
        if case.accepted {
            notes.push("smaller, kept".to_owned());
        }
        let _ = writeln!(
            out,
            "<tr><td class=\"num\"><a href=\"cases/{:04}/\">{}</a></td><td>{phase}</td><td>{}</td>\
             <td><span class=\"badge {badge}\">{}</span> {}</td><td class=\"num\">{:.1} s</td><td>{}</td></tr>",
            case.case,
            case.case,
            escape(&case.schedule.label()),
            badge,
            escape(&text),
            case.duration_ms as f64 / 1000.0,
            escape(&notes.join(", ")),
        );
    }
    out.push_str("</table>\n<footer>Each case's scenario, journal and report.json are in <code>cases/NNNN/</code>; every case is a line of <code>cases.jsonl</code>.</footer>\n</body></html>\n");
    out
}

/// The schedule as bars on a time axis from 0 to the window's end plus the longest `for`.
fn timeline(space: &Space, schedule: &Schedule) -> String {
    let longest =
        space.faults.iter().filter_map(|f| f.duration.map(|d| d.1)).max().unwrap_or_default();
    let horizon = (space.window.1 + longest).max(schedule.end()).max(Duration::from_secs(1));
    let (left, width, row) = (170.0, 900.0, 26.0);
    let height = 30.0 + row * schedule.faults.len().max(1) as f64;
    let x = |d: Duration| left + width * d.as_secs_f64() / horizon.as_secs_f64();
    let mut svg = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {} {height}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">",
        left + width + 20.0
    );
    // The window faults may start in.
    let _ = write!(
        svg,
        "<rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f6f7f9\"/>",
        x(space.window.0),
        (x(space.window.1) - x(space.window.0)).max(1.0),
        height - 20.0
    );
    for (i, fault) in schedule.faults.iter().enumerate() {
        let y = 6.0 + row * i as f64;
        let end = x(fault.start + fault.duration.unwrap_or_default());
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">{} {}</text><rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" rx=\"3\" fill=\"#c93c3c\"><title>{}</title></rect>",
            y + 12.0,
            escape(fault.kind.key()),
            escape(&fault.target),
            x(fault.start),
            (end - x(fault.start)).max(3.0),
            escape(&fault.label()),
        );
    }
    let axis = height - 8.0;
    let ticks = 10u32;
    for tick in 0..=ticks {
        let at = horizon * tick / ticks;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{axis:.1}\" fill=\"#59606b\" text-anchor=\"middle\">{}</text>",
            x(at),
            escape(&crate::scenario::format_duration(at))
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
