//! `firedrill explore` on the demo stack with and without `reuse-stack`, in the same run (issue
//! 14: "cases per minute with and without stack reuse, and the harness's share of each").
//!
//! The search is `scenarios/explore-upgrade-db-swap.yaml` (PostgreSQL and billing, an upgrade of
//! billing 1.0 → 2.0 with a 3 s watch, a freeze or restart of the database at the swap): a space
//! that holds, so every case is a search case and each search runs exactly `CASES` cases. The
//! fresh variant is the same file with `reuse-stack: false` (written to a temporary folder, build
//! contexts made absolute). Each mode is one `firedrill explore --runs CASES --reruns 0` process,
//! timed as a whole: cases per minute = CASES / its wall time (first bring-up and last teardown
//! included). With reuse, every case after the first restores billing to 1.0 (a recreate) and
//! waits for both services' health instead of bringing the stack up.
//!
//! Criterion's samples are the cases' own durations (`duration_ms` of `cases.jsonl`, one case a
//! sample), so its statistics are per case; the ratio (fresh / reuse, wall time of the whole
//! search) and the harness's share (the sum over the cases' `report.json` `timing.overhead-ms`
//! over the sum of their `timing.total-ms`, and bring-up or reuse-phase time per case) are printed
//! at the end.
//!
//! The same comparison runs on `scenarios/explore-db-faults.yaml` (the same stack, no upgrade: a
//! freeze or restart of the database in a 3 s window), where a reused stack needs no restore.
//!
//! The images must exist: `cargo run -- images scenarios/explore-upgrade-db-swap.yaml`. Run:
//! `cargo bench --profile dev --bench explore` (four searches of 10 cases, about 8 minutes on the
//! 2-core machine; the dev profile spares a release build of the whole tree, and the figures are
//! dominated by Docker and the scenarios' own waits).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

/// The searches: (group name, scenario with `reuse-stack: true`).
const SCENARIOS: &[(&str, &str)] = &[
    ("explore/demo-upgrade-case", "scenarios/explore-upgrade-db-swap.yaml"),
    ("explore/demo-faults-case", "scenarios/explore-db-faults.yaml"),
];
const IMAGES: &[&str] =
    &["firedrill-demo/postgres:15", "firedrill-demo/billing:1.0", "firedrill-demo/billing:2.0"];
/// Cases per search (criterion's minimum sample count).
const CASES: usize = 10;

/// What one search measured.
struct Search {
    wall: Duration,
    /// Each case's `duration_ms`, in order.
    cases: Vec<Duration>,
    /// Sums over the cases' `report.json` timing.
    total_ms: u64,
    overhead_ms: u64,
    /// Sum of the cases' bring-up and reuse phases, ms.
    setup_ms: u64,
    reused: usize,
}

#[expect(clippy::disallowed_methods, reason = "timing child processes from outside the harness")]
fn timed(run: impl FnOnce()) -> Duration {
    let started = std::time::Instant::now();
    run();
    started.elapsed()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn search(file: &Path, out: &Path) -> Search {
    let state = out.with_extension("state");
    let wall = timed(|| {
        let output = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env("FIREDRILL_STATE_DIR", &state)
            .args(["explore", "--seed", "1", "--reruns", "0", "--runs", &CASES.to_string()])
            .arg("--out")
            .arg(out)
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .expect("run firedrill");
        assert!(
            output.status.code() == Some(0),
            "firedrill explore {} did not hold:\n{}\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
    let lines = fs_err::read_to_string(out.join("cases.jsonl")).expect("cases.jsonl");
    let cases: Vec<Duration> = lines
        .lines()
        .map(|line| {
            let case: serde_json::Value = serde_json::from_str(line).expect("a case");
            Duration::from_millis(case["duration_ms"].as_u64().expect("duration_ms"))
        })
        .collect();
    assert_eq!(cases.len(), CASES);
    let (mut total_ms, mut overhead_ms, mut setup_ms, mut reused) = (0, 0, 0, 0);
    for case in 1..=CASES {
        let dir = out.join(format!("cases/{case:04}"));
        let report: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        total_ms += report["timing"]["total-ms"].as_u64().expect("timing");
        overhead_ms += report["timing"]["overhead-ms"].as_u64().expect("timing");
        for phase in report["phases"].as_array().into_iter().flatten() {
            if matches!(phase["phase"].as_str(), Some("bring-up" | "reuse" | "prepare")) {
                setup_ms += phase["duration-ms"].as_u64().unwrap_or(0);
            }
        }
        let journal = fs_err::read_to_string(dir.join("journal.jsonl")).unwrap();
        reused += usize::from(journal.contains("\"event\":\"stack-reused\""));
    }
    Search { wall, cases, total_ms, overhead_ms, setup_ms, reused }
}

fn explore(c: &mut Criterion) {
    for image in IMAGES {
        let present = Command::new("docker")
            .args(["image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(present, "{image} is missing: run `cargo run -- images {}`", SCENARIOS[0].1);
    }
    for (group_name, scenario) in SCENARIOS {
        compare(c, group_name, scenario);
    }
}

fn compare(c: &mut Criterion, group_name: &str, scenario: &str) {
    let temp = tempfile::tempdir().expect("a temporary folder");
    let reuse_file = root().join(scenario);
    let text = fs_err::read_to_string(&reuse_file).unwrap();
    assert!(text.contains("reuse-stack: true"));
    let demo = root().join("demo").display().to_string();
    let fresh_text =
        text.replace("reuse-stack: true", "reuse-stack: false").replace("../demo", &demo);
    let fresh_file = temp.path().join("fresh.yaml");
    fs_err::write(&fresh_file, fresh_text).unwrap();

    let mut group = c.benchmark_group(group_name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(CASES)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    let searches = Mutex::new(Vec::new());
    for (name, file) in [("fresh", &fresh_file), ("reuse", &reuse_file)] {
        let found = search(file, &temp.path().join(name));
        let mut next = found.cases.clone().into_iter().cycle();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| next.next().expect("cycled")).sum());
        });
        searches.lock().unwrap().push((name, found));
    }
    group.finish();
    let searches = searches.into_inner().unwrap();
    for (name, s) in &searches {
        let per_minute = CASES as f64 * 60.0 / s.wall.as_secs_f64();
        println!(
            "{scenario} {name}: {CASES} cases in {:.1} s = {per_minute:.2} cases/min; harness \
             overhead {} ms of {} ms in the cases ({:.1} %); bring-up/reuse {:.2} s per case; {} \
             case(s) on a reused stack",
            s.wall.as_secs_f64(),
            s.overhead_ms,
            s.total_ms,
            s.overhead_ms as f64 * 100.0 / s.total_ms.max(1) as f64,
            s.setup_ms as f64 / 1000.0 / CASES as f64,
            s.reused,
        );
    }
    if let [(_, fresh), (_, reuse)] = searches.as_slice() {
        println!(
            "{scenario}: reuse runs {:.2}× the cases per minute of fresh stacks in this run \
             (wall {:.1} s vs {:.1} s)",
            fresh.wall.as_secs_f64() / reuse.wall.as_secs_f64(),
            reuse.wall.as_secs_f64(),
            fresh.wall.as_secs_f64()
        );
    }
}

criterion_group!(benches, explore);
criterion_main!(benches);
