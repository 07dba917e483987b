//! Gameday vocabulary: the `human` step (a prompt for a person in a role, with a deadline and
//! what counts as done) and the responders file (`--responders FILE`: scripted people, per role a
//! delay and what they do). Validation of both is in `validate/human.rs`.
//!
//! A `human` step may offer a decision (`roll-back: SERVICE`): besides acknowledging ("go on"),
//! the person may answer "we decided to roll back", which the engine carries out as a `rollback`
//! step of that service.

use std::time::Duration;

use serde::Serialize;

use super::model::duration_serde;

/// `human:` — a prompt for a person in a role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Human {
    /// `role`: who is asked (`on-call`, `support`, …); a responder of this role answers it.
    pub role: String,
    /// `prompt`: what the person is asked to do, as shown to them.
    pub prompt: String,
    /// `runbook`: a link or text the person follows.
    pub runbook: Option<String>,
    /// `deadline`: how long the step waits for the person at most; the timeline goes on after
    /// it either way (`human-within` judges whether it was done in time).
    #[serde(with = "duration_serde")]
    pub deadline: Duration,
    /// `done`: what counts as done.
    pub done: HumanDone,
    /// `roll-back: SERVICE`: the prompt offers the decision "we decided to roll back"; taking it
    /// rolls back the latest upgrade of the service, as a `rollback` step does. Acknowledging
    /// means going on. Only with `done: acknowledge`, on the main timeline after an `upgrade` of
    /// the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roll_back: Option<String>,
}

/// What completes a `human` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HumanDone {
    /// `done: acknowledge`: the person says so (a responder, the terminal or the console).
    Acknowledge,
    /// `done: { notification: { sink, contains } }`: a notification arrives at the sink after
    /// the prompt (the person's own tooling posted it), with `contains` in its subject or body
    /// (case-insensitive) when given.
    Notification {
        /// The sink.
        sink: String,
        /// Text the notification must contain.
        contains: Option<String>,
    },
    /// `done: { healthy: SERVICE }`: the service is healthy at the prompt or becomes so after it.
    Healthy {
        /// The service.
        service: String,
    },
}

impl HumanDone {
    /// In words, for the journal and reports: `acknowledge`, `notification on sink status
    /// containing "resolved"`, `billing healthy`.
    pub fn describe(&self) -> String {
        match self {
            HumanDone::Acknowledge => "acknowledge".to_owned(),
            HumanDone::Notification { sink, contains: None } => format!("notification on {sink}"),
            HumanDone::Notification { sink, contains: Some(text) } => {
                format!("notification on {sink} containing \"{text}\"")
            }
            HumanDone::Healthy { service } => format!("{service} healthy"),
        }
    }
}

/// A responders file: per role, how its scripted person answers prompts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Responders {
    /// Role → its responses, in the order written.
    pub roles: indexmap::IndexMap<String, Vec<Response>>,
    /// The file, for messages.
    pub source: std::path::PathBuf,
}

impl Responders {
    /// The response of `role` to the prompt of step `step`: the first entry naming the step, else
    /// the first naming none.
    pub fn response(&self, role: &str, step: &str) -> Option<&Response> {
        let responses = self.roles.get(role)?;
        responses
            .iter()
            .find(|r| r.step.as_deref() == Some(step))
            .or_else(|| responses.iter().find(|r| r.step.is_none()))
    }
}

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    /// `step`: only the prompt of this step (default: every prompt of the role).
    pub step: Option<String>,
    /// `delay`: how long after the prompt the person acts.
    #[serde(with = "duration_serde")]
    pub delay: Duration,
    /// `do`: what they do.
    pub action: ResponderAction,
}

/// What a scripted person does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponderAction {
    /// `do: acknowledge`.
    Acknowledge,
    /// `do: { http: { sink | service, port, method, path, body, status } }`: one HTTP request
    /// from the harness, as a `call` step sends it, to a sink's harness address or a service's
    /// published port; then they acknowledge.
    Http(ResponderHttp),
}

/// Where a responder's request goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpTarget {
    /// `sink: NAME`: the sink's 127.0.0.1 address.
    Sink(String),
    /// `service: NAME, port: PORT`: the service's published port.
    Service {
        /// The service.
        service: String,
        /// Its container port.
        port: u16,
    },
}

/// `do: { http: ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponderHttp {
    /// Where it goes.
    pub target: HttpTarget,
    /// `method` (default `POST`).
    pub method: String,
    /// `path` (default `/`).
    pub path: String,
    /// `body`: JSON text, sent as `application/json`.
    pub body: Option<String>,
    /// `timeout` (default 5s).
    #[serde(with = "duration_serde")]
    pub timeout: Duration,
}

/// Every `human` step of `scenario` (inside `parallel` groups too), in document order.
pub fn human_steps(scenario: &super::Scenario) -> Vec<(&super::model::Step, &Human)> {
    scenario
        .all_steps()
        .into_iter()
        .filter_map(|step| match &step.action {
            super::model::Action::Human(human) => Some((step, human)),
            _ => None,
        })
        .collect()
}

/// What keeps `responders` from answering `scenario` unattended, one sentence each: a human step
/// whose role has no response, a response naming a step that is not a human step of that role,
/// a request to a sink the scenario does not declare.
pub fn unanswered(scenario: &super::Scenario, responders: &Responders) -> Vec<String> {
    let file = responders.source.display();
    let humans = human_steps(scenario);
    let mut problems = Vec::new();
    for (step, human) in &humans {
        if responders.response(&human.role, &step.name).is_none() {
            problems.push(format!(
                "step `{}` asks role `{}`, and {file} has no response for it (add `{}: {{ delay: 30s, do: acknowledge }}`)",
                step.name, human.role, human.role
            ));
        }
    }
    for (role, responses) in &responders.roles {
        for response in responses {
            if let Some(step) = &response.step
                && !humans.iter().any(|(s, h)| &s.name == step && &h.role == role)
            {
                problems.push(format!(
                    "{file}: role `{role}` answers step `{step}`, which is not a `human` step of role `{role}` in `{}`",
                    scenario.name
                ));
            }
            if let ResponderAction::Http(ResponderHttp { target: HttpTarget::Sink(sink), .. }) =
                &response.action
                && !scenario.sinks.contains_key(sink)
            {
                problems.push(format!(
                    "{file}: role `{role}` posts to sink `{sink}`, which `{}` does not declare",
                    scenario.name
                ));
            }
        }
    }
    problems
}
