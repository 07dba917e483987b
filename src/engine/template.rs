//! Rendering `{{ ... }}` references in a service's environment once the run's names are known.

use std::collections::{BTreeMap, HashMap};

use crate::scenario::model::{Field, Reference, Scenario, Service, TemplatePart};

/// Where the harness's own listeners (fault-proxy links, notification sinks) are reachable from
/// the run's services: the backend's harness host (`host.docker.internal` on Docker) and these
/// ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The host name services reach the harness by (`RunScope::harness_host`).
    pub harness_host: String,
    /// Link name → port of its proxy on the run network's gateway.
    pub links: HashMap<String, u16>,
    /// Sink name → port on the run network's gateway.
    pub sinks: HashMap<String, u16>,
}

/// The environment of `service` with every reference resolved. Containers reach each other by
/// service name on the run's network, so `host` is the service name and `port` the container port;
/// links and sinks are the harness's listeners in `endpoints`.
pub fn render_env(
    scenario: &Scenario,
    service: &Service,
    run_id: &str,
    endpoints: &Endpoints,
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
                        value.push_str(&resolve(scenario, reference, run_id, endpoints))
                    }
                }
            }
            (key.clone(), value)
        })
        .collect()
}

fn resolve(
    scenario: &Scenario,
    reference: &Reference,
    run_id: &str,
    endpoints: &Endpoints,
) -> String {
    let harness = |port: Option<&u16>, field: Field| {
        // Validation guarantees the name; a missing port means the listener is not up (yet).
        let port = port.copied().unwrap_or_default();
        match field {
            Field::Host => endpoints.harness_host.clone(),
            Field::Port => port.to_string(),
            Field::Addr => format!("{}:{port}", endpoints.harness_host),
            Field::Url => format!("http://{}:{port}", endpoints.harness_host),
        }
    };
    let first_port = |name: &str| {
        scenario.stack.services.get(name).and_then(|s| s.ports.first()).copied().unwrap_or_default()
    };
    match reference {
        Reference::ServiceHost(name) => name.clone(),
        Reference::ServicePort(name) => first_port(name).to_string(),
        Reference::ServiceAddr(name) => format!("{name}:{}", first_port(name)),
        Reference::RunId => run_id.to_string(),
        Reference::Link(name, field) => harness(endpoints.links.get(name), *field),
        Reference::Sink(name, field) => harness(endpoints.sinks.get(name), *field),
    }
}
