//! The entry of the walk, and what its parts share: the [`Walk`] itself, what is known about
//! services and steps while their neighbours are still being read, and name rules.

use crate::scenario::keys;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use super::sink_steps::SinkNames;
use super::traffic::TrafficTable;
use crate::calendar::{Policy, SentNotice};
use crate::scenario::model::{
    Action, ActionKind, BackendChoice, OnFailure, Reference, Scenario, Service, Stack, StepMoment,
};
use crate::scenario::read::Reader;
use crate::scenario::report::{Problems, Span};
use crate::scenario::space::Space;
use crate::scenario::tree::{Node, Value};

/// Walk the document root into a scenario, or every problem found.
///
/// Parts are read in dependency order, services first, then probes and traffic (which name
/// services), then steps (which name services and traffic), then expectations (which name all of
/// them). A part with mistakes still tells later parts what it can (a service's name, a step's
/// name, a traffic entry's name) so that one mistake is not reported again as "unknown service",
/// "unknown step" or "unknown traffic" further down.
pub(crate) fn scenario(
    root: Option<&Node>,
    source: &str,
    path: &Path,
) -> Result<Scenario, Problems> {
    scenario_and_space(root, source, path).map(|(scenario, _)| scenario)
}

/// [`scenario`], with its `explore:` space when it has one.
pub(crate) fn scenario_and_space(
    root: Option<&Node>,
    source: &str,
    path: &Path,
) -> Result<(Scenario, Option<Space>), Problems> {
    let mut walk = Walk {
        r: Reader::new(source, home),
        folder: folder(path),
        sinks: SinkNames::default(),
        links: Default::default(),
        compose: None,
        explore: None,
    };
    let scenario = walk.scenario(root, path);
    match scenario {
        Some(scenario) if walk.r.problems.is_empty() => Ok((scenario, walk.explore.take())),
        _ => {
            assert!(!walk.r.problems.is_empty(), "a part was rejected without saying why");
            Err(walk.r.problems)
        }
    }
}

/// Walk a policy file (`firedrill gate --policy`): its `maintenance` section. The other keys of a
/// scenario may sit beside it (a scenario file is a policy file too) and are not read.
pub(crate) fn policy(root: Option<&Node>, source: &str, path: &Path) -> Result<Policy, Problems> {
    let mut walk = Walk {
        r: Reader::new(source, home),
        folder: folder(path),
        sinks: SinkNames::default(),
        links: Default::default(),
        compose: None,
        explore: None,
    };
    let policy = root.and_then(|root| {
        let at = walk.r.head(root);
        let fields = walk.r.fields(
            root,
            at,
            "the policy file",
            "a mapping with `maintenance`",
            &keys::TOP,
        )?;
        let node = walk.r.require(&fields, "maintenance")?;
        walk.maintenance(node)
    });
    if root.is_none() {
        walk.r
            .error(Span::default(), "the policy file is empty", "nothing here")
            .help("a policy file needs a `maintenance` section");
    }
    match policy {
        Some(policy) if walk.r.problems.is_empty() => Ok(policy),
        _ => {
            assert!(!walk.r.problems.is_empty(), "a policy was rejected without saying why");
            Err(walk.r.problems)
        }
    }
}

/// Walk a notices file (`firedrill gate --notices`): a list of `{ sent, channels }`.
pub(crate) fn notices(
    root: Option<&Node>,
    source: &str,
    path: &Path,
) -> Result<Vec<SentNotice>, Problems> {
    let mut walk = Walk {
        r: Reader::new(source, home),
        folder: folder(path),
        sinks: SinkNames::default(),
        links: Default::default(),
        compose: None,
        explore: None,
    };
    let notices = match root {
        Some(root) => walk.notices(root),
        None => Some(Vec::new()),
    };
    match notices {
        Some(notices) if walk.r.problems.is_empty() => Ok(notices),
        _ => {
            assert!(!walk.r.problems.is_empty(), "notices were rejected without saying why");
            Err(walk.r.problems)
        }
    }
}

impl<'s> Walk<'s> {
    /// A walk of a file that is not a scenario (the responders file).
    pub(super) fn bare(r: Reader<'s>, path: &Path) -> Self {
        Walk {
            r,
            folder: folder(path),
            sinks: SinkNames::default(),
            links: Default::default(),
            compose: None,
            explore: None,
        }
    }
}

/// The value under `key` of a mapping node, without reporting anything.
fn child<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    let Value::Map(entries) = &node.value else { return None };
    entries.iter().find(|e| e.key.scalar().is_some_and(|k| k.text == key)).map(|e| &e.value)
}

/// Where a key belongs, when that is unambiguous: a hint for keys at the wrong indentation.
fn home(key: &str) -> Option<&'static str> {
    if keys::TOP.has(key) {
        Some("the top level of the scenario")
    } else if key == "services" {
        Some("`stack`")
    } else if keys::SERVICE.has(key) {
        Some("a service")
    } else if keys::BUILD.has(key) {
        Some("`build`")
    } else if key == "interval" {
        Some("`health`")
    } else if keys::TRAFFIC.has(key) && key != "http" && key != "timeout" {
        Some("a `traffic` entry")
    } else if keys::UPGRADE.has(key) && !["service", "image", "build"].contains(&key) {
        Some("an `upgrade` step")
    } else if keys::MAINTENANCE.has(key) && key != "windows" && key != "blackouts" {
        Some("`maintenance`")
    } else if keys::CALENDAR.has(key) {
        Some("`calendar`")
    } else if keys::STEP.choices().contains(&key) {
        Some("a step")
    } else if keys::EXPECT.choices().contains(&key) {
        Some("an `expect` entry")
    } else {
        None
    }
}

/// The folder relative paths in the scenario start from.
fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The walk: reads nodes, records problems.
pub(super) struct Walk<'s> {
    pub(super) r: Reader<'s>,
    pub(super) folder: PathBuf,
    /// The names declared in `sinks`, for steps that name one.
    pub(super) sinks: SinkNames,
    /// The declared links, for link fault steps (filled once `stack.links` is read).
    pub(super) links: super::links::LinkTable,
    /// `stack.compose`: where the services came from (set by `validate/compose.rs`).
    pub(super) compose: Option<crate::scenario::model::ComposeOrigin>,
    /// `explore:`, once read (`validate/explore.rs`).
    pub(super) explore: Option<Space>,
}

/// What the rest of the scenario needs to know about a service, even when parts of it are wrong.
pub(super) struct ServiceInfo {
    pub(super) key: Span,
    /// `None` when `ports` had mistakes: port checks against it would only add noise.
    pub(super) ports: Option<Vec<u16>>,
    pub(super) has_health: bool,
    /// `health.interval` (default 500ms), when `health` is present and its interval readable.
    pub(super) health_interval: Option<Duration>,
    /// Whether the service declares a `backup` / `restore` hook (even a mistaken one).
    pub(super) has_backup: bool,
    /// See `has_backup`.
    pub(super) has_restore: bool,
    pub(super) depends_on: Vec<(String, Span)>,
    pub(super) env_refs: Vec<(Reference, Span)>,
    pub(super) health_port: Option<(u16, Span)>,
    /// `replicas` (1 when absent or mistaken).
    pub(super) replicas: u32,
    pub(super) service: Option<Service>,
}

/// The declared services by name, in declaration order.
pub(super) struct Services(pub(super) IndexMap<String, ServiceInfo>);

/// A step before names are settled.
pub(super) struct StepDraft {
    pub(super) explicit: Option<(String, Span)>,
    pub(super) generated: Option<String>,
    pub(super) action: Option<Action>,
    /// `None` when the step's action could not be told.
    pub(super) kind: Option<StepKind>,
    /// The action's key and where it is written (for rules across a `parallel` group).
    pub(super) action_key: Option<(ActionKind, Span)>,
    /// `(kind, service)` of a fault step, as written.
    pub(super) fault: Option<(&'static str, String)>,
    /// A `parallel` group's children (its `action` is assembled once names are settled).
    pub(super) children: Option<Vec<StepDraft>>,
    /// `delay` of a child of a `parallel` group (zero when absent; `None` when invalid).
    pub(super) delay: Option<Duration>,
    /// `at` of a child of a `parallel` group: `Ok(None)` when absent, `Err(())` when invalid
    /// (reported); the sibling it names is checked once names are settled.
    pub(super) at: Result<Option<AtDraft>, ()>,
}

/// A `parallel` child's `at`, as written.
pub(super) struct AtDraft {
    /// The sibling's name and where it is written.
    pub(super) step: (String, Span),
    /// The moment and where it is written (the `step` value when `event` is absent).
    pub(super) event: (StepMoment, Span),
}

/// What `expect` needs to know about a step, even when its action has mistakes.
#[derive(Debug, Clone)]
pub(super) enum StepKind {
    /// A `probe` step.
    Probe,
    /// An `upgrade` step.
    Upgrade(UpgradeInfo),
    /// A `human` step (gameday).
    Human,
    /// Anything else.
    Other,
}

/// What is known about an `upgrade` step; `None` where that part had mistakes.
#[derive(Debug, Clone, Default)]
pub(super) struct UpgradeInfo {
    /// The upgraded service, as written.
    pub(super) service: Option<String>,
    /// `on-failure`, default `rollback`.
    pub(super) on_failure: Option<OnFailure>,
    /// Whether it has a `version:` endpoint (even a mistaken one).
    pub(super) has_version: Option<bool>,
}

/// A named item (step, probe, expectation) before names are settled.
pub(super) struct Naming {
    pub(super) explicit: Option<(String, Span)>,
    pub(super) generated: Option<String>,
}

/// The settled step names, for references from `expect`.
pub(super) struct StepTable {
    /// Name → what kind of step it is (`None` when its action could not be told).
    pub(super) names: IndexMap<String, Option<StepKind>>,
    /// Some step could not be named, so "unknown step" may be a consequence of another mistake.
    pub(super) incomplete: bool,
}

impl Walk<'_> {
    fn scenario(&mut self, root: Option<&Node>, path: &Path) -> Option<Scenario> {
        let Some(root) = root else {
            self.r
                .error(Span::default(), "the scenario is empty", "nothing here")
                .help("a scenario needs at least `name` and `stack.services`");
            return None;
        };
        let at = self.r.head(root);
        let fields =
            self.r.fields(root, at, "the scenario", "a mapping of scenario keys", &keys::TOP)?;

        let name = self.r.require(&fields, "name").and_then(|node| self.scenario_name(node));
        let description =
            fields.get("description").and_then(|node| self.r.text(node, "a description"));
        self.sinks = SinkNames::read(fields.get("sinks"));
        let sinks = match fields.get("sinks") {
            Some(node) => self.sinks(node),
            None => Some(IndexMap::new()),
        };
        let stack_node = self.r.require(&fields, "stack");
        let services = stack_node.and_then(|node| {
            let key = fields.entry("stack").map(|entry| entry.key.span);
            self.stack(node, key)
        });
        let links = match (stack_node.and_then(|node| child(node, "links")), &services) {
            (None, _) => Some(IndexMap::new()),
            (Some(node), Some(services)) => self.links(node, services),
            (Some(_), None) => None,
        };
        if let (Some(services), Some(links), Some(sinks)) = (&services, &links, &sinks) {
            self.check_endpoint_refs(services, links, sinks);
        }
        match &links {
            Some(links) => {
                self.links.names = links
                    .iter()
                    .map(|(name, link)| (name.clone(), link.as_ref().map(|l| l.http)))
                    .collect();
                self.links.incomplete = stack_node
                    .and_then(|node| child(node, "links"))
                    .is_some_and(|node| match &node.value {
                        Value::Map(entries) => entries.len() != links.len(),
                        _ => true,
                    });
            }
            None => self.links.incomplete = true,
        }
        // Complete only when every link was read without a mistake.
        let links = links.and_then(|links| {
            links
                .into_iter()
                .map(|(name, link)| Some((name, link?)))
                .collect::<Option<IndexMap<_, _>>>()
        });

        let empty = Services(IndexMap::new());
        let known = services.as_ref().unwrap_or(&empty);
        let steady = fields.get("steady-state").map(|node| self.steady_state(node, known));
        let (traffic, traffic_table) = match fields.get("traffic") {
            Some(node) => self.traffic(node, known),
            None => (Some(IndexMap::new()), TrafficTable::default()),
        };
        let steps = fields.get("steps").map(|node| self.steps(node, known, &traffic_table));
        let (steps, table) = match steps {
            Some((steps, table)) => (steps, table),
            None => (Some(Vec::new()), StepTable { names: IndexMap::new(), incomplete: false }),
        };
        let has_steady = match &steady {
            None => Some(false),
            Some(Some(probes)) => Some(!probes.is_empty()),
            Some(None) => None,
        };
        let expect = match fields.get("expect") {
            Some(node) => {
                self.expectations(node, known, &traffic_table, &table, sinks.as_ref(), has_steady)
            }
            None => Some(Vec::new()),
        };

        if let Some(entry) = fields.entry("explore") {
            self.explore = self.explore(&entry.value, entry.key.span, known, steps.as_deref());
        }
        let maintenance = fields.get("maintenance").map(|node| self.maintenance(node));
        let calendar = fields.get("calendar").map(|node| self.calendar(node));
        let backend = fields.get("backend").map(|node| self.backend(node));
        if let (Some(entry), None) = (fields.entry("maintenance"), &calendar) {
            // Without a calendar the steps have no calendar time: the policy would go unchecked.
            self.r
                .error(
                    entry.key.span,
                    "`maintenance:` without `calendar:` would never be checked",
                    "no calendar",
                )
                .help(
                    "add `calendar: { start: 2026-12-05T21:50 Europe/Berlin, scale: 1s = 10m }` (the \
                     calendar time the rehearsal stands for), or keep the policy in its own file for \
                     `firedrill gate`",
                );
        }
        if let (Some(Some(policy)), Some(Some(calendar)), Some(steps)) =
            (&maintenance, &calendar, &steps)
        {
            let spans: Vec<Span> = match fields.get("steps").map(|node| &node.value) {
                Some(Value::Seq(items)) => items.iter().map(|item| self.r.head(item)).collect(),
                _ => Vec::new(),
            };
            let calendar_span =
                fields.entry("calendar").map(|entry| entry.key.span).unwrap_or_default();
            self.place_upgrades(policy, calendar, steps, &spans, calendar_span);
            if let (Some(rule), Some(expect)) = (&policy.notice, &expect) {
                let expect_spans: Vec<Span> = match fields.get("expect").map(|node| &node.value) {
                    Some(Value::Seq(items)) => items.iter().map(|item| self.r.head(item)).collect(),
                    _ => Vec::new(),
                };
                let upgrades = crate::scenario::model::upgrade_steps(steps);
                self.check_notices(rule, calendar, &upgrades, expect, &expect_spans, calendar_span);
            }
        }

        let services = services?;
        let mut stack = IndexMap::with_capacity(services.0.len());
        for (name, info) in services.0 {
            stack.insert(name, info.service?);
        }
        let mut scenario = Scenario {
            name: name?,
            description,
            source: path.to_path_buf(),
            stack: Stack { services: stack, links: links?, compose: self.compose.take() },
            steady_state: steady.unwrap_or(Some(Vec::new()))?,
            traffic: traffic?,
            steps: steps?,
            expect: expect?,
            sinks: sinks?,
            maintenance: match maintenance {
                None => None,
                Some(policy) => Some(policy?),
            },
            calendar: match calendar {
                None => None,
                Some(calendar) => Some(calendar?),
            },
            backend: match backend {
                None => None,
                Some(backend) => Some(backend?),
            },
        };
        scenario.mark_clock_skewed();
        Some(scenario)
    }

    /// `backend: docker | swarm`.
    fn backend(&mut self, node: &Node) -> Option<BackendChoice> {
        let text = self.r.text(node, "`docker` or `swarm`")?;
        if let Ok(backend) = text.parse() {
            return Some(backend);
        }
        let names = BackendChoice::NAMES.iter().copied();
        let hint = match crate::scenario::suggest::closest(&text, names.clone()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("use {}", crate::scenario::suggest::list(names)),
        };
        self.r.error(node.span, format!("unknown backend `{text}`"), "unknown backend").help(hint);
        None
    }

    fn scenario_name(&mut self, node: &Node) -> Option<String> {
        let name = self.r.text(node, "a scenario name")?;
        if !is_name(&name, &['-']) {
            self.r
                .error(node.span, format!("invalid scenario name `{name}`"), "not a valid name")
                .help(
                    "use lowercase letters, digits and `-`, starting with a letter or digit \
                 (it becomes a Docker label)",
                );
            return None;
        }
        Some(name)
    }
}

/// `[a-z0-9]` then `[a-z0-9]` or one of `extra`.
pub(super) fn is_name(text: &str, extra: &[char]) -> bool {
    let mut chars = text.chars();
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    chars.next().is_some_and(lower) && chars.all(|c| lower(c) || extra.contains(&c))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::scenario::model::{ContainerOp, HealthKind, ImageSource};

    const STACK: &str = "
stack:
  services:
    db:
      image: postgres:15
      ports: [5432]
      health: { exec: [pg_isready] }
    billing:
      image: firedrill-demo/billing:1.0
      ports: [8080]
      health: { http: { port: 8080 } }
      depends-on: [db]
";

    fn parse(rest: &str) -> Result<Scenario, Vec<String>> {
        let source = format!("name: t\n{STACK}{rest}");
        crate::scenario::parse(&source, Path::new("t.yaml"))
            .map_err(|invalid| invalid.diagnostics.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn fills_defaults() {
        let scenario = parse(
            "steady-state:
  - tcp: { service: db, port: 5432, connect-is-enough: true }
steps:
  - kill: { service: db }
  - stop: { service: db }
",
        )
        .unwrap();
        let db = &scenario.stack.services["db"];
        assert_eq!(db.startup_timeout, Duration::from_secs(60));
        let health = db.health.as_ref().unwrap();
        assert_eq!(
            (health.interval, health.timeout),
            (Duration::from_millis(500), Duration::from_secs(2))
        );
        let billing = &scenario.stack.services["billing"].health.as_ref().unwrap().kind;
        assert_eq!(billing, &HealthKind::Http { port: 8080, path: "/".into(), status: 200 });
        assert_eq!(scenario.steady_state[0].timeout, Duration::from_secs(2));
        let ops: Vec<_> = scenario
            .steps
            .iter()
            .map(|s| match &s.action {
                Action::Container(action) => action.op.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            ops,
            [
                ContainerOp::Kill { signal: "SIGKILL".into() },
                ContainerOp::Stop { timeout: Duration::from_secs(10) }
            ]
        );
        assert_eq!(scenario.source, Path::new("t.yaml"));
        assert_eq!(
            scenario.stack.start_order().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["db", "billing"]
        );
    }

    #[test]
    fn generates_unique_names() {
        let scenario = parse(
            "steady-state:
  - http: { service: billing, port: 8080, path: /health }
  - tcp: { service: db, port: 5432, connect-is-enough: true }
  - http: { service: billing, port: 8080, method: post, path: /invoices }
steps:
  - kill: { service: billing }
  - name: \"kill billing (2)\"
    wait: 1s
  - kill: { service: billing, signal: 15 }
  - kill: { service: billing, signal: term }
  - wait: 1500ms
  - probe: { tcp: { service: db, port: 5432, connect-is-enough: true } }
expect:
  - healthy-within: { service: billing, after: kill billing, within: 10s }
  - healthy-throughout: { service: db, step: wait 1500ms }
  - unhealthy-during: { service: billing, step: \"kill billing (3)\" }
  - probe-passed: probe tcp db:5432
  - steady-state: before
",
        )
        .unwrap();
        let probes: Vec<_> = scenario.steady_state.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            probes,
            ["http billing:8080/health", "tcp db:5432", "http POST billing:8080/invoices"]
        );
        let steps: Vec<_> = scenario.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            steps,
            [
                "kill billing",
                "kill billing (2)",
                "kill billing (3)",
                "kill billing (4)",
                "wait 1500ms",
                "probe tcp db:5432"
            ]
        );
        let Action::Container(third) = &scenario.steps[2].action else { panic!() };
        assert_eq!(third.op, ContainerOp::Kill { signal: "SIGTERM".into() });
        let expect: Vec<_> = scenario.expect.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            expect,
            [
                "healthy-within billing after \"kill billing\"",
                "healthy-throughout db during \"wait 1500ms\"",
                "unhealthy-during billing during \"kill billing (3)\"",
                "probe-passed \"probe tcp db:5432\"",
                "steady-state before",
            ]
        );
    }

    #[test]
    fn a_named_probe_step_names_its_probe() {
        let scenario = parse(
            "steps:
  - name: db answers
    probe: { tcp: { service: db, port: 5432, connect-is-enough: true }, timeout: 1s }
",
        )
        .unwrap();
        let Action::Probe(probe) = &scenario.steps[0].action else { panic!() };
        assert_eq!((probe.name.as_str(), probe.timeout), ("db answers", Duration::from_secs(1)));
    }

    #[test]
    fn backend_is_read_and_a_misspelling_is_placed() {
        assert_eq!(parse("").unwrap().backend, None);
        assert_eq!(parse("backend: swarm\n").unwrap().backend, Some(BackendChoice::Swarm));
        assert_eq!(parse("backend: docker\n").unwrap().backend, Some(BackendChoice::Docker));
        let problems = parse("backend: swarn\n").unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("unknown backend `swarn`"), "{problems:?}");
    }

    #[test]
    fn for_is_kept_on_faults() {
        let scenario = parse("steps:\n  - pause: { service: db, for: 1m30s }\n").unwrap();
        let Action::Container(action) = &scenario.steps[0].action else { panic!() };
        assert_eq!(action.undo_after, Some(Duration::from_secs(90)));
        assert_eq!(scenario.steps[0].name, "pause db");
    }

    #[test]
    fn templates_resolve_to_references() {
        let scenario = crate::scenario::parse(
            "name: t
stack:
  services:
    db: { image: p, ports: [5432] }
    app:
      image: a
      env: { URL: \"{{services.db.addr}}/{{ run.id }}\", N: 1.0 }
",
            Path::new("t.yaml"),
        )
        .unwrap();
        let env = &scenario.stack.services["app"].env;
        assert_eq!(env["N"], crate::scenario::model::Template::literal("1.0"));
        assert_eq!(env["URL"].parts.len(), 3);
    }

    #[test]
    fn reports_every_mistake_without_cascades() {
        let errors = parse(
            "steps:
  - kill: { service: biling }
  - stop: { service: db, timeout: soon }
expect:
  - healthy-within: { service: billing, after: kill biling, within: 10s }
  - unhealthy-during: { service: billing, step: stop db }
",
        )
        .unwrap_err();
        // `kill biling` still names the first step, and `stop db` the second, so neither reference
        // is reported as unknown.
        assert_eq!(errors, ["unknown service `biling`", "invalid duration `soon`"]);
    }

    #[test]
    fn unnamed_broken_steps_silence_unknown_step_errors() {
        let errors =
            parse("steps:\n  - wait: soon\nexpect:\n  - probe-passed: wait 5s\n").unwrap_err();
        assert_eq!(errors, ["invalid duration `soon`"]);
    }

    #[test]
    fn probe_name_belongs_on_the_step() {
        let errors = parse("steps:\n  - probe: { name: x, tcp: { service: db, port: 5432, connect-is-enough: true } }\n")
            .unwrap_err();
        assert_eq!(errors, ["unknown key `name` in `probe`"]);
    }

    #[test]
    fn a_bad_ports_list_does_not_flag_its_probes() {
        let source = "name: t
stack:
  services:
    db: { image: p, ports: [x] }
steady-state:
  - tcp: { service: db, port: 1, connect-is-enough: true }
";
        let invalid = crate::scenario::parse(source, Path::new("t.yaml")).unwrap_err();
        let messages: Vec<_> = invalid.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["expected a port number, found a string"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever the edit, the answer is a scenario or diagnostics inside the text, never a
        /// panic.
        #[test]
        fn random_edits_never_panic(
            edits in proptest::collection::vec(
                (0usize..2000, 0usize..3, proptest::char::any()),
                1..6,
            )
        ) {
            let mut text: Vec<char> = format!(
                "name: t\n{STACK}steady-state:\n  - tcp: {{ service: db, port: 5432 }}\nsteps:\n  \
                 - kill: {{ service: billing, for: 2s }}\n  - wait: 1s\nexpect:\n  \
                 - healthy-within: {{ service: billing, after: kill billing, within: 5s }}\n"
            )
            .chars()
            .collect();
            for (at, kind, c) in edits {
                let at = at % (text.len() + 1);
                match kind {
                    0 => text.insert(at, c),
                    1 if at < text.len() => { text.remove(at); }
                    _ if at < text.len() => text[at] = c,
                    _ => {}
                }
            }
            let source: String = text.into_iter().collect();
            if let Err(invalid) = crate::scenario::parse(&source, Path::new("t.yaml")) {
                proptest::prop_assert!(!invalid.diagnostics.is_empty());
                let lines = source.split('\n').count();
                for d in &invalid.diagnostics {
                    let inside = d.line >= 1 && d.line <= lines && d.column >= 1;
                    proptest::prop_assert!(inside, "{d:?}");
                }
            }
        }
    }

    #[test]
    fn build_contexts_become_absolute() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("img")).unwrap();
        fs_err::write(dir.path().join("img/Dockerfile"), "FROM scratch\n").unwrap();
        let path = dir.path().join("s.yaml");
        let source = "name: t
stack:
  services:
    db:
      build: { context: img, tag: t:1, args: { V: 1.10 }, prepare: [make] }
";
        let scenario = crate::scenario::parse(source, &path).unwrap();
        let ImageSource::Build(build) = &scenario.stack.services["db"].image else { panic!() };
        assert!(build.context.is_absolute());
        assert_eq!(build.context, fs_err::canonicalize(dir.path().join("img")).unwrap());
        assert_eq!((build.dockerfile.as_str(), build.args["V"].as_str()), ("Dockerfile", "1.10"));
        assert_eq!(build.prepare.as_deref(), Some(&["make".to_owned()][..]));

        let missing = "name: t
stack:
  services:
    db:
      build: { context: img, tag: t:1, dockerfile: Other }
";
        let invalid = crate::scenario::parse(missing, &path).unwrap_err();
        assert_eq!(invalid.diagnostics[0].message, "no `Other` in the build context");
    }
}
