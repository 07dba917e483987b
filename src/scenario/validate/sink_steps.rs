//! The notification-path steps: `sink-outage` (a sink fails like a provider outage), `call` (one
//! HTTP request to a service, e.g. announcing a maintenance) and `mark` (a named moment).

use crate::scenario::keys;
use std::time::Duration;

use super::walk::{Services, StepDraft, Walk};
use crate::scenario::model::{Action, Call, OutageMode, SinkKind, SinkOutage};
use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::{Node, ScalarKind, Value};

/// The channels of a `twilio` sink, which an outage may hit one at a time.
const TWILIO_CHANNELS: &[&str] = &["sms", "voice"];

/// The sink names declared in `sinks`, known even when a sink's kind is wrong, so that a step
/// naming it is not reported again as "unknown sink".
#[derive(Debug, Default)]
pub(super) struct SinkNames {
    pub(super) names: Vec<String>,
    /// Each name's kind, when it was written right.
    pub(super) kinds: Vec<Option<SinkKind>>,
    /// `sinks` is not a mapping (or a key is not text): "unknown sink" might be a consequence.
    pub(super) incomplete: bool,
}

impl SinkNames {
    /// The names under the `sinks` node, without reporting anything (the `sinks` walk does).
    pub(super) fn read(node: Option<&Node>) -> SinkNames {
        let Some(node) = node else { return SinkNames::default() };
        let Value::Map(entries) = &node.value else {
            return SinkNames { names: Vec::new(), kinds: Vec::new(), incomplete: true };
        };
        let mut table = SinkNames::default();
        for entry in entries {
            match entry.key.scalar() {
                Some(key) if key.kind() != ScalarKind::Null => {
                    table.names.push(key.text.clone());
                    // `NAME: KIND` or `NAME: { kind: KIND, ... }`.
                    let kind = match &entry.value.value {
                        Value::Map(fields) => fields
                            .iter()
                            .find(|field| field.key.scalar().is_some_and(|key| key.text == "kind"))
                            .map(|field| &field.value),
                        _ => Some(&entry.value),
                    };
                    let kind = kind
                        .and_then(Node::scalar)
                        .and_then(|value| SinkKind::from_name(&value.text));
                    table.kinds.push(kind);
                }
                _ => table.incomplete = true,
            }
        }
        table
    }
}

impl Walk<'_> {
    /// `sink-outage: { sink, status, probability, for }`.
    pub(super) fn sink_outage(&mut self, draft: &mut StepDraft, node: &Node, key: Span) {
        let Some(fields) = self.r.fields(
            node,
            key,
            "`sink-outage`",
            "a mapping such as `{ sink: sms, status: 500, for: 60s }`",
            &keys::OUTAGE,
        ) else {
            return;
        };
        let sink_node = self.r.require(&fields, "sink");
        let written = sink_node.and_then(|n| self.r.text(n, "a sink name"));
        let sink = match (&written, sink_node) {
            (Some(name), Some(node)) => self.known_sink(name, node.span).then(|| name.clone()),
            _ => None,
        };
        let mode = self.r.require(&fields, "status").and_then(|n| self.outage_mode(n));
        let probability = match fields.get("probability") {
            None => Some(1.0),
            Some(node) => self.r.percent(node).and_then(|percent| {
                if percent > 0.0 {
                    return Some(percent / 100.0);
                }
                self.r
                    .error(node.span, "a `sink-outage` with probability 0", "fails nothing")
                    .help("use a share above 0%, e.g. `probability: 50%`, or drop the step");
                None
            }),
        };
        let duration = match fields.get("for") {
            None => Some(None),
            Some(node) => self.r.duration(node).map(Some),
        };
        let channel = match fields.get("channel") {
            None => Some(None),
            Some(node) => self.outage_channel(node, sink.as_deref()).map(Some),
        };
        draft.generated = written.as_ref().map(|sink| format!("sink-outage {sink}"));
        // Two outages of one sink in a `parallel` group would fight over it, like two faults.
        draft.fault = written.map(|sink| ("sink-outage", sink));
        draft.action = (|| {
            Some(Action::SinkOutage(SinkOutage {
                sink: sink?,
                mode: mode?,
                probability: probability?,
                channel: channel?,
                duration: duration?,
            }))
        })();
    }

    /// `channel`: `sms` or `voice` of a `twilio` sink (the only kind serving two channels).
    fn outage_channel(&mut self, node: &Node, sink: Option<&str>) -> Option<String> {
        let channel = self.r.text(node, "a channel (`sms` or `voice`)")?;
        let at = sink.and_then(|sink| self.sinks.names.iter().position(|n| n == sink));
        let Some(kind) = at.and_then(|at| self.sinks.kinds[at]) else {
            // The sink or its kind has a mistake of its own, reported there.
            return None;
        };
        if kind != SinkKind::Twilio {
            self.r
                .error(node.span, "`channel` on a sink with one channel", "only for `twilio`")
                .help("a `twilio` sink serves `sms` and `voice`; other sinks fail as a whole");
            return None;
        }
        if TWILIO_CHANNELS.contains(&channel.as_str()) {
            return Some(channel);
        }
        self.r
            .error(node.span, format!("unknown channel `{channel}`"), "not a twilio channel")
            .help("a `twilio` sink serves `sms` (Messages) and `voice` (Calls)");
        None
    }

    fn outage_mode(&mut self, node: &Node) -> Option<OutageMode> {
        let hint = "use an HTTP status from 400 to 599 (e.g. 500, 503, 429) or `hang`";
        match node.scalar() {
            Some(scalar) if scalar.kind() == ScalarKind::Int => {
                let status = self.r.integer(node, "an error status", 400..=599)?;
                Some(OutageMode::Status(u16::try_from(status).expect("checked range")))
            }
            Some(scalar) if scalar.text == "hang" => Some(OutageMode::Hang),
            Some(scalar) if scalar.kind() != ScalarKind::Null => {
                self.r
                    .error(
                        node.span,
                        format!("unknown outage status `{}`", scalar.text),
                        "not a status",
                    )
                    .help(hint);
                None
            }
            _ => {
                self.r.wrong_type(node, "an HTTP status or `hang`").help(hint);
                None
            }
        }
    }

    /// Whether `name` is a declared sink; reports it when it is not (unless `sinks` itself was
    /// unreadable).
    pub(super) fn known_sink(&mut self, name: &str, span: Span) -> bool {
        if self.sinks.names.iter().any(|known| known == name) {
            return true;
        }
        if self.sinks.incomplete {
            return false;
        }
        let names = self.sinks.names.iter().map(String::as_str);
        let hint = match suggest::closest(name, names.clone()) {
            Some(close) => format!("did you mean `{close}`?"),
            None if self.sinks.names.is_empty() => {
                "no sinks are declared; add e.g. `sinks: { sms: twilio }` at the top level"
                    .to_owned()
            }
            None => format!("declared sinks: {}", suggest::list_all(names)),
        };
        self.r.error(span, format!("unknown sink `{name}`"), "not in `sinks`").help(hint);
        false
    }

    /// `call: { service, port, method, path, body, status, timeout }`.
    pub(super) fn call(
        &mut self,
        draft: &mut StepDraft,
        node: &Node,
        key: Span,
        services: &Services,
    ) {
        let Some(fields) = self.r.fields(
            node,
            key,
            "`call`",
            "a mapping such as `{ service: comms, port: 8080, path: /maintenance }`",
            &keys::CALL,
        ) else {
            return;
        };
        let service_node = self.r.require(&fields, "service");
        let service = service_node.and_then(|n| self.r.text(n, "a service name"));
        let info = match (&service, service_node) {
            (Some(name), Some(node)) => self.known_service(services, name, node.span),
            _ => None,
        };
        let known = info.is_some();
        let port_node = self.r.require(&fields, "port");
        let port = port_node.and_then(|n| self.r.port(n));
        if let (Some(name), Some(info), Some(port), Some(node)) = (&service, info, port, port_node)
        {
            self.declared_port(name, info, port, node.span);
        }
        let method = match fields.get("method") {
            None => Some("POST".to_owned()),
            Some(node) => self.method(node),
        };
        let path = self.http_path(fields.get("path"));
        let body = match fields.get("body") {
            None => Some(None),
            Some(node) => self.json_body(node).map(Some),
        };
        let status = match fields.get("status") {
            None => Some(None),
            Some(node) => self.r.status(node).map(Some),
        };
        let timeout =
            fields.get("timeout").map_or(Some(Duration::from_secs(5)), |n| self.r.duration(n));
        if let (Some(service), Some(port), Some(method), Some(path)) =
            (&service, port, &method, &path)
        {
            draft.generated = Some(format!("call {method} {service}:{port}{path}"));
        } else if let Some(service) = &service {
            draft.generated = Some(format!("call {service}"));
        }
        draft.action = (|| {
            Some(Action::Call(Call {
                service: service.filter(|_| known)?,
                port: port?,
                method: method?,
                path: path?,
                body: body?,
                status: status?,
                timeout: timeout?,
            }))
        })();
    }

    /// `mark: NAME`: the step is named `NAME` (as if written `name: NAME`, so a marker used twice
    /// is a duplicate step name).
    pub(super) fn mark(&mut self, draft: &mut StepDraft, node: &Node) {
        let Some(name) = self.r.non_empty_text(node, "a marker name") else { return };
        if let Some((_, span)) = &draft.explicit {
            self.r
                .error(*span, "a `mark` step is named by its marker", "second name")
                .help(format!("remove `name`; this step is called `{name}`"));
            return;
        }
        draft.explicit = Some((name, node.span));
        draft.action = Some(Action::Mark);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::scenario::model::{Action, Call, OutageMode, Scenario, SinkOutage};

    const HEAD: &str = "name: t
sinks: { sms: twilio, email: smtp }
stack:
  services:
    comms: { image: c, ports: [8080] }
";

    fn parse(steps: &str) -> Result<Scenario, Vec<String>> {
        let source = format!("{HEAD}steps:\n{steps}");
        crate::scenario::parse(&source, Path::new("t.yaml"))
            .map_err(|invalid| invalid.diagnostics.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn reads_the_three_steps_with_defaults() {
        let scenario = parse(
            "  - sink-outage: { sink: sms, status: 500, for: 1m, channel: sms }
  - sink-outage: { sink: email, status: hang, probability: 50% }
  - call: { service: comms, port: 8080, path: /maintenance, body: '{\"a\":1}', status: 202 }
  - call: { service: comms, port: 8080, method: get }
  - mark: billing announced
",
        )
        .unwrap();
        let names: Vec<_> = scenario.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sink-outage sms",
                "sink-outage email",
                "call POST comms:8080/maintenance",
                "call GET comms:8080/",
                "billing announced"
            ]
        );
        assert_eq!(
            scenario.steps[0].action,
            Action::SinkOutage(SinkOutage {
                sink: "sms".into(),
                mode: OutageMode::Status(500),
                probability: 1.0,
                channel: Some("sms".into()),
                duration: Some(Duration::from_secs(60)),
            })
        );
        let Action::SinkOutage(second) = &scenario.steps[1].action else { panic!() };
        assert_eq!(
            (second.mode, second.probability, second.duration),
            (OutageMode::Hang, 0.5, None)
        );
        assert_eq!(
            scenario.steps[2].action,
            Action::Call(Call {
                service: "comms".into(),
                port: 8080,
                method: "POST".into(),
                path: "/maintenance".into(),
                body: Some("{\"a\":1}".into()),
                status: Some(202),
                timeout: Duration::from_secs(5),
            })
        );
        assert_eq!(scenario.steps[4].action, Action::Mark);
    }

    #[test]
    fn reports_every_mistake() {
        let errors = parse(
            "  - sink-outage: { sink: smss, status: 200 }
  - sink-outage: { sink: sms, status: down, probability: 0% }
  - sink-outage: { sink: sms, status: 500, channel: fax }
  - sink-outage: { sink: email, status: 500, channel: sms }
  - call: { service: comms, port: 9090, body: '{' }
  - name: x
    mark: y
  - mark: dup
  - mark: dup
",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "unknown sink `smss`",
                "200 is out of range",
                "unknown outage status `down`",
                "a `sink-outage` with probability 0",
                "unknown channel `fax`",
                "`channel` on a sink with one channel",
                "port 9090 is not declared in `ports` of `comms`",
                "`body` is not valid JSON",
                "a `mark` step is named by its marker",
                "duplicate step name `dup`",
            ]
        );
    }

    #[test]
    fn two_outages_of_one_sink_in_a_group_are_refused() {
        let errors = parse(
            "  - parallel:
      - sink-outage: { sink: sms, status: 500, for: 1s }
      - sink-outage: { sink: sms, status: hang, for: 1s }
",
        )
        .unwrap_err();
        assert_eq!(errors, ["two `sink-outage` faults on `sms` in one `parallel` group"]);
    }

    #[test]
    fn a_broken_sinks_section_does_not_cascade() {
        let source = "name: t
sinks: { sms: twillio }
stack:
  services:
    comms: { image: c }
steps:
  - sink-outage: { sink: sms, status: 500 }
";
        let invalid = crate::scenario::parse(source, Path::new("t.yaml")).unwrap_err();
        let messages: Vec<_> = invalid.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["unknown sink kind `twillio`"]);
    }
}
