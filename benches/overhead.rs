//! The harness's own overhead on `scenarios/smoke.yaml`: total wall time minus the time during
//! which some wait (on Docker, a declared wait, on a service) was in progress, as `report.json`'s
//! `timing` states it.
//!
//! Each iteration is one real run through the CLI against the Docker engine (the demo images must
//! exist: `cargo run -- images`). Criterion's "time" is the overhead per run; the share of the
//! same run's total is printed after the samples, so the figure is a ratio against a baseline
//! measured in the same command.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

/// One run: (overhead ms, total ms from report.json, service-wait ms, process wall ms).
#[expect(clippy::disallowed_methods, reason = "timing a child process from outside the harness")]
fn run_smoke() -> (f64, f64, f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("scenarios/smoke.yaml")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run firedrill");
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert!(status.success(), "smoke.yaml must pass to measure its overhead");
    let report: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(dir.path().join("report.json")).expect("report.json"),
    )
    .expect("report.json is JSON");
    let timing = &report["timing"];
    let ms = |key: &str| timing[key].as_f64().unwrap_or(0.0);
    (ms("overhead-ms"), ms("total-ms"), ms("service-wait-ms"), wall_ms)
}

fn overhead(c: &mut Criterion) {
    let samples: Mutex<Vec<(f64, f64, f64, f64)>> = Mutex::new(Vec::new());
    let mut group = c.benchmark_group("smoke");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    group.bench_function("harness overhead per run", |b| {
        b.iter_custom(|iters| {
            let mut overhead = Duration::ZERO;
            for _ in 0..iters {
                let sample = run_smoke();
                let overhead_ms = sample.0;
                samples.lock().unwrap().push(sample);
                overhead += Duration::from_secs_f64(overhead_ms / 1000.0);
            }
            overhead
        });
    });
    group.finish();
    let samples = samples.into_inner().unwrap();
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        (values[values.len() / 2], values[0], values[values.len() - 1])
    };
    let (share, low, high) = median(samples.iter().map(|s| 100.0 * s.0 / s.1).collect());
    let (with_waits, _, _) = median(samples.iter().map(|s| 100.0 * (s.0 + s.2) / s.1).collect());
    let (outside, _, _) = median(samples.iter().map(|s| s.3 - s.1).collect());
    let (total, _, _) = median(samples.iter().map(|s| s.1).collect());
    println!(
        "smoke.yaml, {} runs: run total median {total:.0} ms; harness overhead median {share:.2}% \
         (min {low:.2}%, max {high:.2}%); counting health-poll waits as overhead too: {with_waits:.1}%; \
         process wall time beyond the run (start-up, validation, report): median {outside:.0} ms",
        samples.len()
    );
}

criterion_group!(benches, overhead);
criterion_main!(benches);
