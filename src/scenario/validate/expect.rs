//! `expect`: the checks, their references to services (which must have a health check) and
//! to steps, and their generated names.

use super::walk::{Naming, Services, StepTable, Walk};
use crate::scenario::model::{Expectation, ExpectationKind, SteadyPhase};
use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::Node;

/// Expectation kinds; an `expect` entry has exactly one.
pub(super) const EXPECTATIONS: &[&str] =
    &["steady-state", "healthy-within", "healthy-throughout", "unhealthy-during", "probe-passed"];

impl Walk<'_> {
    pub(super) fn expectations(
        &mut self,
        node: &Node,
        services: &Services,
        steps: &StepTable,
        has_steady: Option<bool>,
    ) -> Option<Vec<Expectation>> {
        let items = self.r.list(node, "a list of expectations")?;
        let mut kinds = Vec::with_capacity(items.len());
        let mut namings = Vec::with_capacity(items.len());
        let mut keys = EXPECTATIONS.to_vec();
        keys.push("name");
        for item in items {
            let at = self.r.head(item);
            let Some(fields) = self.r.fields(
                item,
                at,
                "an expectation",
                "an expectation such as `- steady-state: after`",
                &keys,
            ) else {
                kinds.push(None);
                namings.push(Naming { explicit: None, generated: None });
                continue;
            };
            let explicit = self.explicit_name(&fields);
            let kind = match fields.present(EXPECTATIONS).as_slice() {
                [] => {
                    self.r.error(at, "missing check in expectation", "no check").help(format!(
                        "add one of {}",
                        suggest::list(EXPECTATIONS.iter().copied())
                    ));
                    None
                }
                [(kind, entry)] => self.expectation(
                    kind,
                    &entry.value,
                    entry.key.span,
                    services,
                    steps,
                    has_steady,
                ),
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
            .map(|(kind, name)| Some(Expectation { name: name?, kind: kind? }))
            .collect()
    }

    pub(super) fn expectation(
        &mut self,
        kind: &str,
        node: &Node,
        key: Span,
        services: &Services,
        steps: &StepTable,
        has_steady: Option<bool>,
    ) -> Option<ExpectationKind> {
        match kind {
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
            "probe-passed" => {
                let step = self.step_ref(node, steps)?;
                if steps.names.get(&step) == Some(&Some(false)) {
                    self.r
                        .error(
                            node.span,
                            format!("step `{step}` is not a probe step"),
                            "not a probe",
                        )
                        .help("`probe-passed` names a step with `probe:`");
                    return None;
                }
                Some(ExpectationKind::ProbePassed { step })
            }
            _ => {
                let keys: &[&str] = if kind == "healthy-within" {
                    &["service", "after", "within"]
                } else {
                    &["service", "step"]
                };
                let fields = self.r.fields(
                    node,
                    key,
                    format!("`{kind}`"),
                    "a mapping with `service`",
                    keys,
                )?;
                let service = self.r.require(&fields, "service").and_then(|n| {
                    let name = self.r.text(n, "a service name")?;
                    let info = self.known_service(services, &name, n.span)?;
                    if !info.has_health {
                        self.r
                            .error(n.span, format!("`{name}` has no health check"), "no `health`")
                            .help(format!("`{kind}` observes health; add `health:` to `{name}`"));
                        return None;
                    }
                    Some(name)
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
                let (service, step) = (service?, step?);
                Some(if kind == "healthy-throughout" {
                    ExpectationKind::HealthyThroughout { service, step }
                } else {
                    ExpectationKind::UnhealthyDuring { service, step }
                })
            }
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
        ExpectationKind::UnhealthyDuring { service, step } => {
            format!("unhealthy-during {service} during \"{step}\"")
        }
        ExpectationKind::ProbePassed { step } => format!("probe-passed \"{step}\""),
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
    }
}
