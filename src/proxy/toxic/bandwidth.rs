//! `bandwidth`: limit a stream to `bytes_per_sec`.
//!
//! **What it does.** Chunks are cut into pieces of at most a tenth of a second's worth and each
//! piece leaves when a link of that rate would have finished sending it (idle time is not saved
//! up as credit). A rate of 0 holds the stream until the toxic is removed.
//!
//! **When to use it.** Large responses over a thin link: download timeouts, streaming back-pressure,
//! replication lag.
//!
//! **Example.** `ToxicKind::Bandwidth { bytes_per_sec: 100_000 }` on `Downstream`: a 1 MB response
//! takes about ten seconds. Removed, the rest of the held chunk leaves at once.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{Recv, Stage, StageEnd, StageIo};
use crate::proxy::chain::Chunk;
use crate::proxy::time;

pub(crate) struct Bandwidth {
    bytes_per_sec: u64,
    /// What is left of the chunk being sent.
    pending: Option<Chunk>,
    /// When the piece being sent is due (kept across restarts).
    due: Option<Instant>,
    /// When the simulated link is free again.
    free_at: Option<Instant>,
}

impl Bandwidth {
    pub(crate) fn new(bytes_per_sec: u64) -> Self {
        Bandwidth { bytes_per_sec, pending: None, due: None, free_at: None }
    }

    fn piece_len(&self, available: usize) -> usize {
        let tenth = usize::try_from(self.bytes_per_sec / 10).unwrap_or(usize::MAX).max(1);
        available.min(tenth)
    }

    fn transmit_time(&self, len: usize) -> Duration {
        let nanos = (len as u128 * 1_000_000_000) / u128::from(self.bytes_per_sec.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl Stage for Bandwidth {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            if self.bytes_per_sec == 0 {
                // Nothing is read: the stream waits in the buffers until the toxic is removed.
                io.interrupted().await;
                if io.removing()
                    && let Some(chunk) = self.pending.take()
                    && !io.send(chunk).await
                {
                    return StageEnd::Finished;
                }
                return StageEnd::Interrupted;
            }
            loop {
                if let Some(mut chunk) = self.pending.take() {
                    while !chunk.data.is_empty() {
                        let len = self.piece_len(chunk.data.len());
                        let due = match self.due {
                            Some(due) => due,
                            None => {
                                let now = time::now();
                                let start = self.free_at.map_or(now, |free| free.max(now));
                                let due = start + self.transmit_time(len);
                                self.due = Some(due);
                                due
                            }
                        };
                        if !io.sleep_until(due).await {
                            if !io.removing() {
                                self.pending = Some(chunk);
                            } else if !io.send(chunk).await {
                                return StageEnd::Finished;
                            }
                            return StageEnd::Interrupted;
                        }
                        self.due = None;
                        self.free_at = Some(due);
                        let piece = chunk.data.split_to(len);
                        if !io.send_bytes(piece, chunk.at).await {
                            return StageEnd::Finished;
                        }
                    }
                }
                match io.recv().await {
                    Recv::Chunk(chunk) => self.pending = Some(chunk),
                    Recv::Closed => return StageEnd::Finished,
                    Recv::Interrupted => return StageEnd::Interrupted,
                }
            }
        })
    }
}
