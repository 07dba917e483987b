//! The model of the checks that ask a team's own monitoring: `prometheus:` (a PromQL query's
//! value at a moment, or throughout a step) and `alert:` (an alerting rule fired, was routed by
//! Alertmanager to a receiver, reached the customers' channels and resolved, each hop timed).
//!
//! Validation lives in `validate/metrics.rs`; the engine runs the queries (`engine/metrics.rs`)
//! and records their raw answers; `checks/metrics.rs` judges those answers.

use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::model::{Channel, Trigger, duration_serde, option_duration_serde};

/// Where a Prometheus or an Alertmanager answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum MetricsSource {
    /// `{ service, port }`: a service of the stack, through its published port on 127.0.0.1
    /// (as probes reach services).
    Service {
        /// The service.
        service: String,
        /// Its container port (declared in `ports`; default its first).
        port: u16,
    },
    /// `{ url }`: an instance outside the stack, on this machine (`http://127.0.0.1:PORT`,
    /// `localhost` or `[::1]`, optionally with a path prefix).
    Url(String),
}

impl MetricsSource {
    /// How the source reads in messages: `prometheus:9090` or the URL.
    pub fn describe(&self) -> String {
        match self {
            MetricsSource::Service { service, port } => format!("{service}:{port}"),
            MetricsSource::Url(url) => url.clone(),
        }
    }
}

/// `prometheus: { service | url, query, at | throughout, min, max }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PrometheusCheck {
    /// Which Prometheus.
    pub source: MetricsSource,
    /// The PromQL expression.
    pub query: String,
    /// When its value is judged.
    pub when: QueryWhen,
    /// Every value must be at least this.
    pub min: Option<f64>,
    /// Every value must be at most this.
    pub max: Option<f64>,
}

/// When a `prometheus:` check reads its query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum QueryWhen {
    /// `at: TRIGGER` (+ `delay`): an instant query at that moment.
    At {
        /// The moment (a trigger, as `notify`'s `on`).
        at: Trigger,
        /// Added to the moment.
        #[serde(with = "duration_serde")]
        delay: Duration,
    },
    /// `throughout: STEP`: a range query over the step's span; every sample counts.
    Throughout {
        /// The step.
        step: String,
        /// `resolution`: the range query's step (default: 1s, coarser for spans over 2.7 h).
        #[serde(with = "option_duration_serde")]
        resolution: Option<Duration>,
    },
}

/// `alert: { alertname, prometheus, fires, routed, delivered, resolves, labels }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AlertCheck {
    /// The alerting rule's name (`alertname` of `ALERTS`).
    pub alertname: String,
    /// Extra label matchers the alert must carry (`{ service: billing }`).
    pub labels: IndexMap<String, String>,
    /// The Prometheus that evaluates the rule.
    pub prometheus: MetricsSource,
    /// `fires`: firing within `within` of the trigger.
    pub fires: AlertDeadline,
    /// `routed`: Alertmanager holds the alert for `receiver` within `within` of the firing.
    pub routed: Option<AlertRouted>,
    /// `delivered`: each channel's first alert message within `within` of the routing (of the
    /// firing without `routed`).
    pub delivered: Option<AlertDelivered>,
    /// `resolves`: no longer firing within `within` of the trigger.
    pub resolves: Option<AlertDeadline>,
}

/// A trigger and a deadline from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AlertDeadline {
    /// What starts the clock.
    pub on: Trigger,
    /// The deadline.
    #[serde(with = "duration_serde")]
    pub within: Duration,
}

/// `routed: { alertmanager, receiver, within }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AlertRouted {
    /// Which Alertmanager.
    pub alertmanager: MetricsSource,
    /// The receiver its route must pick.
    pub receiver: String,
    /// The deadline from the firing.
    #[serde(with = "duration_serde")]
    pub within: Duration,
}

/// `delivered: { channels, within }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AlertDelivered {
    /// Every channel that must carry the alert.
    pub channels: Vec<Channel>,
    /// The deadline from the routing (or the firing).
    #[serde(with = "duration_serde")]
    pub within: Duration,
}

#[cfg(test)]
mod tests {
    use crate::scenario::model::{Expectation, ExpectationKind};

    /// `firedrill report DIR` re-judges a run from the `expect` its journal recorded: the
    /// checks must read back as they were written.
    #[test]
    fn the_checks_round_trip_through_the_journal_and_read_as_written() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/scenarios/valid/every-metrics-key.yaml");
        let scenario = crate::scenario::load(&path).expect("the example is valid");
        let recorded = serde_json::to_value(&scenario.expect).unwrap();
        let read: Vec<Expectation> = serde_json::from_value(recorded).unwrap();
        assert_eq!(read, scenario.expect);
        let names: Vec<&str> = scenario.expect.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "up is 0 after the kill",
                "prometheus `sum(rate(billing_http_requests_total{code=\"5xx\"}[30s])) or \
                 vector(0)` throughout \"billing down\"",
                "alert BillingDown on \"kill billing\"",
            ]
        );
        let ExpectationKind::Alert(alert) = &scenario.expect[2].kind else { panic!() };
        assert_eq!(alert.prometheus.describe(), "prometheus:9090", "the first declared port");
        assert_eq!(alert.routed.as_ref().unwrap().receiver, "customers");
    }
}
