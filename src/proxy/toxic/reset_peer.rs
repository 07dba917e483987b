//! `reset-peer`: on the first data, hold it and reset both peers `after` later.
//!
//! **What it does.** The first chunk in its direction (or the end of that stream) starts the
//! timer; from then nothing passes. When it fires, both sockets are closed with `SO_LINGER` 0, so
//! client and server each get a TCP RST (`ECONNRESET`). Removed before that, the held data is
//! delivered and the stream flows again. Like Toxiproxy's `reset_peer`, an idle connection is left
//! alone until it is used.
//!
//! **When to use it.** A crashing peer or a stateful firewall dropping a connection: retry logic,
//! connection-pool eviction, "connection reset by peer" handling.
//!
//! **Example.** `ToxicKind::ResetPeer { after: 0s }` on `Upstream`: the first request on every
//! connection gets a reset instead of a response.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{Recv, Stage, StageEnd, StageIo};
use crate::proxy::chain::Chunk;
use crate::proxy::time;

pub(crate) struct ResetPeer {
    after: Duration,
    deadline: Option<Instant>,
    held: Option<Chunk>,
    /// The reset was asked for: hold everything (no FIN may overtake the RST) until torn down.
    triggered: bool,
}

impl ResetPeer {
    pub(crate) fn new(after: Duration) -> Self {
        ResetPeer { after, deadline: None, held: None, triggered: false }
    }
}

impl Stage for ResetPeer {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            loop {
                if self.triggered {
                    io.interrupted().await;
                    return StageEnd::Interrupted;
                }
                if let Some(deadline) = self.deadline {
                    if io.sleep_until(deadline).await {
                        io.cx.reset();
                        self.triggered = true;
                        continue;
                    }
                    if io.removing()
                        && let Some(held) = self.held.take()
                        && !io.send(held).await
                    {
                        return StageEnd::Finished;
                    }
                    return StageEnd::Interrupted;
                }
                match io.recv().await {
                    Recv::Chunk(chunk) => {
                        self.deadline = Some(chunk.at + self.after);
                        self.held = Some(chunk);
                    }
                    Recv::Closed => self.deadline = Some(time::now() + self.after),
                    Recv::Interrupted => return StageEnd::Interrupted,
                }
            }
        })
    }
}
