//! Load and validate a generated 50-service compose stack through a scenario (goal ≤ 20 ms):
//! parse, interpolate, map every service, check dependencies, networks and volumes, then the
//! scenario's own checks.
//!
//! `cargo bench --bench compose`.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

/// Fifty services: each with an image, environment (both forms), ports, a healthcheck, a
/// dependency on the one before it (with a condition), labels, a named volume and replicas.
fn compose(services: usize) -> String {
    let mut out = String::from("services:\n");
    for i in 0..services {
        let _ = write!(
            out,
            "  svc{i}:
    image: \"example/svc{i}:${{TAG:-1.0}}\"
    environment:
      - MODE=production
      - INDEX={i}
    ports:
      - \"80{i:02}:8080\"
    expose: [\"9{i:03}\"]
    healthcheck:
      test: [\"CMD-SHELL\", \"curl -fsS http://localhost:8080/health || exit 1\"]
      interval: 5s
      timeout: 2s
      retries: 3
      start_period: 10s
    labels:
      com.example.index: \"{i}\"
    volumes:
      - data{i}:/var/lib/svc
      - ./conf:/etc/svc:ro
    deploy:
      replicas: {}
    restart: unless-stopped
",
            1 + i % 3
        );
        if i > 0 {
            let _ = write!(
                out,
                "    depends_on:\n      svc{}:\n        condition: service_healthy\n",
                i - 1
            );
        }
    }
    out.push_str("volumes:\n");
    for i in 0..services {
        let _ = writeln!(out, "  data{i}: {{}}");
    }
    out
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs_err::write(dir.path().join("docker-compose.yml"), compose(50)).unwrap();
    fs_err::write(dir.path().join(".env"), "TAG=2.0\n").unwrap();
    let scenario_path = dir.path().join("scenario.yaml");
    let scenario = "name: bench\nstack:\n  compose: docker-compose.yml\nsteps:\n  - kill: { service: svc49 }\n";
    // Sanity: it is valid and has every service.
    let loaded = firedrill::scenario::parse(scenario, &scenario_path).expect("valid");
    assert_eq!(loaded.stack.services.len(), 50);
    c.bench_function("compose 50 services", |b| {
        b.iter(|| firedrill::scenario::parse(black_box(scenario), &scenario_path).expect("valid"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
