//! `expect`: the checks, their references to services (which must have a health check), to steps
//! (upgrade checks to upgrade steps) and to traffic, and their generated names.

use crate::scenario::keys;
use indexmap::IndexMap;

use super::traffic::TrafficTable;
use super::walk::{Naming, Services, StepKind, StepTable, UpgradeInfo, Walk};
use crate::scenario::model::{Expectation, ExpectationKind, OnFailure, Sink, SteadyPhase};
use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::Node;

/// What `expect` entries refer to.
pub(super) struct Refs<'a> {
    pub(super) services: &'a Services,
    pub(super) traffic: &'a TrafficTable,
    pub(super) steps: &'a StepTable,
    /// The declared sinks (`None` when `sinks` had mistakes: channel checks would only add noise).
    pub(super) sinks: Option<&'a IndexMap<String, Sink>>,
}

impl Walk<'_> {
    pub(super) fn expectations(
        &mut self,
        node: &Node,
        services: &Services,
        traffic: &TrafficTable,
        steps: &StepTable,
        sinks: Option<&IndexMap<String, Sink>>,
        has_steady: Option<bool>,
    ) -> Option<Vec<Expectation>> {
        let refs = Refs { services, traffic, steps, sinks };
        let items = self.r.list(node, "a list of expectations")?;
        let mut kinds = Vec::with_capacity(items.len());
        let mut namings = Vec::with_capacity(items.len());
        let mut positions = Vec::with_capacity(items.len());
        let kinds_written = keys::EXPECT.choices();
        for item in items {
            let at = self.r.head(item);
            positions.push(self.r.position(at));
            let Some(fields) = self.r.fields(
                item,
                at,
                "an expectation",
                "an expectation such as `- steady-state: after`",
                &keys::EXPECT,
            ) else {
                kinds.push(None);
                namings.push(Naming { explicit: None, generated: None });
                continue;
            };
            let explicit = self.explicit_name(&fields);
            let kind = match fields.present(&kinds_written).as_slice() {
                [] => {
                    self.r.error(at, "missing check in expectation", "no check").help(format!(
                        "add one of {}",
                        suggest::list(kinds_written.iter().copied())
                    ));
                    None
                }
                [(kind, entry)] => {
                    self.expectation(kind, &entry.value, entry.key.span, &refs, has_steady)
                }
                [(first, _), (second, entry), ..] => {
                    let message = format!(
                        "an expectation has one check, this one has `{first}` and `{second}`"
                    );
                    self.r
                        .error(entry.key.span, message, "second check")
                        .help("split it into two expectations");
                    None
                }
            };
            namings.push(Naming { explicit, generated: kind.as_ref().map(expectation_name) });
            kinds.push(kind);
        }
        let names = self.settle_names(namings, "expectation");
        kinds
            .into_iter()
            .zip(names)
            .zip(positions)
            .map(|((kind, name), at)| Some(Expectation { name: name?, kind: kind?, at: Some(at) }))
            .collect()
    }

    pub(super) fn expectation(
        &mut self,
        kind: &str,
        node: &Node,
        key: Span,
        refs: &Refs<'_>,
        has_steady: Option<bool>,
    ) -> Option<ExpectationKind> {
        let (services, steps) = (refs.services, refs.steps);
        match kind {
            "restored" => self.restored(node, key, refs),
            "notify" => self.notify(node, key, refs),
            "maintenance-notice" => self.maintenance_notice(node, key, refs),
            "prometheus" => self.prometheus(node, key, refs),
            "alert" => self.alert(node, key, refs),
            "slo" => self.slo(node, key, refs),
            "human-within" => self.human_within(node, key, refs),
            "no-lost-writes" => {
                let hint = node.scalar().map(|s| s.text.clone());
                let Some(fields) = self.r.fields(
                    node,
                    key,
                    "`no-lost-writes`",
                    "a mapping with `traffic`",
                    &keys::NO_LOST_WRITES,
                ) else {
                    if let Some(name) = hint {
                        self.r
                            .last()
                            .help(format!("write `no-lost-writes: {{ traffic: {name} }}`"));
                    }
                    return None;
                };
                let node = self.r.require(&fields, "traffic")?;
                let traffic = self.traffic_ref(node, refs.traffic)?;
                if refs.traffic.names.get(&traffic) == Some(&Some(false)) {
                    self.r
                        .error(
                            node.span,
                            format!("traffic `{traffic}` does not verify writes"),
                            "no `verify-writes`",
                        )
                        .help(format!(
                            "`no-lost-writes` reads every acknowledged write back at the end; \
                             add `verify-writes: true` to traffic `{traffic}`"
                        ));
                    return None;
                }
                Some(ExpectationKind::NoLostWrites { traffic })
            }
            "upgrade-succeeds" => {
                let (step, _) = self.upgrade_ref(node, steps, kind)?;
                Some(ExpectationKind::UpgradeSucceeds { step })
            }
            "upgrade-rolled-back" => {
                let (step, info) = self.upgrade_ref(node, steps, kind)?;
                let policy = match info.and_then(|info| info.on_failure) {
                    Some(OnFailure::Abort) => "abort",
                    Some(OnFailure::Continue) => "continue",
                    _ => return Some(ExpectationKind::UpgradeRolledBack { step }),
                };
                self.r
                    .error(
                        node.span,
                        format!("`{step}` is never rolled back: it has `on-failure: {policy}`"),
                        "not rolled back",
                    )
                    .help(format!(
                        "set `on-failure: rollback` on step `{step}`, or expect `upgrade-succeeds`"
                    ));
                None
            }
            "steady-state" => {
                let phase = self.r.text(node, "`before` or `after`")?;
                let phase = match phase.as_str() {
                    "before" => SteadyPhase::Before,
                    "after" => SteadyPhase::After,
                    _ => {
                        self.r
                            .error(
                                node.span,
                                format!("unknown steady-state phase `{phase}`"),
                                "unknown phase",
                            )
                            .help("use `before` or `after`");
                        return None;
                    }
                };
                if has_steady == Some(false) {
                    let message =
                        format!("`steady-state: {}` has nothing to check", phase_name(phase));
                    self.r.error(node.span, message, "no probes").help(
                        "the top-level `steady-state` list is empty or missing; add probes to it",
                    );
                    return None;
                }
                Some(ExpectationKind::SteadyState(phase))
            }
            "probe-passed" | "probe-failed" => {
                let step = self.step_ref(node, steps)?;
                if matches!(steps.names.get(&step), Some(Some(kind)) if !matches!(kind, StepKind::Probe))
                {
                    self.r
                        .error(
                            node.span,
                            format!("step `{step}` is not a probe step"),
                            "not a probe",
                        )
                        .help(format!("`{kind}` names a step with `probe:`"));
                    return None;
                }
                Some(if kind == "probe-passed" {
                    ExpectationKind::ProbePassed { step }
                } else {
                    ExpectationKind::ProbeFailed { step }
                })
            }
            _ => {
                let fields = self.r.fields(
                    node,
                    key,
                    format!("`{kind}`"),
                    "a mapping with `service`",
                    keys::EXPECT.section_of(kind),
                )?;
                let service = self.r.require(&fields, "service").and_then(|n| {
                    let name = self.r.text(n, "a service name")?;
                    self.healthy_service(services, &name, n.span, kind).map(|()| name)
                });
                if kind == "healthy-within" {
                    let after =
                        self.r.require(&fields, "after").and_then(|n| self.step_ref(n, steps));
                    let within = self.r.require(&fields, "within").and_then(|n| self.r.duration(n));
                    return Some(ExpectationKind::HealthyWithin {
                        service: service?,
                        after: after?,
                        within: within?,
                    });
                }
                let step = self.r.require(&fields, "step").and_then(|n| self.step_ref(n, steps));
                let starts_during = match fields.get("starts-during") {
                    None => Some(false),
                    Some(n) => self.r.boolean(n, "`true` or `false`"),
                };
                let (service, step, starts_during) = (service?, step?, starts_during?);
                Some(if kind == "healthy-throughout" {
                    ExpectationKind::HealthyThroughout { service, step }
                } else {
                    ExpectationKind::UnhealthyDuring { service, step, starts_during }
                })
            }
        }
    }

    fn restored(&mut self, node: &Node, key: Span, refs: &Refs<'_>) -> Option<ExpectationKind> {
        let fields = self.r.fields(
            node,
            key,
            "`restored`",
            "a mapping with `service`, `after` and `within`",
            &keys::RESTORED,
        )?;
        let service_node = self.r.require(&fields, "service");
        let service = service_node.and_then(|n| {
            let name = self.r.text(n, "a service name")?;
            self.healthy_service(refs.services, &name, n.span, "restored").map(|()| name)
        });
        let after = self
            .r
            .require(&fields, "after")
            .and_then(|n| self.upgrade_ref(n, refs.steps, "restored"));
        // The service that upgrade step upgrades, when it is a known one.
        let upgraded = after
            .as_ref()
            .and_then(|(_, info)| info.and_then(|info| info.service.clone()))
            .filter(|name| refs.services.0.contains_key(name));
        if let (Some(service), Some(node), Some((step, _)), Some(upgraded)) =
            (&service, service_node, &after, &upgraded)
            && service != upgraded
        {
            self.r
                .error(
                    node.span,
                    format!("`{step}` upgrades `{upgraded}`, not `{service}`"),
                    "another service",
                )
                .help(format!(
                    "`restored` checks the service that the upgrade rolled back; \
                     use `service: {upgraded}`"
                ));
        }
        let within = self.r.require(&fields, "within").and_then(|n| self.r.duration(n));
        let version = match fields.get("version") {
            None => Some(None),
            Some(n) => self.r.non_empty_text(n, "the version text").and_then(|version| {
                let Some((step, info)) = &after else { return Some(Some(version)) };
                if info.and_then(|i| i.has_version) != Some(false) {
                    return Some(Some(version));
                }
                let port = upgraded
                    .as_deref()
                    .and_then(|s| refs.services.0.get(s))
                    .and_then(|s| s.ports.as_ref()?.first().copied())
                    .map_or_else(|| "PORT".to_owned(), |p| p.to_string());
                self.r
                    .error(
                        n.span,
                        format!("`version` needs a version endpoint on upgrade `{step}`"),
                        "nothing records the version",
                    )
                    .help(format!(
                        "add `version: {{ port: {port}, path: /version }}` to step `{step}`, so \
                         the engine asks the service its version before the upgrade and after a \
                         rollback"
                    ));
                None
            }),
        };
        let traffic = match fields.get("traffic") {
            None => Some(None),
            Some(n) => self.traffic_ref(n, refs.traffic).map(Some),
        };
        let (service, (after, _)) = (service?, after?);
        if upgraded.is_some_and(|upgraded| upgraded != service) {
            return None;
        }
        Some(ExpectationKind::Restored {
            service,
            after,
            within: within?,
            version: version?,
            traffic: traffic?,
        })
    }

    fn slo(&mut self, node: &Node, key: Span, refs: &Refs<'_>) -> Option<ExpectationKind> {
        let fields =
            self.r.fields(node, key, "`slo`", "a mapping with `traffic` and limits", &keys::SLO)?;
        let traffic =
            self.r.require(&fields, "traffic").and_then(|n| self.traffic_ref(n, refs.traffic));
        if fields.present(keys::SLO_LIMITS).is_empty() {
            self.r.error(key, "`slo` has no limits", "nothing to check").help(format!(
                "add at least one of {}",
                suggest::list(keys::SLO_LIMITS.iter().copied())
            ));
        }
        let availability = fields.get("availability").map(|n| self.r.percent(n));
        let mut latency = |key: &str| fields.get(key).map(|n| self.r.duration(n));
        let (p50, p95, p99, max_outage) =
            (latency("p50"), latency("p95"), latency("p99"), latency("max-outage"));
        let during = fields.get("during").map(|n| self.step_ref(n, refs.steps));
        let expect_breach = match fields.get("expect") {
            None => Some(false),
            Some(n) => match n.scalar().map(|s| s.text.as_str()) {
                Some("met") => Some(false),
                Some("breached") => Some(true),
                _ => {
                    self.r.wrong_type(n, "`met` or `breached`").help(
                        "`expect: breached` passes when a limit is broken (a fault the traffic must feel)",
                    );
                    None
                }
            },
        };
        if fields.present(keys::SLO_LIMITS).is_empty() {
            return None;
        }
        Some(ExpectationKind::Slo {
            traffic: traffic?,
            availability: option(availability)?,
            p50: option(p50)?,
            p95: option(p95)?,
            p99: option(p99)?,
            max_outage: option(max_outage)?,
            during: option(during)?,
            expect_breach: expect_breach?,
        })
    }

    /// A service that exists and has a health check (the check observes health).
    pub(super) fn healthy_service(
        &mut self,
        services: &Services,
        name: &str,
        span: Span,
        kind: &str,
    ) -> Option<()> {
        let info = self.known_service(services, name, span)?;
        if !info.has_health {
            self.r
                .error(span, format!("`{name}` has no health check"), "no `health`")
                .help(format!("`{kind}` observes health; add `health:` to `{name}`"));
            return None;
        }
        Some(())
    }

    /// A reference to an `upgrade` step, with what is known about it (`None` when the step's
    /// action could not be told).
    pub(super) fn upgrade_ref<'t>(
        &mut self,
        node: &Node,
        steps: &'t StepTable,
        kind: &str,
    ) -> Option<(String, Option<&'t UpgradeInfo>)> {
        let step = self.step_ref(node, steps)?;
        match steps.names.get(&step) {
            Some(Some(StepKind::Upgrade(info))) => Some((step, Some(info))),
            Some(Some(_)) => {
                self.r
                    .error(
                        node.span,
                        format!("step `{step}` is not an upgrade step"),
                        "not an upgrade",
                    )
                    .help(format!("`{kind}` names a step with `upgrade:`"));
                None
            }
            _ => Some((step, None)),
        }
    }

    pub(super) fn step_ref(&mut self, node: &Node, steps: &StepTable) -> Option<String> {
        let name = self.r.text(node, "a step name")?;
        if steps.names.contains_key(&name) {
            return Some(name);
        }
        if steps.incomplete {
            return None;
        }
        let hint = match suggest::closest(&name, steps.names.keys().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None if steps.names.is_empty() => "there are no steps".to_owned(),
            None => format!(
                "the steps are {}",
                suggest::list_all(steps.names.keys().map(String::as_str))
            ),
        };
        self.r
            .error(node.span, format!("unknown step `{name}`"), "no step has this name")
            .help(hint);
        None
    }
}

/// A read optional value: absent is fine (`Some(None)`), present but wrong is `None`.
fn option<T>(value: Option<Option<T>>) -> Option<Option<T>> {
    value.map_or(Some(None), |v| v.map(Some))
}

fn phase_name(phase: SteadyPhase) -> &'static str {
    match phase {
        SteadyPhase::Before => "before",
        SteadyPhase::After => "after",
    }
}

fn expectation_name(kind: &ExpectationKind) -> String {
    match kind {
        ExpectationKind::SteadyState(phase) => format!("steady-state {}", phase_name(*phase)),
        ExpectationKind::HealthyWithin { service, after, .. } => {
            format!("healthy-within {service} after \"{after}\"")
        }
        ExpectationKind::HealthyThroughout { service, step } => {
            format!("healthy-throughout {service} during \"{step}\"")
        }
        ExpectationKind::UnhealthyDuring { service, step, .. } => {
            format!("unhealthy-during {service} during \"{step}\"")
        }
        ExpectationKind::ProbePassed { step } => format!("probe-passed \"{step}\""),
        ExpectationKind::ProbeFailed { step } => format!("probe-failed \"{step}\""),
        ExpectationKind::Restored { service, after, .. } => {
            format!("restored {service} after \"{after}\"")
        }
        ExpectationKind::Slo { traffic, during: Some(step), .. } => {
            format!("slo {traffic} during \"{step}\"")
        }
        ExpectationKind::Slo { traffic, during: None, .. } => format!("slo {traffic}"),
        ExpectationKind::NoLostWrites { traffic } => format!("no-lost-writes {traffic}"),
        ExpectationKind::UpgradeSucceeds { step } => format!("upgrade-succeeds \"{step}\""),
        ExpectationKind::UpgradeRolledBack { step } => format!("upgrade-rolled-back \"{step}\""),
        ExpectationKind::Notify(notify) => super::notify::notify_name(notify),
        ExpectationKind::MaintenanceNotice(notice) => super::notify::maintenance_name(notice),
        ExpectationKind::HumanWithin { step, within } => {
            format!("human-within \"{step}\" {}", crate::scenario::duration::format(*within))
        }
        ExpectationKind::Prometheus(check) => super::metrics::prometheus_name(check),
        ExpectationKind::Alert(check) => super::metrics::alert_name(check),
    }
}
