//! The one table of scenario keys: for every mapping of the format, which keys it has, the shape
//! of each value and a one-line description (the README's wording).
//!
//! Validation reads mappings only through these sections (`Reader::fields` takes a [`Section`]),
//! so its unknown-key check and `firedrill schema` (generated from this table by `schema.rs`)
//! cannot drift apart. What a value means beyond its shape (references, ranges across keys,
//! durations that must be positive) stays with validation.

/// One mapping of the format.
#[derive(Debug)]
pub(crate) struct Section {
    /// `$defs` name in the schema.
    pub id: &'static str,
    /// What the mapping is, for the schema's description.
    pub doc: &'static str,
    /// Its keys, in the README's order.
    pub keys: &'static [Key],
    /// Exactly one of the keys marked `choice` must be present (a step's action, a check's kind).
    pub one_choice: bool,
}

/// One key of a [`Section`].
#[derive(Debug)]
pub(crate) struct Key {
    /// As written in YAML (kebab-case).
    pub name: &'static str,
    /// The shape of its value.
    pub shape: Shape,
    /// One line, the README's wording; shown when an editor hovers the key.
    pub doc: &'static str,
    /// Required in every instance of the section.
    pub required: bool,
    /// One of the alternatives of a section with `one_choice`.
    pub choice: bool,
}

/// The shape of a value, as far as a JSON Schema can say it.
#[derive(Debug)]
pub(crate) enum Shape {
    /// Any scalar: a string, or a number or boolean kept as written.
    Text,
    /// A duration: `250ms`, `30s`, `5m`, `1h`, `1m30s`.
    Duration,
    /// A rate: `20/s`, `600/m`.
    Rate,
    /// A percentage: `99%`, `99.5%` or a number from 0 to 100.
    Percent,
    /// An integer from `.0` to `.1`.
    Integer(i64, i64),
    /// Any number.
    Number,
    /// `true` or `false`.
    Bool,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// One of these strings, in any case (`post` is `POST`).
    EnumAnyCase(&'static [&'static str]),
    /// A command line: a non-empty list of scalars.
    Argv,
    /// A list of scalars.
    TextList,
    /// A mapping of names to scalars (`env`, build `args`).
    TextMap,
    /// A mapping read by another section.
    Section(&'static Section),
    /// A list of the shape.
    List(&'static Shape),
    /// A mapping of user-chosen names to the shape.
    Map(&'static Shape),
    /// One of several shapes (a short form and a long form).
    AnyOf(&'static [Shape]),
    /// Read only to say it belongs elsewhere (an error wherever it is written).
    Forbidden,
}

impl Section {
    /// The key names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.keys.iter().map(|k| k.name).collect()
    }

    /// The names of the keys marked `choice`.
    pub fn choices(&self) -> Vec<&'static str> {
        self.keys.iter().filter(|k| k.choice).map(|k| k.name).collect()
    }

    /// Whether `name` is a key.
    pub fn has(&self, name: &str) -> bool {
        self.keys.iter().any(|k| k.name == name)
    }

    /// The section a key's value is read with (the long form when it has a short one).
    pub fn section(&self, name: &str) -> Option<&'static Section> {
        fn find(shape: &'static Shape) -> Option<&'static Section> {
            match shape {
                Shape::Section(section) => Some(section),
                Shape::AnyOf(shapes) => shapes.iter().find_map(find),
                _ => None,
            }
        }
        self.keys.iter().find(|k| k.name == name).and_then(|k| find(&k.shape))
    }

    /// Like [`Self::section`], for a key validation reads with a section.
    pub fn section_of(&self, name: &str) -> &'static Section {
        self.section(name)
            .unwrap_or_else(|| panic!("`{name}` of `{}` is read with a section", self.id))
    }
}

pub(crate) const fn key(name: &'static str, shape: Shape, doc: &'static str) -> Key {
    Key { name, shape, doc, required: false, choice: false }
}

const fn required(name: &'static str, shape: Shape, doc: &'static str) -> Key {
    Key { name, shape, doc, required: true, choice: false }
}

const fn choice(name: &'static str, shape: Shape, doc: &'static str) -> Key {
    Key { name, shape, doc, required: false, choice: true }
}

const PORT: Shape = Shape::Integer(1, 65535);
const STATUS: Shape = Shape::Integer(100, 599);
/// HTTP methods a probe, traffic or call may send (any case).
pub(crate) const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
/// Channels of `notify` and `maintenance-notice`.
pub(crate) const CHANNELS: &[&str] =
    &["email", "sms", "voice", "fax", "status-page", "chat", "page", "webhook"];
const CHANNEL_LIST: Shape = Shape::List(&Shape::Enum(CHANNELS));
const TEXT_OR_LIST: Shape = Shape::AnyOf(&[Shape::Text, Shape::TextList]);
const RECIPIENTS: Shape = Shape::Map(&Shape::TextList);

/// The top level of a scenario.
pub(crate) static TOP: Section = Section {
    id: "scenario",
    doc: "A firedrill scenario: a stack, a timeline of upgrades and faults, live traffic, and what must hold.",
    one_choice: false,
    keys: &[
        required(
            "name",
            Shape::Text,
            "Lowercase letters, digits, `-` (it becomes a Docker label).",
        ),
        key("description", Shape::Text, "Free text for the report."),
        key(
            "sinks",
            Shape::Map(&Shape::AnyOf(&[Shape::Enum(SINK_KINDS), Shape::Section(&SINK)])),
            "Notification sinks the harness runs, by name: a kind, or `{ kind, timeouts }`.",
        ),
        required("stack", Shape::Section(&STACK), "The services of the system under rehearsal."),
        key(
            "steady-state",
            Shape::List(&Shape::Section(&PROBE)),
            "Probes run once before the first step and once after the last.",
        ),
        key(
            "traffic",
            Shape::Map(&Shape::Section(&TRAFFIC)),
            "Open-loop request streams kept up from the first step to the last, by name.",
        ),
        key(
            "steps",
            Shape::List(&Shape::Section(&STEP)),
            "The timeline, in order; each entry one action plus an optional `name`.",
        ),
        key(
            "expect",
            Shape::List(&Shape::Section(&EXPECT)),
            "Checks over the journal; each entry one kind plus an optional `name`.",
        ),
        key(
            "maintenance",
            Shape::Section(&MAINTENANCE),
            "When upgrades are allowed (weekly windows per customer, blackouts) and how early customers must be told.",
        ),
        key(
            "calendar",
            Shape::Section(&CALENDAR),
            "The calendar time the rehearsal stands for: its first step starts at `start`, scaled by `scale`.",
        ),
        key(
            "explore",
            Shape::Section(&EXPLORE),
            "`firedrill explore`'s chaos space: which faults may land where and when (`run` ignores it).",
        ),
        key(
            "backend",
            Shape::Enum(&["docker", "swarm"]),
            "docker (default) | swarm: where the stack runs; `--backend` overrides it.",
        ),
    ],
};

/// Sink kinds.
pub(crate) const SINK_KINDS: &[&str] =
    &["smtp", "twilio", "sinch", "statuspage", "slack", "pagerduty", "webhook"];

/// A sink in its long form.
pub(crate) static SINK: Section = Section {
    id: "sink",
    doc: "A notification sink: `{ kind, timeouts }`.",
    one_choice: false,
    keys: &[
        required(
            "kind",
            Shape::Enum(SINK_KINDS),
            "smtp, twilio, sinch, statuspage, slack, pagerduty or webhook.",
        ),
        key(
            "timeouts",
            Shape::Map(&Shape::Duration),
            "Server timeouts: smtp greeting, mail, rcpt, data-init, data-block, data-termination, server; HTTP sinks idle, header-read, body-read.",
        ),
    ],
};

/// `stack`.
pub(crate) static STACK: Section = Section {
    id: "stack",
    doc: "The services of the system under rehearsal.",
    one_choice: false,
    keys: &[
        key(
            "services",
            Shape::Map(&Shape::Section(&SERVICE)),
            "Required unless `compose` is given, at least one; names: lowercase letters, digits, `-`, `_`. With `compose`: overrides of the compose services.",
        ),
        key(
            "links",
            Shape::Map(&Shape::AnyOf(&[Shape::Text, Shape::Section(&LINK)])),
            "Dependencies routed through the harness's fault proxy: `FROM -> TO:PORT` or `{ from, to, port, http }`.",
        ),
        key(
            "compose",
            TEXT_OR_LIST,
            "A compose file (or a list, merged in order) the services are read from.",
        ),
        key("profiles", TEXT_OR_LIST, "Compose profiles to enable."),
    ],
};

/// A link in its long form.
pub(crate) static LINK: Section = Section {
    id: "link",
    doc: "A dependency routed through the fault proxy.",
    one_choice: false,
    keys: &[
        required("from", Shape::Text, "The service that connects."),
        required("to", Shape::Text, "The service it reaches."),
        required("port", PORT, "The port declared in `to`'s `ports`."),
        key("http", Shape::Bool, "The link carries HTTP/1.1 (for the `http-*` link faults)."),
    ],
};

/// A service.
pub(crate) static SERVICE: Section = Section {
    id: "service",
    doc: "One service: one container (or `replicas`), reachable by its name on the run's network.",
    one_choice: false,
    keys: &[
        key(
            "image",
            Shape::Text,
            "NAME:TAG, local or pulled from its registry per `pull:`; exactly one of `image:` or `build:`.",
        ),
        key(
            "build",
            Shape::Section(&BUILD),
            "Build the image locally; exactly one of `image:` or `build:`.",
        ),
        key(
            "pull",
            Shape::Enum(&["missing", "always", "never"]),
            "missing (default) | always | never.",
        ),
        key(
            "env",
            Shape::TextMap,
            "Environment; values may use `{{ services.NAME.addr }}`, `{{ links.NAME.addr }}`, `{{ sinks.NAME.url }}`, `{{ run.id }}`.",
        ),
        key("command", Shape::Argv, "Replaces the image's CMD."),
        key(
            "ports",
            Shape::List(&PORT),
            "Container ports, published on 127.0.0.1 only (random host port).",
        ),
        key("health", Shape::Section(&HEALTH), "Exactly one of http / tcp / exec / log."),
        key(
            "startup-timeout",
            Shape::Duration,
            "Default 60s: bring-up fails if not healthy by then.",
        ),
        key(
            "stop-grace-period",
            Shape::Duration,
            "Between the stop signal and SIGKILL, for Docker, teardown and upgrades (default 10s; teardown 2s).",
        ),
        key("depends-on", Shape::TextList, "Started and healthy first; cycles are errors."),
        key(
            "backup",
            Shape::Argv,
            "Argv run in the container before an upgrade naming it in `backup:`.",
        ),
        key("restore", Shape::Argv, "Argv run in the container when that upgrade is rolled back."),
        key(
            "replicas",
            Shape::Integer(1, 16),
            "Default 1, at most 16: containers SERVICE.1 … SERVICE.N behind the name.",
        ),
    ],
};

/// `build`.
pub(crate) static BUILD: Section = Section {
    id: "build",
    doc: "Build an image locally from a context folder.",
    one_choice: false,
    keys: &[
        required(
            "context",
            Shape::Text,
            "Must exist and contain the Dockerfile; relative to the scenario file.",
        ),
        required("tag", Shape::Text, "The image to build and run."),
        key("dockerfile", Shape::Text, "Default `Dockerfile`."),
        key("args", Shape::TextMap, "Build arguments."),
        key("prepare", Shape::Argv, "Argv run on the host in the context folder before the build."),
    ],
};

/// `health`.
pub(crate) static HEALTH: Section = Section {
    id: "health",
    doc: "A service's health check: exactly one of http / tcp / exec / log.",
    one_choice: true,
    keys: &[
        choice("http", Shape::Section(&HEALTH_HTTP), "GET through the published port."),
        choice(
            "tcp",
            Shape::Section(&TCP_HEALTH),
            "An exchange through the published port (`send`, `expect`), or `connect-is-enough: true`.",
        ),
        choice(
            "exec",
            Shape::Argv,
            "Healthy on exit 0 (a paused container cannot exec: unhealthy).",
        ),
        choice(
            "log",
            Shape::Text,
            "Ready once a log line contains it, then healthy while running.",
        ),
        key("interval", Shape::Duration, "Default 500ms."),
        key("timeout", Shape::Duration, "Default 2s."),
    ],
};

/// `health.http`.
pub(crate) static HEALTH_HTTP: Section = Section {
    id: "health-http",
    doc: "An HTTP health check.",
    one_choice: false,
    keys: &[
        required("port", PORT, "A port declared in `ports`."),
        key("path", Shape::Text, "Default `/`."),
        key("status", STATUS, "Default 200."),
    ],
};

/// `health.tcp`.
pub(crate) static TCP_HEALTH: Section = Section {
    id: "health-tcp",
    doc: "A TCP health check: `expect` (with an optional `send`) or `connect-is-enough: true`.",
    one_choice: false,
    keys: &[
        required("port", PORT, "A port declared in `ports`."),
        key("send", Shape::Text, "Written after connecting."),
        key("expect", Shape::Text, "Text the answer must contain within `timeout`."),
        key(
            "connect-is-enough",
            Shape::Bool,
            "Only a connect (opt-in): a connect alone cannot see a frozen service.",
        ),
    ],
};

/// A probe (`steady-state` entry; `probe` step).
pub(crate) static PROBE: Section = Section {
    id: "probe",
    doc: "One request from the harness to a service: exactly one of `http` or `tcp`.",
    one_choice: true,
    keys: &[
        key("name", Shape::Text, "Optional; generated otherwise (\"http billing:8080/health\")."),
        choice("http", Shape::Section(&HTTP_PROBE), "An HTTP request through the published port."),
        choice(
            "tcp",
            Shape::Section(&TCP_PROBE),
            "A TCP exchange, or a connect with `connect-is-enough: true`.",
        ),
        key("timeout", Shape::Duration, "Default 2s."),
    ],
};

/// `http` of a probe.
pub(crate) static HTTP_PROBE: Section = Section {
    id: "http-probe",
    doc: "An HTTP probe.",
    one_choice: false,
    keys: &[
        required("service", Shape::Text, "The service."),
        required("port", PORT, "A port declared in the service's `ports`."),
        key("path", Shape::Text, "Default `/`."),
        key("status", STATUS, "Default 200."),
        key("method", Shape::EnumAnyCase(METHODS), "Default GET."),
        key("body-contains", Shape::Text, "Text the body must contain."),
    ],
};

/// `tcp` of a probe.
pub(crate) static TCP_PROBE: Section = Section {
    id: "tcp-probe",
    doc: "A TCP probe: `expect` (with an optional `send`) or `connect-is-enough: true`.",
    one_choice: false,
    keys: &[
        required("service", Shape::Text, "The service."),
        required("port", PORT, "A port declared in the service's `ports`."),
        key("send", Shape::Text, "Written after connecting."),
        key("expect", Shape::Text, "Text the answer must contain."),
        key("connect-is-enough", Shape::Bool, "Only a connect (opt-in)."),
    ],
};

/// The step form of a probe (no `name`: the step's name names it).
pub(crate) static PROBE_STEP: Section = Section {
    id: "probe-step",
    doc: "One probe on the timeline: exactly one of `http` or `tcp`.",
    one_choice: true,
    keys: &[
        choice("http", Shape::Section(&HTTP_PROBE), "An HTTP request through the published port."),
        choice(
            "tcp",
            Shape::Section(&TCP_PROBE),
            "A TCP exchange, or a connect with `connect-is-enough: true`.",
        ),
        key("timeout", Shape::Duration, "Default 2s."),
        key("name", Shape::Forbidden, "Not here: name the step (`- name: ...` next to `probe:`)."),
    ],
};

/// A `traffic` entry.
pub(crate) static TRAFFIC: Section = Section {
    id: "traffic",
    doc: "An open-loop request stream kept up from the first step to the last.",
    one_choice: false,
    keys: &[
        required("http", Shape::Section(&REQUEST), "The request."),
        required("rate", Shape::Rate, "N/s or N/m, N > 0, decimals allowed (0.5/s)."),
        key("concurrency", Shape::Integer(1, 100_000), "Default 64: most requests in flight."),
        key("timeout", Shape::Duration, "Default 2s, per request, counted from when it was due."),
        key(
            "verify-writes",
            Shape::AnyOf(&[Shape::Bool, Shape::Section(&VERIFY)]),
            "Read every acknowledged write back at the end: true, or `{ id-field, read-path, status }`.",
        ),
    ],
};

/// `traffic.*.http`.
pub(crate) static REQUEST: Section = Section {
    id: "request",
    doc: "The request of a traffic stream.",
    one_choice: false,
    keys: &[
        required("service", Shape::Text, "The service."),
        required("port", PORT, "A port declared in the service's `ports`."),
        key("method", Shape::EnumAnyCase(METHODS), "Default GET."),
        key("path", Shape::Text, "Default `/`."),
        key("body", Shape::Text, "JSON, sent as application/json."),
        key("status", STATUS, "Default 200."),
    ],
};

/// `verify-writes` as a mapping.
pub(crate) static VERIFY: Section = Section {
    id: "verify-writes",
    doc: "How acknowledged writes are read back.",
    one_choice: false,
    keys: &[
        key("id-field", Shape::Text, "Default `id`."),
        key("read-path", Shape::Text, "Default `<path>/{id}`; starts with / and contains {id}."),
        key("status", STATUS, "Default 200."),
    ],
};

/// A step.
pub(crate) static STEP: Section = Section {
    id: "step",
    doc: "One entry of the timeline: exactly one action, plus an optional `name`.",
    one_choice: true,
    keys: &[
        choice("kill", Shape::Section(&KILL), "Send a signal (default SIGKILL)."),
        choice(
            "kill-process",
            Shape::Section(&KILL_PROCESS),
            "A signal to the processes called `name` inside each container, never its main process.",
        ),
        choice(
            "stop",
            Shape::Section(&STOP),
            "Graceful stop (default grace: the service's, else 10s).",
        ),
        choice("start", Shape::Section(&SERVICE_ACTION), "Start a stopped service."),
        choice("restart", Shape::Section(&SERVICE_ACTION), "Stop then start."),
        choice(
            "pause",
            Shape::Section(&SERVICE_ACTION),
            "Cgroup freeze; with `for`, unpaused after it (ledgered).",
        ),
        choice("unpause", Shape::Section(&SERVICE_ACTION), "Thaw a paused service."),
        choice("wait", Shape::Duration, "Wait this long."),
        choice("probe", Shape::Section(&PROBE_STEP), "One observation, recorded."),
        choice(
            "upgrade",
            Shape::Section(&UPGRADE),
            "Replace a service's image, judge the new version, roll back on failure.",
        ),
        choice(
            "rollback",
            Shape::Section(&ROLLBACK),
            "Roll back the latest upgrade of a service on purpose.",
        ),
        choice(
            "memory",
            Shape::Section(&MEMORY),
            "Memory and memory+swap limit; a service that outgrows it is OOM-killed.",
        ),
        choice("cpu", Shape::Section(&CPU), "CFS quota: cores × 100 ms per 100 ms."),
        choice(
            "partition",
            Shape::Section(&PARTITION),
            "Disconnected from the run network, reconnected with its aliases.",
        ),
        choice(
            "parallel",
            Shape::List(&Shape::Section(&STEP)),
            "The children run at the same time; the group ends when all have ended.",
        ),
        choice(
            "sink-outage",
            Shape::Section(&OUTAGE),
            "A notification sink fails like a provider outage.",
        ),
        choice(
            "call",
            Shape::Section(&CALL),
            "One HTTP request from the harness, through the published port.",
        ),
        choice("mark", Shape::Text, "A named moment: the step is called by it."),
        choice(
            "latency",
            Shape::Section(&LATENCY),
            "Link fault: every chunk delayed by `latency` ± `jitter`.",
        ),
        choice(
            "bandwidth",
            Shape::Section(&BANDWIDTH),
            "Link fault: throughput limited to `rate`.",
        ),
        choice(
            "timeout",
            Shape::Section(&LINK_TIMEOUT),
            "Link fault: nothing forwarded, the connection closed `after`.",
        ),
        choice(
            "reset-peer",
            Shape::Section(&RESET_PEER),
            "Link fault: TCP RST to both peers `after` the first data.",
        ),
        choice(
            "slow-close",
            Shape::Section(&SLOW_CLOSE),
            "Link fault: the close (FIN) held back by `delay`.",
        ),
        choice("slicer", Shape::Section(&SLICER), "Link fault: small pieces, `delay` apart."),
        choice(
            "limit-data",
            Shape::Section(&LIMIT_DATA),
            "Link fault: `bytes` forwarded, then closed.",
        ),
        choice("down", Shape::Section(&DOWN), "Link fault: connections refused, open ones closed."),
        choice(
            "http-error",
            Shape::Section(&HTTP_ERROR),
            "Link fault (http links): requests answered by the proxy with `status`.",
        ),
        choice(
            "http-delay",
            Shape::Section(&HTTP_DELAY),
            "Link fault (http links): requests held `delay`.",
        ),
        choice(
            "http-abort",
            Shape::Section(&HTTP_ABORT),
            "Link fault (http links): the answer's connection closed after its head and `after` body bytes.",
        ),
        choice(
            "http-truncate",
            Shape::Section(&HTTP_TRUNCATE),
            "Link fault (http links): the answer's body cut to `bytes`, `Content-Length` to match.",
        ),
        choice("cut", Shape::Section(&CUT), "Link fault: a link partition."),
        choice(
            "packet",
            Shape::Section(&PACKET),
            "Packet loss, a rate limit, delay, reorder, corruption or duplicates below TCP on a service's egress.",
        ),
        choice(
            "dns",
            Shape::Section(&DNS),
            "Names fail to resolve (nxdomain, servfail, drop) or resolve late for a service.",
        ),
        choice(
            "disk-fill",
            Shape::Section(&DISK_FILL),
            "The file system under a path inside a service's containers filled up.",
        ),
        choice(
            "human",
            Shape::Section(&HUMAN),
            "Gameday: a prompt for a person in a role, done by acknowledgement or an effect.",
        ),
        choice(
            "node-availability",
            Shape::Section(&NODE_AVAILABILITY),
            "Swarm only: a node drained or paused, its availability restored after `for`.",
        ),
        choice(
            "clock-skew",
            Shape::Section(&CLOCK_SKEW),
            "A service's clock moved ahead or behind (libfaketime, preloaded from bring-up).",
        ),
        choice(
            "io-limit",
            Shape::Section(&IO_LIMIT),
            "A service's I/O to the disk under a path throttled (cgroup v1 blkio throttle).",
        ),
        key(
            "name",
            Shape::Text,
            "Generated otherwise: \"kill billing\", \"wait 5s\"; repeats get \" (2)\".",
        ),
        key(
            "delay",
            Shape::Duration,
            "Inside `parallel` only: the child starts this long after the group (or after `at`).",
        ),
        key(
            "at",
            Shape::Section(&STEP_AT),
            "Inside `parallel` only: `delay` counts from this moment of a sibling step.",
        ),
    ],
};

/// A `parallel` child's `at`.
pub(crate) static STEP_AT: Section = Section {
    id: "step-at",
    doc: "A moment of a sibling step in the same `parallel` group; skipped if it never comes.",
    one_choice: false,
    keys: &[
        required("step", Shape::Text, "A sibling step's name."),
        key("event", MOMENT, "Which moment (default `started`)."),
    ],
};

/// The moments of a step, for triggers and `at`.
const MOMENT: Shape = Shape::Enum(crate::scenario::model::StepMoment::NAMES);

const SERVICE_KEY: Key = required("service", Shape::Text, "The service.");
const UNDO: Key = key(
    "for",
    Shape::Duration,
    "Undo after this long (start again, or unpause); the step ends when it is undone.",
);

/// `kill`.
pub(crate) static KILL: Section = Section {
    id: "kill",
    doc: "Send a signal to a service's containers.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        key(
            "signal",
            Shape::AnyOf(&[Shape::Text, Shape::Integer(1, 64)]),
            "Default SIGKILL; names with or without SIG, or numbers.",
        ),
        UNDO,
    ],
};

/// `kill-process`.
pub(crate) static KILL_PROCESS: Section = Section {
    id: "kill-process",
    doc: "A signal to named processes inside a service's containers.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        required(
            "name",
            Shape::Text,
            "The program's file name (`celery`): its command name or first/second command-line word.",
        ),
        key(
            "signal",
            Shape::AnyOf(&[Shape::Text, Shape::Integer(1, 64)]),
            "Default SIGKILL; names with or without SIG, or numbers.",
        ),
    ],
};

/// `stop`.
pub(crate) static STOP: Section = Section {
    id: "stop",
    doc: "Graceful stop: the stop signal, then SIGKILL after `timeout`.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        key(
            "timeout",
            Shape::Duration,
            "Grace period; default the service's `stop-grace-period`, else 10s.",
        ),
        UNDO,
    ],
};

/// `start`, `restart`, `pause`, `unpause`.
pub(crate) static SERVICE_ACTION: Section = Section {
    id: "service-action",
    doc: "A container action on a service.",
    one_choice: false,
    keys: &[SERVICE_KEY, UNDO],
};

/// `rollback`.
pub(crate) static ROLLBACK: Section = Section {
    id: "rollback",
    doc: "Roll back the latest upgrade of a service (it needs an earlier upgrade of it).",
    one_choice: false,
    keys: &[SERVICE_KEY],
};

const FAULT_FOR: Key = required("for", Shape::Duration, "How long the fault lasts.");
const TARGET: Key = key(
    "target",
    Shape::AnyOf(&[Shape::Enum(&["one", "all"]), Shape::Integer(1, 16)]),
    "one | all | N (default all): picks among the service's containers with the run's seed.",
);

/// `memory`.
pub(crate) static MEMORY: Section = Section {
    id: "memory",
    doc: "A memory limit on a service's containers.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        required("limit", Shape::Text, "B, KiB, MiB, GiB, KB, MB, GB; at least 6MiB."),
        FAULT_FOR,
        TARGET,
    ],
};

/// `cpu`.
pub(crate) static CPU: Section = Section {
    id: "cpu",
    doc: "A CPU quota on a service's containers.",
    one_choice: false,
    keys: &[SERVICE_KEY, required("cores", Shape::Number, "At least 0.01."), FAULT_FOR, TARGET],
};

/// `partition`.
pub(crate) static PARTITION: Section = Section {
    id: "partition",
    doc: "A service's containers disconnected from the run network.",
    one_choice: false,
    keys: &[SERVICE_KEY, FAULT_FOR, TARGET],
};

const LINK_KEY: Key = required("link", Shape::Text, "A link declared in `stack.links`.");
const TOXICITY: Key = key(
    "toxicity",
    Shape::AnyOf(&[Shape::Number, Shape::Text]),
    "Share of connections, 0.5 or 50% (default 1; seeded).",
);
const DIRECTION: Key = key(
    "direction",
    Shape::Enum(&["upstream", "downstream", "both"]),
    "Which byte stream (default per kind).",
);
const PROBABILITY: Key = key(
    "probability",
    Shape::AnyOf(&[Shape::Number, Shape::Text]),
    "Share of requests, 0.5 or 50% (default 1).",
);

/// `latency`.
pub(crate) static LATENCY: Section = Section {
    id: "latency",
    doc: "Link fault: delay.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        DIRECTION,
        required("latency", Shape::Duration, "Added delay."),
        key("jitter", Shape::Duration, "± this much."),
    ],
};

/// `bandwidth`.
pub(crate) static BANDWIDTH: Section = Section {
    id: "bandwidth",
    doc: "Link fault: throughput limit.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        DIRECTION,
        required("rate", Shape::Text, "B, KiB, MiB, KB, MB per second: `64KiB/s`."),
    ],
};

/// `timeout` (the link fault).
pub(crate) static LINK_TIMEOUT: Section = Section {
    id: "link-timeout",
    doc: "Link fault: nothing forwarded, the connection closed `after`.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        DIRECTION,
        key("after", Shape::Duration, "When the connection is closed."),
    ],
};

/// `reset-peer`.
pub(crate) static RESET_PEER: Section = Section {
    id: "reset-peer",
    doc: "Link fault: TCP RST to both peers.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        DIRECTION,
        key("after", Shape::Duration, "After the first data (default 0s)."),
    ],
};

/// `slow-close`.
pub(crate) static SLOW_CLOSE: Section = Section {
    id: "slow-close",
    doc: "Link fault: the close held back.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        DIRECTION,
        required("delay", Shape::Duration, "How long the FIN is held."),
    ],
};

/// `slicer`.
pub(crate) static SLICER: Section = Section {
    id: "slicer",
    doc: "Link fault: data in small pieces.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        DIRECTION,
        required("average", Shape::Integer(1, 1 << 30), "Average piece size, bytes."),
        key("variation", Shape::Integer(0, 1 << 30), "± bytes."),
        key("delay", Shape::Duration, "Between pieces."),
    ],
};

/// `limit-data`.
pub(crate) static LIMIT_DATA: Section = Section {
    id: "limit-data",
    doc: "Link fault: a byte budget.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        DIRECTION,
        required(
            "bytes",
            Shape::AnyOf(&[Shape::Integer(1, i64::MAX), Shape::Text]),
            "Forwarded (from when it applies), then closed: `4KiB`.",
        ),
    ],
};

/// `down`.
pub(crate) static DOWN: Section = Section {
    id: "down",
    doc: "Link fault: connections refused.",
    one_choice: false,
    keys: &[LINK_KEY, FAULT_FOR, TOXICITY],
};

const ROUTE_METHOD: Key = key(
    "method",
    Shape::AnyOf(&[Shape::Text, Shape::TextList]),
    "Route: only these methods, one or a list, as sent (`POST`).",
);
const ROUTE_PATH: Key = key(
    "path",
    Shape::Text,
    "Route: paths matching, query aside; `*` within a segment, `**` across (`/invoices/*`).",
);
const ROUTE_HEADER: Key = key(
    "header",
    Shape::TextMap,
    "Route: requests with these headers, name (any case) → value pattern (`*` any characters).",
);

/// `http-error`.
pub(crate) static HTTP_ERROR: Section = Section {
    id: "http-error",
    doc: "Link fault (http links): requests answered by the proxy.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        required("status", STATUS, "The answer."),
        PROBABILITY,
        ROUTE_METHOD,
        ROUTE_PATH,
        ROUTE_HEADER,
    ],
};

/// `http-abort`.
pub(crate) static HTTP_ABORT: Section = Section {
    id: "http-abort",
    doc: "Link fault (http links): the request reaches the server; its answer is cut off.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        key(
            "after",
            Shape::AnyOf(&[Shape::Integer(0, i64::MAX), Shape::Text]),
            "Body bytes delivered before the close (default 0): `1KiB`.",
        ),
        PROBABILITY,
        ROUTE_METHOD,
        ROUTE_PATH,
        ROUTE_HEADER,
    ],
};

/// `http-truncate`.
pub(crate) static HTTP_TRUNCATE: Section = Section {
    id: "http-truncate",
    doc: "Link fault (http links): the answer's body cut short, its length rewritten to match.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        required(
            "bytes",
            Shape::AnyOf(&[Shape::Integer(0, i64::MAX), Shape::Text]),
            "Body bytes kept: `100`, `1KiB`.",
        ),
        PROBABILITY,
        ROUTE_METHOD,
        ROUTE_PATH,
        ROUTE_HEADER,
    ],
};

/// `http-delay`.
pub(crate) static HTTP_DELAY: Section = Section {
    id: "http-delay",
    doc: "Link fault (http links): requests held.",
    one_choice: false,
    keys: &[
        LINK_KEY,
        FAULT_FOR,
        TOXICITY,
        required("delay", Shape::Duration, "How long."),
        PROBABILITY,
        ROUTE_METHOD,
        ROUTE_PATH,
        ROUTE_HEADER,
    ],
};

/// `cut`.
pub(crate) static CUT: Section = Section {
    id: "cut",
    doc: "Link fault: a link partition.",
    one_choice: false,
    keys: &[LINK_KEY, FAULT_FOR, TOXICITY, DIRECTION],
};

/// `human` (gameday).
pub(crate) static HUMAN: Section = Section {
    id: "human",
    doc: "A prompt for a person in a role, with a deadline and what counts as done.",
    one_choice: false,
    keys: &[
        required("role", Shape::Text, "Who is asked: `on-call`, `support`, …"),
        required("prompt", Shape::Text, "What they are asked to do."),
        key("runbook", Shape::Text, "A runbook link or text."),
        required("deadline", Shape::Duration, "How long the step waits for them at most."),
        key(
            "done",
            Shape::AnyOf(&[Shape::Enum(&["acknowledge"]), Shape::Section(&HUMAN_DONE)]),
            "`acknowledge` (default) or an effect: `{ notification: { sink, contains } }`, \
             `{ healthy: SERVICE }`.",
        ),
        key(
            "roll-back",
            Shape::Text,
            "A decision: the answer \"we decided to roll back\" rolls back the latest upgrade of \
             this service.",
        ),
    ],
};

/// `done` of a `human` step, as an effect.
pub(crate) static HUMAN_DONE: Section = Section {
    id: "human-done",
    doc: "The effect that completes a `human` step: exactly one.",
    one_choice: true,
    keys: &[
        choice(
            "notification",
            Shape::Section(&HUMAN_NOTIFICATION),
            "A notification arrives at the sink after the prompt.",
        ),
        choice("healthy", Shape::Text, "The service is healthy (again)."),
    ],
};

/// `done: { notification: ... }`.
pub(crate) static HUMAN_NOTIFICATION: Section = Section {
    id: "human-notification",
    doc: "A notification the person's tooling sends.",
    one_choice: false,
    keys: &[
        required("sink", Shape::Text, "A sink declared in `sinks`."),
        key("contains", Shape::Text, "Text its subject or body contains (any case)."),
    ],
};

/// `human-within`.
pub(crate) static HUMAN_WITHIN: Section = Section {
    id: "human-within",
    doc: "A `human` step done within a deadline from its prompt.",
    one_choice: false,
    keys: &[
        required("step", Shape::Text, "A `human` step."),
        required("within", Shape::Duration, "Deadline from the prompt."),
    ],
};

/// A responders file (`--responders FILE`): role → one response or a list of them.
pub(crate) static RESPONSE: Section = Section {
    id: "response",
    doc: "How a scripted person of a role answers a prompt.",
    one_choice: false,
    keys: &[
        key(
            "step",
            Shape::Text,
            "Only the prompt of this step (default: every prompt of the role).",
        ),
        required("delay", Shape::Duration, "How long after the prompt they act."),
        required(
            "do",
            Shape::AnyOf(&[Shape::Enum(&["acknowledge"]), Shape::Section(&RESPONSE_DO)]),
            "`acknowledge` or `{ http: { ... } }` (then they acknowledge).",
        ),
    ],
};

/// `do:` of a response, as an action.
pub(crate) static RESPONSE_DO: Section = Section {
    id: "response-do",
    doc: "What a scripted person does.",
    one_choice: true,
    keys: &[choice(
        "http",
        Shape::Section(&RESPONSE_HTTP),
        "One HTTP request, as `call` sends it.",
    )],
};

/// `do: { http: ... }`.
pub(crate) static RESPONSE_HTTP: Section = Section {
    id: "response-http",
    doc: "One HTTP request from the harness to a sink or a service.",
    one_choice: false,
    keys: &[
        key("sink", Shape::Text, "A sink of the scenario (its 127.0.0.1 address)."),
        key("service", Shape::Text, "Or a service (with `port`)."),
        key("port", PORT, "A port declared in the service's `ports`."),
        key("method", Shape::EnumAnyCase(METHODS), "Default POST."),
        key("path", Shape::Text, "Default `/`."),
        key("body", Shape::Text, "JSON text (application/json)."),
        key("timeout", Shape::Duration, "Default 5s."),
    ],
};

/// `node-availability` (swarm backend).
pub(crate) static NODE_AVAILABILITY: Section = Section {
    id: "node-availability",
    doc: "Swarm only: a node-level fault, restored after `for`.",
    one_choice: false,
    keys: &[
        required(
            "availability",
            Shape::Enum(&["drain", "pause"]),
            "`drain` (its tasks are shut down and rescheduled) or `pause` (no new tasks).",
        ),
        key("node", Shape::Text, "A node's hostname or id; default the node `DOCKER_HOST` names."),
        required("for", Shape::Duration, "How long; then the node's availability is restored."),
    ],
};

/// `sink-outage`.
pub(crate) static OUTAGE: Section = Section {
    id: "sink-outage",
    doc: "A notification sink fails like a provider outage.",
    one_choice: false,
    keys: &[
        required("sink", Shape::Text, "A name in `sinks`."),
        key(
            "status",
            Shape::AnyOf(&[Shape::Integer(400, 599), Shape::Enum(&["hang"])]),
            "400–599 (the provider's error body) or `hang`.",
        ),
        key(
            "probability",
            Shape::AnyOf(&[Shape::Number, Shape::Text]),
            "Default 100% (seeded: --seed replays it).",
        ),
        key(
            "for",
            Shape::Duration,
            "Optional: without it the step returns at once and the outage lasts until teardown.",
        ),
        key(
            "channel",
            Shape::Enum(&["sms", "voice"]),
            "Twilio sinks only: `sms` or `voice` fails alone, default both.",
        ),
    ],
};

/// `call`.
pub(crate) static CALL: Section = Section {
    id: "call",
    doc: "One HTTP request from the harness.",
    one_choice: false,
    keys: &[
        required("service", Shape::Text, "The service."),
        required("port", PORT, "A port declared in the service's `ports`."),
        key("method", Shape::EnumAnyCase(METHODS), "Default POST."),
        key("path", Shape::Text, "Default `/`."),
        key("body", Shape::Text, "JSON text (application/json)."),
        key("status", STATUS, "Default: any 2xx."),
        key("timeout", Shape::Duration, "Default 5s."),
    ],
};

/// `upgrade`.
pub(crate) static UPGRADE: Section = Section {
    id: "upgrade",
    doc: "Replace a service's image, judge the new version, roll back on failure.",
    one_choice: false,
    keys: &[
        required("service", Shape::Text, "The service."),
        key(
            "image",
            Shape::Text,
            "Exactly one of `image:` or `build:` (same shape as a service's).",
        ),
        key("build", Shape::Section(&BUILD), "Exactly one of `image:` or `build:`."),
        key(
            "strategy",
            Shape::Enum(&["recreate", "blue-green", "rolling"]),
            "recreate (default) | blue-green | rolling (a service with `replicas: 2` or more).",
        ),
        key("deadline", Shape::Duration, "Default 60s: healthy within it or the upgrade failed."),
        key(
            "migrate",
            Shape::Section(&MIGRATE),
            "A one-shot container of the new image that must exit 0.",
        ),
        key("watch", Shape::Section(&WATCH), "SLO gate after the switch."),
        key("backup", Shape::Text, "A service declaring both `backup` and `restore` hooks."),
        key(
            "on-failure",
            Shape::Enum(&["rollback", "abort", "continue"]),
            "rollback (default) | abort | continue.",
        ),
        key("version", Shape::Section(&VERSION), "The version endpoint; path default /version."),
        key(
            "max-unavailable",
            Shape::Integer(1, 16),
            "Rolling only, default 1: replicas replaced at once.",
        ),
    ],
};

/// `migrate`.
pub(crate) static MIGRATE: Section = Section {
    id: "migrate",
    doc: "A migration: a one-shot container of the new image.",
    one_choice: false,
    keys: &[
        required("command", Shape::Argv, "The command."),
        key("when", Shape::Enum(&["before", "after"]), "before (default) | after the switch."),
        key("deadline", Shape::Duration, "How long it may take."),
    ],
};

/// `watch`.
pub(crate) static WATCH: Section = Section {
    id: "watch",
    doc: "The SLO gate after the switch.",
    one_choice: false,
    keys: &[
        required("for", Shape::Duration, "How long."),
        required("traffic", Shape::Text, "A `traffic` entry."),
        required("availability", Shape::Percent, "\"99%\", \"99.5%\" or a number from 0 to 100."),
    ],
};

/// `version`.
pub(crate) static VERSION: Section = Section {
    id: "version",
    doc: "Where the service says its version.",
    one_choice: false,
    keys: &[
        required("port", PORT, "A port declared in `ports`."),
        key("path", Shape::Text, "Default /version."),
    ],
};

/// An `expect` entry.
pub(crate) static EXPECT: Section = Section {
    id: "expectation",
    doc: "A check over the journal: exactly one kind, plus an optional `name`.",
    one_choice: true,
    keys: &[
        choice(
            "steady-state",
            Shape::Enum(&["before", "after"]),
            "Every steady-state probe passed before the steps (or after).",
        ),
        choice(
            "healthy-within",
            Shape::Section(&HEALTHY_WITHIN),
            "The service was healthy within `within` of the end of step `after`.",
        ),
        choice(
            "healthy-throughout",
            Shape::Section(&SERVICE_STEP),
            "No unhealthy observation while the step ran.",
        ),
        choice(
            "unhealthy-during",
            Shape::Section(&UNHEALTHY_DURING),
            "The service was seen unhealthy while the step ran.",
        ),
        choice("probe-passed", Shape::Text, "A `probe` step's observation met its expectation."),
        choice(
            "probe-failed",
            Shape::Text,
            "A `probe` step's observation failed it (a probe meant to fail).",
        ),
        choice(
            "restored",
            Shape::Section(&RESTORED),
            "After an upgrade: service, version and data restored.",
        ),
        choice("slo", Shape::Section(&SLO), "A traffic stream kept its limits (at least one)."),
        choice(
            "no-lost-writes",
            Shape::Section(&NO_LOST_WRITES),
            "Every acknowledged write is read back (the traffic needs `verify-writes`).",
        ),
        choice("upgrade-succeeds", Shape::Text, "An upgrade step completes."),
        choice(
            "upgrade-rolled-back",
            Shape::Text,
            "An upgrade step with `on-failure: rollback` was rolled back.",
        ),
        choice("notify", Shape::Section(&NOTIFY), "Customers told on every channel in time."),
        choice(
            "maintenance-notice",
            Shape::Section(&MAINTENANCE_NOTICE),
            "A notice at least the lead time before an upgrade.",
        ),
        choice(
            "human-within",
            Shape::Section(&HUMAN_WITHIN),
            "A `human` step was done within `within` of its prompt.",
        ),
        choice(
            "prometheus",
            Shape::Section(&PROMETHEUS),
            "A PromQL query's value at a moment, or throughout a step, within limits.",
        ),
        choice(
            "alert",
            Shape::Section(&ALERT),
            "An alerting rule fired, was routed, reached the channels and resolved in time.",
        ),
        key("name", Shape::Text, "Generated otherwise."),
    ],
};

/// `healthy-within`.
pub(crate) static HEALTHY_WITHIN: Section = Section {
    id: "healthy-within",
    doc: "Healthy again within a deadline after a step.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        required("after", Shape::Text, "A step name."),
        required("within", Shape::Duration, "Deadline from the step's end."),
    ],
};

/// `healthy-throughout`.
pub(crate) static SERVICE_STEP: Section = Section {
    id: "healthy-throughout",
    doc: "Healthy while a step ran.",
    one_choice: false,
    keys: &[SERVICE_KEY, required("step", Shape::Text, "A step name.")],
};

/// `unhealthy-during`.
pub(crate) static UNHEALTHY_DURING: Section = Section {
    id: "unhealthy-during",
    doc: "Seen unhealthy while a step ran.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        required("step", Shape::Text, "A step name."),
        key("starts-during", Shape::Bool, "The unhealthy spell must start during the step."),
    ],
};

/// `restored`.
pub(crate) static RESTORED: Section = Section {
    id: "restored",
    doc: "Service, version and data restored after an upgrade.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        required("after", Shape::Text, "An upgrade step of that service."),
        required("within", Shape::Duration, "Deadline."),
        key("version", Shape::Text, "Needs that step's `version:` endpoint."),
        key("traffic", Shape::Text, "A traffic stream that must be served again."),
    ],
};

/// The limits of an `slo`; it needs at least one.
pub(crate) const SLO_LIMITS: &[&str] = &["availability", "p50", "p95", "p99", "max-outage"];

/// `slo`.
pub(crate) static SLO: Section = Section {
    id: "slo",
    doc: "A traffic stream's SLO; at least one limit.",
    one_choice: false,
    keys: &[
        required("traffic", Shape::Text, "A `traffic` entry."),
        key("during", Shape::Text, "Any step: only requests scheduled while it ran."),
        key(
            "expect",
            Shape::Enum(&["met", "breached"]),
            "met (default) | breached: passes when a limit is broken.",
        ),
        key("availability", Shape::Percent, "Share of requests that succeeded."),
        key("p50", Shape::Duration, "Median latency limit."),
        key("p95", Shape::Duration, "95th percentile latency limit."),
        key("p99", Shape::Duration, "99th percentile latency limit."),
        key("max-outage", Shape::Duration, "Longest run of failures."),
    ],
};

/// `no-lost-writes`.
pub(crate) static NO_LOST_WRITES: Section = Section {
    id: "no-lost-writes",
    doc: "Every acknowledged write is read back.",
    one_choice: false,
    keys: &[required("traffic", Shape::Text, "A `traffic` entry with `verify-writes`.")],
};

/// `notify`.
pub(crate) static NOTIFY: Section = Section {
    id: "notify",
    doc: "Customers told on every channel in time.",
    one_choice: false,
    keys: &[
        required("on", Shape::Section(&TRIGGER), "The trigger."),
        required("channels", CHANNEL_LIST, "Each needs a sink of its kind."),
        required(
            "within",
            Shape::AnyOf(&[Shape::Duration, Shape::Map(&Shape::Duration)]),
            "A deadline, or per channel: `{ email: 90s, sms: 60s }`.",
        ),
        key("spread", Shape::Duration, "Most time between the first and the last channel."),
        key("recipients", RECIPIENTS, "Each must be told on that channel in time."),
        key("contains", TEXT_OR_LIST, "A word or a list, case-insensitive."),
        key("matches", Shape::Text, "A regular expression (Rust `regex` syntax)."),
        key(
            "at-most",
            Shape::Integer(1, 10_000),
            "Messages per channel and recipient (no floods).",
        ),
        key("resolved", Shape::Section(&RESOLVED), "The all-clear."),
    ],
};

/// A trigger.
pub(crate) static TRIGGER: Section = Section {
    id: "trigger",
    doc: "When the clock of a `notify` starts: exactly one of step / unhealthy / fault / marker.",
    one_choice: true,
    keys: &[
        choice("step", Shape::Text, "A step (its start, or `event`)."),
        key("event", MOMENT, "With `step`: which moment (`switched`, `healthy`: upgrades)."),
        choice("unhealthy", Shape::Text, "A service first seen unhealthy."),
        choice("fault", Shape::Text, "A fault step applied."),
        choice("marker", Shape::Text, "A `mark: NAME` step."),
    ],
};

/// `resolved`.
pub(crate) static RESOLVED: Section = Section {
    id: "resolved",
    doc: "The all-clear.",
    one_choice: false,
    keys: &[
        required("after", Shape::Section(&TRIGGER), "The trigger."),
        required("within", Shape::Duration, "Deadline."),
    ],
};

/// `maintenance-notice`.
pub(crate) static MAINTENANCE_NOTICE: Section = Section {
    id: "maintenance-notice",
    doc: "A notice at least the lead time before an upgrade.",
    one_choice: false,
    keys: &[
        required("before", Shape::Text, "An upgrade step."),
        required("channels", CHANNEL_LIST, "Each needs a sink of its kind."),
        key("lead-time", Shape::Duration, "Rehearsal time; default from `maintenance.notice`."),
        key("recipients", RECIPIENTS, "Each must be told on that channel."),
        key("contains", TEXT_OR_LIST, "A word or a list, case-insensitive."),
    ],
};

const WINDOWS: Shape = Shape::List(&Shape::AnyOf(&[Shape::Text, Shape::Section(&WINDOW)]));
const BLACKOUTS: Shape = Shape::List(&Shape::AnyOf(&[Shape::Text, Shape::Section(&WINDOW)]));

/// `maintenance`.
pub(crate) static MAINTENANCE: Section = Section {
    id: "maintenance",
    doc: "When upgrades are allowed and how early customers must be told.",
    one_choice: false,
    keys: &[
        required(
            "customers",
            Shape::Map(&Shape::AnyOf(&[Shape::Text, Shape::Section(&CUSTOMER)])),
            "Per customer: its zone, or `{ zone, windows, blackouts }`.",
        ),
        key(
            "windows",
            WINDOWS,
            "Weekly windows every customer shares, in its own zone: `{ from: Sat 22:00, to: Sun 06:00 }`.",
        ),
        key("blackouts", BLACKOUTS, "Days no upgrade may touch."),
        key("notice", Shape::Section(&NOTICE), "How early customers must be told."),
    ],
};

/// A customer.
pub(crate) static CUSTOMER: Section = Section {
    id: "customer",
    doc: "A customer of the maintenance policy.",
    one_choice: false,
    keys: &[
        required("zone", Shape::Text, "An IANA zone: `Europe/Berlin`."),
        key("windows", WINDOWS, "Its own weekly windows."),
        key("blackouts", BLACKOUTS, "Its own blackout days."),
    ],
};

/// A window (or a blackout span).
pub(crate) static WINDOW: Section = Section {
    id: "window",
    doc: "A weekly window `{ from: Sat 22:00, to: Sun 06:00 }`.",
    one_choice: false,
    keys: &[required("from", Shape::Text, "Start."), required("to", Shape::Text, "End.")],
};

/// `notice`.
pub(crate) static NOTICE: Section = Section {
    id: "notice",
    doc: "How early customers must be told.",
    one_choice: false,
    keys: &[
        required("lead-time", Shape::Text, "Calendar time, e.g. `72h`."),
        required("channels", CHANNEL_LIST, "Required channels."),
    ],
};

/// `calendar`.
pub(crate) static CALENDAR: Section = Section {
    id: "calendar",
    doc: "The calendar time the rehearsal stands for.",
    one_choice: false,
    keys: &[
        required(
            "start",
            Shape::Text,
            "A local time and IANA zone: `2026-12-05T21:50 Europe/Berlin`.",
        ),
        required("scale", Shape::Text, "Rehearsal time = calendar time: `1s = 10m`."),
    ],
};

/// An entry of a `gate --notices` file.
pub(crate) static SENT_NOTICE: Section = Section {
    id: "sent-notice",
    doc: "A notice sent.",
    one_choice: false,
    keys: &[
        required("sent", Shape::Text, "When: RFC 3339 or a local time and zone."),
        required("channels", CHANNEL_LIST, "On which channels."),
    ],
};

/// `prometheus` (an `expect` entry).
pub(crate) static PROMETHEUS: Section = Section {
    id: "prometheus",
    doc: "A PromQL query judged at a moment (`at`) or over a step (`throughout`).",
    one_choice: false,
    keys: &[
        key("service", Shape::Text, "The stack's Prometheus service (or `url`)."),
        key("port", PORT, "Its container port; default its first declared port."),
        key("url", Shape::Text, "A Prometheus on this machine: http://127.0.0.1:PORT."),
        required("query", Shape::Text, "The PromQL expression."),
        key("at", Shape::Section(&TRIGGER), "An instant query at that moment (or `throughout`)."),
        key("delay", Shape::Duration, "With `at`: added to the moment."),
        key("throughout", Shape::Text, "A step: every sample while it ran (or `at`)."),
        key("resolution", Shape::Duration, "With `throughout`: the range query's step (1s)."),
        key("min", Shape::Number, "Every value at least this."),
        key("max", Shape::Number, "Every value at most this."),
    ],
};

/// A Prometheus or Alertmanager of an `alert` check.
pub(crate) static METRICS_SOURCE: Section = Section {
    id: "metrics-source",
    doc: "A service of the stack (`service`, `port`) or a `url` on this machine.",
    one_choice: false,
    keys: &[
        key("service", Shape::Text, "A service of the stack."),
        key("port", PORT, "Its container port; default its first declared port."),
        key("url", Shape::Text, "http://127.0.0.1:PORT (loopback only)."),
    ],
};

/// `alert` (an `expect` entry).
pub(crate) static ALERT: Section = Section {
    id: "alert",
    doc: "An alerting rule's chain: fired, routed, delivered, resolved.",
    one_choice: false,
    keys: &[
        required("alertname", Shape::Text, "The rule's `alertname`."),
        required("prometheus", Shape::Section(&METRICS_SOURCE), "Where `ALERTS` is read."),
        required("fires", Shape::Section(&ALERT_DEADLINE), "Firing within `within` of `on`."),
        key("routed", Shape::Section(&ALERT_ROUTED), "Alertmanager picked `receiver` in time."),
        key(
            "delivered",
            Shape::Section(&ALERT_DELIVERED),
            "Each channel carried an alert in time.",
        ),
        key("resolves", Shape::Section(&ALERT_DEADLINE), "No longer firing within `within`."),
        key("labels", Shape::TextMap, "Labels the alert must carry."),
    ],
};

/// `fires`, `resolves`.
pub(crate) static ALERT_DEADLINE: Section = Section {
    id: "alert-deadline",
    doc: "A trigger and a deadline from it.",
    one_choice: false,
    keys: &[
        required("on", Shape::Section(&TRIGGER), "The trigger."),
        required("within", Shape::Duration, "Deadline."),
    ],
};

/// `routed`.
pub(crate) static ALERT_ROUTED: Section = Section {
    id: "alert-routed",
    doc: "Alertmanager holds the alert for the receiver.",
    one_choice: false,
    keys: &[
        required("alertmanager", Shape::Section(&METRICS_SOURCE), "Which Alertmanager."),
        required("receiver", Shape::Text, "The receiver its route must pick."),
        required("within", Shape::Duration, "Deadline from the firing."),
    ],
};

/// `delivered`.
pub(crate) static ALERT_DELIVERED: Section = Section {
    id: "alert-delivered",
    doc: "Each channel's first alert message in time.",
    one_choice: false,
    keys: &[
        required("channels", CHANNEL_LIST, "Each needs a sink of its kind."),
        required("within", Shape::Duration, "Deadline from the routing (or the firing)."),
    ],
};

/// A section of text keys, for tests of the reader.
#[cfg(test)]
pub(crate) fn test_section(names: &[&'static str]) -> &'static Section {
    let keys: Vec<Key> = names.iter().map(|name| key(name, Shape::Text, "")).collect();
    Box::leak(Box::new(Section {
        id: "test",
        doc: "",
        one_choice: false,
        keys: Box::leak(keys.into_boxed_slice()),
    }))
}

const SHARE: Shape = Shape::AnyOf(&[Shape::Percent, Shape::Number]);

/// `packet`.
pub(crate) static PACKET: Section = Section {
    id: "packet",
    doc: "Packet faults on a service's egress, below TCP.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        key("loss", SHARE, "Share of outgoing packets dropped: `10%` (nftables, kernel-random)."),
        key(
            "rate",
            Shape::Text,
            "Egress limited to B, KiB, MiB, KB, MB per second: `128KiB/s` (tbf).",
        ),
        key("to", Shape::Text, "Only packets to this service's containers (default: all)."),
        key("delay", Shape::Duration, "Each outgoing packet held this long (NFQUEUE, no netem)."),
        key("jitter", Shape::Duration, "The hold varies uniformly within `delay ± jitter`."),
        key("correlation", SHARE, "Weight of the last jitter draw in the next (netem's)."),
        key("reorder", SHARE, "Share of packets sent at once, ahead of the delayed rest."),
        key("corrupt", SHARE, "Share of packets with one bit flipped past the IP header."),
        key("duplicate", SHARE, "Share of packets sent twice."),
        FAULT_FOR,
        TARGET,
    ],
};

/// `dns`.
pub(crate) static DNS: Section = Section {
    id: "dns",
    doc: "Names that fail to resolve or resolve late for a service's containers.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        required(
            "names",
            Shape::AnyOf(&[Shape::Text, Shape::TextList]),
            "A name or a list of names (`redis`), matched exactly, case-insensitively.",
        ),
        key(
            "error",
            Shape::Enum(&["nxdomain", "servfail", "drop"]),
            "How matching queries fail; without it they are answered after `delay`.",
        ),
        key("delay", Shape::Duration, "How long a matching query is held first."),
        FAULT_FOR,
        TARGET,
    ],
};

/// `disk-fill`.
pub(crate) static DISK_FILL: Section = Section {
    id: "disk-fill",
    doc: "The file system under a path inside a service's containers filled with one file.",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        required("path", Shape::Text, "An absolute directory inside the container."),
        key("level", Shape::Percent, "Fill until `df` shows this much used: `95%`."),
        key("size", Shape::Text, "Or write exactly this much: `64MiB`."),
        FAULT_FOR,
        TARGET,
    ],
};

/// `explore`: the chaos space `firedrill explore` draws fault schedules from.
pub(crate) static EXPLORE: Section = Section {
    id: "explore",
    doc: "The chaos space `firedrill explore` draws fault schedules from.",
    one_choice: false,
    keys: &[
        key(
            "at",
            Shape::Text,
            "A top-level step the faults run alongside (in one `parallel` group); default: after the last step.",
        ),
        key(
            "from",
            MOMENT,
            "With `at`: the window counts from this moment of that step (default `started`); `healthy`: an upgrade's watch.",
        ),
        required(
            "window",
            Shape::Text,
            "When a fault may start, from the group's start (or `from`): `0s..20s` (or one duration).",
        ),
        key("min-faults", Shape::Integer(1, 16), "Fewest faults in a schedule (default 1)."),
        key("max-faults", Shape::Integer(1, 16), "Most faults in a schedule (default 2)."),
        key(
            "resolution",
            Shape::Duration,
            "Starts and durations are multiples of this (default 1s): fewer cases to shrink through.",
        ),
        required(
            "faults",
            Shape::List(&Shape::Section(&EXPLORE_FAULT)),
            "The fault kinds that may be injected, each with its targets and `for` range.",
        ),
        key(
            "reuse-stack",
            Shape::Bool,
            "Keep the stack up between cases (checked clean and restored before each; default false).",
        ),
    ],
};

/// One entry of `explore.faults`.
pub(crate) static EXPLORE_FAULT: Section = Section {
    id: "explore-fault",
    doc: "A fault kind that may be injected: exactly one kind, with its targets.",
    one_choice: true,
    keys: &[
        choice(
            "kill",
            Shape::Section(&EXPLORE_CONTAINER),
            "Kill a service (started again after `for`).",
        ),
        choice(
            "stop",
            Shape::Section(&EXPLORE_CONTAINER),
            "Stop a service (started again after `for`).",
        ),
        choice(
            "pause",
            Shape::Section(&EXPLORE_CONTAINER),
            "Freeze a service (unpaused after `for`).",
        ),
        choice("restart", Shape::Section(&EXPLORE_CONTAINER), "Restart a service (no `for`)."),
        choice("partition", Shape::Section(&EXPLORE_CONTAINER), "Disconnect a service for `for`."),
        choice(
            "latency",
            Shape::Section(&EXPLORE_LINK),
            "Delay a link for `for` (needs `latency`).",
        ),
        choice("down", Shape::Section(&EXPLORE_LINK), "Refuse a link's connections for `for`."),
        choice("timeout", Shape::Section(&EXPLORE_LINK), "Hold a link's bytes for `for`."),
        choice(
            "reset-peer",
            Shape::Section(&EXPLORE_LINK),
            "Reset a link's connections for `for`.",
        ),
        choice("cut", Shape::Section(&EXPLORE_LINK), "Partition a link for `for`."),
        choice(
            "sink-outage",
            Shape::Section(&EXPLORE_SINK),
            "A notification sink fails for `for`.",
        ),
    ],
};

const EXPLORE_FOR: Key = key(
    "for",
    Shape::Text,
    "How long the fault lasts: a range `1s..10s` or one duration (not for `restart`).",
);

/// A container fault of `explore.faults`.
pub(crate) static EXPLORE_CONTAINER: Section = Section {
    id: "explore-container",
    doc: "A container fault kind and the services it may hit.",
    one_choice: false,
    keys: &[
        required("services", Shape::TextList, "The services it may hit."),
        EXPLORE_FOR,
        key(
            "signal",
            Shape::AnyOf(&[Shape::Text, Shape::Integer(1, 64)]),
            "`kill` only: the signal (default SIGKILL).",
        ),
    ],
};

/// A link fault of `explore.faults`.
pub(crate) static EXPLORE_LINK: Section = Section {
    id: "explore-link",
    doc: "A link fault kind and the links it may hit.",
    one_choice: false,
    keys: &[
        required("links", Shape::TextList, "Links declared in `stack.links`."),
        EXPLORE_FOR,
        key("latency", Shape::Duration, "`latency` only: the added delay."),
        TOXICITY,
    ],
};

/// A sink outage of `explore.faults`.
pub(crate) static EXPLORE_SINK: Section = Section {
    id: "explore-sink",
    doc: "A sink outage and the sinks it may hit.",
    one_choice: false,
    keys: &[
        required("sinks", Shape::TextList, "Names in `sinks`."),
        EXPLORE_FOR,
        key(
            "status",
            Shape::AnyOf(&[Shape::Integer(400, 599), Shape::Enum(&["hang"])]),
            "400–599 (the provider's error body) or `hang` (default 503).",
        ),
    ],
};

/// `clock-skew`.
pub(crate) static CLOCK_SKEW: Section = Section {
    id: "clock-skew",
    doc: "A service's clock moved by `offset` (libfaketime; dynamically linked glibc programs).",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        required("offset", Shape::Text, "Signed: `+2h` ahead, `-30m` behind, `+1h30m`."),
        FAULT_FOR,
        TARGET,
    ],
};

/// `io-limit`.
pub(crate) static IO_LIMIT: Section = Section {
    id: "io-limit",
    doc: "A service's reads and writes to the block device under `path` throttled (blkio, cgroup v1).",
    one_choice: false,
    keys: &[
        SERVICE_KEY,
        required(
            "path",
            Shape::Text,
            "An absolute path inside the container on a volume or bind mount (a block device).",
        ),
        key("read-bps", Shape::Text, "Reads limited to B, KiB, MiB, KB, MB per second: `1MiB/s`."),
        key("write-bps", Shape::Text, "Writes limited to this many bytes per second: `1MiB/s`."),
        key("read-iops", Shape::Integer(1, 1_000_000), "Read operations per second."),
        key("write-iops", Shape::Integer(1, 1_000_000), "Write operations per second."),
        FAULT_FOR,
        TARGET,
    ],
};

#[cfg(test)]
mod tests {
    use super::STEP;
    use crate::scenario::model::ActionKind;

    #[test]
    fn every_step_kind_has_its_section_and_no_other_step_keys_exist() {
        let mut described = STEP.choices();
        let mut kinds = ActionKind::KEYS.to_vec();
        described.sort_unstable();
        kinds.sort_unstable();
        assert_eq!(described, kinds, "scenario/keys.rs STEP and model.rs action_kinds! differ");
    }
}
