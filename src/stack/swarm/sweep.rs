//! The swarm half of the sweep: services, overlay networks, configs and secrets labelled
//! `firedrill.run`, selected like containers (dead owner, one run, everything but live runs);
//! then the single-engine sweep for anything else, then leaving a swarm firedrill initialised
//! once nothing is left on it.

use std::collections::HashMap;
use std::time::Duration;

use testcontainers::bollard;
use testcontainers::bollard::query_parameters::{
    ListConfigsOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListSecretsOptionsBuilder, ListServicesOptionsBuilder,
};

use super::failed;
use crate::backend::{BackendError, SweepReport, SweepScope};
use crate::clock;
use crate::owner::owner_alive;
use crate::stack::labels;
use crate::stack::remove::remove_network;

/// How long the sweep waits for Swarm to remove a deleted service's containers before it removes
/// the network they are attached to.
const CONTAINERS_GONE: Duration = Duration::from_secs(30);

/// Remove the swarm objects of the runs `scope` selects (no-op when the engine is in no swarm).
pub async fn sweep_swarm(
    client: &bollard::Docker,
    scope: &SweepScope,
) -> Result<SweepReport, BackendError> {
    let mut report = SweepReport::default();
    let (state, manager) = super::node_state(client).await?;
    if state != bollard::models::LocalNodeState::ACTIVE || !manager {
        return Ok(report);
    }
    let filters = HashMap::from([("label", vec![labels::RUN.to_owned()])]);
    let selected = |object: Option<&HashMap<String, String>>| {
        object.is_some_and(|object| selects(scope, object))
    };
    let mut runs = Vec::new();
    let mut first_error = None;
    let services = client
        .list_services(Some(ListServicesOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(failed("list services", "-"))?;
    for service in services {
        let spec = service.spec.unwrap_or_default();
        let labels = spec.labels.unwrap_or_default();
        if !selected(Some(&labels)) {
            continue;
        }
        let name = spec.name.unwrap_or_default();
        match client.delete_service(service.id.as_deref().unwrap_or(&name)).await {
            Ok(()) => report.containers.push(format!("service {name}")),
            Err(error) => {
                first_error.get_or_insert(failed("remove a leftover service", &name)(error));
            }
        }
        runs.extend(labels.get(labels::RUN).cloned());
    }
    for run in &runs {
        wait_containers_gone(client, run).await;
    }
    let networks = client
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(failed("list networks", "-"))?;
    for network in networks {
        if network.driver.as_deref() != Some("overlay") || !selected(network.labels.as_ref()) {
            continue;
        }
        let (Some(id), name) = (network.id.as_deref(), network.name.clone().unwrap_or_default())
        else {
            continue;
        };
        match remove_network(client, id).await {
            Ok(()) => report.networks.push(name),
            Err(error) => {
                first_error.get_or_insert(failed("remove a leftover network", &name)(error));
            }
        }
    }
    let configs = client
        .list_configs(Some(ListConfigsOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(failed("list configs", "-"))?;
    for config in configs {
        let spec = config.spec.unwrap_or_default();
        if !selected(spec.labels.as_ref()) {
            continue;
        }
        let name = spec.name.unwrap_or_default();
        if let Err(error) = client.delete_config(config.id.as_deref().unwrap_or(&name)).await {
            first_error.get_or_insert(failed("remove a leftover config", &name)(error));
        }
    }
    let secrets = client
        .list_secrets(Some(ListSecretsOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(failed("list secrets", "-"))?;
    for secret in secrets {
        let spec = secret.spec.unwrap_or_default();
        if !selected(spec.labels.as_ref()) {
            continue;
        }
        let name = spec.name.unwrap_or_default();
        if let Err(error) = client.delete_secret(secret.id.as_deref().unwrap_or(&name)).await {
            first_error.get_or_insert(failed("remove a leftover secret", &name)(error));
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(report),
    }
}

/// Wait (bounded) until no container of `run` is left: Swarm removes a deleted service's task
/// containers on its own, asynchronously, and the overlay cannot go before them.
pub(super) async fn wait_containers_gone(client: &bollard::Docker, run: &str) {
    let filters = HashMap::from([("label", vec![format!("{}={run}", labels::RUN)])]);
    let started = clock::instant_now();
    while clock::instant_now().duration_since(started) < CONTAINERS_GONE {
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        match client.list_containers(Some(options)).await {
            Ok(containers) if containers.is_empty() => return,
            Ok(_) => {}
            Err(_) => return,
        }
        clock::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the scope selects an object with these labels (as the container sweep does).
fn selects(scope: &SweepScope, object: &HashMap<String, String>) -> bool {
    let owner_dead = || !owner_alive(object.get(labels::OWNER).map_or("", String::as_str));
    let kept = object.get(labels::KEEP).is_some_and(|keep| keep == "true");
    match scope {
        SweepScope::Dead => !kept && owner_dead(),
        SweepScope::Run(run) => object.get(labels::RUN) == Some(run),
        SweepScope::AllButLive => owner_dead(),
    }
}
