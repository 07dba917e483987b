//! firedrill: rehearse upgrades and outages of a containerised SaaS stack before they happen for
//! real.
//!
//! A scenario (YAML) describes a stack, a timeline of actions and faults, and what must hold. The
//! engine brings the stack up in Docker, runs the timeline, records everything in the [`journal`],
//! and the [`checks`] judge the journal. See `ARCHITECTURE.md` for the module map.
//!
//! # From Rust
//! [`Rehearsal`] runs a scenario the way `firedrill run` does and returns an [`Outcome`] with
//! typed [`Verdict`]s; [`Outcome::assert_held`] fails a test with the summary the CLI prints. In
//! a `#[tokio::test(flavor = "multi_thread")]`:
//!
//! ```no_run
//! # async fn smoke_holds() -> Result<(), firedrill::RehearsalError> {
//! let outcome = firedrill::Rehearsal::from_file("scenarios/smoke.yaml")?.run().await?;
//! outcome.assert_held();
//! # Ok(())
//! # }
//! ```
//!
//! `examples/cargo_test.rs` is a complete example.
#![deny(missing_docs)]

pub mod backend;
pub mod calendar;
pub mod checks;
pub mod cli;
pub mod clock;
pub(crate) mod engine;
pub mod explore;
pub mod faults;
pub mod history;
pub mod journal;
pub(crate) mod owner;
pub(crate) mod probe;
pub mod proxy;
mod rehearsal;
pub mod report;
pub mod scenario;
pub mod sinks;
pub mod stack;
pub mod traffic;

pub use backend::{Backend, BackendError, RunScope};
pub use checks::{CheckStatus, Verdict};
pub use engine::{EngineError, Signals};
pub use journal::{Event, EventKind};
pub use rehearsal::{Outcome, Rehearsal, RehearsalError};
pub use report::RunStatus;
pub use scenario::Scenario;
pub use scenario::model::PullPolicy;
