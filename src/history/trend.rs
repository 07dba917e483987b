//! Reading the history back for people: the `history` table, and the `trend` of each key figure
//! over a scenario's runs as a terminal table and as a self-contained HTML page (inline SVG, no
//! script, like `report.html`).
//!
//! A **release** is a run whose versions (or, without versions, git commit) differ from the
//! previous run of its scenario; the plots mark it with a labelled line. A point is a
//! **regression** when the gate would have failed it against the scenario's last passing run
//! before it (the same rule as `firedrill run --baseline last-pass`, see [`regressions`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::entry::{Better, Figure, Origin, RunEntry, Unit};
use super::gate::{Regression, RegressionPolicy, judge};
use crate::report::RunStatus;

/// One run, as a trend shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRun {
    /// The run's id.
    pub run_id: String,
    /// When it started.
    pub started_at: Option<jiff::Timestamp>,
    /// How it ended.
    pub status: RunStatus,
    /// The release it starts, when it is one (its versions, else its short commit).
    pub release: Option<String>,
}

/// One figure's value in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Index into [`ScenarioTrend::runs`].
    pub run: usize,
    /// The value.
    pub value: f64,
    /// Set when the value regressed against the last passing run before it.
    pub regression: Option<(String, Regression)>,
}

/// One figure over a scenario's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureSeries {
    /// The figure's name.
    pub name: String,
    /// Its unit.
    pub unit: Unit,
    /// Which direction is better.
    pub better: Better,
    /// The runs that have it, oldest first.
    pub points: Vec<Point>,
}

/// One scenario's runs and figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioTrend {
    /// The scenario.
    pub scenario: String,
    /// Its runs, oldest first.
    pub runs: Vec<TrendRun>,
    /// Its figures, in the order they first appear.
    pub figures: Vec<FigureSeries>,
}

/// Every scenario's trend.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    /// Per scenario, in the order their first runs appear.
    pub scenarios: Vec<ScenarioTrend>,
    /// The rule regressions were found with.
    pub policy: RegressionPolicy,
}

impl Trend {
    /// Build from runs oldest first (as [`History::runs`](super::History::runs) gives them).
    pub fn build(runs: &[RunEntry], policy: RegressionPolicy) -> Trend {
        let mut scenarios: Vec<ScenarioTrend> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        // Per scenario: the last passing run so far, and the last run's release key.
        let mut state: Vec<(Option<&RunEntry>, Option<String>)> = Vec::new();
        for run in runs {
            let at = *index.entry(run.scenario.as_str()).or_insert_with(|| {
                scenarios.push(ScenarioTrend {
                    scenario: run.scenario.clone(),
                    runs: Vec::new(),
                    figures: Vec::new(),
                });
                state.push((None, None));
                scenarios.len() - 1
            });
            let trend = &mut scenarios[at];
            let (last_pass, last_key) = &mut state[at];
            let key = release_key(run);
            let release = match (&key, &*last_key) {
                (Some(key), previous) if previous.as_ref() != Some(key) => Some(key.clone()),
                _ => None,
            };
            if key.is_some() {
                *last_key = key;
            }
            let index = trend.runs.len();
            trend.runs.push(TrendRun {
                run_id: run.run_id.clone(),
                started_at: run.started_at,
                status: run.status,
                release,
            });
            for (position, figure) in run.figures.iter().enumerate() {
                // The gate's rule (`regressions`), figure by figure: runs of a scenario mostly
                // list their figures in the same order, so look at the same position first.
                let regression = last_pass.and_then(|baseline| {
                    let same = |b: &&Figure| b.name == figure.name && b.unit == figure.unit;
                    let before = baseline
                        .figures
                        .get(position)
                        .filter(same)
                        .or_else(|| baseline.figures.iter().find(same))?;
                    judge(before, figure, policy).map(|r| (baseline.run_id.clone(), r))
                });
                let point = Point { run: index, value: figure.value, regression };
                let series = match trend.figures.get(position) {
                    Some(series) if series.name == figure.name => Some(position),
                    _ => trend.figures.iter().position(|s| s.name == figure.name),
                };
                match series {
                    Some(at) => trend.figures[at].points.push(point),
                    None => trend.figures.push(FigureSeries {
                        name: figure.name.clone(),
                        unit: figure.unit,
                        better: figure.better,
                        points: vec![point],
                    }),
                }
            }
            if run.status == RunStatus::Completed {
                *last_pass = Some(run);
            }
        }
        Trend { scenarios, policy }
    }
}

fn release_key(run: &RunEntry) -> Option<String> {
    let versions = run.version_label();
    if !versions.is_empty() {
        return Some(versions);
    }
    run.git_commit.as_ref().map(|commit| commit.chars().take(10).collect())
}

fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "passed",
        RunStatus::Deviated => "failed",
        RunStatus::Aborted => "aborted",
        RunStatus::Interrupted => "interrupted",
    }
}

fn when(at: Option<jiff::Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
}

/// A plain text table, columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, width) in cells.zip(&widths) {
            let pad = width - cell.chars().count();
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', pad + 2));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `firedrill history`: one line per run, oldest first (UTC start times).
pub fn render_history_table(runs: &[RunEntry]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let total = run.counts.passed + run.counts.failed + run.counts.not_evaluated;
            let status = match run.origin {
                Origin::Run => status_word(run.status).to_owned(),
                Origin::Imported => format!("{} (imported)", status_word(run.status)),
            };
            vec![
                when(run.started_at),
                run.run_id.clone(),
                run.scenario.clone(),
                status,
                format!("{}/{total}", run.counts.passed),
                run.version_label(),
                run.git_commit.as_deref().map_or("-".to_owned(), |c| c.chars().take(10).collect()),
            ]
        })
        .collect();
    table(&["started (UTC)", "run", "scenario", "status", "checks", "versions", "commit"], &rows)
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

fn sparkline(values: &[f64]) -> String {
    let (min, max) = bounds(values.iter().copied());
    values
        .iter()
        .map(|v| {
            if max <= min {
                SPARKS[3]
            } else {
                SPARKS[(((v - min) / (max - min)) * 7.0).round() as usize]
            }
        })
        .collect()
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// `firedrill trend`: per scenario, one line per figure (first, latest, best, worst, a sparkline
/// of the last 40 runs, how many runs regressed).
pub fn render_trend_text(trend: &Trend) -> String {
    let mut out = String::new();
    for scenario in &trend.scenarios {
        let releases = scenario.runs.iter().filter(|r| r.release.is_some()).count();
        let _ = writeln!(
            out,
            "`{}`: {} run(s), {} release(s), {} to {}",
            scenario.scenario,
            scenario.runs.len(),
            releases,
            when(scenario.runs.first().and_then(|r| r.started_at)),
            when(scenario.runs.last().and_then(|r| r.started_at)),
        );
        let rows: Vec<Vec<String>> = scenario
            .figures
            .iter()
            .map(|series| {
                let values: Vec<f64> = series.points.iter().map(|p| p.value).collect();
                let (min, max) = bounds(values.iter().copied());
                let (best, worst) = match series.better {
                    Better::Lower => (min, max),
                    Better::Higher => (max, min),
                };
                let regressed = series.points.iter().filter(|p| p.regression.is_some()).count();
                let tail = &values[values.len().saturating_sub(40)..];
                vec![
                    format!("  {}", series.name),
                    values.len().to_string(),
                    series.unit.format(values[0]),
                    series.unit.format(values[values.len() - 1]),
                    series.unit.format(best),
                    series.unit.format(worst),
                    sparkline(tail),
                    if regressed == 0 { "-".to_owned() } else { regressed.to_string() },
                ]
            })
            .collect();
        out.push_str(&table(
            &["  figure", "runs", "first", "latest", "best", "worst", "trend", "regressions"],
            &rows,
        ));
        // The latest run's regressions in full: that is what a reader acts on.
        let last = scenario.runs.len().saturating_sub(1);
        for series in &scenario.figures {
            if let Some(Point { run, regression: Some((baseline, regression)), .. }) =
                series.points.last()
                && *run == last
            {
                let current = &scenario.runs[last].run_id;
                let _ = writeln!(
                    out,
                    "  REGRESSED: {}",
                    regression.describe(baseline, current, trend.policy.max_percent)
                );
            }
        }
        out.push('\n');
    }
    out
}

fn escape(text: &str) -> String {
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

const STYLE: &str = r#"
:root { --ink: #1f2328; --muted: #59606b; --line: #d8dce1; --soft: #f6f7f9;
  --pass: #2e8b57; --fail: #c93c3c; --series: #2563eb; --release: #7c3aed; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1240px; padding: 24px; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 4px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 18px 0 4px; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--soft); padding: 1px 4px; border-radius: 4px; }
.muted { color: var(--muted); }
.regressed { color: var(--fail); font-weight: 600; }
svg.plot { display: block; width: 100%; max-width: 960px; height: auto; }
svg.plot .axis { stroke: var(--line); stroke-width: 1; }
svg.plot .series { fill: none; stroke: var(--series); stroke-width: 2; }
svg.plot .point { fill: var(--series); }
svg.plot .point.failed { fill: #fff; stroke: var(--muted); stroke-width: 1.5; }
svg.plot .regression { fill: var(--fail); stroke: var(--fail); }
svg.plot .release { stroke: var(--release); stroke-width: 1.5; stroke-dasharray: 5 4; }
svg.plot text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg.plot text.release-label { fill: var(--release); font-weight: 600; }
"#;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 24.0;
/// Above this many runs a plot draws its line and the regressions, not every run's dot.
const MAX_DOTS: usize = 300;

/// `firedrill trend --html FILE`: a self-contained page with one plot per key figure and
/// scenario.
pub fn render_trend_html(trend: &Trend) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>firedrill trend</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>firedrill trend</h1>\n<p class=\"muted\">Each plot is one key figure over a \
         scenario's runs, oldest on the left. Dashed lines mark releases (the versions, or \
         without versions the commit, changed). Red points regressed: worse than the \
         scenario's last passing run before them by more than {}% (and more than the noise \
         floor). Hollow points are runs that did not pass.</p>\n",
        trend.policy.max_percent
    );
    if trend.scenarios.is_empty() {
        out.push_str("<p>No runs recorded.</p>\n");
    }
    for scenario in &trend.scenarios {
        let releases = scenario.runs.iter().filter(|r| r.release.is_some()).count();
        let _ = writeln!(
            out,
            "<section class=\"scenario\">\n<h2><code>{}</code></h2>\n<p class=\"muted\">{} run(s), \
             {} release(s), {} to {} (UTC)</p>",
            escape(&scenario.scenario),
            scenario.runs.len(),
            releases,
            when(scenario.runs.first().and_then(|r| r.started_at)),
            when(scenario.runs.last().and_then(|r| r.started_at)),
        );
        // What every plot of the scenario shares (the x axis): drawn once, copied per plot.
        let shared = shared_markup(scenario);
        // Every regression point's title names its run's start: formatted once per run, not
        // once per plot (strftime was the page's largest cost).
        let started: Vec<String> = scenario.runs.iter().map(|run| when(run.started_at)).collect();
        for series in &scenario.figures {
            plot(&mut out, scenario, series, trend.policy.max_percent, &shared, &started);
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The x position of run `run` of `runs`.
fn x_of(run: usize, runs: usize) -> f64 {
    let runs = runs.max(2) as f64;
    LEFT + (WIDTH - LEFT - RIGHT) * run as f64 / (runs - 1.0)
}

/// The run labels under the axis and the release lines: the same in every plot of a scenario.
fn shared_markup(scenario: &ScenarioTrend) -> String {
    let mut out = String::new();
    let bottom = HEIGHT - BOTTOM;
    // The first and the latest run under the axis, for orientation.
    if let (Some(first), Some(last)) = (scenario.runs.first(), scenario.runs.last()) {
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{}\">{} {}</text>",
            HEIGHT - 6.0,
            escape(&first.run_id),
            when(first.started_at)
        );
        if scenario.runs.len() > 1 {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} {}</text>",
                WIDTH - RIGHT,
                HEIGHT - 6.0,
                escape(&last.run_id),
                when(last.started_at)
            );
        }
    }
    for (index, run) in scenario.runs.iter().enumerate() {
        let Some(release) = &run.release else { continue };
        let at = x_of(index, scenario.runs.len());
        let release = escape(release);
        let _ = writeln!(
            out,
            "<line class=\"release\" x1=\"{at:.1}\" y1=\"{}\" x2=\"{at:.1}\" y2=\"{bottom}\">\
             <title>release {release}: first run {}</title></line>\
             <text class=\"release-label\" x=\"{:.1}\" y=\"12\">{release}</text>",
            TOP - 8.0,
            escape(&run.run_id),
            at + 3.0,
        );
    }
    out
}

/// `{value:.1}` for the coordinates of a polyline, without the float formatter (a third of the
/// page's cost): the value in tenths, rounded. Near a tie (where `{:.1}` rounds the exact
/// binary value, half to even) and outside the plot's range it asks the formatter, so the text
/// is always what `{:.1}` writes.
fn push_tenths(out: &mut String, value: f64) {
    let scaled = value * 10.0;
    let tenths = scaled.round();
    if !(0.0..1e12).contains(&tenths) || (scaled.fract() - 0.5).abs() < 1e-6 {
        let _ = write!(out, "{value:.1}");
        return;
    }
    let tenths = tenths as u64;
    let _ = write!(out, "{}.{}", tenths / 10, tenths % 10);
}

fn plot(
    out: &mut String,
    scenario: &ScenarioTrend,
    series: &FigureSeries,
    max_percent: f64,
    shared: &str,
    started: &[String],
) {
    let direction = match series.better {
        Better::Lower => "lower is better",
        Better::Higher => "higher is better",
    };
    let _ = writeln!(
        out,
        "<h3>{} <span class=\"muted\">({direction})</span></h3>",
        escape(&series.name)
    );
    if let Some(Point { run, regression: Some((baseline, regression)), .. }) = series.points.last()
        && *run + 1 == scenario.runs.len()
    {
        let _ = writeln!(
            out,
            "<p class=\"regressed\">{}</p>",
            escape(&regression.describe(baseline, &scenario.runs[*run].run_id, max_percent))
        );
    }
    let (mut min, mut max) = bounds(series.points.iter().map(|p| p.value));
    if series.unit == Unit::Percent || min > 0.0 {
        min = min.min(0.0);
    }
    if max <= min {
        max = min + 1.0;
    }
    let x = |run: usize| x_of(run, scenario.runs.len());
    let y = |value: f64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - (value - min) / (max - min));
    let _ = writeln!(
        out,
        "<svg class=\"plot\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(&series.name)
    );
    let (bottom, top) = (HEIGHT - BOTTOM, TOP);
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{top}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        WIDTH - RIGHT,
        LEFT - 6.0,
        top + 4.0,
        escape(&series.unit.format(max)),
        LEFT - 6.0,
        bottom,
        escape(&series.unit.format(min)),
    );
    out.push_str(shared);
    out.push_str("<polyline class=\"series\" points=\"");
    for (i, point) in series.points.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_tenths(out, x(point.run));
        out.push(',');
        push_tenths(out, y(point.value));
    }
    out.push_str("\"/>\n");
    let dots = series.points.len() <= MAX_DOTS;
    for point in &series.points {
        let run = &scenario.runs[point.run];
        let (class, radius) = match (&point.regression, run.status) {
            (Some(_), _) => ("point regression", 5.5),
            (None, _) if !dots => continue,
            (None, RunStatus::Completed) => ("point", 3.5),
            (None, _) => ("point failed", 3.5),
        };
        let mut title = format!(
            "{} · {} · {} · {}",
            run.run_id,
            started[point.run],
            status_word(run.status),
            series.unit.format(point.value)
        );
        if let Some((baseline, regression)) = &point.regression {
            title.push_str(" · ");
            title.push_str(&regression.describe(baseline, &run.run_id, max_percent));
        }
        let _ = write!(out, "<circle class=\"{class}\" cx=\"");
        push_tenths(out, x(point.run));
        out.push_str("\" cy=\"");
        push_tenths(out, y(point.value));
        let _ = writeln!(out, "\" r=\"{radius}\"><title>{}</title></circle>", escape(&title));
    }
    out.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::store::tests::entry;

    const POLICY: RegressionPolicy = RegressionPolicy { max_percent: 20.0, floor_ms: 100.0 };

    fn runs() -> Vec<RunEntry> {
        let mut runs = vec![
            entry("fd-1", "release", 1, 1_000.0),
            entry("fd-2", "release", 2, 1_050.0),
            entry("fd-3", "release", 3, 2_000.0),
            entry("fd-4", "release", 4, 1_900.0),
        ];
        runs[2].status = RunStatus::Deviated;
        runs[2].versions.insert("billing".into(), "2.1".into());
        runs[3].versions.insert("billing".into(), "2.1".into());
        runs
    }

    #[test]
    fn releases_and_regressions_against_the_last_pass() {
        let trend = Trend::build(&runs(), POLICY);
        let scenario = &trend.scenarios[0];
        let releases: Vec<Option<&str>> =
            scenario.runs.iter().map(|r| r.release.as_deref()).collect();
        assert_eq!(releases, [Some("billing 2.0"), None, Some("billing 2.1"), None]);
        let restore = &scenario.figures[0];
        let regressed: Vec<Option<&str>> = restore
            .points
            .iter()
            .map(|p| p.regression.as_ref().map(|(baseline, _)| baseline.as_str()))
            .collect();
        // fd-3 failed, so fd-4 is still compared with fd-2, the last pass.
        assert_eq!(regressed, [None, None, Some("fd-2"), Some("fd-2")]);
    }

    #[test]
    fn the_terminal_trend_names_the_latest_regression() {
        let text = render_trend_text(&Trend::build(&runs(), POLICY));
        assert!(text.starts_with("`release`: 4 run(s), 2 release(s), "), "{text}");
        assert!(
            text.contains(
                "time-to-restore (upgrade billing)  4     1.000s  1.900s  1.000s  2.000s"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "REGRESSED: `time-to-restore (upgrade billing)` regressed: 1.900s in fd-4 against \
             1.050s in baseline fd-2 (81.0% worse; at most 20% allowed)"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_page_has_one_plot_per_figure_with_releases_and_regressions() {
        let html = render_trend_html(&Trend::build(&runs(), POLICY));
        assert_eq!(html.matches("<svg class=\"plot\"").count(), 2);
        assert_eq!(html.matches("<line class=\"release\"").count(), 4, "two releases, two plots");
        assert_eq!(html.matches("class=\"point regression\"").count(), 2);
        assert_eq!(html.matches("class=\"point failed\"").count(), 1, "fd-3's availability");
        assert!(!html.contains("<script"));
        assert!(
            html.contains("<p class=\"regressed\">`time-to-restore (upgrade billing)` regressed")
        );
    }

    #[test]
    fn coordinates_are_written_as_the_formatter_writes_them() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for i in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let value = match i % 3 {
                0 => (seed % 9_600_000) as f64 / 10_000.0,
                1 => (seed % 96_000) as f64 / 100.0 + 0.05,
                _ => f64::from_bits(seed).abs() % 1000.0,
            };
            let mut fast = String::new();
            push_tenths(&mut fast, value);
            assert_eq!(fast, format!("{value:.1}"), "{value:?}");
        }
    }

    #[test]
    fn the_history_table_lines_up() {
        let mut runs = runs();
        runs[1].origin = Origin::Imported;
        let table = render_history_table(&runs[..2]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "started (UTC)        run   scenario  status             checks  versions     commit"
        );
        assert_eq!(
            lines[2],
            "2027-01-15 08:02:00  fd-2  release   passed (imported)  1/1     billing 2.0  0123456789"
        );
    }
}
