//! `upgrade` and `rollback` steps: the target image, strategy, deadline against the service's health
//! interval, migration, SLO watch, backup hooks, failure policy and version endpoint.

use crate::scenario::keys;
use std::time::Duration;

use super::traffic::TrafficTable;
use super::walk::{ServiceInfo, Services, UpgradeInfo, Walk};
use crate::scenario::model::{
    MigrateWhen, Migration, OnFailure, Strategy, Upgrade, VersionEndpoint, Watch,
};
use crate::scenario::report::Span;
use crate::scenario::tree::{Node, Value};
use crate::scenario::{duration, suggest};

/// Strategies.
const STRATEGIES: &[&str] = &["recreate", "blue-green", "rolling"];
/// `on-failure` values.
const ON_FAILURE: &[&str] = &["rollback", "abort", "continue"];

/// The upgrades before the step being read, for `rollback` steps.
#[derive(Default)]
pub(super) struct EarlierUpgrades {
    /// Services upgraded by an earlier step, as written.
    pub(super) services: Vec<String>,
    /// An earlier step could not be read well enough to know whether it upgrades something.
    pub(super) unsure: bool,
}

impl Walk<'_> {
    /// An `upgrade` step, and what `expect` and later steps need to know about it even when it has
    /// mistakes (the service as written also names the step).
    pub(super) fn upgrade(
        &mut self,
        node: &Node,
        key: Span,
        services: &Services,
        traffic: &TrafficTable,
    ) -> (UpgradeInfo, Option<Upgrade>) {
        let mut info = UpgradeInfo::default();
        let Some(fields) = self.r.fields(
            node,
            key,
            "`upgrade`",
            "a mapping with `service` and `image` or `build`",
            &keys::UPGRADE,
        ) else {
            if let Some(scalar) = node.scalar() {
                self.r.last().help(format!(
                    "write `upgrade: {{ service: {}, image: NAME:TAG }}`",
                    scalar.text
                ));
            }
            return (info, None);
        };
        let service_node = self.r.require(&fields, "service");
        info.service = service_node.and_then(|n| self.r.text(n, "a service name"));
        let service = match (&info.service, service_node) {
            (Some(name), Some(node)) => {
                self.known_service(services, name, node.span).map(|found| (name.as_str(), found))
            }
            _ => None,
        };
        let target = self.image_source(&fields);
        let strategy =
            fields.get("strategy").map_or(Some(Strategy::Recreate), |n| self.strategy(n));
        if let (Some((name, found)), Some(strategy)) = (service, strategy) {
            self.strategy_fits(
                name,
                found,
                strategy,
                fields.get("strategy").map_or(key, |n| n.span),
            );
        }
        let max_unavailable = match fields.get("max-unavailable") {
            None => Some(1),
            Some(node) => self.max_unavailable(node, service, strategy),
        };
        let deadline =
            fields.get("deadline").map_or(Some(Duration::from_secs(60)), |n| self.r.duration(n));
        if let (Some((name, found)), Some(deadline)) = (service, deadline)
            && let Some(interval) = found.health_interval
            && deadline < interval
        {
            let span = fields.get("deadline").map_or(key, |n| n.span);
            let (deadline, interval) = (duration::format(deadline), duration::format(interval));
            self.r
                .error(
                    span,
                    format!(
                        "deadline {deadline} is shorter than the health interval of `{name}` \
                         ({interval})"
                    ),
                    format!("shorter than {interval}"),
                )
                .help(format!(
                    "a deadline shorter than the health interval can never be met; \
                     use at least {interval}"
                ));
        }
        let migrate = fields.get("migrate").map(|n| {
            let key = fields.entry("migrate").map_or(key, |e| e.key.span);
            self.migration(n, key)
        });
        let watch = fields.get("watch").map(|n| {
            let key = fields.entry("watch").map_or(key, |e| e.key.span);
            self.watch(n, key, traffic)
        });
        let backup = fields.get("backup").map(|n| self.backup_service(n, services));
        info.on_failure = match fields.get("on-failure") {
            None => Some(OnFailure::Rollback),
            Some(node) => self.on_failure(node),
        };
        info.has_version = Some(fields.get("version").is_some());
        let version = fields.get("version").map(|n| {
            let key = fields.entry("version").map_or(key, |e| e.key.span);
            self.version_endpoint(n, key, service)
        });
        let upgrade = (|| {
            Some(Upgrade {
                service: service?.0.to_owned(),
                target: target?,
                strategy: strategy?,
                deadline: deadline?,
                migrate: migrate.map_or(Some(None), |m| m.map(Some))?,
                watch: watch.map_or(Some(None), |w| w.map(Some))?,
                backup: backup.map_or(Some(None), |b| b.map(Some))?,
                on_failure: info.on_failure?,
                version: version.map_or(Some(None), |v| v.map(Some))?,
                max_unavailable: max_unavailable?,
            })
        })();
        (info, upgrade)
    }

    /// `rolling` needs replicas to roll over; `recreate` and `blue-green` replace one container.
    fn strategy_fits(&mut self, name: &str, found: &ServiceInfo, strategy: Strategy, span: Span) {
        let replicas = found.replicas;
        match strategy {
            Strategy::Rolling if replicas < 2 => {
                self.r
                    .error(
                        span,
                        format!(
                            "`rolling` needs a replicated service, and `{name}` has one container"
                        ),
                        "needs `replicas: 2` or more",
                    )
                    .help(format!(
                        "give `{name}` `replicas: 2` (or more), or use `recreate` or `blue-green`"
                    ));
            }
            Strategy::Recreate | Strategy::BlueGreen if replicas > 1 => {
                let text = if strategy == Strategy::Recreate { "recreate" } else { "blue-green" };
                self.r
                    .error(
                        span,
                        format!(
                            "`{text}` replaces one container, and `{name}` has {replicas} replicas"
                        ),
                        "use `rolling`",
                    )
                    .help("upgrade a replicated service with `strategy: rolling`");
            }
            _ => {}
        }
    }

    /// `max-unavailable`: 1 to the service's replicas, and only for `rolling`.
    fn max_unavailable(
        &mut self,
        node: &Node,
        service: Option<(&str, &ServiceInfo)>,
        strategy: Option<Strategy>,
    ) -> Option<u32> {
        let limit = service.map_or(super::services::MAX_REPLICAS, |(_, f)| i64::from(f.replicas));
        let value = self.r.integer(node, "a number of replicas", 1..=limit.max(1))?;
        if strategy.is_some_and(|s| s != Strategy::Rolling) {
            self.r
                .error(node.span, "`max-unavailable` is for `strategy: rolling`", "not rolling")
                .help("remove it, or use `strategy: rolling`");
            return None;
        }
        Some(u32::try_from(value).expect("checked range"))
    }

    fn strategy(&mut self, node: &Node) -> Option<Strategy> {
        let text = self.r.text(node, "`recreate`, `blue-green` or `rolling`")?;
        match text.as_str() {
            "recreate" => return Some(Strategy::Recreate),
            "blue-green" => return Some(Strategy::BlueGreen),
            "rolling" => return Some(Strategy::Rolling),
            _ => {
                let hint = match suggest::closest(&text, STRATEGIES.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("use {}", suggest::list(STRATEGIES.iter().copied())),
                };
                self.r
                    .error(node.span, format!("unknown strategy `{text}`"), "unknown strategy")
                    .help(hint);
            }
        }
        None
    }

    fn on_failure(&mut self, node: &Node) -> Option<OnFailure> {
        let text = self.r.text(node, "`rollback`, `abort` or `continue`")?;
        match text.as_str() {
            "rollback" => Some(OnFailure::Rollback),
            "abort" => Some(OnFailure::Abort),
            "continue" => Some(OnFailure::Continue),
            _ => {
                let hint = match suggest::closest(&text, ON_FAILURE.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("use {}", suggest::list(ON_FAILURE.iter().copied())),
                };
                self.r
                    .error(node.span, format!("unknown `on-failure` value `{text}`"), "unknown")
                    .help(hint);
                None
            }
        }
    }

    fn migration(&mut self, node: &Node, key: Span) -> Option<Migration> {
        let Some(fields) =
            self.r.fields(node, key, "`migrate`", "a mapping with `command`", &keys::MIGRATE)
        else {
            if matches!(node.value, Value::Seq(_)) {
                self.r.last().help("write `migrate: { command: [program, arg] }`");
            }
            return None;
        };
        let command = self.r.require(&fields, "command").and_then(|n| self.r.argv(n, "command"));
        let when = match fields.get("when") {
            None => Some(MigrateWhen::Before),
            Some(node) => {
                let text = self.r.text(node, "`before` or `after`")?;
                match text.as_str() {
                    "before" => Some(MigrateWhen::Before),
                    "after" => Some(MigrateWhen::After),
                    _ => {
                        self.r
                            .error(node.span, format!("unknown `when` value `{text}`"), "unknown")
                            .help(
                                "use `before` (before the new version takes traffic) or `after` \
                                 (after the switch)",
                            );
                        None
                    }
                }
            }
        };
        let deadline =
            fields.get("deadline").map_or(Some(Duration::from_secs(60)), |n| self.r.duration(n));
        Some(Migration { command: command?, when: when?, deadline: deadline? })
    }

    fn watch(&mut self, node: &Node, key: Span, traffic: &TrafficTable) -> Option<Watch> {
        let fields = self.r.fields(
            node,
            key,
            "`watch`",
            "a mapping with `for`, `traffic` and `availability`",
            &keys::WATCH,
        )?;
        let duration = self.r.require(&fields, "for").and_then(|n| self.r.duration(n));
        let traffic = self.r.require(&fields, "traffic").and_then(|n| self.traffic_ref(n, traffic));
        let availability = self.r.require(&fields, "availability").and_then(|n| self.r.percent(n));
        Some(Watch { duration: duration?, traffic: traffic?, availability: availability? })
    }

    /// `backup: SERVICE`: it must declare both hooks.
    fn backup_service(&mut self, node: &Node, services: &Services) -> Option<String> {
        let name = self.r.text(node, "a service name")?;
        let found = self.known_service(services, &name, node.span)?;
        let missing: Vec<&str> = [("backup", found.has_backup), ("restore", found.has_restore)]
            .into_iter()
            .filter_map(|(hook, has)| (!has).then_some(hook))
            .collect();
        if missing.is_empty() {
            return Some(name);
        }
        let (message, label, add) = match missing.as_slice() {
            [hook] => (
                format!("`{name}` has no `{hook}` hook"),
                format!("no `{hook}` hook"),
                format!("add `{hook}: [...]` to service `{name}`"),
            ),
            _ => (
                format!("`{name}` has no `backup` or `restore` hook"),
                "no hooks".to_owned(),
                format!("add `backup: [...]` and `restore: [...]` to service `{name}`"),
            ),
        };
        self.r.error(node.span, message, label).help(format!(
            "`backup: {name}` runs `{name}`'s `backup` hook before the upgrade and its `restore` \
             hook when the upgrade is rolled back; {add}"
        ));
        None
    }

    fn version_endpoint(
        &mut self,
        node: &Node,
        key: Span,
        service: Option<(&str, &ServiceInfo)>,
    ) -> Option<VersionEndpoint> {
        let Some(fields) = self.r.fields(
            node,
            key,
            "`version`",
            "a mapping with `port` and `path`",
            &keys::VERSION,
        ) else {
            if node.scalar().is_some() {
                self.r.last().help("write `version: { port: 8080, path: /version }`");
            }
            return None;
        };
        let port_node = self.r.require(&fields, "port");
        let port = port_node.and_then(|n| self.r.port(n));
        if let (Some((name, info)), Some(port), Some(node)) = (service, port, port_node) {
            self.declared_port(name, info, port, node.span);
        }
        let path = match fields.get("path") {
            None => Some("/version".to_owned()),
            Some(node) => self.http_path(Some(node)),
        };
        Some(VersionEndpoint { port: port?, path: path? })
    }

    /// A `rollback` step: the service must have been upgraded by an earlier step. Returns the
    /// service as written (to name the step) and the service when everything is right.
    pub(super) fn rollback(
        &mut self,
        node: &Node,
        key: Span,
        services: &Services,
        earlier: &EarlierUpgrades,
    ) -> (Option<String>, Option<String>) {
        let Some(fields) =
            self.r.fields(node, key, "`rollback`", "a mapping with `service`", &keys::ROLLBACK)
        else {
            if let Some(scalar) = node.scalar() {
                self.r.last().help(format!("write `rollback: {{ service: {} }}`", scalar.text));
            }
            return (None, None);
        };
        let service_node = self.r.require(&fields, "service");
        let service = service_node.and_then(|n| self.r.text(n, "a service name"));
        let (Some(name), Some(node)) = (&service, service_node) else { return (service, None) };
        if self.known_service(services, name, node.span).is_none() {
            return (service, None);
        }
        if earlier.services.contains(name) {
            return (service.clone(), service);
        }
        if !earlier.unsure {
            self.r
                .error(
                    node.span,
                    format!("`{name}` has no earlier upgrade to roll back"),
                    "no `upgrade` of it before this step",
                )
                .help(format!(
                    "a `rollback` step rolls back the latest upgrade of its service; put it after \
                     an `upgrade: {{ service: {name}, ... }}` step"
                ));
        }
        (service, None)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crate::scenario::model::{
        Action, ExpectationKind, ImageSource, MigrateWhen, OnFailure, Scenario, Strategy,
    };

    const STACK: &str = "name: t
stack:
  services:
    db:
      image: p
      ports: [5432]
      health: { exec: [pg_isready], interval: 2m }
      backup: [dump]
    billing:
      image: b:1
      ports: [8080]
      health: { http: { port: 8080 } }
traffic:
  checkout:
    http: { service: billing, port: 8080, method: POST, path: /invoices, body: '{}', status: 201 }
    rate: 20/s
";

    fn parse(rest: &str) -> Result<Scenario, Vec<String>> {
        parse_source(&format!("{STACK}{rest}"))
    }

    fn parse_source(source: &str) -> Result<Scenario, Vec<String>> {
        crate::scenario::parse(source, Path::new("t.yaml"))
            .map_err(|invalid| invalid.diagnostics.into_iter().map(|d| d.message).collect())
    }

    fn every_upgrade_key() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/valid/every-upgrade-key.yaml")
    }

    #[test]
    fn reads_every_upgrade_key() {
        let scenario = crate::scenario::load(&every_upgrade_key()).unwrap();
        let db = &scenario.stack.services["db"];
        assert_eq!(db.backup.as_deref(), Some(&["firedrill-backup".to_owned()][..]));
        assert_eq!(db.restore.as_ref().map(Vec::len), Some(2));

        let checkout = &scenario.traffic["checkout"];
        assert_eq!((checkout.rate_per_second, checkout.concurrency), (20.0, 16));
        assert_eq!(
            checkout.request.body.as_deref(),
            Some(r#"{"customer":"acme","amount_cents":1200}"#)
        );
        let verify = checkout.verify_writes.as_ref().unwrap();
        assert_eq!((verify.id_field.as_str(), verify.read_path.as_str()), ("id", "/invoices/{id}"));
        let browse = &scenario.traffic["browse"];
        assert_eq!((browse.rate_per_second, browse.concurrency), (0.5, 64));
        assert_eq!(
            (browse.timeout, browse.request.method.as_str()),
            (Duration::from_secs(2), "GET")
        );
        assert_eq!((browse.request.status, &browse.verify_writes), (200, &None));
        let audit = &scenario.traffic["audit"];
        assert_eq!((audit.rate_per_second, audit.request.method.as_str()), (10.0, "POST"));
        let verify = audit.verify_writes.as_ref().unwrap();
        assert_eq!((verify.read_path.as_str(), verify.status), ("/invoices/{id}", 200));

        let names: Vec<_> = scenario.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "upgrade billing",
                "rollback billing",
                "upgrade billing (2)",
                "upgrade billing (3)",
                "hold"
            ]
        );
        let Action::Upgrade(first) = &scenario.steps[0].action else { panic!() };
        assert_eq!(first.target, ImageSource::Image("firedrill-demo/billing:2.0".into()));
        assert_eq!((first.strategy, first.deadline), (Strategy::Recreate, Duration::from_secs(30)));
        let watch = first.watch.as_ref().unwrap();
        assert_eq!(
            (watch.duration, watch.traffic.as_str(), watch.availability),
            (Duration::from_secs(20), "checkout", 99.0)
        );
        assert_eq!((first.backup.as_deref(), first.on_failure), (Some("db"), OnFailure::Rollback));
        assert_eq!(
            first.version.as_ref().map(|v| (v.port, v.path.as_str())),
            Some((8080, "/version"))
        );
        assert_eq!(scenario.steps[1].action, Action::Rollback { service: "billing".into() });
        let Action::Upgrade(second) = &scenario.steps[2].action else { panic!() };
        let ImageSource::Build(build) = &second.target else { panic!() };
        assert!(build.context.is_absolute());
        assert_eq!(
            (second.strategy, second.deadline),
            (Strategy::Recreate, Duration::from_secs(60))
        );
        let migrate = second.migrate.as_ref().unwrap();
        assert_eq!((migrate.when, migrate.deadline), (MigrateWhen::After, Duration::from_secs(60)));
        assert_eq!(second.watch.as_ref().unwrap().availability, 99.5);
        assert_eq!(
            (second.on_failure, &second.backup, &second.version),
            (OnFailure::Continue, &None, &None)
        );
        let Action::Upgrade(third) = &scenario.steps[3].action else { panic!() };
        assert_eq!((third.on_failure, third.strategy), (OnFailure::Abort, Strategy::BlueGreen));
        assert_eq!(third.version.as_ref().map(|v| v.path.as_str()), Some("/version"));

        let names: Vec<_> = scenario.expect.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "restored billing after \"upgrade billing\"",
                "restored billing after \"upgrade billing (3)\"",
                "slo checkout during \"upgrade billing\"",
                "browsing stays fast",
                "no-lost-writes checkout",
                "no-lost-writes audit",
                "upgrade-succeeds \"upgrade billing (2)\"",
                "upgrade-rolled-back \"upgrade billing\"",
            ]
        );
        let ExpectationKind::Restored { version, traffic, within, .. } = &scenario.expect[0].kind
        else {
            panic!()
        };
        assert_eq!(
            (version.as_deref(), traffic.as_deref(), *within),
            (Some("1.0"), Some("checkout"), Duration::from_secs(60))
        );
        let ExpectationKind::Slo { availability, p50, max_outage, .. } = &scenario.expect[2].kind
        else {
            panic!()
        };
        assert_eq!(
            (*availability, *p50, *max_outage),
            (Some(99.0), Some(Duration::from_millis(50)), Some(Duration::from_secs(5)))
        );
    }

    #[test]
    fn fills_upgrade_defaults() {
        let scenario = parse("steps:\n  - upgrade: { service: billing, image: b:2 }\n").unwrap();
        let Action::Upgrade(upgrade) = &scenario.steps[0].action else { panic!() };
        assert_eq!(
            (upgrade.strategy, upgrade.deadline, upgrade.on_failure),
            (Strategy::Recreate, Duration::from_secs(60), OnFailure::Rollback)
        );
        assert_eq!((&upgrade.migrate, &upgrade.watch, &upgrade.backup), (&None, &None, &None));
        let checkout = &scenario.traffic["checkout"];
        assert_eq!((checkout.concurrency, checkout.timeout), (64, Duration::from_secs(2)));
        assert_eq!(checkout.verify_writes, None);
    }

    #[test]
    fn blue_green_is_for_one_container_and_rolling_for_replicas() {
        let scenario =
            parse("steps:\n  - upgrade: { service: billing, image: b:2, strategy: blue-green }\n")
                .unwrap();
        let Action::Upgrade(upgrade) = &scenario.steps[0].action else { panic!() };
        assert_eq!((upgrade.strategy, upgrade.max_unavailable), (Strategy::BlueGreen, 1));
        let errors =
            parse("steps:\n  - upgrade: { service: billing, image: b:2, strategy: rolling }\n")
                .unwrap_err();
        assert_eq!(
            errors,
            ["`rolling` needs a replicated service, and `billing` has one container"]
        );

        let replicated =
            STACK.replace("      image: b:1\n", "      image: b:1\n      replicas: 3\n");
        let parse3 = |rest: &str| parse_source(&format!("{replicated}{rest}"));
        let scenario = parse3(
            "steps:\n  - upgrade: { service: billing, image: b:2, strategy: rolling, max-unavailable: 2 }\n",
        )
        .unwrap();
        assert_eq!(scenario.stack.services["billing"].replicas, 3);
        assert_eq!(
            scenario.stack.services["billing"].replica_keys(),
            ["billing.1", "billing.2", "billing.3"]
        );
        let Action::Upgrade(upgrade) = &scenario.steps[0].action else { panic!() };
        assert_eq!((upgrade.strategy, upgrade.max_unavailable), (Strategy::Rolling, 2));

        let errors = parse3(
            "steps:
  - upgrade: { service: billing, image: b:2 }
  - upgrade: { service: billing, image: b:2, strategy: blue-green, max-unavailable: 1 }
  - upgrade: { service: billing, image: b:2, strategy: rolling, max-unavailable: 4 }
",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "`recreate` replaces one container, and `billing` has 3 replicas",
                "`blue-green` replaces one container, and `billing` has 3 replicas",
                "`max-unavailable` is for `strategy: rolling`",
                "4 is out of range",
            ]
        );
        let errors = parse_source(
            &STACK.replace("      image: b:1\n", "      image: b:1\n      replicas: 0\n"),
        )
        .unwrap_err();
        assert_eq!(errors, ["0 is out of range"]);
    }

    #[test]
    fn a_default_deadline_is_checked_too() {
        let errors = parse("steps:\n  - upgrade: { service: db, image: p:2 }\n").unwrap_err();
        assert_eq!(errors, ["deadline 1m is shorter than the health interval of `db` (2m)"]);
    }

    #[test]
    fn one_unknown_service_is_reported_where_written_only() {
        let errors = parse(
            "steps:
  - upgrade: { service: biling, image: b:2 }
  - rollback: { service: biling }
expect:
  - upgrade-succeeds: upgrade biling
  - restored: { service: billing, after: upgrade biling, within: 5s }
",
        )
        .unwrap_err();
        assert_eq!(errors, ["unknown service `biling`", "unknown service `biling`"]);
    }

    #[test]
    fn an_unreadable_step_silences_rollback_checks() {
        let errors = parse("steps:\n  - upgrade: billing\n  - rollback: { service: billing }\n")
            .unwrap_err();
        assert_eq!(
            errors,
            ["expected a mapping with `service` and `image` or `build`, found a string"]
        );
    }

    #[test]
    fn misspelt_keys_and_values_get_suggestions() {
        let source = format!(
            "{STACK}    verify_writes: true
trafic: {{}}
steps:
  - upgrade: {{ service: billing, image: b:2, strategie: recreate, on-failure: rollbak }}
  - upgrade: {{ service: billing, image: b:2, strategy: recreat }}
"
        );
        let invalid = crate::scenario::parse(&source, Path::new("t.yaml")).unwrap_err();
        let found: Vec<_> = invalid
            .diagnostics
            .into_iter()
            .map(|d| (d.message, d.help.unwrap_or_default()))
            .collect();
        let expected = [
            ("unknown key `verify_writes` in traffic `checkout`", "did you mean `verify-writes`?"),
            ("unknown key `trafic` in the scenario", "did you mean `traffic`?"),
            ("unknown key `strategie` in `upgrade`", "did you mean `strategy`?"),
            ("unknown `on-failure` value `rollbak`", "did you mean `rollback`?"),
            ("unknown strategy `recreat`", "did you mean `recreate`?"),
        ];
        assert_eq!(found, expected.map(|(m, h)| (m.to_owned(), h.to_owned())));
    }

    #[test]
    fn references_are_checked() {
        let errors = parse(
            "  writes:
    http: { service: billing, port: 9090, body: '{\"a\":' }
    rate: 1/s
    verify-writes: { read-path: \"invoices/{id}\" }
steps:
  - wait: 1s
  - upgrade:
      service: billing
      image: b:2
      backup: db
      watch: { for: 5s, traffic: chekout, availability: 101% }
      version: { port: 9090 }
      on-failure: abort
expect:
  - restored: { service: db, after: upgrade billing, within: 5s, traffic: nope }
  - upgrade-succeeds: wait 1s
  - upgrade-rolled-back: upgrade billing
  - slo: { traffic: checkout, p99: fast, during: nope }
",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "port 9090 is not declared in `ports` of `billing`",
                "`body` is not valid JSON",
                "path `invoices/{id}` does not start with `/`",
                "`db` has no `restore` hook",
                "unknown traffic `chekout`",
                "invalid percentage `101%`",
                "port 9090 is not declared in `ports` of `billing`",
                "`upgrade billing` upgrades `billing`, not `db`",
                "unknown traffic `nope`",
                "step `wait 1s` is not an upgrade step",
                "`upgrade billing` is never rolled back: it has `on-failure: abort`",
                "invalid duration `fast`",
                "unknown step `nope`",
            ]
        );
    }

    #[test]
    fn rates_and_percentages_in_context() {
        let errors = parse(
            "  slow:
    http: { service: billing, port: 8080 }
    rate: 20
  none:
    http: { service: billing, port: 8080 }
    rate: 0/m
    concurrency: 0
steps:
  - upgrade: { service: billing, image: b:2, watch: { for: 1s, traffic: checkout, availability: high } }
",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "invalid rate `20`",
                "invalid rate `0/m`",
                "0 is out of range",
                "invalid percentage `high`",
            ]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the edit to the upgrade example, the answer is a scenario or diagnostics
        /// inside the text, never a panic.
        #[test]
        fn random_edits_never_panic(
            edits in proptest::collection::vec(
                (0usize..5000, 0usize..3, proptest::char::any()),
                1..6,
            )
        ) {
            let path = every_upgrade_key();
            let mut text: Vec<char> = fs_err::read_to_string(&path).unwrap().chars().collect();
            for (at, kind, c) in edits {
                let at = at % (text.len() + 1);
                match kind {
                    0 => text.insert(at, c),
                    1 if at < text.len() => { text.remove(at); }
                    _ if at < text.len() => text[at] = c,
                    _ => {}
                }
            }
            let source: String = text.into_iter().collect();
            if let Err(invalid) = crate::scenario::parse(&source, &path) {
                proptest::prop_assert!(!invalid.diagnostics.is_empty());
                let lines = source.split('\n').count();
                for d in &invalid.diagnostics {
                    let inside = d.line >= 1 && d.line <= lines && d.column >= 1;
                    proptest::prop_assert!(inside, "{d:?}");
                }
            }
        }
    }
}
