//! `firedrill run` end to end against the real Docker engine: verdicts and exit codes, reports,
//! Ctrl-C, crash leftovers and their sweep, an unreachable engine.

use std::process::{Command, Stdio};
use std::time::Duration;

use firedrill::{CheckStatus, EventKind, RunStatus, Verdict};

use crate::support::{
    demo_images, describe, firedrill, journal_has, leftovers, rehearse, rehearse_in_process,
    report, run_id_of, stack_lock, wait_for_journal_line,
};

fn checks_by_name(report: &serde_json::Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .expect("checks is a list")
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["status"].as_str().unwrap().to_owned()))
        .collect()
}

fn run_scenario(file: &str) -> (std::process::Output, tempfile::TempDir) {
    run_scenario_with(file, &[])
}

fn run_scenario_with(file: &str, args: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let output = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .args(args)
        .arg(file)
        .output()
        .expect("failed to run firedrill");
    (output, dir)
}

/// Start `long-wait.yaml` (a 10-minute pause of the database) and return once the pause is
/// applied: the timeline is under way, with a paused container to undo.
/// `capture`: pipe its output (to read it after it exits); otherwise discard it.
fn start_long_wait(dir: &std::path::Path, capture: bool) -> (std::process::Child, String) {
    demo_images();
    let output = || if capture { Stdio::piped() } else { Stdio::null() };
    let child = firedrill()
        .args(["run", "--report"])
        .arg(dir)
        .arg("tests/scenarios/slow/long-wait.yaml")
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap();
    let run_id = run_id_of(dir);
    wait_for_journal_line(dir, Duration::from_secs(120), |v| {
        v["event"] == "container-action" && v["action"] == "pause"
    });
    (child, run_id)
}

#[test]
fn smoke_passes_and_leaves_nothing_behind() {
    let _serial = stack_lock();
    let (output, dir) = run_scenario("scenarios/smoke.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = report(dir.path());
    assert_eq!(report["status"], "completed");
    let checks = checks_by_name(&report);
    assert_eq!(checks.len(), 4, "{checks:?}");
    assert!(checks.iter().all(|(_, status)| status == "passed"), "{checks:?}");
    let run_id = report["run-id"].as_str().unwrap();
    assert_eq!(leftovers(run_id), Vec::<String>::new());

    // The fault really happened: Docker reported billing's death, and the harness saw billing down.
    let journal = fs_err::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    assert!(
        journal.contains(r#""event":"container-event","service":"billing","action":"die""#),
        "{journal}"
    );
    assert!(
        journal.contains(r#""event":"health-changed","service":"billing","healthy":false"#),
        "{journal}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("smoke"), "{stdout}");
}

#[test]
fn db_pause_makes_billing_unhealthy_then_it_recovers() {
    let _serial = stack_lock();
    let outcome = rehearse_in_process("scenarios/db-pause.yaml", |rehearsal| rehearsal);
    outcome.assert_held();
    assert_eq!(outcome.verdicts().len(), 5, "{:#?}", outcome.verdicts());
    for action in ["pause", "unpause"] {
        assert!(
            journal_has(&outcome, |kind| matches!(
                kind,
                EventKind::ContainerEvent { service, action: seen, .. }
                    if service == "db" && seen == action
            )),
            "no `{action}` of db in the journal"
        );
    }
}

#[test]
fn a_failed_check_is_named_with_evidence_and_the_others_still_judged() {
    let _serial = stack_lock();
    let outcome = rehearse_in_process("tests/scenarios/fail/db-pause-expects-healthy.yaml", |r| r);
    assert_eq!(outcome.status(), RunStatus::Deviated);
    let failed: Vec<&Verdict> =
        outcome.verdicts().iter().filter(|v| v.status == CheckStatus::Failed).collect();
    assert_eq!(failed.len(), 1, "{:#?}", outcome.verdicts());
    assert_eq!(failed[0].kind, "healthy-throughout");
    assert!(!failed[0].evidence.is_empty(), "{:#?}", failed[0]);
    assert!(failed[0].observed.contains("unhealthy"), "{:#?}", failed[0]);
    // The recovery check in the same file still passes: one failure does not hide the rest.
    let passed = outcome.verdicts().iter().filter(|v| v.status == CheckStatus::Passed).count();
    assert_eq!(passed, 1, "{:#?}", outcome.verdicts());
    // `assert_held` fails the test with the CLI's summary, naming the failed check.
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| outcome.assert_held()))
        .expect_err("a deviated run does not hold");
    let message = panic.downcast_ref::<String>().expect("a formatted panic message");
    assert!(message.contains(&format!("  FAIL {}", failed[0].name)), "{message}");
}

#[test]
fn a_failed_check_exits_1_with_a_github_annotation_on_its_expect_line() {
    let _serial = stack_lock();
    let file = "tests/scenarios/fail/db-pause-expects-healthy.yaml";
    let (output, dir) = run_scenario_with(file, &["--format", "github"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    // `--format github`: the failed check is annotated on its `expect:` entry (line 36, col 5).
    let stdout = String::from_utf8_lossy(&output.stdout);
    let annotations: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(annotations.len(), 1, "{stdout}");
    assert!(
        annotations[0].starts_with(&format!(
            "::error file={file},line=36,col=5,title=check failed%3A healthy-throughout billing"
        )),
        "{stdout}"
    );
    let report = report(dir.path());
    assert_eq!(report["status"], "deviated");
    let failed: Vec<&serde_json::Value> =
        report["checks"].as_array().unwrap().iter().filter(|c| c["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert_eq!(failed[0]["kind"], "healthy-throughout");
    assert!(!failed[0]["evidence"].as_array().unwrap().is_empty(), "{report:#}");
    assert!(failed[0]["observed"].as_str().unwrap().contains("unhealthy"), "{report:#}");
    assert_eq!(leftovers(report["run-id"].as_str().unwrap()), Vec::<String>::new());
}

#[test]
fn sigint_mid_timeline_exits_130_and_removes_everything() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let (child, run_id) = start_long_wait(dir.path(), true);
    assert!(!leftovers(&run_id).is_empty());
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    let report = report(dir.path());
    assert_eq!(report["status"], "interrupted");
}

#[test]
fn leftovers_of_a_killed_run_are_swept_by_gc_and_by_the_next_run() {
    let _serial = stack_lock();
    demo_images();
    let mut killed = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, run_id) = start_long_wait(dir.path(), false);
        child.kill().unwrap(); // SIGKILL: no cleanup code runs.
        child.wait().unwrap();
        assert!(!leftovers(&run_id).is_empty(), "a SIGKILLed run leaves its stack");
        killed.push(run_id);
    }

    // `firedrill gc` removes the first run's leftovers (paused container included)...
    let output = firedrill().args(["gc", "--run", &killed[0]]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&killed[0]), Vec::<String>::new());

    // ... and the next run's start sweeps the second's, recording what it removed.
    let (output, dir) = run_scenario("scenarios/db-pause.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&killed[1]), Vec::<String>::new());
    let swept =
        wait_for_journal_line(dir.path(), Duration::from_secs(1), |v| v["event"] == "swept");
    let swept = swept.to_string();
    assert!(swept.contains(&killed[1]), "{swept}");
}

#[test]
fn gc_without_arguments_removes_dead_runs_only() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, run_id) = start_long_wait(dir.path(), false);
    // The run is alive: gc must not touch it.
    let output = firedrill().arg("gc").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(!leftovers(&run_id).is_empty(), "gc removed a live run's stack");
    child.kill().unwrap();
    child.wait().unwrap();
    let output = firedrill().arg("gc").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

#[test]
fn an_unreachable_docker_engine_is_one_clear_error_with_exit_2() {
    let output = firedrill()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["run", "scenarios/smoke.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one error line and one hint line: {stderr}");
    assert!(lines[0].starts_with("error: cannot reach the Docker engine"), "{stderr}");
    assert!(lines[0].contains("/nonexistent/docker.sock"), "{stderr}");
    assert!(lines[1].starts_with("hint: "), "{stderr}");
}

#[test]
fn an_invalid_scenario_starts_nothing_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    fs_err::write(&file, "name: bad\nstack:\n  services:\n    web:\n      image: nothing:here\nsteps:\n  - kill: { service: wbe }\n").unwrap();
    let output = firedrill().arg("run").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.yaml:7:"), "{stderr}");
    assert!(stderr.contains("wbe"), "{stderr}");
}

#[test]
fn a_missing_image_is_named_with_a_hint_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("missing.yaml");
    fs_err::write(
        &file,
        "name: missing-image\nstack:\n  services:\n    web:\n      image: firedrill-test/does-not-exist:1\n",
    )
    .unwrap();
    let output = firedrill()
        .args(["run", "--report"])
        .arg(dir.path().join("r"))
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("firedrill-test/does-not-exist:1"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
    let report = report(&dir.path().join("r"));
    assert_eq!(report["status"], "aborted");
}

#[test]
fn a_service_that_exits_at_start_fails_bring_up_with_its_logs() {
    let _serial = stack_lock();
    let (output, dir) = run_scenario("tests/scenarios/fail/crash-on-start.yaml");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("service `db` did not become ready"), "{stderr}");
    assert!(stderr.contains("exited with code 3"), "{stderr}");
    assert!(stderr.contains("FATAL: config file is broken"), "{stderr}");
    let report = report(dir.path());
    assert_eq!(report["status"], "aborted");
    assert_eq!(leftovers(report["run-id"].as_str().unwrap()), Vec::<String>::new());
}

#[test]
fn keep_leaves_the_stack_up_until_gc_removes_that_run() {
    let _serial = stack_lock();
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let output = firedrill()
        .args(["run", "--keep", "--report"])
        .arg(dir.path())
        .arg("scenarios/db-pause.yaml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let run_id = report(dir.path())["run-id"].as_str().unwrap().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("firedrill gc --run {run_id}")), "{stderr}");
    let kept = leftovers(&run_id);
    assert_eq!(kept.len(), 3, "two containers and the network: {kept:?}");

    // Its owner is gone, but it is kept: a plain gc leaves it alone.
    let output = firedrill().arg("gc").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), kept);

    let output = firedrill().args(["gc", "--run", &run_id]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

#[test]
fn a_service_that_dies_during_a_parallel_bring_up_stops_the_rest_cleanly() {
    let _serial = stack_lock();
    let run = rehearse("tests/scenarios/fail/parallel-one-dies.yaml");
    assert_eq!(run.output.status.code(), Some(2), "{}", describe(&run.output));
    assert_eq!(run.report["status"], "aborted", "{:#}", run.report);
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert!(stderr.contains("service `broken` did not become ready"), "{stderr}");
    assert!(stderr.contains("exited with code 4"), "{stderr}");
    // The failing service's logs are in the journal, not only on the terminal.
    let logs = run
        .journal
        .iter()
        .find(|e| e["event"] == "service-logs" && e["service"] == "broken")
        .unwrap_or_else(|| panic!("no logs of `broken` in the journal: {:#?}", run.journal));
    assert!(logs["lines"].as_str().unwrap().contains("FATAL: broken refuses to serve"), "{logs:#}");
    // The siblings were started alongside it (parallel, not one after another), and the service
    // that depends on it never was. `rehearse` asserted that nothing is left behind.
    let started: Vec<&str> = run
        .journal
        .iter()
        .filter(|e| e["event"] == "service-started")
        .filter_map(|e| e["service"].as_str())
        .collect();
    assert!(started.contains(&"broken"), "{started:?}");
    assert!(started.iter().filter(|s| s.starts_with('s')).count() >= 2, "{started:?}");
    assert!(!started.contains(&"web"), "web depends on broken: {started:?}");
}
