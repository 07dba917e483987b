//! Parse + validate a generated scenario: 10 steps (the baseline) and 1000 steps (goal: ≤ 50 ms).
//!
//! `cargo bench --bench validate`; the ratio of the two is the cost per step beyond a fixed part.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

/// A scenario with five services and `steps` steps cycling through every kind of step, and one
/// expectation per five steps referencing them.
fn scenario(steps: usize) -> String {
    let mut out = String::from(
        "name: generated
description: a long timeline for the validation benchmark
stack:
  services:
    db:
      image: postgres:15
      ports: [5432]
      health: { exec: [pg_isready, -h, 127.0.0.1] }
    cache:
      image: redis:7
      ports: [6379]
      health: { tcp: { port: 6379 } }
    billing:
      image: firedrill-demo/billing:1.0
      env:
        DATABASE_URL: \"postgres://postgres@{{ services.db.addr }}/billing\"
        CACHE: \"{{ services.cache.host }}:{{ services.cache.port }}\"
        RUN: \"{{ run.id }}\"
      ports: [8080]
      health: { http: { port: 8080, path: /health }, interval: 250ms }
      depends-on: [db, cache]
    worker:
      image: firedrill-demo/worker:1.0
      health: { log: ready }
      depends-on: [billing]
    web:
      image: firedrill-demo/web:1.0
      ports: [80, 443]
      depends-on: [billing]
steady-state:
  - name: billing answers
    http: { service: billing, port: 8080, path: /health }
  - tcp: { service: db, port: 5432 }
steps:
",
    );
    let services = ["db", "cache", "billing", "worker", "web"];
    for i in 0..steps {
        let service = services[i % services.len()];
        match i % 8 {
            0 => writeln!(
                out,
                "  - name: step {i}\n    kill: {{ service: {service}, signal: SIGTERM }}"
            ),
            1 => writeln!(out, "  - stop: {{ service: {service}, timeout: 5s, for: 3s }}"),
            2 => writeln!(out, "  - start: {{ service: {service} }}"),
            3 => writeln!(out, "  - pause: {{ service: {service}, for: 1m30s }}"),
            4 => writeln!(out, "  - wait: {}ms", i + 1),
            5 => writeln!(out, "  - restart: {{ service: {service} }}"),
            6 => writeln!(
                out,
                "  - name: probe {i}\n    probe: {{ http: {{ service: billing, port: 8080, \
                 path: /health }}, timeout: 1s }}"
            ),
            _ => writeln!(out, "  - unpause: {{ service: {service} }}"),
        }
        .expect("writing to a String cannot fail");
    }
    out.push_str("expect:\n  - steady-state: before\n  - steady-state: after\n");
    for i in (0..steps).step_by(8) {
        writeln!(out, "  - healthy-within: {{ service: billing, after: step {i}, within: 10s }}")
            .expect("writing to a String cannot fail");
        if i + 6 < steps {
            writeln!(out, "  - probe-passed: probe {}", i + 6)
                .expect("writing to a String cannot fail");
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let path = Path::new("generated.yaml");
    for steps in [10, 1000] {
        let source = scenario(steps);
        let parsed = firedrill::scenario::parse(&source, path)
            .unwrap_or_else(|invalid| panic!("{}", firedrill::scenario::render(&invalid, false)));
        assert_eq!(parsed.steps.len(), steps);
        c.bench_function(&format!("validate {steps} steps"), |b| {
            b.iter(|| firedrill::scenario::parse(black_box(&source), path))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
