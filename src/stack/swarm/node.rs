//! Node-level faults: a swarm node's availability (`active`, `pause`, `drain`), found and set
//! through the manager. What a drain does to the run's tasks is the scope's business
//! (`scope.rs`); this file only reads and writes the node.

use testcontainers::bollard;
use testcontainers::bollard::models::NodeSpecAvailabilityEnum;
use testcontainers::bollard::query_parameters::UpdateNodeOptionsBuilder;

use super::failed;
use crate::backend::{BackendError, NodeTarget};

/// The node `node` names (hostname or id), or the one this engine is (the manager `DOCKER_HOST`
/// names), with its availability.
pub async fn find_node(
    client: &bollard::Docker,
    node: Option<&str>,
) -> Result<NodeTarget, BackendError> {
    let id = match node {
        Some(node) => node.to_owned(),
        None => {
            let info = client.info().await.map_err(failed("read the engine's info", "-"))?;
            info.swarm.and_then(|swarm| swarm.node_id).unwrap_or_default()
        }
    };
    let found = client.inspect_node(&id).await.map_err(failed("inspect node", &id))?;
    let spec = found.spec.unwrap_or_default();
    Ok(NodeTarget {
        id: found.id.unwrap_or(id),
        name: found.description.and_then(|d| d.hostname).unwrap_or_default(),
        availability: spec.availability.unwrap_or(NodeSpecAvailabilityEnum::ACTIVE).to_string(),
    })
}

/// Set node `id`'s availability (`active`, `pause`, `drain`); the rest of its spec is kept.
pub async fn set_availability(
    client: &bollard::Docker,
    id: &str,
    availability: &str,
) -> Result<(), bollard::errors::Error> {
    let wanted = match availability {
        "drain" => NodeSpecAvailabilityEnum::DRAIN,
        "pause" => NodeSpecAvailabilityEnum::PAUSE,
        _ => NodeSpecAvailabilityEnum::ACTIVE,
    };
    let node = client.inspect_node(id).await?;
    let version = node.version.and_then(|v| v.index).unwrap_or_default();
    let mut spec = node.spec.unwrap_or_default();
    spec.availability = Some(wanted);
    let options =
        UpdateNodeOptionsBuilder::new().version(i64::try_from(version).unwrap_or(i64::MAX)).build();
    client.update_node(id, spec, options).await
}
