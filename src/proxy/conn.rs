//! One proxied connection: connect upstream, run both directions, apply toxic changes, and decide
//! when and how it ends.
//!
//! ```text
//! client ─► pump ─────────────────────────────► server     (no toxic on this direction)
//! client ◄─ writer ◄─ chain (downstream) ◄─ reader ◄─ server     (a toxic applies)
//! ```
//!
//! A direction with no toxic runs on the fast path (`pump.rs`); the first toxic that
//! applies to it stops the pump between chunks and starts the staged reader, chain and writer
//! with the pump's unwritten bytes first; removing the last one stops the reader, lets the writer
//! drain the chain, and starts a pump behind it.
//!
//! The supervisor (`run`) owns both directions; commands from the proxy (add, remove, close) and
//! signals from stages (close, reset, reply) arrive on channels, so a connection's structure is
//! only ever changed by its own task. A stream that ends is half-closed (FIN) on the other side;
//! the connection ends when both streams have, or when a toxic, an error or shutdown ends it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::chain::{CHANNEL_CAPACITY, Chain, Chunk, NewStage, Signal, StageCx};
use super::event::{CloseReason, ProxyEvent};
use super::pump::{self, Output, OutputEnd, Route};
use super::rng::Rng;
use super::server::Inner;
use super::spec::{ConnId, Direction, ToxicId, ToxicSpec};
use super::time;
use super::toxic::{self, Noop};

/// Bytes asked of the kernel per read on the staged path.
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

/// A stopped reader's chain input and the chunk it had not sent yet.
type ReaderStopped = (mpsc::Sender<Chunk>, Option<Chunk>);

/// How an output task's join came back.
type Ended = Result<io::Result<OutputEnd>, JoinError>;

/// One direction's moving parts.
struct Side {
    route: Route,
    mode: Mode,
    /// The pump or the staged writer; `None` once it ended (or while it is being replaced).
    output: Option<Output>,
    output_done: bool,
}

enum Mode {
    /// The pump copies socket to socket.
    Fast { stop: CancellationToken },
    /// Reader, chain of stage 0 and the toxics, writer.
    Staged {
        chain: Chain,
        /// `None` once awaited.
        reader: Option<JoinHandle<Option<ReaderStopped>>>,
        reader_stop: CancellationToken,
        /// Set before the chain's input is closed to switch back to the pump: the writer then
        /// leaves the destination open.
        handover: Arc<AtomicBool>,
    },
}

impl Side {
    /// Stop the pump and start the staged path with `stages` behind stage 0. `Some` when the pump
    /// had ended on its own (the direction is done; nothing was started).
    async fn stage(&mut self, connection: &Connection<'_>, stages: Vec<NewStage>) -> Option<Ended> {
        let Mode::Fast { stop } = &self.mode else { return None };
        let mut output = self.output.take()?;
        stop.cancel();
        match (&mut output).await {
            Ok(Ok(OutputEnd::Stopped { leftover, predecessor })) => {
                let (mode, output) = connection.staged(&self.route, stages, leftover, predecessor);
                self.mode = mode;
                self.output = Some(output);
                None
            }
            ended => {
                self.output_done = true;
                Some(ended)
            }
        }
    }

    /// Back to the pump when the chain is down to stage 0 and the source is still open.
    async fn unstage(&mut self, connection: &Connection<'_>) {
        let Mode::Staged { chain, reader, reader_stop, handover } = &mut self.mode else { return };
        if self.output_done || !chain.is_bare() {
            return;
        }
        let Some(mut running) = reader.take() else { return };
        reader_stop.cancel();
        // The stream ended or failed: the chain finishes on its own.
        let Some((input, unsent)) = (&mut running).await.ok().flatten() else { return };
        handover.store(true, Ordering::SeqCst);
        drop(input);
        let Some(writer) = self.output.take() else { return };
        // The pump writes the reader's unsent chunk once the writer has drained the chain.
        let (mode, output) = connection.fast(&self.route, Some(writer), unsent);
        self.mode = mode;
        self.output = Some(output);
    }

    /// Stop reading the source (the staged path only).
    fn stop_reading(&self) {
        if let Mode::Staged { reader_stop, .. } = &self.mode {
            reader_stop.cancel();
        }
    }

    fn abort(self) {
        if let Mode::Staged { reader: Some(reader), .. } = self.mode {
            reader.abort();
        }
        if let Some(output) = self.output {
            output.abort();
        }
    }
}

/// Wait for a side's output task (forever once it ended: the caller guards with `output_done`).
async fn output_ended(output: &mut Option<Output>) -> Ended {
    match output {
        Some(output) => output.await,
        None => std::future::pending().await,
    }
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

    let route = |direction, source: &Arc<TcpStream>, dest: &Arc<TcpStream>, index: usize| Route {
        direction,
        source: source.clone(),
        dest: dest.clone(),
        counter: counters[index].clone(),
        total: match direction {
            Direction::Upstream => inner.bytes_up.clone(),
            Direction::Downstream => inner.bytes_down.clone(),
        },
    };
    let mut initial = [Vec::new(), Vec::new()];
    let mut applied = Vec::new();
    for (id, spec) in &toxics {
        let stages = connection.stages(*id, spec);
        if !stages.is_empty() {
            applied.push(*id);
        }
        for (direction, stage) in stages {
            initial[usize::from(direction == Direction::Downstream)].push(stage);
        }
    }
    let [up_stages, down_stages] = initial;
    let mut sides = [
        connection.side(route(Direction::Upstream, &client, &server, 0), up_stages),
        connection.side(route(Direction::Downstream, &server, &client, 1), down_stages),
    ];
    for id in applied {
        (inner.events)(ProxyEvent::ToxicApplied { conn, id });
    }

    let mut closing: Option<(Direction, CloseReason)> = None;
    let mut reset = false;
    let reason = 'run: loop {
        let [up, down] = &mut sides;
        tokio::select! {
            () = cancel.cancelled() => break CloseReason::Shutdown,
            ended = output_ended(&mut up.output), if !up.output_done => {
                up.output_done = true;
                up.output = None;
                if let Some(reason) = output_done(Direction::Upstream, ended, &closing, down.output_done) {
                    break reason;
                }
            }
            ended = output_ended(&mut down.output), if !down.output_done => {
                down.output_done = true;
                down.output = None;
                if let Some(reason) = output_done(Direction::Downstream, ended, &closing, up.output_done) {
                    break reason;
                }
            }
            Some(command) = commands.recv() => match command {
                ConnCommand::Add(id, spec) => {
                    let stages = connection.stages(id, &spec);
                    if stages.is_empty() {
                        continue;
                    }
                    for (direction, new) in stages {
                        let (side, other) = if direction == Direction::Upstream {
                            (&mut *up, &mut *down)
                        } else {
                            (&mut *down, &mut *up)
                        };
                        match &mut side.mode {
                            Mode::Staged { chain, .. } => tokio::select! {
                                () = chain.add(new) => {}
                                () = cancel.cancelled() => break 'run CloseReason::Shutdown,
                            },
                            Mode::Fast { .. } => {
                                if let Some(ended) = side.stage(&connection, vec![new]).await
                                    && let Some(reason) = output_done(direction, ended, &closing, other.output_done)
                                {
                                    break 'run reason;
                                }
                            }
                        }
                    }
                    (inner.events)(ProxyEvent::ToxicApplied { conn, id });
                }
                ConnCommand::Remove(id) => {
                    for side in [&mut *up, &mut *down] {
                        if let Mode::Staged { chain, .. } = &mut side.mode {
                            tokio::select! {
                                () = chain.remove(id) => {}
                                () = cancel.cancelled() => break 'run CloseReason::Shutdown,
                            }
                        }
                    }
                    if closing.is_none() && !reset {
                        up.unstage(&connection).await;
                        down.unstage(&connection).await;
                    }
                }
                ConnCommand::Close(reason) => break reason,
            },
            Some(signal) = signal_rx.recv() => match signal {
                Signal::Close { direction, reason } => {
                    let done = if direction == Direction::Upstream { up.output_done } else { down.output_done };
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
                    // The reply follows what the server already sent: both directions go through
                    // their (maybe bare) chains, whose readers then stop.
                    if let Some(ended) = up.stage(&connection, Vec::new()).await
                        && let Some(reason) = output_done(Direction::Upstream, ended, &closing, down.output_done)
                    {
                        break reason;
                    }
                    if let Some(ended) = down.stage(&connection, Vec::new()).await
                        && let Some(reason) = output_done(Direction::Downstream, ended, &closing, up.output_done)
                    {
                        break reason;
                    }
                    up.stop_reading();
                    down.stop_reading();
                    let reader = match &mut down.mode {
                        Mode::Staged { reader, .. } => reader.take(),
                        Mode::Fast { .. } => None,
                    };
                    let stopped = match reader {
                        Some(reader) => tokio::select! {
                            stopped = reader => stopped.ok().flatten(),
                            () = cancel.cancelled() => break 'run CloseReason::Shutdown,
                        },
                        None => None,
                    };
                    if let Some((sender, unsent)) = stopped {
                        let reply = Chunk { data: bytes, at: time::now() };
                        for chunk in unsent.into_iter().chain([reply]) {
                            tokio::select! {
                                _ = sender.send(chunk) => {}
                                () = cancel.cancelled() => break 'run CloseReason::Shutdown,
                            }
                        }
                    }
                    if down.output_done {
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
        side.abort();
    }
    drop((client, server));
    emit_closed(reason);
}

/// After a direction's output ended: the reason to end the connection now, if any.
fn output_done(
    direction: Direction,
    ended: Ended,
    closing: &Option<(Direction, CloseReason)>,
    other_done: bool,
) -> Option<CloseReason> {
    match ended {
        Ok(Err(error)) => return Some(CloseReason::Io { direction, error: error.to_string() }),
        Err(error) => return Some(CloseReason::Io { direction, error: error.to_string() }),
        Ok(Ok(_)) => {}
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

    /// The stages of a toxic on this connection with their directions (none when its toxicity
    /// roll says it does not apply, or it is no stage). The caller announces it
    /// ([`ProxyEvent::ToxicApplied`]) once they are in place.
    fn stages(&self, id: ToxicId, spec: &ToxicSpec) -> Vec<(Direction, NewStage)> {
        let directions = toxic::chain_directions(spec, self.inner.http);
        if directions.is_empty() {
            return Vec::new();
        }
        let seed = self.inner.seed;
        let applies = Rng::derive(seed, self.conn.0, id.0, SALT_TOXICITY).chance(spec.toxicity);
        if !applies {
            return Vec::new();
        }
        let rng = Rng::derive(seed, self.conn.0, id.0, SALT_STAGE);
        let stages = toxic::build_stages(&spec.kind, rng);
        directions
            .iter()
            .zip(stages)
            .map(|(&direction, stage)| {
                let cx = self.cx(Some(id), spec.kind.name(), direction);
                (direction, NewStage { stage, cx })
            })
            .collect()
    }

    /// Start one direction: the pump, or the staged path when toxics apply to it.
    fn side(&self, route: Route, stages: Vec<NewStage>) -> Side {
        let (mode, output) = if stages.is_empty() {
            self.fast(&route, None, None)
        } else {
            self.staged(&route, stages, None, None)
        };
        Side { route, mode, output: Some(output), output_done: false }
    }

    /// The pump, after `predecessor` has delivered what it holds; it writes `first` first.
    fn fast(
        &self,
        route: &Route,
        predecessor: Option<Output>,
        first: Option<Chunk>,
    ) -> (Mode, Output) {
        let stop = CancellationToken::new();
        let output = self.tracker.spawn(pump::pump(
            route.clone(),
            predecessor,
            first,
            stop.clone(),
            self.cancel.clone(),
            self.signals.clone(),
        ));
        (Mode::Fast { stop }, output)
    }

    /// Reader, chain of stage 0 and `stages`, writer; `leftover` enters the chain first, and the
    /// writer starts after `predecessor`.
    fn staged(
        &self,
        route: &Route,
        stages: Vec<NewStage>,
        leftover: Option<Chunk>,
        predecessor: Option<Output>,
    ) -> (Mode, Output) {
        let direction = route.direction;
        let (input_tx, input_rx) = mpsc::channel(CHANNEL_CAPACITY);
        if let Some(leftover) = leftover {
            input_tx.try_send(leftover).expect("a new channel has room for one chunk");
        }
        let (output_tx, output_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let mut all =
            vec![NewStage { stage: Box::new(Noop), cx: self.cx(None, "noop", direction) }];
        all.extend(stages);
        let chain =
            Chain::start(input_rx, output_tx, all, self.cancel.clone(), self.tracker.clone());
        let reader_stop = CancellationToken::new();
        let reader = self.tracker.spawn(read_loop(
            route.source.clone(),
            input_tx,
            reader_stop.clone(),
            self.cancel.clone(),
            self.signals.clone(),
            direction,
        ));
        let handover = Arc::new(AtomicBool::new(false));
        let writer = self.tracker.spawn(write_loop(
            route.clone(),
            output_rx,
            handover.clone(),
            predecessor,
            self.cancel.clone(),
        ));
        (Mode::Staged { chain, reader: Some(reader), reader_stop, handover }, writer)
    }
}

/// Read `source` into the chain. Stopped by `stop`, it returns the chain's input sender and the
/// chunk it had read but not sent yet (so the supervisor can append a reply, or hand over to the
/// pump); `None` when the stream ended or failed.
async fn read_loop(
    source: Arc<TcpStream>,
    chain: mpsc::Sender<Chunk>,
    stop: CancellationToken,
    cancel: CancellationToken,
    signals: mpsc::UnboundedSender<Signal>,
    direction: Direction,
) -> Option<ReaderStopped> {
    let mut buffer = BytesMut::new();
    loop {
        buffer.reserve(READ_SIZE);
        let read = match source.try_read_buf(&mut buffer) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return None,
                    () = stop.cancelled() => return Some((chain, None)),
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
                // Reserve first: stopped while waiting for room, the chunk is handed back.
                let mut unsent = Some(chunk);
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return None,
                    () = stop.cancelled() => {}
                    permit = chain.reserve() => match permit {
                        Ok(permit) => permit.send(unsent.take().expect("not sent yet")),
                        Err(_) => return None,
                    },
                }
                if unsent.is_some() {
                    return Some((chain, unsent));
                }
            }
            Err(error) => {
                let _ = signals.send(Signal::ReadFailed { direction, error: error.to_string() });
                return None;
            }
        }
    }
}

/// After `predecessor` handed the destination over, write the chain's output to it, then
/// half-close it (or leave it open for the pump when `handover` is set). Counts delivered bytes.
async fn write_loop(
    route: Route,
    mut chain: mpsc::Receiver<Chunk>,
    handover: Arc<AtomicBool>,
    predecessor: Option<Output>,
    cancel: CancellationToken,
) -> io::Result<OutputEnd> {
    let write = async {
        if let Some(mut predecessor) = predecessor
            && !pump::predecessor_done(&mut predecessor).await?
        {
            return Ok(OutputEnd::Closed);
        }
        let dest = &*route.dest;
        while let Some(chunk) = chain.recv().await {
            let mut data = &chunk.data[..];
            while !data.is_empty() {
                match dest.try_write(data) {
                    Ok(written) => {
                        data = &data[written..];
                        route.count(written);
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        dest.writable().await?
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        if handover.load(Ordering::SeqCst) {
            return Ok(OutputEnd::HandedOver);
        }
        if cancel.is_cancelled() {
            // The chain ended because the connection is torn down: no FIN, it could overtake a
            // reset.
            return Ok(OutputEnd::Closed);
        }
        route.half_close()?;
        Ok(OutputEnd::Closed)
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => Ok(OutputEnd::Closed),
        written = write => written,
    }
}
