//! The blue-green strategy end to end against the real Docker engine: the new version starts
//! beside the old one and takes its name once healthy without losing a request; a release that
//! never gets healthy is removed while the old one keeps serving; a release that fails its watch
//! period is switched back; the version left behind is stopped gracefully, never killed.

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

    // The traffic moves to the new version before the old one loses its endpoint: at 50 req/s,
    // no request fails during the upgrade nor during the failed release (`availability: 100%`).
    for step in ["upgrade billing", "release never gets healthy"] {
        let check = run.check(&format!("slo checkout during \"{step}\""));
        assert_eq!(check["status"], "passed", "{check:#}");
    }
    assert_eq!(failed_requests(journal, "upgrade billing"), Vec::<String>::new());
    // Every version that went was stopped with its stop signal (billing exits 0 on SIGTERM).
    assert_graceful_stops(journal, "baseline", "after the switch back");
    // `rolled-back` is stamped when the rollback is done, before the version is asked.
    for step in ["release never gets healthy", "release fails its watch"] {
        let seq = |pred: &dyn Fn(&serde_json::Value) -> bool| {
            journal.iter().find(|e| e["step"] == step && pred(e)).map(|e| e["seq"].as_u64())
        };
        let rolled_back = seq(&|e| e["event"] == "upgrade" && e["stage"] == "rolled-back");
        let version = seq(&|e| e["event"] == "version-observed" && e["moment"] == "after-rollback");
        assert!(rolled_back.is_some() && version.is_some(), "{step}");
        assert!(rolled_back < version, "{step}: rolled-back after the version check");
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

/// Ten blue-green upgrades of the non-demo nginx, back and forth, at 50 req/s in one run: the ten
/// repetitions the zero-loss promise is tested over. Not one request fails, and each of the ten
/// old versions exits 0 on nginx's graceful `SIGQUIT` (never 137, a kill).
#[test]
fn ten_blue_green_switches_of_nginx_lose_no_request_and_stop_the_old_version_gracefully() {
    let _serial = stack_lock();
    let run = rehearse("tests/scenarios/webcache/blue-green-back-and-forth.yaml");
    assert_eq!(run.output.status.code(), Some(0), "{}", describe(&run.output));
    assert_eq!(run.report["counts"]["passed"], 11, "{:#}", run.report);
    let journal = &run.journal;
    let switched = journal
        .iter()
        .filter(|e| e["event"] == "upgrade" && e["stage"] == "switched" && e["ok"] == true)
        .count();
    assert_eq!(switched, 10);
    let requests: Vec<_> = journal.iter().filter(|e| e["event"] == "traffic-request").collect();
    assert!(requests.len() > 500, "{} requests", requests.len());
    let failed: Vec<String> =
        requests.iter().filter(|e| e["ok"] != true).map(|e| e.to_string()).collect();
    assert_eq!(failed, Vec::<String>::new());
    let deaths = assert_graceful_stops(journal, "baseline", "after the releases");
    assert_eq!(deaths, 10, "one graceful stop per replaced version");
}

/// The failed traffic requests scheduled while `step` ran.
fn failed_requests(journal: &[serde_json::Value], step: &str) -> Vec<String> {
    let (from, to) = step_window(journal, step);
    journal
        .iter()
        .filter(|e| e["event"] == "traffic-request" && e["ok"] != true)
        .filter(|e| (from..to).contains(&e["scheduled-us"].as_u64().unwrap()))
        .map(|e| e.to_string())
        .collect()
}

/// The offsets (µs) where `step` started and ended.
fn step_window(journal: &[serde_json::Value], step: &str) -> (u64, u64) {
    let at = |event: &str| {
        journal
            .iter()
            .find(|e| e["event"] == event && e["step"] == step)
            .and_then(|e| e["offset-us"].as_u64())
            .unwrap_or_else(|| panic!("no {event} for {step}"))
    };
    (at("step-started"), at("step-ended"))
}

/// Every container that died from the start of step `first` to the end of step `last` exited 0
/// (its stop signal, then a clean exit); returns how many died.
fn assert_graceful_stops(journal: &[serde_json::Value], first: &str, last: &str) -> usize {
    let (from, _) = step_window(journal, first);
    let (_, to) = step_window(journal, last);
    let deaths: Vec<&serde_json::Value> = journal
        .iter()
        .filter(|e| e["event"] == "container-event" && e["action"] == "die")
        .filter(|e| (from..=to).contains(&e["offset-us"].as_u64().unwrap()))
        .filter(|e| !e["service"].as_str().unwrap().ends_with(".migrate"))
        .collect();
    for death in &deaths {
        assert_eq!(death["exit-code"], 0, "not a graceful stop: {death}");
    }
    deaths.len()
}
