//! Whether the engine is in a swarm, joining one for a run, and leaving it exactly as found.
//!
//! firedrill initialises a single-node swarm only when the engine is in none, labelled
//! [`SWARM_LABEL`] so that firedrill never leaves a swarm it did not create. It leaves that swarm
//! once nothing of any run is on it any more (no service, no overlay network of a live run): a
//! second run that joined the first run's swarm keeps it alive, and whichever finishes last (or
//! the `firedrill gc` after a crash) leaves it.

use std::collections::HashMap;

use testcontainers::bollard;
use testcontainers::bollard::models::{LocalNodeState, SwarmInitRequest, SwarmSpec};
use testcontainers::bollard::query_parameters::{
    LeaveSwarmOptionsBuilder, ListNetworksOptionsBuilder,
};

use super::spec::SWARM_LABEL;
use super::{failed, swarm_error};
use crate::backend::BackendError;
use crate::owner::{current_owner, owner_alive};
use crate::stack::error::is_status;
use crate::stack::labels;

/// The address a swarm firedrill creates advertises and listens on: loopback only, so the swarm
/// is reachable from nowhere else (a multi-node swarm is set up by its operator, and firedrill
/// then uses it as found).
const LOOPBACK: &str = "127.0.0.1";

/// How the run found the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// It was a swarm manager already (the operator's swarm, or another run's).
    Found,
    /// It was in no swarm; this run initialised one.
    Initialised,
}

/// The engine's swarm state (`inactive`, `active`, …) and whether it is a manager.
pub async fn node_state(client: &bollard::Docker) -> Result<(LocalNodeState, bool), BackendError> {
    let info = client.info().await.map_err(failed("read the engine's info", "-"))?;
    let swarm = info.swarm.unwrap_or_default();
    Ok((
        swarm.local_node_state.unwrap_or(LocalNodeState::EMPTY),
        swarm.control_available == Some(true),
    ))
}

/// Make sure the engine is a swarm manager, initialising a single-node swarm if it is in none.
pub async fn ensure_swarm(client: &bollard::Docker) -> Result<Origin, BackendError> {
    let (state, manager) = node_state(client).await?;
    match state {
        LocalNodeState::ACTIVE if manager => return Ok(Origin::Found),
        LocalNodeState::ACTIVE => return Err(not_manager()),
        LocalNodeState::INACTIVE => {}
        other => {
            return Err(swarm_error(
                format!("the engine's swarm state is `{other}`"),
                "fix the node (`docker info`), or leave its swarm, and run again",
            ));
        }
    }
    let request = SwarmInitRequest {
        listen_addr: Some(format!("{LOOPBACK}:2377")),
        advertise_addr: Some(LOOPBACK.to_owned()),
        spec: Some(SwarmSpec {
            labels: Some(HashMap::from([
                (SWARM_LABEL.to_owned(), "initialised".to_owned()),
                (labels::OWNER.to_owned(), current_owner().to_owned()),
            ])),
            ..Default::default()
        }),
        ..Default::default()
    };
    match client.init_swarm(request).await {
        Ok(_) => Ok(Origin::Initialised),
        // Another run initialised it a moment ago: use it.
        Err(error) if is_status(&error, 503) => match node_state(client).await? {
            (LocalNodeState::ACTIVE, true) => Ok(Origin::Found),
            _ => Err(failed("initialise a swarm", "-")(error)),
        },
        Err(error) => Err(failed("initialise a swarm", "-")(error)),
    }
}

fn not_manager() -> BackendError {
    swarm_error(
        "the engine is a swarm worker, not a manager".to_owned(),
        "point DOCKER_HOST at a manager node of the swarm",
    )
}

/// Leave the swarm if firedrill initialised it and nothing is left on it: no service at all, no
/// overlay network of a live run other than `own_network` (the caller's own, which goes with the swarm).
/// Returns whether it left. Not in a swarm: nothing to do.
pub async fn leave_if_idle(
    client: &bollard::Docker,
    own_network: Option<&str>,
) -> Result<bool, BackendError> {
    let swarm = match client.inspect_swarm().await {
        Ok(swarm) => swarm,
        // 503: not a swarm manager (or no swarm at all).
        Err(error) if is_status(&error, 503) || is_status(&error, 406) => return Ok(false),
        Err(error) => return Err(failed("inspect the swarm", "-")(error)),
    };
    let ours = swarm
        .spec
        .and_then(|spec| spec.labels)
        .is_some_and(|labels| labels.contains_key(SWARM_LABEL));
    if !ours {
        return Ok(false);
    }
    let services = client.list_services(None).await.map_err(failed("list services", "-"))?;
    if !services.is_empty() {
        return Ok(false);
    }
    let filters = HashMap::from([("label", vec![labels::RUN.to_owned()])]);
    let networks = client
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(failed("list networks", "-"))?;
    let live_overlay = networks.iter().any(|network| {
        network.driver.as_deref() == Some("overlay")
            && (own_network.is_none() || network.id.as_deref() != own_network)
            && network
                .labels
                .as_ref()
                .and_then(|labels| labels.get(labels::OWNER))
                .is_some_and(|owner| owner_alive(owner))
    });
    if live_overlay {
        return Ok(false);
    }
    match client.leave_swarm(Some(LeaveSwarmOptionsBuilder::new().force(true).build())).await {
        Ok(()) => Ok(true),
        Err(error) if is_status(&error, 503) => Ok(false),
        Err(error) => Err(failed("leave the swarm", "-")(error)),
    }
}
