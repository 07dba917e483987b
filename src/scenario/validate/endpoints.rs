//! `stack.links` (dependencies routed through the fault proxy) and `sinks` (notification sinks),
//! and the `{{ links.* }}` / `{{ sinks.* }}` references that point at them.

use crate::scenario::keys;
use indexmap::IndexMap;

use super::walk::{Services, Walk, is_name};
use crate::scenario::model::{Field, Link, Reference, Sink, SinkKind, SinkTimeouts};
use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::{Node, Value};

impl Walk<'_> {
    /// `sinks: { NAME: KIND }` or `{ NAME: { kind: KIND, timeouts: { KEY: DURATION } } }`.
    pub(super) fn sinks(&mut self, node: &Node) -> Option<IndexMap<String, Sink>> {
        let Value::Map(entries) = &node.value else {
            self.r.wrong_type(node, "a mapping of sink names to kinds (`email: smtp`)");
            return None;
        };
        let mut sinks = Some(IndexMap::with_capacity(entries.len()));
        for entry in entries {
            let name = self.endpoint_name(&entry.key, "sink");
            let (kind, timeouts) = match &entry.value.value {
                Value::Map(_) => self.sink_fields(name.as_deref(), entry.key.span, &entry.value),
                _ => (self.sink_kind(&entry.value), Some(SinkTimeouts::default())),
            };
            match (&mut sinks, name, kind, timeouts) {
                (Some(sinks), Some(name), Some(kind), Some(timeouts)) => {
                    sinks.insert(name.clone(), Sink { name, kind, timeouts });
                }
                _ => sinks = None,
            }
        }
        sinks
    }

    fn sink_kind(&mut self, node: &Node) -> Option<SinkKind> {
        let text = self.r.text(node, "a sink kind")?;
        let kind = SinkKind::from_name(&text);
        if kind.is_none() {
            let hint = match suggest::closest(&text, SinkKind::NAMES.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("use {}", suggest::list(SinkKind::NAMES.iter().copied())),
            };
            self.r
                .error(node.span, format!("unknown sink kind `{text}`"), "unknown kind")
                .help(hint);
        }
        kind
    }

    /// `NAME: { kind, timeouts }`.
    fn sink_fields(
        &mut self,
        name: Option<&str>,
        key: Span,
        node: &Node,
    ) -> (Option<SinkKind>, Option<SinkTimeouts>) {
        let context = format!("sink `{}`", name.unwrap_or("?"));
        let expected =
            "a sink kind, or a mapping such as `{ kind: smtp, timeouts: { server: 30s } }`";
        let Some(fields) = self.r.fields(node, key, context, expected, &keys::SINK) else {
            return (None, None);
        };
        let kind = self.r.require(&fields, "kind").and_then(|node| self.sink_kind(node));
        let timeouts = match fields.get("timeouts") {
            None => Some(SinkTimeouts::default()),
            Some(node) => self.sink_timeouts(node, kind),
        };
        (kind, timeouts)
    }

    /// `timeouts: { KEY: DURATION }`, the keys of the sink's kind (every key when the kind is
    /// unknown, so a misspelt kind does not make every timeout a mistake too).
    fn sink_timeouts(&mut self, node: &Node, kind: Option<SinkKind>) -> Option<SinkTimeouts> {
        let Value::Map(entries) = &node.value else {
            self.r.wrong_type(node, "a mapping of timeouts such as `{ server: 30s }`");
            return None;
        };
        let mut timeouts = Some(SinkTimeouts::default());
        for entry in entries {
            let Some(key) = self.r.text(&entry.key, "a timeout name") else {
                timeouts = None;
                continue;
            };
            let known = SinkTimeouts::SMTP_KEYS.contains(&key.as_str())
                || SinkTimeouts::HTTP_KEYS.contains(&key.as_str());
            let own = kind.map_or(known, |kind| SinkTimeouts::keys(kind).contains(&key.as_str()));
            if !own {
                let keys = kind.map_or(SinkTimeouts::SMTP_KEYS, SinkTimeouts::keys);
                let kind_text =
                    kind.map_or("a", |kind| if kind.is_http() { "an HTTP" } else { "an `smtp`" });
                if known {
                    self.r
                        .error(
                            entry.key.span,
                            format!("`{key}` is not a timeout of {kind_text} sink"),
                            "not for this kind",
                        )
                        .help(format!(
                            "{kind_text} sink has {}",
                            suggest::list(keys.iter().copied())
                        ));
                } else {
                    let mut all = SinkTimeouts::SMTP_KEYS.to_vec();
                    all.extend_from_slice(SinkTimeouts::HTTP_KEYS);
                    let keys = if kind.is_some() { keys.to_vec() } else { all };
                    self.r.unknown_key(&key, entry.key.span, "`timeouts`", &keys);
                }
                timeouts = None;
                continue;
            }
            match (self.r.duration(&entry.value), &mut timeouts) {
                (Some(value), Some(timeouts)) => {
                    timeouts.set(&key, value);
                }
                _ => timeouts = None,
            }
        }
        timeouts
    }

    /// `stack.links: { NAME: "FROM -> TO:PORT" }` or `{ NAME: { from, to, port, http } }`: every
    /// name written, with its link when it had no mistake (`None` when `links` is not a mapping).
    pub(super) fn links(
        &mut self,
        node: &Node,
        services: &Services,
    ) -> Option<IndexMap<String, Option<Link>>> {
        let Value::Map(entries) = &node.value else {
            self.r.wrong_type(node, "a mapping of link names to links (`db: billing -> db:5432`)");
            return None;
        };
        let mut links = IndexMap::with_capacity(entries.len());
        for entry in entries {
            let Some(name) = self.endpoint_name(&entry.key, "link") else { continue };
            let link = self.link(&name, entry.key.span, &entry.value);
            let link = link.and_then(|link| self.check_link(link, &entry.value, services));
            links.insert(name, link);
        }
        Some(links)
    }

    fn endpoint_name(&mut self, key: &Node, what: &str) -> Option<String> {
        let name = self.r.text(key, &format!("a {what} name"))?;
        if !is_name(&name, &['-', '_']) {
            self.r
                .error(key.span, format!("invalid {what} name `{name}`"), "not a valid name")
                .help(
                    "use lowercase letters, digits, `-` and `_`, starting with a letter or digit",
                );
            return None;
        }
        Some(name)
    }

    fn link(&mut self, name: &str, key: Span, node: &Node) -> Option<Link> {
        if let Some(scalar) = node.scalar() {
            let parsed = parse_arrow(&scalar.text);
            if parsed.is_none() {
                self.r
                    .error(node.span, format!("cannot read link `{}`", scalar.text), "not a link")
                    .help("write `FROM -> TO:PORT`, e.g. `billing -> db:5432`");
            }
            let (from, to, port) = parsed?;
            return Some(Link { name: name.to_owned(), from, to, port, http: false });
        }
        let fields = self.r.fields(
            node,
            key,
            format!("link `{name}`"),
            "`FROM -> TO:PORT` or a mapping with `from`, `to` and `port`",
            &keys::LINK,
        )?;
        let from = self.r.require(&fields, "from").and_then(|n| self.r.text(n, "a service name"));
        let to = self.r.require(&fields, "to").and_then(|n| self.r.text(n, "a service name"));
        let port = self.r.require(&fields, "port").and_then(|n| self.r.port(n));
        let http = match fields.get("http") {
            Some(node) => self.r.boolean(node, "`true` or `false`"),
            None => Some(false),
        };
        Some(Link { name: name.to_owned(), from: from?, to: to?, port: port?, http: http? })
    }

    /// Both ends known and distinct, and the port one the dependency publishes.
    fn check_link(&mut self, link: Link, node: &Node, services: &Services) -> Option<Link> {
        let span = node.span;
        let from = self.known_service(services, &link.from, span);
        let to = self.known_service(services, &link.to, span);
        if link.from == link.to {
            self.r
                .error(
                    span,
                    format!("link `{}` goes from `{}` to itself", link.name, link.to),
                    "itself",
                )
                .help("a link routes one service's connections to another service");
            return None;
        }
        let (_, to) = (from?, to?);
        if let Some(ports) = &to.ports
            && !ports.contains(&link.port)
        {
            self.r
                .error(
                    span,
                    format!("`{}` does not declare port {}", link.to, link.port),
                    "not in its `ports`",
                )
                .help(format!(
                    "the proxy reaches `{}` through its published port: add {} to its `ports`",
                    link.to, link.port
                ));
            return None;
        }
        Some(link)
    }

    /// `{{ links.* }}` and `{{ sinks.* }}` in env values name declared links and sinks; a service
    /// with a link to a dependency reaches it through the link, not around it.
    pub(super) fn check_endpoint_refs(
        &mut self,
        services: &Services,
        links: &IndexMap<String, Option<Link>>,
        sinks: &IndexMap<String, Sink>,
    ) {
        for (name, info) in &services.0 {
            for (reference, span) in &info.env_refs {
                match reference {
                    Reference::Link(link, _) if !links.contains_key(link) => {
                        self.unknown_endpoint("link", link, *span, links.keys());
                    }
                    Reference::Sink(sink, field) => match sinks.get(sink) {
                        None => self.unknown_endpoint("sink", sink, *span, sinks.keys()),
                        Some(found) if *field == Field::Url && !found.kind.is_http() => {
                            self.r
                                .error(
                                    *span,
                                    format!("sink `{sink}` speaks SMTP: it has no url"),
                                    "no url",
                                )
                                .help("use `addr` (host:port) for an SMTP sink");
                        }
                        Some(_) => {}
                    },
                    Reference::ServiceHost(target)
                    | Reference::ServicePort(target)
                    | Reference::ServiceAddr(target) => {
                        let mut valid = links.values().flatten();
                        if let Some(link) = valid.find(|l| l.from == *name && l.to == *target) {
                            self.r
                                .error(
                                    *span,
                                    format!(
                                        "`{name}` reaches `{target}` directly, around the link `{}`",
                                        link.name
                                    ),
                                    "bypasses the link",
                                )
                                .help(format!(
                                    "use `{{{{ links.{}.addr }}}}` so its connections cross the fault proxy",
                                    link.name
                                ));
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn unknown_endpoint<'a>(
        &mut self,
        what: &str,
        name: &str,
        span: Span,
        known: impl Iterator<Item = &'a String> + Clone,
    ) {
        let hint = match suggest::closest(name, known.clone().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None if known.clone().next().is_none() => {
                format!(
                    "declare it under `{}`",
                    if what == "link" { "stack.links" } else { "sinks" }
                )
            }
            None => format!("declared {what}s: {}", suggest::list(known.map(String::as_str))),
        };
        self.r
            .error(span, format!("unknown {what} `{name}`"), format!("no such {what}"))
            .help(hint);
    }
}

/// `FROM -> TO:PORT`.
fn parse_arrow(text: &str) -> Option<(String, String, u16)> {
    let (from, rest) = text.split_once("->")?;
    let (to, port) = rest.trim().rsplit_once(':')?;
    let (from, to) = (from.trim(), to.trim());
    if from.is_empty() || to.is_empty() {
        return None;
    }
    let port: u16 = port.trim().parse().ok().filter(|p| *p > 0)?;
    Some((from.to_owned(), to.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::scenario::model::{
        Action, Reference, Scenario, SinkKind, SinkTimeouts, TemplatePart,
    };

    fn parse(source: &str) -> Result<Scenario, Vec<String>> {
        crate::scenario::parse(source, Path::new("t.yaml"))
            .map_err(|invalid| invalid.diagnostics.into_iter().map(|d| d.message).collect())
    }

    const BASE: &str = "name: t
sinks: { email: smtp, sms: twilio }
stack:
  services:
    db: { image: p, ports: [5432] }
";

    const TIMED: &str = "name: t
stack:
  services:
    db: { image: p }
";

    #[test]
    fn sink_timeouts_are_read_per_kind_and_default_to_none() {
        let scenario = parse(&format!(
            "{TIMED}sinks:
  email: {{ kind: smtp, timeouts: {{ greeting: 10s, data-termination: 5m, server: 45s }} }}
  sms: {{ kind: twilio, timeouts: {{ idle: 20s, header-read: 5s }} }}
  chat: slack
  page: {{ kind: pagerduty }}
steps:
  - sink-outage: {{ sink: sms, status: 500, channel: voice }}
"
        ))
        .unwrap();
        // A step sees the kind of a sink written as a mapping (only `twilio` has channels).
        let Action::SinkOutage(outage) = &scenario.steps[0].action else { panic!("an outage") };
        assert_eq!(outage.channel.as_deref(), Some("voice"));
        let email = &scenario.sinks["email"];
        assert_eq!(email.kind, SinkKind::Smtp);
        let expected = SinkTimeouts {
            greeting: Some(Duration::from_secs(10)),
            data_termination: Some(Duration::from_secs(300)),
            server: Some(Duration::from_secs(45)),
            ..SinkTimeouts::default()
        };
        assert_eq!(email.timeouts, expected);
        let sms = &scenario.sinks["sms"].timeouts;
        assert_eq!(
            (sms.idle, sms.header_read),
            (Some(Duration::from_secs(20)), Some(Duration::from_secs(5)))
        );
        assert_eq!(scenario.sinks["chat"].timeouts, SinkTimeouts::default());
        assert_eq!(scenario.sinks["page"].kind, SinkKind::Pagerduty);
    }

    #[test]
    fn sink_timeout_mistakes_are_all_reported() {
        let errors = parse(&format!(
            "{TIMED}sinks:
  email: {{ kind: smtp, timeouts: {{ idle: 10s, greting: 5s, data-block: 0s, mail: soon }} }}
  sms: {{ kind: twilio, timeout: {{ idle: 1s }} }}
  hook: {{ timeouts: {{ server: 1s }} }}
  chat: {{ kind: slack, timeouts: 5s }}
steps:
  - sink-outage: {{ sink: sms, status: 500 }}
"
        ))
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "`idle` is not a timeout of an `smtp` sink",
                "unknown key `greting` in `timeouts`",
                "invalid duration `0s`",
                "invalid duration `soon`",
                "unknown key `timeout` in sink `sms`",
                "missing `kind` in sink `hook`",
                "expected a mapping of timeouts such as `{ server: 30s }`, found a string",
            ]
        );
    }

    #[test]
    fn links_and_sinks_are_read_in_both_forms() {
        let scenario = parse(&format!(
            "{BASE}    billing:
      image: b
      ports: [8080]
      env:
        DB: 'postgres://{{{{ links.db.addr }}}}/x'
        SMTP: '{{{{ sinks.email.addr }}}}'
        SMS: '{{{{ sinks.sms.url }}}}'
    worker:
      image: w
      env: {{ API: '{{{{ links.api.addr }}}}' }}
  links:
    db: billing -> db:5432
    api: {{ from: worker, to: billing, port: 8080, http: true }}
"
        ))
        .unwrap();
        let links = &scenario.stack.links;
        assert_eq!((links["db"].from.as_str(), links["db"].to.as_str()), ("billing", "db"));
        assert_eq!((links["db"].port, links["db"].http), (5432, false));
        assert!(links["api"].http);
        assert_eq!(scenario.sinks["sms"].kind, SinkKind::Twilio);
        let parts = &scenario.stack.services["billing"].env["SMS"].parts;
        assert!(matches!(&parts[0], TemplatePart::Ref(Reference::Sink(name, _)) if name == "sms"));
    }

    #[test]
    fn every_endpoint_mistake_at_once() {
        let errors = parse(&format!(
            "{BASE}    billing:
      image: b
      ports: [8080]
      env:
        DB: 'postgres://{{{{ services.db.addr }}}}/x'
        SMTP: '{{{{ sinks.email.url }}}}'
        SMS: '{{{{ sinks.smss.url }}}}'
        X: '{{{{ links.dbb.addr }}}}'
  links:
    db: billing -> db:5432
    self: billing -> billing:8080
    closed: billing -> db:6543
    typo: billing -> dbx:5432
    garbled: billing to db
"
        ))
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "`billing` reaches `db` directly, around the link `db`",
                "sink `email` speaks SMTP: it has no url",
                "unknown sink `smss`",
                "unknown link `dbb`",
                "link `self` goes from `billing` to itself",
                "`db` does not declare port 6543",
                "unknown service `dbx`",
                "cannot read link `billing to db`",
            ]
        );
        let errors =
            parse("name: t\nsinks: { sms: twillio }\nstack: { services: { a: { image: x } } }\n")
                .unwrap_err();
        assert_eq!(errors, ["unknown sink kind `twillio`"]);
    }
}
