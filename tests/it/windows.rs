//! Maintenance windows through the CLI: a scenario placed on a Tuesday is rejected by `validate`
//! with the next window per customer zone, the weekend one passes, and `firedrill gate` answers
//! 0, 1 or 2. No Docker needed.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn firedrill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("TZ", "Asia/Tokyo")
        .env_remove("FIREDRILL_LOG")
        .args(args)
        .output()
        .expect("failed to run firedrill")
}

fn text(bytes: &[u8]) -> String {
    // miette wraps long help lines; join them so assertions read whole sentences.
    String::from_utf8_lossy(bytes).lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

#[test]
fn an_upgrade_on_a_tuesday_fails_validation_with_the_next_window() {
    let output = firedrill(&["validate", "scenarios/upgrade-on-tuesday.yaml"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for expected in [
        "upgrade `upgrade billing` falls outside the maintenance windows",
        "starts Tue 2026-12-08 10:20 CET",
        "acme (Europe/Berlin): Tue 2026-12-08 10:20 CET is outside every window; next window Sat 2026-12-12 22:00 CET",
        "globex (America/New_York): Tue 2026-12-08 04:20 EST is outside every window; next window Sat 2026-12-12 14:00 EST",
        "the next time allowed for every customer is Sat 2026-12-12 22:00 CET (Europe/Berlin)",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn the_weekend_upgrade_is_inside_its_windows() {
    let output = firedrill(&["validate", "scenarios/weekend-upgrade.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

const POLICY: &str = "scenarios/policies/saturday-night.yaml";
const NOTICES: &str = "tests/fixtures/gate/notices.yaml";

#[test]
fn gate_allows_a_deployment_inside_the_window_after_a_timely_notice() {
    let output = firedrill(&[
        "gate",
        "--policy",
        POLICY,
        "--at",
        "2026-12-05T22:30 Europe/Berlin",
        "--notices",
        NOTICES,
    ]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", text(&output.stderr));
    assert!(
        stdout.contains(
            "acme (Europe/Berlin): Sat 2026-12-05 22:30 CET, inside until Sun 2026-12-06 06:00 CET"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("allowed: deploy"), "{stdout}");
}

#[test]
fn gate_denies_a_tuesday_and_names_the_next_window_in_every_zone() {
    let output = firedrill(&[
        "gate",
        "--policy",
        POLICY,
        "--at",
        "2026-12-08T09:00:00Z",
        "--notices",
        NOTICES,
    ]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for expected in [
        "denied: the next allowed time is Sun 2026-12-13 06:00 JST (Asia/Tokyo)",
        "acme (Europe/Berlin): Sat 2026-12-12 22:00 CET",
        "globex (America/New_York): Sat 2026-12-12 16:00 EST",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
}

#[test]
fn gate_denies_without_a_notice_or_with_a_late_one() {
    let none = firedrill(&["gate", "--policy", POLICY, "--at", "2026-12-05T21:30:00Z"]);
    let stdout = text(&none.stdout);
    assert_eq!(none.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("none given (pass --notices FILE)"), "{stdout}");

    // The status-page notice went out on 2026-12-02 at 10:00 in Berlin: 72 h later is Saturday
    // 10:00, so Friday night's deployment is too early even in a window of its own.
    let early = firedrill(&[
        "gate",
        "--policy",
        POLICY,
        "--at",
        "2026-12-05T08:00:00Z",
        "--notices",
        NOTICES,
    ]);
    let stdout = text(&early.stdout);
    assert_eq!(early.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("notice: no notice 72h ahead on status"), "{stdout}");
}

#[test]
fn gate_rejects_bad_input_with_positions() {
    let policy = firedrill(&["gate", "--policy", "tests/fixtures/gate/policy-bad.yaml"]);
    let stderr = text(&policy.stderr);
    assert_eq!(policy.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid window time `Sun 6am`"), "{stderr}");
    assert!(stderr.contains("tests/fixtures/gate/policy-bad.yaml:2:36"), "{stderr}");
    assert!(stderr.contains("unknown key `blackout` in customer `acme`"), "{stderr}");

    let notices = firedrill(&[
        "gate",
        "--policy",
        POLICY,
        "--notices",
        "tests/fixtures/gate/notices-bad.yaml",
    ]);
    let stderr = text(&notices.stderr);
    assert_eq!(notices.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tests/fixtures/gate/notices-bad.yaml:1:9"), "{stderr}");
    assert!(stderr.contains("3 problems"), "{stderr}");

    let at = firedrill(&["gate", "--policy", POLICY, "--at", "next saturday"]);
    assert_eq!(at.status.code(), Some(2));
    assert!(text(&at.stderr).contains("error: invalid `--at next saturday`"));

    let missing = firedrill(&["gate", "--policy", "tests/fixtures/gate/no-such-file.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn a_scenario_file_is_a_policy_file_too() {
    let output = firedrill(&[
        "gate",
        "--policy",
        "scenarios/weekend-upgrade.yaml",
        "--at",
        "2026-12-08T09:00:00Z",
        "--notices",
        NOTICES,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
}
