//! Faults against the real engine: each one observably happens (docker inspect, the cgroup files,
//! a connection from another container, the OOM killer) and is observably undone; a SIGKILL of
//! the harness during a pause or a partition leaves a ledger that `firedrill gc` reverts before it
//! removes the stack; `--seed` is printed, recorded and replays the same choices; the `partition`
//! and `oom` rehearsals pass.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use firedrill::EventKind;

use crate::support::{
    demo_images, describe, firedrill, journal_has, leftovers, rehearse_in_process, report,
    run_id_of, stack_lock, wait_for_journal_line,
};

/// A minute is plenty for any fault event of these scenarios to show up.
const EVENT_LIMIT: Duration = Duration::from_secs(120);

pub(crate) fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("failed to run docker")
}

/// `docker inspect -f FORMAT NAME`, trimmed.
pub(crate) fn inspect(name: &str, format: &str) -> String {
    let output = docker(&["inspect", "-f", format, name]);
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `docker exec NAME argv...`.
fn exec(name: &str, argv: &[&str]) -> Output {
    let mut args = vec!["exec", name];
    args.extend_from_slice(argv);
    docker(&args)
}

/// Whether `db` opens a TCP connection to `billing:8080`, by name, on the run's network.
fn db_reaches_billing(run_id: &str) -> bool {
    let db = format!("{run_id}-db");
    let probe = "timeout 3 bash -c 'echo > /dev/tcp/billing/8080'";
    exec(&db, &["bash", "-c", probe]).status.success()
}

pub(crate) fn spawn_run(file: &str, report_dir: &Path, state: &Path, extra: &[&str]) -> Child {
    demo_images();
    firedrill()
        .env("FIREDRILL_STATE_DIR", state)
        .args(["run", "--report"])
        .arg(report_dir)
        .args(extra)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("failed to start firedrill")
}

pub(crate) fn fault_event(dir: &Path, event: &str, step: &str) -> serde_json::Value {
    let line =
        wait_for_journal_line(dir, EVENT_LIMIT, |v| v["event"] == event && v["step"] == step);
    assert_eq!(line["ok"], true, "{line}");
    line
}

#[test]
fn each_fault_happens_and_is_undone() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let child =
        spawn_run("tests/scenarios/slow/faults-observed.yaml", dir.path(), state.path(), &[]);
    let run_id = run_id_of(dir.path());
    let (db, billing) = (format!("{run_id}-db"), format!("{run_id}-billing"));
    let network = format!("firedrill-{run_id}");
    let quota = |name: &str| {
        let output = exec(name, &["cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };

    // cpu: the quota is in Docker's config and in the container's own cgroup, then gone.
    let applied = fault_event(dir.path(), "fault-applied", "throttle db");
    // (While db is throttled: billing is not cut off yet.)
    assert!(db_reaches_billing(&run_id), "billing must be reachable before the partition");
    assert_eq!(applied["previous"]["cpu-quota"], 0, "{applied}");
    assert_eq!(inspect(&db, "{{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}}"), "20000 100000");
    assert_eq!(quota(&db), "20000");
    fault_event(dir.path(), "fault-reverted", "throttle db");
    assert_eq!(inspect(&db, "{{.HostConfig.CpuQuota}}"), "-1");
    assert_eq!(quota(&db), "-1");

    // memory: the limit (and memory+swap) is 48 MiB while it holds, far above after.
    fault_event(dir.path(), "fault-applied", "limit billing");
    let limited = (48 * 1024 * 1024).to_string();
    assert_eq!(
        inspect(&billing, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"),
        format!("{limited} {limited}")
    );
    fault_event(dir.path(), "fault-reverted", "limit billing");
    let after: u64 = inspect(&billing, "{{.HostConfig.Memory}}").parse().unwrap();
    assert!(after > 1 << 30, "memory limit after the revert: {after}");

    // partition: billing leaves the network and cannot be reached by name; after healing it is
    // back under its alias.
    fault_event(dir.path(), "fault-applied", "cut billing off");
    let networks = inspect(&billing, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}");
    assert!(!networks.contains(&network), "still on {networks}");
    assert!(!db_reaches_billing(&run_id), "billing reachable during the partition");
    fault_event(dir.path(), "fault-reverted", "cut billing off");
    let aliases = inspect(
        &billing,
        &format!("{{{{json (index .NetworkSettings.Networks \"{network}\").Aliases}}}}"),
    );
    assert!(aliases.contains("\"billing\""), "aliases after healing: {aliases}");
    assert!(db_reaches_billing(&run_id), "billing unreachable after healing");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    let ledger = state.path().join("ledger").join(format!("{run_id}.jsonl"));
    assert!(!ledger.exists(), "a finished run removes its ledger");
}

/// Start `file`, wait for `applied` in its journal, SIGKILL the harness, and return the run id
/// and the ledger's path.
fn kill_during(
    file: &str,
    dir: &Path,
    state: &Path,
    applied: fn(&serde_json::Value) -> bool,
) -> String {
    let mut child = spawn_run(file, dir, state, &[]);
    let run_id = run_id_of(dir);
    wait_for_journal_line(dir, EVENT_LIMIT, applied);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let ledger = state.join("ledger").join(format!("{run_id}.jsonl"));
    let text = fs_err::read_to_string(&ledger).expect("the ledger survives the harness");
    assert!(text.contains("\"record\":\"applied\""), "{text}");
    run_id
}

fn gc(state: &Path) -> Output {
    firedrill().env("FIREDRILL_STATE_DIR", state).arg("gc").output().unwrap()
}

#[test]
fn a_pause_left_by_a_killed_harness_is_reverted_and_removed_by_gc() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let run_id =
        kill_during("tests/scenarios/slow/long-wait.yaml", dir.path(), state.path(), |v| {
            v["event"] == "container-action" && v["action"] == "pause"
        });
    let db = format!("{run_id}-db");
    assert_eq!(inspect(&db, "{{.State.Paused}}"), "true");

    let output = gc(state.path());
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("{run_id}: pause on {db}: unpaused")), "{stdout}");
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert!(!state.path().join("ledger").join(format!("{run_id}.jsonl")).exists());
}

#[test]
fn a_partition_left_by_a_killed_harness_is_healed_and_removed_by_gc() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = "tests/scenarios/slow/long-partition.yaml";
    let run_id = kill_during(file, dir.path(), state.path(), |v| {
        v["event"] == "fault-applied" && v["kind"] == "partition"
    });
    let db = format!("{run_id}-db");
    let networks = inspect(&db, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}");
    assert!(!networks.contains(&run_id), "db still connected: {networks}");

    let output = gc(state.path());
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("{run_id}: partition on {db}: reconnected with aliases db")),
        "{stdout}"
    );
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

#[test]
fn the_seed_is_printed_recorded_and_replays_the_same_choices() {
    let _serial = stack_lock();
    let state = tempfile::tempdir().unwrap();
    let mut targets = Vec::new();
    for seed in ["42", "42", "1", "2", "3"] {
        let dir = tempfile::tempdir().unwrap();
        let child = spawn_run(
            "tests/scenarios/slow/seeded.yaml",
            dir.path(),
            state.path(),
            &["--seed", seed],
        );
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("seed: {seed} ")), "{stderr}");
        assert_eq!(report(dir.path())["seed"].to_string(), seed);
        let started =
            wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| v["event"] == "run-started");
        assert_eq!(started["seed"].to_string(), seed);
        let applied = fault_event(dir.path(), "fault-applied", "throttle one billing");
        targets.push(applied["replica"].as_str().unwrap().to_owned());
    }
    // One of four replicas; the same seed picks the same one, and the seeds differ in their
    // picks (fixed seeds: this is deterministic, not a gamble).
    assert!(targets.iter().all(|t| t.starts_with("billing.")), "{targets:?}");
    assert_eq!(targets[0], targets[1], "{targets:?}");
    let distinct: std::collections::BTreeSet<&String> = targets.iter().collect();
    assert!(distinct.len() > 1, "every seed chose the same replica: {targets:?}");

    // Without `--seed`, a random one is printed and recorded.
    let dir = tempfile::tempdir().unwrap();
    let output = spawn_run("tests/scenarios/slow/seeded.yaml", dir.path(), state.path(), &[])
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let printed = stderr
        .lines()
        .find_map(|line| line.strip_prefix("seed: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the seed is printed");
    assert_eq!(report(dir.path())["seed"].to_string(), printed);
}

#[test]
fn the_partition_rehearsal_passes() {
    let _serial = stack_lock();
    let state = tempfile::tempdir().unwrap();
    let outcome = rehearse_in_process("scenarios/partition.yaml", |r| r.state_dir(state.path()));
    outcome.assert_held();
    assert_eq!(outcome.verdicts().len(), 5, "{:#?}", outcome.verdicts());
    assert!(journal_has(&outcome, |kind| matches!(
        kind,
        EventKind::FaultReverted { step, ok: true, .. } if step == "cut db off"
    )));
}

#[test]
fn the_oom_rehearsal_passes_with_the_kernel_s_evidence() {
    let _serial = stack_lock();
    let state = tempfile::tempdir().unwrap();
    let outcome = rehearse_in_process("scenarios/oom.yaml", |r| r.state_dir(state.path()));
    outcome.assert_held();
    // With `probe-failed: billing grows`.
    assert_eq!(outcome.verdicts().len(), 5, "{:#?}", outcome.verdicts());
    let step = "limit billing memory";
    let billing = |service: &str| service == "billing";
    assert!(journal_has(&outcome, |kind| matches!(
        kind, EventKind::FaultApplied { step: s, .. } if s == step
    )));
    assert!(journal_has(&outcome, |kind| matches!(
        kind, EventKind::ContainerEvent { service, action, .. } if billing(service) && action == "oom"
    )));
    assert!(journal_has(&outcome, |kind| matches!(
        kind,
        EventKind::ContainerEvent { service, action, exit_code: Some(137) }
            if billing(service) && action == "die"
    )));
    assert!(journal_has(&outcome, |kind| matches!(
        kind, EventKind::FaultReverted { step: s, ok: true, .. } if s == step
    )));
}

/// `(host PID, command)` of every process in a container, from `docker top`.
fn top(container: &str) -> Vec<(String, String)> {
    let output = docker(&["top", container, "-eo", "pid,args"]);
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (pid, command) = line.trim().split_once(' ')?;
            Some((pid.to_owned(), command.trim().to_owned()))
        })
        .collect()
}

#[test]
fn kill_process_kills_nginx_workers_by_name_and_spares_the_master() {
    let _serial = stack_lock();
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let child = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("tests/scenarios/webcache/worker-kill.yaml")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run_id = run_id_of(dir.path());
    let web = format!("{run_id}-web");
    let step_line = |event: &str, step: &str| {
        wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| v["event"] == event && v["step"] == step)
    };
    // The first step is a wait: the stack is up and nothing was killed yet.
    step_line("step-started", "wait 1s");
    let before = top(&web);
    let workers = |processes: &[(String, String)]| -> Vec<String> {
        processes
            .iter()
            .filter(|(_, command)| command.contains("worker process"))
            .map(|(pid, _)| pid.clone())
            .collect()
    };
    let master = |processes: &[(String, String)]| -> String {
        processes.iter().find(|(_, c)| c.contains("master process")).expect("master").0.clone()
    };
    let old_workers = workers(&before);
    assert!(!old_workers.is_empty(), "{before:?}");

    let killed = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| v["event"] == "process-killed");
    assert_eq!(killed["ok"], true, "{killed}");
    assert_eq!(killed["replica"], "web");
    let named = killed["processes"].as_array().unwrap();
    assert_eq!(named.len(), old_workers.len(), "every worker and nothing else: {killed}");
    assert!(named.iter().all(|p| p.as_str().unwrap().ends_with(" nginx")), "{killed}");

    step_line("step-started", "observed");
    let after = top(&web);
    let new_workers = workers(&after);
    assert_eq!(master(&after), master(&before), "the master was spared: {after:?}");
    assert_eq!(new_workers.len(), old_workers.len(), "the master started new workers: {after:?}");
    assert!(new_workers.iter().all(|pid| !old_workers.contains(pid)), "{before:?} {after:?}");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(report(dir.path())["checks"].as_array().unwrap().len(), 2);
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}
