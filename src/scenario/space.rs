//! The chaos space of a scenario's `explore:` section, and turning one concrete fault schedule
//! drawn from it back into an ordinary scenario's text (no `explore:`; the faults as one
//! `parallel` group), which `firedrill validate` and `run` read like any other file.
//!
//! Pure: reads no clock, no Docker; the only file-system use is making build contexts and compose
//! files absolute, so the written scenario runs from any folder.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::model::{ActionKind, StepMoment};
use super::tree::{self, Node, Value};

/// `explore:` — which faults `firedrill explore` may inject, where and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Space {
    /// `at`: the top-level step the faults run alongside (its index in `steps`); `None`: the
    /// faults run after the last step.
    pub at: Option<(String, usize)>,
    /// `from`: with `at`, the moment of that step the window counts from (default `started`: the
    /// group's start). Any other moment makes every fault an anchored child (`at: { step, event }`),
    /// so a replay starts it at the same point of the step, however long the step took to get there.
    pub from: StepMoment,
    /// `window`: earliest and latest start of a fault, from the start of the faults' group (or
    /// from `from`).
    #[serde(with = "pair_serde")]
    pub window: (Duration, Duration),
    /// `min-faults` (default 1).
    pub min_faults: usize,
    /// `max-faults` (default 2).
    pub max_faults: usize,
    /// `resolution`: starts and durations are whole multiples of it (default 1s).
    #[serde(with = "super::model::duration_serde")]
    pub resolution: Duration,
    /// `faults`: the kinds that may be injected, in the order written (the first is the
    /// "simplest": shrinking moves towards it).
    pub faults: Vec<FaultChoice>,
    /// `reuse-stack`: keep the stack up between cases (default false).
    pub reuse_stack: bool,
}

/// One entry of `explore.faults`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultChoice {
    /// The step kind (`pause`, `latency`, `sink-outage`, …).
    #[serde(serialize_with = "kind_serde")]
    pub kind: ActionKind,
    /// The services, links or sinks it may hit, in the order written.
    pub targets: Vec<String>,
    /// `for`: shortest and longest; `None` for `restart`, which has no duration.
    #[serde(with = "option_pair_serde")]
    pub duration: Option<(Duration, Duration)>,
    /// Other keys of the entry (`signal`, `latency`, `toxicity`, `status`), copied verbatim
    /// (as written in the file) into each generated step.
    pub params: Vec<(String, String)>,
}

impl FaultChoice {
    /// The step key that names the target: `service`, `link` or `sink`.
    pub fn target_key(&self) -> &'static str {
        target_key(self.kind)
    }
}

/// The step key that names a fault's target.
pub fn target_key(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::SinkOutage => "sink",
        kind if kind.family() == super::model::StepFamily::LinkFault => "link",
        _ => "service",
    }
}

/// One fault of a concrete schedule, placed on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PlacedFault {
    /// The step kind.
    #[serde(serialize_with = "kind_serde")]
    pub kind: ActionKind,
    /// The service, link or sink.
    pub target: String,
    /// When it starts, from the start of the faults' group.
    #[serde(with = "super::model::duration_serde")]
    pub start: Duration,
    /// How long it lasts (`None` for `restart`).
    #[serde(with = "option_duration_serde")]
    pub duration: Option<Duration>,
    /// Extra keys copied into the step, verbatim.
    pub params: Vec<(String, String)>,
}

impl PartialOrd for ActionKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ActionKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(other.key())
    }
}

impl PlacedFault {
    /// `pause db 3s+2s`: kind, target, start and duration, for logs and the report page.
    pub fn label(&self) -> String {
        let mut label = format!("{} {} @{}", self.kind.key(), self.target, fmt(self.start));
        if let Some(duration) = self.duration {
            label.push_str(&format!(" for {}", fmt(duration)));
        }
        label
    }

    /// The step's YAML (one flow mapping), without its name and delay.
    fn action_yaml(&self) -> String {
        let mut fields = vec![format!("{}: {}", target_key(self.kind), quote(&self.target))];
        if let Some(duration) = self.duration {
            fields.push(format!("for: {}", fmt(duration)));
        }
        for (key, value) in &self.params {
            fields.push(format!("{key}: {value}"));
        }
        format!("{}: {{ {} }}", self.kind.key(), fields.join(", "))
    }
}

/// The name of the `parallel` group a schedule becomes.
pub const GROUP_NAME: &str = "explored faults";

/// Why a schedule could not be written into the scenario's text.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The text no longer parses (it did when the space was read).
    #[error("the scenario does not parse")]
    Parse,
    /// `steps:` is a flow list (`[ ... ]`): the group can only be added to a block list.
    #[error("`steps` must be a block list (`- ...` lines) for `firedrill explore`")]
    FlowSteps,
}

/// `source` (a scenario with an `explore:` section, read from a file in `folder`) with the
/// section removed, relative build contexts and compose files made absolute, and `faults` added
/// as one `parallel` group named [`GROUP_NAME`] (each fault a child with its `delay`), alongside
/// the `at` step or after the last step.
pub fn render_schedule(
    source: &str,
    folder: &Path,
    space: &Space,
    faults: &[PlacedFault],
) -> Result<String, RenderError> {
    let root = tree::parse(source).map_err(|_| RenderError::Parse)?.ok_or(RenderError::Parse)?;
    let Value::Map(top) = &root.value else { return Err(RenderError::Parse) };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    absolute_paths(&root, folder, false, &mut edits);

    // The `explore` entry: from its key to the next top-level key (or the end).
    let mut starts: Vec<usize> = top.iter().map(|entry| entry.key.span.start).collect();
    starts.sort_unstable();
    if let Some(entry) = top.iter().find(|e| e.key.scalar().is_some_and(|k| k.text == "explore")) {
        let start = line_start(source, entry.key.span.start);
        let end = starts
            .iter()
            .copied()
            .find(|&s| s > entry.key.span.start)
            .map(|s| line_start(source, s))
            .unwrap_or(source.len());
        edits.retain(|(s, _, _)| *s < start || *s >= end);
        edits.push((start, end, String::new()));
    }

    let steps = top.iter().find(|e| e.key.scalar().is_some_and(|k| k.text == "steps"));
    match steps.map(|entry| &entry.value) {
        None => {
            let mut text = String::new();
            if !source.ends_with('\n') {
                text.push('\n');
            }
            text.push_str("steps:\n  - ");
            text.push_str(&group(2 + 2, None, None, faults));
            text.push('\n');
            edits.push((source.len(), source.len(), text));
        }
        Some(node) => {
            let Value::Seq(items) = &node.value else { return Err(RenderError::FlowSteps) };
            if source[node.span.start..].starts_with('[') {
                return Err(RenderError::FlowSteps);
            }
            match (&space.at, items.last()) {
                (Some((_, index)), _) => {
                    let item = items.get(*index).ok_or(RenderError::Parse)?;
                    let column = column(source, item.span.start);
                    let end = content_end(source, item);
                    // The step moves with its own paths made absolute (an upgrade's `build`).
                    let mut inner: Vec<&(usize, usize, String)> = edits
                        .iter()
                        .filter(|(s, e, _)| *s >= item.span.start && *e <= end)
                        .collect();
                    inner.sort_by_key(|(s, _, _)| std::cmp::Reverse(*s));
                    let mut text = source[item.span.start..end].to_owned();
                    for (s, e, replacement) in inner {
                        text.replace_range(s - item.span.start..e - item.span.start, replacement);
                    }
                    let anchor = match (&space.at, space.from) {
                        (_, StepMoment::Started) | (None, _) => None,
                        (Some((name, _)), from) => Some((name.as_str(), from)),
                    };
                    let replacement = group(column, Some(&text), anchor, faults);
                    edits.retain(|(s, _, _)| *s < item.span.start || *s >= end);
                    edits.push((item.span.start, end, replacement));
                }
                (None, Some(last)) => {
                    let column = column(source, last.span.start);
                    let dash = " ".repeat(column.saturating_sub(2));
                    let text = format!("\n{dash}- {}", group(column, None, None, faults));
                    let end = content_end(source, last);
                    edits.push((end, end, text));
                }
                (None, None) => return Err(RenderError::FlowSteps),
            }
        }
    }

    edits.sort_by_key(|(start, end, _)| (std::cmp::Reverse(*start), std::cmp::Reverse(*end)));
    let mut text = source.to_owned();
    for (start, end, replacement) in edits {
        text.replace_range(start..end, &replacement);
    }
    Ok(text)
}

/// The group as a block mapping whose first line continues where an item's `- ` left off, its
/// other lines indented to `column`; `alongside` is the `at` step's text, moved into the group;
/// `anchor` (its name and the space's `from`) makes each fault start at that moment of it.
fn group(
    column: usize,
    alongside: Option<&str>,
    anchor: Option<(&str, StepMoment)>,
    faults: &[PlacedFault],
) -> String {
    let pad = " ".repeat(column);
    let mut text = format!("name: {}\n{pad}parallel:", quote(GROUP_NAME));
    if let Some(step) = alongside {
        // The step's continuation lines move 4 columns right, with the step.
        let moved = step.replace('\n', "\n    ");
        text.push_str(&format!("\n{pad}  - {moved}"));
    }
    for (i, fault) in faults.iter().enumerate() {
        let name = format!("fault {}: {}", i + 1, fault.label());
        text.push_str(&format!("\n{pad}  - name: {}", quote(&name)));
        if let Some((step, moment)) = anchor {
            text.push_str(&format!(
                "\n{pad}    at: {{ step: {}, event: {} }}",
                quote(step),
                moment.name()
            ));
        }
        if !fault.start.is_zero() {
            text.push_str(&format!("\n{pad}    delay: {}", fmt(fault.start)));
        }
        text.push_str(&format!("\n{pad}    {}", fault.action_yaml()));
    }
    if faults.is_empty() && alongside.is_none() {
        // A group needs a child: an empty schedule waits for nothing.
        text.push_str(&format!("\n{pad}  - mark: no faults"));
    }
    text
}

/// Edits that make every relative `context:` and `stack.compose` path absolute.
fn absolute_paths(
    node: &Node,
    folder: &Path,
    in_stack: bool,
    edits: &mut Vec<(usize, usize, String)>,
) {
    match &node.value {
        Value::Map(entries) => {
            for entry in entries {
                let key = entry.key.scalar().map(|k| k.text.as_str()).unwrap_or_default();
                let path_key = key == "context" || (in_stack && key == "compose");
                if path_key {
                    let scalars: Vec<&Node> = match &entry.value.value {
                        Value::Seq(items) => items.iter().collect(),
                        Value::Scalar(_) => vec![&entry.value],
                        Value::Map(_) => Vec::new(),
                    };
                    for scalar in scalars {
                        let Some(text) = scalar.scalar().map(|s| &s.text) else { continue };
                        if Path::new(text).is_absolute() {
                            continue;
                        }
                        let joined = folder.join(text);
                        let path = fs_err::canonicalize(&joined).unwrap_or(joined);
                        let quoted = quote(&path.display().to_string());
                        edits.push((scalar.span.start, scalar.span.end, quoted));
                    }
                } else {
                    absolute_paths(&entry.value, folder, key == "stack", edits);
                }
            }
        }
        Value::Seq(items) => {
            for item in items {
                absolute_paths(item, folder, false, edits);
            }
        }
        Value::Scalar(_) => {}
    }
}

/// Where a node's text ends, without the line breaks and indentation a block node's span takes
/// up to the next token.
fn content_end(source: &str, node: &Node) -> usize {
    node.span.start + source[node.span.start..node.span.end].trim_end().len()
}

fn line_start(source: &str, at: usize) -> usize {
    source[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn column(source: &str, at: usize) -> usize {
    at - line_start(source, at)
}

/// A double-quoted YAML scalar (JSON's escapes are YAML's).
fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

fn fmt(duration: Duration) -> String {
    super::duration::format(duration)
}

fn kind_serde<S: serde::Serializer>(kind: &ActionKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.key())
}

mod pair_serde {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        (low, high): &(Duration, Duration),
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(2))?;
        seq.serialize_element(&super::fmt(*low))?;
        seq.serialize_element(&super::fmt(*high))?;
        seq.end()
    }
}

mod option_pair_serde {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        pair: &Option<(Duration, Duration)>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match pair {
            Some(pair) => super::pair_serde::serialize(pair, serializer),
            None => serializer.serialize_none(),
        }
    }
}

mod option_duration_serde {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_str(&super::fmt(*duration)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::scenario::model::Action;

    const SCENARIO: &str = "name: t
stack:
  services:
    db:
      image: postgres:15
      ports: [5432]
      health: { exec: [pg_isready] }
    web:
      image: nginx:1
      ports: [80]
      health: { http: { port: 80 } }
      depends-on: [db]
  links:
    web-db: { from: web, to: db, port: 5432 }
steps:
  - wait: 1s
  - name: release
    wait: 3s
  - wait: 1s
explore:
  at: release
  window: 0s..10s
  max-faults: 3
  faults:
    - pause: { services: [db, web], for: 1s..5s }
    - restart: { services: [web] }
    - latency: { links: [web-db], for: 2s, latency: 300ms }
expect:
  - healthy-within: { service: web, after: release, within: 5s }
";

    fn space(source: &str) -> Space {
        let (_, space) = crate::scenario::parse_with_space(source, Path::new("t.yaml"))
            .unwrap_or_else(|invalid| panic!("{}", crate::scenario::render(&invalid, false)));
        space.expect("an explore section")
    }

    fn fault(kind: ActionKind, target: &str, start: u64, duration: Option<u64>) -> PlacedFault {
        PlacedFault {
            kind,
            target: target.into(),
            start: Duration::from_secs(start),
            duration: duration.map(Duration::from_secs),
            params: if kind == ActionKind::Latency {
                vec![("latency".into(), "300ms".into())]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn the_space_is_read() {
        let space = space(SCENARIO);
        assert_eq!(space.at, Some(("release".into(), 1)));
        assert_eq!(space.window, (Duration::ZERO, Duration::from_secs(10)));
        assert_eq!((space.min_faults, space.max_faults), (1, 3));
        let kinds: Vec<_> = space.faults.iter().map(|f| (f.kind.key(), f.targets.len())).collect();
        assert_eq!(kinds, [("pause", 2), ("restart", 1), ("latency", 1)]);
        assert_eq!(space.faults[1].duration, None);
        assert_eq!(
            space.faults[2].duration,
            Some((Duration::from_secs(2), Duration::from_secs(2)))
        );
        assert_eq!(space.faults[2].params, [("latency".to_owned(), "300ms".to_owned())]);
    }

    #[test]
    fn a_schedule_becomes_a_scenario_that_validates_without_explore() {
        let space = space(SCENARIO);
        let faults = [
            fault(ActionKind::Pause, "db", 2, Some(3)),
            fault(ActionKind::Restart, "web", 4, None),
            fault(ActionKind::Latency, "web-db", 0, Some(2)),
        ];
        let text = render_schedule(SCENARIO, Path::new("."), &space, &faults).unwrap();
        assert!(!text.contains("explore:"), "{text}");
        let (scenario, again) = crate::scenario::parse_with_space(&text, Path::new("case.yaml"))
            .unwrap_or_else(|invalid| {
                panic!("{}\n{text}", crate::scenario::render(&invalid, false))
            });
        assert_eq!(again, None);
        let names: Vec<_> = scenario.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["wait 1s", GROUP_NAME, "wait 1s (2)"]);
        let Action::Parallel(children) = &scenario.steps[1].action else { panic!("{text}") };
        let got: Vec<_> = children
            .iter()
            .map(|c| (c.step.action.key(), c.delay, c.step.action.declared_duration()))
            .collect();
        assert_eq!(
            got,
            [
                ("wait", Duration::ZERO, Duration::from_secs(3)),
                ("pause", Duration::from_secs(2), Duration::from_secs(3)),
                ("restart", Duration::from_secs(4), Duration::ZERO),
                ("latency", Duration::ZERO, Duration::from_secs(2)),
            ]
        );
        // The release keeps its name, so `expect:` still finds it.
        assert_eq!(children[0].step.name, "release");
    }

    #[test]
    fn without_at_the_faults_run_after_the_last_step_and_paths_become_absolute() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("img")).unwrap();
        fs_err::write(dir.path().join("img/Dockerfile"), "FROM scratch\n").unwrap();
        let source = "name: t
stack:
  services:
    db:
      build: { context: img, tag: 't/db:1' }
steps:
  - wait: 1s
explore:
  window: 1s..2s
  faults:
    - kill: { services: [db], for: 1s..2s, signal: SIGTERM }
";
        let path = dir.path().join("s.yaml");
        let (_, space) = crate::scenario::parse_with_space(source, &path).unwrap();
        let space = space.unwrap();
        let mut kill = fault(ActionKind::Kill, "db", 1, Some(1));
        kill.params = space.faults[0].params.clone();
        let text = render_schedule(source, dir.path(), &space, &[kill]).unwrap();
        // Read from another folder: the build context is absolute now.
        let elsewhere = tempfile::tempdir().unwrap();
        let scenario = crate::scenario::parse(&text, &elsewhere.path().join("case.yaml"))
            .unwrap_or_else(|invalid| {
                panic!("{}\n{text}", crate::scenario::render(&invalid, false))
            });
        assert_eq!(scenario.steps.len(), 2, "{text}");
        assert!(text.contains("signal: SIGTERM"), "{text}");
        assert!(!text.contains("explore:"), "{text}");
    }

    #[test]
    fn the_at_step_moves_into_the_group_with_its_build_context_made_absolute() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("img")).unwrap();
        fs_err::write(dir.path().join("img/Dockerfile"), "FROM scratch\n").unwrap();
        let source = "name: t
stack:
  services:
    web:
      build: { context: img, tag: 't/web:1' }
      health: { http: { port: 80, path: / } }
      ports: [80]
steps:
  - name: release
    upgrade:
      service: web
      build: { context: img, tag: 't/web:2' }
explore:
  at: release
  window: 0s..2s
  faults:
    - pause: { services: [web], for: 1s }
";
        let path = dir.path().join("s.yaml");
        let (_, space) = crate::scenario::parse_with_space(source, &path).unwrap();
        let text = render_schedule(
            source,
            dir.path(),
            &space.unwrap(),
            &[fault(ActionKind::Pause, "web", 1, Some(1))],
        )
        .unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        crate::scenario::parse(&text, &elsewhere.path().join("case.yaml")).unwrap_or_else(
            |invalid| panic!("{}\n{text}", crate::scenario::render(&invalid, false)),
        );
        assert!(!text.contains("context: img"), "{text}");
    }

    const UPGRADE: &str = "name: t
stack:
  services:
    db: { image: 'postgres:15' }
    web: { image: 'web:1', ports: [80], health: { http: { port: 80 } } }
steps:
  - name: release
    upgrade: { service: web, image: 'web:2' }
explore:
  at: release
  from: healthy
  window: 0s..2s
  faults:
    - pause: { services: [db], for: 2s }
";

    #[test]
    fn with_from_each_fault_starts_at_that_moment_of_the_at_step() {
        let space = space(UPGRADE);
        assert_eq!(space.from, StepMoment::Healthy);
        let faults = [fault(ActionKind::Pause, "db", 1, Some(2))];
        let text = render_schedule(UPGRADE, Path::new("."), &space, &faults).unwrap();
        let scenario =
            crate::scenario::parse(&text, Path::new("case.yaml")).unwrap_or_else(|invalid| {
                panic!("{}\n{text}", crate::scenario::render(&invalid, false))
            });
        let Action::Parallel(children) = &scenario.steps[0].action else { panic!("{text}") };
        assert_eq!(children[0].at, None);
        let at = children[1].at.as_ref().expect(&text);
        assert_eq!((at.step.as_str(), at.event), ("release", StepMoment::Healthy));
        assert_eq!(children[1].delay, Duration::from_secs(1));
        // Without `from`, the faults count from the group's start, as before.
        let plain = UPGRADE.replace("  from: healthy\n", "");
        let plain_space = super::tests::space(&plain);
        let text = render_schedule(&plain, Path::new("."), &plain_space, &faults).unwrap();
        assert!(!text.contains("at: {"), "{text}");
    }

    #[test]
    fn from_mistakes_are_reported() {
        let errors = |source: String| -> Vec<String> {
            crate::scenario::parse_with_space(&source, Path::new("t.yaml"))
                .unwrap_err()
                .diagnostics
                .into_iter()
                .map(|d| d.message)
                .collect()
        };
        assert_eq!(errors(UPGRADE.replace("  at: release\n", "")), ["`from` without `at`"]);
        assert_eq!(
            errors(UPGRADE.replace("upgrade: { service: web, image: 'web:2' }", "wait: 3s")),
            ["`healthy` is not a moment of `release`"]
        );
        assert_eq!(
            errors(UPGRADE.replace("from: healthy", "from: later")),
            ["unknown step event `later`"]
        );
    }
}
