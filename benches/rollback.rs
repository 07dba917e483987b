//! Time from a release's failure to the start of its rollback, read from the journal of real
//! runs of `tests/scenarios/bench/rollback-latency.yaml` through the CLI (the demo images must
//! exist: `cargo run -- images tests/scenarios/bench/rollback-latency.yaml`).
//!
//! Two ways a release fails: its container exits (measured from Docker's `die` event) and it is
//! not healthy by the progress deadline (measured from the deadline: the `switched` event plus
//! the step's 3 s). Criterion's "time" is the slower of the two per run; the figures for each are
//! printed after the samples. Goal: ≤ 100 ms.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

const DEADLINE_US: u64 = 3_000_000;

/// One run: (exit → rollback-started µs, deadline → rollback-started µs).
fn run_once() -> (u64, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("tests/scenarios/bench/rollback-latency.yaml")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run firedrill");
    assert!(status.success(), "both releases must be rolled back");
    let journal = fs_err::read_to_string(dir.path().join("journal.jsonl")).expect("journal");
    let events: Vec<serde_json::Value> =
        journal.lines().map(|line| serde_json::from_str(line).expect("event")).collect();
    let offset = |step: &str, stage: &str| {
        events
            .iter()
            .find(|e| e["event"] == "upgrade" && e["step"] == step && e["stage"] == stage)
            .and_then(|e| e["offset-us"].as_u64())
            .unwrap_or_else(|| panic!("no `{stage}` for `{step}`"))
    };
    let crash = "release crashes on start";
    let switched = offset(crash, "switched");
    let died = events
        .iter()
        .filter(|e| e["offset-us"].as_u64().unwrap_or(0) >= switched)
        .find(|e| {
            e["event"] == "container-event" && e["service"] == "billing" && e["action"] == "die"
        })
        .and_then(|e| e["offset-us"].as_u64())
        .expect("Docker reported the crash");
    let after_exit = offset(crash, "rollback-started").saturating_sub(died);
    let slow = "release never gets healthy";
    let deadline = offset(slow, "switched") + DEADLINE_US;
    let after_deadline = offset(slow, "rollback-started").saturating_sub(deadline);
    (after_exit, after_deadline)
}

fn rollback_latency(c: &mut Criterion) {
    let samples: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
    let mut group = c.benchmark_group("rollback");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    group.bench_function("failure to rollback start", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let sample = run_once();
                samples.lock().unwrap().push(sample);
                total += Duration::from_micros(sample.0.max(sample.1));
            }
            total
        });
    });
    group.finish();
    let samples = samples.into_inner().unwrap();
    let stats = |mut values: Vec<u64>| {
        values.sort_unstable();
        (values[values.len() / 2], values[values.len() - 1])
    };
    let (exit_median, exit_max) = stats(samples.iter().map(|s| s.0).collect());
    let (deadline_median, deadline_max) = stats(samples.iter().map(|s| s.1).collect());
    println!(
        "{} runs: container exit → rollback start median {:.1} ms (max {:.1} ms); progress deadline → \
         rollback start median {:.1} ms (max {:.1} ms); goal ≤ 100 ms",
        samples.len(),
        exit_median as f64 / 1e3,
        exit_max as f64 / 1e3,
        deadline_median as f64 / 1e3,
        deadline_max as f64 / 1e3,
    );
}

criterion_group!(benches, rollback_latency);
criterion_main!(benches);
