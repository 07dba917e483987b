//! Asking the team's monitoring for the `prometheus` and `alert` checks: an Alertmanager watch
//! that polls `GET /api/v2/alerts` from the timeline's start and records what changed
//! (`alertmanager-alerts`), and the PromQL queries `checks::planned_queries` plans, asked once
//! the timeline and its deadlines are over and before teardown, each answer recorded unchanged
//! (`prometheus-query`). Nothing here judges: the checks read the events.
//!
//! Both reach a service through its published 127.0.0.1 port (looked up at every request: it
//! moves when the container restarts), or a URL validation allowed (loopback only).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::RunScope;
use crate::checks::{PlannedQuery, QueryRange};
use crate::clock;
use crate::engine::run::Context;
use crate::journal::{AlertSeen, EventKind, Journal};
use crate::scenario::Scenario;
use crate::scenario::model::MetricsSource;

/// How often Alertmanager is polled.
const POLL: Duration = Duration::from_millis(200);
/// One request's limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The running Alertmanager polls; [`AlertWatch::stop`] ends them with a last recorded poll.
#[must_use = "stop the watch before teardown, or its tasks poll a stack that is going away"]
pub(super) struct AlertWatch {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl AlertWatch {
    /// Poll every Alertmanager the scenario's `alert` checks route through.
    pub(super) fn start(ctx: &Context, scenario: &Scenario, stack: &Arc<dyn RunScope>) -> Self {
        let stop = CancellationToken::new();
        let tasks = crate::checks::alertmanager_watches(scenario)
            .into_iter()
            .map(|(source, names)| {
                let (stop, stack, journal, http) =
                    (stop.clone(), stack.clone(), ctx.journal.clone(), ctx.http.clone());
                tokio::spawn(watch(source, names, stack, journal, http, stop))
            })
            .collect();
        AlertWatch { stop, tasks }
    }

    /// Stop polling; each watch records its last poll first.
    pub(super) async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn watch(
    source: MetricsSource,
    names: Vec<String>,
    stack: Arc<dyn RunScope>,
    journal: Journal,
    http: reqwest::Client,
    stop: CancellationToken,
) {
    let described = source.describe();
    let mut previous: Option<(Vec<AlertSeen>, Option<String>)> = None;
    loop {
        let stopping = stop.is_cancelled();
        let polled = match base_url(&source, &stack).await {
            Ok(base) => poll(&http, &base, &names).await,
            Err(error) => Err(error),
        };
        let (alerts, error) = match polled {
            Ok(alerts) => (alerts, None),
            // Keep the alerts last seen: an unreachable Alertmanager is not one with no alert.
            Err(error) => (previous.as_ref().map(|p| p.0.clone()).unwrap_or_default(), Some(error)),
        };
        let changed = previous.as_ref() != Some(&(alerts.clone(), error.clone()));
        if changed || stopping {
            journal.record(EventKind::AlertmanagerAlerts {
                source: described.clone(),
                alerts: alerts.clone(),
                last: stopping,
                error: error.clone(),
            });
        }
        if stopping {
            return;
        }
        previous = Some((alerts, error));
        tokio::select! {
            () = clock::sleep(POLL) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// `http://127.0.0.1:PORT` of a source, now.
async fn base_url(source: &MetricsSource, stack: &Arc<dyn RunScope>) -> Result<String, String> {
    match source {
        MetricsSource::Url(url) => Ok(url.clone()),
        MetricsSource::Service { service, port } => stack
            .host_port(service, *port)
            .await
            .map(|host_port| format!("http://127.0.0.1:{host_port}"))
            .map_err(|error| format!("port {port} of `{service}` is not reachable: {error}")),
    }
}

/// The alerts named `names` an Alertmanager holds, sorted by labels.
async fn poll(
    http: &reqwest::Client,
    base: &str,
    names: &[String],
) -> Result<Vec<AlertSeen>, String> {
    let body = get_json(http, &format!("{base}/api/v2/alerts")).await?;
    let items = body.as_array().ok_or("`/api/v2/alerts` did not answer a list")?;
    let mut alerts: Vec<AlertSeen> = items
        .iter()
        .filter_map(|item| {
            let labels: std::collections::BTreeMap<String, String> = item["labels"]
                .as_object()?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            names.contains(labels.get("alertname")?).then(|| AlertSeen {
                labels,
                state: item["status"]["state"].as_str().unwrap_or_default().to_owned(),
                receivers: item["receivers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["name"].as_str().map(str::to_owned))
                    .collect(),
                starts_at: item["startsAt"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(alerts)
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, String> {
    let response = http.get(url).timeout(REQUEST_TIMEOUT).send().await.map_err(|e| describe(&e))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| describe(&e))?;
    let body: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        format!("status {status}, not JSON: {}", text.chars().take(120).collect::<String>())
    })?;
    if !status.is_success() {
        // Prometheus names a PromQL mistake in `error`; say that, not the status alone.
        let why = body["error"].as_str().unwrap_or("no `error` in the answer");
        return Err(format!("status {}: {why}", status.as_u16()));
    }
    Ok(body)
}

fn describe(error: &reqwest::Error) -> String {
    crate::probe::describe_reqwest_error(error)
}

/// Ask every planned query and record each answer (or why there is none).
pub(super) async fn ask_prometheus(ctx: &Context, scenario: &Scenario, stack: &Arc<dyn RunScope>) {
    let events = ctx.journal.snapshot();
    let Some(epoch_us) = events.first().map(|e| e.wall.as_microsecond() - e.offset_us as i64)
    else {
        return;
    };
    let now_us = u64::try_from(ctx.journal.offset().as_micros()).unwrap_or(u64::MAX);
    let epoch_s = epoch_us as f64 / 1e6;
    let unix = |offset_us: u64| epoch_s + offset_us as f64 / 1e6;
    for planned in crate::checks::planned_queries(scenario, &events, now_us) {
        let PlannedQuery { check, source, query, range } = planned;
        let (start_s, end_s, step_s) = match range {
            QueryRange::Instant(at) => (unix(at), None, None),
            QueryRange::Range { start_us, end_us, step_us } => {
                (unix(start_us), Some(unix(end_us)), Some(step_us as f64 / 1e6))
            }
        };
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("query", &query);
        let path = match (end_s, step_s) {
            (Some(end), Some(step)) => {
                form.append_pair("start", &format!("{start_s:.3}"));
                form.append_pair("end", &format!("{end:.3}"));
                form.append_pair("step", &format!("{step:.3}"));
                "query_range"
            }
            _ => {
                form.append_pair("time", &format!("{start_s:.3}"));
                "query"
            }
        };
        let asked = async {
            let base = base_url(&source, stack).await?;
            let body =
                get_json(&ctx.http, &format!("{base}/api/v1/{path}?{}", form.finish())).await?;
            Ok::<_, String>(body["data"].clone())
        };
        let (data, error) = match ctx.interruptible(asked).await {
            None => return,
            Some(Ok(data)) => (data, None),
            Some(Err(error)) => (serde_json::Value::Null, Some(error)),
        };
        ctx.journal.record(EventKind::PrometheusQuery {
            check,
            source: source.describe(),
            query,
            epoch_s,
            // Millisecond precision, as asked.
            start_s: (start_s * 1e3).round() / 1e3,
            end_s: end_s.map(|end| (end * 1e3).round() / 1e3),
            step_s,
            data,
            error,
        });
    }
}
