//! `expect` entries that ask the team's monitoring: `prometheus:` and `alert:`. Checks the source
//! (a known service and a declared port, or a loopback URL), the query, the moment or step, the
//! limits, the triggers and deadlines, and the channels of `delivered`.

use indexmap::IndexMap;

use super::expect::Refs;
use super::walk::Walk;
use crate::scenario::keys;
use crate::scenario::model::{
    AlertCheck, AlertDeadline, AlertDelivered, AlertRouted, ExpectationKind, MetricsSource,
    PrometheusCheck, QueryWhen,
};
use crate::scenario::read::Fields;
use crate::scenario::report::Span;
use crate::scenario::tree::{Node, ScalarKind};

impl Walk<'_> {
    pub(super) fn prometheus(
        &mut self,
        node: &Node,
        key: Span,
        refs: &Refs<'_>,
    ) -> Option<ExpectationKind> {
        let fields = self.r.fields(
            node,
            key,
            "`prometheus`",
            "a mapping with `service` (or `url`), `query` and `at` or `throughout`",
            &keys::PROMETHEUS,
        )?;
        let source = self.metrics_source(&fields, key, refs, "prometheus");
        let query = self.r.require(&fields, "query").and_then(|n| {
            let query = self.r.non_empty_text(n, "a PromQL expression")?;
            if query.trim().is_empty() {
                self.r
                    .error(n.span, "the query is blank", "blank")
                    .help("write a PromQL expression");
                return None;
            }
            Some(query)
        });
        let when = match (fields.entry("at"), fields.entry("throughout")) {
            (Some(_), Some(second)) => {
                self.r
                    .error(second.key.span, "`at` and `throughout` together", "second moment")
                    .help("a `prometheus` check reads its query at one moment or over one step");
                None
            }
            (None, None) => {
                self.r.error(key, "`prometheus` needs `at` or `throughout`", "no moment").help(
                    "add `at: { step: STEP }` (an instant query then) or `throughout: STEP` \
                         (every sample while the step ran)",
                );
                None
            }
            (Some(at), None) => {
                if let Some(entry) = fields.entry("resolution") {
                    self.r
                        .error(entry.key.span, "`resolution` without `throughout`", "not a range")
                        .help("`at` is one instant query; remove `resolution`");
                }
                let trigger = self.trigger(&at.value, refs);
                let delay = match fields.get("delay") {
                    None => Some(std::time::Duration::ZERO),
                    Some(n) => self.r.duration(n),
                };
                Some(QueryWhen::At { at: trigger?, delay: delay? })
            }
            (None, Some(throughout)) => {
                if let Some(entry) = fields.entry("delay") {
                    self.r
                        .error(entry.key.span, "`delay` without `at`", "no moment")
                        .help("`throughout` covers the whole step; remove `delay`");
                }
                let step = self.step_ref(&throughout.value, refs.steps);
                let resolution = match fields.get("resolution") {
                    None => Some(None),
                    Some(n) => self.r.duration(n).and_then(|d| {
                        if d < std::time::Duration::from_millis(100) {
                            self.r
                                .error(n.span, "`resolution` under 100ms", "too fine")
                                .help("use at least 100ms (Prometheus evaluates at its intervals)");
                            return None;
                        }
                        Some(Some(d))
                    }),
                };
                Some(QueryWhen::Throughout { step: step?, resolution: resolution? })
            }
        };
        let min = self.limit(&fields, "min");
        let max = self.limit(&fields, "max");
        let (min, max) = (min?, max?);
        if min.is_none() && max.is_none() {
            self.r.error(key, "`prometheus` has no limit", "no `min` or `max`").help(
                "add `max: 0` (every value at most 0), `min: 1`, or both; a query with no \
                 limit checks nothing",
            );
            return None;
        }
        if let (Some(low), Some(high)) = (min, max)
            && low > high
        {
            let span = fields.entry("min").map_or(key, |e| e.key.span);
            self.r
                .error(span, format!("`min` {low} is above `max` {high}"), "no value fits")
                .help("swap them");
            return None;
        }
        Some(ExpectationKind::Prometheus(Box::new(PrometheusCheck {
            source: source?,
            query: query?,
            when: when?,
            min,
            max,
        })))
    }

    pub(super) fn alert(
        &mut self,
        node: &Node,
        key: Span,
        refs: &Refs<'_>,
    ) -> Option<ExpectationKind> {
        let fields = self.r.fields(
            node,
            key,
            "`alert`",
            "a mapping with `alertname`, `prometheus` and `fires`",
            &keys::ALERT,
        )?;
        let alertname = self.r.require(&fields, "alertname").and_then(|n| {
            let name = self.r.non_empty_text(n, "an alert name")?;
            if !valid_label_value(&name) {
                self.r
                    .error(n.span, format!("`{name}` is not an alert name"), "not an alertname")
                    .help("an alerting rule's name: letters, digits and `_`, not starting with a digit");
                return None;
            }
            Some(name)
        });
        let prometheus = self.r.require(&fields, "prometheus").and_then(|n| {
            let source = self.r.fields(
                n,
                self.r.head(n),
                "`prometheus`",
                "`{ service: prometheus }` or `{ url: http://127.0.0.1:9090 }`",
                &keys::METRICS_SOURCE,
            )?;
            self.metrics_source(&source, n.span, refs, "prometheus")
        });
        let fires = self.r.require(&fields, "fires").and_then(|n| self.alert_deadline(n, refs));
        let routed = match fields.get("routed") {
            None => Some(None),
            Some(n) => self.alert_routed(n, refs).map(Some),
        };
        let delivered = match fields.get("delivered") {
            None => Some(None),
            Some(n) => (|| {
                let section = self.r.fields(
                    n,
                    self.r.head(n),
                    "`delivered`",
                    "a mapping with `channels` and `within`",
                    &keys::ALERT_DELIVERED,
                )?;
                let channels =
                    self.r.require(&section, "channels").and_then(|c| self.channels(c, refs));
                let within = self.r.require(&section, "within").and_then(|w| self.r.duration(w));
                Some(Some(AlertDelivered { channels: channels?, within: within? }))
            })(),
        };
        let resolves = match fields.get("resolves") {
            None => Some(None),
            Some(n) => self.alert_deadline(n, refs).map(Some),
        };
        let labels = match fields.get("labels") {
            None => Some(IndexMap::new()),
            Some(n) => self.r.string_map(n, "a mapping of label names to values").and_then(|map| {
                let mut labels = IndexMap::with_capacity(map.len());
                let mut ok = true;
                for (name, (value, value_node)) in map {
                    if !valid_label_value(&name) {
                        self.r
                            .error(
                                value_node.span,
                                format!("`{name}` is not a label name"),
                                "bad name",
                            )
                            .help("label names are letters, digits and `_`");
                        ok = false;
                    }
                    labels.insert(name, value);
                }
                ok.then_some(labels)
            }),
        };
        Some(ExpectationKind::Alert(Box::new(AlertCheck {
            alertname: alertname?,
            labels: labels?,
            prometheus: prometheus?,
            fires: fires?,
            routed: routed?,
            delivered: delivered?,
            resolves: resolves?,
        })))
    }

    fn alert_deadline(&mut self, node: &Node, refs: &Refs<'_>) -> Option<AlertDeadline> {
        let fields = self.r.fields(
            node,
            self.r.head(node),
            "a deadline",
            "a mapping with `on` and `within`, such as `{ on: { step: kill billing }, within: 30s }`",
            &keys::ALERT_DEADLINE,
        )?;
        let on = self.r.require(&fields, "on").and_then(|n| self.trigger(n, refs));
        let within = self.r.require(&fields, "within").and_then(|n| self.r.duration(n));
        Some(AlertDeadline { on: on?, within: within? })
    }

    fn alert_routed(&mut self, node: &Node, refs: &Refs<'_>) -> Option<AlertRouted> {
        let fields = self.r.fields(
            node,
            self.r.head(node),
            "`routed`",
            "a mapping with `alertmanager`, `receiver` and `within`",
            &keys::ALERT_ROUTED,
        )?;
        let alertmanager = self.r.require(&fields, "alertmanager").and_then(|n| {
            let source = self.r.fields(
                n,
                self.r.head(n),
                "`alertmanager`",
                "`{ service: alertmanager }` or `{ url: http://127.0.0.1:9093 }`",
                &keys::METRICS_SOURCE,
            )?;
            self.metrics_source(&source, n.span, refs, "alertmanager")
        });
        let receiver = self
            .r
            .require(&fields, "receiver")
            .and_then(|n| self.r.non_empty_text(n, "a receiver name"));
        let within = self.r.require(&fields, "within").and_then(|n| self.r.duration(n));
        Some(AlertRouted { alertmanager: alertmanager?, receiver: receiver?, within: within? })
    }

    /// `service` (+ `port`) or `url` of `fields`.
    fn metrics_source(
        &mut self,
        fields: &Fields<'_>,
        at: Span,
        refs: &Refs<'_>,
        what: &str,
    ) -> Option<MetricsSource> {
        match (fields.get("service"), fields.get("url")) {
            (Some(_), Some(url)) => {
                self.r.error(url.span, "`service` and `url` together", "second source").help(
                    format!("name the stack's {what} with `service`, or one outside it with `url`"),
                );
                None
            }
            (None, None) => {
                self.r.error(at, format!("no {what} to ask"), "no `service` or `url`").help(format!(
                    "add `service: {what}` (a service of the stack) or `url: http://127.0.0.1:PORT`"
                ));
                None
            }
            (None, Some(url)) => {
                if let Some(port) = fields.entry("port") {
                    self.r
                        .error(port.key.span, "`port` with `url`", "the URL has the port")
                        .help("remove `port`");
                    return None;
                }
                let text = self.r.non_empty_text(url, "a URL such as http://127.0.0.1:9090")?;
                match loopback_url(&text) {
                    Ok(url) => Some(MetricsSource::Url(url)),
                    Err(why) => {
                        self.r
                            .error(url.span, format!("`{text}` is not a loopback URL"), why)
                            .help(
                                "firedrill only sends traffic to this machine: use \
                             http://127.0.0.1:PORT (or `service:` for one in the stack)",
                            );
                        None
                    }
                }
            }
            (Some(service_node), None) => {
                let service = self.r.text(service_node, "a service name")?;
                let info = self.known_service(refs.services, &service, service_node.span)?;
                match fields.get("port") {
                    Some(port_node) => {
                        let port = self.r.port(port_node)?;
                        self.declared_port(&service, info, port, port_node.span);
                        Some(MetricsSource::Service { service, port })
                    }
                    None => match info.ports.as_ref().map(|p| p.first().copied()) {
                        Some(Some(port)) => Some(MetricsSource::Service { service, port }),
                        Some(None) => {
                            self.r
                                .error(
                                    service_node.span,
                                    format!("`{service}` declares no ports"),
                                    "no port to ask",
                                )
                                .help(format!("add `ports: [PORT]` to `{service}`"));
                            None
                        }
                        None => None,
                    },
                }
            }
        }
    }

    fn limit(&mut self, fields: &Fields<'_>, name: &str) -> Option<Option<f64>> {
        let Some(node) = fields.get(name) else { return Some(None) };
        let value = node
            .scalar()
            .filter(|s| matches!(s.kind(), ScalarKind::Int | ScalarKind::Float))
            .and_then(|s| s.text.parse::<f64>().ok())
            .filter(|v| v.is_finite());
        if value.is_none() {
            self.r.wrong_type(node, "a number such as `0`, `1` or `0.05`");
        }
        value.map(Some)
    }
}

/// An alert or label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn valid_label_value(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `http://127.0.0.1:PORT[/prefix]` (or `localhost`, `[::1]`), without a trailing `/`.
fn loopback_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("http://")
        .ok_or_else(|| "plain `http://` only (no TLS on loopback)".to_owned())?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => (host, port),
        _ => return Err("no port".into()),
    };
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        return Err(format!("`{host}` is not this machine"));
    }
    if port.parse::<u16>().ok().filter(|p| *p > 0).is_none() {
        return Err(format!("`{port}` is not a port"));
    }
    if path.contains(['?', '#']) {
        return Err("no query or fragment".into());
    }
    Ok(format!("http://{authority}{}", path.trim_end_matches('/')))
}

/// `prometheus max 0 of "up{job=...}"`-style names.
pub(super) fn prometheus_name(check: &PrometheusCheck) -> String {
    let when = match &check.when {
        QueryWhen::At { at, .. } => format!("at {}", at.describe()),
        QueryWhen::Throughout { step, .. } => format!("throughout \"{step}\""),
    };
    format!("prometheus `{}` {when}", check.query.trim())
}

/// `alert BillingDown on "kill billing"`.
pub(super) fn alert_name(check: &AlertCheck) -> String {
    format!("alert {} on {}", check.alertname, check.fires.on.describe())
}

#[cfg(test)]
mod tests {
    use super::loopback_url;

    #[test]
    fn only_loopback_urls() {
        assert_eq!(loopback_url("http://127.0.0.1:9090/").unwrap(), "http://127.0.0.1:9090");
        assert_eq!(
            loopback_url("http://localhost:9090/prom").unwrap(),
            "http://localhost:9090/prom"
        );
        assert_eq!(loopback_url("http://[::1]:9090").unwrap(), "http://[::1]:9090");
        assert!(loopback_url("https://127.0.0.1:9090").is_err());
        assert!(loopback_url("http://10.0.0.1:9090").unwrap_err().contains("not this machine"));
        assert!(loopback_url("http://127.0.0.1").unwrap_err().contains("no port"));
        assert!(loopback_url("http://127.0.0.1:0").is_err());
        assert!(loopback_url("http://127.0.0.1:9090/?x=1").is_err());
    }
}
