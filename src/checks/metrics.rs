//! `prometheus` and `alert`: judging what the team's own monitoring recorded, from the journal.
//!
//! The engine cannot judge while Prometheus answers, and the checks never ask it anything: the
//! queries are planned here from the journal ([`planned_queries`], pure), the engine asks them
//! before teardown and records each answer unchanged (`prometheus-query`), polls Alertmanager
//! into `alertmanager-alerts`, and these functions judge those events.
//!
//! - `prometheus`: every value of every series the query returned (at the instant, or every
//!   sample of the range over the step) lies within `min`/`max`; no series fails (write
//!   `... or vector(0)` when "nothing" is a value); `NaN` is outside every limit.
//! - `alert`: a chain of hops, each timed from the one before: the rule **fired** (`ALERTS`
//!   with `alertstate="firing"` at a range query's point at or after the trigger) → Alertmanager
//!   **routed** it (the first poll that lists it active, with the receivers its route picked) →
//!   each channel **delivered** (the first alert message on it, not an all-clear) → it
//!   **resolved** (the first point at or after the resolve trigger with no firing series). The
//!   firing and resolving moments are as precise as the range query's step (250 ms, coarser
//!   for runs over 40 minutes); the routing as the poll (200 ms).

use std::collections::BTreeMap;

use super::notify::{ChannelTiming, Class};
use super::{CheckStatus, Evidence, Judged, Timeline, format_duration_us};
use crate::journal::{AlertSeen, Event, EventKind, Phase};
use crate::scenario::Scenario;
use crate::scenario::model::{
    AlertCheck, ExpectationKind, MetricsSource, PrometheusCheck, QueryWhen, Trigger,
};

/// One query the engine must ask for a check.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedQuery {
    /// The expectation's name (the event's `check`).
    pub check: String,
    /// Which Prometheus.
    pub source: MetricsSource,
    /// The PromQL expression.
    pub query: String,
    /// When, in run offsets.
    pub range: QueryRange,
}

/// An instant or a range, µs from the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryRange {
    /// `/api/v1/query` at this offset.
    Instant(u64),
    /// `/api/v1/query_range`.
    Range {
        /// First point.
        start_us: u64,
        /// Last point (at most).
        end_us: u64,
        /// Between points.
        step_us: u64,
    },
}

/// At most this many points per range query (Prometheus refuses more than 11,000).
const MAX_POINTS: u64 = 10_000;
/// The `ALERTS` range query's finest step.
const ALERT_STEP_US: u64 = 250_000;
/// A `throughout` range query's default step.
const THROUGHOUT_STEP_US: u64 = 1_000_000;

fn step_for(span_us: u64, finest_us: u64) -> u64 {
    finest_us.max(span_us.div_ceil(MAX_POINTS).div_ceil(1_000) * 1_000)
}

/// The PromQL selector of an alert check: `ALERTS{alertname="X",alertstate="firing",...}`.
pub fn alerts_selector(check: &AlertCheck) -> String {
    let mut matchers = vec![
        format!("alertname=\"{}\"", escape_label(&check.alertname)),
        "alertstate=\"firing\"".to_owned(),
    ];
    matchers.extend(check.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))));
    format!("ALERTS{{{}}}", matchers.join(","))
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The queries the checks of `scenario` need, given the journal so far and the current offset
/// `now_us`: a `prometheus` check's instant or step span (when its moment happened), an `alert`
/// check's `ALERTS` from the timeline's start to now.
pub fn planned_queries(scenario: &Scenario, events: &[Event], now_us: u64) -> Vec<PlannedQuery> {
    let journal = Timeline::new(events);
    let timeline_start = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::PhaseStarted { phase: Phase::Steps }))
        .map(|e| e.offset_us);
    let mut planned = Vec::new();
    for expectation in &scenario.expect {
        match &expectation.kind {
            ExpectationKind::Prometheus(check) => {
                let range = match &check.when {
                    QueryWhen::At { at, delay } => journal
                        .moment(at)
                        .ok()
                        .map(|m| QueryRange::Instant(m.at_us.saturating_add(super::micros(*delay))))
                        .filter(|range| matches!(range, QueryRange::Instant(at) if *at <= now_us)),
                    QueryWhen::Throughout { step, resolution } => {
                        let span = journal.step_span(step).ok();
                        span.and_then(|span| {
                            let start_us = span.start.offset_us;
                            let end_us = span.end.map(|end| end.event.offset_us)?;
                            let finest = resolution.map_or(THROUGHOUT_STEP_US, super::micros);
                            let step_us = step_for(end_us.saturating_sub(start_us), finest);
                            Some(QueryRange::Range { start_us, end_us, step_us })
                        })
                    }
                };
                if let Some(range) = range {
                    planned.push(PlannedQuery {
                        check: expectation.name.clone(),
                        source: check.source.clone(),
                        query: check.query.clone(),
                        range,
                    });
                }
            }
            ExpectationKind::Alert(check) => {
                let Some(start_us) = timeline_start else { continue };
                let step_us = step_for(now_us.saturating_sub(start_us), ALERT_STEP_US);
                planned.push(PlannedQuery {
                    check: expectation.name.clone(),
                    source: check.prometheus.clone(),
                    query: alerts_selector(check),
                    range: QueryRange::Range { start_us, end_us: now_us, step_us },
                });
            }
            _ => {}
        }
    }
    planned
}

/// The Alertmanagers `alert` checks route through, each with the alert names to watch there.
pub fn alertmanager_watches(scenario: &Scenario) -> Vec<(MetricsSource, Vec<String>)> {
    let mut watches: Vec<(MetricsSource, Vec<String>)> = Vec::new();
    for expectation in &scenario.expect {
        let ExpectationKind::Alert(check) = &expectation.kind else { continue };
        let Some(routed) = &check.routed else { continue };
        match watches.iter_mut().find(|(source, _)| *source == routed.alertmanager) {
            Some((_, names)) if names.contains(&check.alertname) => {}
            Some((_, names)) => names.push(check.alertname.clone()),
            None => watches.push((routed.alertmanager.clone(), vec![check.alertname.clone()])),
        }
    }
    watches
}

/// The latest deadline of the `prometheus` and `alert` checks the journal so far places, µs:
/// the engine observes (and Alertmanager is polled, and the sinks listen) until then.
pub fn observe_until_us(scenario: &Scenario, events: &[Event]) -> Option<u64> {
    let journal = Timeline::new(events);
    let at = |trigger: &Trigger| journal.moment(trigger).ok().map(|m| m.at_us);
    scenario
        .expect
        .iter()
        .filter_map(|expectation| match &expectation.kind {
            ExpectationKind::Prometheus(check) => match &check.when {
                QueryWhen::At { at: trigger, delay } => {
                    at(trigger).map(|t| t.saturating_add(super::micros(*delay)))
                }
                QueryWhen::Throughout { .. } => None,
            },
            ExpectationKind::Alert(check) => {
                let mut chain = super::micros(check.fires.within);
                chain = chain
                    .saturating_add(check.routed.as_ref().map_or(0, |r| super::micros(r.within)));
                chain = chain.saturating_add(
                    check.delivered.as_ref().map_or(0, |d| super::micros(d.within)),
                );
                let fired = at(&check.fires.on).map(|t| t.saturating_add(chain));
                let resolved = check
                    .resolves
                    .as_ref()
                    .and_then(|r| at(&r.on).map(|t| t.saturating_add(super::micros(r.within))));
                fired.max(resolved)
            }
            _ => None,
        })
        .max()
}

/// The recorded answer to a check's query.
struct Answer<'a> {
    event: &'a Event,
    source: &'a str,
    epoch_s: f64,
    start_s: f64,
    end_s: Option<f64>,
    step_s: Option<f64>,
    data: &'a serde_json::Value,
    error: Option<&'a str>,
}

impl Answer<'_> {
    /// A sample time as a run offset, µs.
    fn offset_us(&self, unix_s: f64) -> u64 {
        ((unix_s - self.epoch_s) * 1e6).round().max(0.0) as u64
    }
}

/// One series: its labels and samples `(unix s, value)`.
struct Series {
    labels: BTreeMap<String, String>,
    samples: Vec<(f64, f64)>,
}

impl Series {
    fn describe(&self) -> String {
        let name = self.labels.get("__name__").cloned().unwrap_or_default();
        let labels: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        format!("{name}{{{}}}", labels.join(", "))
    }
}

fn sample(value: &serde_json::Value) -> Option<(f64, f64)> {
    let pair = value.as_array()?;
    let at = pair.first()?.as_f64()?;
    let text = pair.get(1)?.as_str()?;
    let value = match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some((at, value))
}

/// The series of a `data` object (`vector`, `matrix` or `scalar`).
fn series(data: &serde_json::Value) -> Result<Vec<Series>, String> {
    let kind = data["resultType"].as_str().unwrap_or_default();
    let result = &data["result"];
    let labels = |item: &serde_json::Value| -> BTreeMap<String, String> {
        item["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    match kind {
        "scalar" => Ok(sample(result)
            .map(|s| Series { labels: BTreeMap::new(), samples: vec![s] })
            .into_iter()
            .collect()),
        "vector" => Ok(result
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| Series {
                labels: labels(item),
                samples: sample(&item["value"]).into_iter().collect(),
            })
            .collect()),
        "matrix" => Ok(result
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| Series {
                labels: labels(item),
                samples: item["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(sample)
                    .collect(),
            })
            .collect()),
        other => Err(format!("an answer of type `{other}`")),
    }
}

impl<'a> Timeline<'a> {
    fn answer(&self, check: &str) -> Option<Answer<'a>> {
        self.events.iter().rev().find_map(|event| match &event.kind {
            EventKind::PrometheusQuery {
                check: c,
                source,
                epoch_s,
                start_s,
                end_s,
                step_s,
                data,
                error,
                ..
            } if c == check => Some(Answer {
                event,
                source,
                epoch_s: *epoch_s,
                start_s: *start_s,
                end_s: *end_s,
                step_s: *step_s,
                data,
                error: error.as_deref(),
            }),
            _ => None,
        })
    }
}

fn limits_words(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!("from {min} to {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => "anything".to_owned(),
    }
}

fn plus(us: u64) -> String {
    format!("+{}", format_duration_us(us))
}

/// `prometheus`.
pub(super) fn prometheus(journal: &Timeline<'_>, name: &str, check: &PrometheusCheck) -> Judged {
    let limits = limits_words(check.min, check.max);
    let (when, moment) = match &check.when {
        QueryWhen::At { at, delay } => {
            let delay = if delay.is_zero() {
                String::new()
            } else {
                format!(" + {}", format_duration_us(super::micros(*delay)))
            };
            (format!("at {}{delay}", super::notify::trigger_words(at)), journal.moment(at).err())
        }
        QueryWhen::Throughout { step, .. } => {
            let why = match journal.step_span(step) {
                Err((why, _)) => Some(why),
                Ok(span) if span.end.is_none() => Some(format!("`{step}` never ended")),
                Ok(_) => None,
            };
            (format!("throughout `{step}`"), why)
        }
    };
    let expected =
        format!("`{}` on {} is {limits} {when}", check.query.trim(), check.source.describe());
    if let Some(why) = moment {
        return Judged::new(CheckStatus::NotEvaluated, expected, why.clone(), why);
    }
    let Some(answer) = journal.answer(name) else {
        let why = "no answer recorded: the run ended before the query".to_owned();
        return Judged::new(CheckStatus::NotEvaluated, expected, why.clone(), why);
    };
    if let Some(error) = answer.error {
        let summary = format!("Prometheus {} did not answer: {error}", answer.source);
        return Judged::new(CheckStatus::Failed, expected, summary.clone(), summary)
            .with_evidence(vec![Evidence::at(answer.event, error)]);
    }
    let all = match series(answer.data) {
        Ok(all) => all,
        Err(what) => {
            let summary = format!("Prometheus answered {what}");
            return Judged::new(CheckStatus::Failed, expected, summary.clone(), summary)
                .with_evidence(vec![Evidence::at(answer.event, "the answer")]);
        }
    };
    let samples: usize = all.iter().map(|s| s.samples.len()).sum();
    if samples == 0 {
        let summary =
            "the query returned no series (write `... or vector(0)` when none is a value)"
                .to_owned();
        return Judged::new(CheckStatus::Failed, expected, summary, "no series".to_owned())
            .with_evidence(vec![Evidence::at(answer.event, "no series")]);
    }
    let outside = |value: f64| {
        value.is_nan()
            || check.min.is_some_and(|min| value < min)
            || check.max.is_some_and(|max| value > max)
    };
    let mut breaches: Vec<(u64, String)> = Vec::new();
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for one in &all {
        for &(at, value) in &one.samples {
            low = low.min(value);
            high = high.max(value);
            if outside(value) {
                breaches.push((
                    answer.offset_us(at),
                    format!("{} = {value} at {}", one.describe(), plus(answer.offset_us(at))),
                ));
            }
        }
    }
    breaches.sort();
    let observed =
        format!("{} series, {} sample(s), values from {low} to {high}", all.len(), samples);
    match breaches.first() {
        Some((_, first)) => {
            let summary = format!(
                "{} of {samples} sample(s) outside {limits}; first {first}",
                breaches.len()
            );
            let evidence = vec![Evidence::at(answer.event, format!("first outside: {first}"))];
            Judged::new(CheckStatus::Failed, expected, summary, observed).with_evidence(evidence)
        }
        None => {
            let summary =
                format!("every value {limits} ({} series, {samples} sample(s))", all.len());
            Judged::new(CheckStatus::Passed, expected, summary, observed)
                .with_evidence(vec![Evidence::at(answer.event, "the answer")])
        }
    }
}

/// A hop's outcome.
fn outcome(
    arrival_us: Option<u64>,
    reference_us: u64,
    limit_us: u64,
    observed_until_us: u64,
) -> (&'static str, Option<i64>) {
    let deadline = reference_us.saturating_add(limit_us);
    match arrival_us {
        Some(at) => {
            let margin = deadline as i64 - at as i64;
            (if margin >= 0 { "on-time" } else { "late" }, Some(margin))
        }
        None if observed_until_us >= deadline => ("missing", None),
        None => ("not-settled", None),
    }
}

fn hop(
    channel: String,
    reference: String,
    reference_us: u64,
    arrival_us: Option<u64>,
    limit_us: u64,
    until_us: u64,
) -> ChannelTiming {
    let (outcome, margin_us) = outcome(arrival_us, reference_us, limit_us, until_us);
    ChannelTiming {
        part: "hop".to_owned(),
        channel,
        recipient: None,
        reference,
        reference_us,
        arrival_us,
        limit_us,
        margin_us,
        outcome: outcome.to_owned(),
    }
}

/// The points of a range answer, each with whether an alert series fired there.
fn firing_points(answer: &Answer<'_>, all: &[Series]) -> Vec<(u64, bool)> {
    let (Some(end_s), Some(step_s)) = (answer.end_s, answer.step_s) else { return Vec::new() };
    if step_s <= 0.0 {
        return Vec::new();
    }
    // Prometheus answers the points `start + k × step`, in seconds with millisecond precision.
    let ms = |s: f64| (s * 1e3).round() as i64;
    let firing: std::collections::HashSet<i64> = all
        .iter()
        .flat_map(|s| s.samples.iter().filter(|(_, v)| *v > 0.0).map(|(t, _)| ms(*t)))
        .collect();
    let mut points = Vec::new();
    for k in 0.. {
        let at = answer.start_s + k as f64 * step_s;
        if ms(at) > ms(end_s) {
            break;
        }
        points.push((answer.offset_us(at), firing.contains(&ms(at))));
    }
    points
}

/// Whether an alert Alertmanager holds is this check's.
fn matches(alert: &AlertSeen, check: &AlertCheck) -> bool {
    alert.labels.get("alertname") == Some(&check.alertname)
        && check.labels.iter().all(|(k, v)| alert.labels.get(k) == Some(v))
}

/// `alert`.
pub(super) fn alert(journal: &Timeline<'_>, name: &str, check: &AlertCheck) -> Judged {
    let expected = alert_expected(check);
    let fires_on = match journal.moment(&check.fires.on) {
        Ok(moment) => moment,
        Err(why) => return Judged::new(CheckStatus::NotEvaluated, expected, why.clone(), why),
    };
    let Some(answer) = journal.answer(name) else {
        let why = "no `ALERTS` answer recorded: the run ended before the query".to_owned();
        return Judged::new(CheckStatus::NotEvaluated, expected, why.clone(), why);
    };
    if let Some(error) = answer.error {
        let summary = format!("Prometheus {} did not answer: {error}", answer.source);
        return Judged::new(CheckStatus::Failed, expected, summary.clone(), summary)
            .with_evidence(vec![Evidence::at(answer.event, error)]);
    }
    let all = series(answer.data).unwrap_or_default();
    let points = firing_points(&answer, &all);
    let queried_until = points.last().map_or(0, |p| p.0);
    let alertname = &check.alertname;
    let mut hops: Vec<ChannelTiming> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut evidence = vec![Evidence::at(answer.event, format!("`ALERTS` of {alertname}"))];

    // Hop 1: fired.
    let before = points.iter().rev().find(|(at, _)| *at < fires_on.at_us);
    if let Some((at, true)) = before {
        failures.push(format!(
            "`{alertname}` was already firing at {} before {}",
            plus(*at),
            fires_on.what
        ));
    }
    let fired_us = points.iter().find(|(at, firing)| *at >= fires_on.at_us && *firing).map(|p| p.0);
    let fires_limit = super::micros(check.fires.within);
    hops.push(hop(
        format!("`{alertname}` firing"),
        fires_on.what.clone(),
        fires_on.at_us,
        fired_us,
        fires_limit,
        queried_until,
    ));
    evidence.push(Evidence::at(fires_on.event, fires_on.what.clone()));

    // Hop 2: routed.
    let mut delivered_from = fired_us.map(|at| (at, format!("`{alertname}` firing")));
    if let (Some(routed), Some(fired)) = (&check.routed, fired_us) {
        let source = routed.alertmanager.describe();
        let polls: Vec<(&Event, &[AlertSeen], bool)> = journal
            .events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::AlertmanagerAlerts { source: s, alerts, last, .. } if *s == source => {
                    Some((event, alerts.as_slice(), *last))
                }
                _ => None,
            })
            .collect();
        let polled_until =
            polls.iter().rev().find(|p| p.2).or(polls.last()).map_or(0, |p| p.0.offset_us);
        let seen = polls.iter().filter(|p| p.0.offset_us >= fires_on.at_us).find_map(
            |(event, alerts, _)| {
                alerts
                    .iter()
                    .find(|a| matches(a, check) && a.state == "active")
                    .map(|a| (*event, a))
            },
        );
        let routed_us = match seen {
            Some((event, alert)) if alert.receivers.contains(&routed.receiver) => {
                evidence.push(Evidence::at(
                    event,
                    format!(
                        "Alertmanager {source}: `{alertname}` active for `{}`",
                        routed.receiver
                    ),
                ));
                Some(event.offset_us.max(fired))
            }
            Some((event, alert)) => {
                let to =
                    alert.receivers.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ");
                failures.push(format!(
                    "Alertmanager routed `{alertname}` to {to}, not `{}`",
                    routed.receiver
                ));
                evidence.push(Evidence::at(
                    event,
                    format!("Alertmanager {source}: `{alertname}` routed to {to}"),
                ));
                None
            }
            None => None,
        };
        let reference = format!("`{alertname}` firing");
        let mut row = hop(
            format!("routed to `{}`", routed.receiver),
            reference,
            fired,
            routed_us,
            super::micros(routed.within),
            polled_until,
        );
        if seen.is_some() && routed_us.is_none() {
            row.outcome = "misrouted".to_owned();
        }
        hops.push(row);
        delivered_from = routed_us.map(|at| (at, format!("routed to `{}`", routed.receiver)));
    }

    // Hop 3: delivered, per channel.
    if let (Some(delivered), Some((from_us, from_what))) = (&check.delivered, &delivered_from) {
        let messages = journal.messages();
        let listened_until = journal.notifications_until_us();
        for channel in &delivered.channels {
            let first = messages.iter().find(|m| {
                m.channel == channel.name()
                    && m.class != Class::AllClear
                    && m.received_us >= fires_on.at_us
            });
            if let Some(message) = first {
                evidence.push(Evidence::at(message.event, format!("{} received", channel.name())));
            }
            // Polls are 200 ms apart: a message may land before the poll that saw the routing.
            let arrival = first.map(|m| m.received_us.max(*from_us));
            hops.push(hop(
                channel.name().to_owned(),
                from_what.clone(),
                *from_us,
                arrival,
                super::micros(delivered.within),
                listened_until,
            ));
        }
    }

    // Hop 4: resolved.
    if let Some(resolves) = &check.resolves {
        match journal.moment(&resolves.on) {
            Err(why) => failures.push(format!("resolution not judged: {why}")),
            Ok(on) => {
                let after = on.at_us.max(fired_us.unwrap_or(0));
                let resolved_us =
                    points.iter().find(|(at, firing)| *at >= after && !firing).map(|p| p.0);
                evidence.push(Evidence::at(on.event, on.what.clone()));
                hops.push(hop(
                    format!("`{alertname}` resolved"),
                    on.what,
                    on.at_us,
                    resolved_us,
                    super::micros(resolves.within),
                    queried_until,
                ));
            }
        }
    }

    for row in &hops {
        let spent =
            row.arrival_us.map(|at| format_duration_us(at.saturating_sub(row.reference_us)));
        match (row.outcome.as_str(), spent) {
            ("late", Some(spent)) => failures.push(format!(
                "{}: {spent} after {} (limit {})",
                row.channel,
                row.reference,
                format_duration_us(row.limit_us)
            )),
            ("missing", _) => {
                failures.push(format!(
                    "{}: never, {} after {}",
                    row.channel,
                    format_duration_us(row.limit_us),
                    row.reference
                ));
            }
            _ => {}
        }
    }
    let observed = hops
        .iter()
        .map(|row| match row.arrival_us {
            Some(at) => format!(
                "{} {} after {}",
                row.channel,
                format_duration_us(at.saturating_sub(row.reference_us)),
                row.reference
            ),
            None => format!("{}: {}", row.channel, row.outcome),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let status = if !failures.is_empty() {
        CheckStatus::Failed
    } else if hops.iter().any(|h| h.outcome != "on-time") {
        CheckStatus::NotEvaluated
    } else {
        CheckStatus::Passed
    };
    let summary = match status {
        CheckStatus::Failed => failures.join("; "),
        CheckStatus::NotEvaluated => {
            format!("the run ended before every hop's deadline: {observed}")
        }
        CheckStatus::Passed => observed.clone(),
    };
    let mut judged = Judged::new(status, expected, summary, observed).with_evidence(evidence);
    judged.channels = hops;
    judged
}

fn alert_expected(check: &AlertCheck) -> String {
    let mut parts = vec![format!(
        "`{}` fires within {} of {}",
        check.alertname,
        format_duration_us(super::micros(check.fires.within)),
        super::notify::trigger_words(&check.fires.on)
    )];
    if let Some(routed) = &check.routed {
        parts.push(format!(
            "Alertmanager {} routes it to `{}` within {}",
            routed.alertmanager.describe(),
            routed.receiver,
            format_duration_us(super::micros(routed.within))
        ));
    }
    if let Some(delivered) = &check.delivered {
        let channels: Vec<&str> = delivered.channels.iter().map(|c| c.name()).collect();
        parts.push(format!(
            "{} carry it within {}",
            channels.join(", "),
            format_duration_us(super::micros(delivered.within))
        ));
    }
    if let Some(resolves) = &check.resolves {
        parts.push(format!(
            "it resolves within {} of {}",
            format_duration_us(super::micros(resolves.within)),
            super::notify::trigger_words(&resolves.on)
        ));
    }
    parts.join(", then ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::super::fixtures::*;
    use super::super::{CheckStatus, Verdict, evaluate};
    use super::*;
    use crate::scenario::model::{AlertDeadline, AlertDelivered, AlertRouted, Channel, StepMoment};

    /// Offsets are seconds since offset 0 in these answers: `epoch-s` 1000.
    const EPOCH: f64 = 1000.0;

    fn source() -> MetricsSource {
        MetricsSource::Service { service: "prometheus".into(), port: 9090 }
    }

    fn on(step: &str) -> Trigger {
        Trigger::Step { step: step.into(), event: StepMoment::Started }
    }

    fn query_event(
        check: &str,
        query: &str,
        range: Option<(f64, f64, f64)>,
        data: serde_json::Value,
    ) -> EventKind {
        let (start_s, end_s, step_s) = match range {
            Some((start, end, step)) => (EPOCH + start, Some(EPOCH + end), Some(step)),
            None => (EPOCH + 12.0, None, None),
        };
        EventKind::PrometheusQuery {
            check: check.into(),
            source: "prometheus:9090".into(),
            query: query.into(),
            epoch_s: EPOCH,
            start_s,
            end_s,
            step_s,
            data,
            error: None,
        }
    }

    fn vector(values: &[(&str, &str)]) -> serde_json::Value {
        let result: Vec<serde_json::Value> = values
            .iter()
            .map(|(instance, v)| json!({"metric": {"__name__": "up", "instance": instance}, "value": [EPOCH + 12.0, v]}))
            .collect();
        json!({"resultType": "vector", "result": result})
    }

    fn verdict(kind: ExpectationKind, timeline: &[(u64, EventKind)]) -> Verdict {
        evaluate(&scenario(vec![kind]), &journal(timeline)).remove(0)
    }

    fn at_check(max: f64) -> ExpectationKind {
        ExpectationKind::Prometheus(Box::new(PrometheusCheck {
            source: source(),
            query: "up{job=\"billing\"}".into(),
            when: QueryWhen::At {
                at: Trigger::Step { step: "kill".into(), event: StepMoment::Ended },
                delay: Duration::from_secs(2),
            },
            min: None,
            max: Some(max),
        }))
    }

    #[test]
    fn a_value_at_a_moment_is_planned_there_and_judged_per_series() {
        let before = [(1_000, started(0, "kill")), (10_000, ended(0, "kill"))];
        let planned =
            planned_queries(&scenario(vec![at_check(0.0)]), &journal(&before), 20_000_000);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].range, QueryRange::Instant(12_000_000), "the step's end + delay");
        assert!(
            planned_queries(&scenario(vec![at_check(0.0)]), &journal(&before), 11_000_000)
                .is_empty(),
            "not before the moment"
        );

        let answered = |data| {
            let mut timeline = before.to_vec();
            timeline.push((20_000, query_event("check 0", "up", None, data)));
            timeline
        };
        let down = verdict(at_check(0.0), &answered(vector(&[("a", "0"), ("b", "0")])));
        assert_eq!(down.status, CheckStatus::Passed, "{}", down.summary);
        assert!(down.summary.contains("every value at most 0 (2 series"), "{}", down.summary);

        let one_up = verdict(at_check(0.0), &answered(vector(&[("a", "0"), ("b", "1")])));
        assert_eq!(one_up.status, CheckStatus::Failed);
        assert!(
            one_up.summary.contains(
                "1 of 2 sample(s) outside at most 0; first up{instance=\"b\"} = 1 at +12s"
            ),
            "{}",
            one_up.summary
        );

        let nan = verdict(at_check(5.0), &answered(vector(&[("a", "NaN")])));
        assert_eq!(nan.status, CheckStatus::Failed, "NaN is outside every limit");

        let empty = verdict(at_check(0.0), &answered(vector(&[])));
        assert_eq!(empty.status, CheckStatus::Failed);
        assert!(empty.summary.contains("no series"), "{}", empty.summary);

        let mut refused = before.to_vec();
        let mut event = query_event("check 0", "up{", None, serde_json::Value::Null);
        if let EventKind::PrometheusQuery { error, .. } = &mut event {
            *error = Some("status 400: parse error: unexpected end of input".into());
        }
        refused.push((20_000, event));
        let bad = verdict(at_check(0.0), &refused);
        assert_eq!(bad.status, CheckStatus::Failed);
        assert!(bad.summary.contains("parse error"), "{}", bad.summary);

        let unasked = verdict(at_check(0.0), &before);
        assert_eq!(unasked.status, CheckStatus::NotEvaluated);
        let never = verdict(at_check(0.0), &before[..1]);
        assert_eq!(never.status, CheckStatus::NotEvaluated);
        assert!(never.summary.contains("kill"), "{}", never.summary);
    }

    #[test]
    fn throughout_a_step_every_sample_counts() {
        let check = ExpectationKind::Prometheus(Box::new(PrometheusCheck {
            source: source(),
            query: "rate(errors[10s])".into(),
            when: QueryWhen::Throughout { step: "load".into(), resolution: None },
            min: Some(0.0),
            max: Some(0.5),
        }));
        let before = [(1_000, started(0, "load")), (6_000, ended(0, "load"))];
        let planned = planned_queries(&scenario(vec![check.clone()]), &journal(&before), 7_000_000);
        assert_eq!(
            planned[0].range,
            QueryRange::Range { start_us: 1_000_000, end_us: 6_000_000, step_us: 1_000_000 }
        );
        let matrix = |late: &str| {
            json!({"resultType": "matrix", "result": [{"metric": {}, "values": [
                [EPOCH + 1.0, "0.1"], [EPOCH + 2.0, "0.2"], [EPOCH + 5.0, late]]}]})
        };
        let mut timeline = before.to_vec();
        timeline
            .push((7_000, query_event("check 0", "rate", Some((1.0, 6.0, 1.0)), matrix("0.4"))));
        assert_eq!(verdict(check.clone(), &timeline).status, CheckStatus::Passed);
        timeline[2] = (7_000, query_event("check 0", "rate", Some((1.0, 6.0, 1.0)), matrix("0.9")));
        let failed = verdict(check, &timeline);
        assert_eq!(failed.status, CheckStatus::Failed);
        assert!(failed.summary.contains("= 0.9 at +5s"), "{}", failed.summary);
    }

    fn chain(receiver: &str) -> AlertCheck {
        AlertCheck {
            alertname: "BillingDown".into(),
            labels: [("service".to_owned(), "billing".to_owned())].into(),
            prometheus: source(),
            fires: AlertDeadline { on: on("kill"), within: Duration::from_secs(5) },
            routed: Some(AlertRouted {
                alertmanager: MetricsSource::Service { service: "alertmanager".into(), port: 9093 },
                receiver: receiver.into(),
                within: Duration::from_secs(2),
            }),
            delivered: Some(AlertDelivered {
                channels: vec![Channel::Email, Channel::Sms],
                within: Duration::from_secs(10),
            }),
            resolves: Some(AlertDeadline { on: on("start"), within: Duration::from_secs(5) }),
        }
    }

    fn alerts(routed_to: &str) -> EventKind {
        EventKind::AlertmanagerAlerts {
            source: "alertmanager:9093".into(),
            alerts: vec![AlertSeen {
                labels: [("alertname", "BillingDown"), ("service", "billing")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
                state: "active".into(),
                receivers: vec![routed_to.into()],
                starts_at: String::new(),
            }],
            last: false,
            error: None,
        }
    }

    fn message(channel: &str, text: &str) -> EventKind {
        EventKind::NotificationReceived {
            sink: channel.into(),
            channel: channel.into(),
            received_us: 0,
            from: None,
            recipients: vec!["ops".into()],
            subject: None,
            body: text.into(),
            detail: serde_json::Value::Null,
        }
    }

    /// The run: kill at 10 s, firing from 12 s to 30.5 s (points every 0.5 s from 9 s to 40 s),
    /// Alertmanager lists it at 12.4 s, email at 14 s, SMS at 15 s, start at 30 s.
    fn timeline(routed_to: &str) -> Vec<(u64, EventKind)> {
        let points: Vec<serde_json::Value> = (0..=62)
            .map(|k| 9.0 + k as f64 * 0.5)
            .filter(|t| (12.0..30.5).contains(t))
            .map(|t| json!([EPOCH + t, "1"]))
            .collect();
        let data = json!({"resultType": "matrix", "result": [{"metric": {"alertname": "BillingDown"}, "values": points}]});
        let mut timeline = vec![
            (9_000, EventKind::PhaseStarted { phase: Phase::Steps }),
            (10_000, started(0, "kill")),
            (10_001, ended(0, "kill")),
            (12_400, alerts(routed_to)),
            (14_000, message("email", "[FIRING] billing outage")),
            (15_000, message("sms", "billing outage")),
            (30_000, started(1, "start")),
            (30_010, ended(1, "start")),
            (31_000, message("email", "[RESOLVED] billing outage resolved")),
            (
                40_000,
                EventKind::AlertmanagerAlerts {
                    source: "alertmanager:9093".into(),
                    alerts: vec![],
                    last: true,
                    error: None,
                },
            ),
            (40_001, query_event("check 0", "ALERTS", Some((9.0, 40.0, 0.5)), data)),
            (41_000, EventKind::SinkStopped { sink: "email".into() }),
        ];
        for (ms, event) in &mut timeline {
            if let EventKind::NotificationReceived { received_us, .. } = event {
                *received_us = *ms * 1_000;
            }
        }
        timeline
    }

    #[test]
    fn the_alert_chain_is_timed_hop_by_hop() {
        let judged =
            verdict(ExpectationKind::Alert(Box::new(chain("customers"))), &timeline("customers"));
        assert_eq!(judged.status, CheckStatus::Passed, "{}", judged.summary);
        let hops: Vec<(String, Option<u64>, String)> = judged
            .channels
            .iter()
            .map(|h| {
                (
                    h.channel.clone(),
                    h.arrival_us.map(|a| (a - h.reference_us) / 1_000),
                    h.outcome.clone(),
                )
            })
            .collect();
        assert_eq!(
            hops,
            [
                ("`BillingDown` firing".to_owned(), Some(2_000), "on-time".to_owned()),
                ("routed to `customers`".to_owned(), Some(400), "on-time".to_owned()),
                ("email".to_owned(), Some(1_600), "on-time".to_owned()),
                ("sms".to_owned(), Some(2_600), "on-time".to_owned()),
                ("`BillingDown` resolved".to_owned(), Some(500), "on-time".to_owned()),
            ]
        );
        assert!(
            judged.summary.starts_with(
                "`BillingDown` firing 2s after `kill` started; routed to `customers` 400ms after"
            ),
            "{}",
            judged.summary
        );
    }

    #[test]
    fn a_broken_route_fails_naming_the_hop() {
        let judged =
            verdict(ExpectationKind::Alert(Box::new(chain("customers"))), &timeline("blackhole"));
        assert_eq!(judged.status, CheckStatus::Failed);
        assert!(
            judged
                .summary
                .starts_with("Alertmanager routed `BillingDown` to `blackhole`, not `customers`"),
            "{}",
            judged.summary
        );
        assert_eq!(judged.channels[1].outcome, "misrouted");
        assert_eq!(
            judged.channels.len(),
            3,
            "no delivery hop without a routing: {:?}",
            judged.channels
        );
    }

    #[test]
    fn late_missing_already_firing_and_unsettled_hops() {
        let mut late = chain("customers");
        late.fires.within = Duration::from_secs(1);
        late.delivered.as_mut().unwrap().channels.push(Channel::Fax);
        let judged = verdict(ExpectationKind::Alert(Box::new(late)), &timeline("customers"));
        assert_eq!(judged.status, CheckStatus::Failed);
        assert!(
            judged.summary.contains("`BillingDown` firing: 2s after `kill` started (limit 1s)"),
            "{}",
            judged.summary
        );
        assert!(
            judged.summary.contains("fax: never, 10s after routed to `customers`"),
            "{}",
            judged.summary
        );

        let mut early = chain("customers");
        early.fires.on = on("start");
        early.resolves = None;
        let judged = verdict(ExpectationKind::Alert(Box::new(early)), &timeline("customers"));
        assert_eq!(judged.status, CheckStatus::Failed);
        assert!(judged.summary.contains("already firing"), "{}", judged.summary);

        let mut long = chain("customers");
        long.resolves.as_mut().unwrap().within = Duration::from_secs(60);
        let mut cut = timeline("customers");
        // Still firing at the last point: the deadline (90 s) is after the query's end.
        if let EventKind::PrometheusQuery { data, .. } = &mut cut[10].1 {
            let values = data["result"][0]["values"].as_array_mut().unwrap();
            *values = (6..=62).map(|k| json!([EPOCH + 9.0 + k as f64 * 0.5, "1"])).collect();
        }
        let judged = verdict(ExpectationKind::Alert(Box::new(long)), &cut);
        assert_eq!(judged.status, CheckStatus::NotEvaluated, "{}", judged.summary);
        assert_eq!(judged.channels.last().unwrap().outcome, "not-settled");
    }

    #[test]
    fn deadlines_extend_the_observation_and_watches_are_per_alertmanager() {
        let check = ExpectationKind::Alert(Box::new(chain("customers")));
        let events = journal(&timeline("customers")[..8]);
        // Resolves: start (30 s) + 5 s; fires: kill (10 s) + 5 + 2 + 10 s.
        assert_eq!(observe_until_us(&scenario(vec![check.clone()]), &events), Some(35_000_000));
        let watches = alertmanager_watches(&scenario(vec![check.clone(), check]));
        assert_eq!(watches.len(), 1);
        assert_eq!(watches[0].1, ["BillingDown"]);
        assert_eq!(
            alerts_selector(&chain("x")),
            "ALERTS{alertname=\"BillingDown\",alertstate=\"firing\",service=\"billing\"}"
        );
    }
}
