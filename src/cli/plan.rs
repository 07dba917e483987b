//! `firedrill plan FILE`: what a run would do, without creating anything — the images it would
//! build or pull (and which are present), the bring-up order with each service's health gate, the
//! timeline with each step's earliest start offset (and calendar time under `calendar:`), which
//! faults are ledgered, which sinks, links and traffic start, and what each `expect:` entry judges.
//!
//! [`build`] and [`render`] are pure (the image column comes in as a function); only
//! [`plan`] asks Docker, bounded, and marks the column `unknown` when no engine answers.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::errors::ExitStatus;
use crate::calendar::{self, Zone};
use crate::scenario::model::{
    Action, ContainerOp, HealthKind, ImageSource, OnFailure, PullPolicy, Step, Strategy,
};
use crate::scenario::{self, LoadError, Scenario, format_duration};
use crate::stack::Docker;

/// How `plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PlanFormat {
    /// A readable outline on stdout.
    #[default]
    Text,
    /// One JSON document on stdout (`format-version` 1).
    Json,
}

/// Whether an image is in the local engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    /// The engine has it.
    Present,
    /// The engine answered that it does not.
    Missing,
    /// No engine answered.
    Unknown,
}

/// What a run of one scenario would do.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Plan {
    /// The scenario's `name`.
    pub scenario: String,
    /// The file, as given.
    pub file: String,
    /// Prepare: every image, in order of first use.
    pub images: Vec<PlannedImage>,
    /// Bring-up, first: the sinks (on loopback and the run network's gateway).
    pub sinks: Vec<String>,
    /// Bring-up, second: one fault proxy per link.
    pub links: Vec<String>,
    /// Bring-up, then: the services in dependency order, each waiting for its health gate.
    pub services: Vec<PlannedService>,
    /// The steady-state probes, run before the first step and after the last.
    pub steady_state: Vec<String>,
    /// Load kept up from the first step to the last.
    pub traffic: Vec<String>,
    /// The steps, parallel children after their group.
    pub timeline: Vec<PlannedStep>,
    /// Each `expect:` entry and what it judges.
    pub expect: Vec<PlannedCheck>,
}

/// One image of the prepare phase.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlannedImage {
    /// `NAME:TAG`.
    pub reference: String,
    /// The build context for a `build:` image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_context: Option<String>,
    /// The pull policy that applies (`missing`, `always`, `never`).
    pub pull: String,
    /// Whether the engine has it.
    pub present: Presence,
    /// What prepare does with it.
    pub action: String,
}

/// One service in bring-up order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlannedService {
    /// The service.
    pub service: String,
    /// Its image.
    pub image: String,
    /// Containers it runs.
    pub replicas: u32,
    /// What it waits for before it starts.
    pub depends_on: Vec<String>,
    /// What "up" means before the next service starts.
    pub health_gate: String,
}

/// One step of the timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlannedStep {
    /// The step's name.
    pub name: String,
    /// 0 for a top-level step, 1 for a child of a `parallel` group.
    pub depth: usize,
    /// The earliest start, from the timeline's start, in ms.
    pub offset_ms: u64,
    /// The same, as the scenario writes durations.
    pub offset: String,
    /// The calendar time it stands for, under `calendar:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
    /// What it does.
    pub does: String,
    /// The time it takes at least, when it declares one (`wait`, `for`, `watch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub takes: Option<String>,
    /// Written to the fault ledger before it is applied, so `firedrill gc` reverts it after a
    /// crash.
    pub ledgered: bool,
}

/// One `expect:` entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlannedCheck {
    /// Its name.
    pub name: String,
    /// Its key (`healthy-within`, `slo`, ...).
    pub kind: String,
    /// The line of the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What must hold, in the words the report uses.
    pub judges: String,
}

/// The JSON document of `--format json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
struct Document<'a> {
    format_version: u32,
    plans: &'a [Plan],
}

/// The plan of `scenario`; `present` answers whether the engine has an image.
pub fn build(scenario: &Scenario, present: &dyn Fn(&str) -> Presence) -> Plan {
    let images = scenario
        .image_sources()
        .into_iter()
        .map(|source| {
            let reference = source.reference().to_owned();
            let pull = scenario.pull_policy(&reference);
            let presence = present(&reference);
            let build_context = match source {
                ImageSource::Build(spec) => Some(spec.context.display().to_string()),
                ImageSource::Image(_) => None,
            };
            PlannedImage {
                action: image_action(source, pull, presence),
                reference,
                build_context,
                pull: pull_name(pull).to_owned(),
                present: presence,
            }
        })
        .collect();
    let services = scenario
        .stack
        .start_order()
        .into_iter()
        .map(|service| PlannedService {
            service: service.name.clone(),
            image: service.image.reference().to_owned(),
            replicas: service.replicas,
            depends_on: service.depends_on.clone(),
            health_gate: match &service.health {
                Some(health) => format!(
                    "{} every {}, healthy within {}",
                    health_kind(&health.kind),
                    format_duration(health.interval),
                    format_duration(service.startup_timeout)
                ),
                None => "none: a started container counts as up".to_owned(),
            },
        })
        .collect();
    let sinks = scenario
        .sinks
        .values()
        .map(|s| {
            let kind = serde_json::to_value(s.kind).ok();
            format!("{} ({})", s.name, kind.as_ref().and_then(|k| k.as_str()).unwrap_or("?"))
        })
        .collect();
    let links = scenario
        .stack
        .links
        .values()
        .map(|l| {
            let http = if l.http { ", http" } else { "" };
            format!("{}: {} → {}:{}{http}", l.name, l.from, l.to, l.port)
        })
        .collect();
    let traffic = scenario
        .traffic
        .values()
        .map(|t| {
            let r = &t.request;
            format!(
                "{}: {} {}:{}{} at {}/s (concurrency {}, timeout {}{})",
                t.name,
                r.method,
                r.service,
                r.port,
                r.path,
                t.rate_per_second,
                t.concurrency,
                format_duration(t.timeout),
                if t.verify_writes.is_some() { ", writes read back" } else { "" }
            )
        })
        .collect();
    let mut timeline = Vec::new();
    let mut offset = Duration::ZERO;
    for step in &scenario.steps {
        place(scenario, step, 0, offset, &mut timeline);
        offset += step.action.declared_duration();
    }
    // An empty journal: each verdict's `expected` is what the check will judge.
    let verdicts = crate::checks::evaluate(scenario, &[]);
    let expect = scenario
        .expect
        .iter()
        .zip(&verdicts)
        .map(|(expectation, verdict)| PlannedCheck {
            name: expectation.name.clone(),
            kind: verdict.kind.to_owned(),
            line: expectation.at.map(|at| at.line),
            judges: verdict.expected.clone(),
        })
        .collect();
    Plan {
        scenario: scenario.name.clone(),
        file: scenario.source.display().to_string(),
        images,
        sinks,
        links,
        services,
        steady_state: scenario.steady_state.iter().map(|p| p.name.clone()).collect(),
        traffic,
        timeline,
        expect,
    }
}

fn place(
    scenario: &Scenario,
    step: &Step,
    depth: usize,
    offset: Duration,
    out: &mut Vec<PlannedStep>,
) {
    let declared = step.action.declared_duration();
    let ledgered = match &step.action {
        Action::Fault(_) | Action::NodeAvailability(_) => true,
        Action::Container(action) => action.op == ContainerOp::Pause && action.undo_after.is_some(),
        _ => false,
    };
    out.push(PlannedStep {
        name: step.name.clone(),
        depth,
        offset_ms: u64::try_from(offset.as_millis()).unwrap_or(u64::MAX),
        offset: if offset.is_zero() { "0s".to_owned() } else { format_duration(offset) },
        calendar: scenario.calendar.as_ref().map(|calendar| {
            let at = calendar.at(offset);
            calendar::local(at.timestamp(), &Zone::from_tz(at.time_zone().clone()))
        }),
        does: does(&step.action),
        takes: (!declared.is_zero()).then(|| format_duration(declared)),
        ledgered,
    });
    if let Action::Parallel(children) = &step.action {
        for child in children {
            let at = out.len();
            place(scenario, &child.step, depth + 1, offset + child.delay, out);
            // Anchored: the offset is the earliest it can start; the moment decides.
            if let Some(anchor) = &child.at {
                let delay = if child.delay.is_zero() {
                    String::new()
                } else {
                    format!(" + {}", format_duration(child.delay))
                };
                out[at].does.push_str(&format!(
                    " (at `{}` {}{delay})",
                    anchor.step,
                    anchor.event.name()
                ));
            }
        }
    }
}

/// What a step does, in a few words.
fn does(action: &Action) -> String {
    match action {
        Action::Wait(wait) => format!("wait {}", format_duration(*wait)),
        Action::KillProcess(kill) => {
            format!("{} to the `{}` processes in {}", kill.signal, kill.name, kill.service)
        }
        Action::Probe(probe) => format!("probe {}", probe.name),
        Action::Container(action) => {
            let undo = match (action.undo_after, &action.op) {
                (Some(after), ContainerOp::Pause) => {
                    format!(", unpaused after {}", format_duration(after))
                }
                (Some(after), _) => format!(", started again after {}", format_duration(after)),
                (None, _) => String::new(),
            };
            let signal = match &action.op {
                ContainerOp::Kill { signal } => format!(" ({signal})"),
                _ => String::new(),
            };
            format!("{} {}{signal}{undo}", action.op.key(), action.service)
        }
        Action::Upgrade(upgrade) => {
            let strategy = match upgrade.strategy {
                Strategy::Recreate => "recreate",
                Strategy::BlueGreen => "blue-green",
                Strategy::Rolling => "rolling",
            };
            let watch = match &upgrade.watch {
                Some(watch) => format!(
                    ", watch `{}` for {} (≥ {}%)",
                    watch.traffic,
                    format_duration(watch.duration),
                    watch.availability
                ),
                None => String::new(),
            };
            let on_failure = match upgrade.on_failure {
                OnFailure::Rollback => "roll back",
                OnFailure::Abort => "abort",
                OnFailure::Continue => "continue",
            };
            format!(
                "upgrade {} to {} ({strategy}, healthy within {}{watch}; on failure {on_failure})",
                upgrade.service,
                upgrade.target.reference(),
                format_duration(upgrade.deadline),
            )
        }
        Action::Rollback { service } => format!("roll back the latest upgrade of {service}"),
        Action::NodeAvailability(node) => format!(
            "node {} set to {}, restored after {}",
            node.node.as_deref().unwrap_or("(the DOCKER_HOST node)"),
            node.availability.key(),
            format_duration(node.duration)
        ),
        Action::Fault(fault) => {
            format!(
                "{} on {} for {}",
                fault.kind.key(),
                fault.service,
                format_duration(fault.duration)
            )
        }
        Action::LinkFault(fault) => format!(
            "{} on link {} for {} (in the fault proxy)",
            fault.kind.key(),
            fault.link,
            format_duration(fault.duration)
        ),
        Action::Parallel(children) => format!("parallel: {} steps at once", children.len()),
        Action::SinkOutage(outage) => {
            let until = match outage.duration {
                Some(duration) => format!("for {}", format_duration(duration)),
                None => "until teardown".to_owned(),
            };
            format!("sink `{}` fails ({}) {until}", outage.sink, outage.mode.describe())
        }
        Action::Call(call) => {
            format!("call {} {}:{}{}", call.method, call.service, call.port, call.path)
        }
        Action::Mark => "mark".to_owned(),
        Action::Human(human) => format!(
            "prompt {}: {} (done: {}, waits at most {})",
            human.role,
            human.prompt,
            human.done.describe(),
            format_duration(human.deadline)
        ),
    }
}

fn health_kind(kind: &HealthKind) -> String {
    match kind {
        HealthKind::Http { port, path, status } => format!("http GET :{port}{path} → {status}"),
        HealthKind::Tcp { port, exchange } => match &exchange.expect {
            Some(expect) => format!("tcp :{port} answers {expect:?}"),
            None => format!("tcp :{port} accepts"),
        },
        HealthKind::Exec { command } => format!("exec `{}`", command.join(" ")),
        HealthKind::Log { contains } => format!("a log line contains {contains:?}"),
    }
}

fn pull_name(policy: PullPolicy) -> &'static str {
    match policy {
        PullPolicy::Never => "never",
        PullPolicy::Missing => "missing",
        PullPolicy::Always => "always",
    }
}

fn image_action(source: &ImageSource, pull: PullPolicy, presence: Presence) -> String {
    let built = matches!(source, ImageSource::Build(_));
    match (built, pull, presence) {
        (true, _, Presence::Present) => "use the local image".into(),
        (true, _, Presence::Missing) => "build".into(),
        (true, _, Presence::Unknown) => "build if missing".into(),
        (false, PullPolicy::Always, _) => "pull (pull: always)".into(),
        (false, _, Presence::Present) => "use the local image".into(),
        (false, PullPolicy::Never, Presence::Missing) => {
            "missing: the run would fail (pull: never)".into()
        }
        (false, PullPolicy::Never, Presence::Unknown) => "must be local (pull: never)".into(),
        (false, _, Presence::Missing) => "pull".into(),
        (false, _, Presence::Unknown) => "pull if missing".into(),
    }
}

/// The plan as text.
pub fn render(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "plan of `{}` ({}): nothing is created", plan.scenario, plan.file);
    let _ = writeln!(w, "\nimages (prepare)");
    let width = plan.images.iter().map(|i| i.reference.len()).max().unwrap_or(0);
    for image in &plan.images {
        let present = match image.present {
            Presence::Present => "present",
            Presence::Missing => "missing",
            Presence::Unknown => "unknown",
        };
        let from = image.build_context.as_ref().map(|c| format!(" from {c}")).unwrap_or_default();
        let _ = writeln!(
            w,
            "  {:width$}  present: {present:7}  {}{from}",
            image.reference, image.action
        );
    }
    if !plan.sinks.is_empty() {
        let _ = writeln!(w, "\nsinks (start first)");
        for sink in &plan.sinks {
            let _ = writeln!(w, "  {sink}");
        }
    }
    if !plan.links.is_empty() {
        let _ = writeln!(w, "\nlinks (a fault proxy each)");
        for link in &plan.links {
            let _ = writeln!(w, "  {link}");
        }
    }
    let _ = writeln!(w, "\nbring-up (in order; each waits for its health gate)");
    let width = plan.services.iter().map(|s| s.service.len()).max().unwrap_or(0);
    for (n, service) in plan.services.iter().enumerate() {
        let replicas =
            if service.replicas > 1 { format!(" ×{}", service.replicas) } else { String::new() };
        let after = if service.depends_on.is_empty() {
            String::new()
        } else {
            format!(" (after {})", service.depends_on.join(", "))
        };
        let _ = writeln!(
            w,
            "  {}. {:width$}  {}{replicas}{after}\n     {:width$}  gate: {}",
            n + 1,
            service.service,
            service.image,
            "",
            service.health_gate
        );
    }
    if !plan.steady_state.is_empty() {
        let _ = writeln!(w, "\nsteady state (before the first step and after the last)");
        for probe in &plan.steady_state {
            let _ = writeln!(w, "  {probe}");
        }
    }
    if !plan.traffic.is_empty() {
        let _ = writeln!(w, "\ntraffic (from the first step to the last)");
        for traffic in &plan.traffic {
            let _ = writeln!(w, "  {traffic}");
        }
    }
    let _ =
        writeln!(w, "\ntimeline (earliest start from the first step; health waits come on top)");
    if plan.timeline.is_empty() {
        let _ = writeln!(w, "  (no steps)");
    }
    for step in &plan.timeline {
        let indent = "  ".repeat(step.depth);
        let calendar = step.calendar.as_ref().map(|c| format!("  [{c}]")).unwrap_or_default();
        let ledger = if step.ledgered { "  (ledgered)" } else { "" };
        let _ = writeln!(
            w,
            "  +{:8}{indent}{}: {}{ledger}{calendar}",
            step.offset, step.name, step.does
        );
    }
    let _ = writeln!(w, "\nexpect");
    if plan.expect.is_empty() {
        let _ = writeln!(w, "  (nothing is checked; `run --strict` fails this)");
    }
    for check in &plan.expect {
        let line = check.line.map(|l| format!("line {l}: ")).unwrap_or_default();
        let _ = writeln!(w, "  {line}{}\n    judges: {}", check.name, check.judges);
    }
    out
}

/// `firedrill plan FILE...`: validate, then print the plan of each file. Exit 0 valid, 2 invalid.
pub(super) async fn plan(files: &[PathBuf], format: PlanFormat, color: bool) -> ExitStatus {
    let mut scenarios = Vec::with_capacity(files.len());
    let mut failed = false;
    for file in files {
        match scenario::load(file) {
            Ok(scenario) => scenarios.push(scenario),
            Err(LoadError::Invalid(invalid)) => {
                eprint!("{}", scenario::render(&invalid, color));
                failed = true;
            }
            Err(error) => {
                eprintln!("{}", super::errors::ExpectedError::from(error).render());
                failed = true;
            }
        }
    }
    if failed {
        return ExitStatus::Error;
    }
    let docker = match Docker::connect().await {
        Ok(docker) => Some(docker),
        Err(error) => {
            eprintln!("note: no Docker engine answered ({error}): image presence is unknown");
            None
        }
    };
    let mut plans = Vec::with_capacity(scenarios.len());
    for scenario in &scenarios {
        let mut presence = std::collections::HashMap::new();
        for source in scenario.image_sources() {
            let reference = source.reference().to_owned();
            let answer = match &docker {
                Some(docker) => {
                    let asked = tokio::time::timeout(
                        Duration::from_secs(5),
                        docker.image_exists(&reference),
                    );
                    match asked.await {
                        Ok(Ok(true)) => Presence::Present,
                        Ok(Ok(false)) => Presence::Missing,
                        _ => Presence::Unknown,
                    }
                }
                None => Presence::Unknown,
            };
            presence.insert(reference, answer);
        }
        plans.push(build(scenario, &|reference| {
            presence.get(reference).copied().unwrap_or(Presence::Unknown)
        }));
    }
    match format {
        PlanFormat::Text => {
            let texts: Vec<String> = plans.iter().map(render).collect();
            print!("{}", texts.join("\n"));
        }
        PlanFormat::Json => {
            let document = Document { format_version: 1, plans: &plans };
            println!("{}", serde_json::to_string_pretty(&document).expect("plans serialize"));
        }
    }
    ExitStatus::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = "name: t
stack:
  services:
    app:
      image: registry.example/app:1
      ports: [8080]
      health: { http: { port: 8080, path: /health }, interval: 250ms }
      depends-on: [db]
    db:
      build: { context: ., tag: t/db:1 }
      ports: [5432]
      health: { exec: [pg_isready] }
traffic:
  web: { http: { service: app, port: 8080, path: / }, rate: 20/s }
steps:
  - wait: 2s
  - pause: { service: db, for: 3s }
  - parallel:
      - kill: { service: app }
      - { delay: 1s, cpu: { service: db, cores: 0.5, for: 4s } }
  - upgrade: { service: app, image: registry.example/app:2, watch: { traffic: web, for: 10s, availability: 99% } }
  - probe: { http: { service: app, port: 8080, path: /health } }
calendar: { start: 2026-12-05T22:00 Europe/Berlin, scale: 1s = 1m }
expect:
  - healthy-within: { service: app, after: kill app, within: 10s }
  - slo: { traffic: web, availability: 99% }
";

    fn plan_of(source: &str, presence: Presence) -> Plan {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let scenario = crate::scenario::parse(source, &dir.path().join("t.yaml")).unwrap();
        build(&scenario, &|_| presence)
    }

    #[test]
    fn bring_up_follows_dependencies_with_their_gates() {
        let plan = plan_of(SCENARIO, Presence::Unknown);
        let order: Vec<_> = plan.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(order, ["db", "app"]);
        assert_eq!(
            plan.services[1].health_gate,
            "http GET :8080/health → 200 every 250ms, healthy within 1m"
        );
        assert_eq!(
            plan.services[0].health_gate,
            "exec `pg_isready` every 500ms, healthy within 1m"
        );
    }

    #[test]
    fn offsets_add_declared_durations_and_children_their_delay() {
        let plan = plan_of(SCENARIO, Presence::Unknown);
        let steps: Vec<_> = plan
            .timeline
            .iter()
            .map(|s| (s.name.as_str(), s.depth, s.offset_ms, s.ledgered))
            .collect();
        assert_eq!(
            steps,
            [
                ("wait 2s", 0, 0, false),
                ("pause db", 0, 2000, true),
                ("parallel", 0, 5000, false),
                ("kill app", 1, 5000, false),
                ("cpu db", 1, 6000, true),
                ("upgrade app", 0, 10_000, false),
                ("probe http app:8080/health", 0, 20_000, false),
            ]
        );
        // 1s stands for 1m: the upgrade at +10s is 22:10 on the calendar.
        assert_eq!(plan.timeline[5].calendar.as_deref(), Some("Sat 2026-12-05 22:10 CET"));
    }

    #[test]
    fn an_anchored_child_says_which_moment_it_waits_for() {
        let source = SCENARIO.replace(
            "      - { delay: 1s, cpu: { service: db, cores: 0.5, for: 4s } }",
            "      - { at: { step: kill app, event: ended }, delay: 1s, cpu: { service: db, cores: 0.5, for: 4s } }",
        );
        let plan = plan_of(&source, Presence::Unknown);
        let cpu = plan.timeline.iter().find(|s| s.name == "cpu db").unwrap();
        assert_eq!(cpu.offset_ms, 6000, "the earliest it can start");
        assert!(cpu.does.ends_with(" (at `kill app` ended + 1s)"), "{}", cpu.does);
    }

    #[test]
    fn images_say_what_prepare_would_do() {
        let unknown = plan_of(SCENARIO, Presence::Unknown);
        let actions: Vec<_> =
            unknown.images.iter().map(|i| (i.reference.as_str(), i.action.as_str())).collect();
        assert_eq!(
            actions,
            [
                ("registry.example/app:1", "pull if missing"),
                ("t/db:1", "build if missing"),
                ("registry.example/app:2", "pull if missing"),
            ]
        );
        let missing = plan_of(SCENARIO, Presence::Missing);
        assert_eq!(missing.images[1].action, "build");
        let present = plan_of(SCENARIO, Presence::Present);
        assert!(present.images.iter().all(|i| i.action == "use the local image"));
    }

    #[test]
    fn checks_say_what_they_judge_and_where() {
        let plan = plan_of(SCENARIO, Presence::Unknown);
        assert_eq!(plan.expect.len(), 2);
        assert_eq!(plan.expect[0].kind, "healthy-within");
        assert_eq!(plan.expect[0].line, Some(25));
        assert!(!plan.expect[0].judges.is_empty());
        assert!(plan.expect[1].judges.contains("99"), "{}", plan.expect[1].judges);
        let text = render(&plan);
        assert!(text.contains("(ledgered)"), "{text}");
        assert!(text.contains("present: unknown"), "{text}");
    }
}
