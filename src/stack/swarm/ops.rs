//! What the engine does to one task's container on the node it runs on: exec, logs, state, the
//! published port. The same Docker calls as the single-engine backend's, by container id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use testcontainers::bollard;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use testcontainers::bollard::query_parameters::LogsOptionsBuilder;

use super::failed;
use crate::backend::{BackendError, BackendErrorKind, ExecOutcome, InstanceState};
use crate::clock;

/// How much exec output is kept.
const EXEC_OUTPUT_LIMIT: usize = 4096;

/// How long past its own timeout an exec keeps a pause of its container waiting (see the
/// single-engine backend's `exec_gates`: freezing a container while an exec starts wedges
/// Docker 20.10 on cgroup v1).
const EXEC_GATE_SLACK: Duration = Duration::from_secs(5);

/// Run `command` in container `id`, bounded by `timeout`; `gate` is held (read) until the
/// exec's process ended or its timeout plus slack passed.
pub async fn exec(
    client: &bollard::Docker,
    gate: Arc<tokio::sync::RwLock<()>>,
    id: String,
    key: &str,
    command: &[String],
    timeout: Duration,
) -> Result<ExecOutcome, BackendError> {
    let client = client.clone();
    let output: Arc<Mutex<Vec<u8>>> = Arc::default();
    let gate = gate.read_owned().await;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let collected = Arc::clone(&output);
    let key = key.to_owned();
    let command = command.to_vec();
    tokio::spawn(async move {
        let run = async {
            let options = CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(command),
                ..Default::default()
            };
            let exec =
                client.create_exec(&id, options).await.map_err(failed("create exec", &key))?;
            let started =
                client.start_exec(&exec.id, None).await.map_err(failed("start exec", &key))?;
            if let StartExecResults::Attached { output: mut stream, .. } = started {
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(failed("read exec output", &key))?;
                    let mut output = lock(&collected);
                    output.extend_from_slice(&chunk.into_bytes());
                    if output.len() > 2 * EXEC_OUTPUT_LIMIT {
                        let excess = output.len() - EXEC_OUTPUT_LIMIT;
                        output.drain(..excess);
                    }
                }
            }
            loop {
                let inspect =
                    client.inspect_exec(&exec.id).await.map_err(failed("inspect exec", &key))?;
                if inspect.running != Some(true) {
                    return Ok::<_, BackendError>(inspect.exit_code);
                }
                clock::sleep(Duration::from_millis(10)).await;
            }
        };
        let result = tokio::select! {
            result = run => Some(result),
            () = clock::sleep(timeout + EXEC_GATE_SLACK) => None,
        };
        drop(gate);
        let _ = done_tx.send(result);
    });
    let exit_code = match tokio::time::timeout(timeout, done_rx).await {
        Ok(Ok(Some(result))) => result?,
        _ => None,
    };
    let output = lock(&output);
    let start = output.len().saturating_sub(EXEC_OUTPUT_LIMIT);
    let text = String::from_utf8_lossy(&output[start..]).trim_start_matches('\u{FFFD}').to_owned();
    Ok(ExecOutcome { exit_code, output: text })
}

/// Container `id`'s state.
pub async fn state(
    client: &bollard::Docker,
    id: &str,
    key: &str,
) -> Result<InstanceState, BackendError> {
    let inspect =
        client.inspect_container(id, None).await.map_err(failed("inspect container", key))?;
    let state = inspect.state.unwrap_or_default();
    Ok(InstanceState {
        running: state.running.unwrap_or(false),
        paused: state.paused.unwrap_or(false),
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
    })
}

/// The host port container `id` publishes `port` on (host mode: bound on every address of the
/// node, which on a single node includes 127.0.0.1, where the harness connects).
pub async fn host_port(
    client: &bollard::Docker,
    id: &str,
    key: &str,
    port: u16,
) -> Result<u16, BackendError> {
    let inspect =
        client.inspect_container(id, None).await.map_err(failed("inspect container", key))?;
    let port_error = |reason: &str| {
        BackendError::new(
            BackendErrorKind::Other,
            format!("publish port {port} of service `{key}`: {reason}"),
        )
    };
    let running = inspect.state.as_ref().and_then(|state| state.running).unwrap_or(false);
    if !running {
        return Err(port_error("the task's container is not running"));
    }
    let bindings = inspect
        .network_settings
        .and_then(|settings| settings.ports)
        .and_then(|mut ports| ports.remove(&format!("{port}/tcp")))
        .ok_or_else(|| port_error("the port is not published (is it in the service's `ports`?)"))?
        .unwrap_or_default();
    bindings
        .iter()
        .filter(|binding| {
            matches!(binding.host_ip.as_deref(), Some("0.0.0.0" | "127.0.0.1" | "") | None)
        })
        .find_map(|binding| binding.host_port.as_deref()?.parse::<u16>().ok())
        .ok_or_else(|| port_error("no host port is bound"))
}

/// The last `lines` lines of container `id`'s output.
pub async fn logs_tail(
    client: &bollard::Docker,
    id: &str,
    key: &str,
    lines: usize,
) -> Result<String, BackendError> {
    let options =
        LogsOptionsBuilder::new().stdout(true).stderr(true).tail(&lines.to_string()).build();
    let mut stream = client.logs(id, Some(options));
    let mut text: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        text.extend_from_slice(&chunk.map_err(failed("read logs", key))?.into_bytes());
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Whether container `id`'s output so far contains `text`.
pub async fn logs_contain(
    client: &bollard::Docker,
    id: &str,
    key: &str,
    text: &str,
) -> Result<bool, BackendError> {
    let needle = text.as_bytes();
    if needle.is_empty() {
        return Ok(true);
    }
    let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
    let mut stream = client.logs(id, Some(options));
    let mut window: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        window.extend_from_slice(&chunk.map_err(failed("read logs", key))?.into_bytes());
        if window.windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        let keep = needle.len() - 1;
        if window.len() > keep {
            window.drain(..window.len() - keep);
        }
    }
    Ok(false)
}

/// Lock a mutex that is never held across an `.await`.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
