//! The blue-green strategy end to end against the real Docker engine: the new version starts
//! beside the old one and takes its name once healthy; a release that never gets healthy is
//! removed while the old one keeps serving; a release that fails its watch period is switched back.

use crate::support::{describe, rehearse, stack_lock};

#[test]
fn blue_green_upgrades_switch_and_switch_back_with_the_old_version_serving() {
    let _serial = stack_lock();
    let run = rehearse("scenarios/blue-green-upgrade.yaml");
    assert_eq!(run.output.status.code(), Some(0), "{}", describe(&run.output));
    assert_eq!(run.report["counts"]["passed"], 7, "{:#}", run.report);
    let journal = &run.journal;
    let stages = |step: &str| -> Vec<String> {
        journal
            .iter()
            .filter(|e| e["event"] == "upgrade" && e["step"] == step)
            .map(|e| e["stage"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        stages("upgrade billing"),
        ["started", "backup", "migration", "healthy", "switched", "watch", "completed"]
    );
    // The new version is judged beside the old one: no switch, the old one never stopped.
    assert_eq!(
        stages("release never gets healthy"),
        ["started", "healthy", "failed", "rollback-started", "rolled-back"]
    );
    assert_eq!(
        stages("release fails its watch"),
        ["started", "healthy", "switched", "watch", "failed", "rollback-started", "rolled-back"]
    );
    // The green container is judged by its own health monitor.
    assert!(
        journal.iter().any(|e| e["event"] == "health-changed" && e["service"] == "billing.green")
    );

    // The old version serves until the switch: availability during the upgrade and during the
    // failed release stays at 99% or more (the traffic loses at most the request that finds the
    // old container's port gone after the switch).
    for step in ["upgrade billing", "release never gets healthy"] {
        let check = run.check(&format!("slo checkout during \"{step}\""));
        assert_eq!(check["status"], "passed", "{check:#}");
    }
    let never_healthy = run.check("slo checkout during \"release never gets healthy\"");
    assert!(
        never_healthy["observed"].as_str().unwrap().contains("no failed request"),
        "{never_healthy:#}"
    );
    let versions: Vec<(&str, &str)> = journal
        .iter()
        .filter(|e| e["event"] == "version-observed")
        .map(|e| (e["moment"].as_str().unwrap(), e["body"].as_str().unwrap()))
        .collect();
    assert!(versions.iter().any(|(m, b)| *m == "after-switch" && b.contains("\"2.0\"")));
    assert!(versions.iter().all(|(m, b)| *m != "after-rollback" || b.contains("\"2.0\"")));
}
