//! `comms`: the demo stack's customer-notification service. Alertmanager posts its webhook here;
//! comms tells every customer on every channel it is configured for, at once, through the
//! providers' real HTTP APIs (Twilio, Sinch Fax, Atlassian Statuspage, Slack, PagerDuty), and
//! sends the all-clear when the alert resolves. It also announces maintenance.
//!
//! What it does not do: retry, queue or persist. A provider that fails is logged and, for SMS
//! only, replaced by a voice call; everything comms knows (which incident belongs to which alert)
//! lives in memory, bounded.
//!
//! # Endpoints (port `PORT`, default 8080)
//! - `POST /alert`: an Alertmanager webhook (version 4). For each alert that is new (firing) or
//!   newly resolved, one notice goes out; a repeat of a notice already sent is ignored (so
//!   `repeat_interval` re-sends do not flood customers). Answers 200 with what was planned before
//!   anything is sent: the fan-out runs in the background.
//!   - per customer: SMS (Twilio Messages). If Twilio answers 429 or 5xx, or does not answer in
//!     time, a voice call (Twilio Calls, TwiML `<Say>` with the same text) replaces it. Fax
//!     (Sinch Fax v3) to the customer's fax number.
//!   - once per notice: Statuspage incident (firing: created `investigating`, impact `major`;
//!     resolved: that incident PATCHed to `resolved`), Slack incoming webhook, PagerDuty Events v2
//!     (`trigger` / `resolve`, `dedup_key` = the alert's fingerprint).
//! - `POST /maintenance` `{service, starts_at, ends_at, message}` (RFC 3339 times): SMS to every
//!   customer, Slack, and a Statuspage scheduled maintenance (`status: scheduled`,
//!   `scheduled_for` / `scheduled_until`). Answers 202.
//! - `GET /notices/{id}`: a sent notice's text, the `contentUrl` of its fax (when `COMMS_PUBLIC_URL`
//!   is set).
//! - `GET /health`: 200.
//!
//! Every request to a provider runs concurrently with the others and has its own timeout
//! (`PROVIDER_TIMEOUT`, default 5 s), so one hung provider delays nobody else.
//!
//! # Environment
//! A channel whose variables are not all set is skipped; comms says so once at start.
//! - `CUSTOMERS`: `name:phone:fax;...`, e.g. `acme:+15550001:+15550101;globex:+15550002:+15550102`
//!   (phone for SMS and voice; E.164 numbers).
//! - SMS and voice: `TWILIO_URL` (e.g. `http://sinks:8025`; plain HTTP only), `TWILIO_ACCOUNT`
//!   (account SID, also the basic-auth user), `TWILIO_TOKEN` (basic-auth password), `TWILIO_FROM`.
//! - Fax: `SINCH_URL`, `SINCH_PROJECT`; optional `SINCH_KEY` + `SINCH_SECRET` (basic auth),
//!   `SINCH_FROM`. The fax carries `contentUrl` = `COMMS_PUBLIC_URL/notices/<id>` when
//!   `COMMS_PUBLIC_URL` is set (how the real Sinch fetches content), else the text as `text`.
//! - Status page: `STATUSPAGE_URL`, `STATUSPAGE_PAGE_ID`; optional `STATUSPAGE_API_KEY`
//!   (`Authorization: OAuth <key>`).
//! - Chat: `SLACK_URL` (the whole incoming-webhook URL).
//! - Paging: `PAGERDUTY_URL`, `PAGERDUTY_ROUTING_KEY`.
//!
//! Logs: `comms listening on 0.0.0.0:<port>` on stdout once listening; one line per notice and per
//! provider request on stderr, prefixed `comms: `. SIGTERM and SIGINT stop it (it is PID 1 in a
//! `FROM scratch` image, where the kernel gives PID 1 no default action for them).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{Mutex as AsyncMutex, OwnedMutexGuard},
    task::JoinHandle,
};

/// Default budget for one provider request, connecting included.
const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);
/// Alerts remembered for de-duplication and incident ids; the oldest resolved ones go first.
const MAX_TRACKED_ALERTS: usize = 1024;
/// Notice texts kept for `GET /notices/{id}` (fax content).
const MAX_STORED_NOTICES: usize = 256;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("comms: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let (config, skipped) = Config::from_lookup(|name| std::env::var(name).ok())?;
    for note in &skipped {
        eprintln!("comms: {note}");
    }
    eprintln!(
        "comms: {} customers ({}); channels: {}",
        config.customers.len(),
        config.customers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
        config.channels().join(", ")
    );
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|_| format!("PORT is not a port number: {port:?}"))?,
        Err(_) => 8080,
    };
    let mut sigterm = signal(SignalKind::terminate())
        .map_err(|error| format!("cannot install the SIGTERM handler: {error}"))?;
    let mut sigint = signal(SignalKind::interrupt())
        .map_err(|error| format!("cannot install the SIGINT handler: {error}"))?;
    let shutdown = async move {
        let name = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        };
        eprintln!("comms: {name} received, shutting down");
    };

    let state = AppState::new(config)?;
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
    println!("comms listening on {}", listener.local_addr().unwrap_or(addr));
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|error| format!("server failed: {error}"))?;
    eprintln!("comms: stopped");
    Ok(())
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/alert", post(alert))
        .route("/maintenance", post(maintenance))
        .route("/notices/{id}", get(stored_notice))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// Configuration.

/// A customer and where to reach them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Customer {
    name: String,
    /// SMS and voice.
    phone: String,
    fax: String,
}

/// Parses `name:phone:fax;name:phone:fax` (blank entries ignored).
fn parse_customers(spec: &str) -> Result<Vec<Customer>, String> {
    let mut customers = Vec::new();
    for entry in spec.split(';').map(str::trim).filter(|entry| !entry.is_empty()) {
        let parts: Vec<&str> = entry.split(':').map(str::trim).collect();
        let [name, phone, fax] = parts.as_slice() else {
            return Err(format!("CUSTOMERS: {entry:?} is not name:phone:fax"));
        };
        if name.is_empty() {
            return Err(format!("CUSTOMERS: {entry:?} has no name"));
        }
        for (what, number) in [("phone", phone), ("fax", fax)] {
            if !is_e164(number) {
                return Err(format!(
                    "CUSTOMERS: {name}'s {what} number {number:?} is not E.164 (+ and 7 to 15 digits)"
                ));
            }
        }
        if customers.iter().any(|c: &Customer| c.name == *name) {
            return Err(format!("CUSTOMERS: {name} is listed twice"));
        }
        customers.push(Customer {
            name: name.to_string(),
            phone: phone.to_string(),
            fax: fax.to_string(),
        });
    }
    Ok(customers)
}

fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

struct Twilio {
    base: String,
    account: String,
    token: String,
    from: String,
}

struct Sinch {
    base: String,
    project: String,
    /// Key id and secret, for basic auth.
    key: Option<(String, String)>,
    from: Option<String>,
}

struct Statuspage {
    base: String,
    page_id: String,
    api_key: Option<String>,
}

struct PagerDuty {
    base: String,
    routing_key: String,
}

/// Who to tell and through which providers, from the environment.
struct Config {
    customers: Vec<Customer>,
    twilio: Option<Twilio>,
    sinch: Option<Sinch>,
    statuspage: Option<Statuspage>,
    slack_url: Option<String>,
    pagerduty: Option<PagerDuty>,
    /// How providers reach comms (fax `contentUrl`), without a trailing slash.
    public_url: Option<String>,
    provider_timeout: Duration,
}

impl Config {
    /// Reads the configuration through `get` (the environment in `main`). Returns it with one
    /// note per skipped channel; an error for a value that is set but unusable.
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<(Self, Vec<String>), String> {
        let value = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let url = |name: &str| -> Result<Option<String>, String> {
            match value(name) {
                None => Ok(None),
                Some(url) if url.starts_with("http://") => {
                    Ok(Some(url.trim_end_matches('/').to_string()))
                }
                Some(url) => Err(format!(
                    "{name} must be a plain http:// URL (comms has no TLS, providers are local \
                     sinks): {url:?}"
                )),
            }
        };
        let mut skipped = Vec::new();
        // All of `names` set: their values; none or only some: skip the channel, saying which.
        let mut group = |channel: &str, names: &[&str]| -> Option<Vec<String>> {
            let values: Vec<Option<String>> = names.iter().map(|name| value(name)).collect();
            let missing: Vec<&str> =
                names.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
            if missing.is_empty() {
                Some(values.into_iter().flatten().collect())
            } else {
                skipped.push(format!("{channel} skipped: {} not set", missing.join(", ")));
                None
            }
        };
        let customers = match group("per-customer channels (sms, voice, fax)", &["CUSTOMERS"]) {
            Some(spec) => parse_customers(&spec[0])?,
            None => Vec::new(),
        };
        let twilio = group(
            "sms and voice",
            &["TWILIO_URL", "TWILIO_ACCOUNT", "TWILIO_TOKEN", "TWILIO_FROM"],
        );
        let twilio = match twilio {
            Some(v) => Some(Twilio {
                base: url("TWILIO_URL")?.unwrap_or_default(),
                account: v[1].clone(),
                token: v[2].clone(),
                from: v[3].clone(),
            }),
            None => None,
        };
        let sinch = match group("fax", &["SINCH_URL", "SINCH_PROJECT"]) {
            Some(v) => Some(Sinch {
                base: url("SINCH_URL")?.unwrap_or_default(),
                project: v[1].clone(),
                key: value("SINCH_KEY").zip(value("SINCH_SECRET")),
                from: value("SINCH_FROM"),
            }),
            None => None,
        };
        let statuspage = match group("status page", &["STATUSPAGE_URL", "STATUSPAGE_PAGE_ID"]) {
            Some(v) => Some(Statuspage {
                base: url("STATUSPAGE_URL")?.unwrap_or_default(),
                page_id: v[1].clone(),
                api_key: value("STATUSPAGE_API_KEY"),
            }),
            None => None,
        };
        let slack_url = match group("chat (slack)", &["SLACK_URL"]) {
            Some(_) => url("SLACK_URL")?,
            None => None,
        };
        let pagerduty =
            match group("paging (pagerduty)", &["PAGERDUTY_URL", "PAGERDUTY_ROUTING_KEY"]) {
                Some(v) => Some(PagerDuty {
                    base: url("PAGERDUTY_URL")?.unwrap_or_default(),
                    routing_key: v[1].clone(),
                }),
                None => None,
            };
        let provider_timeout = match value("PROVIDER_TIMEOUT") {
            None => DEFAULT_PROVIDER_TIMEOUT,
            Some(text) => parse_duration(&text)
                .ok_or_else(|| format!("PROVIDER_TIMEOUT must look like 5s or 500ms: {text:?}"))?,
        };
        let config = Self {
            customers,
            twilio,
            sinch,
            statuspage,
            slack_url,
            pagerduty,
            public_url: url("COMMS_PUBLIC_URL")?,
            provider_timeout,
        };
        Ok((config, skipped))
    }

    /// The channels that will be used, for the start-up line.
    fn channels(&self) -> Vec<&'static str> {
        let per_customer = !self.customers.is_empty();
        [
            (per_customer && self.twilio.is_some(), "sms (voice on failure)"),
            (per_customer && self.sinch.is_some(), "fax"),
            (self.statuspage.is_some(), "status page"),
            (self.slack_url.is_some(), "slack"),
            (self.pagerduty.is_some(), "pagerduty"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// `500ms`, `5s`.
fn parse_duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')?.parse().ok().map(Duration::from_secs)
}

// ---------------------------------------------------------------------------------------------
// What to say: Alertmanager's webhook → notices.

/// Alertmanager's webhook body (version 4); only what comms reads.
#[derive(Deserialize)]
struct Webhook {
    alerts: Vec<WebhookAlert>,
}

#[derive(Deserialize)]
struct WebhookAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt", default)]
    starts_at: String,
    #[serde(rename = "endsAt", default)]
    ends_at: String,
    #[serde(default)]
    fingerprint: String,
}

/// One thing to tell customers: an outage began or ended.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Notice {
    /// Identifies the alert across firing and resolved (its fingerprint).
    key: String,
    /// The alert's `startsAt`: a new value is a new outage of the same alert.
    starts_at: String,
    firing: bool,
    service: String,
    alertname: String,
    severity: String,
    /// SMS, voice, PagerDuty summary, Statuspage incident name.
    short: String,
    /// Fax, Slack, Statuspage incident body.
    long: String,
}

impl Notice {
    /// The notice for one webhook alert, or `None` for a status other than firing/resolved.
    fn from_alert(alert: &WebhookAlert) -> Option<Self> {
        let firing = match alert.status.as_str() {
            "firing" => true,
            "resolved" => false,
            _ => return None,
        };
        let label = |name: &str| alert.labels.get(name).filter(|v| !v.is_empty()).cloned();
        let service = label("service").or_else(|| label("job")).unwrap_or_else(|| "service".into());
        let alertname = label("alertname").unwrap_or_else(|| "alert".into());
        let key = if alert.fingerprint.is_empty() {
            // Alertmanager always sends one; this keeps hand-made payloads usable.
            alert.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
        } else {
            alert.fingerprint.clone()
        };
        let since = clock_time(&alert.starts_at);
        let (short, long) = if firing {
            let summary = alert
                .annotations
                .get("summary")
                .filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("{service} is down"));
            let summary =
                if summary.contains(&service) { summary } else { format!("{service}: {summary}") };
            let short = format!(
                "OUTAGE: {summary} ({alertname} since {since} UTC). We are working on it and will \
                 tell you when it is resolved."
            );
            let long = match alert.annotations.get("description").filter(|d| !d.is_empty()) {
                Some(description) => format!("{short}\n{description}"),
                None => short.clone(),
            };
            (short, long)
        } else {
            let short = format!(
                "RESOLVED: the {service} outage is over ({alertname}); {service} works again."
            );
            let long =
                format!("{short}\nOutage from {since} to {} UTC.", clock_time(&alert.ends_at));
            (short, long)
        };
        Some(Self {
            key,
            starts_at: alert.starts_at.clone(),
            firing,
            service,
            alertname,
            severity: label("severity").unwrap_or_else(|| "critical".into()),
            short,
            long,
        })
    }
}

/// `HH:MM:SS` of an RFC 3339 time, or the text itself if it is not one.
fn clock_time(rfc3339: &str) -> &str {
    if looks_like_rfc3339(rfc3339) { &rfc3339[11..19] } else { rfc3339 }
}

/// `YYYY-MM-DDTHH:MM:SS` then optional fraction then `Z` or `±HH:MM`.
fn looks_like_rfc3339(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return false;
    }
    let shape_ok = bytes[..19].iter().enumerate().all(|(index, byte)| match index {
        4 | 7 => *byte == b'-',
        10 => matches!(byte, b'T' | b't' | b' '),
        13 | 16 => *byte == b':',
        _ => byte.is_ascii_digit(),
    });
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &fraction[digits..];
    }
    let zone_ok = matches!(rest, "Z" | "z")
        || (rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':');
    shape_ok && zone_ok
}

/// Which alerts customers were told about, so a re-sent webhook does not notify twice, and the
/// Statuspage incident opened for each (the resolve PATCHes it).
#[derive(Default)]
struct Tracker {
    alerts: HashMap<String, Tracked>,
    next_sequence: u64,
}

struct Tracked {
    starts_at: String,
    firing_sent: bool,
    resolved_sent: bool,
    /// The Statuspage incident id; locked while the incident is being created.
    incident: Arc<AsyncMutex<Option<String>>>,
    sequence: u64,
}

impl Tracker {
    /// Whether `notice` is news (to be sent), and the incident slot of its alert. Firing is news
    /// once per outage (`starts_at`); resolved once per outage too, also when comms never saw it
    /// fire (it may have restarted: an extra all-clear beats a missing one).
    fn admit(&mut self, notice: &Notice) -> Option<Arc<AsyncMutex<Option<String>>>> {
        let same_outage =
            self.alerts.get(&notice.key).is_some_and(|t| t.starts_at == notice.starts_at);
        if !same_outage {
            self.prune();
            self.next_sequence += 1;
            self.alerts.insert(
                notice.key.clone(),
                Tracked {
                    starts_at: notice.starts_at.clone(),
                    firing_sent: false,
                    resolved_sent: false,
                    incident: Arc::new(AsyncMutex::new(None)),
                    sequence: self.next_sequence,
                },
            );
        }
        let tracked = self.alerts.get_mut(&notice.key)?;
        if notice.firing {
            if tracked.firing_sent || tracked.resolved_sent {
                return None;
            }
            tracked.firing_sent = true;
        } else {
            if tracked.resolved_sent {
                return None;
            }
            tracked.resolved_sent = true;
        }
        Some(Arc::clone(&tracked.incident))
    }

    /// Keeps the map bounded: forgets the oldest resolved alerts, or the oldest of all if none is.
    fn prune(&mut self) {
        while self.alerts.len() >= MAX_TRACKED_ALERTS {
            let oldest = self
                .alerts
                .iter()
                .min_by_key(|(_, t)| (!t.resolved_sent, t.sequence))
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => self.alerts.remove(&key),
                None => break,
            };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Who gets what: notices → deliveries.

/// One provider request (SMS with its voice fallback counts as one).
enum Delivery {
    Sms {
        customer: Customer,
        text: String,
    },
    Fax {
        customer: Customer,
        notice_id: u64,
        text: String,
    },
    /// Held from planning until the incident exists, so its resolve waits for the id.
    IncidentOpen {
        incident: OwnedMutexGuard<Option<String>>,
        name: String,
        body: String,
    },
    IncidentResolve {
        incident: Arc<AsyncMutex<Option<String>>>,
        body: String,
    },
    Maintenance {
        name: String,
        body: String,
        starts_at: String,
        ends_at: String,
    },
    Slack {
        text: String,
    },
    PagerDuty {
        trigger: bool,
        dedup_key: String,
        summary: String,
        notice: Option<Box<Notice>>,
    },
}

impl Delivery {
    fn channel(&self) -> &'static str {
        match self {
            Self::Sms { .. } => "sms",
            Self::Fax { .. } => "fax",
            Self::IncidentOpen { .. } | Self::IncidentResolve { .. } => "statuspage",
            Self::Maintenance { .. } => "statuspage-maintenance",
            Self::Slack { .. } => "slack",
            Self::PagerDuty { .. } => "pagerduty",
        }
    }
}

/// Every delivery for `notice` under `config`. `incident` is the alert's Statuspage slot from
/// [`Tracker::admit`]; `notice_id` names the stored text for fax `contentUrl`.
fn plan_alert(
    config: &Config,
    notice: &Notice,
    incident: Arc<AsyncMutex<Option<String>>>,
    notice_id: u64,
) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for customer in &config.customers {
        if config.twilio.is_some() {
            deliveries
                .push(Delivery::Sms { customer: customer.clone(), text: notice.short.clone() });
        }
        if config.sinch.is_some() {
            deliveries.push(Delivery::Fax {
                customer: customer.clone(),
                notice_id,
                text: notice.long.clone(),
            });
        }
    }
    if config.statuspage.is_some() {
        if notice.firing {
            // A fresh slot from `admit` (a new outage) is unlocked, so this cannot fail; if it
            // did, the incident would be skipped rather than the webhook blocked.
            if let Ok(guard) = incident.try_lock_owned() {
                deliveries.push(Delivery::IncidentOpen {
                    incident: guard,
                    name: format!("{} outage: {}", notice.service, notice.alertname),
                    body: notice.long.clone(),
                });
            }
        } else {
            deliveries.push(Delivery::IncidentResolve { incident, body: notice.long.clone() });
        }
    }
    if config.slack_url.is_some() {
        deliveries.push(Delivery::Slack { text: notice.long.clone() });
    }
    if config.pagerduty.is_some() {
        deliveries.push(Delivery::PagerDuty {
            trigger: notice.firing,
            dedup_key: notice.key.clone(),
            summary: notice.short.clone(),
            notice: Some(Box::new(notice.clone())),
        });
    }
    deliveries
}

/// A maintenance announcement as `POST /maintenance` takes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceRequest {
    service: String,
    starts_at: String,
    ends_at: String,
    message: String,
}

impl MaintenanceRequest {
    fn validate(&self) -> Result<(), String> {
        if self.service.trim().is_empty() {
            return Err("service must not be empty".into());
        }
        for (name, value) in [("starts_at", &self.starts_at), ("ends_at", &self.ends_at)] {
            if !looks_like_rfc3339(value) {
                return Err(format!(
                    "{name} must be an RFC 3339 time such as 2030-01-05T22:00:00Z, not {value:?}"
                ));
            }
        }
        // Same zone spelled the same way: the text order is the time order.
        let zone = |t: &str| t.ends_with(['Z', 'z']);
        if zone(&self.starts_at)
            && zone(&self.ends_at)
            && self.ends_at[..19] <= self.starts_at[..19]
        {
            return Err(format!(
                "ends_at ({}) must be after starts_at ({})",
                self.ends_at, self.starts_at
            ));
        }
        Ok(())
    }

    fn text(&self) -> String {
        format!(
            "MAINTENANCE: {} will be under scheduled maintenance from {} to {}. {}",
            self.service.trim(),
            self.starts_at,
            self.ends_at,
            self.message.trim()
        )
    }
}

fn plan_maintenance(config: &Config, request: &MaintenanceRequest) -> Vec<Delivery> {
    let text = request.text();
    let mut deliveries = Vec::new();
    if config.twilio.is_some() {
        for customer in &config.customers {
            deliveries.push(Delivery::Sms { customer: customer.clone(), text: text.clone() });
        }
    }
    if config.slack_url.is_some() {
        deliveries.push(Delivery::Slack { text: text.clone() });
    }
    if config.statuspage.is_some() {
        deliveries.push(Delivery::Maintenance {
            name: format!("Scheduled maintenance of {}", request.service.trim()),
            body: text,
            starts_at: request.starts_at.clone(),
            ends_at: request.ends_at.clone(),
        });
    }
    deliveries
}

// ---------------------------------------------------------------------------------------------
// Sending.

/// What one provider request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// `sms`, `voice`, `fax`, `statuspage`, ...
    channel: &'static str,
    /// The customer, or `-` for once-per-notice channels.
    target: String,
    /// The provider's status code, or why there was none.
    result: Result<u16, String>,
}

/// Whether an SMS attempt's result calls for the voice fallback: the provider is throttling,
/// broken, or not answering. A 4xx other than 429 is comms' own mistake; a call would not help.
fn sms_failed_over(result: &Result<u16, String>) -> bool {
    match result {
        Ok(status) => *status == 429 || (500..600).contains(status),
        Err(_) => true,
    }
}

/// `text` spoken by TwiML `<Say>`.
fn twiml_say(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    format!("<Response><Say>{escaped}</Say></Response>")
}

#[derive(Clone)]
struct AppState {
    config: Arc<Config>,
    client: reqwest::Client,
    tracker: Arc<Mutex<Tracker>>,
    notices: Arc<Mutex<NoticeStore>>,
}

/// The last [`MAX_STORED_NOTICES`] notice texts, by id.
#[derive(Default)]
struct NoticeStore {
    next_id: u64,
    texts: VecDeque<(u64, String)>,
}

impl NoticeStore {
    fn add(&mut self, text: String) -> u64 {
        self.next_id += 1;
        if self.texts.len() >= MAX_STORED_NOTICES {
            self.texts.pop_front();
        }
        self.texts.push_back((self.next_id, text));
        self.next_id
    }
}

impl AppState {
    fn new(config: Config) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(config.provider_timeout)
            // Providers are sinks on the run's network: never a proxy from the environment.
            .no_proxy()
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(Self {
            config: Arc::new(config),
            client,
            tracker: Arc::default(),
            notices: Arc::default(),
        })
    }

    /// Starts every delivery at once; each handle yields its outcomes (two for an SMS that
    /// failed over to voice).
    fn fan_out(&self, deliveries: Vec<Delivery>) -> Vec<JoinHandle<Vec<Outcome>>> {
        deliveries
            .into_iter()
            .map(|delivery| {
                let state = self.clone();
                tokio::spawn(async move { state.deliver(delivery).await })
            })
            .collect()
    }

    async fn deliver(&self, delivery: Delivery) -> Vec<Outcome> {
        let channel = delivery.channel();
        let config = &self.config;
        let once = |result| vec![Outcome { channel, target: "-".into(), result }];
        match delivery {
            Delivery::Sms { customer, text } => {
                let Some(twilio) = &config.twilio else { return Vec::new() };
                self.sms_or_call(twilio, &customer, &text).await
            }
            Delivery::Fax { customer, notice_id, text } => {
                let Some(sinch) = &config.sinch else { return Vec::new() };
                let mut body = json!({ "to": customer.fax });
                match &config.public_url {
                    Some(public) => {
                        body["contentUrl"] = json!(format!("{public}/notices/{notice_id}"))
                    }
                    None => body["text"] = json!(text),
                }
                if let Some(from) = &sinch.from {
                    body["from"] = json!(from);
                }
                let url = format!("{}/v3/projects/{}/faxes", sinch.base, sinch.project);
                let mut request = self.client.post(url);
                if let Some((key, secret)) = &sinch.key {
                    request = request.basic_auth(key, Some(secret));
                }
                let result = self.send(json_body(request, &body), "fax", &customer.name).await;
                vec![Outcome { channel, target: customer.name, result: result.map(|(s, _)| s) }]
            }
            Delivery::IncidentOpen { mut incident, name, body } => {
                let Some(page) = &config.statuspage else { return Vec::new() };
                let url = format!("{}/v1/pages/{}/incidents", page.base, page.page_id);
                let payload = json!({ "incident": {
                    "name": name, "status": "investigating", "impact_override": "major",
                    "body": body, "deliver_notifications": true,
                }});
                let request = statuspage_auth(self.client.post(url), page);
                let result =
                    self.send(json_body(request, &payload), "statuspage incident", "-").await;
                if let Ok((_, answer)) = &result {
                    *incident = answer.get("id").and_then(Value::as_str).map(str::to_string);
                    if incident.is_none() {
                        eprintln!("comms: statuspage answered without an incident id: {answer}");
                    }
                }
                once(result.map(|(s, _)| s))
            }
            Delivery::IncidentResolve { incident, body } => {
                let Some(page) = &config.statuspage else { return Vec::new() };
                // Waits for a create still in flight.
                let Some(id) = incident.lock().await.clone() else {
                    eprintln!(
                        "comms: statuspage: no incident was opened for this alert; none to resolve"
                    );
                    return once(Err("no incident to resolve".into()));
                };
                let url = format!("{}/v1/pages/{}/incidents/{id}", page.base, page.page_id);
                let payload = json!({ "incident": { "status": "resolved", "body": body } });
                let request = statuspage_auth(self.client.patch(url), page);
                once(
                    self.send(json_body(request, &payload), "statuspage resolve", &id)
                        .await
                        .map(|(s, _)| s),
                )
            }
            Delivery::Maintenance { name, body, starts_at, ends_at } => {
                let Some(page) = &config.statuspage else { return Vec::new() };
                let url = format!("{}/v1/pages/{}/incidents", page.base, page.page_id);
                let payload = json!({ "incident": {
                    "name": name, "status": "scheduled", "impact_override": "maintenance",
                    "scheduled_for": starts_at, "scheduled_until": ends_at, "body": body,
                    "scheduled_auto_in_progress": true, "scheduled_auto_completed": true,
                    "deliver_notifications": true,
                }});
                let request = statuspage_auth(self.client.post(url), page);
                once(
                    self.send(json_body(request, &payload), "statuspage maintenance", "-")
                        .await
                        .map(|(s, _)| s),
                )
            }
            Delivery::Slack { text } => {
                let Some(url) = &config.slack_url else { return Vec::new() };
                let request = json_body(self.client.post(url), &json!({ "text": text }));
                once(self.send(request, "slack", "-").await.map(|(s, _)| s))
            }
            Delivery::PagerDuty { trigger, dedup_key, summary, notice } => {
                let Some(pagerduty) = &config.pagerduty else { return Vec::new() };
                let payload = if trigger {
                    let notice = notice.as_deref();
                    let service = notice.map_or("service", |n| n.service.as_str());
                    json!({
                        "routing_key": pagerduty.routing_key,
                        "event_action": "trigger",
                        "dedup_key": dedup_key,
                        "payload": {
                            "summary": summary.chars().take(1024).collect::<String>(),
                            "source": service,
                            "severity": pagerduty_severity(notice.map_or("", |n| n.severity.as_str())),
                            "component": service,
                            "custom_details": {
                                "alertname": notice.map(|n| n.alertname.as_str()),
                                "details": notice.map(|n| n.long.as_str()),
                            },
                        },
                    })
                } else {
                    json!({
                        "routing_key": pagerduty.routing_key,
                        "event_action": "resolve",
                        "dedup_key": dedup_key,
                    })
                };
                let url = format!("{}/v2/enqueue", pagerduty.base);
                let request = json_body(self.client.post(url), &payload);
                once(self.send(request, "pagerduty", &dedup_key).await.map(|(s, _)| s))
            }
        }
    }

    /// An SMS to `customer`; if Twilio fails it ([`sms_failed_over`]), a voice call instead.
    async fn sms_or_call(&self, twilio: &Twilio, customer: &Customer, text: &str) -> Vec<Outcome> {
        let resource = |name: &str| {
            format!("{}/2010-04-01/Accounts/{}/{name}.json", twilio.base, twilio.account)
        };
        let request = self
            .client
            .post(resource("Messages"))
            .basic_auth(&twilio.account, Some(&twilio.token))
            .form(&[("To", customer.phone.as_str()), ("From", &twilio.from), ("Body", text)]);
        let sms = self.send(request, "sms", &customer.name).await.map(|(s, _)| s);
        let mut outcomes =
            vec![Outcome { channel: "sms", target: customer.name.clone(), result: sms.clone() }];
        if sms_failed_over(&sms) {
            eprintln!("comms: sms to {} failed; calling {} instead", customer.name, customer.phone);
            let twiml = twiml_say(text);
            let request = self
                .client
                .post(resource("Calls"))
                .basic_auth(&twilio.account, Some(&twilio.token))
                .form(&[
                    ("To", customer.phone.as_str()),
                    ("From", &twilio.from),
                    ("Twiml", &twiml),
                ]);
            let call = self.send(request, "voice", &customer.name).await.map(|(s, _)| s);
            outcomes.push(Outcome {
                channel: "voice",
                target: customer.name.clone(),
                result: call,
            });
        }
        outcomes
    }

    /// Sends `request` within the client's timeout and logs the outcome: the status and the
    /// answer's JSON (`Null` if it has none), or why there was no answer.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
        target: &str,
    ) -> Result<(u16, Value), String> {
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        match result {
            Ok((status, bytes)) => {
                let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if (200..300).contains(&status) {
                    eprintln!("comms: {what} {target}: {status}");
                } else {
                    let text = String::from_utf8_lossy(&bytes);
                    let text: String = text.chars().take(200).collect();
                    eprintln!("comms: {what} {target}: {status} {text}");
                }
                Ok((status, answer))
            }
            Err(error) => {
                let why = if error.is_timeout() {
                    format!("no answer within {:?}", self.config.provider_timeout)
                } else {
                    describe(&error)
                };
                eprintln!("comms: {what} {target}: failed: {why}");
                Err(why)
            }
        }
    }
}

fn json_body(request: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
    request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string())
}

fn statuspage_auth(request: reqwest::RequestBuilder, page: &Statuspage) -> reqwest::RequestBuilder {
    match &page.api_key {
        Some(key) => request.header(reqwest::header::AUTHORIZATION, format!("OAuth {key}")),
        None => request,
    }
}

/// PagerDuty's severities are critical, error, warning and info.
fn pagerduty_severity(label: &str) -> &'static str {
    match label {
        "critical" | "page" => "critical",
        "warning" => "warning",
        "info" => "info",
        _ => "error",
    }
}

/// `error` and its causes, `: `-separated (reqwest's own message leaves out "Connection refused").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text = format!("{text}: {inner_text}");
        }
        cause = inner.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Handlers.

async fn alert(
    State(state): State<AppState>,
    body: Result<Json<Webhook>, JsonRejection>,
) -> Response {
    let Json(webhook) = match body {
        Ok(body) => body,
        Err(rejection) => {
            eprintln!("comms: rejected a webhook: {}", rejection.body_text());
            return rejection.into_response();
        }
    };
    let mut deliveries = Vec::new();
    let mut notices = 0;
    for notice in webhook.alerts.iter().filter_map(Notice::from_alert) {
        let admitted = state.tracker.lock().map(|mut tracker| tracker.admit(&notice));
        let Ok(Some(incident)) = admitted else { continue };
        notices += 1;
        eprintln!(
            "comms: {} {} ({}): {}",
            if notice.firing { "firing" } else { "resolved" },
            notice.alertname,
            notice.key,
            notice.short
        );
        let notice_id =
            state.notices.lock().map(|mut store| store.add(notice.long.clone())).unwrap_or(0);
        deliveries.extend(plan_alert(&state.config, &notice, incident, notice_id));
    }
    let planned = deliveries.len();
    drop(state.fan_out(deliveries));
    (StatusCode::OK, Json(json!({ "notices": notices, "deliveries": planned }))).into_response()
}

async fn maintenance(
    State(state): State<AppState>,
    body: Result<Json<MaintenanceRequest>, JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    if let Err(problem) = request.validate() {
        return (StatusCode::UNPROCESSABLE_ENTITY, problem).into_response();
    }
    eprintln!("comms: maintenance notice: {}", request.text());
    let deliveries = plan_maintenance(&state.config, &request);
    let planned = deliveries.len();
    drop(state.fan_out(deliveries));
    (StatusCode::ACCEPTED, Json(json!({ "deliveries": planned }))).into_response()
}

async fn stored_notice(State(state): State<AppState>, Path(id): Path<u64>) -> Response {
    let text = state
        .notices
        .lock()
        .ok()
        .and_then(|store| store.texts.iter().find(|(i, _)| *i == id).map(|(_, t)| t.clone()));
    match text {
        Some(text) => {
            ([(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no notice {id}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::{
        body::Bytes,
        http::{HeaderMap, Method, Uri},
    };
    use tokio::sync::watch;

    use super::*;

    const CUSTOMERS: &str = "acme:+15550001:+15550101; globex:+15550002:+15550102";

    #[test]
    fn customers_parse_and_bad_entries_are_named() {
        let customers = parse_customers(CUSTOMERS).unwrap();
        assert_eq!(
            customers,
            vec![
                Customer {
                    name: "acme".into(),
                    phone: "+15550001".into(),
                    fax: "+15550101".into()
                },
                Customer {
                    name: "globex".into(),
                    phone: "+15550002".into(),
                    fax: "+15550102".into()
                },
            ]
        );
        assert_eq!(parse_customers(" ; ").unwrap(), vec![]);
        for (spec, says) in [
            ("acme:+15550001", "is not name:phone:fax"),
            (":+15550001:+15550101", "has no name"),
            ("acme:15550001:+15550101", "phone number \"15550001\" is not E.164"),
            ("acme:+15550001:+1555x101", "fax number"),
            ("acme:+15550001:+15550101;acme:+15550002:+15550102", "acme is listed twice"),
        ] {
            let error = parse_customers(spec).unwrap_err();
            assert!(error.contains(says), "{spec}: {error}");
        }
    }

    /// What Alertmanager 0.25 posts for the demo's BillingDown rule (trimmed to one alert).
    fn webhook(status: &str, ends_at: &str) -> String {
        format!(
            r#"{{"receiver":"customers","status":"{status}","alerts":[{{"status":"{status}",
            "labels":{{"alertname":"BillingDown","instance":"billing:8080","job":"billing",
              "service":"billing","severity":"critical"}},
            "annotations":{{"summary":"billing is down: outage of invoicing",
              "description":"Outage: the billing service (billing:8080) does not answer."}},
            "startsAt":"2030-01-05T10:00:01.123Z","endsAt":"{ends_at}",
            "generatorURL":"http://prometheus:9090/graph","fingerprint":"8e1f8f0ba4c8a1c3"}}],
            "groupLabels":{{"alertname":"BillingDown"}},"commonLabels":{{}},"commonAnnotations":{{}},
            "externalURL":"http://alertmanager:9093","version":"4",
            "groupKey":"{{}}:{{alertname=\"BillingDown\"}}","truncatedAlerts":0}}"#
        )
    }

    fn notices(body: &str) -> Vec<Notice> {
        let webhook: Webhook = serde_json::from_str(body).unwrap();
        webhook.alerts.iter().filter_map(Notice::from_alert).collect()
    }

    #[test]
    fn webhook_alerts_become_concrete_outage_and_all_clear_notices() {
        let [firing] = notices(&webhook("firing", "0001-01-01T00:00:00Z")).try_into().unwrap();
        assert!(firing.firing);
        assert_eq!(firing.key, "8e1f8f0ba4c8a1c3");
        assert_eq!(
            firing.short,
            "OUTAGE: billing is down: outage of invoicing (BillingDown since 10:00:01 UTC). We \
             are working on it and will tell you when it is resolved."
        );
        assert!(
            firing.long.ends_with("\nOutage: the billing service (billing:8080) does not answer.")
        );
        let [resolved] = notices(&webhook("resolved", "2030-01-05T10:01:02Z")).try_into().unwrap();
        assert!(!resolved.firing);
        assert_eq!(resolved.key, firing.key);
        assert_eq!(
            resolved.long,
            "RESOLVED: the billing outage is over (BillingDown); billing works again.\nOutage \
             from 10:00:01 to 10:01:02 UTC."
        );
    }

    #[test]
    fn a_summary_without_the_service_gets_it_and_odd_statuses_are_ignored() {
        let body = r#"{"alerts":[
            {"status":"firing","labels":{"alertname":"X","job":"api"},"annotations":{"summary":"down"},"startsAt":"x"},
            {"status":"suppressed","labels":{},"startsAt":"x"}]}"#;
        let [notice] = notices(body).try_into().unwrap();
        assert_eq!(notice.service, "api");
        assert!(notice.short.starts_with("OUTAGE: api: down (X since x UTC)"), "{}", notice.short);
    }

    #[test]
    fn each_outage_is_told_once_firing_and_once_resolved() {
        let firing = &notices(&webhook("firing", "0001-01-01T00:00:00Z"))[0];
        let resolved = &notices(&webhook("resolved", "2030-01-05T10:01:02Z"))[0];
        let mut tracker = Tracker::default();
        let slot = tracker.admit(firing).expect("a new outage is news");
        assert!(tracker.admit(firing).is_none(), "repeat_interval re-send");
        let resolve_slot = tracker.admit(resolved).expect("its all-clear is news");
        assert!(Arc::ptr_eq(&slot, &resolve_slot), "the resolve PATCHes the same incident");
        assert!(tracker.admit(resolved).is_none());
        assert!(tracker.admit(firing).is_none(), "a late firing re-send after the all-clear");
        let again = Notice { starts_at: "2030-01-05T11:00:00Z".into(), ..firing.clone() };
        assert!(tracker.admit(&again).is_some(), "the same alert firing again is a new outage");
        // An all-clear for an outage comms never saw (it restarted) is still sent.
        let mut fresh = Tracker::default();
        assert!(fresh.admit(resolved).is_some());
    }

    #[test]
    fn the_tracker_stays_bounded_and_forgets_resolved_alerts_first() {
        let mut tracker = Tracker::default();
        let base = &notices(&webhook("firing", "0001-01-01T00:00:00Z"))[0];
        let open = Notice { key: "still-firing".into(), ..base.clone() };
        tracker.admit(&open).unwrap();
        for n in 0..MAX_TRACKED_ALERTS * 2 {
            let notice = Notice { key: format!("k{n}"), ..base.clone() };
            tracker.admit(&notice).unwrap();
            tracker.admit(&Notice { firing: false, ..notice }).unwrap();
        }
        assert!(tracker.alerts.len() <= MAX_TRACKED_ALERTS);
        assert!(tracker.alerts.contains_key("still-firing"));
    }

    #[test]
    fn sms_fails_over_on_throttling_server_errors_and_silence_only() {
        for (result, over) in [
            (Ok(201), false),
            (Ok(400), false),
            (Ok(401), false),
            (Ok(429), true),
            (Ok(500), true),
            (Ok(503), true),
            (Err("no answer within 5s".to_string()), true),
        ] {
            assert_eq!(sms_failed_over(&result), over, "{result:?}");
        }
    }

    #[test]
    fn twiml_escapes_the_spoken_text() {
        assert_eq!(
            twiml_say("a < b & \"c\""),
            "<Response><Say>a &lt; b &amp; &quot;c&quot;</Say></Response>"
        );
    }

    #[test]
    fn maintenance_requests_are_checked() {
        let request = |starts: &str, ends: &str| MaintenanceRequest {
            service: "billing".into(),
            starts_at: starts.into(),
            ends_at: ends.into(),
            message: "Upgrade to 2.0.".into(),
        };
        let ok = request("2030-01-05T22:00:00Z", "2030-01-05T23:00:00Z");
        ok.validate().unwrap();
        assert_eq!(
            ok.text(),
            "MAINTENANCE: billing will be under scheduled maintenance from 2030-01-05T22:00:00Z \
             to 2030-01-05T23:00:00Z. Upgrade to 2.0."
        );
        request("2030-01-05T22:00:00.5+01:00", "2030-01-05T23:00:00+01:00").validate().unwrap();
        let error = request("tomorrow", "2030-01-05T23:00:00Z").validate().unwrap_err();
        assert!(error.starts_with("starts_at must be an RFC 3339 time"), "{error}");
        let error = request("2030-01-05T22:00:00Z", "2030-01-05T21:00:00Z").validate().unwrap_err();
        assert!(error.contains("must be after"), "{error}");
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    fn full_config(base: &str, timeout: &str) -> Config {
        let (config, skipped) = Config::from_lookup(lookup(&[
            ("CUSTOMERS", CUSTOMERS),
            ("TWILIO_URL", base),
            ("TWILIO_ACCOUNT", "AC123"),
            ("TWILIO_TOKEN", "secret"),
            ("TWILIO_FROM", "+15559999"),
            ("SINCH_URL", base),
            ("SINCH_PROJECT", "proj"),
            ("STATUSPAGE_URL", base),
            ("STATUSPAGE_PAGE_ID", "page1"),
            ("STATUSPAGE_API_KEY", "key"),
            ("SLACK_URL", &format!("{base}/services/T0/B0/X")),
            ("PAGERDUTY_URL", base),
            ("PAGERDUTY_ROUTING_KEY", "R0UT1NG"),
            ("PROVIDER_TIMEOUT", timeout),
        ]))
        .unwrap();
        assert_eq!(skipped, Vec::<String>::new());
        config
    }

    #[test]
    fn unset_channels_are_skipped_with_a_note_and_tls_urls_refused() {
        let (config, skipped) = Config::from_lookup(lookup(&[
            ("TWILIO_URL", "http://sinks:1/"),
            ("SLACK_URL", "http://sinks:1/hook"),
        ]))
        .unwrap();
        assert_eq!(config.channels(), vec!["slack"]);
        assert_eq!(config.provider_timeout, DEFAULT_PROVIDER_TIMEOUT);
        assert_eq!(
            skipped,
            vec![
                "per-customer channels (sms, voice, fax) skipped: CUSTOMERS not set",
                "sms and voice skipped: TWILIO_ACCOUNT, TWILIO_TOKEN, TWILIO_FROM not set",
                "fax skipped: SINCH_URL, SINCH_PROJECT not set",
                "status page skipped: STATUSPAGE_URL, STATUSPAGE_PAGE_ID not set",
                "paging (pagerduty) skipped: PAGERDUTY_URL, PAGERDUTY_ROUTING_KEY not set",
            ]
        );
        let error = Config::from_lookup(lookup(&[("SLACK_URL", "https://hooks.slack.com/x")]))
            .err()
            .unwrap();
        assert!(error.starts_with("SLACK_URL must be a plain http:// URL"), "{error}");
        assert_eq!(full_config("http://x", "1s").channels().len(), 5);
    }

    /// One request a fake provider received.
    #[derive(Debug, Clone)]
    struct Received {
        method: Method,
        path: String,
        authorization: Option<String>,
        body: String,
    }

    /// Provider-shaped answers on 127.0.0.1, recording every request. Messages to `failing_phone`
    /// answer 500; requests to `held_path` are answered only once `release_after` requests
    /// (itself included) have arrived, and 503 if that never happens within the test.
    struct FakeProviders {
        received: Mutex<Vec<Received>>,
        arrivals: watch::Sender<usize>,
        failing_phone: Option<String>,
        held_path: Option<String>,
        release_after: usize,
    }

    async fn fake_provider(
        State(fake): State<Arc<FakeProviders>>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = uri.path().to_string();
        let body = String::from_utf8_lossy(&body).into_owned();
        let authorization =
            headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        fake.received.lock().unwrap().push(Received {
            method: method.clone(),
            path: path.clone(),
            authorization,
            body: body.clone(),
        });
        fake.arrivals.send_modify(|n| *n += 1);
        if fake.held_path.as_deref() == Some(path.as_str()) {
            let mut arrivals = fake.arrivals.subscribe();
            if arrivals.wait_for(|n| *n >= fake.release_after).await.is_err() {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
        let json = |status: StatusCode, value: Value| (status, Json(value)).into_response();
        if path.ends_with("/Messages.json") {
            let to = fake.failing_phone.as_deref().map(|p| format!("To=%2B{}", &p[1..]));
            if to.is_some_and(|to| body.contains(&to)) {
                return json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
                );
            }
            return json(StatusCode::CREATED, json!({"sid": "SM1", "status": "queued"}));
        }
        if path.ends_with("/Calls.json") {
            return json(StatusCode::CREATED, json!({"sid": "CA1", "status": "queued"}));
        }
        if path.ends_with("/incidents") {
            return json(StatusCode::CREATED, json!({"id": "inc-42", "status": "investigating"}));
        }
        if path.contains("/incidents/") {
            return json(StatusCode::OK, json!({"id": "inc-42", "status": "resolved"}));
        }
        if path == "/v2/enqueue" {
            return json(
                StatusCode::ACCEPTED,
                json!({"status": "success", "message": "Event processed"}),
            );
        }
        if path.ends_with("/faxes") {
            return json(StatusCode::OK, json!({"id": "fax1", "status": "QUEUED"}));
        }
        (StatusCode::OK, "ok").into_response()
    }

    async fn start_fake(fake: FakeProviders) -> (String, Arc<FakeProviders>) {
        let fake = Arc::new(fake);
        let app = Router::new().fallback(fake_provider).with_state(Arc::clone(&fake));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), fake)
    }

    fn fake(
        failing_phone: Option<&str>,
        held_path: Option<&str>,
        release_after: usize,
    ) -> FakeProviders {
        FakeProviders {
            received: Mutex::default(),
            arrivals: watch::Sender::new(0),
            failing_phone: failing_phone.map(str::to_string),
            held_path: held_path.map(str::to_string),
            release_after,
        }
    }

    /// Runs one webhook body through admission, planning and fan-out, like `POST /alert`, and
    /// waits for every delivery.
    async fn notify(state: &AppState, body: &str) -> Vec<Outcome> {
        let mut handles = Vec::new();
        for notice in notices(body) {
            let incident = state.tracker.lock().unwrap().admit(&notice).unwrap();
            handles.extend(state.fan_out(plan_alert(&state.config, &notice, incident, 7)));
        }
        let mut outcomes = Vec::new();
        for handle in handles {
            outcomes.extend(handle.await.unwrap());
        }
        outcomes.sort_by(|a, b| (a.channel, &a.target).cmp(&(b.channel, &b.target)));
        outcomes
    }

    fn outcome(channel: &'static str, target: &str, status: u16) -> Outcome {
        Outcome { channel, target: target.into(), result: Ok(status) }
    }

    #[tokio::test]
    async fn an_outage_reaches_every_provider_and_failed_sms_becomes_a_call() {
        let (base, fake) = start_fake(fake(Some("+15550001"), None, 0)).await;
        let state = AppState::new(full_config(&base, "10s")).unwrap();

        let outcomes = notify(&state, &webhook("firing", "0001-01-01T00:00:00Z")).await;
        assert_eq!(
            outcomes,
            vec![
                outcome("fax", "acme", 200),
                outcome("fax", "globex", 200),
                outcome("pagerduty", "-", 202),
                outcome("slack", "-", 200),
                outcome("sms", "acme", 500),
                outcome("sms", "globex", 201),
                outcome("statuspage", "-", 201),
                outcome("voice", "acme", 201),
            ]
        );
        let received = fake.received.lock().unwrap().clone();
        let find = |path_end: &str, contains: &str| {
            received
                .iter()
                .find(|r| r.path.ends_with(path_end) && r.body.contains(contains))
                .unwrap_or_else(|| panic!("no {path_end} with {contains:?} in {received:#?}"))
                .clone()
        };
        let call = find("/2010-04-01/Accounts/AC123/Calls.json", "To=%2B15550001");
        assert!(
            call.body.contains("Twiml=%3CResponse%3E%3CSay%3EOUTAGE%3A+billing+is+down"),
            "{}",
            call.body
        );
        // Basic auth AC123:secret.
        assert_eq!(call.authorization.as_deref(), Some("Basic QUMxMjM6c2VjcmV0"));
        let sms = find("/Messages.json", "To=%2B15550002");
        assert!(
            sms.body.contains("From=%2B15559999") && sms.body.contains("Body=OUTAGE"),
            "{}",
            sms.body
        );
        let fax: Value =
            serde_json::from_str(&find("/v3/projects/proj/faxes", "+15550101").body).unwrap();
        assert!(fax["text"].as_str().unwrap().starts_with("OUTAGE: billing is down"), "{fax}");
        let incident = find("/v1/pages/page1/incidents", "investigating");
        assert_eq!(incident.authorization.as_deref(), Some("OAuth key"));
        let incident: Value = serde_json::from_str(&incident.body).unwrap();
        assert_eq!(incident["incident"]["impact_override"], "major");
        assert_eq!(incident["incident"]["name"], "billing outage: BillingDown");
        let slack: Value = serde_json::from_str(&find("/services/T0/B0/X", "").body).unwrap();
        assert!(slack["text"].as_str().unwrap().starts_with("OUTAGE: billing"));
        let page: Value = serde_json::from_str(&find("/v2/enqueue", "trigger").body).unwrap();
        assert_eq!(page["dedup_key"], "8e1f8f0ba4c8a1c3");
        assert_eq!(page["routing_key"], "R0UT1NG");
        assert_eq!(page["payload"]["severity"], "critical");
        assert_eq!(page["payload"]["source"], "billing");

        let before = received.len();
        let outcomes = notify(&state, &webhook("resolved", "2030-01-05T10:01:02Z")).await;
        assert_eq!(outcomes.iter().filter(|o| o.channel == "voice").count(), 1, "{outcomes:?}");
        assert!(outcomes.iter().any(|o| *o == outcome("statuspage", "-", 200)), "{outcomes:?}");
        let received = fake.received.lock().unwrap()[before..].to_vec();
        let patch = received.iter().find(|r| r.method == Method::PATCH).unwrap();
        assert_eq!(patch.path, "/v1/pages/page1/incidents/inc-42");
        assert!(patch.body.contains(r#""status":"resolved""#), "{}", patch.body);
        let resolve = received.iter().find(|r| r.path == "/v2/enqueue").unwrap();
        let resolve: Value = serde_json::from_str(&resolve.body).unwrap();
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(resolve["dedup_key"], "8e1f8f0ba4c8a1c3");
        assert!(
            received.iter().any(|r| r.body.contains("Body=RESOLVED%3A+the+billing+outage+is+over"))
        );
    }

    #[tokio::test]
    async fn a_hung_provider_does_not_hold_up_the_others() {
        // 4 SMS-or-fax requests + statuspage + slack + pagerduty = 7. Slack only answers once all
        // 7 have arrived: sent one after another, it would time out instead.
        let (base, _fake) = start_fake(fake(None, Some("/services/T0/B0/X"), 7)).await;
        let state = AppState::new(full_config(&base, "10s")).unwrap();
        let outcomes = notify(&state, &webhook("firing", "0001-01-01T00:00:00Z")).await;
        assert_eq!(outcomes.len(), 7, "{outcomes:?}");
        assert!(outcomes.iter().all(|o| o.result.as_ref().is_ok_and(|s| *s < 300)), "{outcomes:?}");
    }

    #[tokio::test]
    async fn a_provider_that_never_answers_times_out_and_sms_fails_over() {
        // The held path waits for more requests than will ever come.
        let (base, _fake) =
            start_fake(fake(None, Some("/2010-04-01/Accounts/AC123/Messages.json"), 1000)).await;
        let state = AppState::new(full_config(&base, "200ms")).unwrap();
        let outcomes = notify(&state, &webhook("firing", "0001-01-01T00:00:00Z")).await;
        let sms: Vec<_> = outcomes.iter().filter(|o| o.channel == "sms").collect();
        assert_eq!(sms.len(), 2);
        for outcome in sms {
            assert_eq!(outcome.result, Err("no answer within 200ms".to_string()));
        }
        let calls: Vec<_> = outcomes.iter().filter(|o| o.channel == "voice").collect();
        assert_eq!(calls.len(), 2, "{outcomes:?}");
        assert!(calls.iter().all(|o| o.result == Ok(201)), "{outcomes:?}");
    }

    #[tokio::test]
    async fn maintenance_goes_to_sms_slack_and_a_scheduled_statuspage_maintenance() {
        let (base, fake) = start_fake(fake(None, None, 0)).await;
        let state = AppState::new(full_config(&base, "10s")).unwrap();
        let request = MaintenanceRequest {
            service: "billing".into(),
            starts_at: "2030-01-05T22:00:00Z".into(),
            ends_at: "2030-01-05T23:00:00Z".into(),
            message: "Upgrade to 2.0.".into(),
        };
        let mut channels = Vec::new();
        for handle in state.fan_out(plan_maintenance(&state.config, &request)) {
            channels.extend(handle.await.unwrap().into_iter().map(|o| (o.channel, o.result)));
        }
        channels.sort();
        assert_eq!(
            channels,
            vec![
                ("slack", Ok(200)),
                ("sms", Ok(201)),
                ("sms", Ok(201)),
                ("statuspage-maintenance", Ok(201)),
            ]
        );
        let received = fake.received.lock().unwrap().clone();
        let scheduled = received.iter().find(|r| r.path == "/v1/pages/page1/incidents").unwrap();
        let scheduled: Value = serde_json::from_str(&scheduled.body).unwrap();
        assert_eq!(scheduled["incident"]["status"], "scheduled");
        assert_eq!(scheduled["incident"]["scheduled_for"], "2030-01-05T22:00:00Z");
        assert_eq!(scheduled["incident"]["scheduled_until"], "2030-01-05T23:00:00Z");
    }
}
