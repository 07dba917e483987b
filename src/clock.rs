//! The only source of "now" and of sleeping.
//!
//! Everything that needs the time takes a [`Clock`]: the engine, the journal, health monitors,
//! probes. [`SystemClock`] reads tokio's clock (so engine tests can run on paused time) and the
//! system's wall clock; [`ManualClock`] is moved by hand in unit tests. No other module calls
//! `Instant::now`, `SystemTime::now` or `tokio::time::sleep` (clippy's `disallowed-methods` enforces
//! it).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Time as the harness sees it.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time since the clock's origin (the run's start).
    fn offset(&self) -> Duration;
    /// The current UTC wall time.
    fn wall(&self) -> jiff::Timestamp;
    /// Move the origin to now (a new run on a kept stack starts its journal at 0). Clocks that
    /// cannot move ignore it.
    fn restart(&self) {}
}

/// Tokio's monotonic clock plus the system wall clock, with its origin at construction.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
    wall_origin: jiff::Timestamp,
}

impl SystemClock {
    /// A clock whose offset 0 is now.
    #[expect(clippy::disallowed_methods, reason = "the clock module is where now is read")]
    pub fn start() -> Self {
        SystemClock { origin: Instant::now(), wall_origin: jiff::Timestamp::now() }
    }

    /// The tokio instant at a given offset, for `sleep_until`.
    pub fn instant_at(&self, offset: Duration) -> Instant {
        self.origin + offset
    }
}

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "the clock module is where now is read")]
    fn offset(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    fn wall(&self) -> jiff::Timestamp {
        // Derived from the monotonic offset, so wall times and offsets never disagree within a run
        // (and paused-time tests get deterministic wall times).
        self.wall_origin
            .checked_add(jiff::SignedDuration::try_from(self.offset()).unwrap_or_default())
            .unwrap_or(self.wall_origin)
    }
}

/// [`SystemClock`] whose origin [`Clock::restart`] moves to now: the clock of runs on a stack
/// kept between them (`explore: { reuse-stack: true }`), each of which journals from offset 0.
#[derive(Debug)]
pub struct SegmentClock {
    current: Mutex<SystemClock>,
}

impl SegmentClock {
    /// A clock whose offset 0 is now.
    pub fn start() -> Self {
        SegmentClock { current: Mutex::new(SystemClock::start()) }
    }
}

impl Clock for SegmentClock {
    fn offset(&self) -> Duration {
        self.current.lock().expect("clock lock poisoned").offset()
    }

    fn wall(&self) -> jiff::Timestamp {
        self.current.lock().expect("clock lock poisoned").wall()
    }

    fn restart(&self) {
        *self.current.lock().expect("clock lock poisoned") = SystemClock::start();
    }
}

/// A clock moved by hand, for unit tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Duration>,
    wall_origin: jiff::Timestamp,
}

impl ManualClock {
    /// At offset 0, wall time 2026-12-05T21:00:00Z.
    pub fn new() -> Self {
        ManualClock {
            now: Mutex::new(Duration::ZERO),
            wall_origin: "2026-12-05T21:00:00Z".parse().expect("valid timestamp"),
        }
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        *self.now.lock().expect("clock lock poisoned") += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn offset(&self) -> Duration {
        *self.now.lock().expect("clock lock poisoned")
    }

    fn wall(&self) -> jiff::Timestamp {
        self.wall_origin
            .checked_add(jiff::SignedDuration::try_from(self.offset()).unwrap_or_default())
            .unwrap_or(self.wall_origin)
    }
}

/// Sleep for `duration` on tokio's clock (paused in tests).
#[expect(clippy::disallowed_methods, reason = "the clock module is where sleeping happens")]
pub async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await;
}

/// Tokio's now, for deadlines inside one task.
#[expect(clippy::disallowed_methods, reason = "the clock module is where now is read")]
pub fn instant_now() -> Instant {
    Instant::now()
}
