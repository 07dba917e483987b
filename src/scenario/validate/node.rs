//! `node-availability: { availability: drain | pause, node, for }`: a node-level fault (the
//! swarm backend's node availability). Which node exists is only known at run time; here the
//! shape: a known availability, a positive `for` (the step always restores the node).

use super::walk::{StepDraft, Walk};
use crate::scenario::keys;
use crate::scenario::model::{Action, NodeAvailability, NodeState};
use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::Node;

impl Walk<'_> {
    /// `node-availability: { availability, node, for }`.
    pub(super) fn node_availability(&mut self, draft: &mut StepDraft, node: &Node, key: Span) {
        let Some(fields) = self.r.fields(
            node,
            key,
            "`node-availability`",
            "a mapping such as `{ availability: drain, for: 10s }`",
            &keys::NODE_AVAILABILITY,
        ) else {
            return;
        };
        let availability = self.r.require(&fields, "availability").and_then(|node| {
            let text = self.r.text(node, "`drain` or `pause`")?;
            match text.as_str() {
                "drain" => Some(NodeState::Drain),
                "pause" => Some(NodeState::Pause),
                _ => {
                    let names = NodeState::NAMES.iter().copied();
                    let hint = match suggest::closest(&text, names.clone()) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!(
                            "use {} (`active` is what the step restores after `for`)",
                            suggest::list(names)
                        ),
                    };
                    self.r
                        .error(node.span, format!("unknown node availability `{text}`"), "unknown")
                        .help(hint);
                    None
                }
            }
        });
        let target = match fields.get("node") {
            None => Some(None),
            Some(node) => self.r.non_empty_text(node, "a node's hostname or id").map(Some),
        };
        let duration = self.r.require(&fields, "for").and_then(|node| self.r.duration(node));
        let label = target.clone().flatten().unwrap_or_else(|| "self".to_owned());
        draft.generated = availability.map(|a| format!("node-availability {} {label}", a.key()));
        // Two node faults on one node in a `parallel` group would fight over its availability.
        draft.fault = Some(("node-availability", format!("node {label}")));
        draft.action = (|| {
            Some(Action::NodeAvailability(NodeAvailability {
                availability: availability?,
                node: target?,
                duration: duration?,
            }))
        })();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::scenario::model::{Action, NodeAvailability, NodeState};

    const HEAD: &str = "name: t
stack:
  services:
    web:
      image: firedrill-demo/billing:1.0
steps:
";

    fn parse(steps: &str) -> Result<Vec<(String, Action)>, Vec<String>> {
        crate::scenario::parse(&format!("{HEAD}{steps}"), Path::new("t.yaml"))
            .map(|scenario| scenario.steps.into_iter().map(|s| (s.name, s.action)).collect())
            .map_err(|invalid| invalid.diagnostics.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn node_availability_reads_its_fields_and_names_the_step() {
        let steps = parse(
            "  - node-availability: { availability: drain, for: 5s }
  - node-availability: { availability: pause, node: worker-2, for: 1m }
",
        )
        .unwrap();
        assert_eq!(
            steps,
            [
                (
                    "node-availability drain self".to_owned(),
                    Action::NodeAvailability(NodeAvailability {
                        availability: NodeState::Drain,
                        node: None,
                        duration: Duration::from_secs(5),
                    })
                ),
                (
                    "node-availability pause worker-2".to_owned(),
                    Action::NodeAvailability(NodeAvailability {
                        availability: NodeState::Pause,
                        node: Some("worker-2".to_owned()),
                        duration: Duration::from_secs(60),
                    })
                ),
            ]
        );
    }

    #[test]
    fn node_availability_mistakes_are_each_reported() {
        let problems = parse(
            "  - node-availability: { availability: active, for: 5s }
  - node-availability: { availability: drain }
",
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("unknown node availability `active`"), "{problems:?}");
        assert!(problems[1].contains("missing `for`"), "{problems:?}");
    }
}
