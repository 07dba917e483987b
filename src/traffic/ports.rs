//! The host ports of the target service, looked up through the caller's resolver and cached.
//!
//! The ports change whenever the service's containers are restarted or replaced, so a connection
//! failure marks the cached ports stale. Lookups are rate-limited (at most one per
//! [`MIN_LOOKUP_INTERVAL`]) and serialized, so a restart costs a few failed requests rather than a
//! storm of `docker inspect` calls. A replicated service answers several ports (one per replica
//! in rotation): requests take them in turn, and a change of the rotation (announced through the
//! resolver's counter) makes the next request look them up again at once, so a replica taken out
//! for replacement stops getting requests before it stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::clock;

type Lookup = Arc<dyn Fn() -> BoxFuture<'static, Result<Vec<u16>, String>> + Send + Sync>;

/// Looks up the host ports (on 127.0.0.1) where the traffic's target is published right now.
///
/// Called again after connection failures, because the ports change when the service's
/// containers are restarted or replaced. An `Err` says why there is no port (e.g. the container
/// is stopped); it becomes the error of the requests that needed the port.
#[derive(Clone)]
pub struct PortResolver {
    lookup: Lookup,
    changes: Option<Arc<AtomicU64>>,
}

impl PortResolver {
    /// One port (a single-container service).
    pub fn new(
        lookup: impl Fn() -> BoxFuture<'static, Result<u16, String>> + Send + Sync + 'static,
    ) -> Self {
        let lookup = Arc::new(lookup);
        PortResolver {
            lookup: Arc::new(move || {
                let one = lookup();
                Box::pin(async move { one.await.map(|port| vec![port]) })
            }),
            changes: None,
        }
    }

    /// Several ports taken in turn (the replicas in rotation); `changes` is bumped whenever the
    /// set changes, which makes the cache look them up again before the next request.
    pub fn many(
        lookup: impl Fn() -> BoxFuture<'static, Result<Vec<u16>, String>> + Send + Sync + 'static,
        changes: Arc<AtomicU64>,
    ) -> Self {
        PortResolver { lookup: Arc::new(lookup), changes: Some(changes) }
    }

    /// A resolver that always answers `port`.
    pub fn fixed(port: u16) -> Self {
        PortResolver::new(move || Box::pin(async move { Ok(port) }))
    }
}

/// Shortest time between two lookups of the same stream.
pub(crate) const MIN_LOOKUP_INTERVAL: Duration = Duration::from_millis(250);

/// A port handed to one request, with the lookup it came from: only a failure on the current
/// lookup's port makes it stale again (requests that went out before the last lookup do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub port: u16,
    generation: u64,
}

struct State {
    current: Result<Vec<u16>, String>,
    generation: u64,
    stale: bool,
    last_lookup: Option<Instant>,
    /// The resolver's change counter at the last lookup.
    seen_changes: u64,
}

/// The cached ports of one target.
pub(crate) struct PortCache {
    resolve: PortResolver,
    lookup_timeout: Duration,
    // A tokio mutex: a lookup is awaited while holding it, so concurrent requests wait for its
    // answer instead of starting their own.
    state: tokio::sync::Mutex<State>,
    /// Round-robin position over several ports.
    next: AtomicUsize,
}

impl PortCache {
    /// A cache that has not looked anything up yet; a lookup taking longer than `lookup_timeout`
    /// counts as failed.
    pub fn new(resolve: PortResolver, lookup_timeout: Duration) -> Self {
        PortCache {
            resolve,
            lookup_timeout,
            state: tokio::sync::Mutex::new(State {
                current: Err("the port was not looked up yet".to_owned()),
                generation: 0,
                stale: true,
                last_lookup: None,
                seen_changes: 0,
            }),
            next: AtomicUsize::new(0),
        }
    }

    /// The port to use now: the cached one, or a fresh lookup when the cached one is stale and
    /// the last lookup is at least [`MIN_LOOKUP_INTERVAL`] old, or at once when the rotation
    /// changed. Within that interval a stale port is handed out as it is (or the last lookup's
    /// error returned).
    pub async fn get(&self) -> Result<Lease, String> {
        let mut state = self.state.lock().await;
        let now = clock::instant_now();
        let changes = self.resolve.changes.as_ref().map(|c| c.load(Ordering::Acquire));
        let rotated = changes.is_some_and(|changes| changes != state.seen_changes);
        let lookup_due = rotated
            || state.stale
                && state
                    .last_lookup
                    .is_none_or(|at| now.saturating_duration_since(at) >= MIN_LOOKUP_INTERVAL);
        if lookup_due {
            state.last_lookup = Some(now);
            state.seen_changes = changes.unwrap_or(0);
            let lookup = (self.resolve.lookup)();
            let result = match tokio::time::timeout(self.lookup_timeout, lookup).await {
                Ok(Ok(ports)) if ports.is_empty() => Err("no replica is in rotation".to_owned()),
                Ok(result) => result,
                Err(_) => Err(format!(
                    "the port lookup did not answer within {}",
                    crate::scenario::format_duration(self.lookup_timeout)
                )),
            };
            state.generation += 1;
            // A failed lookup stays stale, so it is retried after the interval.
            state.stale = result.is_err();
            state.current = result;
        }
        match &state.current {
            Ok(ports) => {
                let port = ports[self.next.fetch_add(1, Ordering::Relaxed) % ports.len()];
                Ok(Lease { port, generation: state.generation })
            }
            Err(error) => Err(error.clone()),
        }
    }

    /// A request on `lease` failed at the connection level (refused, reset, closed): look the
    /// port up again when next allowed.
    pub async fn connection_failed(&self, lease: Lease) {
        let mut state = self.state.lock().await;
        if state.generation == lease.generation {
            state.stale = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU16;

    use super::*;

    fn counting_resolver(port: Arc<AtomicU16>, calls: Arc<AtomicUsize>) -> PortResolver {
        PortResolver::new(move || {
            let port = port.clone();
            let calls = calls.clone();
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                match port.load(Ordering::SeqCst) {
                    0 => Err("service `billing` is not running".to_owned()),
                    port => Ok(port),
                }
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn looks_up_once_then_only_after_failures_and_at_most_every_250ms() {
        let port = Arc::new(AtomicU16::new(1000));
        let calls = Arc::new(AtomicUsize::new(0));
        let cache =
            PortCache::new(counting_resolver(port.clone(), calls.clone()), Duration::from_secs(1));

        let lease = cache.get().await.unwrap();
        assert_eq!(lease.port, 1000);
        for _ in 0..10 {
            assert_eq!(cache.get().await.unwrap(), lease);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // The service moves; the first failure after a quiet period looks up at once.
        port.store(2000, Ordering::SeqCst);
        clock::sleep(Duration::from_secs(1)).await;
        cache.connection_failed(lease).await;
        let moved = cache.get().await.unwrap();
        assert_eq!(moved.port, 2000);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // A late failure of a request that used the old port does not trigger another lookup.
        cache.connection_failed(lease).await;
        assert_eq!(cache.get().await.unwrap(), moved);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Failures on the current port: the next lookup waits for the interval.
        port.store(3000, Ordering::SeqCst);
        cache.connection_failed(moved).await;
        clock::sleep(Duration::from_millis(100)).await;
        assert_eq!(cache.get().await.unwrap().port, 2000, "within 250 ms of the last lookup");
        clock::sleep(Duration::from_millis(150)).await;
        assert_eq!(cache.get().await.unwrap().port, 3000);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_lookup_is_the_error_and_is_retried_after_the_interval() {
        let port = Arc::new(AtomicU16::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let cache =
            PortCache::new(counting_resolver(port.clone(), calls.clone()), Duration::from_secs(1));
        assert_eq!(cache.get().await.unwrap_err(), "service `billing` is not running");
        port.store(4000, Ordering::SeqCst);
        assert!(cache.get().await.is_err(), "no second lookup within 250 ms");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock::sleep(MIN_LOOKUP_INTERVAL).await;
        assert_eq!(cache.get().await.unwrap().port, 4000);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_lookup_times_out() {
        let resolve = PortResolver::new(|| Box::pin(std::future::pending()));
        let cache = PortCache::new(resolve, Duration::from_millis(500));
        assert_eq!(cache.get().await.unwrap_err(), "the port lookup did not answer within 500ms");
    }

    #[tokio::test(start_paused = true)]
    async fn replicas_take_turns_and_a_rotation_change_is_looked_up_at_once() {
        let ports = Arc::new(std::sync::Mutex::new(vec![1000, 2000, 3000]));
        let changes = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let (shared, counted) = (ports.clone(), calls.clone());
        let resolve = PortResolver::many(
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let ports = shared.lock().unwrap().clone();
                Box::pin(async move { Ok(ports) })
            },
            changes.clone(),
        );
        let cache = PortCache::new(resolve, Duration::from_secs(1));
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(cache.get().await.unwrap().port);
        }
        assert_eq!(seen, [1000, 2000, 3000, 1000, 2000, 3000]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Replica 2 leaves rotation: the very next request looks up, with no wait.
        *ports.lock().unwrap() = vec![1000, 3000];
        changes.fetch_add(1, Ordering::SeqCst);
        let after: Vec<u16> = [(); 4].iter().map(|_| 0).collect();
        let mut got = Vec::new();
        for _ in after {
            got.push(cache.get().await.unwrap().port);
        }
        assert!(!got.contains(&2000), "{got:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // No replica in rotation is an error, not a panic.
        ports.lock().unwrap().clear();
        changes.fetch_add(1, Ordering::SeqCst);
        assert_eq!(cache.get().await.unwrap_err(), "no replica is in rotation");
    }
}
