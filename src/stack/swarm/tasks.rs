//! Reading a Swarm service's task list: which task an update created, whether it has a container
//! yet, and whether Swarm's orchestrator has caught up with a task whose container ended. Pure
//! functions over `list_tasks` answers, unit-tested; the scope does the polling.
//!
//! Why "caught up" matters (swarmkit's `orchestrator/update/updater.go`): an update's updater
//! works on a snapshot of the service's tasks taken when the orchestrator reconciles it. With
//! `order: stop-first`, it creates the replacement task and shuts the old one down in one store
//! batch; if the old task is shut down by then by someone else (the orchestrator's restart
//! supervisor, which sets `desired_state: shutdown` on a task whose container ended, restart
//! policy `none`), the updater fails that batch — "task … was already shut down when reached by
//! updater" — which discards the replacement task too, logs `update failed`, and then reports
//! the update `completed` anyway. No task is ever created. That happens when an update reaches
//! Swarm within moments of the key's container ending (firedrill stops it right before each
//! replacement; a crashed release ends on its own right before its rollback), more often on a
//! loaded machine: the window is the time the node takes to report the container's end.

use std::collections::HashSet;

use testcontainers::bollard::models::{Task, TaskState};

/// The newest task not among `known` (the tasks from before an update), if any.
pub(super) fn newest_new<'a>(tasks: &'a [Task], known: &HashSet<String>) -> Option<&'a Task> {
    tasks
        .iter()
        .filter(|task| task.id.as_ref().is_some_and(|id| !known.contains(id)))
        .max_by(|a, b| a.created_at.cmp(&b.created_at))
}

/// The container of `task`, when it has one (Swarm creates it while preparing the task).
pub(super) fn container_of(task: &Task) -> Option<&str> {
    let status = task.status.as_ref()?;
    let id = status.container_status.as_ref()?.container_id.as_deref()?;
    (!id.is_empty()).then_some(id)
}

/// Whether an update of the service may be issued without racing Swarm's orchestrator (see the
/// module's header): no task Swarm still wants running has ended, and the task of `ended` (a
/// container firedrill knows is not running) is no longer wanted running. A container Swarm
/// lists under no task (gone from the history) is nothing to wait for.
pub(super) fn caught_up(tasks: &[Task], ended: Option<&str>) -> bool {
    let wanted = |task: &Task| task.desired_state.is_some_and(|state| state <= TaskState::RUNNING);
    let observed_ended = |task: &Task| {
        task.status.as_ref().and_then(|status| status.state).is_some_and(|s| s > TaskState::RUNNING)
    };
    let unprocessed_end = tasks.iter().any(|task| wanted(task) && observed_ended(task));
    let ended_still_wanted = ended.is_some_and(|container| {
        tasks.iter().any(|task| container_of(task) == Some(container) && wanted(task))
    });
    !unprocessed_end && !ended_still_wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task as `list_tasks` answers it (through serde, as the API's JSON).
    fn task(id: &str, created: u32, state: &str, desired: &str, container: &str) -> Task {
        let mut status = serde_json::json!({ "State": state });
        if !container.is_empty() {
            status["ContainerStatus"] = serde_json::json!({ "ContainerID": container });
        }
        serde_json::from_value(serde_json::json!({
            "ID": id,
            "CreatedAt": format!("2026-12-06T23:00:{created:02}Z"),
            "Status": status,
            "DesiredState": desired,
        }))
        .expect("a task")
    }

    #[test]
    fn the_newest_task_not_known_before_the_update_is_the_new_one() {
        let tasks = [
            task("old", 1, "shutdown", "shutdown", "c-old"),
            task("crash", 2, "failed", "shutdown", "c-crash"),
            task("new", 3, "preparing", "running", ""),
        ];
        let known = HashSet::from(["old".to_owned(), "crash".to_owned()]);
        let new = newest_new(&tasks, &known).expect("a new task");
        assert_eq!(new.id.as_deref(), Some("new"));
        assert_eq!(container_of(new), None, "no container yet");
        let all = HashSet::from(["old".to_owned(), "crash".to_owned(), "new".to_owned()]);
        assert!(newest_new(&tasks, &all).is_none());
    }

    /// The state the failed run must have been in: firedrill saw the crashed release's
    /// container end, but Swarm still wants its task running (the node has not reported the end,
    /// or the orchestrator has not processed it). An update now races the restart supervisor.
    #[test]
    fn an_ended_container_whose_task_swarm_still_wants_running_is_not_caught_up() {
        let reported_running = [task("crash", 2, "running", "running", "c-crash")];
        assert!(!caught_up(&reported_running, Some("c-crash")));
        let reported_failed = [task("crash", 2, "failed", "running", "c-crash")];
        assert!(!caught_up(&reported_failed, Some("c-crash")));
        // Without knowing the container ended, an unprocessed end still counts.
        assert!(!caught_up(&reported_failed, None));
    }

    #[test]
    fn swarm_has_caught_up_once_the_ended_task_is_no_longer_wanted() {
        let tasks = [
            task("old", 1, "complete", "shutdown", "c-old"),
            task("crash", 2, "failed", "shutdown", "c-crash"),
        ];
        assert!(caught_up(&tasks, Some("c-crash")));
        // A running task Swarm wants running is not an ended one.
        let running = [task("v2", 3, "running", "running", "c-v2")];
        assert!(caught_up(&running, None));
        // A container Swarm no longer lists: nothing to wait for.
        assert!(caught_up(&running, Some("c-gone")));
        // A task waiting to start (stop-first: desired `ready`) has not ended.
        let waiting = [task("next", 4, "ready", "ready", "c-next")];
        assert!(caught_up(&waiting, None));
    }
}
