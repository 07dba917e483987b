//! What the proxy reports: events through the callback, and counters on demand.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::spec::{ConnId, Direction, ToxicId, ToxicSpec, duration_text};

/// Something the proxy did or saw. The engine maps these to journal events; the callback is called
/// from the proxy's tasks, must be quick, and must not call back into the [`Proxy`](super::Proxy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum ProxyEvent {
    /// A client connected.
    Accepted {
        /// The new connection.
        conn: ConnId,
        /// The client's address.
        peer: SocketAddr,
    },
    /// The connection reached its upstream (resolved anew for every connection).
    Connected {
        /// Which connection.
        conn: ConnId,
        /// The address the upstream resolved to.
        upstream: SocketAddr,
    },
    /// The upstream could not be resolved or reached; the client is closed.
    UpstreamFailed {
        /// Which connection.
        conn: ConnId,
        /// Why.
        error: String,
    },
    /// A connection ended.
    Closed {
        /// Which connection.
        conn: ConnId,
        /// Bytes delivered to the server.
        bytes_up: u64,
        /// Bytes delivered to the client.
        bytes_down: u64,
        /// Why it ended.
        reason: CloseReason,
    },
    /// A toxic was added (it applies to live and new connections).
    ToxicAdded {
        /// Its id.
        id: ToxicId,
        /// What it is.
        spec: ToxicSpec,
    },
    /// A toxic was removed; what its stages held is flushed onward, in order.
    ToxicRemoved {
        /// Its id.
        id: ToxicId,
    },
    /// A toxic's toxicity roll said yes for a connection: it acts on that connection.
    ToxicApplied {
        /// Which connection.
        conn: ConnId,
        /// Which toxic.
        id: ToxicId,
    },
    /// An http toxic acted on one request.
    HttpInjected {
        /// Which connection.
        conn: ConnId,
        /// Which toxic.
        id: ToxicId,
        /// What it did.
        injection: HttpInjection,
    },
    /// A listener was closed by a `down` toxic: connecting to it is refused.
    ListenerClosed {
        /// The address.
        addr: SocketAddr,
    },
    /// A listener is bound again after the last `down` toxic was removed.
    ListenerOpened {
        /// The address.
        addr: SocketAddr,
    },
    /// A listener could not be bound again; it stays closed.
    ListenerFailed {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: String,
    },
}

/// What an http toxic did to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum HttpInjection {
    /// Answered with this status; the request never reached the server.
    Error {
        /// The status sent.
        status: u16,
    },
    /// Forwarded after this delay.
    Delay {
        /// The delay.
        #[serde(with = "duration_text")]
        delay: Duration,
    },
    /// The answer's connection closed after its head and `after` body bytes.
    Abort {
        /// Body bytes delivered.
        after: u64,
    },
    /// The answer's body cut to `bytes` (with `Content-Length` rewritten when it had one).
    Truncate {
        /// Body bytes kept.
        bytes: u64,
    },
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum CloseReason {
    /// Both peers closed their side and every byte was delivered.
    Finished,
    /// Reading from or writing to one side failed.
    Io {
        /// The failing side's stream: `upstream` is the client → server stream.
        direction: Direction,
        /// The error.
        error: String,
    },
    /// A toxic closed it (`timeout`, `limit-data`, `http-error`) or reset it (`reset-peer`).
    Toxic {
        /// Which toxic.
        id: ToxicId,
        /// Its kind's name.
        toxic: String,
    },
    /// A `down` toxic closed it.
    Down {
        /// Which toxic.
        id: ToxicId,
    },
    /// The upstream could not be reached.
    UpstreamFailed,
    /// The proxy shut down.
    Shutdown,
}

/// Counters since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections open now.
    pub active: u64,
    /// Bytes delivered to servers.
    pub bytes_up: u64,
    /// Bytes delivered to clients.
    pub bytes_down: u64,
}
