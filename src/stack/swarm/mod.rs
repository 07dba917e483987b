//! The Docker Swarm backend (`--backend swarm`): [`SwarmBackend`] implements
//! [`Backend`](crate::backend::Backend) over a swarm manager (`DOCKER_HOST`), and
//! [`SwarmScope`] implements [`RunScope`](crate::backend::RunScope) with one Swarm service per
//! key on a per-run attachable overlay network (`spec.rs` says why).
//!
//! What is Swarm's and what is the node's: services, tasks, their updates and the overlay go
//! through Swarm's API; what the engine does to an instance (exec, logs, signals, pause, memory
//! and CPU limits) goes to the task's container through the Docker API of the node it runs on,
//! which on a single-node swarm is the manager itself. Images are the single-engine backend's
//! business (built or pulled into the node's store).
//!
//! Lives under `stack` because it reuses the Docker backend's private helpers (errors, removal,
//! fault capture/apply/revert on a container); it must not touch `StackHandle`'s containers.

mod backend;
mod membership;
mod node;
mod ops;
mod scope;
mod spec;
mod sweep;
mod tasks;

pub use backend::SwarmBackend;
pub use membership::{Origin, ensure_swarm, leave_if_idle, node_state};
pub use node::{find_node, set_availability};
pub use scope::SwarmScope;
pub use spec::{SWARM_LABEL, swarm_name};
pub use sweep::sweep_swarm;

use testcontainers::bollard::errors::Error as BollardError;

use crate::backend::{BackendError, BackendErrorKind};
use crate::stack::error::docker_error;

/// A bollard error as a [`BackendError`], saying what we were doing to which key.
fn failed(operation: &'static str, key: &str) -> impl FnOnce(BollardError) -> BackendError {
    let key = key.to_owned();
    move |error| BackendError::from(docker_error(operation, &key)(error))
}

/// Trouble with the swarm itself (its state, its role), with a hint.
fn swarm_error(reason: String, hint: &str) -> BackendError {
    BackendError {
        kind: BackendErrorKind::Unavailable,
        message: format!("swarm: {reason}"),
        hint: Some(hint.to_owned()),
    }
}
