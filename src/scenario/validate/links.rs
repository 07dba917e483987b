//! Link fault steps (`latency`, `bandwidth`, `timeout`, `reset-peer`, `slow-close`, `slicer`,
//! `limit-data`, `down`, `http-error`, `http-delay`, `http-abort`, `http-truncate`, `cut`): the
//! link they name, their sizes, durations and shares, which keys each kind takes, and the request
//! route (`method`, `path`, `header`) of the http ones.

use crate::scenario::keys;
use std::time::Duration;

use indexmap::IndexMap;

use super::faults::parse_bytes;
use super::walk::Walk;
use crate::scenario::model::{HttpRoute, LinkDirection, LinkFault, LinkFaultKind};
use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::{Node, ScalarKind};

/// What steps need to know about the declared links.
#[derive(Debug, Default)]
pub(super) struct LinkTable {
    /// Link name → whether it is `http: true` (`None` when the link itself had mistakes).
    pub(super) names: IndexMap<String, Option<bool>>,
    /// Some link could not even be named, so "unknown link" may be a consequence.
    pub(super) incomplete: bool,
}

impl Walk<'_> {
    /// A link fault step; also returns the link name as written, to name the step even when the
    /// fault has other mistakes.
    pub(super) fn link_fault(
        &mut self,
        kind: &str,
        node: &Node,
        key: Span,
    ) -> (Option<String>, Option<LinkFault>) {
        let keys = keys::STEP.section_of(kind);
        let is_http = keys.has("method");
        let example = example(kind);
        let context = format!("`{kind}`");
        let Some(fields) = self.r.fields(node, key, context, "a mapping with `link`", keys) else {
            self.r.last().help(format!("write {example}"));
            return (None, None);
        };
        let link_node = self.r.require(&fields, "link");
        let link = link_node.and_then(|n| self.r.text(n, "a link name"));
        let http = match (&link, link_node) {
            (Some(name), Some(node)) => self.known_link(name, node.span),
            _ => None,
        };
        if is_http && let (Some(name), Some(Some(false)), Some(node)) = (&link, http, link_node) {
            self.r
                .error(node.span, format!("link `{name}` does not carry HTTP"), "not an http link")
                .help(format!(
                    "`{kind}` reads HTTP requests; declare the link as `{{ from, to, port, http: true }}`"
                ));
        }
        let link_ok = match http {
            Some(Some(http)) => !is_http || http,
            // A link with mistakes of its own: those are reported there.
            Some(None) => false,
            None => false,
        };
        let duration = match fields.get("for") {
            Some(node) => self.r.duration(node),
            None => {
                self.r
                    .error(fields.at, format!("missing `for` in `{kind}`"), "needs `for`")
                    .help(format!("a link fault lasts a while and is then removed: {example}"));
                None
            }
        };
        let toxicity = fields.get("toxicity").map_or(Some(1.0), |n| self.share(n, "toxicity"));
        let probability =
            fields.get("probability").map_or(Some(1.0), |n| self.share(n, "probability"));
        let route = if is_http { self.http_route(&fields) } else { Some(HttpRoute::default()) };
        let optional = |walk: &mut Self, name: &str| {
            fields.get(name).map_or(Some(Duration::ZERO), |n| walk.duration_or_zero(n))
        };
        let kind_read = match kind {
            "latency" => {
                let latency = self.r.require(&fields, "latency").and_then(|n| self.r.duration(n));
                let jitter = optional(self, "jitter");
                latency
                    .zip(jitter)
                    .map(|(latency, jitter)| LinkFaultKind::Latency { latency, jitter })
            }
            "bandwidth" => self
                .r
                .require(&fields, "rate")
                .and_then(|n| self.byte_rate(n))
                .map(|bytes_per_sec| LinkFaultKind::Bandwidth { bytes_per_sec }),
            "timeout" => self
                .r
                .require(&fields, "after")
                .and_then(|n| self.r.duration(n))
                .map(|after| LinkFaultKind::Timeout { after }),
            "reset-peer" => optional(self, "after").map(|after| LinkFaultKind::ResetPeer { after }),
            "slow-close" => self
                .r
                .require(&fields, "delay")
                .and_then(|n| self.r.duration(n))
                .map(|delay| LinkFaultKind::SlowClose { delay }),
            "slicer" => {
                let average = self.r.require(&fields, "average").and_then(|n| self.size(n, 1));
                let variation = fields.get("variation").map_or(Some(0), |n| self.size(n, 0));
                let delay = optional(self, "delay");
                match (average, variation, delay) {
                    (Some(average), Some(variation), Some(_)) if variation >= average => {
                        let at = fields.get("variation").map_or(fields.at, |n| n.span);
                        self.r
                            .error(at, "`variation` must be smaller than `average`", "too large")
                            .help("pieces are `average` ± `variation` bytes and never empty");
                        None
                    }
                    (Some(average), Some(variation), Some(delay)) => {
                        Some(LinkFaultKind::Slicer { average, variation, delay })
                    }
                    _ => None,
                }
            }
            "limit-data" => self
                .r
                .require(&fields, "bytes")
                .and_then(|n| self.size(n, 0))
                .map(|bytes| LinkFaultKind::LimitData { bytes }),
            "down" => Some(LinkFaultKind::Down),
            "http-error" => self
                .r
                .require(&fields, "status")
                .and_then(|n| self.r.status(n))
                .zip(probability)
                .zip(route.clone())
                .map(|((status, probability), route)| LinkFaultKind::HttpError {
                    status,
                    probability,
                    route,
                }),
            "http-delay" => self
                .r
                .require(&fields, "delay")
                .and_then(|n| self.r.duration(n))
                .zip(probability)
                .zip(route.clone())
                .map(|((delay, probability), route)| LinkFaultKind::HttpDelay {
                    delay,
                    probability,
                    route,
                }),
            "http-abort" => fields
                .get("after")
                .map_or(Some(0), |n| self.size(n, 0))
                .zip(probability)
                .zip(route.clone())
                .map(|((after, probability), route)| LinkFaultKind::HttpAbort {
                    after,
                    probability,
                    route,
                }),
            "http-truncate" => self
                .r
                .require(&fields, "bytes")
                .and_then(|n| self.size(n, 0))
                .zip(probability)
                .zip(route.clone())
                .map(|((bytes, probability), route)| LinkFaultKind::HttpTruncate {
                    bytes,
                    probability,
                    route,
                }),
            _ => Some(LinkFaultKind::Cut),
        };
        let direction = match fields.get("direction") {
            None => kind_read.as_ref().map(LinkFaultKind::default_direction),
            Some(node) => self.direction(node),
        };
        let fault = (|| {
            let link = link.clone().filter(|_| link_ok)?;
            Some(LinkFault {
                link,
                kind: kind_read?,
                direction: direction?,
                toxicity: toxicity?,
                duration: duration?,
            })
        })();
        (link, fault)
    }

    /// `method`, `path` and `header` of an http link fault (each optional).
    fn http_route(&mut self, fields: &crate::scenario::read::Fields<'_>) -> Option<HttpRoute> {
        let methods = fields.get("method").map_or(Some(Vec::new()), |n| self.methods(n));
        let path = match fields.get("path") {
            Some(node) => self.path_pattern(node).map(Some),
            None => Some(None),
        };
        let headers = fields.get("header").map_or(Some(Vec::new()), |n| self.header_matches(n));
        Some(HttpRoute { methods: methods?, path: path?, headers: headers? })
    }

    /// `method: POST` or `method: [POST, PUT]`.
    fn methods(&mut self, node: &Node) -> Option<Vec<String>> {
        let items = match &node.value {
            crate::scenario::tree::Value::Seq(items) => {
                if items.is_empty() {
                    self.r
                        .error(node.span, "`method` is an empty list", "empty")
                        .help("name a method (`method: POST`) or leave `method` out for any");
                    return None;
                }
                items.iter().collect()
            }
            _ => vec![node],
        };
        let mut methods = Some(Vec::with_capacity(items.len()));
        for item in items {
            let method = self.r.text(item, "an HTTP method such as `POST`").and_then(|text| {
                let token = !text.is_empty()
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if token && text.bytes().all(|b| !b.is_ascii_lowercase()) {
                    return Some(text);
                }
                let message = format!("invalid HTTP method `{text}`");
                let problem = self.r.error(item.span, message, "not a method as sent");
                if token {
                    problem.help(format!(
                        "methods are case-sensitive and sent in capitals: write `{}`",
                        text.to_ascii_uppercase()
                    ));
                } else {
                    problem.help("write one method such as `POST`, or a list: `[POST, PUT]`");
                }
                None
            });
            match (&mut methods, method) {
                (Some(methods), Some(method)) => methods.push(method),
                _ => methods = None,
            }
        }
        methods
    }

    /// `path: /invoices`, `/invoices/*` or `/api/**`.
    fn path_pattern(&mut self, node: &Node) -> Option<String> {
        let help = "write a path from `/`: exact (`/invoices`), `*` within one segment \
                    (`/invoices/*`), `**` across segments (`/api/**`)";
        let text = self.r.text(node, "a path such as `/invoices`")?;
        let why = if !text.starts_with('/') {
            Some("does not start with `/`")
        } else if text.contains(['?', '#']) {
            Some("the query string is not matched: leave it out")
        } else if text.contains(|c: char| c.is_whitespace() || c.is_control()) {
            Some("contains whitespace")
        } else if text.contains("***") {
            Some("`***` means nothing: use `*` or `**`")
        } else if text.matches('*').count() > 8 {
            Some("more than 8 `*`")
        } else {
            None
        };
        match why {
            None => Some(text),
            Some(why) => {
                let message = format!("invalid path pattern `{text}`");
                self.r.error(node.span, message, why).help(help);
                None
            }
        }
    }

    /// `header: { x-tenant: acme, authorization: "*" }`.
    fn header_matches(&mut self, node: &Node) -> Option<Vec<(String, String)>> {
        let expected = "a mapping of header names to values (`header: { x-tenant: acme }`)";
        let map = self.r.string_map(node, expected)?;
        if map.is_empty() {
            self.r
                .error(node.span, "`header` is empty", "empty")
                .help("name a header (`header: { x-tenant: acme }`) or leave `header` out");
            return None;
        }
        let mut headers = Some(Vec::with_capacity(map.len()));
        for (name, (value, value_node)) in map {
            let token =
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
            let ok = if !token {
                let message = format!("invalid header name `{name}`");
                let key_span = match &node.value {
                    crate::scenario::tree::Value::Map(entries) => entries
                        .iter()
                        .find(|entry| entry.key.scalar().is_some_and(|k| k.text == name))
                        .map_or(value_node.span, |entry| self.r.head(&entry.key)),
                    _ => value_node.span,
                };
                self.r
                    .error(key_span, message, "not an HTTP header name")
                    .help("header names are letters, digits and `-` (`x-tenant`)");
                false
            } else if value.contains(['\r', '\n']) {
                let message = format!("invalid value for header `{name}`");
                self.r
                    .error(value_node.span, message, "contains a line break")
                    .help("match one line's value; `*` matches any characters");
                false
            } else {
                true
            };
            match (&mut headers, ok) {
                (Some(headers), true) => headers.push((name.to_ascii_lowercase(), value)),
                _ => headers = None,
            }
        }
        headers
    }

    /// `Some(http)` for a declared link (`Some(None)` when it had mistakes of its own); `None`
    /// and a problem for an unknown one.
    fn known_link(&mut self, name: &str, span: Span) -> Option<Option<bool>> {
        if let Some(http) = self.links.names.get(name) {
            return Some(*http);
        }
        if self.links.incomplete {
            return Some(None);
        }
        let hint = match suggest::closest(name, self.links.names.keys().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None if self.links.names.is_empty() => {
                "no links are declared: add `stack.links`, e.g. `db: billing -> db:5432`".to_owned()
            }
            None => format!(
                "declared links: {}",
                suggest::list_all(self.links.names.keys().map(String::as_str))
            ),
        };
        self.r.error(span, format!("unknown link `{name}`"), "not in `stack.links`").help(hint);
        None
    }

    fn direction(&mut self, node: &Node) -> Option<LinkDirection> {
        let help = "use `upstream` (requests), `downstream` (answers) or `both`";
        match node.scalar().map(|s| s.text.as_str()) {
            Some("upstream") => Some(LinkDirection::Upstream),
            Some("downstream") => Some(LinkDirection::Downstream),
            Some("both") => Some(LinkDirection::Both),
            Some(other) if node.scalar().is_some_and(|s| s.kind() != ScalarKind::Null) => {
                let message = format!("unknown direction `{other}`");
                self.r.error(node.span, message, "unknown direction").help(help);
                None
            }
            _ => {
                self.r.wrong_type(node, "`upstream`, `downstream` or `both`").help(help);
                None
            }
        }
    }

    /// A share from 0 to 1: `0.25` or `25%`.
    fn share(&mut self, node: &Node, what: &str) -> Option<f64> {
        let help =
            format!("write `{what}` as a fraction from 0 to 1 (`0.25`) or a percentage (`25%`)");
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.r.wrong_type(node, "a share such as `0.5` or `50%`").help(help);
            return None;
        };
        let parsed = match scalar.text.strip_suffix('%') {
            Some(_) => crate::scenario::quantity::parse_percent(&scalar.text).map(|p| p / 100.0),
            None => match scalar.text.trim().parse::<f64>() {
                Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
                Ok(_) => Err("a fraction is at most 1 (write `50%` for a percentage)".to_owned()),
                Err(_) => Err("expected a number".to_owned()),
            },
        };
        match parsed {
            Ok(value) => Some(value),
            Err(why) => {
                let message = format!("invalid {what} `{}`", scalar.text);
                self.r.error(node.span, message, why).help(help);
                None
            }
        }
    }

    /// A size in bytes (`1500`, `4KiB`), at least `min`.
    fn size(&mut self, node: &Node, min: u64) -> Option<u64> {
        let help = "use a number of bytes or a size such as 4KiB or 1MiB";
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.r.wrong_type(node, "a size such as `4KiB`").help(help);
            return None;
        };
        match parse_bytes(&scalar.text) {
            Ok(bytes) if bytes >= min => Some(bytes),
            Ok(_) => {
                self.r
                    .error(node.span, format!("`{}` is too small", scalar.text), "too small")
                    .help(format!("use at least {min} bytes"));
                None
            }
            Err(why) => {
                let message = format!("invalid size `{}`", scalar.text);
                self.r.error(node.span, message, why).help(help);
                None
            }
        }
    }

    /// A byte rate: `64KiB/s`, `1MB/s`, or bytes per second as a number.
    pub(super) fn byte_rate(&mut self, node: &Node) -> Option<u64> {
        let help = "use a rate such as 64KiB/s or 1MiB/s";
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.r.wrong_type(node, "a rate such as `64KiB/s`").help(help);
            return None;
        };
        let text = scalar.text.trim();
        let size = text.strip_suffix("/s").unwrap_or(text);
        match parse_bytes(size) {
            Ok(0) => {
                self.r
                    .error(node.span, "a bandwidth of 0 bytes per second", "zero")
                    .help("to stop the link, use `cut` or `down`");
                None
            }
            Ok(bytes) => Some(bytes),
            Err(why) => {
                let message = format!("invalid rate `{}`", scalar.text);
                self.r.error(node.span, message, why).help(help);
                None
            }
        }
    }

    /// A duration that may be zero (`0s`, `0`).
    fn duration_or_zero(&mut self, node: &Node) -> Option<Duration> {
        let zero = node.scalar().is_some_and(|s| {
            let digits = s.text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            !digits.is_empty() && digits.bytes().all(|b| b == b'0')
        });
        if zero { Some(Duration::ZERO) } else { self.r.duration(node) }
    }
}

fn example(kind: &str) -> &'static str {
    match kind {
        "latency" => "`latency: { link: db, latency: 300ms, jitter: 20ms, for: 10s }`",
        "bandwidth" => "`bandwidth: { link: db, rate: 64KiB/s, for: 10s }`",
        "timeout" => "`timeout: { link: db, after: 5s, for: 10s }`",
        "reset-peer" => "`reset-peer: { link: db, after: 1s, for: 10s }`",
        "slow-close" => "`slow-close: { link: db, delay: 2s, for: 10s }`",
        "slicer" => "`slicer: { link: db, average: 64, variation: 32, delay: 10ms, for: 10s }`",
        "limit-data" => "`limit-data: { link: db, bytes: 4KiB, for: 10s }`",
        "down" => "`down: { link: db, for: 5s }`",
        "http-error" => "`http-error: { link: api, status: 503, probability: 0.5, for: 10s }`",
        "http-delay" => "`http-delay: { link: api, delay: 2s, probability: 0.5, for: 10s }`",
        "http-abort" => "`http-abort: { link: api, method: POST, path: /invoices, for: 10s }`",
        "http-truncate" => "`http-truncate: { link: api, bytes: 100, path: /reports/*, for: 10s }`",
        _ => "`cut: { link: db, direction: both, for: 5s }`",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::model::{Action, Scenario};

    const HEAD: &str = "name: t
stack:
  services:
    db: { image: p, ports: [5432] }
    billing: { image: b, ports: [8080], env: { DB: '{{ links.db.addr }}' } }
    worker: { image: w, env: { API: 'http://{{ links.api.addr }}' } }
  links:
    db: billing -> db:5432
    api: { from: worker, to: billing, port: 8080, http: true }
";

    fn parse(steps: &str) -> Result<Scenario, Vec<String>> {
        crate::scenario::parse(&format!("{HEAD}steps:\n{steps}"), Path::new("t.yaml"))
            .map_err(|invalid| invalid.diagnostics.into_iter().map(|d| d.message).collect())
    }

    fn faults(scenario: &Scenario) -> Vec<&LinkFault> {
        scenario
            .all_steps()
            .into_iter()
            .filter_map(|s| match &s.action {
                Action::LinkFault(fault) => Some(fault),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_kind_reads_with_its_defaults() {
        let scenario = parse(
            "  - latency: { link: db, latency: 300ms, jitter: 20ms, for: 10s }
  - bandwidth: { link: db, rate: 64KiB/s, for: 1s, direction: both }
  - timeout: { link: db, after: 2s, for: 1s }
  - reset-peer: { link: db, for: 1s, toxicity: 50% }
  - slow-close: { link: db, delay: 1s, for: 1s }
  - slicer: { link: db, average: 64, variation: 0, delay: 0s, for: 1s }
  - limit-data: { link: db, bytes: 4KiB, for: 1s }
  - down: { link: db, for: 1s }
  - http-error: { link: api, status: 503, probability: 0.5, for: 1s }
  - http-delay: { link: api, delay: 1s, for: 1s, toxicity: 0.25 }
  - cut: { link: db, direction: upstream, for: 1s }
  - cut: { link: db, for: 1s }
",
        )
        .unwrap();
        let faults = faults(&scenario);
        let kinds: Vec<(&str, LinkDirection)> =
            faults.iter().map(|f| (f.kind.key(), f.direction)).collect();
        use LinkDirection::*;
        assert_eq!(
            kinds,
            [
                ("latency", Downstream),
                ("bandwidth", Both),
                ("timeout", Both),
                ("reset-peer", Upstream),
                ("slow-close", Downstream),
                ("slicer", Downstream),
                ("limit-data", Downstream),
                ("down", Both),
                ("http-error", Upstream),
                ("http-delay", Upstream),
                ("cut", Upstream),
                ("cut", Both),
            ]
        );
        assert_eq!(
            faults[0].kind,
            LinkFaultKind::Latency {
                latency: Duration::from_millis(300),
                jitter: Duration::from_millis(20)
            }
        );
        assert_eq!(faults[0].duration, Duration::from_secs(10));
        assert_eq!(faults[1].kind, LinkFaultKind::Bandwidth { bytes_per_sec: 64 * 1024 });
        assert_eq!(faults[3].kind, LinkFaultKind::ResetPeer { after: Duration::ZERO });
        assert_eq!(faults[3].toxicity, 0.5);
        assert_eq!(faults[6].kind, LinkFaultKind::LimitData { bytes: 4096 });
        assert_eq!(
            faults[8].kind,
            LinkFaultKind::HttpError { status: 503, probability: 0.5, route: HttpRoute::default() }
        );
        assert_eq!((faults[9].toxicity, faults[0].toxicity), (0.25, 1.0));
        let names: Vec<_> = scenario.steps.iter().map(|s| s.name.as_str()).take(3).collect();
        assert_eq!(names, ["latency db", "bandwidth db", "timeout db"]);
    }

    #[test]
    fn link_fault_mistakes_are_all_reported() {
        let errors = parse(
            "  - latency: { link: db, latency: 300ms }
  - http-error: { link: db, status: 503, for: 5s }
  - cut: { link: dbb, for: 5s }
  - down: { link: db, direction: upstream, for: 5s }
  - latency: { link: db, latency: 1s, toxicity: 2, for: 5s, direction: sideways }
  - slicer: { link: db, average: 8, variation: 8, for: 5s }
  - bandwidth: { link: db, rate: 0/s, for: 5s }
",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "missing `for` in `latency`",
                "link `db` does not carry HTTP",
                "unknown link `dbb`",
                "unknown key `direction` in `down`",
                "invalid toxicity `2`",
                "unknown direction `sideways`",
                "`variation` must be smaller than `average`",
                "a bandwidth of 0 bytes per second",
            ]
        );
    }

    #[test]
    fn http_faults_read_their_route_and_the_new_kinds_their_sizes() {
        let scenario = parse(
            "  - http-error: { link: api, status: 503, method: POST, path: /invoices, for: 1s }
  - http-abort: { link: api, method: [POST, PUT], path: /invoices/*, header: { X-Tenant: acme }, for: 1s }
  - http-abort: { link: api, after: 1KiB, probability: 10%, for: 1s }
  - http-truncate: { link: api, bytes: 100, path: /api/**, for: 1s }
",
        )
        .unwrap();
        let faults = faults(&scenario);
        let post = HttpRoute {
            methods: vec!["POST".into()],
            path: Some("/invoices".into()),
            headers: Vec::new(),
        };
        assert_eq!(
            faults[0].kind,
            LinkFaultKind::HttpError { status: 503, probability: 1.0, route: post }
        );
        let tenant = HttpRoute {
            methods: vec!["POST".into(), "PUT".into()],
            path: Some("/invoices/*".into()),
            headers: vec![("x-tenant".into(), "acme".into())],
        };
        assert_eq!(
            faults[1].kind,
            LinkFaultKind::HttpAbort { after: 0, probability: 1.0, route: tenant }
        );
        assert_eq!(
            faults[2].kind,
            LinkFaultKind::HttpAbort { after: 1024, probability: 0.1, route: HttpRoute::default() }
        );
        let api = HttpRoute { path: Some("/api/**".into()), ..HttpRoute::default() };
        assert_eq!(
            faults[3].kind,
            LinkFaultKind::HttpTruncate { bytes: 100, probability: 1.0, route: api }
        );
        assert_eq!(faults[1].direction, LinkDirection::Upstream);
    }

    #[test]
    fn http_route_mistakes_are_all_reported() {
        let errors = parse(
            "  - http-error: { link: api, status: 503, method: post, for: 1s }
  - http-error: { link: api, status: 503, method: [], for: 1s }
  - http-error: { link: api, status: 503, method: 'GET /x', for: 1s }
  - http-delay: { link: api, delay: 1s, path: invoices, for: 1s }
  - http-delay: { link: api, delay: 1s, path: '/x?y=1', for: 1s }
  - http-delay: { link: api, delay: 1s, path: '/x/***', for: 1s }
  - http-abort: { link: api, header: {}, for: 1s }
  - http-abort: { link: api, header: { 'x tenant': a }, for: 1s }
  - http-abort: { link: api, header: [x-tenant], for: 1s }
  - http-abort: { link: api, after: -1, for: 1s }
  - http-truncate: { link: api, for: 1s }
  - http-truncate: { link: db, bytes: 10, for: 1s }
  - http-truncate: { link: api, bytes: 10, direction: downstream, for: 1s }
",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "invalid HTTP method `post`",
                "`method` is an empty list",
                "invalid HTTP method `GET /x`",
                "invalid path pattern `invoices`",
                "invalid path pattern `/x?y=1`",
                "invalid path pattern `/x/***`",
                "`header` is empty",
                "invalid header name `x tenant`",
                "expected a mapping of header names to values (`header: { x-tenant: acme }`), found a list",
                "invalid size `-1`",
                "missing `bytes` in `http-truncate`",
                "link `db` does not carry HTTP",
                "unknown key `direction` in `http-truncate`",
            ]
        );
    }

    #[test]
    fn link_faults_run_in_parallel_groups() {
        let scenario = parse(
            "  - parallel:
      - latency: { link: db, latency: 100ms, for: 2s }
      - delay: 1s
        cut: { link: db, for: 1s }
",
        )
        .unwrap();
        assert_eq!(faults(&scenario).len(), 2);
    }
}
