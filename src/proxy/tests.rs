//! The proxy against loopback servers, observed from the client side.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::*;

/// Every event the proxy emitted, with a way to wait for one.
#[derive(Clone, Default)]
struct Events {
    seen: Arc<Mutex<Vec<ProxyEvent>>>,
    notify: Arc<Notify>,
}

impl Events {
    fn sink(&self) -> Arc<dyn Fn(ProxyEvent) + Send + Sync> {
        let events = self.clone();
        Arc::new(move |event| {
            events.seen.lock().unwrap().push(event);
            events.notify.notify_waiters();
        })
    }

    fn all(&self) -> Vec<ProxyEvent> {
        self.seen.lock().unwrap().clone()
    }

    /// Wait until an event matches (proxy work is asynchronous to `add`/`remove`).
    async fn wait_for(&self, matches: impl Fn(&ProxyEvent) -> bool) -> ProxyEvent {
        loop {
            let notified = self.notify.notified();
            if let Some(event) = self.all().into_iter().find(&matches) {
                return event;
            }
            notified.await;
        }
    }

    async fn applied(&self, id: ToxicId, count: usize) {
        loop {
            let notified = self.notify.notified();
            let applied = self
                .all()
                .iter()
                .filter(|event| matches!(event, ProxyEvent::ToxicApplied { id: applied, .. } if *applied == id))
                .count();
            if applied >= count {
                return;
            }
            notified.await;
        }
    }

    fn closed(&self) -> Vec<(ConnId, CloseReason, u64, u64)> {
        self.all()
            .into_iter()
            .filter_map(|event| match event {
                ProxyEvent::Closed { conn, reason, bytes_up, bytes_down } => {
                    Some((conn, reason, bytes_up, bytes_down))
                }
                _ => None,
            })
            .collect()
    }
}

/// A loopback echo server; each connection echoes until EOF, then closes its side.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.into_split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
                let _ = write.shutdown().await;
            });
        }
    });
    addr
}

/// A loopback HTTP/1.1 server answering `200 ok` with keep-alive, counting the requests it saw.
async fn http_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                    let body: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .map_or(0, |value| value.trim().parse().unwrap());
                    while buffer.len() < end + 4 + body {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buffer.drain(..end + 4 + body);
                    counter.fetch_add(1, Ordering::SeqCst);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, count)
}

/// Fail instead of hanging when bytes never come (on paused time: once every task is idle).
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} never finished"))
}

async fn start(cfg: ProxyConfig, upstream: SocketAddr) -> (Proxy, Events) {
    let events = Events::default();
    let proxy = Proxy::start(cfg, Arc::new(upstream), events.sink()).await.unwrap();
    (proxy, events)
}

async fn connect(proxy: &Proxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.local_addrs()[0]).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Send `message`, read the echo back, return how long it took on tokio's clock.
async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Duration {
    let started = time::now();
    stream.write_all(message).await.unwrap();
    let mut echo = vec![0u8; message.len()];
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(echo, message);
    time::now() - started
}

async fn read_to_end(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await?;
    Ok(all)
}

fn latency(ms: u64) -> ToxicKind {
    ToxicKind::Latency { latency: Duration::from_millis(ms), jitter: Duration::ZERO }
}

#[tokio::test]
async fn bytes_pass_both_ways_and_are_counted() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let mut client = connect(&proxy).await;
    let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    round_trip(&mut client, &message).await;
    client.shutdown().await.unwrap();
    assert!(read_to_end(&mut client).await.unwrap().is_empty());
    let closed = events.wait_for(|event| matches!(event, ProxyEvent::Closed { .. })).await;
    assert_eq!(
        closed,
        ProxyEvent::Closed {
            conn: ConnId(1),
            bytes_up: 200_000,
            bytes_down: 200_000,
            reason: CloseReason::Finished
        }
    );
    let stats = proxy.stats();
    assert_eq!(
        (stats.connections, stats.active, stats.bytes_up, stats.bytes_down),
        (1, 0, 200_000, 200_000)
    );
    proxy.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn latency_delays_live_connections_and_removing_it_undoes_it() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let mut client = connect(&proxy).await;
    let baseline = round_trip(&mut client, b"ping").await;

    let id = proxy.add(ToxicSpec::new(latency(100), Direction::Downstream));
    events.applied(id, 1).await;
    let delayed = round_trip(&mut client, b"ping").await;
    assert!(
        delayed >= baseline + Duration::from_millis(100),
        "{delayed:?} vs baseline {baseline:?}"
    );

    // Removed while a chunk sleeps in the stage: it wakes and forwards at once. (On paused time
    // the sleep below ends only once every task is idle: the chunk is then held by the stage.)
    let started = time::now();
    client.write_all(b"ping").await.unwrap();
    tokio::time::sleep_until(started + Duration::from_millis(10)).await;
    proxy.remove(id);
    let mut echo = [0u8; 4];
    within("the flushed echo", client.read_exact(&mut echo)).await.unwrap();
    assert_eq!(&echo, b"ping");
    let after = time::now() - started;
    assert!(after < Duration::from_millis(100), "{after:?} after removal");
    assert!(round_trip(&mut client, b"ping").await < Duration::from_millis(100));

    // New connections get the toxic too.
    let id = proxy.add(ToxicSpec::new(latency(250), Direction::Upstream));
    let mut second = connect(&proxy).await;
    events.applied(id, 1).await;
    assert!(round_trip(&mut second, b"x").await >= Duration::from_millis(250));
    proxy.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bandwidth_limits_throughput_until_removed() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let mut client = connect(&proxy).await;
    let message = vec![7u8; 100_000];
    let baseline = round_trip(&mut client, &message).await;
    let id = proxy.add(ToxicSpec::new(
        ToxicKind::Bandwidth { bytes_per_sec: 200_000 },
        Direction::Downstream,
    ));
    events.applied(id, 1).await;
    let limited = round_trip(&mut client, &message).await;
    // 100 kB at 200 kB/s.
    assert!(limited >= baseline + Duration::from_millis(450), "{limited:?} vs {baseline:?}");
    proxy.remove(id);
    events.wait_for(|event| matches!(event, ProxyEvent::ToxicRemoved { .. })).await;
    let mut client = connect(&proxy).await;
    assert!(round_trip(&mut client, &message).await < Duration::from_millis(100));
    proxy.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn timeout_passes_nothing_then_closes() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let id = proxy.add(ToxicSpec::new(
        ToxicKind::Timeout { after: Duration::from_secs(2) },
        Direction::Upstream,
    ));
    let mut client = connect(&proxy).await;
    let started = time::now();
    client.write_all(b"hello").await.unwrap();
    assert!(
        read_to_end(&mut client).await.unwrap().is_empty(),
        "no byte reaches the server and back"
    );
    assert!(time::now() - started >= Duration::from_secs(2));
    events.wait_for(|event| matches!(event, ProxyEvent::Closed { .. })).await;
    assert_eq!(
        events.closed(),
        vec![(ConnId(1), CloseReason::Toxic { id, toxic: "timeout".into() }, 0, 0)]
    );
    proxy.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn timeout_zero_holds_data_and_removing_it_delivers_it_in_order() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let id = proxy
        .add(ToxicSpec::new(ToxicKind::Timeout { after: Duration::ZERO }, Direction::Upstream));
    let mut client = connect(&proxy).await;
    events.applied(id, 1).await;
    client.write_all(b"held ").await.unwrap();
    client.write_all(b"then delivered").await.unwrap();
    let mut first = [0u8; 1];
    // Paused time only moves once every task is idle: nothing is on its way.
    let pending = tokio::time::timeout(Duration::from_secs(60), client.read(&mut first)).await;
    assert!(pending.is_err(), "nothing passes while the toxic holds");
    assert_eq!(proxy.stats().bytes_up, 0);
    proxy.remove(id);
    let mut echo = vec![0u8; 19];
    client.read_exact(&mut echo).await.unwrap();
    assert_eq!(echo, b"held then delivered");
    proxy.shutdown().await;
}

#[tokio::test]
async fn reset_peer_sends_a_real_rst() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let id = proxy
        .add(ToxicSpec::new(ToxicKind::ResetPeer { after: Duration::ZERO }, Direction::Upstream));
    let mut client = connect(&proxy).await;
    client.write_all(b"hello").await.unwrap();
    let error = read_to_end(&mut client).await.expect_err("a reset, not an orderly close");
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    let closed = events.wait_for(|event| matches!(event, ProxyEvent::Closed { .. })).await;
    assert!(
        matches!(closed, ProxyEvent::Closed { reason: CloseReason::Toxic { id: toxic, .. }, .. } if toxic == id)
    );
    proxy.remove(id);
    let mut client = connect(&proxy).await;
    round_trip(&mut client, b"fine again").await;
    proxy.shutdown().await;
}

#[tokio::test]
async fn limit_data_delivers_exactly_n_bytes_then_closes() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let id = proxy.add(ToxicSpec::new(ToxicKind::LimitData { bytes: 1000 }, Direction::Downstream));
    let mut client = connect(&proxy).await;
    let message: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
    client.write_all(&message).await.unwrap();
    let received = read_to_end(&mut client).await.unwrap();
    assert_eq!(received, message[..1000]);
    let closed = events.wait_for(|event| matches!(event, ProxyEvent::Closed { .. })).await;
    assert!(
        matches!(closed, ProxyEvent::Closed { bytes_down: 1000, reason: CloseReason::Toxic { id: toxic, .. }, .. } if toxic == id)
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn down_refuses_and_closes_then_comes_back_on_the_same_address() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let addr = proxy.local_addrs()[0];
    let mut existing = connect(&proxy).await;
    round_trip(&mut existing, b"up").await;

    let id = proxy.add(ToxicSpec::new(ToxicKind::Down, Direction::Upstream));
    events.wait_for(|event| matches!(event, ProxyEvent::ListenerClosed { .. })).await;
    assert!(read_to_end(&mut existing).await.unwrap().is_empty(), "the open connection is closed");
    let refused = TcpStream::connect(addr).await.expect_err("the listener is closed");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);

    proxy.remove(id);
    events.wait_for(|event| matches!(event, ProxyEvent::ListenerOpened { .. })).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut client, b"back").await;
    assert!(events.closed().iter().any(|(_, reason, _, _)| *reason == CloseReason::Down { id }));
    proxy.shutdown().await;
}

#[tokio::test]
async fn slicer_delivers_many_small_reads_with_bytes_intact() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let kind = ToxicKind::Slicer { average: 10, variation: 5, delay: Duration::from_millis(1) };
    let id = proxy.add(ToxicSpec::new(kind, Direction::Downstream));
    let mut client = connect(&proxy).await;
    events.applied(id, 1).await;
    let message: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    client.write_all(&message).await.unwrap();
    let mut received = Vec::new();
    let mut reads = 0;
    let mut buffer = [0u8; 4096];
    while received.len() < message.len() {
        let n = client.read(&mut buffer).await.unwrap();
        assert!(n > 0);
        received.extend_from_slice(&buffer[..n]);
        reads += 1;
    }
    assert_eq!(received, message);
    // About 100 slices 1 ms apart; the kernel may merge a few.
    assert!(reads >= 20, "{reads} reads");
    proxy.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn slow_close_holds_back_the_fin() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let id = proxy.add(ToxicSpec::new(
        ToxicKind::SlowClose { delay: Duration::from_millis(300) },
        Direction::Downstream,
    ));
    let mut client = connect(&proxy).await;
    events.applied(id, 1).await;
    round_trip(&mut client, b"bye").await;
    let started = time::now();
    client.shutdown().await.unwrap();
    assert!(read_to_end(&mut client).await.unwrap().is_empty());
    assert!(time::now() - started >= Duration::from_millis(300));
    proxy.shutdown().await;
}

async fn http_request(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: 4\r\n\r\nbody");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&response).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .to_lowercase()
                .lines()
                .find_map(|line| {
                    line.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if response.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "connection closed mid-response: {text:?}");
        response.extend_from_slice(&buffer[..n]);
    }
}

#[tokio::test]
async fn http_error_answers_itself_and_the_server_never_sees_the_request() {
    let (server, requests) = http_server().await;
    let (proxy, events) = start(ProxyConfig::loopback("web").with_http(true), server).await;
    let mut client = connect(&proxy).await;
    assert!(http_request(&mut client, "/one").await.starts_with("HTTP/1.1 200"));
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    // Added to the live keep-alive connection: its next request is answered by the proxy.
    let id = proxy.add(ToxicSpec::new(
        ToxicKind::HttpError { status: 503, probability: 1.0, route: RequestMatch::default() },
        Direction::Upstream,
    ));
    events.applied(id, 1).await;
    let answer = http_request(&mut client, "/two").await;
    assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable"), "{answer}");
    assert!(read_to_end(&mut client).await.unwrap().is_empty(), "closed after the answer");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "the request never reached the server");
    assert!(events.all().iter().any(|event| matches!(
        event,
        ProxyEvent::HttpInjected { injection: HttpInjection::Error { status: 503 }, .. }
    )));

    proxy.remove(id);
    let mut client = connect(&proxy).await;
    assert!(http_request(&mut client, "/three").await.starts_with("HTTP/1.1 200"));
    assert!(http_request(&mut client, "/four").await.starts_with("HTTP/1.1 200"));
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    proxy.shutdown().await;
}

#[tokio::test]
async fn http_toxics_let_bytes_that_are_not_http_through() {
    let (proxy, _events) =
        start(ProxyConfig::loopback("raw").with_http(true), echo_server().await).await;
    proxy.add(ToxicSpec::new(
        ToxicKind::HttpError { status: 500, probability: 1.0, route: RequestMatch::default() },
        Direction::Upstream,
    ));
    let mut client = connect(&proxy).await;
    let message: Vec<u8> = (0..10_000u32).map(|i| (i % 256) as u8).collect();
    round_trip(&mut client, &message).await;
    proxy.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn http_delay_holds_requests_back() {
    let (server, requests) = http_server().await;
    let (proxy, events) = start(ProxyConfig::loopback("web").with_http(true), server).await;
    let mut client = connect(&proxy).await;
    let started = time::now();
    http_request(&mut client, "/fast").await;
    let baseline = time::now() - started;
    let kind = ToxicKind::HttpDelay {
        delay: Duration::from_millis(500),
        probability: 1.0,
        route: RequestMatch::default(),
    };
    let id = proxy.add(ToxicSpec::new(kind, Direction::Upstream));
    events.applied(id, 1).await;
    let started = time::now();
    assert!(http_request(&mut client, "/slow").await.starts_with("HTTP/1.1 200"));
    assert!(time::now() - started >= baseline + Duration::from_millis(500));
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    proxy.shutdown().await;
}

/// A loopback HTTP/1.1 server whose answers name the request (`POST /invoices answered in full`),
/// chunked for `/chunked`, bodiless for `HEAD`; it records every request line it handled.
async fn route_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                    let body: usize = head
                        .to_lowercase()
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .map_or(0, |value| value.trim().parse().unwrap());
                    while buffer.len() < end + 4 + body {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buffer.drain(..end + 4 + body);
                    let line = head.lines().next().unwrap().to_owned();
                    let mut words = line.split(' ');
                    let (method, path) = (words.next().unwrap(), words.next().unwrap());
                    log.lock().unwrap().push(format!("{method} {path}"));
                    let text = format!("{method} {path} answered in full");
                    let answer = if path == "/chunked" {
                        format!(
                            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{text}\r\n0\r\n\r\n",
                            text.len()
                        )
                    } else if method == "HEAD" {
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", text.len())
                    } else {
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{text}", text.len())
                    };
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// What a client got for one request.
#[derive(Debug)]
struct Answer {
    head: String,
    body: String,
    /// The connection ended before the answer was complete.
    cut: bool,
}

/// Send one request and read its answer: to its `Content-Length` (none for `HEAD`), the last
/// chunk, or the close.
async fn ask(stream: &mut TcpStream, method: &str, path: &str, headers: &str) -> Answer {
    let request =
        format!("{method} {path} HTTP/1.1\r\nhost: test\r\n{headers}content-length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&response).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_owned();
            let body = text[end + 4..].to_owned();
            let lower = head.to_lowercase();
            let complete = match lower.lines().find_map(|l| l.strip_prefix("content-length:")) {
                _ if method == "HEAD" => true,
                Some(length) => body.len() >= length.trim().parse::<usize>().unwrap(),
                None => body.ends_with("0\r\n\r\n"),
            };
            if complete {
                return Answer { head, body, cut: false };
            }
        }
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                return Answer { head: head.to_owned(), body: body.to_owned(), cut: true };
            }
            Ok(n) => response.extend_from_slice(&buffer[..n]),
        }
    }
}

fn post_invoices() -> RequestMatch {
    RequestMatch {
        methods: vec!["POST".into()],
        path: Some("/invoices".into()),
        headers: Vec::new(),
    }
}

#[tokio::test]
async fn http_error_by_route_fails_post_invoices_and_leaves_get_health_alone() {
    let (server, seen) = route_server().await;
    let (proxy, events) = start(ProxyConfig::loopback("web").with_http(true), server).await;
    let kind = ToxicKind::HttpError { status: 503, probability: 1.0, route: post_invoices() };
    let id = proxy.add(ToxicSpec::new(kind, Direction::Upstream));
    let mut client = connect(&proxy).await;
    events.applied(id, 1).await;
    for (method, path) in [("GET", "/health"), ("GET", "/invoices"), ("POST", "/invoices/7")] {
        let answer = ask(&mut client, method, path, "").await;
        assert!(answer.head.starts_with("HTTP/1.1 200"), "{method} {path}: {answer:?}");
        assert_eq!(answer.body, format!("{method} {path} answered in full"));
    }
    let answer = ask(&mut client, "POST", "/invoices?draft=1", "").await;
    assert!(answer.head.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        ["GET /health", "GET /invoices", "POST /invoices/7"],
        "the failed request never reached the server"
    );

    // A header condition narrows it further: only tenant acme's health checks fail.
    proxy.remove(id);
    let route = RequestMatch {
        methods: Vec::new(),
        path: Some("/health/**".into()),
        headers: vec![HeaderMatch { name: "X-Tenant".into(), value: "acme*".into() }],
    };
    let kind = ToxicKind::HttpError { status: 502, probability: 1.0, route };
    let id = proxy.add(ToxicSpec::new(kind, Direction::Upstream));
    let mut client = connect(&proxy).await;
    events.applied(id, 1).await;
    let other = ask(&mut client, "GET", "/health/db", "x-tenant: globex\r\n").await;
    assert!(other.head.starts_with("HTTP/1.1 200"), "{other:?}");
    let acme = ask(&mut client, "GET", "/health/db", "X-TENANT: acme-eu\r\n").await;
    assert!(acme.head.starts_with("HTTP/1.1 502"), "{acme:?}");
    proxy.remove(id);
    let mut client = connect(&proxy).await;
    let healed = ask(&mut client, "GET", "/health/db", "x-tenant: acme\r\n").await;
    assert!(healed.head.starts_with("HTTP/1.1 200"), "{healed:?}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn http_abort_closes_the_connection_mid_answer_after_the_server_handled_it() {
    let (server, seen) = route_server().await;
    let (proxy, events) = start(ProxyConfig::loopback("web").with_http(true), server).await;
    let mut client = connect(&proxy).await;
    assert!(!ask(&mut client, "POST", "/invoices", "").await.cut);

    // Added on a live keep-alive connection: both halves join it.
    let kind = ToxicKind::HttpAbort { after: 5, probability: 1.0, route: post_invoices() };
    let id = proxy.add(ToxicSpec::new(kind, Direction::Upstream));
    events.applied(id, 1).await;
    let health = ask(&mut client, "GET", "/health", "").await;
    assert_eq!((health.cut, health.body.as_str()), (false, "GET /health answered in full"));
    let cut = ask(&mut client, "POST", "/invoices", "").await;
    assert!(cut.cut, "{cut:?}");
    assert!(cut.head.starts_with("HTTP/1.1 200"), "the head arrives: {cut:?}");
    assert_eq!(cut.body, "POST ", "then exactly `after` bytes of the body");
    assert_eq!(
        *seen.lock().unwrap(),
        ["POST /invoices", "GET /health", "POST /invoices"],
        "the aborted request reached the server"
    );
    assert!(events.all().iter().any(|event| matches!(
        event,
        ProxyEvent::HttpInjected { injection: HttpInjection::Abort { after: 5 }, .. }
    )));

    // `after: 0`: the head only; a chunked answer is cut the same way.
    proxy.remove(id);
    let everything = RequestMatch::default();
    let kind = ToxicKind::HttpAbort { after: 0, probability: 1.0, route: everything };
    let id = proxy.add(ToxicSpec::new(kind, Direction::Upstream));
    let mut client = connect(&proxy).await;
    events.applied(id, 1).await;
    let cut = ask(&mut client, "GET", "/chunked", "").await;
    assert!(cut.cut && cut.body.is_empty(), "{cut:?}");
    proxy.remove(id);
    let mut client = connect(&proxy).await;
    let whole = ask(&mut client, "POST", "/invoices", "").await;
    assert_eq!((whole.cut, whole.body.as_str()), (false, "POST /invoices answered in full"));
    proxy.shutdown().await;
}

#[tokio::test]
async fn http_truncate_shortens_bodies_consistently_and_the_connection_carries_on() {
    let (server, _seen) = route_server().await;
    let (proxy, events) = start(ProxyConfig::loopback("web").with_http(true), server).await;
    let route =
        RequestMatch { methods: Vec::new(), path: Some("/report*".into()), headers: Vec::new() };
    let kind = ToxicKind::HttpTruncate { bytes: 10, probability: 1.0, route };
    let id = proxy.add(ToxicSpec::new(kind, Direction::Upstream));
    let mut client = connect(&proxy).await;
    events.applied(id, 1).await;
    for _ in 0..2 {
        let short = ask(&mut client, "GET", "/reports", "").await;
        assert!(!short.cut, "{short:?}");
        assert!(short.head.contains("Content-Length: 10"), "{short:?}");
        assert_eq!(short.body, "GET /repor");
        // The rest of the body was dropped: the next answer on the connection is intact.
        let next = ask(&mut client, "GET", "/health", "").await;
        assert_eq!((next.cut, next.body.as_str()), (false, "GET /health answered in full"));
    }
    // A HEAD answer has no body to cut, whatever its `Content-Length` says.
    let head = ask(&mut client, "HEAD", "/reports", "").await;
    assert!(head.head.contains("content-length: 30"), "{head:?}");
    let next = ask(&mut client, "GET", "/health", "").await;
    assert_eq!(next.body, "GET /health answered in full");
    proxy.remove(id);
    let whole = ask(&mut client, "GET", "/reports", "").await;
    assert_eq!((whole.cut, whole.body.as_str()), (false, "GET /reports answered in full"));
    proxy.shutdown().await;
}

/// Which of `connections` connections a toxic with `toxicity` applied to, for a seed.
async fn applied_set(seed: u64, toxicity: f64, connections: u64) -> BTreeSet<u64> {
    let (proxy, events) =
        start(ProxyConfig::loopback("echo").with_seed(seed), echo_server().await).await;
    let id = proxy.add(ToxicSpec::new(latency(0), Direction::Downstream).with_toxicity(toxicity));
    for _ in 0..connections {
        let mut client = connect(&proxy).await;
        round_trip(&mut client, b"x").await;
    }
    let connected =
        events.all().iter().filter(|e| matches!(e, ProxyEvent::Connected { .. })).count();
    assert_eq!(connected as u64, connections);
    proxy.shutdown().await;
    events
        .all()
        .iter()
        .filter_map(|event| match event {
            ProxyEvent::ToxicApplied { conn, id: applied } if *applied == id => Some(conn.0),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn toxicity_zero_one_and_a_share_from_the_seed() {
    assert!(applied_set(1, 0.0, 10).await.is_empty());
    assert_eq!(applied_set(1, 1.0, 10).await, (1..=10).collect());
    let first = applied_set(42, 0.5, 24).await;
    assert_eq!(applied_set(42, 0.5, 24).await, first, "same seed, same decisions");
    assert!((4..=20).contains(&first.len()), "{first:?}");
    assert_ne!(applied_set(43, 0.5, 24).await, first, "another seed decides otherwise");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_toxics_mid_stream_loses_and_reorders_no_bytes() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let latency_id = proxy.add(ToxicSpec::new(latency(30), Direction::Downstream));
    let client = connect(&proxy).await;
    events.applied(latency_id, 1).await;
    let (mut read, mut write) = client.into_split();
    const COUNT: u32 = 200_000;
    let writer = tokio::spawn(async move {
        for block in 0..COUNT / 1000 {
            let bytes: Vec<u8> =
                (block * 1000..(block + 1) * 1000).flat_map(u32::to_be_bytes).collect();
            write.write_all(&bytes).await.unwrap();
            tokio::task::yield_now().await;
        }
        write.shutdown().await.unwrap();
    });
    let mut expected = 0u32;
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 8192];
    let mut changed = 0;
    loop {
        let n = within("the numbered stream", read.read(&mut chunk)).await.unwrap();
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let whole = buffer.len() / 4 * 4;
        for number in buffer[..whole].chunks_exact(4) {
            assert_eq!(
                u32::from_be_bytes(number.try_into().unwrap()),
                expected,
                "byte order broken"
            );
            expected += 1;
        }
        buffer.drain(..whole);
        // While data flows: add a stage behind the sleeping latency (which is restarted with a
        // new output), remove that stage while it holds a slice, then remove the latency while
        // it holds a chunk.
        if expected > 20_000 && changed == 0 {
            let slicer = ToxicKind::Slicer {
                average: 3000,
                variation: 1000,
                delay: Duration::from_millis(1),
            };
            proxy.add(ToxicSpec::new(slicer, Direction::Downstream));
            changed = 1;
        } else if expected > 60_000 && changed == 1 {
            proxy.remove(ToxicId(2));
            changed = 2;
        } else if expected > 120_000 && changed == 2 {
            proxy.remove(latency_id);
            changed = 3;
        }
    }
    writer.await.unwrap();
    assert_eq!(changed, 3, "every change happened mid-stream");
    assert_eq!(expected, COUNT, "every number arrived");
    assert!(buffer.is_empty());
    proxy.shutdown().await;
}

struct Switchable(Mutex<SocketAddr>);

impl Upstream for Switchable {
    fn resolve(&self) -> BoxFuture<'static, std::io::Result<SocketAddr>> {
        let addr = *self.0.lock().unwrap();
        Box::pin(async move { Ok(addr) })
    }
}

/// A server that answers every connection with `tag` and closes.
async fn tag_server(tag: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(tag).await;
        }
    });
    (addr, task)
}

#[tokio::test]
async fn each_connection_resolves_the_upstream_again() {
    let (first, first_task) = tag_server(b"first").await;
    let upstream = Arc::new(Switchable(Mutex::new(first)));
    let events = Events::default();
    let proxy =
        Proxy::start(ProxyConfig::loopback("svc"), upstream.clone(), events.sink()).await.unwrap();
    assert_eq!(read_to_end(&mut connect(&proxy).await).await.unwrap(), b"first");

    // The service restarts on another port.
    first_task.abort();
    let _ = first_task.await;
    let failed = read_to_end(&mut connect(&proxy).await).await.unwrap_or_default();
    assert!(failed.is_empty());
    events.wait_for(|event| matches!(event, ProxyEvent::UpstreamFailed { .. })).await;
    let (second, _second_task) = tag_server(b"second").await;
    *upstream.0.lock().unwrap() = second;
    assert_eq!(read_to_end(&mut connect(&proxy).await).await.unwrap(), b"second");
    proxy.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_live_connections_and_waits_for_them() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let mut client = connect(&proxy).await;
    round_trip(&mut client, b"hi").await;
    proxy.shutdown().await;
    assert!(events.closed().iter().any(|(_, reason, _, _)| *reason == CloseReason::Shutdown));
    assert!(read_to_end(&mut client).await.unwrap_or_default().is_empty());
}

#[test]
fn events_serialize_kebab_case() {
    let event = ProxyEvent::Closed {
        conn: ConnId(3),
        bytes_up: 1,
        bytes_down: 2,
        reason: CloseReason::Toxic { id: ToxicId(4), toxic: "limit-data".into() },
    };
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        serde_json::json!({"event": "closed", "conn": 3, "bytes-up": 1, "bytes-down": 2,
                           "reason": {"kind": "toxic", "id": 4, "toxic": "limit-data"}})
    );
    let injected = ProxyEvent::HttpInjected {
        conn: ConnId(1),
        id: ToxicId(2),
        injection: HttpInjection::Delay { delay: Duration::from_millis(50) },
    };
    let json = serde_json::to_value(&injected).unwrap();
    assert_eq!(json["injection"], serde_json::json!({"kind": "delay", "delay": "50ms"}));
    assert_eq!(serde_json::from_value::<ProxyEvent>(json).unwrap(), injected);
}

/// Numbers 0.. as big-endian u32s, checked in order as they arrive; returns how many arrived.
async fn expect_numbered(mut read: tokio::net::tcp::OwnedReadHalf) -> u32 {
    let mut expected = 0u32;
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = within("the numbered stream", read.read(&mut chunk)).await.unwrap();
        if n == 0 {
            assert!(buffer.is_empty(), "a number was cut short");
            return expected;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let whole = buffer.len() / 4 * 4;
        for number in buffer[..whole].chunks_exact(4) {
            let got = u32::from_be_bytes(number.try_into().unwrap());
            assert_eq!(got, expected, "a byte was lost or reordered");
            expected += 1;
        }
        buffer.drain(..whole);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_between_fast_path_and_toxics_on_a_busy_connection_loses_and_reorders_no_bytes() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let client = connect(&proxy).await;
    let (read, mut write) = client.into_split();
    let toggling = Arc::new(Notify::new());
    let toggled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Writes numbers until every toggle is done, so each one happens on a busy connection.
    let writer = tokio::spawn({
        let toggled = toggled.clone();
        async move {
            let mut next = 0u32;
            loop {
                let done = toggled.load(Ordering::SeqCst);
                let bytes: Vec<u8> = (next..next + 4096).flat_map(u32::to_be_bytes).collect();
                write.write_all(&bytes).await.unwrap();
                next += 4096;
                if done {
                    write.shutdown().await.unwrap();
                    return next;
                }
            }
        }
    });
    // The client starts reading only after the first rounds, so those find the buffers filling
    // up (pumps and writers stopped with bytes unwritten).
    let reader = tokio::spawn({
        let toggling = toggling.clone();
        async move {
            toggling.notified().await;
            expect_numbered(read).await
        }
    });
    let kinds = [
        latency(1),
        ToxicKind::Slicer { average: 700, variation: 300, delay: Duration::ZERO },
        ToxicKind::Bandwidth { bytes_per_sec: 1 << 30 },
    ];
    for round in 0..60usize {
        if round == 10 {
            toggling.notify_one();
        }
        let direction = if round % 2 == 0 { Direction::Downstream } else { Direction::Upstream };
        let id = proxy.add(ToxicSpec::new(kinds[round % kinds.len()].clone(), direction));
        events.applied(id, 1).await;
        proxy.remove(id);
    }
    toggled.store(true, Ordering::SeqCst);
    let written = writer.await.unwrap();
    assert_eq!(reader.await.unwrap(), written, "every number arrived");
    proxy.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_toxic_takes_effect_on_a_live_connection_every_time_it_is_added_again() {
    let (proxy, events) = start(ProxyConfig::loopback("echo"), echo_server().await).await;
    let mut client = connect(&proxy).await;
    for round in 0..4 {
        assert!(round_trip(&mut client, b"fast").await < Duration::from_millis(50), "{round}");
        let direction = if round % 2 == 0 { Direction::Upstream } else { Direction::Downstream };
        let id = proxy.add(ToxicSpec::new(latency(100), direction));
        events.applied(id, 1).await;
        let delayed = round_trip(&mut client, b"slow").await;
        assert!(delayed >= Duration::from_millis(100), "round {round}: {delayed:?}");
        proxy.remove(id);
    }
    assert!(round_trip(&mut client, b"fast again").await < Duration::from_millis(50));
    let closed = events.closed();
    assert!(closed.is_empty(), "one connection throughout: {closed:?}");
    proxy.shutdown().await;
}
