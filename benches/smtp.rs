//! The SMTP sink under load: 8 concurrent raw SMTP clients in the same process each deliver 25
//! mails of 10 KiB per iteration (200 mails), one transaction after the other on one connection.
//!
//! Measured: mails per second (criterion's throughput), and the receive-time error = the sink's
//! receive time of a mail minus the time its client finished writing the final `.` (both read from
//! one `SystemClock`), p50/p99 over every mail (goal: p99 ≤ 5 ms). Baseline: the same clients
//! against a trivial in-process server that answers every command `250` (and `354` to `DATA`) and
//! discards the mail; the ratio sink / baseline throughput is printed after the samples.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use firedrill::clock::{Clock, SystemClock};
use firedrill::sinks::{Limits, Sink, SinkConfig, SinkEvent, SinkKind, Timeouts};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const CLIENTS: usize = 8;
const MAILS_PER_CLIENT: usize = 25;
const BODY_BYTES: usize = 10 * 1024;

/// When each mail finished sending, by mail number.
type Sent = Arc<Mutex<HashMap<u64, Duration>>>;

/// A 10 KiB mail whose subject carries its number.
fn mail(number: u64) -> Vec<u8> {
    let mut text = format!(
        "From: alerts@acme.example\r\nTo: customer@example.com\r\nSubject: m-{number}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    let line = "Billing is down; we are working on it and will post the next update soon.\r\n";
    while text.len() + line.len() <= BODY_BYTES {
        text.push_str(line);
    }
    text.push_str(".\r\n");
    text.into_bytes()
}

async fn expect(reader: &mut BufReader<TcpStream>, code: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).await.unwrap() > 0, "server closed");
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        if line.as_bytes().get(3) != Some(&b'-') {
            return;
        }
    }
}

/// One client: `MAILS_PER_CLIENT` transactions on one connection.
async fn client(addr: SocketAddr, first: u64, clock: Arc<SystemClock>, sent: Sent) {
    let mut reader = BufReader::new(TcpStream::connect(addr).await.unwrap());
    reader.get_ref().set_nodelay(true).unwrap();
    expect(&mut reader, "220").await;
    reader.get_mut().write_all(b"EHLO bench.test\r\n").await.unwrap();
    expect(&mut reader, "250").await;
    for number in first..first + MAILS_PER_CLIENT as u64 {
        let body = mail(number);
        for (command, code) in [
            (&b"MAIL FROM:<alerts@acme.example>\r\n"[..], "250"),
            (b"RCPT TO:<customer@example.com>\r\n", "250"),
            (b"DATA\r\n", "354"),
        ] {
            reader.get_mut().write_all(command).await.unwrap();
            expect(&mut reader, code).await;
        }
        reader.get_mut().write_all(&body).await.unwrap();
        reader.get_mut().flush().await.unwrap();
        sent.lock().unwrap().insert(number, clock.offset());
        expect(&mut reader, "250").await;
    }
    reader.get_mut().write_all(b"QUIT\r\n").await.unwrap();
    expect(&mut reader, "221").await;
}

/// Run every client once; the wall time of the batch.
async fn batch(addr: SocketAddr, first: u64, clock: &Arc<SystemClock>, sent: &Sent) -> Duration {
    let start = clock.offset();
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let first = first + (c * MAILS_PER_CLIENT) as u64;
        clients.spawn(client(addr, first, clock.clone(), sent.clone()));
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    clock.offset() - start
}

/// Accept-and-discard: `250` to every command, `354` to `DATA`, `221` to `QUIT`, mail bytes
/// dropped up to the final dot.
async fn discard_server(listener: TcpListener) {
    while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(async move {
            socket.set_nodelay(true).unwrap();
            let mut reader = BufReader::new(socket);
            reader.get_mut().write_all(b"220 discard\r\n").await.unwrap();
            let mut line = Vec::new();
            let mut in_data = false;
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let reply: &[u8] = if in_data {
                    if line != b".\r\n" {
                        continue;
                    }
                    in_data = false;
                    b"250 OK\r\n"
                } else if line.starts_with(b"DATA") {
                    in_data = true;
                    b"354 go\r\n"
                } else if line.starts_with(b"QUIT") {
                    let _ = reader.get_mut().write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"250 OK\r\n"
                };
                if reader.get_mut().write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn smtp(c: &mut Criterion) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let clock = Arc::new(SystemClock::start());
    let received: Sent = Arc::default();
    let sent: Sent = Arc::default();
    let (sink, baseline_addr) = runtime.block_on(async {
        let config = SinkConfig {
            name: "email".into(),
            kind: SinkKind::Smtp,
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            limits: Limits { max_message_bytes: 64 * 1024, max_messages: usize::MAX },
            timeouts: Timeouts::default(),
            seed: 1,
        };
        let sink_clock = clock.clone();
        let record = received.clone();
        let sink = Sink::start(
            config,
            Arc::new(move || sink_clock.offset()),
            Arc::new(move |event| {
                if let SinkEvent::Received(mail) = event {
                    let number = mail
                        .subject
                        .as_deref()
                        .and_then(|s| s.strip_prefix("m-"))
                        .and_then(|n| n.parse().ok());
                    record.lock().unwrap().insert(number.expect("numbered subject"), mail.received);
                }
            }),
        )
        .await
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(discard_server(listener));
        (sink, addr)
    });
    let sink_addr = sink.local_addrs()[0];
    let per_batch = (CLIENTS * MAILS_PER_CLIENT) as u64;
    let mut next = 0u64;
    let mut sink_time = (Duration::ZERO, 0u64);
    let mut baseline_time = (Duration::ZERO, 0u64);

    let mut group = c.benchmark_group("smtp");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .throughput(Throughput::Elements(per_batch));
    group.bench_function("sink 8 clients 10KiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += runtime.block_on(batch(sink_addr, next, &clock, &sent));
                next += per_batch;
            }
            sink_time.0 += total;
            sink_time.1 += iters * per_batch;
            total
        })
    });
    let discarded: Sent = Arc::default();
    group.bench_function("baseline accept-and-discard", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += runtime.block_on(batch(baseline_addr, 0, &clock, &discarded));
            }
            baseline_time.0 += total;
            baseline_time.1 += iters * per_batch;
            total
        })
    });
    group.finish();

    let sent = sent.lock().unwrap();
    let received = received.lock().unwrap();
    let mut errors: Vec<i64> = sent
        .iter()
        .map(|(number, at)| {
            let got = received.get(number).expect("every mail sent was recorded");
            got.as_micros() as i64 - at.as_micros() as i64
        })
        .collect();
    errors.sort_unstable();
    let rate = |(time, mails): (Duration, u64)| mails as f64 / time.as_secs_f64();
    let (sink_rate, baseline_rate) = (rate(sink_time), rate(baseline_time));
    println!(
        "smtp sink: {} mails of 10 KiB from {CLIENTS} clients: {sink_rate:.0} mails/s; baseline \
         (accept and discard) {baseline_rate:.0} mails/s; sink / baseline = {:.2}; receive-time error \
         (sink receive − client send-complete) p50 {} µs, p99 {} µs, max {} µs (goal p99 ≤ 5000 µs)",
        errors.len(),
        sink_rate / baseline_rate,
        percentile(&errors, 0.50),
        percentile(&errors, 0.99),
        errors.last().copied().unwrap_or_default(),
    );
    drop((sent, received));
    runtime.block_on(sink.shutdown());
}

criterion_group!(benches, smtp);
criterion_main!(benches);
