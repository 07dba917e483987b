//! The run's journal: the one source of truth about what happened.
//!
//! Every action and observation is an [`Event`] with a monotonic offset from the run's start (µs)
//! and a UTC wall time. Events are appended in offset order, kept in memory for the checks and, when
//! a report folder is given, streamed to `journal.jsonl` one line per event (flushed each time), so a
//! crash leaves a readable partial history. This module knows nothing of Docker, checks or reports.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Version of the `journal.jsonl` line format; bumped on incompatible changes.
pub const JOURNAL_FORMAT_VERSION: u32 = 1;

/// One journal line. Keys are kebab-case, like the scenario format and `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Event {
    /// Position in the journal, from 0.
    pub seq: u64,
    /// Microseconds since the run started (monotonic clock).
    pub offset_us: u64,
    /// UTC wall time when the event was recorded.
    pub wall: jiff::Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Run phases, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Sweeping leftovers, building or checking images.
    Prepare,
    /// Network and containers up, health checks passing.
    BringUp,
    /// Steady-state probes before the first step.
    SteadyBefore,
    /// The timeline.
    Steps,
    /// Steady-state probes after the last step.
    SteadyAfter,
    /// Removing what the run created.
    Teardown,
    /// Instead of prepare and bring-up, on a stack an earlier run kept
    /// (`explore: { reuse-stack: true }`): checking it is clean and restoring what a case changed.
    Reuse,
}

/// Where a probe result belongs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum ProbeContext {
    /// A steady-state probe, before or after the steps.
    SteadyState {
        /// `before` or `after`.
        phase: crate::scenario::model::SteadyPhase,
    },
    /// A `probe` step.
    Step {
        /// Step name.
        step: String,
    },
}

/// How a step, phase or run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Did what it should.
    Ok,
    /// Failed (the event says why).
    Failed,
    /// Stopped by Ctrl-C or a signal before it finished.
    Interrupted,
    /// A `parallel` child that never ran: the moment its `at` names never came (the event says
    /// why). Recorded as a `step-started` and a `step-ended` at the same moment.
    Skipped,
}

/// Everything the journal records. Tagged by `event` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case", rename_all_fields = "kebab-case")]
#[non_exhaustive]
pub enum EventKind {
    /// First event of every run.
    RunStarted {
        /// Run id, also the `firedrill.run` label.
        run_id: String,
        /// Scenario name.
        scenario: String,
        /// Scenario file.
        file: String,
        /// Journal line format.
        format_version: u32,
        /// firedrill's version.
        firedrill_version: String,
        /// The seed of the run's random choices (fault targets); `--seed` replays them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    /// A phase began.
    PhaseStarted {
        /// Which.
        phase: Phase,
    },
    /// A phase ended.
    PhaseEnded {
        /// Which.
        phase: Phase,
        /// How.
        outcome: Outcome,
        /// Why it failed, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// This run goes on with the stack an earlier run kept, found clean (no fault in force, every
    /// service healthy at its original version), after restoring `restored` (services an earlier
    /// run had upgraded, recreated at their original image).
    StackReused {
        /// How many runs used this stack before this one.
        earlier_runs: u32,
        /// Services recreated at their original image first.
        restored: Vec<String>,
    },
    /// The kept stack was not clean: it was removed and this run brings a fresh one up.
    StackRenewed {
        /// Why it was not reused.
        reason: String,
    },
    /// The run ended without teardown: its stack, clean at the end, is kept for the next run.
    StackKept,
    /// Leftovers of dead runs removed at start.
    Swept {
        /// Containers removed.
        containers: Vec<String>,
        /// Networks removed.
        networks: Vec<String>,
    },
    /// An image was present or has been built.
    ImageReady {
        /// Image reference.
        image: String,
        /// Whether this run built it.
        built: bool,
        /// Time spent building, µs (0 when present).
        build_us: u64,
    },
    /// An image was pulled from its registry (pull policy `missing` and it was not local, or
    /// `always`).
    ImagePulled {
        /// Image reference.
        image: String,
        /// The manifest digest pulled (`sha256:…`).
        digest: String,
        /// Time the pull took, µs.
        pull_us: u64,
    },
    /// The run's network exists.
    NetworkCreated {
        /// Network name.
        network: String,
    },
    /// A service's container was created and started.
    ServiceStarted {
        /// Service.
        service: String,
        /// Container id.
        container: String,
        /// Image it runs.
        image: String,
    },
    /// The first healthy observation of a service at bring-up.
    ServiceReady {
        /// Service.
        service: String,
        /// µs from container start to ready.
        startup_us: u64,
    },
    /// A health observation that differs from the previous one for that service (the first
    /// observation is always recorded).
    HealthChanged {
        /// Service.
        service: String,
        /// The new state.
        healthy: bool,
        /// What the check saw (status, error, exit code).
        detail: String,
        /// When the check that saw it began, µs from the run's start (the event's own offset is
        /// when it ended). A check spans time: one that began before a restart and answered
        /// after it may describe the old container. Absent in journals written before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check_started_us: Option<u64>,
    },
    /// A step began.
    StepStarted {
        /// Position in `steps`.
        index: usize,
        /// Step name.
        step: String,
        /// The step's action key (`wait`, `probe`, `kill`, ...).
        action: String,
    },
    /// A step ended.
    StepEnded {
        /// Position in `steps`.
        index: usize,
        /// Step name.
        step: String,
        /// How.
        outcome: Outcome,
        /// Why it failed, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The harness did something to a container (or undid it, after `for`).
    ContainerAction {
        /// Service.
        service: String,
        /// `kill`, `stop`, `start`, `restart`, `pause`, `unpause`.
        action: String,
        /// Signal, for `kill`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<String>,
        /// Whether this undoes an earlier action of the same step.
        undo: bool,
        /// Whether Docker accepted it.
        ok: bool,
        /// Docker's error, when it did not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A fault was applied to one container (written to the ledger just before). `ok: false`:
    /// Docker refused, and nothing is in force.
    FaultApplied {
        /// The step.
        step: String,
        /// Id within the run (the ledger's; link faults, never ledgered, are counted apart, so
        /// a link fault is known by its `link` and id together).
        fault: u64,
        /// `memory`, `cpu`, `partition` or `pause`, or a link fault's kind (`latency`, `cut`, …).
        kind: String,
        /// Service.
        service: String,
        /// Which of its containers (the replica's key).
        replica: String,
        /// Whether Docker accepted it.
        ok: bool,
        /// What was done (the new limit, the network left), or Docker's error.
        detail: String,
        /// What was in force before and restores it (limits, aliases), as the ledger has it
        /// (`null` for link faults: removing the proxy fault restores the link).
        previous: serde_json::Value,
        /// The link, for a fault on a link's fault proxy (`service` is then the link's
        /// dependency and `replica` the link's name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
    },
    /// A fault was reverted (or reverting it failed).
    FaultReverted {
        /// The step.
        step: String,
        /// Id of the `fault-applied` event's fault.
        fault: u64,
        /// `memory`, `cpu`, `partition` or `pause`.
        kind: String,
        /// Service.
        service: String,
        /// Which of its containers.
        replica: String,
        /// Whether it is undone.
        ok: bool,
        /// What was done, or Docker's error.
        detail: String,
        /// The link, for a fault on a link's fault proxy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
    },
    /// A fault a dead run left in force, found in its ledger and reverted at this run's start.
    FaultRecovered {
        /// The dead run.
        run_id: String,
        /// `memory`, `cpu`, `partition` or `pause`.
        kind: String,
        /// Service.
        service: String,
        /// Container name.
        container: String,
        /// `reverted`, `gone` (nothing left to revert) or `failed`.
        outcome: String,
        /// What was done, or why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A link's fault proxy is listening (`addrs`: host side and container side).
    LinkStarted {
        /// The link's name in the scenario.
        link: String,
        /// The dependent service.
        from: String,
        /// The dependency.
        to: String,
        /// The dependency's container port.
        port: u16,
        /// Whether the link carries HTTP/1.1.
        http: bool,
        /// The addresses the proxy listens on.
        addrs: Vec<String>,
    },
    /// Something a link's fault proxy did or saw: a connection accepted, connected upstream or
    /// closed (with its byte counts), a proxy fault added, applied to a connection (its
    /// toxicity roll said yes) or removed, an HTTP request answered or delayed, a listener
    /// closed or opened. `detail` is the proxy's event as it serializes, tagged by `event`.
    LinkActivity {
        /// The link's name in the scenario.
        link: String,
        /// The proxy's event.
        detail: serde_json::Value,
    },
    /// A notification sink is listening (`addrs`: where, host side and container side).
    SinkStarted {
        /// The sink's name in the scenario.
        sink: String,
        /// Its protocol (`smtp`, `twilio`, `sinch`, `statuspage`, `slack`, `pagerduty`, `webhook`).
        kind: String,
        /// The addresses it listens on.
        addrs: Vec<String>,
    },
    /// A sink stopped listening (teardown): notifications are observed up to here.
    SinkStopped {
        /// The sink's name in the scenario.
        sink: String,
    },
    /// A notification arrived at a sink. The event's own offset is when it was journaled;
    /// `received-us` is the sink's receive time (SMTP: the final `.`; HTTP: the body read), which
    /// checks use.
    NotificationReceived {
        /// The sink's name in the scenario.
        sink: String,
        /// The channel: `email` (smtp), `sms` / `voice` (twilio messages / calls), `fax` (sinch),
        /// `status-page` (statuspage), `chat` (slack), `page` (pagerduty), `webhook`.
        channel: String,
        /// The sink's receive time, µs since the run started.
        received_us: u64,
        /// Sender, when the protocol has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Recipients (mail envelope, phone numbers, page id, routing key, or the sink's name).
        recipients: Vec<String>,
        /// Subject, incident name or summary.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// The text.
        body: String,
        /// Provider-specific extras (Twilio `resource`, Statuspage `status`, `scheduled_for`,
        /// PagerDuty `event_action`, `dedup_key`, ...).
        #[serde(default)]
        detail: serde_json::Value,
    },
    /// A sink turned something away with a protocol-correct answer (malformed, too large, unknown
    /// path, over the run's limit, or chaos on purpose).
    SinkRejected {
        /// The sink's name in the scenario.
        sink: String,
        /// `protocol`, `too-large`, `invalid-payload`, `unknown-path`, `unknown-resource`,
        /// `limit-reached` or `chaos`.
        reason: String,
        /// What exactly.
        detail: String,
    },
    /// A sink was told to fail (`on: true`) or to work again (`on: false`).
    SinkChaos {
        /// The sink's name in the scenario.
        sink: String,
        /// `status 500`, `status 429`, `hang`.
        mode: String,
        /// Share of requests affected, 0 to 1.
        probability: f64,
        /// Failing from now on, or not any more.
        on: bool,
    },
    /// A `kill-process` step signalled processes by name in one container of a service (or found
    /// none, or could not look).
    ProcessKilled {
        /// The step.
        step: String,
        /// Service.
        service: String,
        /// Which of its containers (the replica's key).
        replica: String,
        /// The process name asked for.
        name: String,
        /// The signal sent.
        signal: String,
        /// Each process signalled, as `PID command` (the PID inside the container).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        processes: Vec<String>,
        /// Whether at least one process was signalled.
        ok: bool,
        /// What went wrong, when something did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A `call` step's HTTP request and its answer (a failed call fails no step: it is recorded
    /// and judged by the checks that depend on what it should have caused).
    CallResult {
        /// The step.
        step: String,
        /// The service called.
        service: String,
        /// `POST /maintenance`.
        request: String,
        /// Whether the answer was the expected status (any 2xx when none was given).
        ok: bool,
        /// The status, when there was an answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Time to the answer, µs.
        latency_us: u64,
        /// The start of the answer's body (at most 200 characters).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        body: String,
        /// What went wrong, when something did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A `human` step showed its prompt to its role (gameday).
    HumanPrompted {
        /// The step.
        step: String,
        /// Who is asked.
        role: String,
        /// What they are asked.
        prompt: String,
        /// The runbook link or text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runbook: Option<String>,
        /// The step's deadline from this event, µs.
        deadline_us: u64,
        /// What counts as done, in words (`acknowledge`, `notification on status`, …).
        done: String,
        /// Whether an acknowledgement completes it (otherwise an observed effect does).
        by_acknowledgement: bool,
        /// The service a "we decided to roll back" answer rolls back, when the prompt offers it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        roll_back: Option<String>,
    },
    /// Someone in the role acknowledged a prompt.
    HumanAcknowledged {
        /// The step.
        step: String,
        /// The role.
        role: String,
        /// Who: `responder` (scripted), `terminal`, `console`.
        by: String,
    },
    /// Someone in the role took the decision a prompt offered (`roll-back: SERVICE`): what
    /// follows is the rollback, recorded as `upgrade` events under the upgrade's step.
    HumanDecided {
        /// The step.
        step: String,
        /// The role.
        role: String,
        /// Who: `terminal`, `console`.
        by: String,
        /// The decision: `roll-back`.
        decision: String,
        /// The service it acts on.
        service: String,
    },
    /// A scripted responder did something for a prompt (an HTTP request), with its outcome.
    HumanActed {
        /// The step.
        step: String,
        /// The role.
        role: String,
        /// `POST sink status /api/v1/pages/page1/incidents`.
        request: String,
        /// Whether the answer was a 2xx.
        ok: bool,
        /// The status, when there was an answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// What went wrong, when something did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The effect a `human` step waits for was observed (`done` other than `acknowledge`).
    HumanEffect {
        /// The step.
        step: String,
        /// The role.
        role: String,
        /// What was observed, in words.
        effect: String,
        /// When it happened, µs from the run's start (a notification's receive time, a health
        /// observation's event), which the check uses.
        observed_us: u64,
        /// The journal event that shows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence_seq: Option<u64>,
    },
    /// A `human` step's deadline passed before it was done.
    HumanExpired {
        /// The step.
        step: String,
        /// The role.
        role: String,
    },
    /// What Docker reported about a container of the run (from the engine's event stream).
    ContainerEvent {
        /// Service.
        service: String,
        /// Docker's action: `start`, `die`, `oom`, `pause`, `unpause`, `stop`, `kill`, ...
        action: String,
        /// Exit code, for `die`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i64>,
    },
    /// One probe observation.
    ProbeResult {
        /// Probe name.
        probe: String,
        /// Why it ran.
        context: ProbeContext,
        /// Target service.
        service: String,
        /// Whether it met its expectation.
        ok: bool,
        /// HTTP status, for HTTP probes that got an answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Time to answer, µs.
        latency_us: u64,
        /// What was wrong, when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The run was interrupted (Ctrl-C or SIGTERM); `second` for the escalation.
    Interrupted {
        /// Whether this is the second signal (skip graceful teardown).
        second: bool,
    },
    /// A service's last log lines, captured when something failed.
    ServiceLogs {
        /// Service.
        service: String,
        /// The lines.
        lines: String,
    },
    /// A stage of an upgrade step (or of an explicit rollback step).
    Upgrade {
        /// The step.
        step: String,
        /// The service.
        service: String,
        /// Which stage.
        stage: UpgradeStage,
        /// Whether the stage succeeded (for stages that can fail).
        ok: bool,
        /// What happened (image names, exit codes, the reason of a failure).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// What a service's version endpoint answered.
    VersionObserved {
        /// The service.
        service: String,
        /// The upgrade step it belongs to.
        step: String,
        /// `before`, `after-switch` or `after-rollback`.
        moment: String,
        /// The answer's body (trimmed, at most 200 characters), or the error.
        body: String,
        /// Whether an answer with a success status came.
        ok: bool,
    },
    /// A traffic stream started.
    TrafficStarted {
        /// Traffic entry.
        traffic: String,
        /// Requests per second.
        rate_per_second: f64,
    },
    /// One traffic request's outcome, judged from when it was **due**, not from when it could be
    /// sent: the harness is open-loop, and measuring from the send would hide the wait of a
    /// request that found every slot busy (coordinated omission). Every request due before the
    /// stream stopped gets one, sent or not.
    TrafficRequest {
        /// Traffic entry.
        traffic: String,
        /// When it was due, µs from the run's start (the schedule does not slip: late requests are
        /// sent late and counted, never skipped).
        scheduled_us: u64,
        /// How late it was sent (or, when it never was, how long it waited), µs.
        lateness_us: u64,
        /// Whether the expected status came within the request timeout of the due time.
        ok: bool,
        /// The status, when an answer came.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Time from the due time to the answer (or to giving up), µs: the lateness included.
        latency_us: u64,
        /// Of that, how long the harness itself was late to start the request (its scheduler or
        /// runtime woke late: a starved CPU), µs — never the service's doing. The request's
        /// deadline moves by as much, and checks and figures judge `latency-us - harness-lag-us`.
        #[serde(default, skip_serializing_if = "is_zero")]
        harness_lag_us: u64,
        /// Whether it was handed to the HTTP client at all; `false` when no `concurrency` slot
        /// came free before its timeout (a failure).
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        sent: bool,
        /// The id of the write the service acknowledged (`verify-writes`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        write_id: Option<String>,
        /// With `verify-writes`: the answer had the expected status but no readable id, so the
        /// write cannot be read back (an unverifiable write; `error` says why).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unidentified: bool,
        /// What was wrong.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A traffic stream stopped scheduling: no request is due after this event. Requests due
    /// before it may still be in flight; their `traffic-request` events follow.
    TrafficStopped {
        /// Traffic entry.
        traffic: String,
        /// Requests due before the stop; each has one `traffic-request` event (0 in journals
        /// written before this was recorded).
        #[serde(default)]
        due: u64,
    },
    /// The last request of a stopped stream is settled (answered, failed or given up on).
    TrafficDrained {
        /// Traffic entry.
        traffic: String,
        /// Requests handed to the HTTP client.
        sent: u64,
        /// Of those, sent more than 1 ms after they were due.
        late: u64,
        /// Requests due but never sent (no free slot before their timeout): failures.
        unsent: u64,
        /// Requests that succeeded.
        ok: u64,
    },
    /// Acknowledged writes read back at the end of the run.
    WritesVerified {
        /// Traffic entry.
        traffic: String,
        /// Writes the service acknowledged.
        acknowledged: u64,
        /// Of those, found again.
        found: u64,
        /// Ids not found (lost writes).
        lost: Vec<String>,
        /// Ids whose read-back failed for another reason (not counted as lost).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unknown: Vec<String>,
        /// Writes answered with the expected status but without a readable id: they cannot be
        /// read back, so nothing shows they were kept (not part of `acknowledged`).
        #[serde(default, skip_serializing_if = "is_zero")]
        unverifiable: u64,
    },
    /// Where the run's time went, recorded just before `run-ended`. The harness's own overhead is
    /// the event's offset minus `waited.any-us`; a journal without `waited` (written before waits
    /// were intervals) gets the offset minus the three sums, which overlapping waits overcount.
    TimeAccounting {
        /// Durations of the waits on Docker calls (image checks and builds, create, start,
        /// actions, exec, inspect, removal), added up: waits side by side count each.
        docker_us: u64,
        /// Durations of the declared waits (`wait` steps, `for` durations, `delay`s, the run kept up
        /// to a `healthy-within` deadline), added up.
        declared_wait_us: u64,
        /// Durations of the waits on services (health polls until ready, probes), added up.
        service_wait_us: u64,
        /// The same waits as wall time: how long at least one of each kind, and of any kind, was
        /// in progress (absent in journals written before).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        waited: Option<WaitUnion>,
        /// The harness process's CPU time (user + system) over the run, all threads, from
        /// `getrusage(RUSAGE_SELF)`: runs sharing the process count together (absent in journals
        /// written before, or when the system would not say).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        harness_cpu_us: Option<u64>,
    },
    /// Last event of a run that reached teardown.
    RunEnded {
        /// Ok when the harness could run everything (checks are judged separately).
        outcome: Outcome,
    },
    /// The scenario's `calendar` (and `maintenance` policy), recorded after `scenario-loaded`
    /// when it has one: the calendar time of an event is `calendar.start` + scale × (its offset
    /// − the offset of the `steps` phase's start).
    CalendarSet {
        /// When the timeline starts and how rehearsal time scales.
        calendar: crate::calendar::Calendar,
        /// The policy upgrades are placed in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        maintenance: Option<crate::calendar::Policy>,
    },
    /// What judging the run needs from its scenario, recorded right after `run-started`, so that
    /// `firedrill report` can re-judge a journal without the scenario file (which may have
    /// changed or be gone). Values are the scenario model as it serializes.
    ScenarioLoaded {
        /// `description`, free text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// `steady-state`: the probes, in order.
        steady_state: serde_json::Value,
        /// `expect`: the checks, in order.
        expect: serde_json::Value,
    },
    /// A `prometheus` or `alert` check's PromQL query and Prometheus' answer as it came
    /// (asked once the timeline and its deadlines are over, before teardown); the check judges
    /// the samples. Sample times are Unix seconds: minus `epoch-s`, they are run offsets.
    PrometheusQuery {
        /// The expectation's name.
        check: String,
        /// `service:port` or the URL asked.
        source: String,
        /// The PromQL expression.
        query: String,
        /// Unix time (s) of the run's offset 0.
        epoch_s: f64,
        /// An instant query's `time`, a range query's `start` (Unix s).
        start_s: f64,
        /// A range query's `end` (Unix s); absent for an instant query.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_s: Option<f64>,
        /// A range query's `step` (s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step_s: Option<f64>,
        /// Prometheus' `data` (`resultType`, `result`), unchanged.
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        data: serde_json::Value,
        /// Why there is no answer (unreachable, a PromQL error Prometheus named, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// What an Alertmanager held for the alerts `alert` checks route, recorded when it changed
    /// (polled every 200 ms from the timeline's start until the queries before teardown) and
    /// once more when the watch stopped (`last`).
    AlertmanagerAlerts {
        /// `service:port` or the URL asked.
        source: String,
        /// The alerts named by the checks, as `GET /api/v2/alerts` listed them.
        alerts: Vec<AlertSeen>,
        /// The final poll.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        last: bool,
        /// Why the poll failed (recorded when that changes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// One alert an Alertmanager holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AlertSeen {
    /// Its labels, `alertname` included.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `active`, `suppressed` or `unprocessed`.
    pub state: String,
    /// The receivers its route picked.
    pub receivers: Vec<String>,
    /// `startsAt` as Alertmanager wrote it.
    #[serde(default)]
    pub starts_at: String,
}

/// `time-accounting`'s wall times: per kind of wait, and over all of them, the time during which
/// at least one such wait was in progress (the union of their intervals on the run's clock), µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WaitUnion {
    /// Some Docker call was in progress.
    pub docker_us: u64,
    /// Some declared wait was in progress.
    pub declared_wait_us: u64,
    /// Some wait on a service was in progress.
    pub service_wait_us: u64,
    /// Some wait of any kind was in progress: the run's time outside it is the harness's own.
    pub any_us: u64,
}

impl EventKind {
    /// The service an event is about, if any.
    pub fn service(&self) -> Option<&str> {
        match self {
            EventKind::ServiceStarted { service, .. }
            | EventKind::ServiceReady { service, .. }
            | EventKind::HealthChanged { service, .. }
            | EventKind::ContainerAction { service, .. }
            | EventKind::ContainerEvent { service, .. }
            | EventKind::ProbeResult { service, .. }
            | EventKind::ServiceLogs { service, .. }
            | EventKind::Upgrade { service, .. }
            | EventKind::VersionObserved { service, .. }
            | EventKind::FaultApplied { service, .. }
            | EventKind::FaultReverted { service, .. }
            | EventKind::CallResult { service, .. }
            | EventKind::ProcessKilled { service, .. } => Some(service),
            _ => None,
        }
    }
}

/// Stages of an upgrade, in the order they can happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeStage {
    /// The upgrade began (detail: from → to image).
    Started,
    /// The data service's `backup` hook ran.
    Backup,
    /// The migration container ran (detail: exit code).
    Migration,
    /// The new version took the service's name.
    Switched,
    /// The new version was healthy within the deadline (or not: `ok: false`).
    Healthy,
    /// The watch period's SLO gate (detail: observed availability).
    Watch,
    /// The upgrade failed (detail: why); what follows depends on `on-failure`.
    Failed,
    /// The upgrade completed.
    Completed,
    /// Rolling back began.
    RollbackStarted,
    /// The data service's `restore` hook ran.
    Restore,
    /// The previous version is healthy again (`ok: false`: the rollback itself failed).
    RolledBack,
}

/// Errors writing or reading a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be created or written.
    #[error("failed to write journal")]
    Io(#[from] std::io::Error),
    /// A line did not parse.
    #[error("line {line} of the journal is not a valid event: {message}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// serde_json's message.
        message: String,
    },
}

/// A function told about every event as it is recorded (progress display). It runs under the
/// journal's lock, so it must be quick and must not record events itself.
pub type Listener = Box<dyn Fn(&Event) + Send + Sync>;

struct Inner {
    events: Vec<Event>,
    listeners: Vec<Listener>,
    file: Option<std::io::BufWriter<fs_err::File>>,
    write_failed: bool,
}

/// The journal of one run. Cheap to clone; every clone appends to the same history.
#[derive(Clone)]
pub struct Journal {
    clock: Arc<dyn Clock>,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("events", &self.len()).finish()
    }
}

impl Journal {
    /// A journal kept in memory only.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Self {
        Journal {
            clock,
            inner: Arc::new(Mutex::new(Inner {
                events: Vec::new(),
                listeners: Vec::new(),
                file: None,
                write_failed: false,
            })),
        }
    }

    /// A journal that also streams every event to `path` (created or truncated).
    pub fn to_file(clock: Arc<dyn Clock>, path: &Path) -> Result<Self, JournalError> {
        let file = fs_err::File::create(path)?;
        let journal = Self::in_memory(clock);
        journal.inner.lock().expect("journal lock poisoned").file =
            Some(std::io::BufWriter::new(file));
        Ok(journal)
    }

    /// Append an event stamped with the clock's current time; returns it.
    ///
    /// A failing disk write is logged once and does not stop the run: the in-memory journal still
    /// feeds the checks (a reporter failure never aborts a rehearsal).
    pub fn record(&self, kind: EventKind) -> Event {
        let mut inner = self.inner.lock().expect("journal lock poisoned");
        // Stamp under the lock, so offsets are in journal order.
        let offset_us = self.clock.offset().as_micros() as u64;
        let event =
            Event { seq: inner.events.len() as u64, offset_us, wall: self.clock.wall(), kind };
        if let Some(file) = inner.file.as_mut() {
            let line = serde_json::to_string(&event).expect("events always serialize");
            let written = writeln!(file, "{line}").and_then(|()| file.flush());
            if let Err(error) = written
                && !inner.write_failed
            {
                tracing::warn!(%error, "failed to append to journal.jsonl; continuing in memory");
                inner.write_failed = true;
            }
        }
        for listener in &inner.listeners {
            listener(&event);
        }
        inner.events.push(event.clone());
        event
    }

    /// Start a new history in place (a run on a kept stack): the clock's origin moves to now, the
    /// events so far are dropped, the listeners after the first `keep_listeners` are removed, and
    /// from now on events stream to `path` (created or truncated; `None`: memory only). Every
    /// clone — the health monitors' and sinks' of the kept stack — records into the new history.
    pub fn begin_segment(
        &self,
        path: Option<&Path>,
        keep_listeners: usize,
    ) -> Result<(), JournalError> {
        let file = path.map(fs_err::File::create).transpose()?;
        let mut inner = self.inner.lock().expect("journal lock poisoned");
        if let Some(old) = inner.file.as_mut() {
            let _ = old.flush();
        }
        // Under the lock: no event is stamped against one origin and stored in the other history.
        self.clock.restart();
        inner.events.clear();
        inner.listeners.truncate(keep_listeners);
        inner.file = file.map(std::io::BufWriter::new);
        inner.write_failed = false;
        Ok(())
    }

    /// The journal clock's current offset from the run's start (what `offset-us` of an event
    /// recorded now would be).
    pub fn offset(&self) -> std::time::Duration {
        self.clock.offset()
    }

    /// Call `listener` for every event recorded from now on.
    pub fn subscribe(&self, listener: Listener) {
        self.inner.lock().expect("journal lock poisoned").listeners.push(listener);
    }

    /// A copy of every event so far.
    pub fn snapshot(&self) -> Vec<Event> {
        self.inner.lock().expect("journal lock poisoned").events.clone()
    }

    /// A copy of the events after `seq`.
    pub fn events_since(&self, seq: u64) -> Vec<Event> {
        let inner = self.inner.lock().expect("journal lock poisoned");
        let from = usize::try_from(seq.saturating_add(1)).unwrap_or(usize::MAX);
        inner.events.get(from..).map(<[Event]>::to_vec).unwrap_or_default()
    }

    /// Number of events so far.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("journal lock poisoned").events.len()
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Read a `journal.jsonl` back. A truncated last line (a crash mid-write) is ignored; any other
/// bad line is an error.
pub fn read_journal(path: &Path) -> Result<Vec<Event>, JournalError> {
    let file = std::io::BufReader::new(fs_err::File::open(path)?);
    let lines: Vec<String> = file.lines().collect::<Result<_, _>>()?;
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(_) if i + 1 == lines.len() => break,
            Err(e) => return Err(JournalError::Parse { line: i + 1, message: e.to_string() }),
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn streams_lines_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let clock = Arc::new(ManualClock::new());
        let journal = Journal::to_file(clock.clone(), &path).unwrap();
        journal.record(EventKind::PhaseStarted { phase: Phase::BringUp });
        clock.advance(std::time::Duration::from_millis(5));
        journal.record(EventKind::HealthChanged {
            service: "billing".into(),
            healthy: false,
            detail: "status 503".into(),
            check_started_us: Some(4_000),
        });
        let back = read_journal(&path).unwrap();
        assert_eq!(back, journal.snapshot());
        assert_eq!(back[1].offset_us, 5_000);
        assert_eq!(back[1].seq, 1);
    }

    #[test]
    fn a_torn_last_line_is_ignored_but_a_torn_middle_line_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let journal = Journal::to_file(Arc::new(ManualClock::new()), &path).unwrap();
        journal.record(EventKind::PhaseStarted { phase: Phase::Steps });
        let mut text = fs_err::read_to_string(&path).unwrap();
        text.push_str("{\"seq\":1,\"offs");
        fs_err::write(&path, &text).unwrap();
        assert_eq!(read_journal(&path).unwrap().len(), 1);
        text.push_str("\n{\"seq\":2}\n");
        fs_err::write(&path, &text).unwrap();
        assert!(matches!(read_journal(&path), Err(JournalError::Parse { line: 2, .. })));
    }
}
