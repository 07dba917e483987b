//! The toxics: one per file, each a [`Stage`] built by the one table in [`build`].
//!
//! A stage keeps what it holds in `self`, so a restart (another toxic added or removed next to it)
//! loses nothing; when removed it flushes what it holds to its output (Toxiproxy's "don't drop any
//! data on the floor").

pub(crate) mod bandwidth;
pub(crate) mod down;
pub(crate) mod http;
pub(crate) mod http_delay;
pub(crate) mod http_error;
pub(crate) mod latency;
pub(crate) mod limit_data;
pub(crate) mod reset_peer;
pub(crate) mod slicer;
pub(crate) mod slow_close;
pub(crate) mod timeout;

use futures_util::future::BoxFuture;

use super::chain::{Recv, Stage, StageEnd, StageIo};
use super::rng::Rng;
use super::spec::{Direction, ToxicKind, ToxicSpec};

/// The direction whose chain a toxic joins, or `None` when it is no stage (`down` acts on the
/// listeners; http toxics on proxies without `http` do nothing).
pub(crate) fn chain_direction(spec: &ToxicSpec, http: bool) -> Option<Direction> {
    match &spec.kind {
        ToxicKind::Down => None,
        kind if kind.is_http() => http.then_some(Direction::Upstream),
        _ => Some(spec.direction),
    }
}

/// The stage for a toxic whose toxicity roll said yes.
pub(crate) fn build(kind: &ToxicKind, rng: Rng) -> Box<dyn Stage> {
    match kind {
        ToxicKind::Latency { latency, jitter } => {
            Box::new(latency::Latency::new(*latency, *jitter, rng))
        }
        ToxicKind::Bandwidth { bytes_per_sec } => {
            Box::new(bandwidth::Bandwidth::new(*bytes_per_sec))
        }
        ToxicKind::Timeout { after } => Box::new(timeout::Timeout::new(*after)),
        ToxicKind::ResetPeer { after } => Box::new(reset_peer::ResetPeer::new(*after)),
        ToxicKind::SlowClose { delay } => Box::new(slow_close::SlowClose::new(*delay)),
        ToxicKind::Slicer { average, variation, delay } => {
            Box::new(slicer::Slicer::new(*average, *variation, *delay, rng))
        }
        ToxicKind::LimitData { bytes } => Box::new(limit_data::LimitData::new(*bytes)),
        ToxicKind::Down => Box::new(Noop),
        ToxicKind::HttpError { status, probability } => {
            Box::new(http_error::HttpError::new(*status, *probability, rng))
        }
        ToxicKind::HttpDelay { delay, probability } => {
            Box::new(http_delay::HttpDelay::new(*delay, *probability, rng))
        }
    }
}

/// Passes every chunk on: stage 0 of every chain, and toxics whose toxicity roll said no.
pub(crate) struct Noop;

impl Stage for Noop {
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd> {
        Box::pin(async move {
            loop {
                match io.recv().await {
                    Recv::Chunk(chunk) => {
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
