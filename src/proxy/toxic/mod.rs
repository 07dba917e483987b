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
pub(crate) mod http_response;
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

/// The directions whose chains a toxic joins: none when it is no stage (`down` acts on the
/// listeners; http toxics on proxies without `http` do nothing), both for the toxics that change
/// answers (a request half and a response half), else one.
pub(crate) fn chain_directions(spec: &ToxicSpec, http: bool) -> &'static [Direction] {
    const UP: &[Direction] = &[Direction::Upstream];
    const DOWN: &[Direction] = &[Direction::Downstream];
    const BOTH: &[Direction] = &[Direction::Upstream, Direction::Downstream];
    match &spec.kind {
        ToxicKind::Down => &[],
        kind if kind.is_http() && !http => &[],
        kind if kind.is_http_response() => BOTH,
        kind if kind.is_http() => UP,
        _ if spec.direction == Direction::Upstream => UP,
        _ => DOWN,
    }
}

/// The stages of a toxic whose toxicity roll said yes, one per direction of
/// [`chain_directions`], in that order.
pub(crate) fn build_stages(kind: &ToxicKind, rng: Rng) -> Vec<Box<dyn Stage>> {
    let (fault, probability, route) = match kind {
        ToxicKind::HttpAbort { after, probability, route } => {
            (http_response::ResponseFault::Abort { after: *after }, *probability, route)
        }
        ToxicKind::HttpTruncate { bytes, probability, route } => {
            (http_response::ResponseFault::Truncate { bytes: *bytes }, *probability, route)
        }
        _ => return vec![build(kind, rng)],
    };
    let (requests, answers) = http_response::pair(fault, probability, route.clone(), rng);
    vec![requests, answers]
}

/// The stage for a one-direction toxic whose toxicity roll said yes.
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
        ToxicKind::HttpError { status, probability, route } => {
            Box::new(http_error::HttpError::new(*status, *probability, route.clone(), rng))
        }
        ToxicKind::HttpDelay { delay, probability, route } => {
            Box::new(http_delay::HttpDelay::new(*delay, *probability, route.clone(), rng))
        }
        ToxicKind::HttpAbort { .. } | ToxicKind::HttpTruncate { .. } => {
            unreachable!("toxics on both directions are built by build_stages")
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
