//! Links through the fault proxy: one [`Proxy`] per `stack.links` entry for the run's lifetime.
//! The link fault steps (`latency`, `cut`, …) that add proxy faults ("toxics") to them are
//! `engine/steps/link_fault.rs`.
//!
//! At bring-up, after the run's network exists and before the first service starts, each link
//! gets a proxy listening on the network's gateway (for the containers, as
//! `host.docker.internal`) and on `127.0.0.1` (for the harness and tests), both on free ports;
//! its upstream is the dependency's published port on `127.0.0.1`, looked up again for every new
//! connection (it changes when the container restarts; the replicas in rotation are taken in
//! turn). Every [`ProxyEvent`] becomes a `link-activity` journal event. Teardown shuts the proxies
//! down (open connections end); should teardown not be reached, dropping [`LinkProxies`] stops
//! them.
//!
//! Link faults are not written to the fault ledger: a proxy lives inside the harness process, so
//! whatever kills the harness also removes every fault it holds.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use indexmap::IndexMap;

use super::run::Context;
use super::{Endpoints, EngineError};
use crate::backend::RunScope;
use crate::faults::SeededRng;
use crate::journal::{EventKind, Journal};
use crate::proxy::{Proxy, ProxyConfig, ToxicId, ToxicSpec, Upstream};
use crate::scenario::model::{Link, Scenario};

/// Mixed into the run's seed so that link seeds differ from the step seeds drawn from it.
const LINK_SALT: u64 = 0x6C69_6E6B_5F73_6565;

/// The run's link proxies, by link name. Shared through the [`Context`], so link fault steps
/// reach them from anywhere on the timeline (inside `parallel` groups too).
#[derive(Default)]
pub struct LinkProxies {
    proxies: Mutex<IndexMap<String, Proxy>>,
}

impl LinkProxies {
    fn lock(&self) -> std::sync::MutexGuard<'_, IndexMap<String, Proxy>> {
        self.proxies.lock().expect("link proxies lock poisoned")
    }

    /// Add a proxy fault to a link's proxy; `None` when the link has no proxy (not started).
    pub(super) fn add(&self, link: &str, spec: ToxicSpec) -> Option<ToxicId> {
        self.lock().get(link).map(|proxy| proxy.add(spec))
    }

    /// Remove a proxy fault; what it held is delivered onward.
    pub(super) fn remove(&self, link: &str, id: ToxicId) {
        if let Some(proxy) = self.lock().get(link) {
            proxy.remove(id);
        }
    }

    /// Stop every proxy, waiting for their connections to end.
    pub(super) async fn shutdown(&self) {
        let proxies: Vec<Proxy> = self.lock().drain(..).map(|(_, proxy)| proxy).collect();
        for proxy in proxies {
            proxy.shutdown().await;
        }
    }
}

/// The seed of link number `index`'s proxy.
pub(super) fn link_seed(seed: u64, index: usize) -> u64 {
    SeededRng::for_step(seed ^ LINK_SALT, index).next_u64()
}

/// Start one proxy per link and fill `endpoints.links` with their gateway ports.
pub(super) async fn start_links(
    ctx: &Context,
    scenario: &Scenario,
    stack: &Arc<dyn RunScope>,
    endpoints: &mut Endpoints,
) -> Result<(), EngineError> {
    if scenario.stack.links.is_empty() {
        return Ok(());
    }
    let gateway = stack.harness_address();
    for (index, link) in scenario.stack.links.values().enumerate() {
        let Some(gateway) = gateway else {
            return Err(EngineError::Link {
                link: link.name.clone(),
                source: io::Error::other(
                    "the backend reported no address where the run's services reach the harness",
                ),
            });
        };
        let cfg = ProxyConfig {
            name: link.name.clone(),
            listen: vec![
                SocketAddr::new(gateway, 0),
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            ],
            seed: link_seed(ctx.seed, index),
            http: link.http,
        };
        let upstream = Arc::new(StackUpstream {
            stack: stack.clone(),
            service: link.to.clone(),
            port: link.port,
            turn: AtomicUsize::new(0),
        });
        let proxy = Proxy::start(cfg, upstream, journal_events(&ctx.journal, &link.name))
            .await
            .map_err(|source| EngineError::Link { link: link.name.clone(), source })?;
        let addrs = proxy.local_addrs().to_vec();
        endpoints.links.insert(link.name.clone(), addrs[0].port());
        record_started(&ctx.journal, link, &addrs);
        ctx.links.lock().insert(link.name.clone(), proxy);
    }
    Ok(())
}

fn record_started(journal: &Journal, link: &Link, addrs: &[SocketAddr]) {
    journal.record(EventKind::LinkStarted {
        link: link.name.clone(),
        from: link.from.clone(),
        to: link.to.clone(),
        port: link.port,
        http: link.http,
        addrs: addrs.iter().map(ToString::to_string).collect(),
    });
}

/// Every proxy event as a `link-activity` journal event. Recording is a short append (and a
/// line to `journal.jsonl`), so it is done right in the proxy's callback.
fn journal_events(
    journal: &Journal,
    link: &str,
) -> Arc<dyn Fn(crate::proxy::ProxyEvent) + Send + Sync> {
    let journal = journal.clone();
    let link = link.to_owned();
    Arc::new(move |event| {
        journal.record(EventKind::LinkActivity {
            link: link.clone(),
            detail: serde_json::to_value(&event).expect("proxy events serialize"),
        });
    })
}

/// The dependency's published port on 127.0.0.1, looked up for every new connection; the
/// replicas in rotation are taken in turn.
struct StackUpstream {
    stack: Arc<dyn RunScope>,
    service: String,
    port: u16,
    turn: AtomicUsize,
}

impl Upstream for StackUpstream {
    fn resolve(&self) -> BoxFuture<'static, io::Result<SocketAddr>> {
        let stack = self.stack.clone();
        let service = self.service.clone();
        let port = self.port;
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let ports = stack
                .host_ports(&service, port)
                .await
                .map_err(|error| io::Error::other(error.to_string()))?;
            if ports.is_empty() {
                return Err(io::Error::other(format!("`{service}` has no replica in rotation")));
            }
            let host_port = ports[turn % ports.len()];
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), host_port))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_seeds_differ_per_link_and_repeat_per_seed() {
        assert_eq!(link_seed(7, 0), link_seed(7, 0));
        assert_ne!(link_seed(7, 0), link_seed(7, 1));
        assert_ne!(link_seed(7, 0), link_seed(8, 0));
    }
}
