//! A fake run scope: the run's instances by key, replica groups and their rotation, lifecycle
//! events, faults in force.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::FakeBackend;
use super::instance::{Instance, Status, after, listen};
use crate::backend::{
    BackendError, BackendErrorKind, ExecOutcome, InstanceState, Lifecycle, LifecycleEvent,
    RunIdentity, RunScope,
};
use crate::clock;
use crate::faults::Undo;
use crate::scenario::model::{FaultKind, Service};

#[derive(Debug, Default)]
struct Group {
    keys: Vec<String>,
    out: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Registry {
    keys: BTreeMap<String, Arc<Instance>>,
    groups: BTreeMap<String, Group>,
}

/// What a [`FakeScope`] shares with its clones and its instances' timers.
#[derive(Debug)]
pub(super) struct ScopeInner {
    backend: FakeBackend,
    identity: RunIdentity,
    name: String,
    registry: Mutex<Registry>,
    records: super::instance::Records,
    events: broadcast::Sender<LifecycleEvent>,
    rotation: Arc<AtomicU64>,
    next_replica: AtomicUsize,
    next_id: AtomicU64,
    open: Arc<AtomicBool>,
}

/// One fake run's scope. Cheap to clone (clones are the same scope).
#[derive(Debug, Clone)]
pub struct FakeScope {
    inner: Arc<ScopeInner>,
}

fn other(message: String) -> BackendError {
    BackendError::new(BackendErrorKind::Other, message)
}

impl FakeScope {
    pub(super) fn open(backend: FakeBackend, identity: RunIdentity) -> Self {
        let name = format!("fake-{}", identity.run_id);
        FakeScope {
            inner: Arc::new(ScopeInner {
                backend,
                identity,
                name,
                registry: Mutex::new(Registry::default()),
                records: super::instance::Records::default(),
                events: broadcast::channel(1024).0,
                rotation: Arc::new(AtomicU64::new(0)),
                next_replica: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                open: Arc::new(AtomicBool::new(true)),
            }),
        }
    }

    pub(super) fn from_inner(inner: Arc<ScopeInner>) -> Self {
        FakeScope { inner }
    }

    pub(super) fn downgrade(&self) -> Weak<ScopeInner> {
        Arc::downgrade(&self.inner)
    }

    pub(super) fn name_of(&self) -> String {
        self.inner.name.clone()
    }

    pub(super) fn open_flag(&self) -> Arc<AtomicBool> {
        self.inner.open.clone()
    }

    /// The keys with an instance now, in order.
    pub fn keys(&self) -> Vec<String> {
        self.inner.registry().keys.keys().cloned().collect()
    }

    /// Command: every instance of `key` exits with `code` (killed by the out-of-memory killer
    /// when `oom`). False when the key is unknown.
    pub fn crash(&self, key: &str, code: i64, oom: bool) -> bool {
        let Ok(targets) = self.inner.each(key) else { return false };
        self.inner.backend.record(format!("crash {key} {code}"));
        for (key, instance) in targets {
            self.inner.exit(&key, &instance, code, oom);
        }
        true
    }
}

impl ScopeInner {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn emit(&self, key: &str, instance: &Instance, what: Lifecycle) {
        let _ = self.events.send(LifecycleEvent {
            service: key.to_owned(),
            instance: instance.id.clone(),
            what,
        });
    }

    fn record(&self, operation: String) {
        self.backend.record(operation);
    }

    fn record_grace(&self, key: &str, grace: Duration) {
        self.backend.record_grace(key, grace);
    }

    /// The instance of `key`; for a group, one replica in rotation, in turn.
    fn resolve(&self, key: &str) -> Result<(String, Arc<Instance>), BackendError> {
        let registry = self.registry();
        let key = match registry.groups.get(key) {
            Some(group) => {
                let serving: Vec<&String> =
                    group.keys.iter().filter(|k| !group.out.contains(*k)).collect();
                if serving.is_empty() {
                    return Err(other(format!("no replica of `{key}` is in rotation")));
                }
                let pick = self.next_replica.fetch_add(1, Ordering::Relaxed) % serving.len();
                serving[pick].clone()
            }
            None => key.to_owned(),
        };
        let instance =
            registry.keys.get(&key).cloned().ok_or_else(|| BackendError::not_found(&key))?;
        Ok((key, instance))
    }

    /// Every instance an action on `service` applies to.
    fn each(&self, service: &str) -> Result<Vec<(String, Arc<Instance>)>, BackendError> {
        let registry = self.registry();
        let keys = match registry.groups.get(service) {
            Some(group) => group.keys.clone(),
            None => vec![service.to_owned()],
        };
        keys.into_iter()
            .map(|key| {
                let instance = registry
                    .keys
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| BackendError::not_found(&key))?;
                Ok((key, instance))
            })
            .collect()
    }

    /// The current key of `instance`, if it still has one.
    fn key_of(&self, instance: &Instance) -> Option<String> {
        let registry = self.registry();
        registry.keys.iter().find(|(_, i)| i.id == instance.id).map(|(k, _)| k.clone())
    }

    /// Start (or start again) `instance` under `key`: listeners, ready time, timers, `Started`.
    fn boot(self: &Arc<Self>, key: &str, instance: &Arc<Instance>) -> Result<(), BackendError> {
        let kill = CancellationToken::new();
        let run = kill.child_token();
        let ports = listen(instance, &run, &kill)
            .map_err(|error| other(format!("fake: could not listen for `{key}`: {error}")))?;
        let now = clock::instant_now();
        {
            let mut life = instance.life();
            life.status = Status::Running;
            life.ports = ports;
            life.ready_at = instance.model.ready_after.map(|after| now + after);
            life.kill.cancel();
            life.run = run.clone();
            life.kill = kill;
            life.logs.push(format!("fake: {} starting", instance.image));
        }
        instance.notify();
        self.rotation.fetch_add(1, Ordering::Release);
        self.emit(key, instance, Lifecycle::Started);
        let model = &instance.model;
        if let Some(code) = model.crash_on_start {
            instance.life().logs.push(format!("fake: {} crashed on start", instance.image));
            self.exit(key, instance, code, false);
            return Ok(());
        }
        let one_shot = instance
            .spec
            .command
            .as_ref()
            .and_then(|command| command.first())
            .and_then(|first| model.one_shots.get(first).copied())
            .or_else(|| {
                // An unscripted command without ports or health check is a one-shot that works.
                let spec = &instance.spec;
                (spec.command.is_some() && spec.ports.is_empty() && spec.health.is_none())
                    .then_some((0, Duration::ZERO))
            });
        let timers = [
            one_shot,
            model.crash_after.map(|(after, code)| (code, after)),
            model.oom_after.map(|after| (137, after)),
        ];
        for (index, timer) in timers.into_iter().enumerate() {
            let Some((code, delay)) = timer else { continue };
            let oom = index == 2;
            let scope = Arc::downgrade(self);
            let instance = instance.clone();
            let run = run.clone();
            tokio::spawn(async move {
                if !after(&run, delay).await {
                    return;
                }
                let Some(scope) = scope.upgrade() else { return };
                if let Some(key) = scope.key_of(&instance) {
                    scope.exit(&key, &instance, code, oom);
                }
            });
        }
        Ok(())
    }

    /// `instance` exits with `code`: listeners close, `OomKilled` (when `oom`) and `Exited`.
    /// Open connections finish the request in hand when `code` is 0 (a graceful stop), and are
    /// cut otherwise. No-op when it is not running.
    fn exit(&self, key: &str, instance: &Instance, code: i64, oom: bool) {
        {
            let mut life = instance.life();
            if matches!(life.status, Status::Exited { .. }) {
                return;
            }
            life.status = Status::Exited { code, oom };
            life.ready_at = None;
            life.ports.clear();
            if code == 0 {
                life.run.cancel()
            } else {
                life.kill.cancel()
            }
            life.logs.push(format!("fake: exited with code {code}"));
        }
        instance.notify();
        if oom {
            self.emit(key, instance, Lifecycle::OomKilled);
        }
        self.emit(key, instance, Lifecycle::Exited { code: Some(code) });
    }

    /// Stop `instance` and forget it: nothing of it remains.
    fn discard(&self, key: &str, instance: &Instance, code: i64) {
        self.exit(key, instance, code, false);
        let mut life = instance.life();
        life.removed = true;
        life.faults.clear();
    }

    /// Create and boot an instance of `spec` under `key` (replacing the key's instance).
    fn create(self: &Arc<Self>, spec: &Service, key: &str) -> Result<String, BackendError> {
        let image = spec.image.reference().to_owned();
        self.record(format!("start {key} {image}"));
        let model = self.backend.model_for(key, &image);
        if let Some(message) = &model.start_error {
            let message = format!("fake: could not start `{key}` ({image}): {message}");
            if model.start_stalls {
                return Err(BackendError::new(BackendErrorKind::Stalled, message));
            }
            return Err(other(message));
        }
        let old = self.registry().keys.remove(key);
        if let Some(old) = old {
            self.discard(key, &old, 137);
        }
        let id = format!("{}-{}", self.name, self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut spec = spec.clone();
        spec.name = key.to_owned();
        let instance =
            Arc::new(Instance::new(id.clone(), image, spec, model, self.records.clone()));
        self.registry().keys.insert(key.to_owned(), instance.clone());
        super::lock(&self.backend.shared).instances.push((self.name.clone(), instance.clone()));
        self.boot(key, &instance)?;
        Ok(id)
    }

    fn set_rotation(&self, service: &str, key: &str, serving: bool) {
        let mut registry = self.registry();
        if let Some(group) = registry.groups.get_mut(service) {
            let changed =
                if serving { group.out.remove(key) } else { group.out.insert(key.to_owned()) };
            if changed {
                self.rotation.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// The instance whose id is `id`, with its key.
    fn by_id(&self, id: &str) -> Result<(String, Arc<Instance>), BackendError> {
        let registry = self.registry();
        registry
            .keys
            .iter()
            .find(|(_, instance)| instance.id == id)
            .map(|(key, instance)| (key.clone(), instance.clone()))
            .ok_or_else(|| BackendError::not_found(id))
    }

    fn remove_key(&self, key: &str, code: i64) {
        let removed = self.registry().keys.remove(key);
        if let Some(instance) = removed {
            self.discard(key, &instance, code);
            self.rotation.fetch_add(1, Ordering::Release);
        }
    }

    /// Remove every instance; returns what was removed, as `SCOPE/KEY (IMAGE)`.
    fn remove_all(&self, code: i64) -> Vec<String> {
        let all: Vec<(String, Arc<Instance>)> =
            std::mem::take(&mut self.registry().keys).into_iter().collect();
        let mut removed = Vec::new();
        for (key, instance) in all {
            if !instance.life().removed {
                removed.push(format!("{}/{key} ({})", self.name, instance.image));
            }
            self.discard(&key, &instance, code);
        }
        self.open.store(false, Ordering::Release);
        removed
    }
}

impl Drop for ScopeInner {
    fn drop(&mut self) {
        // The safety net of a scope dropped without `shutdown`: nothing it created remains.
        if !self.identity.keep {
            let removed = self.remove_all(137);
            super::lock(&self.backend.shared).dropped.extend(removed);
        }
    }
}

/// The exit code of a process ended by `signal`, or `None` when the signal does not end it.
fn signal_exit(signal: &str) -> Option<i64> {
    let name = signal.trim_start_matches("SIG");
    let number = match name {
        "KILL" | "9" => 9,
        "TERM" | "15" => 15,
        "INT" | "2" => 2,
        "QUIT" | "3" => 3,
        _ => return None,
    };
    Some(128 + number)
}

fn not_running(key: &str) -> BackendError {
    other(format!("container `{key}` is not running"))
}

#[async_trait::async_trait]
impl RunScope for FakeScope {
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    fn harness_address(&self) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    fn harness_host(&self) -> String {
        "127.0.0.1".to_owned()
    }

    fn events(&self) -> BoxStream<'static, Result<LifecycleEvent, BackendError>> {
        let receiver = self.inner.events.subscribe();
        futures_util::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((Ok(event), receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }

    async fn start_service(
        &self,
        service: &Service,
        _env: &BTreeMap<String, String>,
    ) -> Result<String, BackendError> {
        self.inner.create(service, &service.name)
    }

    async fn start_replica(
        &self,
        service: &Service,
        key: &str,
        _env: &BTreeMap<String, String>,
        admit: bool,
    ) -> Result<String, BackendError> {
        {
            let mut registry = self.inner.registry();
            let group = registry.groups.entry(service.name.clone()).or_default();
            if !group.keys.iter().any(|k| k == key) {
                group.keys.push(key.to_owned());
            }
            group.out.insert(key.to_owned());
        }
        self.inner.rotation.fetch_add(1, Ordering::Release);
        let id = self.inner.create(service, key)?;
        if admit {
            self.inner.set_rotation(&service.name, key, true);
        }
        Ok(id)
    }

    fn drain(&self, service: &str, key: &str) {
        self.inner.record(format!("drain {key}"));
        self.inner.set_rotation(service, key, false);
    }

    async fn admit(&self, service: &str, key: &str) -> Result<(), BackendError> {
        self.inner.record(format!("admit {key}"));
        self.inner.resolve(key)?;
        self.inner.set_rotation(service, key, true);
        Ok(())
    }

    async fn image_of(&self, key: &str) -> Result<String, BackendError> {
        Ok(self.inner.resolve(key)?.1.image.clone())
    }

    async fn remove(&self, key: &str) -> Result<(), BackendError> {
        self.inner.record(format!("remove {key}"));
        self.inner.remove_key(key, 137);
        Ok(())
    }

    async fn retire(&self, key: &str, grace: Duration) -> Result<(), BackendError> {
        self.inner.record(format!("retire {key}"));
        self.inner.record_grace(key, grace);
        self.inner.remove_key(key, 0);
        Ok(())
    }

    async fn offer(&self, service: &str, candidate: &str) -> Result<(), BackendError> {
        self.inner.record(format!("offer {service} {candidate}"));
        self.inner.resolve(candidate).map(|_| ())
    }

    async fn promote(&self, service: &str, candidate: &str) -> Result<String, BackendError> {
        self.inner.record(format!("promote {service} {candidate}"));
        let blue = format!("{service}.blue");
        let displaced = if candidate == blue { format!("{service}.green") } else { blue };
        if displaced != candidate {
            self.inner.remove_key(&displaced, 137);
        }
        let mut registry = self.inner.registry();
        let new = registry
            .keys
            .get(candidate)
            .cloned()
            .ok_or_else(|| BackendError::not_found(candidate))?;
        let old =
            registry.keys.get(service).cloned().ok_or_else(|| BackendError::not_found(service))?;
        registry.keys.remove(candidate);
        registry.keys.insert(service.to_owned(), new);
        registry.keys.insert(displaced.clone(), old);
        drop(registry);
        self.inner.rotation.fetch_add(1, Ordering::Release);
        Ok(displaced)
    }

    async fn withdraw(&self, key: &str) -> Result<(), BackendError> {
        self.inner.record(format!("withdraw {key}"));
        self.inner.resolve(key).map(|_| ())
    }

    async fn host_port(&self, service: &str, port: u16) -> Result<u16, BackendError> {
        let (key, instance) = self.inner.resolve(service)?;
        let life = instance.life();
        if matches!(life.status, Status::Exited { .. }) {
            return Err(other(format!("port {port} of `{key}`: the container is not running")));
        }
        life.ports.get(&port).copied().ok_or_else(|| {
            other(format!(
                "port {port} of `{key}` is not published (is it in the service's `ports`?)"
            ))
        })
    }

    async fn host_ports(&self, service: &str, port: u16) -> Result<Vec<u16>, BackendError> {
        let keys = self.in_rotation(service);
        let mut ports = Vec::new();
        let mut last_error = None;
        for key in keys {
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

    async fn exec(
        &self,
        key: &str,
        command: &[String],
        _timeout: Duration,
    ) -> Result<ExecOutcome, BackendError> {
        let (key, instance) = self.inner.resolve(key)?;
        let first = command.first().cloned().unwrap_or_default();
        if !instance.is_health_command(command) {
            self.inner.record(format!("exec {key} {first}"));
        }
        match instance.life().status {
            Status::Running => {}
            Status::Paused => return Err(other(format!("container `{key}` is paused"))),
            Status::Exited { .. } => return Err(not_running(&key)),
        }
        if instance.is_health_command(command) {
            return Ok(if instance.ready() {
                ExecOutcome { exit_code: Some(0), output: String::new() }
            } else {
                ExecOutcome { exit_code: Some(1), output: "fake: not ready".to_owned() }
            });
        }
        let (code, output) =
            instance.model.execs.get(&first).cloned().unwrap_or((0, String::new()));
        Ok(ExecOutcome { exit_code: Some(code), output })
    }

    async fn kill(&self, service: &str, signal: &str) -> Result<(), BackendError> {
        self.inner.record(format!("kill {service} {signal}"));
        for (key, instance) in self.inner.each(service)? {
            if matches!(instance.life().status, Status::Exited { .. }) {
                return Err(not_running(&key));
            }
            self.inner.emit(&key, &instance, Lifecycle::Killed);
            if let Some(code) = signal_exit(signal) {
                self.inner.exit(&key, &instance, code, false);
            }
        }
        Ok(())
    }

    async fn stop(&self, service: &str, timeout: Duration) -> Result<(), BackendError> {
        self.inner.record(format!("stop {service}"));
        self.inner.record_grace(service, timeout);
        for (key, instance) in self.inner.each(service)? {
            if !matches!(instance.life().status, Status::Exited { .. }) {
                self.inner.exit(&key, &instance, 0, false);
                self.inner.emit(&key, &instance, Lifecycle::Stopped);
            }
        }
        Ok(())
    }

    async fn start(&self, service: &str) -> Result<(), BackendError> {
        self.inner.record(format!("start-again {service}"));
        for (key, instance) in self.inner.each(service)? {
            if matches!(instance.life().status, Status::Exited { .. }) {
                self.inner.boot(&key, &instance)?;
            }
        }
        Ok(())
    }

    async fn restart(&self, service: &str) -> Result<(), BackendError> {
        self.inner.record(format!("restart {service}"));
        for (key, instance) in self.inner.each(service)? {
            self.inner.exit(&key, &instance, 0, false);
            self.inner.boot(&key, &instance)?;
            self.inner.emit(&key, &instance, Lifecycle::Restarted);
        }
        Ok(())
    }

    async fn pause(&self, service: &str) -> Result<(), BackendError> {
        self.inner.record(format!("pause {service}"));
        for (key, instance) in self.inner.each(service)? {
            {
                let mut life = instance.life();
                if life.status != Status::Running {
                    return Err(other(format!(
                        "container `{key}` is not running or paused already"
                    )));
                }
                life.status = Status::Paused;
            }
            instance.notify();
            self.inner.emit(&key, &instance, Lifecycle::Paused);
        }
        Ok(())
    }

    async fn unpause(&self, service: &str) -> Result<(), BackendError> {
        self.inner.record(format!("unpause {service}"));
        for (key, instance) in self.inner.each(service)? {
            {
                let mut life = instance.life();
                if life.status != Status::Paused {
                    return Err(other(format!("container `{key}` is not paused")));
                }
                life.status = Status::Running;
            }
            instance.notify();
            self.inner.emit(&key, &instance, Lifecycle::Unpaused);
        }
        Ok(())
    }

    async fn state(&self, key: &str) -> Result<InstanceState, BackendError> {
        let (_, instance) = self.inner.resolve(key)?;
        let status = instance.life().status;
        Ok(match status {
            Status::Running => {
                InstanceState { running: true, paused: false, exit_code: None, oom_killed: false }
            }
            Status::Paused => {
                InstanceState { running: true, paused: true, exit_code: None, oom_killed: false }
            }
            Status::Exited { code, oom } => InstanceState {
                running: false,
                paused: false,
                exit_code: Some(code),
                oom_killed: oom,
            },
        })
    }

    async fn logs_tail(&self, key: &str, lines: usize) -> Result<String, BackendError> {
        let (_, instance) = self.inner.resolve(key)?;
        let all = instance.logs();
        let tail = &all[all.len().saturating_sub(lines)..];
        Ok(tail.join("\n"))
    }

    async fn logs_contain(&self, key: &str, text: &str) -> Result<bool, BackendError> {
        let (_, instance) = self.inner.resolve(key)?;
        Ok(instance.logs().iter().any(|line| line.contains(text)))
    }

    fn instance_name(&self, key: &str) -> String {
        format!("{}-{key}", self.inner.name)
    }

    fn instance_id(&self, key: &str) -> Result<String, BackendError> {
        Ok(self.inner.resolve(key)?.1.id.clone())
    }

    fn targets(&self, service: &str) -> Result<Vec<(String, String)>, BackendError> {
        Ok(self.inner.each(service)?.into_iter().map(|(key, i)| (key, i.id.clone())).collect())
    }

    fn replicas(&self, service: &str) -> Option<Vec<String>> {
        self.inner.registry().groups.get(service).map(|group| group.keys.clone())
    }

    fn in_rotation(&self, service: &str) -> Vec<String> {
        self.inner
            .registry()
            .groups
            .get(service)
            .map(|group| group.keys.iter().filter(|k| !group.out.contains(*k)).cloned().collect())
            .unwrap_or_else(|| vec![service.to_owned()])
    }

    fn rotation_changes(&self) -> Arc<AtomicU64> {
        self.inner.rotation.clone()
    }

    async fn capture_fault(&self, kind: &FaultKind, instance: &str) -> Result<Undo, BackendError> {
        let (key, _) = self.inner.by_id(instance)?;
        Ok(match kind {
            FaultKind::Memory { .. } => Undo::Memory { memory: 0, memory_swap: 0 },
            FaultKind::Cpu { .. } => Undo::Cpu { cpu_quota: 0, cpu_period: 0 },
            FaultKind::Partition => {
                Undo::Reconnect { network: self.inner.name.clone(), aliases: vec![key] }
            }
            FaultKind::Packet(packet) => Undo::Packet {
                table: packet.loss.map(|_| format!("fake_loss_{key}")),
                device: packet.rate_bytes.map(|_| "eth0".to_owned()),
                queue: (!packet.queue_keys().is_empty()).then(|| format!("FAKE_Q_{key}")),
            },
            FaultKind::Dns(_) => Undo::Dns { table: format!("fake_dns_{key}") },
            FaultKind::DiskFill(fill) => Undo::DiskFill { file: format!("{}/.fill", fill.path) },
            FaultKind::ClockSkew { .. } => Undo::ClockSkew { file: format!("fake/{key}/offset") },
            FaultKind::IoLimit(_) => Undo::IoLimit {
                cgroup: format!("fake/{key}"),
                device: "0:0".to_owned(),
                read_bps: None,
                write_bps: None,
                read_iops: None,
                write_iops: None,
            },
        })
    }

    async fn apply_fault(&self, kind: &FaultKind, instance: &str) -> Result<String, BackendError> {
        let (key, target) = self.inner.by_id(instance)?;
        self.inner.record(format!("apply-fault {key} {}", kind.key()));
        if target.model.fault_apply_fails {
            return Err(other(format!("fake: applying `{}` to `{key}` failed", kind.key())));
        }
        target.life().faults.push(kind.clone());
        Ok(match kind {
            FaultKind::Memory { limit_bytes } => format!("fake: memory limit {limit_bytes} bytes"),
            FaultKind::Cpu { cores } => format!("fake: {cores} CPUs"),
            FaultKind::Partition => format!("fake: `{key}` cut off"),
            FaultKind::Packet(_) => format!("fake: packets of `{key}` faulted"),
            FaultKind::Dns(fault) => format!("fake: {} fail for `{key}`", fault.names.join(", ")),
            FaultKind::DiskFill(fill) => format!("fake: `{}` of `{key}` filled", fill.path),
            FaultKind::ClockSkew { offset_secs } => format!("fake: `{key}` skewed {offset_secs}s"),
            FaultKind::IoLimit(limit) => {
                format!("fake: I/O under `{}` of `{key}` limited", limit.path)
            }
        })
    }

    async fn revert_fault(&self, instance: &str, undo: &Undo) -> Result<String, BackendError> {
        let (key, target) = self.inner.by_id(instance)?;
        self.inner.record(format!("revert-fault {key} {}", undo.fault_kind()));
        if target.model.fault_revert_fails {
            return Err(other(format!(
                "fake: reverting `{}` on `{key}` failed",
                undo.fault_kind()
            )));
        }
        let mut life = target.life();
        let position = life.faults.iter().rposition(|f| f.key() == undo.fault_kind());
        match position {
            Some(position) => {
                life.faults.remove(position);
                Ok(format!("fake: `{}` reverted on `{key}`", undo.fault_kind()))
            }
            None => Err(other(format!("fake: no `{}` in force on `{key}`", undo.fault_kind()))),
        }
    }

    async fn shutdown(&self, graceful: bool) -> Result<(), BackendError> {
        let inner = &self.inner;
        inner.record(format!("shutdown {}", if graceful { "graceful" } else { "forced" }));
        let fails = super::lock(&inner.backend.shared).shutdown_fails;
        if !inner.identity.keep {
            inner.remove_all(if graceful { 0 } else { 137 });
        }
        super::lock(&inner.backend.shared).shutdowns.push(super::Shutdown {
            scope: inner.name.clone(),
            graceful,
            ok: !fails,
        });
        if fails {
            return Err(other("fake: the scope's network could not be removed".to_owned()));
        }
        Ok(())
    }
}
