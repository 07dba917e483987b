//! `timeout`: stop the stream; close the connection `after` (`0`: hold it until removed).
//!
//! **What it does.** From when it applies, nothing passes in its direction: the stage stops reading,
//! so bytes wait in the proxy's buffers and then in the kernel's, as behind a stalled network. After
//! `after` the connection is closed (what was held is discarded, as a black hole would); with
//! `after: 0` it stays open until the toxic is removed, and then every held byte is delivered in
//! order. (Toxiproxy discards the data in both cases; holding it is what TCP does across a
//! partition that heals.)
//!
//! **When to use it.** A dependency that accepts connections but never answers: client timeouts,
//! connection-pool exhaustion, circuit breakers.
//!
//! **Example.** `ToxicKind::Timeout { after: 5s }` on `Upstream`: requests vanish and the client
//! sees the connection close five seconds later.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{Stage, StageEnd, StageIo};
use crate::proxy::time;

pub(crate) struct Timeout {
    after: Duration,
    /// Fixed on the first run, so restarts do not push it back.
    deadline: Option<Instant>,
}

impl Timeout {
    pub(crate) fn new(after: Duration) -> Self {
        Timeout { after, deadline: None }
    }
}

impl Stage for Timeout {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            if self.after.is_zero() {
                io.interrupted().await;
                return StageEnd::Interrupted;
            }
            let deadline = *self.deadline.get_or_insert_with(|| time::now() + self.after);
            if io.sleep_until(deadline).await {
                io.cx.close();
                StageEnd::Closed
            } else {
                StageEnd::Interrupted
            }
        })
    }
}
