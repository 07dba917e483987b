//! `slow-close`: hold back the end of a stream by `delay`.
//!
//! **What it does.** Data passes untouched; when the sending side closes, the close (FIN) reaches
//! the other side `delay` later. Removed while waiting, the close goes through at once.
//!
//! **When to use it.** Peers that linger on close: clients that read to EOF, graceful shutdown and
//! drain timeouts, pools that wait for connections to close.
//!
//! **Example.** `ToxicKind::SlowClose { delay: 2s }` on `Downstream`: after the server closes, the
//! client sees EOF two seconds later.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{Recv, Stage, StageEnd, StageIo};
use crate::proxy::time;

pub(crate) struct SlowClose {
    delay: Duration,
    closing_at: Option<Instant>,
}

impl SlowClose {
    pub(crate) fn new(delay: Duration) -> Self {
        SlowClose { delay, closing_at: None }
    }
}

impl Stage for SlowClose {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            loop {
                if let Some(at) = self.closing_at {
                    return if io.sleep_until(at).await || io.removing() {
                        StageEnd::Finished
                    } else {
                        StageEnd::Interrupted
                    };
                }
                match io.recv().await {
                    Recv::Chunk(chunk) => {
                        if !io.send(chunk).await {
                            return StageEnd::Finished;
                        }
                    }
                    Recv::Closed => self.closing_at = Some(time::now() + self.delay),
                    Recv::Interrupted => return StageEnd::Interrupted,
                }
            }
        })
    }
}
