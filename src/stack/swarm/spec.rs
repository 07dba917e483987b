//! What a firedrill key becomes in Swarm: one Swarm service per key (`api`, `api.2`, `api.green`,
//! `api.migrate`), one replica each, built here as a `ServiceSpec` from the scenario's service.
//! Pure: no Docker calls, unit-tested.
//!
//! Why one Swarm service per key and not one per firedrill service with N replicas: the engine
//! replaces, drains and admits replicas one key at a time across the [`RunScope`] boundary
//! (`start_replica`, `drain`, `admit`); a Swarm service's replicas (its task slots) cannot be
//! given different images or taken out of rotation one by one. Each key's replacement still goes
//! through Swarm's own update machinery (`update_config`, its task states, its rollback).
//!
//! [`RunScope`]: crate::backend::RunScope

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use testcontainers::bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Mount, MountTmpfsOptions, MountType,
    MountVolumeOptions, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

use crate::scenario::model::{HealthKind, MountSource, Service};
use crate::stack::volume::volume_name;
use crate::stack::{HARNESS_HOST, labels};

/// Label on a swarm that firedrill initialised (so only firedrill ever leaves it).
pub const SWARM_LABEL: &str = "firedrill.swarm";

/// How long Swarm watches a replaced task before it counts the update as done
/// (`update_config.monitor`).
pub(super) const UPDATE_MONITOR: Duration = Duration::from_secs(2);

/// Swarm's name of key `key` in run `run_id`: `RUNID-KEY` with dots as dashes (Swarm service
/// names are single DNS labels: no dots, at most 63 characters).
pub fn swarm_name(run_id: &str, key: &str) -> String {
    let name: String = format!("{run_id}-{key}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    name.chars().take(63).collect()
}

/// What a key's Swarm service is made of, beyond the scenario's service.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// The run's labels (run, scenario, owner, keep).
    pub run_labels: &'a HashMap<String, String>,
    /// The key (`api`, `api.2`).
    pub key: &'a str,
    /// The run's overlay network id.
    pub network: &'a str,
    /// The names the key answers to on the overlay (dnsrr: each resolves to the task's address).
    pub aliases: Vec<String>,
    /// Where the harness listens, as seen from the tasks (`host.docker.internal`).
    pub harness: Option<IpAddr>,
    /// Placement constraints (`node.role == manager`, `node.hostname == …`).
    pub constraints: Vec<String>,
}

/// The Swarm service spec of one key.
pub fn service_spec(
    run_id: &str,
    service: &Service,
    env: &BTreeMap<String, String>,
    place: &Placement<'_>,
) -> ServiceSpec {
    let settings = &service.container;
    // Compose labels first: firedrill's own labels win a clash (the sweep relies on them).
    let mut labels: HashMap<String, String> =
        settings.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.extend(place.run_labels.clone());
    labels.insert(labels::SERVICE.to_owned(), place.key.to_owned());
    let health_check = service.health.as_ref().and_then(|health| match &health.kind {
        // Swarm runs the same command itself: a task counts as started only once it passes, so
        // Swarm's update waits for it. Generous retries: firedrill's own monitor judges health;
        // Swarm must not kill a task that a fault made slow.
        HealthKind::Exec { command } => Some(HealthConfig {
            test: Some([vec!["CMD".to_owned()], command.clone()].concat()),
            interval: Some(nanos(health.interval.max(Duration::from_millis(100)))),
            timeout: Some(nanos(health.timeout)),
            retries: Some(1000),
            start_period: Some(nanos(service.startup_timeout)),
            start_interval: None,
        }),
        // HTTP and TCP checks come from the harness through the published port (images need
        // not carry a client); log checks have no Docker equivalent.
        _ => None,
    });
    let container_spec = TaskSpecContainerSpec {
        image: Some(service.image.reference().to_owned()),
        labels: Some(labels.clone()),
        command: settings.entrypoint.clone(),
        args: service.command.clone(),
        env: Some(env.iter().map(|(key, value)| format!("{key}={value}")).collect()),
        dir: settings.working_dir.clone(),
        user: settings.user.clone(),
        stop_signal: settings.stop_signal.clone(),
        stop_grace_period: settings.stop_grace_period.map(nanos),
        health_check,
        hosts: place.harness.map(|ip| vec![format!("{ip} {HARNESS_HOST}")]),
        mounts: Some(mounts(run_id, service, place.run_labels)),
        ..Default::default()
    };
    let ports = service
        .ports
        .iter()
        .map(|port| EndpointPortConfig {
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            target_port: Some(i64::from(*port)),
            // No published port: the engine picks a free one on the node.
            published_port: None,
            // The routing mesh (ingress) does not work everywhere; host mode binds on the node
            // the task runs on. Swarm offers no host IP for it (it binds 0.0.0.0 and ::).
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            name: None,
        })
        .collect();
    ServiceSpec {
        name: Some(swarm_name(run_id, place.key)),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container_spec),
            // Swarm must not restart a task behind the rehearsal's back: a killed service stays
            // down until a step starts it, as on a single engine.
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            placement: (!place.constraints.is_empty()).then(|| {
                testcontainers::bollard::models::TaskSpecPlacement {
                    constraints: Some(place.constraints.clone()),
                    ..Default::default()
                }
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(place.network.to_owned()),
                aliases: Some(place.aliases.clone()),
                driver_opts: None,
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        update_config: Some(update_config()),
        // VIP needs the routing mesh's virtual IPs; DNS round robin answers with task addresses.
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: Some(ports),
        }),
        ..Default::default()
    }
}

/// The service's `volumes` and `tmpfs` as Swarm mounts. A named volume is the run's
/// `firedrill-RUNID-NAME` with the run's labels in its `VolumeOptions`, so whichever node runs
/// the task creates it labelled (and the sweep finds it there); a bind mount names a path on
/// the node the task runs on. `tmpfs` options other than `size` and `mode` are refused by
/// [`tmpfs_unsupported`] before the spec is built.
pub fn mounts(run_id: &str, service: &Service, run_labels: &HashMap<String, String>) -> Vec<Mount> {
    let settings = &service.container;
    let mut mounts: Vec<Mount> = settings
        .mounts
        .iter()
        .map(|mount| {
            let (typ, source, volume_options) = match &mount.source {
                MountSource::Volume(name) => (
                    MountType::VOLUME,
                    Some(volume_name(run_id, name)),
                    Some(MountVolumeOptions {
                        labels: Some(run_labels.clone()),
                        ..Default::default()
                    }),
                ),
                MountSource::Anonymous => (MountType::VOLUME, None, None),
                MountSource::Bind(path) => {
                    (MountType::BIND, Some(path.display().to_string()), None)
                }
            };
            Mount {
                target: Some(mount.target.clone()),
                source,
                typ: Some(typ),
                read_only: Some(mount.read_only),
                volume_options,
                ..Default::default()
            }
        })
        .collect();
    for entry in &settings.tmpfs {
        let (target, options) = entry.split_once(':').unwrap_or((entry, ""));
        let mut tmpfs = MountTmpfsOptions::default();
        for option in options.split(',').filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                Some(("size", size)) => tmpfs.size_bytes = parse_size(size),
                Some(("mode", mode)) => tmpfs.mode = i64::from_str_radix(mode, 8).ok(),
                _ => {}
            }
        }
        mounts.push(Mount {
            target: Some(target.to_owned()),
            typ: Some(MountType::TMPFS),
            tmpfs_options: Some(tmpfs),
            ..Default::default()
        });
    }
    mounts
}

/// The first `tmpfs` option Swarm's mounts cannot carry (only `size` and `mode` can), if any.
pub fn tmpfs_unsupported(service: &Service) -> Option<String> {
    service.container.tmpfs.iter().find_map(|entry| {
        let (_, options) = entry.split_once(':')?;
        options.split(',').filter(|o| !o.is_empty()).find_map(|option| {
            let supported = match option.split_once('=') {
                Some(("size", size)) => parse_size(size).is_some(),
                Some(("mode", mode)) => i64::from_str_radix(mode, 8).is_ok(),
                _ => false,
            };
            (!supported).then(|| option.to_owned())
        })
    })
}

/// `64m`, `1g`, `512k`, `1048576` as bytes.
fn parse_size(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    let (digits, scale) = match lower.strip_suffix(['k', 'm', 'g']) {
        Some(digits) => {
            let scale = match lower.chars().last() {
                Some('k') => 1 << 10,
                Some('m') => 1 << 20,
                _ => 1 << 30,
            };
            (digits, scale)
        }
        None => (lower.as_str(), 1),
    };
    digits.parse::<i64>().ok()?.checked_mul(scale)
}

/// How Swarm replaces a key's task: one at a time, the old one stopped first (its ports are
/// host-mode, so two tasks of a key cannot both bind them), watched for [`UPDATE_MONITOR`], and
/// paused on failure so firedrill's own rollback (or Swarm's, see the scope) decides what next.
pub fn update_config() -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: Some(1),
        delay: Some(0),
        failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::PAUSE),
        monitor: Some(nanos(UPDATE_MONITOR)),
        max_failure_ratio: Some(0.0),
        order: Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
    }
}

/// Whether two specs start the same task (the force-update counter aside).
pub fn same_task(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    let strip = |spec: &ServiceSpec| {
        let mut template = spec.task_template.clone().unwrap_or_default();
        template.force_update = None;
        template
    };
    strip(a) == strip(b)
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::{HealthCheck, ImageSource};

    fn service() -> Service {
        Service {
            name: "billing".to_owned(),
            image: ImageSource::Image("firedrill-demo/billing:1.0".to_owned()),
            env: Default::default(),
            command: Some(vec!["serve".to_owned()]),
            ports: vec![8080],
            health: Some(HealthCheck {
                kind: HealthKind::Exec { command: vec!["true".to_owned()] },
                interval: Duration::from_millis(250),
                timeout: Duration::from_secs(2),
            }),
            depends_on: Vec::new(),
            startup_timeout: Duration::from_secs(60),
            backup: None,
            restore: None,
            replicas: 1,
            pull: Default::default(),
            container: Default::default(),
        }
    }

    #[test]
    fn names_are_single_dns_labels() {
        assert_eq!(swarm_name("fd-1a2b3c4d", "billing.2"), "fd-1a2b3c4d-billing-2");
        assert_eq!(swarm_name("fd-1a2b3c4d", "a_b"), "fd-1a2b3c4d-a-b");
        assert_eq!(swarm_name("fd-1a2b3c4d", &"x".repeat(100)).len(), 63);
    }

    #[test]
    fn spec_is_dnsrr_host_published_labelled_and_never_restarted() {
        let run_labels = HashMap::from([(labels::RUN.to_owned(), "fd-1".to_owned())]);
        let env = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        let place = Placement {
            run_labels: &run_labels,
            key: "billing.2",
            network: "net",
            aliases: vec!["billing".to_owned(), "billing.2".to_owned()],
            harness: Some("172.18.0.1".parse().unwrap()),
            constraints: vec!["node.role == manager".to_owned()],
        };
        let spec = service_spec("fd-1", &service(), &env, &place);
        assert_eq!(spec.name.as_deref(), Some("fd-1-billing-2"));
        let labels = spec.labels.as_ref().unwrap();
        assert_eq!(labels[labels::RUN], "fd-1");
        assert_eq!(labels[labels::SERVICE], "billing.2");
        let endpoint = spec.endpoint_spec.as_ref().unwrap();
        assert_eq!(endpoint.mode, Some(EndpointSpecModeEnum::DNSRR));
        let port = &endpoint.ports.as_ref().unwrap()[0];
        assert_eq!(port.publish_mode, Some(EndpointPortConfigPublishModeEnum::HOST));
        assert_eq!(port.target_port, Some(8080));
        let task = spec.task_template.as_ref().unwrap();
        assert_eq!(
            task.restart_policy.as_ref().unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        let container = task.container_spec.as_ref().unwrap();
        assert_eq!(container.args, Some(vec!["serve".to_owned()]));
        assert_eq!(container.env, Some(vec!["A=1".to_owned()]));
        assert_eq!(container.hosts, Some(vec!["172.18.0.1 host.docker.internal".to_owned()]));
        assert_eq!(container.labels.as_ref().unwrap()[labels::SERVICE], "billing.2");
        let health = container.health_check.as_ref().unwrap();
        assert_eq!(health.test, Some(vec!["CMD".to_owned(), "true".to_owned()]));
        let networks = task.networks.as_ref().unwrap();
        assert_eq!(networks[0].aliases.as_ref().unwrap().len(), 2);
        assert_eq!(
            task.placement.as_ref().unwrap().constraints,
            Some(vec!["node.role == manager".to_owned()])
        );
    }

    #[test]
    fn volumes_binds_and_tmpfs_become_swarm_mounts() {
        use std::path::PathBuf;

        use crate::scenario::model::Mount as ScenarioMount;
        let mut service = service();
        service.container.mounts = vec![
            ScenarioMount {
                source: MountSource::Volume("data".to_owned()),
                target: "/data".to_owned(),
                read_only: false,
            },
            ScenarioMount {
                source: MountSource::Bind(PathBuf::from("/srv/conf")),
                target: "/etc/conf".to_owned(),
                read_only: true,
            },
            ScenarioMount {
                source: MountSource::Anonymous,
                target: "/cache".to_owned(),
                read_only: false,
            },
        ];
        service.container.tmpfs = vec!["/run".to_owned(), "/tmp:size=64m,mode=1777".to_owned()];
        let run_labels = HashMap::from([(labels::RUN.to_owned(), "fd-1".to_owned())]);
        let mounts = mounts("fd-1", &service, &run_labels);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
        assert_eq!(mounts[0].source.as_deref(), Some("firedrill-fd-1-data"));
        let volume_labels = mounts[0].volume_options.as_ref().unwrap().labels.as_ref().unwrap();
        assert_eq!(volume_labels[labels::RUN], "fd-1");
        assert_eq!(mounts[1].typ, Some(MountType::BIND));
        assert_eq!(mounts[1].read_only, Some(true));
        assert_eq!((mounts[2].typ, mounts[2].source.as_deref()), (Some(MountType::VOLUME), None));
        assert_eq!(mounts[3].typ, Some(MountType::TMPFS));
        let tmpfs = mounts[4].tmpfs_options.as_ref().unwrap();
        assert_eq!((mounts[4].target.as_deref(), tmpfs.size_bytes), (Some("/tmp"), Some(64 << 20)));
        assert_eq!(tmpfs.mode, Some(0o1777));
        assert_eq!(tmpfs_unsupported(&service), None);
        service.container.tmpfs = vec!["/tmp:noexec,size=1m".to_owned()];
        assert_eq!(tmpfs_unsupported(&service).as_deref(), Some("noexec"));
    }

    #[test]
    fn force_update_alone_is_the_same_task() {
        let run_labels = HashMap::new();
        let place = Placement {
            run_labels: &run_labels,
            key: "billing",
            network: "net",
            aliases: vec!["billing".to_owned()],
            harness: None,
            constraints: Vec::new(),
        };
        let a = service_spec("fd-1", &service(), &BTreeMap::new(), &place);
        let mut b = a.clone();
        b.task_template.as_mut().unwrap().force_update = Some(3);
        assert!(same_task(&a, &b));
        let mut other = service();
        other.image = ImageSource::Image("firedrill-demo/billing:2.0".to_owned());
        let c = service_spec("fd-1", &other, &BTreeMap::new(), &place);
        assert!(!same_task(&a, &c));
    }
}
