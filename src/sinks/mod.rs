//! Notification sinks: an SMTP server and provider-shaped HTTP APIs that record what arrives.
//!
//! A [`Sink`] is started by the engine for a run, listens on the addresses it is given (port 0 is
//! fine; several addresses serve the same sink on each, e.g. `127.0.0.1` for the harness and the
//! run network's gateway for containers) and reports every accepted message and every rejection
//! through a callback of its own event type, [`SinkEvent`], stamped with the receive time read from
//! the clock callback it was given. The engine maps these to journal events.
//!
//! This module depends on nothing else in the crate: not the journal, not the scenario. Its only
//! timers are the [`Timeouts`] it waits for clients with (tokio's timer, so paused-time tests
//! control them); receive times come only from the clock callback.
//!
//! Protocols (answers are the real provider's status codes and body shapes, so unmodified clients
//! work; credentials are accepted and never checked):
//! - [`SinkKind::Smtp`]: RFC 5321 server (`smtp.rs`), MIME parsed with `mail-parser`.
//! - [`SinkKind::Twilio`] (Messages = SMS, Calls = voice), [`SinkKind::Sinch`] (Fax v3),
//!   [`SinkKind::Statuspage`] (incidents, updates, scheduled maintenances), [`SinkKind::Slack`]
//!   (incoming webhook), [`SinkKind::Pagerduty`] (Events v2), [`SinkKind::Webhook`] (any JSON):
//!   axum routers under `http/`, one file per provider.
//!
//! Bounded memory, stated: a message (SMTP `DATA`, an HTTP body) is never buffered past
//! [`Limits::max_message_bytes`] (SMTP answers 552, HTTP 413); at most [`Limits::max_messages`]
//! messages are accepted per sink and run (then SMTP 452, HTTP 429); at most
//! [`MAX_CONNECTIONS`] connections are served at once per sink (at the cap, the connection idle
//! longest is closed to admit a new one, `evicted`; when none is idle the new one is closed);
//! SMTP command lines are capped at [`smtp::MAX_COMMAND_LINE`] bytes and a transaction at
//! [`smtp::MAX_RECIPIENTS`] recipients. Statuspage keeps one record per created incident, so its
//! state is bounded by `max_messages` too.
//!
//! No client holds a connection forever: [`Timeouts`] bound every wait for a client (SMTP: the
//! RFC 5321 §4.5.3.2 timeouts, seen from the server; HTTP: keep-alive idle, request head and
//! body);
//! a connection that runs out of time is closed (SMTP with `421`) and reported as a
//! [`RejectReason::Timeout`].
//!
//! Chaos ([`Sink::set_chaos`]) makes a sink fail like a provider outage: each request (each SMTP
//! message at its final `.`) is, with the given probability drawn from a RNG seeded by
//! [`SinkConfig::seed`], answered with the given status (HTTP: that status with the provider's
//! error body; SMTP: 4xx → `451 4.3.0`, 5xx → `554 5.3.0`) or held open until chaos is changed or
//! the client gives up (a held request is then handled normally). Each chaos answer or hold is a
//! [`SinkEvent::Rejected`] with [`RejectReason::Chaos`]; [`Sink::held_requests`] counts the requests
//! held right now. A client that hangs up ends its held request (HTTP: hyper notices the closed
//! connection; SMTP: the session watches for it while the mail is held).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

mod connections;
mod http;
pub mod smtp;

use connections::{Admission, Connections, Slot};

/// Connections served at once by one sink. At the cap the connection idle longest is closed to
/// admit a new one; when none is idle, the new one is closed as soon as it is accepted.
pub const MAX_CONNECTIONS: usize = 256;

/// Which protocol a sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    /// An SMTP server (email).
    Smtp,
    /// Twilio's Messages (SMS) and Calls (voice) resources.
    Twilio,
    /// Sinch Fax API v3.
    Sinch,
    /// Atlassian Statuspage incidents, incident updates and scheduled maintenances.
    Statuspage,
    /// A Slack incoming webhook.
    Slack,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Any JSON posted to any path.
    Webhook,
}

impl SinkKind {
    /// The kebab-case name, as in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Smtp => "smtp",
            SinkKind::Twilio => "twilio",
            SinkKind::Sinch => "sinch",
            SinkKind::Statuspage => "statuspage",
            SinkKind::Slack => "slack",
            SinkKind::Pagerduty => "pagerduty",
            SinkKind::Webhook => "webhook",
        }
    }
}

impl fmt::Display for SinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-message and per-run limits that keep a sink's memory bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Limits {
    /// The largest message: SMTP `SIZE` (advertised and enforced while reading `DATA`) and the HTTP
    /// body cap.
    pub max_message_bytes: usize,
    /// Messages accepted per sink and run; later ones are rejected (SMTP 452, HTTP 429).
    pub max_messages: usize,
}

impl Default for Limits {
    /// 1 MiB per message, 10 000 messages per run.
    fn default() -> Self {
        Limits { max_message_bytes: 1024 * 1024, max_messages: 10_000 }
    }
}

/// How long a sink waits for its client, per phase; a connection that runs out of time is closed
/// and reported ([`RejectReason::Timeout`]).
///
/// The SMTP fields are RFC 5321 §4.5.3.2's timeouts seen from the server: each bounds the client's
/// turn after the sink's last reply (the RFC's 5, 5, 5, 2, 3, 10 and 5 minutes are the client's
/// patience with the server; the sink is stricter, see [`Timeouts::default`]). The HTTP fields
/// bound a keep-alive connection between requests and the arrival of a request head and body. A mail held
/// by chaos and the handling of an HTTP request are the sink's turn, never timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Timeouts {
    /// SMTP "initial 220 message": after the greeting, until the client's first command line.
    pub greeting: Duration,
    /// SMTP "MAIL command": after `MAIL` was accepted, until the next command line.
    pub mail: Duration,
    /// SMTP "RCPT command": after a `RCPT` was accepted, until the next command line.
    pub rcpt: Duration,
    /// SMTP "DATA initiation": after the `354`, until the first line of the mail.
    pub data_init: Duration,
    /// SMTP "data block": each further read of the mail must bring bytes within it.
    pub data_block: Duration,
    /// SMTP "DATA termination": the whole mail, from the `354` to the final `.`.
    pub data_termination: Duration,
    /// SMTP "server timeout": any other wait for a command line (after `EHLO`, after a finished
    /// or reset transaction, an `AUTH` response), and writing any reply to a client that does
    /// not read.
    pub server: Duration,
    /// HTTP keep-alive: a connection with no request in progress (before the first, between two).
    pub idle: Duration,
    /// HTTP: a request head, from its first byte to its last.
    pub header_read: Duration,
    /// HTTP: a request body, from the end of the head to its last byte (then `408`).
    pub body_read: Duration,
}

impl Default for Timeouts {
    /// Shorter than RFC 5321's minutes, because a rehearsal lasts minutes: SMTP `greeting`,
    /// `mail`, `rcpt`, `data-init`, `data-block` 30 s, `data-termination` 2 min, `server` 2 min;
    /// HTTP `idle` 2 min, `header-read` 30 s, `body-read` 30 s. The two that end a connection
    /// between messages (`server`, `idle`) are longer than the idle time of common client pools
    /// (lettre 60 s, reqwest and Go 90 s), so a pooled connection is closed by its client, never
    /// under a request the client is just sending.
    fn default() -> Self {
        let seconds = Duration::from_secs;
        Timeouts {
            greeting: seconds(30),
            mail: seconds(30),
            rcpt: seconds(30),
            data_init: seconds(30),
            data_block: seconds(30),
            data_termination: seconds(120),
            server: seconds(120),
            idle: seconds(120),
            header_read: seconds(30),
            body_read: seconds(30),
        }
    }
}

/// How to start one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// The sink's name in the scenario (`email`, `sms`, ...).
    pub name: String,
    /// The protocol.
    pub kind: SinkKind,
    /// Where to listen; port 0 picks a free port. Several addresses serve the same sink on each.
    pub listen: Vec<SocketAddr>,
    /// Memory bounds.
    pub limits: Limits,
    /// How long the sink waits for its clients.
    pub timeouts: Timeouts,
    /// Seed of the RNG that decides which requests chaos hits (and the ids the sink hands out).
    pub seed: u64,
}

/// How a sink fails while chaos is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChaosMode {
    /// Answer with this HTTP status (e.g. 429, 500, 503) and the provider's error body; SMTP maps
    /// 4xx to `451` and 5xx to `554`.
    Status(u16),
    /// Hold the request open until chaos is changed or the client gives up.
    Hang,
}

/// Chaos on the notification path: a provider outage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Chaos {
    /// How the sink fails.
    pub mode: ChaosMode,
    /// Share of requests that fail, `0.0..=1.0` (1.0: every request).
    pub probability: f64,
    /// Only requests to this resource fail (e.g. Twilio's SMS while its calls work); `None`: every
    /// request of the sink.
    #[serde(default)]
    pub only: Option<Resource>,
}

/// A part of a provider's API that chaos can hit alone: Twilio serves two channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resource {
    /// Twilio Messages (SMS).
    Messages,
    /// Twilio Calls (voice).
    Calls,
}

/// Why a sink turned something away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectReason {
    /// A malformed or out-of-sequence SMTP command, a line too long, an unknown command.
    Protocol,
    /// A message over [`Limits::max_message_bytes`].
    TooLarge,
    /// Not JSON / not a form, or a required field missing or invalid.
    InvalidPayload,
    /// A path (or method) the provider does not serve.
    UnknownPath,
    /// A resource that does not exist (e.g. a Statuspage incident id).
    UnknownResource,
    /// [`Limits::max_messages`] reached.
    LimitReached,
    /// Chaos answered or held the request.
    Chaos,
    /// A client did not go on within one of the sink's [`Timeouts`]: its connection was closed.
    Timeout,
    /// [`MAX_CONNECTIONS`] were open: the connection idle longest was closed to admit a new one.
    Evicted,
}

/// What a sink reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum SinkEvent {
    /// A message was accepted.
    Received(Notification),
    /// Something was turned away (with a protocol-correct answer to the client).
    Rejected {
        /// The sink's name.
        sink: String,
        /// Why.
        reason: RejectReason,
        /// What exactly, for the report (the command, the path, the parse error, ...).
        detail: String,
    },
}

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Notification {
    /// The sink's name.
    pub sink: String,
    /// The sink's protocol.
    pub kind: SinkKind,
    /// Receive time from the sink's clock (SMTP: when the final `.` arrived; HTTP: when the body was
    /// read).
    pub received: Duration,
    /// The sender (SMTP envelope `MAIL FROM`, Twilio/Sinch `From`), when the protocol has one.
    pub from: Option<String>,
    /// Who it is for: SMTP envelope recipients, Twilio/Sinch `To`, the Statuspage page id, the
    /// PagerDuty routing key, the sink's name for Slack and webhooks.
    pub recipients: Vec<String>,
    /// Mail subject, incident name, PagerDuty summary.
    pub subject: Option<String>,
    /// The text (for HTML-only mail and TwiML, stripped to text).
    pub body: String,
    /// Provider-specific extras (e.g. Twilio `resource`, Statuspage `status`, PagerDuty
    /// `event_action` and `dedup_key`).
    pub channel_detail: serde_json::Value,
}

/// The receive-time source a sink is given.
pub type SinkClock = Arc<dyn Fn() -> Duration + Send + Sync>;
/// Where a sink reports.
pub type SinkEvents = Arc<dyn Fn(SinkEvent) + Send + Sync>;

/// A running sink.
#[must_use = "a sink serves until `shutdown` is awaited (or it is dropped)"]
pub struct Sink {
    name: String,
    kind: SinkKind,
    addrs: Vec<SocketAddr>,
    chaos: watch::Sender<Option<Chaos>>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Bind every address in `cfg.listen` and start serving. Fails if any address cannot be bound
    /// (nothing is left listening then).
    pub async fn start(cfg: SinkConfig, clock: SinkClock, events: SinkEvents) -> io::Result<Sink> {
        if cfg.listen.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a sink needs at least one address",
            ));
        }
        let mut listeners = Vec::with_capacity(cfg.listen.len());
        let mut addrs = Vec::with_capacity(cfg.listen.len());
        for addr in &cfg.listen {
            let listener = TcpListener::bind(addr).await?;
            addrs.push(listener.local_addr()?);
            listeners.push(listener);
        }
        let (chaos_tx, chaos_rx) = watch::channel(None);
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            name: cfg.name.clone(),
            kind: cfg.kind,
            limits: cfg.limits,
            timeouts: cfg.timeouts,
            clock,
            events,
            chaos: chaos_rx,
            rng: Mutex::new(SplitMix64(cfg.seed)),
            accepted: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            stop: stop.clone(),
        });
        let connections = Connections::new(MAX_CONNECTIONS);
        let mut tasks = JoinSet::new();
        match cfg.kind {
            SinkKind::Smtp => {
                for listener in listeners {
                    tasks.spawn(smtp::serve(listener, shared.clone(), connections.clone()));
                }
            }
            kind => {
                let router = http::router(kind, shared.clone());
                for listener in listeners {
                    tasks.spawn(http::serve(
                        listener,
                        router.clone(),
                        shared.clone(),
                        connections.clone(),
                    ));
                }
            }
        }
        Ok(Sink { name: cfg.name, kind: cfg.kind, addrs, chaos: chaos_tx, stop, tasks, shared })
    }

    /// The bound addresses, in the order of `SinkConfig::listen` (with the chosen ports).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sink's protocol.
    pub fn kind(&self) -> SinkKind {
        self.kind
    }

    /// Start (`Some`) or end (`None`) a provider outage. Held requests are released when the mode
    /// is no longer `Hang`.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        self.chaos.send_replace(chaos);
    }

    /// Requests held open by chaos right now (a request stops counting once it is released, its
    /// client hangs up, or the sink stops).
    pub fn held_requests(&self) -> usize {
        self.shared.held.load(Ordering::Acquire)
    }

    /// Stop listening and end every open connection (held requests included).
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Safety net for early returns: the accept loops and their connections end with the token.
        self.stop.cancel();
    }
}

/// What every connection of a sink shares.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) kind: SinkKind,
    pub(crate) limits: Limits,
    pub(crate) timeouts: Timeouts,
    clock: SinkClock,
    events: SinkEvents,
    chaos: watch::Receiver<Option<Chaos>>,
    rng: Mutex<SplitMix64>,
    accepted: AtomicUsize,
    /// Requests held by chaos right now.
    held: AtomicUsize,
    pub(crate) stop: CancellationToken,
}

/// Counts a held request for as long as it lives (its future is dropped when the client hangs up).
struct Held<'a>(&'a AtomicUsize);

impl<'a> Held<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Held(count)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What chaos decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChaosVerdict {
    /// Handle it normally.
    Pass,
    /// Answer with this status.
    Status(u16),
}

impl Shared {
    /// The receive time now.
    pub(crate) fn now(&self) -> Duration {
        (self.clock)()
    }

    /// Report an accepted message. Callers have reserved a slot with [`Shared::try_accept`].
    pub(crate) fn received(&self, notification: Notification) {
        (self.events)(SinkEvent::Received(notification));
    }

    /// Report a rejection.
    pub(crate) fn rejected(&self, reason: RejectReason, detail: impl Into<String>) {
        (self.events)(SinkEvent::Rejected {
            sink: self.name.clone(),
            reason,
            detail: detail.into(),
        });
    }

    /// Whether another message would still be accepted.
    pub(crate) fn has_room(&self) -> bool {
        self.accepted.load(Ordering::Relaxed) < self.limits.max_messages
    }

    /// Take one of the run's message slots; false (and a `limit-reached` rejection) when none is
    /// left.
    pub(crate) fn try_accept(&self) -> bool {
        let max = self.limits.max_messages;
        let taken = self
            .accepted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .is_ok();
        if !taken {
            self.rejected(
                RejectReason::LimitReached,
                format!("{max} messages already accepted in this run"),
            );
        }
        taken
    }

    /// A notification of this sink with the receive time filled in.
    pub(crate) fn notification(&self, received: Duration) -> Notification {
        Notification {
            sink: self.name.clone(),
            kind: self.kind,
            received,
            from: None,
            recipients: Vec::new(),
            subject: None,
            body: String::new(),
            channel_detail: serde_json::Value::Null,
        }
    }

    /// Apply chaos to one request: answer a status, hold it until chaos changes (then decide
    /// again), or pass. Every answer or hold is reported as a `chaos` rejection with `what` (the
    /// request). Returns `None` when the sink is shutting down while the request is held.
    pub(crate) async fn chaos(&self, what: &str) -> Option<ChaosVerdict> {
        self.chaos_on(what, None).await
    }

    /// [`Shared::chaos`] for a request to `resource`: chaos limited to another resource passes it.
    pub(crate) async fn chaos_on(
        &self,
        what: &str,
        resource: Option<Resource>,
    ) -> Option<ChaosVerdict> {
        let mut chaos = self.chaos.clone();
        loop {
            let current = *chaos.borrow_and_update();
            let Some(current) = current else { return Some(ChaosVerdict::Pass) };
            if current.only.is_some() && current.only != resource {
                return Some(ChaosVerdict::Pass);
            }
            if !self.roll(current.probability) {
                return Some(ChaosVerdict::Pass);
            }
            match current.mode {
                ChaosMode::Status(status) => {
                    self.rejected(RejectReason::Chaos, format!("answered {status}: {what}"));
                    return Some(ChaosVerdict::Status(status));
                }
                ChaosMode::Hang => {
                    // Counted before it is reported, so a caller that saw the report sees the count.
                    let _held = Held::new(&self.held);
                    self.rejected(RejectReason::Chaos, format!("held open: {what}"));
                    tokio::select! {
                        changed = chaos.changed() => {
                            // The sender lives in `Sink`; gone means the sink is gone.
                            changed.ok()?;
                        }
                        () = self.stop.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// True with probability `p`, from the seeded RNG.
    fn roll(&self, p: f64) -> bool {
        if p >= 1.0 {
            return true;
        }
        if p <= 0.0 || p.is_nan() {
            return false;
        }
        self.next_u64() as f64 / (u64::MAX as f64 + 1.0) < p
    }

    /// The next value of the seeded RNG.
    pub(crate) fn next_u64(&self) -> u64 {
        self.rng.lock().expect("sink RNG lock poisoned").next()
    }

    /// A provider-style id: `prefix` + 32 lowercase hex digits from the seeded RNG.
    pub(crate) fn id(&self, prefix: &str) -> String {
        format!("{prefix}{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

/// SplitMix64: tiny, seedable, good enough to pick which requests fail (not for secrets).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Accept connections until the sink stops, at most [`MAX_CONNECTIONS`] at once (evicting the
/// connection idle longest at the cap); each connection runs `handle` in a task that ends when the
/// sink stops.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shared: Arc<Shared>,
    connections: Arc<Connections>,
    handle: F,
) where
    F: Fn(tokio::net::TcpStream, SocketAddr, Slot) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut open = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => break,
            accepted = listener.accept() => accepted,
            // Reap finished connections so the set stays as small as the open connections.
            Some(_) = open.join_next(), if !open.is_empty() => continue,
        };
        let Ok((stream, peer)) = accepted else {
            // Accept errors (e.g. out of file descriptors) are per connection; keep serving.
            continue;
        };
        let slot = match connections.admit(peer) {
            Admission::Admitted(slot) => slot,
            Admission::Evicted(slot, evicted) => {
                shared.rejected(
                    RejectReason::Evicted,
                    format!(
                        "{MAX_CONNECTIONS} connections open: closed the one idle longest, from \
                         {evicted}, to admit {peer}"
                    ),
                );
                slot
            }
            Admission::Refused => {
                shared.rejected(
                    RejectReason::LimitReached,
                    format!("{MAX_CONNECTIONS} connections open, none idle; closed {peer}"),
                );
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        open.spawn(handle(stream, peer, slot));
    }
    // Dropping the set aborts every open connection.
    open.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_kebab_case() {
        assert_eq!(serde_json::to_string(&SinkKind::Pagerduty).unwrap(), "\"pagerduty\"");
        let kind: SinkKind = serde_json::from_str("\"statuspage\"").unwrap();
        assert_eq!(kind, SinkKind::Statuspage);
        assert_eq!(SinkKind::Twilio.to_string(), "twilio");
    }

    #[test]
    fn rng_is_seeded_and_spread() {
        let mut a = SplitMix64(7);
        let mut b = SplitMix64(7);
        let first: Vec<u64> = (0..4).map(|_| a.next()).collect();
        assert_eq!(first, (0..4).map(|_| b.next()).collect::<Vec<_>>());
        assert_ne!(first, (0..4).map(|_| SplitMix64(8).next()).collect::<Vec<_>>());
    }

    type Recorded = Arc<Mutex<Vec<SinkEvent>>>;

    fn shared(max_messages: usize, seed: u64) -> (Shared, Recorded, watch::Sender<Option<Chaos>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let (tx, rx) = watch::channel(None);
        let shared = Shared {
            name: "s".into(),
            kind: SinkKind::Webhook,
            limits: Limits { max_message_bytes: 10, max_messages },
            timeouts: Timeouts::default(),
            clock: Arc::new(|| Duration::from_millis(5)),
            events: Arc::new(move |event| sink.lock().unwrap().push(event)),
            chaos: rx,
            rng: Mutex::new(SplitMix64(seed)),
            accepted: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            stop: CancellationToken::new(),
        };
        (shared, seen, tx)
    }

    #[test]
    fn message_slots_run_out_with_a_rejection() {
        let (shared, seen, _tx) = shared(2, 1);
        assert!(shared.try_accept() && shared.try_accept());
        assert!(!shared.has_room());
        assert!(!shared.try_accept());
        let seen = seen.lock().unwrap();
        assert!(matches!(
            &seen[..],
            [SinkEvent::Rejected { reason: RejectReason::LimitReached, .. }]
        ));
    }

    #[tokio::test]
    async fn chaos_probability_follows_the_seed() {
        let (shared, seen, tx) = shared(10, 42);
        assert_eq!(shared.chaos("r").await, Some(ChaosVerdict::Pass));
        tx.send_replace(Some(Chaos { mode: ChaosMode::Status(503), probability: 0.5, only: None }));
        let mut hits = 0;
        for _ in 0..1000 {
            if shared.chaos("r").await == Some(ChaosVerdict::Status(503)) {
                hits += 1;
            }
        }
        assert!((400..600).contains(&hits), "{hits} of 1000 at p = 0.5");
        assert_eq!(seen.lock().unwrap().len(), hits);
        tx.send_replace(Some(Chaos { mode: ChaosMode::Status(429), probability: 1.0, only: None }));
        assert_eq!(shared.chaos("r").await, Some(ChaosVerdict::Status(429)));
        tx.send_replace(Some(Chaos { mode: ChaosMode::Status(429), probability: 0.0, only: None }));
        assert_eq!(shared.chaos("r").await, Some(ChaosVerdict::Pass));
    }

    #[tokio::test]
    async fn chaos_limited_to_a_resource_passes_the_others() {
        let (shared, seen, tx) = shared(10, 3);
        let only = Some(Resource::Messages);
        tx.send_replace(Some(Chaos { mode: ChaosMode::Status(500), probability: 1.0, only }));
        assert_eq!(shared.chaos_on("sms", only).await, Some(ChaosVerdict::Status(500)));
        assert_eq!(shared.chaos_on("call", Some(Resource::Calls)).await, Some(ChaosVerdict::Pass));
        assert_eq!(shared.chaos("smtp").await, Some(ChaosVerdict::Pass));
        assert_eq!(seen.lock().unwrap().len(), 1, "only the SMS was refused");
    }

    #[tokio::test]
    async fn a_held_request_is_released_when_chaos_ends() {
        let (shared, seen, tx) = shared(10, 1);
        let shared = Arc::new(shared);
        tx.send_replace(Some(Chaos { mode: ChaosMode::Hang, probability: 1.0, only: None }));
        let held = tokio::spawn({
            let shared = shared.clone();
            async move { shared.chaos("r").await }
        });
        // Wait for the hold to be reported (data, not a sleep) before ending chaos.
        while seen.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        assert!(!held.is_finished());
        tx.send_replace(None);
        assert_eq!(held.await.unwrap(), Some(ChaosVerdict::Pass));
    }

    #[tokio::test]
    async fn a_held_request_ends_when_the_sink_stops() {
        let (shared, seen, tx) = shared(10, 1);
        let shared = Arc::new(shared);
        tx.send_replace(Some(Chaos { mode: ChaosMode::Hang, probability: 1.0, only: None }));
        let held = tokio::spawn({
            let shared = shared.clone();
            async move { shared.chaos("r").await }
        });
        while seen.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        shared.stop.cancel();
        assert_eq!(held.await.unwrap(), None);
    }
}
