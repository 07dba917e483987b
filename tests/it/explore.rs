//! `firedrill explore` against the real engine on the small non-demo stack (nginx from Debian's
//! packages): a freeze long enough to break the outage budget is found, shrunk, written as
//! `minimal.yaml`, and `firedrill run` of that file fails the same check. Every case's stack is
//! gone afterwards.

use crate::support::{describe, firedrill, leftovers, stack_lock};

const SCENARIO: &str = "tests/scenarios/webcache/explore-pause.yaml";

#[test]
fn explore_finds_a_long_freeze_shrinks_it_and_run_replays_the_minimum() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("explore");
    // Seed 1 draws a held case first, then a failing one: both phases run (about 6 cases of
    // about 7 s each here).
    let output = firedrill()
        .args(["explore", SCENARIO, "--seed", "1", "--runs", "6", "--reruns", "0"])
        .args(["--time-budget", "80s", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAILING SCHEDULE: check `slo pages` fails"), "{}", describe(&output));

    let cases: Vec<serde_json::Value> = fs_err::read_to_string(out.join("cases.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(cases.iter().any(|c| c["phase"] == "search" && c["verdict"]["outcome"] == "held"));
    assert!(cases.iter().any(|c| c["phase"] == "shrink"));
    let accepted: Vec<&serde_json::Value> =
        cases.iter().filter(|c| c["accepted"] == true).collect();
    let minimal = &accepted.last().expect("a smaller schedule was taken")["schedule"]["faults"];
    let faults = minimal.as_array().unwrap();
    assert_eq!(faults.len(), 1, "{minimal}");
    assert_eq!((&faults[0]["kind"], &faults[0]["target"]), (&"pause".into(), &"web".into()));
    assert_eq!(faults[0]["start"], "0s", "shrunk to the window's start: {minimal}");

    // Every case ran for real, with its journal kept, and left nothing behind.
    for case in 1..=cases.len() {
        let report = out.join(format!("cases/{case:04}/report.json"));
        let report: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(&report).unwrap()).unwrap();
        let run_id = report["run-id"].as_str().unwrap();
        assert_eq!(leftovers(run_id), Vec::<String>::new(), "case {case} left objects behind");
        assert!(out.join(format!("cases/{case:04}/journal.jsonl")).is_file());
    }
    let page = fs_err::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("FAILING SCHEDULE") && page.contains("<svg"), "index.html");

    // The minimum is an ordinary scenario: `run` replays it from any folder and fails the check.
    let minimal_yaml = out.join("minimal.yaml");
    let text = fs_err::read_to_string(&minimal_yaml).unwrap();
    assert!(!text.contains("explore:"), "{text}");
    let history = dir.path().join("history.sqlite");
    let replay = firedrill()
        .current_dir(dir.path())
        .args(["run", "--seed", "1", "--history"])
        .arg(&history)
        .arg(&minimal_yaml)
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(1), "{}", describe(&replay));
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(stdout.contains("FAIL slo pages"), "{}", describe(&replay));
}
