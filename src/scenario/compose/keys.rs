//! Every compose key firedrill knows, and what it does with it: reads it, ignores it with a
//! warning (it cannot change what a rehearsal shows), or refuses it with the reason. One table per
//! level, so the README's mapping table and the reader cannot drift apart (a test checks the
//! README names every key).

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::{Entry, Node, Value};

/// What firedrill does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Support {
    /// Read and mapped.
    Read,
    /// Accepted and ignored, with a warning giving this reason.
    Ignored(&'static str),
    /// Refused (an error), for this reason.
    Refused(&'static str),
}

use Support::{Ignored, Read, Refused};

const NAMESPACES: &str = "every service shares the run's own network and the default namespaces, \
                          so firedrill can reach it, cut its links and remove it";
const PRIVILEGE: &str = "firedrill runs services unprivileged, as they run for customers \
                         (and this Docker engine refuses privileged containers)";
const LIMITS: &str = "resource limits are not applied by firedrill yet; rehearse pressure with \
                      the `memory` and `cpu` steps, which set and restore limits";
const RESOLUTION: &str = "firedrill owns the containers' name resolution (service names and \
                          `host.docker.internal` on the run's network)";
const NOT_YET: &str = "firedrill does not pass this setting to Docker; remove it or ask for it";

/// Top-level keys.
pub(super) const TOP: &[(&str, Support)] = &[
    ("services", Read),
    ("volumes", Read),
    ("networks", Read),
    ("name", Read),
    (
        "version",
        Ignored("the compose format is read as the Compose Specification, whatever version says"),
    ),
    ("secrets", Refused("secrets are not supported; mount the file with a bind volume instead")),
    ("configs", Refused("configs are not supported; mount the file with a bind volume instead")),
    (
        "include",
        Refused("`include` is not supported; list the files under `stack.compose` instead"),
    ),
];

/// Keys of a service.
pub(super) const SERVICE: &[(&str, Support)] = &[
    ("image", Read),
    ("build", Read),
    ("command", Read),
    ("entrypoint", Read),
    ("environment", Read),
    ("env_file", Read),
    ("ports", Read),
    ("expose", Read),
    ("healthcheck", Read),
    ("depends_on", Read),
    ("deploy", Read),
    ("scale", Read),
    ("stop_signal", Read),
    ("stop_grace_period", Read),
    ("working_dir", Read),
    ("user", Read),
    ("labels", Read),
    ("volumes", Read),
    ("tmpfs", Read),
    ("networks", Read),
    ("profiles", Read),
    (
        "restart",
        Ignored(
            "firedrill's steps decide when a service starts again, so a crash stays visible as a crash",
        ),
    ),
    (
        "container_name",
        Ignored("firedrill names containers per run (`RUNID-SERVICE`) so that runs never clash"),
    ),
    ("hostname", Ignored("other services reach it by its service name on the run's network")),
    ("domainname", Ignored("other services reach it by its service name on the run's network")),
    ("links", Ignored("every service reaches every other by its name on the run's network")),
    (
        "logging",
        Ignored("firedrill reads container logs through Docker's API, whatever the driver"),
    ),
    ("tty", Ignored("firedrill never attaches a terminal")),
    ("stdin_open", Ignored("firedrill never attaches a terminal")),
    ("attach", Ignored("firedrill never attaches to a container's output")),
    ("pull_policy", Read),
    ("platform", Ignored("images run on this machine's platform")),
    ("mem_reservation", Ignored("a soft reservation changes nothing on one machine")),
    ("develop", Ignored("watch mode is for development, not rehearsals")),
    ("annotations", Ignored("annotations are not labels and firedrill does not read them")),
    ("network_mode", Refused(NAMESPACES)),
    ("pid", Refused(NAMESPACES)),
    ("ipc", Refused(NAMESPACES)),
    ("uts", Refused(NAMESPACES)),
    ("userns_mode", Refused(NAMESPACES)),
    ("cgroup", Refused(NAMESPACES)),
    ("cgroup_parent", Refused(NAMESPACES)),
    ("volumes_from", Refused("declare the volume at the top level and mount it in both services")),
    (
        "extends",
        Refused("`extends` is not supported; list an override file under `stack.compose` instead"),
    ),
    ("external_links", Refused("a rehearsal reaches only its own services")),
    ("privileged", Refused(PRIVILEGE)),
    ("cap_add", Refused(PRIVILEGE)),
    ("cap_drop", Refused(PRIVILEGE)),
    ("devices", Refused(PRIVILEGE)),
    ("device_cgroup_rules", Refused(PRIVILEGE)),
    ("security_opt", Refused(PRIVILEGE)),
    ("group_add", Refused(NOT_YET)),
    ("cpus", Refused(LIMITS)),
    ("cpu_shares", Refused(LIMITS)),
    ("cpu_quota", Refused(LIMITS)),
    ("cpu_period", Refused(LIMITS)),
    ("cpu_count", Refused(LIMITS)),
    ("cpu_percent", Refused(LIMITS)),
    ("cpuset", Refused(LIMITS)),
    ("cpu_rt_period", Refused(LIMITS)),
    ("cpu_rt_runtime", Refused(LIMITS)),
    ("mem_limit", Refused(LIMITS)),
    ("memswap_limit", Refused(LIMITS)),
    ("mem_swappiness", Refused(LIMITS)),
    ("pids_limit", Refused(LIMITS)),
    ("blkio_config", Refused(LIMITS)),
    ("oom_kill_disable", Refused(LIMITS)),
    ("oom_score_adj", Refused(LIMITS)),
    ("ulimits", Refused(NOT_YET)),
    ("shm_size", Refused(NOT_YET)),
    ("sysctls", Refused(NOT_YET)),
    ("init", Refused(NOT_YET)),
    ("read_only", Refused(NOT_YET)),
    ("runtime", Refused(NOT_YET)),
    ("isolation", Refused(NOT_YET)),
    ("storage_opt", Refused(NOT_YET)),
    ("mac_address", Refused(NOT_YET)),
    ("credential_spec", Refused(NOT_YET)),
    ("extra_hosts", Refused(RESOLUTION)),
    ("dns", Refused(RESOLUTION)),
    ("dns_opt", Refused(RESOLUTION)),
    ("dns_search", Refused(RESOLUTION)),
    ("secrets", Refused("secrets are not supported; mount the file with a bind volume instead")),
    ("configs", Refused("configs are not supported; mount the file with a bind volume instead")),
];

/// Keys of `build`.
pub(super) const BUILD: &[(&str, Support)] = &[
    ("context", Read),
    ("dockerfile", Read),
    ("args", Read),
    ("target", Read),
    ("cache_from", Ignored("the local builder's cache is used")),
    ("cache_to", Ignored("the local builder's cache is used")),
    (
        "no_cache",
        Ignored("firedrill rebuilds when the context changes and reuses the image otherwise"),
    ),
    ("pull", Ignored("base images come from the local store")),
    ("labels", Ignored("firedrill labels the image with its context fingerprint")),
    ("network", Refused(NOT_YET)),
    ("shm_size", Refused(NOT_YET)),
    ("extra_hosts", Refused(NOT_YET)),
    ("ssh", Refused(NOT_YET)),
    ("secrets", Refused(NOT_YET)),
    ("platforms", Refused(NOT_YET)),
    ("tags", Refused(NOT_YET)),
    ("isolation", Refused(NOT_YET)),
    ("privileged", Refused(PRIVILEGE)),
    ("dockerfile_inline", Refused("write the Dockerfile to a file in the context")),
    ("additional_contexts", Refused(NOT_YET)),
];

/// Keys of `healthcheck`.
pub(super) const HEALTHCHECK: &[(&str, Support)] = &[
    ("test", Read),
    ("interval", Read),
    ("timeout", Read),
    ("retries", Read),
    ("start_period", Read),
    ("disable", Read),
    (
        "start_interval",
        Ignored("it needs Docker API 1.44; firedrill checks at `interval` from the start"),
    ),
];

/// Keys of `deploy`.
pub(super) const DEPLOY: &[(&str, Support)] = &[
    ("replicas", Read),
    ("mode", Read),
    (
        "restart_policy",
        Ignored(
            "firedrill's steps decide when a service starts again, so a crash stays visible as a crash",
        ),
    ),
    ("update_config", Ignored("firedrill's `upgrade` steps say how a new version rolls out")),
    (
        "rollback_config",
        Ignored("firedrill's `upgrade` steps say how a failed version is rolled back"),
    ),
    ("placement", Ignored("a rehearsal runs on one machine")),
    ("labels", Ignored("they label a Swarm service, which a rehearsal does not create")),
    ("endpoint_mode", Ignored("replicas are reached by the service name in rotation")),
    ("resources", Refused(LIMITS)),
];

/// Keys of a `depends_on` entry in mapping form.
pub(super) const DEPENDENCY: &[(&str, Support)] = &[
    ("condition", Read),
    ("required", Read),
    ("restart", Ignored("firedrill does not restart dependents when a dependency restarts")),
];

/// Keys of a top-level `volumes` entry.
pub(super) const VOLUME: &[(&str, Support)] = &[
    ("driver", Read),
    ("external", Read),
    (
        "name",
        Ignored("firedrill names volumes per run (`firedrill-RUNID-NAME`) and removes them after"),
    ),
    ("labels", Ignored("firedrill labels the volume with the run")),
    ("driver_opts", Refused("only plain local volumes are created")),
];

/// Keys of a top-level `networks` entry.
pub(super) const NETWORK: &[(&str, Support)] = &[
    ("driver", Read),
    ("external", Read),
    ("name", Ignored("every service sits on the run's own network `firedrill-RUNID`")),
    ("labels", Ignored("firedrill labels the network with the run")),
    ("attachable", Ignored("the run's network is a plain bridge")),
    ("enable_ipv6", Ignored("the run's network is a plain IPv4 bridge")),
    ("internal", Refused("the harness must reach every service from the host")),
    ("ipam", Refused("the run's network gets its addresses from Docker")),
    ("driver_opts", Refused("the run's network is a plain bridge")),
];

/// Keys of a service's `networks` entry in mapping form.
pub(super) const SERVICE_NETWORK: &[(&str, Support)] = &[
    ("priority", Ignored("every service has one network")),
    ("aliases", Refused(RESOLUTION)),
    ("ipv4_address", Refused("the run's network gets its addresses from Docker")),
    ("ipv6_address", Refused("the run's network gets its addresses from Docker")),
    ("link_local_ips", Refused("the run's network gets its addresses from Docker")),
];

/// Keys of a `ports` entry in long form.
pub(super) const PORT: &[(&str, Support)] = &[
    ("target", Read),
    ("protocol", Read),
    ("published", Ignored("firedrill publishes every port on 127.0.0.1 with a random host port")),
    ("host_ip", Ignored("firedrill publishes every port on 127.0.0.1 with a random host port")),
    ("mode", Ignored("firedrill publishes every port on 127.0.0.1 with a random host port")),
    ("name", Ignored("ports are named by number in a scenario")),
    ("app_protocol", Ignored("ports are named by number in a scenario")),
];

/// Keys of a `volumes` entry in long form.
pub(super) const MOUNT: &[(&str, Support)] = &[
    ("type", Read),
    ("source", Read),
    ("target", Read),
    ("read_only", Read),
    ("bind", Ignored("a missing host folder is created, as Docker does")),
    ("volume", Ignored("volume options are Docker's defaults")),
    ("tmpfs", Ignored("tmpfs options are Docker's defaults")),
    ("consistency", Ignored("it matters only on Docker Desktop")),
];

/// The entries of a mapping whose keys firedrill reads, after warning about ignored keys and
/// reporting refused and unknown ones. Keys starting with `x-` are extension fields and skipped
/// silently, as compose does.
pub(super) fn sort_keys<'n>(
    node: &'n Node,
    table: &[(&str, Support)],
    context: &str,
    warn: &mut dyn FnMut(Span, String),
    error: &mut dyn FnMut(Span, String, String),
) -> IndexMap<&'n str, &'n Entry> {
    let known: HashMap<&str, Support> = table.iter().copied().collect();
    let mut read = IndexMap::new();
    let Value::Map(entries) = &node.value else { return read };
    for entry in entries {
        let Some(key) = entry.key.scalar().map(|s| s.text.as_str()) else {
            error(entry.key.span, format!("expected a key in {context}"), "not a key".to_owned());
            continue;
        };
        if key.starts_with("x-") {
            continue;
        }
        match known.get(key) {
            Some(Read) => {
                read.insert(key, entry);
            }
            Some(Ignored(why)) => {
                warn(entry.key.span, format!("`{key}` in {context} is ignored: {why}"))
            }
            Some(Refused(why)) => error(
                entry.key.span,
                format!("`{key}` in {context} is not supported by firedrill"),
                (*why).to_owned(),
            ),
            None => {
                let hint = match suggest::closest(key, table.iter().map(|(k, _)| *k)) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => "it is not a compose key firedrill knows".to_owned(),
                };
                error(entry.key.span, format!("unknown key `{key}` in {context}"), hint);
            }
        }
    }
    read
}

/// Every table, named, for the README check.
#[cfg(test)]
fn tables() -> Vec<(&'static str, &'static [(&'static str, Support)])> {
    vec![
        ("top level", TOP),
        ("service", SERVICE),
        ("build", BUILD),
        ("healthcheck", HEALTHCHECK),
        ("deploy", DEPLOY),
        ("depends_on", DEPENDENCY),
        ("volumes (top level)", VOLUME),
        ("networks (top level)", NETWORK),
        ("service networks", SERVICE_NETWORK),
        ("ports", PORT),
        ("service volumes", MOUNT),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_mapping_table_names_every_key() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("## Rehearsing your own stack").expect("the README section");
        let section = &readme[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
        for (table, keys) in tables() {
            for (key, _) in keys {
                assert!(
                    section.contains(&format!("`{key}`")) || section.contains(&format!(".{key}`")),
                    "the README's compose section does not name `{key}` ({table})"
                );
            }
        }
    }
}
