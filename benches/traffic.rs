//! The traffic generator at 200 req/s for 5 s against a loopback HTTP server in the same process:
//! achieved rate as a share of the requested rate (goal ≥ 99 %) and scheduling lateness (goal:
//! p99 ≤ 2 ms).
//!
//! Each iteration is one 5-second stream, measured from its own journal: the achieved rate counts
//! the requests actually sent (due time + lateness) inside the 5-second window, against the 1000
//! requested. Criterion's "time" is the p99 lateness of a stream; the rate ratio and the lateness
//! distribution over every stream are printed after the samples.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use firedrill::clock::{self, SystemClock};
use firedrill::journal::{EventKind, Journal};
use firedrill::scenario::model::{Traffic, TrafficRequest};
use firedrill::traffic::{self, PortResolver};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const RATE: f64 = 200.0;
const WINDOW: Duration = Duration::from_secs(5);

/// A keep-alive HTTP/1.1 server that answers every (bodiless) request `200 {"ok":true}`.
async fn serve(listener: TcpListener) {
    while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut reader = BufReader::new(socket);
            let mut line = String::new();
            loop {
                // Request line and headers, up to the blank line.
                loop {
                    line.clear();
                    match reader.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let response = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                content-length: 11\r\n\r\n{\"ok\":true}";
                if reader.get_mut().write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// What one stream did.
struct Sample {
    /// Requests sent inside the window / requests due inside it.
    achieved_ratio: f64,
    /// Lateness of every request, µs.
    lateness_us: Vec<u64>,
    sent: u64,
    ok: u64,
    late: u64,
}

async fn stream(port: u16) -> Sample {
    let spec = Traffic {
        name: "bench".to_owned(),
        request: TrafficRequest {
            service: "bench".to_owned(),
            port: 8080,
            method: "GET".to_owned(),
            path: "/health".to_owned(),
            body: None,
            status: 200,
        },
        rate_per_second: RATE,
        concurrency: 64,
        timeout: Duration::from_secs(2),
        verify_writes: None,
    };
    let resolve = PortResolver::fixed(port);
    let journal = Journal::in_memory(Arc::new(SystemClock::start()));
    let handle = traffic::start(&spec, resolve, journal.clone(), traffic::http_client());
    clock::sleep(WINDOW).await;
    let stats = handle.stop().await;

    let events = journal.snapshot();
    let origin = events[0].offset_us;
    let window_end = origin + WINDOW.as_micros() as u64;
    let mut in_window = 0u64;
    let mut lateness_us = Vec::new();
    for event in &events {
        if let EventKind::TrafficRequest { scheduled_us, lateness_us: late, .. } = event.kind {
            if scheduled_us + late < window_end {
                in_window += 1;
            }
            lateness_us.push(late);
        }
    }
    let requested = (WINDOW.as_secs_f64() * RATE).round();
    lateness_us.sort_unstable();
    Sample {
        achieved_ratio: in_window as f64 / requested,
        lateness_us,
        sent: stats.sent,
        ok: stats.ok,
        late: stats.late,
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let port = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        tokio::spawn(serve(listener));
        port
    });

    let samples: Mutex<Vec<Sample>> = Mutex::new(Vec::new());
    let mut group = c.benchmark_group("traffic");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(50));
    group.bench_function("p99 lateness of a 5 s stream at 200 req/s", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let sample = runtime.block_on(stream(port));
                total += Duration::from_micros(percentile(&sample.lateness_us, 99.0));
                samples.lock().unwrap().push(sample);
            }
            total
        });
    });
    group.finish();

    let samples = samples.into_inner().unwrap();
    let mut ratios: Vec<f64> = samples.iter().map(|s| s.achieved_ratio).collect();
    ratios.sort_by(f64::total_cmp);
    let mut p99s: Vec<u64> = samples.iter().map(|s| percentile(&s.lateness_us, 99.0)).collect();
    p99s.sort_unstable();
    let mut all: Vec<u64> = samples.iter().flat_map(|s| s.lateness_us.iter().copied()).collect();
    all.sort_unstable();
    let sent: u64 = samples.iter().map(|s| s.sent).sum();
    let ok: u64 = samples.iter().map(|s| s.ok).sum();
    let late: u64 = samples.iter().map(|s| s.late).sum();
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "{} streams of {RATE} req/s for {} s: achieved rate / requested rate median {:.2}% \
         (min {:.2}%, max {:.2}%; goal >= 99%); p99 scheduling lateness per stream median \
         {:.3} ms (worst {:.3} ms; goal <= 2 ms); over all {} requests: p50 {:.3} ms, p99 {:.3} ms, \
         p99.9 {:.3} ms, max {:.3} ms, late (> 1 ms) {late} ({:.2}%), answered 200: {ok}",
        samples.len(),
        WINDOW.as_secs(),
        100.0 * ratios[ratios.len() / 2],
        100.0 * ratios[0],
        100.0 * ratios[ratios.len() - 1],
        ms(p99s[p99s.len() / 2]),
        ms(p99s[p99s.len() - 1]),
        sent,
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 99.0)),
        ms(percentile(&all, 99.9)),
        ms(all[all.len() - 1]),
        100.0 * late as f64 / sent as f64,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
