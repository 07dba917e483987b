//! `kill-process`: a signal to the processes called `name` inside each of a service's containers,
//! never the container's main process (the backend's `kill_processes`).
//!
//! Example: `- kill-process: { service: worker, name: celery, signal: SIGKILL }`.

use std::sync::Arc;

use super::StepEnd;
use crate::backend::RunScope;
use crate::engine::run::Context;
use crate::journal::EventKind;
use crate::scenario::model::{KillProcess, Step};

/// Carry out a `kill-process` step: the signal to the named processes in every container of the
/// service, one `process-killed` per container. Nothing to undo: whether the service recovers is
/// what the rehearsal is about. Fails when a container has no such process.
pub(super) async fn run_kill_process(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    step: &Step,
    kill: &KillProcess,
) -> StepEnd {
    let targets = stack.targets(&kill.service).unwrap_or_default();
    if targets.is_empty() {
        return StepEnd::Failed(format!("`{}` has no running container", kill.service));
    }
    let mut failure = None;
    for (replica, instance) in targets {
        let result = stack.kill_processes(&instance, &kill.name, &kill.signal).await;
        let (processes, error) = match result {
            Ok(processes) => (processes, None),
            Err(error) => (Vec::new(), Some(error.to_string())),
        };
        if let Some(error) = &error {
            failure.get_or_insert_with(|| error.clone());
        }
        ctx.journal.record(EventKind::ProcessKilled {
            step: step.name.clone(),
            service: kill.service.clone(),
            replica,
            name: kill.name.clone(),
            signal: kill.signal.clone(),
            ok: error.is_none(),
            processes,
            error,
        });
    }
    match failure {
        Some(reason) => StepEnd::Failed(reason),
        None => StepEnd::Done,
    }
}
