//! The scripted model of a fake instance: how it starts, answers, fails and exits.

use std::collections::BTreeMap;
use std::time::Duration;

/// How a fake instance behaves, from its start to its end. Built with the constructors and the
/// chained setters; every setter returns the model, so a scenario's services read as one line
/// (`FakeService::healthy_after(ms(20)).version("1.0").status("/orders", 500)`).
///
/// What it models: readiness after a delay (before it, connections to its ports are closed at
/// once, exec health checks exit 1), HTTP answers per path (status, body, latency), the version
/// endpoint, TCP exchanges, exec commands' exit codes and output, one-shot commands that exit,
/// crashes (on start, after a delay, out of memory), a start the backend refuses or never
/// carries out (a stalled orchestrator), faults that
/// fail to apply or revert, and its log lines.
#[derive(Debug, Clone)]
pub struct FakeService {
    /// From start to ready; `None`: never ready.
    pub(super) ready_after: Option<Duration>,
    /// Reported version (`None`: the image's tag).
    pub(super) version: Option<String>,
    /// Where the version is answered.
    pub(super) version_path: String,
    /// Status per path (others: `default_status`, or `201` for a POST and `200` otherwise).
    pub(super) statuses: BTreeMap<String, u16>,
    /// Status of every other path.
    pub(super) default_status: Option<u16>,
    /// Delay before every HTTP answer.
    pub(super) latency: Duration,
    /// TCP exchanges: an incoming chunk containing the key is answered with the value; anything
    /// else is echoed.
    pub(super) tcp_replies: Vec<(String, String)>,
    /// Exec results by the command's first word (others exit 0).
    pub(super) execs: BTreeMap<String, (i64, String)>,
    /// One-shot commands by first word: an instance started with such a `command` exits with the
    /// code after the delay.
    pub(super) one_shots: BTreeMap<String, (i64, Duration)>,
    /// Exits with this code right after it started.
    pub(super) crash_on_start: Option<i64>,
    /// Exits with the code this long after each start.
    pub(super) crash_after: Option<(Duration, i64)>,
    /// Killed by the out-of-memory killer this long after each start.
    pub(super) oom_after: Option<Duration>,
    /// Starting it fails with this message.
    pub(super) start_error: Option<String>,
    /// The failed start is a stalled backend's (kind `Stalled`), not a refusal.
    pub(super) start_stalls: bool,
    /// Applying a fault to it fails.
    pub(super) fault_apply_fails: bool,
    /// Reverting a fault on it fails.
    pub(super) fault_revert_fails: bool,
    /// Log lines it writes when it becomes ready.
    pub(super) log_lines: Vec<String>,
}

impl Default for FakeService {
    /// Ready 50 ms after its start, `200` on every path (`201` to a POST), its image's tag as
    /// its version.
    fn default() -> Self {
        FakeService::healthy_after(Duration::from_millis(50))
    }
}

impl FakeService {
    /// Ready `delay` after each start; `201` to a POST and `200` to anything else on every path
    /// (with a JSON body carrying an `id`); the image's tag as version;
    /// `PING` answered `+PONG` on TCP (as Redis does), anything else echoed.
    pub fn healthy_after(delay: Duration) -> Self {
        FakeService {
            ready_after: Some(delay),
            version: None,
            version_path: "/version".to_owned(),
            statuses: BTreeMap::new(),
            default_status: None,
            latency: Duration::ZERO,
            tcp_replies: vec![("PING".to_owned(), "+PONG\r\n".to_owned())],
            execs: BTreeMap::new(),
            one_shots: BTreeMap::new(),
            crash_on_start: None,
            crash_after: None,
            oom_after: None,
            start_error: None,
            start_stalls: false,
            fault_apply_fails: false,
            fault_revert_fails: false,
            log_lines: Vec::new(),
        }
    }

    /// Runs but never becomes ready: its ports close every connection at once, its exec health
    /// check exits 1.
    pub fn never_healthy() -> Self {
        FakeService { ready_after: None, ..FakeService::healthy_after(Duration::ZERO) }
    }

    /// Exits with `code` right after its start (the start itself succeeds).
    pub fn crash_on_start(code: i64) -> Self {
        FakeService { crash_on_start: Some(code), ..FakeService::never_healthy() }
    }

    /// The backend refuses to start it, with `message`.
    pub fn start_fails(message: &str) -> Self {
        FakeService { start_error: Some(message.to_owned()), ..FakeService::default() }
    }

    /// The backend takes its start but never carries it out, as a stalled Swarm does (an update
    /// that got no task): the start fails with `message` and kind `Stalled`.
    pub fn start_stalls(message: &str) -> Self {
        FakeService { start_stalls: true, ..FakeService::start_fails(message) }
    }

    /// The version it reports (`{"version":"V"}` on the version path).
    pub fn version(mut self, version: &str) -> Self {
        self.version = Some(version.to_owned());
        self
    }

    /// Where it answers its version (default `/version`).
    pub fn version_path(mut self, path: &str) -> Self {
        self.version_path = path.to_owned();
        self
    }

    /// Answer `path` with `status`.
    pub fn status(mut self, path: &str, status: u16) -> Self {
        self.statuses.insert(path.to_owned(), status);
        self
    }

    /// Answer every path without its own status with `status`, whatever the method.
    pub fn default_status(mut self, status: u16) -> Self {
        self.default_status = Some(status);
        self
    }

    /// Wait `latency` before every HTTP answer.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Answer a TCP chunk containing `needle` with `reply`.
    pub fn tcp_reply(mut self, needle: &str, reply: &str) -> Self {
        self.tcp_replies.push((needle.to_owned(), reply.to_owned()));
        self
    }

    /// An exec whose first word is `command` exits with `code` and prints `output`.
    pub fn exec(mut self, command: &str, code: i64, output: &str) -> Self {
        self.execs.insert(command.to_owned(), (code, output.to_owned()));
        self
    }

    /// An instance started with `command` (its first word) as its command exits with `code`
    /// after `after` (a migration one-shot, say).
    ///
    /// Without a script, an instance started with a `command`, no ports and no health check
    /// (the engine's migration containers) exits 0 at once; one with ports or a health check
    /// runs as a server.
    pub fn one_shot(mut self, command: &str, code: i64, after: Duration) -> Self {
        self.one_shots.insert(command.to_owned(), (code, after));
        self
    }

    /// Exits with `code` `after` each start.
    pub fn crash_after(mut self, after: Duration, code: i64) -> Self {
        self.crash_after = Some((after, code));
        self
    }

    /// Killed by the out-of-memory killer `after` each start.
    pub fn oom_after(mut self, after: Duration) -> Self {
        self.oom_after = Some(after);
        self
    }

    /// Applying a fault to it fails.
    pub fn fault_apply_fails(mut self) -> Self {
        self.fault_apply_fails = true;
        self
    }

    /// Reverting a fault on it fails.
    pub fn fault_revert_fails(mut self) -> Self {
        self.fault_revert_fails = true;
        self
    }

    /// A line it logs when it becomes ready (before `fake: ready`).
    pub fn log(mut self, line: &str) -> Self {
        self.log_lines.push(line.to_owned());
        self
    }
}
