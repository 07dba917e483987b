//! The HTTP half of the sinks: one axum router per provider (one file each), served by a hyper
//! accept loop whose connections end when the sink stops.
//!
//! Every provider handler goes through [`accept`] first: chaos (the provider's error body with the
//! chaos status, or a hold), the body cap (413, never buffering past it), then its own validation
//! (400/404/422 with the provider's error body and a rejection), then [`take_slot`] for the run's
//! message budget (429). Unknown paths and methods get the provider's 404/405 and an
//! `unknown-path` rejection.
//!
//! Each connection is watched ([`Watched`]): idle (no request in progress) it may last `idle`
//! and may be evicted at the connection cap; once the first byte of a request head arrives it has
//! `header-read` for the rest of the head; while a request is handled nothing times the
//! connection out, but [`accept`] gives its body `body-read` (then 408), and a chaos hold and the
//! answer are the sink's own turn. hyper's own `header_read_timeout` is not used: it starts when hyper
//! begins waiting for a head, so it would also close idle keep-alive connections.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::connections::{Connections, Slot};
use super::{ChaosVerdict, RejectReason, Shared, SinkKind};

mod pagerduty;
mod sinch;
mod slack;
mod statuspage;
mod twilio;
mod webhook;

/// Renders a provider's error answer.
pub(super) type ErrorFn = fn(StatusCode, &str) -> Response;

/// The router of one provider, with its unknown-path answers.
pub(super) fn router(kind: SinkKind, shared: Arc<Shared>) -> Router {
    let (routes, error): (Router<Arc<Shared>>, ErrorFn) = match kind {
        SinkKind::Twilio => (twilio::routes(), twilio::error),
        SinkKind::Sinch => (sinch::routes(), sinch::error),
        SinkKind::Statuspage => (statuspage::routes(), statuspage::error),
        SinkKind::Slack => (slack::routes(), slack::error),
        SinkKind::Pagerduty => (pagerduty::routes(), pagerduty::error),
        SinkKind::Webhook => (webhook::routes(), webhook::error),
        SinkKind::Smtp => unreachable!("the SMTP sink has no router"),
    };
    let not_found = move |State(shared): State<Arc<Shared>>, method: Method, uri: Uri| async move {
        shared.rejected(RejectReason::UnknownPath, format!("{method} {}", uri.path()));
        error(
            StatusCode::NOT_FOUND,
            &format!("The requested resource {} was not found", uri.path()),
        )
    };
    let not_allowed = move |State(shared): State<Arc<Shared>>, method: Method, uri: Uri| async move {
        shared.rejected(RejectReason::UnknownPath, format!("{method} {}", uri.path()));
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("Method {method} not allowed on {}", uri.path()),
        )
    };
    routes.fallback(not_found).method_not_allowed_fallback(not_allowed).with_state(shared)
}

/// Serve HTTP/1.1 on `listener` until the sink stops.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    connections: Arc<Connections>,
) {
    let per_connection = shared.clone();
    super::accept_loop(listener, shared, connections, move |stream, peer, slot| {
        connection(stream, peer, slot, router.clone(), per_connection.clone())
    })
    .await;
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress (evictable; `idle` timeout).
    Idle,
    /// Bytes of a request head arrived (still evictable; `header-read` timeout).
    Head,
    /// A request is being handled.
    Busy,
}

/// A connection's phase, shared by its stream, its service and its supervisor.
struct Tracker {
    slot: Slot,
    phase: watch::Sender<Phase>,
}

impl Tracker {
    fn bytes_arrived(&self) {
        self.phase.send_if_modified(|phase| {
            let head = *phase == Phase::Idle;
            if head {
                *phase = Phase::Head;
            }
            head
        });
    }

    fn request_started(&self) {
        // An evicted connection is dropped by its supervisor; the request goes with it.
        self.slot.busy();
        self.phase.send_replace(Phase::Busy);
    }

    fn request_ended(&self) {
        self.slot.idle();
        self.phase.send_replace(Phase::Idle);
    }
}

/// The TCP stream of one connection, noticing when a request head begins.
struct Watched {
    stream: TcpStream,
    tracker: Arc<Tracker>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tracker.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serve one connection until the client closes it, it times out, it is evicted or the sink
/// stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    router: Router,
    shared: Arc<Shared>,
) {
    let (phase, mut phases) = watch::channel(Phase::Idle);
    let tracker = Arc::new(Tracker { slot, phase });
    let inner = TowerToHyperService::new(router);
    let service = {
        let tracker = tracker.clone();
        hyper::service::service_fn(move |request| {
            tracker.request_started();
            let answer = hyper::service::Service::call(&inner, request);
            let tracker = tracker.clone();
            async move {
                let answer = answer.await;
                tracker.request_ended();
                answer
            }
        })
    };
    let io = TokioIo::new(Watched { stream, tracker: tracker.clone() });
    // A connection error (client gone, malformed HTTP) ends only that connection; hyper answers
    // malformed requests with 400 itself.
    let served = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(served);
    let timeouts = &shared.timeouts;
    loop {
        let current = *phases.borrow_and_update();
        let limit = match current {
            Phase::Idle => Some(("idle", "no request", timeouts.idle)),
            Phase::Head => Some(("header-read", "request head not complete", timeouts.header_read)),
            Phase::Busy => None,
        };
        let timed_out = async {
            match limit {
                Some((_, _, limit)) => tokio::time::timeout(limit, phases.changed()).await.is_err(),
                None => {
                    let _ = phases.changed().await;
                    false
                }
            }
        };
        tokio::select! {
            _ = &mut served => return,
            // Reported by the accept loop, which knows whom it was evicted for.
            () = tracker.slot.evicted() => return,
            timed_out = timed_out => {
                if timed_out {
                    let (key, missed, limit) = limit.expect("only a limit runs out");
                    shared.rejected(
                        RejectReason::Timeout,
                        format!("{peer}: {missed} within {limit:?} (`{key}` timeout); closed"),
                    );
                    return;
                }
            }
        }
    }
}

/// A request that passed chaos and the body cap.
pub(super) struct Accepted {
    /// The whole body (at most `max_message_bytes`).
    pub body: Vec<u8>,
    /// When it was read, from the sink's clock.
    pub received: Duration,
}

/// Apply chaos, then read the body within the cap. `what` names the request in rejections.
pub(super) async fn accept(
    shared: &Shared,
    error: ErrorFn,
    what: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, Response> {
    accept_on(shared, error, what, None, headers, body).await
}

/// [`accept`] for a request to one `resource` of the provider (chaos may be limited to one).
pub(super) async fn accept_on(
    shared: &Shared,
    error: ErrorFn,
    what: &str,
    resource: Option<crate::sinks::Resource>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, Response> {
    match shared.chaos_on(what, resource).await {
        Some(ChaosVerdict::Pass) => {}
        Some(ChaosVerdict::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Err(error(status, status.canonical_reason().unwrap_or("Error")));
        }
        None => return Err(error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")),
    }
    let max = shared.limits.max_message_bytes;
    let too_large = |shared: &Shared, size: String| {
        shared.rejected(
            RejectReason::TooLarge,
            format!("{what}: body of {size} bytes over the {max}-byte limit"),
        );
        error(StatusCode::PAYLOAD_TOO_LARGE, &format!("Request body larger than {max} bytes"))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&declared| declared > max as u64) {
        return Err(too_large(shared, declared.to_string()));
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return Err(error(StatusCode::BAD_REQUEST, "The request body could not be read"));
            };
            if bytes.len() + chunk.len() > max {
                return Err(too_large(shared, format!("more than {max}")));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    let limit = shared.timeouts.body_read;
    let Ok(bytes) = tokio::time::timeout(limit, read).await else {
        shared.rejected(
            RejectReason::Timeout,
            format!("{what}: request body not complete within {limit:?} (`body-read` timeout)"),
        );
        return Err(error(StatusCode::REQUEST_TIMEOUT, "Request body not received in time"));
    };
    Ok(Accepted { body: bytes?, received: shared.now() })
}

/// Report an invalid request and render the provider's answer for it.
pub(super) fn invalid(shared: &Shared, response: Response, detail: impl Into<String>) -> Response {
    shared.rejected(RejectReason::InvalidPayload, detail);
    response
}

/// Take one of the run's message slots: `None`, or the provider's 429 when none is left.
pub(super) fn take_slot(shared: &Shared, error: ErrorFn) -> Option<Response> {
    (!shared.try_accept()).then(|| error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"))
}

/// Parse a JSON body, or report it as invalid.
pub(super) fn parse_json(body: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}

/// The first value of `key` in a form body.
pub(super) fn form_value(form: &[(String, String)], key: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
}

/// Parse an `application/x-www-form-urlencoded` body.
pub(super) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Markup (HTML, TwiML) as plain text.
pub(super) fn markup_to_text(markup: &str) -> String {
    mail_parser::decoders::html::html_to_text(markup).trim().to_string()
}

/// A string field of a JSON object, if present and a string.
pub(super) fn str_field<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(serde_json::Value::as_str)
}
