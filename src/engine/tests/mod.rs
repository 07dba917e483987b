//! The engine's own tests, on the in-memory fake backend (`crate::backend::fake`): no Docker, each
//! run in well under a second. One file per family; `support` builds scenarios and reads results.
//!
//! Time is tokio's real clock with scenario durations of tens of milliseconds: the fake's
//! instances answer over real loopback sockets, and tokio's paused clock would jump past
//! timeouts while a request is in flight (see the README's "The fake backend").

mod accounting;
mod blue_green;
mod bring_up;
mod faults;
mod gameday;
mod recreate;
mod rolling;
mod signals;
mod steps;
mod support;
