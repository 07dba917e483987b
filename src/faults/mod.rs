//! Faults: turn a fault spec into an applied fault on containers, with what it takes to revert
//! it; the crash-safe ledger of applied faults; and recovering what dead runs left applied.
//!
//! Owns the container half of fault injection (Docker `update`, network disconnect/connect,
//! pause/unpause on container ids) and the seeded choice of targets. It does not record journal
//! events (it returns what it did and the engine records it), does not read the environment (the
//! CLI resolves the state folder) and never removes containers or networks (that is the stack's
//! sweep, which runs after a recovery).
//!
//! # Files
//! - `select.rs`: the seeded RNG and which replicas a `target` picks (pure).
//! - `ledger.rs`: `ledger/RUNID.jsonl` — applied and reverted records, fsync'd; reading it back.
//! - `docker.rs`: applying and reverting on one container; recovering a dead run's ledger.

mod docker;
mod ledger;
mod select;

pub use docker::{
    AppliedFault, FaultError, Recovered, RecoveryOutcome, apply, capture, recover_ledgers, revert,
};
pub use ledger::{Ledger, LedgerRecord, Undo, ledger_dir, read_ledger, state_dir};
pub use select::{SeededRng, select_targets};
