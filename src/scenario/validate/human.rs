//! Gameday: the `human` step, the `human-within` check, and the responders file
//! (`--responders FILE`), read with the same reader so every mistake has its file:line:col.

use std::path::Path;
use std::time::Duration;

use super::expect::Refs;
use super::upgrade::EarlierUpgrades;
use super::walk::{Services, StepDraft, StepKind, Walk};
use crate::scenario::gameday::{
    HttpTarget, Human, HumanDone, ResponderAction, ResponderHttp, Responders, Response,
};
use crate::scenario::keys;
use crate::scenario::model::{Action, ExpectationKind};
use crate::scenario::read::Reader;
use crate::scenario::report::{Problems, Span};
use crate::scenario::tree::{Node, Value};

/// Role names: what a person is called in the console and the responders file.
fn valid_role(role: &str) -> bool {
    super::walk::is_name(role, &['-', '_'])
}

impl Walk<'_> {
    /// `human: { role, prompt, runbook, deadline, done, roll-back }`.
    pub(super) fn human(
        &mut self,
        draft: &mut StepDraft,
        node: &Node,
        key: Span,
        services: &Services,
        (earlier, nested): (&EarlierUpgrades, bool),
    ) {
        draft.kind = Some(StepKind::Human);
        let Some(fields) = self.r.fields(
            node,
            key,
            "`human`",
            "a mapping such as `{ role: on-call, prompt: \"Acknowledge the page\", deadline: 5m }`",
            &keys::HUMAN,
        ) else {
            return;
        };
        let role = self.r.require(&fields, "role").and_then(|n| {
            let role = self.r.non_empty_text(n, "a role such as `on-call`")?;
            if valid_role(&role) {
                return Some(role);
            }
            self.r
                .error(n.span, format!("`{role}` is not a role name"), "not a name")
                .help("a role is letters, digits, `-` and `_`, such as `on-call` or `support`");
            None
        });
        let prompt =
            self.r.require(&fields, "prompt").and_then(|n| self.r.non_empty_text(n, "a prompt"));
        let runbook = match fields.get("runbook") {
            None => Some(None),
            Some(n) => self.r.non_empty_text(n, "a runbook link or text").map(Some),
        };
        let deadline = self.r.require(&fields, "deadline").and_then(|n| self.r.duration(n));
        let done = match fields.entry("done") {
            None => Some(HumanDone::Acknowledge),
            Some(entry) => self.human_done(&entry.value, entry.key.span, services),
        };
        let roll_back = match fields.entry("roll-back") {
            None => Some(None),
            Some(entry) => {
                let acknowledged = done.as_ref().is_none_or(|d| *d == HumanDone::Acknowledge);
                self.roll_back_decision(&entry.value, services, earlier, nested, acknowledged)
                    .map(Some)
            }
        };
        if let Some(role) = &role {
            draft.generated = Some(format!("human {role}"));
        }
        draft.action = (|| {
            Some(Action::Human(Human {
                role: role?,
                prompt: prompt?,
                runbook: runbook?,
                deadline: deadline?,
                done: done?,
                roll_back: roll_back?,
            }))
        })();
    }

    /// `roll-back: SERVICE` of a `human` step: a service upgraded by an earlier step, on the main
    /// timeline (the rollback needs the timeline's service state, as a `rollback` step does), with
    /// `done: acknowledge` (the decision is an answer, as an acknowledgement is).
    fn roll_back_decision(
        &mut self,
        node: &Node,
        services: &Services,
        earlier: &EarlierUpgrades,
        nested: bool,
        acknowledged: bool,
    ) -> Option<String> {
        let service = self.r.text(node, "a service name")?;
        self.known_service(services, &service, node.span)?;
        let mut ok = true;
        if !earlier.services.contains(&service) && !earlier.unsure {
            self.r
                .error(
                    node.span,
                    format!("`{service}` has no earlier upgrade to roll back"),
                    "no `upgrade` of it before this step",
                )
                .help(format!(
                    "the decision rolls back the latest upgrade of `{service}`; put this step after \
                     an `upgrade: {{ service: {service}, ... }}` step"
                ));
            ok = false;
        }
        if nested {
            self.r
                .error(node.span, "a decision to roll back inside a `parallel` group", "in a group")
                .help(
                    "the rollback needs the timeline's service state, as a `rollback` step does: \
                     put this `human` step on the main timeline, after the upgrade",
                );
            ok = false;
        }
        if !acknowledged {
            self.r
                .error(node.span, "`roll-back` with a `done` effect", "needs `done: acknowledge`")
                .help(
                    "the decision is an answer to the prompt, as an acknowledgement is: use \
                     `roll-back` with `done: acknowledge` (the default)",
                );
            ok = false;
        }
        ok.then_some(service)
    }

    /// `done: acknowledge | { notification: { sink, contains } } | { healthy: SERVICE }`.
    fn human_done(&mut self, node: &Node, key: Span, services: &Services) -> Option<HumanDone> {
        if let Some(scalar) = node.scalar() {
            if scalar.text == "acknowledge" {
                return Some(HumanDone::Acknowledge);
            }
            self.r.error(node.span, format!("unknown `done` `{}`", scalar.text), "unknown").help(
                "write `done: acknowledge`, `done: { notification: { sink: NAME } }` or \
                     `done: { healthy: SERVICE }`",
            );
            return None;
        }
        let fields = self.r.fields(
            node,
            key,
            "`done`",
            "`acknowledge` or one effect such as `{ healthy: billing }`",
            &keys::HUMAN_DONE,
        )?;
        let effects = keys::HUMAN_DONE.choices();
        let present = fields.present(&effects);
        let [(effect, entry)] = present.as_slice() else {
            let message = if present.is_empty() {
                "`done` names no effect".to_owned()
            } else {
                "`done` names more than one effect".to_owned()
            };
            self.r
                .error(key, message, "one effect")
                .help("write exactly one of `notification: { sink: NAME }` or `healthy: SERVICE`");
            return None;
        };
        match *effect {
            "healthy" => {
                let service = self.r.text(&entry.value, "a service name")?;
                self.healthy_service(services, &service, entry.value.span, "done: { healthy }")?;
                Some(HumanDone::Healthy { service })
            }
            _ => {
                let fields = self.r.fields(
                    &entry.value,
                    entry.key.span,
                    "`notification`",
                    "a mapping such as `{ sink: status, contains: investigating }`",
                    &keys::HUMAN_NOTIFICATION,
                )?;
                let sink_node = self.r.require(&fields, "sink")?;
                let sink = self.r.text(sink_node, "a sink name")?;
                let known = self.known_sink(&sink, sink_node.span);
                let contains = match fields.get("contains") {
                    None => Some(None),
                    Some(n) => self.r.non_empty_text(n, "the text to look for").map(Some),
                };
                known.then_some(())?;
                Some(HumanDone::Notification { sink, contains: contains? })
            }
        }
    }

    /// `human-within: { step, within }`: the step must be a `human` step.
    pub(super) fn human_within(
        &mut self,
        node: &Node,
        key: Span,
        refs: &Refs<'_>,
    ) -> Option<ExpectationKind> {
        let fields = self.r.fields(
            node,
            key,
            "`human-within`",
            "a mapping with `step` and `within`",
            &keys::HUMAN_WITHIN,
        )?;
        let step_node = self.r.require(&fields, "step");
        let step = step_node.and_then(|n| self.step_ref(n, refs.steps));
        if let (Some(step), Some(n)) = (&step, step_node)
            && matches!(refs.steps.names.get(step), Some(Some(kind)) if !matches!(kind, StepKind::Human))
        {
            self.r
                .error(n.span, format!("step `{step}` is not a `human` step"), "not a human step")
                .help("`human-within` judges a step with `human:`");
            return None;
        }
        let within = self.r.require(&fields, "within").and_then(|n| self.r.duration(n));
        Some(ExpectationKind::HumanWithin { step: step?, within: within? })
    }

    /// A responders file: a mapping of role → one response or a list of them.
    fn responders(&mut self, root: &Node, path: &Path) -> Option<Responders> {
        let Value::Map(entries) = &root.value else {
            self.r
                .wrong_type(root, "a mapping of roles to responses")
                .help("write e.g. `on-call: { delay: 30s, do: acknowledge }` (one role per key)");
            return None;
        };
        let mut out = Some(Responders { roles: Default::default(), source: path.to_path_buf() });
        for entry in entries {
            let role = self.r.non_empty_text(&entry.key, "a role name");
            let role = role.filter(|role| {
                let ok = valid_role(role);
                if !ok {
                    self.r
                        .error(entry.key.span, format!("`{role}` is not a role name"), "not a name")
                        .help("a role is letters, digits, `-` and `_`, such as `on-call`");
                }
                ok
            });
            let items: Vec<&Node> = match &entry.value.value {
                Value::Seq(items) => items.iter().collect(),
                _ => vec![&entry.value],
            };
            let responses: Vec<Option<Response>> =
                items.into_iter().map(|item| self.response(item, entry.key.span)).collect();
            let responses = responses.into_iter().collect::<Option<Vec<_>>>();
            match (&mut out, role, responses) {
                (Some(out), Some(role), Some(responses)) => {
                    out.roles.insert(role, responses);
                }
                _ => out = None,
            }
        }
        out
    }

    /// `{ step, delay, do }`.
    fn response(&mut self, node: &Node, key: Span) -> Option<Response> {
        let fields = self.r.fields(
            node,
            key,
            "a response",
            "a mapping such as `{ delay: 30s, do: acknowledge }`",
            &keys::RESPONSE,
        )?;
        let step = match fields.get("step") {
            None => Some(None),
            Some(n) => self.r.non_empty_text(n, "a step name").map(Some),
        };
        let delay = self.r.require(&fields, "delay").and_then(|n| self.r.duration(n));
        let action = fields
            .entry("do")
            .and_then(|entry| self.responder_action(entry.key.span, &entry.value));
        if fields.get("do").is_none() {
            self.r.require(&fields, "do");
        }
        Some(Response { step: step?, delay: delay?, action: action? })
    }

    /// `do: acknowledge | { http: { ... } }`.
    fn responder_action(&mut self, key: Span, node: &Node) -> Option<ResponderAction> {
        if let Some(scalar) = node.scalar() {
            if scalar.text == "acknowledge" {
                return Some(ResponderAction::Acknowledge);
            }
            self.r
                .error(node.span, format!("unknown action `{}`", scalar.text), "unknown")
                .help("write `do: acknowledge` or `do: { http: { sink: NAME, path: /... } }`");
            return None;
        }
        let fields = self.r.fields(
            node,
            key,
            "`do`",
            "`acknowledge` or `{ http: { sink: NAME, path: /... } }`",
            &keys::RESPONSE_DO,
        )?;
        let entry = self.r.require(&fields, "http")?;
        let http_key = fields.entry("http").map_or(key, |e| e.key.span);
        let fields = self.r.fields(
            entry,
            http_key,
            "`http`",
            "a mapping such as `{ sink: status, path: /v1/pages/page1/incidents, body: '{}' }`",
            &keys::RESPONSE_HTTP,
        )?;
        let target = match (fields.get("sink"), fields.get("service")) {
            (Some(sink), None) => {
                if let Some(port) = fields.entry("port") {
                    self.r
                        .error(port.key.span, "`port` goes with `service`", "not with `sink`")
                        .help("a sink is reached at its own address; remove `port`");
                    None
                } else {
                    self.r.non_empty_text(sink, "a sink name").map(HttpTarget::Sink)
                }
            }
            (None, Some(service)) => {
                let service = self.r.non_empty_text(service, "a service name");
                let port = self.r.require(&fields, "port").and_then(|n| self.r.port(n));
                Some(HttpTarget::Service { service: service?, port: port? })
            }
            (Some(_), Some(service)) => {
                self.r
                    .error(service.span, "`http` has both `sink` and `service`", "second target")
                    .help("a request goes to one place: keep `sink` or `service`");
                None
            }
            (None, None) => {
                self.r.error(http_key, "`http` names no target", "no target").help(
                    "add `sink: NAME` (a sink of the scenario) or `service: NAME` with `port`",
                );
                None
            }
        };
        let method = match fields.get("method") {
            None => Some("POST".to_owned()),
            Some(node) => self.method(node),
        };
        let path = self.http_path(fields.get("path"));
        let body = match fields.get("body") {
            None => Some(None),
            Some(node) => self.json_body(node).map(Some),
        };
        let timeout =
            fields.get("timeout").map_or(Some(Duration::from_secs(5)), |n| self.r.duration(n));
        Some(ResponderAction::Http(ResponderHttp {
            target: target?,
            method: method?,
            path: path?,
            body: body?,
            timeout: timeout?,
        }))
    }
}

/// Walk a responders file (`--responders FILE`).
pub(crate) fn responders(
    root: Option<&Node>,
    source: &str,
    path: &Path,
) -> Result<Responders, Problems> {
    let mut walk = Walk::bare(Reader::new(source, |_| None), path);
    let responders = match root {
        Some(root) => walk.responders(root, path),
        None => {
            walk.r
                .error(Span::default(), "the responders file is empty", "nothing here")
                .help("write e.g. `on-call: { delay: 30s, do: acknowledge }`");
            None
        }
    };
    match responders {
        Some(responders) if walk.r.problems.is_empty() => Ok(responders),
        _ => {
            assert!(!walk.r.problems.is_empty(), "responders were rejected without saying why");
            Err(walk.r.problems)
        }
    }
}
