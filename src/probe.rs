//! Probes: one request from the harness to a service's published port on 127.0.0.1, judged
//! against an expectation, with its latency measured on the injected clock.
//!
//! Probes only ever target 127.0.0.1 ports the stack reported. This module records nothing: the
//! engine turns each [`ProbeOutcome`] into a journal event.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::clock;

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// Whether the expectation held.
    pub ok: bool,
    /// HTTP status, when an HTTP answer came.
    pub status: Option<u16>,
    /// Time from sending to the answer (or to the failure).
    pub latency: Duration,
    /// What was wrong, when it failed.
    pub error: Option<String>,
}

/// What an HTTP probe sends and expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExpectation<'a> {
    /// Method, e.g. `GET`.
    pub method: &'a str,
    /// Path, starting with `/`.
    pub path: &'a str,
    /// Expected status.
    pub status: u16,
    /// Text the body must contain.
    pub body_contains: Option<&'a str>,
}

/// An HTTP client for probes: no proxy (never send probe traffic anywhere but 127.0.0.1), no
/// connection reuse (a probe must see a restarted service, not a stale pooled connection).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a plain HTTP client always builds")
}

/// Send one HTTP request to `127.0.0.1:port` and judge the answer.
pub async fn http(
    client: &reqwest::Client,
    port: u16,
    expect: &HttpExpectation<'_>,
    timeout: Duration,
) -> ProbeOutcome {
    let started = clock::instant_now();
    let url = format!("http://127.0.0.1:{port}{}", expect.path);
    let method =
        reqwest::Method::from_bytes(expect.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let attempt = async {
        let response = client.request(method, &url).send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    };
    let result = tokio::time::timeout(timeout, attempt).await;
    let latency = clock::instant_now().saturating_duration_since(started);
    match result {
        Err(_) => failed(
            None,
            latency,
            format!("no answer within {}", crate::scenario::format_duration(timeout)),
        ),
        Ok(Err(error)) => failed(None, latency, describe_reqwest_error(&error)),
        Ok(Ok((status, body))) => {
            if status != expect.status {
                let excerpt: String = body.chars().take(120).collect();
                let excerpt = excerpt.trim();
                let error = if excerpt.is_empty() {
                    format!("status {status}, expected {}", expect.status)
                } else {
                    format!("status {status}, expected {}: {excerpt}", expect.status)
                };
                return failed(Some(status), latency, error);
            }
            if let Some(needle) = expect.body_contains
                && !body.contains(needle)
            {
                return failed(Some(status), latency, format!("body does not contain `{needle}`"));
            }
            ProbeOutcome { ok: true, status: Some(status), latency, error: None }
        }
    }
}

/// What a TCP probe does once connected: write `send` (if any), then read until the answer
/// contains `expect`. Without `expect` a connect is enough (the scenario said so).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpExpectation<'a> {
    /// Bytes to write after connecting.
    pub send: Option<&'a str>,
    /// Text the answer must contain; `None`: connect only.
    pub expect: Option<&'a str>,
}

/// Open a TCP connection to `127.0.0.1:port` and, with an `expect`, run the exchange.
///
/// An accepted connection proves little: Docker's userland port proxy accepts on the host side
/// whatever happens inside, and the kernel of a paused (frozen) container still completes the
/// handshake and queues the bytes. So with `expect`, only the expected answer within `timeout`
/// passes; a timeout, a reset or a close before it fails. Without `expect` (`connect-is-enough`),
/// the connection passes unless the peer closes or resets it at once (the proxy does that when
/// nothing listens inside).
pub async fn tcp(port: u16, expect: &TcpExpectation<'_>, timeout: Duration) -> ProbeOutcome {
    let started = clock::instant_now();
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let Some(wanted) = expect.expect else {
            return connect_only(&mut stream).await;
        };
        if let Some(send) = expect.send {
            stream.write_all(send.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
        }
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                Ok(0) => {
                    return Err(format!(
                        "closed before answering `{wanted}`{}",
                        excerpt(&answer).map(|a| format!(" (answered `{a}`)")).unwrap_or_default()
                    ));
                }
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&answer).contains(wanted) {
                        let _ = stream.shutdown().await;
                        return Ok(());
                    }
                    if answer.len() > 64 * 1024 {
                        return Err(format!("answered without `{wanted}`"));
                    }
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    };
    let result = tokio::time::timeout(timeout, attempt).await;
    let latency = clock::instant_now().saturating_duration_since(started);
    let within = crate::scenario::format_duration(timeout);
    match result {
        Err(_) => match expect.expect {
            Some(wanted) => failed(None, latency, format!("no answer `{wanted}` within {within}")),
            None => failed(None, latency, format!("no connection within {within}")),
        },
        Ok(Err(error)) => failed(None, latency, error),
        Ok(Ok(())) => ProbeOutcome { ok: true, status: None, latency, error: None },
    }
}

/// `connect-is-enough`: Docker's userland proxy accepts, then closes when the backend refuses;
/// read with a short grace to tell that from a listening service.
async fn connect_only(stream: &mut tokio::net::TcpStream) -> Result<(), String> {
    let mut buf = [0u8; 1];
    match tokio::time::timeout(
        Duration::from_millis(50),
        tokio::io::AsyncReadExt::read(stream, &mut buf),
    )
    .await
    {
        Ok(Ok(0)) => Err("connect: closed by peer at once".to_owned()),
        Ok(Err(e)) => Err(format!("connect: {e}")),
        _ => {
            let _ = stream.shutdown().await;
            Ok(())
        }
    }
}

/// The first line of an answer, for messages.
fn excerpt(answer: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(answer);
    let line: String = text.lines().next().unwrap_or_default().chars().take(60).collect();
    (!line.trim().is_empty()).then(|| line.trim().to_owned())
}

fn failed(status: Option<u16>, latency: Duration, error: String) -> ProbeOutcome {
    ProbeOutcome { ok: false, status, latency, error: Some(error) }
}

pub(crate) fn describe_reqwest_error(error: &reqwest::Error) -> String {
    // reqwest's own message is generic ("error sending request for url ..."); the innermost cause
    // says what happened ("Connection refused (os error 111)").
    let mut innermost: &dyn std::error::Error = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    let what = if error.is_connect() { "connect" } else { "request" };
    format!("{what}: {innermost}")
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    async fn one_shot_server(response: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 2048];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        port
    }

    #[tokio::test]
    async fn http_probe_judges_status_and_body() {
        let port =
            one_shot_server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        let client = http_client();
        let expect = HttpExpectation {
            method: "GET",
            path: "/health",
            status: 200,
            body_contains: Some("ok"),
        };
        let outcome = http(&client, port, &expect, Duration::from_secs(2)).await;
        assert!(outcome.ok, "{outcome:?}");
        assert_eq!(outcome.status, Some(200));

        let expect = HttpExpectation { body_contains: Some("ready"), ..expect };
        let outcome = http(&client, port, &expect, Duration::from_secs(2)).await;
        assert!(!outcome.ok);
        assert_eq!(outcome.error.as_deref(), Some("body does not contain `ready`"));
    }

    #[tokio::test]
    async fn http_probe_reports_wrong_status_with_body_excerpt() {
        let port = one_shot_server("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 7\r\nconnection: close\r\n\r\ndb down").await;
        let expect =
            HttpExpectation { method: "GET", path: "/health", status: 200, body_contains: None };
        let outcome = http(&http_client(), port, &expect, Duration::from_secs(2)).await;
        assert_eq!(outcome.status, Some(503));
        assert_eq!(outcome.error.as_deref(), Some("status 503, expected 200: db down"));
    }

    #[tokio::test]
    async fn probes_to_a_closed_port_fail() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(!tcp(port, &TcpExpectation::default(), Duration::from_secs(1)).await.ok);
        let expect = HttpExpectation { method: "GET", path: "/", status: 200, body_contains: None };
        let outcome = http(&http_client(), port, &expect, Duration::from_secs(1)).await;
        assert!(!outcome.ok);
        assert!(outcome.error.unwrap().contains("refused"));
    }

    #[tokio::test]
    async fn tcp_probe_passes_on_a_listening_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        assert!(tcp(port, &TcpExpectation::default(), Duration::from_secs(1)).await.ok);
    }

    /// A server that accepts and holds every connection without a word: what a frozen service
    /// behind Docker's port proxy looks like.
    async fn silent_server() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        port
    }

    const REDIS_PING: TcpExpectation<'static> =
        TcpExpectation { send: Some("PING\r\n"), expect: Some("+PONG") };

    #[tokio::test]
    async fn an_accepted_but_silent_connection_is_not_an_answer() {
        let port = silent_server().await;
        let outcome = tcp(port, &REDIS_PING, Duration::from_millis(300)).await;
        assert!(!outcome.ok, "{outcome:?}");
        assert_eq!(outcome.error.as_deref(), Some("no answer `+PONG` within 300ms"));
        // Opted into: a connect is enough, and the silent server passes.
        assert!(tcp(port, &TcpExpectation::default(), Duration::from_millis(300)).await.ok);
    }

    #[tokio::test]
    async fn the_expected_answer_passes_and_a_wrong_or_closed_one_fails() {
        let pong = one_shot_server("+PONG\r\n").await;
        let outcome = tcp(pong, &REDIS_PING, Duration::from_secs(2)).await;
        assert!(outcome.ok, "{outcome:?}");
        let loading = one_shot_server("-LOADING Redis is loading the dataset in memory\r\n").await;
        let outcome = tcp(loading, &REDIS_PING, Duration::from_secs(2)).await;
        assert_eq!(
            outcome.error.as_deref(),
            Some(
                "closed before answering `+PONG` (answered `-LOADING Redis is loading the \
                 dataset in memory`)"
            )
        );
        let refused = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().port()
        };
        let outcome = tcp(refused, &REDIS_PING, Duration::from_secs(1)).await;
        assert!(outcome.error.unwrap().starts_with("connect: "));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let expect = HttpExpectation { method: "GET", path: "/", status: 200, body_contains: None };
        let outcome = http(&http_client(), port, &expect, Duration::from_millis(300)).await;
        assert_eq!(outcome.error.as_deref(), Some("no answer within 300ms"));
    }
}
