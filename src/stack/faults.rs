//! Applying and reverting faults on one container through Docker, and recovering the faults a
//! dead run left applied (from its ledger).
//!
//! Docker 20.10 (API 1.41) quirks this works around: `update` treats 0 as "leave unchanged" and
//! rejects -1 for memory, so "no memory limit" cannot be restored as such; it is restored as a
//! limit of the host's whole memory (which the container can never exceed: the same behaviour),
//! with memory+swap twice that. A CPU quota of -1 is accepted and means "no quota".

use std::path::Path;

use testcontainers::bollard::errors::Error as BollardError;
use testcontainers::bollard::models::{
    ContainerUpdateBody, EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest,
};

use super::{Docker, SweepScope, owner_alive};
use crate::faults::{LedgerRecord, Recovered, RecoveryOutcome, Undo, read_ledger};
use crate::scenario::model::FaultKind;

/// CFS period used for `cpu` faults, µs (the kernel's default).
const CPU_PERIOD: i64 = 100_000;

/// A fault could not be applied or reverted.
#[derive(Debug, thiserror::Error)]
#[error("failed to {operation} `{target}`: {source}")]
pub struct FaultError {
    /// What was being done.
    pub operation: &'static str,
    /// Container name or id.
    pub target: String,
    /// Docker's answer.
    #[source]
    pub source: BollardError,
}

fn gone(error: &BollardError) -> bool {
    matches!(error, BollardError::DockerResponseServerError { status_code: 404, .. })
}

fn failed(operation: &'static str, target: &str) -> impl FnOnce(BollardError) -> FaultError {
    let target = target.to_owned();
    move |source| FaultError { operation, target, source }
}

/// What restores `container` after `kind`: its current limits, or its aliases on `network`.
/// Call before [`apply`], and write the answer to the ledger in between.
pub async fn capture(
    docker: &Docker,
    kind: &FaultKind,
    container: &str,
    network: &str,
) -> Result<Undo, FaultError> {
    let inspect = docker
        .client()
        .inspect_container(container, None)
        .await
        .map_err(failed("inspect", container))?;
    let host = inspect.host_config.unwrap_or_default();
    Ok(match kind {
        FaultKind::Memory { .. } => Undo::Memory {
            memory: host.memory.unwrap_or(0),
            memory_swap: host.memory_swap.unwrap_or(0),
        },
        FaultKind::Cpu { .. } => Undo::Cpu {
            cpu_quota: host.cpu_quota.unwrap_or(0),
            cpu_period: host.cpu_period.unwrap_or(0),
        },
        FaultKind::Partition => {
            let id = inspect.id.unwrap_or_default();
            let short = &id[..id.len().min(12)];
            let endpoints = inspect.network_settings.and_then(|s| s.networks).unwrap_or_default();
            let aliases = endpoints
                .values()
                .find(|endpoint| endpoint.network_id.as_deref() == Some(network))
                .and_then(|endpoint| endpoint.aliases.clone())
                .unwrap_or_default()
                .into_iter()
                // Docker adds the short id itself on every connect.
                .filter(|alias| alias != short)
                .collect();
            Undo::Reconnect { network: network.to_owned(), aliases }
        }
    })
}

/// Apply `kind` to `container`; returns what was done, for the journal.
pub async fn apply(
    docker: &Docker,
    kind: &FaultKind,
    container: &str,
    network: &str,
) -> Result<String, FaultError> {
    let client = docker.client();
    match kind {
        FaultKind::Memory { limit_bytes } => {
            let limit = i64::try_from(*limit_bytes).unwrap_or(i64::MAX);
            let body = ContainerUpdateBody {
                memory: Some(limit),
                memory_swap: Some(limit),
                ..Default::default()
            };
            client
                .update_container(container, body)
                .await
                .map_err(failed("limit memory of", container))?;
            Ok(format!("memory and memory+swap limited to {limit} bytes"))
        }
        FaultKind::Cpu { cores } => {
            let quota = ((cores * CPU_PERIOD as f64).round() as i64).max(1_000);
            let body = ContainerUpdateBody {
                cpu_quota: Some(quota),
                cpu_period: Some(CPU_PERIOD),
                ..Default::default()
            };
            client
                .update_container(container, body)
                .await
                .map_err(failed("throttle", container))?;
            Ok(format!("cpu quota {quota} µs per {CPU_PERIOD} µs ({cores} cores)"))
        }
        FaultKind::Partition => {
            let request =
                NetworkDisconnectRequest { container: container.to_owned(), force: Some(true) };
            client
                .disconnect_network(network, request)
                .await
                .map_err(failed("disconnect", container))?;
            Ok(format!("disconnected from network {}", &network[..network.len().min(12)]))
        }
    }
}

/// Undo a fault on `container`; returns what was done, for the journal.
pub async fn revert(docker: &Docker, container: &str, undo: &Undo) -> Result<String, FaultError> {
    let client = docker.client();
    match undo {
        Undo::Unpause => {
            client.unpause_container(container).await.map_err(failed("unpause", container))?;
            Ok("unpaused".to_owned())
        }
        Undo::Memory { memory, memory_swap } => {
            let (memory, swap, note) = if *memory > 0 {
                let swap = if *memory_swap > 0 { *memory_swap } else { 2 * memory };
                (*memory, swap, "")
            } else {
                let info =
                    client.info().await.map_err(failed("read the host memory for", container))?;
                let total = info.mem_total.unwrap_or(i64::MAX / 4);
                (total, 2 * total, " (no limit before: the host's memory)")
            };
            let body = ContainerUpdateBody {
                memory: Some(memory),
                memory_swap: Some(swap),
                ..Default::default()
            };
            client
                .update_container(container, body)
                .await
                .map_err(failed("reset memory of", container))?;
            Ok(format!("memory limit back to {memory} bytes{note}"))
        }
        Undo::Cpu { cpu_quota, cpu_period } => {
            let quota = if *cpu_quota > 0 { *cpu_quota } else { -1 };
            let period = if *cpu_period > 0 { *cpu_period } else { CPU_PERIOD };
            let body = ContainerUpdateBody {
                cpu_quota: Some(quota),
                cpu_period: Some(period),
                ..Default::default()
            };
            client
                .update_container(container, body)
                .await
                .map_err(failed("reset cpu of", container))?;
            Ok(if quota < 0 {
                "cpu quota removed".to_owned()
            } else {
                format!("cpu quota back to {quota} µs")
            })
        }
        Undo::Reconnect { network, aliases } => {
            let request = NetworkConnectRequest {
                container: container.to_owned(),
                endpoint_config: Some(EndpointSettings {
                    aliases: Some(aliases.clone()),
                    ..Default::default()
                }),
            };
            client
                .connect_network(network, request)
                .await
                .map_err(failed("reconnect", container))?;
            Ok(format!("reconnected with aliases {}", aliases.join(", ")))
        }
    }
}

/// Revert what the ledgers in `dir` of runs `scope` selects left applied (owner dead, or the one
/// run), newest fault first, then delete each ledger whose faults are all reverted or gone.
/// Ledgers of live runs are left alone. A missing folder means nothing to do.
pub async fn recover_ledgers(docker: &Docker, dir: &Path, scope: &SweepScope) -> Vec<Recovered> {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    paths.sort();
    let mut recovered = Vec::new();
    for path in paths {
        let Ok(records) = read_ledger(&path) else { continue };
        let Some(LedgerRecord::Run { run_id, owner }) = records.first() else { continue };
        let selected = match scope {
            SweepScope::Dead | SweepScope::AllButLive => !owner_alive(owner),
            SweepScope::Run(run) => run == run_id,
        };
        if !selected {
            continue;
        }
        let reverted: Vec<u64> = records
            .iter()
            .filter_map(|r| match r {
                LedgerRecord::Reverted { fault } => Some(*fault),
                _ => None,
            })
            .collect();
        let mut clean = true;
        for record in records.iter().rev() {
            let LedgerRecord::Applied { fault, service, container, name, undo } = record else {
                continue;
            };
            if reverted.contains(fault) {
                continue;
            }
            let outcome = recover_one(docker, container, undo).await;
            clean &= !matches!(outcome, RecoveryOutcome::Failed(_));
            recovered.push(Recovered {
                run_id: run_id.clone(),
                service: service.clone(),
                name: name.clone(),
                fault: undo.fault_kind(),
                outcome,
            });
        }
        if clean {
            let _ = fs_err::remove_file(&path);
        }
    }
    recovered
}

async fn recover_one(docker: &Docker, container: &str, undo: &Undo) -> RecoveryOutcome {
    let client = docker.client();
    let inspect = match client.inspect_container(container, None).await {
        Ok(inspect) => inspect,
        Err(error) if gone(&error) => return RecoveryOutcome::Gone,
        Err(error) => return RecoveryOutcome::Failed(error.to_string()),
    };
    match undo {
        Undo::Unpause if !inspect.state.and_then(|s| s.paused).unwrap_or(false) => {
            return RecoveryOutcome::Reverted("not paused any more".to_owned());
        }
        Undo::Reconnect { network, .. } => {
            let connected = inspect
                .network_settings
                .and_then(|s| s.networks)
                .unwrap_or_default()
                .values()
                .any(|endpoint| endpoint.network_id.as_deref() == Some(network.as_str()));
            if connected {
                return RecoveryOutcome::Reverted("connected already".to_owned());
            }
            match client.inspect_network(network, None).await {
                Err(error) if gone(&error) => return RecoveryOutcome::Gone,
                Err(error) => return RecoveryOutcome::Failed(error.to_string()),
                Ok(_) => {}
            }
        }
        _ => {}
    }
    match revert(docker, container, undo).await {
        Ok(what) => RecoveryOutcome::Reverted(what),
        Err(error) if gone(&error.source) => RecoveryOutcome::Gone,
        Err(error) => RecoveryOutcome::Failed(error.source.to_string()),
    }
}
