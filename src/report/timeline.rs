//! The HTML report's timeline: what each service's state was over the run, derived from the
//! journal, and its rendering as inline SVG.
//!
//! A service's state at any moment is, by priority: **down** (its container died or was stopped
//! or killed, until it starts again), **paused**, **upgrading** (between an upgrade's start and
//! its end), else what the last health observation said (**up** or **unhealthy**), or
//! **starting** before the first one. Lanes end when teardown starts (removing the stack is not an
//! outage). Steps, `for` faults and phases are bars; probe results, the harness's container
//! actions and upgrade stages are markers on the service's lane. Each traffic entry gets a row of
//! time buckets coloured by success rate, with its median latency drawn as a line.
//!
//! A long `prepare` (image builds on a first run take minutes) is drawn collapsed: a fixed,
//! labelled segment at the axis's start, cut from the rest by a break mark, so the rehearsal from
//! bring-up on fills the width (see [`Axis`]).

use std::fmt::Write as _;

use super::json::Ending;
use super::text::{self, duration, html, offset};
use crate::journal::{Event, EventKind, Outcome, Phase, UpgradeStage};
use crate::scenario::model::ActionKind;

/// What a service was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Started, not observed yet.
    Starting,
    /// Healthy.
    Up,
    /// Running and unhealthy.
    Unhealthy,
    /// Its container is not running.
    Down,
    /// Frozen.
    Paused,
    /// Being upgraded (or rolled back).
    Upgrading,
}

impl State {
    pub(super) fn word(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Up => "up",
            State::Unhealthy => "unhealthy",
            State::Down => "down",
            State::Paused => "paused",
            State::Upgrading => "upgrading",
        }
    }

    /// Every state, in the legend's order.
    pub(super) const ALL: [State; 6] = [
        State::Up,
        State::Unhealthy,
        State::Down,
        State::Paused,
        State::Upgrading,
        State::Starting,
    ];
}

/// A stretch of one state.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Segment {
    pub(super) from_us: u64,
    pub(super) to_us: u64,
    pub(super) state: State,
    pub(super) detail: String,
}

/// Something that happened at one moment on a lane.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Marker {
    pub(super) at_us: u64,
    pub(super) kind: MarkerKind,
    pub(super) label: String,
}

/// Kinds of [`Marker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkerKind {
    /// A probe met its expectation.
    ProbeOk,
    /// A probe did not.
    ProbeFailed,
    /// The harness acted on the container.
    Action,
    /// A stage of an upgrade or rollback (`ok: false` for a failed one).
    Upgrade {
        /// Whether the stage went well.
        ok: bool,
    },
    /// A notification arrived at a sink.
    Notification,
    /// A sink turned a request away (chaos on purpose, or a malformed one).
    Rejected,
    /// Gameday: a person acknowledged a prompt.
    Acknowledged,
    /// Gameday: the `human-within` target of a prompt (`met` or not).
    Target {
        /// Whether the step was done by then.
        met: bool,
    },
}

/// One service's lane.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Lane {
    pub(super) service: String,
    pub(super) segments: Vec<Segment>,
    pub(super) markers: Vec<Marker>,
}

/// A span: a phase, a step or a fault.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bar {
    pub(super) from_us: u64,
    pub(super) to_us: u64,
    pub(super) label: String,
    pub(super) ending: Ending,
}

/// Everything the timeline shows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Timeline {
    /// The run's last offset (the axis's end).
    pub(super) end_us: u64,
    /// Where lanes end: teardown's start, or the journal's end.
    pub(super) lanes_end_us: u64,
    pub(super) phases: Vec<Bar>,
    pub(super) steps: Vec<Bar>,
    pub(super) faults: Vec<Bar>,
    pub(super) lanes: Vec<Lane>,
    pub(super) traffic: Vec<TrafficRow>,
    /// One row per notification sink: its outages as bars, arrivals and rejections as markers.
    pub(super) sinks: Vec<SinkRow>,
    /// Gameday: one row per role, its prompts as bars, acknowledgements and targets as markers.
    pub(super) humans: Vec<HumanRow>,
}

/// One role's prompts over the run (gameday).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HumanRow {
    pub(super) role: String,
    /// From each prompt to when it was done, or its deadline (failed: late or never done).
    pub(super) prompts: Vec<Bar>,
    pub(super) markers: Vec<Marker>,
}

/// One notification sink over the run.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SinkRow {
    pub(super) sink: String,
    /// `sink-outage`s: from chaos on to chaos off (or the journal's end).
    pub(super) outages: Vec<Bar>,
    pub(super) markers: Vec<Marker>,
}

/// One traffic entry's requests, bucketed by when they were due.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TrafficRow {
    pub(super) traffic: String,
    pub(super) buckets: Vec<Bucket>,
}

/// The requests of one time bucket.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bucket {
    pub(super) from_us: u64,
    pub(super) to_us: u64,
    pub(super) requests: u64,
    pub(super) failed: u64,
    /// Median latency of the bucket's requests, µs.
    pub(super) p50_us: u64,
}

/// How many buckets a traffic row has at most over the whole run.
const BUCKETS: u64 = 80;

#[derive(Default)]
struct LaneBuilder {
    service: String,
    health: Option<(bool, String)>,
    down: Option<String>,
    paused: bool,
    upgrading: bool,
    /// A blue-green upgrade renamed the old version away: its end is not the service going
    /// down (until the upgrade completes or is rolled back).
    switched: bool,
    current: Option<(State, u64, String)>,
    segments: Vec<Segment>,
    markers: Vec<Marker>,
}

impl LaneBuilder {
    fn state(&self) -> (State, String) {
        if let Some(why) = &self.down {
            return (State::Down, why.clone());
        }
        if self.paused {
            return (State::Paused, "paused".into());
        }
        if self.upgrading {
            return (State::Upgrading, "upgrading".into());
        }
        match &self.health {
            None => (State::Starting, "no health observation yet".into()),
            Some((true, detail)) => (State::Up, format!("healthy: {detail}")),
            Some((false, detail)) => (State::Unhealthy, format!("unhealthy: {detail}")),
        }
    }

    /// Close the current segment at `at_us` if the state changed.
    fn update(&mut self, at_us: u64) {
        let (state, detail) = self.state();
        match &mut self.current {
            Some((current, _, current_detail)) if *current == state => {
                // Same state: keep the segment, but a newer health detail says more.
                if state == State::Unhealthy || state == State::Up {
                    *current_detail = detail;
                }
            }
            _ => {
                self.close(at_us);
                self.current = Some((state, at_us, detail));
            }
        }
    }

    fn close(&mut self, at_us: u64) {
        if let Some((state, from_us, detail)) = self.current.take()
            && at_us > from_us
        {
            self.segments.push(Segment { from_us, to_us: at_us, state, detail });
        }
    }
}

/// Build the timeline of a journal (complete or not).
pub(super) fn build(events: &[Event]) -> Timeline {
    let end_us = events.last().map_or(0, |e| e.offset_us);
    let teardown = events
        .iter()
        .position(|e| matches!(e.kind, EventKind::PhaseStarted { phase: Phase::Teardown }));
    let lanes_end_us = teardown.map_or(end_us, |i| events[i].offset_us);
    let mut lanes: Vec<LaneBuilder> = Vec::new();
    for event in &events[..teardown.unwrap_or(events.len())] {
        let Some(service) = lane_service(&event.kind) else { continue };
        // One-shot containers (`billing.migrate`) are not services: the upgrade's `migration`
        // stage marker shows them; as a lane they would look "down" from their exit on.
        if service.contains('.') {
            continue;
        }
        let at = event.offset_us;
        let index = match lanes.iter().position(|l| l.service == service) {
            Some(index) => index,
            None => {
                lanes.push(LaneBuilder { service: service.to_owned(), ..LaneBuilder::default() });
                lanes.len() - 1
            }
        };
        let lane = &mut lanes[index];
        match &event.kind {
            EventKind::HealthChanged { healthy, detail, .. } => {
                lane.health = Some((*healthy, detail.clone()));
            }
            EventKind::ContainerEvent { action, exit_code, .. } => match action.as_str() {
                // Blue-green renames the old version `SERVICE.blue` (its events keep the
                // service's label) before the switch: its exit is not the service going down.
                "rename" => lane.switched = true,
                "die" if lane.switched => {}
                "die" => {
                    lane.down = Some(match exit_code {
                        Some(code) => format!("container exited with code {code}"),
                        None => "container exited".into(),
                    });
                }
                "start" => lane.down = None,
                "pause" => lane.paused = true,
                "unpause" => lane.paused = false,
                _ => {}
            },
            EventKind::ContainerAction { action, signal, undo, ok, error, .. } => {
                let mut label = action.clone();
                if let Some(signal) = signal {
                    let _ = write!(label, " {signal}");
                }
                if *undo {
                    label.push_str(" (undo)");
                }
                if let Some(error) = error {
                    let _ = write!(label, ": {error}");
                }
                lane.markers.push(Marker { at_us: at, kind: MarkerKind::Action, label });
                if *ok {
                    match (action.as_str(), signal.as_deref()) {
                        ("stop", _) => lane.down = Some("stopped".into()),
                        ("kill", Some("SIGKILL" | "KILL" | "9")) => {
                            lane.down.get_or_insert_with(|| "killed".into());
                        }
                        ("start" | "restart", _) => lane.down = None,
                        ("pause", _) => lane.paused = true,
                        ("unpause", _) => lane.paused = false,
                        _ => {}
                    }
                }
            }
            EventKind::ProbeResult { probe, ok, status, latency_us, error, .. } => {
                let outcome = match (error, status) {
                    (Some(error), _) => error.clone(),
                    (None, Some(status)) => format!("status {status}"),
                    (None, None) => "ok".into(),
                };
                lane.markers.push(Marker {
                    at_us: at,
                    kind: if *ok { MarkerKind::ProbeOk } else { MarkerKind::ProbeFailed },
                    label: format!("probe `{probe}`: {outcome} in {}", duration(*latency_us)),
                });
            }
            EventKind::Upgrade { step, stage, ok, detail, .. } => {
                match stage {
                    UpgradeStage::Started | UpgradeStage::RollbackStarted => lane.upgrading = true,
                    UpgradeStage::Completed | UpgradeStage::RolledBack => {
                        lane.upgrading = false;
                        lane.switched = false;
                    }
                    _ => {}
                }
                let ok = *ok && *stage != UpgradeStage::Failed;
                let stage = serde_json::to_value(stage)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let mut label = format!("`{step}` {stage}");
                if let Some(detail) = detail {
                    let _ = write!(label, ": {detail}");
                }
                lane.markers.push(Marker { at_us: at, kind: MarkerKind::Upgrade { ok }, label });
            }
            _ => {}
        }
        lane.update(at);
    }
    let lanes = lanes
        .into_iter()
        .map(|mut lane| {
            lane.close(lanes_end_us);
            Lane { service: lane.service, segments: lane.segments, markers: lane.markers }
        })
        .collect();
    Timeline {
        end_us,
        lanes_end_us,
        phases: phases(events, end_us),
        steps: steps(events, end_us),
        faults: faults(events, end_us),
        lanes,
        traffic: traffic(events, end_us),
        sinks: sinks(events, end_us),
        humans: humans(events, end_us),
    }
}

/// Per role, in the order first prompted: each prompt as a bar (prompt → done, or → deadline),
/// its acknowledgement and its `human-within` target as markers.
fn humans(events: &[Event], end_us: u64) -> Vec<HumanRow> {
    let mut rows: Vec<HumanRow> = Vec::new();
    for human in super::human::human_reports(events) {
        let i = match rows.iter().position(|r| r.role == human.role) {
            Some(i) => i,
            None => {
                rows.push(HumanRow {
                    role: human.role.clone(),
                    prompts: Vec::new(),
                    markers: Vec::new(),
                });
                rows.len() - 1
            }
        };
        let from_us = human.prompted_ms * 1_000;
        let late = human.margin_ms.is_some_and(|m| m < 0);
        let (to_us, label, ending) = match (human.outcome.as_str(), human.done_after_ms) {
            ("done", Some(after)) => (
                from_us + after * 1_000,
                format!("{}: done in {}", human.step, duration(after * 1_000)),
                if late { Ending::Failed } else { Ending::Ok },
            ),
            ("expired", _) => (
                from_us + human.deadline_ms * 1_000,
                format!("{}: not done", human.step),
                Ending::Failed,
            ),
            _ => (end_us, format!("{}: open", human.step), Ending::NotFinished),
        };
        let row = &mut rows[i];
        row.prompts.push(Bar { from_us, to_us, label, ending });
        if let (Some(after), Some(by)) = (human.acknowledged_after_ms, &human.acknowledged_by) {
            row.markers.push(Marker {
                at_us: from_us + after * 1_000,
                kind: MarkerKind::Acknowledged,
                label: format!("`{}` acknowledged ({by})", human.step),
            });
        }
        if let Some(target) = human.target_ms {
            row.markers.push(Marker {
                at_us: from_us + target * 1_000,
                kind: MarkerKind::Target { met: human.margin_ms.is_some_and(|m| m >= 0) },
                label: format!("`{}` target: within {}", human.step, duration(target * 1_000)),
            });
        }
    }
    rows
}

/// Per sink, in the order they started: outages as bars, arrivals (at the sink's receive time)
/// and rejections as markers.
fn sinks(events: &[Event], end_us: u64) -> Vec<SinkRow> {
    let mut rows: Vec<SinkRow> = Vec::new();
    let mut open: Vec<(String, u64, String)> = Vec::new();
    let row = |rows: &mut Vec<SinkRow>, sink: &str| match rows.iter().position(|r| r.sink == sink) {
        Some(i) => i,
        None => {
            rows.push(SinkRow { sink: sink.to_owned(), outages: Vec::new(), markers: Vec::new() });
            rows.len() - 1
        }
    };
    for event in events {
        match &event.kind {
            EventKind::SinkStarted { sink, .. } => {
                row(&mut rows, sink);
            }
            EventKind::NotificationReceived {
                sink,
                channel,
                received_us,
                recipients,
                subject,
                body,
                ..
            } => {
                let i = row(&mut rows, sink);
                let text = subject
                    .as_deref()
                    .or_else(|| body.lines().find(|l| !l.trim().is_empty()))
                    .unwrap_or("");
                let label =
                    format!("{channel} to {}: {}", recipients.join(", "), fit(text, 80.0 * CHAR));
                rows[i].markers.push(Marker {
                    at_us: *received_us,
                    kind: MarkerKind::Notification,
                    label,
                });
            }
            EventKind::SinkRejected { sink, reason, detail } => {
                let i = row(&mut rows, sink);
                rows[i].markers.push(Marker {
                    at_us: event.offset_us,
                    kind: MarkerKind::Rejected,
                    label: format!("rejected ({reason}): {detail}"),
                });
            }
            EventKind::SinkChaos { sink, mode, on: true, .. } => {
                row(&mut rows, sink);
                open.retain(|(s, ..)| s != sink);
                open.push((sink.clone(), event.offset_us, mode.clone()));
            }
            EventKind::SinkChaos { sink, on: false, .. } => {
                let i = row(&mut rows, sink);
                if let Some(at) = open.iter().position(|(s, ..)| s == sink) {
                    let (_, from_us, mode) = open.remove(at);
                    rows[i].outages.push(Bar {
                        from_us,
                        to_us: event.offset_us,
                        label: format!("outage: {mode}"),
                        ending: Ending::Ok,
                    });
                }
            }
            _ => {}
        }
    }
    for (sink, from_us, mode) in open {
        let i = row(&mut rows, &sink);
        rows[i].outages.push(Bar {
            from_us,
            to_us: end_us,
            label: format!("outage: {mode} (not ended)"),
            ending: Ending::NotFinished,
        });
    }
    rows
}

fn traffic(events: &[Event], end_us: u64) -> Vec<TrafficRow> {
    let width = (end_us / BUCKETS).max(100_000);
    // Per traffic entry, its buckets so far: (start, failed, latencies).
    type Pending = Vec<(u64, u64, Vec<u64>)>;
    let mut rows: Vec<(String, Pending)> = Vec::new();
    for event in events {
        let EventKind::TrafficRequest {
            traffic, scheduled_us, ok, latency_us, harness_lag_us, ..
        } = &event.kind
        else {
            continue;
        };
        // As the checks judge it: the harness's own lag is not the service's latency.
        let latency_us = &latency_us.saturating_sub(*harness_lag_us);
        let row = match rows.iter().position(|(name, _)| name == traffic) {
            Some(i) => i,
            None => {
                rows.push((traffic.clone(), Vec::new()));
                rows.len() - 1
            }
        };
        let start = scheduled_us / width * width;
        let buckets = &mut rows[row].1;
        let bucket = match buckets.iter().position(|(from, ..)| *from == start) {
            Some(i) => i,
            None => {
                buckets.push((start, 0, Vec::new()));
                buckets.len() - 1
            }
        };
        let (_, failed, latencies) = &mut buckets[bucket];
        latencies.push(*latency_us);
        if !ok {
            *failed += 1;
        }
    }
    rows.into_iter()
        .map(|(traffic, mut buckets)| {
            buckets.sort_by_key(|(from, ..)| *from);
            let buckets = buckets
                .into_iter()
                .map(|(from_us, failed, mut latencies)| {
                    latencies.sort_unstable();
                    Bucket {
                        from_us,
                        to_us: (from_us + width).min(end_us.max(from_us + 1)),
                        requests: latencies.len() as u64,
                        failed,
                        p50_us: latencies[(latencies.len() - 1) / 2],
                    }
                })
                .collect();
            TrafficRow { traffic, buckets }
        })
        .collect()
}

/// The service whose lane an event belongs on.
fn lane_service(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::ServiceStarted { service, .. }
        | EventKind::HealthChanged { service, .. }
        | EventKind::ContainerEvent { service, .. }
        | EventKind::ContainerAction { service, .. }
        | EventKind::ProbeResult { service, .. }
        | EventKind::Upgrade { service, .. } => Some(service),
        _ => None,
    }
}

fn ending(outcome: Outcome) -> Ending {
    outcome.into()
}

fn phases(events: &[Event], end_us: u64) -> Vec<Bar> {
    let mut bars = Vec::new();
    for (i, start) in events.iter().enumerate() {
        let EventKind::PhaseStarted { phase } = start.kind else { continue };
        let end = events[i + 1..].iter().find_map(|e| match e.kind {
            EventKind::PhaseEnded { phase: p, outcome, .. } if p == phase => {
                Some((e.offset_us, ending(outcome)))
            }
            _ => None,
        });
        let (to_us, ending) = end.unwrap_or((end_us, Ending::NotFinished));
        let label = text::phase_key(phase).to_owned();
        bars.push(Bar { from_us: start.offset_us, to_us, label, ending });
    }
    bars
}

fn steps(events: &[Event], end_us: u64) -> Vec<Bar> {
    let mut bars = Vec::new();
    for (i, start) in events.iter().enumerate() {
        let EventKind::StepStarted { index, step, .. } = &start.kind else { continue };
        let end = events[i + 1..].iter().find_map(|e| match &e.kind {
            EventKind::StepEnded { index: j, outcome, .. } if j == index => {
                Some((e.offset_us, ending(*outcome)))
            }
            _ => None,
        });
        let (to_us, ending) = end.unwrap_or((end_us, Ending::NotFinished));
        bars.push(Bar { from_us: start.offset_us, to_us, label: step.clone(), ending });
    }
    bars
}

/// `for` faults: from the fault's action to its undo within the same step (or to the journal's
/// end when the step never ended).
fn faults(events: &[Event], end_us: u64) -> Vec<Bar> {
    let mut bars = Vec::new();
    let mut open: Option<(u64, String, String)> = None;
    let mut in_step = false;
    for event in events {
        match &event.kind {
            EventKind::StepStarted { .. } => {
                in_step = true;
                open = None;
            }
            EventKind::StepEnded { .. } => in_step = false,
            EventKind::ContainerAction { service, action, undo: false, ok: true, .. }
                if in_step
                    && ActionKind::from_key(action)
                        .is_some_and(|kind| kind.undone_by().is_some()) =>
            {
                open = Some((event.offset_us, service.clone(), action.clone()));
            }
            EventKind::ContainerAction { service, undo: true, .. } => {
                if let Some((from_us, faulted, action)) = open.take_if(|o| &o.1 == service) {
                    let label =
                        format!("{action} {faulted} for {}", duration(event.offset_us - from_us));
                    bars.push(Bar { from_us, to_us: event.offset_us, label, ending: Ending::Ok });
                }
            }
            _ => {}
        }
    }
    if let Some((from_us, service, action)) = open.filter(|_| in_step) {
        let label = format!("{action} {service} (not undone)");
        bars.push(Bar { from_us, to_us: end_us, label, ending: Ending::NotFinished });
    }
    bars.extend(link_faults(events, end_us));
    bars.sort_by_key(|bar| bar.from_us);
    bars
}

/// Link faults (`latency`, `cut`, …): from `fault-applied` to the `fault-reverted` of the same
/// fault on the same link, or to the journal's end when it was never removed.
fn link_faults(events: &[Event], end_us: u64) -> Vec<Bar> {
    let mut bars = Vec::new();
    for (i, start) in events.iter().enumerate() {
        let EventKind::FaultApplied { fault, kind, link: Some(link), ok: true, .. } = &start.kind
        else {
            continue;
        };
        let end = events[i + 1..].iter().find(|e| {
            matches!(&e.kind, EventKind::FaultReverted { fault: f, link: Some(l), .. }
                if f == fault && l == link)
        });
        bars.push(match end {
            Some(end) => Bar {
                from_us: start.offset_us,
                to_us: end.offset_us,
                label: format!(
                    "{kind} on link {link} for {}",
                    duration(end.offset_us - start.offset_us)
                ),
                ending: Ending::Ok,
            },
            None => Bar {
                from_us: start.offset_us,
                to_us: end_us,
                label: format!("{kind} on link {link} (not removed)"),
                ending: Ending::NotFinished,
            },
        });
    }
    bars
}

// Geometry of the SVG, in its own units (it scales to the page's width).
const WIDTH: f64 = 1160.0;
const LEFT: f64 = 128.0;
const RIGHT: f64 = 16.0;
const ROW: f64 = 20.0;
const LANE: f64 = 24.0;
const GAP: f64 = 6.0;
const FONT: f64 = 11.0;
/// A rough width of one character at [`FONT`], to decide whether a label fits in its bar.
const CHAR: f64 = 6.3;

/// Width of a collapsed `prepare` at the axis's start, in SVG units.
const COLLAPSED: f64 = 84.0;
/// The gap between a collapsed `prepare` and the rest of the axis, where the break mark sits.
const BREAK: f64 = 12.0;

/// How run offsets map to x: linear over the run, or, when `prepare` would take more than
/// [`COLLAPSED`] units to scale, `prepare` squeezed into [`COLLAPSED`] units and the rest of the
/// run linear over the remaining width.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    end_us: u64,
    /// The end of a collapsed `prepare`.
    collapsed_until_us: Option<u64>,
}

impl Axis {
    fn new(timeline: &Timeline) -> Axis {
        let end_us = timeline.end_us.max(1);
        let plot = WIDTH - LEFT - RIGHT;
        let prepare = timeline.phases.iter().find(|bar| bar.label == "prepare");
        let collapsed_until_us = prepare
            .map(|bar| bar.to_us)
            .filter(|&until| until < end_us && (until as f64 / end_us as f64) * plot > COLLAPSED);
        Axis { end_us, collapsed_until_us }
    }

    fn x(&self, us: u64) -> f64 {
        let plot = WIDTH - LEFT - RIGHT;
        match self.collapsed_until_us {
            None => LEFT + (us as f64 / self.end_us as f64) * plot,
            Some(until) if us <= until => LEFT + (us as f64 / until as f64) * COLLAPSED,
            Some(until) => {
                let rest = (us - until) as f64 / (self.end_us - until) as f64;
                LEFT + COLLAPSED + BREAK + rest * (plot - COLLAPSED - BREAK)
            }
        }
    }

    /// Offsets to draw grid lines at: round ones over the part drawn to scale, plus the start.
    fn ticks(&self) -> Vec<u64> {
        match self.collapsed_until_us {
            None => ticks(self.end_us),
            Some(until) => {
                let round = ticks(self.end_us - until);
                let step = round.get(1).copied().unwrap_or(1_000);
                let first = until.div_ceil(step) * step;
                std::iter::once(0).chain((first..=self.end_us).step_by(step as usize)).collect()
            }
        }
    }
}

/// Render the timeline as an SVG element.
pub(super) fn render_svg(timeline: &Timeline) -> String {
    let axis = Axis::new(timeline);
    let x = |us: u64| axis.x(us);
    // A collapsed `prepare` says how long it took, since its width no longer does.
    let phases: Vec<Bar> = timeline
        .phases
        .iter()
        .map(|bar| match axis.collapsed_until_us {
            Some(_) if bar.label == "prepare" => Bar {
                // Whole seconds, so that the label fits the collapsed width.
                label: format!(
                    "prepare {}",
                    duration((bar.to_us - bar.from_us + 500_000) / 1_000_000 * 1_000_000)
                ),
                ..bar.clone()
            },
            _ => bar.clone(),
        })
        .collect();
    let mut rows: Vec<(&str, &[Bar])> =
        vec![("phases", &phases[..]), ("steps", &timeline.steps[..])];
    if !timeline.faults.is_empty() {
        rows.push(("faults", &timeline.faults[..]));
    }
    let top = 22.0;
    let lanes_top = top + rows.len() as f64 * (ROW + GAP) + GAP;
    let traffic_top = lanes_top + timeline.lanes.len() as f64 * (LANE + GAP);
    let sinks_top = traffic_top + timeline.traffic.len() as f64 * (LANE + GAP);
    let humans_top = sinks_top + timeline.sinks.len() as f64 * (LANE + GAP);
    let bottom = humans_top + timeline.humans.len() as f64 * (LANE + GAP);
    let height = bottom + 22.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="Timeline of the run: phases, steps, faults and the state of each service over time" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="{FONT}">"#
    );
    svg.push_str(
        r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f1f2f4"/><line x1="0" y1="0" x2="0" y2="6" stroke="#c9ced6" stroke-width="2"/></pattern></defs>"##,
    );
    // Grid and axis.
    for tick in axis.ticks() {
        let tx = x(tick);
        let _ = write!(
            svg,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{bottom:.1}" stroke="#e3e5e8"/><text x="{tx:.1}" y="14" text-anchor="middle" fill="#59606b">{}</text><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#59606b">{}</text>"##,
            top - 4.0,
            tick_label(tick),
            bottom + 14.0,
            tick_label(tick),
        );
    }
    if let Some(until) = axis.collapsed_until_us {
        let bx = LEFT + COLLAPSED + BREAK / 2.0;
        let _ = write!(
            svg,
            r##"<g class="axis-break"><title>prepare (0s → {}) is collapsed: not to scale; the axis runs to scale from there</title><rect x="{:.1}" y="{:.1}" width="{BREAK}" height="{:.1}" fill="#ffffff"/><path d="M{:.1},{:.1} l4,-8 M{:.1},{:.1} l4,-8 M{:.1},{:.1} l4,-8 M{:.1},{:.1} l4,-8" stroke="#59606b" stroke-width="1.5"/></g>"##,
            offset(until),
            LEFT + COLLAPSED,
            top - 4.0,
            bottom - top + 8.0,
            bx - 5.0,
            top + 2.0,
            bx - 1.0,
            top + 2.0,
            bx - 5.0,
            bottom + 4.0,
            bx - 1.0,
            bottom + 4.0,
        );
    }
    if timeline.lanes_end_us < timeline.end_us && !timeline.lanes.is_empty() {
        let tx = x(timeline.lanes_end_us);
        let _ = write!(
            svg,
            r##"<rect x="{tx:.1}" y="{lanes_top:.1}" width="{:.1}" height="{:.1}" fill="url(#hatch)"><title>teardown: lanes end here</title></rect>"##,
            x(timeline.end_us) - tx,
            bottom - lanes_top - GAP,
        );
    }
    for (i, (name, bars)) in rows.iter().enumerate() {
        let y = top + i as f64 * (ROW + GAP);
        row_label(&mut svg, y + ROW / 2.0, name);
        if bars.is_empty() {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" dominant-baseline="central" fill="#59606b">none ran</text>"##,
                LEFT + 4.0,
                y + ROW / 2.0
            );
        }
        for (j, bar) in bars.iter().enumerate() {
            let next = bars.get(j + 1).map_or(timeline.end_us, |b| b.from_us);
            draw_bar(&mut svg, bar, name, x(bar.from_us), x(bar.to_us), x(next), y);
        }
    }
    for (i, lane) in timeline.lanes.iter().enumerate() {
        let y = lanes_top + i as f64 * (LANE + GAP);
        row_label(&mut svg, y + LANE / 2.0, &lane.service);
        for segment in &lane.segments {
            draw_segment(&mut svg, &lane.service, segment, x(segment.from_us), x(segment.to_us), y);
        }
        // Failures last, so that they stay visible where markers crowd.
        let failed = |m: &&Marker| {
            matches!(m.kind, MarkerKind::ProbeFailed | MarkerKind::Upgrade { ok: false })
        };
        let (bad, good): (Vec<&Marker>, Vec<&Marker>) = lane.markers.iter().partition(failed);
        for marker in good.into_iter().chain(bad) {
            draw_marker(&mut svg, &lane.service, marker, x(marker.at_us), y);
        }
    }
    for (i, row) in timeline.traffic.iter().enumerate() {
        let y = traffic_top + i as f64 * (LANE + GAP);
        draw_traffic(&mut svg, row, &x, y);
    }
    for (i, row) in timeline.sinks.iter().enumerate() {
        let y = sinks_top + i as f64 * (LANE + GAP);
        let name = format!("sink {}", row.sink);
        row_label(&mut svg, y + LANE / 2.0, &name);
        for (j, bar) in row.outages.iter().enumerate() {
            let next = row.outages.get(j + 1).map_or(timeline.end_us, |b| b.from_us);
            draw_bar(&mut svg, bar, "faults", x(bar.from_us), x(bar.to_us), x(next), y + 2.0);
        }
        let (bad, good): (Vec<&Marker>, Vec<&Marker>) =
            row.markers.iter().partition(|m| m.kind == MarkerKind::Rejected);
        for marker in good.into_iter().chain(bad) {
            draw_marker(&mut svg, &name, marker, x(marker.at_us), y);
        }
    }
    for (i, row) in timeline.humans.iter().enumerate() {
        let y = humans_top + i as f64 * (LANE + GAP);
        let name = format!("human {}", row.role);
        row_label(&mut svg, y + LANE / 2.0, &name);
        for (j, bar) in row.prompts.iter().enumerate() {
            let next = row.prompts.get(j + 1).map_or(timeline.end_us, |b| b.from_us);
            draw_bar(&mut svg, bar, "humans", x(bar.from_us), x(bar.to_us), x(next), y + 2.0);
        }
        for marker in &row.markers {
            draw_marker(&mut svg, &name, marker, x(marker.at_us), y);
        }
    }
    svg.push_str("</svg>");
    svg
}

fn row_label(svg: &mut String, y: f64, name: &str) {
    let name = fit(name, LEFT - 12.0);
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="central" fill="#1f2328" font-weight="600">{}</text>"##,
        LEFT - 8.0,
        y,
        html(&name)
    );
}

fn draw_bar(svg: &mut String, bar: &Bar, row: &str, x0: f64, x1: f64, next: f64, y: f64) {
    let (fill, stroke) = match (row, bar.ending) {
        (_, Ending::Failed) => ("#f6d5d5", "#d64545"),
        (_, Ending::Interrupted | Ending::NotFinished) => ("url(#hatch)", "#8c939d"),
        ("faults", _) => ("#f3e1ef", "#a8479a"),
        ("phases", _) => ("#e6ebf2", "#7d8da3"),
        _ => ("#dfe9f7", "#4a78b8"),
    };
    let width = (x1 - x0).max(1.5);
    let span = format!(
        "{} → {} ({})",
        offset(bar.from_us),
        offset(bar.to_us),
        duration(bar.to_us - bar.from_us)
    );
    let status = match bar.ending {
        Ending::Ok => "",
        Ending::Failed => ", failed",
        Ending::Interrupted => ", interrupted",
        Ending::NotFinished => ", not finished",
        Ending::Skipped => ", skipped",
    };
    let _ = write!(
        svg,
        r#"<g><title>{}: {}{}</title><rect x="{x0:.1}" y="{y:.1}" width="{width:.1}" height="{ROW}" rx="3" fill="{fill}" stroke="{stroke}"/>"#,
        html(&bar.label),
        html(&span),
        status
    );
    // The label may run past a short bar, up to where the next bar starts.
    let room = (next - x0).max(width) - 8.0;
    if room >= 3.0 * CHAR {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" dominant-baseline="central" fill="#1f2328">{}</text>"##,
            x0 + 4.0,
            y + ROW / 2.0,
            html(&fit(&bar.label, room))
        );
    }
    svg.push_str("</g>");
}

fn draw_segment(svg: &mut String, service: &str, segment: &Segment, x0: f64, x1: f64, y: f64) {
    let width = (x1 - x0).max(0.8);
    let _ = write!(
        svg,
        r#"<g><title>{}: {} {} → {} ({})</title><rect class="state-{}" x="{x0:.1}" y="{y:.1}" width="{width:.1}" height="{LANE}" fill="{}"/>"#,
        html(service),
        html(&segment.detail),
        offset(segment.from_us),
        offset(segment.to_us),
        duration(segment.to_us - segment.from_us),
        segment.state.word(),
        state_color(segment.state),
    );
    let word = segment.state.word();
    if width >= word.len() as f64 * CHAR + 8.0 {
        let fill = if segment.state == State::Starting { "#1f2328" } else { "#ffffff" };
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" dominant-baseline="central" fill="{fill}">{word}</text>"#,
            x0 + 4.0,
            y + LANE / 2.0,
        );
    }
    svg.push_str("</g>");
}

fn draw_marker(svg: &mut String, service: &str, marker: &Marker, x: f64, y: f64) {
    let title = format!("{} {service}: {}", offset(marker.at_us), marker.label);
    match marker.kind {
        MarkerKind::ProbeOk | MarkerKind::ProbeFailed => {
            let fill = if marker.kind == MarkerKind::ProbeOk { "#ffffff" } else { "#d64545" };
            let _ = write!(
                svg,
                r##"<circle cx="{x:.1}" cy="{:.1}" r="4.5" fill="{fill}" stroke="#1f2328" stroke-width="1.5"><title>{}</title></circle>"##,
                y + LANE - 6.0,
                html(&title)
            );
        }
        MarkerKind::Upgrade { ok } => {
            let fill = if ok { state_color(State::Upgrading) } else { "#d64545" };
            let _ = write!(
                svg,
                r##"<path d="M{x:.1},{:.1} l6,6 l-6,6 l-6,-6 z" fill="{fill}" stroke="#1f2328" stroke-width="1.2"><title>{}</title></path>"##,
                y - 4.0,
                html(&title)
            );
        }
        MarkerKind::Notification => {
            let _ = write!(
                svg,
                r##"<rect x="{:.1}" y="{:.1}" width="9" height="7" fill="#ffffff" stroke="#2e8b57" stroke-width="1.5"><title>{}</title></rect>"##,
                x - 4.5,
                y + LANE / 2.0 - 3.5,
                html(&title)
            );
        }
        MarkerKind::Rejected => {
            let _ = write!(
                svg,
                r##"<path d="M{:.1},{:.1} l8,8 m0,-8 l-8,8" stroke="#d64545" stroke-width="2"><title>{}</title></path>"##,
                x - 4.0,
                y + LANE / 2.0 - 4.0,
                html(&title)
            );
        }
        MarkerKind::Acknowledged => {
            let _ = write!(
                svg,
                r##"<path class="human-ack" d="M{:.1},{:.1} l3,4 l6,-8" fill="none" stroke="#2e8b57" stroke-width="2.2"><title>{}</title></path>"##,
                x - 4.0,
                y + LANE / 2.0,
                html(&title)
            );
        }
        MarkerKind::Target { met } => {
            let stroke = if met { "#1f2328" } else { "#d64545" };
            let _ = write!(
                svg,
                r##"<line class="human-target" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{stroke}" stroke-width="2" stroke-dasharray="3,2"><title>{}</title></line>"##,
                y - 1.0,
                y + LANE + 1.0,
                html(&title)
            );
        }
        MarkerKind::Action => {
            let _ = write!(
                svg,
                r##"<path d="M{:.1},{:.1} l5,-7 h-10 z" fill="#1f2328"><title>{}</title></path>"##,
                x,
                y + 7.0,
                html(&title)
            );
        }
    }
}

fn draw_traffic(svg: &mut String, row: &TrafficRow, x: &impl Fn(u64) -> f64, y: f64) {
    row_label(svg, y + LANE / 2.0, &format!("traffic {}", row.traffic));
    let slowest = row.buckets.iter().map(|b| b.p50_us).max().unwrap_or(0).max(1) as f64;
    let mut line = Vec::with_capacity(row.buckets.len());
    for bucket in &row.buckets {
        let (x0, x1) = (x(bucket.from_us), x(bucket.to_us));
        let ok = bucket.requests - bucket.failed;
        let rate = ok as f64 / bucket.requests as f64;
        let fill = if bucket.failed == 0 {
            state_color(State::Up)
        } else if rate >= 0.5 {
            state_color(State::Unhealthy)
        } else {
            state_color(State::Down)
        };
        let _ = write!(
            svg,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{LANE}" fill="{fill}" fill-opacity="0.85"><title>{} traffic {}: {} requests, {} failed ({:.1}% ok), median latency {}</title></rect>"#,
            (x1 - x0).max(0.8),
            offset(bucket.from_us),
            html(&row.traffic),
            bucket.requests,
            bucket.failed,
            rate * 100.0,
            duration(bucket.p50_us),
        );
        let ly = y + LANE - 2.0 - (bucket.p50_us as f64 / slowest) * (LANE - 4.0);
        line.push(format!("{:.1},{ly:.1}", (x0 + x1) / 2.0));
    }
    if line.len() > 1 {
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#1f2328" stroke-width="1.2"><title>median latency per bucket (top: {})</title></polyline>"##,
            line.join(" "),
            duration(slowest as u64)
        );
    }
}

/// The fill of a state (the HTML legend uses the same).
pub(super) fn state_color(state: State) -> &'static str {
    match state {
        State::Up => "#2e8b57",
        State::Unhealthy => "#d98e04",
        State::Down => "#c93c3c",
        State::Paused => "#4f6fc6",
        State::Upgrading => "#8e5bb5",
        State::Starting => "#c9ced6",
    }
}

/// Cut `text` to about `room` units, with an ellipsis.
fn fit(text: &str, room: f64) -> String {
    let max = (room / CHAR).floor().max(1.0) as usize;
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Tick offsets: a 1-2-5 step giving at most 12 ticks.
fn ticks(end_us: u64) -> Vec<u64> {
    let mut step: u64 = 1_000; // 1ms
    'search: loop {
        for factor in [1, 2, 5] {
            if end_us / (step * factor) <= 12 {
                step *= factor;
                break 'search;
            }
        }
        step *= 10;
    }
    (0..=end_us / step).map(|i| i * step).collect()
}

fn tick_label(us: u64) -> String {
    if us == 0 { "0s".to_owned() } else { duration(us) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    fn states(lane: &Lane) -> Vec<(u64, u64, State)> {
        lane.segments.iter().map(|s| (s.from_us / 1_000, s.to_us / 1_000, s.state)).collect()
    }

    #[test]
    fn lanes_follow_health_pause_and_death() {
        let timeline = build(&fixtures::deviated().events);
        assert_eq!(
            timeline.lanes.iter().map(|l| l.service.as_str()).collect::<Vec<_>>(),
            ["db", "billing"]
        );
        assert_eq!(
            states(&timeline.lanes[0]),
            vec![
                (425, 534, State::Starting),
                (534, 895, State::Unhealthy),
                (895, 1_505, State::Up),
                (1_505, 6_525, State::Paused),
                (6_525, 6_732, State::Unhealthy),
                (6_732, 17_100, State::Up),
            ]
        );
        assert_eq!(
            states(&timeline.lanes[1]),
            vec![
                (1_228, 1_233, State::Starting),
                (1_233, 1_489, State::Unhealthy),
                (1_489, 2_750, State::Up),
                (2_750, 6_650, State::Unhealthy),
                (6_650, 6_990, State::Down),
                (6_990, 7_776, State::Unhealthy),
                (7_776, 17_100, State::Up),
            ]
        );
        assert_eq!(timeline.lanes_end_us, 17_100_000, "lanes end at teardown");
    }

    #[test]
    fn a_for_fault_is_a_bar_from_the_action_to_its_undo() {
        let timeline = build(&fixtures::deviated().events);
        assert_eq!(
            timeline.faults,
            vec![Bar {
                from_us: 1_507_000,
                to_us: 6_528_000,
                label: "pause db for 5.021s".into(),
                ending: Ending::Ok,
            }]
        );
        let crashed = build(&fixtures::crashed().events);
        assert_eq!(crashed.faults[0].ending, Ending::NotFinished);
        assert_eq!(crashed.steps[0].ending, Ending::NotFinished);
    }

    #[test]
    fn link_faults_are_bars_until_removed() {
        let applied = |fault: u64, kind: &str| EventKind::FaultApplied {
            step: format!("{kind} db"),
            fault,
            kind: kind.into(),
            service: "db".into(),
            replica: "db".into(),
            ok: true,
            detail: "+300ms, downstream (toxic-1)".into(),
            previous: serde_json::Value::Null,
            link: Some("db".into()),
        };
        let events = fixtures::events(vec![
            (100, applied(1, "latency")),
            (
                2_100,
                EventKind::FaultReverted {
                    step: "latency db".into(),
                    fault: 1,
                    kind: "latency".into(),
                    service: "db".into(),
                    replica: "db".into(),
                    ok: true,
                    detail: "removed toxic-1".into(),
                    link: Some("db".into()),
                },
            ),
            (3_000, applied(2, "cut")),
            (4_000, EventKind::RunEnded { outcome: Outcome::Ok }),
        ]);
        let timeline = build(&events);
        let bars: Vec<(u64, u64, &str, Ending)> = timeline
            .faults
            .iter()
            .map(|b| (b.from_us, b.to_us, b.label.as_str(), b.ending))
            .collect();
        assert_eq!(
            bars,
            [
                (100_000, 2_100_000, "latency on link db for 2s", Ending::Ok),
                (3_000_000, 4_000_000, "cut on link db (not removed)", Ending::NotFinished),
            ]
        );
    }

    #[test]
    fn an_upgrade_shows_as_upgrading() {
        let upgrade = |stage| EventKind::Upgrade {
            step: "upgrade billing".into(),
            service: "billing".into(),
            stage,
            ok: true,
            detail: None,
        };
        let events = fixtures::events(vec![
            (
                0,
                EventKind::HealthChanged {
                    service: "billing".into(),
                    healthy: true,
                    detail: "status 200".into(),
                    check_started_us: None,
                },
            ),
            (100, upgrade(UpgradeStage::Started)),
            (900, upgrade(UpgradeStage::Completed)),
            (1_000, EventKind::RunEnded { outcome: Outcome::Ok }),
        ]);
        let timeline = build(&events);
        assert_eq!(
            states(&timeline.lanes[0]),
            vec![(0, 100, State::Up), (100, 900, State::Upgrading), (900, 1_000, State::Up)]
        );
    }

    #[test]
    fn the_old_version_ending_after_a_blue_green_switch_is_not_the_service_down() {
        let upgrade = |stage| EventKind::Upgrade {
            step: "upgrade billing".into(),
            service: "billing".into(),
            stage,
            ok: true,
            detail: None,
        };
        let die = EventKind::ContainerEvent {
            service: "billing".into(),
            action: "die".into(),
            exit_code: Some(0),
        };
        let events = fixtures::events(vec![
            (
                0,
                EventKind::HealthChanged {
                    service: "billing".into(),
                    healthy: true,
                    detail: "status 200".into(),
                    check_started_us: None,
                },
            ),
            (100, upgrade(UpgradeStage::Started)),
            (
                250,
                EventKind::ContainerEvent {
                    service: "billing".into(),
                    action: "rename".into(),
                    exit_code: None,
                },
            ),
            (300, upgrade(UpgradeStage::Switched)),
            (800, die.clone()),
            (900, upgrade(UpgradeStage::Completed)),
            (1_000, die),
            (1_100, EventKind::RunEnded { outcome: Outcome::Ok }),
        ]);
        assert_eq!(
            states(&build(&events).lanes[0]),
            vec![
                (0, 100, State::Up),
                (100, 900, State::Upgrading),
                (900, 1_000, State::Up),
                (1_000, 1_100, State::Down),
            ],
            "the old version's exit is not an outage; a later exit of the service is"
        );
    }

    #[test]
    fn traffic_is_bucketed_and_upgrade_stages_are_markers() {
        let timeline = build(&fixtures::upgraded().events);
        let row = &timeline.traffic[0];
        assert_eq!(row.traffic, "checkout");
        assert_eq!(row.buckets.iter().map(|b| b.requests).sum::<u64>(), 85);
        let at =
            |ms: u64| row.buckets.iter().find(|b| b.from_us <= ms * 1_000 && ms * 1_000 < b.to_us);
        let baseline = at(2_000).unwrap();
        assert_eq!((baseline.failed, baseline.p50_us < 10_000), (0, true));
        let broken = at(6_000).unwrap();
        assert_eq!((broken.failed, broken.p50_us), (broken.requests, 30_000));
        let billing = &timeline.lanes[1];
        let failed_stages =
            billing.markers.iter().filter(|m| m.kind == MarkerKind::Upgrade { ok: false }).count();
        assert_eq!(failed_stages, 2, "`healthy` not ok and `failed`");
    }

    #[test]
    fn sinks_get_a_row_with_outages_arrivals_and_rejections() {
        let notification = |received_us: u64| EventKind::NotificationReceived {
            sink: "sms".into(),
            channel: "voice".into(),
            received_us,
            from: None,
            recipients: vec!["+15550001".into()],
            subject: None,
            body: "OUTAGE: billing is down".into(),
            detail: serde_json::Value::Null,
        };
        let chaos = |on| EventKind::SinkChaos {
            sink: "sms".into(),
            mode: "status 500".into(),
            probability: 1.0,
            on,
        };
        let events = fixtures::events(vec![
            (
                0,
                EventKind::SinkStarted {
                    sink: "email".into(),
                    kind: "smtp".into(),
                    addrs: vec!["127.0.0.1:1".into()],
                },
            ),
            (100, chaos(true)),
            (
                200,
                EventKind::SinkRejected {
                    sink: "sms".into(),
                    reason: "chaos".into(),
                    detail: "answered 500".into(),
                },
            ),
            (300, notification(250_000)),
            (400, chaos(false)),
            (500, chaos(true)),
            (600, EventKind::RunEnded { outcome: Outcome::Ok }),
        ]);
        let timeline = build(&events);
        let names: Vec<_> = timeline.sinks.iter().map(|r| r.sink.as_str()).collect();
        assert_eq!(names, ["email", "sms"]);
        let sms = &timeline.sinks[1];
        let outages: Vec<_> =
            sms.outages.iter().map(|b| (b.from_us / 1_000, b.to_us / 1_000, b.ending)).collect();
        assert_eq!(outages, [(100, 400, Ending::Ok), (500, 600, Ending::NotFinished)]);
        let markers: Vec<_> = sms.markers.iter().map(|m| (m.at_us / 1_000, m.kind)).collect();
        assert_eq!(markers, [(200, MarkerKind::Rejected), (250, MarkerKind::Notification)]);
        assert_eq!(sms.markers[1].label, "voice to +15550001: OUTAGE: billing is down");
        assert!(render_svg(&timeline).contains("sink sms"));
    }

    /// A first run: `prepare` builds images for 120 s, the rehearsal takes 13 s.
    fn first_run() -> Vec<Event> {
        let phase = |phase| EventKind::PhaseStarted { phase };
        let ended = |phase| EventKind::PhaseEnded { phase, outcome: Outcome::Ok, error: None };
        let step = |index: usize, name: &str| EventKind::StepStarted {
            index,
            step: name.into(),
            action: "wait".into(),
        };
        let step_ended = |index: usize, name: &str| EventKind::StepEnded {
            index,
            step: name.into(),
            outcome: Outcome::Ok,
            error: None,
        };
        fixtures::events(vec![
            (0, phase(Phase::Prepare)),
            (120_000, ended(Phase::Prepare)),
            (120_000, phase(Phase::BringUp)),
            (122_000, ended(Phase::BringUp)),
            (122_000, phase(Phase::Steps)),
            (122_000, step(0, "kill billing")),
            (127_000, step_ended(0, "kill billing")),
            (127_000, step(1, "wait for billing")),
            (132_000, step_ended(1, "wait for billing")),
            (132_000, ended(Phase::Steps)),
            (132_000, phase(Phase::Teardown)),
            (133_000, ended(Phase::Teardown)),
            (133_000, EventKind::RunEnded { outcome: Outcome::Ok }),
        ])
    }

    /// The `x` and `width` of the first `<rect>` after `<title>{title}`.
    fn rect_of(svg: &str, title: &str) -> (f64, f64) {
        let at = svg.find(&format!("<title>{title}")).unwrap_or_else(|| panic!("{title}: {svg}"));
        let rect = &svg[at..][svg[at..].find("<rect").unwrap()..];
        let number = |key: &str| -> f64 {
            let from = rect.find(&format!(" {key}=\"")).unwrap() + key.len() + 3;
            rect[from..][..rect[from..].find('"').unwrap()].parse().unwrap()
        };
        (number("x"), number("width"))
    }

    #[test]
    fn a_long_prepare_is_collapsed_and_the_rehearsal_fills_the_width() {
        let svg = render_svg(&build(&first_run()));
        let plot = WIDTH - LEFT - RIGHT;
        let (prepare_x, prepare_width) = rect_of(&svg, "prepare 2m0s:");
        assert!(svg.contains("<title>prepare 2m0s: +0ms → +2m0s (2m0s)</title>"), "{svg}");
        assert_eq!((prepare_x, prepare_width), (LEFT, COLLAPSED), "collapsed and labelled");
        assert!(svg.contains(">prepare 2m0s</text>"), "the label says how long it took");
        assert!(svg.contains("class=\"axis-break\""), "a break mark says it is not to scale");
        let (kill_x, kill_width) = rect_of(&svg, "kill billing:");
        let (wait_x, wait_width) = rect_of(&svg, "wait for billing:");
        let steps_width = wait_x + wait_width - kill_x;
        assert!(steps_width > 0.65 * plot, "the steps take {steps_width:.0} of {plot:.0} units");
        assert!((kill_width - wait_width).abs() < 1.0, "to scale after the break: 5 s each");
        // Grid: 0s at the start, then round offsets over the part drawn to scale only.
        let ticks = Axis::new(&build(&first_run())).ticks();
        assert_eq!(ticks[0], 0);
        assert!(ticks[1..].iter().all(|&t| t >= 120_000_000), "{ticks:?}");
        assert!(ticks.len() >= 5, "{ticks:?}");
    }

    #[test]
    fn a_short_prepare_stays_to_scale() {
        // 0.5 s of prepare in a 13.5 s run is under `COLLAPSED` units wide: drawn as it is.
        let events: Vec<(u64, EventKind)> = first_run()
            .into_iter()
            .map(|e| (if e.offset_us == 0 { 0 } else { e.offset_us / 1_000 - 119_500 }, e.kind))
            .collect();
        let timeline = build(&fixtures::events(events));
        assert_eq!(Axis::new(&timeline).collapsed_until_us, None);
        let svg = render_svg(&timeline);
        assert!(!svg.contains("axis-break"));
        let (_, prepare_width) = rect_of(&svg, "prepare:");
        assert!(prepare_width < COLLAPSED, "{prepare_width}");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(8_305_000), (0..=8).map(|s| s * 1_000_000).collect::<Vec<_>>());
        assert_eq!(ticks(95_000_000).len(), 10);
        assert_eq!(ticks(0), vec![0]);
    }

    #[test]
    fn every_prefix_renders() {
        let events = fixtures::deviated().events;
        for end in 0..=events.len() {
            render_svg(&build(&events[..end]));
        }
    }
}
