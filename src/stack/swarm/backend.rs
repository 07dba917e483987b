//! [`SwarmBackend`]: a swarm manager as a [`Backend`]; images, fault recovery and the container
//! sweep are the single-engine backend's, the swarm's own objects are swept first.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures_util::stream::BoxStream;

use super::SwarmScope;
use super::sweep::sweep_swarm;
use crate::backend::{
    Backend, BackendError, ExecOutcome, ImageStatus, InstanceState, LifecycleEvent, NodeTarget,
    RunIdentity, RunScope, SweepReport, SweepScope,
};
use crate::faults::{Recovered, Undo};
use crate::scenario::model::{FaultKind, ImageSource, PullPolicy, Service};
use crate::stack::{Docker, DockerBackend, StackError};

/// A swarm manager (`DOCKER_HOST`, or the local engine, which becomes a single-node swarm for
/// the run if it is in none) as a [`Backend`].
#[derive(Debug, Clone)]
pub struct SwarmBackend {
    engine: DockerBackend,
}

impl SwarmBackend {
    /// The backend over a connected client.
    pub fn new(docker: Docker) -> Self {
        SwarmBackend { engine: DockerBackend::new(docker) }
    }

    /// Connect to the engine `DOCKER_HOST` (or the default socket) names.
    pub async fn connect() -> Result<Self, StackError> {
        Ok(SwarmBackend::new(Docker::connect().await?))
    }

    /// The client.
    pub fn docker(&self) -> &Docker {
        self.engine.docker()
    }
}

#[async_trait::async_trait]
impl Backend for SwarmBackend {
    fn name(&self) -> &'static str {
        "swarm"
    }

    async fn recover_faults(&self, ledger_dir: &Path) -> Vec<Recovered> {
        self.engine.recover_faults(ledger_dir).await
    }

    fn check_faults(&self, kinds: &[&FaultKind]) -> Result<(), BackendError> {
        if kinds.iter().any(|kind| matches!(kind, FaultKind::ClockSkew { .. })) {
            return Err(BackendError::new(
                crate::backend::BackendErrorKind::Other,
                "`clock-skew` is not supported on the swarm backend",
            )
            .with_hint("run the scenario on the single-engine Docker backend"));
        }
        self.engine.check_faults(kinds)
    }

    /// The swarm's services, overlays, configs and secrets first (deleting a service removes its
    /// task containers), then the single-engine sweep, then the swarm itself if firedrill
    /// initialised it and nothing is left on it.
    async fn sweep(&self, scope: SweepScope) -> Result<SweepReport, BackendError> {
        let client = self.docker().client();
        let swarm = sweep_swarm(client, &scope).await;
        let engine = self.engine.sweep(scope).await;
        let left = super::leave_if_idle(client, None).await;
        let mut report = swarm?;
        let engine = engine?;
        report.containers.extend(engine.containers);
        report.networks.extend(engine.networks);
        report.volumes.extend(engine.volumes);
        if left? {
            report.networks.push("(left the swarm firedrill had initialised)".to_owned());
        }
        Ok(report)
    }

    async fn ensure_image(
        &self,
        source: &ImageSource,
        policy: PullPolicy,
        progress: &mut (dyn for<'line> FnMut(&'line str) + Send),
    ) -> Result<ImageStatus, BackendError> {
        self.engine.ensure_image(source, policy, progress).await
    }

    async fn open_scope(&self, identity: RunIdentity) -> Result<Arc<dyn RunScope>, BackendError> {
        Ok(Arc::new(SwarmScope::create(self.docker(), identity).await?))
    }
}

#[async_trait::async_trait]
impl RunScope for SwarmScope {
    fn name(&self) -> String {
        SwarmScope::name(self).to_owned()
    }

    fn harness_address(&self) -> Option<IpAddr> {
        self.harness()
    }

    fn harness_host(&self) -> String {
        SwarmScope::harness_host()
    }

    fn events(&self) -> BoxStream<'static, Result<LifecycleEvent, BackendError>> {
        SwarmScope::events(self)
    }

    async fn start_service(
        &self,
        service: &Service,
        env: &BTreeMap<String, String>,
    ) -> Result<String, BackendError> {
        self.start_key(service, &service.name, env, true, false).await
    }

    async fn start_replica(
        &self,
        service: &Service,
        key: &str,
        env: &BTreeMap<String, String>,
        admit: bool,
    ) -> Result<String, BackendError> {
        self.start_key(service, key, env, admit, true).await
    }

    fn drain(&self, service: &str, key: &str) {
        SwarmScope::drain(self, service, key);
    }

    async fn admit(&self, service: &str, key: &str) -> Result<(), BackendError> {
        SwarmScope::admit(self, service, key)
    }

    async fn image_of(&self, key: &str) -> Result<String, BackendError> {
        SwarmScope::image_of(self, key).await
    }

    async fn remove(&self, key: &str) -> Result<(), BackendError> {
        SwarmScope::remove(self, key).await
    }

    async fn retire(&self, key: &str, grace: Duration) -> Result<(), BackendError> {
        SwarmScope::retire(self, key, grace).await
    }

    async fn offer(&self, _service: &str, _candidate: &str) -> Result<(), BackendError> {
        Err(SwarmScope::blue_green_unsupported())
    }

    async fn promote(&self, _service: &str, _candidate: &str) -> Result<String, BackendError> {
        Err(SwarmScope::blue_green_unsupported())
    }

    async fn withdraw(&self, _key: &str) -> Result<(), BackendError> {
        Err(SwarmScope::blue_green_unsupported())
    }

    async fn host_port(&self, service: &str, port: u16) -> Result<u16, BackendError> {
        SwarmScope::host_port(self, service, port).await
    }

    async fn host_ports(&self, service: &str, port: u16) -> Result<Vec<u16>, BackendError> {
        SwarmScope::host_ports(self, service, port).await
    }

    async fn exec(
        &self,
        key: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, BackendError> {
        SwarmScope::exec(self, key, command, timeout).await
    }

    async fn kill(&self, service: &str, signal: &str) -> Result<(), BackendError> {
        SwarmScope::kill(self, service, signal).await
    }

    async fn stop(&self, service: &str, timeout: Duration) -> Result<(), BackendError> {
        SwarmScope::stop(self, service, timeout).await
    }

    async fn start(&self, service: &str) -> Result<(), BackendError> {
        SwarmScope::start(self, service).await
    }

    /// A fresh task, as Swarm restarts (the old one stopped first, per `update_config`).
    async fn restart(&self, service: &str) -> Result<(), BackendError> {
        SwarmScope::start(self, service).await
    }

    async fn pause(&self, service: &str) -> Result<(), BackendError> {
        SwarmScope::pause(self, service, true).await
    }

    async fn unpause(&self, service: &str) -> Result<(), BackendError> {
        SwarmScope::pause(self, service, false).await
    }

    async fn state(&self, key: &str) -> Result<InstanceState, BackendError> {
        SwarmScope::state(self, key).await
    }

    async fn logs_tail(&self, key: &str, lines: usize) -> Result<String, BackendError> {
        SwarmScope::logs_tail(self, key, lines).await
    }

    async fn logs_contain(&self, key: &str, text: &str) -> Result<bool, BackendError> {
        SwarmScope::logs_contain(self, key, text).await
    }

    fn instance_name(&self, key: &str) -> String {
        SwarmScope::instance_name(self, key)
    }

    fn instance_id(&self, key: &str) -> Result<String, BackendError> {
        SwarmScope::instance_id(self, key)
    }

    fn targets(&self, service: &str) -> Result<Vec<(String, String)>, BackendError> {
        SwarmScope::targets(self, service)
    }

    fn replicas(&self, service: &str) -> Option<Vec<String>> {
        SwarmScope::replicas(self, service)
    }

    fn in_rotation(&self, service: &str) -> Vec<String> {
        SwarmScope::in_rotation(self, service)
    }

    fn rotation_changes(&self) -> Arc<AtomicU64> {
        SwarmScope::rotation_changes(self)
    }

    async fn capture_fault(&self, kind: &FaultKind, instance: &str) -> Result<Undo, BackendError> {
        SwarmScope::capture_fault(self, kind, instance).await
    }

    async fn apply_fault(&self, kind: &FaultKind, instance: &str) -> Result<String, BackendError> {
        SwarmScope::apply_fault(self, kind, instance).await
    }

    async fn revert_fault(&self, instance: &str, undo: &Undo) -> Result<String, BackendError> {
        SwarmScope::revert_fault(self, instance, undo).await
    }

    async fn node(&self, node: Option<&str>) -> Result<NodeTarget, BackendError> {
        SwarmScope::node(self, node).await
    }

    async fn set_node_availability(
        &self,
        id: &str,
        availability: &str,
    ) -> Result<String, BackendError> {
        SwarmScope::set_node_availability(self, id, availability).await
    }

    async fn shutdown(&self, graceful: bool) -> Result<(), BackendError> {
        SwarmScope::shutdown(self, graceful).await
    }
}
