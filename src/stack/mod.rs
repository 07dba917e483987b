//! Docker: the run's network, images (built locally, never pulled silently), containers, health
//! exec, container actions, logs, labels and the sweep of dead runs' leftovers.
//!
//! Docker specifics stay in here (testcontainers 0.28 and its re-exported bollard 0.21). Callers
//! speak in services, never in container ids. This module does not record journal events: it
//! returns what happened and the engine records it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::scenario::model::{BuildSpec, ImageSource, Service};

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

/// Who a run is, for labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    /// Run id (`fd-` and 8 hex digits).
    pub run_id: String,
    /// Scenario name.
    pub scenario: String,
    /// `--keep`: leave the stack up after the run, and mark it so the sweep skips it.
    pub keep: bool,
}

/// What `Docker::ensure_image` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStatus {
    /// The image was already in the local store.
    Present,
    /// It was built just now.
    Built,
}

/// Result of an exec inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Exit code (None if Docker did not report one).
    pub exit_code: Option<i64>,
    /// Combined stdout and stderr, lossy UTF-8, last 4 KiB.
    pub output: String,
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
}

/// What a sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Names of containers removed.
    pub containers: Vec<String>,
    /// Names of networks removed.
    pub networks: Vec<String>,
}

/// Which runs a sweep removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepScope {
    /// Runs whose owner process is gone, except kept ones (start of every run, `firedrill gc`).
    Dead,
    /// One run, whatever its state (`firedrill gc --run ID`, used to remove a `--keep` stack).
    Run(String),
    /// Everything labelled `firedrill.run` except live runs (`firedrill gc --all`: also kept stacks).
    AllButLive,
}

/// Errors from Docker, each saying what we were doing. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The engine did not answer.
    #[error("cannot reach the Docker engine at {endpoint}: {reason}")]
    Unreachable {
        /// `DOCKER_HOST` or the default socket.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// An `image:` that is not in the local store; firedrill never pulls.
    #[error("image `{image}` is not in the local image store")]
    ImageMissing {
        /// The reference.
        image: String,
    },
    /// A build's `prepare` command failed.
    #[error("prepare command for image `{image}` failed: {reason}")]
    Prepare {
        /// Tag being built.
        image: String,
        /// Exit status or spawn error, with the command's last output lines.
        reason: String,
    },
    /// `docker build` failed.
    #[error("build of image `{image}` failed: {reason}")]
    Build {
        /// Tag being built.
        image: String,
        /// The builder's error and last output lines.
        reason: String,
    },
    /// A host port could not be published or found.
    #[error("publish port {port} of service `{service}`: {reason}")]
    Port {
        /// Service.
        service: String,
        /// Container port.
        port: u16,
        /// Why.
        reason: String,
    },
    /// An unknown service name reached the stack (a bug: validation checks names).
    #[error("service `{0}` is not part of this stack")]
    UnknownService(String),
    /// Any other Docker call failed.
    #[error("{operation} (service `{service}`): {source}")]
    Docker {
        /// What we were doing ("create container", "pause", ...).
        operation: &'static str,
        /// Service, or `-` for run-level objects.
        service: String,
        /// bollard's error.
        #[source]
        source: testcontainers::bollard::errors::Error,
    },
}

impl StackError {
    /// A one-line hint for the user, when there is a likely fix.
    pub fn hint(&self) -> Option<String> {
        todo!("stack helper")
    }
}

/// A connection to the Docker engine.
#[derive(Debug, Clone)]
pub struct Docker {
    _private: (),
}

impl Docker {
    /// Connect (honouring `DOCKER_HOST`) and ping, giving up after 2 s.
    pub async fn connect() -> Result<Docker, StackError> {
        todo!("stack helper")
    }

    /// Whether an image is in the local store.
    pub async fn image_exists(&self, reference: &str) -> Result<bool, StackError> {
        todo!("stack helper {reference}")
    }

    /// Make sure a service's image exists: `image:` must be present (else `ImageMissing`);
    /// `build:` is built when its tag is missing (running `prepare` first). `progress` gets the
    /// builder's output lines.
    pub async fn ensure_image(
        &self,
        source: &ImageSource,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ImageStatus, StackError> {
        todo!("stack helper {source:?} {:p}", progress)
    }

    /// Build unconditionally (for `firedrill images --rebuild`).
    pub async fn build_image(
        &self,
        spec: &BuildSpec,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), StackError> {
        todo!("stack helper {spec:?} {:p}", progress)
    }

    /// Remove leftovers according to `scope`.
    pub async fn sweep(&self, scope: SweepScope) -> Result<SweepReport, StackError> {
        todo!("stack helper {scope:?}")
    }
}

/// The run's Docker objects: one network, one container per service. Remove with
/// [`StackHandle::shutdown`]; dropping it without doing so removes the containers and network on a
/// best-effort basis (panics, early returns) unless the run is kept.
#[must_use = "a stack must be shut down, or its containers outlive the run"]
#[derive(Debug)]
pub struct StackHandle {
    _private: (),
}

impl StackHandle {
    /// Create the run's network (`firedrill-RUNID`, labelled).
    pub async fn create(docker: &Docker, identity: RunIdentity) -> Result<StackHandle, StackError> {
        todo!("stack helper {docker:?} {identity:?}")
    }

    /// The network's name.
    pub fn network(&self) -> &str {
        todo!("stack helper")
    }

    /// Create and start the service's container: on the run's network with the service name as
    /// alias, labelled, `ports` published on 127.0.0.1 (random host ports), `env` already rendered.
    /// Returns the container id. Does not wait for health.
    pub async fn start_service(
        &mut self,
        service: &Service,
        env: &BTreeMap<String, String>,
    ) -> Result<String, StackError> {
        todo!("stack helper {service:?} {env:?}")
    }

    /// The 127.0.0.1 host port currently published for a container port (looked up each time:
    /// it changes when the container restarts).
    pub async fn host_port(&self, service: &str, port: u16) -> Result<u16, StackError> {
        todo!("stack helper {service} {port}")
    }

    /// Run a command in the service's container.
    pub async fn exec(
        &self,
        service: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, StackError> {
        todo!("stack helper {service} {command:?} {timeout:?}")
    }

    /// Send a signal (`SIGKILL`, `SIGTERM`, `9`...).
    pub async fn kill(&self, service: &str, signal: &str) -> Result<(), StackError> {
        todo!("stack helper {service} {signal}")
    }

    /// Graceful stop with a grace period.
    pub async fn stop(&self, service: &str, timeout: Duration) -> Result<(), StackError> {
        todo!("stack helper {service} {timeout:?}")
    }

    /// Start a stopped container.
    pub async fn start(&self, service: &str) -> Result<(), StackError> {
        todo!("stack helper {service}")
    }

    /// Restart (stop with a 10 s grace, then start).
    pub async fn restart(&self, service: &str) -> Result<(), StackError> {
        todo!("stack helper {service}")
    }

    /// Freeze the container.
    pub async fn pause(&self, service: &str) -> Result<(), StackError> {
        todo!("stack helper {service}")
    }

    /// Thaw it.
    pub async fn unpause(&self, service: &str) -> Result<(), StackError> {
        todo!("stack helper {service}")
    }

    /// The container's state.
    pub async fn state(&self, service: &str) -> Result<ContainerState, StackError> {
        todo!("stack helper {service}")
    }

    /// The last `lines` lines of the container's stdout and stderr.
    pub async fn logs_tail(&self, service: &str, lines: usize) -> Result<String, StackError> {
        todo!("stack helper {service} {lines}")
    }

    /// Whether any log line so far contains `text` (for `log` health checks).
    pub async fn logs_contain(&self, service: &str, text: &str) -> Result<bool, StackError> {
        todo!("stack helper {service} {text}")
    }

    /// Docker's container events for this run (label filter), from now on, as a stream.
    pub fn events(
        &self,
    ) -> futures_util::stream::BoxStream<'static, Result<ContainerEvent, StackError>> {
        todo!("stack helper")
    }

    /// Remove every container and the network. `graceful`: stop containers with a short grace
    /// period first; otherwise kill at once (second Ctrl-C). With `keep`, leaves everything up.
    /// Idempotent; returns the first error after trying everything.
    pub async fn shutdown(self, graceful: bool) -> Result<(), StackError> {
        todo!("stack helper {graceful}")
    }
}
