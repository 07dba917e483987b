//! Bring-up → all healthy → teardown as the stack grows, firedrill against docker-compose on the
//! same generated compose file and the same local image, in the same run (issue: "Scale with the
//! stack").
//!
//! For each shape — 2, 10, 20 and 50 independent services, and a chain of 10 where each service
//! depends on the one before it (`condition: service_healthy`, so parallelism cannot help) —
//! both tools run the same `docker-compose.yml` (redis from `firedrill-test/redis:7` with a
//! `redis-cli ping` health check every 500 ms):
//! - firedrill: `firedrill run` of a scenario whose stack is that compose file, with no steps:
//!   prepare, bring-up gated on every service's health, teardown; the whole process is timed.
//! - docker-compose: `up -d`, then `docker ps` every 50 ms until every container of the project
//!   reports `healthy`, then `down -t 2`; the three commands are timed together.
//!
//! The image must exist: `cargo run -- images tests/scenarios/webcache/smoke.yaml` builds it.
//! `FIREDRILL_SCALE=2,20` picks shapes (`chain10` names the chain); the default is all of them,
//! about 15 minutes on the 2-core machine. Criterion's time per shape is each tool's wall time;
//! the ratios (firedrill / docker-compose, medians of the same run) are printed at the end.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

const IMAGE: &str = "firedrill-test/redis:7";

/// One stack shape.
#[derive(Clone, Copy)]
struct Shape {
    services: usize,
    chain: bool,
}

impl Shape {
    fn name(self) -> String {
        if self.chain { format!("chain{}", self.services) } else { format!("{}", self.services) }
    }

    fn compose(self) -> String {
        let mut text = String::from("services:\n");
        for i in 0..self.services {
            text.push_str(&format!(
                "  s{i}:\n    image: {IMAGE}\n    expose: [\"6379\"]\n    healthcheck:\n      \
                 test: [\"CMD\", \"redis-cli\", \"ping\"]\n      interval: 500ms\n"
            ));
            if self.chain && i > 0 {
                text.push_str(&format!(
                    "    depends_on:\n      s{}:\n        condition: service_healthy\n",
                    i - 1
                ));
            }
        }
        text
    }
}

fn shapes() -> Vec<Shape> {
    let all = [
        Shape { services: 2, chain: false },
        Shape { services: 10, chain: false },
        Shape { services: 20, chain: false },
        Shape { services: 50, chain: false },
        Shape { services: 10, chain: true },
    ];
    match std::env::var("FIREDRILL_SCALE") {
        Ok(list) if !list.trim().is_empty() => {
            let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
            all.into_iter().filter(|s| wanted.contains(&s.name().as_str())).collect()
        }
        _ => all.to_vec(),
    }
}

/// A folder with the compose file and a scenario over it.
fn stack_dir(shape: Shape) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::write(dir.path().join("docker-compose.yml"), shape.compose()).expect("write compose");
    let scenario = format!(
        "name: scale-{}\ndescription: bring-up and teardown only\nstack: {{ compose: docker-compose.yml }}\n",
        shape.name()
    );
    fs_err::write(dir.path().join("scenario.yaml"), scenario).expect("write scenario");
    dir
}

#[expect(clippy::disallowed_methods, reason = "timing child processes from outside the harness")]
fn timed(run: impl FnOnce()) -> Duration {
    let started = std::time::Instant::now();
    run();
    started.elapsed()
}

fn firedrill(dir: &std::path::Path) -> Duration {
    timed(|| {
        let status = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .args(["run", "scenario.yaml"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run firedrill");
        assert!(status.success(), "firedrill run failed in {}", dir.display());
    })
}

fn compose(dir: &std::path::Path, project: &str, services: usize) -> Duration {
    let compose = |args: &[&str]| {
        let status = Command::new("docker-compose")
            .current_dir(dir)
            .args(["-p", project])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("docker-compose (Debian's `docker-compose` package) must be installed");
        assert!(status.success(), "docker-compose {args:?} failed");
    };
    timed(|| {
        compose(&["up", "-d"]);
        loop {
            let out = Command::new("docker")
                .args(["ps", "-q", "--filter", "health=healthy", "--filter"])
                .arg(format!("label=com.docker.compose.project={project}"))
                .output()
                .expect("docker ps");
            let healthy = String::from_utf8_lossy(&out.stdout).lines().count();
            if healthy >= services {
                break;
            }
            #[expect(clippy::disallowed_methods, reason = "polling another tool's readiness")]
            std::thread::sleep(Duration::from_millis(50));
        }
        compose(&["down", "-t", "2"]);
    })
}

fn scale(c: &mut Criterion) {
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        present,
        "{IMAGE} is missing: run `cargo run -- images tests/scenarios/webcache/smoke.yaml`"
    );
    // Per shape: its name, then firedrill's and docker-compose's seconds per iteration.
    let mut results: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for shape in shapes() {
        let dir = stack_dir(shape);
        let project = format!("fdbench{}", std::process::id());
        let mut group = c.benchmark_group(format!("scale/{}", shape.name()));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_secs(1));
        let ours = Mutex::new(Vec::new());
        let theirs = Mutex::new(Vec::new());
        group.bench_function("firedrill", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let took = firedrill(dir.path());
                        ours.lock().unwrap().push(took.as_secs_f64());
                        took
                    })
                    .sum()
            });
        });
        group.bench_function("docker-compose", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let took = compose(dir.path(), &project, shape.services);
                        theirs.lock().unwrap().push(took.as_secs_f64());
                        took
                    })
                    .sum()
            });
        });
        group.finish();
        results.push((shape.name(), ours.into_inner().unwrap(), theirs.into_inner().unwrap()));
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!("up → all healthy → down, medians of this run (firedrill / docker-compose):");
    for (name, ours, theirs) in results {
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "  {name:>7} services: firedrill {ours:.2} s, docker-compose {theirs:.2} s, ratio {:.2}×",
            ours / theirs
        );
    }
}

criterion_group!(benches, scale);
criterion_main!(benches);
