//! `explore:` — the chaos space `firedrill explore` draws schedules from: every mistake with its
//! place, and the spaces that can produce nothing (no fault kinds, no targets, an empty window or
//! `for` range, more faults asked for than distinct ones exist) or contradict themselves (two
//! entries of one kind on one target).

use std::time::Duration;

use super::walk::{Services, Walk};
use crate::scenario::keys;
use crate::scenario::model::{Action, ActionKind, Step, StepMoment};
use crate::scenario::space::{FaultChoice, Space};
use crate::scenario::suggest;
use crate::scenario::tree::{Node, ScalarKind};

impl Walk<'_> {
    /// Read `explore:`; `steps` are the scenario's top-level steps (`None` when they had
    /// mistakes: `at` is then not checked against them).
    pub(super) fn explore(
        &mut self,
        node: &Node,
        key: crate::scenario::report::Span,
        services: &Services,
        steps: Option<&[Step]>,
    ) -> Option<Space> {
        let fields = self.r.fields(node, key, "`explore`", "a mapping", &keys::EXPLORE)?;
        let mut ok = true;

        let at = match fields.get("at") {
            None => None,
            Some(node) => {
                let name = self.r.text(node, "a step name")?;
                match steps {
                    None => None,
                    Some(steps) => match steps.iter().position(|step| step.name == name) {
                        Some(index) => Some((name, index)),
                        None => {
                            let names = steps.iter().map(|s| s.name.as_str());
                            let hint = match suggest::closest(&name, names.clone()) {
                                Some(close) => format!("did you mean `{close}`?"),
                                None => format!("top-level steps: {}", suggest::list(names)),
                            };
                            self.r
                                .error(
                                    node.span,
                                    format!("unknown step `{name}`"),
                                    "not a top-level step",
                                )
                                .help(hint);
                            ok = false;
                            None
                        }
                    },
                }
            }
        };

        let from = match (fields.get("from"), &at) {
            (None, _) => Some(StepMoment::Started),
            (Some(node), at) => self.moment(node).and_then(|moment| {
                let step = match at {
                    Some((_, index)) => steps.and_then(|steps| steps.get(*index)),
                    None if fields.get("at").is_some() => return None,
                    None => {
                        self.r
                            .error(node.span, "`from` without `at`", "a moment of which step?")
                            .help("name the step with `at`, or leave `from` out");
                        return None;
                    }
                };
                if step.is_some_and(|step| !moment.fits(step.action.kind())) {
                    let name = step.map_or("", |s| s.name.as_str());
                    self.r
                        .error(
                            node.span,
                            format!("`{}` is not a moment of `{name}`", moment.name()),
                            "no such moment",
                        )
                        .help(format!(
                            "`{}` is a moment of {}; use `started` or `ended`",
                            moment.name(),
                            moment.of()
                        ));
                    return None;
                }
                Some(moment)
            }),
        };
        if from.is_none() {
            ok = false;
        }
        let window = self.r.require(&fields, "window").and_then(|node| self.range(node, true));
        let resolution = match fields.get("resolution") {
            Some(node) => self.r.duration(node),
            None => Some(Duration::from_secs(1)),
        };
        let count = |walk: &mut Self, name: &str, default: usize| match fields.get(name) {
            Some(node) => walk.r.integer(node, "a number of faults", 1..=16).map(|n| n as usize),
            None => Some(default),
        };
        let min_faults = count(self, "min-faults", 1);
        let max_faults = count(self, "max-faults", 2);
        if let (Some(min), Some(max), Some(node)) =
            (min_faults, max_faults, fields.get("min-faults"))
            && min > max
        {
            self.r
                .error(
                    node.span,
                    format!("`min-faults` {min} is above `max-faults` {max}"),
                    "too many",
                )
                .help(
                    "the space can produce no schedule; lower `min-faults` or raise `max-faults`",
                );
            ok = false;
        }

        let faults_node = self.r.require(&fields, "faults");
        let items = faults_node.and_then(|node| self.r.list(node, "a list of fault kinds"));
        let mut faults = Vec::new();
        if let (Some(node), Some(items)) = (faults_node, items) {
            if items.is_empty() {
                self.r
                    .error(
                        node.span,
                        "the explore space can produce nothing: no fault kinds",
                        "empty",
                    )
                    .help("list at least one, e.g. `- pause: { services: [db], for: 1s..10s }`");
                ok = false;
            }
            // (kind, target) → where it was first allowed.
            let mut seen: Vec<(ActionKind, String, usize)> = Vec::new();
            for item in items {
                let (choice, kind, targets) = self.explore_fault(item, services);
                for (target, span) in targets {
                    if let Some((_, _, line)) =
                        seen.iter().find(|(k, t, _)| Some(*k) == kind && *t == target)
                    {
                        let line = *line;
                        self.r
                            .error(
                                span,
                                format!("contradictory faults: two `{}` entries on `{target}`", key_of(kind)),
                                "second entry",
                            )
                            .help(format!(
                                "`{}` on `{target}` is already allowed on line {line}; a schedule holds one fault of a kind per target, so merge the entries",
                                key_of(kind)
                            ));
                        ok = false;
                    } else if let Some(kind) = kind {
                        seen.push((kind, target, self.r.line(span)));
                    }
                }
                match choice {
                    Some(choice) => faults.push(choice),
                    None => ok = false,
                }
            }
            if let (Some(min), true) = (min_faults, ok && !seen.is_empty()) {
                if min > seen.len() {
                    let at = fields.get("min-faults").map_or(node.span, |n| n.span);
                    self.r
                        .error(
                            at,
                            format!(
                                "the explore space can produce nothing: {min} faults asked for, {} distinct ones exist",
                                seen.len()
                            ),
                            "too many",
                        )
                        .help("a schedule holds each kind at most once per target; lower `min-faults` or allow more targets");
                    ok = false;
                }
            }
        }

        let reuse_stack = match fields.get("reuse-stack") {
            None => Some(false),
            Some(node) => {
                let reuse = self.r.boolean(node, "`true` or `false`");
                // An outage without `for` lasts until teardown: into the next case on a kept stack.
                let endless = steps.and_then(endless_outage);
                if let (Some(true), Some(step)) = (reuse, endless) {
                    self.r
                        .error(
                            node.span,
                            format!(
                                "`reuse-stack` with step `{}`, a `sink-outage` without `for`",
                                step.name
                            ),
                            "the outage would last into the next case",
                        )
                        .help("give that step a `for`, or leave `reuse-stack` out");
                    ok = false;
                }
                reuse
            }
        };

        if !ok {
            return None;
        }
        let max_faults = max_faults?;
        Some(Space {
            at,
            from: from?,
            window: window?,
            min_faults: min_faults?,
            max_faults,
            resolution: resolution?,
            faults,
            reuse_stack: reuse_stack?,
        })
    }

    /// One entry of `explore.faults`, with its targets and where each is written.
    fn explore_fault(
        &mut self,
        item: &Node,
        services: &Services,
    ) -> (Option<FaultChoice>, Option<ActionKind>, Vec<(String, crate::scenario::report::Span)>)
    {
        let at = self.r.head(item);
        let section = &keys::EXPLORE_FAULT;
        let Some(fields) =
            self.r.fields(item, at, "an `explore.faults` entry", "a mapping", section)
        else {
            return (None, None, Vec::new());
        };
        let present = fields.present(&section.choices());
        let [(key, entry)] = present.as_slice() else {
            let message = if present.is_empty() {
                "an `explore.faults` entry needs a fault kind"
            } else {
                "an `explore.faults` entry has more than one fault kind"
            };
            self.r
                .error(at, message, "here")
                .help(format!("use one of {}", suggest::list(section.choices())));
            return (None, None, Vec::new());
        };
        let kind = ActionKind::from_key(key).expect("every explore choice is a step kind");
        let inner = section.section_of(key);
        let context = format!("`explore` `{key}`");
        let Some(fields) =
            self.r.fields(&entry.value, entry.key.span, &context, "a mapping", inner)
        else {
            return (None, Some(kind), Vec::new());
        };
        let target_list = inner.keys.iter().find(|k| k.required).expect("a target key").name;
        let mut ok = true;

        let mut targets = Vec::new();
        if let Some(node) = self.r.require(&fields, target_list) {
            if let Some(items) = self.r.list(node, "a list of names") {
                if items.is_empty() {
                    self.r
                        .error(node.span, format!("the explore space can produce nothing: no {target_list} for `{key}`"), "empty")
                        .help(format!("name at least one of the scenario's {target_list}"));
                    ok = false;
                }
                for item in items {
                    let Some(name) = self.r.text(item, "a name") else {
                        ok = false;
                        continue;
                    };
                    let (known, incomplete): (Vec<String>, bool) = match target_list {
                        "services" => (services.0.keys().cloned().collect(), false),
                        "links" => {
                            (self.links.names.keys().cloned().collect(), self.links.incomplete)
                        }
                        _ => (self.sinks.names.clone(), self.sinks.incomplete),
                    };
                    if !known.contains(&name) {
                        if !incomplete {
                            let what = target_list.trim_end_matches('s');
                            let hint =
                                match suggest::closest(&name, known.iter().map(String::as_str)) {
                                    Some(close) => format!("did you mean `{close}`?"),
                                    None if known.is_empty() => {
                                        format!("the scenario declares no {target_list}")
                                    }
                                    None => format!(
                                        "declared: {}",
                                        suggest::list(known.iter().map(String::as_str))
                                    ),
                                };
                            self.r
                                .error(
                                    item.span,
                                    format!("unknown {what} `{name}`"),
                                    format!("no such {what}"),
                                )
                                .help(hint);
                        }
                        ok = false;
                        continue;
                    }
                    targets.push((name, item.span));
                }
            }
        }

        let duration = match (fields.entry("for"), kind) {
            (Some(entry), ActionKind::Restart) => {
                self.r
                    .error(entry.key.span, "`restart` takes no `for`", "not allowed here")
                    .help("a restart is one stop and start; use `stop` or `kill` with a `for` range for an outage");
                ok = false;
                None
            }
            (None, ActionKind::Restart) => None,
            (Some(entry), _) => match self.range(&entry.value, false) {
                Some(range) => Some(range),
                None => {
                    ok = false;
                    None
                }
            },
            (None, _) => {
                self.r.error(fields.at, format!("missing `for` in {context}"), "needs `for`").help(
                    "how long the fault may last: a range such as `1s..10s`, or one duration",
                );
                ok = false;
                None
            }
        };

        let mut params = Vec::new();
        for extra in ["signal", "latency", "toxicity", "status"] {
            let Some(entry) = fields.entry(extra) else { continue };
            let allowed = match extra {
                "signal" => kind == ActionKind::Kill,
                "latency" => kind == ActionKind::Latency,
                _ => true,
            };
            if !allowed {
                self.r
                    .error(
                        entry.key.span,
                        format!("`{extra}` does not apply to `{key}`"),
                        "not for this kind",
                    )
                    .help(format!(
                        "`{extra}` belongs to `{}`",
                        if extra == "signal" { "kill" } else { "latency" }
                    ));
                ok = false;
                continue;
            }
            if extra == "latency" && self.r.duration(&entry.value).is_none() {
                ok = false;
                continue;
            }
            if extra == "status" {
                let hang = entry.value.scalar().is_some_and(|s| s.text == "hang");
                if !hang && self.r.status(&entry.value).is_none() {
                    ok = false;
                    continue;
                }
            }
            let span = entry.value.span;
            params.push((extra.to_owned(), self.r_source(span)));
        }
        if kind == ActionKind::Latency && fields.get("latency").is_none() {
            self.r.error(fields.at, format!("missing `latency` in {context}"), "needs `latency`");
            ok = false;
        }

        let choice = ok.then(|| FaultChoice {
            kind,
            targets: targets.iter().map(|(name, _)| name.clone()).collect(),
            duration,
            params,
        });
        (choice, Some(kind), targets)
    }

    /// `A..B` (or one duration: `A..A`); `window` allows a zero start.
    fn range(&mut self, node: &Node, zero_start: bool) -> Option<(Duration, Duration)> {
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.r.wrong_type(node, "a range such as `1s..10s`");
            return None;
        };
        let text = scalar.text.trim();
        let (low, high) = text.split_once("..").unwrap_or((text, text));
        let parse = |part: &str| -> Result<Duration, String> {
            let part = part.trim();
            if zero_start
                && part.trim_end_matches(['s', 'm']).chars().all(|c| c == '0')
                && !part.is_empty()
            {
                return Ok(Duration::ZERO);
            }
            crate::scenario::duration::parse(part)
        };
        match (parse(low), parse(high)) {
            (Ok(low), Ok(high)) if low <= high => Some((low, high)),
            (Ok(low), Ok(high)) => {
                self.r
                    .error(
                        node.span,
                        format!("empty range `{text}`: {} is after {}", fmt(low), fmt(high)),
                        "the space can produce nothing",
                    )
                    .help("write the shorter end first: `1s..10s`");
                None
            }
            (Err(why), _) | (_, Err(why)) => {
                self.r
                    .error(node.span, format!("invalid range `{text}`"), why)
                    .help("use two durations such as `1s..10s`, or one duration");
                None
            }
        }
    }

    /// The text of `span` as written.
    fn r_source(&self, span: crate::scenario::report::Span) -> String {
        self.r.slice(span).to_owned()
    }
}

fn key_of(kind: Option<ActionKind>) -> &'static str {
    kind.map_or("?", ActionKind::key)
}

fn fmt(duration: Duration) -> String {
    crate::scenario::duration::format(duration)
}

/// A `sink-outage` step without `for` among `steps` and their `parallel` children.
fn endless_outage(steps: &[Step]) -> Option<&Step> {
    steps.iter().find_map(|step| match &step.action {
        Action::SinkOutage(outage) if outage.duration.is_none() => Some(step),
        Action::Parallel(children) => {
            children.iter().find_map(|child| endless_outage(std::slice::from_ref(&child.step)))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const HEAD: &str = "name: t
sinks:
  sms: twilio
stack:
  services:
    db:
      image: postgres:15
    web:
      image: nginx:1
steps:
  - name: release
    wait: 3s
";

    fn errors(explore: &str) -> Vec<String> {
        let source = format!("{HEAD}explore:\n{explore}");
        match crate::scenario::parse_with_space(&source, Path::new("t.yaml")) {
            Ok(_) => Vec::new(),
            Err(invalid) => invalid
                .diagnostics
                .into_iter()
                .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
                .collect(),
        }
    }

    #[test]
    fn a_valid_space_has_no_problems() {
        assert_eq!(
            errors(
                "  at: release
  window: 0s..5s
  faults:
    - pause: { services: [db], for: 1s..3s }
    - sink-outage: { sinks: [sms], for: 2s, status: 503 }
"
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn reuse_stack_is_a_flag_and_refuses_an_outage_that_outlives_its_case() {
        const SPACE: &str =
            "  window: 0s..5s\n  faults:\n    - pause: { services: [db], for: 1s }\n";
        assert_eq!(errors(&format!("  reuse-stack: true\n{SPACE}")), Vec::<String>::new());
        assert_eq!(
            errors(&format!("  reuse-stack: yes please\n{SPACE}")),
            ["14:16 expected `true` or `false`, found a string"]
        );
        let source = HEAD.replace(
            "    wait: 3s\n",
            "    wait: 3s\n  - parallel:\n      - sink-outage: { sink: sms, status: 503 }\n",
        );
        let source = format!("{source}explore:\n  reuse-stack: true\n{SPACE}");
        let invalid = crate::scenario::parse_with_space(&source, Path::new("t.yaml")).unwrap_err();
        let found: Vec<String> = invalid
            .diagnostics
            .iter()
            .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
            .collect();
        assert_eq!(
            found,
            ["16:16 `reuse-stack` with step `sink-outage sms`, a `sink-outage` without `for`"]
        );
    }

    #[test]
    fn spaces_that_produce_nothing_or_contradict_are_placed() {
        assert_eq!(
            errors("  window: 0s..5s\n  faults: []\n"),
            ["15:11 the explore space can produce nothing: no fault kinds"]
        );
        assert_eq!(
            errors("  window: 5s..1s\n  faults:\n    - pause: { services: [], for: 3s..1s }\n"),
            [
                "14:11 empty range `5s..1s`: 5s is after 1s",
                "16:26 the explore space can produce nothing: no services for `pause`",
                "16:35 empty range `3s..1s`: 3s is after 1s",
            ]
        );
        assert_eq!(
            errors(
                "  at: relase
  window: 0s..5s
  faults:
    - pause: { services: [db, wbe], for: 1s }
    - pause: { services: [db], for: 2s }
    - restart: { services: [web], for: 1s }
    - down: { links: [x], for: 1s }
"
            ),
            [
                "14:7 unknown step `relase`",
                "17:31 unknown service `wbe`",
                "18:27 contradictory faults: two `pause` entries on `db`",
                "19:35 `restart` takes no `for`",
                "20:23 unknown link `x`",
            ]
        );
        assert_eq!(
            errors(
                "  window: 0s\n  min-faults: 3\n  max-faults: 4\n  faults:\n    - pause: { services: [db, web], for: 1s }\n"
            ),
            [
                "15:15 the explore space can produce nothing: 3 faults asked for, 2 distinct ones exist"
            ]
        );
    }
}
