//! One fake instance: its life (running, paused, exited), its listeners on 127.0.0.1 that answer
//! HTTP and TCP from its model, and its log.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::model::FakeService;
use crate::clock;
use crate::scenario::model::{FaultKind, HealthKind, Service};

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Running,
    Paused,
    Exited { code: i64, oom: bool },
}

/// What changes over an instance's life.
#[derive(Debug)]
pub(super) struct Life {
    pub status: Status,
    /// When it becomes ready (`None`: never, or not running).
    pub ready_at: Option<Instant>,
    /// Container port → host port, while running.
    pub ports: BTreeMap<u16, u16>,
    /// Stops the listeners and the timers of the current start; open connections finish the
    /// request in hand (a graceful stop).
    pub run: CancellationToken,
    /// Cuts every open connection too (a kill); cancelling it cancels `run`.
    pub kill: CancellationToken,
    /// Log lines so far (the `ready` lines are added when read, once ready).
    pub logs: Vec<String>,
    /// Faults in force.
    pub faults: Vec<FaultKind>,
    /// Removed from the scope (nothing of it remains).
    pub removed: bool,
}

/// What the run's services wrote: `PATH/ID` → the JSON record, shared by every instance of a
/// scope (the database behind the services, which outlives their replacements).
pub(super) type Records = Arc<Mutex<BTreeMap<String, String>>>;

/// One instance (a container, on Docker).
#[derive(Debug)]
pub(super) struct Instance {
    pub id: String,
    pub records: Records,
    pub image: String,
    pub spec: Service,
    pub model: FakeService,
    pub life: Mutex<Life>,
    /// Bumped on every change of `life.status`, for connections held while paused.
    pub changed: watch::Sender<u64>,
}

impl Instance {
    pub fn new(
        id: String,
        image: String,
        spec: Service,
        model: FakeService,
        records: Records,
    ) -> Self {
        Instance {
            id,
            records,
            image,
            spec,
            model,
            life: Mutex::new(Life {
                status: Status::Exited { code: 0, oom: false },
                ready_at: None,
                ports: BTreeMap::new(),
                run: CancellationToken::new(),
                kill: CancellationToken::new(),
                logs: Vec::new(),
                faults: Vec::new(),
                removed: false,
            }),
            changed: watch::channel(0).0,
        }
    }

    pub fn life(&self) -> MutexGuard<'_, Life> {
        self.life.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// The version it reports: the model's, or the image's tag.
    pub fn version(&self) -> String {
        self.model.version.clone().unwrap_or_else(|| tag_of(&self.image).to_owned())
    }

    /// Ready now: running (not paused) and past its ready time.
    pub fn ready(&self) -> bool {
        let life = self.life();
        life.status == Status::Running && life.ready_at.is_some_and(|at| clock::instant_now() >= at)
    }

    /// Reachable at all: not partitioned away.
    pub fn partitioned(&self) -> bool {
        self.life().faults.iter().any(|f| matches!(f, FaultKind::Partition))
    }

    /// Its log, with the `ready` lines once it is ready.
    pub fn logs(&self) -> Vec<String> {
        let life = self.life();
        let mut lines = life.logs.clone();
        if life.ready_at.is_some_and(|at| clock::instant_now() >= at) {
            lines.extend(self.model.log_lines.iter().cloned());
            lines.push("fake: ready".to_owned());
        }
        lines
    }

    /// Whether `command` is this instance's exec health check.
    pub fn is_health_command(&self, command: &[String]) -> bool {
        matches!(
            self.spec.health.as_ref().map(|h| &h.kind),
            Some(HealthKind::Exec { command: health }) if health.as_slice() == command
        )
    }
}

/// The tag of an image reference (`latest` without one).
pub(super) fn tag_of(image: &str) -> &str {
    let name = image.rsplit('/').next().unwrap_or(image);
    name.split_once(':').map_or("latest", |(_, tag)| tag)
}

/// Bind a listener per container port of `instance` and serve them until `run` is cancelled;
/// returns the host ports.
pub(super) fn listen(
    instance: &Arc<Instance>,
    run: &CancellationToken,
    kill: &CancellationToken,
) -> std::io::Result<BTreeMap<u16, u16>> {
    let mut ports = BTreeMap::new();
    for &port in &instance.spec.ports {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        ports.insert(port, listener.local_addr()?.port());
        let instance = instance.clone();
        let run = run.clone();
        let kill = kill.clone();
        tokio::spawn(async move {
            let connections = tokio_util::task::TaskTracker::new();
            loop {
                let accepted = tokio::select! {
                    () = run.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                // Not ready (a process still starting) or cut off: the connection closes at once.
                if !instance.ready() && !held(&instance) || instance.partitioned() {
                    drop(stream);
                    continue;
                }
                let instance = instance.clone();
                let (run, kill) = (run.clone(), kill.clone());
                connections.spawn(async move {
                    tokio::select! {
                        () = kill.cancelled() => {}
                        () = serve(instance, stream, run) => {}
                    }
                });
            }
            drop(listener);
            connections.close();
            connections.wait().await;
        });
    }
    Ok(ports)
}

/// A paused instance that was ready holds connections (the kernel accepts them; nobody answers).
fn held(instance: &Instance) -> bool {
    let life = instance.life();
    life.status == Status::Paused && life.ready_at.is_some_and(|at| clock::instant_now() >= at)
}

/// Wait while the instance is paused (a stopped one finishes the request in hand; a killed one
/// drops the connection).
async fn while_paused(instance: &Instance) {
    let mut changed = instance.changed.subscribe();
    while instance.life().status == Status::Paused {
        if changed.changed().await.is_err() {
            return;
        }
    }
}

/// How long a stopped instance's connections may take to finish the request in hand.
const GRACE: Duration = Duration::from_secs(1);

/// How long a gracefully stopped instance's open connections are still served.
const LINGER: Duration = Duration::from_millis(100);

/// One connection: HTTP when it starts like a request line, else a TCP exchange.
async fn serve(instance: Arc<Instance>, stream: TcpStream, run: CancellationToken) {
    let mut first = [0u8; 8];
    let Ok(n) = stream.peek(&mut first).await else { return };
    let head = &first[..n];
    let http = head
        .iter()
        .position(|b| *b == b' ')
        .is_some_and(|space| space > 0 && head[..space].iter().all(u8::is_ascii_uppercase));
    if http {
        let service = hyper::service::service_fn(move |request| {
            let instance = instance.clone();
            async move { Ok::<_, Infallible>(answer(&instance, request).await) }
        });
        let io = hyper_util::rt::TokioIo::new(stream);
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            () = run.cancelled() => {}
        }
        // Stopped gracefully: what this open connection sends for a moment is still answered
        // (a client that picked the instance before it left rotation), then the connection
        // closes once the request in hand is answered.
        if tokio::time::timeout(LINGER, connection.as_mut()).await.is_ok() {
            return;
        }
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(GRACE, connection).await;
    } else {
        tokio::select! {
            () = exchange(&instance, stream) => {}
            () = run.cancelled() => {}
        }
    }
}

async fn answer(
    instance: &Instance,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<axum::body::Body> {
    let path = request.uri().path().to_owned();
    let post = request.method() == hyper::Method::POST;
    let get = request.method() == hyper::Method::GET;
    // Read the body, so the connection can carry the next request.
    let body = axum::body::to_bytes(axum::body::Body::new(request.into_body()), 1 << 20)
        .await
        .unwrap_or_default();
    while_paused(instance).await;
    if !instance.model.latency.is_zero() {
        clock::sleep(instance.model.latency).await;
    }
    let model = &instance.model;
    if path == model.version_path {
        return respond(200, format!("{{\"version\":\"{}\"}}", instance.version()));
    }
    let status = model.statuses.get(&path).copied().or(model.default_status).unwrap_or(if post {
        201
    } else {
        200
    });
    if !(200..300).contains(&status) {
        return respond(status, format!("{{\"error\":\"status {status}\"}}"));
    }
    let records = || instance.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if get && let Some(record) = records().get(&path).cloned() {
        return respond(status, record);
    }
    if post {
        // A write: the request's JSON fields and a fresh id, kept for `GET PATH/ID`.
        let mut record = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        let id = fresh_id();
        record.insert("id".to_owned(), serde_json::Value::String(id.clone()));
        let record = serde_json::Value::Object(record).to_string();
        records().insert(format!("{}/{id}", path.trim_end_matches('/')), record.clone());
        return respond(status, record);
    }
    respond(status, "{\"ok\":true}".to_owned())
}

fn respond(status: u16, body: String) -> hyper::Response<axum::body::Body> {
    let mut response = hyper::Response::new(axum::body::Body::from(body));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    response
}

/// A fresh id for created resources (the `id` a write's answer carries).
fn fresh_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("w{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A TCP exchange: each chunk that contains a scripted needle gets its reply, others are echoed.
async fn exchange(instance: &Instance, mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while_paused(instance).await;
        let text = String::from_utf8_lossy(&buf[..n]);
        let reply = instance
            .model
            .tcp_replies
            .iter()
            .find(|(needle, _)| text.contains(needle.as_str()))
            .map(|(_, reply)| reply.as_bytes().to_vec())
            .unwrap_or_else(|| buf[..n].to_vec());
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Sleep `after`, unless `run` is cancelled first; true when the time passed.
pub(super) async fn after(run: &CancellationToken, after: Duration) -> bool {
    tokio::select! {
        () = run.cancelled() => false,
        () = clock::sleep(after) => true,
    }
}
