//! The proxy's own cost, each figure against a direct loopback connection measured in the same
//! process: (1) 64 MiB one way, each direction, no toxic; (2) the round trip of a 64-byte echo
//! message, p50/p99, proxy minus direct; (3) how close a 100 ms latency toxic comes to 100 ms.
//!
//! `cargo bench --bench proxy`. Criterion reports times; the table printed at the end states the
//! ratios and differences.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use firedrill::proxy::{Direction, Proxy, ProxyConfig, ToxicKind, ToxicSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BULK: usize = 64 << 20;
const ECHO_SIZE: usize = 64;
const ECHOES: usize = 2_000;

#[expect(clippy::disallowed_methods, reason = "benchmarks time themselves")]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Serves every connection: `u` = read to EOF then ack one byte, `d` = send BULK bytes and close,
/// `e` = echo until EOF.
async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut mode = [0u8; 1];
                if stream.read_exact(&mut mode).await.is_err() {
                    return;
                }
                let mut buffer = vec![0u8; 256 * 1024];
                match mode[0] {
                    b'u' => {
                        while stream.read(&mut buffer).await.unwrap_or(0) > 0 {}
                        let _ = stream.write_all(b"k").await;
                    }
                    b'd' => {
                        let mut left = BULK;
                        while left > 0 {
                            let n = left.min(buffer.len());
                            if stream.write_all(&buffer[..n]).await.is_err() {
                                return;
                            }
                            left -= n;
                        }
                    }
                    _ => {
                        let (mut read, mut write) = stream.into_split();
                        let _ = tokio::io::copy(&mut read, &mut write).await;
                    }
                }
            });
        }
    });
    addr
}

async fn connect(addr: SocketAddr, mode: u8) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(&[mode]).await.unwrap();
    stream
}

async fn upload(addr: SocketAddr) -> Duration {
    let block = vec![7u8; 256 * 1024];
    let mut stream = connect(addr, b'u').await;
    let started = now();
    for _ in 0..BULK / block.len() {
        stream.write_all(&block).await.unwrap();
    }
    stream.shutdown().await.unwrap();
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).await.unwrap();
    started.elapsed()
}

async fn download(addr: SocketAddr) -> Duration {
    let mut stream = connect(addr, b'd').await;
    let started = now();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buffer).await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, BULK);
    started.elapsed()
}

/// Round-trip times of `count` echo messages on one connection, in microseconds.
async fn echoes(addr: SocketAddr, size: usize, count: usize) -> Vec<f64> {
    let mut stream = connect(addr, b'e').await;
    let message = vec![1u8; size];
    let mut answer = vec![0u8; size];
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = now();
        stream.write_all(&message).await.unwrap();
        stream.read_exact(&mut answer).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    times
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mib_per_sec(duration: Duration) -> f64 {
    (BULK as f64 / (1 << 20) as f64) / duration.as_secs_f64()
}

#[derive(Default)]
struct Figures {
    bulk: Vec<(&'static str, Duration)>,
    echo_direct: Vec<f64>,
    echo_proxy: Vec<f64>,
    latency_ms: Vec<f64>,
}

fn bench(c: &mut Criterion) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (direct, proxy, toxic_proxy) = runtime.block_on(async {
        let direct = server().await;
        let quiet = Arc::new(|_| {});
        let proxy = Proxy::start(ProxyConfig::loopback("bench"), Arc::new(direct), quiet.clone())
            .await
            .unwrap();
        let toxic =
            Proxy::start(ProxyConfig::loopback("latency"), Arc::new(direct), quiet).await.unwrap();
        let latency =
            ToxicKind::Latency { latency: Duration::from_millis(100), jitter: Duration::ZERO };
        toxic.add(ToxicSpec::new(latency, Direction::Downstream));
        (direct, proxy, toxic)
    });
    let through = proxy.local_addrs()[0];
    let figures = Mutex::new(Figures::default());

    let mut group = c.benchmark_group("proxy-bulk-64MiB");
    group
        .throughput(Throughput::Bytes(BULK as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    for (name, addr, up) in [
        ("direct-upload", direct, true),
        ("proxy-upload", through, true),
        ("direct-download", direct, false),
        ("proxy-download", through, false),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let took = runtime.block_on(async {
                        if up { upload(addr).await } else { download(addr).await }
                    });
                    figures.lock().unwrap().bulk.push((name, took));
                    total += took;
                }
                total
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("proxy-echo-64B");
    group.sample_size(10);
    for (name, addr) in [("direct", direct), ("proxy", through)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let times = runtime.block_on(echoes(addr, ECHO_SIZE, ECHOES));
                    total +=
                        Duration::from_secs_f64(times.iter().sum::<f64>() / 1e6 / ECHOES as f64);
                    let mut figures = figures.lock().unwrap();
                    if name == "direct" {
                        figures.echo_direct.extend(times)
                    } else {
                        figures.echo_proxy.extend(times)
                    }
                }
                total
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("proxy-latency-toxic");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(3));
    let toxic_addr = toxic_proxy.local_addrs()[0];
    group.bench_function("100ms-round-trip", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let times = runtime.block_on(echoes(toxic_addr, ECHO_SIZE, 1));
                figures.lock().unwrap().latency_ms.push(times[0] / 1000.0);
                total += Duration::from_secs_f64(times[0] / 1e6);
            }
            total
        });
    });
    group.finish();
    runtime.block_on(async {
        proxy.shutdown().await;
        toxic_proxy.shutdown().await;
    });

    report(&figures.into_inner().unwrap());
}

fn report(figures: &Figures) {
    let best = |name: &str| {
        figures.bulk.iter().filter(|(n, _)| *n == name).map(|(_, d)| *d).min().unwrap_or_default()
    };
    eprintln!(
        "\nproxy figures (same process, loopback, 2 worker threads; groups filtered out are skipped)"
    );
    if !figures.bulk.is_empty() {
        eprintln!(
            "{:<28} {:>12} {:>12} {:>8}",
            "64 MiB one way (best)", "direct MiB/s", "proxy MiB/s", "ratio"
        );
        for direction in ["upload", "download"] {
            let direct = mib_per_sec(best(&format!("direct-{direction}")));
            let proxied = mib_per_sec(best(&format!("proxy-{direction}")));
            eprintln!(
                "{:<28} {:>12.0} {:>12.0} {:>7.0}%",
                direction,
                direct,
                proxied,
                100.0 * proxied / direct
            );
        }
    }
    if figures.echo_direct.is_empty() || figures.echo_proxy.is_empty() {
        return latency_report(&figures.latency_ms);
    }
    let mut direct = figures.echo_direct.clone();
    let mut proxied = figures.echo_proxy.clone();
    direct.sort_by(f64::total_cmp);
    proxied.sort_by(f64::total_cmp);
    eprintln!(
        "{:<28} {:>12} {:>12} {:>8}",
        "64 B echo round trip (µs)", "direct", "proxy", "added"
    );
    for p in [50.0, 99.0] {
        let (d, x) = (percentile(&direct, p), percentile(&proxied, p));
        eprintln!("{:<28} {:>12.1} {:>12.1} {:>8.1}", format!("p{p}"), d, x, x - d);
    }
    latency_report(&figures.latency_ms);
}

fn latency_report(latency: &[f64]) {
    if latency.is_empty() {
        return;
    }
    let mean = latency.iter().sum::<f64>() / latency.len() as f64;
    let spread =
        (latency.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / latency.len() as f64).sqrt();
    let (min, max) =
        latency.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    eprintln!(
        "latency toxic 100 ms: mean {mean:.2} ms, sd {spread:.2} ms, min {min:.2}, max {max:.2} ({} round trips)",
        latency.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
