//! Docker: the run's network, images (built locally, pulled per pull policy), containers, exec, container
//! actions, logs, labels and the sweep of dead runs' leftovers.
//!
//! Docker specifics stay in here. Callers speak in services, never in container ids. This module
//! does not record journal events: it returns what happened and the engine records it.
//!
//! # bollard directly, not testcontainers' `ContainerAsync`
//!
//! Containers, networks and builds go through the bollard 0.21 client that testcontainers 0.28
//! re-exports, not through `GenericImage` + `ContainerAsync`, because a firedrill stack needs what
//! testcontainers does not do or does differently:
//! - it pulls only as the pull policy says, before anything starts: testcontainers pulls when
//!   creating a container answers 404;
//! - network aliases, `host.docker.internal` pointing at the run network's gateway, kill with a
//!   signal, labels on the network, and one owner that removes containers *and* the network;
//! - testcontainers' drop runs removal on the caller's runtime (`block_in_place`), which fails
//!   when that runtime is shutting down.
//!
//! The safety net is [`StackHandle`]'s `Drop`: unless the run was shut down or is kept, it removes
//! the run's containers and network from a dedicated thread with its own runtime and its own
//! connection, and waits (bounded) for it, so it works while panicking and while the caller's
//! runtime shuts down. Whatever escapes even that (SIGKILL) carries labels, and
//! [`Docker::sweep`] removes it later.
//!
//! # Files
//! - `docker.rs`: [`Docker`], connecting and the image entry points.
//! - `image.rs`: the context lock, `prepare`, base images of `FROM` lines, the legacy-builder build.
//! - `pull.rs`, `credentials.rs`: pulls per pull policy with the Docker client's credentials.
//! - `context.rs`: the build context as a tar archive, honouring `.dockerignore`.
//! - `container.rs`: [`StackHandle`], the containers of one run and the actions on them.
//! - `remove.rs`: removal shared by shutdown, `Drop` and the sweep.
//! - `sweep.rs`: finding and removing dead runs' objects.
//! - `error.rs`: [`StackError`] and its hints.

mod clockskew;
mod container;
mod context;
mod credentials;
mod dns;
mod docker;
mod error;
mod faults;
mod image;
mod iolimit;
mod netfault;
mod nfqueue;
mod pull;
mod remove;
mod scope;
pub mod swarm;
mod sweep;
mod volume;

pub(crate) use crate::owner::owner_alive;
pub use container::{HARNESS_HOST, StackHandle};
pub use docker::Docker;
pub use error::StackError;
pub use faults::{FaultError, recover_ledgers};
pub use pull::{PULL_STALL_TIMEOUT, PullBar, PullProgress, Pulled};
pub use scope::DockerBackend;
pub use volume::volume_name;

pub use crate::backend::{ExecOutcome, RunIdentity, SweepReport, SweepScope};

/// Label keys every object of a run carries.
pub mod labels {
    /// The run id.
    pub const RUN: &str = "firedrill.run";
    /// The scenario name.
    pub const SCENARIO: &str = "firedrill.scenario";
    /// The service, on containers.
    pub const SERVICE: &str = "firedrill.service";
    /// `PID:STARTTIME` of the harness process that owns the run (process start time from
    /// `/proc/PID/stat`, so a reused pid is not mistaken for the owner).
    pub const OWNER: &str = "firedrill.owner";
    /// `true` when the run was started with `--keep`: the sweep leaves it alone.
    pub const KEEP: &str = "firedrill.keep";
}

/// What `Docker::ensure_image` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    /// The image was already in the local store.
    Present,
    /// It was built just now.
    Built,
    /// It was pulled just now.
    Pulled(Pulled),
}

/// A container's state as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Running (paused counts as running, as in Docker).
    pub running: bool,
    /// Paused.
    pub paused: bool,
    /// Exit code of the last exit.
    pub exit_code: Option<i64>,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
}

/// A Docker event about a container of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// Service (from the container's `firedrill.service` label).
    pub service: String,
    /// Docker's action (`start`, `die`, `oom`, `pause`, `unpause`, `kill`, `stop`, `restart`).
    pub action: String,
    /// `exitCode` attribute, for `die`.
    pub exit_code: Option<i64>,
    /// The container's id (a service's container changes when it is replaced).
    pub container: String,
}

/// The container name of a service in a run: `RUNID-SERVICE` (run ids start with `fd-`).
pub fn container_name(run_id: &str, service: &str) -> String {
    // Run ids start with `fd-` already: `fd-1a2b3c4d-billing`.
    format!("{run_id}-{service}")
}

/// The network name of a run: `firedrill-RUNID`.
pub fn network_name(run_id: &str) -> String {
    format!("firedrill-{run_id}")
}
