//! Faults, backend-neutral: what restores a fault (`Undo`), the crash-safe ledger of applied
//! faults, the seeded choice of targets, and the records of recovering what dead runs left
//! applied.
//!
//! Applying and reverting a fault on one instance, and recovering a dead run's ledger, are the
//! backend's (`RunScope::apply_fault`, `Backend::recover_faults`; on Docker `stack/faults.rs`).
//! This module does not record journal events, does not read the environment (the CLI resolves the
//! state folder) and never removes anything.
//!
//! # Files
//! - `select.rs`: the seeded RNG and which replicas a `target` picks (pure).
//! - `ledger.rs`: `ledger/RUNID.jsonl` — applied and reverted records, fsync'd; reading it back.

mod ledger;
mod select;

pub use ledger::{Ledger, LedgerRecord, Undo, ledger_dir, read_ledger, state_dir};
pub use select::{SeededRng, select_targets};

/// A fault in force on one container, as the engine keeps it until it reverts it.
#[derive(Debug, Clone)]
pub struct AppliedFault {
    /// Ledger id (or the run's own count when there is no ledger).
    pub fault: u64,
    /// Service.
    pub service: String,
    /// The replica's key (the service name while a service has one container).
    pub replica: String,
    /// Container id.
    pub container: String,
    /// What restores it.
    pub undo: Undo,
}

/// What recovering one leftover fault did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The dead run.
    pub run_id: String,
    /// Service.
    pub service: String,
    /// Container name.
    pub name: String,
    /// `pause`, `memory`, `cpu` or `partition`.
    pub fault: &'static str,
    /// What happened.
    pub outcome: RecoveryOutcome,
}

/// How recovering one fault went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryOutcome {
    /// Reverted; what was done.
    Reverted(String),
    /// The container (or network) no longer exists: nothing to revert.
    Gone,
    /// Docker refused; the ledger is kept for the next attempt.
    Failed(String),
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Recovered { run_id, name, fault, outcome, .. } = self;
        match outcome {
            RecoveryOutcome::Reverted(what) => write!(f, "{run_id}: {fault} on {name}: {what}"),
            RecoveryOutcome::Gone => write!(f, "{run_id}: {fault} on {name}: already gone"),
            RecoveryOutcome::Failed(why) => write!(f, "{run_id}: {fault} on {name}: FAILED: {why}"),
        }
    }
}
