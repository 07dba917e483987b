//! A generic JSON webhook: `POST` to any path, any JSON value, answers 200 `{"ok": true}`.
//!
//! Invalid JSON answers 400 `{"error": ...}`; other methods 405. The notification's recipient is
//! the sink's name, its subject a top-level string `subject`, `title` or `summary` if there is one,
//! its body the JSON as compact text; `channel_detail` has the `path` and the `json` itself.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::{accept, invalid, parse_json, str_field, take_slot};
use crate::sinks::Shared;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/", post(receive)).route("/{*path}", post(receive))
}

/// The webhook's error body.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_string();
    let accepted = match accept(&shared, error, &format!("POST {path}"), &headers, body).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let value = match parse_json(&accepted.body) {
        Ok(value) => value,
        Err(detail) => {
            return invalid(
                &shared,
                error(StatusCode::BAD_REQUEST, &detail),
                format!("{path}: {detail}"),
            );
        }
    };
    if let Some(response) = take_slot(&shared, error) {
        return response;
    }
    let mut notification = shared.notification(accepted.received);
    notification.recipients = vec![shared.name.clone()];
    notification.subject = ["subject", "title", "summary"]
        .iter()
        .find_map(|key| str_field(&value, key))
        .map(str::to_string);
    notification.body = value.to_string();
    notification.channel_detail = json!({ "path": path, "json": value });
    shared.received(notification);
    (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
}
