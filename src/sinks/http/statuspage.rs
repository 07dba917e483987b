//! Atlassian Statuspage API v1: incidents, incident updates and scheduled maintenances.
//!
//! `POST /v1/pages/{page_id}/incidents` with `{"incident": {name, status, body, impact_override,
//! scheduled_for, scheduled_until, components, ...}}` answers 201 with the incident (`id`,
//! `incident_updates`, `shortlink`, ...). A scheduled maintenance is an incident with status
//! `scheduled` (the default when `scheduled_for` is given) and needs `scheduled_for` and
//! `scheduled_until` (RFC 3339, until after for). `PATCH` (or `PUT`)
//! `/v1/pages/{page_id}/incidents/{incident_id}` posts an incident update (new status and/or body)
//! and answers 200; an unknown incident (or one of another page) answers 404. Realtime incidents
//! take `investigating|identified|monitoring|resolved`, maintenances
//! `scheduled|in_progress|verifying|completed`; anything else answers 422 with Statuspage's
//! `{"error": [...]}`. `GET` of one incident or a page's list answers from the same state (not
//! recorded). Dates other than the scheduled ones are `null`: the sink has a run clock, not a
//! calendar.
//!
//! Every create and update is a notification: recipient the page id, subject the incident name,
//! body the update's text, `channel_detail` with `action` (`create`/`update`), `incident_id`,
//! `status`, `previous_status`, `impact`, `scheduled_for`, `scheduled_until`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};

use super::{accept, invalid, parse_json, str_field, take_slot};
use crate::sinks::{RejectReason, Shared};

const REALTIME: &[&str] = &["investigating", "identified", "monitoring", "resolved"];
const SCHEDULED: &[&str] = &["scheduled", "in_progress", "verifying", "completed"];
/// Statuspage's `impact_override` values (`maintenance` is what scheduled maintenances carry).
const IMPACTS: &[&str] = &["none", "maintenance", "minor", "major", "critical"];

/// Incidents by id, with their page.
#[derive(Debug, Default)]
struct Incidents(Mutex<HashMap<String, Value>>);

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/pages/{page}/incidents", post(create).get(list))
        .route("/v1/pages/{page}/incidents/{incident}", get(show).patch(update).put(update))
        .layer(Extension(Arc::new(Incidents::default())))
}

/// Statuspage's error body.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Statuspage's validation answer: 422 with a list of messages.
fn unprocessable(messages: &[String]) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": messages }))).into_response()
}

/// The `incident` object of a request body.
fn incident_of(body: &[u8]) -> Result<Map<String, Value>, String> {
    let value = parse_json(body)?;
    match value.get("incident") {
        Some(Value::Object(incident)) => Ok(incident.clone()),
        _ => Err("incident is missing".into()),
    }
}

/// Check an RFC 3339 time field; `Ok(None)` when absent.
fn time_field(
    incident: &Map<String, Value>,
    key: &str,
    label: &str,
    errors: &mut Vec<String>,
) -> Option<jiff::Timestamp> {
    let value = incident.get(key)?.as_str()?;
    match value.parse::<jiff::Timestamp>() {
        Ok(time) => Some(time),
        Err(_) => {
            errors.push(format!("{label} is not a valid date"));
            None
        }
    }
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(incidents): Extension<Arc<Incidents>>,
    Path(page): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let accepted =
        match accept(&shared, error, &format!("POST incidents of page {page}"), &headers, body)
            .await
        {
            Ok(accepted) => accepted,
            Err(response) => return response,
        };
    let request = match incident_of(&accepted.body) {
        Ok(request) => request,
        Err(message) => {
            return invalid(
                &shared,
                error(StatusCode::BAD_REQUEST, &message),
                format!("incident: {message}"),
            );
        }
    };
    let mut errors = Vec::new();
    let name = request.get("name").and_then(Value::as_str).unwrap_or("").trim().to_string();
    if name.is_empty() {
        errors.push("Name can't be blank".to_string());
    }
    let scheduled_for = time_field(&request, "scheduled_for", "Scheduled for", &mut errors);
    let scheduled_until = time_field(&request, "scheduled_until", "Scheduled until", &mut errors);
    let default_status =
        if request.contains_key("scheduled_for") { "scheduled" } else { "investigating" };
    let status =
        request.get("status").and_then(Value::as_str).unwrap_or(default_status).to_string();
    let scheduled = SCHEDULED.contains(&status.as_str());
    if !scheduled && !REALTIME.contains(&status.as_str()) {
        errors.push(format!("Status '{status}' is not included in the list"));
    }
    if scheduled {
        if !request.contains_key("scheduled_for") {
            errors.push("Scheduled for can't be blank".into());
        }
        if !request.contains_key("scheduled_until") {
            errors.push("Scheduled until can't be blank".into());
        }
        if let (Some(from), Some(until)) = (scheduled_for, scheduled_until) {
            if until <= from {
                errors.push("Scheduled until must be after scheduled for".into());
            }
        }
    }
    let impact = request.get("impact_override").and_then(Value::as_str).map(str::to_string);
    if impact.as_deref().is_some_and(|impact| !IMPACTS.contains(&impact)) {
        errors.push("Impact override is not included in the list".into());
    }
    if !errors.is_empty() {
        let detail = format!("incident: {}", errors.join("; "));
        return invalid(&shared, unprocessable(&errors), detail);
    }
    if let Some(response) = take_slot(&shared, error) {
        return response;
    }
    let id = short_id(&shared);
    let text = str_field(&Value::Object(request.clone()), "body").unwrap_or("").to_string();
    let update = incident_update(&shared, &id, &status, &text);
    let incident = json!({
        "id": id,
        "name": name,
        "status": status,
        "impact": impact.clone().unwrap_or_else(|| if scheduled { "maintenance".into() } else { "none".into() }),
        "impact_override": impact,
        "page_id": page,
        "created_at": null,
        "updated_at": null,
        "started_at": null,
        "monitoring_at": null,
        "resolved_at": null,
        "scheduled_for": request.get("scheduled_for").cloned().unwrap_or(Value::Null),
        "scheduled_until": request.get("scheduled_until").cloned().unwrap_or(Value::Null),
        "scheduled_remind_prior": request.get("scheduled_remind_prior").cloned().unwrap_or(Value::Bool(false)),
        "scheduled_auto_in_progress": request.get("scheduled_auto_in_progress").cloned().unwrap_or(Value::Bool(false)),
        "scheduled_auto_completed": request.get("scheduled_auto_completed").cloned().unwrap_or(Value::Bool(false)),
        "metadata": request.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "components": components(&request),
        "incident_updates": [update],
        "postmortem_body": null,
        "postmortem_published_at": null,
        "shortlink": format!("http://stspg.io/{id}"),
    });
    incidents.0.lock().expect("incident store poisoned").insert(id.clone(), incident.clone());
    let mut notification = shared.notification(accepted.received);
    notification.recipients = vec![page.clone()];
    notification.subject = Some(name);
    notification.body = text;
    notification.channel_detail = detail("create", &incident, None);
    shared.received(notification);
    (StatusCode::CREATED, Json(incident)).into_response()
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Extension(incidents): Extension<Arc<Incidents>>,
    Path((page, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let accepted = match accept(
        &shared,
        error,
        &format!("PATCH incident {id} of page {page}"),
        &headers,
        body,
    )
    .await
    {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let request = match incident_of(&accepted.body) {
        Ok(request) => request,
        Err(message) => {
            return invalid(
                &shared,
                error(StatusCode::BAD_REQUEST, &message),
                format!("incident {id}: {message}"),
            );
        }
    };
    let mut store = incidents.0.lock().expect("incident store poisoned");
    let Some(incident) = store.get_mut(&id).filter(|incident| incident["page_id"] == page.as_str())
    else {
        shared.rejected(RejectReason::UnknownResource, format!("incident {id} of page {page}"));
        return error(StatusCode::NOT_FOUND, "The requested resource could not be found.");
    };
    let previous = incident["status"].as_str().unwrap_or("").to_string();
    let scheduled = SCHEDULED.contains(&previous.as_str());
    let allowed = if scheduled { SCHEDULED } else { REALTIME };
    let status = request.get("status").and_then(Value::as_str).unwrap_or(&previous).to_string();
    let mut errors = Vec::new();
    if !allowed.contains(&status.as_str()) {
        let kind = if scheduled { "a scheduled maintenance" } else { "a realtime incident" };
        errors.push(format!("Status '{status}' is not valid for {kind}"));
    }
    let impact = request.get("impact_override").and_then(Value::as_str);
    if impact.is_some_and(|impact| !IMPACTS.contains(&impact)) {
        errors.push("Impact override is not included in the list".into());
    }
    if let Some(name) = request.get("name").and_then(Value::as_str) {
        if name.trim().is_empty() {
            errors.push("Name can't be blank".into());
        }
    }
    if !errors.is_empty() {
        let detail = format!("incident {id}: {}", errors.join("; "));
        return invalid(&shared, unprocessable(&errors), detail);
    }
    if let Some(response) = take_slot(&shared, error) {
        return response;
    }
    let text = request.get("body").and_then(Value::as_str).unwrap_or("").to_string();
    let update = incident_update(&shared, &id, &status, &text);
    incident["status"] = json!(status);
    if let Some(impact) = impact {
        incident["impact_override"] = json!(impact);
        incident["impact"] = json!(impact);
    }
    if let Some(name) = request.get("name").and_then(Value::as_str) {
        incident["name"] = json!(name);
    }
    if request.contains_key("components") {
        incident["components"] = components(&request);
    }
    if let Some(updates) = incident["incident_updates"].as_array_mut() {
        // Newest first, as Statuspage lists them.
        updates.insert(0, update);
    }
    let incident = incident.clone();
    drop(store);
    let mut notification = shared.notification(accepted.received);
    notification.recipients = vec![page];
    notification.subject = incident["name"].as_str().map(str::to_string);
    notification.body = text;
    notification.channel_detail = detail("update", &incident, Some(&previous));
    shared.received(notification);
    (StatusCode::OK, Json(incident)).into_response()
}

async fn show(
    State(shared): State<Arc<Shared>>,
    Extension(incidents): Extension<Arc<Incidents>>,
    Path((page, id)): Path<(String, String)>,
) -> Response {
    let store = incidents.0.lock().expect("incident store poisoned");
    match store.get(&id).filter(|incident| incident["page_id"] == page.as_str()) {
        Some(incident) => (StatusCode::OK, Json(incident.clone())).into_response(),
        None => {
            shared.rejected(RejectReason::UnknownResource, format!("incident {id} of page {page}"));
            error(StatusCode::NOT_FOUND, "The requested resource could not be found.")
        }
    }
}

async fn list(
    Extension(incidents): Extension<Arc<Incidents>>,
    Path(page): Path<String>,
) -> Response {
    let store = incidents.0.lock().expect("incident store poisoned");
    let of_page: Vec<&Value> =
        store.values().filter(|incident| incident["page_id"] == page.as_str()).collect();
    (StatusCode::OK, Json(json!(of_page))).into_response()
}

fn incident_update(shared: &Shared, incident: &str, status: &str, body: &str) -> Value {
    json!({
        "id": short_id(shared),
        "incident_id": incident,
        "status": status,
        "body": body,
        "created_at": null,
        "updated_at": null,
        "display_at": null,
        "affected_components": null,
        "deliver_notifications": true,
        "custom_tweet": null,
        "tweet_id": null,
    })
}

/// `components` of a request (`{component_id: status}`) as Statuspage lists them.
fn components(request: &Map<String, Value>) -> Value {
    let Some(Value::Object(components)) = request.get("components") else { return json!([]) };
    Value::Array(
        components.iter().map(|(id, status)| json!({ "id": id, "status": status })).collect(),
    )
}

fn detail(action: &str, incident: &Value, previous: Option<&str>) -> Value {
    json!({
        "action": action,
        "page_id": incident["page_id"],
        "incident_id": incident["id"],
        "status": incident["status"],
        "previous_status": previous,
        "impact": incident["impact"],
        "scheduled_for": incident["scheduled_for"],
        "scheduled_until": incident["scheduled_until"],
        "components": incident["components"],
    })
}

/// A 12-character lowercase id, as Statuspage's look.
fn short_id(shared: &Shared) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut bits = shared.next_u64();
    (0..12)
        .map(|_| {
            let c = ALPHABET[(bits % 36) as usize];
            bits /= 36;
            char::from(c)
        })
        .collect()
}
