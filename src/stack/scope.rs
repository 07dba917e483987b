//! The Docker backend: [`DockerBackend`] implements [`Backend`] over the local engine and
//! [`StackHandle`] implements [`RunScope`] (a run's network and containers). This is the only
//! place where Docker's words (`die`, gateways, `host.docker.internal`, aliases) turn into the
//! engine's vocabulary.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::{
    ContainerEvent, Docker, FaultError, HARNESS_HOST, ImageStatus as DockerImageStatus, PullBar,
    PullProgress, StackError, StackHandle,
};
use crate::backend::{
    Backend, BackendError, BackendErrorKind, ExecOutcome, ImageStatus, InstanceState, Lifecycle,
    LifecycleEvent, RunIdentity, RunScope, SweepReport, SweepScope,
};
use crate::faults::{Recovered, Undo};
use crate::scenario::model::{FaultKind, ImageSource, PullPolicy, Service};

impl From<StackError> for BackendError {
    fn from(error: StackError) -> Self {
        let kind = match &error {
            _ if error.is_not_found() => BackendErrorKind::NotFound,
            StackError::UnknownService(_) => BackendErrorKind::NotFound,
            StackError::Unreachable { .. } => BackendErrorKind::Unavailable,
            StackError::ImageMissing { .. } => BackendErrorKind::ImageMissing,
            _ => BackendErrorKind::Other,
        };
        BackendError { kind, hint: error.hint(), message: error.to_string() }
    }
}

impl From<FaultError> for BackendError {
    fn from(error: FaultError) -> Self {
        let kind = if super::error::is_status(&error.source, 404) {
            BackendErrorKind::NotFound
        } else {
            BackendErrorKind::Other
        };
        BackendError { kind, hint: None, message: format!("{error}: {}", error.source) }
    }
}

/// The local Docker engine as a [`Backend`].
#[derive(Debug, Clone)]
pub struct DockerBackend {
    docker: Docker,
}

impl DockerBackend {
    /// The backend over a connected client.
    pub fn new(docker: Docker) -> Self {
        DockerBackend { docker }
    }

    /// Connect to the engine `DOCKER_HOST` (or the default socket) names.
    pub async fn connect() -> Result<Self, StackError> {
        Ok(DockerBackend { docker: Docker::connect().await? })
    }

    /// The client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}

#[async_trait::async_trait]
impl Backend for DockerBackend {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn recover_faults(&self, ledger_dir: &Path) -> Vec<Recovered> {
        super::recover_ledgers(&self.docker, ledger_dir, &SweepScope::Dead).await
    }

    fn check_faults(&self, kinds: &[&FaultKind]) -> Result<(), BackendError> {
        super::netfault::check(kinds)
    }

    async fn check_clock_skew_image(&self, service: &str, image: &str) -> Result<(), BackendError> {
        Ok(super::clockskew::check_image(&self.docker, service, image).await?)
    }

    async fn sweep(&self, scope: SweepScope) -> Result<SweepReport, BackendError> {
        Ok(self.docker.sweep(scope).await?)
    }

    async fn ensure_image(
        &self,
        source: &ImageSource,
        policy: PullPolicy,
        progress: &mut (dyn for<'line> FnMut(&'line str) + Send),
    ) -> Result<ImageStatus, BackendError> {
        let bar = PullBar::new(source.reference());
        let mut pulling = |p: &PullProgress| bar.show(p);
        let status = self.docker.ensure_image_with(source, policy, progress, &mut pulling).await?;
        drop(bar);
        Ok(match status {
            DockerImageStatus::Present => ImageStatus::Present,
            DockerImageStatus::Built => ImageStatus::Built,
            DockerImageStatus::Pulled(pulled) => ImageStatus::Pulled { digest: pulled.digest },
        })
    }

    async fn open_scope(&self, identity: RunIdentity) -> Result<Arc<dyn RunScope>, BackendError> {
        Ok(Arc::new(StackHandle::create(&self.docker, identity).await?))
    }
}

/// Docker's event action as a lifecycle event.
fn lifecycle(event: ContainerEvent) -> LifecycleEvent {
    let what = match event.action.as_str() {
        "start" => Lifecycle::Started,
        "die" => Lifecycle::Exited { code: event.exit_code },
        "oom" => Lifecycle::OomKilled,
        "pause" => Lifecycle::Paused,
        "unpause" => Lifecycle::Unpaused,
        "kill" => Lifecycle::Killed,
        "stop" => Lifecycle::Stopped,
        "restart" => Lifecycle::Restarted,
        _ => Lifecycle::Other(event.action),
    };
    LifecycleEvent { service: event.service, instance: event.container, what }
}

#[async_trait::async_trait]
impl RunScope for StackHandle {
    fn name(&self) -> String {
        self.network().to_owned()
    }

    fn harness_address(&self) -> Option<IpAddr> {
        self.gateway()
    }

    fn harness_host(&self) -> String {
        HARNESS_HOST.to_owned()
    }

    fn events(&self) -> BoxStream<'static, Result<LifecycleEvent, BackendError>> {
        StackHandle::events(self)
            .map(|event| event.map(lifecycle).map_err(BackendError::from))
            .boxed()
    }

    async fn start_service(
        &self,
        service: &Service,
        env: &BTreeMap<String, String>,
    ) -> Result<String, BackendError> {
        Ok(StackHandle::start_service(self, service, env).await?)
    }

    async fn start_replica(
        &self,
        service: &Service,
        key: &str,
        env: &BTreeMap<String, String>,
        admit: bool,
    ) -> Result<String, BackendError> {
        Ok(StackHandle::start_replica(self, service, key, env, admit).await?)
    }

    fn drain(&self, service: &str, key: &str) {
        StackHandle::drain(self, service, key);
    }

    async fn admit(&self, service: &str, key: &str) -> Result<(), BackendError> {
        Ok(StackHandle::admit(self, service, key).await?)
    }

    async fn image_of(&self, key: &str) -> Result<String, BackendError> {
        Ok(StackHandle::image_of(self, key).await?)
    }

    async fn remove(&self, key: &str) -> Result<(), BackendError> {
        Ok(StackHandle::remove(self, key).await?)
    }

    async fn retire(&self, key: &str, grace: Duration) -> Result<(), BackendError> {
        Ok(StackHandle::retire(self, key, grace).await?)
    }

    async fn offer(&self, service: &str, candidate: &str) -> Result<(), BackendError> {
        Ok(StackHandle::share_name(self, service, candidate).await?)
    }

    async fn promote(&self, service: &str, candidate: &str) -> Result<String, BackendError> {
        Ok(StackHandle::switch(self, service, candidate).await?)
    }

    async fn withdraw(&self, key: &str) -> Result<(), BackendError> {
        Ok(StackHandle::withdraw_name(self, key).await?)
    }

    async fn host_port(&self, service: &str, port: u16) -> Result<u16, BackendError> {
        Ok(StackHandle::host_port(self, service, port).await?)
    }

    async fn host_ports(&self, service: &str, port: u16) -> Result<Vec<u16>, BackendError> {
        Ok(StackHandle::host_ports(self, service, port).await?)
    }

    async fn exec(
        &self,
        key: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, BackendError> {
        Ok(StackHandle::exec(self, key, command, timeout).await?)
    }

    async fn kill(&self, service: &str, signal: &str) -> Result<(), BackendError> {
        Ok(StackHandle::kill(self, service, signal).await?)
    }

    async fn stop(&self, service: &str, timeout: Duration) -> Result<(), BackendError> {
        Ok(StackHandle::stop(self, service, timeout).await?)
    }

    async fn start(&self, service: &str) -> Result<(), BackendError> {
        Ok(StackHandle::start(self, service).await?)
    }

    async fn restart(&self, service: &str) -> Result<(), BackendError> {
        Ok(StackHandle::restart(self, service).await?)
    }

    async fn pause(&self, service: &str) -> Result<(), BackendError> {
        Ok(StackHandle::pause(self, service).await?)
    }

    async fn unpause(&self, service: &str) -> Result<(), BackendError> {
        Ok(StackHandle::unpause(self, service).await?)
    }

    async fn state(&self, key: &str) -> Result<InstanceState, BackendError> {
        let state = StackHandle::state(self, key).await?;
        Ok(InstanceState {
            running: state.running,
            paused: state.paused,
            exit_code: state.exit_code,
            oom_killed: state.oom_killed,
        })
    }

    async fn logs_tail(&self, key: &str, lines: usize) -> Result<String, BackendError> {
        Ok(StackHandle::logs_tail(self, key, lines).await?)
    }

    async fn logs_contain(&self, key: &str, text: &str) -> Result<bool, BackendError> {
        Ok(StackHandle::logs_contain(self, key, text).await?)
    }

    fn instance_name(&self, key: &str) -> String {
        super::container_name(&self.identity().run_id, key)
    }

    fn instance_id(&self, key: &str) -> Result<String, BackendError> {
        Ok(self.container_id(key)?)
    }

    fn targets(&self, service: &str) -> Result<Vec<(String, String)>, BackendError> {
        Ok(StackHandle::targets(self, service)?)
    }

    fn replicas(&self, service: &str) -> Option<Vec<String>> {
        StackHandle::replicas(self, service)
    }

    fn in_rotation(&self, service: &str) -> Vec<String> {
        StackHandle::in_rotation(self, service)
    }

    fn rotation_changes(&self) -> Arc<AtomicU64> {
        StackHandle::rotation_changes(self)
    }

    async fn capture_fault(&self, kind: &FaultKind, instance: &str) -> Result<Undo, BackendError> {
        if kind.host_side() {
            return super::netfault::capture(self.docker(), kind, instance, self.network_id())
                .await;
        }
        Ok(super::faults::capture(self.docker(), kind, instance, self.network_id()).await?)
    }

    async fn apply_fault(&self, kind: &FaultKind, instance: &str) -> Result<String, BackendError> {
        if kind.host_side() {
            let mut to = Vec::new();
            if let FaultKind::Packet(packet) = kind
                && let Some(service) = &packet.to
            {
                for (_, container) in StackHandle::targets(self, service)? {
                    let address =
                        super::netfault::address_on(self.docker(), &container, self.network_id())
                            .await?;
                    to.extend(address.and_then(|a| a.parse::<IpAddr>().ok()));
                }
                if to.is_empty() {
                    return Err(BackendError::new(
                        BackendErrorKind::Other,
                        format!("`{service}` has no address on the run network"),
                    ));
                }
            }
            return super::netfault::apply(self.docker(), kind, instance, self.network_id(), &to)
                .await;
        }
        Ok(super::faults::apply(self.docker(), kind, instance, self.network_id()).await?)
    }

    async fn revert_fault(&self, instance: &str, undo: &Undo) -> Result<String, BackendError> {
        if undo.host_side() {
            return super::netfault::revert(self.docker(), instance, undo).await;
        }
        Ok(super::faults::revert(self.docker(), instance, undo).await?)
    }

    async fn kill_processes(
        &self,
        instance: &str,
        name: &str,
        signal: &str,
    ) -> Result<Vec<String>, BackendError> {
        super::faults::kill_processes(self.docker(), instance, name, signal).await
    }

    async fn shutdown(&self, graceful: bool) -> Result<(), BackendError> {
        Ok(StackHandle::shutdown(self, graceful).await?)
    }
}
