//! Removing containers and networks: shared by [`StackHandle::shutdown`](super::StackHandle),
//! its `Drop` safety net and the sweep. "Already gone" counts as removed, so every caller is
//! idempotent.

use std::time::Duration;

use futures_util::future::join_all;
use testcontainers::bollard;
use testcontainers::bollard::errors::Error as BollardError;
use testcontainers::bollard::query_parameters::{
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};

use super::error::is_status;
use crate::clock;

/// How long `Drop` waits for its removal thread before giving up (and leaving the rest to the
/// sweep).
const DROP_WAIT: Duration = Duration::from_secs(30);

/// Whether Docker said the object is already gone (or going).
fn gone(error: &BollardError) -> bool {
    is_status(error, 404)
        || matches!(error, BollardError::DockerResponseServerError { status_code: 409, message }
            if message.contains("already in progress"))
}

/// Remove a container. With a grace period, stop it first (SIGTERM, then SIGKILL when the grace
/// runs out); a paused container is thawed first so it can see the SIGTERM. Without one, force
/// removal kills it at once, paused or not.
pub(crate) async fn remove_container(
    client: &bollard::Docker,
    id: &str,
    grace: Option<Duration>,
) -> Result<(), BollardError> {
    if let Some(grace) = grace {
        let paused = match client.inspect_container(id, None).await {
            Ok(inspect) => inspect.state.and_then(|s| s.paused).unwrap_or(false),
            Err(error) if gone(&error) => return Ok(()),
            Err(error) => return Err(error),
        };
        if paused {
            // A failure here only costs the grace period: stop still works on a paused container.
            let _ = client.unpause_container(id).await;
        }
        let seconds = i32::try_from(grace.as_secs().max(1)).unwrap_or(i32::MAX);
        match client
            .stop_container(id, Some(StopContainerOptionsBuilder::new().t(seconds).build()))
            .await
        {
            Ok(()) => {}
            Err(error) if gone(&error) => return Ok(()),
            // Removal below forces it anyway.
            Err(_) => {}
        }
    }
    let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match client.remove_container(id, Some(options)).await {
        Err(error) if !gone(&error) => Err(error),
        _ => Ok(()),
    }
}

/// Remove a network. Docker may still be releasing the endpoint of a container removed an
/// instant ago, so "active endpoints" is retried briefly.
pub(crate) async fn remove_network(client: &bollard::Docker, id: &str) -> Result<(), BollardError> {
    let mut attempts = 0;
    loop {
        match client.remove_network(id).await {
            Ok(()) => return Ok(()),
            Err(error) if gone(&error) => return Ok(()),
            Err(BollardError::DockerResponseServerError { message, .. })
                if message.contains("active endpoints") && attempts < 20 =>
            {
                attempts += 1;
                clock::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Remove containers (all at once), then the network; the first error after trying everything.
pub(crate) async fn remove_all(
    client: &bollard::Docker,
    containers: &[String],
    network: Option<&str>,
    grace: Option<Duration>,
) -> Vec<(usize, BollardError)> {
    let results = join_all(containers.iter().map(|id| remove_container(client, id, grace))).await;
    let mut errors: Vec<(usize, BollardError)> = results
        .into_iter()
        .enumerate()
        .filter_map(|(index, result)| result.err().map(|error| (index, error)))
        .collect();
    if let Some(network) = network {
        if let Err(error) = remove_network(client, network).await {
            errors.push((containers.len(), error));
        }
    }
    errors
}

/// Force-remove from synchronous code (a `Drop`), whatever runtime the caller is in or whether
/// it is shutting down: a dedicated thread with its own runtime and its own client does the work,
/// and the caller waits for it (bounded by [`DROP_WAIT`]).
pub(crate) fn remove_all_blocking(
    endpoint: String,
    containers: Vec<String>,
    network: Option<String>,
    volumes_of_run: Option<String>,
) {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("firedrill-stack-drop".to_owned()).spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        // A client of its own: the caller's pooled connections belong to the caller's runtime.
        let Ok(client) = bollard::Docker::connect_with_host(&endpoint) else { return };
        runtime.block_on(async {
            let errors = remove_all(&client, &containers, network.as_deref(), None).await;
            for (_, error) in errors {
                tracing::warn!(%error, "removing a dropped stack failed; `firedrill gc` removes leftovers");
            }
            if let Some(run_id) = &volumes_of_run {
                for error in super::volume::remove_run_volumes(&client, run_id).await {
                    tracing::warn!(%error, "removing a dropped stack's volume failed; `firedrill gc` removes leftovers");
                }
            }
        });
        let _ = done_tx.send(());
    });
    if spawned.is_ok() {
        let _ = done_rx.recv_timeout(DROP_WAIT);
    }
}
