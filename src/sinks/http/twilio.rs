//! Twilio's REST API, 2010-04-01: the Messages resource (SMS) and the Calls resource (voice).
//!
//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form: `To`, `From` or
//! `MessagingServiceSid`, `Body` or `MediaUrl`) answers 201 with a Message (`sid` `SM…`, `status`
//! `queued`); `POST …/Calls.json` (form: `To`, `From`, `Url` or `Twiml` or `ApplicationSid`)
//! answers 201 with a Call (`sid` `CA…`). Missing parameters answer 400 with Twilio's error JSON
//! (`code` 21604/21603/21602 for messages, 21201/21213/21205 for calls). Errors without a
//! Twilio-specific code use `20000 + status` (20404, 20429, 20500, 20503 are Twilio's own).
//! Dates are `null`: the sink has a run clock, not a calendar.
//!
//! `channel_detail.resource` is `messages` (SMS) or `calls` (voice): the engine treats them as two
//! channels. A call's `body` is its TwiML as text (what would be spoken), or empty for a `Url`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::{accept_on, form_value, invalid, markup_to_text, parse_form, take_slot};
use crate::sinks::{Resource, Shared};

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/2010-04-01/Accounts/{account}/Messages.json", post(messages))
        .route("/2010-04-01/Accounts/{account}/Calls.json", post(calls))
}

/// Twilio's error body.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    let code = 20000 + u32::from(status.as_u16());
    twilio_error(status, code, message)
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

/// SMS segments: 160 GSM characters (153 when split), 70 UCS-2 (67 when split).
fn segments(body: &str) -> usize {
    let (single, multi) = if body.is_ascii() { (160, 153) } else { (70, 67) };
    let chars = body.chars().count();
    if chars <= single { 1 } else { chars.div_ceil(multi) }
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let what = format!("POST Messages.json of {account}");
    let resource = Some(Resource::Messages);
    let accepted = match accept_on(&shared, error, &what, resource, &headers, body).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let form = parse_form(&accepted.body);
    let Some(to) = form_value(&form, "To") else {
        return invalid(
            &shared,
            twilio_error(StatusCode::BAD_REQUEST, 21604, "A 'To' phone number is required."),
            "Messages: no To",
        );
    };
    let from = form_value(&form, "From");
    let service = form_value(&form, "MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return invalid(
            &shared,
            twilio_error(StatusCode::BAD_REQUEST, 21603, "A 'From' phone number is required."),
            "Messages: no From",
        );
    }
    let text = form_value(&form, "Body");
    let media: Vec<String> =
        form.iter().filter(|(k, _)| k == "MediaUrl").map(|(_, v)| v.clone()).collect();
    if text.is_none() && media.is_empty() {
        return invalid(
            &shared,
            twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required."),
            "Messages: no Body",
        );
    }
    if let Some(response) = take_slot(&shared, error) {
        return response;
    }
    let sid = shared.id("SM");
    let text = text.unwrap_or_default();
    let uri = format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json");
    let answer = json!({
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": text,
        "date_created": null,
        "date_sent": null,
        "date_updated": null,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": service,
        "num_media": media.len().to_string(),
        "num_segments": segments(&text).to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": { "media": format!("/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json") },
        "to": to,
        "uri": uri,
    });
    let mut notification = shared.notification(accepted.received);
    notification.from = from.clone().or(service.clone());
    notification.recipients = vec![to.clone()];
    notification.body = text;
    notification.channel_detail = json!({
        "resource": "messages",
        "account_sid": account,
        "sid": sid,
        "to": to,
        "from": from,
        "messaging_service_sid": service,
        "media_url": media,
    });
    shared.received(notification);
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn calls(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let what = format!("POST Calls.json of {account}");
    let resource = Some(Resource::Calls);
    let accepted = match accept_on(&shared, error, &what, resource, &headers, body).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let form = parse_form(&accepted.body);
    let Some(to) = form_value(&form, "To") else {
        return invalid(
            &shared,
            twilio_error(StatusCode::BAD_REQUEST, 21201, "No 'To' number is specified"),
            "Calls: no To",
        );
    };
    let Some(from) = form_value(&form, "From") else {
        return invalid(
            &shared,
            twilio_error(StatusCode::BAD_REQUEST, 21213, "No 'From' number is specified"),
            "Calls: no From",
        );
    };
    let url = form_value(&form, "Url");
    let twiml = form_value(&form, "Twiml");
    let application = form_value(&form, "ApplicationSid");
    if url.is_none() && twiml.is_none() && application.is_none() {
        return invalid(
            &shared,
            twilio_error(
                StatusCode::BAD_REQUEST,
                21205,
                "Url parameter is required. Please provide the Url, Twiml or ApplicationSid parameter.",
            ),
            "Calls: no Url, Twiml or ApplicationSid",
        );
    }
    if let Some(response) = take_slot(&shared, error) {
        return response;
    }
    let sid = shared.id("CA");
    let answer = json!({
        "account_sid": account,
        "annotation": null,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": null,
        "date_updated": null,
        "direction": "outbound-api",
        "duration": null,
        "end_time": null,
        "forwarded_from": null,
        "from": from,
        "from_formatted": from,
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": null,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": sid,
        "start_time": null,
        "status": "queued",
        "subresource_uris": {
            "notifications": format!("/2010-04-01/Accounts/{account}/Calls/{sid}/Notifications.json"),
            "recordings": format!("/2010-04-01/Accounts/{account}/Calls/{sid}/Recordings.json"),
        },
        "to": to,
        "to_formatted": to,
        "trunk_sid": null,
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
    });
    let mut notification = shared.notification(accepted.received);
    notification.from = Some(from.clone());
    notification.recipients = vec![to.clone()];
    notification.body = twiml.as_deref().map(markup_to_text).unwrap_or_default();
    notification.channel_detail = json!({
        "resource": "calls",
        "account_sid": account,
        "sid": sid,
        "to": to,
        "from": from,
        "url": url,
        "twiml": twiml,
        "application_sid": application,
    });
    shared.received(notification);
    (StatusCode::CREATED, Json(answer)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_the_encoding() {
        assert_eq!(segments("hello"), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"é".repeat(70)), 1);
        assert_eq!(segments(&"é".repeat(71)), 2);
    }
}
