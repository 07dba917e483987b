//! The in-memory fake backend: a [`Backend`] whose instances are scripted models
//! ([`FakeService`]) served by tiny listeners on 127.0.0.1, for the engine's own tests and for
//! `firedrill run --backend fake` (a demo of the engine without Docker).
//!
//! ```
//! # use std::time::Duration;
//! use firedrill::backend::fake::{FakeBackend, FakeService};
//! let backend = FakeBackend::new()
//!     .service("api", FakeService::healthy_after(Duration::from_millis(20)))
//!     .image("api:2.0", FakeService::crash_on_start(3))
//!     .missing_image("api:3.0");
//! ```
//!
//! Each instance resolves its model when it starts: the model of its image if one was given,
//! else the model of its service (the key before the first `.`), else the backend's default.
//! Instances answer the engine's probes, health checks, version endpoint and traffic over real
//! loopback sockets, so the engine's own HTTP/TCP code runs unchanged; their lifecycle events go
//! through [`RunScope::events`]. Time is tokio's real clock (see the README's "The fake backend").
//!
//! The backend keeps a record of what every scope did ([`FakeBackend::leftovers`],
//! [`FakeBackend::shutdowns`], [`FakeBackend::operations`]) for tests to judge, and takes
//! commands while a run goes on ([`FakeBackend::crash`]).

mod instance;
mod model;
mod scope;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub use model::FakeService;
pub use scope::FakeScope;

use self::instance::Instance;
use super::{
    Backend, BackendError, BackendErrorKind, ImageStatus, RunIdentity, RunScope, SweepReport,
    SweepScope,
};
use crate::faults::Recovered;
use crate::scenario::model::{ImageSource, PullPolicy};

/// How a scope's shutdown went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    /// The scope.
    pub scope: String,
    /// Graceful (stop first) or forced.
    pub graceful: bool,
    /// Whether it reported success.
    pub ok: bool,
}

/// What a backend's scopes left behind: nothing, after a clean run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Instances not removed, as `SCOPE/KEY (IMAGE)`.
    pub instances: Vec<String>,
    /// Faults still in force, as `SCOPE/KEY: KIND`.
    pub faults: Vec<String>,
    /// Scopes neither shut down nor dropped.
    pub scopes: Vec<String>,
    /// Instances only a scope's `Drop` (its safety net) removed, as `SCOPE/KEY (IMAGE)`: no
    /// shutdown removed them.
    pub dropped: Vec<String>,
}

impl Leftovers {
    /// Nothing remains.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
            && self.faults.is_empty()
            && self.scopes.is_empty()
            && self.dropped.is_empty()
    }
}

/// The backend's configuration and record, shared with its scopes.
#[derive(Debug, Default)]
struct Shared {
    default: Option<FakeService>,
    services: BTreeMap<String, FakeService>,
    images: BTreeMap<String, FakeService>,
    missing: BTreeSet<String>,
    shutdown_fails: bool,
    /// Every instance ever created, with its scope's name and its key at creation.
    instances: Vec<(String, Arc<Instance>)>,
    /// Every scope opened: name, and whether it is still open.
    scopes: Vec<(String, Arc<std::sync::atomic::AtomicBool>)>,
    shutdowns: Vec<Shutdown>,
    dropped: Vec<String>,
    operations: Vec<String>,
    /// The grace of every `stop` and `retire`: (key or service, grace).
    graces: Vec<(String, std::time::Duration)>,
    images_ensured: Vec<String>,
    /// The scope opened last, for commands.
    current: Option<std::sync::Weak<scope::ScopeInner>>,
}

/// The in-memory fake backend. Cheap to clone: clones share their configuration and record.
#[derive(Debug, Clone, Default)]
pub struct FakeBackend {
    shared: Arc<Mutex<Shared>>,
}

impl FakeBackend {
    /// A backend whose services follow [`FakeService::default`]: ready 50 ms after their start,
    /// `200` on every path, their image's tag as version.
    pub fn new() -> Self {
        FakeBackend::default()
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    /// The model of every service and image without one of its own.
    pub fn default_service(self, model: FakeService) -> Self {
        self.shared().default = Some(model);
        self
    }

    /// The model of `service`'s instances (its replicas and helpers too), whatever their image,
    /// unless their image has a model of its own.
    pub fn service(self, service: &str, model: FakeService) -> Self {
        self.shared().services.insert(service.to_owned(), model);
        self
    }

    /// The model of every instance of `image` (an upgrade target that fails, say).
    pub fn image(self, image: &str, model: FakeService) -> Self {
        self.shared().images.insert(image.to_owned(), model);
        self
    }

    /// `ensure_image` of `image` fails as a missing image does.
    pub fn missing_image(self, image: &str) -> Self {
        self.shared().missing.insert(image.to_owned());
        self
    }

    /// Every scope's shutdown removes everything, then reports an error.
    pub fn shutdown_fails(self) -> Self {
        self.shared().shutdown_fails = true;
        self
    }

    /// What the backend's scopes left behind.
    pub fn leftovers(&self) -> Leftovers {
        let shared = self.shared();
        let mut left = Leftovers::default();
        for (scope, instance) in &shared.instances {
            let life = instance.life();
            if !life.removed {
                left.instances.push(format!("{scope}/{} ({})", instance.spec.name, instance.image));
            }
            for fault in &life.faults {
                left.faults.push(format!("{scope}/{}: {}", instance.spec.name, fault.key()));
            }
        }
        left.dropped = shared.dropped.clone();
        for (scope, open) in &shared.scopes {
            if open.load(std::sync::atomic::Ordering::Acquire) {
                left.scopes.push(scope.clone());
            }
        }
        left
    }

    /// Every scope shutdown so far, in order.
    pub fn shutdowns(&self) -> Vec<Shutdown> {
        self.shared().shutdowns.clone()
    }

    /// What the scopes were asked to do, in order, as `OPERATION KEY` lines (`start api`,
    /// `promote api api.green`, `apply-fault api memory`, …).
    pub fn operations(&self) -> Vec<String> {
        self.shared().operations.clone()
    }

    /// The grace period every `stop` and `retire` was given, in order: (key or service, grace).
    pub fn stop_graces(&self) -> Vec<(String, std::time::Duration)> {
        self.shared().graces.clone()
    }

    /// The images `ensure_image` was asked for, in order.
    pub fn images_ensured(&self) -> Vec<String> {
        self.shared().images_ensured.clone()
    }

    /// The scope opened last, while it is alive.
    pub fn current_scope(&self) -> Option<FakeScope> {
        let weak = self.shared().current.clone()?;
        weak.upgrade().map(FakeScope::from_inner)
    }

    /// Command: `key`'s instance (every replica, for a replicated service) exits with `code` now.
    /// False when no scope is open or the key is unknown.
    pub fn crash(&self, key: &str, code: i64) -> bool {
        self.current_scope().is_some_and(|scope| scope.crash(key, code, false))
    }

    /// Command: the out-of-memory killer kills `key`'s instance now.
    pub fn oom(&self, key: &str) -> bool {
        self.current_scope().is_some_and(|scope| scope.crash(key, 137, true))
    }

    /// The model an instance of `service` running `image` follows.
    fn model_for(&self, service: &str, image: &str) -> FakeService {
        let shared = self.shared();
        let group = service.split('.').next().unwrap_or(service);
        shared
            .images
            .get(image)
            .or_else(|| shared.services.get(group))
            .or(shared.default.as_ref())
            .cloned()
            .unwrap_or_default()
    }

    fn record(&self, operation: String) {
        self.shared().operations.push(operation);
    }

    fn record_grace(&self, key: &str, grace: std::time::Duration) {
        self.shared().graces.push((key.to_owned(), grace));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait::async_trait]
impl Backend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn recover_faults(&self, _ledger_dir: &Path) -> Vec<Recovered> {
        // Fake faults live in memory and end with their process: nothing durable to recover.
        Vec::new()
    }

    async fn sweep(&self, _scope: SweepScope) -> Result<SweepReport, BackendError> {
        Ok(SweepReport::default())
    }

    async fn ensure_image(
        &self,
        source: &ImageSource,
        _policy: PullPolicy,
        progress: &mut (dyn for<'line> FnMut(&'line str) + Send),
    ) -> Result<ImageStatus, BackendError> {
        let image = source.reference().to_owned();
        let missing = {
            let mut shared = self.shared();
            shared.images_ensured.push(image.clone());
            shared.missing.contains(&image)
        };
        if missing {
            return Err(BackendError {
                kind: BackendErrorKind::ImageMissing,
                message: format!("image `{image}` is missing (fake backend)"),
                hint: Some("the fake backend was told this image is missing".to_owned()),
            });
        }
        progress(&format!("fake: {image} is present"));
        Ok(ImageStatus::Present)
    }

    async fn open_scope(&self, identity: RunIdentity) -> Result<Arc<dyn RunScope>, BackendError> {
        let scope = FakeScope::open(self.clone(), identity);
        let mut shared = self.shared();
        shared.scopes.push((scope.name_of(), scope.open_flag()));
        shared.current = Some(scope.downgrade());
        Ok(Arc::new(scope))
    }
}
