//! The fast path of one direction while no toxic applies to it: socket to socket in one task, no
//! stages, no channels, one large reused buffer.
//!
//! ```text
//! client ─► pump ─► server      (a direction with no toxic)
//! ```
//!
//! The pump can be stopped between chunks: every await yields to `stop`, and what it has read but
//! not yet written comes back as a [`Chunk`] for the staged chain, so switching never loses or
//! reorders a byte. Switching back, the staged writer drains the chain first and the pump starts
//! after it (its *predecessor*), so the pump never writes ahead of bytes still in the chain.

use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::chain::{Chunk, Signal};
use super::spec::Direction;
use super::time;

/// Bytes asked of the kernel per read on the fast path (loopback hands over this much at once).
const PUMP_BUFFER: usize = 256 * 1024;

/// The task that writes one direction's bytes to its destination: the pump or a staged writer.
pub(crate) type Output = JoinHandle<io::Result<OutputEnd>>;

/// How a direction's output task ended.
#[derive(Debug)]
pub(crate) enum OutputEnd {
    /// Nothing more is written: the destination was half-closed, or the connection is torn down.
    Closed,
    /// A staged writer delivered its whole chain and left the destination open for the pump.
    HandedOver,
    /// The pump was stopped: what it had read but not written, and the output it was still
    /// waiting for (bytes of a previous chain not yet delivered), go first.
    Stopped { leftover: Option<Chunk>, predecessor: Option<Output> },
}

/// Where a direction's bytes go and how they are counted.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) direction: Direction,
    pub(crate) source: Arc<TcpStream>,
    pub(crate) dest: Arc<TcpStream>,
    /// This connection's bytes delivered in this direction.
    pub(crate) counter: Arc<AtomicU64>,
    /// The proxy's bytes delivered in this direction.
    pub(crate) total: Arc<AtomicU64>,
}

impl Route {
    pub(crate) fn count(&self, written: usize) {
        self.counter.fetch_add(written as u64, Ordering::Relaxed);
        self.total.fetch_add(written as u64, Ordering::Relaxed);
    }

    /// Pass the end of the stream on (FIN).
    pub(crate) fn half_close(&self) -> io::Result<()> {
        match SockRef::from(&*self.dest).shutdown(Shutdown::Write) {
            Err(error) if error.kind() != io::ErrorKind::NotConnected => Err(error),
            _ => Ok(()),
        }
    }
}

/// Wait for a previous output; `Ok(true)` when it handed the destination over.
pub(crate) async fn predecessor_done(predecessor: &mut Output) -> io::Result<bool> {
    match predecessor.await {
        Ok(Ok(OutputEnd::HandedOver)) => Ok(true),
        Ok(Ok(_)) => Ok(false),
        Ok(Err(error)) => Err(error),
        Err(error) => Err(io::Error::other(error)),
    }
}

/// Copy `route.source` to `route.dest` until the source ends (then half-close), `stop` (then hand
/// back what is unwritten) or `cancel`. A failed read is signalled like the staged reader does.
pub(crate) async fn pump(
    route: Route,
    predecessor: Option<Output>,
    stop: CancellationToken,
    cancel: CancellationToken,
    signals: mpsc::UnboundedSender<Signal>,
) -> io::Result<OutputEnd> {
    if let Some(mut predecessor) = predecessor {
        let handed_over = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(OutputEnd::Closed),
            () = stop.cancelled() => {
                return Ok(OutputEnd::Stopped { leftover: None, predecessor: Some(predecessor) });
            }
            done = predecessor_done(&mut predecessor) => done?,
        };
        if !handed_over {
            return Ok(OutputEnd::Closed);
        }
    }
    let (source, dest) = (&*route.source, &*route.dest);
    let mut buffer = vec![0u8; PUMP_BUFFER];
    loop {
        // Each wait for readiness also spends tokio's cooperative budget, so a source that is
        // always readable does not starve the other tasks on this worker.
        let read = loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(OutputEnd::Closed),
                () = stop.cancelled() => {
                    return Ok(OutputEnd::Stopped { leftover: None, predecessor: None });
                }
                ready = source.readable() => ready?,
            }
            match source.try_read(&mut buffer) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                read => break read,
            }
        };
        let mut data = match read {
            Ok(0) => {
                route.half_close()?;
                return Ok(OutputEnd::Closed);
            }
            Ok(read) => &buffer[..read],
            Err(error) => {
                let direction = route.direction;
                let _ = signals.send(Signal::ReadFailed { direction, error: error.to_string() });
                return Ok(OutputEnd::Closed);
            }
        };
        while !data.is_empty() {
            match dest.try_write(data) {
                Ok(written) => {
                    data = &data[written..];
                    route.count(written);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Ok(OutputEnd::Closed),
                    () = stop.cancelled() => {
                        // Latency counts from the switch for these bytes: the pump keeps no times.
                        let leftover = Chunk { data: Bytes::copy_from_slice(data), at: time::now() };
                        return Ok(OutputEnd::Stopped { leftover: Some(leftover), predecessor: None });
                    }
                    ready = dest.writable() => ready?,
                },
                Err(error) => return Err(error),
            }
        }
    }
}
