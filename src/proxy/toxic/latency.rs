//! `latency`: delay every chunk by `latency` ± `jitter`.
//!
//! **What it does.** Each chunk is forwarded `latency` (plus a uniform draw in `±jitter` from the
//! connection's seeded generator) after the proxy read it; chunks keep their order, so a chunk
//! never leaves before the one ahead of it.
//!
//! **When to use it.** A slow network or a far-away dependency: timeouts that are too tight,
//! request hedging, health checks that flap under latency.
//!
//! **Example.** `ToxicKind::Latency { latency: 100ms, jitter: 10ms }` on `Downstream`: every
//! response arrives 90–110 ms late. Removing it wakes the sleeping stage, which forwards the chunk
//! it holds at once; the rest follows in order.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{Recv, Rng, Stage, StageEnd, StageIo};
use crate::proxy::chain::Chunk;

pub(crate) struct Latency {
    latency: Duration,
    jitter: Duration,
    rng: Rng,
    /// The chunk being delayed and when it is due.
    pending: Option<(Chunk, Instant)>,
}

impl Latency {
    pub(crate) fn new(latency: Duration, jitter: Duration, rng: Rng) -> Self {
        Latency { latency, jitter, rng, pending: None }
    }

    fn delay(&mut self) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let jitter_us = u64::try_from(self.jitter.as_micros()).unwrap_or(u64::MAX / 2);
        let draw = self.rng.up_to(2 * jitter_us);
        if draw >= jitter_us {
            self.latency + Duration::from_micros(draw - jitter_us)
        } else {
            self.latency.saturating_sub(Duration::from_micros(jitter_us - draw))
        }
    }
}

impl Stage for Latency {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            loop {
                if let Some((chunk, due)) = self.pending.take() {
                    if !io.sleep_until(due).await {
                        if !io.removing() {
                            self.pending = Some((chunk, due));
                        } else if !io.send(chunk).await {
                            return StageEnd::Finished;
                        }
                        return StageEnd::Interrupted;
                    }
                    if !io.send(chunk).await {
                        return StageEnd::Finished;
                    }
                }
                match io.recv().await {
                    Recv::Chunk(chunk) => {
                        let due = chunk.at + self.delay();
                        self.pending = Some((chunk, due));
                    }
                    Recv::Closed => return StageEnd::Finished,
                    Recv::Interrupted => return StageEnd::Interrupted,
                }
            }
        })
    }
}
