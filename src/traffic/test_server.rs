//! A tiny keep-alive HTTP/1.1 responder on 127.0.0.1 for the traffic tests: enough of the
//! protocol for reqwest (request line, `content-length` bodies, no chunking).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// One request as the handler sees it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub body: String,
}

/// Answers a request with (status, JSON body).
pub(crate) type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, (u16, String)> + Send + Sync>;

/// A handler from an async closure.
pub(crate) fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (u16, String)> + Send + 'static,
{
    Arc::new(move |request| Box::pin(f(request)))
}

/// A running server; [`shutdown`](TestServer::shutdown) closes the listener and every
/// connection (as a killed service would).
pub(crate) struct TestServer {
    pub port: u16,
    /// Requests answered or being answered.
    pub requests: Arc<AtomicUsize>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(handler: Handler) -> Self {
        Self::start_on(0, handler).await
    }

    /// On a given port (0: any free one).
    pub async fn start_on(port: u16, handler: Handler) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, handler, requests.clone(), stop.clone()));
        TestServer { port, requests, stop, task: Some(task) }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Close the listener and every connection, and wait until they are closed.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(
    listener: TcpListener,
    handler: Handler,
    requests: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => {
                if let Ok((socket, _)) = accepted {
                    connections.spawn(connection(socket, handler.clone(), requests.clone()));
                }
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    connections.shutdown().await;
}

async fn connection(socket: TcpStream, handler: Handler, requests: Arc<AtomicUsize>) {
    let mut reader = BufReader::new(socket);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let request = Request { method, path, body: String::from_utf8_lossy(&body).into_owned() };
        let (status, body) = handler(request).await;
        let reason = match status {
            200 => "OK",
            201 => "Created",
            404 => "Not Found",
            500 => "Internal Server Error",
            _ => "Whatever",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if reader.get_mut().write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A traffic spec: `GET /` expecting 200, 2 s timeout, no write verification.
pub(crate) fn traffic(rate_per_second: f64, concurrency: usize) -> crate::scenario::model::Traffic {
    crate::scenario::model::Traffic {
        name: "reads".to_owned(),
        request: crate::scenario::model::TrafficRequest {
            service: "billing".to_owned(),
            port: 8080,
            method: "GET".to_owned(),
            path: "/".to_owned(),
            body: None,
            status: 200,
        },
        rate_per_second,
        concurrency,
        timeout: std::time::Duration::from_secs(2),
        verify_writes: None,
    }
}

/// A resolver that always answers `port`.
pub(crate) fn fixed_port(port: u16) -> super::PortResolver {
    super::PortResolver::fixed(port)
}

/// A journal on tokio's clock (paused in the tests).
pub(crate) fn journal() -> crate::journal::Journal {
    crate::journal::Journal::in_memory(Arc::new(crate::clock::SystemClock::start()))
}

/// Keeps a timer at most 1 ms away while it lives.
///
/// Paused time auto-advances to the next timer whenever the runtime has nothing to run, and
/// waiting on loopback I/O counts as nothing to run: without a near timer, a request in flight
/// would see the clock jump to its own timeout. With this, virtual time moves 1 ms per idle
/// moment, so I/O takes a few virtual milliseconds and slow handlers (`clock::sleep`) are exact.
pub(crate) fn keep_time_moving() -> Ticker {
    Ticker(tokio::spawn(async {
        loop {
            crate::clock::sleep(std::time::Duration::from_millis(1)).await;
        }
    }))
}

/// See [`keep_time_moving`].
pub(crate) struct Ticker(JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One `traffic-request` event's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub scheduled_us: u64,
    pub lateness_us: u64,
    pub latency_us: u64,
    pub harness_lag_us: u64,
    pub sent: bool,
    pub ok: bool,
    pub status: Option<u16>,
    pub write_id: Option<String>,
    pub error: Option<String>,
}

/// The `traffic-request` events, in schedule order.
pub(crate) fn sent(journal: &crate::journal::Journal) -> Vec<Sent> {
    let mut sent: Vec<Sent> = journal
        .snapshot()
        .into_iter()
        .filter_map(|event| match event.kind {
            crate::journal::EventKind::TrafficRequest {
                scheduled_us,
                lateness_us,
                latency_us,
                harness_lag_us,
                sent,
                ok,
                status,
                write_id,
                error,
                ..
            } => Some(Sent {
                scheduled_us,
                lateness_us,
                latency_us,
                harness_lag_us,
                sent,
                ok,
                status,
                write_id,
                error,
            }),
            _ => None,
        })
        .collect();
    sent.sort_by_key(|sent| sent.scheduled_us);
    sent
}
