//! Rendering `{{ ... }}` references in a service's environment once the run's names are known.

use std::collections::BTreeMap;

use crate::scenario::model::{Reference, Scenario, Service, TemplatePart};

/// The environment of `service` with every reference resolved. Containers reach each other by
/// service name on the run's network, so `host` is the service name and `port` the container port.
pub fn render_env(
    scenario: &Scenario,
    service: &Service,
    run_id: &str,
) -> BTreeMap<String, String> {
    service
        .env
        .iter()
        .map(|(key, template)| {
            let mut value = String::new();
            for part in &template.parts {
                match part {
                    TemplatePart::Literal(text) => value.push_str(text),
                    TemplatePart::Ref(reference) => {
                        value.push_str(&resolve(scenario, reference, run_id))
                    }
                }
            }
            (key.clone(), value)
        })
        .collect()
}

fn resolve(scenario: &Scenario, reference: &Reference, run_id: &str) -> String {
    let first_port = |name: &str| {
        scenario.stack.services.get(name).and_then(|s| s.ports.first()).copied().unwrap_or_default()
    };
    match reference {
        Reference::ServiceHost(name) => name.clone(),
        Reference::ServicePort(name) => first_port(name).to_string(),
        Reference::ServiceAddr(name) => format!("{name}:{}", first_port(name)),
        Reference::RunId => run_id.to_string(),
    }
}
