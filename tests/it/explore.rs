//! `firedrill explore` against the real engine. On the small non-demo stack (nginx from Debian's
//! packages): a freeze long enough to break the outage budget is found, shrunk, written as
//! `minimal.yaml`, and `firedrill run` of that file fails the same check. On the demo stack, with
//! `reuse-stack: true`: the database freeze during an upgrade's watch that rolls a good release
//! back is found and replayed, a space of outages at the swap holds (exit 0), and Ctrl-C mid-search
//! exits 130 with the cases so far written. Every case's journal is kept and every case's stack,
//! fault and ledger is gone afterwards.

use crate::support::{demo_images, describe, firedrill, leftovers, stack_lock};

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

/// The demo stack's weakness: a database freeze while the upgrade's watch runs.
const DEMO_WEAK: &str = "scenarios/explore-upgrade-db-freeze.yaml";
/// The same upgrade with freezes and restarts only at the swap: it holds.
const DEMO_HOLDS: &str = "scenarios/explore-upgrade-db-swap.yaml";

/// Every case's `report.json` and `journal.jsonl` (kept, from `run-started` to `run-ended`), and
/// its run's objects gone; returns each case's journal events by name.
fn check_cases(out: &std::path::Path, cases: usize) -> Vec<Vec<String>> {
    let mut journals = Vec::new();
    for case in 1..=cases {
        let dir = out.join(format!("cases/{case:04}"));
        let report: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        let run_id = report["run-id"].as_str().unwrap();
        assert_eq!(leftovers(run_id), Vec::<String>::new(), "case {case} left objects behind");
        let events: Vec<String> = fs_err::read_to_string(dir.join("journal.jsonl"))
            .unwrap()
            .lines()
            .map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                event["event"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(events.first().map(String::as_str), Some("run-started"), "case {case}");
        assert!(events.iter().any(|e| e == "run-ended"), "case {case}: {events:?}");
        journals.push(events);
    }
    journals
}

fn read_cases(out: &std::path::Path) -> Vec<serde_json::Value> {
    fs_err::read_to_string(out.join("cases.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn no_ledgers(state: &std::path::Path) {
    let ledgers = state.join("ledger");
    let left: Vec<_> = fs_err::read_dir(&ledgers)
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "fault ledgers left in {}: {left:?}", ledgers.display());
}

#[test]
fn explore_finds_the_demo_rollback_on_a_db_freeze_during_the_watch_and_run_replays_it() {
    let _serial = stack_lock();
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("explore");
    let state = dir.path().join("state");
    let output = firedrill()
        .env("FIREDRILL_STATE_DIR", &state)
        .args(["explore", DEMO_WEAK, "--seed", "2", "--runs", "6", "--reruns", "0"])
        .args(["--time-budget", "150s", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let check = "upgrade-succeeds \"upgrade billing\"";
    assert!(stdout.contains(&format!("FAILING SCHEDULE: check `{check}` fails")), "{stdout}");

    let cases = read_cases(&out);
    let accepted: Vec<&serde_json::Value> =
        cases.iter().filter(|c| c["accepted"] == true).collect();
    let failing = accepted.last().copied().unwrap_or_else(|| {
        cases.iter().find(|c| c["verdict"]["outcome"] == "failed").expect("a failing case")
    });
    let faults = failing["schedule"]["faults"].as_array().unwrap();
    assert!((1..=2).contains(&faults.len()), "{faults:?}");
    assert!(faults.iter().all(|f| f["kind"] == "pause" && f["target"] == "db"), "{faults:?}");

    // Every case's journal is kept; the cases after the first ran on the kept stack (or say why
    // not), and nothing is left: no container, network or fault ledger.
    let journals = check_cases(&out, cases.len());
    for (case, events) in journals.iter().enumerate().skip(1) {
        assert!(
            events.iter().any(|e| e == "stack-reused" || e == "stack-renewed"),
            "case {}: {events:?}",
            case + 1
        );
    }
    assert!(journals.iter().skip(1).any(|e| e.iter().any(|e| e == "stack-reused")));
    no_ledgers(&state);

    // The minimum is an ordinary scenario that fails the same check when run. Its freezes start
    // at the moment the new version is healthy (the watch), however long the swap takes.
    let minimal = fs_err::read_to_string(out.join("minimal.yaml")).unwrap();
    assert!(minimal.contains(r#"at: { step: "upgrade billing", event: healthy }"#), "{minimal}");
    let replay = firedrill()
        .env("FIREDRILL_STATE_DIR", &state)
        .args(["run", "--no-history", "--seed", "2"])
        .arg(out.join("minimal.yaml"))
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(1), "{}", describe(&replay));
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(stdout.contains(&format!("FAIL {check}")), "{}", describe(&replay));
    no_ledgers(&state);
}

#[test]
fn explore_of_db_outages_at_the_swap_finds_nothing_and_exits_0() {
    let _serial = stack_lock();
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("explore");
    let output = firedrill()
        .env("FIREDRILL_STATE_DIR", dir.path().join("state"))
        .args(["explore", DEMO_HOLDS, "--seed", "1", "--runs", "3", "--reruns", "0"])
        .args(["--time-budget", "150s", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("no failing schedule in 3 case(s)"), "{}", describe(&output));
    let cases = read_cases(&out);
    assert_eq!(cases.len(), 3);
    assert!(cases.iter().all(|c| c["verdict"]["outcome"] == "held"), "{cases:?}");
    check_cases(&out, 3);
    no_ledgers(&dir.path().join("state"));
}

#[test]
fn sigint_mid_search_exits_130_keeps_the_cases_so_far_and_leaves_nothing() {
    let _serial = stack_lock();
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("explore");
    let state = dir.path().join("state");
    let child = firedrill()
        .env("FIREDRILL_STATE_DIR", &state)
        .args(["explore", DEMO_HOLDS, "--seed", "1", "--runs", "20", "--reruns", "0"])
        .args(["--time-budget", "10m", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Case 1 ran; case 2 (on the kept stack) is in its timeline when the signal comes.
    let second = out.join("cases/0002");
    let _ = crate::support::wait_for_journal_line(
        &second,
        std::time::Duration::from_secs(120),
        |event| event["event"] == "phase-started" && event["phase"] == "steps",
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", describe(&output));

    let cases = read_cases(&out);
    assert!(cases.len() >= 2, "{cases:?}");
    assert_eq!(cases[0]["verdict"]["outcome"], "held", "{cases:?}");
    assert_eq!(cases.last().unwrap()["verdict"]["outcome"], "interrupted", "{cases:?}");
    check_cases(&out, cases.len());
    no_ledgers(&state);
    assert!(out.join("exploration.json").is_file() && out.join("index.html").is_file());
}
