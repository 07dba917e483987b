//! `http-abort` and `http-truncate`: change the answers to a share of requests.
//!
//! **What they do.** On http proxies, each complete request head that matches the toxic's route
//! (method, path pattern, headers; all requests by default) is a draw (`probability`, from the
//! connection's seeded generator); the request always reaches the server. For a hit, `http-abort`
//! delivers the answer's head and its first `after` body bytes, then closes the connection (the
//! client sees the answer end early: "connection closed before message completed");
//! `http-truncate` rewrites the answer's `Content-Length` to `bytes`, delivers that many body bytes
//! and drops the rest, so the client gets a well-formed, shorter answer on a connection that stays
//! open (only a check of the payload notices). An answer with no `Content-Length` (chunked, or
//! ended by the close) cannot be shortened consistently: `http-truncate` cuts it at `bytes` and
//! closes, as `http-abort` does.
//!
//! **When to use them.** A dependency that dies mid-answer (retries of non-idempotent requests,
//! partial reads), a proxy or CDN that cuts bodies (JSON parse errors, checksums, `Content-Length`
//! checks).
//!
//! **Example.** `ToxicKind::HttpAbort { after: 0, probability: 1.0, route }` with `route`
//! `POST /invoices`: every invoice creation is processed by the server, but the client never sees
//! the answer's body; `GET /health` is untouched.
//!
//! **How.** Each is two stages sharing a queue.
//! The request half sits on the upstream chain: it forwards every byte and, per complete request
//! head, decides (route match, then the `probability` draw) whether that request's answer is to be
//! changed, pushing the decision onto a queue it shares with the response half. The response half
//! sits on the downstream chain: HTTP/1.1 answers come back in request order, so each final answer
//! head (not `1xx`) takes the next decision. A decision is pushed before its request is forwarded,
//! so it is always there before its answer; an answer with no decision (its request went out
//! before the toxic was added) passes.
//!
//! Answers are followed by `Content-Length`; one whose end cannot be known (chunked, or delimited
//! by the close) is the last one followed on that connection, like a chunked request on the
//! request side. Bytes that are not HTTP pass untouched.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;

use super::http::{Piece, RequestTracker, flush_held, head_matches, is_head_request};
use super::{Recv, Rng, Stage, StageEnd, StageIo};
use crate::proxy::event::{HttpInjection, ProxyEvent};
use crate::proxy::spec::RequestMatch;

/// Answer heads larger than this are not HTTP as far as the toxics are concerned.
const MAX_HEAD: usize = 64 * 1024;

/// What happens to a hit answer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ResponseFault {
    /// Head and `after` body bytes, then the connection closes.
    Abort { after: u64 },
    /// Body cut to `bytes`, `Content-Length` rewritten, the rest of the body dropped.
    Truncate { bytes: u64 },
}

/// One request's verdict, for its answer.
#[derive(Debug, Clone, Copy)]
struct Decision {
    hit: bool,
    /// A `HEAD` request: its answer has no body whatever its headers say.
    head_request: bool,
}

type Decisions = Arc<Mutex<VecDeque<Decision>>>;

/// Both halves of one toxic on one connection: (upstream stage, downstream stage).
pub(crate) fn pair(
    fault: ResponseFault,
    probability: f64,
    route: RequestMatch,
    rng: Rng,
) -> (Box<dyn Stage>, Box<dyn Stage>) {
    let decisions = Decisions::default();
    let requests = RequestSide {
        route,
        probability,
        rng,
        tracker: RequestTracker::new(),
        decisions: decisions.clone(),
    };
    let answers =
        ResponseSide { fault, decisions, state: State::Head, held: BytesMut::new(), closed: false };
    (Box::new(requests), Box::new(answers))
}

struct RequestSide {
    route: RequestMatch,
    probability: f64,
    rng: Rng,
    tracker: RequestTracker,
    decisions: Decisions,
}

impl Stage for RequestSide {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            let mut pieces = Vec::new();
            loop {
                match io.recv().await {
                    Recv::Chunk(chunk) => {
                        self.tracker.feed(chunk.data, &mut |piece| pieces.push(piece));
                        for piece in pieces.drain(..) {
                            let data = match piece {
                                Piece::Head(head) => {
                                    let hit = head_matches(&self.route, &head)
                                        && self.rng.chance(self.probability);
                                    let head_request = is_head_request(&head);
                                    let decision = Decision { hit, head_request };
                                    self.decisions
                                        .lock()
                                        .expect("not poisoned")
                                        .push_back(decision);
                                    head
                                }
                                Piece::Bytes(data) => data,
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

/// Where the response half is in the answer stream.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading an answer head.
    Head,
    /// In a body with `remaining` bytes still to come from the server (`u64::MAX`: until the
    /// close), doing `act` to it.
    Body { remaining: u64, act: Act },
    /// The end of the last answer cannot be known: everything passes.
    Passthrough,
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Pass,
    /// Close once `left` more body bytes are delivered (or the body ends).
    Abort {
        left: u64,
    },
    /// Deliver `keep` more bytes, drop the rest of the body.
    Truncate {
        keep: u64,
    },
}

struct ResponseSide {
    fault: ResponseFault,
    decisions: Decisions,
    state: State,
    /// A partial answer head.
    held: BytesMut,
    /// It asked for the connection to close.
    closed: bool,
}

/// What one step over the input produced.
enum Step {
    Send(Bytes),
    Close,
}

impl ResponseSide {
    /// Turn input bytes into what to send, in order; stops at a close.
    fn feed(&mut self, mut data: Bytes, io: &StageIo, out: &mut Vec<Step>) {
        while !data.is_empty() {
            match &mut self.state {
                State::Passthrough => {
                    out.push(Step::Send(data));
                    return;
                }
                State::Body { remaining, act } => {
                    let take = usize::try_from(*remaining).unwrap_or(usize::MAX).min(data.len());
                    let mut part = data.split_to(take);
                    if *remaining != u64::MAX {
                        *remaining -= take as u64;
                    }
                    let body_ended = *remaining == 0;
                    match act {
                        Act::Pass => out.push(Step::Send(part)),
                        Act::Abort { left } => {
                            part.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
                            *left -= part.len() as u64;
                            let done = *left == 0 || body_ended;
                            out.push(Step::Send(part));
                            if done {
                                out.push(Step::Close);
                                return;
                            }
                        }
                        Act::Truncate { keep } => {
                            part.truncate(usize::try_from(*keep).unwrap_or(usize::MAX));
                            *keep -= part.len() as u64;
                            out.push(Step::Send(part));
                        }
                    }
                    if body_ended {
                        self.state = State::Head;
                    }
                }
                State::Head => {
                    self.held.extend_from_slice(&data);
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut response = httparse::Response::new(&mut headers);
                    match response.parse(&self.held) {
                        Ok(httparse::Status::Complete(len)) => {
                            let code = response.code.unwrap_or(0);
                            let length = body_length(response.headers);
                            let head = self.held.split_to(len).freeze();
                            data = self.held.split().freeze();
                            self.answer(head, code, length, io, out);
                            if matches!(out.last(), Some(Step::Close)) {
                                return;
                            }
                        }
                        Ok(httparse::Status::Partial) if self.held.len() <= MAX_HEAD => return,
                        Ok(httparse::Status::Partial) | Err(_) => {
                            self.state = State::Passthrough;
                            out.push(Step::Send(self.held.split().freeze()));
                            return;
                        }
                    }
                }
            }
        }
    }

    /// A complete answer head: decide what happens to it and its body.
    fn answer(
        &mut self,
        head: Bytes,
        code: u16,
        length: Option<u64>,
        io: &StageIo,
        out: &mut Vec<Step>,
    ) {
        if code == 101 {
            // Switching protocols: what follows is not HTTP any more.
            out.push(Step::Send(head));
            self.state = State::Passthrough;
            return;
        }
        if (100..200).contains(&code) {
            // Interim: the final answer to the same request follows.
            out.push(Step::Send(head));
            return;
        }
        let decision = self.decisions.lock().expect("not poisoned").pop_front();
        let decision = decision.unwrap_or(Decision { hit: false, head_request: false });
        let length =
            if decision.head_request || code == 204 || code == 304 { Some(0) } else { length };
        // An answer without a body has nothing to cut: it passes whole.
        if !decision.hit || length == Some(0) {
            out.push(Step::Send(head));
            self.state = match length {
                Some(0) => State::Head,
                Some(remaining) => State::Body { remaining, act: Act::Pass },
                None => State::Passthrough,
            };
            return;
        }
        let injection = match self.fault {
            ResponseFault::Abort { after } => HttpInjection::Abort { after },
            ResponseFault::Truncate { bytes } => HttpInjection::Truncate { bytes },
        };
        io.cx.emit(ProxyEvent::HttpInjected {
            conn: io.cx.conn,
            id: io.cx.id.expect("toxic stage"),
            injection,
        });
        let (head, act) = match (self.fault, length) {
            (ResponseFault::Truncate { bytes }, Some(length)) => {
                let keep = bytes.min(length);
                (with_content_length(&head, keep), Act::Truncate { keep })
            }
            // No length to rewrite: cut the body there and close, as an abort does.
            (ResponseFault::Truncate { bytes: after }, None)
            | (ResponseFault::Abort { after }, _) => (head, Act::Abort { left: after }),
        };
        out.push(Step::Send(head));
        match (act, length) {
            (Act::Abort { left: 0 }, _) | (Act::Abort { .. }, Some(0)) => out.push(Step::Close),
            (_, Some(0)) => self.state = State::Head,
            (act, Some(remaining)) => self.state = State::Body { remaining, act },
            (act, None) => self.state = State::Body { remaining: u64::MAX, act },
        }
    }
}

/// The body length an answer head announces: `Some(n)` for `Content-Length: n`, `None` when only
/// the close or chunk parsing would tell.
fn body_length(headers: &[httparse::Header<'_>]) -> Option<u64> {
    let mut length = None;
    for header in headers {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(header.value).ok()?.trim().parse().ok();
        }
    }
    length
}

/// The head with its `Content-Length` value replaced.
fn with_content_length(head: &[u8], length: u64) -> Bytes {
    let mut out = Vec::with_capacity(head.len());
    for line in head.split_inclusive(|&b| b == b'\n') {
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        if line.contains(&b':') && name.trim_ascii().eq_ignore_ascii_case(b"content-length") {
            out.extend_from_slice(format!("Content-Length: {length}\r\n").as_bytes());
        } else {
            out.extend_from_slice(line);
        }
    }
    Bytes::from(out)
}

impl Stage for ResponseSide {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            let mut steps = Vec::new();
            loop {
                if self.closed {
                    io.interrupted().await;
                    return StageEnd::Interrupted;
                }
                match io.recv().await {
                    Recv::Chunk(chunk) => {
                        self.feed(chunk.data, io, &mut steps);
                        for step in steps.drain(..) {
                            match step {
                                Step::Send(data) => {
                                    if !io.send_bytes(data, chunk.at).await {
                                        return StageEnd::Finished;
                                    }
                                }
                                Step::Close => {
                                    io.cx.close();
                                    self.closed = true;
                                    return StageEnd::Closed;
                                }
                            }
                        }
                    }
                    Recv::Closed => {
                        self.flush(io).await;
                        return StageEnd::Finished;
                    }
                    Recv::Interrupted => {
                        if io.removing() {
                            // The rest of a body being cut would reach the client as garbage after
                            // the shorter answer: its connection is reset instead.
                            if matches!(self.state, State::Body { act: Act::Truncate { .. }, .. }) {
                                io.cx.reset();
                            }
                            self.flush(io).await;
                        }
                        return StageEnd::Interrupted;
                    }
                }
            }
        })
    }
}

impl ResponseSide {
    async fn flush(&mut self, io: &mut StageIo) {
        if !self.held.is_empty() {
            let held = self.held.split().freeze();
            io.send_bytes(held, crate::proxy::time::now()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_rewritten_in_place() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 120\r\nx-a: b\r\n\r\n";
        assert_eq!(
            with_content_length(head, 7).as_ref(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nx-a: b\r\n\r\n"
        );
    }
}
