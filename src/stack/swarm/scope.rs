//! [`SwarmScope`]: one run on a swarm: an attachable overlay network, one Swarm service per key,
//! and the engine's operations mapped onto Swarm's (see the table in `docs/kubernetes.md` and
//! the README's "Backends").
//!
//! | engine | Swarm |
//! |---|---|
//! | `start_service`, `start_replica` (new key) | `service create` (1 replica, dnsrr, host-mode ports) |
//! | the same on a key that runs | `service update` with `update_config`; back to the spec before it: Swarm's own rollback (`rollback=previous`) |
//! | `stop`, `kill`, `pause`, `unpause`, faults | on the task's container, on its node (restart policy `none`: Swarm does not replace it) |
//! | `start`, `restart` | `service update --force`: Swarm starts a fresh task |
//! | `drain`, `admit` | host-side rotation only (a replica's alias is on the overlay from its start) |
//! | `retire`, `remove` | stop the task's container gracefully, `service rm` |
//! | `offer`, `promote`, `withdraw` (blue-green) | not supported yet: an overlay alias cannot move between running tasks |

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use indexmap::IndexMap;
use testcontainers::bollard;
use testcontainers::bollard::models::{NetworkCreateRequest, ServiceSpec, Task, TaskState};
use testcontainers::bollard::query_parameters::{
    EventsOptionsBuilder, KillContainerOptionsBuilder, ListTasksOptionsBuilder,
    StopContainerOptionsBuilder, UpdateServiceOptionsBuilder,
};

use super::failed;
use super::membership::{Origin, ensure_swarm, leave_if_idle};
use super::ops::{self, lock};
use super::spec::{Placement, UPDATE_MONITOR, same_task, service_spec, swarm_name};
use super::sweep::wait_containers_gone;
use super::tasks;
use crate::backend::{
    BackendError, BackendErrorKind, ExecOutcome, InstanceState, Lifecycle, LifecycleEvent,
    NodeTarget, RunIdentity,
};
use crate::clock::{self, Clock};
use crate::faults::Undo;
use crate::owner::current_owner;
use crate::scenario::model::{FaultKind, Service};
use crate::stack::remove::{remove_container, remove_network};
use crate::stack::volume::remove_run_volumes;
use crate::stack::{Docker, HARNESS_HOST, labels, network_name};

/// How long a new task may take to get a container (scheduling, image, create).
const TASK_DEADLINE: Duration = Duration::from_secs(60);

/// How long after an update Swarm may take to create its task (a store write, normally within
/// milliseconds) before the update counts as dropped and a fresh task is asked for again.
const NO_TASK_LIMIT: Duration = Duration::from_secs(10);

/// How often an update Swarm refused as out of sequence is made again.
const OUT_OF_SEQUENCE_RETRIES: u32 = 3;

/// How long an update waits for Swarm to catch up with the end of the key's task.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);

/// How long the removal of the overlay waits for Swarm to release its endpoints.
const OVERLAY_RELEASE: Duration = Duration::from_secs(10);

/// Beyond `update_config.monitor`: how long Swarm may take to report an update's end.
const SETTLE_MARGIN: Duration = Duration::from_secs(3);

/// Grace period of a graceful shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// One run on a swarm. Remove with `shutdown`; dropping it without doing so removes its
/// services and network on a best-effort basis, and leaves a swarm firedrill initialised once
/// nothing is left on it.
#[must_use = "a scope must be shut down, or its services outlive the run"]
#[derive(Debug)]
pub struct SwarmScope {
    docker: Docker,
    identity: RunIdentity,
    run_labels: HashMap<String, String>,
    network_id: String,
    network_name: String,
    harness: Option<IpAddr>,
    origin: Origin,
    /// Placement constraints of every service (`node.role == manager` by default: the harness
    /// reaches host-mode ports on this node's loopback).
    constraints: Vec<String>,
    registry: Mutex<Registry>,
    /// Swarm service name → key, for the event stream.
    names: Arc<Mutex<HashMap<String, String>>>,
    next_replica: AtomicUsize,
    rotation_changes: Arc<AtomicU64>,
    exec_gates: Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    finished: AtomicBool,
}

#[derive(Debug, Default)]
struct Registry {
    keys: IndexMap<String, Entry>,
    groups: HashMap<String, Group>,
}

#[derive(Debug, Clone)]
struct Entry {
    service_id: String,
    /// The current task's container (`None` until it has one).
    container: Option<String>,
    /// The spec last applied, and the one before it (what Swarm's rollback returns to).
    spec: ServiceSpec,
    previous: Option<ServiceSpec>,
    /// A fresh task was asked for while its node was drained: the task ids from before, until
    /// the new task has a container (see `set_node_availability`).
    awaiting: Option<HashSet<String>>,
}

#[derive(Debug, Default)]
struct Group {
    keys: Vec<String>,
    out: HashSet<String>,
}

impl Group {
    fn serving(&self) -> Vec<&str> {
        self.keys.iter().filter(|key| !self.out.contains(*key)).map(String::as_str).collect()
    }
}

impl SwarmScope {
    /// Join (or initialise) the swarm and create the run's overlay network.
    pub async fn create(
        docker: &Docker,
        identity: RunIdentity,
    ) -> Result<SwarmScope, BackendError> {
        let client = docker.client();
        let origin = ensure_swarm(client).await?;
        let run_labels = HashMap::from([
            (labels::RUN.to_owned(), identity.run_id.clone()),
            (labels::SCENARIO.to_owned(), identity.scenario.clone()),
            (labels::OWNER.to_owned(), current_owner().to_owned()),
            (labels::KEEP.to_owned(), identity.keep.to_string()),
        ]);
        let name = network_name(&identity.run_id);
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("overlay".to_owned()),
            attachable: Some(true),
            labels: Some(run_labels.clone()),
            ..Default::default()
        };
        let created = match client.create_network(request).await {
            Ok(created) => created,
            Err(error) => {
                if origin == Origin::Initialised {
                    let _ = leave_if_idle(client, None).await;
                }
                return Err(failed("create the overlay network", "-")(error));
            }
        };
        // Containers of swarm tasks reach the host through `docker_gwbridge`.
        let harness = match client.inspect_network("docker_gwbridge", None).await {
            Ok(inspect) => inspect
                .ipam
                .and_then(|ipam| ipam.config)
                .unwrap_or_default()
                .iter()
                .filter_map(|config| config.gateway.as_deref()?.parse::<IpAddr>().ok())
                .find(IpAddr::is_ipv4),
            Err(_) => None,
        };
        Ok(SwarmScope {
            docker: docker.clone(),
            identity,
            run_labels,
            network_id: created.id,
            network_name: name,
            harness,
            origin,
            constraints: vec!["node.role == manager".to_owned()],
            registry: Mutex::default(),
            names: Arc::default(),
            next_replica: AtomicUsize::new(0),
            rotation_changes: Arc::new(AtomicU64::new(0)),
            exec_gates: Mutex::default(),
            finished: AtomicBool::new(false),
        })
    }

    /// Whether this run initialised the swarm.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    fn client(&self) -> &bollard::Docker {
        self.docker.client()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    /// The key's current container (for a group: one replica in rotation, in turn).
    fn container_of(&self, key: &str) -> Result<String, BackendError> {
        let registry = self.registry();
        let key = match registry.groups.get(key) {
            Some(group) => {
                let serving = group.serving();
                let pick = serving
                    .get(self.next_replica.fetch_add(1, Ordering::Relaxed) % serving.len().max(1));
                *pick.ok_or_else(|| {
                    BackendError::new(
                        BackendErrorKind::Other,
                        format!("no replica of `{key}` is in rotation"),
                    )
                })?
            }
            None => key,
        };
        registry
            .keys
            .get(key)
            .and_then(|entry| entry.container.clone())
            .ok_or_else(|| BackendError::not_found(key))
    }

    /// Every key an action on `service` applies to, with its container.
    fn target_list(&self, service: &str) -> Result<Vec<(String, String)>, BackendError> {
        let registry = self.registry();
        let keys = match registry.groups.get(service) {
            Some(group) => group.keys.clone(),
            None => vec![service.to_owned()],
        };
        keys.into_iter()
            .map(|key| {
                let id = registry
                    .keys
                    .get(&key)
                    .and_then(|entry| entry.container.clone())
                    .ok_or_else(|| BackendError::not_found(&key))?;
                Ok((key, id))
            })
            .collect()
    }

    fn exec_gate(&self, id: &str) -> Arc<tokio::sync::RwLock<()>> {
        Arc::clone(lock(&self.exec_gates).entry(id.to_owned()).or_default())
    }

    fn set_rotation(&self, service: &str, key: &str, serving: bool) {
        let mut registry = self.registry();
        if let Some(group) = registry.groups.get_mut(service) {
            let changed =
                if serving { group.out.remove(key) } else { group.out.insert(key.to_owned()) };
            if changed {
                self.rotation_changes.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Create key `key`'s Swarm service, or update it to `service`'s definition (Swarm replaces
    /// its task per `update_config`); wait for the new task's container. Returns its id.
    async fn deploy(
        &self,
        service: &Service,
        key: &str,
        env: &BTreeMap<String, String>,
        aliases: Vec<String>,
    ) -> Result<String, BackendError> {
        if let Some(option) = super::spec::tmpfs_unsupported(service) {
            return Err(BackendError {
                kind: BackendErrorKind::Other,
                message: format!(
                    "service `{key}`: tmpfs option `{option}` cannot be given to a Swarm mount \
                     (only `size` and `mode`)"
                ),
                hint: Some(
                    "drop the option, or run this scenario with `--backend docker`".to_owned(),
                ),
            });
        }
        let place = Placement {
            run_labels: &self.run_labels,
            key,
            network: &self.network_id,
            aliases,
            harness: self.harness,
            constraints: self.constraints.clone(),
        };
        let spec = service_spec(&self.identity.run_id, service, env, &place);
        let existing = self.registry().keys.get(key).cloned();
        let client = self.client();
        if let Some(entry) = &existing {
            self.before_update(entry, key).await;
        }
        let rollback_to_previous = existing
            .as_ref()
            .and_then(|e| e.previous.as_ref())
            .is_some_and(|p| same_task(p, &spec));
        let known = match &existing {
            Some(entry) => self.task_ids(&entry.service_id, key).await?,
            None => HashSet::new(),
        };
        let (service_id, old_container) = match existing {
            None => {
                let created = client
                    .create_service(spec.clone(), None)
                    .await
                    .map_err(failed("create service", key))?;
                let id = created.id.unwrap_or_default();
                self.registry().keys.insert(
                    key.to_owned(),
                    Entry {
                        service_id: id.clone(),
                        container: None,
                        spec,
                        previous: None,
                        awaiting: None,
                    },
                );
                lock(&self.names).insert(swarm_name(&self.identity.run_id, key), key.to_owned());
                (id, None)
            }
            Some(entry) => {
                // Back to the spec before the last update: Swarm's own rollback.
                let rollback = entry.previous.as_ref().is_some_and(|p| same_task(p, &spec));
                let operation = if rollback { "roll back service" } else { "update service" };
                self.update_service(&entry.service_id, key, operation, rollback, |current| {
                    let force = current.spec.and_then(|spec| spec.task_template?.force_update);
                    let mut body = spec.clone();
                    if let Some(template) = body.task_template.as_mut() {
                        // Always a fresh task, also when the spec is the running one (a start
                        // after a stop, a rollback before the new version ever started): the
                        // engine expects a new instance. (The daemon's spec carries defaults ours
                        // does not, so "is it the same" is not asked of it.)
                        template.force_update = Some(force.unwrap_or(0) + 1);
                    }
                    body
                })
                .await?;
                if let Some(stored) = self.registry().keys.get_mut(key) {
                    stored.previous = Some(stored.spec.clone());
                    stored.spec = spec;
                }
                (entry.service_id, entry.container)
            }
        };
        let container =
            self.wait_for_task(&service_id, key, known, old_container.as_deref()).await?;
        if let Some(entry) = self.registry().keys.get_mut(key) {
            entry.container = Some(container.clone());
        }
        self.rotation_changes.fetch_add(1, Ordering::Release);
        if rollback_to_previous {
            // A rollback ends when Swarm says so (`rollback_completed` once the task ran for
            // `monitor`): whatever comes next on this key (another release, the teardown)
            // would otherwise supersede it before Swarm reports it, and the journal would show
            // a rollback only sometimes.
            let limit = service.startup_timeout + UPDATE_MONITOR + SETTLE_MARGIN;
            self.settle_update(&service_id, key, limit).await;
        }
        Ok(container)
    }

    /// Before a key's next update (or forced task). If its container no longer runs (firedrill
    /// stopped it for the replacement, or the release crashed): first, while Swarm's last update
    /// of it is still `updating` (a release that crashed), wait (bounded) for Swarm to notice
    /// and apply its `failure_action` (`paused`) — firedrill sees the exit within a millisecond,
    /// Swarm's updater when the node reports it, and `update-paused` would be journaled only when
    /// Swarm wins. Then, in every case, wait (bounded) until Swarm's orchestrator has caught up
    /// with the end of the task (see `tasks.rs`): an update that reaches Swarm before that races
    /// its restart supervisor, and Swarm may drop it without creating a task.
    async fn before_update(&self, entry: &Entry, key: &str) {
        let ended = match entry.container.as_deref() {
            Some(container) => {
                let running =
                    ops::state(self.client(), container, key).await.is_ok_and(|s| s.running);
                (!running).then_some(container)
            }
            None => None,
        };
        if ended.is_some() {
            self.settle_update(&entry.service_id, key, UPDATE_MONITOR + SETTLE_MARGIN).await;
        }
        let started = clock::instant_now();
        loop {
            match self.tasks_of(&entry.service_id, key).await {
                Ok(tasks) if !tasks::caught_up(&tasks, ended) => {}
                // Caught up, or the list failed (the update that follows says why).
                _ => return,
            }
            if clock::instant_now().duration_since(started) >= CATCH_UP_LIMIT {
                // Go on: `wait_for_task` asks again if Swarm drops the update.
                tracing::warn!(key, "Swarm has not caught up with the end of the task");
                return;
            }
            clock::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until Swarm's update of `service_id` is no longer in progress (`updating`,
    /// `rollback_started`), at most `limit`; returns the state it ended in (empty when there
    /// was no update). Past the limit the caller goes on: firedrill's own checks judge.
    async fn settle_update(&self, service_id: &str, key: &str, limit: Duration) -> String {
        use testcontainers::bollard::models::ServiceUpdateStatusStateEnum as State;
        let started = clock::instant_now();
        loop {
            let state = match self.client().inspect_service(service_id, None).await {
                Ok(service) => service.update_status.and_then(|status| status.state),
                Err(error) => {
                    tracing::debug!(%error, key, "inspecting a service's update failed");
                    return String::new();
                }
            };
            let settled = !matches!(state, Some(State::UPDATING | State::ROLLBACK_STARTED));
            if settled || clock::instant_now().duration_since(started) >= limit {
                return state.map(|s| s.to_string()).unwrap_or_default();
            }
            clock::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every task of `service_id` Swarm lists (its history included).
    async fn tasks_of(&self, service_id: &str, key: &str) -> Result<Vec<Task>, BackendError> {
        let filters = HashMap::from([("service", vec![service_id.to_owned()])]);
        self.client()
            .list_tasks(Some(ListTasksOptionsBuilder::new().filters(&filters).build()))
            .await
            .map_err(failed("list tasks", key))
    }

    /// The ids of `service_id`'s tasks so far (before an update: what is not new).
    async fn task_ids(&self, service_id: &str, key: &str) -> Result<HashSet<String>, BackendError> {
        Ok(self.tasks_of(service_id, key).await?.into_iter().filter_map(|task| task.id).collect())
    }

    /// Wait until a task of `service_id` that is not in `known` has a container other than
    /// `old`; such a task that Swarm rejects (no such image, no suitable node) or that fails
    /// before it has a container is an error with Swarm's reason. If Swarm has created no task
    /// at all [`NO_TASK_LIMIT`] after the update (its updater dropped it, see `tasks.rs`), a
    /// fresh task is asked for once more. Nothing within [`TASK_DEADLINE`]: Swarm stalled, an
    /// error of kind [`BackendErrorKind::Stalled`] (the run stops; the release is not judged).
    async fn wait_for_task(
        &self,
        service_id: &str,
        key: &str,
        mut known: HashSet<String>,
        old: Option<&str>,
    ) -> Result<String, BackendError> {
        let started = clock::instant_now();
        let mut asked_again = false;
        let mut last_message = String::from("Swarm created no task");
        loop {
            let tasks = self.tasks_of(service_id, key).await?;
            let elapsed = clock::instant_now().duration_since(started);
            match tasks::newest_new(&tasks, &known) {
                Some(task) => {
                    if let Some(id) = tasks::container_of(task)
                        && Some(id) != old
                    {
                        return Ok(id.to_owned());
                    }
                    let status = task.status.clone().unwrap_or_default();
                    if matches!(status.state, Some(TaskState::REJECTED | TaskState::FAILED)) {
                        let reason = status.err.unwrap_or_default();
                        let kind = if reason.contains("No such image") {
                            BackendErrorKind::ImageMissing
                        } else {
                            BackendErrorKind::Other
                        };
                        return Err(BackendError::new(
                            kind,
                            format!("Swarm could not start a task of `{key}`: {reason}"),
                        ));
                    }
                    last_message = format!(
                        "its task is `{}`: {}",
                        status.state.map(|s| s.to_string()).unwrap_or_default(),
                        status.message.unwrap_or_default()
                    );
                }
                None if !asked_again && elapsed >= NO_TASK_LIMIT => {
                    tracing::warn!(key, "Swarm created no task for the update: asking again");
                    asked_again = true;
                    last_message = "Swarm created no task, also when asked again".to_owned();
                    let (_, before) = self.force_new_task(key).await?;
                    known.extend(before);
                }
                None => {}
            }
            if elapsed >= TASK_DEADLINE {
                return Err(stalled(key, &last_message));
            }
            clock::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Force a fresh task of `key` (Swarm's `service update --force`).
    async fn redeploy(&self, key: &str) -> Result<(), BackendError> {
        let (entry, known) = self.force_new_task(key).await?;
        let container =
            self.wait_for_task(&entry.service_id, key, known, entry.container.as_deref()).await?;
        if let Some(stored) = self.registry().keys.get_mut(key) {
            stored.container = Some(container);
        }
        self.rotation_changes.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Ask Swarm for a fresh task of `key`; returns its entry and the task ids from before.
    async fn force_new_task(&self, key: &str) -> Result<(Entry, HashSet<String>), BackendError> {
        let entry =
            self.registry().keys.get(key).cloned().ok_or_else(|| BackendError::not_found(key))?;
        self.before_update(&entry, key).await;
        let known = self.task_ids(&entry.service_id, key).await?;
        self.update_service(&entry.service_id, key, "force a new task", false, |current| {
            let mut spec = current.spec.unwrap_or_default();
            if let Some(template) = spec.task_template.as_mut() {
                template.force_update = Some(template.force_update.unwrap_or(0) + 1);
            }
            spec
        })
        .await?;
        // Swarm's previous spec is now the one before the forced update: the same task. A
        // rollback (`rollback=previous`) from here goes back to it, not to the version before.
        if let Some(stored) = self.registry().keys.get_mut(key) {
            stored.previous = Some(stored.spec.clone());
        }
        Ok((entry, known))
    }

    /// `service update` of `service_id` with the body `body` makes of the service as it is now,
    /// at the version of that inspect (Swarm's optimistic lock); with `rollback`, Swarm's own
    /// rollback (`rollback=previous`: Swarm then applies its previous spec, not the body). Swarm
    /// writes the service itself (its updater records `paused`, `completed`): one that lands
    /// between the inspect and the update makes Swarm refuse it ("update out of sequence"), so
    /// the update is made again from a fresh inspect, at most [`OUT_OF_SEQUENCE_RETRIES`] times.
    async fn update_service<F>(
        &self,
        service_id: &str,
        key: &str,
        operation: &'static str,
        rollback: bool,
        body: F,
    ) -> Result<(), BackendError>
    where
        F: Fn(testcontainers::bollard::models::Service) -> ServiceSpec,
    {
        let client = self.client();
        let mut retries = 0;
        loop {
            let current = client
                .inspect_service(service_id, None)
                .await
                .map_err(failed("inspect service", key))?;
            let version = current.version.as_ref().and_then(|v| v.index).unwrap_or_default();
            let mut options = UpdateServiceOptionsBuilder::new()
                .version(i32::try_from(version).unwrap_or(i32::MAX));
            if rollback {
                options = options.rollback("previous");
            }
            match client.update_service(service_id, body(current), options.build(), None).await {
                Err(error)
                    if retries < OUT_OF_SEQUENCE_RETRIES
                        && error.to_string().contains("update out of sequence") =>
                {
                    retries += 1;
                    tracing::debug!(key, "Swarm wrote the service meanwhile: updating again");
                }
                result => return result.map(|_| ()).map_err(failed(operation, key)),
            }
        }
    }

    /// The keys whose current task is placed on node `node_id`.
    async fn keys_on_node(&self, node_id: &str) -> Result<Vec<String>, BackendError> {
        let entries: Vec<(String, String)> = self
            .registry()
            .keys
            .iter()
            .map(|(key, entry)| (key.clone(), entry.service_id.clone()))
            .collect();
        let filters = HashMap::from([
            ("node", vec![node_id.to_owned()]),
            ("desired-state", vec!["running".to_owned()]),
        ]);
        let tasks = self
            .client()
            .list_tasks(Some(ListTasksOptionsBuilder::new().filters(&filters).build()))
            .await
            .map_err(failed("list tasks", "-"))?;
        Ok(entries
            .into_iter()
            .filter(|(_, service)| tasks.iter().any(|t| t.service_id.as_deref() == Some(service)))
            .map(|(key, _)| key)
            .collect())
    }

    /// The node a node-level fault acts on.
    pub(super) async fn node(&self, node: Option<&str>) -> Result<NodeTarget, BackendError> {
        super::find_node(self.client(), node).await
    }

    /// Set node `id`'s availability. `drain`: Swarm shuts down the node's tasks; with restart
    /// policy `none` it does not replace them on its own, so each affected key is asked for a
    /// fresh task (placed on another node, or pending while none can take it). Back to `active`
    /// (or `pause`): every key that waits for a task gets its new container.
    pub(super) async fn set_node_availability(
        &self,
        id: &str,
        availability: &str,
    ) -> Result<String, BackendError> {
        let client = self.client();
        let affected =
            if availability == "drain" { self.keys_on_node(id).await? } else { Vec::new() };
        super::set_availability(client, id, availability)
            .await
            .map_err(failed("set the availability of node", id))?;
        if availability == "drain" {
            let mut asked = Vec::new();
            for key in &affected {
                self.wait_task_shut_down(key).await?;
                let (_, known) = self.force_new_task(key).await?;
                if let Some(entry) = self.registry().keys.get_mut(key) {
                    entry.awaiting = Some(known);
                }
                asked.push(self.new_task_state(key).await?);
            }
            return Ok(if asked.is_empty() {
                "drained: no task of the run was on it".to_owned()
            } else {
                format!("drained: tasks shut down, fresh ones asked for ({})", asked.join(", "))
            });
        }
        let waiting: Vec<(String, Entry)> = self
            .registry()
            .keys
            .iter()
            .filter(|(_, entry)| entry.awaiting.is_some())
            .map(|(key, entry)| (key.clone(), entry.clone()))
            .collect();
        let mut placed = Vec::new();
        for (key, entry) in waiting {
            let known = entry.awaiting.clone().unwrap_or_default();
            let container = self
                .wait_for_task(&entry.service_id, &key, known, entry.container.as_deref())
                .await?;
            if let Some(stored) = self.registry().keys.get_mut(&key) {
                stored.container = Some(container);
                stored.awaiting = None;
            }
            self.rotation_changes.fetch_add(1, Ordering::Release);
            placed.push(key);
        }
        Ok(if placed.is_empty() {
            format!("availability {availability}")
        } else {
            format!(
                "availability {availability}: new tasks of {} have containers",
                placed.join(", ")
            )
        })
    }

    /// Wait (bounded) until `key`'s current container no longer runs (Swarm shutting it down).
    async fn wait_task_shut_down(&self, key: &str) -> Result<(), BackendError> {
        let Some(container) = self.registry().keys.get(key).and_then(|e| e.container.clone())
        else {
            return Ok(());
        };
        let started = clock::instant_now();
        loop {
            match ops::state(self.client(), &container, key).await {
                Ok(state) if state.running => {}
                _ => return Ok(()),
            }
            if clock::instant_now().duration_since(started) >= TASK_DEADLINE {
                return Err(BackendError::new(
                    BackendErrorKind::Other,
                    format!("Swarm did not shut down the task of `{key}` on the drained node"),
                ));
            }
            clock::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `KEY: STATE (MESSAGE)` of the newest task of `key` not among those it awaits past.
    async fn new_task_state(&self, key: &str) -> Result<String, BackendError> {
        let Some(entry) = self.registry().keys.get(key).cloned() else {
            return Ok(format!("{key}: gone"));
        };
        let known = entry.awaiting.unwrap_or_default();
        // The new task appears within a moment of the update.
        let started = clock::instant_now();
        loop {
            let tasks = self.tasks_of(&entry.service_id, key).await?;
            if let Some(task) = tasks::newest_new(&tasks, &known) {
                let status = task.status.clone().unwrap_or_default();
                let state = status.state.map(|s| s.to_string()).unwrap_or_default();
                let message = status.err.or(status.message).unwrap_or_default();
                return Ok(format!("{key}: {state} ({message})"));
            }
            if clock::instant_now().duration_since(started) >= Duration::from_secs(5) {
                return Ok(format!("{key}: no new task yet"));
            }
            clock::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop `key`'s container gracefully (when `grace`), then remove its Swarm service.
    async fn remove_key(&self, key: &str, grace: Option<Duration>) -> Result<(), BackendError> {
        let entry = self.registry().keys.get(key).cloned();
        let Some(entry) = entry else { return Ok(()) };
        if let (Some(grace), Some(container)) = (grace, entry.container.as_deref()) {
            let _ = remove_container(self.client(), container, Some(grace)).await;
        }
        match self.client().delete_service(&entry.service_id).await {
            Ok(()) => {}
            Err(error) if crate::stack::error::is_status(&error, 404) => {}
            Err(error) => return Err(failed("remove service", key)(error)),
        }
        let mut registry = self.registry();
        registry.keys.shift_remove(key);
        for group in registry.groups.values_mut() {
            group.keys.retain(|k| k != key);
            group.out.remove(key);
        }
        drop(registry);
        self.rotation_changes.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Run `action` on every container `service` names, concurrently; the first error wins.
    async fn each<F, Fut>(
        &self,
        service: &str,
        operation: &'static str,
        action: F,
    ) -> Result<(), BackendError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<(), bollard::errors::Error>>,
    {
        let targets = self.target_list(service)?;
        let results = futures_util::future::join_all(targets.into_iter().map(|(key, id)| {
            let done = action(id);
            async move { done.await.map_err(failed(operation, &key)) }
        }))
        .await;
        results.into_iter().collect()
    }

    pub(super) fn name(&self) -> &str {
        &self.network_name
    }

    pub(super) fn harness(&self) -> Option<IpAddr> {
        self.harness
    }

    pub(super) fn events(&self) -> BoxStream<'static, Result<LifecycleEvent, BackendError>> {
        let now = clock::SystemClock::start().wall();
        let since = format!("{}.{:09}", now.as_second(), now.subsec_nanosecond());
        let client = self.client().clone();
        let containers = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("label", vec![format!("{}={}", labels::RUN, self.identity.run_id)]),
        ]);
        let container_events = client
            .events(Some(EventsOptionsBuilder::new().since(&since).filters(&containers).build()))
            .filter_map(|message| async move {
                let message = match message {
                    Ok(message) => message,
                    Err(error) => return Some(Err(failed("watch events", "-")(error))),
                };
                let action = message.action?;
                if action.starts_with("exec_") {
                    return None;
                }
                let actor = message.actor.unwrap_or_default();
                let attributes = actor.attributes.unwrap_or_default();
                let service = attributes.get(labels::SERVICE)?.clone();
                let exit_code = attributes.get("exitCode").and_then(|code| code.parse().ok());
                let what = match action.as_str() {
                    "start" => Lifecycle::Started,
                    "die" => Lifecycle::Exited { code: exit_code },
                    "oom" => Lifecycle::OomKilled,
                    "pause" => Lifecycle::Paused,
                    "unpause" => Lifecycle::Unpaused,
                    "kill" => Lifecycle::Killed,
                    "stop" => Lifecycle::Stopped,
                    "restart" => Lifecycle::Restarted,
                    _ => Lifecycle::Other(action),
                };
                Some(Ok(LifecycleEvent { service, instance: actor.id.unwrap_or_default(), what }))
            });
        // Swarm's own view of an update (`updating`, `completed`, `paused`, `rollback_started`,
        // `rollback_completed`), per key.
        let services = HashMap::from([("type", vec!["service".to_owned()])]);
        let names = Arc::clone(&self.names);
        let service_events = client
            .events(Some(EventsOptionsBuilder::new().since(&since).filters(&services).build()))
            .filter_map(move |message| {
                let names = Arc::clone(&names);
                async move {
                    let message = message.ok()?;
                    let actor = message.actor.unwrap_or_default();
                    let attributes = actor.attributes.unwrap_or_default();
                    let key = lock(&names).get(attributes.get("name")?).cloned()?;
                    let state = attributes.get("updatestate.new")?;
                    Some(Ok(LifecycleEvent {
                        service: key,
                        instance: actor.id.unwrap_or_default(),
                        what: Lifecycle::Other(format!("swarm-update-{state}")),
                    }))
                }
            });
        futures_util::stream::select(container_events, service_events).boxed()
    }

    pub(super) async fn start_key(
        &self,
        service: &Service,
        key: &str,
        env: &BTreeMap<String, String>,
        in_rotation: bool,
        replica: bool,
    ) -> Result<String, BackendError> {
        if replica {
            {
                let mut registry = self.registry();
                let group = registry.groups.entry(service.name.clone()).or_default();
                if !group.keys.iter().any(|k| k == key) {
                    group.keys.push(key.to_owned());
                }
                group.out.insert(key.to_owned());
            }
            self.rotation_changes.fetch_add(1, Ordering::Release);
            // The service's name is on every replica from its start: changing a task's aliases
            // means a new task. Until admitted, only the harness keeps it out of rotation.
            let aliases = vec![service.name.clone(), key.to_owned()];
            let id = self.deploy(service, key, env, aliases).await?;
            if in_rotation {
                self.set_rotation(&service.name, key, true);
            }
            Ok(id)
        } else {
            self.deploy(service, key, env, vec![key.to_owned()]).await
        }
    }

    pub(super) fn drain(&self, service: &str, key: &str) {
        self.set_rotation(service, key, false);
    }

    pub(super) fn admit(&self, service: &str, key: &str) -> Result<(), BackendError> {
        self.container_of(key)?;
        self.set_rotation(service, key, true);
        Ok(())
    }

    pub(super) async fn image_of(&self, key: &str) -> Result<String, BackendError> {
        let id = self.container_of(key)?;
        let inspect = self
            .client()
            .inspect_container(&id, None)
            .await
            .map_err(failed("inspect container", key))?;
        Ok(inspect.config.and_then(|config| config.image).unwrap_or_default())
    }

    pub(super) async fn remove(&self, key: &str) -> Result<(), BackendError> {
        self.remove_key(key, None).await
    }

    pub(super) async fn retire(&self, key: &str, grace: Duration) -> Result<(), BackendError> {
        self.remove_key(key, Some(grace)).await
    }

    pub(super) async fn host_port(&self, service: &str, port: u16) -> Result<u16, BackendError> {
        let id = self.container_of(service)?;
        ops::host_port(self.client(), &id, service, port).await
    }

    pub(super) async fn host_ports(
        &self,
        service: &str,
        port: u16,
    ) -> Result<Vec<u16>, BackendError> {
        if !self.registry().groups.contains_key(service) {
            return self.host_port(service, port).await.map(|port| vec![port]);
        }
        let mut ports = Vec::new();
        let mut last_error = None;
        for key in self.in_rotation(service) {
            match self.host_port(&key, port).await {
                Ok(port) => ports.push(port),
                Err(error) => last_error = Some(error),
            }
        }
        match (ports.is_empty(), last_error) {
            (true, Some(error)) => Err(error),
            _ => Ok(ports),
        }
    }

    pub(super) async fn exec(
        &self,
        key: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, BackendError> {
        let id = self.container_of(key)?;
        let gate = self.exec_gate(&id);
        ops::exec(self.client(), gate, id, key, command, timeout).await
    }

    pub(super) async fn kill(&self, service: &str, signal: &str) -> Result<(), BackendError> {
        let client = self.client();
        self.each(service, "kill container", |id| async move {
            let options = KillContainerOptionsBuilder::new().signal(signal).build();
            client.kill_container(&id, Some(options)).await
        })
        .await
    }

    pub(super) async fn stop(&self, service: &str, timeout: Duration) -> Result<(), BackendError> {
        let seconds = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        let seconds = i32::try_from(seconds).unwrap_or(i32::MAX);
        let client = self.client();
        self.each(service, "stop container", |id| async move {
            let options = StopContainerOptionsBuilder::new().t(seconds).build();
            client.stop_container(&id, Some(options)).await
        })
        .await
    }

    /// A stopped task does not come back in Swarm (its restart policy is `none`): a start asks
    /// Swarm for a fresh task of every key.
    pub(super) async fn start(&self, service: &str) -> Result<(), BackendError> {
        let keys: Vec<String> =
            self.target_list(service)?.into_iter().map(|(key, _)| key).collect();
        let results =
            futures_util::future::join_all(keys.iter().map(|key| self.redeploy(key))).await;
        results.into_iter().collect()
    }

    pub(super) async fn pause(&self, service: &str, frozen: bool) -> Result<(), BackendError> {
        let client = self.client();
        self.each(service, if frozen { "pause container" } else { "unpause container" }, |id| {
            let gate = self.exec_gate(&id);
            async move {
                let _no_exec = gate.write().await;
                if frozen {
                    client.pause_container(&id).await
                } else {
                    client.unpause_container(&id).await
                }
            }
        })
        .await
    }

    pub(super) async fn state(&self, key: &str) -> Result<InstanceState, BackendError> {
        let id = self.container_of(key)?;
        ops::state(self.client(), &id, key).await
    }

    pub(super) async fn logs_tail(&self, key: &str, lines: usize) -> Result<String, BackendError> {
        let id = self.container_of(key)?;
        ops::logs_tail(self.client(), &id, key, lines).await
    }

    pub(super) async fn logs_contain(&self, key: &str, text: &str) -> Result<bool, BackendError> {
        let id = self.container_of(key)?;
        ops::logs_contain(self.client(), &id, key, text).await
    }

    pub(super) fn instance_name(&self, key: &str) -> String {
        swarm_name(&self.identity.run_id, key)
    }

    pub(super) fn instance_id(&self, key: &str) -> Result<String, BackendError> {
        self.container_of(key)
    }

    pub(super) fn targets(&self, service: &str) -> Result<Vec<(String, String)>, BackendError> {
        self.target_list(service)
    }

    pub(super) fn replicas(&self, service: &str) -> Option<Vec<String>> {
        self.registry().groups.get(service).map(|group| group.keys.clone())
    }

    pub(super) fn in_rotation(&self, service: &str) -> Vec<String> {
        self.registry()
            .groups
            .get(service)
            .map(|group| group.serving().into_iter().map(str::to_owned).collect())
            .unwrap_or_else(|| vec![service.to_owned()])
    }

    pub(super) fn rotation_changes(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.rotation_changes)
    }

    pub(super) async fn capture_fault(
        &self,
        kind: &FaultKind,
        instance: &str,
    ) -> Result<Undo, BackendError> {
        if kind.host_side() {
            return crate::stack::netfault::capture(&self.docker, kind, instance, &self.network_id)
                .await;
        }
        let mut undo =
            crate::stack::faults::capture(&self.docker, kind, instance, &self.network_id).await?;
        // A task's overlay aliases live in its network attachment, not in the container's
        // endpoint: the container shows none. Reconnect it under the aliases its spec gives.
        if let Undo::Reconnect { aliases, .. } = &mut undo
            && aliases.is_empty()
        {
            let registry = self.registry();
            let entry = registry.keys.values().find(|e| e.container.as_deref() == Some(instance));
            if let Some(spec_aliases) = entry.and_then(|entry| {
                entry.spec.task_template.as_ref()?.networks.as_ref()?.first()?.aliases.clone()
            }) {
                *aliases = spec_aliases;
            }
        }
        Ok(undo)
    }

    pub(super) async fn apply_fault(
        &self,
        kind: &FaultKind,
        instance: &str,
    ) -> Result<String, BackendError> {
        if kind.host_side() {
            if let FaultKind::Packet(packet) = kind
                && packet.to.is_some()
            {
                return Err(BackendError::new(
                    BackendErrorKind::Other,
                    "`packet` with `to` is not supported on the swarm backend",
                ));
            }
            let network = &self.network_id;
            return crate::stack::netfault::apply(&self.docker, kind, instance, network, &[]).await;
        }
        Ok(crate::stack::faults::apply(&self.docker, kind, instance, &self.network_id).await?)
    }

    pub(super) async fn revert_fault(
        &self,
        instance: &str,
        undo: &Undo,
    ) -> Result<String, BackendError> {
        if undo.host_side() {
            return crate::stack::netfault::revert(&self.docker, instance, undo).await;
        }
        Ok(crate::stack::faults::revert(&self.docker, instance, undo).await?)
    }

    /// Remove every service (stopping their containers first when `graceful`), wait for Swarm to
    /// remove their containers, remove the overlay, and leave a swarm firedrill initialised if
    /// nothing is left on it.
    pub(super) async fn shutdown(&self, graceful: bool) -> Result<(), BackendError> {
        if self.identity.keep {
            self.finished.store(true, Ordering::SeqCst);
            return Ok(());
        }
        let keys: Vec<String> = self.registry().keys.keys().cloned().collect();
        let grace = graceful.then_some(SHUTDOWN_GRACE);
        let results =
            futures_util::future::join_all(keys.iter().map(|key| self.remove_key(key, grace)))
                .await;
        let mut first_error = results.into_iter().find_map(Result::err);
        let client = self.client();
        wait_containers_gone(client, &self.identity.run_id).await;
        if let Err(error) = remove_overlay(client, &self.network_id).await {
            first_error.get_or_insert(failed("remove the overlay network", "-")(error));
        }
        // Named volumes the tasks' nodes created (labelled through the mounts' `VolumeOptions`).
        let volumes = remove_run_volumes(client, &self.identity.run_id).await;
        if let Some(error) = volumes.into_iter().next() {
            first_error.get_or_insert(failed("remove a volume", "-")(error));
        }
        if let Err(error) = leave_if_idle(client, Some(&self.network_id)).await {
            first_error.get_or_insert(error);
        }
        self.finished.store(true, Ordering::SeqCst);
        match first_error {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }

    pub(super) fn harness_host() -> String {
        HARNESS_HOST.to_owned()
    }

    /// Offer, promote, withdraw: not on Swarm yet.
    pub(super) fn blue_green_unsupported() -> BackendError {
        BackendError {
            kind: BackendErrorKind::Other,
            message: "blue-green upgrades are not supported on the swarm backend yet (an overlay \
                      alias cannot move between running tasks)"
                .to_owned(),
            hint: Some("use `strategy: rolling` or `recreate`, or `--backend docker`".to_owned()),
        }
    }

    /// What `Drop` removes: the run's services and its network (by id), then the swarm if idle.
    fn leftovers(&self) -> (Vec<String>, String) {
        let services =
            self.registry().keys.values().map(|entry| entry.service_id.clone()).collect();
        (services, self.network_id.clone())
    }
}

impl Drop for SwarmScope {
    fn drop(&mut self) {
        if self.finished.load(Ordering::SeqCst) || self.identity.keep {
            return;
        }
        let (services, network) = self.leftovers();
        let endpoint = self.docker.endpoint().to_owned();
        let run_id = self.identity.run_id.clone();
        // A thread with its own runtime: `drop` may run inside a runtime that is shutting down.
        let worker = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(docker) = Docker::connect_to(&endpoint).await else { return };
                let client = docker.client();
                for service in &services {
                    let _ = client.delete_service(service).await;
                }
                wait_containers_gone(client, &run_id).await;
                let _ = remove_overlay(client, &network).await;
                let _ = remove_run_volumes(client, &run_id).await;
                let _ = leave_if_idle(client, Some(&network)).await;
            });
        });
        let _ = worker.join();
    }
}

/// Swarm never gave `key`'s update a task with a container: the engine's trouble, not the
/// release's (no container of it ever ran).
fn stalled(key: &str, last: &str) -> BackendError {
    BackendError::new(
        BackendErrorKind::Stalled,
        format!(
            "Swarm did not carry out the service update of `{key}`: no task of it got a \
             container within {} s ({last}); the release was not judged",
            TASK_DEADLINE.as_secs()
        ),
    )
    .with_hint(
        "a Swarm or machine problem, not the scenario's: see `docker service ps --no-trunc` and \
         the daemon's log (`update failed`), then run again",
    )
}

/// Remove the overlay network, giving Swarm up to [`OVERLAY_RELEASE`] to release the endpoints of
/// task containers it removed a moment ago.
async fn remove_overlay(client: &bollard::Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let started = clock::instant_now();
    loop {
        match remove_network(client, id).await {
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("active endpoints")
                    && clock::instant_now().duration_since(started) < OVERLAY_RELEASE =>
            {
                clock::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}
