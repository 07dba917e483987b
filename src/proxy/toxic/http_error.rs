//! `http-error`: answer a share of requests with `status` instead of forwarding them.
//!
//! **What it does.** On http proxies, each complete request head that matches the toxic's route
//! (method, path pattern, headers; all requests by default) is a draw (`probability`, from the
//! connection's seeded generator). When it hits, the proxy answers the client itself with `status`,
//! a short text body and `Connection: close`, after whatever the server had already sent, and closes
//! the connection; that request and anything after it never reach the server. Requests that miss
//! pass untouched, and so do bytes that are not HTTP.
//!
//! **When to use it.** A dependency that fails some requests: retries with back-off, error budgets,
//! fallbacks, alerting on 5xx.
//!
//! **Example.** `ToxicKind::HttpError { status: 503, probability: 0.1, route }` with `route`
//! `POST /invoices`: one invoice creation in ten gets `503 Service Unavailable` from the proxy,
//! while `GET /health` always passes.

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::http::{Piece, RequestTracker, flush_held, head_matches};
use super::{Recv, Rng, Stage, StageEnd, StageIo};
use crate::proxy::event::{HttpInjection, ProxyEvent};
use crate::proxy::spec::RequestMatch;

pub(crate) struct HttpError {
    status: u16,
    probability: f64,
    route: RequestMatch,
    rng: Rng,
    tracker: RequestTracker,
    /// The proxy answered: nothing more goes to the server (not even a FIN, which could make it
    /// close before the answer is queued) until the connection is torn down.
    replied: bool,
}

impl HttpError {
    pub(crate) fn new(status: u16, probability: f64, route: RequestMatch, rng: Rng) -> Self {
        HttpError {
            status,
            probability,
            route,
            rng,
            tracker: RequestTracker::new(),
            replied: false,
        }
    }
}

/// The whole answer the client gets.
pub(crate) fn response(status: u16) -> Bytes {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    };
    let body = format!("firedrill injected {status} {reason}\n");
    Bytes::from(format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    ))
}

impl Stage for HttpError {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            let mut pieces = Vec::new();
            loop {
                if self.replied {
                    io.interrupted().await;
                    return StageEnd::Interrupted;
                }
                match io.recv().await {
                    Recv::Chunk(chunk) => {
                        self.tracker.feed(chunk.data, &mut |piece| pieces.push(piece));
                        for piece in pieces.drain(..) {
                            let data = match piece {
                                Piece::Head(ref head)
                                    if head_matches(&self.route, head)
                                        && self.rng.chance(self.probability) =>
                                {
                                    let id = io.cx.id.expect("toxic stage");
                                    io.cx.emit(ProxyEvent::HttpInjected {
                                        conn: io.cx.conn,
                                        id,
                                        injection: HttpInjection::Error { status: self.status },
                                    });
                                    io.cx.reply(response(self.status));
                                    self.replied = true;
                                    break;
                                }
                                Piece::Head(data) | Piece::Bytes(data) => data,
                            };
                            if !io.send_bytes(data, chunk.at).await {
                                return StageEnd::Finished;
                            }
                        }
                    }
                    Recv::Closed => {
                        flush_held(&mut self.tracker, io).await;
                        return StageEnd::Finished;
                    }
                    Recv::Interrupted => {
                        if io.removing() {
                            flush_held(&mut self.tracker, io).await;
                        }
                        return StageEnd::Interrupted;
                    }
                }
            }
        })
    }
}
