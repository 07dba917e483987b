//! Gameday against the real Docker engine, through the CLI: `scenarios/gameday-billing.yaml`
//! (billing down on a Saturday night, the real alerting pipeline alongside) with scripted people.
//!
//! - the responders of `scenarios/gameday/responders.yaml` are in time: every check passes;
//! - an on-call who acknowledges after 15 s (target 10 s) makes the run exit 1, naming the step,
//!   the role and by how much they were late;
//! - without responders in CI, the scenario is refused before anything starts (no Docker needed).

use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{check, demo_images, describe, firedrill, leftovers, report, stack_lock};

const SCENARIO: &str = "scenarios/gameday-billing.yaml";

fn gameday_images() {
    demo_images();
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let output = firedrill()
            .args(["images", SCENARIO])
            .output()
            .expect("failed to run firedrill images");
        assert!(output.status.success(), "firedrill images failed:\n{}", describe(&output));
    });
}

/// Run the gameday with `responders` as CI would (`CI=true`, no terminal): output, report, journal.
fn run_gameday(responders: &str) -> (Output, Value, Vec<Value>, String) {
    gameday_images();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = firedrill()
        .env("CI", "true")
        .args(["run", "--responders", responders, "--report"])
        .arg(dir.path())
        .arg(SCENARIO)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("failed to run firedrill");
    let report = report(dir.path());
    let run_id = report["run-id"].as_str().expect("run-id").to_owned();
    assert_eq!(leftovers(&run_id), Vec::<String>::new(), "the gameday left objects behind");
    let journal = fs_err::read_to_string(dir.path().join("journal.jsonl"))
        .expect("journal.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a journal line is JSON"))
        .collect();
    let html = fs_err::read_to_string(dir.path().join("report.html")).expect("report.html");
    assert!(html.contains(">human on-call<") && html.contains(">human support<"), "no human lanes");
    let summary = fs_err::read_to_string(dir.path().join("summary.md")).expect("summary.md");
    assert!(summary.contains("### Gameday: people"), "{summary}");
    (output, report, journal, summary)
}

fn human<'r>(report: &'r Value, step: &str) -> &'r Value {
    report["humans"]
        .as_array()
        .expect("report.json has `humans`")
        .iter()
        .find(|h| h["step"] == step)
        .unwrap_or_else(|| panic!("no human entry `{step}` in {report:#}"))
}

#[test]
fn gameday_with_scripted_responders_in_time_passes() {
    let _serial = stack_lock();
    let (output, report, journal, summary) = run_gameday("scenarios/gameday/responders.yaml");
    assert_eq!(output.status.code(), Some(0), "{}\n{report:#}", describe(&output));
    for name in [
        "on-call acknowledges within 5 min",
        "support posts the incident within 10 min",
        "support posts the all-clear within 10 min of recovery",
        "the alerting tells customers and pages the on-call",
    ] {
        assert_eq!(check(&report, name)["status"], "passed", "{name}: {report:#}");
    }
    // The on-call's acknowledgement is the responder's, about its 3 s delay after the prompt.
    let page = human(&report, "on-call acknowledges the page");
    assert_eq!(page["acknowledged-by"], "responder");
    let after = page["done-after-ms"].as_u64().unwrap();
    assert!((3_000..10_000).contains(&after), "acknowledged {after} ms after the prompt");
    assert_eq!(page["target-ms"], 10_000);
    // Support's posts reached the status page sink: the effect is the notification itself.
    let incident = human(&report, "support posts the incident");
    assert_eq!(incident["effect"], "status-page notification on status", "{incident:#}");
    let posted = journal
        .iter()
        .filter(|e| e["event"] == "notification-received" && e["sink"] == "status")
        .count();
    assert_eq!(posted, 2, "the incident and the all-clear");
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "human-acted" && e["ok"] == true && e["status"] == 201),
        "the responder's request is on record"
    );
    // summary.md compares the people's channel with the automated ones, from the same moment.
    assert!(
        summary.contains("| status-page | support (`support posts the incident`) |"),
        "{summary}"
    );
    assert!(summary.contains("| email | automated |"), "{summary}");
}

#[test]
fn gameday_with_a_too_slow_on_call_exits_1_naming_the_step_the_role_and_the_lateness() {
    let _serial = stack_lock();
    let (output, report, _, _) = run_gameday("scenarios/gameday/responders-slow-on-call.yaml");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let late = check(&report, "on-call acknowledges within 5 min");
    assert_eq!(late["status"], "failed", "{late:#}");
    let summary = late["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("on-call was ")
            && summary.contains("late on `on-call acknowledges the page`"),
        "{summary}"
    );
    // The acknowledgement came ~15 s after the prompt, so ~5 s past the 10 s target.
    let margin = human(&report, "on-call acknowledges the page")["margin-ms"].as_i64().unwrap();
    assert!((-9_000..=-4_900).contains(&margin), "margin {margin} ms");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("on-call was "), "the summary names the late person:\n{stdout}");
    assert_eq!(check(&report, "support posts the incident within 10 min")["status"], "passed");
}

#[test]
fn gameday_without_responders_in_ci_is_refused_before_anything_starts() {
    let output = firedrill()
        .env("CI", "true")
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .args(["run", SCENARIO])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("failed to run firedrill");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("has human steps `on-call acknowledges the page` (on-call)")
            && stderr.contains("nobody can answer them here (CI=true)")
            && stderr.contains("--responders FILE"),
        "{stderr}"
    );
}

#[test]
fn gameday_responders_file_mistakes_have_positions_and_missing_roles_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("responders.yaml");
    fs_err::write(&bad, "on-call:\n  delay: soon\n  do: acknowledge\nsupport: { delay: 1s, do: { http: { path: /x } } }\n")
        .unwrap();
    let output = firedrill()
        .env("CI", "true")
        .env("NO_COLOR", "1")
        .args(["run", "--responders"])
        .arg(&bad)
        .arg(SCENARIO)
        .output()
        .expect("failed to run firedrill");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("responders.yaml:2:10"), "{stderr}");
    assert!(stderr.contains("`http` names no target"), "{stderr}");
    let partial = dir.path().join("partial.yaml");
    fs_err::write(&partial, "on-call: { delay: 1s, do: acknowledge }\n").unwrap();
    let output = firedrill()
        .env("CI", "true")
        .args(["run", "--responders"])
        .arg(&partial)
        .arg(SCENARIO)
        .output()
        .expect("failed to run firedrill");
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("step `support posts the incident` asks role `support`"), "{stderr}");
}
