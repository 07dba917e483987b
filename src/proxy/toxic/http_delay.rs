//! `http-delay`: hold a share of requests back by `delay` before forwarding them.
//!
//! **What it does.** On http proxies, each complete request head that matches the toxic's route
//! (all requests by default) is a draw (`probability`, from the connection's seeded generator).
//! When it hits, that request (head, then body) is forwarded `delay` later; requests behind it on
//! the same connection wait their turn. Bytes that are not
//! HTTP pass untouched. Removed, held requests leave at once, in order.
//!
//! **When to use it.** A slow dependency on some requests only: tail latency, client timeouts per
//! request, hedged requests.
//!
//! **Example.** `ToxicKind::HttpDelay { delay: 2s, probability: 0.05, route: any }`: one request in twenty
//! takes two seconds more.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::http::{Piece, RequestTracker, flush_held, head_matches};
use super::{Recv, Rng, Stage, StageEnd, StageIo};
use crate::proxy::event::{HttpInjection, ProxyEvent};
use crate::proxy::spec::RequestMatch;
use crate::proxy::time;

pub(crate) struct HttpDelay {
    delay: Duration,
    probability: f64,
    route: RequestMatch,
    rng: Rng,
    tracker: RequestTracker,
    /// Pieces not yet forwarded, with the time their bytes were read.
    queue: VecDeque<(Piece, Instant)>,
    /// When the head at the front of `queue` may leave, once drawn as delayed.
    due: Option<Instant>,
}

impl HttpDelay {
    pub(crate) fn new(delay: Duration, probability: f64, route: RequestMatch, rng: Rng) -> Self {
        HttpDelay {
            delay,
            probability,
            route,
            rng,
            tracker: RequestTracker::new(),
            queue: VecDeque::new(),
            due: None,
        }
    }

    /// Forward everything held, in order (the toxic is removed or the stream ended).
    async fn flush(&mut self, io: &mut StageIo) {
        self.due = None;
        while let Some((Piece::Head(data) | Piece::Bytes(data), at)) = self.queue.pop_front() {
            io.send_bytes(data, at).await;
        }
        flush_held(&mut self.tracker, io).await;
    }
}

impl Stage for HttpDelay {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            loop {
                while let Some((piece, at)) = self.queue.pop_front() {
                    let data = match piece {
                        Piece::Head(head) => {
                            let due = match self.due {
                                Some(due) => Some(due),
                                None if head_matches(&self.route, &head)
                                    && self.rng.chance(self.probability) =>
                                {
                                    io.cx.emit(ProxyEvent::HttpInjected {
                                        conn: io.cx.conn,
                                        id: io.cx.id.expect("toxic stage"),
                                        injection: HttpInjection::Delay { delay: self.delay },
                                    });
                                    let due = time::now() + self.delay;
                                    self.due = Some(due);
                                    Some(due)
                                }
                                None => None,
                            };
                            if let Some(due) = due
                                && !io.sleep_until(due).await
                            {
                                self.queue.push_front((Piece::Head(head), at));
                                if io.removing() {
                                    self.flush(io).await;
                                }
                                return StageEnd::Interrupted;
                            }
                            self.due = None;
                            head
                        }
                        Piece::Bytes(data) => data,
                    };
                    if !io.send_bytes(data, at).await {
                        return StageEnd::Finished;
                    }
                }
                match io.recv().await {
                    Recv::Chunk(chunk) => {
                        let queue = &mut self.queue;
                        self.tracker
                            .feed(chunk.data, &mut |piece| queue.push_back((piece, chunk.at)));
                    }
                    Recv::Closed => {
                        self.flush(io).await;
                        return StageEnd::Finished;
                    }
                    Recv::Interrupted => {
                        if io.removing() {
                            self.flush(io).await;
                        }
                        return StageEnd::Interrupted;
                    }
                }
            }
        })
    }
}
