//! `prometheus` and `alert` checks against the demo's real Prometheus and Alertmanager, through
//! the CLI: Alertmanager's route is broken on purpose (`ROUTE_RECEIVER=blackhole`), so the alert
//! fires in Prometheus but reaches nobody, and the `alert` check must fail naming that hop. The
//! chain passing end to end is `notify::an_outage_reaches_every_customer...` (outage-notify's
//! `alert` check), which this file does not repeat.

use crate::support::{check, demo_images, describe, firedrill, rehearse, stack_lock};

const SCENARIO: &str = "tests/scenarios/alerting/route-broken.yaml";

#[test]
fn prometheus_checks_and_a_broken_alertmanager_route_named_as_the_failed_hop() {
    let _serial = stack_lock();
    demo_images();
    let images = firedrill().args(["images", SCENARIO]).output().expect("firedrill images");
    assert!(images.status.success(), "firedrill images failed:\n{}", describe(&images));
    let run = rehearse(SCENARIO);
    let (report, journal) = (&run.report, &run.journal);
    assert_eq!(run.output.status.code(), Some(1), "{}", describe(&run.output));
    assert_eq!(report["status"], "deviated", "{report:#}");

    // The alert fired in Prometheus in time, and Alertmanager sent it to `blackhole`.
    let chain = check(report, "billing alert chain");
    assert_eq!(chain["status"], "failed", "{chain:#}");
    let summary = chain["summary"].as_str().unwrap();
    assert!(
        summary.contains("Alertmanager routed `BillingDown` to `blackhole`, not `customers`"),
        "{summary}"
    );
    let hops = chain["channels"].as_array().unwrap();
    let outcome = |name: &str| {
        hops.iter()
            .find(|h| h["channel"] == name)
            .map(|h| h["outcome"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no hop `{name}` in {hops:#?}"))
    };
    assert_eq!(outcome("`BillingDown` firing"), "on-time", "{hops:#?}");
    assert_eq!(outcome("routed to `customers`"), "misrouted", "{hops:#?}");
    assert_eq!(outcome("`BillingDown` resolved"), "on-time", "{hops:#?}");
    assert!(!hops.iter().any(|h| h["channel"] == "email"), "no delivery without routing");
    let fired = hops[0]["arrival-us"].as_u64().unwrap() - hops[0]["reference-us"].as_u64().unwrap();
    assert!(fired < 20_000_000, "fired {fired} µs after the kill");

    // What the judgement rests on is in the journal: Alertmanager's own answer, the raw
    // `ALERTS` samples, and no mail (the route notifies nobody).
    assert!(
        journal.iter().any(|e| e["event"] == "alertmanager-alerts"
            && e["alerts"].as_array().unwrap().iter().any(|a| a["receivers"][0] == "blackhole")),
        "no poll saw the alert at Alertmanager"
    );
    let alerts_query = journal
        .iter()
        .find(|e| e["event"] == "prometheus-query" && e["check"] == "billing alert chain")
        .expect("the ALERTS query is recorded");
    assert_eq!(alerts_query["data"]["resultType"], "matrix", "{alerts_query:#}");
    assert!(!journal.iter().any(|e| e["event"] == "notification-received"));

    // PromQL values: `up` is 0 at the outage's end; `min: 1` throughout it fails on
    // the samples that are 0.
    let down = check(report, "billing is down in prometheus");
    assert_eq!(down["status"], "passed", "{down:#}");
    let up = check(report, "billing up throughout the outage (fails on purpose)");
    assert_eq!(up["status"], "failed", "{up:#}");
    assert!(up["summary"].as_str().unwrap().contains("outside at least 1; first up{"), "{up:#}");

    // The report shows the hops.
    let stdout = String::from_utf8_lossy(&run.output.stdout);
    assert!(stdout.contains("billing alert chain"), "{stdout}");
}
