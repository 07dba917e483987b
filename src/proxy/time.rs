//! The proxy's reading of time. It depends on nothing else in the crate, so it reads tokio's clock
//! here, the same clock `clock` reads (paused in tests), and nowhere else in the module.

use tokio::time::Instant;

/// Tokio's now.
#[expect(clippy::disallowed_methods, reason = "the proxy's one reading of tokio's clock")]
pub(crate) fn now() -> Instant {
    Instant::now()
}
