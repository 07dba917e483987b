//! firedrill: rehearse upgrades and outages of a containerised SaaS stack before they happen for
//! real.
//!
//! A scenario (YAML) describes a stack, a timeline of actions and faults, and what must hold. The
//! engine brings the stack up in Docker, runs the timeline, records everything in the [`journal`],
//! and the [`checks`] judge the journal. See `ARCHITECTURE.md` for the module map.
#![deny(missing_docs)]

pub mod calendar;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod faults;
pub mod history;
pub mod journal;
pub mod probe;
pub mod proxy;
pub mod report;
pub mod scenario;
pub mod sinks;
pub mod stack;
pub mod traffic;
