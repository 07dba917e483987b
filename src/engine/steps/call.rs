//! `call` steps: one HTTP request to a service's published port, e.g. announcing a maintenance,
//! recorded as `call-result`.
//!
//! Example: `- call: { service: billing, port: 8080, method: POST, path: /maintenance }`.

use std::sync::Arc;

use crate::backend::RunScope;
use crate::clock;
use crate::engine::run::Context;
use crate::journal::EventKind;
use crate::scenario::model::Call;

/// One HTTP request to a service's published port, recorded as `call-result`. A refused or
/// unexpected answer is recorded, not a step failure: what the call should have caused is for
/// the checks to judge.
pub(super) async fn run_call(ctx: &Context, stack: &Arc<dyn RunScope>, step: &str, call: &Call) {
    let started = clock::instant_now();
    let request = format!("{} {}", call.method, call.path);
    let answer = async {
        match stack.host_port(&call.service, call.port).await {
            Err(error) => {
                (None, String::new(), Some(format!("port {} is not reachable: {error}", call.port)))
            }
            Ok(host_port) => send_call(&ctx.http, host_port, call).await,
        }
    };
    let (status, body, error) = ctx.service_wait(answer).await;
    let latency = clock::instant_now().saturating_duration_since(started);
    let expected = match call.status {
        Some(expected) => status == Some(expected),
        None => status.is_some_and(|status| (200..300).contains(&status)),
    };
    let error = error.or_else(|| {
        (!expected).then(|| match call.status {
            Some(expected) => format!("expected status {expected}"),
            None => "expected a 2xx status".to_owned(),
        })
    });
    ctx.journal.record(EventKind::CallResult {
        step: step.to_owned(),
        service: call.service.clone(),
        request,
        ok: error.is_none(),
        status,
        latency_us: latency.as_micros() as u64,
        body,
        error,
    });
}

/// Send `call` to `127.0.0.1:host_port`: the status, the start of the body, or what failed.
async fn send_call(
    http: &reqwest::Client,
    host_port: u16,
    call: &Call,
) -> (Option<u16>, String, Option<String>) {
    const BODY_CHARS: usize = 200;
    let url = format!("http://127.0.0.1:{host_port}{}", call.path);
    let method = reqwest::Method::from_bytes(call.method.as_bytes()).expect("validated method");
    let mut request = http.request(method, url).timeout(call.timeout);
    if let Some(body) = &call.body {
        request = request.header("content-type", "application/json").body(body.clone());
    }
    match request.send().await {
        Err(error) => (None, String::new(), Some(error.to_string())),
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(text) => (Some(status), text.chars().take(BODY_CHARS).collect(), None),
                Err(error) => (Some(status), String::new(), Some(error.to_string())),
            }
        }
    }
}
