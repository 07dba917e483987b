//! The swarm backend against the single-engine (Docker) backend, in the same run (issue 15:
//! "bring-up + teardown of the demo stack and one upgrade, swarm backend vs the container
//! backend, as a ratio in one run").
//!
//! Each iteration is one `firedrill run --backend B tests/scenarios/bench/backend-upgrade.yaml`
//! (prepare, bring-up of the demo's PostgreSQL and billing gated on health, one `recreate`
//! upgrade of billing 1.0 → 2.0 judged healthy and at its new version, teardown), timed as a
//! whole process. Criterion runs the Docker samples, then the Swarm ones: a load change on the
//! shared machine between the two halves moves the ratio (repeat the run to see by how much). On
//! an engine in no swarm (this machine's case) every swarm run initialises its
//! single-node swarm and leaves it: that is part of what a user of `--backend swarm` waits for,
//! and part of the figure.
//!
//! The images must exist: `cargo run -- images tests/scenarios/bench/backend-upgrade.yaml`.
//! Criterion's time per backend is the wall time of one run; the ratio (swarm / docker, medians
//! of this run) is printed at the end. `cargo bench --bench backends` (criterion's minimum of
//! 10 samples per backend, one run each: about 22 runs).

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

const SCENARIO: &str = "tests/scenarios/bench/backend-upgrade.yaml";
const IMAGES: &[&str] =
    &["firedrill-demo/postgres:15", "firedrill-demo/billing:1.0", "firedrill-demo/billing:2.0"];

#[expect(clippy::disallowed_methods, reason = "timing child processes from outside the harness")]
fn timed(run: impl FnOnce()) -> Duration {
    let started = std::time::Instant::now();
    run();
    started.elapsed()
}

fn rehearse(backend: &str) -> Duration {
    timed(|| {
        let output = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .args(["run", "--no-history", "--backend", backend, SCENARIO])
            .stdin(Stdio::null())
            .output()
            .expect("run firedrill");
        assert!(
            output.status.success(),
            "firedrill run --backend {backend} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    })
}

fn backends(c: &mut Criterion) {
    for image in IMAGES {
        let present = Command::new("docker")
            .args(["image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(present, "{image} is missing: run `cargo run -- images {SCENARIO}`");
    }
    let mut group = c.benchmark_group("backends/demo-up-upgrade-down");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    let docker = Mutex::new(Vec::new());
    let swarm = Mutex::new(Vec::new());
    for (name, times) in [("docker", &docker), ("swarm", &swarm)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let took = rehearse(name);
                        times.lock().unwrap().push(took.as_secs_f64());
                        took
                    })
                    .sum()
            });
        });
    }
    group.finish();
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (docker, swarm) = (docker.into_inner().unwrap(), swarm.into_inner().unwrap());
    let (runs_docker, runs_swarm) = (docker.len(), swarm.len());
    let (docker, swarm) = (median(docker), median(swarm));
    println!(
        "demo up → upgrade → down, medians of this run: docker {docker:.2} s ({runs_docker} runs), \
         swarm {swarm:.2} s ({runs_swarm} runs), ratio swarm/docker {:.2}×",
        swarm / docker
    );
}

criterion_group!(benches, backends);
criterion_main!(benches);
