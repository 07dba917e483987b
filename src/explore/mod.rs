//! `firedrill explore`: property-based search over fault schedules. A proptest strategy draws
//! concrete schedules from a scenario's `explore:` space ([`schedule`]); each schedule becomes an
//! ordinary scenario and runs as a real rehearsal through a caller-supplied [`Runner`]; the first
//! failure is shrunk with proptest's value trees to the smallest schedule that still fails the same
//! check ([`search`]); [`page`] renders the search as one HTML page.
//!
//! Pure apart from the runner: no Docker, no printing, no environment (the CLI's `explore.rs`
//! supplies a runner built on [`crate::Rehearsal`]).

pub mod page;
pub mod rehearse;
pub mod schedule;
pub mod search;

pub use rehearse::RehearsalRunner;
pub use schedule::{Coverage, Schedule};
pub use search::{CaseRecord, Exploration, Found, Phase, Runner, Settings, Stop, Verdict, explore};
