//! The connections one sink serves, on every address it listens on: at most
//! [`MAX_CONNECTIONS`](super::MAX_CONNECTIONS) at once, and which of them are idle.
//!
//! A connection is *idle* while the sink waits for its client to begin something — an SMTP
//! command, an HTTP request — and *busy* while a command or request is handled (an SMTP `DATA`
//! transfer, an `AUTH` exchange, a mail held by chaos, an HTTP request from its head to its
//! answer). When the cap is reached, a new connection is admitted by evicting the connection that
//! has been idle longest; only when none is idle is the new one refused. "Longest" is an order of
//! events (a counter bumped each time a connection becomes idle), not a time reading, so the
//! registry needs no clock.
//!
//! Eviction and the busy transition happen under one lock: a connection that became busy can no
//! longer be evicted, and one that was evicted learns it when it tries to become busy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// Every connection of one sink.
pub(crate) struct Connections {
    capacity: usize,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    /// Bumped whenever a connection becomes idle: a smaller value has been idle longer.
    tick: u64,
    open: HashMap<u64, Entry>,
}

struct Entry {
    peer: SocketAddr,
    /// `Some(tick)` while idle, since that tick.
    idle_since: Option<u64>,
    evict: CancellationToken,
}

/// What [`Connections::admit`] decided.
pub(crate) enum Admission {
    /// Served; there was room.
    Admitted(Slot),
    /// Served, after closing the connection from this peer, the one idle longest.
    Evicted(Slot, SocketAddr),
    /// Every connection is busy: the new one is closed.
    Refused,
}

impl Connections {
    /// Room for `capacity` connections at once.
    pub(crate) fn new(capacity: usize) -> Arc<Connections> {
        Arc::new(Connections { capacity, registry: Mutex::new(Registry::default()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // The registry is plain data; a panic elsewhere while holding it leaves it usable.
        self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admit a connection from `peer`, evicting the longest idle one when the cap is reached. The
    /// new connection starts idle (the sink waits for its client first).
    pub(crate) fn admit(self: &Arc<Self>, peer: SocketAddr) -> Admission {
        let mut registry = self.lock();
        let mut evicted = None;
        if registry.open.len() >= self.capacity {
            let oldest = registry
                .open
                .iter()
                .filter_map(|(id, entry)| entry.idle_since.map(|since| (since, *id)))
                .min();
            let Some((_, id)) = oldest else { return Admission::Refused };
            let entry = registry.open.remove(&id).expect("the id was just found");
            entry.evict.cancel();
            evicted = Some(entry.peer);
        }
        let id = registry.next_id;
        registry.next_id += 1;
        registry.tick += 1;
        let evict = CancellationToken::new();
        let since = registry.tick;
        registry.open.insert(id, Entry { peer, idle_since: Some(since), evict: evict.clone() });
        let slot = Slot { id, connections: self.clone(), evict };
        match evicted {
            Some(peer) => Admission::Evicted(slot, peer),
            None => Admission::Admitted(slot),
        }
    }

    /// Connections open right now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.lock().open.len()
    }
}

/// One admitted connection; dropping it frees its place.
pub(crate) struct Slot {
    id: u64,
    connections: Arc<Connections>,
    evict: CancellationToken,
}

impl Slot {
    /// The sink now waits for the client: the connection may be evicted.
    pub(crate) fn idle(&self) {
        let mut registry = self.connections.lock();
        registry.tick += 1;
        let tick = registry.tick;
        if let Some(entry) = registry.open.get_mut(&self.id) {
            entry.idle_since.get_or_insert(tick);
        }
    }

    /// The client began something: the connection is no longer evictable. False when it was
    /// evicted already (the caller closes it without handling what arrived).
    pub(crate) fn busy(&self) -> bool {
        let mut registry = self.connections.lock();
        match registry.open.get_mut(&self.id) {
            Some(entry) => {
                entry.idle_since = None;
                true
            }
            None => false,
        }
    }

    /// Resolves once the connection has been evicted.
    pub(crate) fn evicted(&self) -> WaitForCancellationFuture<'_> {
        self.evict.cancelled()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn admitted(admission: Admission) -> Slot {
        match admission {
            Admission::Admitted(slot) => slot,
            _ => panic!("expected room"),
        }
    }

    #[test]
    fn the_longest_idle_connection_goes_first_and_busy_ones_never() {
        let connections = Connections::new(3);
        let a = admitted(connections.admit(peer(1)));
        let b = admitted(connections.admit(peer(2)));
        let c = admitted(connections.admit(peer(3)));
        // `a` works, then waits again: now `b` has waited longest.
        assert!(a.busy());
        a.idle();
        assert!(c.busy());
        let Admission::Evicted(d, gone) = connections.admit(peer(4)) else { panic!("no eviction") };
        assert_eq!(gone, peer(2));
        assert!(b.evict.is_cancelled() && !a.evict.is_cancelled());
        assert!(!b.busy(), "an evicted connection learns it when it wakes up");
        assert_eq!(connections.open(), 3);
        // `a` is the only idle one left; then nobody is.
        assert!(d.busy());
        let Admission::Evicted(_e, gone) = connections.admit(peer(5)) else { panic!() };
        assert_eq!(gone, peer(1));
        let Admission::Evicted(_f, gone) = connections.admit(peer(6)) else { panic!() };
        assert_eq!(gone, peer(5));
        drop(b);
        assert_eq!(connections.open(), 3, "dropping an evicted slot frees nothing twice");
    }

    #[test]
    fn every_busy_connection_means_refusal_and_a_closed_one_makes_room() {
        let connections = Connections::new(2);
        let a = admitted(connections.admit(peer(1)));
        let b = admitted(connections.admit(peer(2)));
        assert!(a.busy() && b.busy());
        assert!(matches!(connections.admit(peer(3)), Admission::Refused));
        drop(a);
        assert!(matches!(connections.admit(peer(3)), Admission::Admitted(_)));
    }
}
