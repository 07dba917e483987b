//! Named volumes of a stack (compose `volumes:`): created per run as `firedrill-RUNID-NAME` with
//! the run's labels before the first container that mounts one, removed at teardown, by `Drop`
//! and by the sweep like containers and networks.
//!
//! Must not touch a volume it did not create: everything here selects by the `firedrill.run`
//! label or by the exact per-run name.

use std::collections::HashMap;

use testcontainers::bollard;
use testcontainers::bollard::errors::Error as BollardError;
use testcontainers::bollard::models::VolumeCreateRequest;
use testcontainers::bollard::query_parameters::{
    ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder,
};

use super::error::is_status;
use super::labels;
use crate::scenario::model::{Mount, MountSource};

/// The Docker name of a stack's named volume in one run.
pub fn volume_name(run_id: &str, volume: &str) -> String {
    format!("firedrill-{run_id}-{volume}")
}

/// A mount as a Docker bind string (`SOURCE:TARGET[:ro]`), or `None` for an anonymous volume
/// (those go to the container's `Volumes`).
pub(crate) fn bind_string(run_id: &str, mount: &Mount) -> Option<String> {
    let source = match &mount.source {
        MountSource::Volume(name) => volume_name(run_id, name),
        MountSource::Bind(path) => path.display().to_string(),
        MountSource::Anonymous => return None,
    };
    let mode = if mount.read_only { ":ro" } else { "" };
    Some(format!("{source}:{}{mode}", mount.target))
}

/// Create the named volume `volume` of the run, labelled like the run's other objects. Creating
/// one that exists (a second replica mounting it) is a no-op on Docker's side.
pub(crate) async fn ensure_volume(
    client: &bollard::Docker,
    run_id: &str,
    volume: &str,
    run_labels: HashMap<String, String>,
) -> Result<(), BollardError> {
    let request = VolumeCreateRequest {
        name: Some(volume_name(run_id, volume)),
        driver: Some("local".to_owned()),
        labels: Some(run_labels),
        ..Default::default()
    };
    client.create_volume(request).await.map(|_| ())
}

/// The names of the volumes labelled with `firedrill.run` (all runs), with their labels.
pub(crate) async fn labelled_volumes(
    client: &bollard::Docker,
) -> Result<Vec<(String, HashMap<String, String>)>, BollardError> {
    let filters = HashMap::from([("label", vec![labels::RUN.to_owned()])]);
    let listed = client
        .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build()))
        .await?;
    Ok(listed.volumes.unwrap_or_default().into_iter().map(|v| (v.name, v.labels)).collect())
}

/// Remove one volume; "already gone" counts as removed.
pub(crate) async fn remove_volume(
    client: &bollard::Docker,
    name: &str,
) -> Result<(), BollardError> {
    match client
        .remove_volume(name, Some(RemoveVolumeOptionsBuilder::new().force(true).build()))
        .await
    {
        Err(error) if !is_status(&error, 404) => Err(error),
        _ => Ok(()),
    }
}

/// Remove every volume of run `run_id` (after its containers are gone). Returns the errors.
pub(crate) async fn remove_run_volumes(
    client: &bollard::Docker,
    run_id: &str,
) -> Vec<BollardError> {
    let volumes = match labelled_volumes(client).await {
        Ok(volumes) => volumes,
        Err(error) => return vec![error],
    };
    let mut errors = Vec::new();
    for (name, volume_labels) in volumes {
        if volume_labels.get(labels::RUN).map(String::as_str) == Some(run_id)
            && let Err(error) = remove_volume(client, &name).await
        {
            errors.push(error);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn mounts_become_bind_strings() {
        let volume = Mount {
            source: MountSource::Volume("data".to_owned()),
            target: "/var/lib/data".to_owned(),
            read_only: false,
        };
        assert_eq!(
            bind_string("fd-1", &volume).as_deref(),
            Some("firedrill-fd-1-data:/var/lib/data")
        );
        let bind = Mount {
            source: MountSource::Bind(PathBuf::from("/srv/conf")),
            target: "/etc/conf".to_owned(),
            read_only: true,
        };
        assert_eq!(bind_string("fd-1", &bind).as_deref(), Some("/srv/conf:/etc/conf:ro"));
        let anonymous =
            Mount { source: MountSource::Anonymous, target: "/tmp/x".to_owned(), read_only: false };
        assert_eq!(bind_string("fd-1", &anonymous), None);
    }
}
