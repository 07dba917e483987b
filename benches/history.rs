//! `firedrill history` and `firedrill trend` over a history of 10,000 recorded runs (10
//! scenarios, 12 key figures and 4 checks each, a release every 50 runs), through the library
//! calls the commands make: read every run back, then render the table (`history`) or build the
//! trend and render it as text and HTML (`trend --html`).
//!
//! Baseline, measured in the same process: parsing the same 10,000 runs from one in-memory JSON
//! document (`history --json`'s shape) — what the data costs to read without SQLite at all.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use firedrill::checks::CheckStatus;
use firedrill::history::{
    Better, Figure, History, Origin, RegressionPolicy, RunEntry, RunFilter, Trend, Unit,
    VerdictEntry, render_history_table, render_trend_html, render_trend_text,
};
use firedrill::report::{Counts, RunStatus};

const RUNS: i64 = 10_000;

fn entry(n: i64) -> RunEntry {
    let scenario = format!("scenario-{}", n % 10);
    let wobble = ((n * 7_919) % 97) as f64;
    let mut figures = Vec::new();
    for (metric, base) in [
        ("detected-after (kill api: api)", 180.0),
        ("unhealthy-for (kill api: api)", 4_200.0),
        ("healthy-after-clear (kill api: api)", 300.0),
        ("time-to-detect (upgrade api)", 2_500.0),
        ("time-to-roll-back (upgrade api)", 3_100.0),
        ("time-to-restore (upgrade api)", 3_900.0),
        ("p50-latency (checkout)", 3.0),
        ("p95-latency (checkout)", 12.0),
        ("p99-latency (checkout)", 40.0),
        ("notify-alert (customers told: sms)", 900.0),
        ("harness-overhead", 15.0),
    ] {
        figures.push(Figure {
            name: metric.into(),
            value: base + wobble * base / 100.0,
            unit: Unit::Ms,
            better: Better::Lower,
        });
    }
    figures.push(Figure {
        name: "availability (checkout)".into(),
        value: 99.0 - wobble / 100.0,
        unit: Unit::Percent,
        better: Better::Higher,
    });
    RunEntry {
        run_id: format!("fd-{n:08x}"),
        scenario,
        scenario_file: "scenarios/release.yaml".into(),
        started_at: Some(jiff::Timestamp::from_second(1_800_000_000 + n * 60).unwrap()),
        duration_ms: 30_000,
        status: if n % 13 == 0 { RunStatus::Deviated } else { RunStatus::Completed },
        origin: Origin::Run,
        git_commit: Some(format!("{:040x}", n / 50)),
        versions: [("api".to_owned(), format!("2.{}", n / 50))].into(),
        counts: Counts { passed: 4, failed: 0, not_evaluated: 0 },
        verdicts: (0..4)
            .map(|i| VerdictEntry {
                name: format!("check {i}"),
                kind: "healthy-within".into(),
                status: CheckStatus::Passed,
                summary: "healthy 1.2s after `kill api` ended".into(),
            })
            .collect(),
        figures,
        report_dir: None,
        seed: Some(n as u64),
        firedrill_version: "0.1.0".into(),
    }
}

fn history(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.sqlite");
    let mut store = History::open(&path).expect("open");
    for n in 0..RUNS {
        store.record(&entry(n)).expect("record");
    }
    let all = RunFilter::default();
    let json = serde_json::to_string(&store.runs(&all).expect("runs")).expect("json");
    let policy = RegressionPolicy { max_percent: 20.0, floor_ms: 100.0 };

    let mut group = c.benchmark_group("history of 10000 runs");
    group.sample_size(10).warm_up_time(Duration::from_millis(500));
    group.bench_function("baseline: parse the same runs from JSON", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(&json).expect("parse"))
    });
    group.bench_function("history (read + table)", |b| {
        b.iter(|| render_history_table(&store.runs(&all).expect("runs")))
    });
    // What `firedrill trend` reads: the figures, not the checks.
    let figures_only = RunFilter { without_checks: true, ..RunFilter::default() };
    group.bench_function("trend (read + build + text + html)", |b| {
        b.iter(|| {
            let trend = Trend::build(&store.runs(&figures_only).expect("runs"), policy);
            (render_trend_text(&trend), render_trend_html(&trend))
        })
    });
    // The same with the checks read back too (as `trend` read before it skipped them).
    group.bench_function("trend, reading the checks too", |b| {
        b.iter(|| {
            let trend = Trend::build(&store.runs(&all).expect("runs"), policy);
            (render_trend_text(&trend), render_trend_html(&trend))
        })
    });
    // Where the time goes, part by part.
    let runs = store.runs(&figures_only).expect("runs");
    group.bench_function("trend part: read (figures only)", |b| {
        b.iter(|| store.runs(&figures_only).expect("runs"))
    });
    group.bench_function("trend part: build", |b| b.iter(|| Trend::build(&runs, policy)));
    let trend = Trend::build(&runs, policy);
    group.bench_function("trend part: text", |b| b.iter(|| render_trend_text(&trend)));
    group.bench_function("trend part: html", |b| b.iter(|| render_trend_html(&trend)));
    group.finish();
}

criterion_group!(benches, history);
criterion_main!(benches);
