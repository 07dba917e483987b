//! One HTTP exchange with `127.0.0.1:PORT`, bounded by a deadline, with transport failures told
//! apart from answers (a transport failure may mean the port moved).

use std::time::Duration;

use tokio::time::Instant;

/// An HTTP client for traffic: no proxy (traffic only ever goes to 127.0.0.1) and keep-alive
/// connection reuse, so a steady stream does not open a connection per request.
///
/// A pooled connection that the service closed (it restarted) is noticed by the pool or fails
/// one request at most; a request that times out takes its connection with it, so a dead
/// connection is never handed out twice.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .expect("a plain HTTP client always builds")
}

/// A complete answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// An exchange that did not produce a complete answer.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The status, when the head of an answer came before the failure.
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
    /// Whether the connection failed (refused, reset, closed, ...), as opposed to the deadline
    /// passing: the port may have moved.
    pub connection: bool,
}

/// Send one request to `http://127.0.0.1:{port}{path}` and read the whole answer (so the
/// connection can be reused), giving up at `deadline`.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    method: &str,
    port: u16,
    path: &str,
    body: Option<&str>,
    deadline: Instant,
    timeout: Duration,
) -> Result<Answer, Failure> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = http.request(method, format!("http://127.0.0.1:{port}{path}"));
    if let Some(body) = body {
        request =
            request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_owned());
    }
    let mut status = None;
    let exchange = async {
        let response = request.send().await?;
        status = Some(response.status().as_u16());
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>(body)
    };
    let result = tokio::time::timeout_at(deadline, exchange).await;
    match result {
        Ok(Ok(body)) => {
            Ok(Answer { status: status.expect("a body follows a status"), body: body.to_vec() })
        }
        Ok(Err(error)) => {
            Err(Failure { status, message: describe(&error, status.is_some()), connection: true })
        }
        Err(_) => Err(Failure {
            status,
            message: format!("no answer within {}", crate::scenario::format_duration(timeout)),
            connection: false,
        }),
    }
}

fn describe(error: &reqwest::Error, had_status: bool) -> String {
    // reqwest's own message is generic ("error sending request for url ..."); the innermost
    // cause says what happened ("Connection refused (os error 111)").
    let mut innermost: &dyn std::error::Error = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    let what = if error.is_connect() {
        "connect"
    } else if had_status {
        "reading the answer"
    } else {
        "request"
    };
    format!("{what}: {innermost}")
}

/// The written id in a successful answer: the top-level `field` of a JSON object, as text
/// whether the service wrote it as a number or a string.
pub(crate) fn write_id(body: &[u8], field: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| format!("the answer is not JSON ({error}), so it has no `{field}`"))?;
    match value.get(field) {
        Some(serde_json::Value::String(id)) => Ok(id.clone()),
        Some(serde_json::Value::Number(id)) => Ok(id.to_string()),
        Some(other) => {
            Err(format!("`{field}` in the answer is neither a string nor a number: {other}"))
        }
        None => Err(format!("the answer has no `{field}`")),
    }
}

/// `template` with every `{id}` replaced by `id`, percent-encoded as one path segment.
pub(crate) fn read_path(template: &str, id: &str) -> String {
    let mut encoded = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    template.replace("{id}", &encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_ids_are_text_whether_number_or_string() {
        assert_eq!(write_id(br#"{"id": 42, "amount": 10}"#, "id").unwrap(), "42");
        assert_eq!(write_id(br#"{"id": "inv-7"}"#, "id").unwrap(), "inv-7");
        assert_eq!(write_id(br#"{"invoice": 3}"#, "invoice").unwrap(), "3");
        assert_eq!(write_id(br#"{"amount": 10}"#, "id").unwrap_err(), "the answer has no `id`");
        assert!(write_id(b"created", "id").unwrap_err().starts_with("the answer is not JSON"));
        assert!(write_id(br#"{"id": null}"#, "id").unwrap_err().contains("neither"));
    }

    #[test]
    fn ids_are_encoded_as_one_path_segment() {
        assert_eq!(read_path("/invoices/{id}", "42"), "/invoices/42");
        assert_eq!(read_path("/invoices/{id}", "a b/c"), "/invoices/a%20b%2Fc");
        assert_eq!(read_path("/v1/{id}/lines?of={id}", "x"), "/v1/x/lines?of=x");
    }
}
