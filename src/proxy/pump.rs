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

/// Copy `route.source` to `route.dest` (after `predecessor` handed it over and `first` is
/// written) until the source ends (then half-close), `stop` (then hand back what is unwritten) or
/// `cancel`. A failed read is signalled like the staged reader does.
pub(crate) async fn pump(
    route: Route,
    predecessor: Option<Output>,
    first: Option<Chunk>,
    stop: CancellationToken,
    cancel: CancellationToken,
    signals: mpsc::UnboundedSender<Signal>,
) -> io::Result<OutputEnd> {
    if let Some(mut predecessor) = predecessor {
        let handed_over = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(OutputEnd::Closed),
            () = stop.cancelled() => {
                return Ok(OutputEnd::Stopped { leftover: first, predecessor: Some(predecessor) });
            }
            done = predecessor_done(&mut predecessor) => done?,
        };
        if !handed_over {
            return Ok(OutputEnd::Closed);
        }
    }
    if let Some(first) = first
        && let Some(end) = deliver(&route, &first.data, &stop, &cancel).await?
    {
        return Ok(end);
    }
    let source = &*route.source;
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
        match read {
            Ok(0) => {
                route.half_close()?;
                return Ok(OutputEnd::Closed);
            }
            Ok(read) => {
                if let Some(end) = deliver(&route, &buffer[..read], &stop, &cancel).await? {
                    return Ok(end);
                }
            }
            Err(error) => {
                let direction = route.direction;
                let _ = signals.send(Signal::ReadFailed { direction, error: error.to_string() });
                return Ok(OutputEnd::Closed);
            }
        }
    }
}

/// Write all of `data`; `Some` when stopped (with what is unwritten) or cancelled first.
async fn deliver(
    route: &Route,
    mut data: &[u8],
    stop: &CancellationToken,
    cancel: &CancellationToken,
) -> io::Result<Option<OutputEnd>> {
    let dest = &*route.dest;
    while !data.is_empty() {
        match dest.try_write(data) {
            Ok(written) => {
                data = &data[written..];
                route.count(written);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(Some(OutputEnd::Closed)),
                () = stop.cancelled() => {
                    // Latency counts from the switch for these bytes: the pump keeps no times.
                    let leftover = Chunk { data: Bytes::copy_from_slice(data), at: time::now() };
                    let leftover = Some(leftover);
                    return Ok(Some(OutputEnd::Stopped { leftover, predecessor: None }));
                }
                ready = dest.writable() => ready?,
            },
            Err(error) => return Err(error),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use socket2::SockRef;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket};

    use super::*;

    /// A connected loopback pair; `small` shrinks the buffers between them to a few KiB.
    async fn pair(small: bool) -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        if small {
            socket.set_send_buffer_size(4096).unwrap();
        } else {
            socket.set_send_buffer_size(4 << 20).unwrap();
        }
        let (connected, accepted) =
            tokio::join!(socket.connect(listener.local_addr().unwrap()), listener.accept());
        let (far, _) = accepted.unwrap();
        let size = if small { 4096 } else { 4 << 20 };
        SockRef::from(&far).set_recv_buffer_size(size).unwrap();
        (connected.unwrap(), far)
    }

    fn route(source: TcpStream, dest: TcpStream) -> Route {
        Route {
            direction: Direction::Upstream,
            source: Arc::new(source),
            dest: Arc::new(dest),
            counter: Arc::new(AtomicU64::new(0)),
            total: Arc::new(AtomicU64::new(0)),
        }
    }

    fn numbers(range: std::ops::Range<u32>) -> Vec<u8> {
        range.flat_map(u32::to_be_bytes).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_pump_hands_back_what_it_read_but_could_not_write() {
        // 1 MiB waits in the source; the destination takes a few KiB and is not read.
        let (mut writer, source) = pair(false).await;
        let (dest, mut reader) = pair(true).await;
        let sent = numbers(0..1 << 18);
        writer.write_all(&sent).await.unwrap();
        writer.shutdown().await.unwrap();
        let route = route(source, dest);
        let (stop, cancel) = (CancellationToken::new(), CancellationToken::new());
        let (signals, _) = mpsc::unbounded_channel();
        let pump = tokio::spawn(pump(route.clone(), None, None, stop.clone(), cancel, signals));
        // Its first read took far more than the destination holds: it waits to write the rest.
        while route.counter.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        stop.cancel();
        let Ok(Ok(OutputEnd::Stopped { leftover: Some(leftover), predecessor: None })) = pump.await
        else {
            panic!("stopped with bytes in hand");
        };
        // Written, handed back, still in the source: together the stream, in order.
        let written = route.counter.load(Ordering::SeqCst) as usize;
        let mut received = vec![0u8; written];
        reader.read_exact(&mut received).await.unwrap();
        received.extend_from_slice(&leftover.data);
        let mut source = Arc::into_inner(route.source).expect("the pump let go of it");
        source.read_to_end(&mut received).await.unwrap();
        assert!(!leftover.data.is_empty() && received.len() == sent.len());
        assert!(received == sent, "bytes lost or reordered");
    }

    #[tokio::test(start_paused = true)]
    async fn the_pump_starts_after_its_predecessor_and_writes_the_first_chunk_first() {
        let (mut writer, source) = pair(false).await;
        let (dest, mut reader) = pair(false).await;
        let route = route(source, dest);
        let (stop, cancel) = (CancellationToken::new(), CancellationToken::new());
        let (signals, _) = mpsc::unbounded_channel();
        // A writer still delivering the chain's last bytes.
        let before = route.clone();
        let predecessor = tokio::spawn(async move {
            tokio::time::sleep_until(time::now() + Duration::from_millis(50)).await;
            before.dest.try_write(b"chain,").unwrap();
            Ok(OutputEnd::HandedOver)
        });
        let first = Chunk { data: Bytes::from_static(b"unsent,"), at: time::now() };
        writer.write_all(b"new").await.unwrap();
        writer.shutdown().await.unwrap();
        let pumped = pump(route, Some(predecessor), Some(first), stop, cancel, signals).await;
        assert!(matches!(pumped, Ok(OutputEnd::Closed)));
        let mut received = Vec::new();
        reader.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"chain,unsent,new");
    }
}
