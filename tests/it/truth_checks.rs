//! Verdict truth on a stack that is not the demo (`tests/stacks/webcache`): a frozen redis behind
//! a TCP health check. Docker's port proxy and the frozen container's kernel both accept a
//! connection, so only the `PING` → `+PONG` exchange sees the freeze.

use serde_json::Value;

use crate::support::{describe, rehearse, stack_lock};

#[test]
fn a_paused_tcp_checked_service_is_unhealthy_while_paused() {
    let _serial = stack_lock();
    let run = rehearse("tests/scenarios/webcache/redis-freeze.yaml");
    assert_eq!(run.output.status.code(), Some(0), "{}", describe(&run.output));
    assert_eq!(run.report["status"], "completed", "{:#}", run.report);
    let during = run.check("unhealthy-during cache during \"freeze cache\"");
    assert_eq!(during["status"], "passed", "{during:#}");

    let at = |event: &str, step: &str| {
        run.journal
            .iter()
            .find(|e| e["event"] == event && e["step"] == step)
            .and_then(|e| e["offset-us"].as_u64())
            .unwrap_or_else(|| panic!("no `{event}` of `{step}`"))
    };
    let (start, end) = (at("step-started", "freeze cache"), at("step-ended", "freeze cache"));
    let health: Vec<&Value> = run
        .journal
        .iter()
        .filter(|e| e["event"] == "health-changed" && e["service"] == "cache")
        .collect();
    // Unhealthy inside the pause, for want of the answer, not because a connect failed.
    let down = health
        .iter()
        .find(|e| e["healthy"] == false && e["offset-us"].as_u64() > Some(start))
        .unwrap_or_else(|| panic!("never unhealthy after the pause began: {health:#?}"));
    let down_at = down["offset-us"].as_u64().unwrap();
    assert!(down_at < end, "unhealthy only after the pause: {down:#}");
    assert!(down["detail"].as_str().unwrap().contains("no answer `+PONG`"), "{down:#}");
    // Each change carries when its check began, at or before the change itself.
    for change in &health {
        let began = change["check-started-us"].as_u64().expect("check-started-us");
        assert!(began <= change["offset-us"].as_u64().unwrap(), "{change:#}");
    }
    // Healthy again after the unpause.
    assert!(
        health.iter().any(|e| e["healthy"] == true && e["offset-us"].as_u64() > Some(down_at)),
        "{health:#?}"
    );
}

#[test]
fn a_scenario_without_expectations_says_nothing_was_checked_and_strict_fails_it() {
    let _serial = stack_lock();
    crate::support::demo_images();
    for (strict, code) in [(false, 0), (true, 1)] {
        let mut command = crate::support::firedrill();
        command.arg("run");
        if strict {
            command.arg("--strict");
        }
        let output = command.arg("tests/scenarios/webcache/no-expect.yaml").output().unwrap();
        assert_eq!(output.status.code(), Some(code), "{}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("NOTHING WAS CHECKED: `webcache-no-expect` has no `expect:` entries"),
            "{stdout}"
        );
        assert!(!stdout.contains("Every check held"), "{stdout}");
    }
}
