//! [`StackHandle`]: the run's network and one container per service, and the actions the
//! timeline takes on them.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use indexmap::IndexMap;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use testcontainers::bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, NetworkingConfig, PortBinding,
};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, KillContainerOptionsBuilder,
    LogsOptionsBuilder, RenameContainerOptionsBuilder, RestartContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};

use testcontainers::bollard::errors::Error as BollardError;

use super::error::{docker_error, is_status};
use super::remove::{remove_all, remove_all_blocking, remove_container};
use super::volume;
use super::{
    ContainerEvent, ContainerState, Docker, ExecOutcome, RunIdentity, StackError, container_name,
    labels, network_name,
};
use crate::clock::{self, Clock};
use crate::owner::current_owner;
use crate::scenario::model::{MountSource, Service};

/// Grace period of a graceful shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Grace period of [`StackHandle::restart`].
const RESTART_GRACE_SECONDS: i32 = 10;

/// How much exec output is kept.
const EXEC_OUTPUT_LIMIT: usize = 4096;

/// How long past its own timeout an exec keeps a pause of its container waiting. By then the
/// exec's process has long started (starting takes milliseconds); see [`StackHandle::exec`].
const EXEC_GATE_SLACK: Duration = Duration::from_secs(5);

/// The name containers reach the harness by (the run network's gateway).
pub const HARNESS_HOST: &str = "host.docker.internal";

/// The run's Docker objects: one network, one container per service. Remove with
/// [`StackHandle::shutdown`]; dropping it without doing so removes the containers and network on a
/// best-effort basis (panics, early returns) unless the run is kept.
#[must_use = "a stack must be shut down, or its containers outlive the run"]
#[derive(Debug)]
pub struct StackHandle {
    docker: Docker,
    identity: RunIdentity,
    network_id: String,
    network_name: String,
    gateway: Option<IpAddr>,
    /// Which container each key is and which replicas are in rotation. A plain mutex, never
    /// held across an `.await`: every method takes `&self`, so the engine never needs the stack's
    /// write lock while a container stops or starts, and port look-ups never wait behind one.
    registry: Mutex<Registry>,
    /// Round-robin position over replicas, for lookups that want one container of a service.
    next_replica: AtomicUsize,
    /// Bumped whenever a replica enters or leaves rotation, so the traffic looks its ports up again.
    rotation_changes: Arc<AtomicU64>,
    /// One gate per container between execs (read) and pause/unpause (write). Docker 20.10 on
    /// cgroup v1 wedges when a container is frozen while an exec into it is starting: runc's exec
    /// joins the frozen cgroup and never returns, containerd holds the task's lock, and the
    /// unpause, every inspect and every removal of that container hang with it (seen here with
    /// dockerd's goroutine dump: `ContainerExecStart` stuck in `tasks.Start`, `Unpause` waiting
    /// in `tasks.Resume`). Docker's own health checks stop while a container is paused; firedrill's
    /// exec health checks and hooks wait at this gate instead, so the harness never causes that.
    exec_gates: Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    /// Set once `shutdown` has done its work, so `Drop` has nothing left to do.
    finished: std::sync::atomic::AtomicBool,
}

impl StackHandle {
    /// Create the run's network (`firedrill-RUNID`, labelled).
    pub async fn create(docker: &Docker, identity: RunIdentity) -> Result<StackHandle, StackError> {
        let name = network_name(&identity.run_id);
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".to_owned()),
            labels: Some(run_labels(&identity)),
            ..Default::default()
        };
        let client = docker.client();
        let created =
            client.create_network(request).await.map_err(docker_error("create network", "-"))?;
        // From here on the handle owns the network: an error below drops it, which removes it.
        let mut handle = StackHandle {
            docker: docker.clone(),
            identity,
            network_id: created.id,
            network_name: name,
            gateway: None,
            registry: Mutex::new(Registry::default()),
            next_replica: AtomicUsize::new(0),
            exec_gates: Mutex::new(HashMap::new()),
            rotation_changes: Arc::new(AtomicU64::new(0)),
            finished: std::sync::atomic::AtomicBool::new(false),
        };
        let inspect = client
            .inspect_network(&handle.network_id, None)
            .await
            .map_err(docker_error("inspect network", "-"))?;
        handle.gateway = inspect
            .ipam
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .iter()
            .filter_map(|config| config.gateway.as_deref()?.parse::<IpAddr>().ok())
            .find(IpAddr::is_ipv4);
        Ok(handle)
    }

    /// The network's id.
    pub fn network_id(&self) -> &str {
        &self.network_id
    }

    /// The Docker connection the stack uses.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The network's name.
    pub fn network(&self) -> &str {
        &self.network_name
    }

    /// The run's identity.
    pub fn identity(&self) -> &RunIdentity {
        &self.identity
    }

    /// The host side of the run's network: where a listener must bind for containers to reach
    /// it, as `host.docker.internal` (`None` if Docker reported no IPv4 gateway).
    pub fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }

    /// The registry, locked for a moment (never across an `.await`).
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The container id of a started service. For a replicated service: one of its replicas in
    /// rotation, taken in turn (so probes and lookups spread like the traffic does).
    pub fn container_id(&self, service: &str) -> Result<String, StackError> {
        let registry = self.registry();
        let key = match registry.groups.get(service) {
            Some(group) => {
                let serving = group.serving();
                let pick = serving
                    .get(self.next_replica.fetch_add(1, Ordering::Relaxed) % serving.len().max(1));
                pick.copied().ok_or_else(|| StackError::Port {
                    service: service.to_owned(),
                    port: 0,
                    reason: "no replica is in rotation".to_owned(),
                })?
            }
            None => service,
        };
        registry
            .containers
            .get(key)
            .cloned()
            .ok_or_else(|| StackError::UnknownService(key.to_owned()))
    }

    /// The keys an action on `service` applies to: every replica of a replicated service, else
    /// the key itself.
    pub fn targets(&self, service: &str) -> Result<Vec<(String, String)>, StackError> {
        let registry = self.registry();
        let keys = match registry.groups.get(service) {
            Some(group) => group.keys.clone(),
            None => vec![service.to_owned()],
        };
        keys.into_iter()
            .map(|key| {
                let id = registry
                    .containers
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| StackError::UnknownService(key.clone()))?;
                Ok((key, id))
            })
            .collect()
    }

    /// The replicas of a replicated service (`None` for a single-container service).
    pub fn replicas(&self, service: &str) -> Option<Vec<String>> {
        self.registry().groups.get(service).map(|group| group.keys.clone())
    }

    /// The replicas of `service` in rotation, in replica order.
    pub fn in_rotation(&self, service: &str) -> Vec<String> {
        self.registry()
            .groups
            .get(service)
            .map(|group| group.serving().into_iter().map(str::to_owned).collect())
            .unwrap_or_else(|| vec![service.to_owned()])
    }

    /// A counter bumped whenever a replica enters or leaves rotation, and whenever a blue-green
    /// switch moves a service's name to another container: the traffic looks its ports up again
    /// before its next request.
    pub fn rotation_changes(&self) -> Arc<AtomicU64> {
        self.rotation_changes.clone()
    }

    /// Start replica `key` of a replicated service: on the run network with its own key as alias,
    /// plus the service's name when `in_rotation` (Docker's DNS then answers the service's name
    /// with every replica in rotation). A replica that already has a container gets a new one.
    pub async fn start_replica(
        &self,
        service: &Service,
        key: &str,
        env: &BTreeMap<String, String>,
        in_rotation: bool,
    ) -> Result<String, StackError> {
        {
            let mut registry = self.registry();
            let group = registry.groups.entry(service.name.clone()).or_default();
            if !group.keys.iter().any(|k| k == key) {
                group.keys.push(key.to_owned());
            }
            // Out of rotation until the container exists, whatever happens below.
            group.out.insert(key.to_owned());
        }
        self.rotation_changes.fetch_add(1, Ordering::Release);
        let mut aliases = vec![key.to_owned()];
        if in_rotation {
            aliases.insert(0, service.name.clone());
        }
        let id = self.create_and_start(service, key, aliases, env).await?;
        if in_rotation {
            self.set_rotation(&service.name, key, true);
        }
        Ok(id)
    }

    /// Take replica `key` of `service` out of rotation: the host-side lookups stop handing out
    /// its ports at once. Its network alias stays: it is about to be stopped, and Docker's DNS
    /// stops answering with a stopped container. (Reconnecting it without the alias would cut
    /// the requests it is still serving; a graceful stop lets them finish.)
    pub fn drain(&self, service: &str, key: &str) {
        self.set_rotation(service, key, false);
    }

    /// Put replica `key` of `service` (back) in rotation.
    pub async fn admit(&self, service: &str, key: &str) -> Result<(), StackError> {
        let id = self.container_id(key)?;
        self.reconnect(&id, key, vec![service.to_owned(), key.to_owned()]).await?;
        self.set_rotation(service, key, true);
        Ok(())
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

    /// The image reference a container was created from.
    pub async fn image_of(&self, key: &str) -> Result<String, StackError> {
        let id = self.container_id(key)?;
        let inspect = self
            .docker
            .client()
            .inspect_container(&id, None)
            .await
            .map_err(docker_error("inspect container", key))?;
        Ok(inspect.config.and_then(|config| config.image).unwrap_or_default())
    }

    /// Create and start the service's container: on the run's network with the service name as
    /// alias, labelled, `ports` published on 127.0.0.1 (random host ports), `env` already rendered.
    /// Returns the container id. Does not wait for health.
    ///
    /// A service that already has a container gets a new one (the old one is removed first): this
    /// is how an upgrade swaps the image.
    pub async fn start_service(
        &self,
        service: &Service,
        env: &BTreeMap<String, String>,
    ) -> Result<String, StackError> {
        self.create_and_start(service, &service.name, vec![service.name.clone()], env).await
    }

    /// Create and start the container of key `name` from `service`'s definition.
    async fn create_and_start(
        &self,
        service: &Service,
        name: &str,
        aliases: Vec<String>,
        env: &BTreeMap<String, String>,
    ) -> Result<String, StackError> {
        let client = self.docker.client();
        let name = &name.to_owned();
        let old = self.registry().containers.get(name).cloned();
        if let Some(old) = old {
            remove_container(client, &old, None)
                .await
                .map_err(docker_error("remove the previous container", name))?;
            self.forget(name, &old);
        }

        let mut labels = run_labels(&self.identity);
        labels.insert(labels::SERVICE.to_owned(), name.clone());
        let port_keys: Vec<String> =
            service.ports.iter().map(|port| format!("{port}/tcp")).collect();
        let bindings = port_keys
            .iter()
            .map(|key| {
                // An empty host port asks Docker for a free one.
                let binding = PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(String::new()),
                };
                (key.clone(), Some(vec![binding]))
            })
            .collect();
        let extra_hosts = self.gateway.map(|gateway| vec![format!("{HARNESS_HOST}:{gateway}")]);
        let endpoint = EndpointSettings { aliases: Some(aliases), ..Default::default() };
        let settings = &service.container;
        for mount in &settings.mounts {
            if let MountSource::Volume(volume) = &mount.source {
                volume::ensure_volume(
                    client,
                    &self.identity.run_id,
                    volume,
                    run_labels(&self.identity),
                )
                .await
                .map_err(docker_error("create volume", name))?;
            }
        }
        let run_id = &self.identity.run_id;
        let mut binds: Vec<String> =
            settings.mounts.iter().filter_map(|m| volume::bind_string(run_id, m)).collect();
        let mut env = env.clone();
        if settings.faketime {
            let preload = env.get("LD_PRELOAD").map(String::as_str);
            let (more_binds, more_env) =
                super::clockskew::container_setup(run_id, name, preload)
                    .map_err(|reason| StackError::ClockSkew { service: name.clone(), reason })?;
            binds.extend(more_binds);
            env.extend(more_env);
        }
        let anonymous: Vec<String> = settings
            .mounts
            .iter()
            .filter(|m| m.source == MountSource::Anonymous)
            .map(|m| m.target.clone())
            .collect();
        let tmpfs: HashMap<String, String> = settings
            .tmpfs
            .iter()
            .map(|entry| match entry.split_once(':') {
                Some((path, options)) => (path.to_owned(), options.to_owned()),
                None => (entry.clone(), String::new()),
            })
            .collect();
        // Compose labels first: firedrill's own labels win a clash (the sweep relies on them).
        let mut all_labels: HashMap<String, String> =
            settings.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all_labels.extend(labels);
        let body = ContainerCreateBody {
            image: Some(service.image.reference().to_owned()),
            env: Some(env.iter().map(|(key, value)| format!("{key}={value}")).collect()),
            cmd: service.command.clone(),
            entrypoint: settings.entrypoint.clone(),
            user: settings.user.clone(),
            working_dir: settings.working_dir.clone(),
            stop_signal: settings.stop_signal.clone(),
            stop_timeout: settings
                .stop_grace_period
                .map(|grace| i64::try_from(grace.as_secs()).unwrap_or(i64::MAX)),
            volumes: (!anonymous.is_empty()).then_some(anonymous),
            labels: Some(all_labels),
            exposed_ports: Some(port_keys),
            host_config: Some(HostConfig {
                network_mode: Some(self.network_name.clone()),
                port_bindings: Some(bindings),
                publish_all_ports: Some(false),
                extra_hosts,
                binds: (!binds.is_empty()).then_some(binds),
                tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(self.network_name.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&container_name(&self.identity.run_id, name))
            .build();
        let client = self.docker.client();
        let created = match client.create_container(Some(options), body).await {
            Ok(created) => created,
            // Creating never pulls (only the CLI does); 404 is the image.
            Err(error) if is_status(&error, 404) => {
                return Err(StackError::ImageMissing {
                    image: service.image.reference().to_owned(),
                });
            }
            Err(error) => return Err(docker_error("create container", name)(error)),
        };
        // Owned from here on, even if starting fails.
        {
            let mut registry = self.registry();
            registry.containers.insert(name.clone(), created.id.clone());
            let plan = StopPlan {
                depends_on: service.depends_on.clone(),
                grace: settings.stop_grace_period,
            };
            registry.plans.insert(name.clone(), plan);
        }
        client
            .start_container(&created.id, None)
            .await
            .map_err(docker_error("start container", name))?;
        if settings.faketime {
            self.check_faketime_loaded(name, &created.id).await?;
        }
        Ok(created.id)
    }

    /// A skewed container's main process must have libfaketime mapped (polled briefly: the
    /// process may still be exec'ing); a static or musl binary never maps it and is refused.
    async fn check_faketime_loaded(&self, name: &str, id: &str) -> Result<(), StackError> {
        let refuse = |reason: String| StackError::ClockSkew { service: name.to_owned(), reason };
        // 30 looks 100 ms apart: about 3 s.
        for attempt in 1..=30 {
            let pid = super::netfault::main_pid(&self.docker, id)
                .await
                .map_err(|e| refuse(e.message))?
                .ok_or_else(|| refuse("its container stopped right after starting".to_owned()))?;
            match super::clockskew::loaded(pid) {
                Ok(true) => return Ok(()),
                Ok(false) if attempt < 30 => {}
                Ok(false) => {
                    return Err(refuse(
                        "its process did not load libfaketime (a static or musl binary ignores \
                         LD_PRELOAD; only dynamically linked glibc programs can be skewed)"
                            .to_owned(),
                    ));
                }
                Err(e) => return Err(refuse(format!("cannot read /proc/{pid}/maps: {e}"))),
            }
            clock::sleep(Duration::from_millis(100)).await;
        }
        unreachable!("the last attempt returns")
    }

    /// Forget key `key` if it still names container `id` (a concurrent start may have replaced it).
    fn forget(&self, key: &str, id: &str) {
        let mut registry = self.registry();
        if registry.containers.get(key).is_some_and(|current| current == id) {
            registry.containers.shift_remove(key);
        }
    }

    /// Remove one container of the run (force: it is killed if running) and forget it; used for
    /// one-shot migration containers. Removing an unknown key is a no-op.
    pub async fn remove(&self, key: &str) -> Result<(), StackError> {
        self.remove_with(key, None).await
    }

    /// Stop one container of the run gracefully (its image's stop signal, then SIGKILL when
    /// `grace` runs out), remove it and forget it: how the version a blue-green switch left
    /// behind goes, so the requests it still serves finish. An unknown key is a no-op.
    pub async fn retire(&self, key: &str, grace: Duration) -> Result<(), StackError> {
        self.remove_with(key, Some(grace)).await
    }

    async fn remove_with(&self, key: &str, grace: Option<Duration>) -> Result<(), StackError> {
        let Some(id) = self.registry().containers.get(key).cloned() else {
            return Ok(());
        };
        remove_container(self.docker.client(), &id, grace)
            .await
            .map_err(docker_error("remove container", key))?;
        self.forget(key, &id);
        Ok(())
    }

    /// Blue-green, first move: connect `candidate` to the run network again with the service's
    /// name as an alias besides its own. Docker's DNS then answers the name with both
    /// containers, while the host side (traffic, health monitor, probes) still reaches the one
    /// serving. The candidate serves nothing yet, so the reconnect cuts no request of the
    /// service; its own outgoing connections may break and its published ports may change: judge
    /// its health again before [`StackHandle::switch`].
    pub async fn share_name(&self, service: &str, candidate: &str) -> Result<(), StackError> {
        let id = self.container_id(candidate)?;
        self.reconnect(&id, candidate, vec![service.to_owned(), candidate.to_owned()]).await
    }

    /// Blue-green, second move: the key `service` (what the traffic, the service's health monitor
    /// and probes look up) moves to `candidate`'s container at once, and the rotation counter
    /// moves so every port cache looks up again before its next request. The container it
    /// displaces becomes the key `SERVICE.blue` (or `SERVICE.green` when the candidate is
    /// `SERVICE.blue`: switching back), which is returned. Nothing changes on the network: the
    /// displaced container keeps its endpoint, published ports and alias, so requests in flight
    /// on it finish; [`StackHandle::withdraw_name`] or [`StackHandle::retire`] ends that after
    /// the caller's drain period. A container already under the displaced key is removed first.
    pub async fn switch(&self, service: &str, candidate: &str) -> Result<String, StackError> {
        let new_id = self.container_id(candidate)?;
        let old_id = self.container_id(service)?;
        let blue = format!("{service}.blue");
        let displaced = if candidate == blue { format!("{service}.green") } else { blue.clone() };
        if displaced != candidate {
            self.remove(&displaced).await?;
        }
        // Container names follow the keys (`RUNID-KEY`), so that a later `start_service` of the
        // candidate's key finds its name free. The displaced one first: it frees the name.
        // Renaming touches neither the network endpoint nor the published ports.
        self.rename(&old_id, &displaced).await?;
        self.rename(&new_id, service).await?;
        {
            let mut registry = self.registry();
            registry.containers.insert(service.to_owned(), new_id);
            registry.containers.shift_remove(candidate);
            registry.containers.insert(displaced.clone(), old_id);
        }
        self.rotation_changes.fetch_add(1, Ordering::Release);
        Ok(displaced)
    }

    /// Blue-green, last move for a displaced container that stays (the old version, kept for a
    /// switch back): connect it again with its own key as its only alias, so Docker's DNS stops
    /// answering the service's name with it. Call it once nothing reaches it through the name
    /// any more (the caller's drain period): the reconnect cuts its open connections.
    pub async fn withdraw_name(&self, key: &str) -> Result<(), StackError> {
        let id = self.container_id(key)?;
        self.reconnect(&id, key, vec![key.to_owned()]).await
    }

    /// Rename a container to the name of `key`.
    async fn rename(&self, id: &str, key: &str) -> Result<(), StackError> {
        let options = RenameContainerOptionsBuilder::new()
            .name(&container_name(&self.identity.run_id, key))
            .build();
        self.docker
            .client()
            .rename_container(id, options)
            .await
            .map_err(docker_error("rename container", key))
    }

    /// Disconnect a container from the run network and connect it again with `aliases`.
    async fn reconnect(&self, id: &str, key: &str, aliases: Vec<String>) -> Result<(), StackError> {
        let client = self.docker.client();
        let disconnect = NetworkDisconnectRequest { container: id.to_owned(), force: Some(true) };
        client
            .disconnect_network(&self.network_id, disconnect)
            .await
            .map_err(docker_error("disconnect from the network", key))?;
        let connect = NetworkConnectRequest {
            container: id.to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases),
                ..Default::default()
            }),
        };
        client
            .connect_network(&self.network_id, connect)
            .await
            .map_err(docker_error("connect to the network", key))
    }

    /// The 127.0.0.1 host port currently published for a container port (looked up each time:
    /// it changes when the container restarts).
    pub async fn host_port(&self, service: &str, port: u16) -> Result<u16, StackError> {
        let id = self.container_id(service)?;
        let inspect = self
            .docker
            .client()
            .inspect_container(&id, None)
            .await
            .map_err(docker_error("inspect container", service))?;
        let port_error = |reason: &str| StackError::Port {
            service: service.to_owned(),
            port,
            reason: reason.to_owned(),
        };
        // A stopped container has no port map at all; say that rather than blame `ports`.
        let running = inspect.state.as_ref().and_then(|state| state.running).unwrap_or(false);
        if !running {
            return Err(port_error("the container is not running"));
        }
        let bindings = inspect
            .network_settings
            .and_then(|settings| settings.ports)
            .and_then(|mut ports| ports.remove(&format!("{port}/tcp")))
            .ok_or_else(|| {
                port_error("the port is not published (is it in the service's `ports`?)")
            })?
            .unwrap_or_default();
        bindings
            .iter()
            .filter(|binding| binding.host_ip.as_deref() == Some("127.0.0.1"))
            .find_map(|binding| binding.host_port.as_deref()?.parse::<u16>().ok())
            .ok_or_else(|| port_error("no host port is bound; the container is not running"))
    }

    /// The host ports of `port` on every replica of `service` in rotation (the one port of a
    /// single-container service). Replicas whose port can't be found are left out; no port at all
    /// is the last error.
    pub async fn host_ports(&self, service: &str, port: u16) -> Result<Vec<u16>, StackError> {
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

    /// Run a command in the service's container. When `timeout` runs out first, the outcome has
    /// no exit code and the output so far (Docker cannot kill an exec; it runs on inside).
    pub async fn exec(
        &self,
        service: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, StackError> {
        let id = self.container_id(service)?;
        let client = self.docker.client().clone();
        let output: Arc<Mutex<Vec<u8>>> = Arc::default();
        // Held from before the exec is created until its process ended, or its timeout plus
        // EXEC_GATE_SLACK passed: a pause of this container waits for it (see `exec_gates`).
        let gate = self.exec_gate(&id).read_owned().await;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let collected = Arc::clone(&output);
        let service_name = service.to_owned();
        let command = command.to_vec();
        tokio::spawn(async move {
            let service = service_name.as_str();
            let run = async {
                let exec = client
                    .create_exec(
                        &id,
                        CreateExecOptions {
                            attach_stdout: Some(true),
                            attach_stderr: Some(true),
                            cmd: Some(command),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(docker_error("create exec", service))?;
                let started = client
                    .start_exec(&exec.id, None)
                    .await
                    .map_err(docker_error("start exec", service))?;
                if let StartExecResults::Attached { output: mut stream, .. } = started {
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(docker_error("read exec output", service))?;
                        let mut output = lock(&collected);
                        output.extend_from_slice(&chunk.into_bytes());
                        if output.len() > 2 * EXEC_OUTPUT_LIMIT {
                            let excess = output.len() - EXEC_OUTPUT_LIMIT;
                            output.drain(..excess);
                        }
                    }
                }
                // The output closes as the process ends; Docker records the exit code an instant
                // later.
                loop {
                    let inspect = client
                        .inspect_exec(&exec.id)
                        .await
                        .map_err(docker_error("inspect exec", service))?;
                    if inspect.running != Some(true) {
                        return Ok::<_, StackError>(inspect.exit_code);
                    }
                    clock::sleep(Duration::from_millis(10)).await;
                }
            };
            let result = tokio::select! {
                result = run => Some(result),
                () = clock::sleep(timeout + EXEC_GATE_SLACK) => None,
            };
            drop(gate);
            // The caller may have given up at its timeout already.
            let _ = done_tx.send(result);
        });
        let exit_code = match tokio::time::timeout(timeout, done_rx).await {
            Ok(Ok(Some(result))) => result?,
            // Timed out (here or in the task), or the task was cancelled with the runtime.
            _ => None,
        };
        let output = lock(&output);
        Ok(ExecOutcome { exit_code, output: tail_text(&output, EXEC_OUTPUT_LIMIT) })
    }

    /// Send a signal (`SIGKILL`, `SIGTERM`, `9`...). Container actions on a replicated service
    /// apply to every replica, concurrently.
    ///
    /// Docker thaws a paused container after signalling it, so a kill also ends a pause.
    pub async fn kill(&self, service: &str, signal: &str) -> Result<(), StackError> {
        let client = self.docker.client();
        self.each(service, "kill container", |id| async move {
            let options = KillContainerOptionsBuilder::new().signal(signal).build();
            client.kill_container(&id, Some(options)).await
        })
        .await
    }

    /// Graceful stop with a grace period.
    pub async fn stop(&self, service: &str, timeout: Duration) -> Result<(), StackError> {
        let seconds = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        let seconds = i32::try_from(seconds).unwrap_or(i32::MAX);
        let client = self.docker.client();
        self.each(service, "stop container", |id| async move {
            let options = StopContainerOptionsBuilder::new().t(seconds).build();
            client.stop_container(&id, Some(options)).await
        })
        .await
    }

    /// Start a stopped container.
    pub async fn start(&self, service: &str) -> Result<(), StackError> {
        let client = self.docker.client();
        self.each(service, "start container", |id| async move {
            client.start_container(&id, None).await
        })
        .await
    }

    /// Restart (stop with a 10 s grace, then start).
    pub async fn restart(&self, service: &str) -> Result<(), StackError> {
        let client = self.docker.client();
        self.each(service, "restart container", |id| async move {
            let options = RestartContainerOptionsBuilder::new().t(RESTART_GRACE_SECONDS).build();
            client.restart_container(&id, Some(options)).await
        })
        .await
    }

    /// Freeze the container.
    pub async fn pause(&self, service: &str) -> Result<(), StackError> {
        let client = self.docker.client();
        self.each(service, "pause container", |id| {
            let gate = self.exec_gate(&id);
            async move {
                // Never freeze a container while an exec into it may be starting (`exec_gates`).
                let _no_exec = gate.write().await;
                client.pause_container(&id).await
            }
        })
        .await
    }

    /// Thaw it.
    pub async fn unpause(&self, service: &str) -> Result<(), StackError> {
        let client = self.docker.client();
        self.each(service, "unpause container", |id| {
            let gate = self.exec_gate(&id);
            async move {
                let _no_exec = gate.write().await;
                client.unpause_container(&id).await
            }
        })
        .await
    }

    /// The exec/pause gate of one container (see `exec_gates`).
    fn exec_gate(&self, id: &str) -> Arc<tokio::sync::RwLock<()>> {
        Arc::clone(lock(&self.exec_gates).entry(id.to_owned()).or_default())
    }

    /// Run `action` on the container of `service`, or on every replica of a replicated one,
    /// concurrently; the first error wins.
    async fn each<'a, F, Fut>(
        &'a self,
        service: &str,
        operation: &'static str,
        action: F,
    ) -> Result<(), StackError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<(), testcontainers::bollard::errors::Error>> + 'a,
    {
        let targets = self.targets(service)?;
        let results = futures_util::future::join_all(targets.into_iter().map(|(key, id)| {
            let done = action(id);
            async move { done.await.map_err(docker_error(operation, &key)) }
        }))
        .await;
        results.into_iter().collect()
    }

    /// The container's state.
    pub async fn state(&self, service: &str) -> Result<ContainerState, StackError> {
        let id = self.container_id(service)?;
        let inspect = self
            .docker
            .client()
            .inspect_container(&id, None)
            .await
            .map_err(docker_error("inspect container", service))?;
        let state = inspect.state.unwrap_or_default();
        Ok(ContainerState {
            running: state.running.unwrap_or(false),
            paused: state.paused.unwrap_or(false),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
        })
    }

    /// The last `lines` lines of the container's stdout and stderr.
    pub async fn logs_tail(&self, service: &str, lines: usize) -> Result<String, StackError> {
        let id = self.container_id(service)?;
        let options =
            LogsOptionsBuilder::new().stdout(true).stderr(true).tail(&lines.to_string()).build();
        let mut stream = self.docker.client().logs(&id, Some(options));
        let mut text: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(docker_error("read logs", service))?;
            text.extend_from_slice(&chunk.into_bytes());
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// Whether any log line so far contains `text` (for `log` health checks).
    pub async fn logs_contain(&self, service: &str, text: &str) -> Result<bool, StackError> {
        let id = self.container_id(service)?;
        let needle = text.as_bytes();
        if needle.is_empty() {
            return Ok(true);
        }
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
        let mut stream = self.docker.client().logs(&id, Some(options));
        // The text may straddle two chunks: keep the end of the previous one.
        let mut window: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk: LogOutput = chunk.map_err(docker_error("read logs", service))?;
            window.extend_from_slice(&chunk.into_bytes());
            if window.windows(needle.len()).any(|w| w == needle) {
                return Ok(true);
            }
            let keep = needle.len() - 1;
            if window.len() > keep {
                window.drain(..window.len() - keep);
            }
        }
        Ok(false)
    }

    /// Docker's container events for this run (label filter), from now on, as a stream.
    pub fn events(
        &self,
    ) -> futures_util::stream::BoxStream<'static, Result<ContainerEvent, StackError>> {
        let filters = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("label", vec![format!("{}={}", labels::RUN, self.identity.run_id)]),
        ]);
        // The request only goes out when the stream is first polled: `since` makes "from now on"
        // mean the time of this call, not of that poll (the engine and daemon share a clock).
        let now = clock::SystemClock::start().wall();
        let since = format!("{}.{:09}", now.as_second(), now.subsec_nanosecond());
        let options = EventsOptionsBuilder::new().since(&since).filters(&filters).build();
        let client = self.docker.client().clone();
        let stream: BoxStream<'static, _> = client.events(Some(options)).boxed();
        stream
            .filter_map(|message| async move {
                let message = match message {
                    Ok(message) => message,
                    Err(error) => return Some(Err(docker_error("watch events", "-")(error))),
                };
                let action = message.action?;
                if action.starts_with("exec_") {
                    return None;
                }
                let actor = message.actor.unwrap_or_default();
                let container = actor.id.unwrap_or_default();
                let attributes = actor.attributes.unwrap_or_default();
                let service = attributes.get(labels::SERVICE)?.clone();
                let exit_code = attributes.get("exitCode").and_then(|code| code.parse().ok());
                Some(Ok(ContainerEvent { service, action, exit_code, container }))
            })
            .boxed()
    }

    /// Remove every container and the network. `graceful`: stop containers with a short grace
    /// period first; otherwise kill at once (second Ctrl-C). With `keep`, leaves everything up.
    /// Idempotent; returns the first error after trying everything.
    pub async fn shutdown(&self, graceful: bool) -> Result<(), StackError> {
        if self.identity.keep {
            self.finished.store(true, Ordering::SeqCst);
            return Ok(());
        }
        // `clock-skew` offset files (none for most runs): the containers keep their mounts.
        let _ = std::fs::remove_dir_all(super::clockskew::run_dir(&self.identity.run_id));
        let (services, ids, waves) = {
            let registry = self.registry();
            let keys: Vec<String> = registry.containers.keys().cloned().collect();
            let ids: Vec<String> = registry.containers.values().cloned().collect();
            let waves = teardown_waves(&keys, &registry.plans);
            (keys, ids, waves)
        };
        let client = self.docker.client();
        let mut errors: Vec<(usize, BollardError)> = Vec::new();
        if graceful {
            // Dependents first, each wave side by side, each container with its own grace period
            // (`stop_grace_period`, else SHUTDOWN_GRACE) after its own stop signal.
            for wave in waves {
                let stops = wave.iter().map(|&index| {
                    let grace = self.registry().plans.get(&services[index]).and_then(|p| p.grace);
                    remove_container(client, &ids[index], Some(grace.unwrap_or(SHUTDOWN_GRACE)))
                });
                let results = futures_util::future::join_all(stops).await;
                errors
                    .extend(wave.iter().zip(results).filter_map(|(&i, r)| r.err().map(|e| (i, e))));
            }
            errors.extend(
                remove_all(client, &[], Some(&self.network_id), None)
                    .await
                    .into_iter()
                    .map(|(_, e)| (ids.len(), e)),
            );
        } else {
            errors = remove_all(client, &ids, Some(&self.network_id), None).await;
        }
        let volume_errors = volume::remove_run_volumes(client, &self.identity.run_id).await;
        errors.extend(volume_errors.into_iter().map(|error| (ids.len() + 1, error)));
        // Whatever failed is left to the sweep; `Drop` would only fail the same way.
        self.finished.store(true, Ordering::SeqCst);
        match errors.into_iter().next() {
            None => Ok(()),
            Some((index, source)) => Err(StackError::Docker {
                operation: if index < services.len() {
                    "remove container"
                } else if index == services.len() {
                    "remove network"
                } else {
                    "remove volume"
                },
                service: services.get(index).cloned().unwrap_or_else(|| "-".to_owned()),
                source,
            }),
        }
    }
}

impl Drop for StackHandle {
    fn drop(&mut self) {
        if self.finished.load(Ordering::SeqCst) || self.identity.keep {
            return;
        }
        remove_all_blocking(
            self.docker.endpoint().to_owned(),
            self.registry().containers.values().cloned().collect(),
            Some(self.network_id.clone()),
            Some(self.identity.run_id.clone()),
        );
    }
}

/// Which container each key is, and the replicated services' groups.
#[derive(Debug, Default)]
struct Registry {
    /// Key (service, replica `SERVICE.N`, or a helper like `SERVICE.green`) → container id, in
    /// start order.
    containers: IndexMap<String, String>,
    /// Replicated services: their replicas and which are in rotation.
    groups: HashMap<String, Group>,
    /// How each key is stopped at teardown: after what depends on it, with what grace.
    plans: HashMap<String, StopPlan>,
}

/// How one key's container is stopped at a graceful teardown.
#[derive(Debug, Clone, Default)]
struct StopPlan {
    /// The services it depends on (stopped after it).
    depends_on: Vec<String>,
    /// `stop_grace_period` of its service, when set.
    grace: Option<Duration>,
}

/// The service a key belongs to: `api` for `api`, `api.2`, `api.green`, `api.migrate`.
fn service_of(key: &str) -> &str {
    key.split('.').next().unwrap_or(key)
}

/// Teardown order, as waves of indexes into `keys`: a container is stopped in a wave after every
/// container whose service depends on its service (like `docker compose down`), so a service never
/// sees what it depends on go first. Dependencies are acyclic (validation); a cycle's members
/// would simply share the last wave.
fn teardown_waves(keys: &[String], plans: &HashMap<String, StopPlan>) -> Vec<Vec<usize>> {
    // rank(service) = 0 when nothing depends on it, else 1 + the highest rank of its dependents.
    let mut rank: HashMap<&str, usize> = HashMap::new();
    for _ in 0..=keys.len() {
        let mut changed = false;
        for key in keys {
            let dependent = service_of(key);
            let own = rank.get(dependent).copied().unwrap_or(0);
            for dependency in plans.get(key).map(|p| p.depends_on.as_slice()).unwrap_or_default() {
                let entry = rank.entry(dependency.as_str()).or_insert(0);
                if *entry < own + 1 && own < keys.len() {
                    *entry = own + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let wave = rank.get(service_of(key)).copied().unwrap_or(0);
        if waves.len() <= wave {
            waves.resize_with(wave + 1, Vec::new);
        }
        waves[wave].push(index);
    }
    waves.retain(|wave| !wave.is_empty());
    waves
}

/// The replicas of one replicated service.
#[derive(Debug, Default)]
struct Group {
    /// Replica keys, in replica order.
    keys: Vec<String>,
    /// Replicas out of rotation (being replaced, or not admitted yet).
    out: std::collections::HashSet<String>,
}

impl Group {
    fn serving(&self) -> Vec<&str> {
        self.keys.iter().filter(|key| !self.out.contains(*key)).map(String::as_str).collect()
    }
}

/// Labels every object of the run carries.
fn run_labels(identity: &RunIdentity) -> HashMap<String, String> {
    HashMap::from([
        (labels::RUN.to_owned(), identity.run_id.clone()),
        (labels::SCENARIO.to_owned(), identity.scenario.clone()),
        (labels::OWNER.to_owned(), current_owner().to_owned()),
        (labels::KEEP.to_owned(), identity.keep.to_string()),
    ])
}

/// The last `limit` bytes as text, starting on a character boundary.
fn tail_text(bytes: &[u8], limit: usize) -> String {
    let start = bytes.len().saturating_sub(limit);
    let text = String::from_utf8_lossy(&bytes[start..]);
    text.trim_start_matches('\u{FFFD}').to_owned()
}

/// Lock a mutex that is never held across an `.await`, recovering it from a panicked holder.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod teardown_tests {
    use super::*;

    fn plan(deps: &[&str]) -> StopPlan {
        StopPlan { depends_on: deps.iter().map(|d| (*d).to_owned()).collect(), grace: None }
    }

    #[test]
    fn dependents_stop_before_what_they_depend_on_and_independent_ones_together() {
        let keys: Vec<String> = ["db", "cache", "api.1", "api.2", "web", "worker", "api.green"]
            .map(String::from)
            .into();
        let plans = HashMap::from([
            ("db".to_owned(), plan(&[])),
            ("cache".to_owned(), plan(&[])),
            ("api.1".to_owned(), plan(&["db", "cache"])),
            ("api.2".to_owned(), plan(&["db", "cache"])),
            ("api.green".to_owned(), plan(&["db", "cache"])),
            ("web".to_owned(), plan(&["api"])),
            ("worker".to_owned(), plan(&["db"])),
        ]);
        let waves = teardown_waves(&keys, &plans);
        let named: Vec<Vec<&str>> =
            waves.iter().map(|w| w.iter().map(|&i| keys[i].as_str()).collect()).collect();
        assert_eq!(
            named,
            vec![vec!["web", "worker"], vec!["api.1", "api.2", "api.green"], vec!["db", "cache"]]
        );
    }

    #[test]
    fn a_stack_without_dependencies_is_one_wave() {
        let keys: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
        let waves = teardown_waves(&keys, &HashMap::new());
        assert_eq!(waves, vec![(0..20).collect::<Vec<_>>()]);
    }
}
