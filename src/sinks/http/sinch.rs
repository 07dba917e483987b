//! Sinch Fax API v3: `POST /v3/projects/{projectId}/faxes`.
//!
//! The body is JSON (`to`, `from`, `contentUrl` as a string or list, `callbackUrl`, ...) or
//! `multipart/form-data` (fields `to`, `from`, `contentUrl`, and file parts). It answers 200 with a
//! Fax (`id`, `direction` `OUTBOUND`, `status` `QUEUED`, `projectId`, ...). A missing `to` or
//! missing content answers 400 with Sinch's error JSON (`code`, `status` `INVALID_ARGUMENT`,
//! `message`, `details`). Multipart bodies are parsed with `mail-parser` (they are MIME).
//!
//! The notification's `body` is the text of text files (HTML stripped); other files are listed in
//! `channel_detail.files` with their size.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};

use super::{accept, invalid, markup_to_text, parse_json, str_field, take_slot};
use crate::sinks::Shared;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v3/projects/{project}/faxes", post(send))
}

/// Sinch's (Google API style) error body.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    let name = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 | 501 => "UNIMPLEMENTED",
        409 => "ALREADY_EXISTS",
        413 | 429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    let body =
        json!({ "code": status.as_u16(), "status": name, "message": message, "details": [] });
    (status, Json(body)).into_response()
}

/// What a fax request carried.
#[derive(Debug, Default)]
struct FaxRequest {
    to: Option<String>,
    from: Option<String>,
    content_urls: Vec<String>,
    callback_url: Option<String>,
    /// `(name, content type, bytes, text if it is a text file)`.
    files: Vec<(Option<String>, String, usize, Option<String>)>,
}

fn from_json(value: &Value) -> Result<FaxRequest, String> {
    if !value.is_object() {
        return Err("the body must be a JSON object".into());
    }
    let content_urls = match value.get("contentUrl") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(url)) => vec![url.clone()],
        Some(Value::Array(urls)) => {
            urls.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        Some(_) => return Err("contentUrl must be a string or a list of strings".into()),
    };
    Ok(FaxRequest {
        to: str_field(value, "to").map(str::to_string),
        from: str_field(value, "from").map(str::to_string),
        content_urls,
        callback_url: str_field(value, "callbackUrl").map(str::to_string),
        files: Vec::new(),
    })
}

fn from_multipart(content_type: &str, body: &[u8]) -> Result<FaxRequest, String> {
    // A multipart/form-data body is a MIME entity once its content type is put in front of it.
    let mut entity = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
    entity.extend_from_slice(body);
    let message =
        MessageParser::default().parse(&entity).ok_or("the multipart body could not be parsed")?;
    let mut request = FaxRequest::default();
    for part in message.parts.iter().skip(1) {
        let Some(name) = part.content_disposition().and_then(|d| d.attribute("name")) else {
            continue;
        };
        let file_name = part.attachment_name().map(str::to_string);
        if file_name.is_none() && name != "file" {
            let value = part.text_contents().unwrap_or_default().trim().to_string();
            match name {
                "to" => request.to = Some(value),
                "from" => request.from = Some(value),
                "contentUrl" => request.content_urls.push(value),
                "callbackUrl" => request.callback_url = Some(value),
                _ => {}
            }
            continue;
        }
        let content_type = part
            .content_type()
            .map(|t| format!("{}/{}", t.ctype(), t.subtype().unwrap_or("octet-stream")))
            .unwrap_or_else(|| "application/octet-stream".into());
        let text = if part.is_text_html() {
            part.text_contents().map(markup_to_text)
        } else if part.is_text() {
            part.text_contents().map(str::to_string)
        } else {
            None
        };
        request.files.push((file_name, content_type, part.contents().len(), text));
    }
    Ok(request)
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let what = format!("POST faxes of project {project}");
    let accepted = match accept(&shared, error, &what, &headers, body).await {
        Ok(accepted) => accepted,
        Err(response) => return response,
    };
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let parsed = if content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        from_multipart(&content_type, &accepted.body)
    } else {
        parse_json(&accepted.body).and_then(|value| from_json(&value))
    };
    let request = match parsed {
        Ok(request) => request,
        Err(message) => {
            return invalid(
                &shared,
                error(StatusCode::BAD_REQUEST, &message),
                format!("fax: {message}"),
            );
        }
    };
    let Some(to) = request.to.clone().filter(|to| !to.is_empty()) else {
        return invalid(
            &shared,
            error(StatusCode::BAD_REQUEST, "to: must not be empty"),
            "fax: no to",
        );
    };
    if request.content_urls.is_empty() && request.files.is_empty() {
        return invalid(
            &shared,
            error(StatusCode::BAD_REQUEST, "Either contentUrl or a file is required"),
            "fax: no content",
        );
    }
    if let Some(response) = take_slot(&shared, error) {
        return response;
    }
    let id = ulid_like(&shared);
    let answer = json!({
        "id": id,
        "direction": "OUTBOUND",
        "from": request.from,
        "to": to,
        "contentUrl": request.content_urls,
        "numberOfPages": 0,
        "status": "QUEUED",
        "price": null,
        "createTime": null,
        "headerTimeZone": "America/New_York",
        "headerPageNumbers": true,
        "retryDelaySeconds": 60,
        "maxRetries": 3,
        "resolution": "FINE",
        "imageConversionMethod": "HALFTONE",
        "callbackUrl": request.callback_url,
        "callbackUrlContentType": "multipart/form-data",
        "projectId": project,
        "serviceId": null,
        "hasFile": !request.files.is_empty(),
    });
    let mut notification = shared.notification(accepted.received);
    notification.from = request.from.clone();
    notification.recipients = vec![to.clone()];
    notification.body =
        request.files.iter().filter_map(|f| f.3.clone()).collect::<Vec<_>>().join("\n");
    let files: Vec<Value> = request
        .files
        .iter()
        .map(|(name, content_type, bytes, _)| json!({ "name": name, "content_type": content_type, "bytes": bytes }))
        .collect();
    notification.channel_detail = json!({
        "project_id": project,
        "id": id,
        "to": to,
        "content_url": request.content_urls,
        "files": files,
        "callback_url": request.callback_url,
    });
    shared.received(notification);
    (StatusCode::OK, Json(answer)).into_response()
}

/// A 26-character Crockford base32 id, as Sinch's ULIDs look, from the seeded RNG.
fn ulid_like(shared: &Shared) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let (mut high, mut low) = (shared.next_u64(), shared.next_u64());
    let mut id = String::with_capacity(26);
    for i in 0..26 {
        let source = if i < 13 { &mut high } else { &mut low };
        id.push(char::from(ALPHABET[(*source & 31) as usize]));
        *source >>= 5;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_fields_and_files() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\n+15550001111\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notice.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nBilling is down.\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.pdf\"\r\n\
                    Content-Type: application/pdf\r\n\r\n%PDF-1.4 xx\r\n--XX--\r\n";
        let request = from_multipart("multipart/form-data; boundary=XX", body.as_bytes()).unwrap();
        assert_eq!(request.to.as_deref(), Some("+15550001111"));
        assert_eq!(request.files.len(), 2);
        assert_eq!(request.files[0].0.as_deref(), Some("notice.txt"));
        assert_eq!(request.files[0].3.as_deref(), Some("Billing is down."));
        assert_eq!(request.files[1].1, "application/pdf");
        assert_eq!(request.files[1].3, None);
    }

    #[test]
    fn json_content_url_is_a_string_or_a_list() {
        let one = from_json(&json!({"to": "+1", "contentUrl": "https://x/a.pdf"})).unwrap();
        assert_eq!(one.content_urls, vec!["https://x/a.pdf"]);
        let two = from_json(&json!({"to": "+1", "contentUrl": ["u1", "u2"]})).unwrap();
        assert_eq!(two.content_urls.len(), 2);
        assert!(from_json(&json!({"to": "+1", "contentUrl": 5})).is_err());
        assert!(from_json(&json!([1])).is_err());
    }
}
