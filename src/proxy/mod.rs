//! The in-process TCP fault proxy: ordered, interruptible faults ("toxics") per link.
//!
//! Modelled on Toxiproxy. A [`Proxy`] listens on loopback addresses and forwards each accepted
//! connection to an [`Upstream`] resolved anew per connection. Every connection has two
//! directions. A direction no toxic applies to is one task copying socket to socket (the fast
//! path); one with toxics is a chain of stages joined by channels of chunks:
//!
//! ```text
//! client ─► pump ──────────────────────────────────► server      (upstream, no toxic)
//! client ◄─ writer ◄─ … ◄─ [toxic 2] ◄─ [noop] ◄─ reader ◄─ server      (downstream)
//! ```
//!
//! - `server.rs`: [`Proxy`], [`ProxyConfig`], [`Upstream`]; listeners, the toxic table, `down`.
//! - `conn.rs`: one connection's supervisor: connect, both directions, switching a direction
//!   between the fast path and its chain as toxics come and go, close.
//! - `pump.rs`: the fast path; stopped between chunks, it hands back what it has not written.
//! - `chain.rs`: stages, channels, and adding/removing a stage without losing or reordering bytes.
//! - `toxic/`: one toxic per file, built by the table in `toxic/mod.rs`.
//! - `spec.rs`, `event.rs`: what the engine sends ([`ToxicSpec`]) and receives ([`ProxyEvent`]).
//! - `rng.rs`: SplitMix64 derived per (seed, connection, toxic): same seed and connection order,
//!   same decisions. `time.rs`: the module's one reading of tokio's clock.
//!
//! The proxy depends on nothing else in the crate: the engine maps scenario faults to
//! [`ToxicSpec`]s and [`ProxyEvent`]s to journal events. It must not reach anything but the
//! addresses its [`Upstream`] gives it.

mod chain;
mod conn;
mod event;
mod pump;
mod rng;
mod server;
mod spec;
mod time;
mod toxic;

#[cfg(test)]
mod tests;

pub use event::{CloseReason, HttpInjection, ProxyEvent, ProxyStats};
pub use server::{Proxy, ProxyConfig, Upstream};
pub use spec::{
    ConnId, Direction, HeaderMatch, RequestMatch, ToxicId, ToxicKind, ToxicSpec, duration_text,
};
