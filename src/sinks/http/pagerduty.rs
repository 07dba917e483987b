//! PagerDuty Events API v2: `POST /v2/enqueue`.
//!
//! `{routing_key, event_action: trigger|acknowledge|resolve, dedup_key?, payload: {summary,
//! source, severity: critical|error|warning|info, ...}}` answers 202 `{"status": "success",
//! "message": "Event processed", "dedup_key": ...}` (a dedup key is made up for a trigger without
//! one). An invalid event answers 400 `{"status": "invalid event", "message": "Event object is
//! invalid", "errors": [...]}` listing every problem; 429 answers PagerDuty's `throttle event`.
//!
//! The notification's recipient is the routing key, its subject and body the summary (empty for an
//! acknowledge or resolve without payload); `channel_detail` has `event_action`, `dedup_key`,
//! `severity`, `source`, `component`, `group`, `class`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{accept, invalid, parse_json, str_field, take_slot};
use crate::sinks::Shared;

const ACTIONS: &[&str] = &["trigger", "acknowledge", "resolve"];
const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v2/enqueue", post(enqueue))
}

/// PagerDuty's error body.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    let body = match status.as_u16() {
        400 => json!({ "status": "invalid event", "message": message, "errors": [message] }),
        429 => json!({
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly. Please retry later.",
        }),
        _ => json!({ "status": "error", "message": message }),
    };
    (status, Json(body)).into_response()
}

fn invalid_event(errors: &[String]) -> Response {
    let body = json!({ "status": "invalid event", "message": "Event object is invalid", "errors": errors });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Every problem of an event, in PagerDuty's words.
fn validate(event: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let blank = |value: Option<&str>| value.is_none_or(|value| value.trim().is_empty());
    if !event.is_object() {
        return vec!["Event object is invalid".into()];
    }
    if blank(str_field(event, "routing_key")) {
        errors.push("'routing_key' is missing or blank".into());
    }
    let action = str_field(event, "event_action");
    match action {
        None => errors.push("'event_action' is missing or blank".into()),
        Some(action) if !ACTIONS.contains(&action) => {
            errors.push(
                "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)".into(),
            );
        }
        Some("trigger") => match event.get("payload") {
            Some(payload) if payload.is_object() => {
                for key in ["summary", "source"] {
                    if blank(str_field(payload, key)) {
                        errors.push(format!("'payload.{key}' is missing or blank"));
                    }
                }
                if !str_field(payload, "severity")
                    .is_some_and(|severity| SEVERITIES.contains(&severity))
                {
                    errors.push("'payload.severity' is invalid (must be one of: critical, error, warning, info)".into());
                }
            }
            _ => errors.push("'payload' is missing or blank".into()),
        },
        Some(_) => {
            if blank(str_field(event, "dedup_key")) {
                errors.push("'dedup_key' is missing or blank".into());
            }
        }
    }
    errors
}

async fn enqueue(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let accepted = match accept(&shared, error, "POST /v2/enqueue", &headers, body).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let event = match parse_json(&accepted.body) {
        Ok(event) => event,
        Err(detail) => {
            return invalid(
                &shared,
                invalid_event(std::slice::from_ref(&detail)),
                format!("pagerduty: {detail}"),
            );
        }
    };
    let errors = validate(&event);
    if !errors.is_empty() {
        let detail = format!("pagerduty: {}", errors.join("; "));
        return invalid(&shared, invalid_event(&errors), detail);
    }
    if let Some(response) = take_slot(&shared, error) {
        return response;
    }
    let dedup_key =
        str_field(&event, "dedup_key").map(str::to_string).unwrap_or_else(|| shared.id(""));
    let payload = event.get("payload").cloned().unwrap_or(Value::Null);
    let summary = str_field(&payload, "summary").map(str::to_string);
    let mut notification = shared.notification(accepted.received);
    notification.recipients =
        vec![str_field(&event, "routing_key").unwrap_or_default().to_string()];
    notification.subject = summary.clone();
    notification.body = summary.unwrap_or_default();
    notification.channel_detail = json!({
        "event_action": event["event_action"],
        "dedup_key": dedup_key,
        "severity": payload.get("severity"),
        "source": payload.get("source"),
        "component": payload.get("component"),
        "group": payload.get("group"),
        "class": payload.get("class"),
        "custom_details": payload.get("custom_details"),
    });
    shared.received(notification);
    let answer =
        json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key });
    (StatusCode::ACCEPTED, Json(answer)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed() {
        let errors = validate(&json!({"event_action": "trigger", "payload": {"severity": "bad"}}));
        assert_eq!(
            errors,
            vec![
                "'routing_key' is missing or blank",
                "'payload.summary' is missing or blank",
                "'payload.source' is missing or blank",
                "'payload.severity' is invalid (must be one of: critical, error, warning, info)",
            ]
        );
        assert_eq!(
            validate(&json!({"routing_key": "k", "event_action": "resolve"})),
            vec!["'dedup_key' is missing or blank"]
        );
        assert_eq!(validate(&json!({"routing_key": "k", "event_action": "page"})).len(), 1);
        let ok = json!({"routing_key": "k", "event_action": "trigger",
                        "payload": {"summary": "s", "source": "billing", "severity": "critical"}});
        assert!(validate(&ok).is_empty());
    }
}
