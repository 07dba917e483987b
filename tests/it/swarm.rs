//! The swarm backend (`--backend swarm`) end to end on a single-node swarm: the demo's smoke, the
//! non-demo webcache smoke, the rolling upgrade with its broken releases and the broken-release
//! rollbacks give the same verdicts as on the single-engine backend; a SIGKILLed run's services
//! and overlay are swept by `firedrill gc`; the engine's swarm state is left as it was found.
//!
//! The tests let firedrill initialise the swarm itself when the engine is in none (this machine's
//! case): that is the path that must leave nothing behind.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{
    demo_images, describe, firedrill, leftovers, report, run_id_of, stack_lock,
    wait_for_journal_line,
};

/// `docker info`'s swarm state (`inactive`, `active`).
fn swarm_state() -> String {
    let output = Command::new("docker")
        .args(["info", "--format", "{{.Swarm.LocalNodeState}}"])
        .output()
        .expect("failed to run docker");
    assert!(output.status.success(), "docker info failed");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Names of Swarm services labelled with `run_id` (none when the engine is in no swarm).
fn services_of(run_id: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args(["service", "ls", "--filter", &format!("label=firedrill.run={run_id}")])
        .args(["--format", "{{.Name}}"])
        .output()
        .expect("failed to run docker");
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

struct SwarmRun {
    output: std::process::Output,
    report: serde_json::Value,
    journal: Vec<serde_json::Value>,
}

impl SwarmRun {
    fn statuses(&self) -> Vec<(String, String)> {
        self.report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| {
                (c["name"].as_str().unwrap().to_owned(), c["status"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    /// `container-event` actions recorded for `service`.
    fn actions(&self, service: &str) -> Vec<String> {
        self.journal
            .iter()
            .filter(|e| e["event"] == "container-event" && e["service"] == service)
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// `firedrill run --backend swarm FILE`; asserts nothing of the run is left and the swarm state
/// is what it was before.
fn rehearse_on_swarm(file: &str) -> SwarmRun {
    demo_images();
    let before = swarm_state();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = firedrill()
        .args(["run", "--backend", "swarm", "--report"])
        .arg(dir.path())
        .arg(file)
        .output()
        .expect("firedrill");
    let report = report(dir.path());
    let run_id = report["run-id"].as_str().expect("run-id").to_owned();
    assert_eq!(leftovers(&run_id), Vec::<String>::new(), "{file} left objects behind");
    assert_eq!(services_of(&run_id), Vec::<String>::new(), "{file} left services behind");
    assert_eq!(swarm_state(), before, "{file} changed the engine's swarm state");
    let journal = fs_err::read_to_string(dir.path().join("journal.jsonl"))
        .expect("journal.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    SwarmRun { output, report, journal }
}

#[test]
fn swarm_smokes_pass_as_on_docker_with_swarm_restarting_the_killed_service() {
    let _serial = stack_lock();
    for (file, service) in
        [("scenarios/smoke.yaml", "billing"), ("tests/scenarios/webcache/smoke.yaml", "web")]
    {
        let run = rehearse_on_swarm(file);
        assert_eq!(run.output.status.code(), Some(0), "{file}: {}", describe(&run.output));
        let statuses = run.statuses();
        assert_eq!(statuses.len(), 4, "{statuses:?}");
        assert!(statuses.iter().all(|(_, status)| status == "passed"), "{statuses:?}");
        // The kill reached the task's container; the start was Swarm's: a forced update that
        // gave the service a fresh task.
        let actions = run.actions(service);
        let died = actions.iter().position(|a| a == "die").expect("the kill was seen");
        assert!(
            actions[died..].iter().any(|a| a == "swarm-update-updating"),
            "{file}: {actions:?}"
        );
    }
}

#[test]
fn swarm_rolling_upgrade_and_broken_releases_give_the_docker_verdicts() {
    let _serial = stack_lock();
    let rolling = rehearse_on_swarm("scenarios/rolling-upgrade.yaml");
    assert_eq!(rolling.output.status.code(), Some(0), "{}", describe(&rolling.output));
    assert_eq!(rolling.report["counts"]["passed"], 9, "{:#}", rolling.report);
    // Every replica was replaced through a Swarm service update, and the crashing release
    // paused Swarm's update (its `failure_action`) before firedrill rolled it back.
    for replica in ["billing.1", "billing.2", "billing.3"] {
        let actions = rolling.actions(replica);
        assert!(actions.iter().any(|a| a == "swarm-update-completed"), "{replica}: {actions:?}");
    }
    // The crashing release's task died during its update, Swarm paused the update (its
    // `failure_action`: firedrill waits for Swarm to say so before it rolls back, so the order
    // does not depend on who sees the exit first), then Swarm's own rollback ran to completion.
    let actions = rolling.actions("billing.1");
    let swarm: Vec<&str> =
        actions.iter().map(String::as_str).filter(|a| a.starts_with("swarm-update-")).collect();
    let paused = swarm.iter().position(|a| *a == "swarm-update-paused");
    let started = swarm.iter().position(|a| *a == "swarm-update-rollback_started");
    let completed = swarm.iter().position(|a| *a == "swarm-update-rollback_completed");
    assert!(
        matches!((paused, started, completed), (Some(p), Some(s), Some(c)) if p < s && s < c),
        "{swarm:?}"
    );
    let paused = actions.iter().position(|a| a == "swarm-update-paused").unwrap();
    let updating = actions[..paused].iter().rposition(|a| a == "swarm-update-updating");
    let crashed = updating.is_some_and(|u| actions[u..paused].iter().any(|a| a == "die"));
    assert!(crashed, "the release's task died during its update: {actions:?}");

    let broken = rehearse_on_swarm("scenarios/upgrade-broken-rollback.yaml");
    assert_eq!(broken.output.status.code(), Some(0), "{}", describe(&broken.output));
    assert_eq!(broken.report["counts"]["passed"], 11, "{:#}", broken.report);
    // Each rollback of a release that ran was Swarm's own (`rollback=previous`), and firedrill
    // waits for Swarm to report it complete: four of the five releases ran; the one whose
    // migration failed never did, so its rollback is a fresh task of the spec still in place.
    let rollbacks = broken
        .actions("billing")
        .iter()
        .filter(|a| *a == "swarm-update-rollback_completed")
        .count();
    assert_eq!(rollbacks, 4, "{:?}", broken.actions("billing"));
}

#[test]
fn swarm_run_killed_mid_run_is_swept_by_gc_and_the_swarm_left_as_found() {
    let _serial = stack_lock();
    demo_images();
    let before = swarm_state();
    let dir = tempfile::tempdir().unwrap();
    let mut child = firedrill()
        .args(["run", "--backend", "swarm", "--report"])
        .arg(dir.path())
        .arg("tests/scenarios/slow/long-wait.yaml")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_id = run_id_of(dir.path());
    // The database's task is paused (a fault on the task's container), the timeline under way.
    wait_for_journal_line(dir.path(), Duration::from_secs(120), |v| {
        v["event"] == "container-action" && v["action"] == "pause" && v["ok"] == true
    });
    child.kill().unwrap(); // SIGKILL: no cleanup code runs.
    child.wait().unwrap();
    assert!(!services_of(&run_id).is_empty(), "a SIGKILLed run leaves its services");
    assert_eq!(swarm_state(), "active");

    let output = firedrill().args(["gc", "--run", &run_id]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(services_of(&run_id), Vec::<String>::new());
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert_eq!(swarm_state(), before, "gc left the swarm state changed");
}

#[test]
fn swarm_faults_reach_the_tasks_containers_and_are_reverted() {
    let _serial = stack_lock();
    let run = rehearse_on_swarm("tests/scenarios/slow/faults-observed.yaml");
    assert_eq!(run.output.status.code(), Some(0), "{}", describe(&run.output));
    let faults: Vec<(String, String, bool, String)> = run
        .journal
        .iter()
        .filter(|e| e["event"] == "fault-applied" || e["event"] == "fault-reverted")
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["kind"].as_str().unwrap().to_owned(),
                e["ok"] == true,
                e["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let kinds: Vec<(&str, &str, bool)> =
        faults.iter().map(|(event, kind, ok, _)| (event.as_str(), kind.as_str(), *ok)).collect();
    assert_eq!(
        kinds,
        [
            ("fault-applied", "cpu", true),
            ("fault-reverted", "cpu", true),
            ("fault-applied", "memory", true),
            ("fault-reverted", "memory", true),
            ("fault-applied", "partition", true),
            ("fault-reverted", "partition", true),
        ],
        "{faults:?}"
    );
    // The partitioned task came back under its overlay aliases (its container shows none).
    assert!(faults[5].3.contains("billing"), "{faults:?}");
    // And billing was healthy again afterwards.
    let last = run
        .journal
        .iter()
        .rev()
        .find(|e| e["event"] == "health-changed" && e["service"] == "billing")
        .expect("billing's health was observed");
    assert_eq!(last["healthy"], true, "{last}");
}

/// The swarm node's availability (`active`, `pause`, `drain`).
fn node_availability() -> String {
    let output = Command::new("docker")
        .args(["node", "inspect", "self", "--format", "{{.Spec.Availability}}"])
        .output()
        .expect("failed to run docker");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn swarm_node_drain_takes_the_tasks_away_and_restoring_the_node_brings_them_back() {
    let _serial = stack_lock();
    let before = swarm_state();
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No `--backend`: the scenario's `backend: swarm` chooses it.
    let output = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("tests/scenarios/swarm/node-drain.yaml")
        .env("FIREDRILL_STATE_DIR", state.path())
        .output()
        .unwrap();
    let report = report(dir.path());
    let run_id = report["run-id"].as_str().expect("run-id").to_owned();
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert_eq!(services_of(&run_id), Vec::<String>::new());
    assert_eq!(swarm_state(), before, "the run changed the engine's swarm state");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(report["counts"]["passed"], 4, "{:#}", report);
    let journal: Vec<serde_json::Value> = fs_err::read_to_string(dir.path().join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let node = |event: &str| {
        journal
            .iter()
            .find(|e| e["event"] == event && e["kind"] == "node-availability")
            .unwrap_or_else(|| panic!("no {event} of the node"))
            .clone()
    };
    let (applied, reverted) = (node("fault-applied"), node("fault-reverted"));
    assert_eq!(applied["ok"], true, "{applied}");
    assert_eq!(applied["replica"], "drain", "{applied}");
    assert_eq!(applied["previous"]["availability"], "active", "{applied}");
    // On one node the fresh task has nowhere to go: Swarm keeps it unscheduled (`new`, then
    // `pending`; which of the two the step saw depends on when Swarm's scheduler last ran).
    let detail = applied["detail"].as_str().unwrap();
    assert!(detail.contains("cache: pending") || detail.contains("cache: new"), "{detail}");
    assert_eq!(reverted["ok"], true, "{reverted}");
    let detail = reverted["detail"].as_str().unwrap();
    assert!(detail.contains("new tasks of cache have containers"), "{detail}");
    // The drained task's container died during the step (the step records `fault-applied` once
    // Swarm shut it down), and a new one started after the node was restored.
    let position = |what: &dyn Fn(&serde_json::Value) -> bool| journal.iter().position(what);
    let step = position(&|e| e["event"] == "step-started" && e["step"] == "drain the node");
    let died = position(&|e| {
        e["event"] == "container-event" && e["service"] == "cache" && e["action"] == "die"
    });
    let applied_at = position(&|e| *e == applied);
    assert!(
        matches!((step, died, applied_at), (Some(s), Some(d), Some(a)) if s < d && d < a),
        "the task was not shut down by the drain"
    );
    let reverted_at = position(&|e| *e == reverted).unwrap();
    let started = journal[reverted_at..]
        .iter()
        .any(|e| e["event"] == "health-changed" && e["service"] == "cache" && e["healthy"] == true);
    assert!(started, "cache was not healthy again after the node was restored");
    // The run's ledger is gone: the fault was reverted.
    let ledger = state.path().join("ledger").join(format!("{run_id}.jsonl"));
    assert!(!ledger.exists(), "{} is left", ledger.display());
}

#[test]
fn swarm_node_drained_by_a_sigkilled_run_is_restored_by_gc() {
    let _serial = stack_lock();
    let before = swarm_state();
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("tests/scenarios/swarm/node-drain-long.yaml")
        .env("FIREDRILL_STATE_DIR", state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_id = run_id_of(dir.path());
    wait_for_journal_line(dir.path(), Duration::from_secs(120), |v| {
        v["event"] == "fault-applied" && v["kind"] == "node-availability" && v["ok"] == true
    });
    child.kill().unwrap(); // SIGKILL: the node stays drained.
    child.wait().unwrap();
    assert_eq!(node_availability(), "drain");

    let output = firedrill()
        .args(["gc", "--run", &run_id])
        .env("FIREDRILL_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("node-availability on")
            && stdout.contains("node availability back to active"),
        "{stdout}"
    );
    assert_eq!(services_of(&run_id), Vec::<String>::new());
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert_eq!(swarm_state(), before, "gc left the swarm state changed");
    if before == "active" {
        assert_eq!(node_availability(), "active");
    }
}

#[test]
fn swarm_named_volumes_are_task_mounts_labelled_for_the_run_and_removed_after_it() {
    let _serial = stack_lock();
    demo_images();
    let before = swarm_state();
    let dir = tempfile::tempdir().unwrap();
    let child = firedrill()
        .args(["run", "--backend", "swarm", "--report"])
        .arg(dir.path())
        .arg("tests/compose/billing/scenario.yaml")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run_id = run_id_of(dir.path());
    wait_for_journal_line(dir.path(), Duration::from_secs(120), |v| v["event"] == "step-started");
    // Mid-run: db's task mounts the run's labelled volume.
    let volume = format!("firedrill-{run_id}-pgdata");
    let listed = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", &format!("label=firedrill.run={run_id}")])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.lines().any(|name| name == volume), "{listed}");
    let mounted = Command::new("docker")
        .args(["ps", "-q", "--filter", &format!("volume={volume}")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&mounted.stdout).lines().count(), 1, "db mounts it");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(services_of(&run_id), Vec::<String>::new());
    assert_eq!(leftovers(&run_id), Vec::<String>::new(), "the volume went with the run");
    assert_eq!(swarm_state(), before, "the run changed the engine's swarm state");
}
