//! The sweep: find containers, networks and volumes labelled `firedrill.run` and remove those the scope
//! selects, judging each object by its own labels (every object of a run carries the same ones).
//!
//! An owner is alive when `/proc/PID/stat` on this machine shows that pid with that start time:
//! a harness on another machine sharing the engine (`DOCKER_HOST=tcp://...`) would look dead.

use std::collections::HashMap;

use futures_util::future::join_all;
use testcontainers::bollard;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
};

use super::error::docker_error;
use super::remove::{remove_container, remove_network};
use super::{StackError, SweepReport, SweepScope, labels};
use crate::owner::owner_alive;

/// Remove what `scope` selects among runs whose id passes `only`. Tries everything; returns the
/// first error.
pub(crate) async fn sweep(
    client: &bollard::Docker,
    scope: &SweepScope,
    only: &(dyn Fn(&str) -> bool + Sync),
) -> Result<SweepReport, StackError> {
    let filters = HashMap::from([("label", vec![labels::RUN.to_owned()])]);
    let containers = client
        .list_containers(Some(
            ListContainersOptionsBuilder::new().all(true).filters(&filters).build(),
        ))
        .await
        .map_err(docker_error("list containers", "-"))?;
    let networks = client
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(docker_error("list networks", "-"))?;

    let selected = |object_labels: Option<&HashMap<String, String>>| {
        object_labels.is_some_and(|object_labels| {
            selects(scope, object_labels) && {
                object_labels.get(labels::RUN).is_some_and(|run| only(run))
            }
        })
    };

    let doomed: Vec<(String, String, Option<String>)> = containers
        .iter()
        .filter(|container| selected(container.labels.as_ref()))
        .filter_map(|container| {
            let id = container.id.clone()?;
            let run = container.labels.as_ref().and_then(|l| l.get(labels::RUN)).cloned();
            let name = container
                .names
                .as_ref()
                .and_then(|names| names.first())
                .map(|name| name.trim_start_matches('/').to_owned())
                .unwrap_or_else(|| id.clone());
            Some((id, name, run))
        })
        .collect();
    // Force removal kills paused containers too (measured on Docker 20.10, cgroup v1).
    let results =
        join_all(doomed.iter().map(|(id, _, _)| remove_container(client, id, None))).await;

    let mut report = SweepReport::default();
    let mut first_error: Option<StackError> = None;
    for ((_, name, run), result) in doomed.into_iter().zip(results) {
        match result {
            Ok(()) => {
                // A `clock-skew` run's offset folders on the host (bind-mounted into its skewed
                // containers, which are gone now); a SIGKILL before teardown leaves them.
                if let Some(run) = run {
                    super::clockskew::remove_run_dir(&run);
                }
                report.containers.push(name.clone());
            }
            Err(error) => {
                first_error.get_or_insert(StackError::Docker {
                    operation: "remove a leftover container",
                    service: name,
                    source: error,
                });
            }
        }
    }
    for network in networks.iter().filter(|network| selected(network.labels.as_ref())) {
        let (Some(id), name) = (network.id.as_deref(), network.name.clone().unwrap_or_default())
        else {
            continue;
        };
        match remove_network(client, id).await {
            Ok(()) => report.networks.push(name),
            Err(error) => {
                first_error.get_or_insert(StackError::Docker {
                    operation: "remove a leftover network",
                    service: "-".to_owned(),
                    source: error,
                });
            }
        }
    }
    // Volumes last: a volume in use by a container cannot go.
    let volumes =
        super::volume::labelled_volumes(client).await.map_err(docker_error("list volumes", "-"))?;
    for (name, volume_labels) in volumes {
        if !selected(Some(&volume_labels)) {
            continue;
        }
        match super::volume::remove_volume(client, &name).await {
            Ok(()) => report.volumes.push(name),
            Err(error) => {
                first_error.get_or_insert(StackError::Docker {
                    operation: "remove a leftover volume",
                    service: "-".to_owned(),
                    source: error,
                });
            }
        }
    }
    report.volumes.sort();
    report.containers.sort();
    report.networks.sort();
    match first_error {
        Some(error) => Err(error),
        None => Ok(report),
    }
}

/// Whether the scope selects an object with these labels.
fn selects(scope: &SweepScope, object_labels: &HashMap<String, String>) -> bool {
    let owner_dead = || !owner_alive(object_labels.get(labels::OWNER).map_or("", String::as_str));
    let kept = object_labels.get(labels::KEEP).is_some_and(|keep| keep == "true");
    match scope {
        SweepScope::Dead => !kept && owner_dead(),
        SweepScope::Run(run) => object_labels.get(labels::RUN) == Some(run),
        SweepScope::AllButLive => owner_dead(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::current_owner;

    fn object(run: &str, owner: &str, keep: bool) -> HashMap<String, String> {
        HashMap::from([
            (labels::RUN.to_owned(), run.to_owned()),
            (labels::OWNER.to_owned(), owner.to_owned()),
            (labels::KEEP.to_owned(), keep.to_string()),
        ])
    }

    #[test]
    fn scopes_select_by_owner_keep_and_run() {
        let live = object("fd-live", current_owner(), false);
        let dead = object("fd-dead", "999999999:1", false);
        let kept = object("fd-kept", "999999999:1", true);
        let live_kept = object("fd-livekept", current_owner(), true);

        assert!(!selects(&SweepScope::Dead, &live));
        assert!(selects(&SweepScope::Dead, &dead));
        assert!(!selects(&SweepScope::Dead, &kept));

        assert!(!selects(&SweepScope::AllButLive, &live));
        assert!(selects(&SweepScope::AllButLive, &dead));
        assert!(selects(&SweepScope::AllButLive, &kept));
        assert!(!selects(&SweepScope::AllButLive, &live_kept));

        assert!(selects(&SweepScope::Run("fd-live".to_owned()), &live));
        assert!(!selects(&SweepScope::Run("fd-live".to_owned()), &dead));
    }
}
