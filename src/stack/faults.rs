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
use crate::backend::{BackendError, BackendErrorKind};
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
        FaultKind::Packet(_)
        | FaultKind::Dns(_)
        | FaultKind::DiskFill(_)
        | FaultKind::ClockSkew { .. }
        | FaultKind::IoLimit(_) => {
            unreachable!("host-side faults are captured by `netfault`")
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
        FaultKind::Packet(_)
        | FaultKind::Dns(_)
        | FaultKind::DiskFill(_)
        | FaultKind::ClockSkew { .. }
        | FaultKind::IoLimit(_) => {
            unreachable!("host-side faults are applied by `netfault`")
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
        Undo::NodeAvailability { availability } => {
            // `container` is the node's id.
            super::swarm::set_availability(client, container, availability)
                .await
                .map_err(failed("restore the availability of node", container))?;
            Ok(format!("node availability back to {availability}"))
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
        Undo::Packet { .. }
        | Undo::Dns { .. }
        | Undo::DiskFill { .. }
        | Undo::ClockSkew { .. }
        | Undo::IoLimit { .. } => {
            unreachable!("host-side faults are reverted by `netfault`")
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
    if let Undo::NodeAvailability { .. } = undo {
        // A node, not a container: no swarm (left since) or no such node is nothing to restore.
        return match revert(docker, container, undo).await {
            Ok(what) => RecoveryOutcome::Reverted(what),
            Err(error)
                if gone(&error.source)
                    || matches!(
                        &error.source,
                        BollardError::DockerResponseServerError { status_code: 503, .. }
                    ) =>
            {
                RecoveryOutcome::Gone
            }
            Err(error) => RecoveryOutcome::Failed(error.source.to_string()),
        };
    }
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
    if let Undo::ClockSkew { file } = undo {
        // A dead run's offset file goes (its container is swept next); without it, no skew.
        return match super::clockskew::recover(file) {
            Ok(what) => RecoveryOutcome::Reverted(what),
            Err(error) => RecoveryOutcome::Failed(error.message),
        };
    }
    if undo.host_side() {
        return match super::netfault::revert(docker, container, undo).await {
            Ok(what) => RecoveryOutcome::Reverted(what),
            Err(error) if error.is_not_found() => RecoveryOutcome::Gone,
            Err(error) => RecoveryOutcome::Failed(error.message),
        };
    }
    match revert(docker, container, undo).await {
        Ok(what) => RecoveryOutcome::Reverted(what),
        Err(error) if gone(&error.source) => RecoveryOutcome::Gone,
        Err(error) => RecoveryOutcome::Failed(error.source.to_string()),
    }
}

/// `kill-process`: send `signal` to the processes called `name` in `container`, never its main
/// process. Done from the host, so the user's image needs no `kill`, `ps` or shell: the
/// container's processes are those in its main process's PID namespace (`/proc/PID/ns/pid`), read
/// from the host's `/proc`; each is signalled with `kill(2)` by its host PID. This needs firedrill
/// on the Docker host, allowed to see and signal the container's processes (root, as Docker's own
/// socket usually requires); otherwise it fails with that said.
pub async fn kill_processes(
    docker: &Docker,
    container: &str,
    name: &str,
    signal: &str,
) -> Result<Vec<String>, BackendError> {
    let number = signal_number(signal).ok_or_else(|| {
        BackendError::new(BackendErrorKind::Other, format!("unknown signal `{signal}`"))
    })?;
    let inspect = docker
        .client()
        .inspect_container(container, None)
        .await
        .map_err(|e| BackendError::from(failed("inspect", container)(e)))?;
    let main =
        inspect.state.and_then(|state| state.pid).filter(|pid| *pid > 0).ok_or_else(|| {
            BackendError::new(BackendErrorKind::Other, format!("`{container}` is not running"))
        })?;
    let name = name.to_owned();
    let container = container.to_owned();
    tokio::task::spawn_blocking(move || signal_by_name(&container, main, &name, number))
        .await
        .map_err(|e| BackendError::new(BackendErrorKind::Other, e.to_string()))?
}

/// The Linux number of `SIGKILL`, `SIGTERM`, … or of a number given as text.
fn signal_number(signal: &str) -> Option<i32> {
    if let Ok(number) = signal.parse::<i32>() {
        return (1..=64).contains(&number).then_some(number);
    }
    Some(match signal.strip_prefix("SIG").unwrap_or(signal) {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        _ => return None,
    })
}

/// One process of a container, as the host's `/proc` shows it.
struct Process {
    host_pid: i32,
    /// Its PID inside the container (the last `NSpid` value).
    pid: String,
    comm: String,
    argv: Vec<String>,
}

impl Process {
    /// Whether `name` is its command name or the file name of its first or second argument.
    fn is_called(&self, name: &str) -> bool {
        let file_name = |word: &String| word.rsplit('/').next().unwrap_or_default().to_owned();
        self.comm == name || self.argv.iter().take(2).any(|word| file_name(word) == name)
    }
}

fn signal_by_name(
    container: &str,
    main: i64,
    name: &str,
    signal: i32,
) -> Result<Vec<String>, BackendError> {
    let unreadable = |what: String| {
        let mut error = BackendError::new(
            BackendErrorKind::Other,
            format!("cannot see the processes of `{container}` from the host: {what}"),
        );
        error.hint = Some(
            "`kill-process` runs on the Docker host and needs to read and signal its processes: \
             run firedrill there as root"
                .to_owned(),
        );
        error
    };
    let namespace =
        fs_err::read_link(format!("/proc/{main}/ns/pid")).map_err(|e| unreadable(e.to_string()))?;
    let entries = fs_err::read_dir("/proc").map_err(|e| unreadable(e.to_string()))?;
    let mut inside = Vec::new();
    for entry in entries.flatten() {
        let Some(host_pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // Processes come and go while we look: one that vanished is skipped.
        let Ok(ns) = std::fs::read_link(format!("/proc/{host_pid}/ns/pid")) else { continue };
        if ns != namespace || i64::from(host_pid) == main {
            continue;
        }
        let read = |file: &str| std::fs::read(format!("/proc/{host_pid}/{file}")).ok();
        let (Some(comm), Some(cmdline), Some(status)) =
            (read("comm"), read("cmdline"), read("status"))
        else {
            continue;
        };
        let status = String::from_utf8_lossy(&status);
        let pid = status
            .lines()
            .find_map(|line| line.strip_prefix("NSpid:"))
            .and_then(|ids| ids.split_whitespace().last())
            .unwrap_or("?")
            .to_owned();
        let argv = cmdline
            .split(|&b| b == 0)
            .filter(|word| !word.is_empty())
            .map(|word| String::from_utf8_lossy(word).into_owned())
            .collect();
        let comm = String::from_utf8_lossy(&comm).trim_end().to_owned();
        inside.push(Process { host_pid, pid, comm, argv });
    }
    let mut signalled = Vec::new();
    for process in inside.iter().filter(|p| p.is_called(name)) {
        // SAFETY: kill(2) with a PID and a signal number has no memory-safety preconditions.
        let result = unsafe { libc::kill(process.host_pid, signal) };
        if result == 0 {
            signalled.push(format!("{} {}", process.pid, process.comm));
        } else {
            let error = std::io::Error::last_os_error();
            // It ended between the look and the signal: nothing to kill any more.
            if error.raw_os_error() != Some(libc::ESRCH) {
                return Err(unreadable(format!("kill {}: {error}", process.pid)));
            }
        }
    }
    if signalled.is_empty() {
        let mut seen: Vec<&str> = inside.iter().map(|p| p.comm.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        let others = if seen.is_empty() {
            "it runs nothing but its main process".to_owned()
        } else {
            format!("besides its main process it runs: {}", seen.join(", "))
        };
        return Err(BackendError::new(
            BackendErrorKind::NotFound,
            format!("no process `{name}` in `{container}` ({others})"),
        ));
    }
    Ok(signalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_signalled_by_name_in_a_pid_namespace_and_the_main_one_is_spared() {
        // A program under a name nothing else on the host has, in this test's own namespace.
        let dir = tempfile::tempdir().unwrap();
        let name = format!("fdkill{}", std::process::id() % 100_000);
        let program = dir.path().join(&name);
        fs_err::copy("/bin/sleep", &program).unwrap();
        let mut child = std::process::Command::new(&program).arg("30").spawn().unwrap();
        let main = i64::from(std::process::id());
        // Wait until the child runs under its own name (exec has happened).
        let comm = format!("/proc/{}/comm", child.id());
        while fs_err::read_to_string(&comm).map(|c| c.trim() != name).unwrap_or(true) {
            std::thread::yield_now();
        }
        // As a container's main process it is never a target.
        let as_main = i64::from(child.id());
        let spared = signal_by_name("here", as_main, &name, libc::SIGKILL).unwrap_err();
        assert!(spared.is_not_found(), "{spared}");
        let signalled = signal_by_name("here", main, &name, libc::SIGKILL).unwrap();
        assert_eq!(signalled.len(), 1, "{signalled:?}");
        assert!(signalled[0].ends_with(&name), "{signalled:?}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        let error = signal_by_name("here", main, &name, libc::SIGKILL).unwrap_err();
        assert!(error.is_not_found(), "{error}");
        assert!(error.message.starts_with(&format!("no process `{name}` in `here`")), "{error}");
        assert_eq!(signal_number("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGNOPE"), None);
    }
}
