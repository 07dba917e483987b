//! `down`: the service is gone. Refuse new connections and close existing ones.
//!
//! **What it does.** While at least one `down` toxic is present, the proxy's listeners are closed,
//! so a connect is refused (`ECONNREFUSED`), and every open connection is closed (FIN to both
//! peers). Removing the last one binds the listeners again on the same addresses. It is not a
//! stage: `direction` and `toxicity` are ignored.
//!
//! **When to use it.** A dependency that is down or restarting: reconnect loops, fail-fast paths,
//! health checks, fallbacks.
//!
//! **Example.** `ToxicKind::Down` on a database link for 30 s: the application's pool sees refused
//! connections until the toxic is removed.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Bind a listener again on the address it had before going down.
pub(crate) async fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
