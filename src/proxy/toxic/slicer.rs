//! `slicer`: cut chunks into pieces of `average` ± `variation` bytes, `delay` apart.
//!
//! **What it does.** Every chunk leaves as several small writes (sizes drawn from the connection's
//! seeded generator), with `delay` between them; bytes and order are unchanged. Removed, the rest
//! of the chunk being sliced leaves in one piece.
//!
//! **When to use it.** Parsers that assume a message arrives in one read: partial frames, split
//! HTTP heads, protocol state machines.
//!
//! **Example.** `ToxicKind::Slicer { average: 8, variation: 4, delay: 1ms }` on `Downstream`: a
//! response arrives 4–12 bytes at a time.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{Recv, Rng, Stage, StageEnd, StageIo};
use crate::proxy::chain::Chunk;
use crate::proxy::time;

pub(crate) struct Slicer {
    average: usize,
    variation: usize,
    delay: Duration,
    rng: Rng,
    pending: Option<Chunk>,
    /// When the next piece may leave.
    due: Option<Instant>,
}

impl Slicer {
    pub(crate) fn new(average: usize, variation: usize, delay: Duration, rng: Rng) -> Self {
        Slicer { average, variation, delay, rng, pending: None, due: None }
    }

    fn piece_len(&mut self) -> usize {
        let variation = self.variation.min(self.average.saturating_sub(1));
        let low = self.average - variation;
        let draw = self.rng.up_to(2 * variation as u64) as usize;
        (low + draw).max(1)
    }
}

impl Stage for Slicer {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            loop {
                if let Some(mut chunk) = self.pending.take() {
                    while !chunk.data.is_empty() {
                        if let Some(due) = self.due {
                            if !io.sleep_until(due).await {
                                if !io.removing() {
                                    self.pending = Some(chunk);
                                } else if !io.send(chunk).await {
                                    return StageEnd::Finished;
                                }
                                return StageEnd::Interrupted;
                            }
                            self.due = None;
                        }
                        let len = self.piece_len().min(chunk.data.len());
                        let piece = chunk.data.split_to(len);
                        if !io.send_bytes(piece, chunk.at).await {
                            return StageEnd::Finished;
                        }
                        if !self.delay.is_zero() && !chunk.data.is_empty() {
                            self.due = Some(time::now() + self.delay);
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
