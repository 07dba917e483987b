//! Slack incoming webhooks: `POST /services/T…/B…/X…`.
//!
//! The body is JSON (`text`, `blocks`, `attachments`, `channel`, `username`, ...) or a form with a
//! `payload` field holding that JSON, as Slack accepts both. A message answers 200 with the
//! plain-text body `ok`; invalid JSON answers 400 `invalid_payload`, a message without `text`,
//! `blocks` or `attachments` 400 `no_text`; unknown paths 404 `no_service`. Slack answers in plain
//! text, so does the sink.
//!
//! The notification's recipient is the sink's name (a webhook posts to one channel); its body is
//! the `text` followed by the texts found in `blocks` and `attachments`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{accept, form_value, invalid, parse_form, parse_json, str_field, take_slot};
use crate::sinks::Shared;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/services/{team}/{bot}/{secret}", post(post_message))
}

/// Slack's plain-text error answer.
pub(super) fn error(status: StatusCode, _message: &str) -> Response {
    let text = match status.as_u16() {
        400 => "invalid_payload",
        403 => "invalid_token",
        404 => "no_service",
        405 => "invalid_method",
        410 => "channel_is_archived",
        413 => "request_too_large",
        429 => "rate_limited",
        _ => "rollup_error",
    };
    (status, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

/// Texts inside blocks and attachments, depth first (`text`, `title`, `pretext`, `fallback`).
fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(text)
                        if ["text", "title", "pretext", "fallback"].contains(&key.as_str()) =>
                    {
                        if !text.trim().is_empty() && !out.contains(text) {
                            out.push(text.clone());
                        }
                    }
                    other => collect_texts(other, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_texts(item, out)),
        _ => {}
    }
}

async fn post_message(
    State(shared): State<Arc<Shared>>,
    Path((team, bot, _secret)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let what = format!("POST webhook {team}/{bot}");
    let accepted = match accept(&shared, error, &what, &headers, body).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let parsed = if is_form {
        match form_value(&parse_form(&accepted.body), "payload") {
            Some(payload) => parse_json(payload.as_bytes()),
            None => Err("form without a payload field".into()),
        }
    } else {
        parse_json(&accepted.body)
    };
    let message = match parsed {
        Ok(message) if message.is_object() => message,
        Ok(_) => {
            return invalid(
                &shared,
                plain(StatusCode::BAD_REQUEST, "invalid_payload"),
                "slack: not a JSON object",
            );
        }
        Err(detail) => {
            return invalid(
                &shared,
                plain(StatusCode::BAD_REQUEST, "invalid_payload"),
                format!("slack: {detail}"),
            );
        }
    };
    let text = str_field(&message, "text").unwrap_or("").to_string();
    let non_empty = |key: &str| {
        message.get(key).and_then(Value::as_array).is_some_and(|items| !items.is_empty())
    };
    if text.trim().is_empty() && !non_empty("blocks") && !non_empty("attachments") {
        return invalid(
            &shared,
            plain(StatusCode::BAD_REQUEST, "no_text"),
            "slack: no text, blocks or attachments",
        );
    }
    if let Some(response) = take_slot(&shared, error) {
        return response;
    }
    let mut texts = Vec::new();
    if !text.trim().is_empty() {
        texts.push(text);
    }
    for key in ["blocks", "attachments"] {
        if let Some(value) = message.get(key) {
            collect_texts(value, &mut texts);
        }
    }
    let count = |key: &str| message.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    let mut notification = shared.notification(accepted.received);
    notification.recipients = vec![shared.name.clone()];
    notification.body = texts.join("\n");
    notification.channel_detail = json!({
        "team": team,
        "bot": bot,
        "channel": message.get("channel"),
        "username": message.get("username"),
        "blocks": count("blocks"),
        "attachments": count("attachments"),
    });
    shared.received(notification);
    plain(StatusCode::OK, "ok")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_come_from_blocks_and_attachments() {
        let blocks = json!([
            {"type": "header", "text": {"type": "plain_text", "text": "Billing outage"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Service:* billing"}]},
            {"type": "divider"}
        ]);
        let mut out = Vec::new();
        collect_texts(&blocks, &mut out);
        assert_eq!(out, vec!["Billing outage", "*Service:* billing"]);
    }
}
