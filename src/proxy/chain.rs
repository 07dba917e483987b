//! One direction of one connection: a chain of toxic stages joined by channels of chunks.
//!
//! ```text
//! reader ─► [stage 0: noop] ─► [toxic] ─► … ─► [toxic] ─► writer
//! ```
//!
//! Every stage is its own task. Changing the chain never waits for the bytes downstream to move
//! (a stage further on may hold everything for an hour): every await in a stage — receiving,
//! sleeping, sending — gives way to an interrupt, and what a stage could not send yet goes to its
//! *outbox*, which its task sends before anything else when it runs again.
//!
//! - Adding a toxic interrupts the last stage, gives it a new output (the new stage's input) and
//!   starts both.
//! - Removing one interrupts it (it moves what it holds to its outbox), then interrupts its
//!   predecessor while collecting whatever the predecessor still sends it, takes what is left in
//!   its input, and gives all of that, oldest first, to the predecessor's outbox along with the
//!   removed stage's output. No byte is lost or reordered (Toxiproxy's `link.go` does the same
//!   with blocking flushes).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::event::{CloseReason, ProxyEvent};
use super::spec::{ConnId, Direction, ToxicId};
use super::toxic;

/// Chunks buffered between two stages (each up to the reader's buffer size).
pub(crate) const CHANNEL_CAPACITY: usize = 4;

/// The event callback as the proxy holds it.
pub(crate) type EventSink = Arc<dyn Fn(ProxyEvent) + Send + Sync>;

/// Bytes read from one socket, with the time they were read (latency counts from there).
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) data: Bytes,
    pub(crate) at: Instant,
}

/// What a stage asks of its connection.
#[derive(Debug)]
pub(crate) enum Signal {
    /// Close the connection once `direction`'s writer has delivered what the chain still holds.
    Close { direction: Direction, reason: CloseReason },
    /// Send a TCP RST to both peers now.
    Reset { reason: CloseReason },
    /// Send `bytes` to the client after what the server already sent, then close.
    Reply { bytes: Bytes, reason: CloseReason },
    /// Reading a socket failed.
    ReadFailed { direction: Direction, error: String },
}

/// What a stage knows about where it runs.
pub(crate) struct StageCx {
    pub(crate) conn: ConnId,
    /// `None` for stage 0.
    pub(crate) id: Option<ToxicId>,
    pub(crate) toxic: &'static str,
    pub(crate) direction: Direction,
    pub(crate) signals: mpsc::UnboundedSender<Signal>,
    pub(crate) events: EventSink,
}

impl StageCx {
    pub(crate) fn emit(&self, event: ProxyEvent) {
        (self.events)(event);
    }

    fn reason(&self) -> CloseReason {
        CloseReason::Toxic { id: self.id.unwrap_or(ToxicId(0)), toxic: self.toxic.to_owned() }
    }

    /// Ask the connection to close after this direction's remaining bytes are delivered. The stage
    /// then returns [`StageEnd::Closed`].
    pub(crate) fn close(&self) {
        let _ =
            self.signals.send(Signal::Close { direction: self.direction, reason: self.reason() });
    }

    /// Ask the connection to reset both peers.
    pub(crate) fn reset(&self) {
        let _ = self.signals.send(Signal::Reset { reason: self.reason() });
    }

    /// Ask the connection to answer the client with `bytes` and close.
    pub(crate) fn reply(&self, bytes: Bytes) {
        let _ = self.signals.send(Signal::Reply { bytes, reason: self.reason() });
    }
}

/// Tells a running stage to return; `remove` says whether it will be restarted (keep what you
/// hold) or removed (flush what you hold to the output first).
#[derive(Clone)]
struct Interrupt {
    token: CancellationToken,
    remove: Arc<AtomicBool>,
}

impl Interrupt {
    fn new() -> Self {
        Interrupt { token: CancellationToken::new(), remove: Arc::new(AtomicBool::new(false)) }
    }

    fn fire(&self, remove: bool) {
        self.remove.store(remove, Ordering::SeqCst);
        self.token.cancel();
    }
}

/// A stage's channels and context for one run.
pub(crate) struct StageIo {
    input: mpsc::Receiver<Chunk>,
    output: mpsc::Sender<Chunk>,
    /// Chunks due on `output` before anything else (parked by an interrupt, or handed over by a
    /// removed stage further on).
    outbox: VecDeque<Chunk>,
    interrupt: Interrupt,
    pub(crate) cx: StageCx,
}

/// What [`StageIo::recv`] got.
pub(crate) enum Recv {
    Chunk(Chunk),
    /// The input ended: flush and return [`StageEnd::Finished`].
    Closed,
    /// Return [`StageEnd::Interrupted`] (after flushing if [`StageIo::removing`]).
    Interrupted,
}

/// How a stage's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StageEnd {
    /// Interrupted; it may be restarted with a new output.
    Interrupted,
    /// Its input ended (or its output is gone): the chain ends here.
    Finished,
    /// It asked for the connection to close or reset.
    Closed,
}

impl StageIo {
    fn new(input: mpsc::Receiver<Chunk>, output: mpsc::Sender<Chunk>, cx: StageCx) -> Self {
        StageIo { input, output, outbox: VecDeque::new(), interrupt: Interrupt::new(), cx }
    }

    /// The next chunk, unless the input ended or the stage is interrupted first.
    pub(crate) async fn recv(&mut self) -> Recv {
        if self.interrupt.token.is_cancelled() {
            return Recv::Interrupted;
        }
        match self.input.try_recv() {
            Ok(chunk) => return Recv::Chunk(chunk),
            Err(mpsc::error::TryRecvError::Disconnected) => return Recv::Closed,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        tokio::select! {
            biased;
            () = self.interrupt.token.cancelled() => Recv::Interrupted,
            chunk = self.input.recv() => chunk.map_or(Recv::Closed, Recv::Chunk),
        }
    }

    /// Forward a chunk; false when the rest of the chain is gone (return `Finished` then). Once
    /// interrupted it parks the chunk in the outbox instead of waiting (and returns true): the
    /// stage's next `recv` or `sleep_until` reports the interrupt.
    pub(crate) async fn send(&mut self, chunk: Chunk) -> bool {
        if chunk.data.is_empty() {
            return true;
        }
        if self.interrupt.token.is_cancelled() || !self.outbox.is_empty() {
            self.outbox.push_back(chunk);
            return true;
        }
        let permit = match self.output.try_reserve() {
            Ok(permit) => Ok(permit),
            Err(mpsc::error::TrySendError::Closed(())) => return false,
            Err(mpsc::error::TrySendError::Full(())) => tokio::select! {
                biased;
                () = self.interrupt.token.cancelled() => {
                    self.outbox.push_back(chunk);
                    return true;
                }
                permit = self.output.reserve() => permit,
            },
        };
        match permit {
            Ok(permit) => {
                permit.send(chunk);
                true
            }
            Err(_) => false,
        }
    }

    /// Send the outbox; `Some` when interrupted or the chain is gone first.
    async fn flush_outbox(&mut self) -> Option<StageEnd> {
        while !self.outbox.is_empty() {
            let permit = tokio::select! {
                biased;
                () = self.interrupt.token.cancelled() => return Some(StageEnd::Interrupted),
                permit = self.output.reserve() => permit,
            };
            match permit {
                Ok(permit) => permit.send(self.outbox.pop_front().expect("not empty")),
                Err(_) => return Some(StageEnd::Finished),
            }
        }
        None
    }

    /// Forward bytes read at `at`.
    pub(crate) async fn send_bytes(&mut self, data: Bytes, at: Instant) -> bool {
        self.send(Chunk { data, at }).await
    }

    /// Sleep until `deadline`; false if interrupted first.
    pub(crate) async fn sleep_until(&self, deadline: Instant) -> bool {
        tokio::select! {
            biased;
            () = self.interrupt.token.cancelled() => false,
            () = tokio::time::sleep_until(deadline) => true,
        }
    }

    /// Wait for the interrupt.
    pub(crate) async fn interrupted(&self) {
        self.interrupt.token.cancelled().await;
    }

    /// Whether the current interrupt removes the stage (flush what you hold).
    pub(crate) fn removing(&self) -> bool {
        self.interrupt.remove.load(Ordering::SeqCst)
    }
}

/// One toxic's behaviour on one direction of one connection. State kept in `self` survives
/// restarts: an interrupt that does not remove the stage must not lose or flush held data early.
pub(crate) trait Stage: Send + 'static {
    /// Move chunks from input to output until interrupted or the input ends.
    fn pipe<'a>(&'a mut self, io: &'a mut StageIo) -> BoxFuture<'a, StageEnd>;
}

struct StageRun {
    stage: Box<dyn Stage>,
    /// `None` when the stage ended for good (its output is dropped, the chain ends there).
    io: Option<StageIo>,
}

enum Slot {
    Running { id: Option<ToxicId>, interrupt: Interrupt, handle: JoinHandle<StageRun> },
    Ended { id: Option<ToxicId> },
}

impl Slot {
    fn id(&self) -> Option<ToxicId> {
        match self {
            Slot::Running { id, .. } | Slot::Ended { id } => *id,
        }
    }
}

/// The stages of one direction of one connection.
pub(crate) struct Chain {
    slots: Vec<Slot>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// A stage to run, with its context.
pub(crate) struct NewStage {
    pub(crate) stage: Box<dyn Stage>,
    pub(crate) cx: StageCx,
}

impl Chain {
    /// Start `stages` (the first one is stage 0, a noop) between `input` and `output`.
    pub(crate) fn start(
        input: mpsc::Receiver<Chunk>,
        output: mpsc::Sender<Chunk>,
        stages: Vec<NewStage>,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) -> Chain {
        let mut chain = Chain { slots: Vec::with_capacity(stages.len()), cancel, tracker };
        let count = stages.len();
        let mut input = Some(input);
        let mut output = Some(output);
        for (index, NewStage { stage, cx }) in stages.into_iter().enumerate() {
            let (stage_output, next_input) = if index + 1 == count {
                (output.take().expect("one output"), None)
            } else {
                let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                (tx, Some(rx))
            };
            let io = StageIo::new(input.take().expect("one input per stage"), stage_output, cx);
            let slot = chain.spawn(stage, io);
            chain.slots.push(slot);
            input = next_input;
        }
        chain
    }

    fn spawn(&self, mut stage: Box<dyn Stage>, mut io: StageIo) -> Slot {
        let interrupt = Interrupt::new();
        io.interrupt = interrupt.clone();
        let id = io.cx.id;
        let cancel = self.cancel.clone();
        let handle = self.tracker.spawn(async move {
            let run = async {
                match io.flush_outbox().await {
                    Some(end) => end,
                    None => stage.pipe(&mut io).await,
                }
            };
            let end = tokio::select! {
                end = run => end,
                () = cancel.cancelled() => StageEnd::Finished,
            };
            let io = (end == StageEnd::Interrupted).then_some(io);
            StageRun { stage, io }
        });
        Slot::Running { id, interrupt, handle }
    }

    /// Interrupt a slot and wait for its run; the slot is left `Ended` until respawned.
    async fn stop(slot: &mut Slot, remove: bool) -> Option<StageRun> {
        let id = slot.id();
        match std::mem::replace(slot, Slot::Ended { id }) {
            Slot::Running { interrupt, handle, .. } => {
                interrupt.fire(remove);
                handle.await.ok()
            }
            Slot::Ended { .. } => None,
        }
    }

    /// Whether only stage 0 is left (no toxic on this direction).
    pub(crate) fn is_bare(&self) -> bool {
        self.slots.len() == 1
    }

    /// Append a stage at the end of the chain.
    pub(crate) async fn add(&mut self, new: NewStage) {
        let id = new.cx.id;
        let last = self.slots.last_mut().expect("stage 0 is always there");
        match Chain::stop(last, false).await {
            Some(StageRun { stage, io: Some(mut io) }) => {
                let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                let output = std::mem::replace(&mut io.output, tx);
                let new_io = StageIo::new(rx, output, new.cx);
                let respawned = self.spawn(stage, io);
                *self.slots.last_mut().expect("stage 0") = respawned;
                let added = self.spawn(new.stage, new_io);
                self.slots.push(added);
            }
            // The chain already ended here: nothing flows any more.
            _ => self.slots.push(Slot::Ended { id }),
        }
    }

    /// Remove a toxic's stage, passing on everything it and its input hold, in order, without
    /// waiting for the stages after it.
    pub(crate) async fn remove(&mut self, id: ToxicId) {
        let Some(index) = self.slots.iter().position(|slot| slot.id() == Some(id)) else {
            return;
        };
        debug_assert!(index > 0, "stage 0 is never removed");
        let Some(StageRun { io: Some(removed), .. }) =
            Chain::stop(&mut self.slots[index], true).await
        else {
            // It had ended: so has the chain from here on.
            self.slots.remove(index);
            return;
        };
        let StageIo { mut input, output, outbox: mut carried, cx, .. } = removed;

        // Interrupt the predecessor; until it stops, collect what it still sends.
        let previous = &mut self.slots[index - 1];
        let prev_id = previous.id();
        let prev_run = match std::mem::replace(previous, Slot::Ended { id: prev_id }) {
            Slot::Running { interrupt, mut handle, .. } => {
                interrupt.fire(false);
                let mut input_open = true;
                loop {
                    tokio::select! {
                        run = &mut handle => break run.ok(),
                        chunk = input.recv(), if input_open => match chunk {
                            Some(chunk) => carried.push_back(chunk),
                            None => input_open = false,
                        },
                    }
                }
            }
            Slot::Ended { .. } => None,
        };
        while let Ok(chunk) = input.try_recv() {
            carried.push_back(chunk);
        }
        match prev_run {
            Some(StageRun { stage, io: Some(mut io) }) => {
                // What the predecessor still meant for the removed stage comes after.
                carried.append(&mut io.outbox);
                io.outbox = carried;
                io.output = output;
                let respawned = self.spawn(stage, io);
                self.slots[index - 1] = respawned;
                self.slots.remove(index);
            }
            _ => {
                // The predecessor ended: a noop in the removed stage's place delivers what was
                // carried, then ends the chain.
                let mut io = StageIo::new(input, output, cx);
                io.outbox = carried;
                self.slots[index] = self.spawn(Box::new(toxic::Noop), io);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::proxy::rng::Rng;
    use crate::proxy::spec::ToxicKind;
    use crate::proxy::time;
    use crate::proxy::toxic::Noop;

    fn cx(id: Option<u64>) -> StageCx {
        let (signals, _) = mpsc::unbounded_channel();
        StageCx {
            conn: ConnId(1),
            id: id.map(ToxicId),
            toxic: "test",
            direction: Direction::Downstream,
            signals,
            events: Arc::new(|_| {}),
        }
    }

    fn hour_latency(id: u64) -> NewStage {
        let kind =
            ToxicKind::Latency { latency: Duration::from_secs(3600), jitter: Duration::ZERO };
        NewStage { stage: toxic::build(&kind, Rng::derive(0, 1, id, 0)), cx: cx(Some(id)) }
    }

    /// A chain of stage 0 and `stages`, fed numbers 0..count in one-number chunks.
    fn numbered_chain(stages: Vec<NewStage>, count: u32) -> (Chain, mpsc::Receiver<Chunk>) {
        let (input_tx, input_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (output_tx, output_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let mut all = vec![NewStage { stage: Box::new(Noop), cx: cx(None) }];
        all.extend(stages);
        let chain =
            Chain::start(input_rx, output_tx, all, CancellationToken::new(), TaskTracker::new());
        tokio::spawn(async move {
            for number in 0..count {
                let data = Bytes::copy_from_slice(&number.to_be_bytes());
                if input_tx.send(Chunk { data, at: time::now() }).await.is_err() {
                    return;
                }
            }
        });
        (chain, output_rx)
    }

    async fn expect_numbers(output: &mut mpsc::Receiver<Chunk>, numbers: std::ops::Range<u32>) {
        let mut bytes = Vec::new();
        while bytes.len() < numbers.len() * 4 {
            // Paused time: the timeout fires only once nothing else can happen.
            let chunk = tokio::time::timeout(Duration::from_secs(7200), output.recv()).await;
            bytes.extend_from_slice(
                &chunk.expect("bytes lost").expect("the chain ended early").data,
            );
        }
        let got: Vec<u32> =
            bytes.chunks_exact(4).map(|n| u32::from_be_bytes(n.try_into().unwrap())).collect();
        assert_eq!(got, numbers.collect::<Vec<_>>());
    }

    /// Let every task run until all wait (paused time moves only then).
    async fn settle() {
        tokio::time::sleep_until(time::now() + Duration::from_millis(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn removing_a_sleeping_stage_flushes_what_it_holds_and_its_input_in_order() {
        let started = time::now();
        let (mut chain, mut output) = numbered_chain(vec![hour_latency(1), hour_latency(2)], 40);
        settle().await;
        // The middle stage holds number 0 (asleep), its input and stage 0 hold more; the last
        // stage sleeps on nothing yet. Neither removal waits for the output to be read.
        chain.remove(ToxicId(1)).await;
        settle().await;
        chain.remove(ToxicId(2)).await;
        expect_numbers(&mut output, 0..40).await;
        assert!(time::now() - started < Duration::from_secs(1), "nothing waited for the hour");
    }

    #[tokio::test(start_paused = true)]
    async fn removing_a_stage_before_a_stalled_one_does_not_wait_for_it() {
        let started = time::now();
        let hold = ToxicKind::Timeout { after: Duration::ZERO };
        let stalled =
            NewStage { stage: toxic::build(&hold, Rng::derive(0, 1, 2, 0)), cx: cx(Some(2)) };
        let (mut chain, mut output) = numbered_chain(vec![hour_latency(1), stalled], 40);
        settle().await;
        chain.remove(ToxicId(1)).await;
        settle().await;
        assert!(output.try_recv().is_err(), "the stalled stage still holds everything");
        chain.remove(ToxicId(2)).await;
        expect_numbers(&mut output, 0..40).await;
        assert!(time::now() - started < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn adding_behind_a_sleeping_stage_keeps_its_chunk_and_its_deadline() {
        let started = time::now();
        let (mut chain, mut output) = numbered_chain(vec![hour_latency(1)], 3);
        settle().await;
        chain.add(NewStage { stage: Box::new(Noop), cx: cx(Some(2)) }).await;
        // Restarted, not removed: number 0 is still held for the rest of its hour.
        let first = output.recv().await.unwrap();
        assert_eq!(first.data.as_ref(), 0u32.to_be_bytes());
        assert!(time::now() - started >= Duration::from_secs(3600));
        chain.remove(ToxicId(1)).await;
        expect_numbers(&mut output, 1..3).await;
        assert!(time::now() - started < Duration::from_secs(3601));
    }
}
