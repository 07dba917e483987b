//! Upgrade rehearsals end to end against the real Docker engine: a good release, five broken
//! releases rolled back, and a destructive release whose rollback cannot bring the data back.

use crate::support::{demo_images, describe, firedrill, leftovers, report, stack_lock};

fn run(file: &str) -> (std::process::Output, serde_json::Value, Vec<serde_json::Value>) {
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let output = firedrill().args(["run", "--report"]).arg(dir.path()).arg(file).output().unwrap();
    let report = report(dir.path());
    let journal = fs_err::read_to_string(dir.path().join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(leftovers(report["run-id"].as_str().unwrap()), Vec::<String>::new());
    (output, report, journal)
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#}"))
}

fn events<'a>(journal: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    journal.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn a_good_release_completes_with_no_lost_write() {
    let _serial = stack_lock();
    let (output, report, journal) = run("scenarios/weekend-upgrade.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stages: Vec<&str> =
        events(&journal, "upgrade").iter().map(|e| e["stage"].as_str().unwrap()).collect();
    assert_eq!(
        stages,
        ["started", "backup", "migration", "switched", "healthy", "watch", "completed"],
        "{stages:?}"
    );
    let versions = events(&journal, "version-observed");
    assert!(
        versions
            .iter()
            .any(|v| v["moment"] == "before" && v["body"].as_str().unwrap().contains("\"1.0\""))
    );
    assert!(
        versions
            .iter()
            .any(|v| v["moment"] == "after-switch"
                && v["body"].as_str().unwrap().contains("\"2.0\""))
    );
    let verified = events(&journal, "writes-verified");
    assert_eq!(verified.len(), 1);
    assert!(verified[0]["acknowledged"].as_u64().unwrap() > 50, "{:#}", verified[0]);
    assert_eq!(verified[0]["lost"].as_array().unwrap().len(), 0);
    assert_eq!(check(&report, "no-lost-writes checkout")["status"], "passed");
}

#[test]
fn every_broken_release_is_rolled_back_and_everything_is_restored() {
    let _serial = stack_lock();
    let (output, report, journal) = run("scenarios/upgrade-broken-rollback.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(report["counts"]["passed"], 11, "{report:#}");
    // Each release failed the way it was built to fail, at the stage that catches it.
    let failed_at: Vec<(String, String)> = events(&journal, "upgrade")
        .iter()
        .filter(|e| e["ok"] == false && e["stage"] != "failed")
        .map(|e| (e["step"].as_str().unwrap().to_owned(), e["stage"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ("release crashes on start", "healthy"),
        ("release never gets healthy", "healthy"),
        ("migration fails halfway", "migration"),
        ("release too slow to start", "healthy"),
        ("release answers 500 to a fifth of requests", "watch"),
    ]
    .map(|(step, stage)| (step.to_owned(), stage.to_owned()));
    assert_eq!(failed_at, expected);
    // The partial migration was undone by the database's restore hook.
    assert!(events(&journal, "upgrade").iter().any(|e| e["stage"] == "restore" && e["ok"] == true));
    // Every rollback brought version 1.0 back.
    let after_rollback: Vec<&str> = events(&journal, "version-observed")
        .iter()
        .filter(|v| v["moment"] == "after-rollback")
        .map(|v| v["body"].as_str().unwrap())
        .collect();
    assert_eq!(after_rollback.len(), 5);
    assert!(after_rollback.iter().all(|body| body.contains("\"1.0\"")), "{after_rollback:?}");
}

#[test]
fn a_destructive_release_fails_the_rehearsal_and_names_the_lost_writes() {
    let _serial = stack_lock();
    let (output, report, journal) = run("scenarios/upgrade-destructive.yaml");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    // Service and version came back...
    assert_eq!(check(&report, "restored billing after \"upgrade billing\"")["status"], "passed");
    // ... the data did not, and the report says exactly which writes are gone.
    let lost_check = check(&report, "no-lost-writes checkout");
    assert_eq!(lost_check["status"], "failed", "{lost_check:#}");
    let verified = events(&journal, "writes-verified");
    let lost = verified[0]["lost"].as_array().unwrap();
    assert!(!lost.is_empty(), "{:#}", verified[0]);
    let first_lost = lost[0].as_str().unwrap();
    assert!(lost_check["observed"].as_str().unwrap().contains(first_lost), "{lost_check:#}");
}

#[test]
fn a_missing_release_image_is_an_error_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("missing-release.yaml");
    fs_err::write(
        &file,
        "name: missing-release\nstack:\n  services:\n    web:\n      image: firedrill-demo/base:bookworm\n      command: [sleep, infinity]\nsteps:\n  - upgrade: { service: web, image: firedrill-test/never-built:2.0 }\n",
    )
    .unwrap();
    demo_images();
    let output = firedrill()
        .args(["run", "--report"])
        .arg(dir.path().join("r"))
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("firedrill-test/never-built:2.0"), "{stderr}");
    let report = report(&dir.path().join("r"));
    assert_eq!(report["status"], "aborted");
    // Nothing was started: the failure is in `prepare`, before bring-up.
    assert!(
        !fs_err::read_to_string(dir.path().join("r/journal.jsonl"))
            .unwrap()
            .contains("service-started")
    );
}
