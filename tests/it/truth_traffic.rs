//! Traffic verdicts on a real engine and a stack that is not the demo: an outage must be measured
//! from when customers' requests were due, not from when a busy generator got round to sending
//! them (coordinated omission).

use firedrill::checks::CheckStatus;
use firedrill::journal::{EventKind, read_journal};
use firedrill::report::Report;

use crate::support::{describe, firedrill, leftovers, stack_lock};

/// nginx frozen for 10 s under 100 req/s with 8 slots and a 500 ms timeout. Before the fix the
/// generator sent the requests queued behind the 8 stuck ones after the thaw and counted them as
/// quick successes: `slo` saw a "longest outage" of a few hundred ms and `max-outage: 5s` passed.
#[test]
fn a_ten_second_freeze_is_a_ten_second_outage() {
    let _serial = stack_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("tests/scenarios/webcache/pause-outage.yaml")
        .output()
        .expect("firedrill");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));

    let text = fs_err::read_to_string(dir.path().join("report.json")).expect("report.json");
    let report: Report = serde_json::from_str(&text).expect("report.json is a Report");
    let run_id = report.run_id.clone().expect("run id");
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    let slo = &report.checks[0];
    assert_eq!(slo.status, CheckStatus::Failed, "{slo:#?}");
    let outage_ms = outage_ms(&slo.summary);
    // From the freeze to 500 ms (the timeout) before the thaw: about 9.5 s.
    assert!((8_500..=10_500).contains(&outage_ms), "{outage_ms} ms: {slo:#?}");

    // The journal agrees: every request due in the frozen stretch failed, sent or not.
    let events = read_journal(&dir.path().join("journal.jsonl")).expect("journal");
    let (mut requests, mut failed) = (0, 0);
    for event in &events {
        if let EventKind::TrafficRequest { ok, .. } = &event.kind {
            requests += 1;
            failed += u64::from(!*ok);
        }
    }
    let due = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::TrafficStopped { due, .. } => Some(*due),
            _ => None,
        })
        .expect("traffic-stopped");
    assert_eq!(requests, due, "every due request has an outcome");
    // About 950 customers (9.5 s at 100/s) got nothing in time; measured from the send, 72 did.
    assert!(failed > 800, "{failed} failed");
}

/// `longest outage 9.49s` in a summary, in ms.
fn outage_ms(summary: &str) -> u64 {
    let after = summary.split("longest outage ").nth(1).unwrap_or_else(|| panic!("{summary}"));
    let figure = after.split_whitespace().next().unwrap();
    let number = |text: &str| -> f64 {
        text.parse().unwrap_or_else(|_| panic!("not a duration: {figure} in {summary}"))
    };
    match figure.strip_suffix("ms") {
        Some(ms) => number(ms) as u64,
        None => (number(figure.strip_suffix('s').unwrap_or(figure)) * 1_000.0) as u64,
    }
}
