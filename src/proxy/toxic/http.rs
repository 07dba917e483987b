//! Finding request boundaries in an HTTP/1.1 byte stream, for the http toxics.
//!
//! Request heads are held until complete, then parsed with `httparse`; a `Content-Length` body is
//! counted through, so keep-alive connections are followed request by request. Bytes that are not
//! HTTP (a parse error, a head over 64 KiB) and everything after a request with
//! `Transfer-Encoding` (whose end would need chunk parsing) pass through untouched.

use bytes::{Bytes, BytesMut};

use crate::proxy::chain::StageIo;
use crate::proxy::spec::RequestMatch;
use crate::proxy::time;

/// Heads larger than this are not HTTP as far as the toxics are concerned.
const MAX_HEAD: usize = 64 * 1024;

/// A piece of the stream, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A complete request head (request line and headers, through the blank line).
    Head(Bytes),
    /// Body bytes or bytes that are not HTTP.
    Bytes(Bytes),
}

#[derive(Debug)]
enum State {
    Head,
    Body(u64),
    Passthrough,
}

/// Splits a client → server stream into request heads and other bytes.
#[derive(Debug)]
pub(crate) struct RequestTracker {
    state: State,
    held: BytesMut,
}

impl RequestTracker {
    pub(crate) fn new() -> Self {
        RequestTracker { state: State::Head, held: BytesMut::new() }
    }

    /// Feed bytes; complete pieces go to `out` in order, a partial head is held.
    pub(crate) fn feed(&mut self, mut data: Bytes, out: &mut impl FnMut(Piece)) {
        while !data.is_empty() {
            match &mut self.state {
                State::Passthrough => {
                    out(Piece::Bytes(data));
                    return;
                }
                State::Body(remaining) => {
                    let take = usize::try_from(*remaining).unwrap_or(usize::MAX).min(data.len());
                    out(Piece::Bytes(data.split_to(take)));
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = State::Head;
                    }
                }
                State::Head => {
                    self.held.extend_from_slice(&data);
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut request = httparse::Request::new(&mut headers);
                    match request.parse(&self.held) {
                        Ok(httparse::Status::Complete(len)) => {
                            let next = body_of(request.headers);
                            let head = self.held.split_to(len).freeze();
                            data = self.held.split().freeze();
                            out(Piece::Head(head));
                            self.state = match next {
                                Some(0) => State::Head,
                                Some(body) => State::Body(body),
                                None => State::Passthrough,
                            };
                        }
                        Ok(httparse::Status::Partial) if self.held.len() <= MAX_HEAD => return,
                        Ok(httparse::Status::Partial) | Err(_) => {
                            self.state = State::Passthrough;
                            out(Piece::Bytes(self.held.split().freeze()));
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The bytes of a partial head, to flush when the toxic is removed or the stream ends.
    pub(crate) fn take_held(&mut self) -> Option<Bytes> {
        (!self.held.is_empty()).then(|| self.held.split().freeze())
    }
}

/// The body length a request head announces: `Some(n)` for `Content-Length: n` or none, `None`
/// when the body's end cannot be known without more parsing.
fn body_of(headers: &[httparse::Header<'_>]) -> Option<u64> {
    let mut length = Some(0);
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

/// Whether a complete request head (as [`Piece::Head`] carries it) matches `route`.
pub(crate) fn head_matches(route: &RequestMatch, head: &[u8]) -> bool {
    if route.is_any() {
        return true;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        return false;
    }
    let (Some(method), Some(target)) = (request.method, request.path) else { return false };
    let pairs: Vec<(&str, &[u8])> = request.headers.iter().map(|h| (h.name, h.value)).collect();
    route.matches(method, target, &pairs)
}

/// Whether a complete request head is a `HEAD` request (its answer has no body).
pub(crate) fn is_head_request(head: &[u8]) -> bool {
    head.starts_with(b"HEAD ")
}

/// Forward a partial head the tracker holds (the stream ended or the toxic is removed).
pub(crate) async fn flush_held(tracker: &mut RequestTracker, io: &mut StageIo) {
    if let Some(held) = tracker.take_held() {
        io.send_bytes(held, time::now()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(tracker: &mut RequestTracker, input: &[&[u8]]) -> Vec<Piece> {
        let mut out = Vec::new();
        for part in input {
            tracker.feed(Bytes::copy_from_slice(part), &mut |piece| out.push(piece));
        }
        out
    }

    #[test]
    fn keep_alive_requests_with_bodies_split_at_their_heads_across_reads() {
        let mut tracker = RequestTracker::new();
        let got = pieces(
            &mut tracker,
            &[
                b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
                b"loGET /b HTTP/1.1\r\nHo",
                b"st: x\r\n\r\n",
            ],
        );
        assert_eq!(
            got,
            vec![
                Piece::Head(Bytes::from_static(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\n")),
                Piece::Bytes(Bytes::from_static(b"hel")),
                Piece::Bytes(Bytes::from_static(b"lo")),
                Piece::Head(Bytes::from_static(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")),
            ]
        );
        assert_eq!(tracker.take_held(), None);
    }

    #[test]
    fn heads_match_routes_by_method_path_and_header() {
        let route = RequestMatch {
            methods: vec!["POST".into()],
            path: Some("/invoices".into()),
            headers: Vec::new(),
        };
        assert!(head_matches(&route, b"POST /invoices?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!head_matches(&route, b"GET /invoices HTTP/1.1\r\n\r\n"));
        assert!(!head_matches(&route, b"POST /health HTTP/1.1\r\n\r\n"));
        assert!(head_matches(&RequestMatch::default(), b"GET / HTTP/1.1\r\n\r\n"));
        assert!(is_head_request(b"HEAD / HTTP/1.1\r\n\r\n"));
    }

    #[test]
    fn bytes_that_are_not_http_pass_through_untouched() {
        let mut tracker = RequestTracker::new();
        let got = pieces(&mut tracker, &[b"\x00\x01binary", b"GET / HTTP/1.1\r\n\r\n"]);
        assert_eq!(
            got,
            vec![
                Piece::Bytes(Bytes::from_static(b"\x00\x01binary")),
                Piece::Bytes(Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n")),
            ]
        );
    }

    #[test]
    fn a_chunked_request_ends_request_tracking_and_a_partial_head_is_held() {
        let mut tracker = RequestTracker::new();
        let got =
            pieces(&mut tracker, &[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"]);
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Piece::Bytes(_)));
        let mut tracker = RequestTracker::new();
        assert!(pieces(&mut tracker, &[b"GET / HT"]).is_empty());
        assert_eq!(tracker.take_held(), Some(Bytes::from_static(b"GET / HT")));
    }
}
