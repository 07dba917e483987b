//! One proxied connection: connect upstream, run both directions' chains, apply toxic changes, and
//! decide when and how it ends.
//!
//! ```text
//! client ─► reader ─► chain (upstream)   ─► writer ─► server
//! client ◄─ writer ◄─ chain (downstream) ◄─ reader ◄─ server
//! ```
//!
//! The supervisor (`run`) owns both chains; commands from the proxy (add, remove, close) and
//! signals from stages (close, reset, reply) arrive on channels, so a connection's structure is
//! only ever changed by its own task. A stream that ends is half-closed (FIN) on the other side;
//! the connection ends when both streams have, or when a toxic, an error or shutdown ends it.

use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::chain::{CHANNEL_CAPACITY, Chain, Chunk, NewStage, Signal, StageCx};
use super::event::{CloseReason, ProxyEvent};
use super::rng::Rng;
use super::server::Inner;
use super::spec::{ConnId, Direction, ToxicId, ToxicSpec};
use super::time;
use super::toxic::{self, Noop};

/// Bytes asked of the kernel per read.
const READ_SIZE: usize = 64 * 1024;

/// Salts separating a connection's random draws per purpose.
const SALT_TOXICITY: u64 = 1;
const SALT_STAGE: u64 = 2;

/// What the proxy asks of a connection.
#[derive(Debug)]
pub(crate) enum ConnCommand {
    Add(ToxicId, ToxicSpec),
    Remove(ToxicId),
    Close(CloseReason),
}

/// One direction's moving parts.
struct Side {
    chain: Chain,
    reader: JoinHandle<Option<mpsc::Sender<Chunk>>>,
    reader_stop: CancellationToken,
    writer: JoinHandle<io::Result<()>>,
    writer_done: bool,
}

/// Serve one accepted client until the connection ends.
pub(crate) async fn run(
    inner: Arc<Inner>,
    conn: ConnId,
    client: TcpStream,
    mut commands: mpsc::UnboundedReceiver<ConnCommand>,
    mut toxics: Vec<(ToxicId, ToxicSpec)>,
) {
    let counters = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let emit_closed = |reason: CloseReason| {
        (inner.events)(ProxyEvent::Closed {
            conn,
            bytes_up: counters[0].load(Ordering::Relaxed),
            bytes_down: counters[1].load(Ordering::Relaxed),
            reason,
        });
    };

    // Resolve and connect, following toxic changes meanwhile.
    let connect = async {
        let addr = inner.upstream.resolve().await?;
        let stream = TcpStream::connect(addr).await?;
        io::Result::Ok((addr, stream))
    };
    tokio::pin!(connect);
    let server = loop {
        tokio::select! {
            () = inner.shutdown.cancelled() => {
                emit_closed(CloseReason::Shutdown);
                return;
            }
            connected = &mut connect => match connected {
                Ok((addr, stream)) => {
                    (inner.events)(ProxyEvent::Connected { conn, upstream: addr });
                    break stream;
                }
                Err(error) => {
                    (inner.events)(ProxyEvent::UpstreamFailed { conn, error: error.to_string() });
                    emit_closed(CloseReason::UpstreamFailed);
                    return;
                }
            },
            Some(command) = commands.recv() => match command {
                ConnCommand::Add(id, spec) => toxics.push((id, spec)),
                ConnCommand::Remove(id) => toxics.retain(|(toxic, _)| *toxic != id),
                ConnCommand::Close(reason) => {
                    emit_closed(reason);
                    return;
                }
            },
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let client = Arc::new(client);
    let server = Arc::new(server);

    let cancel = inner.shutdown.child_token();
    let tracker = TaskTracker::new();
    let (signals, mut signal_rx) = mpsc::unbounded_channel();
    let connection = Connection {
        inner: &inner,
        conn,
        signals,
        cancel: cancel.clone(),
        tracker: tracker.clone(),
    };

    let mut sides = [
        connection.side(Direction::Upstream, &client, &server, &counters[0], &toxics),
        connection.side(Direction::Downstream, &server, &client, &counters[1], &toxics),
    ];

    let mut closing: Option<(Direction, CloseReason)> = None;
    let mut reset = false;
    let reason = 'run: loop {
        let [up, down] = &mut sides;
        tokio::select! {
            () = cancel.cancelled() => break CloseReason::Shutdown,
            written = &mut up.writer, if !up.writer_done => {
                up.writer_done = true;
                if let Some(reason) = writer_done(Direction::Upstream, written, &closing, down.writer_done) {
                    break reason;
                }
            }
            written = &mut down.writer, if !down.writer_done => {
                down.writer_done = true;
                if let Some(reason) = writer_done(Direction::Downstream, written, &closing, up.writer_done) {
                    break reason;
                }
            }
            Some(command) = commands.recv() => match command {
                ConnCommand::Add(id, spec) => {
                    let Some(direction) = toxic::chain_direction(&spec, inner.http) else { continue };
                    let new = connection.stage(id, &spec, direction);
                    let side = if direction == Direction::Upstream { up } else { down };
                    tokio::select! {
                        () = side.chain.add(new) => {}
                        () = cancel.cancelled() => break CloseReason::Shutdown,
                    }
                }
                ConnCommand::Remove(id) => {
                    tokio::select! {
                        () = async { up.chain.remove(id).await; down.chain.remove(id).await } => {}
                        () = cancel.cancelled() => break CloseReason::Shutdown,
                    }
                }
                ConnCommand::Close(reason) => break reason,
            },
            Some(signal) = signal_rx.recv() => match signal {
                Signal::Close { direction, reason } => {
                    let done = if direction == Direction::Upstream { up.writer_done } else { down.writer_done };
                    if done {
                        break reason;
                    }
                    closing = Some((direction, reason));
                }
                Signal::Reset { reason } => {
                    reset = true;
                    break reason;
                }
                Signal::Reply { bytes, reason } => {
                    up.reader_stop.cancel();
                    down.reader_stop.cancel();
                    let sender = tokio::select! {
                        sender = &mut down.reader => sender.ok().flatten(),
                        () = cancel.cancelled() => break 'run CloseReason::Shutdown,
                    };
                    if let Some(sender) = sender {
                        tokio::select! {
                            _ = sender.send(Chunk { data: bytes, at: time::now() }) => {}
                            () = cancel.cancelled() => break 'run CloseReason::Shutdown,
                        }
                    }
                    if down.writer_done {
                        break reason;
                    }
                    closing = Some((Direction::Downstream, reason));
                }
                Signal::ReadFailed { direction, error } => break CloseReason::Io { direction, error },
            },
        }
    };

    if reset {
        for stream in [&client, &server] {
            let _ = SockRef::from(&**stream).set_linger(Some(Duration::ZERO));
        }
    }
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    for side in sides {
        side.reader.abort();
        side.writer.abort();
    }
    drop((client, server));
    emit_closed(reason);
}

/// After a writer ended: the reason to end the connection now, if any.
fn writer_done(
    direction: Direction,
    written: Result<io::Result<()>, tokio::task::JoinError>,
    closing: &Option<(Direction, CloseReason)>,
    other_done: bool,
) -> Option<CloseReason> {
    match written {
        Ok(Err(error)) => return Some(CloseReason::Io { direction, error: error.to_string() }),
        Err(error) => return Some(CloseReason::Io { direction, error: error.to_string() }),
        Ok(Ok(())) => {}
    }
    match closing {
        Some((closing_direction, reason)) if *closing_direction == direction => {
            Some(reason.clone())
        }
        None if other_done => Some(CloseReason::Finished),
        _ => None,
    }
}

/// What building sides and stages needs.
struct Connection<'a> {
    inner: &'a Inner,
    conn: ConnId,
    signals: mpsc::UnboundedSender<Signal>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Connection<'_> {
    fn cx(&self, id: Option<ToxicId>, toxic: &'static str, direction: Direction) -> StageCx {
        StageCx {
            conn: self.conn,
            id,
            toxic,
            direction,
            signals: self.signals.clone(),
            events: self.inner.events.clone(),
        }
    }

    /// The stage for a toxic on this connection: the toxic itself if its toxicity roll says so.
    fn stage(&self, id: ToxicId, spec: &ToxicSpec, direction: Direction) -> NewStage {
        let seed = self.inner.seed;
        let applies = Rng::derive(seed, self.conn.0, id.0, SALT_TOXICITY).chance(spec.toxicity);
        let cx = self.cx(Some(id), spec.kind.name(), direction);
        if !applies {
            return NewStage { stage: Box::new(Noop), cx };
        }
        (self.inner.events)(ProxyEvent::ToxicApplied { conn: self.conn, id });
        let rng = Rng::derive(seed, self.conn.0, id.0, SALT_STAGE);
        NewStage { stage: toxic::build(&spec.kind, rng), cx }
    }

    /// Start one direction: reader, chain of stage 0 and the toxics on this direction, writer.
    fn side(
        &self,
        direction: Direction,
        source: &Arc<TcpStream>,
        dest: &Arc<TcpStream>,
        counter: &Arc<AtomicU64>,
        toxics: &[(ToxicId, ToxicSpec)],
    ) -> Side {
        let (input_tx, input_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (output_tx, output_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let mut stages =
            vec![NewStage { stage: Box::new(Noop), cx: self.cx(None, "noop", direction) }];
        for (id, spec) in toxics {
            if toxic::chain_direction(spec, self.inner.http) == Some(direction) {
                stages.push(self.stage(*id, spec, direction));
            }
        }
        let chain =
            Chain::start(input_rx, output_tx, stages, self.cancel.clone(), self.tracker.clone());
        let reader_stop = CancellationToken::new();
        let reader = self.tracker.spawn(read_loop(
            source.clone(),
            input_tx,
            reader_stop.clone(),
            self.cancel.clone(),
            self.signals.clone(),
            direction,
        ));
        let total = match direction {
            Direction::Upstream => self.inner.bytes_up.clone(),
            Direction::Downstream => self.inner.bytes_down.clone(),
        };
        let cancel = self.cancel.clone();
        let writer =
            self.tracker.spawn(write_loop(dest.clone(), output_rx, counter.clone(), total, cancel));
        Side { chain, reader, reader_stop, writer, writer_done: false }
    }
}

/// Read `source` into the chain. Returns the chain's input sender when stopped by `stop` (so the
/// supervisor can append a reply), `None` when the stream ended or failed.
async fn read_loop(
    source: Arc<TcpStream>,
    chain: mpsc::Sender<Chunk>,
    stop: CancellationToken,
    cancel: CancellationToken,
    signals: mpsc::UnboundedSender<Signal>,
    direction: Direction,
) -> Option<mpsc::Sender<Chunk>> {
    let mut buffer = BytesMut::new();
    loop {
        buffer.reserve(READ_SIZE);
        let read = match source.try_read_buf(&mut buffer) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return None,
                    () = stop.cancelled() => return Some(chain),
                    ready = source.readable() => match ready {
                        Ok(()) => continue,
                        Err(error) => Err(error),
                    },
                }
            }
            read => read,
        };
        match read {
            Ok(0) => return None,
            Ok(_) => {
                let chunk = Chunk { data: buffer.split().freeze(), at: time::now() };
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return None,
                    () = stop.cancelled() => return Some(chain),
                    sent = chain.send(chunk) => if sent.is_err() { return None },
                }
            }
            Err(error) => {
                let _ = signals.send(Signal::ReadFailed { direction, error: error.to_string() });
                return None;
            }
        }
    }
}

/// Write the chain's output to `dest`, then half-close it. Counts delivered bytes.
async fn write_loop(
    dest: Arc<TcpStream>,
    mut chain: mpsc::Receiver<Chunk>,
    counter: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    cancel: CancellationToken,
) -> io::Result<()> {
    let write = async {
        while let Some(chunk) = chain.recv().await {
            let mut data = &chunk.data[..];
            while !data.is_empty() {
                match dest.try_write(data) {
                    Ok(written) => {
                        data = &data[written..];
                        counter.fetch_add(written as u64, Ordering::Relaxed);
                        total.fetch_add(written as u64, Ordering::Relaxed);
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        dest.writable().await?
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        if cancel.is_cancelled() {
            // The chain ended because the connection is torn down: no FIN, it could overtake a
            // reset.
            return Ok(());
        }
        match SockRef::from(&*dest).shutdown(Shutdown::Write) {
            Err(error) if error.kind() != io::ErrorKind::NotConnected => Err(error),
            _ => Ok(()),
        }
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => Ok(()),
        written = write => written,
    }
}
