//! Traffic: open-loop HTTP request streams against a service's published port while the timeline
//! runs, and the read-back of every write the service acknowledged.
//!
//! Request `i` of a stream is due at `start + i / rate`, whatever happened to earlier requests:
//! the schedule never slips. A request that cannot go out on time (every `concurrency` slot busy,
//! the port lookup slow) goes out as soon as it can and its lateness is recorded; nothing is
//! skipped or bunched silently. Every request becomes one `traffic-request` event when it
//! completes.
//!
//! This module talks only to `127.0.0.1` ports that the caller's [`PortResolver`] reports (the
//! stack knows them; this module does not see Docker). It records its own journal events
//! (`traffic-started`, `traffic-request`, `traffic-stopped`, `writes-verified`) and judges
//! nothing: the checks read those events.

mod generator;
mod ports;
mod request;
mod verify;

#[cfg(test)]
mod test_server;

pub use generator::{TrafficHandle, TrafficStats, start};
pub use ports::PortResolver;
pub use request::http_client;
pub use verify::{WritesVerifiedSummary, verify_writes, verify_writes_against};
