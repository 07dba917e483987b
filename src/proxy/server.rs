//! The engine-facing handle: listeners, the toxic table, connections, counters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::chain::EventSink;
use super::conn::{self, ConnCommand};
use super::event::{CloseReason, ProxyEvent, ProxyStats};
use super::spec::{ConnId, ToxicId, ToxicKind, ToxicSpec};
use super::toxic::down;

/// How to start a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The link's name (for the engine's messages; the proxy does not use it).
    pub name: String,
    /// Addresses to listen on; port 0 picks a free port ([`Proxy::local_addrs`] says which).
    pub listen: Vec<SocketAddr>,
    /// Seed of every random decision (toxicity, jitter, slice sizes, http probabilities).
    pub seed: u64,
    /// Whether the link carries HTTP/1.1, so the http toxics can act on it.
    pub http: bool,
}

impl ProxyConfig {
    /// One listener on `127.0.0.1:0`, seed 0, not http.
    pub fn loopback(name: impl Into<String>) -> Self {
        ProxyConfig {
            name: name.into(),
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            seed: 0,
            http: false,
        }
    }

    /// The same with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same, marked as carrying HTTP/1.1.
    pub fn with_http(mut self, http: bool) -> Self {
        self.http = http;
        self
    }
}

/// Where connections go. Resolved again for every new connection, because a container's published
/// port changes when it restarts.
pub trait Upstream: Send + Sync + 'static {
    /// The address to connect to now.
    fn resolve(&self) -> BoxFuture<'static, io::Result<SocketAddr>>;
}

/// A fixed address.
impl Upstream for SocketAddr {
    fn resolve(&self) -> BoxFuture<'static, io::Result<SocketAddr>> {
        let addr = *self;
        Box::pin(async move { Ok(addr) })
    }
}

/// A running proxy. Dropping it stops it without waiting; [`Proxy::shutdown`] waits.
#[must_use = "the proxy stops when dropped; keep it and call `shutdown`"]
pub struct Proxy {
    inner: Arc<Inner>,
    local_addrs: Vec<SocketAddr>,
}

/// What the proxy's tasks share.
pub(crate) struct Inner {
    pub(crate) seed: u64,
    pub(crate) http: bool,
    pub(crate) upstream: Arc<dyn Upstream>,
    pub(crate) events: EventSink,
    pub(crate) shutdown: CancellationToken,
    pub(crate) bytes_up: Arc<AtomicU64>,
    pub(crate) bytes_down: Arc<AtomicU64>,
    connections: AtomicU64,
    tracker: TaskTracker,
    down: watch::Sender<bool>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_toxic: u64,
    next_conn: u64,
    /// In the order they were added, which is the order of their stages.
    toxics: BTreeMap<ToxicId, ToxicSpec>,
    downs: BTreeSet<ToxicId>,
    conns: HashMap<ConnId, mpsc::UnboundedSender<ConnCommand>>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("proxy state lock poisoned")
    }

    fn emit(&self, event: ProxyEvent) {
        (self.events)(event);
    }
}

impl Proxy {
    /// Bind every listen address and start accepting.
    pub async fn start(
        cfg: ProxyConfig,
        upstream: Arc<dyn Upstream>,
        events: Arc<dyn Fn(ProxyEvent) + Send + Sync>,
    ) -> io::Result<Proxy> {
        let mut listeners = Vec::with_capacity(cfg.listen.len());
        for addr in &cfg.listen {
            listeners.push(TcpListener::bind(addr).await?);
        }
        let local_addrs =
            listeners.iter().map(TcpListener::local_addr).collect::<io::Result<Vec<_>>>()?;
        let inner = Arc::new(Inner {
            seed: cfg.seed,
            http: cfg.http,
            upstream,
            events,
            shutdown: CancellationToken::new(),
            bytes_up: Arc::new(AtomicU64::new(0)),
            bytes_down: Arc::new(AtomicU64::new(0)),
            connections: AtomicU64::new(0),
            tracker: TaskTracker::new(),
            down: watch::Sender::new(false),
            state: Mutex::new(State::default()),
        });
        for (listener, addr) in listeners.into_iter().zip(&local_addrs) {
            inner.tracker.spawn(accept_loop(inner.clone(), listener, *addr));
        }
        Ok(Proxy { inner, local_addrs })
    }

    /// The bound addresses, in `listen` order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Add a toxic. It acts on live connections (appended to their chains) and on new ones.
    pub fn add(&self, spec: ToxicSpec) -> ToxicId {
        let id = {
            let mut state = self.inner.state();
            state.next_toxic += 1;
            ToxicId(state.next_toxic)
        };
        // Announced before any connection can report it applied.
        self.inner.emit(ProxyEvent::ToxicAdded { id, spec: spec.clone() });
        let mut state = self.inner.state();
        if matches!(spec.kind, ToxicKind::Down) {
            state.downs.insert(id);
            for commands in state.conns.values() {
                let _ = commands.send(ConnCommand::Close(CloseReason::Down { id }));
            }
            self.inner.down.send_replace(true);
        } else {
            for commands in state.conns.values() {
                let _ = commands.send(ConnCommand::Add(id, spec.clone()));
            }
        }
        state.toxics.insert(id, spec);
        id
    }

    /// Remove a toxic. Stages holding data (a sleeping latency, a held timeout) flush it onward
    /// in order; removing the last `down` toxic binds the listeners again. Unknown ids are ignored.
    pub fn remove(&self, id: ToxicId) {
        {
            let mut state = self.inner.state();
            if state.toxics.remove(&id).is_none() {
                return;
            }
            if state.downs.remove(&id) {
                if state.downs.is_empty() {
                    self.inner.down.send_replace(false);
                }
            } else {
                for commands in state.conns.values() {
                    let _ = commands.send(ConnCommand::Remove(id));
                }
            }
        }
        self.inner.emit(ProxyEvent::ToxicRemoved { id });
    }

    /// Counters since start.
    pub fn stats(&self) -> ProxyStats {
        let active = self.inner.state().conns.len() as u64;
        ProxyStats {
            connections: self.inner.connections.load(Ordering::Relaxed),
            active,
            bytes_up: self.inner.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.inner.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// Close the listeners and every connection, and wait for all of the proxy's tasks.
    pub async fn shutdown(self) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // A safety net: the tasks see the token and end on their own.
        self.inner.shutdown.cancel();
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener, addr: SocketAddr) {
    let mut listener = Some(listener);
    let mut down = inner.down.subscribe();
    loop {
        let is_down = *down.borrow_and_update();
        if is_down && listener.is_some() {
            listener = None;
            inner.emit(ProxyEvent::ListenerClosed { addr });
        } else if !is_down && listener.is_none() {
            match down::rebind(addr).await {
                Ok(bound) => {
                    listener = Some(bound);
                    inner.emit(ProxyEvent::ListenerOpened { addr });
                }
                Err(error) => {
                    inner.emit(ProxyEvent::ListenerFailed { addr, error: error.to_string() });
                    return;
                }
            }
        }
        let accept = async {
            match &listener {
                Some(listener) => listener.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = inner.shutdown.cancelled() => return,
            changed = down.changed() => if changed.is_err() { return },
            accepted = accept => {
                if let Ok((stream, peer)) = accepted {
                    admit(&inner, stream, peer);
                }
            }
        }
    }
}

/// Register an accepted client and start its connection task.
fn admit(inner: &Arc<Inner>, stream: TcpStream, peer: SocketAddr) {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (conn, toxics, down) = {
        let mut state = inner.state();
        state.next_conn += 1;
        let conn = ConnId(state.next_conn);
        let down = state.downs.first().copied();
        if down.is_none() {
            state.conns.insert(conn, commands_tx);
        }
        let toxics: Vec<_> = state.toxics.iter().map(|(id, spec)| (*id, spec.clone())).collect();
        (conn, toxics, down)
    };
    inner.connections.fetch_add(1, Ordering::Relaxed);
    inner.emit(ProxyEvent::Accepted { conn, peer });
    if let Some(id) = down {
        drop(stream);
        inner.emit(ProxyEvent::Closed {
            conn,
            bytes_up: 0,
            bytes_down: 0,
            reason: CloseReason::Down { id },
        });
        return;
    }
    let task_inner = inner.clone();
    inner.tracker.spawn(async move {
        conn::run(task_inner.clone(), conn, stream, commands, toxics).await;
        task_inner.state().conns.remove(&conn);
    });
}
