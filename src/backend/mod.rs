//! The backend boundary: what the engine needs from whatever runs the stack, in firedrill's own
//! vocabulary (services, replicas, instances, a run scope, lifecycle events, faults and what
//! restores them), never in Docker's.
//!
//! A [`Backend`] is the place stacks run (the local Docker engine in [`crate::stack`], the
//! in-memory [`fake`] for engine tests and `--backend fake`); it prepares images, sweeps dead runs
//! and opens a [`RunScope`] per run. A scope is one run's private world: its services' instances,
//! the address containers reach the harness at, their lifecycle events, and the faults applied to
//! them. The engine (`src/engine/`) sees only these two traits and the types in this module.
//!
//! # Keys and instances
//! The engine names what it acts on by *key*: a service name (`api`), a replica (`api.2`), or a
//! helper the engine starts beside a service (`api.green`, `api.migrate`). A scope maps each key to
//! an *instance* (a container, on Docker) whose id changes when the key's instance is replaced. A
//! replicated service is a *group* of replica keys with a *rotation*: the replicas that receive
//! traffic. Every method that takes a service acts on every replica of a group (actions) or on one
//! replica in rotation, in turn (lookups such as [`RunScope::instance_id`]).

pub mod fake;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures_util::stream::BoxStream;

use crate::faults::{Recovered, Undo};
use crate::scenario::model::{FaultKind, ImageSource, PullPolicy, Service};

/// Who a run is: its id, its scenario, and whether it is kept after the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    /// Run id (`fd-` and 8 hex digits).
    pub run_id: String,
    /// Scenario name.
    pub scenario: String,
    /// `--keep`: leave the stack up after the run, and mark it so the sweep skips it.
    pub keep: bool,
}

/// What [`Backend::ensure_image`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    /// The image was already there.
    Present,
    /// It was built just now.
    Built,
    /// It was pulled just now, with this digest (`sha256:…`).
    Pulled {
        /// The registry's manifest digest.
        digest: String,
    },
}

/// Result of a command run inside an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Exit code (None if the backend did not report one).
    pub exit_code: Option<i64>,
    /// Combined stdout and stderr, lossy UTF-8, last 4 KiB.
    pub output: String,
}

/// An instance's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    /// Running (paused counts as running).
    pub running: bool,
    /// Paused (frozen).
    pub paused: bool,
    /// Exit code of the last exit.
    pub exit_code: Option<i64>,
    /// Killed by the out-of-memory killer.
    pub oom_killed: bool,
}

/// What happened to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lifecycle {
    /// It started.
    Started,
    /// Its process ended (for any reason, OOM included), with its exit code when known.
    Exited {
        /// Exit code.
        code: Option<i64>,
    },
    /// The out-of-memory killer killed a process in it.
    OomKilled,
    /// It was frozen.
    Paused,
    /// It was thawed.
    Unpaused,
    /// A signal was sent to it.
    Killed,
    /// It was stopped.
    Stopped,
    /// It was restarted.
    Restarted,
    /// Something else the backend reports, by the backend's own name.
    Other(String),
}

impl Lifecycle {
    /// The name the journal's `container-event` records (the journal format predates this type
    /// and keeps its words: `die` for an exit).
    pub fn journal_action(&self) -> &str {
        match self {
            Lifecycle::Started => "start",
            Lifecycle::Exited { .. } => "die",
            Lifecycle::OomKilled => "oom",
            Lifecycle::Paused => "pause",
            Lifecycle::Unpaused => "unpause",
            Lifecycle::Killed => "kill",
            Lifecycle::Stopped => "stop",
            Lifecycle::Restarted => "restart",
            Lifecycle::Other(name) => name,
        }
    }
}

/// A lifecycle event about an instance of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    /// The key the instance runs under.
    pub service: String,
    /// The instance's id (a key's instance changes when it is replaced).
    pub instance: String,
    /// What happened.
    pub what: Lifecycle,
}

/// A node of the cluster a scope runs on, as a node-level fault finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTarget {
    /// The backend's id of the node.
    pub id: String,
    /// Its hostname.
    pub name: String,
    /// Its availability now (`active`, `pause`, `drain`): what restores it.
    pub availability: String,
}

/// What a sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Names of instances removed.
    pub containers: Vec<String>,
    /// Names of run scopes (networks) removed.
    pub networks: Vec<String>,
    /// Names of volumes removed.
    pub volumes: Vec<String>,
}

/// Which runs a sweep removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepScope {
    /// Runs whose owner process is gone, except kept ones (start of every run, `firedrill gc`).
    Dead,
    /// One run, whatever its state (`firedrill gc --run ID`, used to remove a `--keep` stack).
    Run(String),
    /// Everything labelled as a run's except live runs (`firedrill gc --all`: also kept stacks).
    AllButLive,
}

/// What kind of trouble a backend operation ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The key or instance does not exist (any more).
    NotFound,
    /// The backend itself cannot be reached.
    Unavailable,
    /// An image is missing and may not be pulled.
    ImageMissing,
    /// The backend accepted a request but its orchestrator never carried it out (Swarm created
    /// no task for a service update): the environment's trouble, never a release's. The run
    /// stops with an error (exit 2) instead of judging the release.
    Stalled,
    /// Anything else.
    Other,
}

/// A backend operation failed. Carries the backend's own message and, when there is a likely
/// fix, a one-line hint for the user.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct BackendError {
    /// What kind of trouble.
    pub kind: BackendErrorKind,
    /// The backend's message, in one line.
    pub message: String,
    /// A one-line hint, when there is a likely fix.
    pub hint: Option<String>,
}

impl BackendError {
    /// An error of `kind` with `message` and no hint.
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        BackendError { kind, message: message.into(), hint: None }
    }

    /// The same error with a one-line hint for the user.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `NotFound` for `what`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        BackendError::new(
            BackendErrorKind::NotFound,
            format!("`{what}` is not running in this run"),
        )
    }

    /// Whether the key or instance does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == BackendErrorKind::NotFound
    }

    /// Whether the backend itself failed (unreachable, or its orchestrator stalled): nothing a
    /// release or a scenario did, so the step cannot be judged and the run stops with an error.
    pub fn is_environment(&self) -> bool {
        matches!(self.kind, BackendErrorKind::Unavailable | BackendErrorKind::Stalled)
    }
}

/// Where stacks run: prepares images, sweeps what dead runs left, opens one [`RunScope`] per run.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// A short name for messages (`docker`, `fake`).
    fn name(&self) -> &'static str;

    /// Revert the faults that dead runs' ledgers in `ledger_dir` say are still applied (before the
    /// sweep removes their stacks). A backend without durable faults returns nothing.
    async fn recover_faults(&self, ledger_dir: &Path) -> Vec<Recovered>;

    /// Refuse, before anything starts, faults this backend cannot apply here (a missing program,
    /// privilege or kernel feature), naming what is missing. Default: all can be applied.
    fn check_faults(&self, kinds: &[&FaultKind]) -> Result<(), BackendError> {
        let _ = kinds;
        Ok(())
    }

    /// Refuse, before anything starts, a `clock-skew` of `service` whose (ready) `image` cannot
    /// take the clock library's preload. Default: nothing to refuse.
    async fn check_clock_skew_image(&self, service: &str, image: &str) -> Result<(), BackendError> {
        let _ = (service, image);
        Ok(())
    }

    /// Remove what runs `scope` selects left behind.
    async fn sweep(&self, scope: SweepScope) -> Result<SweepReport, BackendError>;

    /// Make sure `source` can be started: present, pulled per `policy`, or built. `progress` gets
    /// human-readable lines (builder output).
    async fn ensure_image(
        &self,
        source: &ImageSource,
        policy: PullPolicy,
        progress: &mut (dyn for<'line> FnMut(&'line str) + Send),
    ) -> Result<ImageStatus, BackendError>;

    /// Open the run's private scope (its network, on Docker). Dropping the last reference to the
    /// scope without [`RunScope::shutdown`] removes what it created on a best-effort basis.
    async fn open_scope(&self, identity: RunIdentity) -> Result<Arc<dyn RunScope>, BackendError>;
}

/// One run's services and what the engine does to them. Every method takes `&self`: a scope is
/// shared by the engine's steps, health monitors, link proxies and traffic at once.
#[async_trait::async_trait]
pub trait RunScope: Send + Sync {
    /// The scope's name, for the journal (`network-created`).
    fn name(&self) -> String;

    /// The address on the host where a listener must bind for the run's services to reach it
    /// (links' proxies, notification sinks); `None` if the backend knows none.
    fn harness_address(&self) -> Option<IpAddr>;

    /// The host name the run's services reach the harness by (what `{{ sinks.X.host }}` renders).
    fn harness_host(&self) -> String;

    /// Lifecycle events of the run's instances, from now on.
    fn events(&self) -> BoxStream<'static, Result<LifecycleEvent, BackendError>>;

    /// Start `service` under its own name with the rendered environment; returns the instance id.
    async fn start_service(
        &self,
        service: &Service,
        env: &BTreeMap<String, String>,
    ) -> Result<String, BackendError>;

    /// Start one replica `key` of `service` (its image may differ from the replicas beside it),
    /// in rotation at once when `admit`, otherwise out of rotation until [`RunScope::admit`].
    async fn start_replica(
        &self,
        service: &Service,
        key: &str,
        env: &BTreeMap<String, String>,
        admit: bool,
    ) -> Result<String, BackendError>;

    /// Take replica `key` out of `service`'s rotation (it keeps serving what it has in flight).
    fn drain(&self, service: &str, key: &str);

    /// Put replica `key` into `service`'s rotation.
    async fn admit(&self, service: &str, key: &str) -> Result<(), BackendError>;

    /// The image `key` runs.
    async fn image_of(&self, key: &str) -> Result<String, BackendError>;

    /// Remove `key`'s instance at once (a one-shot helper that ended).
    async fn remove(&self, key: &str) -> Result<(), BackendError>;

    /// Stop `key` gracefully (its own stop signal, then `grace`), then remove it.
    async fn retire(&self, key: &str, grace: Duration) -> Result<(), BackendError>;

    /// Version swap, step 1: `candidate` starts answering to `service`'s name beside the current
    /// instance (new connections may reach either).
    async fn offer(&self, service: &str, candidate: &str) -> Result<(), BackendError>;

    /// Version swap, step 2: `candidate` becomes `service` (its key and rotation); the displaced
    /// instance keeps serving what it has in flight under the returned key (`SERVICE.blue`).
    async fn promote(&self, service: &str, candidate: &str) -> Result<String, BackendError>;

    /// Version swap, step 3: the displaced `key` stops answering to the service's name.
    async fn withdraw(&self, key: &str) -> Result<(), BackendError>;

    /// The published 127.0.0.1 port of `service`'s container `port` (one replica in rotation).
    async fn host_port(&self, service: &str, port: u16) -> Result<u16, BackendError>;

    /// The published 127.0.0.1 ports of `port` on every replica in rotation.
    async fn host_ports(&self, service: &str, port: u16) -> Result<Vec<u16>, BackendError>;

    /// Run `command` inside `key`'s instance, bounded by `timeout`.
    async fn exec(
        &self,
        key: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, BackendError>;

    /// Send `signal` (`SIGKILL`, `SIGTERM`, …).
    async fn kill(&self, service: &str, signal: &str) -> Result<(), BackendError>;
    /// Stop gracefully within `timeout`.
    async fn stop(&self, service: &str, timeout: Duration) -> Result<(), BackendError>;
    /// Start a stopped service again.
    async fn start(&self, service: &str) -> Result<(), BackendError>;
    /// Restart.
    async fn restart(&self, service: &str) -> Result<(), BackendError>;
    /// Freeze.
    async fn pause(&self, service: &str) -> Result<(), BackendError>;
    /// Thaw.
    async fn unpause(&self, service: &str) -> Result<(), BackendError>;

    /// The state of `key`'s instance.
    async fn state(&self, key: &str) -> Result<InstanceState, BackendError>;

    /// The last `lines` log lines of `key`.
    async fn logs_tail(&self, key: &str, lines: usize) -> Result<String, BackendError>;

    /// Whether `key`'s log contains `text`.
    async fn logs_contain(&self, key: &str, text: &str) -> Result<bool, BackendError>;

    /// A human-readable name of `key`'s instance (the container name, on Docker), for ledgers and
    /// messages.
    fn instance_name(&self, key: &str) -> String;

    /// The instance id of `key` (for a group: one replica in rotation, in turn).
    fn instance_id(&self, key: &str) -> Result<String, BackendError>;

    /// Every instance of `service` as `(key, instance id)`: its replicas, or itself.
    fn targets(&self, service: &str) -> Result<Vec<(String, String)>, BackendError>;

    /// The replica keys of a replicated service, `None` for a single one.
    fn replicas(&self, service: &str) -> Option<Vec<String>>;

    /// The replica keys in rotation.
    fn in_rotation(&self, service: &str) -> Vec<String>;

    /// A counter bumped whenever a replica enters or leaves a rotation or a key's instance is
    /// replaced (the traffic looks its ports up again when it moves).
    fn rotation_changes(&self) -> Arc<AtomicU64>;

    /// What restores `instance` after `kind` (call before [`RunScope::apply_fault`] and ledger it in
    /// between).
    async fn capture_fault(&self, kind: &FaultKind, instance: &str) -> Result<Undo, BackendError>;

    /// Apply `kind` to `instance`; returns what was done, for the journal.
    async fn apply_fault(&self, kind: &FaultKind, instance: &str) -> Result<String, BackendError>;

    /// Undo a fault on `instance`; returns what was done, for the journal.
    async fn revert_fault(&self, instance: &str, undo: &Undo) -> Result<String, BackendError>;

    /// Send `signal` to every process called `name` inside `instance`, except its main process;
    /// returns each one signalled as `PID command` (the PID inside the instance). A process
    /// matches when its command name, or the file name of its first or second command-line word,
    /// is `name`. `NotFound` when none matches.
    async fn kill_processes(
        &self,
        instance: &str,
        name: &str,
        signal: &str,
    ) -> Result<Vec<String>, BackendError> {
        let _ = (instance, name, signal);
        Err(BackendError::new(
            BackendErrorKind::Other,
            "killing a process by name is not supported by this backend",
        ))
    }

    /// The node `node` names (hostname or id), or the one the backend's endpoint runs on, with
    /// its availability (call before [`RunScope::set_node_availability`] and ledger it between).
    async fn node(&self, node: Option<&str>) -> Result<NodeTarget, BackendError> {
        let _ = node;
        Err(node_faults_unsupported())
    }

    /// Set node `id`'s availability (`active`, `pause`, `drain`) and carry out what follows for
    /// the run's instances (a drained node's tasks are shut down and asked for again; when it is
    /// active again, the keys get their new instances); returns what was done, for the journal.
    async fn set_node_availability(
        &self,
        id: &str,
        availability: &str,
    ) -> Result<String, BackendError> {
        let _ = (id, availability);
        Err(node_faults_unsupported())
    }

    /// Remove everything the scope created (`graceful`: stop with a short grace period first,
    /// otherwise kill at once); a kept run leaves everything up. Idempotent; returns the first
    /// error after trying everything.
    async fn shutdown(&self, graceful: bool) -> Result<(), BackendError>;
}

/// Node-level faults on a backend without nodes.
fn node_faults_unsupported() -> BackendError {
    BackendError::new(
        BackendErrorKind::Other,
        "node-level faults (`node-availability`) need the swarm backend",
    )
    .with_hint("run with `--backend swarm` or `backend: swarm`")
}

/// A shared backend is a backend: one connection can serve many rehearsals (the CLI's runs, a test
/// suite's).
#[async_trait::async_trait]
impl<B: Backend + ?Sized> Backend for Arc<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    async fn recover_faults(&self, ledger_dir: &Path) -> Vec<Recovered> {
        (**self).recover_faults(ledger_dir).await
    }

    fn check_faults(&self, kinds: &[&FaultKind]) -> Result<(), BackendError> {
        (**self).check_faults(kinds)
    }

    async fn check_clock_skew_image(&self, service: &str, image: &str) -> Result<(), BackendError> {
        (**self).check_clock_skew_image(service, image).await
    }

    async fn sweep(&self, scope: SweepScope) -> Result<SweepReport, BackendError> {
        (**self).sweep(scope).await
    }

    async fn ensure_image(
        &self,
        source: &ImageSource,
        policy: PullPolicy,
        progress: &mut (dyn for<'line> FnMut(&'line str) + Send),
    ) -> Result<ImageStatus, BackendError> {
        (**self).ensure_image(source, policy, progress).await
    }

    async fn open_scope(&self, identity: RunIdentity) -> Result<Arc<dyn RunScope>, BackendError> {
        (**self).open_scope(identity).await
    }
}
