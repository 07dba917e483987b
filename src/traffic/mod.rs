//! Traffic: open-loop HTTP request streams against a service's published port while the timeline
//! runs, and the read-back of every write the service acknowledged.
//!
//! Request `i` of a stream is due at `start + i / rate`, whatever happened to earlier requests:
//! the schedule never slips, and nothing is skipped. Each request is judged from its due time:
//! its latency includes any wait for a free `concurrency` slot, it fails when no answer came
//! within the request timeout of its due time, and one that never got a slot before then fails
//! unsent (no coordinated omission: a stuck service cannot hide its outage by holding the
//! slots). Every request due before the stop becomes one `traffic-request` event.
//!
//! This module talks only to `127.0.0.1` ports that the caller's [`PortResolver`] reports (the
//! stack knows them; this module does not see Docker). It records its own journal events
//! (`traffic-started`, `traffic-request`, `traffic-stopped`, `traffic-drained`, `writes-verified`)
//! and judges nothing: the checks read those events.

mod generator;
mod ports;
mod request;
mod settle;
mod verify;

#[cfg(test)]
mod test_server;

pub use generator::{TrafficHandle, TrafficStats, start};
pub use ports::PortResolver;
pub use request::http_client;
pub use settle::{await_window, due_in, window_outcomes};
pub use verify::{WritesVerifiedSummary, verify_writes, verify_writes_against};
