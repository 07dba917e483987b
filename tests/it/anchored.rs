//! `parallel` children anchored at a sibling's moment (`at: { step, event }`), on the non-demo
//! nginx stack.

use crate::support::*;

/// A pause placed 500 ms after the release's `healthy` moment lands in its watch, whenever that
/// moment comes; a child anchored at `failed` starts when the gate fails.
#[test]
fn a_pause_anchored_at_the_releases_healthy_moment_lands_in_its_watch() {
    let _serial = stack_lock();
    let run = rehearse("tests/scenarios/webcache/anchored-freeze.yaml");
    assert_eq!(run.output.status.code(), Some(0), "{}", describe(&run.output));
    let offset = |what: &str, matches: &dyn Fn(&serde_json::Value) -> bool| {
        run.journal
            .iter()
            .find(|e| matches(e))
            .and_then(|e| e["offset-us"].as_u64())
            .unwrap_or_else(|| panic!("no {what} in the journal"))
    };
    let healthy = offset("healthy stage", &|e| {
        e["event"] == "upgrade" && e["stage"] == "healthy" && e["ok"] == true
    });
    let paused = offset("pause", &|e| {
        e["event"] == "container-action" && e["action"] == "pause" && e["service"] == "web"
    });
    let failed = offset("failed stage", &|e| e["event"] == "upgrade" && e["stage"] == "failed");
    let after_failure = offset("start of `after the failure`", &|e| {
        e["event"] == "step-started" && e["step"] == "after the failure"
    });
    assert!(
        (healthy + 500_000..healthy + 1_500_000).contains(&paused),
        "healthy at {healthy} µs, paused at {paused} µs"
    );
    assert!(
        after_failure >= failed,
        "failed at {failed} µs, the child started at {after_failure} µs"
    );
}
