//! The validated, immutable scenario: what the engine, stack and checks read.
//!
//! Everything here has been checked by `validate`: references point at declared services, ports and
//! steps; durations are positive; defaults are filled in. Paths are absolute (resolved against the
//! scenario file's folder). Nothing in this module parses YAML or talks to Docker.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

pub use super::metrics::{
    AlertCheck, AlertDeadline, AlertDelivered, AlertRouted, MetricsSource, PrometheusCheck,
    QueryWhen,
};

/// A scenario that passed validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// `name`: also the `firedrill.scenario` label value.
    pub name: String,
    /// `description`, free text for the report.
    pub description: Option<String>,
    /// The file this scenario was read from.
    pub source: PathBuf,
    /// The services to bring up.
    pub stack: Stack,
    /// `steady-state`: probes run before the first step and after the last one.
    pub steady_state: Vec<Probe>,
    /// `traffic`: live load kept up from the first step to the last, by name.
    pub traffic: IndexMap<String, Traffic>,
    /// `steps`: the timeline, run in order.
    pub steps: Vec<Step>,
    /// `expect`: the checks evaluated over the journal after the run.
    pub expect: Vec<Expectation>,
    /// `sinks`: notification sinks the harness runs, by name.
    pub sinks: IndexMap<String, Sink>,
    /// `maintenance`: when upgrades are allowed and how early customers must be told.
    pub maintenance: Option<crate::calendar::Policy>,
    /// `calendar`: the calendar time the timeline stands for (its first step starts at
    /// `start`), and how rehearsal time scales to it.
    pub calendar: Option<crate::calendar::Calendar>,
    /// `backend`: where the stack runs when `--backend` does not say (`None`: Docker).
    pub backend: Option<BackendChoice>,
}

impl Scenario {
    /// Every image the scenario runs: the services' and the upgrade targets', in order of first
    /// use, each once.
    pub fn image_sources(&self) -> Vec<&ImageSource> {
        let upgrades = self.all_steps().into_iter().filter_map(|step| match &step.action {
            Action::Upgrade(upgrade) => Some(&upgrade.target),
            _ => None,
        });
        let mut sources: Vec<&ImageSource> = Vec::new();
        for source in self.stack.services.values().map(|s| &s.image).chain(upgrades) {
            if !sources.iter().any(|seen| seen.reference() == source.reference()) {
                sources.push(source);
            }
        }
        sources
    }
}

impl Scenario {
    /// Mark the services a `clock-skew` step names: their containers are created with
    /// libfaketime preloaded from bring-up on (the preload must be there when the process starts).
    pub fn mark_clock_skewed(&mut self) {
        let skewed: Vec<String> = self
            .all_steps()
            .into_iter()
            .filter_map(|step| match &step.action {
                Action::Fault(fault) if matches!(fault.kind, FaultKind::ClockSkew { .. }) => {
                    Some(fault.service.clone())
                }
                _ => None,
            })
            .collect();
        for name in skewed {
            if let Some(service) = self.stack.services.get_mut(&name) {
                service.container.faketime = true;
            }
        }
    }

    /// Every step of the timeline in document order, the children of a `parallel` group right
    /// after the group (the order of their `index`).
    pub fn all_steps(&self) -> Vec<&Step> {
        fn walk<'a>(steps: &'a [Step], out: &mut Vec<&'a Step>) {
            for step in steps {
                out.push(step);
                if let Action::Parallel(children) = &step.action {
                    for child in children {
                        walk(std::slice::from_ref(&child.step), out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, &mut out);
        out
    }
}

/// The names of every upgrade step, nested ones included, in document order.
pub fn upgrade_steps(steps: &[Step]) -> Vec<String> {
    let mut names = Vec::new();
    for step in steps {
        match &step.action {
            Action::Upgrade(_) => names.push(step.name.clone()),
            Action::Parallel(children) => {
                let nested: Vec<Step> = children.iter().map(|c| c.step.clone()).collect();
                names.extend(upgrade_steps(&nested));
            }
            _ => {}
        }
    }
    names
}

/// `stack`: the services of the system under rehearsal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stack {
    /// Services in declaration order.
    pub services: IndexMap<String, Service>,
    /// `links`: dependencies routed through the fault proxy, by name.
    pub links: IndexMap<String, Link>,
    /// `compose`: the compose files the services came from, when they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeOrigin>,
}

/// Where a stack read from compose files came from, and what reading them noticed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComposeOrigin {
    /// The files, in merge order.
    pub files: Vec<PathBuf>,
    /// The selected profiles.
    pub profiles: Vec<String>,
    /// The compose project name (names images built without an `image:`).
    pub project: String,
    /// `FILE:LINE:COL: message` for every ignored key and unset variable.
    pub warnings: Vec<String>,
}

impl Stack {
    /// Services in an order where every service comes after everything it depends on (validation
    /// guarantees there is no cycle). Ties keep declaration order.
    pub fn start_order(&self) -> Vec<&Service> {
        let mut placed: Vec<&Service> = Vec::with_capacity(self.services.len());
        while placed.len() < self.services.len() {
            let before = placed.len();
            for service in self.services.values() {
                let done = |name: &str| placed.iter().any(|s| s.name == name);
                if !done(&service.name) && service.depends_on.iter().all(|d| done(d)) {
                    placed.push(service);
                }
            }
            assert!(placed.len() > before, "validation rejects dependency cycles");
        }
        placed
    }
}

/// One service of the stack: one container, reachable by its name on the run's network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// The key under `stack.services`; also the container's network alias.
    pub name: String,
    /// Where the image comes from.
    pub image: ImageSource,
    /// `env`, values possibly templated (`{{ services.db.host }}`).
    pub env: IndexMap<String, Template>,
    /// `command`: replaces the image's CMD when set.
    pub command: Option<Vec<String>>,
    /// `ports`: container ports, published on 127.0.0.1 for the harness.
    pub ports: Vec<u16>,
    /// `health`: how readiness and health are observed. Without one, a service is ready once its
    /// container runs.
    pub health: Option<HealthCheck>,
    /// `depends-on`: started (and healthy) before this one.
    pub depends_on: Vec<String>,
    /// `startup-timeout`: how long bring-up waits for the first healthy answer (default 60s).
    #[serde(with = "duration_serde")]
    pub startup_timeout: Duration,
    /// `backup: [argv]`: run inside this service's container before an upgrade that names it in
    /// `backup:` (e.g. `pg_dump`); must exit 0.
    pub backup: Option<Vec<String>>,
    /// `restore: [argv]`: run inside this service's container when that upgrade is rolled back
    /// (e.g. `pg_restore --clean`); must exit 0.
    pub restore: Option<Vec<String>>,
    /// `replicas`: how many identical containers serve the service (default 1). Each replica is
    /// `SERVICE.N` (1-based) on the network and in the journal; the service's name resolves to the
    /// replicas in rotation, and the harness spreads its traffic across them.
    pub replicas: u32,
    /// `pull`: when the service's images (its `image:`, its upgrade targets, the bases of its
    /// `build:`) are fetched from their registry (default `missing`).
    pub pull: PullPolicy,
    /// How the container is created beyond image, command and env: what a compose file can say
    /// (entrypoint, user, mounts, ...). All empty for a service written in firedrill's own format.
    pub container: ContainerSettings,
}

/// Container settings that come from a compose file (`stack.compose`); the default is "as the
/// image says".
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ContainerSettings {
    /// `entrypoint`: replaces the image's ENTRYPOINT when set (an empty list clears it).
    pub entrypoint: Option<Vec<String>>,
    /// `user`: `uid[:gid]` or a name.
    pub user: Option<String>,
    /// `working_dir`.
    pub working_dir: Option<String>,
    /// `labels`, added to firedrill's own labels (which win on a clash).
    pub labels: IndexMap<String, String>,
    /// `volumes`: named volumes (created per run) and bind mounts.
    pub mounts: Vec<Mount>,
    /// `tmpfs`: paths mounted as tmpfs, with options after a `:` when given.
    pub tmpfs: Vec<String>,
    /// `stop_signal`: the signal a stop sends first.
    pub stop_signal: Option<String>,
    /// `stop_grace_period`: Docker's stop timeout for stops that do not give their own.
    #[serde(with = "option_duration_serde")]
    pub stop_grace_period: Option<Duration>,
    /// Created with libfaketime preloaded, for `clock-skew` (set from the scenario's steps at
    /// load time, never written by hand).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub faketime: bool,
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mount {
    /// What is mounted.
    pub source: MountSource,
    /// The path inside the container.
    pub target: String,
    /// `:ro` / `read_only: true`.
    pub read_only: bool,
}

/// Where a mount's content lives.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountSource {
    /// A named volume of the stack: the run creates `firedrill-RUNID-NAME` (labelled) and removes
    /// it at teardown.
    Volume(String),
    /// An anonymous volume, removed with its container.
    Anonymous,
    /// A folder or file of the host (absolute), never created or removed by firedrill.
    Bind(PathBuf),
}

/// `pull:` (per service) and `--pull` (for the whole run), as in docker compose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Never contact a registry: an image that is not local is an error (offline runs).
    Never,
    /// Pull an image only when it is not in the local store.
    #[default]
    Missing,
    /// Pull every time, so the local copy is the registry's current one.
    Always,
}

impl PullPolicy {
    /// The spellings, for messages and `--pull`.
    pub const NAMES: &[&str] = &["missing", "always", "never"];
}

impl std::str::FromStr for PullPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(format!("unknown pull policy `{other}`: use missing, always or never")),
        }
    }
}

/// `backend:` (scenario): the backend a scenario asks for; the CLI's `--backend` overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendChoice {
    /// The Docker engine, one container per service.
    Docker,
    /// Docker Swarm services on a swarm manager.
    Swarm,
}

impl BackendChoice {
    /// The spellings, for messages.
    pub const NAMES: &[&str] = &["docker", "swarm"];
}

impl std::str::FromStr for BackendChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "docker" => Ok(BackendChoice::Docker),
            "swarm" => Ok(BackendChoice::Swarm),
            other => Err(format!("unknown backend `{other}`: use docker or swarm")),
        }
    }
}

impl Scenario {
    /// The pull policy for one of [`Scenario::image_sources`]: the most eager policy of the
    /// services that run it (as their image or an upgrade target), `always` over `missing` over
    /// `never`; `missing` for an image no service claims.
    pub fn pull_policy(&self, reference: &str) -> PullPolicy {
        let mut policies = Vec::new();
        for service in self.stack.services.values() {
            if service.image.reference() == reference {
                policies.push(service.pull);
            }
        }
        for step in self.all_steps() {
            if let Action::Upgrade(upgrade) = &step.action
                && upgrade.target.reference() == reference
                && let Some(service) = self.stack.services.get(&upgrade.service)
            {
                policies.push(service.pull);
            }
        }
        policies.into_iter().max().unwrap_or_default()
    }
}

impl Service {
    /// The keys of the service's containers: the service's own name for a single container,
    /// `SERVICE.1` … `SERVICE.N` for a replicated one.
    pub fn replica_keys(&self) -> Vec<String> {
        if self.replicas <= 1 {
            vec![self.name.clone()]
        } else {
            (1..=self.replicas).map(|n| format!("{}.{n}", self.name)).collect()
        }
    }
}

/// `image:` or `build:`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageSource {
    /// `image: NAME:TAG`, which must exist locally (no registry is assumed).
    Image(String),
    /// `build: { context, tag, ... }`, built when the tag is missing.
    Build(BuildSpec),
}

impl ImageSource {
    /// The image reference a container is created from.
    pub fn reference(&self) -> &str {
        match self {
            ImageSource::Image(name) => name,
            ImageSource::Build(build) => &build.tag,
        }
    }
}

/// `build:`: a local Docker build.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildSpec {
    /// `context`: absolute path of the build context.
    pub context: PathBuf,
    /// `dockerfile`: relative to the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `tag`: the image reference to build and run.
    pub tag: String,
    /// `args`: build arguments.
    pub args: IndexMap<String, String>,
    /// `prepare`: a command (argv) run on the host, in the context folder, before the build; for
    /// example one that compiles a binary the Dockerfile copies. It must exit 0.
    pub prepare: Option<Vec<String>>,
    /// `target`: the Dockerfile stage to build (compose `build.target`).
    pub target: Option<String>,
}

/// A string with `{{ ... }}` references, resolved by the engine when the stack comes up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    /// Literal text and references, in order.
    pub parts: Vec<TemplatePart>,
}

impl Template {
    /// A template without references.
    pub fn literal(text: impl Into<String>) -> Self {
        Template { parts: vec![TemplatePart::Literal(text.into())] }
    }
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TemplatePart {
    /// Text copied as is.
    Literal(String),
    /// A `{{ ... }}` reference.
    Ref(Reference),
}

/// What a `{{ ... }}` may name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reference {
    /// `{{ services.NAME.host }}`: the name other containers reach the service by.
    ServiceHost(String),
    /// `{{ services.NAME.port }}`: the service's first declared port.
    ServicePort(String),
    /// `{{ services.NAME.addr }}`: `host:port` with the first declared port.
    ServiceAddr(String),
    /// `{{ run.id }}`: the run id.
    RunId,
    /// `{{ links.NAME.host }}` / `.port` / `.addr`: where the link's fault proxy listens for the
    /// containers (`host.docker.internal` and a port of the harness).
    Link(String, Field),
    /// `{{ sinks.NAME.host }}` / `.port` / `.addr` / `.url`: where a notification sink listens.
    Sink(String, Field),
}

/// Which part of an address a reference wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    /// The host name.
    Host,
    /// The port.
    Port,
    /// `host:port`.
    Addr,
    /// `http://host:port` (HTTP sinks).
    Url,
}

/// `stack.links.NAME`: one dependency of a service routed through the harness's fault proxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    /// The link's name (`{{ links.NAME.addr }}`, and what link faults name).
    pub name: String,
    /// The dependent service, whose env reaches the dependency through the link.
    pub from: String,
    /// The dependency.
    pub to: String,
    /// The dependency's container port (declared in its `ports`).
    pub port: u16,
    /// `http: true`: the link carries HTTP/1.1, so `http-error` and `http-delay` apply.
    pub http: bool,
}

/// `sinks.NAME`: a notification sink the harness runs for the stack to send to.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Sink {
    /// The sink's name (`{{ sinks.NAME.url }}`, and the channel's name in `notify` checks).
    pub name: String,
    /// The protocol it speaks.
    pub kind: SinkKind,
    /// `timeouts`: how long it waits for its clients, where the scenario sets it.
    #[serde(default)]
    pub timeouts: SinkTimeouts,
}

/// `sinks.NAME.timeouts`: each `None` keeps the sink's default (README, "Sinks").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SinkTimeouts {
    /// SMTP: after the greeting, until the first command.
    pub greeting: Option<Duration>,
    /// SMTP: after `MAIL`, until the next command.
    pub mail: Option<Duration>,
    /// SMTP: after `RCPT`, until the next command.
    pub rcpt: Option<Duration>,
    /// SMTP: after `354`, until the first line of the mail.
    pub data_init: Option<Duration>,
    /// SMTP: each further read of the mail.
    pub data_block: Option<Duration>,
    /// SMTP: the whole mail, `354` to the final `.`.
    pub data_termination: Option<Duration>,
    /// SMTP: any other wait for a command, and writing a reply.
    pub server: Option<Duration>,
    /// HTTP: a keep-alive connection with no request in progress.
    pub idle: Option<Duration>,
    /// HTTP: a request head, from its first byte.
    pub header_read: Option<Duration>,
    /// HTTP: a request body, from the end of the head.
    pub body_read: Option<Duration>,
}

impl SinkTimeouts {
    /// The keys of an `smtp` sink (RFC 5321 §4.5.3.2).
    pub const SMTP_KEYS: &[&str] =
        &["greeting", "mail", "rcpt", "data-init", "data-block", "data-termination", "server"];
    /// The keys of the HTTP sinks.
    pub const HTTP_KEYS: &[&str] = &["idle", "header-read", "body-read"];

    /// The keys a sink of `kind` has.
    pub fn keys(kind: SinkKind) -> &'static [&'static str] {
        if kind.is_http() { Self::HTTP_KEYS } else { Self::SMTP_KEYS }
    }

    /// Set the timeout written as `key`; false for a key that is not one.
    pub fn set(&mut self, key: &str, value: Duration) -> bool {
        let field = match key {
            "greeting" => &mut self.greeting,
            "mail" => &mut self.mail,
            "rcpt" => &mut self.rcpt,
            "data-init" => &mut self.data_init,
            "data-block" => &mut self.data_block,
            "data-termination" => &mut self.data_termination,
            "server" => &mut self.server,
            "idle" => &mut self.idle,
            "header-read" => &mut self.header_read,
            "body-read" => &mut self.body_read,
            _ => return false,
        };
        *field = Some(value);
        true
    }
}

/// The protocols a sink can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    /// A real SMTP server (email).
    Smtp,
    /// Twilio's Messages (SMS) and Calls (voice) resources.
    Twilio,
    /// Sinch Fax v3.
    Sinch,
    /// Atlassian Statuspage incidents and scheduled maintenances.
    Statuspage,
    /// A Slack incoming webhook.
    Slack,
    /// PagerDuty Events v2.
    Pagerduty,
    /// Any JSON posted to any path.
    Webhook,
}

impl SinkKind {
    /// Every kind, as written in a scenario.
    pub const NAMES: &[&str] =
        &["smtp", "twilio", "sinch", "statuspage", "slack", "pagerduty", "webhook"];

    /// The kind written as `text`.
    pub fn from_name(text: &str) -> Option<SinkKind> {
        Some(match text {
            "smtp" => SinkKind::Smtp,
            "twilio" => SinkKind::Twilio,
            "sinch" => SinkKind::Sinch,
            "statuspage" => SinkKind::Statuspage,
            "slack" => SinkKind::Slack,
            "pagerduty" => SinkKind::Pagerduty,
            "webhook" => SinkKind::Webhook,
            _ => return None,
        })
    }

    /// Whether it speaks HTTP (has a `url`).
    pub fn is_http(self) -> bool {
        self != SinkKind::Smtp
    }
}

/// `health:`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthCheck {
    /// Which check.
    pub kind: HealthKind,
    /// `interval`: time between two checks (default 500ms).
    #[serde(with = "duration_serde")]
    pub interval: Duration,
    /// `timeout`: one check's limit (default 2s).
    #[serde(with = "duration_serde")]
    pub timeout: Duration,
}

/// What a TCP health check or probe does once connected. Validation requires `expect` (with an
/// optional `send` before it) or `connect-is-enough: true`: an accepted connection alone proves
/// little, since Docker's port proxy accepts on the host side and the kernel of a frozen
/// (paused) container still completes the handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct TcpExchange {
    /// `send`: bytes written after connecting (the YAML string's UTF-8, escapes such as `\r\n`
    /// in double quotes).
    pub send: Option<String>,
    /// `expect`: text the answer must contain (read until it does, the peer closes, or the
    /// timeout).
    pub expect: Option<String>,
    /// `connect-is-enough: true`: no exchange; an accepted connection that the peer does not close
    /// at once counts.
    pub connect_is_enough: bool,
}

/// The kinds of health check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthKind {
    /// `http: { port, path, status }`: a GET from the harness through the published port.
    Http {
        /// Container port (declared in `ports`).
        port: u16,
        /// Request path, starting with `/`.
        path: String,
        /// Expected status (default 200).
        status: u16,
    },
    /// `tcp: { port, send, expect | connect-is-enough }`: a TCP exchange (or, opted into, a
    /// connect) from the harness through the published port.
    Tcp {
        /// Container port (declared in `ports`).
        port: u16,
        /// What to send and expect back, or that a connect is enough.
        exchange: TcpExchange,
    },
    /// `exec: [argv]`: run inside the container, healthy on exit 0.
    Exec {
        /// The command.
        command: Vec<String>,
    },
    /// `log: TEXT`: ready once a log line contains the text. Only says "ready"; after that the
    /// service counts as healthy while its container runs.
    Log {
        /// The text to look for.
        contains: String,
    },
}

/// One entry of `steps`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Position in `steps`, from 0.
    pub index: usize,
    /// `name`, or a generated one (`kill billing`, `wait 5s`); unique within the scenario.
    pub name: String,
    /// What the step does.
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `wait: 5s`.
    Wait(#[serde(with = "duration_serde")] Duration),
    /// `probe: { http: ... }` or `probe: { tcp: ... }`: one observation, recorded.
    Probe(Probe),
    /// A container action on a service, undone after `for` when given.
    Container(ContainerAction),
    /// `upgrade: { ... }`: replace a service's image, judge the new version, roll back on failure.
    Upgrade(Box<Upgrade>),
    /// `rollback: { service }`: roll back the latest upgrade of a service on purpose.
    Rollback {
        /// The service.
        service: String,
    },
    /// `memory` / `cpu` / `partition`: a fault on a service's containers, reverted after `for`.
    Fault(Fault),
    /// `latency` / `bandwidth` / … / `cut`: a fault on a link's fault proxy, removed after `for`.
    LinkFault(LinkFault),
    /// `parallel: [steps]`: the children run at the same time (each after its own `delay`); the
    /// group ends when every child has ended.
    Parallel(Vec<ParallelChild>),
    /// `sink-outage: { sink, status, probability, for }`: a notification sink fails like a
    /// provider outage.
    SinkOutage(SinkOutage),
    /// `call: { service, port, method, path, body, status }`: one HTTP request to a service, e.g.
    /// announcing a maintenance; recorded with its outcome, never failing the timeline.
    Call(Call),
    /// `mark: NAME`: a named moment on the timeline (the step's name is `NAME`), for triggers.
    Mark,
    /// `kill-process: { service, name, signal }`: a signal to the processes called `name` inside
    /// each of a service's containers, never the container's main process.
    KillProcess(KillProcess),
    /// `human: { role, prompt, runbook, deadline, done }`: a prompt for a person; the step ends
    /// when it is done or at its deadline (gameday, `scenario::gameday`).
    Human(Human),
    /// `node-availability: { availability: drain | pause, node, for }`: a swarm node stops taking
    /// (or keeping) tasks, restored after `for`.
    NodeAvailability(NodeAvailability),
}

/// `node-availability:` — a node-level fault (Swarm's node availability).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeAvailability {
    /// `availability`: `drain` (its tasks are shut down and rescheduled) or `pause` (it keeps
    /// its tasks and takes no new ones).
    pub availability: NodeState,
    /// `node`: a node's hostname or id; `None`: the node `DOCKER_HOST` names.
    pub node: Option<String>,
    /// `for`: how long, then the availability it had is restored.
    #[serde(with = "duration_serde")]
    pub duration: Duration,
}

/// The availability a [`NodeAvailability`] step sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    /// `drain`.
    Drain,
    /// `pause`.
    Pause,
}

impl NodeState {
    /// The spellings, for messages.
    pub const NAMES: &[&str] = &["drain", "pause"];

    /// As Swarm and the scenario spell it.
    pub fn key(self) -> &'static str {
        match self {
            NodeState::Drain => "drain",
            NodeState::Pause => "pause",
        }
    }
}

pub use super::gameday::{Human, HumanDone};

/// `kill-process:` — a worker process inside a container, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillProcess {
    /// `service`: every container of it (each replica).
    pub service: String,
    /// `name`: matches a process whose command name (`comm`, at most 15 characters) or the
    /// file name of its first or second command-line word is exactly this.
    pub name: String,
    /// `signal`: default `SIGKILL`.
    pub signal: String,
}

impl Action {
    /// The step's kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Wait(_) => ActionKind::Wait,
            Action::Probe(_) => ActionKind::Probe,
            Action::Container(container) => container.op.kind(),
            Action::Upgrade(_) => ActionKind::Upgrade,
            Action::Rollback { .. } => ActionKind::Rollback,
            Action::Fault(fault) => fault.kind.kind(),
            Action::LinkFault(fault) => fault.kind.kind(),
            Action::Parallel(_) => ActionKind::Parallel,
            Action::SinkOutage(_) => ActionKind::SinkOutage,
            Action::Call(_) => ActionKind::Call,
            Action::Mark => ActionKind::Mark,
            Action::KillProcess(_) => ActionKind::KillProcess,
            Action::Human(_) => ActionKind::Human,
            Action::NodeAvailability(_) => ActionKind::NodeAvailability,
        }
    }

    /// The step's YAML key (`kill`, `upgrade`, `sink-outage`, …), as `step-started` records it.
    pub fn key(&self) -> &'static str {
        self.kind().key()
    }

    /// The time the step takes at the least, by what it declares: `wait`, the `for` of a fault or
    /// an undone container action or a sink outage, an upgrade's `watch`, a `parallel` group's
    /// longest child (with its `delay`). Bring-up, probes, health waits and Docker take what they
    /// take on top. Used to place steps on the calendar and by `firedrill plan`.
    pub fn declared_duration(&self) -> Duration {
        match self {
            Action::Wait(wait) => *wait,
            Action::Container(container) => container.undo_after.unwrap_or_default(),
            Action::Fault(fault) => fault.duration,
            Action::Upgrade(upgrade) => {
                upgrade.watch.as_ref().map(|w| w.duration).unwrap_or_default()
            }
            Action::Parallel(children) => children
                .iter()
                .map(|child| child.delay + child.step.action.declared_duration())
                .max()
                .unwrap_or_default(),
            // An outage with `for` ends when its step ends; calls and markers take no declared time.
            Action::SinkOutage(outage) => outage.duration.unwrap_or_default(),
            Action::LinkFault(fault) => fault.duration,
            Action::NodeAvailability(node) => node.duration,
            Action::Probe(_)
            | Action::Rollback { .. }
            | Action::Call(_)
            | Action::Mark
            | Action::KillProcess(_) => Duration::ZERO,
            // A person may be quick: a prompt declares no time, its deadline is a bound.
            Action::Human(_) => Duration::ZERO,
        }
    }
}

/// Declares [`ActionKind`] from one table of variants and YAML keys.
macro_rules! action_kinds {
    ($($(#[$doc:meta])* $variant:ident => $key:literal,)*) => {
        /// Every kind of step, by its YAML key: the one table the parser, validation, the engine
        /// and the reports derive their key lists from. A new variant here makes the compiler
        /// name every `match` that must handle it (`ARCHITECTURE.md`, "Adding a step kind").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ActionKind {
            $($(#[$doc])* $variant,)*
        }

        impl ActionKind {
            /// Every kind, in the order the parser's "add one of …" help lists them.
            pub const ALL: &'static [ActionKind] = &[$(ActionKind::$variant,)*];

            /// Every step key, in the same order.
            pub const KEYS: &'static [&'static str] = &[$($key,)*];

            /// The step's YAML key.
            pub fn key(self) -> &'static str {
                match self {
                    $(ActionKind::$variant => $key,)*
                }
            }
        }
    };
}

action_kinds! {
    /// `kill`.
    Kill => "kill",
    /// `kill-process`.
    KillProcess => "kill-process",
    /// `stop`.
    Stop => "stop",
    /// `start`.
    Start => "start",
    /// `restart`.
    Restart => "restart",
    /// `pause`.
    Pause => "pause",
    /// `unpause`.
    Unpause => "unpause",
    /// `wait`.
    Wait => "wait",
    /// `probe`.
    Probe => "probe",
    /// `upgrade`.
    Upgrade => "upgrade",
    /// `rollback`.
    Rollback => "rollback",
    /// `memory`.
    Memory => "memory",
    /// `cpu`.
    Cpu => "cpu",
    /// `partition`.
    Partition => "partition",
    /// `parallel`.
    Parallel => "parallel",
    /// `sink-outage`.
    SinkOutage => "sink-outage",
    /// `call`.
    Call => "call",
    /// `mark`.
    Mark => "mark",
    /// `latency`.
    Latency => "latency",
    /// `bandwidth`.
    Bandwidth => "bandwidth",
    /// `timeout`.
    Timeout => "timeout",
    /// `reset-peer`.
    ResetPeer => "reset-peer",
    /// `slow-close`.
    SlowClose => "slow-close",
    /// `slicer`.
    Slicer => "slicer",
    /// `limit-data`.
    LimitData => "limit-data",
    /// `down`.
    Down => "down",
    /// `http-error`.
    HttpError => "http-error",
    /// `http-delay`.
    HttpDelay => "http-delay",
    /// `http-abort`.
    HttpAbort => "http-abort",
    /// `http-truncate`.
    HttpTruncate => "http-truncate",
    /// `cut`.
    Cut => "cut",
    /// `packet`.
    Packet => "packet",
    /// `dns`.
    Dns => "dns",
    /// `disk-fill`.
    DiskFill => "disk-fill",
    /// `human`.
    Human => "human",
    /// `node-availability`.
    NodeAvailability => "node-availability",
    /// `clock-skew`.
    ClockSkew => "clock-skew",
    /// `io-limit`.
    IoLimit => "io-limit",
}

/// The families of step kinds; each is carried out by one file of `engine/steps/` (upgrades by
/// `engine/upgrade/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepFamily {
    /// `wait`, `mark`: shape the timeline only.
    Timeline,
    /// `probe`.
    Probe,
    /// `kill`, `stop`, `start`, `restart`, `pause`, `unpause`.
    Container,
    /// `kill-process`: a process inside a service's containers.
    Process,
    /// `memory`, `cpu`, `partition`: faults on a service's containers.
    Fault,
    /// `latency` … `cut`: faults on a link's fault proxy.
    LinkFault,
    /// `upgrade`, `rollback`.
    Upgrade,
    /// `parallel`.
    Parallel,
    /// `sink-outage`.
    SinkOutage,
    /// `call`.
    Call,
    /// `human`: a prompt for a person (gameday).
    Human,
    /// `node-availability`: a node-level fault.
    Node,
}

impl ActionKind {
    /// The kind whose YAML key is `key`.
    pub fn from_key(key: &str) -> Option<ActionKind> {
        ActionKind::ALL.iter().copied().find(|kind| kind.key() == key)
    }

    /// Which family (and engine file) carries it out.
    pub fn family(self) -> StepFamily {
        match self {
            ActionKind::Wait | ActionKind::Mark => StepFamily::Timeline,
            ActionKind::Probe => StepFamily::Probe,
            ActionKind::Kill
            | ActionKind::Stop
            | ActionKind::Start
            | ActionKind::Restart
            | ActionKind::Pause
            | ActionKind::Unpause => StepFamily::Container,
            ActionKind::KillProcess => StepFamily::Process,
            ActionKind::Memory
            | ActionKind::Cpu
            | ActionKind::Partition
            | ActionKind::Packet
            | ActionKind::Dns
            | ActionKind::DiskFill
            | ActionKind::ClockSkew
            | ActionKind::IoLimit => StepFamily::Fault,
            ActionKind::Latency
            | ActionKind::Bandwidth
            | ActionKind::Timeout
            | ActionKind::ResetPeer
            | ActionKind::SlowClose
            | ActionKind::Slicer
            | ActionKind::LimitData
            | ActionKind::Down
            | ActionKind::HttpError
            | ActionKind::HttpDelay
            | ActionKind::HttpAbort
            | ActionKind::HttpTruncate
            | ActionKind::Cut => StepFamily::LinkFault,
            ActionKind::Upgrade | ActionKind::Rollback => StepFamily::Upgrade,
            ActionKind::Parallel => StepFamily::Parallel,
            ActionKind::SinkOutage => StepFamily::SinkOutage,
            ActionKind::Call => StepFamily::Call,
            ActionKind::Human => StepFamily::Human,
            ActionKind::NodeAvailability => StepFamily::Node,
        }
    }

    /// For a container action that `for` may undo: the action that undoes it (`kill`/`stop` →
    /// `start`, `pause` → `unpause`). Faults, link faults and sink outages always end after
    /// their `for`; that is their own shape, not an undo.
    pub fn undone_by(self) -> Option<ActionKind> {
        match self {
            ActionKind::Kill | ActionKind::Stop => Some(ActionKind::Start),
            ActionKind::Pause => Some(ActionKind::Unpause),
            ActionKind::Start
            | ActionKind::Restart
            | ActionKind::Unpause
            | ActionKind::Wait
            | ActionKind::Probe
            | ActionKind::Upgrade
            | ActionKind::Rollback
            | ActionKind::Memory
            | ActionKind::Cpu
            | ActionKind::Partition
            | ActionKind::Parallel
            | ActionKind::SinkOutage
            | ActionKind::Call
            | ActionKind::Mark
            | ActionKind::Latency
            | ActionKind::Bandwidth
            | ActionKind::Timeout
            | ActionKind::ResetPeer
            | ActionKind::SlowClose
            | ActionKind::Slicer
            | ActionKind::LimitData
            | ActionKind::Down
            | ActionKind::HttpError
            | ActionKind::HttpDelay
            | ActionKind::HttpAbort
            | ActionKind::HttpTruncate
            | ActionKind::KillProcess
            | ActionKind::Cut
            | ActionKind::Packet
            | ActionKind::Dns
            | ActionKind::DiskFill
            | ActionKind::Human
            | ActionKind::NodeAvailability
            | ActionKind::ClockSkew
            | ActionKind::IoLimit => None,
        }
    }

    /// Whether it changes what the steps phase knows about services (the running version of
    /// one): a `parallel` group holds at most one such step, and only it gets the real state.
    pub fn stateful(self) -> bool {
        match self.family() {
            StepFamily::Upgrade => true,
            StepFamily::Timeline
            | StepFamily::Probe
            | StepFamily::Container
            | StepFamily::Process
            | StepFamily::Fault
            | StepFamily::LinkFault
            | StepFamily::Parallel
            | StepFamily::SinkOutage
            | StepFamily::Node
            | StepFamily::Call
            | StepFamily::Human => false,
        }
    }

    /// Whether it takes a service down (`kill`, `stop`, `pause`, `restart`): the reports'
    /// recovery figures are measured from it.
    pub fn takes_down(self) -> bool {
        matches!(
            self,
            ActionKind::Kill | ActionKind::Stop | ActionKind::Pause | ActionKind::Restart
        )
    }

    /// Whether it brings a service back (`start`, `unpause`, `restart`): where the reports
    /// measure "healthy after clear" from, besides an undo.
    pub fn brings_back(self) -> bool {
        matches!(self, ActionKind::Start | ActionKind::Unpause | ActionKind::Restart)
    }
}

/// `sink-outage:` — chaos on a notification sink.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkOutage {
    /// `sink`: a name declared in `sinks`.
    pub sink: String,
    /// `status`: how the sink fails.
    pub mode: OutageMode,
    /// `probability`: share of requests that fail, 0 to 1 (default 1: every request).
    pub probability: f64,
    /// `channel`: only this channel of a sink that serves two (a `twilio` sink's `sms` or
    /// `voice`); `None`: every request of the sink.
    pub channel: Option<String>,
    /// `for`: how long; the step waits it out and ends the outage. Without it the step returns
    /// at once and the outage lasts until the run's teardown.
    #[serde(with = "option_duration_serde")]
    pub duration: Option<Duration>,
}

/// How a sink fails during a [`SinkOutage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutageMode {
    /// `status: 500` (any 400–599): answer that status with the provider's error body (SMTP:
    /// 4xx → `451`, 5xx → `554`).
    Status(u16),
    /// `status: hang`: hold requests open until the outage ends or the client gives up.
    Hang,
}

impl OutageMode {
    /// As written in a scenario and journaled: `status 500`, `hang`.
    pub fn describe(self) -> String {
        match self {
            OutageMode::Status(status) => format!("status {status}"),
            OutageMode::Hang => "hang".to_owned(),
        }
    }
}

/// `call:` — one HTTP request from the harness to a service's published port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// `service`.
    pub service: String,
    /// `port`: a container port declared in the service's `ports`.
    pub port: u16,
    /// `method` (default `POST`).
    pub method: String,
    /// `path` (default `/`).
    pub path: String,
    /// `body`: JSON text, sent as `application/json`.
    pub body: Option<String>,
    /// `status`: the expected answer; `None` (the default) accepts any 2xx.
    pub status: Option<u16>,
    /// `timeout` (default 5s).
    #[serde(with = "duration_serde")]
    pub timeout: Duration,
}

/// One child of a `parallel` group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParallelChild {
    /// `delay`: how long after the group's start (or after `at`) the child starts (default 0).
    #[serde(with = "duration_serde")]
    pub delay: Duration,
    /// `at: { step, event }`: the child starts `delay` after this moment of a sibling step instead
    /// of after the group's start; when the sibling ends without it, the child is skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Anchor>,
    /// The step itself (its `index` follows the group's, in document order).
    pub step: Step,
}

/// A moment of a sibling step in a `parallel` group: `at: { step: NAME, event: healthy }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anchor {
    /// The sibling's name.
    pub step: String,
    /// Which of its moments (default `started`).
    pub event: StepMoment,
}

impl Anchor {
    /// The same moment as a trigger, to find it in a journal.
    pub fn trigger(&self) -> Trigger {
        Trigger::Step { step: self.step.clone(), event: self.event }
    }
}

/// A resource or network fault on a service, applied to the containers `target` picks and
/// reverted after `for` (the step ends when it is reverted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// `service`: whose containers.
    pub service: String,
    /// What is done to them.
    pub kind: FaultKind,
    /// `target`: which of the service's containers (default `all`).
    pub target: Target,
    /// `for`: how long the fault lasts.
    #[serde(with = "duration_serde")]
    pub duration: Duration,
}

/// The kinds of [`Fault`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// `memory: { limit }`: memory limit (and memory+swap, the same) lowered to `limit` bytes; a
    /// service that grows past it is OOM-killed.
    Memory {
        /// Bytes.
        limit_bytes: u64,
    },
    /// `cpu: { cores }`: CFS quota of `cores` CPUs (period 100 ms).
    Cpu {
        /// Fraction of CPUs, e.g. 0.2.
        cores: f64,
    },
    /// `partition`: disconnected from the run's network, reconnected with its aliases after.
    Partition,
    /// `packet: { loss, rate, to, ... }`: packet faults below TCP on the container's egress.
    Packet(PacketFault),
    /// `dns: { names, error, delay }`: names fail to resolve or resolve late for the container.
    Dns(DnsFault),
    /// `disk-fill: { path, level | size }`: the file system under `path` filled up.
    DiskFill(DiskFill),
    /// `clock-skew: { offset }`: the service's clock (libfaketime, preloaded from bring-up)
    /// moved by this many seconds.
    ClockSkew {
        /// Seconds, signed.
        offset_secs: i64,
    },
    /// `io-limit: { path, read-bps, write-bps, read-iops, write-iops }`: the container's I/O to
    /// the block device under `path` throttled (the cgroup's blkio throttle).
    IoLimit(IoLimit),
}

impl FaultKind {
    /// The fault's step kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            FaultKind::Memory { .. } => ActionKind::Memory,
            FaultKind::Cpu { .. } => ActionKind::Cpu,
            FaultKind::Partition => ActionKind::Partition,
            FaultKind::Packet(_) => ActionKind::Packet,
            FaultKind::Dns(_) => ActionKind::Dns,
            FaultKind::DiskFill(_) => ActionKind::DiskFill,
            FaultKind::ClockSkew { .. } => ActionKind::ClockSkew,
            FaultKind::IoLimit(_) => ActionKind::IoLimit,
        }
    }

    /// The fault's YAML key.
    pub fn key(&self) -> &'static str {
        self.kind().key()
    }

    /// Whether it is carried out from the host inside the container's namespaces (`packet`,
    /// `dns`, `disk-fill`) rather than through the container engine's API.
    pub fn host_side(&self) -> bool {
        match self {
            FaultKind::Packet(_)
            | FaultKind::Dns(_)
            | FaultKind::DiskFill(_)
            | FaultKind::ClockSkew { .. }
            | FaultKind::IoLimit(_) => true,
            FaultKind::Memory { .. } | FaultKind::Cpu { .. } | FaultKind::Partition => false,
        }
    }
}

/// A fault on a link's fault proxy (`stack.links`), removed after `for` (the step ends when it
/// is removed). Only the link's connections see it; the services themselves are untouched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkFault {
    /// `link`: the link's name.
    pub link: String,
    /// What the proxy does to the link's connections.
    pub kind: LinkFaultKind,
    /// `direction`: which byte stream (default per kind, see [`LinkFaultKind::default_direction`]).
    pub direction: LinkDirection,
    /// `toxicity`: share of connections it applies to, 0 to 1 (decided once per connection from
    /// the run's seed; default 1).
    pub toxicity: f64,
    /// `for`: how long the fault lasts.
    #[serde(with = "duration_serde")]
    pub duration: Duration,
}

/// Which byte stream of a link's connections a fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkDirection {
    /// Requests: from the dependent service to its dependency.
    Upstream,
    /// Answers: from the dependency back.
    Downstream,
    /// Both streams (one proxy fault on each).
    Both,
}

impl LinkDirection {
    /// The YAML word.
    pub fn key(self) -> &'static str {
        match self {
            LinkDirection::Upstream => "upstream",
            LinkDirection::Downstream => "downstream",
            LinkDirection::Both => "both",
        }
    }
}

/// The kinds of [`LinkFault`]; each maps onto one proxy toxic (`cut` onto a `timeout` that never
/// closes).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum LinkFaultKind {
    /// `latency: { latency, jitter }`: every chunk delayed by `latency` ± `jitter`.
    Latency {
        /// Added delay.
        #[serde(with = "duration_serde")]
        latency: Duration,
        /// Uniform spread (default 0).
        #[serde(with = "duration_serde")]
        jitter: Duration,
    },
    /// `bandwidth: { rate }`: the stream limited to `rate` bytes per second.
    Bandwidth {
        /// Bytes per second.
        bytes_per_sec: u64,
    },
    /// `timeout: { after }`: nothing forwarded; the connection is closed `after` later.
    Timeout {
        /// When the connection is closed.
        #[serde(with = "duration_serde")]
        after: Duration,
    },
    /// `reset-peer: { after }`: at the first data, both peers get a TCP reset `after` later.
    ResetPeer {
        /// Delay from the first data to the reset (default 0).
        #[serde(with = "duration_serde")]
        after: Duration,
    },
    /// `slow-close: { delay }`: the close (FIN) held back by `delay`.
    SlowClose {
        /// How long.
        #[serde(with = "duration_serde")]
        delay: Duration,
    },
    /// `slicer: { average, variation, delay }`: data cut into small pieces, `delay` apart.
    Slicer {
        /// Mean piece size in bytes.
        average: u64,
        /// Uniform spread of the size (default 0).
        variation: u64,
        /// Pause between pieces (default 0).
        #[serde(with = "duration_serde")]
        delay: Duration,
    },
    /// `limit-data: { bytes }`: `bytes` forwarded, then the connection is closed.
    LimitData {
        /// Bytes let through.
        bytes: u64,
    },
    /// `down: { link }`: the proxy refuses connections and closes open ones.
    Down,
    /// `http-error: { status, probability, method, path, header }`: matching requests answered
    /// with `status` by the proxy.
    HttpError {
        /// Status the client sees.
        status: u16,
        /// Share of matching requests, 0 to 1 (default 1).
        probability: f64,
        /// Which requests (default: all).
        #[serde(skip_serializing_if = "HttpRoute::is_any")]
        route: HttpRoute,
    },
    /// `http-delay: { delay, probability, method, path, header }`: matching requests held back
    /// by `delay`.
    HttpDelay {
        /// How long.
        #[serde(with = "duration_serde")]
        delay: Duration,
        /// Share of matching requests, 0 to 1 (default 1).
        probability: f64,
        /// Which requests (default: all).
        #[serde(skip_serializing_if = "HttpRoute::is_any")]
        route: HttpRoute,
    },
    /// `http-abort: { after, probability, method, path, header }`: matching requests reach the
    /// server; the connection closes after their answer's head and `after` body bytes.
    HttpAbort {
        /// Body bytes delivered before the close (default 0).
        after: u64,
        /// Share of matching requests, 0 to 1 (default 1).
        probability: f64,
        /// Which requests (default: all).
        #[serde(skip_serializing_if = "HttpRoute::is_any")]
        route: HttpRoute,
    },
    /// `http-truncate: { bytes, probability, method, path, header }`: the answers to matching
    /// requests cut to `bytes` of body, `Content-Length` rewritten to match.
    HttpTruncate {
        /// Body bytes kept.
        bytes: u64,
        /// Share of matching requests, 0 to 1 (default 1).
        probability: f64,
        /// Which requests (default: all).
        #[serde(skip_serializing_if = "HttpRoute::is_any")]
        route: HttpRoute,
    },
    /// `cut: { link, direction }`: a link partition; the direction(s) blackholed (bytes held, not
    /// lost: delivered once the cut heals, as TCP retransmits across a healed partition).
    Cut,
}

impl LinkFaultKind {
    /// The step's kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            LinkFaultKind::Latency { .. } => ActionKind::Latency,
            LinkFaultKind::Bandwidth { .. } => ActionKind::Bandwidth,
            LinkFaultKind::Timeout { .. } => ActionKind::Timeout,
            LinkFaultKind::ResetPeer { .. } => ActionKind::ResetPeer,
            LinkFaultKind::SlowClose { .. } => ActionKind::SlowClose,
            LinkFaultKind::Slicer { .. } => ActionKind::Slicer,
            LinkFaultKind::LimitData { .. } => ActionKind::LimitData,
            LinkFaultKind::Down => ActionKind::Down,
            LinkFaultKind::HttpError { .. } => ActionKind::HttpError,
            LinkFaultKind::HttpDelay { .. } => ActionKind::HttpDelay,
            LinkFaultKind::HttpAbort { .. } => ActionKind::HttpAbort,
            LinkFaultKind::HttpTruncate { .. } => ActionKind::HttpTruncate,
            LinkFaultKind::Cut => ActionKind::Cut,
        }
    }

    /// The step's YAML key.
    pub fn key(&self) -> &'static str {
        self.kind().key()
    }

    /// The direction when the step names none: `downstream` for what shapes answers (latency,
    /// bandwidth, slow-close, slicer, limit-data, as Toxiproxy does), `upstream` for `reset-peer`
    /// (the client's first bytes trigger it, for any protocol where the client speaks first) and
    /// the http faults (they act on requests), `both` for `timeout`, `cut` and `down`.
    pub fn default_direction(&self) -> LinkDirection {
        match self {
            LinkFaultKind::Latency { .. }
            | LinkFaultKind::Bandwidth { .. }
            | LinkFaultKind::SlowClose { .. }
            | LinkFaultKind::Slicer { .. }
            | LinkFaultKind::LimitData { .. } => LinkDirection::Downstream,
            LinkFaultKind::ResetPeer { .. }
            | LinkFaultKind::HttpError { .. }
            | LinkFaultKind::HttpDelay { .. }
            | LinkFaultKind::HttpAbort { .. }
            | LinkFaultKind::HttpTruncate { .. } => LinkDirection::Upstream,
            LinkFaultKind::Timeout { .. } | LinkFaultKind::Cut | LinkFaultKind::Down => {
                LinkDirection::Both
            }
        }
    }
}

/// `method`, `path`, `header` on the http link faults: which requests a fault considers. Every
/// condition given must hold; none given: every request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct HttpRoute {
    /// `method`: one method or a list, compared exactly (`POST`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// `path`: a pattern matched against the request path without its query string: `*` matches
    /// within one segment, `**` across segments (`/invoices`, `/invoices/*`, `/api/**`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `header`: header name (any case) → value pattern (`*` matches any characters).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl HttpRoute {
    /// Whether it matches every request.
    pub fn is_any(&self) -> bool {
        self.methods.is_empty() && self.path.is_none() && self.headers.is_empty()
    }
}

/// `target`: which containers of a (possibly replicated) service a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// `one`: one, chosen with the run's seed.
    One,
    /// `all` (default).
    All,
    /// `N`: N distinct ones, chosen with the run's seed (all when there are at most N).
    Count(usize),
}

/// `upgrade:` — one release of one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upgrade {
    /// `service`: the service to upgrade.
    pub service: String,
    /// `image:` or `build:`: the new version.
    pub target: ImageSource,
    /// `strategy`: how containers are replaced (default `recreate`).
    pub strategy: Strategy,
    /// `deadline`: the progress deadline; the new version must be healthy within it (default 60s).
    #[serde(with = "duration_serde")]
    pub deadline: Duration,
    /// `migrate`: a one-shot container of the new image that must exit 0.
    pub migrate: Option<Migration>,
    /// `watch`: an SLO gate after the switch; breaching it fails the upgrade.
    pub watch: Option<Watch>,
    /// `backup`: a service whose `backup` hook runs before the upgrade and whose `restore` hook runs
    /// when it is rolled back.
    pub backup: Option<String>,
    /// `on-failure`: what a failed upgrade leads to (default `rollback`).
    pub on_failure: OnFailure,
    /// `version: { port, path }`: where the service reports its version; the engine records the
    /// answer before the upgrade, after the switch and after a rollback (`version-observed`).
    pub version: Option<VersionEndpoint>,
    /// `max-unavailable`: how many replicas a `rolling` upgrade takes out of rotation at once
    /// (default 1).
    pub max_unavailable: u32,
}

/// `version: { port, path }` of an upgrade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionEndpoint {
    /// Container port (declared in the service's `ports`).
    pub port: u16,
    /// Path (default `/version`).
    pub path: String,
}

/// Upgrade strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Stop the old container, start the new one (downtime expected).
    Recreate,
    /// Start the new version beside the old one, wait for health, then move the service's name
    /// to it; the old one stays until the upgrade is verified.
    BlueGreen,
    /// Replace the replicas of a replicated service `max-unavailable` at a time: take them out of
    /// rotation, replace them, put them back once healthy.
    Rolling,
}

/// `migrate: { command, when, deadline }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Migration {
    /// `command`: argv run in a one-shot container of the new image, with the service's env.
    pub command: Vec<String>,
    /// `when`: before or after the switch (default `before`).
    pub when: MigrateWhen,
    /// `deadline`: it must exit 0 within this (default 60s).
    #[serde(with = "duration_serde")]
    pub deadline: Duration,
}

/// When a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrateWhen {
    /// Before the new version takes traffic.
    Before,
    /// After the switch.
    After,
}

/// `watch: { for, traffic, availability }`: after the switch, the named traffic must keep at
/// least `availability` percent success over `for`, or the upgrade has failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Watch {
    /// `for`: how long to watch.
    #[serde(with = "duration_serde")]
    pub duration: Duration,
    /// `traffic`: which traffic entry to judge.
    pub traffic: String,
    /// `availability`: minimum success rate in percent (e.g. 99.0).
    pub availability: f64,
}

/// `on-failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Restore the previous image (and data, with `backup`).
    Rollback,
    /// Stop the timeline; the run is aborted.
    Abort,
    /// Record the failure and go on with the next step.
    Continue,
}

/// One `traffic` entry: an open-loop stream of HTTP requests at a fixed rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Traffic {
    /// The key under `traffic`.
    pub name: String,
    /// `http: { service, port, method, path, body, status }`.
    pub request: TrafficRequest,
    /// `rate`: requests per second (`20/s`, `600/m`).
    pub rate_per_second: f64,
    /// `concurrency`: most requests in flight at once (default 64); a request due while all are
    /// busy is counted as late, never skipped.
    pub concurrency: usize,
    /// `timeout`: per request (default 2s).
    #[serde(with = "duration_serde")]
    pub timeout: Duration,
    /// `verify-writes`: read every acknowledged write back at the end.
    pub verify_writes: Option<VerifyWrites>,
}

/// What each traffic request sends and expects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficRequest {
    /// Target service.
    pub service: String,
    /// Container port (declared in the service's `ports`).
    pub port: u16,
    /// Method (default `GET`).
    pub method: String,
    /// Path, starting with `/`.
    pub path: String,
    /// `body`: sent as `application/json` when set.
    pub body: Option<String>,
    /// `status`: the status that means success (default 200; 201 is typical for writes).
    pub status: u16,
}

/// `verify-writes: { id-field, read-path, status }` (or `true` for the defaults).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyWrites {
    /// `id-field`: top-level JSON field of a successful response holding the written id
    /// (default `id`).
    pub id_field: String,
    /// `read-path`: where to read a write back, `{id}` replaced (default `<path>/{id}`).
    pub read_path: String,
    /// `status`: the read-back status that means "still there" (default 200).
    pub status: u16,
}

/// `kill` / `stop` / `start` / `restart` / `pause` / `unpause` on a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerAction {
    /// The target service.
    pub service: String,
    /// The operation.
    pub op: ContainerOp,
    /// `for`: undo after this long (`kill`/`stop` → start, `pause` → unpause). The step ends when
    /// the undo is done.
    #[serde(with = "option_duration_serde")]
    pub undo_after: Option<Duration>,
}

/// Container operations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerOp {
    /// Send a signal (default `SIGKILL`), e.g. `SIGTERM`.
    Kill {
        /// Signal name as Docker takes it.
        signal: String,
    },
    /// Graceful stop: SIGTERM, then SIGKILL after `timeout` (default 10s).
    Stop {
        /// Grace period.
        #[serde(with = "duration_serde")]
        timeout: Duration,
    },
    /// Start a stopped container.
    Start,
    /// Stop then start.
    Restart,
    /// Freeze every process of the container (cgroup freezer).
    Pause,
    /// Thaw it.
    Unpause,
}

impl ContainerOp {
    /// The operation's step kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            ContainerOp::Kill { .. } => ActionKind::Kill,
            ContainerOp::Stop { .. } => ActionKind::Stop,
            ContainerOp::Start => ActionKind::Start,
            ContainerOp::Restart => ActionKind::Restart,
            ContainerOp::Pause => ActionKind::Pause,
            ContainerOp::Unpause => ActionKind::Unpause,
        }
    }

    /// The operation's YAML key.
    pub fn key(&self) -> &'static str {
        self.kind().key()
    }

    /// What undoes it after `for` ([`ActionKind::undone_by`]); `None` when `for` is not allowed.
    pub fn undo(&self) -> Option<ContainerOp> {
        match self.kind().undone_by()? {
            ActionKind::Start => Some(ContainerOp::Start),
            ActionKind::Unpause => Some(ContainerOp::Unpause),
            other => {
                unreachable!("`{}` is undone by `{}`, not a plain action", self.key(), other.key())
            }
        }
    }
}

/// A probe: one request from the harness to a service, judged against an expectation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Probe {
    /// `name`, or generated (`http billing:8080/health`).
    pub name: String,
    /// What to send and expect.
    pub kind: ProbeKind,
    /// `timeout`: how long one attempt may take (default 2s).
    #[serde(with = "duration_serde")]
    pub timeout: Duration,
}

/// The kinds of probe.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeKind {
    /// `http: { service, port, method, path, status, body-contains }`.
    Http {
        /// Target service.
        service: String,
        /// Container port (declared in the service's `ports`).
        port: u16,
        /// HTTP method (default `GET`).
        method: String,
        /// Path, starting with `/`.
        path: String,
        /// Expected status (default 200).
        status: u16,
        /// Text the body must contain, when set.
        body_contains: Option<String>,
    },
    /// `tcp: { service, port, send, expect | connect-is-enough }`: the exchange succeeds (or,
    /// opted into, the connection is accepted).
    Tcp {
        /// Target service.
        service: String,
        /// Container port (declared in the service's `ports`).
        port: u16,
        /// What to send and expect back, or that a connect is enough.
        #[serde(default)]
        exchange: TcpExchange,
    },
}

impl ProbeKind {
    /// The service a probe targets.
    pub fn service(&self) -> &str {
        match self {
            ProbeKind::Http { service, .. } | ProbeKind::Tcp { service, .. } => service,
        }
    }
}

/// One entry of `expect`. Equality ignores `at` (where it is written), like a spanned value's.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Expectation {
    /// `name`, or generated from the kind (`healthy-within billing after "start billing"`).
    pub name: String,
    /// What must hold.
    pub kind: ExpectationKind,
    /// Where the entry is written in the scenario file, for CI annotations of a failed check.
    /// Not part of the journal: a replayed run has no file to point at.
    #[serde(skip)]
    pub at: Option<Position>,
}

impl PartialEq for Expectation {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.kind == other.kind
    }
}

/// A 1-based line and column in the scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// The checks `expect` can ask for.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectationKind {
    /// `steady-state: before | after`: every steady-state probe passed in that phase.
    SteadyState(SteadyPhase),
    /// `healthy-within: { service, after: STEP, within }`: the service was observed healthy
    /// within `within` of the end of step `after`.
    HealthyWithin {
        /// Service.
        service: String,
        /// Step name.
        after: String,
        /// Deadline from the step's end.
        #[serde(with = "duration_serde")]
        within: Duration,
    },
    /// `healthy-throughout: { service, step }`: no unhealthy observation while the step ran.
    HealthyThroughout {
        /// Service.
        service: String,
        /// Step name.
        step: String,
    },
    /// `unhealthy-during: { service, step }`: at least one unhealthy observation while the step ran
    /// (the fault was seen by the health check).
    UnhealthyDuring {
        /// Service.
        service: String,
        /// Step name.
        step: String,
        /// `starts-during: true`: the unhealthiness must begin inside the step (a state that was
        /// already unhealthy when the step started does not count).
        #[serde(default)]
        starts_during: bool,
    },
    /// `probe-passed: STEP`: the probe step's observation met its expectation.
    ProbePassed {
        /// Step name (a `probe` step).
        step: String,
    },
    /// `probe-failed: STEP`: the probe step's observation failed its expectation (a probe that
    /// is meant to fail, such as a request the fault kills; it also accepts that failure, which
    /// otherwise makes the run deviate).
    ProbeFailed {
        /// Step name (a `probe` step).
        step: String,
    },
    /// `restored: { service, after, within, version, traffic }`: after the rollback of upgrade step
    /// `after`, the service is healthy, reports the previous version and (with `traffic`) its
    /// traffic succeeds at its pre-upgrade rate again, all within `within` of the rollback's start.
    Restored {
        /// Service.
        service: String,
        /// The upgrade step.
        after: String,
        /// Deadline from the rollback's start.
        #[serde(with = "duration_serde")]
        within: Duration,
        /// `version`: the text `/version` must contain afterwards (the engine records what the
        /// service's version probe answers after the rollback).
        version: Option<String>,
        /// `traffic`: whose success rate must be back to its pre-upgrade level.
        traffic: Option<String>,
    },
    /// `slo: { traffic, availability, p50, p95, p99, max-outage, during, expect }`.
    Slo {
        /// Traffic entry.
        traffic: String,
        /// Minimum success rate in percent.
        availability: Option<f64>,
        /// Latency percentiles limits (of successful requests).
        #[serde(with = "option_duration_serde")]
        p50: Option<Duration>,
        /// 95th percentile limit.
        #[serde(with = "option_duration_serde")]
        p95: Option<Duration>,
        /// 99th percentile limit.
        #[serde(with = "option_duration_serde")]
        p99: Option<Duration>,
        /// Longest run of consecutive failures, measured from the first failed request's
        /// scheduled time to the next success's.
        #[serde(with = "option_duration_serde")]
        max_outage: Option<Duration>,
        /// `during`: only requests scheduled while this step ran (default: the whole traffic).
        during: Option<String>,
        /// `expect: breached`: the rehearsal *wants* a limit broken (a fault must be felt by the
        /// customers' traffic), so the check passes when at least one limit is breached and
        /// fails when all hold. Default `met`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        expect_breach: bool,
    },
    /// `no-lost-writes: { traffic }`: every write the service acknowledged is still there at the end.
    NoLostWrites {
        /// Traffic entry with `verify-writes`.
        traffic: String,
    },
    /// `upgrade-succeeds: STEP`: the upgrade completed without a rollback.
    UpgradeSucceeds {
        /// The upgrade step.
        step: String,
    },
    /// `upgrade-rolled-back: STEP`: the upgrade failed and its rollback completed (the rehearsal
    /// of a broken release passes when the rollback works).
    UpgradeRolledBack {
        /// The upgrade step.
        step: String,
    },
    /// `notify: { on, channels, within, ... }`: customers were told on every channel in time.
    Notify(Box<Notify>),
    /// `maintenance-notice: { before, channels, lead-time }`: a notice on every channel at least
    /// `lead-time` before an upgrade step started.
    MaintenanceNotice(MaintenanceNotice),
    /// `human-within: { step, within }`: the `human` step was done (acknowledged, or its effect
    /// observed) within `within` of its prompt.
    HumanWithin {
        /// The `human` step.
        step: String,
        /// Deadline from the prompt.
        #[serde(with = "duration_serde")]
        within: Duration,
    },
    /// `prometheus: { service | url, query, at | throughout, min, max }`: a PromQL query's value
    /// at a moment, or every sample of it while a step ran, within limits.
    Prometheus(Box<PrometheusCheck>),
    /// `alert: { alertname, prometheus, fires, routed, delivered, resolves }`: an alerting rule
    /// fired in time, Alertmanager routed it to the receiver, the channels carried it, it resolved.
    Alert(Box<AlertCheck>),
}

/// `notify:` — the notifications an event must cause. Semantics in the README's scenario
/// reference ("Check semantics") and in `checks::notify`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Notify {
    /// `on`: what starts the clock.
    pub on: Trigger,
    /// `channels`: every channel that must carry the notification, in the order written.
    pub channels: Vec<Channel>,
    /// `within`: the deadline from the trigger, one per channel (a single `within: 90s` is
    /// copied to every channel), in the order of `channels`.
    pub within: Vec<ChannelDeadline>,
    /// `spread`: the most time between the first and the last channel's first arrival.
    #[serde(with = "option_duration_serde")]
    pub spread: Option<Duration>,
    /// `recipients`: per channel, who must each get a notification within that channel's deadline.
    pub recipients: IndexMap<Channel, Vec<String>>,
    /// `contains`: words the subject and body of every counted message contain (case-insensitive).
    pub contains: Vec<String>,
    /// `matches`: a regular expression (`regex` crate syntax) subject and body must match.
    pub matches: Option<String>,
    /// `at-most`: the most messages per channel and recipient from the trigger to the run's end.
    pub at_most: Option<u32>,
    /// `resolved`: the all-clear that must follow.
    pub resolved: Option<Resolved>,
}

impl Notify {
    /// The deadline of `channel` (validation gives every channel one).
    pub fn deadline(&self, channel: Channel) -> Option<Duration> {
        self.within.iter().find(|d| d.channel == channel).map(|d| d.within)
    }
}

/// One channel's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChannelDeadline {
    /// The channel.
    pub channel: Channel,
    /// Its deadline from the trigger.
    #[serde(with = "duration_serde")]
    pub within: Duration,
}

/// `resolved: { after, within }`: an all-clear on the same channels within `within` of `after`,
/// and none before `after`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Resolved {
    /// When the service is back: the all-clear's clock starts here.
    pub after: Trigger,
    /// The all-clear's deadline from `after`.
    #[serde(with = "duration_serde")]
    pub within: Duration,
}

/// `maintenance-notice: { before, channels, lead-time }`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MaintenanceNotice {
    /// `before`: the upgrade step the notice announces.
    pub before: String,
    /// `channels`: every channel that must carry a notice.
    pub channels: Vec<Channel>,
    /// `lead-time`: how long before the step's start the notice must have arrived.
    #[serde(with = "duration_serde")]
    pub lead_time: Duration,
    /// `recipients`: per channel, who must each get a notice at least `lead-time` ahead.
    #[serde(default)]
    pub recipients: IndexMap<Channel, Vec<String>>,
    /// `contains`: words every counted notice contains (case-insensitive).
    #[serde(default)]
    pub contains: Vec<String>,
}

/// A journal event that starts a notification's clock (`on:`, `resolved.after`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// `{ step: NAME }` / `{ step: NAME, event: ... }`: a moment of a step.
    Step {
        /// The step.
        step: String,
        /// Which moment (default `started`).
        event: StepMoment,
    },
    /// `{ unhealthy: SERVICE }`: the first failed health check of the service at or after the
    /// timeline's start.
    Unhealthy(String),
    /// `{ fault: STEP }`: the first `fault-applied` of that step.
    Fault(String),
    /// `{ marker: NAME }`: the start of the `mark: NAME` step.
    Marker(String),
}

impl Trigger {
    /// How the trigger reads in names and messages: `"kill billing"`, `"upgrade billing" failed`,
    /// `billing unhealthy`, `fault "partition db"`, `marker "alert"`.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Step { step, event: StepMoment::Started } => format!("\"{step}\""),
            Trigger::Step { step, event } => format!("\"{step}\" {}", event.name()),
            Trigger::Unhealthy(service) => format!("{service} unhealthy"),
            Trigger::Fault(step) => format!("fault \"{step}\""),
            Trigger::Marker(name) => format!("marker \"{name}\""),
        }
    }
}

/// Which moment of a step a trigger means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepMoment {
    /// Its `step-started`.
    Started,
    /// Its `step-ended`, whatever the outcome.
    Ended,
    /// The first `upgrade` stage `failed` of the step, or its `step-ended` with outcome failed.
    Failed,
    /// Its rollback's `rolled-back` stage, when that succeeded.
    RolledBack,
    /// When what the step did was undone: its last `fault-reverted`, `container-action` undo,
    /// `sink-chaos` off or successful `rolled-back` inside its span.
    Restored,
    /// An upgrade's new version took the service's name (its `switched` stage, when that
    /// succeeded).
    Switched,
    /// An upgrade's new version was healthy (its successful `healthy` stage): the watch, if any,
    /// starts here.
    Healthy,
}

impl StepMoment {
    /// Every moment, as written in a scenario.
    pub const NAMES: &[&str] =
        &["started", "ended", "failed", "rolled-back", "restored", "switched", "healthy"];

    /// The moment written as `text`.
    pub fn from_name(text: &str) -> Option<StepMoment> {
        Some(match text {
            "started" => StepMoment::Started,
            "ended" => StepMoment::Ended,
            "failed" => StepMoment::Failed,
            "rolled-back" => StepMoment::RolledBack,
            "restored" => StepMoment::Restored,
            "switched" => StepMoment::Switched,
            "healthy" => StepMoment::Healthy,
            _ => return None,
        })
    }

    /// Whether a step of `kind` can have this moment: `switched` and `healthy` are an upgrade's,
    /// `rolled-back` an upgrade's, a rollback's or a human step's (which may decide one); the
    /// others every step has.
    pub fn fits(self, kind: ActionKind) -> bool {
        match self {
            StepMoment::Switched | StepMoment::Healthy => kind == ActionKind::Upgrade,
            StepMoment::RolledBack => {
                matches!(kind, ActionKind::Upgrade | ActionKind::Rollback | ActionKind::Human)
            }
            _ => true,
        }
    }

    /// What kind of step has this moment, for messages ("a moment of an upgrade").
    pub fn of(self) -> &'static str {
        match self {
            StepMoment::RolledBack => "an upgrade, a rollback or a human step",
            _ => "an upgrade",
        }
    }

    /// As written in a scenario.
    pub fn name(self) -> &'static str {
        match self {
            StepMoment::Started => "started",
            StepMoment::Ended => "ended",
            StepMoment::Failed => "failed",
            StepMoment::RolledBack => "rolled-back",
            StepMoment::Restored => "restored",
            StepMoment::Switched => "switched",
            StepMoment::Healthy => "healthy",
        }
    }
}

/// A notification channel: what a sink's `notification-received` events carry as `channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// Mail, through an `smtp` sink.
    Email,
    /// Twilio Messages, through a `twilio` sink.
    Sms,
    /// Twilio Calls, through a `twilio` sink.
    Voice,
    /// Sinch Fax, through a `sinch` sink.
    Fax,
    /// Statuspage incidents and maintenances, through a `statuspage` sink.
    StatusPage,
    /// A Slack incoming webhook, through a `slack` sink.
    Chat,
    /// PagerDuty Events, through a `pagerduty` sink.
    Page,
    /// Any JSON, through a `webhook` sink.
    Webhook,
}

impl Channel {
    /// Every channel, as written in a scenario.
    pub const NAMES: &[&str] =
        &["email", "sms", "voice", "fax", "status-page", "chat", "page", "webhook"];

    /// The channel written as `text`.
    pub fn from_name(text: &str) -> Option<Channel> {
        Some(match text {
            "email" => Channel::Email,
            "sms" => Channel::Sms,
            "voice" => Channel::Voice,
            "fax" => Channel::Fax,
            "status-page" => Channel::StatusPage,
            "chat" => Channel::Chat,
            "page" => Channel::Page,
            "webhook" => Channel::Webhook,
            _ => return None,
        })
    }

    /// As written in a scenario and in the journal's `channel`.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Fax => "fax",
            Channel::StatusPage => "status-page",
            Channel::Chat => "chat",
            Channel::Page => "page",
            Channel::Webhook => "webhook",
        }
    }

    /// The sink kind that delivers this channel.
    pub fn sink_kind(self) -> SinkKind {
        match self {
            Channel::Email => SinkKind::Smtp,
            Channel::Sms | Channel::Voice => SinkKind::Twilio,
            Channel::Fax => SinkKind::Sinch,
            Channel::StatusPage => SinkKind::Statuspage,
            Channel::Chat => SinkKind::Slack,
            Channel::Page => SinkKind::Pagerduty,
            Channel::Webhook => SinkKind::Webhook,
        }
    }
}

/// When steady state is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SteadyPhase {
    /// Before the first step.
    Before,
    /// After the last step.
    After,
}

/// Durations serialize as humane strings (`250ms`, `30s`) in reports.
pub mod duration_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize a duration as `format_duration` writes it.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::scenario::format_duration(*d))
    }

    /// Read what `serialize` wrote (journals replayed by `firedrill report`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::scenario::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("bad duration `{text}`: {e}")))
    }
}

/// [`duration_serde`] for `Option<Duration>`.
pub mod option_duration_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize `Some` as a humane string, `None` as null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&crate::scenario::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Read what `serialize` wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                crate::scenario::parse_duration(&text)
                    .map_err(|e| serde::de::Error::custom(format!("bad duration `{text}`: {e}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_action_kind_has_one_key_and_round_trips() {
        use super::ActionKind;
        assert_eq!(ActionKind::ALL.len(), ActionKind::KEYS.len());
        for (kind, key) in ActionKind::ALL.iter().zip(ActionKind::KEYS) {
            assert_eq!(kind.key(), *key);
            assert_eq!(ActionKind::from_key(key), Some(*kind));
            assert_eq!(ActionKind::KEYS.iter().filter(|k| *k == key).count(), 1, "{key} twice");
        }
        assert_eq!(ActionKind::from_key("explode"), None);
    }

    #[test]
    fn container_undo_follows_the_kind_table() {
        use std::time::Duration;

        use super::{ActionKind, ContainerOp};
        let ops = [
            ContainerOp::Kill { signal: "SIGKILL".into() },
            ContainerOp::Stop { timeout: Duration::from_secs(1) },
            ContainerOp::Start,
            ContainerOp::Restart,
            ContainerOp::Pause,
            ContainerOp::Unpause,
        ];
        let undone: Vec<(&str, Option<&str>)> =
            ops.iter().map(|op| (op.key(), op.undo().map(|undo| undo.key()))).collect();
        assert_eq!(
            undone,
            [
                ("kill", Some("start")),
                ("stop", Some("start")),
                ("start", None),
                ("restart", None),
                ("pause", Some("unpause")),
                ("unpause", None),
            ]
        );
        let undoable: Vec<&str> = ActionKind::ALL
            .iter()
            .filter(|kind| kind.undone_by().is_some())
            .map(|kind| kind.key())
            .collect();
        assert_eq!(undoable, ["kill", "stop", "pause"]);
    }
    use super::*;

    #[test]
    fn pull_policies_default_to_missing_and_a_shared_image_takes_the_most_eager() {
        let source = "name: p\nstack:\n  services:\n    a:\n      image: img:1\n      pull: never\n    \
                      b:\n      image: img:1\n      pull: always\n    c:\n      image: other:1\n    \
                      d:\n      image: offline:1\n      pull: never\n\
                      steps:\n  - name: up\n    upgrade: { service: d, image: offline:2 }\n";
        let scenario = crate::scenario::parse(source, std::path::Path::new("p.yaml"))
            .unwrap_or_else(|invalid| panic!("{invalid}"));
        assert_eq!(scenario.stack.services["c"].pull, PullPolicy::Missing);
        assert_eq!(scenario.pull_policy("img:1"), PullPolicy::Always);
        assert_eq!(scenario.pull_policy("other:1"), PullPolicy::Missing);
        // An upgrade target follows the policy of the service it upgrades.
        assert_eq!(scenario.pull_policy("offline:2"), PullPolicy::Never);
        assert_eq!("never".parse::<PullPolicy>(), Ok(PullPolicy::Never));
        assert!("sometimes".parse::<PullPolicy>().is_err());
    }
}

/// `packet:` — packet faults below TCP on a container's egress (issue 17). `loss` and `rate` are
/// applied with the kernel's nftables and `tbf`; the queued ones (`delay`, `jitter`,
/// `correlation`, `reorder`, `corrupt`, `duplicate`) by the harness through an NFQUEUE (no netem).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PacketFault {
    /// `loss`: share of outgoing packets dropped, 0 to 1.
    pub loss: Option<f64>,
    /// `rate`: egress limited to this many bytes per second.
    pub rate_bytes: Option<u64>,
    /// `to`: only packets to this service's containers (default: every destination).
    pub to: Option<String>,
    /// `delay` (queued).
    #[serde(with = "option_duration_serde")]
    pub delay: Option<Duration>,
    /// `jitter` (queued).
    #[serde(with = "option_duration_serde")]
    pub jitter: Option<Duration>,
    /// `correlation` (queued), 0 to 1.
    pub correlation: Option<f64>,
    /// `reorder` (queued), 0 to 1.
    pub reorder: Option<f64>,
    /// `corrupt` (queued), 0 to 1.
    pub corrupt: Option<f64>,
    /// `duplicate` (queued), 0 to 1.
    pub duplicate: Option<f64>,
}

impl PacketFault {
    /// The keys given that the harness carries out through an NFQUEUE (netem's, without netem).
    pub fn queue_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut given = |present: bool, key: &'static str| {
            if present {
                keys.push(key);
            }
        };
        given(self.delay.is_some(), "delay");
        given(self.jitter.is_some(), "jitter");
        given(self.correlation.is_some(), "correlation");
        given(self.reorder.is_some(), "reorder");
        given(self.corrupt.is_some(), "corrupt");
        given(self.duplicate.is_some(), "duplicate");
        keys
    }
}

/// `dns:` — names that fail to resolve, or resolve late, for a service's containers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DnsFault {
    /// `names`: the names (lower case, no trailing dot) the fault applies to.
    pub names: Vec<String>,
    /// `error`: how matching queries fail (`None`: they are answered, after `delay`).
    pub error: Option<DnsError>,
    /// `delay`: how long a matching query is held before it is answered or failed.
    #[serde(with = "option_duration_serde")]
    pub delay: Option<Duration>,
}

/// How a faulted DNS query fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsError {
    /// `nxdomain`: the name does not exist (rcode 3).
    Nxdomain,
    /// `servfail`: the server failed (rcode 2).
    Servfail,
    /// `drop`: no answer at all; the client's resolver times out.
    Drop,
}

impl DnsError {
    /// As written in a scenario.
    pub fn key(self) -> &'static str {
        match self {
            DnsError::Nxdomain => "nxdomain",
            DnsError::Servfail => "servfail",
            DnsError::Drop => "drop",
        }
    }
}

/// `disk-fill:` — the file system under a path inside the container filled with one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DiskFill {
    /// `path`: an absolute directory inside the container (a volume, a tmpfs or the writable
    /// layer); the fill file is created in it.
    pub path: String,
    /// How much.
    pub amount: FillAmount,
}

/// How much a [`DiskFill`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FillAmount {
    /// `level: 95%`: until the file system is this full (0 to 1), as `df` counts it.
    Level(f64),
    /// `size: 64MiB`: exactly this many bytes.
    Bytes(u64),
}

/// `io-limit:` — a container's I/O to the block device that holds a path throttled; each limit
/// that is `None` is left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct IoLimit {
    /// `path`: an absolute path inside the container, on a volume or bind mount (a block
    /// device's file system).
    pub path: String,
    /// `read-bps`: bytes per second read.
    pub read_bps: Option<u64>,
    /// `write-bps`: bytes per second written.
    pub write_bps: Option<u64>,
    /// `read-iops`: read operations per second.
    pub read_iops: Option<u64>,
    /// `write-iops`: write operations per second.
    pub write_iops: Option<u64>,
}
