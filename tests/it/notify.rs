//! Customer notifications end to end against the real Docker engine, through the CLI: the
//! demo's alerting pipeline (real Prometheus and Alertmanager, the `comms` fan-out) sends to the
//! sinks the harness starts for the run, and the `notify` checks judge what arrived.
//!
//! - `outage-notify`: every customer told on email, SMS and the status page, then the all-clear.
//! - `notify-too-slow`: Alertmanager's 100 s `group_wait` makes every channel late: exit 1.
//! - `sms-provider-down`: the SMS sink answers 500, comms calls instead: voice arrives in time.

use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{demo_images, describe, firedrill, rehearse, stack_lock};

/// Build the alerting pipeline's images (Prometheus, Alertmanager, comms) once.
fn alerting_images() {
    demo_images();
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let output = firedrill()
            .args(["images", "scenarios/outage-notify.yaml"])
            .output()
            .expect("failed to run firedrill images");
        assert!(output.status.success(), "firedrill images failed:\n{}", describe(&output));
    });
}

/// Run `file` with a report folder (the alerting images built first): the CLI's output,
/// `report.json` and the journal; nothing may be left behind.
fn run(file: &str) -> (std::process::Output, Value, Vec<Value>) {
    alerting_images();
    let run = rehearse(file);
    (run.output, run.report, run.journal)
}

/// The `notification-received` events of `channel`.
fn arrivals<'j>(journal: &'j [Value], channel: &str) -> Vec<&'j Value> {
    journal
        .iter()
        .filter(|e| e["event"] == "notification-received" && e["channel"] == channel)
        .collect()
}

fn recipients(arrivals: &[&Value]) -> Vec<String> {
    let mut all: Vec<String> = arrivals
        .iter()
        .flat_map(|e| e["recipients"].as_array().unwrap().iter())
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    all.sort();
    all.dedup();
    all
}

fn text(event: &Value) -> String {
    format!("{} {}", event["subject"].as_str().unwrap_or_default(), event["body"].as_str().unwrap())
}

/// The offset (µs) of the start of step `name`.
fn step_start(journal: &[Value], name: &str) -> u64 {
    journal
        .iter()
        .find(|e| e["event"] == "step-started" && e["step"] == name)
        .and_then(|e| e["offset-us"].as_u64())
        .unwrap_or_else(|| panic!("step `{name}` never started"))
}

fn check<'r>(report: &'r Value, kind: &str) -> &'r Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no `{kind}` check in {report:#}"))
}

#[test]
fn an_outage_reaches_every_customer_on_every_channel_and_so_does_the_all_clear() {
    let _serial = stack_lock();
    let (output, report, journal) = run("scenarios/outage-notify.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(check(&report, "notify")["status"], "passed", "{report:#}");

    // Six sinks, each on loopback and on the run network's gateway.
    let started: Vec<&Value> = journal.iter().filter(|e| e["event"] == "sink-started").collect();
    assert_eq!(started.len(), 6, "{started:?}");
    assert!(started.iter().all(|e| e["addrs"].as_array().unwrap().len() == 2));

    let kill = step_start(&journal, "kill billing");
    let start = step_start(&journal, "start billing");
    let email = arrivals(&journal, "email");
    let sms = arrivals(&journal, "sms");
    assert_eq!(recipients(&email), ["it@globex.test", "ops@acme.test"]);
    assert_eq!(recipients(&sms), ["+15550001", "+15550002"]);
    assert!(!arrivals(&journal, "status-page").is_empty());
    // comms' other channels work too: fax (with its content link), chat and the pager.
    for channel in ["fax", "chat", "page"] {
        assert!(!arrivals(&journal, channel).is_empty(), "nothing on {channel}");
    }
    assert!(!journal.iter().any(|e| e["event"] == "sink-rejected"), "a sink rejected something");
    // Firing after the kill, the all-clear after the start, in the sinks' receive times.
    let firing: Vec<&&Value> = email.iter().filter(|e| text(e).contains("[FIRING]")).collect();
    let resolved: Vec<&&Value> = email.iter().filter(|e| text(e).contains("[RESOLVED]")).collect();
    assert_eq!((firing.len(), resolved.len()), (2, 2), "{email:?}");
    assert!(firing.iter().all(|e| e["received-us"].as_u64().unwrap() > kill));
    assert!(resolved.iter().all(|e| e["received-us"].as_u64().unwrap() > start));

    // A progress line per arrival.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("email to ops@acme.test: [FIRING] billing outage"), "{stderr}");
    assert!(stderr.contains("sms to +15550002: OUTAGE: billing is down"), "{stderr}");
}

#[test]
fn a_long_group_wait_fails_the_rehearsal_naming_every_late_channel() {
    let _serial = stack_lock();
    let (output, report, journal) = run("scenarios/notify-too-slow.yaml");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_eq!(report["status"], "deviated", "{report:#}");
    // The rehearsal ends before Alertmanager's 100 s group wait: nothing arrived at all.
    assert!(
        !journal.iter().any(|e| e["event"] == "notification-received"),
        "a notification arrived despite the 100 s group wait"
    );
    let notify = check(&report, "notify");
    assert_eq!(notify["status"], "failed", "{notify:#}");
    // Each channel is reported *missing* (its own timing row, and a line of the summary), not
    // merely named: the expected text names them all already.
    let timings = notify["channels"].as_array().expect("per-channel timings");
    let summary = notify["observed"].as_str().unwrap_or_default();
    for channel in ["email", "sms", "status-page"] {
        let row = timings
            .iter()
            .find(|t| t["channel"] == channel && t["part"] == "alert" && t["recipient"].is_null())
            .unwrap_or_else(|| panic!("no timing row for `{channel}`: {notify:#}"));
        assert_eq!(row["outcome"], "missing", "`{channel}`: {row:#}");
        assert!(
            summary.contains(&format!("{channel}: missing")),
            "`{channel}` is not reported missing: {notify:#}"
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("notify"), "{stdout}");
}

#[test]
fn with_the_sms_provider_down_customers_get_a_voice_call_in_time() {
    let _serial = stack_lock();
    let (output, report, journal) = run("scenarios/sms-provider-down.yaml");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(check(&report, "notify")["status"], "passed", "{report:#}");

    // The outage was on from its step to teardown, and every SMS was answered 500.
    let chaos: Vec<(bool, &str)> = journal
        .iter()
        .filter(|e| e["event"] == "sink-chaos" && e["sink"] == "sms")
        .map(|e| (e["on"].as_bool().unwrap(), e["mode"].as_str().unwrap()))
        .collect();
    assert_eq!(chaos, [(true, "status 500 (sms only)"), (false, "status 500 (sms only)")]);
    let refused = journal
        .iter()
        .filter(|e| e["event"] == "sink-rejected" && e["sink"] == "sms" && e["reason"] == "chaos")
        .count();
    assert!(refused >= 4, "two customers, firing and resolved: {refused} refused");
    assert!(arrivals(&journal, "sms").is_empty(), "an SMS got through the outage");

    // comms called every customer instead, for the outage and for the all-clear.
    let voice = arrivals(&journal, "voice");
    assert_eq!(recipients(&voice), ["+15550001", "+15550002"]);
    let kill = step_start(&journal, "kill billing");
    let start = step_start(&journal, "start billing");
    let after = |at: u64| voice.iter().filter(|e| e["received-us"].as_u64().unwrap() > at).count();
    assert_eq!((after(kill), after(start)), (4, 2), "{voice:?}");
    assert!(voice.iter().any(|e| text(e).contains("RESOLVED")), "{voice:?}");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sink `sms` outage on: status 500 (sms only)"), "{stderr}");
    assert!(stderr.contains("voice to +15550001"), "{stderr}");
}
