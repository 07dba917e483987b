//! `limit-data`: let `bytes` bytes through, then close the connection.
//!
//! **What it does.** Counts the bytes it forwards from when it applies; the chunk that crosses the
//! limit is cut at it, and once the limit is reached the connection closes after those bytes are
//! delivered. The peer sees exactly `bytes` bytes, then EOF.
//!
//! **When to use it.** Truncated responses and uploads: length checks, resumable transfers,
//! "unexpected EOF" handling.
//!
//! **Example.** `ToxicKind::LimitData { bytes: 1024 }` on `Downstream`: every response is cut after
//! its first KiB.

use futures_util::future::BoxFuture;

use super::{Recv, Stage, StageEnd, StageIo};

pub(crate) struct LimitData {
    limit: u64,
    sent: u64,
}

impl LimitData {
    pub(crate) fn new(limit: u64) -> Self {
        LimitData { limit, sent: 0 }
    }
}

impl Stage for LimitData {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            loop {
                if self.sent >= self.limit {
                    io.cx.close();
                    return StageEnd::Closed;
                }
                match io.recv().await {
                    Recv::Chunk(mut chunk) => {
                        let room = usize::try_from(self.limit - self.sent).unwrap_or(usize::MAX);
                        chunk.data.truncate(room);
                        self.sent += chunk.data.len() as u64;
                        if !io.send(chunk).await {
                            return StageEnd::Finished;
                        }
                    }
                    Recv::Closed => return StageEnd::Finished,
                    Recv::Interrupted => return StageEnd::Interrupted,
                }
            }
        })
    }
}
