//! The `version` endpoint of an upgrade: asked before the upgrade, after the switch and after a
//! rollback, and recorded as `version-observed`. A replicated service is asked on every replica;
//! they must all answer the same.
//!
//! Example: `upgrade: { ..., version: { port: 8080, path: /version } }`.

use std::time::Duration;

use super::UpgradeCtx;
use crate::journal::EventKind;
use crate::scenario::model::VersionEndpoint;

/// Ask the service's version endpoint and record what it said at `moment`.
pub(super) async fn observe(cx: &UpgradeCtx<'_>, endpoint: &VersionEndpoint, moment: &str) {
    cx.ctx.service_wait(observe_once(cx, endpoint, moment)).await;
}

async fn observe_once(cx: &UpgradeCtx<'_>, endpoint: &VersionEndpoint, moment: &str) {
    let (ctx, service) = (cx.ctx, cx.service);
    let replicas = cx.stack.replicas(service);
    let (ok, body) = match replicas {
        None => ask(cx, service, endpoint).await,
        // Every replica must answer, and all the same: a half-rolled-back service is not back.
        Some(keys) => {
            let mut answers = Vec::new();
            for key in &keys {
                answers.push((key, ask(cx, key, endpoint).await));
            }
            let agreed = answers.iter().all(|(_, (ok, body))| *ok && *body == answers[0].1.1);
            if agreed {
                (true, answers[0].1.1.clone())
            } else {
                let listed: Vec<String> =
                    answers.iter().map(|(key, (_, body))| format!("{key}: {body}")).collect();
                (false, format!("replicas disagree: {}", listed.join("; ")))
            }
        }
    };
    ctx.journal.record(EventKind::VersionObserved {
        service: service.to_owned(),
        step: cx.step.to_owned(),
        moment: moment.to_owned(),
        body,
        ok,
    });
}

/// One answer of a container's version endpoint: (success status, body or error).
async fn ask(cx: &UpgradeCtx<'_>, service: &str, endpoint: &VersionEndpoint) -> (bool, String) {
    let port = cx.stack.host_port(service, endpoint.port).await;
    let (ok, body) = match port {
        Err(error) => (false, error.to_string()),
        Ok(port) => {
            let url = format!("http://127.0.0.1:{port}{}", endpoint.path);
            let answer = async {
                let response = cx.ctx.http.get(&url).send().await?;
                let status = response.status().as_u16();
                Ok::<_, reqwest::Error>((status, response.text().await?))
            };
            match tokio::time::timeout(Duration::from_secs(2), answer).await {
                Ok(Ok((status, text))) if (200..300).contains(&status) => {
                    (true, text.trim().chars().take(200).collect())
                }
                Ok(Ok((status, text))) => (
                    false,
                    format!(
                        "status {status}: {}",
                        text.trim().chars().take(160).collect::<String>()
                    ),
                ),
                Ok(Err(error)) => (false, error.to_string()),
                Err(_) => (false, "no answer within 2s".to_owned()),
            }
        }
    };
    (ok, body)
}
