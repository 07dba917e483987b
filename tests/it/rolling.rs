//! The rolling strategy end to end against the real Docker engine: three billing replicas are
//! replaced one at a time while the traffic spreads across the ones in rotation; a release that
//! crashes is rolled back after its first replica; a release that fails its watch is rolled back
//! replica by replica.

use crate::support::{describe, rehearse, stack_lock};

#[test]
fn rolling_upgrades_replace_replicas_one_batch_at_a_time_and_roll_back() {
    let _serial = stack_lock();
    let run = rehearse("scenarios/rolling-upgrade.yaml");
    assert_eq!(run.output.status.code(), Some(0), "{}", describe(&run.output));
    assert_eq!(run.report["counts"]["passed"], 9, "{:#}", run.report);
    let journal = &run.journal;

    let upgrade_events = |step: &str| -> Vec<(String, String)> {
        journal
            .iter()
            .filter(|e| e["event"] == "upgrade" && e["step"] == step)
            .map(|e| {
                let detail = e["detail"].as_str().unwrap_or_default().to_owned();
                (e["stage"].as_str().unwrap().to_owned(), detail)
            })
            .collect()
    };
    let stages = |step: &str| -> Vec<String> {
        upgrade_events(step).into_iter().map(|(stage, _)| stage).collect()
    };

    // Three replicas started, each with its own health monitor, and the service's health
    // aggregated over them.
    for replica in ["billing.1", "billing.2", "billing.3"] {
        assert!(
            journal.iter().any(|e| e["event"] == "service-started" && e["service"] == replica),
            "{replica} never started"
        );
        assert!(journal.iter().any(|e| e["event"] == "health-changed" && e["service"] == replica));
    }
    assert!(journal.iter().any(|e| e["event"] == "health-changed"
        && e["service"] == "billing"
        && e["healthy"] == true
        && e["detail"].as_str().unwrap().ends_with("/3 replicas healthy")));

    // One replica at a time, in order.
    assert_eq!(
        stages("upgrade billing"),
        [
            "started",
            "migration",
            "switched",
            "healthy",
            "switched",
            "healthy",
            "switched",
            "healthy",
            "watch",
            "completed"
        ]
    );
    let switched: Vec<String> = upgrade_events("upgrade billing")
        .into_iter()
        .filter(|(stage, _)| stage == "switched")
        .map(|(_, detail)| detail)
        .collect();
    for (switch, replica) in switched.iter().zip(["`billing.1`", "`billing.2`", "`billing.3`"]) {
        assert!(switch.starts_with(replica), "{switch}");
    }
    // The crashing release fails on its first replica; the other two never stop serving. Its
    // `switched` is stamped when the replica ran the new image, before its health was judged.
    assert_eq!(
        stages("release crashes on start"),
        ["started", "switched", "healthy", "failed", "rollback-started", "rolled-back"]
    );
    let crash = upgrade_events("release crashes on start");
    assert!(crash.iter().any(|(s, d)| s == "healthy" && d.contains("`billing.1`")), "{crash:?}");
    assert!(crash.iter().any(|(s, d)| s == "rolled-back" && d.starts_with("`billing.1` back to")));
    // `max-unavailable: 2`: two replicas, then the third; the watch fails; all three go back.
    let watch = upgrade_events("release fails its watch");
    assert!(
        watch.iter().any(|(s, d)| s == "switched" && d.starts_with("`billing.1`, `billing.2`"))
    );
    assert!(
        watch.iter().any(|(s, d)| s == "rolled-back"
            && d.starts_with("`billing.1`, `billing.2`, `billing.3` back to")),
        "{watch:?}"
    );

    // Traffic spread across the replicas kept the service available through the rolling release
    // and through the crashing one.
    for step in ["upgrade billing", "release crashes on start"] {
        let slo = run.check(&format!("slo checkout during \"{step}\""));
        assert_eq!(slo["status"], "passed", "{slo:#}");
    }
    let versions: Vec<(&str, &str)> = journal
        .iter()
        .filter(|e| e["event"] == "version-observed")
        .map(|e| (e["moment"].as_str().unwrap(), e["body"].as_str().unwrap()))
        .collect();
    assert!(versions.iter().any(|(m, b)| *m == "after-switch" && b.contains("\"2.0\"")));
    assert!(versions.iter().all(|(m, b)| *m != "after-rollback" || b.contains("\"2.0\"")));
}

/// Two nginx replicas whose graceful stop takes 3 s, rolled 1.0 → 2.0 under 50 req/s. The stack
/// is never write-locked across a stop or a start, so the traffic's port look-ups keep answering
/// and the other replica serves every request (before, every look-up during the 3 s stop waited
/// behind the lock: "the port lookup did not answer within 2s", availability 37%).
#[test]
fn a_slow_graceful_stop_does_not_stall_the_harness_traffic() {
    let _serial = stack_lock();
    let run = rehearse("tests/scenarios/webcache/rolling-slow-stop.yaml");
    assert_eq!(run.output.status.code(), Some(0), "{}", describe(&run.output));
    assert_eq!(run.report["counts"]["passed"], 2, "{:#}", run.report);
    let journal = &run.journal;
    let requests: Vec<_> = journal.iter().filter(|e| e["event"] == "traffic-request").collect();
    assert!(requests.len() > 200, "{} requests", requests.len());
    let failed: Vec<String> =
        requests.iter().filter(|e| e["ok"] != true).map(|e| e.to_string()).collect();
    assert_eq!(failed, Vec::<String>::new());
    // The stops really were slow (the shell held nginx's SIGQUIT for 3 s): each replica's stop
    // ran from its `kill` (the stop signal) to its `die`, exit 0.
    for replica in ["web.1", "web.2"] {
        let at = |action: &str| {
            journal
                .iter()
                .find(|e| {
                    e["event"] == "container-event"
                        && e["service"] == replica
                        && e["action"] == action
                })
                .unwrap_or_else(|| panic!("no {action} of {replica}"))
        };
        let (kill, die) = (at("kill"), at("die"));
        assert_eq!(die["exit-code"], 0, "{die}");
        let stop_us = die["offset-us"].as_u64().unwrap() - kill["offset-us"].as_u64().unwrap();
        assert!(stop_us >= 2_500_000, "{replica} stopped in {stop_us} µs");
    }
}
